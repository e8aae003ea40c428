//! Kill a writer process with SIGKILL mid-stream: every committed record must be intact, no record
//! may be half-written, and no plaintext may be on disk (WAL not checkpointed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::{Passcode, RecordId, SoftwareKeyProvider, Vault};
use amanat_tests::{crash_record, NOTES, PASSCODE};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

const MARKER: &str = "CRASH-MARKER-Дилноза-9931";

/// Runs the writer until it has reported `target` committed records, then kills it.
fn run_and_kill(dir: &Path, key: &Path, target: usize) -> BTreeMap<RecordId, u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(dir)
        .arg(key)
        .arg(MARKER)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let (id, n) = line.split_once(' ').unwrap();
        committed.insert(RecordId::parse(id).unwrap(), n.parse().unwrap());
        if committed.len() >= target {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(committed.len() >= target, "writer stopped early");
    committed
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

#[test]
fn sigkill_loses_no_committed_record_and_leaves_no_half_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let key = tmp.path().join("device.key");
    let mut all = BTreeMap::new();
    for round in 0..3 {
        all.extend(run_and_kill(&dir, &key, 300 + round * 150));

        // Killed before any checkpoint: the WAL holds the recent records. No plaintext anywhere.
        let files = files_under(&dir);
        assert!(files.iter().any(|p| p.to_string_lossy().ends_with("-wal")));
        for p in &files {
            let bytes = std::fs::read(p).unwrap();
            assert!(
                !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                "plaintext marker in {p:?}"
            );
        }

        let vault = Vault::open(&dir, Arc::new(SoftwareKeyProvider::new(&key))).unwrap();
        vault.unlock(&Passcode::from(PASSCODE)).unwrap();
        let store = vault.store().unwrap();
        for (id, n) in &all {
            let record = store
                .get(NOTES, *id)
                .unwrap()
                .expect("committed record lost");
            assert_eq!(record.value.expose(), &crash_record(*n, MARKER)[..]);
        }
        // Every record present is whole and decrypts, and transactions are all-or-nothing.
        let ids = store.read(|tx| tx.list(NOTES)).unwrap();
        assert!(ids.len() >= all.len());
        assert_eq!(ids.len() % 3, 0, "a transaction was half applied");
        for id in ids {
            store.get(NOTES, id).unwrap().unwrap();
        }
    }
}

#[test]
fn sigkill_during_an_attachment_leaves_no_plaintext_and_the_partial_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let key = tmp.path().join("device.key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(&dir)
        .arg(&key)
        .arg(MARKER)
        .arg("attachment")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut written = 0u64;
    for line in BufReader::new(stdout).lines() {
        written = line.unwrap().parse().unwrap();
        if written > 3 * 1024 * 1024 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(written > 3 * 1024 * 1024);

    let mut all = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                all.push(e.path());
            }
        }
    }
    let partials: Vec<_> = all
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".age.partial"))
        .collect();
    assert_eq!(partials.len(), 1, "{all:?}");
    assert!(std::fs::metadata(partials[0]).unwrap().len() > 2 * 1024 * 1024);
    for p in &all {
        let bytes = std::fs::read(p).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "plaintext in {p:?}"
        );
    }
    let vault = Vault::open(&dir, Arc::new(SoftwareKeyProvider::new(&key))).unwrap();
    vault.unlock(&Passcode::from(PASSCODE)).unwrap();
    assert!(!partials[0].exists(), "partial file not removed at unlock");
}

/// Regression (issue 10, item 1): a kill between an attachment file's rename and its metadata
/// commit left a complete `<id>.age` no record pointed to, forever. A child writing small
/// attachments one after another is killed at a random moment, 24 times over the same vault; after
/// each kill the next unlock must leave exactly the files that have records, every record must
/// have its file, and every attachment the child reported finished must read back intact.
#[test]
fn sigkill_while_writing_attachments_leaves_no_orphan_and_loses_no_finished_one() {
    use amanat_core::records::attachments::{self, AttachmentReader, ATTACHMENTS};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let key = tmp.path().join("device.key");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut finished: BTreeMap<String, u64> = BTreeMap::new();
    let (mut partials, mut completed) = (0, 0);
    for round in 0..24 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(&dir)
            .arg(&key)
            .arg(MARKER)
            .arg("attachments")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it reach its steady loop, then kill it at a random instant.
        let first = lines.next().expect("the writer finished nothing").unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = vec![first];
            for line in lines {
                match line {
                    Ok(line) => got.push(line),
                    Err(_) => break,
                }
            }
            got
        });
        std::thread::sleep(std::time::Duration::from_micros(next() % 40_000));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            if let Some((id, n)) = line.split_once(' ') {
                finished.insert(id.to_string(), n.parse().unwrap());
            }
        }

        let vault = Vault::open(&dir, Arc::new(SoftwareKeyProvider::new(&key))).unwrap();
        vault.unlock(&Passcode::from(PASSCODE)).unwrap();
        let report = vault.last_unlock_report().unwrap();
        assert!(report.attachments_checked);
        assert!(report.missing_attachment_files.is_empty(), "{report:?}");
        partials += report.partial_files_removed;
        completed += report.attachments_completed;
        let store = vault.store().unwrap();
        let records: Vec<String> = store
            .read(|tx| tx.list(ATTACHMENTS))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut files: Vec<String> = std::fs::read_dir(dir.join("attachments"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let expected: Vec<String> = records.iter().map(|id| format!("{id}.age")).collect();
        assert_eq!(
            files, expected,
            "round {round} (seed {seed}): files on disk must be exactly those with a record"
        );
        for (id, n) in &finished {
            assert!(records.contains(id), "round {round}: finished {id} lost");
            let mut reader = AttachmentReader::open(&vault, id).unwrap();
            let mut plain = Vec::new();
            reader.read_to_end(&mut plain).unwrap();
            assert_eq!(plain, amanat_tests::attachment_content(*n), "{id}");
            assert_eq!(
                attachments::info(&vault, id).unwrap().size,
                plain.len() as u64
            );
        }
    }
    assert!(finished.len() >= 24, "the writer made progress");
    println!(
        "{} attachments finished; unlocks removed {partials} partial files and completed {completed} committed ones",
        finished.len()
    );
}
