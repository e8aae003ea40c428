//! Load generator for the relay: N simulated devices over loopback, each pushing batches of
//! signed ~2 KiB envelopes and pulling, for a fixed time. Reports envelopes/s ingested and p50/p99
//! request latency at 10, 100 and 200 devices, on SQLite and (with AMANAT_TEST_DATABASE_URL) on
//! PostgreSQL.
//!
//! `cargo bench -p amanat-server --bench relay_load` (env: BENCH_SECS, default 5; BENCH_BATCH,
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

async fn scenario(label: &str, pg: Option<&str>, devices: usize, secs: u64, batch: usize) {
    let org_key =
        amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
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
    let running = start(db.as_deref(), &org, dir.path()).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(devices)
        .build()
        .unwrap();
    let mut keys = Vec::new();
    for _ in 0..devices {
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
        assert_eq!(
            send(
                &http,
                &base,
                &key,
                "POST",
                "/v1/enroll",
                serde_json::to_vec(&req).unwrap()
            )
            .await
            .0,
            200
        );
        keys.push(Arc::new(key));
    }
    let ids: Vec<String> = keys
        .iter()
        .map(|k| amanat_protocol::device_id(k.public_key().as_ref()))
        .collect();
    let payload = base64::engine::general_purpose::STANDARD.encode(vec![0x5au8; 2048]);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, key) in keys.into_iter().enumerate() {
        let (http, base, payload) = (http.clone(), base.clone(), payload.clone());
        let peer = ids[(n + 1) % ids.len()].clone();
        tasks.push(tokio::spawn(async move {
            let (mut push_lat, mut pull_lat, mut stored, mut errors, mut after) =
                (Vec::new(), Vec::new(), 0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                let envs: Vec<Envelope> = (0..batch)
                    .map(|_| Envelope {
                        id: uuid7(),
                        recipients: vec![peer.clone(), "hq".into()],
                        payload: payload.clone(),
                    })
                    .collect();
                let body = serde_json::to_vec(&PushRequest { envelopes: envs }).unwrap();
                let t = Instant::now();
                let (s, _) = send(&http, &base, &key, "POST", "/v1/envelopes", body).await;
                push_lat.push(t.elapsed().as_secs_f64() * 1000.0);
                if s == 200 {
                    stored += batch as u64
                } else {
                    errors += 1
                }
                let t = Instant::now();
                let (s, body) = send(
                    &http,
                    &base,
                    &key,
                    "GET",
                    &format!("/v1/envelopes?after={after}&limit=100"),
                    vec![],
                )
                .await;
                pull_lat.push(t.elapsed().as_secs_f64() * 1000.0);
                // Advance the cursor as a device does, so each pull returns only what is new.
                match serde_json::from_slice::<amanat_protocol::PullResponse>(&body) {
                    Ok(page) if s == 200 => after = page.next_after,
                    _ => errors += 1,
                }
            }
            (push_lat, pull_lat, stored, errors)
        }));
    }
    let (mut push, mut pull, mut stored, mut errors) = (Vec::new(), Vec::new(), 0, 0);
    for t in tasks {
        let (a, b, s, e) = t.await.unwrap();
        push.extend(a);
        pull.extend(b);
        stored += s;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    push.sort_by(|a, b| a.total_cmp(b));
    pull.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{label:8} devices={devices:3} batch={batch} ingest={:8.0} env/s  push p50={:6.1} ms p99={:6.1} ms  pull p50={:6.1} ms p99={:6.1} ms  errors={errors}",
        stored as f64 / elapsed, pct(&push, 0.5), pct(&push, 0.99), pct(&pull, 0.5), pct(&pull, 0.99)
    );
    running.stop().await.unwrap();
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let batch: usize = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let pg = std::env::var("AMANAT_TEST_DATABASE_URL").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for n in [10, 100, 200] {
            scenario("sqlite", None, n, secs, batch).await;
        }
        match pg.as_deref() {
            Some(url) => {
                for n in [10, 100, 200] {
                    scenario("postgres", Some(url), n, secs, batch).await;
                }
            }
            None => println!("postgres: skipped (AMANAT_TEST_DATABASE_URL not set; see scripts/start-postgres.sh)"),
        }
    });
}
