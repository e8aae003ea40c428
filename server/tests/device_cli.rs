//! `amanat device enroll --relay URL` signs the relay into the code; `amanat device join` enrolls
//! a vault with it (passcode from the environment, code from a file), against a relay on
//! 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_protocol::EnrollmentCode;
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_amanat");

fn run(args: &[&str], passcode: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("AMANAT_PASSCODE");
    if let Some(p) = passcode {
        c.env("AMANAT_PASSCODE", p);
    }
    c.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_enroll_with_relay_then_device_join() {
    let tmp = tempfile::tempdir().unwrap();
    let org_dir = tmp.path().join("org");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let (o, p) = (org_dir.to_str().unwrap(), pass.to_str().unwrap());
    let out = run(
        &[
            "org",
            "init",
            o,
            "--passphrase-file",
            p,
            "--scrypt-log-n",
            "10",
        ],
        None,
    );
    assert!(out.status.success());
    let org =
        amanat_protocol::OrgPublic::from_json(&std::fs::read(org_dir.join("org.pub")).unwrap())
            .unwrap();
    std::fs::create_dir_all(tmp.path().join("relay")).unwrap();
    let storage = SqliteStorage::open(&tmp.path().join("relay")).unwrap();
    let running = relay::start(
        "127.0.0.1:0".parse().unwrap(),
        org.clone(),
        RelayConfig::default(),
        storage,
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.addr);

    // A relay URL that is not one is refused before anything is signed.
    let out = run(
        &[
            "device",
            "enroll",
            "--org",
            o,
            "--passphrase-file",
            p,
            "--relay",
            "ftp://x.example",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("relay URL"));

    let out = run(
        &[
            "device",
            "enroll",
            "--org",
            o,
            "--passphrase-file",
            p,
            "--relay",
            &url,
        ],
        None,
    );
    assert!(out.status.success());
    let code_json = String::from_utf8(out.stdout).unwrap();
    let code: EnrollmentCode = serde_json::from_str(code_json.trim()).unwrap();
    assert_eq!(code.relay_url.as_deref(), Some(url.as_str()));
    code.verify(&org).unwrap();
    let code_file = tmp.path().join("code.json");
    std::fs::write(&code_file, &code_json).unwrap();
    let vault = tmp.path().join("device");
    let v = vault.to_str().unwrap();
    let c = code_file.to_str().unwrap();

    // Another relay beside a code that names one: refused, nothing sent (the code still works).
    let out = tokio::task::spawn_blocking({
        let (v, c) = (v.to_string(), c.to_string());
        move || {
            run(
                &[
                    "device",
                    "join",
                    "--vault",
                    &v,
                    "--code-file",
                    &c,
                    "--relay",
                    "http://127.0.0.1:9",
                ],
                Some("135790"),
            )
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("differs"));

    let out = tokio::task::spawn_blocking({
        let (v, c) = (v.to_string(), c.to_string());
        move || {
            run(
                &["device", "join", "--vault", &v, "--code-file", &c],
                Some("135790"),
            )
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("enrolled device "), "{stdout}");
    assert!(stdout.contains(&format!("relay {url}")), "{stdout}");
    assert!(stdout.contains(&org.fingerprint), "{stdout}");
    // Single use: the same code again is refused by the relay.
    let out = tokio::task::spawn_blocking({
        let dir = tmp.path().join("second");
        let c = c.to_string();
        move || {
            run(
                &[
                    "device",
                    "join",
                    "--vault",
                    dir.to_str().unwrap(),
                    "--code-file",
                    &c,
                ],
                Some("135790"),
            )
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("code_used"));
    running.stop().await.unwrap();
}
