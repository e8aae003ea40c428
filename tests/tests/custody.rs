//! Enrollment with the relay URL signed into the code, audit entries and withdrawal notices
//! travelling to HQ, the receive-side chain rule, and custody verification (`verify_custody`),
//! against the real relay on 127.0.0.1 with an `org init` organisation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::SecretString;
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::audit::{self, AuditEntry};
use amanat_core::names::collections::{ATTACHMENTS, AUDIT, INTERVIEWS, SYNC_APPLIED};
use amanat_core::records::attachments;
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews::{self, Interview};
use amanat_core::sync::envelope::{self, SignedRecord};
use amanat_core::sync::{
    self, CustodyItem, CustodyReason, Request, Response, SyncError, Transport, TransportError,
    WithdrawalNotice,
};
use amanat_core::testing::create_vault;
use amanat_core::{RecordId, Vault};
use amanat_protocol::{DeviceRole, EnrollRequest, Envelope, PullResponse, PushRequest};
use amanat_server::org;
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig, RunningRelay};
use amanat_transport::HttpTransport;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

const PASS: &str = "correct horse battery staple";

fn pass() -> SecretString {
    SecretString::from(PASS.to_string())
}

/// An organisation (`org init`) and a relay serving it on 127.0.0.1.
struct World {
    tmp: tempfile::TempDir,
    org_dir: PathBuf,
    rt: tokio::runtime::Runtime,
    relay: Option<RunningRelay>,
    url: String,
    http: HttpTransport,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        let org = org::init(&org_dir, &pass(), Some(10)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("relay")).unwrap();
        let storage = SqliteStorage::open(&tmp.path().join("relay")).unwrap();
        let config = RelayConfig {
            rate_per_sec: 10_000.0,
            rate_burst: 10_000.0,
            ..RelayConfig::default()
        };
        let running = rt
            .block_on(relay::start(
                "127.0.0.1:0".parse().unwrap(),
                org,
                config,
                storage,
            ))
            .unwrap();
        let url = format!("http://{}", running.addr);
        Self {
            tmp,
            org_dir,
            rt,
            relay: Some(running),
            url,
            http: HttpTransport::new(Duration::from_secs(20)),
        }
    }

    fn code(&self, role: DeviceRole, relay: Option<&str>) -> String {
        let code = org::enroll_code_for(&self.org_dir, &pass(), 3600, role, relay).unwrap();
        serde_json::to_string(&code).unwrap()
    }

    fn device(&self, name: &str) -> Vault {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        create_vault(&dir).unwrap()
    }

    fn enrolled(&self, name: &str) -> (Vault, sync::Enrollment) {
        let v = self.device(name);
        let code = self.code(DeviceRole::Field, Some(&self.url));
        let e = sync::enroll_with_code(&v, &code, &self.http).unwrap();
        (v, e)
    }

    fn group_identity(&self, group: &str) -> age::x25519::Identity {
        let ct =
            std::fs::read(self.org_dir.join("groups").join(format!("{group}.key.age"))).unwrap();
        let plain = age::decrypt(&age::scrypt::Identity::new(pass()), &ct).unwrap();
        std::str::from_utf8(&plain).unwrap().parse().unwrap()
    }

    fn raw(&self, key: &Ed25519KeyPair, method: &str, path: &str, body: Vec<u8>) -> Response {
        let now = relay::now_ms();
        let h = amanat_protocol::sign_request(key, method, path, now, &body).unwrap();
        let headers = h
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(std::iter::once((
                "content-type".to_string(),
                "application/json".to_string(),
            )))
            .collect();
        self.http
            .send(&Request {
                method: method.into(),
                base_url: self.url.clone(),
                path: path.into(),
                headers,
                body,
            })
            .unwrap()
    }

    /// A bare key enrolled with `role` (an HQ installation, or a scripted field device).
    fn raw_device(&self, role: DeviceRole) -> (Ed25519KeyPair, age::x25519::Identity) {
        let key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        let identity = age::x25519::Identity::generate();
        let code = org::enroll_code(&self.org_dir, &pass(), 3600, role).unwrap();
        let body = serde_json::to_vec(&EnrollRequest {
            code,
            signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
            age_recipient: identity.to_public().to_string(),
        })
        .unwrap();
        assert_eq!(self.raw(&key, "POST", "/v1/enroll", body).status, 200);
        (key, identity)
    }

    /// Every envelope routed to HQ: (id, payload).
    fn hq_envelopes(&self, key: &Ed25519KeyPair) -> Vec<(String, Vec<u8>)> {
        let resp = self.raw(key, "GET", "/v1/envelopes?after=0&limit=1000", Vec::new());
        assert_eq!(resp.status, 200);
        let page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
        page.envelopes
            .into_iter()
            .map(|e| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(e.payload)
                    .unwrap();
                (e.id, bytes)
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            let _ = self.rt.block_on(r.stop());
        }
    }
}

