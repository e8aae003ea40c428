#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The relay's behaviour, run once per backend: every test below exists as `<name>::sqlite` and
//! `<name>::postgres`. The PostgreSQL variants need `AMANAT_TEST_DATABASE_URL` (see
//! scripts/test-relay.sh); without it they are skipped with a notice, unless
//! `AMANAT_REQUIRE_POSTGRES=1` makes them mandatory (tests/support/mod.rs).
//! Each PostgreSQL test gets a fresh database, so sequence numbers are per test.

use amanat_protocol::{
    self, DeviceRole, EnrollRequest, EnrollmentCode, Envelope, OrgPublic, PullResponse,
    PushRequest, PushResponse, Revocation,
};
use amanat_server::relay::{
    self, postgres::PgStorage, sqlite::SqliteStorage, RelayConfig, RunningRelay,
};
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

mod support;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

use support::{fresh_pg_database, skip_postgres};

struct Org {
    key: Ed25519KeyPair,
    public: OrgPublic,
}

impl Org {
    fn new() -> Self {
        let key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        let mut groups = BTreeMap::new();
        for g in amanat_protocol::RECIPIENT_GROUPS {
            groups.insert(
                g.to_owned(),
                age::x25519::Identity::generate().to_public().to_string(),
            );
        }
        let mut public = OrgPublic {
            version: 1,
            signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
            groups,
            fingerprint: String::new(),
        };
        public.fingerprint = public.compute_fingerprint();
        Self { key, public }
    }

    fn code(&self, role: DeviceRole, expires_in: i64) -> EnrollmentCode {
        let exp = (relay::now_ms() / 1000) as i64 + expires_in;
        EnrollmentCode::issue(&self.key, &self.public.fingerprint, exp.max(0) as u64, role).unwrap()
    }
}

struct Relay {
    dir: tempfile::TempDir,
    db_url: Option<String>,
    org: Org,
    config: RelayConfig,
    running: Option<RunningRelay>,
    addr: SocketAddr,
    http: reqwest::Client,
}

fn test_config() -> RelayConfig {
    RelayConfig {
        rate_per_sec: 10_000.0,
        rate_burst: 10_000.0,
        max_envelope_bytes: 64 * 1024,
        max_batch_bytes: 512 * 1024,
        max_chunk_bytes: 64 * 1024,
        ..RelayConfig::default()
    }
}

