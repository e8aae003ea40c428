#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The real `amanat` binary: `org init`, `device enroll`, `serve` as a child process that is
//! SIGKILLed mid-stream and restarted (acknowledged pushes survive), then `device revoke`.
//! SQLite backend (the embedded default); the PostgreSQL behaviour is covered by relay_api.rs.

use amanat_protocol::{EnrollRequest, EnrollmentCode, Envelope, PullResponse, PushRequest};
use base64::Engine as _;
use ring::signature::KeyPair;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_amanat");

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `amanat serve` on port 0 and returns the child and its address (read from stdout).
fn serve(data: &Path, org_pub: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--data"])
        .arg(data)
        .arg("--org-public")
        .arg(org_pub)
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
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
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    (child, addr)
}

struct Client {
    http: reqwest::Client,
    addr: String,
    key: ring::signature::Ed25519KeyPair,
}

impl Client {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<(u16, serde_json::Value)> {
        let h = amanat_protocol::sign_request(&self.key, method, path, now_ms(), &body).unwrap();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("http://{}{}", self.addr, path))
            .body(body);
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let s = resp.status().as_u16();
        let b = resp.bytes().await?;
        Ok((
            s,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        ))
    }
}

fn uuid7(i: u64) -> String {
    let ms = now_ms();
    format!(
        "{:08x}-{:04x}-7{:03x}-8000-{:012x}",
        (ms >> 16) as u32,
        (ms & 0xffff) as u16,
        i & 0xfff,
        i
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binary_survives_sigkill_and_cli_signs_codes_and_revocations() {
    let tmp = tempfile::tempdir().unwrap();
    let org_dir = tmp.path().join("org");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let out = run(&[
        "org",
        "init",
        org_dir.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--scrypt-log-n",
        "10",
    ]);
    let org_pub = org_dir.join("org.pub");
    let org = amanat_protocol::OrgPublic::from_json(&std::fs::read(&org_pub).unwrap()).unwrap();
    assert!(out.contains(&org.fingerprint), "prints the fingerprint");
    assert_eq!(org.groups.len(), 4);
    // The group identities are encrypted under the passphrase, not stored in clear.
    let g = std::fs::read(org_dir.join("groups/legal.key.age")).unwrap();
    assert!(!String::from_utf8_lossy(&g).contains("AGE-SECRET-KEY"));

    let code_json = run(&[
        "device",
        "enroll",
        "--org",
        org_dir.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--expires-in",
        "600",
    ]);
    let code: EnrollmentCode = serde_json::from_str(code_json.trim()).unwrap();
    code.verify(&org).unwrap();
    // A wrong passphrase cannot sign.
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, "not the passphrase\n").unwrap();
    let st = Command::new(BIN)
        .args([
            "device",
            "enroll",
            "--org",
            org_dir.to_str().unwrap(),
            "--passphrase-file",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!st.status.success());

    let data = tmp.path().join("relay");
    let (mut child, addr) = serve(&data, &org_pub);
    let key =
        amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
            .unwrap();
    let me = amanat_protocol::device_id(key.public_key().as_ref());
    let mut c = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        addr,
        key,
    };
    let req = EnrollRequest {
        code,
        signing_public_key: amanat_protocol::to_hex(c.key.public_key().as_ref()),
        age_recipient: age::x25519::Identity::generate().to_public().to_string(),
    };
    let (s, b) = c
        .send("POST", "/v1/enroll", serde_json::to_vec(&req).unwrap())
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");

    // Push in batches; SIGKILL the relay after some acknowledgements, mid-stream.
    let mut acked = Vec::new();
    let mut i = 0u64;
    for round in 0..40 {
        let batch: Vec<Envelope> = (0..20)
            .map(|_| {
                i += 1;
                Envelope {
                    id: uuid7(i),
                    recipients: vec![me.clone()],
                    payload: base64::engine::general_purpose::STANDARD.encode([7u8; 300]),
                }
            })
            .collect();
        if round == 10 {
            child.kill().unwrap(); // SIGKILL: no graceful shutdown
            child.wait().unwrap();
        }
        match c
            .send(
                "POST",
                "/v1/envelopes",
                serde_json::to_vec(&PushRequest {
                    envelopes: batch.clone(),
                })
                .unwrap(),
            )
            .await
        {
            Ok((200, _)) => acked.extend(batch.into_iter().map(|e| e.id)),
            _ => break,
        }
    }
    assert_eq!(acked.len(), 200);

    let (mut child, addr) = serve(&data, &org_pub);
    c.addr = addr;
    let (s, b) = c
        .send("GET", "/v1/envelopes?after=0&limit=1000", vec![])
        .await
        .unwrap();
    assert_eq!(s, 200);
    let page: PullResponse = serde_json::from_value(b).unwrap();
    let got: Vec<String> = page.envelopes.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got, acked, "every acknowledged envelope, in order");
    assert_eq!(page.envelopes.last().unwrap().seq, 200);

    // Org-signed revocation from the CLI.
    let rev = run(&[
        "device",
        "revoke",
        "--org",
        org_dir.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        &me,
    ]);
    let resp = c
        .http
        .post(format!("http://{}/v1/revocations", c.addr))
        .body(rev.trim().to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (s, b) = c.send("GET", "/v1/envelopes", vec![]).await.unwrap();
    assert_eq!((s, b["error"].as_str()), (403, Some("revoked_device")));

    // Graceful stop on SIGTERM.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = match exited {
        Some(s) => s,
        None => {
            child.kill().unwrap();
            panic!("relay did not stop on SIGTERM");
        }
    };
    assert!(status.success(), "graceful exit: {status:?}");
}

/// `amanat serve` on a database migrated by a newer relay exits non-zero with a clear message and
/// leaves the database as it was.
#[test]
fn serve_refuses_a_database_newer_than_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let org_dir = tmp.path().join("org");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    run(&[
        "org",
        "init",
        org_dir.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--scrypt-log-n",
        "10",
    ]);
    let data = tmp.path().join("data");
    drop(amanat_server::relay::sqlite::SqliteStorage::open(&data).unwrap());
    let db = rusqlite::Connection::open(data.join("relay.db")).unwrap();
    db.execute(
        "INSERT INTO relay_schema_version (version, name, applied_at) VALUES (99, 'future', 0)",
        [],
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data"])
        .arg(&data)
        .arg("--org-public")
        .arg(org_dir.join("org.pub"))
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schema version 99 is newer than this relay supports"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "never listened"
    );
    let max: i64 = db
        .query_row("SELECT MAX(version) FROM relay_schema_version", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(max, 99);
}
