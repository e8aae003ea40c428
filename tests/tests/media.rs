//! Attachments through the relay's resumable blob API (issue #11 items 2 [attachment metadata]
//! and 6), end to end: the real relay on 127.0.0.1, an `org init` organisation, the built-in HTTP
//! transport, and a transport wrapper that counts request bytes and breaks the connection after a
//! number of blob requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::SecretString;
use amanat_core::records::attachments::{
    self, AttachmentError, AttachmentReader, AttachmentWriter,
};
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::sync::background;
use amanat_core::sync::envelope;
use amanat_core::sync::{
    self, AttachmentMeta, Cancel, Control, Interruption, Observer, Phase, Progress, Request,
    Response, Transport, TransportError, BLOB_CHUNK,
};
use amanat_core::testing::{create_vault, PASSCODE};
use amanat_core::{Passcode, Vault};
use amanat_protocol::{DeviceRole, EnrollRequest, OrgPublic, PullResponse};
use amanat_server::org;
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig, RunningRelay};
use amanat_transport::HttpTransport;
use base64::Engine as _;
use ring::signature::KeyPair;
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
    #[allow(dead_code)]
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
        let storage = SqliteStorage::open(&tmp.path().join("relay")).unwrap();
        let running = rt
            .block_on(relay::start(
                "127.0.0.1:0".parse().unwrap(),
                org.clone(),
                config,
                storage,
            ))
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

    fn enrolled(&self, name: &str) -> (Vault, sync::Enrollment) {
        self.enrolled_via(name, &self.url)
    }

    /// Enrolled with `relay_url` (e.g. a proxy in front of the relay) as its relay.
    fn enrolled_via(&self, name: &str, relay_url: &str) -> (Vault, sync::Enrollment) {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let v = create_vault(&dir).unwrap();
        let code = org::enroll_code(&self.org_dir, &pass(), 3600, DeviceRole::Field).unwrap();
        let code = serde_json::to_string(&code).unwrap();
        let e = sync::enroll(&v, &code, relay_url, &self.http).unwrap();
        (v, e)
    }

    /// A group identity as `org init` wrote it (age scrypt under the passphrase).
    fn group_identity(&self, group: &str) -> age::x25519::Identity {
        let ct =
            std::fs::read(self.org_dir.join("groups").join(format!("{group}.key.age"))).unwrap();
        let plain = age::decrypt(&age::scrypt::Identity::new(pass()), &ct).unwrap();
        std::str::from_utf8(&plain).unwrap().parse().unwrap()
    }

    /// Path of a complete blob in the relay's blob directory.
    fn relay_blob(&self, sha: &str) -> PathBuf {
        self.tmp.path().join("relay").join("blobs").join(sha)
    }

    /// Raw signed request with a bare Ed25519 key (an HQ installation without a vault).
    fn raw(
        &self,
        key: &ring::signature::Ed25519KeyPair,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Response {
        let h = amanat_protocol::sign_request(key, method, path, relay::now_ms(), &body).unwrap();
        let headers = h
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
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

    /// Enrolls an HQ installation (role `hq`) and returns its key.
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

    /// Every envelope routed to HQ, as payload bytes.
    fn hq_payloads(&self, key: &ring::signature::Ed25519KeyPair) -> Vec<Vec<u8>> {
        let resp = self.raw(key, "GET", "/v1/envelopes?after=0&limit=1000", Vec::new());
        assert_eq!(resp.status, 200);
        let page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
        page.envelopes
            .into_iter()
            .map(|e| {
                base64::engine::general_purpose::STANDARD
                    .decode(e.payload)
                    .unwrap()
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

/// What the wrapper saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    range: Option<String>,
    body_len: usize,
    /// The answer's body length, if an answer reached the device.
    answer_len: Option<usize>,
}

/// Wraps the real transport: records every request (method, path, body length) and breaks the
/// connection on chosen blob requests. `lose_put_answer_after = Some(n)`: the (n+1)-th chunk
/// upload reaches the relay but its answer is lost, and every later request fails to connect.
/// `fail_range_after = Some(n)`: the (n+1)-th ranged download and everything after fail.
struct Faulty<'a> {
    inner: &'a HttpTransport,
    lose_put_answer_after: Option<usize>,
    fail_range_after: Option<usize>,
    seen: Mutex<Vec<Seen>>,
    broken: Mutex<bool>,
}

impl<'a> Faulty<'a> {
    fn new(inner: &'a HttpTransport) -> Self {
        Self {
            inner,
            lose_put_answer_after: None,
            fail_range_after: None,
            seen: Mutex::new(Vec::new()),
            broken: Mutex::new(false),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn puts(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "PUT" && s.path.starts_with("/v1/blobs/"))
            .collect()
    }

    fn ranged_gets(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "GET" && s.range.is_some())
            .collect()
    }
}

impl Transport for Faulty<'_> {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let range = request
            .headers
            .iter()
            .find(|(k, _)| k == "range")
            .map(|(_, v)| v.clone());
        let mut seen = Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            range: range.clone(),
            body_len: request.body.len(),
            answer_len: None,
        };
        if *self.broken.lock().unwrap() {
            self.seen.lock().unwrap().push(seen);
            return Err(TransportError::Connect);
        }
        let is_put = request.method == "PUT";
        let puts_before = self.puts().len();
        let ranged_before = self.ranged_gets().len();
        if range.is_some() && self.fail_range_after.is_some_and(|n| ranged_before >= n) {
            *self.broken.lock().unwrap() = true;
            self.seen.lock().unwrap().push(seen);
            return Err(TransportError::Io);
        }
        let result = self.inner.send(request);
        if is_put && self.lose_put_answer_after.is_some_and(|n| puts_before >= n) {
            // The chunk reached the relay; the answer is lost on the way back.
            *self.broken.lock().unwrap() = true;
            self.seen.lock().unwrap().push(seen);
            return Err(TransportError::Io);
        }
        if let Ok(r) = &result {
            seen.answer_len = Some(r.body.len());
        }
        self.seen.lock().unwrap().push(seen);
        result
    }
}