impl Relay {
    async fn start(backend: Backend, config: RelayConfig) -> Self {
        let db_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_pg_database().await),
        };
        let mut r = Self {
            dir: tempfile::tempdir().unwrap(),
            db_url,
            org: Org::new(),
            config,
            running: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        r.boot().await;
        r
    }

    async fn boot(&mut self) {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let running = match &self.db_url {
            Some(url) => {
                let s = PgStorage::connect(url, 8).await.unwrap();
                relay::start(listen, self.org.public.clone(), self.config.clone(), s)
                    .await
                    .unwrap()
            }
            None => {
                let s = SqliteStorage::open(self.dir.path()).unwrap();
                relay::start(listen, self.org.public.clone(), self.config.clone(), s)
                    .await
                    .unwrap()
            }
        };
        self.addr = running.addr;
        self.running = Some(running);
    }

    async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        self.boot().await;
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    async fn signed_at(
        &self,
        dev: &Device,
        method: &str,
        path: &str,
        body: Vec<u8>,
        ts: u64,
    ) -> (u16, serde_json::Value) {
        let h = amanat_protocol::sign_request(&dev.key, method, path, ts, &body).unwrap();
        let headers: Vec<(&str, String)> =
            h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
        let (s, b) = self.raw(method, path, &headers, body).await;
        (
            s,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }

    /// A deferred request (issued at `issued`, valid until `expires`), as a background uploader
    /// sends it; `mutate` may change the headers after signing.
    async fn deferred(
        &self,
        dev: &Device,
        method: &str,
        path: &str,
        body: Vec<u8>,
        (issued, expires): (u64, u64),
        mutate: impl FnOnce(&mut Vec<(&'static str, String)>),
    ) -> (u16, serde_json::Value) {
        let h =
            amanat_protocol::sign_deferred_request(&dev.key, method, path, issued, expires, &body)
                .unwrap();
        let mut headers: Vec<(&'static str, String)> =
            h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
        mutate(&mut headers);
        let (s, b) = self.raw(method, path, &headers, body).await;
        (
            s,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn signed(
        &self,
        dev: &Device,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        self.signed_at(dev, method, path, body, relay::now_ms())
            .await
    }

    async fn enroll_with(&self, dev: &Device, code: EnrollmentCode) -> (u16, serde_json::Value) {
        let req = EnrollRequest {
            code,
            signing_public_key: amanat_protocol::to_hex(dev.key.public_key().as_ref()),
            age_recipient: age::x25519::Identity::generate().to_public().to_string(),
        };
        self.signed(dev, "POST", "/v1/enroll", serde_json::to_vec(&req).unwrap())
            .await
    }

    async fn enrolled(&self, role: DeviceRole) -> Device {
        let dev = Device::new();
        let (s, b) = self.enroll_with(&dev, self.org.code(role, 600)).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["device_id"], dev.id.as_str());
        dev
    }

    async fn push(&self, dev: &Device, envs: &[Envelope]) -> (u16, serde_json::Value) {
        let body = serde_json::to_vec(&PushRequest {
            envelopes: envs.to_vec(),
        })
        .unwrap();
        self.signed(dev, "POST", "/v1/envelopes", body).await
    }

    async fn pull_all(&self, dev: &Device) -> Vec<amanat_protocol::PulledEnvelope> {
        let mut after = 0;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let (s, b) = self
                .signed(
                    dev,
                    "GET",
                    &format!("/v1/envelopes?after={after}&limit=200"),
                    vec![],
                )
                .await;
            assert_eq!(s, 200, "{b}");
            let page: PullResponse = serde_json::from_value(b).unwrap();
            after = page.next_after;
            out.extend(page.envelopes);
            if !page.more {
                return out;
            }
        }
        panic!("pull did not finish");
    }
}

struct Device {
    key: Ed25519KeyPair,
    id: String,
}

impl Device {
    fn new() -> Self {
        let key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        let id = amanat_protocol::device_id(key.public_key().as_ref());
        Self { key, id }
    }
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A UUIDv7-shaped id (time prefix + counter + randomness), unique within the test binary.
fn uuid7() -> String {
    let ms = relay::now_ms();
    let c = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = amanat_protocol::new_nonce().unwrap();
    format!(
        "{:08x}-{:04x}-7{:03x}-8{}-{}",
        (ms >> 16) as u32,
        (ms & 0xffff) as u16,
        (c & 0xfff) as u16,
        &r[0..3],
        &format!("{:04x}{}", (c >> 12) & 0xffff, &r[4..12])
    )
}

fn env_to(recipients: &[&str], size: usize) -> Envelope {
    let payload: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    Envelope {
        id: uuid7(),
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if super::skip_postgres() {
                    return;
                }
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}

both_backends!(
    push_pull_round_trip,
    forged_signature_rejected,
    replayed_nonce_rejected,
    stale_timestamp_rejected,
    unknown_and_revoked_devices_rejected,
    unsigned_or_wrongly_signed_revocation_rejected,
    oversized_bodies_rejected,
    malformed_json_and_garbage_rejected,
    duplicate_push_is_idempotent,
    fifty_devices_push_concurrently,
    blob_upload_resumes_after_interruption,
    blob_with_wrong_hash_rejected,
    restart_mid_stream_keeps_acknowledged_pushes,
    enrollment_codes_checked,
    rate_limit_applies_per_device,
    health_metrics_openapi,
    every_answer_is_json_and_auth_comes_first,
    signed_numbers_parsed_strictly,
    pull_pages_merge_both_recipients_once_in_order,
    a_conflicting_push_among_concurrent_ones_is_refused_alone,
    deferred_requests_only_for_blob_chunks_within_their_window,
);

async fn push_pull_round_trip(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let a = r.enrolled(DeviceRole::Field).await;
    let other = r.enrolled(DeviceRole::Field).await;
    let hq = r.enrolled(DeviceRole::Hq).await;
    let e1 = env_to(&[&other.id], 2048);
    let e2 = env_to(&["hq"], 100);
    let e3 = env_to(&["hq", &other.id], 10);
    let (s, body) = r.push(&a, &[e1.clone(), e2.clone(), e3.clone()]).await;
    assert_eq!(s, 200, "{body}");
    let acks: PushResponse = serde_json::from_value(body).unwrap();
    assert_eq!(
        acks.acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let got = r.pull_all(&other).await;
    assert_eq!(
        got.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![e1.id.clone(), e3.id.clone()]
    );
    assert_eq!(got[0].payload, e1.payload);
    assert_eq!(got[0].sender, a.id);
    let got = r.pull_all(&hq).await;
    assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert!(
        r.pull_all(&a).await.is_empty(),
        "the sender is not a recipient"
    );
    // Paging after a cursor.
    let (s, b2) = r
        .signed(&other, "GET", "/v1/envelopes?after=1&limit=1", vec![])
        .await;
    assert_eq!(s, 200);
    let page: PullResponse = serde_json::from_value(b2).unwrap();
    assert_eq!(page.envelopes.len(), 1);
    assert_eq!(page.envelopes[0].seq, 3);
    assert!(!page.more);
}

/// An HQ installation pulls what is routed to `hq` and to itself: small pages walk both index
/// ranges in one ascending order, an envelope routed to both comes once, `more` is exact.
async fn pull_pages_merge_both_recipients_once_in_order(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let a = r.enrolled(DeviceRole::Field).await;
    let hq = r.enrolled(DeviceRole::Hq).await;
    let other = r.enrolled(DeviceRole::Field).await;
    let routes: [&[&str]; 8] = [
        &["hq"],
        &[&hq.id],
        &["hq", &hq.id],
        &[&other.id],
        &[&hq.id],
        &["hq"],
        &["hq", &other.id, &hq.id],
        &[&other.id],
    ];
    let envs: Vec<Envelope> = routes.iter().map(|to| env_to(to, 16)).collect();
    let (s, body) = r.push(&a, &envs).await;
    assert_eq!(s, 200, "{body}");
    let expected: Vec<u64> = vec![1, 2, 3, 5, 6, 7];
    for limit in [1, 2, 3, 100] {
        let (mut after, mut got) = (0, Vec::new());
        loop {
            let (s, b) = r
                .signed(
                    &hq,
                    "GET",
                    &format!("/v1/envelopes?after={after}&limit={limit}"),
                    vec![],
                )
                .await;
            assert_eq!(s, 200, "{b}");
            let page: PullResponse = serde_json::from_value(b).unwrap();
            assert!(page.envelopes.len() <= limit);
            got.extend(page.envelopes.iter().map(|e| e.seq));
            after = page.next_after;
            if !page.more {
                break;
            }
        }
        assert_eq!(got, expected, "limit {limit}");
    }
}

async fn forged_signature_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let mallory = Device::new();
    let body = serde_json::to_vec(&PushRequest {
        envelopes: vec![env_to(&[&dev.id], 10)],
    })
    .unwrap();
    // Signed by another key but claiming the enrolled device.
    let mut h = amanat_protocol::sign_request(
        &mallory.key,
        "POST",
        "/v1/envelopes",
        relay::now_ms(),
        &body,
    )
    .unwrap();
    h.device = dev.id.clone();
    let headers: Vec<(&str, String)> = h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (s, out) = r.raw("POST", "/v1/envelopes", &headers, body.clone()).await;
    assert_eq!(s, 401);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["error"],
        "bad_signature"
    );
    // Signed correctly, body altered afterwards.
    let h =
        amanat_protocol::sign_request(&dev.key, "POST", "/v1/envelopes", relay::now_ms(), &body)
            .unwrap();
    let headers: Vec<(&str, String)> = h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    let mut altered = body.clone();
    let n = altered.len();
    altered[n - 5] ^= 1;
    let (s, out) = r.raw("POST", "/v1/envelopes", &headers, altered).await;
    assert_eq!(s, 401, "{}", String::from_utf8_lossy(&out));
    // Signed for another path.
    let h = amanat_protocol::sign_request(&dev.key, "POST", "/v1/enroll", relay::now_ms(), &body)
        .unwrap();
    let headers: Vec<(&str, String)> = h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (s, _) = r.raw("POST", "/v1/envelopes", &headers, body.clone()).await;
    assert_eq!(s, 401);
    // No headers at all.
    let (s, out) = r.raw("POST", "/v1/envelopes", &[], body).await;
    assert_eq!(s, 401);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["error"],
        "unsigned_request"
    );
    assert!(r.pull_all(&dev).await.is_empty(), "nothing stored");
}

async fn replayed_nonce_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let body = serde_json::to_vec(&PushRequest {
        envelopes: vec![env_to(&[&dev.id], 10)],
    })
    .unwrap();
    let h =
        amanat_protocol::sign_request(&dev.key, "POST", "/v1/envelopes", relay::now_ms(), &body)
            .unwrap();
    let headers: Vec<(&str, String)> = h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (s, _) = r.raw("POST", "/v1/envelopes", &headers, body.clone()).await;
    assert_eq!(s, 200);
    let (s, out) = r.raw("POST", "/v1/envelopes", &headers, body).await;
    assert_eq!(s, 401);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["error"],
        "replayed_nonce"
    );
    assert_eq!(r.pull_all(&dev).await.len(), 1);
}

async fn stale_timestamp_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    for ts in [relay::now_ms() - 6 * 60_000, relay::now_ms() + 6 * 60_000] {
        let body = serde_json::to_vec(&PushRequest {
            envelopes: vec![env_to(&[&dev.id], 10)],
        })
        .unwrap();
        let (s, out) = r.signed_at(&dev, "POST", "/v1/envelopes", body, ts).await;
        assert_eq!(s, 401);
        assert_eq!(out["error"], "stale_timestamp");
    }
    // Within the window is fine.
    let body = serde_json::to_vec(&PushRequest {
        envelopes: vec![env_to(&[&dev.id], 10)],
    })
    .unwrap();
    let (s, _) = r
        .signed_at(
            &dev,
            "POST",
            "/v1/envelopes",
            body,
            relay::now_ms() - 4 * 60_000,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r.pull_all(&dev).await.len(), 1);
}