/// Counts requests, so a test can prove nothing was sent.
struct Counting<'a> {
    inner: &'a HttpTransport,
    sent: Mutex<Vec<Request>>,
}

impl Transport for Counting<'_> {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.sent.lock().unwrap().push(request.clone());
        self.inner.send(request)
    }
}

#[test]
fn enrollment_takes_the_relay_url_signed_into_the_code() {
    let w = World::new();
    let counting = Counting {
        inner: &w.http,
        sent: Mutex::new(Vec::new()),
    };
    // A code naming the relay: given another URL beside it, nothing is sent, nothing stored.
    let v = w.device("a");
    let code = w.code(DeviceRole::Field, Some(&w.url));
    assert!(matches!(
        sync::enroll(&v, &code, "http://127.0.0.1:9", &counting),
        Err(SyncError::RelayUrlMismatch)
    ));
    assert!(counting.sent.lock().unwrap().is_empty());
    assert!(sync::enrollment(&v).unwrap().is_none());
    // The same relay given again (trailing slash) is fine; the code alone is enough too.
    let e = sync::enroll(&v, &code, &format!("{}/", w.url), &counting).unwrap();
    assert_eq!(e.relay_url, w.url);
    assert_eq!(counting.sent.lock().unwrap().len(), 1);
    let b = w.device("b");
    let e = sync::enroll_with_code(&b, &w.code(DeviceRole::Field, Some(&w.url)), &w.http).unwrap();
    assert_eq!(e.relay_url, w.url);
    assert_eq!(sync::enrollment(&b).unwrap().unwrap().relay_url, w.url);
    // A URL swapped inside the code breaks the organisation's signature: the relay refuses it.
    let c = w.device("c");
    let mut forged: serde_json::Value =
        serde_json::from_str(&w.code(DeviceRole::Field, Some("https://relay.example.org")))
            .unwrap();
    forged["relay_url"] = serde_json::Value::String(w.url.clone());
    match sync::enroll_with_code(&c, &forged.to_string(), &w.http) {
        Err(SyncError::Rejected { status: 403, code }) => assert_eq!(code, "invalid_org_signature"),
        other => panic!("{other:?}"),
    }
    // A code without a URL keeps working where the URL is given, and only there.
    let old = w.code(DeviceRole::Field, None);
    assert!(!old.contains("relay_url"));
    assert!(matches!(
        sync::enroll_with_code(&c, &old, &w.http),
        Err(SyncError::NoRelayUrl)
    ));
    sync::enroll(&c, &old, &w.url, &w.http).unwrap();
}

