//! A malicious relay: the real relay (its own process) with a double in front of the device that
//! rewrites its pull answers as a hostile relay could: altered payloads, envelopes it forged
//! (signed by an unknown key, or claiming a trusted author), envelopes replayed (same id, and an
//! old envelope under a new id), pages reordered or going backwards, envelopes re-routed to a
//! device they were not for. Each must be detected with a typed reason (quarantine or error),
//! nothing forged applied, nothing wiped. (A substituted `org.pub` at enrollment and a forged
//! revocation are in `sync.rs`: `a_substituted_org_pub_is_refused_and_nothing_is_stored`,
//! `a_forged_revocation_wipes_nothing`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net;
mod pg;

use amanat_core::journal::hlc::Hlc;
use amanat_core::records::cases::{self, Case};
use amanat_core::sync::envelope::{self, SignedRecord, FORMAT};
use amanat_core::sync::{self, Request, Response, SyncError, Transport, TransportError};
use amanat_core::Vault;
use amanat_protocol::{PullResponse, PulledEnvelope};
use amanat_transport::HttpTransport;
use base64::Engine as _;
use net::*;
use ring::signature::KeyPair;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

type Hook = dyn FnMut(&mut PullResponse, usize) + Send;

/// The hostile relay as the device sees it: honest answers from the real relay, pull pages
/// rewritten by `hook` (with the pull's number, from 0).
struct Liar<'a> {
    inner: &'a HttpTransport,
    hook: Mutex<Box<Hook>>,
    pulls: AtomicUsize,
}

impl<'a> Liar<'a> {
    fn new(
        inner: &'a HttpTransport,
        hook: impl FnMut(&mut PullResponse, usize) + Send + 'static,
    ) -> Self {
        Self {
            inner,
            hook: Mutex::new(Box::new(hook)),
            pulls: AtomicUsize::new(0),
        }
    }
}

