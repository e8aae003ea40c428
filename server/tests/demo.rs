//! The README's first command must keep working: run `amanat demo` and check its story.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn demo_runs_and_reports_no_plaintext_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_amanat"))
        .args(["demo", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("refused: wrong passcode"), "{stdout}");
    assert!(stdout.contains("plaintext hits: 0"), "{stdout}");
    assert!(stdout.contains("records visible: 0"), "{stdout}");
    assert!(stdout.contains("validation caught a typo"), "{stdout}");
    assert!(stdout.contains("consent gate: audio refused"), "{stdout}");
    assert!(stdout.contains("chain verifies (2 versions)"), "{stdout}");
    assert!(
        stdout.contains("HQ caseworkers decrypt it: yes, identical"),
        "{stdout}"
    );
    assert!(stdout.contains("camera file left behind: no"), "{stdout}");
    // The sync story: two devices enrolled with codes carrying the relay URL, A → relay → B, HQ's
    // routing, custody verified on both devices; counts only, no record content.
    assert!(
        stdout.contains("relay listening on http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("devices enrolled: A "), "{stdout}");
    assert!(
        stdout.contains("sync B: pulled 0 (the case is not B's)"),
        "{stdout}"
    );
    // The referral: B gets case, consent and interview (and the identity) inside the sealed
    // order, and its note travels back to A.
    assert!(
        stdout.contains("B received 4 records, quarantined 0; interview on B has A's hash: yes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("follow-up note reached device A: yes"),
        "{stdout}"
    );
    for kind in [
        "attachment 1",
        "audit ",
        "case 1",
        "consent 1",
        "interview 2",
    ] {
        assert!(stdout.contains(kind), "{kind}: {stdout}");
    }
    assert_eq!(stdout.matches(", 0 failures").count(), 2, "{stdout}");
    // HQ: a real installation pulls, exports for caseworkers and verifies; research learns nothing.
    assert!(stdout.contains("HQ (caseworkers key): pulled "), "{stdout}");
    assert!(stdout.contains(" 0 kept encrypted"), "{stdout}");
    // Offline interviews in Uzbek (with audio) and Russian reach HQ and its export.
    assert!(
        stdout.contains("interviews submitted in Uzbek (with a 62 KiB audio clip"),
        "{stdout}"
    );
    assert!(
        stdout.contains("HQ export for caseworkers: 2 interviews, 1 case, 1 audio clip decrypted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("interviews, every signature, hash and chain holds"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(research key only, no research consent): 0 decrypted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("31 days on, deleted 2 acknowledged interviews and 1 recordings"),
        "{stdout}"
    );
    assert!(
        stdout.contains("on its next contact it wiped itself: yes"),
        "{stdout}"
    );
    assert!(!stdout.contains("bad signature"), "{stdout}");
    // The data directory is kept and holds a vault; running again wipes the old demo vault first.
    assert!(tmp.path().join("vault/keyslots.json").exists());
    let again = Command::new(env!("CARGO_BIN_EXE_amanat"))
        .args(["demo", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("wiping it first"));
}

#[test]
fn unknown_command_fails_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_amanat"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