/// Deterministic bytes that do not compress (a stand-in for audio).
fn audio(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A case on `v` shared both ways between `v` and `peer`, with the given consent, and a draft
/// interview; returns (case id, interview id).
fn shared_case(
    v: &Vault,
    ev: &sync::Enrollment,
    peer: &Vault,
    ep: &sync::Enrollment,
    scopes: &[Scope],
) -> (amanat_core::store::RecordId, String) {
    let case = cases::create_case(v).unwrap();
    consent::record_consent(v, case.id, "worker-17", "uz", scopes).unwrap();
    sync::share_case(v, case.id, &ep.signing_public_key, &ep.age_recipient).unwrap();
    sync::share_case(peer, case.id, &ev.signing_public_key, &ev.age_recipient).unwrap();
    let i = interviews::start(v, case.id, "trafficking_screening", 1, "uz").unwrap();
    (case.id, i.id)
}

/// Records `data` as the narrative audio of `interview`, in 64 KiB writes.
fn record(v: &Vault, interview: &str, data: &[u8]) -> attachments::AttachmentInfo {
    let mut w = AttachmentWriter::open(
        v,
        interview,
        "narrative_audio",
        "audio/ogg",
        attachments::DEFAULT_MAX_BYTES,
    )
    .unwrap();
    for piece in data.chunks(64 * 1024) {
        w.write(piece).unwrap();
    }
    w.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    amanat_protocol::to_hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn stored_file(v: &Vault, id: &str) -> PathBuf {
    v.dir().join("attachments").join(format!("{id}.age"))
}

fn download_file(v: &Vault, id: &str) -> PathBuf {
    v.dir()
        .join("attachments")
        .join(format!("{id}.age.download"))
}

fn read_plain(v: &Vault, id: &str) -> Vec<u8> {
    let mut r = AttachmentReader::open(v, id).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn restart(v: &Vault) {
    v.lock();
    v.unlock(&Passcode::from(PASSCODE)).unwrap();
}

/// A 5 MiB attachment: its blob goes up in 1 MiB chunks (chunk count = size / chunk, every body at
/// most one chunk: memory is one chunk whatever the size), its metadata only after the relay
/// confirmed the blob; HQ's consented group decrypts it, groups without consent cannot (their
/// own `org init` identities); the team device downloads it in ranged chunks, checks both hashes
/// and reads it back.
#[test]
fn a_large_attachment_travels_in_chunks_and_opens_for_consented_recipients_only() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(
        &a,
        &ea,
        &b,
        &eb,
        &[Scope::Interview, Scope::Audio, Scope::ShareLegal],
    );
    let data = audio(5 * 1024 * 1024 + 12_345, 1);
    let info = record(&a, &interview, &data);
    assert_eq!(info.sha256, sha256_hex(&data));
    let blob = std::fs::read(stored_file(&a, &info.id)).unwrap();
    let blob_sha = sha256_hex(&blob);

    let t = Faulty::new(&w.http);
    let report = sync::sync_with(&a, &t, &sync::Control::default()).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    assert_eq!(report.pending, 0);
    let puts = t.puts();
    assert_eq!(puts.len() as u64, (blob.len() as u64).div_ceil(BLOB_CHUNK));
    assert!(puts.iter().all(|p| p.body_len as u64 <= BLOB_CHUNK));
    assert_eq!(puts.iter().map(|p| p.body_len).sum::<usize>(), blob.len());
    assert!(puts
        .iter()
        .all(|p| p.path.starts_with(&format!("/v1/blobs/{blob_sha}?offset="))));
    // Order: the blob is complete at the relay before the envelope naming it is pushed.
    let seen = t.seen();
    let complete_at = seen
        .iter()
        .position(|s| s.path == format!("/v1/blobs/{blob_sha}/complete"))
        .unwrap();
    let last_push = seen
        .iter()
        .rposition(|s| s.method == "POST" && s.path == "/v1/envelopes")
        .unwrap();
    assert!(complete_at < last_push);

    // HQ: the attachment envelope opens for `legal` (consented), is signed by A, names the
    // plaintext and the ciphertext by their hashes.
    let hq = w.hq();
    let legal = w.group_identity("legal");
    let metas: Vec<AttachmentMeta> = w
        .hq_payloads(&hq)
        .iter()
        .filter_map(|p| envelope::open(p, &legal).ok())
        .filter(|r| r.kind == "attachment")
        .map(|r| {
            envelope::verify(&r).unwrap();
            assert_eq!(r.author, ea.device_id);
            serde_json::from_str(&r.content).unwrap()
        })
        .collect();
    assert_eq!(metas.len(), 1);
    let meta = &metas[0];
    assert_eq!(meta.info, info);
    assert_eq!(
        (meta.blob_sha256.as_str(), meta.blob_size),
        (blob_sha.as_str(), blob.len() as u64)
    );
    // The blob at the relay is exactly A's file; legal decrypts it, the groups without consent
    // cannot, even with their own identities.
    let got = w.raw(&hq, "GET", &format!("/v1/blobs/{blob_sha}"), Vec::new());
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), blob_sha);
    let on_disk = w.tmp.path().join("hq-blob.age");
    std::fs::write(&on_disk, &got.body).unwrap();
    let mut plain = Vec::new();
    AttachmentReader::open_file(&on_disk, &[legal])
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    assert!(plain == data);
    for group in ["caseworkers", "law_enforcement", "research"] {
        assert!(
            matches!(
                AttachmentReader::open_file(&on_disk, &[w.group_identity(group)]),
                Err(AttachmentError::NoMatchingKey)
            ),
            "{group} has no consent and must not decrypt"
        );
    }

    // B: pulls the metadata, downloads in ranged chunks, checks, records, reads.
    let tb = Faulty::new(&w.http);
    let report = sync::sync_with(&b, &tb, &sync::Control::default()).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    assert_eq!(
        report.quarantined,
        0,
        "{:?}",
        sync::quarantined(&b).unwrap()
    );
    let gets = tb.ranged_gets();
    assert_eq!(gets.len() as u64, (blob.len() as u64).div_ceil(BLOB_CHUNK));
    assert!(gets
        .iter()
        .all(|g| g.answer_len.unwrap() as u64 <= BLOB_CHUNK));
    assert_eq!(attachments::info(&b, &info.id).unwrap(), info);
    assert!(read_plain(&b, &info.id) == data);
    assert_eq!(std::fs::read(stored_file(&b, &info.id)).unwrap(), blob);
    assert!(!download_file(&b, &info.id).exists());
    assert_eq!(sync::pending_downloads(&b).unwrap(), 0);
    // Idempotent: another run downloads nothing.
    let tb2 = Faulty::new(&w.http);
    sync::sync_with(&b, &tb2, &sync::Control::default()).unwrap();
    assert!(tb2.ranged_gets().is_empty());
    // Custody on both devices: the attachment file matches its record, the envelope its chain.
    for v in [&a, &b] {
        let custody = sync::verify_custody(v).unwrap();
        assert!(custody.failures.is_empty(), "{:?}", custody.failures);
        assert_eq!(custody.attachments, 1);
    }
}