impl Transport for Liar<'_> {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let mut resp = self.inner.send(request)?;
        if request.method == "GET"
            && request.path.starts_with("/v1/envelopes")
            && resp.status == 200
        {
            let n = self.pulls.fetch_add(1, Ordering::SeqCst);
            let mut page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
            (self.hook.lock().unwrap())(&mut page, n);
            resp.body = serde_json::to_vec(&page).unwrap();
        }
        Ok(resp)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A fresh UUIDv7-shaped id (the relay's id syntax) the author never used.
fn fresh_id(n: u8) -> String {
    format!("0192f1c4-8a2b-7c3d-9e4f-0000000000{n:02x}")
}

/// A case record as `author_key` would sign it: `content` under `envelope_id`, sealed to `to`.
fn forge(
    key: &ring::signature::Ed25519KeyPair,
    envelope_id: &str,
    record_id: &str,
    content: String,
    to: &str,
    edit: impl FnOnce(&mut SignedRecord),
) -> String {
    let mut r = SignedRecord {
        format: FORMAT,
        envelope_id: envelope_id.into(),
        kind: "case".into(),
        record_id: record_id.into(),
        version: 99,
        hlc: Hlc {
            ms: 4_000_000_000_000,
            counter: 0,
            node: amanat_core::journal::hlc::NodeId([9; 8]),
        },
        author: String::new(),
        author_key: String::new(),
        prev_hash: None,
        content_hash: String::new(),
        content,
        signature: String::new(),
    };
    envelope::sign(&mut r, key);
    edit(&mut r);
    let recipient = age::x25519::Recipient::from_str(to).unwrap();
    b64(&envelope::seal(&r, &[recipient]).unwrap())
}

/// The case's JSON with its status set to `value` and a clock far in the future (it would win
/// any merge if it were applied).
fn forged_case_content(case: &Case, value: &str) -> String {
    let mut v = serde_json::to_value(case).unwrap();
    v["fields"]["status"]["value"] = value.into();
    v["fields"]["status"]["hlc"]["ms"] = 4_000_000_000_000u64.into();
    serde_json::to_string(&v).unwrap()
}

fn new_key() -> ring::signature::Ed25519KeyPair {
    amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
        .unwrap()
}

/// An author A with one case shared with `victims` devices (each trusting A), pushed: two
/// envelopes (creation, status `open`) routed to every victim.
struct Scene {
    net: Net,
    a: Vault,
    ea: sync::Enrollment,
    case: Case,
    victims: Vec<(Vault, sync::Enrollment)>,
}

fn scene(victims: usize) -> Scene {
    let net = Net::new();
    let (a, ea) = net.enrolled("a");
    let victims: Vec<_> = (0..victims)
        .map(|i| {
            let (v, e) = net.enrolled(&format!("v{i}"));
            trust(&v, &ea);
            (v, e)
        })
        .collect();
    let case = cases::create_case(&a).unwrap();
    for (_, e) in &victims {
        sync::share_case(&a, case.id, &e.signing_public_key, &e.age_recipient).unwrap();
    }
    let case = cases::set_field(&a, case.id, "status", "open").unwrap();
    push_everything(&a, &net);
    Scene {
        net,
        a,
        ea,
        case,
        victims,
    }
}

/// Pushes all the author queued (case changes, and its audit entries, which go to HQ only).
fn push_everything(a: &Vault, net: &Net) {
    let queued = sync::pending(a).unwrap();
    let r = sync::sync_once(a, &net.http).unwrap();
    assert_eq!((r.pushed, r.pending), (queued, 0));
}

fn vault_exists(net: &Net, name: &str) -> bool {
    net.dir(name).join("vault").join("keyslots.json").exists()
}

fn reasons(v: &Vault) -> Vec<String> {
    net::quarantine_reasons(v)
}

#[test]
fn altered_forged_and_rerouted_envelopes_are_quarantined_with_their_reason_and_never_applied() {
    let s = scene(1);
    let (v, ev) = &s.victims[0];
    // Another case of A's, shared with nobody: its envelope is for HQ (and A) only.
    let hidden = cases::create_case(&s.a).unwrap();
    push_everything(&s.a, &s.net);
    let hq = s.net.hq();
    let hq_only = s.net.hq_envelopes(&hq).into_iter().last().unwrap();

    let attacker = new_key();
    let attacker_id = amanat_protocol::device_id(attacker.public_key().as_ref());
    let a_id = s.ea.device_id.clone();
    let a_key = s.ea.signing_public_key.clone();
    let record_id = s.case.id.to_string();
    let forged = forged_case_content(&s.case, "forged");
    let to = ev.age_recipient.clone();
    let extra: Vec<(String, String, String)> = vec![
        // Signed by a key nobody registered, and the relay names that device as the sender.
        (
            fresh_id(1),
            attacker_id.clone(),
            forge(
                &attacker,
                &fresh_id(1),
                &record_id,
                forged.clone(),
                &to,
                |_| {},
            ),
        ),
        // The same, but the relay claims A sent it.
        (
            fresh_id(2),
            a_id.clone(),
            forge(
                &attacker,
                &fresh_id(2),
                &record_id,
                forged.clone(),
                &to,
                |_| {},
            ),
        ),
        // Claims A as author (A's id and key) but signed by the attacker.
        (
            fresh_id(3),
            a_id.clone(),
            forge(
                &attacker,
                &fresh_id(3),
                &record_id,
                forged.clone(),
                &to,
                |r| {
                    r.author = a_id.clone();
                    r.author_key = a_key.clone();
                },
            ),
        ),
        // Content changed after signing.
        (
            fresh_id(4),
            attacker_id.clone(),
            forge(
                &attacker,
                &fresh_id(4),
                &record_id,
                forged.clone(),
                &to,
                |r| {
                    r.content = r.content.replace("forged", "altered");
                },
            ),
        ),
        // Re-routed: A's latest envelope for HQ only (the hidden case's, or an audit entry's),
        // delivered to the victim.
        (hq_only.0.clone(), a_id.clone(), b64(&hq_only.2)),
    ];
    let liar = Liar::new(&s.net.http, move |page, _| {
        // Altered in transit: one bit of the creation envelope's ciphertext.
        let first = &mut page.envelopes[0];
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&first.payload)
            .unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40;
        first.payload = b64(&bytes);
        for (seq, (id, sender, payload)) in (page.next_after + 1..).zip(&extra) {
            page.envelopes.push(PulledEnvelope {
                seq,
                id: id.clone(),
                sender: sender.clone(),
                payload: payload.clone(),
            });
        }
    });
    let report = sync::sync_once(v, &liar).unwrap();
    assert_eq!(report.interrupted, None);
    assert_eq!((report.pulled, report.quarantined), (1, 6), "{report:?}");
    assert_eq!(
        reasons(v),
        [
            "undecryptable",
            "unknown_author",
            "wrong_author",
            "bad_signature",
            "content_hash_mismatch",
            "undecryptable"
        ]
    );
    // Only the genuine status envelope was applied; the forged status never was.
    let held = cases::get_case(v, s.case.id).unwrap();
    assert_eq!(held.fields["status"].value, "open");
    assert!(
        cases::get_case(v, hidden.id).is_err(),
        "re-routed envelope not applied"
    );
    assert!(vault_exists(&s.net, "v0"), "nothing wiped");
    // Quarantined payloads stay as delivered (still encrypted).
    let q = sync::quarantined(v).unwrap();
    assert!(q.iter().all(|q| !q.payload.contains("forged")));
}

