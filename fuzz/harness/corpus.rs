//! Replays the committed corpus and crash inputs of a fuzz target through its harness (used by
//! the `fuzz_regressions` tests of core, protocol and server; not by the fuzz targets).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs every file of `fuzz/corpus/<target>/` and `fuzz/artifacts-regressions/<target>/` through
/// `run`; a panic names the file. The corpus must not be empty (a missing folder would otherwise
/// pass silently).
pub fn replay(target: &str, run: impl Fn(&[u8]) -> bool + std::panic::RefUnwindSafe) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "no corpus for {target}");
    let crashes = files(&fuzz_dir().join("artifacts-regressions").join(target));
    let mut accepted = 0;
    for path in corpus.iter().chain(&crashes) {
        let data = std::fs::read(path).expect("read corpus file");
        match std::panic::catch_unwind(|| run(&data)) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("{target}: {} fails", path.display()),
        }
    }
    // The corpus exists to reach past the parsers' first checks.
    assert!(accepted > 0, "{target}: no corpus input is accepted");
}

/// Writes `seeds` as `fuzz/corpus/<target>/seed-<name>`.
pub fn write_seeds(target: &str, seeds: Vec<(&'static str, Vec<u8>)>) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, data) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    }
}
