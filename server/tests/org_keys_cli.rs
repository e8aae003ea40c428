//! The organisation's keys through the real binary: `org backup` into Shamir shares and
//! `org restore` from some of them, and the QR code `device enroll` draws (decoded back).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_protocol::{DeviceRole, EnrollmentCode, OrgPublic};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_amanat");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn init(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf, OrgPublic) {
    let org = tmp.join("org");
    let pass = tmp.join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let out = run(&[
        "org",
        "init",
        s(&org),
        "--passphrase-file",
        s(&pass),
        "--scrypt-log-n",
        "10",
    ]);
    assert!(out.status.success());
    let public = OrgPublic::from_json(&std::fs::read(org.join("org.pub")).unwrap()).unwrap();
    (org, pass, public)
}

#[test]
fn org_backup_into_five_shares_and_restore_from_any_three_but_not_two() {
    let tmp = tempfile::tempdir().unwrap();
    let (org, pass, public) = init(tmp.path());
    let shares = tmp.path().join("shares");
    let out = run(&[
        "org",
        "backup",
        "--org",
        s(&org),
        "--shares",
        "5",
        "--threshold",
        "3",
        "--out",
        s(&shares),
        "--passphrase-file",
        s(&pass),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = |i: u8| shares.join(format!("share-{i}-of-5.txt"));
    for i in 1..=5 {
        let text = std::fs::read_to_string(file(i)).unwrap();
        assert!(text.contains(&format!("share: {i} of 5")), "{text}");
        assert!(text.contains(&public.fingerprint));
    }
    let new_pass = tmp.path().join("new-pass");
    std::fs::write(&new_pass, "a new passphrase for the rebuilt keys\n").unwrap();
    // Two shares: refused, nothing written.
    let to = tmp.path().join("rebuilt");
    let out = run(&[
        "org",
        "restore",
        s(&file(2)),
        s(&file(5)),
        "--to",
        s(&to),
        "--passphrase-file",
        s(&new_pass),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs 3"));
    assert!(!to.exists());
    // Three: the same organisation, under the new passphrase.
    let out = run(&[
        "org",
        "restore",
        s(&file(2)),
        s(&file(5)),
        s(&file(3)),
        "--to",
        s(&to),
        "--passphrase-file",
        s(&new_pass),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&public.fingerprint), "{stdout}");
    assert_eq!(
        OrgPublic::from_json(&std::fs::read(to.join("org.pub")).unwrap()).unwrap(),
        public
    );
    // The rebuilt key signs codes the original organisation verifies.
    let out = run(&[
        "device",
        "enroll",
        "--org",
        s(&to),
        "--passphrase-file",
        s(&new_pass),
        "--no-qr",
    ]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "--no-qr draws nothing");
    let code: EnrollmentCode =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    code.verify(&public).unwrap();
    assert_eq!(code.role, DeviceRole::Field);
}

/// The QR code read back from the characters printed: each character holds two modules (upper
/// and lower half block); drawn at 4 px per module and decoded with `rqrr`.
fn decode_qr(text: &str) -> String {
    let rows: Vec<Vec<char>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().collect())
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap();
    let mut modules = vec![vec![false; width]; rows.len() * 2];
    for (y, row) in rows.iter().enumerate() {
        for (x, c) in row.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            modules[2 * y][x] = top;
            modules[2 * y + 1][x] = bottom;
        }
    }
    let scale = 4;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(
        width * scale,
        modules.len() * scale,
        |x, y| {
            if modules[y / scale][x / scale] {
                0
            } else {
                255
            }
        },
    );
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

#[test]
fn device_enroll_draws_the_code_as_a_qr_code_that_decodes_to_the_same_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (org, pass, public) = init(tmp.path());
    let out = run(&[
        "device",
        "enroll",
        "--org",
        s(&org),
        "--passphrase-file",
        s(&pass),
        "--relay",
        "https://relay.example.org",
    ]);
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert_eq!(json.lines().count(), 1, "standard output is the JSON alone");
    let drawn = String::from_utf8(out.stderr).unwrap();
    let scanned = decode_qr(&drawn);
    assert_eq!(scanned, json.trim());
    let code: EnrollmentCode = serde_json::from_str(&scanned).unwrap();
    code.verify(&public).unwrap();
    assert_eq!(code.relay_url.as_deref(), Some("https://relay.example.org"));
}
