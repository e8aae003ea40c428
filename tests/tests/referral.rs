//! Case referral (issue #12, "case assignment"): HQ refers a case recorded on device A to a
//! colleague's device B with an order signed by the organisation and sealed to each device; B
//! receives the case, later changes travel both ways, and taking the case back stops new
//! envelopes to B. Bad paths: an assignment in clear, one carrying a record of a device it does
//! not name, one for a device that is not named, a replayed older assignment, an unknown case or
//! device at HQ, an order signed by another organisation. Real relay, real vaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net;
mod pg;

use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::sync::hq::{self, HqError};
use amanat_core::sync::orders::{self, AssignedDevice, Assignment, KIND_ASSIGN};
use amanat_core::sync::{self, envelope::SignedRecord, Enrollment};
use amanat_core::{RecordId, Vault};
use amanat_protocol::OrgOrder;
use amanat_server::org;
use net::{new_envelope_id, pass, push_as_hq, quarantine_reasons, Net};

const ALL_GROUPS: [&str; 4] = ["caseworkers", "legal", "law_enforcement", "research"];

fn answers() -> Answers {
    [
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("hours_per_day", AnswerValue::Integer(14)),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

struct Team {
    net: Net,
    a: Vault,
    ea: Enrollment,
    b: Vault,
    eb: Enrollment,
    hq: Vault,
    case: cases::Case,
}

fn sync(v: &Vault, net: &Net) -> sync::SyncReport {
    let r = sync::sync_once(v, &net.http).unwrap();
    assert_eq!(r.interrupted, None);
    r
}

/// A records a case (consent for caseworkers, identity, a field, a submitted interview in
/// Uzbek); A, B and HQ sync, so HQ holds the case and both devices' profiles.
fn team() -> Team {
    let net = Net::new();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    let (hq, _) = net.hq_vault("hq", &ALL_GROUPS);
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "uz",
        &[Scope::Interview, Scope::ShareCaseworkers],
    )
    .unwrap();
    cases::set_identity_field(&a, case.id, "name", "Dilnoza").unwrap();
    cases::set_field(&a, case.id, "status", "open").unwrap();
    let i = interviews::start(&a, case.id, "trafficking_screening", 1, "uz").unwrap();
    interviews::save_answers(&a, &i.id, &answers()).unwrap();
    interviews::submit(&a, &i.id).unwrap();
    sync(&a, &net);
    sync(&b, &net);
    sync(&hq, &net);
    Team {
        net,
        a,
        ea,
        b,
        eb,
        hq,
        case,
    }
}

fn signer(net: &Net) -> impl Fn(&str, String) -> OrgOrder {
    org::order_signer(&net.org_dir, &pass()).unwrap()
}

fn refer(t: &Team, add: &[&str], remove: &[&str]) -> hq::AssignOutcome {
    let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
    let remove: Vec<String> = remove.iter().map(|s| s.to_string()).collect();
    hq::assign_case(
        &t.hq,
        &t.net.http,
        t.case.code.as_str(),
        &add,
        &remove,
        &signer(&t.net),
    )
    .unwrap()
}

fn field(v: &Vault, case: RecordId, name: &str) -> Option<String> {
    cases::get_case(v, case)
        .unwrap()
        .fields
        .get(name)
        .and_then(|f| f.current().map(str::to_string))
}

fn assigned(e: &Enrollment) -> AssignedDevice {
    AssignedDevice {
        device_id: e.device_id.clone(),
        signing_public_key: e.signing_public_key.clone(),
        age_recipient: e.age_recipient.clone(),
    }
}

fn sealed(order: &OrgOrder, to: &Enrollment) -> String {
    let recipient: age::x25519::Recipient = to.age_recipient.parse().unwrap();
    orders::sealed_payload(order, &recipient).unwrap()
}

#[test]
fn a_case_referred_to_a_colleague_arrives_whole_and_changes_travel_both_ways_until_taken_back() {
    let t = team();
    // HQ knows both devices' keys from their signed profiles.
    let known = hq::devices(&t.hq).unwrap();
    for e in [&t.ea, &t.eb] {
        assert!(
            known
                .iter()
                .any(|d| d.device_id == e.device_id && d.profile),
            "{known:?}"
        );
    }
    // B holds nothing of the case before the referral.
    assert!(cases::get_case(&t.b, t.case.id).is_err());

    let done = refer(&t, &[&t.eb.device_id], &[]);
    let mut team_ids = vec![t.ea.device_id.clone(), t.eb.device_id.clone()];
    team_ids.sort();
    assert_eq!(done.devices, team_ids);
    assert_eq!(done.told.len(), 2);
    assert!(
        done.records >= 4,
        "case, identity, consent, interview: {done:?}"
    );

    // B receives the case whole: fields, identity, consent, the submitted interview.
    sync(&t.b, &t.net);
    assert_eq!(field(&t.b, t.case.id, "status").as_deref(), Some("open"));
    let identity = cases::get_identity(&t.b, t.case.id).unwrap();
    assert_eq!(
        identity.fields.get("name").and_then(|f| f.current()),
        Some("Dilnoza")
    );
    assert!(consent::current(&t.b, t.case.id).unwrap().is_some());
    let on_b = interviews::list_for_case(&t.b, t.case.id).unwrap();
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].language, "uz");
    assert!(
        quarantine_reasons(&t.b).is_empty(),
        "{:?}",
        quarantine_reasons(&t.b)
    );
    assert!(sync::verify_custody(&t.b).unwrap().is_clean());

    // Changes travel both ways from now on (A obeyed its copy of the order on its sync).
    sync(&t.a, &t.net);
    cases::set_field(&t.b, t.case.id, "status", "follow-up done").unwrap();
    sync(&t.b, &t.net);
    sync(&t.a, &t.net);
    assert_eq!(
        field(&t.a, t.case.id, "status").as_deref(),
        Some("follow-up done")
    );
    cases::set_field(&t.a, t.case.id, "risk", "high").unwrap();
    sync(&t.a, &t.net);
    sync(&t.b, &t.net);
    assert_eq!(field(&t.b, t.case.id, "risk").as_deref(), Some("high"));
    // HQ receives B's change too (routed to HQ as every case change).
    sync(&t.hq, &t.net);

    // Taken back: A's new changes no longer reach B.
    let back = refer(&t, &[], &[&t.eb.device_id]);
    assert_eq!(back.devices, vec![t.ea.device_id.clone()]);
    assert_eq!(back.records, 0);
    sync(&t.a, &t.net);
    sync(&t.b, &t.net);
    cases::set_field(&t.a, t.case.id, "risk", "low").unwrap();
    sync(&t.a, &t.net);
    let r = sync(&t.b, &t.net);
    assert_eq!(
        r.pulled, 0,
        "nothing new routed to B after the case was taken back"
    );
    assert_eq!(field(&t.b, t.case.id, "risk").as_deref(), Some("high"));
    assert!(quarantine_reasons(&t.b).is_empty());
}

