//! Duress benchmark: is a duress unlock distinguishable by time from a normal one, and does it grow
//! with the amount of data? Run with `cargo bench -p amanat-core --bench duress`
//! (`AMANAT_BENCH_DURESS_MB=10,500` for the data sizes in MB, `AMANAT_BENCH_ROUNDS=6`,
//! `AMANAT_BENCH_KDF=fast,default` for the KDF parameters).
//!
//! Per KDF, size and round: two identical fresh vaults (the fast test KDF shows what the KDF would
//! hide; the default KDF is what phones run), each with audio attachments of 10 MB written through
//! `AttachmentWriter` up to the size (as a recorder would, and not synced afterwards: the coercion
//! can come right after a recording), a duress passcode, and one untimed unlock and lock. Then a
//! normal unlock of one and a duress unlock of the other are timed, in an order that alternates
//! between rounds. The next round starts once the background deletion of the wiped files has
//! finished. Medians are reported (`AMANAT_BENCH_ROUNDS`, default 6).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use amanat_core::records::attachments::{AttachmentWriter, DEFAULT_MAX_BYTES};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};
use amanat_core::testing::{FAST_KDF, PASSCODE};
use amanat_core::{KdfParams, Passcode, SoftwareKeyProvider, Vault};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DURESS: &str = "135790";
const FILE_MB: usize = 10;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Waits until no `.trash-` entry is left in the vault directory (the wipe's background deletion).
fn wait_for_trash(dir: &Path) -> Duration {
    let t = Instant::now();
    loop {
        let left = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".trash-"))
            })
            .unwrap_or(false);
        if !left || t.elapsed() > Duration::from_secs(120) {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A vault with `mb` MB of attachments and a duress passcode, unlocked once and locked again
/// (untimed), so every timed unlock follows the same history: an unlock, then a lock that
/// checkpoints the database.
fn prepare(root: &Path, kdf: KdfParams, mb: usize) -> Vault {
    let dir = root.join("vault");
    let provider = Arc::new(SoftwareKeyProvider::new(root.join("device.key")));
    let vault = Vault::create(&dir, &Passcode::from(PASSCODE), provider, kdf).unwrap();
    let case = cases::create_case(&vault).unwrap();
    consent::record_consent(
        &vault,
        case.id,
        "w",
        "en",
        &[Scope::Interview, Scope::Audio],
    )
    .unwrap();
    let interview = interviews::start(&vault, case.id, "trafficking_screening", 1, "en").unwrap();
    let block: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let mut left = mb * 1_000_000;
    while left > 0 {
        let mut w = AttachmentWriter::open(
            &vault,
            &interview.id,
            "narrative_audio",
            "audio/ogg",
            DEFAULT_MAX_BYTES,
        )
        .unwrap();
        let mut in_file = (FILE_MB * 1_000_000).min(left);
        left -= in_file;
        while in_file > 0 {
            let n = in_file.min(block.len());
            w.write(&block[..n]).unwrap();
            in_file -= n;
        }
        w.finish().unwrap();
    }
    vault
        .set_duress_passcode(&Passcode::from(PASSCODE), &Passcode::from(DURESS))
        .unwrap();
    vault.lock();
    vault.unlock(&Passcode::from(PASSCODE)).unwrap();
    vault.lock();
    vault
}

fn timed_unlock(vault: &Vault, passcode: &str) -> Duration {
    let t = Instant::now();
    vault.unlock(&Passcode::from(passcode)).unwrap();
    t.elapsed()
}

/// One round: (normal unlock, duress unlock, background deletion time). Two identical vaults, one
/// for each kind of unlock; which is prepared and measured first alternates between rounds, so
/// neither kind always runs on the fresher data or the busier disk.
fn round(kdf: KdfParams, mb: usize, duress_first: bool) -> (Duration, Duration, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = prepare(&a, kdf, mb);
    let second = prepare(&b, kdf, mb);
    let (normal_vault, duress_vault, duress_dir) = if duress_first {
        (&second, &first, a.join("vault"))
    } else {
        (&first, &second, b.join("vault"))
    };
    // The normal unlock never runs while the wiped files are being deleted.
    let (normal, duress, deletion) = if duress_first {
        let d = timed_unlock(duress_vault, DURESS);
        let deletion = wait_for_trash(&duress_dir);
        (timed_unlock(normal_vault, PASSCODE), d, deletion)
    } else {
        let n = timed_unlock(normal_vault, PASSCODE);
        let d = timed_unlock(duress_vault, DURESS);
        (n, d, wait_for_trash(&duress_dir))
    };
    (normal, duress, deletion)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo test --benches asks for a list; there are no unit benches here
    }
    let sizes: Vec<usize> = std::env::var("AMANAT_BENCH_DURESS_MB")
        .ok()
        .map(|s| s.split(',').filter_map(|p| p.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 500]);
    let rounds: usize = std::env::var("AMANAT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let kdfs: Vec<(&str, KdfParams)> = std::env::var("AMANAT_BENCH_KDF")
        .unwrap_or_else(|_| "fast,default".into())
        .split(',')
        .filter_map(|k| match k.trim() {
            "fast" => Some(("fast test KDF", FAST_KDF)),
            "default" => Some(("default KDF", KdfParams::default())),
            _ => None,
        })
        .collect();
    println!("attachment data: {sizes:?} MB, rounds: {rounds} (median)");
    for (name, kdf) in kdfs {
        println!();
        println!("{name}:");
        println!("| data | normal unlock (ms) | duress unlock (ms) | duress / normal | background deletion (ms) |");
        println!("|---|---|---|---|---|");
        let mut duress_by_size = Vec::new();
        for &mb in &sizes {
            let (mut n, mut d, mut del) = (vec![], vec![], vec![]);
            for r in 0..rounds {
                let _ = std::process::Command::new("sync").status();
                let (normal, duress, deletion) = round(kdf, mb, r % 2 == 1);
                n.push(normal);
                d.push(duress);
                del.push(deletion);
            }
            let (n, d, del) = (median(n), median(d), median(del));
            println!(
                "| {mb} MB | {:.1} | {:.1} | {:.2}× | {:.0} |",
                ms(n),
                ms(d),
                ms(d) / ms(n),
                ms(del)
            );
            duress_by_size.push((mb, d));
        }
        if let (Some((small_mb, small)), Some((large_mb, large))) =
            (duress_by_size.first(), duress_by_size.last())
        {
            println!(
                "duress unlock, {large_mb} MB vs {small_mb} MB: {:.2}×",
                ms(*large) / ms(*small)
            );
        }
    }
}
