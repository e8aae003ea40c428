//! Faults between a device and the relay, and the relay itself killed: the real relay runs as its
//! own process (`test-relay`, SQLite), devices reach it through the fault-injection proxy
//! (`amanat_tests::proxy`), and a device can itself be a process (`sync-device`) killed with
//! SIGKILL at random points. After retries nothing may be duplicated or lost: the HQ routing at the
//! relay holds each queued change exactly once, and the peer device's replica equals the author's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::SecretString;
use amanat_core::records::cases::{self, Case};
use amanat_core::sync::{self, Interruption, Request, Response, SyncReport, Transport};
use amanat_core::sync::{TransportError, BACKOFF_BASE_MS};
use amanat_core::testing::{FAST_KDF, PASSCODE};
use amanat_core::{Passcode, RecordId, SoftwareKeyProvider, Vault};
use amanat_protocol::{DeviceRole, EnrollRequest, PullResponse};
use amanat_server::org;
use amanat_tests::proxy::{Fault, Proxy};
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

fn pass() -> SecretString {
    SecretString::from(PASS.to_string())
}

/// A tiny deterministic PRNG (xorshift64*) for kill points; the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
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
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The relay as a child process on a database directory that outlives it.
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
}

impl RelayProcess {
    fn spawn(org_pub: &Path, db: &Path) -> Self {
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
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// An `org init` organisation, the relay process, and the proxy devices talk through.
struct Net {
    tmp: tempfile::TempDir,
    org_dir: PathBuf,
    relay: Mutex<Option<RelayProcess>>,
    proxy: Proxy,
    /// Talks to the relay directly (HQ's view), bypassing the proxy.
    http: HttpTransport,
}

impl Net {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        org::init(&org_dir, &pass(), Some(10)).unwrap();
        let db = tmp.path().join("relay");
        std::fs::create_dir_all(&db).unwrap();
        let relay = RelayProcess::spawn(&org_dir.join("org.pub"), &db);
        let proxy = Proxy::start(relay.addr).unwrap();
        Self {
            tmp,
            org_dir,
            relay: Mutex::new(Some(relay)),
            proxy,
            http: HttpTransport::new(Duration::from_secs(20)),
        }
    }

    fn relay_addr(&self) -> SocketAddr {
        self.relay.lock().unwrap().as_ref().unwrap().addr
    }

    /// Kills the relay (SIGKILL); the proxy refuses connections until [`Net::restart_relay`].
    fn kill_relay(&self) {
        if let Some(r) = self.relay.lock().unwrap().take() {
            self.proxy.set_upstream(None);
            r.kill();
        }
    }

    /// Starts the relay again on the same database (another port; the proxy follows it).
    fn restart_relay(&self) {
        let r = RelayProcess::spawn(
            &self.org_dir.join("org.pub"),
            &self.tmp.path().join("relay"),
        );
        self.proxy.set_upstream(Some(r.addr));
        *self.relay.lock().unwrap() = Some(r);
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn open(&self, name: &str) -> Vault {
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
    fn enrolled(&self, name: &str) -> (Vault, sync::Enrollment) {
        let v = self.open(name);
        let code = serde_json::to_string(
            &org::enroll_code(&self.org_dir, &pass(), 3600, DeviceRole::Field).unwrap(),
        )
        .unwrap();
        let e = sync::enroll(&v, &code, &self.proxy.url(), &self.http).unwrap();
        (v, e)
    }

    fn raw(
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

    /// Enrolls an HQ installation directly at the relay and returns its key.
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

    /// Every envelope routed to HQ: (id, sender, payload).
    fn hq_envelopes(
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
fn write_cases(a: &Vault, b: &sync::Enrollment, n: usize) -> Vec<Case> {
    (0..n)
        .map(|i| {
            let c = cases::create_case(a).unwrap();
            sync::share_case(a, c.id, &b.signing_public_key, &b.age_recipient).unwrap();
            cases::set_field(a, c.id, "status", &format!("s{i}")).unwrap()
        })
        .collect()
}

/// Runs `sync_once` until a run finishes uninterrupted (at most `max` runs); returns the reports.
fn sync_until_done(v: &Vault, t: &dyn Transport, max: usize) -> Vec<SyncReport> {
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
fn trust(peer: &Vault, author: &sync::Enrollment) {
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
fn assert_replica(author: &Vault, peer: &Vault) {
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

/// The relay's HQ routing holds `entries` envelopes, all from `author`, with distinct ids (the
/// relay keys them by id, so a change resent under a new id would show up as one more).
fn assert_hq_holds_exactly(
    net: &Net,
    hq: &ring::signature::Ed25519KeyPair,
    author: &str,
    entries: usize,
) {
    let envs = net.hq_envelopes(hq);
    let ids: BTreeSet<&str> = envs.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), envs.len(), "ids unique at the relay");
    assert_eq!(
        envs.len(),
        entries,
        "one envelope per queued change, no more, no less"
    );
    assert!(envs.iter().all(|(_, s, _)| s == author));
}

#[test]
fn connections_dropped_mid_push_and_mid_pull_and_truncated_answers_lose_and_duplicate_nothing() {
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    // 60 cases: 120 entries, two push batches (100 + 20), two pull pages on B.
    write_cases(&a, &eb, 60);

    // Push: the request cut after 300 bytes (the relay never saw it whole); the answer lost
    // after the relay stored the batch; the answer's body truncated; then clean.
    net.proxy
        .fault("POST", "/v1/envelopes", 0, 1, Fault::DropRequestAfter(300));
    net.proxy
        .fault("POST", "/v1/envelopes", 0, 1, Fault::DropResponseAfter(0));
    net.proxy
        .fault("POST", "/v1/envelopes", 0, 1, Fault::TruncateBody(20));
    let reports = sync_until_done(&a, &net.http, 10);
    assert_eq!(net.proxy.pending_rules(), 0, "every fault fired");
    assert_eq!(reports.len(), 4, "{reports:?}");
    for (i, r) in reports[..3].iter().enumerate() {
        assert!(
            matches!(r.interrupted, Some(Interruption::Transport(_))),
            "run {i}: {r:?}"
        );
        assert_eq!(
            (r.pushed, r.pending),
            (0, 120),
            "nothing leaves without an ack"
        );
        // The retry schedule doubles with each consecutive failure and is persisted.
        let ceiling = BACKOFF_BASE_MS << i;
        let delay = r.retry_after_ms.unwrap();
        assert!((ceiling / 2..=ceiling).contains(&delay), "run {i}: {delay}");
    }
    assert_eq!(
        sync::backoff(&a).unwrap().consecutive_failures,
        0,
        "reset by the success"
    );
    assert_eq!(sync::backoff(&a).unwrap().next_attempt_ms, None);
    let last = &reports[3];
    assert_eq!(
        (last.pushed, last.pending, last.retry_after_ms),
        (120, 0, None)
    );
    // The first batch was stored twice over (lost answer, truncated answer): the relay said so.
    assert_eq!(last.duplicates, 100, "{last:?}");
    assert_hq_holds_exactly(&net, &hq, &ea.device_id, 120);

    // Pull on B: the first page arrives; the second page's answer is cut mid-body, then lost,
    // then its request cut; then clean. Each page applies with its cursor or not at all.
    net.proxy
        .fault("GET", "/v1/envelopes", 1, 1, Fault::TruncateBody(500));
    net.proxy
        .fault("GET", "/v1/envelopes", 0, 1, Fault::DropResponseAfter(30));
    net.proxy
        .fault("GET", "/v1/envelopes", 0, 1, Fault::DropRequestAfter(10));
    let reports = sync_until_done(&b, &net.http, 10);
    assert_eq!(net.proxy.pending_rules(), 0, "every fault fired");
    assert_eq!(reports.len(), 4, "{reports:?}");
    let pulled: Vec<u64> = reports.iter().map(|r| r.pulled).collect();
    assert_eq!(
        pulled.iter().sum::<u64>(),
        120,
        "each envelope applied once: {pulled:?}"
    );
    assert_eq!(pulled[0], 100, "the first page was kept");
    assert!(reports.iter().all(|r| r.quarantined == 0));
    assert_replica(&a, &b);
    // Nothing more to do for anyone.
    let again = sync::sync_once(&b, &net.http).unwrap();
    assert_eq!((again.pulled, again.pending), (0, 0));
}

#[test]
fn answers_delayed_beyond_the_transport_timeout_are_retried_without_duplicates() {
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    write_cases(&a, &eb, 5);
    let impatient = HttpTransport::new(Duration::from_millis(700));
    net.proxy.fault(
        "POST",
        "/v1/envelopes",
        0,
        1,
        Fault::Delay(Duration::from_millis(1500)),
    );
    let first = sync::sync_once(&a, &impatient).unwrap();
    assert_eq!(
        first.interrupted,
        Some(Interruption::Transport(TransportError::Timeout))
    );
    assert_eq!((first.pushed, first.pending), (0, 10));
    let second = sync::sync_once(&a, &impatient).unwrap();
    assert_eq!(
        (second.pushed, second.duplicates, second.pending),
        (10, 10, 0)
    );
    assert_hq_holds_exactly(&net, &hq, &ea.device_id, 10);
    // A slow pull likewise: the page is not applied, the next run applies it once.
    net.proxy.fault(
        "GET",
        "/v1/envelopes",
        0,
        1,
        Fault::Delay(Duration::from_millis(1500)),
    );
    let first = sync::sync_once(&b, &impatient).unwrap();
    assert_eq!(
        (first.pulled, first.interrupted),
        (0, Some(Interruption::Transport(TransportError::Timeout)))
    );
    let second = sync::sync_once(&b, &impatient).unwrap();
    assert_eq!((second.pulled, second.interrupted), (10, None));
    assert_replica(&a, &b);
    // Delays under the timeout change nothing.
    net.proxy
        .fault_every(Some(Fault::Delay(Duration::from_millis(100))));
    cases::set_field(&a, cases::list_cases(&a).unwrap()[0].id, "status", "closed").unwrap();
    assert_eq!(sync::sync_once(&a, &impatient).unwrap().pushed, 1);
    assert_eq!(sync::sync_once(&b, &impatient).unwrap().pulled, 1);
    assert_replica(&a, &b);
}

#[test]
fn relay_killed_and_restarted_mid_sync_loses_and_duplicates_nothing() {
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    let mut rng = Rng::seeded();
    let mut written = 0usize;
    let mut interrupted = 0;
    // Six rounds: write, then sync both devices while the relay is SIGKILLed at a random moment
    // and started again on the same database; then retry until both are done.
    for round in 0..6 {
        write_cases(&a, &eb, 40);
        written += 40;
        // Slow every answer a little so the kill lands while requests are in flight.
        net.proxy
            .fault_every(Some(Fault::Delay(Duration::from_millis(5))));
        // The kill lands within 40 ms of the round's first request reaching the relay: during a
        // push or a pull (the local prepare step before it takes longer than that in debug).
        let kill_after = Duration::from_millis(rng.below(40));
        let baseline = net.proxy.requests_started();
        let t = &net.http;
        let restarted = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while net.proxy.requests_started() == baseline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(kill_after);
                net.kill_relay();
                std::thread::sleep(Duration::from_millis(50));
                net.restart_relay();
                restarted.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            // Keep syncing (pushes, then pulls) until the relay has died and come back.
            for _ in 0..500 {
                let ra = sync::sync_once(&a, t).unwrap();
                let rb = sync::sync_once(&b, t).unwrap();
                interrupted += usize::from(ra.interrupted.is_some());
                interrupted += usize::from(rb.interrupted.is_some());
                if restarted.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        net.proxy.clear();
        let ra = sync_until_done(&a, t, 10);
        sync_until_done(&b, t, 10);
        assert_eq!(ra.last().unwrap().pending, 0, "round {round}");
        assert_hq_holds_exactly(&net, &hq, &ea.device_id, written * 2);
        assert_replica(&a, &b);
    }
    eprintln!("{interrupted} runs cut by the relay's death");
    assert!(interrupted >= 3, "the kills landed mid-sync: {interrupted}");
}

/// Outbox entries the author's writes made: one per case created, one per status set.
fn entries_written(author: &Vault) -> usize {
    cases::list_cases(author)
        .unwrap()
        .iter()
        .map(|c| 1 + usize::from(c.fields.contains_key("status")))
        .sum()
}

#[test]
fn a_device_killed_at_random_points_resends_nothing_acknowledged_as_new_and_loses_nothing() {
    const TOTAL: usize = 100;
    const KILLS: usize = 24;
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    drop(a); // the device process owns the vault from now on
    let dir = net.dir("a");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_sync-device"))
            .arg(dir.join("vault"))
            .arg(dir.join("device.key"))
            .arg(TOTAL.to_string())
            .arg(&eb.signing_public_key)
            .arg(&eb.age_recipient)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut rng = Rng::seeded();
    let (mut killed, mut duplicates) = (0, 0u64);
    let mut b_pulled = 0;
    for round in 0..KILLS {
        let mut child = spawn();
        let out = child.stdout.take().unwrap();
        // Collect what it reports while it runs (lines from a killed process may be cut).
        let reader = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let parts: Vec<&str> = line.split(' ').collect();
            if let ["sync", _, dup, _] = parts[..] {
                duplicates += dup.parse::<u64>().unwrap_or(0);
            }
        }
        // The peer syncs now and then in between (its own cursor across the author's deaths).
        if round % 4 == 3 {
            b_pulled += sync_until_done(&b, &net.http, 5)
                .iter()
                .map(|r| r.pulled)
                .sum::<u64>();
        }
    }
    assert!(
        killed >= KILLS / 2,
        "most runs were killed mid-way: {killed}"
    );
    // The last run is left alone: it writes what remains, drains the outbox and exits.
    let mut child = spawn();
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        lines.last().map(String::as_str),
        Some("drained"),
        "{lines:?}"
    );

    let a = net.open("a");
    assert_eq!(cases::list_cases(&a).unwrap().len(), TOTAL);
    assert_eq!(sync::pending(&a).unwrap(), 0, "the outbox drained");
    // At the relay: each change exactly once (a resend of an acknowledged change under a new id
    // would be one more; resends of the same id are only ever answered `duplicate: true`).
    let entries = entries_written(&a);
    assert_hq_holds_exactly(&net, &hq, &ea.device_id, entries);
    // At the peer: every written record, applied once.
    b_pulled += sync_until_done(&b, &net.http, 5)
        .iter()
        .map(|r| r.pulled)
        .sum::<u64>();
    assert_eq!(
        b_pulled, entries as u64,
        "each envelope applied once on the peer"
    );
    assert_replica(&a, &b);
    eprintln!("{killed} kills, {entries} changes, {duplicates} resends answered duplicate");
}
