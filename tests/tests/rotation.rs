//! Group key rotation (issue #12, "recipient rotation"): `org rotate-group` gives a group a new
//! key and signs a `recipients` order; devices switch to it for everything new (records and
//! attachments), HQ keeps the old key to read what came before, a device enrolled later gets the
//! order on HQ's next pull. Bad paths: an order signed by another organisation, a replayed older
//! order, an order naming an unknown group, a rotated key offered to an installation that never
//! saw the order. Real relay, real vaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net;
mod pg;

use age::secrecy::ExposeSecret;
use amanat_core::records::attachments::{self, AttachmentReader, AttachmentWriter};
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::sync::envelope;
use amanat_core::sync::hq::{self, HqError};
use amanat_core::sync::orders::{self, RecipientsBody, KIND_RECIPIENTS};
use amanat_core::{RecordId, Vault};
use amanat_server::org;
use net::{pass, push_as_hq, quarantine_reasons, Net};
use std::collections::BTreeMap;

fn sync(v: &Vault, net: &Net) -> amanat_core::sync::SyncReport {
    let r = amanat_core::sync::sync_once(v, &net.http).unwrap();
    assert_eq!(r.interrupted, None);
    r
}

fn identity(text: &age::secrecy::SecretString) -> age::x25519::Identity {
    text.expose_secret().parse().unwrap()
}

/// A case with caseworker (and audio) consent and one field set: what HQ's caseworkers open.
fn case_on(v: &Vault, status: &str) -> RecordId {
    let case = cases::create_case(v).unwrap();
    consent::record_consent(
        v,
        case.id,
        "worker-17",
        "uz",
        &[Scope::Interview, Scope::ShareCaseworkers, Scope::Audio],
    )
    .unwrap();
    cases::set_field(v, case.id, "status", status).unwrap();
    case.id
}

/// The case envelopes of `record` at the relay (HQ's routing), as payloads.
fn envelopes_of(
    net: &Net,
    key: &ring::signature::Ed25519KeyPair,
    any: &age::x25519::Identity,
    record: RecordId,
) -> Vec<Vec<u8>> {
    net.hq_envelopes(key)
        .into_iter()
        .filter(|(_, _, p)| {
            envelope::open(p, any)
                .is_ok_and(|r| r.kind == "case" && r.record_id == record.to_string())
        })
        .map(|(_, _, p)| p)
        .collect()
}

#[test]
fn after_a_rotation_new_records_and_recordings_go_to_the_new_key_and_hq_reads_old_and_new() {
    let net = Net::new();
    let relay_key = net.hq();
    let (a, ea) = net.enrolled("a");
    let (hq_vault, _) = net.hq_vault("hq", &["caseworkers"]);
    let old_key = identity(&org::group_identity(&net.org_dir, &pass(), "caseworkers").unwrap());
    let before = case_on(&a, "open");
    sync(&a, &net);
    sync(&hq_vault, &net);

    // The organisation rotates the caseworkers key (a caseworker left).
    let (order, new_text) =
        org::rotate_group(&net.org_dir, &pass(), "caseworkers", Some(10)).unwrap();
    let new_key = identity(&new_text);
    assert_ne!(
        new_key.to_public().to_string(),
        old_key.to_public().to_string()
    );
    // The key in force in the organisation directory is the new one; the old one is kept.
    assert_eq!(
        org::group_identity(&net.org_dir, &pass(), "caseworkers")
            .unwrap()
            .expose_secret(),
        new_text.expose_secret()
    );
    let bundle = org::group_bundle(&net.org_dir, &pass(), "caseworkers").unwrap();
    assert!(bundle
        .expose_secret()
        .contains(old_key.to_string().expose_secret()));
    assert!(bundle.expose_secret().contains(hq::BUNDLE_ORDER_PREFIX));
    // HQ adopts it and holds the new key beside the old.
    hq::adopt_order(&hq_vault, &order).unwrap();
    hq::import_group_identity(&hq_vault, "caseworkers", new_text.expose_secret()).unwrap();
    assert_eq!(hq::summary(&hq_vault).unwrap().groups, vec!["caseworkers"]);
    assert_eq!(
        hq::deliver_standing(&hq_vault, &net.http).unwrap(),
        1,
        "sent to A"
    );
    assert_eq!(
        hq::deliver_standing(&hq_vault, &net.http).unwrap(),
        0,
        "once"
    );

    // A obeys on its next sync; what it writes from then on opens with the new key only.
    let r = sync(&a, &net);
    assert_eq!(r.quarantined, 0);
    let after = case_on(&a, "new");
    let i = interviews::start(&a, after, "trafficking_screening", 1, "uz").unwrap();
    let mut w = AttachmentWriter::open(
        &a,
        &i.id,
        "narrative_audio",
        "audio/ogg",
        attachments::DEFAULT_MAX_BYTES,
    )
    .unwrap();
    w.write(b"recorded after the rotation").unwrap();
    let info = w.finish().unwrap();
    sync(&a, &net);
    let new_envs = envelopes_of(&net, &relay_key, &new_key, after);
    assert!(!new_envs.is_empty());
    for p in &new_envs {
        assert!(
            envelope::open(p, &old_key).is_err(),
            "the departed holder's key opens nothing new"
        );
    }
    let file = a.dir().join("attachments").join(format!("{}.age", info.id));
    let mut plain = Vec::new();
    AttachmentReader::open_file(&file, std::slice::from_ref(&new_key))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, b"recorded after the rotation");
    assert!(AttachmentReader::open_file(&file, std::slice::from_ref(&old_key)).is_err());
    // What was sent before still opens with the old key (HQ keeps it).
    assert!(!envelopes_of(&net, &relay_key, &old_key, before).is_empty());

    // HQ reads both: nothing kept encrypted.
    sync(&hq_vault, &net);
    let s = hq::summary(&hq_vault).unwrap();
    assert_eq!((s.held, s.quarantined), (0, 0), "{s:?}");
    assert!(cases::get_case(&hq_vault, before).is_ok());
    assert!(cases::get_case(&hq_vault, after).is_ok());
    let _ = ea;

    // A device enrolled after the rotation starts on org.pub's key, and switches once HQ has
    // heard from it and handed it the order.
    let (c, _) = net.enrolled("c");
    sync(&c, &net);
    sync(&hq_vault, &net);
    assert_eq!(
        hq::deliver_standing(&hq_vault, &net.http).unwrap(),
        1,
        "sent to C"
    );
    sync(&c, &net);
    let on_c = case_on(&c, "c");
    sync(&c, &net);
    let envs = envelopes_of(&net, &relay_key, &new_key, on_c);
    assert!(!envs.is_empty());
    assert!(envs.iter().all(|p| envelope::open(p, &old_key).is_err()));
}