async fn unknown_and_revoked_devices_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let stranger = Device::new();
    let (s, out) = r.push(&stranger, &[env_to(&["hq"], 10)]).await;
    assert_eq!((s, out["error"].as_str()), (401, Some("unknown_device")));
    let dev = r.enrolled(DeviceRole::Field).await;
    let hq = r.enrolled(DeviceRole::Hq).await;
    assert_eq!(r.push(&dev, &[env_to(&["hq"], 10)]).await.0, 200);
    let rev = Revocation::issue(
        &r.org.key,
        &r.org.public.fingerprint,
        &dev.id,
        relay::now_ms() / 1000,
    );
    let (s, out) = r
        .raw(
            "POST",
            "/v1/revocations",
            &[],
            serde_json::to_vec(&rev).unwrap(),
        )
        .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&out));
    let (s, out) = r.push(&dev, &[env_to(&["hq"], 10)]).await;
    assert_eq!((s, out["error"].as_str()), (403, Some("revoked_device")));
    // The refusal carries the org-signed order, which the device can verify itself.
    let shown: Revocation = serde_json::from_value(out["revocation"].clone()).unwrap();
    shown.verify(&r.org.public).unwrap();
    let (s, out) = r.signed(&hq, "GET", "/v1/revocations", vec![]).await;
    assert_eq!(s, 200);
    assert_eq!(out["revocations"][0]["device_id"], dev.id.as_str());
    assert_eq!(
        r.pull_all(&hq).await.len(),
        1,
        "only the push before revocation"
    );
}

async fn unsigned_or_wrongly_signed_revocation_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let other_org = Org::new();
    // Signed by another organisation's key, claiming ours.
    let forged = Revocation::issue(&other_org.key, &r.org.public.fingerprint, &dev.id, 1);
    let (s, out) = r
        .raw(
            "POST",
            "/v1/revocations",
            &[],
            serde_json::to_vec(&forged).unwrap(),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["error"],
        "invalid_org_signature"
    );
    // Signed for another organisation.
    let foreign = Revocation::issue(&other_org.key, &other_org.public.fingerprint, &dev.id, 1);
    let (s, _) = r
        .raw(
            "POST",
            "/v1/revocations",
            &[],
            serde_json::to_vec(&foreign).unwrap(),
        )
        .await;
    assert_eq!(s, 403);
    // Unsigned.
    let mut unsigned = serde_json::to_value(&forged).unwrap();
    unsigned["signature"] = "".into();
    let (s, _) = r
        .raw(
            "POST",
            "/v1/revocations",
            &[],
            serde_json::to_vec(&unsigned).unwrap(),
        )
        .await;
    // An empty signature is not in the signature's format: refused as malformed (it was 403
    // before the fields were given formats; either way nothing is revoked).
    assert_eq!(s, 400);
    unsigned.as_object_mut().unwrap().remove("signature");
    let (s, _) = r
        .raw(
            "POST",
            "/v1/revocations",
            &[],
            serde_json::to_vec(&unsigned).unwrap(),
        )
        .await;
    assert_eq!(s, 400);
    // The device still works.
    assert_eq!(r.push(&dev, &[env_to(&[&dev.id], 10)]).await.0, 200);
}

async fn oversized_bodies_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    // One envelope above the per-envelope limit (64 KiB in the test config).
    let (s, out) = r.push(&dev, &[env_to(&[&dev.id], 64 * 1024 + 1)]).await;
    assert_eq!(
        (s, out["error"].as_str()),
        (413, Some("envelope_too_large"))
    );
    // A body above the per-request limit (512 KiB).
    let envs: Vec<Envelope> = (0..10).map(|_| env_to(&[&dev.id], 60 * 1024)).collect();
    let (s, out) = r.push(&dev, &envs).await;
    assert_eq!((s, out["error"].as_str()), (413, Some("body_too_large")));
    // Too many envelopes.
    let mut cfg = test_config();
    cfg.max_batch_envelopes = 3;
    let r2 = Relay::start(b, cfg).await;
    let d2 = r2.enrolled(DeviceRole::Field).await;
    let envs: Vec<Envelope> = (0..4).map(|_| env_to(&[&d2.id], 10)).collect();
    let (s, out) = r2.push(&d2, &envs).await;
    assert_eq!((s, out["error"].as_str()), (413, Some("batch_too_large")));
    assert!(r.pull_all(&dev).await.is_empty());
    assert!(r2.pull_all(&d2).await.is_empty());
}

