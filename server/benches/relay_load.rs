//! Load generator for the relay: simulated devices over loopback, each pushing batches of signed
//! ~2 KiB envelopes and pulling after its cursor, on SQLite and (with AMANAT_TEST_DATABASE_URL) on
//! PostgreSQL. Three modes (env BENCH_MODES, comma-separated, default all):
//!
//! * `closed`: 10, 100, 200 devices flat out (each waits for its answer, then goes again): the
//!   throughput (saturation) number, envelopes/s ingested, and its p50/p99.
//! * `open`: 200 and 2,000 devices pushing at a realistic rate — Poisson arrivals, one batch every
//!   BENCH_INTERVAL_MS (default 5,000) on average per device — each push followed by a pull.
//!   Latency is measured from the **scheduled** send time (no coordinated omission: a late
//!   request counts its wait). Then the saturation point: 2,000 devices at shrinking intervals
//!   until p99 ≥ 100 ms or the relay falls behind the offered rate.
//! * `relays`: PostgreSQL only, 200 closed-loop devices against 1 relay and against 2 relays on the
//!   same database (each with its own connection pool and push writer, devices spread over them).
//!
//! `cargo bench -p amanat-server --bench relay_load` (env: BENCH_SECS per closed-loop row, default
//! 5; BENCH_OPEN_SECS per open-loop row, default 20; BENCH_INTERVAL_MS, default 5000; BENCH_BATCH,
//! envelopes per push, default 10).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use amanat_protocol::{
    DeviceRole, EnrollRequest, EnrollmentCode, Envelope, OrgPublic, PushRequest,
};
use amanat_server::relay::{
    self, postgres::PgStorage, sqlite::SqliteStorage, RelayConfig, RunningRelay,
};
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static IDS: AtomicU64 = AtomicU64::new(1);

fn uuid7() -> String {
    let ms = relay::now_ms();
    let i = IDS.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        (ms >> 16) as u32,
        (ms & 0xffff) as u16,
        i & 0xfff,
        (i >> 12) & 0xfff,
        i
    )
}

async fn start(pg: Option<&str>, org: &OrgPublic, dir: &std::path::Path) -> RunningRelay {
    let cfg = RelayConfig {
        rate_per_sec: 1e9,
        rate_burst: 1e9,
        ..RelayConfig::default()
    };
    let listen = "127.0.0.1:0".parse().unwrap();
    match pg {
        Some(url) => relay::start(
            listen,
            org.clone(),
            cfg,
            PgStorage::connect(url, 32).await.unwrap(),
        )
        .await
        .unwrap(),
        None => relay::start(listen, org.clone(), cfg, SqliteStorage::open(dir).unwrap())
            .await
            .unwrap(),
    }
}

