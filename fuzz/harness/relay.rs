//! Fuzz harnesses for the relay's own parsing: push, pull and revocation bodies, and the four
//! `x-amanat-*` authentication headers with the canonical request they are checked against.
//!
//! The relay's push validation (`handlers::validate_envelope`) is private to
//! `amanat_server::relay`; rather than widen its API, the harness drives the public router in
//! memory (`tower::ServiceExt::oneshot`) over a SQLite relay in a temporary directory, with one
//! enrolled device whose key signs every request. That is the path a real request takes after the
//! socket, so every check the relay makes is on it. The public parsers (`relay::auth::AuthHeaders`,
//! `relay::validate`) are also called directly.
//!
//! Shared word for word by the fuzz targets and `server/tests/fuzz_regressions.rs` (both include
//! this file with `#[path = …] mod …;`). `run` returns whether the relay accepted the request and
//! panics when an invariant breaks.

// Each fuzz binary uses one harness of this file; the regression test uses both.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amanat_protocol::{sign_request_with_nonce, to_hex, DeviceRole, OrgPublic};
use amanat_server::relay::sqlite::SqliteStorage;
use amanat_server::relay::storage::{DeviceRecord, Storage};
use amanat_server::relay::{self, App, RelayConfig};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

/// A relay in memory: runtime, router, the enrolled fixture device, the organisation.
pub struct Fixture {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    /// The enrolled device's signing key.
    pub device: Ed25519KeyPair,
    /// Its device id.
    pub device_id: String,
    /// The organisation the relay trusts.
    pub org: OrgPublic,
    /// Largest decoded payload the relay accepts (`RelayConfig::envelope_cap`).
    pub max_envelope_bytes: usize,
    /// Most envelopes in one push.
    pub max_batch_envelopes: usize,
    _dir: tempfile::TempDir,
}

/// The process-wide fixture (a relay per input would cost more than the input).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let org_key = Ed25519KeyPair::from_seed_unchecked(&[0x4f; 32]).expect("fixed seed");
        let mut org = OrgPublic {
            version: 1,
            signing_public_key: to_hex(org_key.public_key().as_ref()),
            groups: BTreeMap::new(),
            fingerprint: String::new(),
        };
        org.fingerprint = org.compute_fingerprint();
        let config = RelayConfig {
            // The harness sends thousands of requests a second from one device.
            rate_per_sec: 1e12,
            rate_burst: 1e12,
            ..RelayConfig::default()
        };
        let (max_envelope_bytes, max_batch_envelopes) =
            (config.envelope_cap(), config.max_batch_envelopes);
        let storage = SqliteStorage::open(dir.path()).expect("relay storage");
        let device = Ed25519KeyPair::from_seed_unchecked(&[0x5d; 32]).expect("fixed seed");
        let device_id = amanat_protocol::device_id(device.public_key().as_ref());
        let record = DeviceRecord {
            device_id: device_id.clone(),
            signing_public_key: device.public_key().as_ref().to_vec(),
            age_recipient: "age18xhnq6l8xepfh5fhzxlpjqq6c5krxyze5e0hkefv08l8e92h8sdsslt5fy".into(),
            role: DeviceRole::Hq,
            revocation: None,
        };
        rt.block_on(storage.enroll("fuzz-fixture-code", &record, relay::now_ms() / 1000))
            .expect("enroll the fixture device");
        let app = App::new(storage, org.clone(), config).expect("relay app");
        let router = relay::router(Arc::new(app));
        Fixture {
            rt,
            router,
            device,
            device_id,
            org,
            max_envelope_bytes,
            max_batch_envelopes,
            _dir: dir,
        }
    })
}

/// A nonce never used before in this process (the relay refuses replays).
fn fresh_nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", std::process::id(), n)
}

/// A response as the harness sees it.
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// Every answer of the relay is JSON; every error is `{"error": "<code>", …}`.
    /// Returns the error code of an error.
    fn check_shape(&self) -> Option<String> {
        assert!(
            self.status.as_u16() < 500,
            "relay answered {} to a client's input",
            self.status
        );
        let json = self.headers.get("content-type").map(HeaderValue::as_bytes);
        assert_eq!(json, Some(b"application/json".as_slice()), "not JSON");
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON body");
        if self.status.is_success() {
            return None;
        }
        let code = v
            .get("error")
            .and_then(serde_json::Value::as_str)
            .expect("an error has a code");
        Some(code.to_owned())
    }
}