#[test]
fn replays_under_the_same_id_are_skipped_and_under_a_new_id_quarantined() {
    let s = scene(1);
    let (v, _) = &s.victims[0];
    let first_page: Mutex<Option<Vec<PulledEnvelope>>> = Mutex::new(None);
    let first_page = std::sync::Arc::new(first_page);
    let kept = first_page.clone();
    let liar = Liar::new(&s.net.http, move |page, _| {
        let mut kept = kept.lock().unwrap();
        match kept.as_ref() {
            // First pull: delivered twice over within the page.
            None => {
                *kept = Some(page.envelopes.clone());
                let again = page.envelopes.clone();
                page.envelopes.extend(again);
            }
            // Later pulls: the old envelopes again, with new sequence numbers, before the new.
            Some(old) => {
                let mut seq = page.next_after;
                let mut replay: Vec<PulledEnvelope> = old
                    .iter()
                    .map(|e| {
                        seq += 1;
                        PulledEnvelope { seq, ..e.clone() }
                    })
                    .collect();
                replay.append(&mut page.envelopes);
                page.envelopes = replay;
                page.next_after = seq;
            }
        }
    });
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (2, 0), "each id applied once");
    // A closes the case; the relay replays the old envelopes (same ids) with the new one.
    cases::set_field(&s.a, s.case.id, "status", "closed").unwrap();
    push_everything(&s.a, &s.net);
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (1, 0), "replays skipped: {r:?}");
    assert_eq!(
        cases::get_case(v, s.case.id).unwrap().fields["status"].value,
        "closed"
    );

    // An old envelope (status `open`) under a new id: its signed id differs from the delivered
    // one, so it is quarantined `wrong_envelope_id`, never applied, however old or new it is.
    let old = first_page.lock().unwrap().clone().unwrap();
    let liar = Liar::new(&s.net.http, move |page, _| {
        for (i, e) in old.iter().enumerate() {
            page.envelopes.push(PulledEnvelope {
                seq: page.next_after + 1 + i as u64,
                id: fresh_id(0x40 + i as u8),
                ..e.clone()
            });
        }
        page.next_after += old.len() as u64;
    });
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (0, 2), "{r:?}");
    assert_eq!(reasons(v), ["wrong_envelope_id", "wrong_envelope_id"]);
    assert_eq!(
        cases::get_case(v, s.case.id).unwrap().fields["status"].value,
        "closed"
    );
    assert!(vault_exists(&s.net, "v0"));
}

