//! The device's sync engine (phase 1) against the real relay on 127.0.0.1, with an organisation
//! made by `org init` (the library function the `amanat` binary runs) and the built-in HTTP
//! transport. Test doubles wrap that transport to drop, rewrite or forge answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg;

use age::secrecy::SecretString;
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::outbox::EntryKind;
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::sync::envelope::{self, SignedRecord};
use amanat_core::sync::{self, Request, Response, SyncError, Transport, TransportError};
use amanat_core::testing::create_vault;
use amanat_core::Vault;
use amanat_protocol::{DeviceRole, EnrollRequest, OrgPublic, PullResponse};
use amanat_server::org;
use amanat_server::relay::{
    self, postgres::PgStorage, sqlite::SqliteStorage, RelayConfig, RunningRelay,
};
use amanat_transport::HttpTransport;
use base64::Engine as _;
use pg::Backend;
use ring::signature::KeyPair;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const PASS: &str = "correct horse battery staple";

/// An organisation (`org init`) and a relay serving it on 127.0.0.1.
struct World {
    tmp: tempfile::TempDir,
    org_dir: PathBuf,
    org: OrgPublic,
    rt: tokio::runtime::Runtime,
    relay: Option<RunningRelay>,
    url: String,
    http: HttpTransport,
}

impl World {
    fn new() -> Self {
        Self::with_config(RelayConfig {
            rate_per_sec: 10_000.0,
            rate_burst: 10_000.0,
            ..RelayConfig::default()
        })
    }