impl Fixture {
    /// Sends a request through the router.
    pub fn send(&self, req: Request<Body>) -> Reply {
        self.rt.block_on(async {
            let resp = self
                .router
                .clone()
                .oneshot(req)
                .await
                .expect("router is infallible");
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20)
                .await
                .expect("response body");
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
    }

    /// A request signed by the fixture device, now, with a fresh nonce.
    pub fn signed(&self, method: &str, target: &str, body: &[u8]) -> Option<Request<Body>> {
        let h = sign_request_with_nonce(
            &self.device,
            method,
            target,
            relay::now_ms(),
            &fresh_nonce(),
            body,
        );
        let mut req = Request::builder().method(method).uri(target);
        for (name, value) in h.pairs() {
            req = req.header(name, value);
        }
        req.body(Body::from(body.to_vec())).ok()
    }
}

/// Push, pull and revocation bodies.
///
/// Input: one byte selecting the request (`% 3`: push body, revocation body, pull query string),
/// then the body or query.
pub mod relay_push {
    use super::{fixture, Reply};
    use amanat_protocol::{Envelope, PullResponse, PushRequest, PushResponse, Revocation};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use base64::Engine as _;

    /// The push rules of docs/PROTOCOL.md, written out independently of the relay's code.
    fn envelope_ok(e: &Envelope, max_bytes: usize) -> bool {
        let lower_hex = |c: &u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
        let id = e.id.as_bytes();
        let id_ok = id.len() == 36
            && id.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => lower_hex(c),
            })
            && id[14] == b'7'
            && matches!(id[19], b'8' | b'9' | b'a' | b'b');
        // Counted as sent, duplicates included.
        let r = &e.recipients;
        let recipients_ok = !r.is_empty()
            && r.len() <= 64
            && r.iter().all(|x| {
                x == "hq"
                    || (x.len() == 32 && x.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            });
        let payload_ok = base64::engine::general_purpose::STANDARD
            .decode(&e.payload)
            .is_ok_and(|p| !p.is_empty() && p.len() <= max_bytes);
        id_ok && recipients_ok && payload_ok
    }

    fn push(body: &[u8]) -> bool {
        let f = fixture();
        let Some(req) = f.signed("POST", "/v1/envelopes", body) else {
            return false;
        };
        let reply: Reply = f.send(req);
        let code = reply.check_shape();
        let Ok(parsed) = serde_json::from_slice::<PushRequest>(body) else {
            assert_eq!(code.as_deref(), Some("malformed_body"));
            return false;
        };
        let n = parsed.envelopes.len();
        let all_ok = parsed
            .envelopes
            .iter()
            .all(|e| envelope_ok(e, f.max_envelope_bytes));
        match code.as_deref() {
            None => {
                assert!(
                    n > 0 && n <= f.max_batch_envelopes,
                    "batch size not enforced"
                );
                assert!(all_ok, "relay stored an envelope the protocol forbids");
                let resp: PushResponse =
                    serde_json::from_slice(&reply.body).expect("push response");
                assert_eq!(resp.acks.len(), n, "one ack per envelope");
                for (ack, e) in resp.acks.iter().zip(&parsed.envelopes) {
                    assert_eq!(ack.id, e.id, "acks in request order");
                }
                true
            }
            Some("empty_batch") => {
                assert_eq!(n, 0);
                false
            }
            Some("batch_too_large") => {
                assert!(n > f.max_batch_envelopes);
                false
            }
            // The same id pushed earlier with other content or by another sender.
            Some("envelope_id_conflict") => false,
            Some(
                "malformed_envelope_id"
                | "malformed_recipients"
                | "malformed_payload"
                | "envelope_too_large",
            ) => {
                assert!(!all_ok, "relay refused a valid push");
                false
            }
            Some(other) => panic!("unexpected push error {other}"),
        }
    }

    fn revoke(body: &[u8]) -> bool {
        let f = fixture();
        let Ok(req) = Request::builder()
            .method("POST")
            .uri("/v1/revocations")
            .header("content-type", "application/json")
            .body(Body::from(body.to_vec()))
        else {
            return false;
        };
        let reply = f.send(req);
        let code = reply.check_shape();
        let parsed = serde_json::from_slice::<Revocation>(body).ok();
        match code.as_deref() {
            None | Some("device_not_enrolled") => {
                let rev = parsed.expect("accepted revocation parses");
                rev.verify(&f.org).expect("accepted revocation verifies");
                assert_ne!(rev.device_id, f.device_id, "fixture device revoked");
                code.is_none()
            }
            Some("malformed_body") => false,
            Some("invalid_org_signature" | "wrong_organisation") => {
                let rev = parsed.expect("refused signature belongs to a parsed revocation");
                assert!(rev.verify(&f.org).is_err());
                false
            }
            Some(other) => panic!("unexpected revocation error {other}"),
        }
    }