/// An upload broken after two chunks (the second reached the relay, its answer was lost) stops
/// the run with the entry still queued and its metadata not pushed; after a restart (lock and
/// unlock) the next run asks the relay for its offset and sends only the rest: every byte of the
/// file crosses once.
#[test]
fn an_interrupted_upload_resumes_from_the_relays_offset_without_resending_chunks() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let data = audio(4 * 1024 * 1024 + 999, 2);
    let info = record(&a, &interview, &data);
    let blob_len = std::fs::metadata(stored_file(&a, &info.id)).unwrap().len();

    let mut first = Faulty::new(&w.http);
    first.lose_put_answer_after = Some(1);
    let report = sync::sync_with(&a, &first, &sync::Control::default()).unwrap();
    assert!(
        matches!(report.interrupted, Some(Interruption::Transport(_))),
        "{report:?}"
    );
    // The case, consent went out; the attachment's entry waits for its blob.
    assert_eq!(report.pending, 1);
    assert_eq!(first.puts().len(), 2);
    assert!(sync::wedged(&a).unwrap().is_empty());

    restart(&a);
    let second = Faulty::new(&w.http);
    let report = sync::sync_with(&a, &second, &sync::Control::default()).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    assert_eq!(report.pending, 0);
    assert!(second
        .seen()
        .iter()
        .any(|s| s.path.ends_with("/status") && s.method == "GET"));
    let sent: usize = first
        .puts()
        .iter()
        .chain(second.puts().iter())
        .map(|p| p.body_len)
        .sum();
    assert!(
        sent as u64 <= blob_len + BLOB_CHUNK,
        "sent {sent} for {blob_len}"
    );
    assert_eq!(sent as u64, blob_len, "no finished chunk was sent again");
    assert!(second.puts()[0]
        .path
        .ends_with(&format!("?offset={}", 2 * BLOB_CHUNK)));

    // And it arrives whole.
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.quarantined, 0);
    assert!(read_plain(&b, &info.id) == data);
}

/// A download broken after two chunks keeps only ciphertext on disk (the prefix of the blob) and
/// the attachment unrecorded; the partial file survives a restart (lock and unlock) and the next
/// run fetches only the rest.
#[test]
fn an_interrupted_download_resumes_from_the_local_partial_file() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let data = audio(3 * 1024 * 1024 + 4321, 3);
    let info = record(&a, &interview, &data);
    let blob = std::fs::read(stored_file(&a, &info.id)).unwrap();
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);

    let mut first = Faulty::new(&w.http);
    first.fail_range_after = Some(2);
    let report = sync::sync_with(&b, &first, &sync::Control::default()).unwrap();
    assert!(
        matches!(report.interrupted, Some(Interruption::Transport(_))),
        "{report:?}"
    );
    assert_eq!(sync::pending_downloads(&b).unwrap(), 1);
    assert!(matches!(
        attachments::info(&b, &info.id),
        Err(AttachmentError::NotFound)
    ));
    let partial = std::fs::read(download_file(&b, &info.id)).unwrap();
    assert_eq!(partial.len() as u64, 2 * BLOB_CHUNK);
    assert!(partial[..] == blob[..partial.len()], "ciphertext only");

    restart(&b);
    assert!(download_file(&b, &info.id).exists(), "unlock keeps it");
    let second = Faulty::new(&w.http);
    let report = sync::sync_with(&b, &second, &sync::Control::default()).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    let fetched: usize = second
        .ranged_gets()
        .iter()
        .map(|g| g.answer_len.unwrap())
        .sum();
    assert_eq!(fetched, blob.len() - partial.len());
    assert_eq!(
        second.ranged_gets()[0].range.as_deref(),
        Some(format!("bytes={}-{}", 2 * BLOB_CHUNK, 3 * BLOB_CHUNK - 1).as_str())
    );
    assert!(read_plain(&b, &info.id) == data);
    assert_eq!(sync::pending_downloads(&b).unwrap(), 0);
}