#[test]
fn hq_refuses_an_unknown_case_or_device_and_sends_nothing() {
    let t = team();
    let sign = signer(&t.net);
    let unknown_case = hq::assign_case(&t.hq, &t.net.http, "NO-SUCH", &[], &[], &sign);
    assert!(matches!(unknown_case, Err(HqError::UnknownCase)));
    let stranger = "00".repeat(16);
    let unknown_device = hq::assign_case(
        &t.hq,
        &t.net.http,
        t.case.code.as_str(),
        std::slice::from_ref(&stranger),
        &[],
        &sign,
    );
    match unknown_device {
        Err(HqError::UnknownDevice(d)) => assert_eq!(d, stranger),
        other => panic!("{other:?}"),
    }
    // An order signed by another organisation is not sent.
    let other = tempfile::tempdir().unwrap();
    org::init(&other.path().join("org"), &pass(), Some(10)).unwrap();
    let foreign = org::order_signer(&other.path().join("org"), &pass()).unwrap();
    let refused = hq::assign_case(
        &t.hq,
        &t.net.http,
        t.case.code.as_str(),
        std::slice::from_ref(&t.eb.device_id),
        &[],
        &foreign,
    );
    assert!(matches!(refused, Err(HqError::WrongCertificate)));
    // Nothing reached B: no record, no order obeyed, nothing refused (orders are not counted in
    // `pulled`, so each is checked).
    let r = sync(&t.b, &t.net);
    assert_eq!((r.pulled, r.quarantined), (0, 0));
    assert!(sync::orders::obeyed(&t.b).unwrap().is_empty());
    assert!(cases::get_case(&t.b, t.case.id).is_err());
}