    fn with_config(config: RelayConfig) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        let org = org::init(&org_dir, &pass(), Some(10)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("relay")).unwrap();
        // The relay's backend: SQLite, or PostgreSQL in the `postgres::` twins (tests/tests/pg).
        let listen = "127.0.0.1:0".parse().unwrap();
        let running = match pg::backend() {
            Backend::Sqlite => {
                let storage = SqliteStorage::open(&tmp.path().join("relay")).unwrap();
                rt.block_on(relay::start(listen, org.clone(), config, storage))
            }
            Backend::Postgres => {
                let url = pg::fresh_database();
                rt.block_on(async {
                    let storage = PgStorage::connect(&url, 8).await.unwrap();
                    relay::start(listen, org.clone(), config, storage).await
                })
            }
        }
        .unwrap();
        let url = format!("http://{}", running.addr);
        Self {
            tmp,
            org_dir,
            org,
            rt,
            relay: Some(running),
            url,
            http: HttpTransport::new(Duration::from_secs(20)),
        }
    }

    fn code(&self, role: DeviceRole) -> String {
        let code = org::enroll_code(&self.org_dir, &pass(), 3600, role).unwrap();
        serde_json::to_string(&code).unwrap()
    }

    fn device(&self, name: &str) -> Vault {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        create_vault(&dir).unwrap()
    }

    fn enrolled(&self, name: &str) -> (Vault, sync::Enrollment) {
        let v = self.device(name);
        let e = sync::enroll(&v, &self.code(DeviceRole::Field), &self.url, &self.http).unwrap();
        (v, e)
    }

    /// A group identity as `org init` wrote it (age scrypt under the passphrase).
    fn group_identity(&self, group: &str) -> age::x25519::Identity {
        let ct =
            std::fs::read(self.org_dir.join("groups").join(format!("{group}.key.age"))).unwrap();
        let plain = age::decrypt(&age::scrypt::Identity::new(pass()), &ct).unwrap();
        std::str::from_utf8(&plain).unwrap().parse().unwrap()
    }

    /// Raw signed request with a bare Ed25519 key (an HQ installation without a vault).
    fn raw(
        &self,
        key: &ring::signature::Ed25519KeyPair,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Response {
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

    /// Enrolls an HQ installation (role `hq`, org-signed) and returns its key.
    fn hq(&self) -> ring::signature::Ed25519KeyPair {
        let key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        let code = org::enroll_code(&self.org_dir, &pass(), 3600, DeviceRole::Hq).unwrap();
        let body = serde_json::to_vec(&EnrollRequest {
            code,
            signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
            age_recipient: age::x25519::Identity::generate().to_public().to_string(),
        })
        .unwrap();
        assert_eq!(self.raw(&key, "POST", "/v1/enroll", body).status, 200);
        key
    }

    /// Every envelope routed to HQ, as (id, payload bytes).
    fn hq_envelopes(&self, key: &ring::signature::Ed25519KeyPair) -> Vec<(String, Vec<u8>)> {
        let resp = self.raw(key, "GET", "/v1/envelopes?after=0&limit=1000", Vec::new());
        assert_eq!(resp.status, 200);
        let page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
        page.envelopes
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    base64::engine::general_purpose::STANDARD
                        .decode(e.payload)
                        .unwrap(),
                )
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

fn pass() -> SecretString {
    SecretString::from(PASS.to_string())
}

/// Opens a payload with one group identity; `None` if that group was not a recipient.
fn open_as(payload: &[u8], id: &age::x25519::Identity) -> Option<SignedRecord> {
    let r = envelope::open(payload, id).ok()?;
    envelope::verify(&r).unwrap();
    Some(r)
}

/// Wraps the real transport: records requests, and lets a test rewrite or drop answers.
struct Double<'a, F: Fn(&Request, Response) -> Result<Response, TransportError> + Send + Sync> {
    inner: &'a HttpTransport,
    hook: F,
    seen: Mutex<Vec<Request>>,
}

impl<'a, F: Fn(&Request, Response) -> Result<Response, TransportError> + Send + Sync>
    Double<'a, F>
{
    fn new(inner: &'a HttpTransport, hook: F) -> Self {
        Self {
            inner,
            hook,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn pushes(&self) -> Vec<Request> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/envelopes")
            .cloned()
            .collect()
    }
}

impl<F: Fn(&Request, Response) -> Result<Response, TransportError> + Send + Sync> Transport
    for Double<'_, F>
{
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.seen.lock().unwrap().push(request.clone());
        let resp = self.inner.send(request)?;
        (self.hook)(request, resp)
    }
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

fn vault_files_exist(dir: &Path) -> bool {
    dir.join("vault").join("keyslots.json").exists()
}

#[test]
fn enrolls_against_the_real_relay_with_an_org_init_organisation() {
    let w = World::new();
    let v = w.device("a");
    assert!(matches!(
        sync::sync_once(&v, &w.http),
        Err(SyncError::NotEnrolled)
    ));
    let code = w.code(DeviceRole::Field);
    let e = sync::enroll(&v, &code, &format!("{}/", w.url), &w.http).unwrap();
    assert_eq!(e.org_fingerprint, w.org.fingerprint);
    assert_eq!(e.role, DeviceRole::Field);
    assert_eq!(e.relay_url, w.url);
    assert_eq!(sync::enrollment(&v).unwrap(), Some(e.clone()));
    // The key is registered: a signed sync works (nothing queued, nothing routed yet).
    let report = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!(report.interrupted, None);
    // Once only, and the code is single-use for another device too.
    assert!(matches!(
        sync::enroll(&v, &code, &w.url, &w.http),
        Err(SyncError::AlreadyEnrolled)
    ));
    let other = w.device("b");
    match sync::enroll(&other, &code, &w.url, &w.http) {
        Err(SyncError::Rejected { status: 409, code }) => assert_eq!(code, "code_used"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sync::enrollment(&other).unwrap(), None);
    // Plain http to a non-loopback address is refused by the transport, typed.
    let third = w.device("c");
    assert!(matches!(
        sync::enroll(
            &third,
            &w.code(DeviceRole::Field),
            "http://192.0.2.7:8443",
            &w.http
        ),
        Err(SyncError::Transport(TransportError::InsecureUrl))
    ));
}

#[test]
fn a_substituted_org_pub_is_refused_and_nothing_is_stored() {
    let w = World::new();
    let attacker = age::x25519::Identity::generate().to_public().to_string();
    // 1. A consistent but different org.pub (own fingerprint recomputed): not the code's.
    let swap = Double::new(&w.http, |req, mut resp| {
        if req.path == "/v1/enroll" && resp.status == 200 {
            let mut v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            let mut org: OrgPublic = serde_json::from_value(v["org"].clone()).unwrap();
            org.groups.insert("legal".into(), attacker.clone());
            org.fingerprint = org.compute_fingerprint();
            v["org"] = serde_json::to_value(&org).unwrap();
            resp.body = serde_json::to_vec(&v).unwrap();
        }
        Ok(resp)
    });
    let v = w.device("a");
    assert!(matches!(
        sync::enroll(&v, &w.code(DeviceRole::Field), &w.url, &swap),
        Err(SyncError::OrgMismatch)
    ));
    assert_eq!(sync::enrollment(&v).unwrap(), None);
    assert!(matches!(
        sync::sync_once(&v, &w.http),
        Err(SyncError::NotEnrolled)
    ));
    // 2. The same groups swapped but the code's fingerprint left in place: fails the recomputation.
    let keep_fp = Double::new(&w.http, |req, mut resp| {
        if req.path == "/v1/enroll" && resp.status == 200 {
            let mut v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            v["org"]["groups"]["caseworkers"] = serde_json::Value::String(attacker.clone());
            resp.body = serde_json::to_vec(&v).unwrap();
        }
        Ok(resp)
    });
    let v2 = w.device("b");
    assert!(matches!(
        sync::enroll(&v2, &w.code(DeviceRole::Field), &w.url, &keep_fp),
        Err(SyncError::OrgMismatch)
    ));
    assert_eq!(sync::enrollment(&v2).unwrap(), None);
}

#[test]
fn a_retry_after_a_lost_answer_resends_the_same_envelopes_and_the_relay_says_duplicate() {
    let w = World::new();
    let (v, _) = w.enrolled("a");
    let case = cases::create_case(&v).unwrap();
    cases::set_field(&v, case.id, "status", "open").unwrap();
    consent::record_consent(&v, case.id, "worker-17", "ru", &[Scope::ShareLegal]).unwrap();
    let dropped = Mutex::new(false);
    let lossy = Double::new(&w.http, |req, resp| {
        // The relay stored the batch; the answer is lost on the way back, once.
        let mut d = dropped.lock().unwrap();
        if req.path == "/v1/envelopes" && req.method == "POST" && !*d {
            *d = true;
            return Err(TransportError::Io);
        }
        Ok(resp)
    });
    let first = sync::sync_once(&v, &lossy).unwrap();
    assert_eq!(
        first.interrupted,
        Some(sync::Interruption::Transport(TransportError::Io))
    );
    // Three data entries, the two audit entries of the audited actions (case creation,
    // consent) that travel with them, and the device's profile for HQ.
    assert_eq!(
        (first.pushed, first.pending),
        (0, 6),
        "nothing leaves without an ack"
    );
    let second = sync::sync_once(&v, &lossy).unwrap();
    assert_eq!(second.interrupted, None);
    assert_eq!(
        (second.pushed, second.duplicates, second.pending),
        (6, 6, 0)
    );
    let pushes = lossy.pushes();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0].body, pushes[1].body, "identical ids and bytes");
    let ids: Vec<String> = serde_json::from_slice::<amanat_protocol::PushRequest>(&pushes[0].body)
        .unwrap()
        .envelopes
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 6);
    assert!(
        ids.iter().all(|id| id.as_bytes()[14] == b'7'),
        "UUIDv7: {ids:?}"
    );
    // Nothing left to send: a third run pushes nothing.
    let third = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!((third.pushed, third.pending), (0, 0));
}