async fn fresh_pg(url: &str) -> String {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let name = format!(
        "amanat_bench_{}",
        &amanat_protocol::new_nonce().unwrap()[..12]
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let h = amanat_protocol::sign_request(key, method, path, relay::now_ms(), &body).unwrap();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(m, format!("{base}{path}")).body(body);
    for (k, v) in h.pairs() {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            (s, bytes)
        }
        Err(_) => (0, Vec::new()),
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A relay (or several on one database) with `devices` enrolled devices, spread over the relays.
struct World {
    relays: Vec<RunningRelay>,
    /// Base URL of the relay each device talks to.
    bases: Vec<String>,
    keys: Vec<Arc<Ed25519KeyPair>>,
    ids: Vec<String>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(pg: Option<&str>, relays: usize, devices: usize) -> Self {
        let org_key = amanat_protocol::ed25519_from_pkcs8(
            &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
        )
        .unwrap();
        let mut org = OrgPublic {
            version: 1,
            signing_public_key: amanat_protocol::to_hex(org_key.public_key().as_ref()),
            groups: BTreeMap::new(),
            fingerprint: String::new(),
        };
        org.fingerprint = org.compute_fingerprint();
        let dir = tempfile::tempdir().unwrap();
        let db = match pg {
            Some(u) => Some(fresh_pg(u).await),
            None => None,
        };
        let mut running = Vec::new();
        for _ in 0..relays {
            running.push(start(db.as_deref(), &org, dir.path()).await);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(devices)
            .build()
            .unwrap();
        let mut keys = Vec::new();
        let mut bases = Vec::new();
        for n in 0..devices {
            let base = format!("http://{}", running[n % relays].addr);
            let key = amanat_protocol::ed25519_from_pkcs8(
                &amanat_protocol::generate_ed25519_pkcs8().unwrap(),
            )
            .unwrap();
            let code = EnrollmentCode::issue(
                &org_key,
                &org.fingerprint,
                relay::now_ms() / 1000 + 600,
                DeviceRole::Field,
            )
            .unwrap();
            let req = EnrollRequest {
                code,
                signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
                age_recipient: age::x25519::Identity::generate().to_public().to_string(),
            };
            let body = serde_json::to_vec(&req).unwrap();
            assert_eq!(
                send(&http, &base, &key, "POST", "/v1/enroll", body).await.0,
                200
            );
            keys.push(Arc::new(key));
            bases.push(base);
        }
        let ids = keys
            .iter()
            .map(|k| amanat_protocol::device_id(k.public_key().as_ref()))
            .collect();
        Self {
            relays: running,
            bases,
            keys,
            ids,
            http,
            _dir: dir,
        }
    }

    async fn stop(self) {
        for r in self.relays {
            r.stop().await.unwrap();
        }
    }
}

/// What one device task measured.
#[derive(Default)]
struct Tally {
    push: Vec<f64>,
    pull: Vec<f64>,
    stored: u64,
    errors: u64,
    sent: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.push.extend(o.push);
        self.pull.extend(o.pull);
        self.stored += o.stored;
        self.errors += o.errors;
        self.sent += o.sent;
    }
}

/// One push of `batch` envelopes to `peer` and HQ, then one pull after `after`; returns the
/// push's and pull's latencies from `push_start` / the pull's start.
#[allow(clippy::too_many_arguments)]
async fn push_then_pull(
    http: &reqwest::Client,
    base: &str,
    key: &Ed25519KeyPair,
    peer: &str,
    payload: &str,
    batch: usize,
    after: &mut u64,
    push_start: Instant,
    t: &mut Tally,
) {
    let envs: Vec<Envelope> = (0..batch)
        .map(|_| Envelope {
            id: uuid7(),
            recipients: vec![peer.to_string(), "hq".into()],
            payload: payload.to_string(),
        })
        .collect();
    let body = serde_json::to_vec(&PushRequest { envelopes: envs }).unwrap();
    let (s, _) = send(http, base, key, "POST", "/v1/envelopes", body).await;
    t.push.push(push_start.elapsed().as_secs_f64() * 1000.0);
    t.sent += batch as u64;
    if s == 200 {
        t.stored += batch as u64
    } else {
        t.errors += 1
    }
    let pull_start = Instant::now();
    let (s, body) = send(
        http,
        base,
        key,
        "GET",
        &format!("/v1/envelopes?after={after}&limit=100"),
        vec![],
    )
    .await;
    t.pull.push(pull_start.elapsed().as_secs_f64() * 1000.0);
    // Advance the cursor as a device does, so each pull returns only what is new.
    match serde_json::from_slice::<amanat_protocol::PullResponse>(&body) {
        Ok(page) if s == 200 => *after = page.next_after,
        _ => t.errors += 1,
    }
}

/// Exponentially distributed delay with the given mean (Poisson arrivals), from a per-device
/// xorshift generator (no shared state, no extra dependency).
fn next_gap(state: &mut u64, mean_ms: f64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let u = ((*state >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
    Duration::from_secs_f64(-u.ln() * mean_ms / 1000.0)
}

/// Runs every device for `secs`: closed loop when `interval_ms` is `None` (flat out), else open
/// loop with Poisson arrivals of that mean interval per device (latency from the scheduled time).
async fn run(w: &World, secs: u64, batch: usize, interval_ms: Option<f64>) -> (Tally, f64) {
    // Incompressible bytes, like the age ciphertext every real envelope carries: a constant
    // payload let PostgreSQL compress each row to a few dozen bytes, which no real push allows.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let ciphertext: Vec<u8> = (0..2048)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let payload = base64::engine::general_purpose::STANDARD.encode(ciphertext);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (n, key) in w.keys.iter().enumerate() {
        let (http, base, payload, key) = (
            w.http.clone(),
            w.bases[n].clone(),
            payload.clone(),
            key.clone(),
        );
        let peer = w.ids[(n + 1) % w.ids.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut after = 0u64;
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (n as u64 + 1).wrapping_mul(0xbf58_476d);
            let mut next = match interval_ms {
                Some(mean) => started + next_gap(&mut rng, mean),
                None => Instant::now(),
            };
            while next < deadline {
                if let Some(mean) = interval_ms {
                    tokio::time::sleep_until(next.into()).await;
                    let scheduled = next;
                    next += next_gap(&mut rng, mean);
                    push_then_pull(
                        &http, &base, &key, &peer, &payload, batch, &mut after, scheduled, &mut t,
                    )
                    .await;
                } else {
                    let now = Instant::now();
                    push_then_pull(
                        &http, &base, &key, &peer, &payload, batch, &mut after, now, &mut t,
                    )
                    .await;
                    next = Instant::now();
                }
            }
            t
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        all.merge(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.push.sort_by(|a, b| a.total_cmp(b));
    all.pull.sort_by(|a, b| a.total_cmp(b));
    (all, elapsed)
}

fn report(label: &str, devices: usize, relays: usize, mode: &str, t: &Tally, elapsed: f64) {
    println!(
        "{label:8} relays={relays} devices={devices:4} {mode:18} offered={:8.0} ingest={:8.0} env/s  push p50={:6.1} ms p99={:7.1} ms  pull p50={:6.1} ms p99={:7.1} ms  errors={}",
        t.sent as f64 / elapsed,
        t.stored as f64 / elapsed,
        pct(&t.push, 0.5),
        pct(&t.push, 0.99),
        pct(&t.pull, 0.5),
        pct(&t.pull, 0.99),
        t.errors
    );
}

async fn closed(
    label: &str,
    pg: Option<&str>,
    relays: usize,
    devices: usize,
    secs: u64,
    batch: usize,
) {
    let w = World::new(pg, relays, devices).await;
    let (t, elapsed) = run(&w, secs, batch, None).await;
    report(label, devices, relays, "closed", &t, elapsed);
    w.stop().await;
}

/// Open loop at the given mean interval per device; returns whether it held (p99 of push and
/// pull under 100 ms, no errors, ingest within 5 % of the offered rate).
async fn open(label: &str, w: &World, secs: u64, batch: usize, interval_ms: f64) -> bool {
    let (t, elapsed) = run(w, secs, batch, Some(interval_ms)).await;
    report(
        label,
        w.keys.len(),
        w.relays.len(),
        &format!("open every {:.0} ms", interval_ms),
        &t,
        elapsed,
    );
    t.errors == 0
        && pct(&t.push, 0.99) < 100.0
        && pct(&t.pull, 0.99) < 100.0
        && t.stored as f64 >= 0.95 * t.sent as f64
}

/// Three seconds at the open-loop rate, not measured: connections opened, the relay's and the
/// database's caches warm, as on a relay that has been up for a while.
async fn warm_up(w: &World, batch: usize, interval_ms: f64) {
    let _ = run(w, 3, batch, Some(interval_ms)).await;
}

async fn open_rows(label: &str, pg: Option<&str>, secs: u64, batch: usize, interval_ms: f64) {
    for devices in [200, 2000] {
        let w = World::new(pg, 1, devices).await;
        warm_up(&w, batch, interval_ms).await;
        open(label, &w, secs, batch, interval_ms).await;
        w.stop().await;
    }
    // Saturation: 2,000 devices, halving the interval while the goal holds, or doubling it (up to
    // 4×) until it does: the highest offered rate that held, and the first that did not.
    let w = World::new(pg, 1, 2000).await;
    warm_up(&w, batch, interval_ms).await;
    let rate = |i: f64| 2000.0 * batch as f64 * 1000.0 / i;
    let mut interval = interval_ms;
    let first_held = open(label, &w, secs, batch, interval).await;
    let (mut held, mut broke) = if first_held {
        (Some(interval), None)
    } else {
        (None, Some(interval))
    };
    for _ in 0..4 {
        interval = if first_held {
            interval / 2.0
        } else {
            interval * 2.0
        };
        if open(label, &w, secs, batch, interval).await {
            held = Some(interval);
            if !first_held {
                break;
            }
        } else {
            broke = Some(interval);
            if first_held {
                break;
            }
        }
    }
    println!(
        "{label:8} saturation (2,000 devices, open loop): held at {} env/s offered, broke at {} env/s offered",
        held.map_or("none tried".into(), |i| format!("{:.0}", rate(i))),
        broke.map_or("none tried".into(), |i| format!("{:.0}", rate(i)))
    );
    w.stop().await;
}

fn main() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let secs = env("BENCH_SECS", 5);
    let batch = env("BENCH_BATCH", 10) as usize;
    let interval = env("BENCH_INTERVAL_MS", 5000) as f64;
    // Open-loop rows need more time: at one batch per 5 s a device sends 4 in 20 s.
    let open_secs = env("BENCH_OPEN_SECS", 20);
    let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "closed,open,relays".into());
    let modes: Vec<&str> = modes.split(',').collect();
    let pg = std::env::var("AMANAT_TEST_DATABASE_URL").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if pg.is_none() {
            println!("postgres: skipped (AMANAT_TEST_DATABASE_URL not set; see scripts/start-postgres.sh)");
        }
        let backends: Vec<(&str, Option<&str>)> = std::iter::once(("sqlite", None))
            .chain(pg.as_deref().map(|u| ("postgres", Some(u))))
            .collect();
        if modes.contains(&"closed") {
            for (label, db) in &backends {
                for n in [10, 100, 200] {
                    closed(label, *db, 1, n, secs, batch).await;
                }
            }
        }
        if modes.contains(&"open") {
            for (label, db) in &backends {
                open_rows(label, *db, open_secs, batch, interval).await;
            }
        }
        if modes.contains(&"relays") {
            if let Some(url) = pg.as_deref() {
                for relays in [1, 2, 1, 2] {
                    closed("postgres", Some(url), relays, 200, secs, batch).await;
                }
            }
        }
    });
}