/// A blob altered at the relay fails the ciphertext check; a blob whose ciphertext is what the
/// author signed but whose plaintext is not (the sender's file was swapped for another
/// attachment's) fails the plaintext check. Each is quarantined with its reason, its file
/// removed, nothing recorded; the good attachment next to them arrives.
#[test]
fn a_tampered_blob_or_a_swapped_plaintext_is_quarantined_and_nothing_is_recorded() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let first = record(&a, &interview, &audio(1_500_000, 4));
    let second = record(&a, &interview, &audio(700_000, 5));
    let third = record(&a, &interview, &audio(300_000, 6));
    // On A, the second attachment's file is replaced by the third's (same recipients).
    std::fs::copy(stored_file(&a, &third.id), stored_file(&a, &second.id)).unwrap();
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);

    // The relay's copy of the first blob is altered after it was verified.
    let first_sha = sha256_hex(&std::fs::read(stored_file(&a, &first.id)).unwrap());
    let at_relay = w.relay_blob(&first_sha);
    let mut bytes = std::fs::read(&at_relay).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&at_relay, &bytes).unwrap();

    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    assert_eq!(report.quarantined, 2, "{report:?}");
    let mut reasons: Vec<String> = sync::quarantined(&b)
        .unwrap()
        .into_iter()
        .map(|q| {
            assert_eq!(q.sender, ea.device_id);
            q.reason
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["attachment_hash_mismatch", "blob_hash_mismatch"]);
    for bad in [&first, &second] {
        assert!(matches!(
            attachments::info(&b, &bad.id),
            Err(AttachmentError::NotFound)
        ));
        assert!(!stored_file(&b, &bad.id).exists());
        assert!(!download_file(&b, &bad.id).exists());
        assert!(!b
            .dir()
            .join("attachments")
            .join(format!("{}.age.partial", bad.id))
            .exists());
    }
    assert_eq!(attachments::info(&b, &third.id).unwrap(), third);
    assert_eq!(sync::pending_downloads(&b).unwrap(), 0);
    // Quarantined for good: another run neither downloads nor records them.
    let again = Faulty::new(&w.http);
    let report = sync::sync_with(&b, &again, &sync::Control::default()).unwrap();
    assert_eq!(report.quarantined, 0);
    assert!(again.ranged_gets().is_empty());
}

/// A device the case is not shared with gets neither the metadata nor a pending download; the
/// team device does.
#[test]
fn a_device_the_case_is_not_shared_with_gets_no_attachment() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (c, _ec) = w.enrolled("c");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let info = record(&a, &interview, &audio(200_000, 7));
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);
    let report = sync::sync_once(&c, &w.http).unwrap();
    assert_eq!(
        (report.pulled, sync::pending_downloads(&c).unwrap()),
        (0, 0)
    );
    assert!(matches!(
        attachments::info(&c, &info.id),
        Err(AttachmentError::NotFound)
    ));
    sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(read_plain(&b, &info.id).len(), 200_000);
}

/// Cancels the run once `phase` reported `after` chunks done; keeps every report.
struct CancelAfter<'a> {
    cancel: &'a Cancel,
    phase: Phase,
    after: u64,
    reports: Mutex<Vec<Progress>>,
}

impl Observer for CancelAfter<'_> {
    fn progress(&self, p: &Progress) {
        if p.phase == self.phase && p.done >= self.after {
            self.cancel.cancel();
        }
        self.reports.lock().unwrap().push(p.clone());
    }
}

/// Cancellation is honoured between chunks, up and down: the run stops with `Cancelled` after the
/// chunk in flight, progress was reported per chunk, and the next run continues where it stopped.
#[test]
fn cancelling_between_chunks_stops_the_transfer_and_the_next_run_continues() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let data = audio(3 * 1024 * 1024 + 77, 8);
    let info = record(&a, &interview, &data);
    let blob_len = std::fs::metadata(stored_file(&a, &info.id)).unwrap().len();
    let chunks = blob_len.div_ceil(BLOB_CHUNK);

    let cancel = Cancel::new();
    let observer = CancelAfter {
        cancel: &cancel,
        phase: Phase::Upload,
        after: 2,
        reports: Mutex::new(Vec::new()),
    };
    let t = Faulty::new(&w.http);
    let control = Control {
        observer: Some(&observer),
        cancel: Some(&cancel),
    };
    let report = sync::sync_with(&a, &t, &control).unwrap();
    assert_eq!(report.interrupted, Some(Interruption::Cancelled));
    assert_eq!(t.puts().len(), 2);
    assert_eq!(report.pending, 1, "the attachment entry waits");
    let ups: Vec<(u64, u64)> = observer
        .reports
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.phase == Phase::Upload)
        .map(|p| (p.done, p.total))
        .collect();
    assert_eq!(ups, [(0, chunks), (1, chunks), (2, chunks)]);

    let t2 = Faulty::new(&w.http);
    let report = sync::sync_once(&a, &t2).unwrap();
    assert_eq!((report.interrupted, report.pending), (None, 0));
    assert_eq!(t2.puts().len() as u64, chunks - 2);

    let cancel = Cancel::new();
    let observer = CancelAfter {
        cancel: &cancel,
        phase: Phase::Download,
        after: 1,
        reports: Mutex::new(Vec::new()),
    };
    let tb = Faulty::new(&w.http);
    let control = Control {
        observer: Some(&observer),
        cancel: Some(&cancel),
    };
    let report = sync::sync_with(&b, &tb, &control).unwrap();
    assert_eq!(report.interrupted, Some(Interruption::Cancelled));
    assert_eq!(tb.ranged_gets().len(), 1);
    assert_eq!(
        std::fs::metadata(download_file(&b, &info.id))
            .unwrap()
            .len(),
        BLOB_CHUNK
    );
    let tb2 = Faulty::new(&w.http);
    let report = sync::sync_once(&b, &tb2).unwrap();
    assert_eq!(report.interrupted, None);
    assert_eq!(tb2.ranged_gets().len() as u64, chunks - 1);
    assert!(read_plain(&b, &info.id) == data);
}