#[test]
fn reordered_pages_converge_and_a_cursor_going_backwards_or_standing_still_is_refused() {
    let s = scene(3);
    // More changes so the page has something to reorder: several statuses in a row.
    for status in ["referred", "in_care", "closed"] {
        cases::set_field(&s.a, s.case.id, "status", status).unwrap();
    }
    cases::set_field(&s.a, s.case.id, "district", "Fergana").unwrap();
    push_everything(&s.a, &s.net);

    // 1. Newest first within the page: the merge by clock gives the author's state anyway.
    let (v0, _) = &s.victims[0];
    let reverse = Liar::new(&s.net.http, |page, _| page.envelopes.reverse());
    let r = sync::sync_once(v0, &reverse).unwrap();
    assert_eq!((r.pulled, r.quarantined), (6, 0));
    assert_eq!(
        cases::get_case(v0, s.case.id).unwrap().fields,
        cases::get_case(&s.a, s.case.id).unwrap().fields
    );

    // 2. A page whose cursor goes backwards (an older page served again as the next one): the
    //    device refuses it, typed, and applies nothing from it.
    let (v1, _) = &s.victims[1];
    assert_eq!(sync::sync_once(v1, &s.net.http).unwrap().pulled, 6);
    let backwards = Liar::new(&s.net.http, |page, _| {
        page.next_after = 1;
        page.more = true;
    });
    assert!(matches!(
        sync::sync_once(v1, &backwards),
        Err(SyncError::UnexpectedResponse)
    ));
    assert_eq!(
        sync::sync_once(v1, &s.net.http).unwrap().pulled,
        0,
        "cursor kept"
    );

    // 3. `more` forever without the cursor moving: refused at once, not pulled in a loop.
    let (v2, _) = &s.victims[2];
    let stuck = Liar::new(&s.net.http, |page, n| {
        page.envelopes.clear();
        page.next_after = 0;
        page.more = n < 50;
    });
    assert!(matches!(
        sync::sync_once(v2, &stuck),
        Err(SyncError::UnexpectedResponse)
    ));
    assert_eq!(stuck.pulls.load(Ordering::SeqCst), 1, "no loop");
    let r = sync::sync_once(v2, &s.net.http).unwrap();
    assert_eq!(r.pulled, 6, "nothing lost after the refusal");
}

#[test]
fn an_envelope_under_a_malformed_id_is_quarantined_without_blocking_the_page() {
    let s = scene(1);
    let (v, _) = &s.victims[0];
    let liar = Liar::new(&s.net.http, |page, n| {
        if n == 0 {
            page.envelopes[0].id = "not-a-uuid".into();
        }
    });
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (1, 1), "{r:?}");
    assert_eq!(reasons(v), ["malformed"]);
    // The page was consumed: the next run does not stick on it.
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (0, 0));
    assert_eq!(
        cases::get_case(v, s.case.id).unwrap().fields["status"].value,
        "open"
    );
}

#[test]
fn a_quarantined_envelope_replayed_again_and_again_is_kept_once() {
    let s = scene(1);
    let (v, _) = &s.victims[0];
    // The relay alters the status envelope, then serves the altered copy twice on every pull;
    // on the last pull it finally serves the genuine envelope under the same id.
    type Kept = std::sync::Arc<Mutex<Option<(PulledEnvelope, PulledEnvelope)>>>;
    let kept: Kept = Default::default();
    let k = kept.clone();
    let liar = Liar::new(&s.net.http, move |page, n| {
        let mut k = k.lock().unwrap();
        match k.as_ref() {
            None => {
                let genuine = page.envelopes[1].clone();
                let mut bytes = base64::engine::general_purpose::STANDARD
                    .decode(&genuine.payload)
                    .unwrap();
                bytes[40] ^= 1;
                page.envelopes[1].payload = b64(&bytes);
                *k = Some((page.envelopes[1].clone(), genuine));
            }
            Some((altered, genuine)) => {
                let e = if n == 6 { genuine } else { altered };
                page.envelopes.push(PulledEnvelope {
                    seq: page.next_after + 1,
                    ..e.clone()
                });
                page.envelopes.push(PulledEnvelope {
                    seq: page.next_after + 2,
                    ..e.clone()
                });
                page.next_after += 2;
            }
        }
    });
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (1, 1));
    for _ in 0..5 {
        let r = sync::sync_once(v, &liar).unwrap();
        assert_eq!((r.pulled, r.quarantined), (0, 0), "a replay is not news");
    }
    assert_eq!(reasons(v), ["undecryptable"], "kept once");
    // The genuine bytes under that id are still received (and applied once).
    let r = sync::sync_once(v, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (1, 0));
    assert_eq!(
        cases::get_case(v, s.case.id).unwrap().fields["status"].value,
        "open"
    );
}