fn answers() -> Answers {
    [
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
        ("hours_per_day", AnswerValue::Integer(14)),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

#[test]
fn audit_entries_and_the_signed_withdrawal_notice_reach_hq_only() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (hq_key, _) = w.raw_device(DeviceRole::Hq);
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "ru",
        &[
            Scope::Interview,
            Scope::ShareCaseworkers,
            Scope::ShareResearch,
        ],
    )
    .unwrap();
    sync::share_case(&a, case.id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    sync::share_case(&b, case.id, &ea.signing_public_key, &ea.age_recipient).unwrap();
    consent::withdraw(&a, case.id, "worker-17", "ru", &[Scope::ShareResearch]).unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(sync::pending(&a).unwrap(), 0);

    let caseworkers = w.group_identity("caseworkers");
    let research = w.group_identity("research");
    let legal = w.group_identity("legal");
    let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
    let mut audit_seqs = Vec::new();
    let mut notices = Vec::new();
    for (id, payload) in w.hq_envelopes(&hq_key) {
        let by_caseworkers = envelope::open(&payload, &caseworkers).ok();
        let by_research = envelope::open(&payload, &research).ok();
        let rec: SignedRecord = by_caseworkers.clone().or(by_research.clone()).unwrap();
        envelope::verify(&rec).unwrap();
        assert_eq!(
            rec.author, ea.device_id,
            "signed by the device like every envelope"
        );
        assert_eq!(rec.envelope_id, id);
        *kinds.entry(rec.kind.clone()).or_default() += 1;
        match rec.kind.as_str() {
            "audit" => {
                assert!(by_research.is_none(), "audit goes to caseworkers only");
                let entry: AuditEntry = serde_json::from_str(&rec.content).unwrap();
                audit_seqs.push(entry.seq);
            }
            "withdrawal" => {
                // Every group opens it, the withdrawn one included.
                assert!(by_caseworkers.is_some() && by_research.is_some());
                assert!(envelope::open(&payload, &legal).is_ok());
                notices.push(serde_json::from_str::<WithdrawalNotice>(&rec.content).unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(kinds.get("withdrawal"), Some(&1));
    assert_eq!(notices[0].case_id, case.id.to_string());
    assert_eq!(notices[0].consent_version, 2);
    assert_eq!(
        notices[0].withdrawn.iter().collect::<Vec<_>>(),
        [&Scope::ShareResearch]
    );
    assert!(!notices[0].scopes.contains(&Scope::ShareResearch));
    // The whole audit chain of A arrived (unlock at creation, case, consent, withdrawal …).
    audit_seqs.sort_unstable();
    let local = audit::entries(a.store().unwrap().as_ref()).unwrap();
    assert_eq!(audit_seqs, local.iter().map(|e| e.seq).collect::<Vec<_>>());
    // The team device gets the case records but neither audit entries nor the notice.
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.quarantined, 0, "{report:?}");
    assert_eq!(report.pulled, 3, "case, consent v1, consent v2: {report:?}");
    assert!(sync::verify_custody(&b).unwrap().is_clean());
}

/// A scripted author (bare key) enrolled as a field device whose envelopes B trusts.
struct Author {
    key: Ed25519KeyPair,
    device_id: String,
}

impl Author {
    fn envelope(
        &self,
        case: &cases::Case,
        version: u64,
        prev: Option<&str>,
        to: &sync::Enrollment,
    ) -> (Envelope, String) {
        let mut r = SignedRecord {
            format: envelope::FORMAT,
            envelope_id: uuid_v7(),
            kind: "case".into(),
            record_id: case.id.to_string(),
            version,
            hlc: case.created,
            author: String::new(),
            author_key: String::new(),
            prev_hash: prev.map(str::to_string),
            content_hash: String::new(),
            content: serde_json::to_string(case).unwrap(),
            signature: String::new(),
        };
        envelope::sign(&mut r, &self.key);
        let recipient: age::x25519::Recipient = to.age_recipient.parse().unwrap();
        let payload = envelope::seal(&r, &[recipient]).unwrap();
        (
            Envelope {
                id: r.envelope_id.clone(),
                recipients: vec![to.device_id.clone()],
                payload: base64::engine::general_purpose::STANDARD.encode(payload),
            },
            r.content_hash,
        )
    }
}

fn uuid_v7() -> String {
    let mut random = [0u8; 10];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
    let ms = relay::now_ms();
    // UUIDv7 layout by hand: 48-bit ms, version 7, variant 10.
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&random);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let h = amanat_protocol::to_hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[test]
fn receivers_check_each_authors_chain_a_gap_is_applied_a_fork_is_quarantined() {
    let w = World::new();
    let (b, eb) = w.enrolled("b");
    let (key, identity) = w.raw_device(DeviceRole::Field);
    let author = Author {
        device_id: amanat_protocol::device_id(key.public_key().as_ref()),
        key,
    };
    // Real case snapshots from a scratch vault, so B can apply them.
    let scratch = w.device("scratch");
    let case = cases::create_case(&scratch).unwrap();
    sync::share_case(
        &b,
        case.id,
        &amanat_protocol::to_hex(author.key.public_key().as_ref()),
        &identity.to_public().to_string(),
    )
    .unwrap();
    let snapshot = |field: &str| {
        cases::set_field(&scratch, case.id, "status", field).unwrap();
        cases::get_case(&scratch, case.id).unwrap()
    };
    let s1 = snapshot("open");
    let s2 = snapshot("referred");
    let s3 = snapshot("closed");
    let s4 = snapshot("archived");
    let push = |envs: Vec<Envelope>| {
        let body = serde_json::to_vec(&PushRequest { envelopes: envs }).unwrap();
        assert_eq!(
            w.raw(&author.key, "POST", "/v1/envelopes", body).status,
            200
        );
    };
    let (e1, h1) = author.envelope(&s1, 1, None, &eb);
    let (e2, h2) = author.envelope(&s2, 2, Some(&h1), &eb);
    // A second, different successor of version 1, signed by the same author: a fork.
    let (fork, _) = author.envelope(&s3, 2, Some(&h1), &eb);
    // Version 3 never arrives (the author discarded it, wedged); version 4 names it.
    let (_, h3) = author.envelope(&s3, 3, Some(&h2), &eb);
    let (e4, _) = author.envelope(&s4, 4, Some(&h3), &eb);
    // A restarted chain (no predecessor) while B holds one: a fork too.
    let (restart, _) = author.envelope(&s4, 5, None, &eb);
    let fork_id = fork.id.clone();
    let restart_id = restart.id.clone();
    push(vec![e1, e2, fork, e4, restart]);
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!((report.pulled, report.quarantined), (3, 2), "{report:?}");
    let q = sync::quarantined(&b).unwrap();
    let quarantined: Vec<(&str, &str)> = q
        .iter()
        .map(|q| (q.envelope_id.as_str(), q.reason.as_str()))
        .collect();
    assert_eq!(
        quarantined,
        [
            (fork_id.as_str(), "chain_broken"),
            (restart_id.as_str(), "chain_broken")
        ]
    );
    assert_eq!(
        cases::get_case(&b, case.id).unwrap().fields["status"].value,
        "archived"
    );
    let report = sync::verify_custody(&b).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.applied_envelopes, report.chain_gaps), (3, 1));
    assert_eq!(author.device_id.len(), 32);

    // Forge a kept record through the store API (a bumped version, re-sealed validly): custody
    // names that envelope, by id, as a bad signature.
    let store = b.store().unwrap();
    let forged_id = store
        .write(|tx| {
            let ids = tx.list(SYNC_APPLIED)?;
            let rec = tx.require(SYNC_APPLIED, ids[1])?;
            let mut v: serde_json::Value = serde_json::from_slice(rec.value.expose()).unwrap();
            v["version"] = serde_json::json!(7);
            tx.update(
                SYNC_APPLIED,
                ids[1],
                rec.version,
                &serde_json::to_vec(&v).unwrap(),
            )?;
            Ok::<_, amanat_core::store::StoreError>(v["envelope_id"].as_str().unwrap().to_string())
        })
        .unwrap();
    let report = sync::verify_custody(&b).unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let f = &report.failures[0];
    assert_eq!(
        (f.item, f.id.as_str(), f.reason),
        (
            CustodyItem::AppliedEnvelope,
            forged_id.as_str(),
            CustodyReason::AppliedBadSignature
        )
    );
    assert_eq!(f.reason.code(), "applied_bad_signature");

    // Every kept envelope of the chain removed: the stored chain state still names them.
    store
        .write(|tx| {
            for id in tx.list(SYNC_APPLIED)? {
                tx.delete(SYNC_APPLIED, id)?;
            }
            Ok::<_, amanat_core::store::StoreError>(())
        })
        .unwrap();
    let report = sync::verify_custody(&b).unwrap();
    assert_eq!(report.applied_envelopes, 0);
    let reasons: Vec<_> = report.failures.iter().map(|f| (f.item, f.reason)).collect();
    assert_eq!(
        reasons,
        [(
            CustodyItem::AppliedEnvelope,
            CustodyReason::AppliedChainBroken
        )]
    );
}

/// A vault holding everything custody walks: audit chain, a submitted interview and its
/// amendment, and two attachments.
fn full_vault(dir: &std::path::Path) -> (Vault, Interview, Interview, Vec<String>) {
    let v = create_vault(dir).unwrap();
    let hq = age::x25519::Identity::generate();
    attachments::set_org_recipients(
        &v,
        &[("caseworkers".to_string(), hq.to_public().to_string())].into(),
    )
    .unwrap();
    let case = cases::create_case(&v).unwrap();
    consent::record_consent(
        &v,
        case.id,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::Photos, Scope::ShareCaseworkers],
    )
    .unwrap();
    let i = interviews::start(&v, case.id, "trafficking_screening", 1, "uz").unwrap();
    interviews::save_answers(&v, &i.id, &answers()).unwrap();
    let mut files = Vec::new();
    for (n, bytes) in [
        (1, b"first photo bytes".as_slice()),
        (2, b"second photo".as_slice()),
    ] {
        let path = dir.join(format!("camera-{n}.jpg"));
        std::fs::write(&path, bytes).unwrap();
        files.push(
            attachments::import_file(&v, &i.id, "document_photo", "image/jpeg", &path)
                .unwrap()
                .id,
        );
    }
    let original = interviews::submit(&v, &i.id).unwrap();
    let amendment = interviews::amend(&v, &original.id).unwrap();
    let amendment = interviews::submit(&v, &amendment.id).unwrap();
    (v, original, amendment, files)
}

fn one_failure(v: &Vault) -> (CustodyItem, String, CustodyReason) {
    let report = sync::verify_custody(v).unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let f = report.failures[0].clone();
    (f.item, f.id, f.reason)
}

/// Rewrites one stored JSON record through the store API (re-sealed validly: only the chains can
/// tell), returns the old bytes to restore.
fn rewrite(
    v: &Vault,
    c: amanat_core::Collection,
    id: RecordId,
    f: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    v.store()
        .unwrap()
        .write(|tx| {
            let rec = tx.require(c, id)?;
            let old = rec.value.expose().to_vec();
            let mut value: serde_json::Value = serde_json::from_slice(&old).unwrap();
            f(&mut value);
            tx.update(c, id, rec.version, &serde_json::to_vec(&value).unwrap())?;
            Ok::<_, amanat_core::store::StoreError>(old)
        })
        .unwrap()
}

fn restore(v: &Vault, c: amanat_core::Collection, id: RecordId, old: &[u8]) {
    v.store()
        .unwrap()
        .write(|tx| {
            let rec = tx.require(c, id)?;
            tx.update(c, id, rec.version, old)
        })
        .unwrap();
}

#[test]
fn custody_verification_names_each_kind_of_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let (v, original, amendment, files) = full_vault(tmp.path());
    let clean = sync::verify_custody(&v).unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert!(clean.audit_entries >= 5);
    assert_eq!((clean.interviews, clean.attachments), (2, 2));

    // 1. A byte of a sealed audit entry changed (its kind), written back through the store API.
    let third = v
        .store()
        .unwrap()
        .read(|tx| {
            for id in tx.list(AUDIT)? {
                let (e, _): (AuditEntry, u64) = tx.require_json(AUDIT, id)?;
                if e.seq == 3 {
                    return Ok(id);
                }
            }
            Err(amanat_core::store::StoreError::NotFound)
        })
        .unwrap();
    let old = rewrite(&v, AUDIT, third, |e| {
        e["at_ms"] = serde_json::json!(e["at_ms"].as_u64().unwrap() + 1)
    });
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::AuditEntry,
            "3".to_string(),
            CustodyReason::AuditEntryAltered
        )
    );
    restore(&v, AUDIT, third, &old);
    assert!(sync::verify_custody(&v).unwrap().is_clean());

    // 2. An answer of the submitted original altered.
    let oid = RecordId::parse(&original.id).unwrap();
    let old = rewrite(&v, INTERVIEWS, oid, |i| {
        i["language"] = serde_json::json!("ru");
    });
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::Interview,
            original.id.clone(),
            CustodyReason::InterviewAltered
        )
    );
    restore(&v, INTERVIEWS, oid, &old);

    // 3. The amendment relinked to another predecessor by a forger who recomputed its hash: its
    //    own hash holds, the link does not.
    let aid = RecordId::parse(&amendment.id).unwrap();
    let mut forged = amendment.clone();
    forged.prev_hash = Some("ab".repeat(32));
    forged.hash = Some(interviews::content_hash(&forged).unwrap());
    let old = rewrite(&v, INTERVIEWS, aid, |i| {
        i["prev_hash"] = serde_json::json!(forged.prev_hash);
        i["hash"] = serde_json::json!(forged.hash);
    });
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::Interview,
            amendment.id.clone(),
            CustodyReason::AmendmentChainBroken
        )
    );
    restore(&v, INTERVIEWS, aid, &old);

    // 4. Attachment files: one swapped for the other (both decrypt), then garbage, then gone.
    let path = |id: &str| amanat_core::vault::layout::attachment_path(v.dir(), id);
    let kept = std::fs::read(path(&files[0])).unwrap();
    std::fs::copy(path(&files[1]), path(&files[0])).unwrap();
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::Attachment,
            files[0].clone(),
            CustodyReason::AttachmentHashMismatch
        )
    );
    std::fs::write(path(&files[0]), b"not an age file").unwrap();
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::Attachment,
            files[0].clone(),
            CustodyReason::AttachmentUnreadable
        )
    );
    std::fs::remove_file(path(&files[0])).unwrap();
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::Attachment,
            files[0].clone(),
            CustodyReason::AttachmentMissing
        )
    );
    std::fs::write(path(&files[0]), kept).unwrap();
    assert!(sync::verify_custody(&v).unwrap().is_clean());

    // 5. The answered attachment's file and record replaced together (the record's hash made to
    //    match the new file): the submitted interview's signed answer names the old hash.
    let answered = &files[1];
    let kept = std::fs::read(path(answered)).unwrap();
    std::fs::copy(path(&files[0]), path(answered)).unwrap();
    let first_hash = attachments::info(&v, &files[0]).unwrap().sha256;
    let aid = RecordId::parse(answered).unwrap();
    let old = rewrite(&v, ATTACHMENTS, aid, |a| {
        a["sha256"] = serde_json::json!(first_hash)
    });
    assert_eq!(
        one_failure(&v),
        (
            CustodyItem::Attachment,
            answered.clone(),
            CustodyReason::AttachmentRecordMismatch
        )
    );
    restore(&v, ATTACHMENTS, aid, &old);
    std::fs::write(path(answered), kept).unwrap();
    let again = sync::verify_custody(&v).unwrap();
    assert!(again.is_clean(), "{again:?}");
    // The report carries ids and codes only.
    assert!(!format!("{again:?}").contains("telegram"));
}