async fn malformed_json_and_garbage_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    for body in [
        b"{\"envelopes\": [".to_vec(),
        vec![0xff, 0x00, 0x13, 0x37, 0x80],
        b"{\"envelopes\": [], \"extra\": 1}".to_vec(),
        b"[]".to_vec(),
    ] {
        let (s, out) = r.signed(&dev, "POST", "/v1/envelopes", body).await;
        assert_eq!((s, out["error"].as_str()), (400, Some("malformed_body")));
    }
    let mut bad_id = env_to(&[&dev.id], 10);
    bad_id.id = "not-a-uuid".into();
    assert_eq!(
        r.push(&dev, &[bad_id]).await.1["error"],
        "malformed_envelope_id"
    );
    let mut bad_payload = env_to(&[&dev.id], 10);
    bad_payload.payload = "%%%".into();
    assert_eq!(
        r.push(&dev, &[bad_payload]).await.1["error"],
        "malformed_payload"
    );
    let bad_route = env_to(&["everyone"], 10);
    assert_eq!(
        r.push(&dev, &[bad_route]).await.1["error"],
        "malformed_recipients"
    );
    // Garbage in the auth headers.
    let headers = vec![
        (amanat_protocol::HEADER_DEVICE, "zz".to_string()),
        (amanat_protocol::HEADER_TIMESTAMP, "yesterday".to_string()),
        (amanat_protocol::HEADER_NONCE, "n".to_string()),
        (amanat_protocol::HEADER_SIGNATURE, "s".to_string()),
    ];
    let (s, _) = r
        .raw("POST", "/v1/envelopes", &headers, b"{}".to_vec())
        .await;
    assert_eq!(s, 400);
    assert!(r.pull_all(&dev).await.is_empty());
}

async fn duplicate_push_is_idempotent(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let other = r.enrolled(DeviceRole::Field).await;
    let batch: Vec<Envelope> = (0..5).map(|_| env_to(&[&dev.id], 100)).collect();
    let (s, first) = r.push(&dev, &batch).await;
    assert_eq!(s, 200);
    let first: PushResponse = serde_json::from_value(first).unwrap();
    assert!(first.acks.iter().all(|a| !a.duplicate));
    // The same batch again (a retry after a lost response), plus one new envelope.
    let mut again = batch.clone();
    again.push(env_to(&[&dev.id], 100));
    let (s, second) = r.push(&dev, &again).await;
    assert_eq!(s, 200);
    let second: PushResponse = serde_json::from_value(second).unwrap();
    for (a, b) in first.acks.iter().zip(&second.acks) {
        assert_eq!((a.seq, &a.id), (b.seq, &b.id));
        assert!(b.duplicate);
    }
    assert_eq!(second.acks[5].seq, 6);
    assert!(!second.acks[5].duplicate);
    assert_eq!(r.pull_all(&dev).await.len(), 6);
    // Another device cannot claim an id already held.
    let (s, out) = r.push(&other, &[batch[0].clone()]).await;
    assert_eq!(
        (s, out["error"].as_str()),
        (409, Some("envelope_id_conflict"))
    );
}

async fn fifty_devices_push_concurrently(b: Backend) {
    let r = std::sync::Arc::new(Relay::start(b, test_config()).await);
    let hq = r.enrolled(DeviceRole::Hq).await;
    let mut devices = Vec::new();
    for _ in 0..50 {
        devices.push(r.enrolled(DeviceRole::Field).await);
    }
    let mut tasks = Vec::new();
    for dev in devices {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..4 {
                let batch: Vec<Envelope> = (0..5).map(|_| env_to(&["hq"], 512)).collect();
                let (s, out) = r.push(&dev, &batch).await;
                assert_eq!(s, 200, "{out}");
                ids.extend(batch.into_iter().map(|e| e.id));
            }
            ids
        }));
    }
    let mut pushed = BTreeSet::new();
    for t in tasks {
        pushed.extend(
            tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(pushed.len(), 1000);
    let got = r.pull_all(&hq).await;
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=1000).collect::<Vec<u64>>(),
        "gap-free and complete"
    );
    let ids: BTreeSet<String> = got.into_iter().map(|e| e.id).collect();
    assert_eq!(ids, pushed);
}

/// Pushes that arrive together may be written together (PostgreSQL writes them in groups): a
/// push claiming an id another device holds is refused whole, and the pushes beside it are not
/// affected; the sequence stays gap-free.
async fn a_conflicting_push_among_concurrent_ones_is_refused_alone(b: Backend) {
    let r = std::sync::Arc::new(Relay::start(b, test_config()).await);
    let hq = r.enrolled(DeviceRole::Hq).await;
    let owner = r.enrolled(DeviceRole::Field).await;
    let held: Vec<Envelope> = (0..3).map(|_| env_to(&["hq"], 256)).collect();
    assert_eq!(r.push(&owner, &held).await.0, 200);
    let mut tasks = Vec::new();
    for n in 0..40 {
        let dev = r.enrolled(DeviceRole::Field).await;
        let r = r.clone();
        let stolen = held[n % held.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut batch: Vec<Envelope> = (0..4).map(|_| env_to(&["hq"], 256)).collect();
            let thief = n % 4 == 0;
            if thief {
                batch.insert(2, stolen);
            }
            let (s, out) = r.push(&dev, &batch).await;
            (thief, s, out["error"].as_str().map(str::to_owned), batch)
        }));
    }
    let mut stored: BTreeSet<String> = held.iter().map(|e| e.id.clone()).collect();
    let mut refused = BTreeSet::new();
    for t in tasks {
        let (thief, status, error, batch) = t.await.unwrap();
        if thief {
            assert_eq!(
                (status, error.as_deref()),
                (409, Some("envelope_id_conflict"))
            );
            refused.extend(
                batch
                    .into_iter()
                    .map(|e| e.id)
                    .filter(|id| !stored.contains(id)),
            );
        } else {
            assert_eq!(status, 200);
            stored.extend(batch.into_iter().map(|e| e.id));
        }
    }
    let got = r.pull_all(&hq).await;
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=got.len() as u64).collect::<Vec<u64>>(),
        "gap-free"
    );
    let ids: BTreeSet<String> = got.into_iter().map(|e| e.id).collect();
    assert_eq!(
        ids, stored,
        "every accepted push whole, no refused one in part"
    );
    assert!(ids.is_disjoint(&refused));
    assert_eq!(refused.len(), 10 * 4);
}

fn sha_hex(b: &[u8]) -> String {
    amanat_protocol::sha256_hex(b)
}