    fn pull(query: &[u8]) -> bool {
        let f = fixture();
        let Ok(query) = std::str::from_utf8(query) else {
            return false;
        };
        let target = format!("/v1/envelopes?{query}");
        let Some(req) = f.signed("GET", &target, b"") else {
            return false;
        };
        let reply = f.send(req);
        match reply.check_shape().as_deref() {
            None => {
                let resp: PullResponse =
                    serde_json::from_slice(&reply.body).expect("pull response");
                let mut last = None;
                for e in &resp.envelopes {
                    assert!(last.is_none_or(|l| e.seq > l), "pull not ascending");
                    last = Some(e.seq);
                }
                if let Some(l) = last {
                    assert_eq!(resp.next_after, l);
                }
                true
            }
            Some("malformed_query") => false,
            // A query that changes the path as the URI parser sees it (e.g. `#`) fails the
            // signature or routing; both are typed errors.
            Some("bad_signature" | "not_found") => false,
            Some(other) => panic!("unexpected pull error {other}"),
        }
    }

    /// Returns whether the relay accepted the request.
    pub fn run(data: &[u8]) -> bool {
        let Some((&mode, rest)) = data.split_first() else {
            return false;
        };
        match mode % 3 {
            0 => push(rest),
            1 => revoke(rest),
            _ => pull(rest),
        }
    }

    /// Valid requests of each kind.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let f = fixture();
        let push = PushRequest {
            envelopes: vec![
                Envelope {
                    id: "01932c07-8e4c-7a3b-9f1e-2b3c4d5e6f70".into(),
                    recipients: vec!["hq".into(), f.device_id.clone()],
                    payload: "YWdlLWVuY3J5cHRpb24ub3JnL3Yx".into(),
                },
                Envelope {
                    id: "01932c07-8e4c-7a3b-9f1e-2b3c4d5e6f71".into(),
                    recipients: vec!["00112233445566778899aabbccddeeff".into()],
                    payload: "AA==".into(),
                },
            ],
        };
        let org_key =
            ring::signature::Ed25519KeyPair::from_seed_unchecked(&[0x4f; 32]).expect("seed");
        let rev = Revocation::issue(
            &org_key,
            &f.org.fingerprint,
            "ffeeddccbbaa99887766554433221100",
            7,
        );
        let with_mode = |m: u8, body: Vec<u8>| [vec![m], body].concat();
        vec![
            (
                "push",
                with_mode(0, serde_json::to_vec(&push).expect("json")),
            ),
            (
                "revocation",
                with_mode(1, serde_json::to_vec(&rev).expect("json")),
            ),
            ("pull", with_mode(2, b"after=0&limit=10".to_vec())),
        ]
    }

    /// The status the seeds must get, to prove they reach the relay's deepest checks.
    pub fn seed_status(name: &str) -> StatusCode {
        match name {
            "revocation" => StatusCode::NOT_FOUND, // device_not_enrolled
            _ => StatusCode::OK,
        }
    }
}

/// The four authentication headers and the canonical request.
///
/// Input: one mask byte, then up to six fields separated by `0x00`: device, timestamp, nonce,
/// signature, method, path. Protocol functions get every field; the relay gets a request to
/// `GET /v1/revocations` correctly signed by the fixture device in which each header whose bit
/// (0–3) is set in the mask is replaced by the fuzzed field, where a `*` in the field stands for
/// the correct value (so `+*` is the correct timestamp with a plus sign: the fuzzer cannot know
/// the current time or forge a signature, but it can dress the real ones). Bits 4–7 drop a header.
pub mod request_headers {
    use super::{fixture, fresh_nonce};
    use amanat_protocol::{
        canonical_request, from_hex, sha256_hex, sign_request_with_nonce, to_hex, verify_ed25519,
        HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    };
    use amanat_server::relay::{self, validate};
    use axum::body::Body;
    use axum::http::{HeaderValue, Request};
    use ring::signature::KeyPair;