/// A blob the relay refuses for good (over its size limit) wedges its entry with the relay's
/// code; its metadata is never pushed, everything else is; no device is told of a blob that
/// cannot arrive.
#[test]
fn a_blob_the_relay_refuses_wedges_its_entry_and_its_metadata_stays_home() {
    let w = World::with_config(RelayConfig {
        rate_per_sec: 10_000.0,
        rate_burst: 10_000.0,
        max_blob_bytes: 1024 * 1024,
        ..RelayConfig::default()
    });
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    record(&a, &interview, &audio(1_500_000, 9));
    let report = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    // Case, consent (and audit entries) pushed; the attachment's entry wedged, still queued.
    assert_eq!((report.wedged, report.pending), (1, 1), "{report:?}");
    assert!(report.pushed >= 2);
    let wedged = sync::wedged(&a).unwrap();
    assert_eq!(wedged.len(), 1);
    assert_eq!(
        (wedged[0].kind, wedged[0].reason.as_str()),
        (
            amanat_core::journal::outbox::EntryKind::Attachment,
            "blob_too_large"
        )
    );
    // Later runs leave it alone until the shell retries or discards it.
    let t = Faulty::new(&w.http);
    sync::sync_once(&a, &t).unwrap();
    assert!(t.puts().is_empty());
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.pulled, 2, "case and consent only");
    assert_eq!(sync::pending_downloads(&b).unwrap(), 0);
    assert!(sync::discard_wedged(&a, wedged[0].seq).unwrap());
    assert_eq!(sync::pending(&a).unwrap(), 0);
}

/// An attachment whose file was lost on the device is wedged (`attachment_file_missing`) before
/// anything is sent: its metadata would announce a blob that can never arrive.
#[test]
fn an_attachment_whose_file_is_gone_is_wedged_and_not_announced() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let info = record(&a, &interview, &audio(100_000, 10));
    std::fs::remove_file(stored_file(&a, &info.id)).unwrap();
    let t = Faulty::new(&w.http);
    let report = sync::sync_once(&a, &t).unwrap();
    assert_eq!((report.wedged, report.pending), (1, 1), "{report:?}");
    assert!(report.pushed >= 2);
    assert_eq!(
        sync::wedged(&a).unwrap()[0].reason,
        "attachment_file_missing"
    );
    assert!(t.seen().iter().all(|s| !s.path.starts_with("/v1/blobs/")));
    sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(sync::pending_downloads(&b).unwrap(), 0);
}

/// Recipients are fixed at capture: a team device the case is shared with afterwards receives the
/// metadata, sees from the first chunk (the age header) that it holds no key, and quarantines the
/// attachment as `attachment_undecryptable` without fetching the rest; the case itself arrives.
#[test]
fn a_team_device_added_after_capture_stops_after_the_header_and_quarantines() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "uz",
        &[Scope::Interview, Scope::Audio],
    )
    .unwrap();
    let i = interviews::start(&a, case.id, "trafficking_screening", 1, "uz").unwrap();
    let info = record(&a, &i.id, &audio(3 * 1024 * 1024, 11));
    sync::share_case(&a, case.id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    sync::share_case(&b, case.id, &ea.signing_public_key, &ea.age_recipient).unwrap();
    // A new envelope of the case goes to B now that it is shared.
    cases::set_field(&a, case.id, "status", "open").unwrap();
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);

    let t = Faulty::new(&w.http);
    let report = sync::sync_once(&b, &t).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    assert_eq!(report.quarantined, 1);
    assert_eq!(
        sync::quarantined(&b).unwrap()[0].reason,
        "attachment_undecryptable"
    );
    assert_eq!(t.ranged_gets().len(), 1, "stopped after the header");
    assert!(matches!(
        attachments::info(&b, &info.id),
        Err(AttachmentError::NotFound)
    ));
    assert!(!download_file(&b, &info.id).exists());
    assert_eq!(
        cases::get_case(&b, case.id).unwrap().fields["status"].value,
        "open"
    );
}

/// A team device the receiver trusts, made from a bare key, that signs whatever it likes.
struct RoguePeer {
    key: ring::signature::Ed25519KeyPair,
    device_id: String,
}

impl RoguePeer {
    fn enroll(w: &World) -> Self {
        let key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        let code = org::enroll_code(&w.org_dir, &pass(), 3600, DeviceRole::Field).unwrap();
        let body = serde_json::to_vec(&EnrollRequest {
            code,
            signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
            age_recipient: age::x25519::Identity::generate().to_public().to_string(),
        })
        .unwrap();
        assert_eq!(w.raw(&key, "POST", "/v1/enroll", body).status, 200);
        let device_id = amanat_protocol::device_id(key.public_key().as_ref());
        Self { key, device_id }
    }

    fn upload(&self, w: &World, blob: &[u8]) -> String {
        let sha = sha256_hex(blob);
        for (i, chunk) in blob.chunks(BLOB_CHUNK as usize).enumerate() {
            let offset = i as u64 * BLOB_CHUNK;
            let put = w.raw(
                &self.key,
                "PUT",
                &format!("/v1/blobs/{sha}?offset={offset}"),
                chunk.to_vec(),
            );
            assert_eq!(put.status, 200);
        }
        let done = w.raw(
            &self.key,
            "POST",
            &format!("/v1/blobs/{sha}/complete"),
            Vec::new(),
        );
        assert_eq!(done.status, 200);
        sha
    }