/// HQ keeps every envelope as delivered before judging it. A relay that alters an envelope HQ
/// already holds (other bytes under its id), forges one, or delivers the same one again cannot
/// change the kept original: the redelivery is skipped, the others are quarantined with their
/// reason and kept once as what they are.
#[test]
fn at_hq_the_original_is_kept_once_and_altered_or_forged_envelopes_never_replace_it() {
    let s = scene(0);
    let (hq, ehq) = s.net.hq_vault("hq", &["caseworkers", "legal"]);
    // A grants legal consent so the case travels to HQ (consent, case and audit envelopes).
    amanat_core::records::consent::record_consent(
        &s.a,
        s.case.id,
        "worker-17",
        "ru",
        &[amanat_core::records::consent::Scope::ShareLegal],
    )
    .unwrap();
    cases::set_field(&s.a, s.case.id, "status", "referred").unwrap();
    push_everything(&s.a, &s.net);

    let first: std::sync::Arc<Mutex<Vec<PulledEnvelope>>> = Default::default();
    let kept = first.clone();
    let honest_then_replayed = Liar::new(&s.net.http, move |page, _| {
        *kept.lock().unwrap() = page.envelopes.clone();
        // Every envelope delivered twice in the page: kept and applied once.
        let again = page.envelopes.clone();
        page.envelopes.extend(again);
    });
    let r = sync::sync_once(&hq, &honest_then_replayed).unwrap();
    let delivered = first.lock().unwrap().clone();
    assert!(delivered.len() >= 4, "{r:?}");
    let held = sync::hq::originals(&hq).unwrap();
    assert_eq!(held.len(), delivered.len());
    // The case's first two envelopes predate any consent: sealed to A alone, kept encrypted.
    let count = |st| held.iter().filter(|o| o.status == st).count();
    assert_eq!(count(sync::hq::OriginalStatus::Held), 2);
    assert_eq!(
        (r.pulled as usize, r.quarantined),
        (count(sync::hq::OriginalStatus::Applied), 0)
    );
    assert_eq!(r.pulled as usize + 2, delivered.len());
    let applied_id = held
        .iter()
        .find(|o| o.status == sync::hq::OriginalStatus::Applied)
        .unwrap()
        .envelope_id
        .clone();

    // Now the relay sends, after the cursor: (1) the first envelope's id with its payload's
    // bytes flipped, (2) a case forged under a new id by a key HQ never saw, sealed to the legal
    // group, claiming A as author.
    let victim = delivered
        .iter()
        .find(|e| e.id == applied_id)
        .unwrap()
        .clone();
    let victim_payload = victim.payload.clone();
    let legal = s.net.hq_vault_recipient("legal");
    let forger = new_key();
    let forged = forge(
        &forger,
        &fresh_id(0x51),
        &s.case.id.to_string(),
        forged_case_content(&s.case, "closed"),
        &legal,
        |r| r.author = s.ea.device_id.clone(),
    );
    let a_id = s.ea.device_id.clone();
    let liar = Liar::new(&s.net.http, move |page, _| {
        let mut altered = victim.clone();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&altered.payload)
            .unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        altered.payload = b64(&bytes);
        altered.seq = page.next_after + 1;
        page.envelopes.push(altered);
        page.envelopes.push(PulledEnvelope {
            seq: page.next_after + 2,
            id: fresh_id(0x51),
            sender: a_id.clone(),
            payload: forged.clone(),
        });
        page.next_after += 2;
    });
    let r = sync::sync_once(&hq, &liar).unwrap();
    assert_eq!((r.pulled, r.quarantined), (0, 2), "{r:?}");
    let mut why = reasons(&hq);
    why.sort();
    assert_eq!(why, ["undecryptable", "wrong_author"], "{why:?}");
    // The kept original of the altered id is untouched; the forgery is kept as quarantined.
    let after = sync::hq::originals(&hq).unwrap();
    let original = after.iter().find(|o| o.envelope_id == applied_id).unwrap();
    assert_eq!(original.payload, victim_payload);
    assert_eq!(original.status, sync::hq::OriginalStatus::Applied);
    let forged_kept = after
        .iter()
        .find(|o| o.envelope_id == fresh_id(0x51))
        .unwrap();
    assert_eq!(forged_kept.status, sync::hq::OriginalStatus::Quarantined);
    assert_eq!(after.len(), delivered.len() + 1);
    // Nothing forged was applied.
    assert_eq!(
        cases::get_case(&hq, s.case.id).unwrap().fields["status"].value,
        "referred"
    );
    assert_eq!(
        sync::enrollment(&hq).unwrap().unwrap().device_id,
        ehq.device_id
    );
}