#[test]
fn a_submitted_interview_reaches_hq_for_the_consented_group_only_and_withdrawal_cuts_new_envelopes()
{
    let w = World::new();
    let hq = w.hq();
    let (v, e) = w.enrolled("a");
    let case = cases::create_case(&v).unwrap();
    consent::record_consent(
        &v,
        case.id,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::ShareLegal, Scope::ShareResearch],
    )
    .unwrap();
    let i = interviews::start(&v, case.id, "trafficking_screening", 1, "uz").unwrap();
    interviews::save_answers(&v, &i.id, &answers()).unwrap();
    let submitted = interviews::submit(&v, &i.id).unwrap();
    let _draft = interviews::start(&v, case.id, "trafficking_screening", 1, "uz").unwrap();
    // Identity without caseworker consent: withheld, never sent.
    cases::set_identity_field(&v, case.id, "name", "Гульнара").unwrap();
    let report = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!(report.interrupted, None);
    assert_eq!((report.withheld, report.pending), (1, 0));

    let legal = w.group_identity("legal");
    let research = w.group_identity("research");
    let caseworkers = w.group_identity("caseworkers");
    let law = w.group_identity("law_enforcement");
    // Audit entries and withdrawal notices (HQ-only kinds, tests/tests/custody.rs) set aside.
    let data_envelopes = || {
        w.hq_envelopes(&hq)
            .into_iter()
            .filter(|(_, p)| {
                envelope::open(p, &caseworkers).map_or(true, |r| {
                    r.kind != "audit" && r.kind != "withdrawal" && r.kind != "device"
                })
            })
            .collect::<Vec<_>>()
    };
    let envs = data_envelopes();
    assert_eq!(report.pushed as usize, w.hq_envelopes(&hq).len());
    assert_eq!(
        envs.len(),
        3,
        "case, consent, submitted interview; no draft, no identity"
    );
    let interview = envs
        .iter()
        .filter_map(|(id, p)| open_as(p, &legal).map(|r| (id, r)))
        .find(|(_, r)| r.kind == "interview")
        .expect("the legal group opens the interview");
    assert_eq!(interview.0, &interview.1.envelope_id);
    assert_eq!(interview.1.record_id, submitted.id);
    assert_eq!(interview.1.author, e.device_id);
    let content: interviews::Interview = serde_json::from_str(&interview.1.content).unwrap();
    assert_eq!(content.hash, submitted.hash);
    for (_, payload) in &envs {
        assert!(open_as(payload, &legal).is_some());
        assert!(open_as(payload, &research).is_some());
        assert!(
            open_as(payload, &caseworkers).is_none(),
            "no caseworker consent"
        );
        assert!(
            open_as(payload, &law).is_none(),
            "no law-enforcement consent"
        );
    }

    // Withdrawal of research: envelopes made from now on exclude it at once.
    consent::withdraw(&v, case.id, "worker-17", "ru", &[Scope::ShareResearch]).unwrap();
    cases::set_field(&v, case.id, "status", "referred").unwrap();
    let report = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!(report.pending, 0);
    let envs = data_envelopes();
    assert_eq!(envs.len(), 5);
    let kinds: Vec<String> = envs[3..]
        .iter()
        .map(|(_, p)| open_as(p, &legal).unwrap().kind)
        .collect();
    assert_eq!(kinds, ["consent", "case"]);
    for (_, payload) in &envs[3..] {
        assert!(
            open_as(payload, &research).is_none(),
            "withdrawn group excluded"
        );
    }

    // Caseworker consent: the identity travels in its own envelope, to caseworkers only.
    consent::record_consent(
        &v,
        case.id,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::ShareLegal, Scope::ShareCaseworkers],
    )
    .unwrap();
    cases::set_identity_field(&v, case.id, "name", "Гульнара").unwrap();
    sync::sync_once(&v, &w.http).unwrap();
    let envs = data_envelopes();
    let identity = &envs.last().unwrap().1;
    let r = open_as(identity, &caseworkers).expect("caseworkers open the identity");
    assert_eq!(r.kind, "identity");
    assert!(r.content.contains("Гульнара"));
    assert!(
        open_as(identity, &legal).is_none(),
        "identity goes to caseworkers only"
    );
    // The relay's copy never holds the plaintext.
    assert!(!envs.iter().any(|(_, p)| p
        .windows("Гульнара".len())
        .any(|win| win == "Гульнара".as_bytes())));
}