#[test]
fn forged_clear_foreign_and_replayed_assignments_change_nothing() {
    let t = team();
    let hq_key = t.net.hq();
    let sign = signer(&t.net);
    // The case's records, as B would get them, taken from A's applied envelopes at HQ.
    let done = refer(&t, &[&t.eb.device_id], &[]);
    sync(&t.b, &t.net);
    assert!(done.records > 0);
    let team = vec![assigned(&t.ea), assigned(&t.eb)];
    let assignment = |serial: u64, devices: Vec<AssignedDevice>, records: Vec<SignedRecord>| {
        serde_json::to_string(&Assignment {
            case_id: t.case.id.to_string(),
            serial,
            devices,
            records,
        })
        .unwrap()
    };

    // In clear (not sealed): refused, whatever the signature.
    let clear = sign(KIND_ASSIGN, assignment(u64::MAX - 1, vec![], vec![]));
    push_as_hq(
        &t.net,
        &hq_key,
        &t.eb.device_id,
        orders::payload(&clear).unwrap(),
    );
    // Sealed but signed by another organisation.
    let other = tempfile::tempdir().unwrap();
    org::init(&other.path().join("org"), &pass(), Some(10)).unwrap();
    let foreign = org::order_signer(&other.path().join("org"), &pass()).unwrap();
    let forged = foreign(KIND_ASSIGN, assignment(u64::MAX - 1, vec![], vec![]));
    push_as_hq(&t.net, &hq_key, &t.eb.device_id, sealed(&forged, &t.eb));
    // A record signed by a device the order does not name: refused before anything changes.
    let stranger = {
        let key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        use ring::signature::KeyPair;
        let public = key.public_key().as_ref().to_vec();
        AssignedDevice {
            device_id: amanat_protocol::device_id(&public),
            signing_public_key: amanat_protocol::to_hex(&public),
            age_recipient: age::x25519::Identity::generate().to_public().to_string(),
        }
    };
    let mut rogue = SignedRecord {
        format: 1,
        envelope_id: new_envelope_id(),
        kind: "case".into(),
        record_id: t.case.id.to_string(),
        version: 1,
        hlc: amanat_core::journal::hlc::Hlc {
            ms: 1,
            counter: 0,
            node: amanat_core::journal::hlc::NodeId([7; 8]),
        },
        author: String::new(),
        author_key: String::new(),
        prev_hash: None,
        content_hash: String::new(),
        content: "{}".into(),
        signature: String::new(),
    };
    // Signed with a key that is neither A's nor B's.
    let key =
        amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
            .unwrap();
    sync::envelope::sign(&mut rogue, &key);
    let bad_record = sign(
        KIND_ASSIGN,
        assignment(u64::MAX - 1, team.clone(), vec![rogue]),
    );
    push_as_hq(&t.net, &hq_key, &t.eb.device_id, sealed(&bad_record, &t.eb));
    // One that does not name B: B leaves the case (obeyed, not quarantined).
    let not_named = sign(
        KIND_ASSIGN,
        assignment(u64::MAX - 1, vec![stranger], vec![]),
    );
    push_as_hq(&t.net, &hq_key, &t.eb.device_id, sealed(&not_named, &t.eb));
    let r = sync(&t.b, &t.net);
    assert_eq!(r.quarantined, 3, "{:?}", quarantine_reasons(&t.b));
    let mut reasons = quarantine_reasons(&t.b);
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            "bad_order_signature",
            "invalid_assignment",
            "unsealed_assignment"
        ]
    );
    // The one not naming B was valid (no records): it took B off the case. A newer serial puts
    // B back; a replayed older assignment (B alone) is then ignored.
    let newer = sign(KIND_ASSIGN, assignment(u64::MAX, team.clone(), vec![]));
    push_as_hq(&t.net, &hq_key, &t.eb.device_id, sealed(&newer, &t.eb));
    sync(&t.b, &t.net);
    let replay = sign(KIND_ASSIGN, assignment(1, vec![assigned(&t.eb)], vec![]));
    push_as_hq(&t.net, &hq_key, &t.eb.device_id, sealed(&replay, &t.eb));
    sync(&t.b, &t.net);
    // B still shares the case with A (the replay would have left B alone on it): B's change
    // reaches A, and A's reaches B.
    sync(&t.a, &t.net);
    cases::set_field(&t.b, t.case.id, "risk", "from B after replay").unwrap();
    sync(&t.b, &t.net);
    sync(&t.a, &t.net);
    assert_eq!(
        field(&t.a, t.case.id, "risk").as_deref(),
        Some("from B after replay")
    );
    cases::set_field(&t.a, t.case.id, "status", "after replay").unwrap();
    sync(&t.a, &t.net);
    sync(&t.b, &t.net);
    assert_eq!(
        field(&t.b, t.case.id, "status").as_deref(),
        Some("after replay")
    );
}

/// Consent for caseworkers withdrawn before the referral: HQ reads the withdrawal from its notice
/// (the withdrawing version itself is sealed to the groups still allowed, none of which it may
/// hold), so the identity record is not handed to the colleague; and the recording phone re-sends
/// its current consent version to the new team member, so the colleague works under the scopes
/// in force, not the old ones.
#[test]
fn a_referral_after_a_withdrawal_hands_over_no_identity_and_the_current_consent() {
    let t = team();
    consent::withdraw(
        &t.a,
        t.case.id,
        "worker-17",
        "uz",
        &[Scope::ShareCaseworkers],
    )
    .unwrap();
    sync(&t.a, &t.net);
    sync(&t.hq, &t.net);
    refer(&t, &[&t.eb.device_id], &[]);
    sync(&t.b, &t.net);
    assert_eq!(field(&t.b, t.case.id, "status").as_deref(), Some("open"));
    let identity = cases::get_identity(&t.b, t.case.id);
    assert!(
        identity.map_or(true, |i| i.fields.is_empty()),
        "no identity after caseworker consent was withdrawn"
    );
    // A obeys its copy of the order (pull phase) and re-sends its consent versions to B on its
    // next push.
    sync(&t.a, &t.net);
    sync(&t.a, &t.net);
    sync(&t.b, &t.net);
    let on_b = consent::current(&t.b, t.case.id).unwrap().unwrap();
    assert!(
        !on_b.scopes.contains(&Scope::ShareCaseworkers),
        "{:?}",
        on_b.scopes
    );
    assert!(
        quarantine_reasons(&t.b).is_empty(),
        "{:?}",
        quarantine_reasons(&t.b)
    );
}