    fn check_hex(s: &str) {
        match from_hex(s) {
            Some(bytes) => {
                assert_eq!(to_hex(&bytes), s.to_ascii_lowercase(), "hex round trip");
            }
            None => assert!(
                s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()),
                "valid hex refused"
            ),
        }
    }

    /// One value, one accepted text: whatever `relay::validate` accepts reads back as itself.
    fn check_field_parsers(s: &str) {
        if let Some(v) = validate::decimal(s) {
            assert_eq!(v.to_string(), s, "decimal with two spellings");
            assert!(v <= validate::MAX_INTEGER);
        }
        // Decoded fields (a nonce is compared as text, so any length in 16..=64 is fine).
        for (ok, len) in [
            (validate::is_device_id(s), 32),
            (validate::is_signature(s), 128),
            (validate::is_sha256(s), 64),
        ] {
            if ok {
                assert_eq!(s.len(), len);
                assert_eq!(from_hex(s).map(|b| to_hex(&b)).as_deref(), Some(s));
            }
        }
        if validate::is_nonce(s) {
            assert!((16..=64).contains(&s.len()) && s == s.to_ascii_lowercase());
        }
        if validate::is_uuid_v7(s) {
            assert_eq!(s, s.to_ascii_lowercase());
        }
        if let Some(r) = validate::byte_range(s) {
            let n = |v: u64| assert!(v <= validate::MAX_INTEGER);
            match r {
                validate::ByteRange::From(a, b) => {
                    n(a);
                    if let Some(b) = b {
                        n(b);
                    }
                }
                validate::ByteRange::Suffix(v) => n(v),
            }
        }
        if let Ok(values) = validate::query_numbers(Some(s), ["after", "limit"]) {
            for v in values.into_iter().flatten() {
                assert!(s.contains(&format!("={v}")), "query value not canonical");
            }
        }
    }

    /// The canonical string splits back into exactly its fields when none contains a newline,
    /// so two different requests never sign the same text.
    fn check_canonical(method: &str, path: &str, ts: u64, nonce: &str, body: &[u8]) {
        let body_hash = sha256_hex(body);
        let c = canonical_request(method, path, ts, nonce, &body_hash);
        if [method, path, nonce].iter().any(|f| f.contains('\n')) {
            return;
        }
        let ts_text = ts.to_string();
        let upper = method.to_ascii_uppercase();
        let parts: Vec<&str> = c.split('\n').collect();
        assert_eq!(
            parts,
            [
                "AMANAT-REQUEST-V1",
                upper.as_str(),
                path,
                ts_text.as_str(),
                nonce,
                body_hash.as_str()
            ]
        );
    }

    /// Returns whether the relay accepted the (possibly altered) request.
    pub fn run(data: &[u8]) -> bool {
        let Some((&mask, rest)) = data.split_first() else {
            return false;
        };
        let mut fields = rest.splitn(6, |b| *b == 0);
        let mut next = || fields.next().unwrap_or_default();
        let (device, timestamp, nonce, signature, method, path) =
            (next(), next(), next(), next(), next(), next());
        let f = fixture();
        let key = f.device.public_key().as_ref();

        // Protocol layer and the relay's field parsers, on every field.
        for raw in [device, timestamp, nonce, signature, method, path] {
            let text = String::from_utf8_lossy(raw);
            check_hex(&text);
            check_field_parsers(&text);
        }
        let method_s = String::from_utf8_lossy(method);
        let path_s = String::from_utf8_lossy(path);
        let nonce_s = String::from_utf8_lossy(nonce);
        let ts = String::from_utf8_lossy(timestamp)
            .parse::<u64>()
            .unwrap_or(0);
        check_canonical(&method_s, &path_s, ts, &nonce_s, rest);
        let c = canonical_request(&method_s, &path_s, ts, &nonce_s, &sha256_hex(b""));
        let real = to_hex(f.device.sign(c.as_bytes()).as_ref());
        let fuzzed_sig = String::from_utf8_lossy(signature);
        let verdict = verify_ed25519(key, c.as_bytes(), &fuzzed_sig);
        assert_eq!(
            verdict.is_ok(),
            from_hex(&fuzzed_sig) == from_hex(&real),
            "signature verdict"
        );
        assert!(verify_ed25519(key, c.as_bytes(), &real).is_ok());

        // Relay layer: a correct request with some headers replaced.
        let target = "/v1/revocations";
        let now = relay::now_ms();
        let good = sign_request_with_nonce(&f.device, "GET", target, now, &fresh_nonce(), b"");
        let mut req = Request::builder().method("GET").uri(target);
        let mut sent: [(&str, Vec<u8>); 4] = [
            (HEADER_DEVICE, good.device.clone().into_bytes()),
            (HEADER_TIMESTAMP, good.timestamp.clone().into_bytes()),
            (HEADER_NONCE, good.nonce.clone().into_bytes()),
            (HEADER_SIGNATURE, good.signature.clone().into_bytes()),
        ];
        for (i, raw) in [device, timestamp, nonce, signature]
            .into_iter()
            .enumerate()
        {
            if mask & (1 << i) != 0 {
                sent[i].1 = match raw.iter().position(|b| *b == b'*') {
                    Some(p) => [&raw[..p], sent[i].1.as_slice(), &raw[p + 1..]].concat(),
                    None => raw.to_vec(),
                };
            }
        }
        for (name, value) in &sent {
            let Ok(v) = HeaderValue::from_bytes(value) else {
                return false;
            };
            req = req.header(*name, v);
        }
        let drop = mask >> 4;
        let Ok(mut req) = req.body(Body::empty()) else {
            return false;
        };
        for (i, (name, _)) in sent.iter().enumerate() {
            if drop & (1 << i) != 0 {
                req.headers_mut().remove(*name);
            }
        }
        // The relay's header parser on its own: what it accepts is exactly what was sent, in the
        // one accepted spelling (the signed timestamp text is the number's decimal).
        let parsed_ok = match relay::auth::AuthHeaders::parse(req.headers()) {
            Ok(a) => {
                let text = |i: usize| String::from_utf8_lossy(&sent[i].1).into_owned();
                assert_eq!(a.device, text(0));
                assert_eq!(
                    a.timestamp.to_string(),
                    text(1),
                    "timestamp with two spellings"
                );
                assert_eq!(a.nonce, text(2));
                assert_eq!(a.signature, text(3));
                assert!(validate::is_device_id(a.device) && validate::is_nonce(a.nonce));
                assert!(validate::is_signature(a.signature));
                true
            }
            Err(_) => false,
        };
        let reply = f.send(req);
        let code = reply.check_shape();
        match code.as_deref() {
            None => {
                assert!(parsed_ok, "accepted headers the parser refuses");
                // Accepted: every header is what was signed, in its one textual form.
                assert_eq!(drop, 0, "accepted without a header");
                let text = |i: usize| String::from_utf8_lossy(&sent[i].1).into_owned();
                assert_eq!(text(0), good.device, "device id must be exact");
                assert_eq!(text(2), good.nonce, "nonce must be exact");
                assert_eq!(
                    from_hex(&text(3)),
                    from_hex(&good.signature),
                    "signature must be the signature"
                );
                // Issue #10 item 12: `+<ms>` and `0<ms>` were accepted while `<ms>` was signed.
                assert_eq!(text(1), good.timestamp, "timestamp must be canonical");
                true
            }
            Some(
                "unsigned_request" | "malformed_auth" | "stale_timestamp" | "unknown_device"
                | "bad_signature" | "replayed_nonce",
            ) => {
                let altered = drop != 0
                    || sent[0].1 != good.device.as_bytes()
                    || sent[1].1 != good.timestamp.as_bytes()
                    || sent[2].1 != good.nonce.as_bytes()
                    || sent[3].1 != good.signature.as_bytes();
                assert!(altered, "the unaltered request was refused");
                false
            }
            Some(other) => panic!("unexpected auth error {other}"),
        }
    }

    /// The unaltered request, each header dressed as itself (`*`), and single replacements.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let fields = |mask: u8, parts: [&str; 4]| {
            let mut v = vec![mask];
            for part in parts.iter().chain(&["POST", "/v1/envelopes?after=1"]) {
                v.extend_from_slice(part.as_bytes());
                v.push(0);
            }
            v.pop();
            v
        };
        let sig = "ab".repeat(64);
        let plausible = [
            "00112233445566778899aabbccddeeff",
            "1732800000000",
            "00112233445566778899aabbccddeeff",
            sig.as_str(),
        ];
        vec![
            ("unaltered", fields(0, plausible)),
            ("dressed-as-itself", fields(0b1111, ["*", "*", "*", "*"])),
            ("other-nonce", fields(0b0100, plausible)),
            ("other-signature", fields(0b1000, plausible)),
            ("old-timestamp", fields(0b0010, plausible)),
            ("dropped-device", fields(0b0001_0000, plausible)),
        ]
    }

    /// Whether the relay must accept the seed (the others must be refused).
    pub fn seed_accepted(name: &str) -> bool {
        matches!(name, "unaltered" | "dressed-as-itself")
    }
}