#[test]
fn an_envelope_the_relay_refuses_is_wedged_with_its_reason_and_does_not_block_the_rest() {
    let w = World::with_config(RelayConfig {
        rate_per_sec: 10_000.0,
        rate_burst: 10_000.0,
        max_envelope_bytes: 3000,
        ..RelayConfig::default()
    });
    let (v, _) = w.enrolled("a");
    let big = cases::create_case(&v).unwrap();
    // ~4 KiB of field: its envelope is over the relay's 3000-byte limit.
    cases::set_field(&v, big.id, "notes", &"x".repeat(4000)).unwrap();
    let small = cases::create_case(&v).unwrap();
    let report = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!(report.interrupted, None);
    // Envelopes snapshot the record when prepared: both entries of the big case (its creation
    // and the notes) carry the notes and are refused; the small case goes through.
    // (The two cases' creations are audited: their audit entries go through too, and so does
    // the device's profile for HQ.)
    assert_eq!((report.pushed, report.wedged, report.pending), (4, 2, 2));
    let wedged = sync::wedged(&v).unwrap();
    assert_eq!(
        wedged
            .iter()
            .map(|w| (w.kind, w.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            (EntryKind::Case, "envelope_too_large"),
            (EntryKind::Case, "envelope_too_large")
        ]
    );
    let (first, second) = (wedged[0].seq, wedged[1].seq);
    // A wedged entry is not retried by itself, and later entries still go.
    cases::set_field(&v, small.id, "status", "open").unwrap();
    let again = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!((again.pushed, again.wedged, again.pending), (1, 0, 2));
    // The shell may retry (same bytes, refused again) or discard.
    assert_eq!(sync::retry_wedged(&v).unwrap(), 2);
    let retried = sync::sync_once(&v, &w.http).unwrap();
    assert_eq!((retried.pushed, retried.wedged), (0, 2));
    assert!(sync::discard_wedged(&v, first).unwrap());
    assert!(sync::discard_wedged(&v, second).unwrap());
    assert!(!sync::discard_wedged(&v, second).unwrap());
    assert_eq!(sync::pending(&v).unwrap(), 0);
}

#[test]
fn a_verified_revocation_wipes_the_device() {
    let w = World::new();
    let (v, e) = w.enrolled("a");
    cases::create_case(&v).unwrap();
    let revocation = org::revoke(&w.org_dir, &pass(), &e.device_id).unwrap();
    let resp = w
        .http
        .send(&Request {
            method: "POST".into(),
            base_url: w.url.clone(),
            path: "/v1/revocations".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&revocation).unwrap(),
        })
        .unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(vault_files_exist(&w.tmp.path().join("a")));
    assert!(matches!(
        sync::sync_once(&v, &w.http),
        Err(SyncError::Revoked)
    ));
    assert!(!vault_files_exist(&w.tmp.path().join("a")));
    assert!(v.store().is_err());
}

#[test]
fn a_forged_revocation_wipes_nothing() {
    let w = World::new();
    let (v, e) = w.enrolled("a");
    let case = cases::create_case(&v).unwrap();
    // Signed by a key that is not the organisation's but naming it and this device, and a
    // genuine revocation of another device.
    let forger =
        amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
            .unwrap();
    let forged = amanat_protocol::Revocation::issue(
        &forger,
        &w.org.fingerprint,
        &e.device_id,
        1_800_000_000,
    );
    let elsewhere = org::revoke(&w.org_dir, &pass(), "00112233445566778899aabbccddeeff").unwrap();
    for revocation in [forged, elsewhere] {
        let body = serde_json::to_vec(&serde_json::json!({
            "error": "revoked_device",
            "revocation": revocation,
        }))
        .unwrap();
        let liar = Double::new(&w.http, move |_req, _resp| {
            Ok(Response {
                status: 403,
                headers: vec![],
                body: body.clone(),
            })
        });
        match sync::sync_once(&v, &liar) {
            Err(SyncError::Rejected { status: 403, code }) => assert_eq!(code, "revoked_device"),
            other => panic!("{other:?}"),
        }
        assert!(vault_files_exist(&w.tmp.path().join("a")));
        assert_eq!(cases::get_case(&v, case.id).unwrap().code, case.code);
    }
    // And the real relay still works afterwards (the case and its audit entries).
    let report = sync::sync_once(&v, &w.http).unwrap();
    assert!(report.pushed >= 1);
    assert_eq!(report.pending, 0);
}