    /// Signs `meta` as an `attachment` envelope (chained after `prev`), encrypts it to `to` and
    /// pushes it routed to `to`; returns its content hash.
    fn announce(
        &self,
        w: &World,
        n: u8,
        meta: &AttachmentMeta,
        to: &sync::Enrollment,
        prev: Option<String>,
    ) -> String {
        let envelope_id = format!("01900000-0000-7000-8000-0000000000{n:02x}");
        let mut rec = envelope::SignedRecord {
            format: envelope::FORMAT,
            envelope_id: envelope_id.clone(),
            kind: "attachment".into(),
            record_id: meta.info.id.clone(),
            version: 1,
            hlc: amanat_core::journal::hlc::Hlc {
                ms: relay::now_ms(),
                counter: u32::from(n),
                node: amanat_core::journal::hlc::NodeId([9; 8]),
            },
            author: String::new(),
            author_key: String::new(),
            prev_hash: prev,
            content_hash: String::new(),
            content: serde_json::to_string(meta).unwrap(),
            signature: String::new(),
        };
        envelope::sign(&mut rec, &self.key);
        let recipient: age::x25519::Recipient = to.age_recipient.parse().unwrap();
        let payload = envelope::seal(&rec, &[recipient]).unwrap();
        let body = serde_json::to_vec(&amanat_protocol::PushRequest {
            envelopes: vec![amanat_protocol::Envelope {
                id: envelope_id,
                recipients: vec![to.device_id.clone()],
                payload: base64::engine::general_purpose::STANDARD.encode(payload),
            }],
        })
        .unwrap();
        assert_eq!(w.raw(&self.key, "POST", "/v1/envelopes", body).status, 200);
        rec.content_hash
    }
}

/// An age file of `plain` for `to` (what a peer's capture makes), and the metadata naming it.
fn peer_attachment(id: &str, plain: &[u8], to: &sync::Enrollment) -> (Vec<u8>, AttachmentMeta) {
    let recipient: age::x25519::Recipient = to.age_recipient.parse().unwrap();
    let blob = age::encrypt(&recipient, plain).unwrap();
    let meta = AttachmentMeta {
        info: attachments::AttachmentInfo {
            id: id.into(),
            interview_id: "11".repeat(16),
            question_id: "narrative_audio".into(),
            media_type: "audio/ogg".into(),
            size: plain.len() as u64,
            sha256: sha256_hex(plain),
            groups: Vec::new(),
        },
        case_id: "22".repeat(16),
        blob_sha256: sha256_hex(&blob),
        blob_size: blob.len() as u64,
    };
    (blob, meta)
}

/// A trusted team device that lies: malformed metadata, a second version of an attachment with
/// other hashes, a blob shorter than it signed, a blob it never uploads. Each is typed
/// (quarantined with its reason, or left pending), never recorded, never an error of the run;
/// its honest attachment (an age file made outside the app) is checked and recorded.
#[test]
fn metadata_from_a_lying_team_device_is_refused_by_reason_and_blocks_nothing() {
    let w = World::new();
    let (b, eb) = w.enrolled("b");
    let rogue = RoguePeer::enroll(&w);
    let case = cases::create_case(&b).unwrap();
    let rogue_age = age::x25519::Identity::generate().to_public().to_string();
    sync::share_case(
        &b,
        case.id,
        &amanat_protocol::to_hex(rogue.key.public_key().as_ref()),
        &rogue_age,
    )
    .unwrap();
    let id = |n: u8| format!("{n:02x}").repeat(16);

    // 1: honest. 2: the same id again with other hashes. 3: malformed (empty blob).
    // 4: signs a blob longer than it uploads. 5: never uploads its blob.
    let honest_plain = audio(2 * 1024 * 1024 + 5, 12);
    let (honest_blob, honest) = peer_attachment(&id(0xa1), &honest_plain, &eb);
    rogue.upload(&w, &honest_blob);
    let (_, mut second_version) = peer_attachment(&id(0xa1), &audio(10, 13), &eb);
    second_version.info.id = id(0xa1);
    let (_, mut malformed) = peer_attachment(&id(0xa3), &audio(10, 14), &eb);
    malformed.blob_size = 0;
    let (short_blob, mut short) = peer_attachment(&id(0xa4), &audio(5000, 15), &eb);
    rogue.upload(&w, &short_blob);
    short.blob_size += 10;
    let (_, missing) = peer_attachment(&id(0xa5), &audio(5000, 16), &eb);
    let first = rogue.announce(&w, 1, &honest, &eb, None);
    // Chained after the first (so the chain rule passes it on): a second version of an
    // immutable attachment.
    rogue.announce(&w, 2, &second_version, &eb, Some(first));
    for (n, meta) in [(3, &malformed), (4, &short), (5, &missing)] {
        rogue.announce(&w, n, meta, &eb, None);
    }

    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    let reasons: Vec<(String, String)> = sync::quarantined(&b)
        .unwrap()
        .into_iter()
        .map(|q| {
            assert_eq!(q.sender, rogue.device_id);
            (q.envelope_id, q.reason)
        })
        .collect();
    let reason_of = |n: u8| {
        reasons
            .iter()
            .find(|(e, _)| e.ends_with(&format!("{n:02x}")))
            .map(|(_, r)| r.as_str())
    };
    assert_eq!(reason_of(1), None);
    assert_eq!(reason_of(2), Some("conflicting_version"));
    assert_eq!(reason_of(3), Some("malformed_content"));
    assert_eq!(reason_of(4), Some("blob_hash_mismatch"));
    assert_eq!(reason_of(5), None);
    assert_eq!(report.quarantined, 3);
    assert_eq!(attachments::info(&b, &honest.info.id).unwrap(), honest.info);
    assert!(read_plain(&b, &honest.info.id) == honest_plain);
    for n in [0xa3, 0xa4, 0xa5] {
        assert!(matches!(
            attachments::info(&b, &id(n)),
            Err(AttachmentError::NotFound)
        ));
    }
    // The blob that never arrived stays pending, asked again next run, harmlessly.
    assert_eq!(sync::pending_downloads(&b).unwrap(), 1);
    let again = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!((again.interrupted, again.quarantined), (None, 0));
    assert_eq!(sync::pending_downloads(&b).unwrap(), 1);
}