async fn blob_upload_resumes_after_interruption(b: Backend) {
    let mut r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let sha = sha_hex(&blob);
    let chunk = 50_000;
    let path = format!("/v1/blobs/{sha}");
    // Two of four chunks, then the "connection drops" (relay restarted).
    for i in 0..2 {
        let (s, out) = r
            .signed(
                &dev,
                "PUT",
                &format!("{path}?offset={}", i * chunk),
                blob[i * chunk..(i + 1) * chunk].to_vec(),
            )
            .await;
        assert_eq!(s, 200, "{out}");
    }
    r.restart().await;
    let (s, st) = r
        .signed(&dev, "GET", &format!("{path}/status"), vec![])
        .await;
    assert_eq!(s, 200);
    assert_eq!(st["offset"], 100_000);
    assert_eq!(st["complete"], false);
    // A chunk at the wrong offset is refused and tells the right one.
    let (s, out) = r
        .signed(
            &dev,
            "PUT",
            &format!("{path}?offset=0"),
            blob[..chunk].to_vec(),
        )
        .await;
    assert_eq!(
        (s, out["error"].as_str(), out["offset"].as_u64()),
        (409, Some("offset_mismatch"), Some(100_000))
    );
    // Not downloadable before completion.
    assert_eq!(r.signed(&dev, "GET", &path, vec![]).await.0, 404);
    // Only the missing chunks are sent.
    let mut offset = st["offset"].as_u64().unwrap() as usize;
    let mut sent = 0;
    while offset < blob.len() {
        let end = (offset + chunk).min(blob.len());
        let (s, out) = r
            .signed(
                &dev,
                "PUT",
                &format!("{path}?offset={offset}"),
                blob[offset..end].to_vec(),
            )
            .await;
        assert_eq!(s, 200, "{out}");
        offset = out["offset"].as_u64().unwrap() as usize;
        sent += 1;
    }
    assert_eq!(sent, 2);
    let (s, out) = r
        .signed(&dev, "POST", &format!("{path}/complete"), vec![])
        .await;
    assert_eq!((s, out["size"].as_u64()), (200, Some(200_000)), "{out}");
    // Download: whole, and a range.
    let h = amanat_protocol::sign_request(&dev.key, "GET", &path, relay::now_ms(), b"").unwrap();
    let mut headers: Vec<(&str, String)> =
        h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (s, whole) = r.raw("GET", &path, &headers, vec![]).await;
    assert_eq!(s, 200);
    assert_eq!(whole, blob);
    let h = amanat_protocol::sign_request(&dev.key, "GET", &path, relay::now_ms(), b"").unwrap();
    headers = h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    headers.push(("range", "bytes=49990-50009".into()));
    let (s, part) = r.raw("GET", &path, &headers, vec![]).await;
    assert_eq!(s, 206);
    assert_eq!(part, blob[49_990..50_010]);
    let h = amanat_protocol::sign_request(&dev.key, "GET", &path, relay::now_ms(), b"").unwrap();
    headers = h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    headers.push(("range", "bytes=300000-".into()));
    assert_eq!(r.raw("GET", &path, &headers, vec![]).await.0, 416);
    // Appending to a complete blob is refused.
    let (s, out) = r
        .signed(&dev, "PUT", &format!("{path}?offset=200000"), vec![1])
        .await;
    assert_eq!((s, out["error"].as_str()), (409, Some("blob_complete")));
}