#[test]
fn forged_replayed_or_invalid_rotation_orders_change_nothing_and_hq_refuses_a_key_it_cannot_place()
{
    let net = Net::new();
    let relay_key = net.hq();
    let (a, ea) = net.enrolled("a");
    sync(&a, &net);
    let sign = org::order_signer(&net.org_dir, &pass()).unwrap();
    let old_key = identity(&org::group_identity(&net.org_dir, &pass(), "caseworkers").unwrap());
    let body = |serial: u64, group: &str, r: &str| {
        serde_json::to_string(&RecipientsBody {
            serial,
            groups: BTreeMap::from([(group.to_string(), r.to_string())]),
        })
        .unwrap()
    };
    let rogue = age::x25519::Identity::generate();
    // Signed by another organisation: quarantined, recipients unchanged.
    let other = tempfile::tempdir().unwrap();
    org::init(&other.path().join("org"), &pass(), Some(10)).unwrap();
    let foreign = org::order_signer(&other.path().join("org"), &pass()).unwrap();
    push_as_hq(
        &net,
        &relay_key,
        &ea.device_id,
        orders::payload(&foreign(
            KIND_RECIPIENTS,
            body(5, "caseworkers", &rogue.to_public().to_string()),
        ))
        .unwrap(),
    );
    // An unknown group, or a recipient that is no age key: refused.
    push_as_hq(
        &net,
        &relay_key,
        &ea.device_id,
        orders::payload(&sign(
            KIND_RECIPIENTS,
            body(6, "press", &rogue.to_public().to_string()),
        ))
        .unwrap(),
    );
    push_as_hq(
        &net,
        &relay_key,
        &ea.device_id,
        orders::payload(&sign(
            KIND_RECIPIENTS,
            body(7, "caseworkers", "age1notakey"),
        ))
        .unwrap(),
    );
    let r = sync(&a, &net);
    assert_eq!(r.quarantined, 3);
    let mut reasons = quarantine_reasons(&a);
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_order_signature",
            "invalid_recipients",
            "invalid_recipients"
        ]
    );
    let case = case_on(&a, "still old");
    sync(&a, &net);
    assert!(
        !envelopes_of(&net, &relay_key, &old_key, case).is_empty(),
        "still the old key"
    );

    // A real rotation (serial 100), then an older one replayed (serial 50): ignored.
    let newer = age::x25519::Identity::generate();
    push_as_hq(
        &net,
        &relay_key,
        &ea.device_id,
        orders::payload(&sign(
            KIND_RECIPIENTS,
            body(100, "caseworkers", &newer.to_public().to_string()),
        ))
        .unwrap(),
    );
    push_as_hq(
        &net,
        &relay_key,
        &ea.device_id,
        orders::payload(&sign(
            KIND_RECIPIENTS,
            body(50, "caseworkers", &rogue.to_public().to_string()),
        ))
        .unwrap(),
    );
    let r = sync(&a, &net);
    assert_eq!(r.quarantined, 0);
    let later = case_on(&a, "newer");
    sync(&a, &net);
    assert!(!envelopes_of(&net, &relay_key, &newer, later).is_empty());
    assert!(
        envelopes_of(&net, &relay_key, &rogue, later).is_empty(),
        "the replayed order was ignored"
    );

    // An installation that never saw a rotation refuses the new key alone, and takes it with
    // the bundle that carries the signed order.
    let (order, new_text) =
        org::rotate_group(&net.org_dir, &pass(), "caseworkers", Some(10)).unwrap();
    let (fresh, _) = net.hq_vault("fresh", &[]);
    assert!(matches!(
        hq::import_identity(&fresh, new_text.expose_secret()),
        Err(HqError::WrongIdentity)
    ));
    // A forged order in a bundle is refused too.
    let forged = foreign(KIND_RECIPIENTS, order.body.clone());
    let forged_bundle = format!(
        "{}{}\n{}\n",
        hq::BUNDLE_ORDER_PREFIX,
        serde_json::to_string(&forged).unwrap(),
        new_text.expose_secret()
    );
    assert!(matches!(
        hq::import_identity(&fresh, &forged_bundle),
        Err(HqError::WrongCertificate)
    ));
    assert!(hq::summary(&fresh).unwrap().groups.is_empty());
    let bundle = org::group_bundle(&net.org_dir, &pass(), "caseworkers").unwrap();
    assert_eq!(
        hq::import_identity(&fresh, bundle.expose_secret()).unwrap(),
        "caseworkers"
    );
    sync(&fresh, &net);
    let s = hq::summary(&fresh).unwrap();
    assert!(s.applied > 0, "{s:?}");
    assert!(
        cases::get_case(&fresh, case).is_ok(),
        "old key (org.pub's) came in the bundle"
    );
}