/// Through the TCP fault proxy (`amanat_tests::proxy`), counting bytes at the proxy: the answer
/// to the second chunk upload is dropped (the relay stored the chunk), the second ranged download
/// is truncated mid-body. Each run stops `interrupted`; the next resumes, and the chunk bodies
/// that crossed the proxy add up to one blob each way (plus request/response headers) — no
/// finished chunk crossed twice.
#[test]
fn through_the_fault_proxy_an_attachment_resumes_both_ways_without_resending_chunks() {
    use amanat_tests::proxy::{Fault, Proxy};
    let w = World::new();
    let relay_addr: std::net::SocketAddr = w.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(relay_addr).unwrap();
    let (a, ea) = w.enrolled_via("a", &proxy.url());
    let (b, eb) = w.enrolled_via("b", &proxy.url());
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let data = audio(3 * 1024 * 1024 + 321, 17);
    let info = record(&a, &interview, &data);
    let blob_len = std::fs::metadata(stored_file(&a, &info.id)).unwrap().len();
    let chunks = blob_len.div_ceil(BLOB_CHUNK);
    // Headers of one request or answer through the proxy, generously.
    const HEADERS: u64 = 1024;

    proxy.fault("PUT", "/v1/blobs/", 1, 1, Fault::DropResponseAfter(0));
    let report = sync::sync_once(&a, &w.http).unwrap();
    assert!(report.interrupted.is_some(), "{report:?}");
    assert_eq!(proxy.pending_rules(), 0, "the fault fired");
    let report = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(
        (report.interrupted.clone(), report.pending),
        (None, 0),
        "{report:?}"
    );
    let puts: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    assert_eq!(puts.len() as u64, chunks, "every chunk crossed once");
    let up: u64 = puts.iter().map(|s| s.up).sum();
    assert!(
        up >= blob_len && up <= blob_len + chunks * HEADERS,
        "{up} bytes up for a {blob_len}-byte blob"
    );

    proxy.clear();
    proxy.fault("GET", "/v1/blobs/", 1, 1, Fault::TruncateBody(1000));
    let before = proxy.seen().len();
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert!(report.interrupted.is_some(), "{report:?}");
    assert_eq!(proxy.pending_rules(), 0, "the fault fired");
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    let gets: Vec<_> = proxy.seen()[before..]
        .iter()
        .filter(|s| {
            s.method == "GET" && s.path.starts_with("/v1/blobs/") && !s.path.ends_with("/status")
        })
        .cloned()
        .collect();
    // One truncated answer (1000 body bytes) and each chunk once.
    assert_eq!(gets.len() as u64, chunks + 1);
    let down: u64 = gets.iter().map(|s| s.down).sum();
    assert!(
        down >= blob_len && down <= blob_len + 1000 + (chunks + 1) * HEADERS,
        "{down} bytes down for a {blob_len}-byte blob"
    );
    assert!(read_plain(&b, &info.id) == data);
}

/// What a phone's system uploader does with a background plan (iOS background `URLSession`):
/// sends each chunk file as its signed request, and asks the core what follows after each
/// answer — all while the vault is locked. `resend_once_at`: that chunk is sent a second time
/// right after its first answer (the system retrying after a lost answer, or a replay), and the
/// second answer is the one the core sees. Returns (chunk bytes sent, last step per blob).
fn run_system_uploader(
    w: &World,
    vault_dir: &std::path::Path,
    resend_once_at: Option<u64>,
) -> (u64, Vec<background::BackgroundStep>) {
    use background::BackgroundStep;
    let plan = background::background_plan(vault_dir).unwrap().unwrap();
    let mut sent = 0u64;
    let mut ends = Vec::new();
    for (blob, first) in background::background_first(&plan) {
        let mut chunk = first;
        let mut attempt = 1;
        let mut resent = false;
        loop {
            let body = std::fs::read(background::uploads_dir(vault_dir).join(&chunk.file)).unwrap();
            let request = Request {
                method: "PUT".into(),
                base_url: plan.relay_url.clone(),
                path: chunk.path.clone(),
                headers: chunk.headers.clone(),
                body,
            };
            sent += request.body.len() as u64;
            let mut answer = w.http.send(&request).unwrap();
            if resend_once_at == Some(chunk.offset) && !resent {
                resent = true;
                sent += request.body.len() as u64;
                answer = w.http.send(&request).unwrap();
                assert_eq!(answer.status, 409, "a repeat is never appended twice");
            }
            // Re-read from disk each time, as a relaunched app would.
            let plan = background::background_plan(vault_dir).unwrap().unwrap();
            match background::background_next(
                &plan,
                &blob,
                chunk.offset,
                attempt,
                answer.status,
                &answer.body,
                relay::now_ms(),
            ) {
                BackgroundStep::Upload {
                    chunk: next,
                    attempt: a,
                } => {
                    chunk = next;
                    attempt = a;
                }
                end => {
                    ends.push(end);
                    break;
                }
            }
        }
    }
    (sent, ends)
}

