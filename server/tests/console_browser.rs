//! `amanat hq console` end to end in a real headless Chromium driven over WebDriver
//! (chromedriver on 127.0.0.1, a small client over std TCP below): two field devices record and
//! sync, two HQ installations pull (one holding every group, one holding only `research`), and
//! the test logs in, reads, plays, reveals, exports, is refused and is locked out, the way an
//! operator would. Screenshots of the main pages go to target/console-screenshots/ (docs/console/
//! with AMANAT_UPDATE_SCREENSHOTS=1).
//!
//! Skips (passing, with a message) when chromium or chromedriver is absent, unless
//! AMANAT_REQUIRE_BROWSER=1 (scripts/test-console.sh sets it and installs both).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::SecretString;
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::audit::{self, AuditKind};
use amanat_core::records::attachments::{self, AttachmentWriter};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};
use amanat_core::sync;
use amanat_core::testing::create_vault;
use amanat_core::Vault;
use amanat_protocol::{DeviceRole, OrgPublic};
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig, RunningRelay};
use amanat_server::{hq, org};
use amanat_transport::HttpTransport;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_amanat");
const ORG_PASS: &str = "correct horse battery staple";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client over std TCP (for chromedriver on loopback).

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly the body (chromedriver may keep the connection open).
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|n| n.trim().parse::<usize>().unwrap());
    let mut rest = Vec::new();
    if let Some(n) = length {
        rest.resize(n, 0);
        r.read_exact(&mut rest).unwrap();
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut rest).unwrap();
    }
    (status, rest)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session on a chromedriver this test started.