#[test]
fn a_team_device_pulls_verifies_and_applies_once_and_quarantines_what_fails() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (c, ec) = w.enrolled("c");
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(&a, case.id, "worker-17", "ru", &[Scope::Interview]).unwrap();
    cases::set_field(&a, case.id, "status", "open").unwrap();
    // A shares the case with B; B registers A (it trusts A's key).
    sync::share_case(&a, case.id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    sync::share_case(&b, case.id, &ea.signing_public_key, &ea.age_recipient).unwrap();
    // C shares a case of its own with B, but B never registered C.
    let c_case = cases::create_case(&c).unwrap();
    sync::share_case(&c, c_case.id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    // Three data envelopes with the audit entries of the audited actions (case, consent), and
    // each device's profile for HQ.
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pushed, 6);
    assert_eq!(sync::sync_once(&c, &w.http).unwrap().pushed, 3);

    // The relay (or the network) alters the first envelope B pulls.
    let tamper = Double::new(&w.http, |req, mut resp| {
        if req.method == "GET" && req.path.starts_with("/v1/envelopes") && resp.status == 200 {
            let mut page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
            if let Some(first) = page.envelopes.first_mut() {
                let mut bytes = base64::engine::general_purpose::STANDARD
                    .decode(&first.payload)
                    .unwrap();
                let n = bytes.len();
                bytes[n - 5] ^= 0x01;
                first.payload = base64::engine::general_purpose::STANDARD.encode(bytes);
            }
            resp.body = serde_json::to_vec(&page).unwrap();
        }
        Ok(resp)
    });
    let report = sync::sync_once(&b, &tamper).unwrap();
    assert_eq!(report.interrupted, None);
    assert_eq!((report.pulled, report.quarantined), (2, 2), "{report:?}");
    let q = sync::quarantined(&b).unwrap();
    let reasons: Vec<&str> = q.iter().map(|q| q.reason.as_str()).collect();
    assert_eq!(reasons, ["undecryptable", "unknown_author"]);
    assert_eq!(q[1].sender, ec.device_id);
    // The first envelope (the case's creation) was quarantined; the consent and the later case
    // envelope (a full snapshot of the case) arrived and were applied.
    let on_b = cases::get_case(&b, case.id).expect("the case exists on B");
    assert_eq!(on_b.code, case.code);
    assert_eq!(on_b.fields["status"].value, "open");
    assert_eq!(
        consent::current(&b, case.id).unwrap().unwrap().scopes.len(),
        1
    );
    assert!(
        cases::get_case(&b, c_case.id).is_err(),
        "nothing from C applied"
    );
    // Idempotent and resumable: the cursor advanced, a second run pulls nothing new.
    let again = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!((again.pulled, again.quarantined), (0, 0));
}

/// Records progress and cancels the run when `stop_at` says so.
struct Watch<'a> {
    seen: Mutex<Vec<sync::Progress>>,
    cancel: &'a sync::Cancel,
    stop_at: fn(&sync::Progress) -> bool,
}

impl sync::Observer for Watch<'_> {
    fn progress(&self, p: &sync::Progress) {
        self.seen.lock().unwrap().push(p.clone());
        if (self.stop_at)(p) {
            self.cancel.cancel();
        }
    }
}

