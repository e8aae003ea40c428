//! Shared by the sync fault and malicious-relay tests: an `org init` organisation, the real relay
//! as its own process (`test-relay`, SQLite, killable), the fault-injection proxy devices talk
//! through, HQ's view of the relay, and checks that nothing was duplicated or lost. A test file
//! that declares `mod net;` declares `mod pg;` too (the backend comes from there).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use age::secrecy::SecretString;
use amanat_core::records::cases::{self, Case};
use amanat_core::sync::{self, Request, Response, SyncReport, Transport};
use amanat_core::testing::{FAST_KDF, PASSCODE};
use amanat_core::{Passcode, RecordId, SoftwareKeyProvider, Vault};
use amanat_protocol::{DeviceRole, EnrollRequest, PullResponse};
use amanat_server::org;
use amanat_tests::proxy::Proxy;
use amanat_transport::HttpTransport;
use base64::Engine as _;
use ring::signature::KeyPair;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASS: &str = "correct horse battery staple";

pub fn pass() -> SecretString {
    SecretString::from(PASS.to_string())
}

/// A tiny deterministic PRNG (xorshift64*) for kill points; the seed is printed on failure.
pub struct Rng(pub u64);

impl Rng {
    pub fn seeded() -> Self {
        let seed = std::env::var("AMANAT_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("fault seed {seed} (AMANAT_FAULT_SEED to replay)");
        Self(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The relay as a child process on a database directory that outlives it.
pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl RelayProcess {
    pub fn spawn(org_pub: &Path, db: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_test-relay"))
            .arg(org_pub)
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .expect("relay started")
            .parse()
            .unwrap();
        Self { child, addr }
    }

    /// SIGKILL: no graceful shutdown, in-flight requests cut wherever they are.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RelayProcess {
    /// A test that panics must not leave its relay running (it would hold the test's output
    /// pipe open); after [`RelayProcess::kill`] this finds it gone already.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `org init` organisation, the relay process, and the proxy devices talk through.
pub struct Net {
    pub tmp: tempfile::TempDir,
    pub org_dir: PathBuf,
    /// The relay's database (folder or PostgreSQL URL).
    db: String,
    relay: Mutex<Option<RelayProcess>>,
    pub proxy: Proxy,
    /// Talks to the relay directly (HQ's view), bypassing the proxy.
    pub http: HttpTransport,
}

impl Net {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        org::init(&org_dir, &pass(), Some(10)).unwrap();
        // The relay's database: a folder (SQLite), or a fresh PostgreSQL database in the
        // `postgres::` twins. It outlives every relay process started on it.
        let db = match crate::pg::backend() {
            crate::pg::Backend::Sqlite => {
                let dir = tmp.path().join("relay");
                std::fs::create_dir_all(&dir).unwrap();
                dir.display().to_string()
            }
            crate::pg::Backend::Postgres => crate::pg::fresh_database(),
        };
        let relay = RelayProcess::spawn(&org_dir.join("org.pub"), &db);
        let proxy = Proxy::start(relay.addr).unwrap();
        Self {
            tmp,
            org_dir,
            db,
            relay: Mutex::new(Some(relay)),
            proxy,
            http: HttpTransport::new(Duration::from_secs(20)),
        }
    }

    pub fn relay_addr(&self) -> SocketAddr {
        self.relay.lock().unwrap().as_ref().unwrap().addr
    }

    /// Kills the relay (SIGKILL); the proxy refuses connections until [`Net::restart_relay`].
    pub fn kill_relay(&self) {
        if let Some(r) = self.relay.lock().unwrap().take() {
            self.proxy.set_upstream(None);
            r.kill();
        }
    }

    /// Starts the relay again on the same database (another port; the proxy follows it).
    pub fn restart_relay(&self) {
        let r = RelayProcess::spawn(&self.org_dir.join("org.pub"), &self.db);
        self.proxy.set_upstream(Some(r.addr));
        *self.relay.lock().unwrap() = Some(r);
    }

    /// Another relay process on the same database (several stateless relays on one
    /// PostgreSQL); the caller keeps it alive and talks to it directly.
    pub fn spawn_relay(&self) -> RelayProcess {
        RelayProcess::spawn(&self.org_dir.join("org.pub"), &self.db)
    }

    /// A field device enrolled directly at the relay listening on `url` (no proxy).
    pub fn enrolled_at(&self, name: &str, url: &str) -> (Vault, sync::Enrollment) {
        let v = self.open(name);
        let code = serde_json::to_string(
            &org::enroll_code(&self.org_dir, &pass(), 3600, DeviceRole::Field).unwrap(),
        )
        .unwrap();
        let e = sync::enroll(&v, &code, url, &self.http).unwrap();
        (v, e)
    }

    /// Every envelope routed to the caller at the relay on `addr`: (seq, id, sender).
    pub fn pulled_from(
        &self,
        addr: SocketAddr,
        key: &ring::signature::Ed25519KeyPair,
    ) -> Vec<(u64, String, String)> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let path = format!("/v1/envelopes?after={after}&limit=500");
            let h = amanat_protocol::sign_request(key, "GET", &path, now, b"").unwrap();
            let resp = self
                .http
                .send(&Request {
                    method: "GET".into(),
                    base_url: format!("http://{addr}"),
                    path,
                    headers: h
                        .pairs()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    body: Vec::new(),
                })
                .unwrap();
            assert_eq!(resp.status, 200);
            let page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
            out.extend(page.envelopes.into_iter().map(|e| (e.seq, e.id, e.sender)));
            after = page.next_after;
            if !page.more {
                return out;
            }
        }
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn open(&self, name: &str) -> Vault {
        let dir = self.dir(name);
        let provider = Arc::new(SoftwareKeyProvider::new(dir.join("device.key")));
        let passcode = Passcode::from(PASSCODE);
        if Vault::exists(dir.join("vault")) {
            let v = Vault::open(dir.join("vault"), provider).unwrap();
            v.unlock(&passcode).unwrap();
            v
        } else {
            std::fs::create_dir_all(&dir).unwrap();
            Vault::create(dir.join("vault"), &passcode, provider, FAST_KDF).unwrap()
        }
    }

    /// A field device enrolled through the proxy (its relay URL is the proxy's).
    pub fn enrolled(&self, name: &str) -> (Vault, sync::Enrollment) {
        let v = self.open(name);
        let code = serde_json::to_string(
            &org::enroll_code(&self.org_dir, &pass(), 3600, DeviceRole::Field).unwrap(),
        )
        .unwrap();
        let e = sync::enroll(&v, &code, &self.proxy.url(), &self.http).unwrap();
        (v, e)
    }

    pub fn raw(
        &self,
        key: &ring::signature::Ed25519KeyPair,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Response {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let h = amanat_protocol::sign_request(key, method, path, now, &body).unwrap();
        let mut headers: Vec<(String, String)> = h
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.push(("content-type".into(), "application/json".into()));
        self.http
            .send(&Request {
                method: method.into(),
                base_url: format!("http://{}", self.relay_addr()),
                path: path.into(),
                headers,
                body,
            })
            .unwrap()
    }

    /// An HQ installation's vault (`sync::hq`) enrolled through the proxy, holding the identities
    /// of `groups`.
    #[allow(dead_code)] // used by some of the test crates that include this module
    pub fn hq_vault(&self, name: &str, groups: &[&str]) -> (Vault, sync::Enrollment) {
        let v = self.open(name);
        let code = serde_json::to_string(
            &org::enroll_code(&self.org_dir, &pass(), 3600, DeviceRole::Hq).unwrap(),
        )
        .unwrap();
        let e = sync::enroll(&v, &code, &self.proxy.url(), &self.http).unwrap();
        for g in groups {
            let id = org::group_identity(&self.org_dir, &pass(), g).unwrap();
            use age::secrecy::ExposeSecret;
            sync::hq::import_group_identity(&v, g, id.expose_secret()).unwrap();
        }
        (v, e)
    }

    /// The age recipient of an organisation group, from `org.pub`.
    #[allow(dead_code)]
    pub fn hq_vault_recipient(&self, group: &str) -> String {
        let org = amanat_protocol::OrgPublic::from_json(
            &std::fs::read(self.org_dir.join("org.pub")).unwrap(),
        )
        .unwrap();
        org.groups[group].clone()
    }

    /// Enrolls an HQ installation directly at the relay and returns its key.
    pub fn hq(&self) -> ring::signature::Ed25519KeyPair {
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

    /// Every envelope routed to HQ: (id, sender, payload).
    pub fn hq_envelopes(
        &self,
        key: &ring::signature::Ed25519KeyPair,
    ) -> Vec<(String, String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let resp = self.raw(
                key,
                "GET",
                &format!("/v1/envelopes?after={after}&limit=500"),
                Vec::new(),
            );
            assert_eq!(resp.status, 200);
            let page: PullResponse = serde_json::from_slice(&resp.body).unwrap();
            for e in page.envelopes {
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(e.payload)
                    .unwrap();
                out.push((e.id, e.sender, payload));
            }
            after = page.next_after;
            if !page.more {
                return out;
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.kill_relay();
    }
}

/// `n` cases on `a`, each shared with `b` and given a status: 2 outbox entries per case.
pub fn write_cases(a: &Vault, b: &sync::Enrollment, n: usize) -> Vec<Case> {
    (0..n)
        .map(|i| {
            let c = cases::create_case(a).unwrap();
            sync::share_case(a, c.id, &b.signing_public_key, &b.age_recipient).unwrap();
            cases::set_field(a, c.id, "status", &format!("s{i}")).unwrap()
        })
        .collect()
}

/// Runs `sync_once` until a run finishes uninterrupted (at most `max` runs); returns the reports.
pub fn sync_until_done(v: &Vault, t: &dyn Transport, max: usize) -> Vec<SyncReport> {
    let mut reports = Vec::new();
    for _ in 0..max {
        let r = sync::sync_once(v, t).unwrap();
        let done = r.interrupted.is_none();
        reports.push(r);
        if done {
            return reports;
        }
    }
    panic!("no uninterrupted run in {max}: {reports:?}");
}

/// `peer` registers `author` as a team device (phase 1: the caller vouches for its keys), so it
/// accepts what `author` signs.
pub fn trust(peer: &Vault, author: &sync::Enrollment) {
    let any_case = RecordId::from_bytes([0x7A; 16]);
    sync::share_case(
        peer,
        any_case,
        &author.signing_public_key,
        &author.age_recipient,
    )
    .unwrap();
}

/// The peer holds exactly the author's cases, field for field.
pub fn assert_replica(author: &Vault, peer: &Vault) {
    let mut want = cases::list_cases(author).unwrap();
    let mut got = cases::list_cases(peer).unwrap();
    want.sort_by_key(|c| c.id);
    got.sort_by_key(|c| c.id);
    assert_eq!(want.len(), got.len(), "case count");
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.id, g.id);
        assert_eq!(w.code, g.code);
        assert_eq!(w.fields, g.fields, "fields of {}", w.code.as_str());
    }
}

/// The relay's HQ routing holds `entries` envelopes from `author`, with distinct ids (the relay
/// keys them by id, so a change resent under a new id would show up as one more). Any other
/// sender is a field device that sent only its profile (one envelope) and nothing else.
pub fn assert_hq_holds_exactly(
    net: &Net,
    hq: &ring::signature::Ed25519KeyPair,
    author: &str,
    entries: usize,
) {
    let envs = net.hq_envelopes(hq);
    let ids: BTreeSet<&str> = envs.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), envs.len(), "ids unique at the relay");
    let from_author = envs.iter().filter(|(_, s, _)| s == author).count();
    assert_eq!(
        from_author, entries,
        "one envelope per queued change, no more, no less"
    );
    let mut others: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (_, s, _) in envs.iter().filter(|(_, s, _)| s != author) {
        *others.entry(s.as_str()).or_default() += 1;
    }
    assert!(others.values().all(|n| *n == 1), "{others:?}");
}

/// Outbox entries the author's case writes made (what a team device receives): one per case
/// created, one per status set.
pub fn case_entries(author: &Vault) -> usize {
    cases::list_cases(author)
        .unwrap()
        .iter()
        .map(|c| 1 + usize::from(c.fields.contains_key("status")))
        .sum()
}

/// Every outbox entry the author ever queued (what HQ's routing receives): its case writes, one
/// per audit-chain entry (each audit entry travels to HQ, queued in its own transaction), and
/// the field device's profile queued at enrollment.
pub fn entries_written(author: &Vault) -> usize {
    let store = author.store().unwrap();
    case_entries(author) + amanat_core::journal::audit::entries(&store).unwrap().len() + 1
}

/// A fresh UUIDv7 (text), as a device makes envelope ids.
pub fn new_envelope_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut random = [0u8; 10];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
    uuid::Builder::from_unix_timestamp_millis(ms, &random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Pushes one envelope with `payload` to device `to`, as an HQ installation enrolled at the relay
/// with `key` would (orders, forged or real).
pub fn push_as_hq(net: &Net, key: &ring::signature::Ed25519KeyPair, to: &str, payload: String) {
    let body = serde_json::to_vec(&amanat_protocol::PushRequest {
        envelopes: vec![amanat_protocol::Envelope {
            id: new_envelope_id(),
            recipients: vec![to.to_string()],
            payload,
        }],
    })
    .unwrap();
    assert_eq!(net.raw(key, "POST", "/v1/envelopes", body).status, 200);
}

/// The reason codes of what `v` keeps in quarantine.
pub fn quarantine_reasons(v: &Vault) -> Vec<String> {
    sync::quarantined(v)
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect()
}