async fn blob_with_wrong_hash_rejected(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let claimed = sha_hex(b"what the device said it would send");
    let path = format!("/v1/blobs/{claimed}");
    let (s, _) = r
        .signed(
            &dev,
            "PUT",
            &format!("{path}?offset=0"),
            b"something else entirely".to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    let (s, out) = r
        .signed(&dev, "POST", &format!("{path}/complete"), vec![])
        .await;
    assert_eq!((s, out["error"].as_str()), (422, Some("hash_mismatch")));
    let (_, st) = r
        .signed(&dev, "GET", &format!("{path}/status"), vec![])
        .await;
    assert_eq!(
        (st["offset"].as_u64(), st["complete"].as_bool()),
        (Some(0), Some(false)),
        "discarded"
    );
    assert_eq!(r.signed(&dev, "GET", &path, vec![]).await.0, 404);
    // A malformed address.
    assert_eq!(
        r.signed(&dev, "GET", "/v1/blobs/XYZ/status", vec![])
            .await
            .0,
        400
    );
}

async fn restart_mid_stream_keeps_acknowledged_pushes(b: Backend) {
    let mut r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let hq = r.enrolled(DeviceRole::Hq).await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let url = r.url("/v1/envelopes");
    let http = r.http.clone();
    let key_pkcs8 = amanat_protocol::generate_ed25519_pkcs8().unwrap();
    let _ = key_pkcs8; // the pusher signs with the enrolled device key, moved below
    let dev_arc = std::sync::Arc::new(dev);
    let pusher = {
        let acked = acked.clone();
        let dev = dev_arc.clone();
        tokio::spawn(async move {
            for _ in 0..500 {
                let batch: Vec<Envelope> = (0..10).map(|_| env_to(&["hq"], 256)).collect();
                let body = serde_json::to_vec(&PushRequest {
                    envelopes: batch.clone(),
                })
                .unwrap();
                let h = amanat_protocol::sign_request(
                    &dev.key,
                    "POST",
                    "/v1/envelopes",
                    relay::now_ms(),
                    &body,
                )
                .unwrap();
                let mut req = http.post(&url).body(body);
                for (k, v) in h.pairs() {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(resp) if resp.status() == 200 => {
                        acked
                            .lock()
                            .unwrap()
                            .extend(batch.into_iter().map(|e| e.id));
                    }
                    _ => return, // the relay went away mid-stream
                }
            }
        })
    };
    // Let some pushes through, then stop the relay under load.
    for _ in 0..200 {
        if acked.lock().unwrap().len() >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.restart().await;
    tokio::time::timeout(Duration::from_secs(30), pusher)
        .await
        .unwrap()
        .unwrap();
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 100);
    let got = r.pull_all(&hq).await;
    let ids: BTreeSet<String> = got.iter().map(|e| e.id.clone()).collect();
    assert!(
        acked.is_subset(&ids),
        "every acknowledged envelope survived the restart"
    );
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // The relay works after the restart.
    assert_eq!(r.push(&dev_arc, &[env_to(&["hq"], 10)]).await.0, 200);
}

async fn enrollment_codes_checked(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let other_org = Org::new();
    // Signed by another key (forged), and a code with its signature stripped.
    let mut forged = r.org.code(DeviceRole::Field, 600);
    forged.signature = other_org.code(DeviceRole::Field, 600).signature;
    let (s, out) = r.enroll_with(&Device::new(), forged).await;
    assert_eq!(
        (s, out["error"].as_str()),
        (403, Some("invalid_org_signature"))
    );
    let mut unsigned = r.org.code(DeviceRole::Field, 600);
    unsigned.signature.clear();
    let (s, out) = r.enroll_with(&Device::new(), unsigned).await;
    // Not in the signature's format: malformed before any signature check.
    assert_eq!((s, out["error"].as_str()), (400, Some("malformed_body")));
    // A field code turned into an HQ code breaks the signature.
    let mut promoted = r.org.code(DeviceRole::Field, 600);
    promoted.role = DeviceRole::Hq;
    assert_eq!(r.enroll_with(&Device::new(), promoted).await.0, 403);
    // A code carrying the relay URL (signed): accepted; the URL stripped or swapped breaks the
    // signature; a URL that is not one (a second line smuggled in) is malformed before any check.
    let exp = relay::now_ms() / 1000 + 600;
    let with_url = EnrollmentCode::issue_for_relay(
        &r.org.key,
        &r.org.public.fingerprint,
        exp,
        DeviceRole::Field,
        "https://relay.example.org",
    )
    .unwrap();
    let mut stripped = with_url.clone();
    stripped.relay_url = None;
    assert_eq!(r.enroll_with(&Device::new(), stripped).await.0, 403);
    let mut swapped = with_url.clone();
    swapped.relay_url = Some("https://other.example.org".into());
    assert_eq!(r.enroll_with(&Device::new(), swapped).await.0, 403);
    let mut smuggled = with_url.clone();
    smuggled.relay_url = Some("https://relay.example.org\nhq".into());
    let (s, out) = r.enroll_with(&Device::new(), smuggled).await;
    assert_eq!((s, out["error"].as_str()), (400, Some("malformed_body")));
    assert_eq!(r.enroll_with(&Device::new(), with_url).await.0, 200);
    // Another organisation's valid code.
    let (s, out) = r
        .enroll_with(&Device::new(), other_org.code(DeviceRole::Field, 600))
        .await;
    assert_eq!(
        (s, out["error"].as_str()),
        (403, Some("wrong_organisation"))
    );
    // Expired.
    let (s, out) = r
        .enroll_with(&Device::new(), r.org.code(DeviceRole::Field, -1))
        .await;
    assert_eq!((s, out["error"].as_str()), (410, Some("code_expired")));
    // Used once, then refused.
    let code = r.org.code(DeviceRole::Field, 600);
    let first = Device::new();
    assert_eq!(r.enroll_with(&first, code.clone()).await.0, 200);
    let (s, out) = r.enroll_with(&Device::new(), code.clone()).await;
    assert_eq!((s, out["error"].as_str()), (409, Some("code_used")));
    // Enrollment request signed by a key other than the one registered.
    let dev = Device::new();
    let imposter = Device::new();
    let req = EnrollRequest {
        code: r.org.code(DeviceRole::Field, 600),
        signing_public_key: amanat_protocol::to_hex(dev.key.public_key().as_ref()),
        age_recipient: age::x25519::Identity::generate().to_public().to_string(),
    };
    let (s, _) = r
        .signed(
            &imposter,
            "POST",
            "/v1/enroll",
            serde_json::to_vec(&req).unwrap(),
        )
        .await;
    assert_eq!(s, 401);
    // Only the first device was enrolled: the refused ones cannot push.
    assert_eq!(r.push(&dev, &[env_to(&["hq"], 10)]).await.0, 401);
    assert_eq!(r.push(&first, &[env_to(&["hq"], 10)]).await.0, 200);
}

async fn rate_limit_applies_per_device(b: Backend) {
    let mut cfg = test_config();
    cfg.rate_per_sec = 0.5;
    cfg.rate_burst = 3.0;
    let r = Relay::start(b, cfg).await;
    let a = r.enrolled(DeviceRole::Field).await;
    let c = r.enrolled(DeviceRole::Field).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(r.signed(&a, "GET", "/v1/envelopes", vec![]).await);
    }
    // Enrollment took one token.
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 200).count(), 2);
    assert_eq!(statuses[3].1["error"], "rate_limited");
    assert_eq!(
        r.signed(&c, "GET", "/v1/envelopes", vec![]).await.0,
        200,
        "other devices unaffected"
    );
}

async fn health_metrics_openapi(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    assert_eq!(r.push(&dev, &[env_to(&[&dev.id], 10)]).await.0, 200);
    let _ = r.push(&Device::new(), &[env_to(&[&dev.id], 10)]).await;
    let (s, body) = r.raw("GET", "/healthz", &[], vec![]).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let (s, body) = r.raw("GET", "/metrics", &[], vec![]).await;
    assert_eq!(s, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("amanat_envelopes_stored_total 1"), "{text}");
    assert!(
        text.contains("amanat_requests_total{status=\"401\",error=\"unknown_device\"} 1"),
        "{text}"
    );
    assert!(text.contains("amanat_sequence_max 1"));
    let (s, body) = r.raw("GET", "/openapi.json", &[], vec![]).await;
    assert_eq!(s, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/v1/envelopes"]["post"].is_object());
    // The served document lists every error code the relay can send.
    let listed = doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_array()
        .unwrap();
    for c in relay::ErrorCode::ALL {
        assert!(listed.contains(&c.as_str().into()), "{c:?}");
    }
    assert_eq!(listed.len(), relay::ErrorCode::ALL.len());
    let (s, body) = r.raw("GET", "/nope", &[], vec![]).await;
    assert_eq!(s, 404);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["error"],
        "not_found"
    );
}