#[test]
fn status_prepare_progress_and_cancellation_between_entries_lose_nothing() {
    let w = World::new();
    let v = w.device("a");
    // Before enrollment: changes already queue; status says not enrolled.
    let s = sync::status(&v).unwrap();
    assert_eq!((s.pending, s.enrolled, s.last_success_ms), (0, false, None));
    let case = cases::create_case(&v).unwrap();
    consent::record_consent(&v, case.id, "worker-17", "ru", &[Scope::Interview]).unwrap();
    sync::enroll(&v, &w.code(DeviceRole::Field), &w.url, &w.http).unwrap();
    for _ in 0..98 {
        cases::create_case(&v).unwrap();
    }
    let s = sync::status(&v).unwrap();
    // 100 data entries, and the audit entries of those actions (they travel to HQ too).
    let queued = s.pending;
    assert!(queued >= 100, "{s:?}");
    assert_eq!((s.enrolled, s.last_success_ms), (true, None));
    assert!(s.wedged.is_empty());

    // Cancelled at the second prepare report (after 64 entries): no push, everything queued.
    let cancel = sync::Cancel::new();
    let watch = Watch {
        seen: Mutex::new(Vec::new()),
        cancel: &cancel,
        stop_at: |p| p.phase == sync::Phase::Prepare && p.done == 64,
    };
    let control = sync::Control {
        observer: Some(&watch),
        cancel: Some(&cancel),
    };
    let r = sync::sync_with(&v, &w.http, &control).unwrap();
    assert_eq!(r.interrupted, Some(sync::Interruption::Cancelled));
    assert_eq!((r.pushed, r.pending, r.bytes_up), (0, queued, 0));
    let seen: Vec<(sync::Phase, u64, u64)> = watch
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.phase, p.done, p.total))
        .collect();
    assert_eq!(
        seen,
        [
            (sync::Phase::Prepare, 0, queued),
            (sync::Phase::Prepare, 64, queued)
        ]
    );
    assert_eq!(sync::status(&v).unwrap().last_success_ms, None);

    // The next run prepares the rest, pushes every entry once (no duplicates), and succeeds.
    let cancel = sync::Cancel::new();
    let watch = Watch {
        seen: Mutex::new(Vec::new()),
        cancel: &cancel,
        stop_at: |_| false,
    };
    let control = sync::Control {
        observer: Some(&watch),
        cancel: Some(&cancel),
    };
    let r = sync::sync_with(&v, &w.http, &control).unwrap();
    assert_eq!(r.interrupted, None);
    assert_eq!((r.pushed, r.duplicates, r.pending), (queued, 0, 0));
    let seen = watch.seen.lock().unwrap().clone();
    let phases: Vec<sync::Phase> = seen.iter().fold(Vec::new(), |mut acc, p| {
        if acc.last() != Some(&p.phase) {
            acc.push(p.phase);
        }
        acc
    });
    assert_eq!(
        phases,
        [sync::Phase::Prepare, sync::Phase::Push, sync::Phase::Pull]
    );
    let last_prepare = seen
        .iter()
        .rfind(|p| p.phase == sync::Phase::Prepare)
        .unwrap();
    assert_eq!((last_prepare.done, last_prepare.total), (queued, queued));
    assert!(seen.windows(2).all(|w| w[0].bytes_up <= w[1].bytes_up));
    let s = sync::status(&v).unwrap();
    assert_eq!(s.pending, 0);
    assert!(s.last_success_ms.is_some());
}

/// Both replicas' case and identity, in full (every field's values, clash and version vector).
fn replica(v: &Vault, case: amanat_core::store::RecordId) -> (String, String, bool) {
    let c = cases::get_case(v, case).unwrap();
    let fields = serde_json::to_string(&c.fields).unwrap();
    let identity = serde_json::to_string(&cases::get_identity(v, case).unwrap().fields).unwrap();
    (fields, identity, c.withdrawal_pending)
}

#[test]
fn two_devices_editing_one_case_offline_converge_and_a_same_field_clash_is_kept_reported_and_resolved(
) {
    // Round 1 (different fields) with A syncing first, round 2 (same field) with B first…
    converge_clash_and_resolve(true);
}

#[test]
fn the_same_with_the_other_device_syncing_first_in_each_round() {
    // … and the other way round.
    converge_clash_and_resolve(false);
}

