//! Sync benchmarks (issue #11), a bench binary, never a timed test.
//!
//! 1. **Apply**: envelopes pulled from the real relay are recorded once, then replayed into fresh
//!    copies of the receiving vault through a replaying transport, so the timed part is exactly
//!    the device's receive path (page parse, base64, age decryption, signature and hash checks,
//!    merge, sealed writes, cursor advance). Baseline in the same run: a plain rusqlite bulk
//!    insert of the same plaintext records, one transaction per page of the same size.
//! 2. **End to end**: one device process writes N submitted interviews and pushes them, another
//!    pulls and applies them, through the real relay on 127.0.0.1 (in this process). Each device
//!    is a child process (this binary re-executed with `--device`) so its peak RSS is its own;
//!    the peak is reset (`/proc/self/clear_refs`) before the sync so it measures the sync alone.
//!
//! `cargo bench -p amanat-tests --bench sync`; `AMANAT_BENCH_APPLY=N` (default 20,000),
//! `AMANAT_BENCH_INTERVIEWS=N` (default 100,000) and `AMANAT_BENCH_ATTACH_MIB=N` (default 1024,
//! in 16 MiB files) change the sizes. Results: docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use age::secrecy::SecretString;
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{attachments, cases, interviews};
use amanat_core::sync::{self, Request, Response, Transport, TransportError};
use amanat_core::testing::{create_vault, PASSCODE};
use amanat_core::{Passcode, SoftwareKeyProvider, Vault};
use amanat_protocol::DeviceRole;
use amanat_server::org;
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig, RunningRelay};
use amanat_transport::HttpTransport;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ORG_PASS: &str = "bench organisation passphrase";
/// Interviews written per store transaction when filling a device.
const WRITE_BATCH: usize = 500;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn answers(n: usize) -> Answers {
    [
        ("interpreter_used", AnswerValue::YesNo(n % 2 == 0)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
        ("hours_per_day", AnswerValue::Integer((n % 20) as i64)),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

/// An organisation and a relay on 127.0.0.1, in this process.
struct World {
    tmp: tempfile::TempDir,
    org_dir: PathBuf,
    _rt: tokio::runtime::Runtime,
    _relay: RunningRelay,
    url: String,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        let pass = SecretString::from(ORG_PASS.to_string());
        let org = org::init(&org_dir, &pass, Some(10)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("relay")).unwrap();
        let storage = SqliteStorage::open(&tmp.path().join("relay")).unwrap();
        let config = RelayConfig {
            rate_per_sec: 1e9,
            rate_burst: 1e9,
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
            _rt: rt,
            _relay: running,
            url,
        }
    }

    fn code(&self) -> String {
        let pass = SecretString::from(ORG_PASS.to_string());
        let code = org::enroll_code(&self.org_dir, &pass, 3600, DeviceRole::Field).unwrap();
        serde_json::to_string(&code).unwrap()
    }
}

fn http() -> HttpTransport {
    HttpTransport::new(Duration::from_secs(120))
}

/// Size of each attachment in the end-to-end run.
const ATTACHMENT_MIB: usize = 16;

/// Streams `mib` MiB of pseudo-random bytes (xorshift; age does not compress, so content does not
/// matter) as the narrative audio of a new interview, then submits it. One 64 KiB buffer.
fn record_attachment(vault: &Vault, case: amanat_core::RecordId, seed: u64, mib: usize) {
    let i = interviews::start(vault, case, "trafficking_screening", 1, "en").unwrap();
    let mut w = attachments::AttachmentWriter::open(
        vault,
        &i.id,
        "narrative_audio",
        "audio/ogg",
        attachments::DEFAULT_MAX_BYTES,
    )
    .unwrap();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..mib * 16 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        w.write(&buf).unwrap();
    }
    w.finish().unwrap();
    interviews::save_answers(vault, &i.id, &answers(seed as usize)).unwrap();
    interviews::submit(vault, &i.id).unwrap();
}

/// Writes a case with interview (and audio) consent, `attach_mib` MiB of attachments in
/// [`ATTACHMENT_MIB`] files each on its own interview, and submitted interviews up to `n` in
/// all, `WRITE_BATCH` per transaction (the same `…_in` calls the single-item API makes, audit
/// entries included).
/// `peer` (signing key, age recipient): the team device the case is shared with before anything
/// is written, so attachments are encrypted to it at capture.
fn fill(
    vault: &Vault,
    n: usize,
    attach_mib: usize,
    peer: Option<(&str, &str)>,
) -> amanat_core::RecordId {
    let case = cases::create_case(vault).unwrap();
    if let Some((signing, age)) = peer {
        sync::share_case(vault, case.id, signing, age).unwrap();
    }
    consent::record_consent(
        vault,
        case.id,
        "worker-1",
        "en",
        &[Scope::Interview, Scope::Audio, Scope::ShareCaseworkers],
    )
    .unwrap();
    let files = attach_mib / ATTACHMENT_MIB;
    for k in 0..files {
        record_attachment(vault, case.id, k as u64 + 1, ATTACHMENT_MIB);
    }
    let n = n.saturating_sub(files);
    let store = vault.store().unwrap();
    let mut written = 0;
    while written < n {
        let batch = WRITE_BATCH.min(n - written);
        store
            .write(|tx| {
                for k in 0..batch {
                    let i = interviews::start_in(tx, case.id, "trafficking_screening", 1, "en")?;
                    let id = amanat_core::RecordId::parse(&i.id).unwrap();
                    interviews::save_answers_in(tx, id, &answers(written + k))?;
                    interviews::submit_in(tx, id)?;
                }
                Ok::<_, interviews::InterviewError>(())
            })
            .unwrap();
        written += batch;
    }
    case.id
}

fn open_vault(dir: &Path) -> Vault {
    let provider = Arc::new(SoftwareKeyProvider::new(dir.join("device.key")));
    let vault = Vault::open(dir.join("vault"), provider).unwrap();
    vault.unlock(&Passcode::from(PASSCODE)).unwrap();
    vault
}

/// Syncs until nothing is pending and a run was not interrupted; returns the summed report.
fn sync_all(vault: &Vault, transport: &dyn Transport) -> sync::SyncReport {
    let mut total = sync::SyncReport::default();
    for _ in 0..1000 {
        let r = sync::sync_once(vault, transport).unwrap();
        total.pushed += r.pushed;
        total.pulled += r.pulled;
        total.quarantined += r.quarantined;
        total.bytes_up += r.bytes_up;
        total.bytes_down += r.bytes_down;
        total.pending = r.pending;
        if r.interrupted.is_none() && r.pending == 0 {
            return total;
        }
    }
    panic!("sync did not drain");
}

fn count_interviews(vault: &Vault) -> usize {
    vault
        .store()
        .unwrap()
        .read(|tx| tx.list(interviews::INTERVIEWS))
        .unwrap()
        .len()
}

// ---------------------------------------------------------------------------------------------
// 1. Apply vs plain rusqlite

/// Forwards to the relay and keeps every pull page's answer by request path.
struct Recorder<'a> {
    inner: &'a dyn Transport,
    pages: Mutex<HashMap<String, Vec<u8>>>,
}