struct Driver {
    port: u16,
    session: String,
    child: Child,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    /// `profile`: the browser's own directory (its disk cache included), inside the test's.
    fn start(profile: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let (s, b) = http(port, "GET", "/status", None);
                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                if s == 200 && v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-dev-shm-usage", "--window-size=1100,800",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let (s, b) = http(port, "POST", "/session", Some(&caps));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(s, 200, "{v}");
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Driver {
            port,
            session,
            child,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, b) = http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(s, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_string()
    }

    /// Waits up to 20 s for the address to end with `suffix`.
    fn wait_url(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.url().ends_with(suffix) {
            if Instant::now() > deadline {
                panic!("not at {suffix}: {}\n{}", self.url(), self.source());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The element matching `css`, waiting up to 20 s for it (a page may still be loading).
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (s, b) = http(
                self.port,
                "POST",
                &format!("/session/{}/element", self.session),
                Some(&json!({"using": "css selector", "value": css})),
            );
            let v: Value = serde_json::from_slice(&b).unwrap();
            if s == 200 {
                return v["value"][ELEMENT].as_str().unwrap().to_string();
            }
            if Instant::now() > deadline {
                panic!("{css} not found at {}:\n{}", self.url(), self.source());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn count(&self, css: &str) -> usize {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .len()
    }

    /// Waits up to 20 s for `n` elements to match `css` (after a form posts to the same page).
    fn wait_count(&self, css: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(css) != n {
            if Instant::now() > deadline {
                panic!("{css} ≠ {n}: {}", self.source());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `f` on the element matching `css`, finding it again if the page replaced it meanwhile
    /// (a navigation racing the command), for up to 20 s.
    fn on_element(&self, css: &str, method: &str, what: &str, body: Option<Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.find(css);
            let (s, b) = http(
                self.port,
                method,
                &format!("/session/{}/element/{e}{what}", self.session),
                body.as_ref(),
            );
            let v: Value = serde_json::from_slice(&b).unwrap();
            if s == 200 {
                return v["value"].clone();
            }
            assert!(
                Instant::now() < deadline && v["value"]["error"] == "stale element reference",
                "{css} {what}: {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn click(&self, css: &str) {
        self.on_element(css, "POST", "/click", Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn text(&self, css: &str) -> String {
        self.on_element(css, "GET", "/text", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn run_async(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn accept_alert(&self) {
        self.cmd("POST", "/alert/accept", Some(json!({})));
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        // Into target/ on every run (a test run leaves the tree clean); into docs/console/, the
        // copies docs/HQ.md shows, with AMANAT_UPDATE_SCREENSHOTS=1.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = if std::env::var("AMANAT_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            root.join("docs/console")
        } else {
            root.join("target/console-screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The world: an organisation, a relay, two devices, two HQ installations.

struct World {
    tmp: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    relay: Option<RunningRelay>,
    url: String,
    org_dir: PathBuf,
    org_pass: PathBuf,
    http: HttpTransport,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        let org_pass = tmp.path().join("org-pass");
        std::fs::write(&org_pass, format!("{ORG_PASS}\n")).unwrap();
        ok(&run(&[
            "org",
            "init",
            org_dir.to_str().unwrap(),
            "--passphrase-file",
            org_pass.to_str().unwrap(),
            "--scrypt-log-n",
            "10",
        ]));
        let org = OrgPublic::from_json(&std::fs::read(org_dir.join("org.pub")).unwrap()).unwrap();
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
            rt,
            relay: Some(running),
            url,
            org_dir,
            org_pass,
            http: HttpTransport::new(Duration::from_secs(20)),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn device(&self, name: &str) -> Vault {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let v = create_vault(&dir).unwrap();
        let pass = SecretString::from(ORG_PASS.to_owned());
        let code = org::enroll_code(&self.org_dir, &pass, 3600, DeviceRole::Field).unwrap();
        sync::enroll(
            &v,
            &serde_json::to_string(&code).unwrap(),
            &self.url,
            &self.http,
        )
        .unwrap();
        v
    }

    /// `amanat hq init --org` holding `groups` (every group when empty), then `hq pull`.
    fn hq(&self, name: &str, groups: &[&str]) -> PathBuf {
        let data = self.path(name);
        let mut args = vec![
            "hq".to_string(),
            "init".into(),
            "--data".into(),
            data.to_str().unwrap().into(),
            "--relay".into(),
            self.url.clone(),
            "--org".into(),
            self.org_dir.to_str().unwrap().into(),
            "--passphrase-file".into(),
            self.org_pass.to_str().unwrap().into(),
        ];
        for g in groups {
            args.push("--group".into());
            args.push(g.to_string());
        }
        ok(&Command::new(BIN).args(&args).output().unwrap());
        ok(&run(&[
            "hq",
            "pull",
            "--data",
            data.to_str().unwrap(),
            "--passphrase-file",
            self.org_pass.to_str().unwrap(),
        ]));
        data
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            let _ = self.rt.block_on(r.stop());
        }
    }
}

fn answers(hours: i64) -> Answers {
    [
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("hours_per_day", AnswerValue::Integer(hours)),
        // In the template's identity section (`person`).
        ("age_range", AnswerValue::Choice("25_34".into())),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

/// A case with `scopes` and one submitted interview in Uzbek with `audio`; returns the case code,
/// the case id, the interview id and the attachment id.
fn recorded(
    v: &Vault,
    scopes: &[Scope],
    audio: &[u8],
    photo: Option<&[u8]>,
) -> (String, String, String, String) {
    let case = cases::create_case(v).unwrap();
    consent::record_consent(v, case.id, "worker-17", "uz", scopes).unwrap();
    let i = interviews::start(v, case.id, "trafficking_screening", 1, "uz").unwrap();
    let first = answers(14);
    if let Some(png) = photo {
        // Relevant because the case's consent includes photos (consent answers come from it).
        interviews::save_answers(v, &i.id, &first).unwrap();
        let mut w = AttachmentWriter::open(
            v,
            &i.id,
            "document_photo",
            "image/png",
            attachments::DEFAULT_MAX_BYTES,
        )
        .unwrap();
        w.write(png).unwrap();
        w.finish().unwrap();
    }
    interviews::save_answers(v, &i.id, &first).unwrap();
    let mut w = AttachmentWriter::open(
        v,
        &i.id,
        "narrative_audio",
        "audio/ogg",
        attachments::DEFAULT_MAX_BYTES,
    )
    .unwrap();
    for piece in audio.chunks(64 * 1024) {
        w.write(piece).unwrap();
    }
    let info = w.finish().unwrap();
    let submitted = interviews::submit(v, &i.id).unwrap();
    (
        case.code.as_str().to_string(),
        case.id.to_string(),
        submitted.id,
        info.id,
    )
}

fn label(v: &Vault, lang: &str, question: &str) -> String {
    let t = interviews::template(v, "trafficking_screening", 1).unwrap();
    let l = t.localized(lang).unwrap();
    l.sections
        .iter()
        .flat_map(|s| s.questions.iter())
        .find(|q| q.id == question)
        .unwrap()
        .label
        .clone()
}

/// `amanat hq console` as a child process; its URL from the line it prints.
struct Console {
    child: Child,
    url: String,
}

impl Console {
    fn start(data: &Path, idle_secs: u64) -> Console {
        let mut child = Command::new(BIN)
            .args([
                "hq",
                "console",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--idle-secs",
                &idle_secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        Console { child, url }
    }

    /// Everything it logged (after it stopped).
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = self.child.wait();
        err
    }
}

/// Submits the login form and waits for the answer (the cases page, or the form again).
fn login(d: &Driver, url: &str, pass: &str) {
    d.goto(&format!("{url}/login"));
    d.type_into("#passphrase", pass);
    d.click("#unlock");
    d.find("#cases, #error");
}

fn sha256_hex(b: &[u8]) -> String {
    amanat_protocol::sha256_hex(b)
}

const FETCH_AUDIO: &str = "var cb = arguments[arguments.length - 1];
var a = document.querySelector('audio.audio');
fetch(a.src).then(function (r) { return r.arrayBuffer().then(function (b) {
  return crypto.subtle.digest('SHA-256', b).then(function (d) {
    cb([r.status, b.byteLength, Array.from(new Uint8Array(d)).map(function (x) {
      return x.toString(16).padStart(2, '0'); }).join('')]);
  }); }); }).catch(function (e) { cb(['error', String(e)]); });";

/// Serves one page, from another origin, that posts a form to the console at once.
fn cross_site_page(target: &str, csrf: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><html><body><form id=\"f\" method=\"post\" action=\"{target}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"></form>\
         <script>document.getElementById('f').submit();</script></body></html>"
    );
    std::thread::spawn(move || {
        for s in listener.incoming().take(4) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

fn browser_present() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("AMANAT_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "AMANAT_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install -y chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: the review console's browser test needs {CHROMIUM} and {CHROMEDRIVER} \
             (scripts/test-console.sh installs them)"
        );
    }
    present
}

#[test]
fn the_review_console_in_a_real_browser() {
    if !browser_present() {
        return;
    }
    let w = World::new();
    let a = w.device("a");
    let b = w.device("b");
    // Device A: consent for caseworkers and research; an amendment changes one answer.
    let audio_a: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    // A 1×1 PNG: the page must show it as an image.
    let png = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(
                "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=",
            )
            .unwrap()
    };
    let (code_a, case_a, interview_a, _att_a) = recorded(
        &a,
        &[
            Scope::Interview,
            Scope::Audio,
            Scope::Photos,
            Scope::ShareCaseworkers,
            Scope::ShareResearch,
        ],
        &audio_a,
        Some(&png),
    );
    let case_a_id = amanat_core::RecordId::parse(&case_a).unwrap();
    cases::set_identity_field(&a, case_a_id, "full_name", "Dilnoza Testova").unwrap();
    let amended = interviews::amend(&a, &interview_a).unwrap();
    interviews::save_answers(&a, &amended.id, &answers(10)).unwrap();
    interviews::submit(&a, &amended.id).unwrap();
    // Device B: caseworkers only; its recording will be tampered with at HQ.
    let audio_b: Vec<u8> = (0..90_000u32).map(|i| (i % 13) as u8).collect();
    let (code_b, case_b, _interview_b, att_b) = recorded(
        &b,
        &[Scope::Interview, Scope::Audio, Scope::ShareCaseworkers],
        &audio_b,
        None,
    );
    // A clash HQ will see: case A shared with B, both write its notes before syncing again.
    let (ea, eb) = (
        sync::enrollment(&a).unwrap().unwrap(),
        sync::enrollment(&b).unwrap().unwrap(),
    );
    sync::share_case(&a, case_a_id, &eb.signing_public_key, &eb.age_recipient).unwrap();
    sync::share_case(&b, case_a_id, &ea.signing_public_key, &ea.age_recipient).unwrap();
    let sync_all = || {
        for v in [&a, &b] {
            let r = sync::sync_once(v, &w.http).unwrap();
            assert_eq!((r.interrupted.clone(), r.pending), (None, 0), "{r:?}");
        }
    };
    sync_all();
    sync_all();
    cases::set_field(&a, case_a_id, "notes", "met at the border").unwrap();
    cases::set_field(&b, case_a_id, "notes", "met at the station").unwrap();
    sync_all();
    let full = w.hq("hq-full", &[]);
    let research = w.hq("hq-research", &["research"]);
    // The tampered original: one byte of B's recording as HQ keeps it.
    let file = hq::vault_dir(&full)
        .join("attachments")
        .join(format!("{att_b}.age"));
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();

    let console = Console::start(&full, 120);
    let profile = w.path("chromium-profile");
    let d = Driver::start(&profile);

    // A wrong passphrase is refused.
    login(&d, &console.url, "not the passphrase");
    assert!(d.url().ends_with("/login"), "{}", d.url());
    assert!(d.text("#error").contains("not accepted"));
    d.screenshot("login");

    // The right one (once the wait a wrong attempt imposes has passed): cases from both devices.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        login(&d, &console.url, ORG_PASS);
        if d.url().ends_with("/cases") {
            break;
        }
        let e = d.text("#error");
        assert!(e.contains("try again in"), "{e}");
        assert!(Instant::now() < deadline, "{e}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let list = d.text("#cases");
    assert!(list.contains(&code_a) && list.contains(&code_b), "{list}");
    assert_eq!(d.text("#group"), "caseworkers");
    d.screenshot("cases");
    // Filter by code, in the page (the code never goes into an address).
    d.type_into("#filter", &code_b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = d.text("#cases");
        if !list.contains(&code_a) {
            assert!(list.contains(&code_b), "{list}");
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(d.url().ends_with("/cases"), "{}", d.url());

    // Case A in Uzbek: labels in Uzbek, identity hidden, the amendment as a diff, audio plays.
    d.goto(&format!("{}/cases/{case_a}?lang=uz", console.url));
    let page = d.source();
    let hours_uz = label(&a, "uz", "hours_per_day");
    let hours_en = label(&a, "en", "hours_per_day");
    let age_uz = label(&a, "uz", "age_range");
    assert_ne!(hours_uz, hours_en);
    assert!(page.contains(&html_esc(&hours_uz)), "Uzbek label shown");
    assert!(!page.contains(&html_esc(&hours_en)), "no English label");
    assert!(
        !page.contains(&html_esc(&age_uz)),
        "identity question hidden"
    );
    assert!(!page.contains("Dilnoza"), "identity record hidden");
    assert_eq!(d.count("article.interview"), 2, "original and amendment");
    let diff = d.text("table.diff");
    assert!(diff.contains("14") && diff.contains("10"), "{diff}");
    assert_eq!(d.count(".custody .verified"), 2, "{}", d.text("main"));
    let audio = d.run_async(FETCH_AUDIO);
    assert_eq!(
        audio,
        json!([200, audio_a.len(), sha256_hex(&audio_a)]),
        "the page receives the recorded bytes"
    );
    // Seeking: a range from the middle is decrypted from the chunk that holds it.
    let ranged = d.run_async(
        "var cb = arguments[arguments.length - 1];
         var a = document.querySelector('audio.audio');
         fetch(a.src, {headers: {'Range': 'bytes=150000-'}}).then(function (r) {
           return r.arrayBuffer().then(function (b) {
             return crypto.subtle.digest('SHA-256', b).then(function (d) {
               cb([r.status, r.headers.get('content-range'), b.byteLength,
                   Array.from(new Uint8Array(d)).map(function (x) {
                     return x.toString(16).padStart(2, '0'); }).join('')]);
             }); }); }).catch(function (e) { cb(['error', String(e)]); });",
    );
    assert_eq!(
        ranged,
        json!([
            206,
            format!("bytes 150000-{}/{}", audio_a.len() - 1, audio_a.len()),
            audio_a.len() - 150_000,
            sha256_hex(&audio_a[150_000..])
        ])
    );
    // The photo is shown: the browser decoded the image the console streamed.
    let width = d.run_async(
        "var cb = arguments[0]; var i = document.querySelector('img.photo'); \
         function done() { cb([i.complete, i.naturalWidth]); } \
         if (i.complete) { done(); } else { i.onload = done; i.onerror = done; }",
    );
    assert_eq!(width, json!([true, 1]), "the photo decodes");
    d.screenshot("case");
    // In English on request.
    d.goto(&format!("{}/cases/{case_a}?lang=en", console.url));
    assert!(d.source().contains(&html_esc(&hours_en)));

    // Reveal (audited): the identity answer appears.
    d.click("#reveal");
    d.accept_alert();
    assert!(d.text("#revealed").contains("audit"));
    assert!(
        d.source().contains(&html_esc(&age_uz)),
        "identity answer shown"
    );
    assert!(
        d.text("#identity").contains("Dilnoza Testova"),
        "identity record shown"
    );

    // The clash: one Keep button per value; keeping one resolves it.
    d.goto(&format!("{}/cases/{case_a}", console.url));
    assert_eq!(d.count("div.clash"), 1, "{}", d.source());
    let clash = d.text("div.clash");
    assert!(
        clash.contains("met at the border") && clash.contains("met at the station"),
        "{clash}"
    );
    d.click("div.clash form button");
    d.wait_count("div.clash", 0);

    // Case B: the tampered recording is flagged on the item and in the custody report.
    d.goto(&format!("{}/cases/{case_b}", console.url));
    let custody = d.text(".custody");
    assert!(
        custody.contains("failed") && custody.contains("attachment_") && custody.contains(&att_b),
        "{custody}"
    );
    d.goto(&format!("{}/custody", console.url));
    let summary = d.text("#custody-summary");
    assert!(summary.starts_with("FAILED"), "{summary}");
    let failures = d.text("#failures");
    assert!(failures.contains(&att_b), "{failures}");
    assert_eq!(
        failures.lines().count(),
        2,
        "only the tampered recording fails: {failures}"
    );

    // Export case A from its page: the custody report is `amanat verify`'s own text.
    let out = w.path("export-a");
    d.goto(&format!("{}/cases/{case_a}", console.url));
    d.type_into("#export-dir", out.to_str().unwrap());
    d.click("#export button");
    d.wait_url("/custody");
    let shown = d.text("#verify");
    let printed = ok(&run(&["verify", out.to_str().unwrap()]));
    assert_eq!(shown.trim(), printed.trim());
    assert!(
        shown.contains(&code_a) && !shown.contains(&code_b),
        "{shown}"
    );
    d.screenshot("custody");

    // Refer case B to device A (amanat hq refer, signed with the organisation key typed in the
    // page): a wrong organisation passphrase refers nothing.
    let refer = |pass: &str| {
        d.goto(&format!("{}/cases/{case_b}", console.url));
        d.click(&format!("#refer-to option[value='{}']", ea.device_id));
        d.type_into("#org-dir", w.org_dir.to_str().unwrap());
        d.type_into("#org-pass", pass);
        d.click("#refer button");
        d.text("#message")
    };
    let said = refer("not the organisation passphrase");
    assert!(!said.contains("now shared"), "{said}");
    let said = refer(ORG_PASS);
    assert!(
        said.starts_with("The case is now shared by 2 devices") && said.contains(&ea.device_id),
        "{said}"
    );

    // A cross-site POST (even carrying the right token) is refused, and changes nothing.
    d.goto(&format!("{}/cases", console.url));
    let csrf = d
        .run_async("arguments[0](document.querySelector('input[name=csrf]').value);")
        .as_str()
        .unwrap()
        .to_string();
    let evil = cross_site_page(&format!("{}/lock", console.url), &csrf);
    d.goto(&format!("http://127.0.0.1:{evil}/"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.url().starts_with(&console.url) {
        assert!(Instant::now() < deadline, "the form was not posted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d.source().contains("Refused (403)"), "{}", d.source());
    d.goto(&format!("{}/cases", console.url));
    assert!(d.url().ends_with("/cases"), "still unlocked: {}", d.url());

    // Acknowledge to the devices (hq ack) from the list.
    d.goto(&format!("{}/cases", console.url));
    d.click("#ack");
    let said = d.text("#message");
    assert!(said.starts_with("Acknowledged "), "{said}");
    assert!(!said.starts_with("Acknowledged 0 "), "{said}");

    // Lock by hand.
    d.goto(&format!("{}/cases", console.url));
    d.click("#lock");
    d.wait_url("/login");
    d.goto(&format!("{}/cases", console.url));
    assert!(d.url().ends_with("/login"), "locked: {}", d.url());
    let log = console.stop();
    for secret in [&code_a, &code_b, &case_a, &case_b, &att_b] {
        assert!(!log.contains(secret.as_str()), "{secret} logged: {log}");
    }
    assert!(log.contains("console GET /cases/{id} 200"), "{log}");

    // Nothing decrypted reached the disk: no file under the test's directory — the HQ
    // installation, the browser's profile and disk cache — holds a piece of the recording, except
    // the export the operator asked for.
    let needle = &audio_a[100_000..100_512];
    let mut stack = vec![w.tmp.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path == out {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                scanned += 1;
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "plaintext audio in {}",
                    path.display()
                );
            }
        }
    }
    assert!(scanned > 20, "{scanned}");
    // The same search finds the recording where it is meant to be: in the export.
    let exported: Vec<u8> = std::fs::read_dir(out.join("attachments"))
        .unwrap()
        .flatten()
        .flat_map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(exported.windows(needle.len()).any(|w| w == needle));
    assert!(
        profile.exists(),
        "the browser's profile is among the files scanned"
    );

    // The reveal is in the installation's audit log.
    let v = hq::open(&full, &SecretString::from(ORG_PASS.to_owned())).unwrap();
    let entries = audit::entries(&v.store().unwrap()).unwrap();
    // So are the export, the clash resolved, the acknowledgement and the referral.
    for (kind, subject) in [
        (AuditKind::IdentityReveal, Some(case_a.as_str())),
        (AuditKind::ClashResolve, Some(case_a.as_str())),
        (AuditKind::Export, Some(case_a.as_str())),
        (AuditKind::Acknowledge, None),
        (AuditKind::CaseRefer, Some(case_b.as_str())),
    ] {
        assert!(
            entries
                .iter()
                .any(|e| e.kind == kind && e.subject.as_deref() == subject),
            "{kind:?} {entries:?}"
        );
    }
    v.lock();

    // A research-only installation: de-identified, nothing to reveal; locks when idle.
    let console = Console::start(&research, 3);
    login(&d, &console.url, ORG_PASS);
    assert_eq!(d.text("#group"), "research");
    // The console's own words in Uzbek (question labels are chosen apart, with ?lang=).
    d.click("#ui-uz");
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.text("h1") != "Ishlar" {
        assert!(Instant::now() < deadline, "{}", d.source());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(d.text("#lock").contains("Qulflash"));
    let list = d.text("#cases");
    assert!(list.contains(&code_a) && !list.contains(&code_b), "{list}");
    d.goto(&format!("{}/cases/{case_a}", console.url));
    assert!(d.text("#deidentified").contains("ko'rsatilmaydi"), "Uzbek");
    assert_eq!(d.count("#reveal"), 0);
    let page = d.source();
    assert!(page.contains(&html_esc(&hours_uz)));
    assert!(
        !page.contains(&html_esc(&age_uz)),
        "no identity for research"
    );
    assert!(!page.contains("Dilnoza"), "no identity record for research");
    let status = d.run_async(&format!(
        "var cb = arguments[0]; fetch('/cases/{case_a}/reveal', {{method: 'POST', \
         headers: {{'content-type': 'application/x-www-form-urlencoded'}}, \
         body: 'csrf=' + document.querySelector('input[name=csrf]').value}}) \
         .then(function (r) {{ cb(r.status); }});"
    ));
    assert_eq!(status, json!(403), "research may not reveal");
    std::thread::sleep(Duration::from_secs(5));
    d.goto(&format!("{}/cases/{case_a}", console.url));
    assert!(
        d.url().ends_with("/login"),
        "locked after inactivity: {}",
        d.url()
    );
    console.stop();
}

fn html_esc(s: &str) -> String {
    amanat_server::console::html::esc(s)
}

#[test]
fn hq_console_refuses_a_non_loopback_address_and_a_directory_without_an_installation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "hq",
        "console",
        "--data",
        tmp.path().to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--behind-tls-proxy"),
        "{err}"
    );
    let out = run(&[
        "hq",
        "console",
        "--data",
        tmp.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no HQ vault"));
}

/// The rules the console shows by (`amanat_core::hq::view`), without a browser: the group read
/// as, identity only for caseworkers after a reveal, attachments only of versions the group may
/// read, a case export of one case that verifies.
#[test]
fn the_consoles_reading_rules_hold_without_a_browser() {
    use amanat_core::hq::view::{self, ViewOptions};
    let w = World::new();
    let a = w.device("a");
    let audio1: Vec<u8> = (0..70_000u32).map(|i| (i % 199) as u8).collect();
    let audio2: Vec<u8> = (0..50_000u32).map(|i| (i % 97) as u8).collect();
    let (_, case1, _, att1) = recorded(
        &a,
        &[Scope::Interview, Scope::Audio, Scope::ShareCaseworkers],
        &audio1,
        None,
    );
    let (_, case2, _, att2) = recorded(
        &a,
        &[Scope::Interview, Scope::Audio, Scope::ShareResearch],
        &audio2,
        None,
    );
    let (id1, id2) = (
        amanat_core::RecordId::parse(&case1).unwrap(),
        amanat_core::RecordId::parse(&case2).unwrap(),
    );
    cases::set_identity_field(&a, id1, "full_name", "Dilnoza Testova").unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    let full = w.hq("hq-full", &[]);
    let research = w.hq("hq-research", &["research"]);
    let pass = SecretString::from(ORG_PASS.to_owned());
    let has_age = |v: &view::CaseView| {
        v.interviews
            .iter()
            .any(|i| i.readable.answers.iter().any(|x| x.question == "age_range"))
    };
    let read = |r: Option<(String, attachments::AttachmentReader)>| {
        let (_, mut r) = r.unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    };

    let v = hq::open(&full, &pass).unwrap();
    let access = view::access_of(&v).unwrap().unwrap();
    assert_eq!(
        (access.group.as_str(), access.may_reveal),
        ("caseworkers", true)
    );
    let rows = view::case_rows(&v).unwrap();
    let shared = |id: &str| rows.iter().find(|r| r.case_id == id).unwrap().shared;
    assert!(shared(&case1) && !shared(&case2));
    let hidden = view::case_view(&v, id1, &ViewOptions::default(), None)
        .unwrap()
        .unwrap();
    assert_eq!(hidden.interviews.len(), 1);
    assert!(!has_age(&hidden));
    assert_eq!(hidden.interviews[0].readable.withheld_identity_answers, 1);
    assert!(hidden.interviews[0].verified);
    let shown = view::case_view(
        &v,
        id1,
        &ViewOptions {
            reveal: true,
            language: Some("ru".into()),
        },
        None,
    )
    .unwrap()
    .unwrap();
    assert!(has_age(&shown));
    assert_eq!(
        shown.interviews[0].readable.answers[0].label,
        label(&a, "ru", &shown.interviews[0].readable.answers[0].question)
    );
    let not_for_caseworkers = view::case_view(&v, id2, &ViewOptions::default(), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            not_for_caseworkers.interviews.len(),
            not_for_caseworkers.not_shared
        ),
        (0, 1)
    );
    assert!(view::identity_fields(&v, id1, false).unwrap().is_empty());
    assert_eq!(
        view::identity_fields(&v, id1, true).unwrap(),
        vec![("full_name".to_string(), "Dilnoza Testova".to_string())]
    );
    assert_eq!(read(view::open_attachment(&v, &att1).unwrap()), audio1);
    assert!(view::open_attachment(&v, &att2).unwrap().is_none());
    view::record_reveal(&v, id1).unwrap();
    let out = w.path("one-case");
    let r = view::export_case(&v, id1, &out, false, 1).unwrap().unwrap();
    assert_eq!((r.interviews, r.cases, r.attachments), (1, 1, 1));
    let report = amanat_core::hq::verify_export(&out, None).unwrap();
    assert!(report.ok() && report.deidentified, "{:?}", report.findings);
    v.lock();

    // The survivor withdraws sharing with caseworkers: from the next pull on, nothing of case 1
    // is shown to caseworkers any more (consent today decides), and the list says so.
    consent::withdraw(&a, id1, "worker-17", "uz", &[Scope::ShareCaseworkers]).unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    ok(&run(&[
        "hq",
        "pull",
        "--data",
        full.to_str().unwrap(),
        "--passphrase-file",
        w.org_pass.to_str().unwrap(),
    ]));
    let v = hq::open(&full, &pass).unwrap();
    let row = view::case_rows(&v)
        .unwrap()
        .into_iter()
        .find(|r| r.case_id == case1)
        .unwrap();
    assert!(!row.shared, "{row:?}");
    assert_eq!(row.withdrawn, vec!["share_caseworkers".to_string()]);
    let withdrawn = view::case_view(
        &v,
        id1,
        &ViewOptions {
            reveal: true,
            language: None,
        },
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!((withdrawn.interviews.len(), withdrawn.not_shared), (0, 1));
    // The withdrawing version itself went only to the groups still allowed (none here): HQ knows
    // of it from the withdrawal notice, which is what the core honours.
    assert_eq!(withdrawn.consent.len(), 1);
    assert!(view::identity_fields(&v, id1, true).unwrap().is_empty());
    assert!(view::open_attachment(&v, &att1).unwrap().is_none());
    // And the export command's rules are the same: nothing of case 1 goes to caseworkers now.
    let r = view::export_case(&v, id1, &w.path("after-withdrawal"), true, 2)
        .unwrap()
        .unwrap();
    assert_eq!((r.interviews, r.attachments, r.not_shared), (0, 0, 2));
    v.lock();

    let v = hq::open(&research, &pass).unwrap();
    let access = view::access_of(&v).unwrap().unwrap();
    assert_eq!(
        (access.group.as_str(), access.may_reveal),
        ("research", false)
    );
    let asked = view::case_view(
        &v,
        id2,
        &ViewOptions {
            reveal: true,
            language: None,
        },
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!(asked.interviews.len(), 1);
    assert!(
        !has_age(&asked),
        "research never reads identity, even when asked"
    );
    assert!(view::identity_fields(&v, id2, true).unwrap().is_empty());
    assert!(matches!(
        view::record_reveal(&v, id2),
        Err(amanat_core::hq::HqError::NotAllowed)
    ));
    assert_eq!(read(view::open_attachment(&v, &att2).unwrap()), audio2);
    assert!(view::open_attachment(&v, &att1).unwrap().is_none());
    v.lock();
}