fn converge_clash_and_resolve(a_first: bool) {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::ShareCaseworkers],
    )
    .unwrap();
    cases::set_field(&a, case.id, "status", "open").unwrap();
    cases::set_identity_field(&a, case.id, "phone", "+998 90 123 45 67").unwrap();
    sync::share_case(&a, case.id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    sync::share_case(&b, case.id, &ea.signing_public_key, &ea.age_recipient).unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    let first = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!((first.pulled, first.clashes), (4, 0), "{first:?}");
    assert_eq!(replica(&a, case.id), replica(&b, case.id));

    let (x, y) = if a_first { (&a, &b) } else { (&b, &a) };
    // Round 1, offline on both, different fields; X syncs first.
    cases::set_field(&a, case.id, "district", "north").unwrap();
    cases::set_field(&b, case.id, "notes", "met at the shelter").unwrap();
    cases::set_identity_field(&b, case.id, "given_name", "Гульнара").unwrap();
    sync::sync_once(x, &w.http).unwrap();
    let ry = sync::sync_once(y, &w.http).unwrap();
    let rx = sync::sync_once(x, &w.http).unwrap();
    assert_eq!((rx.clashes, ry.clashes), (0, 0));
    assert_eq!(replica(&a, case.id), replica(&b, case.id));
    let on_a = cases::get_case(&a, case.id).unwrap();
    assert_eq!(on_a.fields["district"].current(), Some("north"));
    assert_eq!(on_a.fields["notes"].current(), Some("met at the shelter"));
    assert_eq!(on_a.fields["status"].current(), Some("open"));
    assert!(sync::clashes(&a).unwrap().is_empty());
    assert!(sync::clashes(&b).unwrap().is_empty());

    // Round 2, offline on both, the same fields (and a clear against an edit); Y syncs first.
    cases::set_field(&a, case.id, "status", "referred").unwrap();
    cases::clear_identity_field(&a, case.id, "phone").unwrap();
    cases::set_field(&b, case.id, "status", "closed").unwrap();
    cases::set_identity_field(&b, case.id, "phone", "+998 90 000 00 00").unwrap();
    assert_eq!(sync::sync_once(y, &w.http).unwrap().clashes, 0);
    let rx = sync::sync_once(x, &w.http).unwrap();
    assert_eq!(rx.clashes, 2, "{rx:?}");
    let ry = sync::sync_once(y, &w.http).unwrap();
    assert_eq!(ry.clashes, 2, "{ry:?}");
    assert_eq!(replica(&a, case.id), replica(&b, case.id));

    let on_a = sync::clashes(&a).unwrap();
    let on_b = sync::clashes(&b).unwrap();
    assert_eq!(on_a, on_b, "the same clashes, same ids, on both devices");
    assert_eq!(on_a.len(), 2);
    let status = on_a
        .iter()
        .find(|c| c.record == sync::ClashedRecord::Case)
        .unwrap();
    assert_eq!((status.case_id, status.field.as_str()), (case.id, "status"));
    let mut by_author: Vec<(String, Option<String>)> = status
        .values
        .iter()
        .map(|v| (v.author.clone(), v.value.clone()))
        .collect();
    by_author.sort();
    let mut expected = vec![
        (ea.device_id.clone(), Some("referred".to_string())),
        (eb.device_id.clone(), Some("closed".to_string())),
    ];
    expected.sort();
    assert_eq!(by_author, expected, "both values, both authors");
    assert!(status.values[0].hlc > status.values[1].hlc, "winner first");
    // The field shows the same winner everywhere meanwhile.
    let shown = status.values[0].value.clone();
    assert_eq!(
        cases::get_case(&b, case.id).unwrap().fields["status"]
            .current()
            .map(str::to_string),
        shown
    );
    let phone = on_a
        .iter()
        .find(|c| c.record == sync::ClashedRecord::Identity)
        .unwrap();
    assert_eq!(phone.field, "phone");
    let cleared = phone.values.iter().find(|v| v.value.is_none()).unwrap();
    assert_eq!(cleared.author, ea.device_id, "A's clear is kept as a value");
    let kept = phone.values.iter().find(|v| v.value.is_some()).unwrap();
    assert_eq!(
        (kept.author.as_str(), kept.value.as_deref()),
        (eb.device_id.as_str(), Some("+998 90 000 00 00"))
    );
    let debug = format!("{on_a:?}");
    assert!(
        !debug.contains("referred") && !debug.contains("+998"),
        "clash values are redacted in Debug"
    );

    // A stale or unknown id and a bad index are typed errors that change nothing.
    assert!(matches!(
        sync::resolve_clash(&b, "00", sync::Choice::Keep(0)),
        Err(sync::ClashError::NotFound)
    ));
    assert!(matches!(
        sync::resolve_clash(&b, &status.id, sync::Choice::Keep(2)),
        Err(sync::ClashError::BadChoice)
    ));
    assert_eq!(sync::clashes(&b).unwrap().len(), 2);

    // B resolves both: A's status, and the clear. The resolutions travel like edits.
    let a_value = status
        .values
        .iter()
        .position(|v| v.author == ea.device_id)
        .unwrap();
    sync::resolve_clash(&b, &status.id, sync::Choice::Keep(a_value)).unwrap();
    sync::resolve_clash(&b, &phone.id, sync::Choice::Clear).unwrap();
    assert!(sync::clashes(&b).unwrap().is_empty());
    assert!(matches!(
        sync::resolve_clash(&b, &status.id, sync::Choice::Keep(0)),
        Err(sync::ClashError::NotFound)
    ));
    assert_eq!(sync::sync_once(&b, &w.http).unwrap().clashes, 0);
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().clashes, 0);
    assert!(sync::clashes(&a).unwrap().is_empty(), "gone everywhere");
    assert_eq!(replica(&a, case.id), replica(&b, case.id));
    let on_a = cases::get_case(&a, case.id).unwrap();
    assert_eq!(on_a.fields["status"].current(), Some("referred"));
    let identity = cases::get_identity(&a, case.id).unwrap();
    assert_eq!(identity.fields["phone"].current(), None);
    assert_eq!(
        identity.fields["given_name"].current(),
        Some("Гульнара"),
        "nothing else lost"
    );
    // And nothing more arrives: the replicas are quiet and equal.
    let (ra, rb) = (
        sync::sync_once(&a, &w.http).unwrap(),
        sync::sync_once(&b, &w.http).unwrap(),
    );
    assert_eq!(
        (ra.clashes, rb.clashes, ra.quarantined, rb.quarantined),
        (0, 0, 0, 0)
    );
    assert_eq!(replica(&a, case.id), replica(&b, case.id));
}