impl Transport for Recorder<'_> {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let resp = self.inner.send(request)?;
        if request.method == "GET" && resp.status == 200 {
            self.pages
                .lock()
                .unwrap()
                .insert(request.path.clone(), resp.body.clone());
        }
        Ok(resp)
    }
}

/// Answers pull requests from the recorded pages, and acknowledges pushes (the unlock's own audit
/// entry); no network.
struct Replay(HashMap<String, Vec<u8>>);

impl Transport for Replay {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        if request.method == "POST" && request.path == "/v1/envelopes" {
            let push: amanat_protocol::PushRequest = serde_json::from_slice(&request.body).unwrap();
            let acks = push
                .envelopes
                .iter()
                .enumerate()
                .map(|(i, e)| amanat_protocol::PushAck {
                    id: e.id.clone(),
                    seq: 1_000_000_000 + i as u64,
                    duplicate: false,
                })
                .collect();
            return Ok(Response {
                status: 200,
                headers: Vec::new(),
                body: serde_json::to_vec(&amanat_protocol::PushResponse { acks }).unwrap(),
            });
        }
        match self.0.get(&request.path) {
            Some(body) if request.method == "GET" => Ok(Response {
                status: 200,
                headers: Vec::new(),
                body: body.clone(),
            }),
            _ => Ok(Response {
                status: 500,
                headers: Vec::new(),
                body: Vec::new(),
            }),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The baseline: the same plaintext values into a plain table of the store's shape, one
/// transaction per `page` records, WAL and `synchronous = NORMAL` like the store.
fn plain_insert(dir: &Path, values: &[(Vec<u8>, Vec<u8>)], page: usize) -> Duration {
    let conn = rusqlite::Connection::open(dir.join("plain.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE records (collection TEXT NOT NULL, id BLOB NOT NULL, version INTEGER NOT NULL, \
         value BLOB NOT NULL, PRIMARY KEY (collection, id))",
    )
    .unwrap();
    let mut conn = conn;
    let start = Instant::now();
    for chunk in values.chunks(page) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO records (collection, id, version, value) VALUES ('interviews', ?1, 1, ?2)",
                )
                .unwrap();
            for (id, value) in chunk {
                stmt.execute(rusqlite::params![id, value]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    start.elapsed()
}

fn sync_disk() {
    let _ = Command::new("sync").status();
}

fn apply_bench(n: usize) {
    println!("== apply: {n} submitted interviews pulled by a team device ==");
    let w = World::new();
    let (a_dir, b_dir) = (w.tmp.path().join("a"), w.tmp.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let a = create_vault(&a_dir).unwrap();
    let b = create_vault(&b_dir).unwrap();
    let ea = sync::enroll(&a, &w.code(), &w.url, &http()).unwrap();
    let eb = sync::enroll(&b, &w.code(), &w.url, &http()).unwrap();
    let case = fill(
        &a,
        n,
        0,
        Some((eb.signing_public_key.as_str(), eb.age_recipient.as_str())),
    );
    sync::share_case(&b, case, &ea.signing_public_key, &ea.age_recipient).unwrap();
    let pushed = sync_all(&a, &http());
    println!("device A pushed {} envelopes", pushed.pushed);

    b.lock();
    let snapshot = w.tmp.path().join("b-snapshot");
    copy_dir(&b_dir, &snapshot);
    b.unlock(&Passcode::from(PASSCODE)).unwrap();
    let http = http();
    let recorder = Recorder {
        inner: &http,
        pages: Mutex::new(HashMap::new()),
    };
    let start = Instant::now();
    let live = sync::sync_once(&b, &recorder).unwrap();
    let live_time = start.elapsed();
    assert_eq!(live.interrupted, None);
    assert_eq!(live.quarantined, 0);
    assert_eq!(count_interviews(&b), n);
    let applied = live.pulled;
    // The plaintext records the device ended up with, for the baseline.
    let values: Vec<(Vec<u8>, Vec<u8>)> = b
        .store()
        .unwrap()
        .read(|tx| {
            let mut out = Vec::new();
            for id in tx.list(interviews::INTERVIEWS)? {
                let r = tx.require(interviews::INTERVIEWS, id)?;
                out.push((id.as_bytes().to_vec(), r.value.expose().to_vec()));
            }
            Ok::<_, amanat_core::StoreError>(out)
        })
        .unwrap();
    let replay = Replay(recorder.pages.into_inner().unwrap());

    let rounds = 3;
    let (mut apply_times, mut plain_times) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let dir = w.tmp.path().join(format!("round-{round}"));
        copy_dir(&snapshot, &dir.join("b"));
        let fresh = open_vault(&dir.join("b"));
        let run_apply = |times: &mut Vec<Duration>| {
            sync_disk();
            let start = Instant::now();
            let r = sync::sync_once(&fresh, &replay).unwrap();
            times.push(start.elapsed());
            assert_eq!((r.pulled, r.quarantined, r.interrupted), (applied, 0, None));
        };
        let run_plain = |times: &mut Vec<Duration>| {
            sync_disk();
            times.push(plain_insert(&dir, &values, sync::PULL_PAGE as usize));
        };
        if round % 2 == 0 {
            run_apply(&mut apply_times);
            run_plain(&mut plain_times);
        } else {
            run_plain(&mut plain_times);
            run_apply(&mut apply_times);
        }
        assert_eq!(count_interviews(&fresh), n);
        fresh.lock();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (ta, tp) = (median(&mut apply_times), median(&mut plain_times));
    let rate = |t: Duration| applied as f64 / t.as_secs_f64();
    println!(
        "live pull+apply over loopback: {:.0} envelopes/s ({:.2} s)",
        rate(live_time),
        live_time.as_secs_f64()
    );
    println!(
        "apply (replayed pages): {:.0} envelopes/s, {:.1} µs each (median of {rounds})",
        rate(ta),
        ta.as_secs_f64() * 1e6 / applied as f64
    );
    println!(
        "plain rusqlite insert:  {:.0} records/s, {:.1} µs each",
        rate(tp),
        tp.as_secs_f64() * 1e6 / applied as f64
    );
    println!(
        "apply / plain: {:.3}x (goal >= 0.5x)",
        tp.as_secs_f64() / ta.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. End to end, each device its own process

/// Peak resident set size of this process in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS so the next peak is the next phase's own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Child process: `--device <mode> <dir> <url> <args…>`; prints `key=value` lines.
fn device(args: &[String]) {
    let (mode, dir, url) = (args[0].as_str(), Path::new(&args[1]), args[2].as_str());
    match mode {
        "enroll" => {
            std::fs::create_dir_all(dir).unwrap();
            let v = create_vault(dir).unwrap();
            let code = std::fs::read_to_string(&args[3]).unwrap();
            let e = sync::enroll(&v, &code, url, &http()).unwrap();
            println!("signing={}", e.signing_public_key);
            println!("age={}", e.age_recipient);
        }
        "push" => {
            let n: usize = args[3].parse().unwrap();
            let attach_mib: usize = args[6].parse().unwrap();
            let v = open_vault(dir);
            let start = Instant::now();
            let case = fill(
                &v,
                n,
                attach_mib,
                Some((args[4].as_str(), args[5].as_str())),
            );
            println!("write_s={:.2}", start.elapsed().as_secs_f64());
            println!("write_rss_kib={}", peak_rss_kib());
            println!("case={case}");
            reset_peak_rss();
            let start = Instant::now();
            let r = sync_all(&v, &http());
            println!("sync_s={:.2}", start.elapsed().as_secs_f64());
            println!("sync_rss_kib={}", peak_rss_kib());
            println!("pushed={}", r.pushed);
            println!("bytes_up={}", r.bytes_up);
        }
        "pull" => {
            let v = open_vault(dir);
            let case = amanat_core::RecordId::parse(&args[3]).unwrap();
            sync::share_case(&v, case, &args[4], &args[5]).unwrap();
            reset_peak_rss();
            let start = Instant::now();
            let r = sync_all(&v, &http());
            println!("sync_s={:.2}", start.elapsed().as_secs_f64());
            println!("sync_rss_kib={}", peak_rss_kib());
            println!("pulled={}", r.pulled);
            println!("quarantined={}", r.quarantined);
            println!("bytes_down={}", r.bytes_down);
            println!("interviews={}", count_interviews(&v));
            let (files, bytes) = attachment_files(&v);
            println!("attachment_files={files}");
            println!("attachment_bytes={bytes}");
        }
        other => panic!("unknown device mode {other}"),
    }
}

/// Attachment files (`.age`) in the vault and their total size.
fn attachment_files(v: &Vault) -> (usize, u64) {
    let mut out = (0, 0);
    if let Ok(dir) = std::fs::read_dir(v.dir().join("attachments")) {
        for e in dir.flatten() {
            if e.path().extension().is_some_and(|x| x == "age") {
                out.0 += 1;
                out.1 += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    out
}

fn run_device(args: &[&str]) -> HashMap<String, String> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .arg("--device")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "device {:?} failed: {}",
        args.first(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn e2e_bench(n: usize, attach_mib: usize) {
    println!(
        "== end to end: {n} submitted interviews ({} with a {ATTACHMENT_MIB} MiB attachment), device A → relay → device B ==",
        attach_mib / ATTACHMENT_MIB
    );
    let w = World::new();
    let dir = |name: &str| w.tmp.path().join(name).to_string_lossy().into_owned();
    let code_file = |name: &str| {
        let p = w.tmp.path().join(format!("{name}.code"));
        std::fs::write(&p, w.code()).unwrap();
        p.to_string_lossy().into_owned()
    };
    let a = run_device(&["enroll", &dir("a"), &w.url, &code_file("a")]);
    let b = run_device(&["enroll", &dir("b"), &w.url, &code_file("b")]);
    let n_text = n.to_string();
    let attach_text = attach_mib.to_string();
    let push = run_device(&[
        "push",
        &dir("a"),
        &w.url,
        &n_text,
        &b["signing"],
        &b["age"],
        &attach_text,
    ]);
    let pull = run_device(&[
        "pull",
        &dir("b"),
        &w.url,
        &push["case"],
        &a["signing"],
        &a["age"],
    ]);
    assert_eq!(pull["interviews"], n_text, "every interview arrived");
    assert_eq!(pull["quarantined"], "0");
    assert_eq!(
        pull["attachment_files"],
        (attach_mib / ATTACHMENT_MIB).to_string(),
        "every attachment arrived"
    );
    let secs = |m: &HashMap<String, String>| m["sync_s"].parse::<f64>().unwrap();
    let mib = |m: &HashMap<String, String>, k: &str| m[k].parse::<f64>().unwrap() / 1024.0;
    println!(
        "device A: wrote {n} in {} s (peak RSS {:.1} MiB); pushed {} envelopes, {:.1} MiB, in {:.2} s, peak RSS {:.1} MiB",
        push["write_s"],
        mib(&push, "write_rss_kib"),
        push["pushed"],
        push["bytes_up"].parse::<f64>().unwrap() / 1048576.0,
        secs(&push),
        mib(&push, "sync_rss_kib")
    );
    println!(
        "device B: pulled and applied {} envelopes and {} attachments ({:.0} MiB of .age), {:.1} MiB received, in {:.2} s, peak RSS {:.1} MiB",
        pull["pulled"],
        pull["attachment_files"],
        pull["attachment_bytes"].parse::<f64>().unwrap() / 1048576.0,
        pull["bytes_down"].parse::<f64>().unwrap() / 1048576.0,
        secs(&pull),
        mib(&pull, "sync_rss_kib")
    );
    println!(
        "push + pull wall time: {:.2} s (goal <= 60 s); peak device RSS {:.1} MiB (goal <= 64 MiB)",
        secs(&push) + secs(&pull),
        mib(&push, "sync_rss_kib").max(mib(&pull, "sync_rss_kib"))
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--device") {
        return device(&args[1..]);
    }
    apply_bench(env_usize("AMANAT_BENCH_APPLY", 20_000));
    e2e_bench(
        env_usize("AMANAT_BENCH_INTERVIEWS", 100_000),
        env_usize("AMANAT_BENCH_ATTACH_MIB", 1024),
    );
}