/// The four auth headers for `method path body`, signed now by `dev`.
fn auth_headers(
    dev: &Device,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let h = amanat_protocol::sign_request(&dev.key, method, path, relay::now_ms(), body).unwrap();
    h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Asserts an answer is the documented JSON error shape with `code`.
fn assert_json_error(got: (u16, Vec<u8>), status: u16, code: &str) {
    let text = String::from_utf8_lossy(&got.1).into_owned();
    let body: serde_json::Value =
        serde_json::from_slice(&got.1).unwrap_or_else(|_| panic!("not JSON ({}): {text:?}", got.0));
    assert_eq!(
        (got.0, body["error"].as_str()),
        (status, Some(code)),
        "{text}"
    );
}

async fn every_answer_is_json_and_auth_comes_first(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let bad = "%FF%FF";
    // Not valid UTF-8 once decoded: unsigned requests are refused as unsigned, not as bad paths.
    for (method, path) in [
        ("GET", format!("/v1/blobs/{bad}/status")),
        ("GET", format!("/v1/blobs/{bad}")),
        ("PUT", format!("/v1/blobs/{bad}?offset=0")),
        ("POST", format!("/v1/blobs/{bad}/complete")),
    ] {
        let body: &[u8] = if method == "PUT" { b"x" } else { b"" };
        let got = r.raw(method, &path, &[], body.to_vec()).await;
        assert_json_error(got, 401, "unsigned_request");
        // Signed: the address is checked after authentication, with the JSON code.
        let headers = auth_headers(&dev, method, &path, body);
        let got = r.raw(method, &path, &headers, body.to_vec()).await;
        assert_json_error(got, 400, "malformed_blob_address");
    }
    // A percent-encoded address is not the address that was signed: refused, not decoded.
    let sha = sha_hex(b"blob");
    let encoded: String = sha.bytes().map(|c| format!("%{c:02x}")).collect();
    let path = format!("/v1/blobs/{encoded}/status");
    let got = r
        .raw("GET", &path, &auth_headers(&dev, "GET", &path, b""), vec![])
        .await;
    assert_json_error(got, 400, "malformed_blob_address");
    // A wrong method on a known route: JSON 405, not an empty body.
    for (method, path) in [
        ("DELETE", "/v1/envelopes"),
        ("PUT", "/v1/enroll"),
        ("GET", "/v1/enroll"),
        ("POST", "/v1/blobs/00/status"),
        ("PATCH", "/healthz"),
    ] {
        let got = r.raw(method, path, &[], vec![]).await;
        assert_json_error(got, 405, "method_not_allowed");
    }
    let resp = r.http.delete(r.url("/v1/envelopes")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let mut allow: Vec<&str> = resp.headers()["allow"]
        .to_str()
        .unwrap()
        .split(",")
        .collect();
    allow.sort();
    assert_eq!(allow, ["GET", "HEAD", "POST"]);
    assert_eq!(resp.headers()["content-type"], "application/json");
    // Unknown route, payload too large, bad JSON: all JSON.
    assert_json_error(
        r.raw("GET", "/v2/nothing", &[], vec![]).await,
        404,
        "not_found",
    );
    let big = vec![b'x'; 600 * 1024];
    assert_json_error(
        r.raw("POST", "/v1/envelopes", &[], big).await,
        413,
        "body_too_large",
    );
    let got = r
        .raw("POST", "/v1/revocations", &[], b"{not json".to_vec())
        .await;
    assert_json_error(got, 400, "malformed_body");
}

async fn signed_numbers_parsed_strictly(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    // The timestamp header must be the exact decimal that was signed: no sign, no leading zero.
    let now = relay::now_ms();
    for forged in [
        format!("+{now}"),
        format!("0{now}"),
        format!("00{now}"),
        format!("{now}.0"),
        format!("{:0>40}", now),
    ] {
        let h = amanat_protocol::sign_request(&dev.key, "GET", "/v1/envelopes", now, b"").unwrap();
        let mut headers: Vec<(&str, String)> =
            h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
        headers[1].1 = forged.clone();
        let got = r.raw("GET", "/v1/envelopes", &headers, vec![]).await;
        assert_json_error(got, 400, "malformed_auth");
    }
    // Each header once: a second copy (even an identical one) is refused.
    let mut headers = auth_headers(&dev, "GET", "/v1/envelopes", b"");
    headers.push(headers[1].clone());
    assert_json_error(
        r.raw("GET", "/v1/envelopes", &headers, vec![]).await,
        400,
        "malformed_auth",
    );
    // Hex fields are lowercase, as produced by the protocol crate (one text per value).
    let h = amanat_protocol::sign_request(&dev.key, "GET", "/v1/envelopes", now, b"").unwrap();
    let mut headers: Vec<(&str, String)> =
        h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect();
    headers[3].1 = headers[3].1.to_uppercase();
    assert_json_error(
        r.raw("GET", "/v1/envelopes", &headers, vec![]).await,
        400,
        "malformed_auth",
    );
    // Query numbers: digits only, no leading zero, no percent-encoding, no repeats, known names.
    for query in [
        "after=+1",
        "after=01",
        "after=-1",
        "after=%31",
        "after=",
        "after=1&after=2",
        "limit=0",
        "limit=+5",
        "limit=05",
        "limit=1e3",
        "after=99999999999999999999",
        "after=1&colour=blue",
        "after=1;limit=2",
        "after",
    ] {
        let path = format!("/v1/envelopes?{query}");
        let got = r
            .raw("GET", &path, &auth_headers(&dev, "GET", &path, b""), vec![])
            .await;
        assert_json_error(got, 400, "malformed_query");
    }
    for query in [
        "after=0",
        "after=0&limit=1",
        "limit=1000000",
        "after=9223372036854775807",
        "",
    ] {
        let path = format!("/v1/envelopes?{query}");
        let (s, out) = r.signed(&dev, "GET", &path, vec![]).await;
        assert_eq!(s, 200, "{query}: {out}");
    }
    let sha = sha_hex(b"abc");
    for query in [
        "offset=+0",
        "offset=00",
        "offset=",
        "offset=0&offset=0",
        "offset=0x0",
        "size=3",
    ] {
        let path = format!("/v1/blobs/{sha}?{query}");
        let got = r
            .raw(
                "PUT",
                &path,
                &auth_headers(&dev, "PUT", &path, b"abc"),
                b"abc".to_vec(),
            )
            .await;
        assert_json_error(got, 400, "malformed_query");
    }
    let path = format!("/v1/blobs/{sha}?offset=0");
    assert_eq!(r.signed(&dev, "PUT", &path, b"abc".to_vec()).await.0, 200);
    let (s, out) = r
        .signed(&dev, "POST", &format!("/v1/blobs/{sha}/complete"), vec![])
        .await;
    assert_eq!(s, 200, "{out}");
    // Range: RFC 9110 digits only; a sign or a space is not a range.
    let path = format!("/v1/blobs/{sha}");
    for range in [
        "bytes=+0-1",
        "bytes=0-+1",
        "bytes=-+1",
        "bytes= 0-1",
        "bytes=0x0-1",
        "bytes=0-1,2-2",
        "bytes=99999999999999999999-",
    ] {
        let mut headers = auth_headers(&dev, "GET", &path, b"");
        headers.push(("range", range.to_string()));
        let got = r.raw("GET", &path, &headers, vec![]).await;
        assert_json_error(got, 416, "range_not_satisfiable");
    }
    let mut headers = auth_headers(&dev, "GET", &path, b"");
    headers.push(("range", "bytes=1-".to_string()));
    assert_eq!(
        r.raw("GET", &path, &headers, vec![]).await,
        (206, b"bc".to_vec())
    );
}

/// Deferred requests (docs/PROTOCOL.md, "Deferred requests"): a blob chunk signed now and sent
/// later by a phone's background uploader. Accepted on the chunk `PUT` only, inside its own
/// window (not the ±5 min clock), over its own canonical string, without a nonce — so the same
/// request sent twice is answered by the blob's state (`offset_mismatch`), never appended twice.
async fn deferred_requests_only_for_blob_chunks_within_their_window(b: Backend) {
    let r = Relay::start(b, test_config()).await;
    let dev = r.enrolled(DeviceRole::Field).await;
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let sha = sha_hex(&blob);
    let put = |offset: usize| format!("/v1/blobs/{sha}?offset={offset}");
    let now = relay::now_ms();
    let hour = 3_600_000u64;
    // Signed 70 hours ago, valid 72 hours: far outside the clock window, inside its own.
    let window = (now - 70 * hour, now + 2 * hour);
    let first = blob[..50_000].to_vec();
    let (s, out) = r
        .deferred(&dev, "PUT", &put(0), first.clone(), window, |_| {})
        .await;
    assert_eq!(
        (s, &out["offset"]),
        (200, &serde_json::json!(50_000)),
        "{out}"
    );
    // Sent again (the system retried, or someone replayed it): the blob's state answers, and
    // nothing is appended twice.
    let (s, out) = r
        .deferred(&dev, "PUT", &put(0), first.clone(), window, |_| {})
        .await;
    assert_eq!((s, out["error"].as_str()), (409, Some("offset_mismatch")));
    assert_eq!(out["offset"], 50_000);
    // Outside the window: expired, issued in the future, or a window longer than 72 h.
    for (w, status, code) in [
        ((now - 73 * hour, now - hour), 401, "stale_timestamp"),
        ((now + 10 * 60_000, now + hour), 401, "stale_timestamp"),
        ((now - hour, now + 72 * hour), 400, "malformed_auth"),
        ((now, now), 400, "malformed_auth"),
    ] {
        let (s, out) = r
            .deferred(
                &dev,
                "PUT",
                &put(50_000),
                blob[50_000..].to_vec(),
                w,
                |_| {},
            )
            .await;
        assert_eq!((s, out["error"].as_str()), (status, Some(code)), "{w:?}");
    }
    // The expiry is signed: changed (even to an earlier time), the signature fails. A normal
    // signature with an expiry header added is not a deferred one either (own first line).
    let expires_set_to = |v: String| {
        move |h: &mut Vec<(&'static str, String)>| {
            h.retain(|(k, _)| *k != amanat_protocol::HEADER_EXPIRES);
            h.push((amanat_protocol::HEADER_EXPIRES, v));
        }
    };
    let (s, out) = r
        .deferred(
            &dev,
            "PUT",
            &put(50_000),
            blob[50_000..].to_vec(),
            window,
            expires_set_to((now + hour).to_string()),
        )
        .await;
    assert_eq!((s, out["error"].as_str()), (401, Some("bad_signature")));
    let normal =
        amanat_protocol::sign_request(&dev.key, "PUT", &put(50_000), now, &blob[50_000..]).unwrap();
    let mut headers: Vec<(&str, String)> = normal
        .pairs()
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    headers.push((amanat_protocol::HEADER_EXPIRES, (now + hour).to_string()));
    let (s, out) = r
        .raw("PUT", &put(50_000), &headers, blob[50_000..].to_vec())
        .await;
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((s, out["error"].as_str()), (401, Some("bad_signature")));
    for bad in ["", "+1", "01", "abc"] {
        let (s, out) = r
            .deferred(
                &dev,
                "PUT",
                &put(50_000),
                blob[50_000..].to_vec(),
                window,
                expires_set_to(bad.to_string()),
            )
            .await;
        assert_eq!(
            (s, out["error"].as_str()),
            (400, Some("malformed_auth")),
            "{bad:?}"
        );
    }
    // Every other route refuses deferred requests, even well signed and in their window.
    let push = serde_json::to_vec(&PushRequest {
        envelopes: vec![env_to(&["hq"], 10)],
    })
    .unwrap();
    for (method, path, body) in [
        ("POST", "/v1/envelopes".to_string(), push),
        ("GET", "/v1/envelopes?after=0&limit=10".to_string(), vec![]),
        ("GET", format!("/v1/blobs/{sha}/status"), vec![]),
        ("POST", format!("/v1/blobs/{sha}/complete"), vec![]),
        ("GET", format!("/v1/blobs/{sha}"), vec![]),
        ("GET", "/v1/revocations".to_string(), vec![]),
    ] {
        let (s, out) = r.deferred(&dev, method, &path, body, window, |_| {}).await;
        assert_eq!(
            (s, out["error"].as_str()),
            (401, Some("deferred_not_allowed")),
            "{method} {path}"
        );
    }
    let stranger = Device::new();
    let enroll = serde_json::to_vec(&EnrollRequest {
        code: r.org.code(DeviceRole::Field, 600),
        signing_public_key: amanat_protocol::to_hex(stranger.key.public_key().as_ref()),
        age_recipient: age::x25519::Identity::generate().to_public().to_string(),
    })
    .unwrap();
    let (s, out) = r
        .deferred(&stranger, "POST", "/v1/enroll", enroll, window, |_| {})
        .await;
    assert_eq!(
        (s, out["error"].as_str()),
        (401, Some("deferred_not_allowed"))
    );
    // The rest of the blob, deferred, then the device's normal `complete`: the blob is whole.
    let (s, out) = r
        .deferred(
            &dev,
            "PUT",
            &put(50_000),
            blob[50_000..].to_vec(),
            window,
            |_| {},
        )
        .await;
    assert_eq!(s, 200, "{out}");
    let (s, out) = r
        .signed(&dev, "POST", &format!("/v1/blobs/{sha}/complete"), vec![])
        .await;
    assert_eq!(
        (s, &out["complete"]),
        (200, &serde_json::json!(true)),
        "{out}"
    );
    // A revoked device's deferred chunks are refused like its normal requests.
    let rev = Revocation::issue(&r.org.key, &r.org.public.fingerprint, &dev.id, now / 1000);
    let (s, _) = r
        .raw(
            "POST",
            "/v1/revocations",
            &[],
            serde_json::to_vec(&rev).unwrap(),
        )
        .await;
    assert_eq!(s, 200);
    let other: Vec<u8> = vec![7; 10];
    let (s, out) = r
        .deferred(
            &dev,
            "PUT",
            &format!("/v1/blobs/{}?offset=0", sha_hex(&other)),
            other,
            window,
            |_| {},
        )
        .await;
    assert_eq!((s, out["error"].as_str()), (403, Some("revoked_device")));
}