#[test]
fn a_consent_withdrawal_on_one_device_wins_over_a_concurrent_grant_on_another() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::ShareCaseworkers, Scope::ShareLegal],
    )
    .unwrap();
    sync::share_case(&a, case.id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    sync::share_case(&b, case.id, &ea.signing_public_key, &ea.age_recipient).unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    sync::sync_once(&b, &w.http).unwrap();

    // Offline: A withdraws legal sharing; B, not knowing, records a version that adds research
    // (and still lists legal), and edits a field. B's version has the higher clock.
    consent::withdraw(&a, case.id, "worker-17", "ru", &[Scope::ShareLegal]).unwrap();
    consent::record_consent(
        &b,
        case.id,
        "worker-9",
        "uz",
        &[
            Scope::Interview,
            Scope::ShareCaseworkers,
            Scope::ShareLegal,
            Scope::ShareResearch,
        ],
    )
    .unwrap();
    cases::set_field(&b, case.id, "status", "referred").unwrap();
    sync::sync_once(&b, &w.http).unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    sync::sync_once(&b, &w.http).unwrap();

    for v in [&a, &b] {
        let current = consent::current(v, case.id).unwrap().unwrap();
        assert!(
            !current.scopes.contains(&Scope::ShareLegal),
            "the withdrawal stays whatever the order"
        );
        assert!(
            !current.scopes.contains(&Scope::ShareResearch),
            "a concurrent grant waits"
        );
        assert!(current.scopes.contains(&Scope::Interview));
        let case = cases::get_case(v, case.id).unwrap();
        assert!(case.withdrawal_pending);
        assert_eq!(
            case.fields["status"].current(),
            Some("referred"),
            "edits stay"
        );
        assert_eq!(consent::history(v, case.id).unwrap().len(), 3);
    }
    // A version recorded after seeing both heads decides again: research granted, legal not.
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::ShareResearch],
    )
    .unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    sync::sync_once(&b, &w.http).unwrap();
    for v in [&a, &b] {
        let current = consent::current(v, case.id).unwrap().unwrap();
        assert_eq!(current.version, 3);
        assert!(current.scopes.contains(&Scope::ShareResearch));
        assert!(!current.scopes.contains(&Scope::ShareLegal));
    }
}

// The same tests with the relay on PostgreSQL (skipped without a database; see tests/tests/pg).
postgres_variants!(
    enrolls_against_the_real_relay_with_an_org_init_organisation,
    a_retry_after_a_lost_answer_resends_the_same_envelopes_and_the_relay_says_duplicate,
    a_submitted_interview_reaches_hq_for_the_consented_group_only_and_withdrawal_cuts_new_envelopes,
    an_envelope_the_relay_refuses_is_wedged_with_its_reason_and_does_not_block_the_rest,
    a_verified_revocation_wipes_the_device,
    a_forged_revocation_wipes_nothing,
    a_team_device_pulls_verifies_and_applies_once_and_quarantines_what_fails,
);

/// Wraps an identity and counts the stanzas age asks it to try: each is one X25519.
struct CountingIdentity {
    inner: age::x25519::Identity,
    tries: std::sync::atomic::AtomicUsize,
}

impl age::Identity for CountingIdentity {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.unwrap_stanza(stanza)
    }
}

#[test]
fn a_team_device_finds_its_stanza_first_whatever_groups_the_consent_adds() {
    let w = World::new();
    let hq = w.hq();
    let (v, _) = w.enrolled("a");
    let case = cases::create_case(&v).unwrap();
    // Every group the consent can name: four group stanzas and the author's besides the team's.
    consent::record_consent(
        &v,
        case.id,
        "worker-17",
        "ru",
        &[
            Scope::Interview,
            Scope::ShareCaseworkers,
            Scope::ShareLegal,
            Scope::ShareLawEnforcement,
            Scope::ShareResearch,
        ],
    )
    .unwrap();
    let team = age::x25519::Identity::generate();
    let team_key =
        amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
            .unwrap();
    sync::share_case(
        &v,
        case.id,
        &amanat_protocol::to_hex(team_key.public_key().as_ref()),
        &team.to_public().to_string(),
    )
    .unwrap();
    cases::set_field(&v, case.id, "status", "open").unwrap();
    assert!(sync::sync_once(&v, &w.http).unwrap().pushed > 0);
    let counting = CountingIdentity {
        inner: team,
        tries: std::sync::atomic::AtomicUsize::new(0),
    };
    let mut opened = 0;
    for (_, payload) in w.hq_envelopes(&hq) {
        counting.tries.store(0, std::sync::atomic::Ordering::SeqCst);
        let Ok(d) = age::Decryptor::new_buffered(&payload[..]) else {
            continue;
        };
        let Ok(mut r) = d.decrypt(std::iter::once(&counting as &dyn age::Identity)) else {
            continue; // audit and withdrawal envelopes are not for team devices
        };
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut plain).unwrap();
        assert_eq!(
            counting.tries.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the team device's stanza comes first"
        );
        opened += 1;
    }
    assert!(opened >= 3, "case, consent, field change: {opened}");
}