/// Every file of the uploads folder, concatenated (plan and chunks).
fn uploads_bytes(vault_dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(background::uploads_dir(vault_dir)).unwrap() {
        out.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    out
}

/// iOS background uploads (issue #15): just before the lock, the core cuts the pending blob into
/// signed chunk files; with the vault locked, the "system" sends them (one twice) and the core's
/// rule chains them; at the next unlock the foreground sync finds the blob at the relay, sends no
/// chunk again, completes it and pushes its metadata, and the team device reads it whole.
#[test]
fn a_locked_phone_sends_its_planned_chunks_and_the_next_sync_sends_none_again() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let data = audio(3 * 1024 * 1024 + 512 * 1024, 5);
    let info = record(&a, &interview, &data);
    let stored = std::fs::read(stored_file(&a, &info.id)).unwrap();

    let plan = background::prepare_background_uploads(&a, u64::MAX, 3_600_000).unwrap();
    assert_eq!(plan.uploads.len(), 1);
    let up = &plan.uploads[0];
    assert_eq!(up.blob_sha256, sha256_hex(&stored));
    assert_eq!(up.chunks.len(), 4);
    let left = plan.expires_ms - a.clock().now_ms();
    assert!((3_590_000..=3_600_000).contains(&left), "{left}");
    // The chunk files are the `.age` file cut at the relay's chunk size: ciphertext only, and
    // nothing in the folder (plan included) holds the recording or names the attachment.
    let mut joined = Vec::new();
    for c in &up.chunks {
        assert!(c.file.ends_with(".chunk") && !c.file.contains(&info.id));
        joined.extend(std::fs::read(background::uploads_dir(a.dir()).join(&c.file)).unwrap());
    }
    assert!(joined == stored);
    let everything = uploads_bytes(a.dir());
    assert!(!everything.windows(32).any(|win| win == &data[4096..4128]));
    assert!(!String::from_utf8_lossy(&everything).contains(&info.id));

    a.lock();
    let (sent, ends) = run_system_uploader(&w, a.dir(), Some(BLOB_CHUNK));
    assert_eq!(ends, vec![background::BackgroundStep::Finished]);
    assert_eq!(
        sent,
        stored.len() as u64 + BLOB_CHUNK,
        "one chunk sent twice"
    );

    // The unlock: the shell discards the plan, the foreground sync takes over.
    a.unlock(&Passcode::from(PASSCODE)).unwrap();
    background::discard_background_uploads(a.dir()).unwrap();
    assert!(!background::uploads_dir(a.dir()).exists());
    let t = Faulty::new(&w.http);
    let report = sync::sync_with(&a, &t, &sync::Control::default()).unwrap();
    assert_eq!(report.interrupted, None, "{report:?}");
    assert_eq!(report.pending, 0);
    assert!(t.puts().is_empty(), "no chunk sent again: {:?}", t.puts());
    assert!(t
        .seen()
        .iter()
        .any(|s| s.method == "POST" && s.path.ends_with("/complete")));
    let report = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(report.quarantined, 0);
    assert!(read_plain(&b, &info.id) == data);
}

/// A plan stops at its byte budget (the foreground sync sends exactly the rest, from the relay's
/// offset); a new plan replaces the old one's files; a panic wipe takes the folder with it, after
/// which the rule answers "stop"; a device that is not enrolled gets no plan.
#[test]
fn a_plan_keeps_to_its_budget_is_replaced_whole_and_goes_with_a_wipe() {
    let w = World::new();
    let (a, ea) = w.enrolled("a");
    let (b, eb) = w.enrolled("b");
    let (_case, interview) = shared_case(&a, &ea, &b, &eb, &[Scope::Interview, Scope::Audio]);
    let data = audio(3 * 1024 * 1024 + 100, 6);
    let info = record(&a, &interview, &data);
    let blob_len = std::fs::metadata(stored_file(&a, &info.id)).unwrap().len();

    let old = background::prepare_background_uploads(&a, u64::MAX, 60_000).unwrap();
    let plan = background::prepare_background_uploads(&a, 2 * BLOB_CHUNK + 10, 60_000).unwrap();
    assert_eq!(plan.uploads[0].chunks.len(), 2);
    for c in &old.uploads[0].chunks {
        assert!(
            !background::uploads_dir(a.dir()).join(&c.file).exists(),
            "old plan's files removed"
        );
    }
    a.lock();
    let (sent, ends) = run_system_uploader(&w, a.dir(), None);
    assert_eq!(sent, 2 * BLOB_CHUNK);
    assert_eq!(ends, vec![background::BackgroundStep::Stop]);

    a.unlock(&Passcode::from(PASSCODE)).unwrap();
    let t = Faulty::new(&w.http);
    let report = sync::sync_with(&a, &t, &sync::Control::default()).unwrap();
    assert_eq!((report.interrupted, report.pending), (None, 0));
    let puts = t.puts();
    assert!(puts[0]
        .path
        .ends_with(&format!("?offset={}", 2 * BLOB_CHUNK)));
    assert_eq!(
        puts.iter().map(|p| p.body_len as u64).sum::<u64>(),
        blob_len - 2 * BLOB_CHUNK
    );

    // Nothing pending: an empty plan. Then a wipe with a plan on disk.
    let empty = background::prepare_background_uploads(&a, u64::MAX, 60_000).unwrap();
    assert!(empty.uploads.is_empty());
    let again = record(&a, &interview, &audio(1000, 7));
    let plan = background::prepare_background_uploads(&a, u64::MAX, 60_000).unwrap();
    assert_eq!(plan.uploads.len(), 1, "{}", again.id);
    a.panic_wipe().unwrap();
    assert!(!background::uploads_dir(a.dir()).exists());
    assert_eq!(background::background_plan(a.dir()).unwrap(), None);

    let dir = w.tmp.path().join("never-enrolled");
    std::fs::create_dir_all(&dir).unwrap();
    let lone = create_vault(&dir).unwrap();
    assert!(matches!(
        background::prepare_background_uploads(&lone, u64::MAX, 60_000),
        Err(sync::SyncError::NotEnrolled)
    ));
}
