//! The attachment writer's hashing thread never outlives the writer: after `finish`, `abort`, a drop
//! mid-stream, the vault's `lock()` and a write over the limit, no hashing thread is left in the
//! process. Its own test binary (one test), so no other test's writer runs at the same time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::records::attachments::{AttachmentError, AttachmentWriter, DEFAULT_MAX_BYTES};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};

/// Threads of this process whose name starts like the hashing thread's (Linux: names are cut to
/// 15 bytes in `/proc/self/task/*/comm`).
fn hash_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with("amanat-attach"))
        .count()
}

fn piece() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn no_hashing_thread_outlives_its_writer() {
    if !std::path::Path::new("/proc/self/task").exists() {
        return; // not Linux: nothing to count with
    }
    let tmp = tempfile::tempdir().unwrap();
    let vault = amanat_core::testing::create_vault(tmp.path()).unwrap();
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
    let open = |max: u64| {
        AttachmentWriter::open(&vault, &interview.id, "narrative_audio", "audio/wav", max).unwrap()
    };
    assert_eq!(hash_threads(), 0);

    // finish
    let mut w = open(DEFAULT_MAX_BYTES);
    w.write(&piece()).unwrap();
    assert_eq!(hash_threads(), 1, "the writer hashes on its own thread");
    w.finish().unwrap();
    assert_eq!(hash_threads(), 0, "after finish");

    // abort
    let mut w = open(DEFAULT_MAX_BYTES);
    w.write(&piece()).unwrap();
    w.abort();
    assert_eq!(hash_threads(), 0, "after abort");
    drop(w);

    // dropped mid-stream
    let mut w = open(DEFAULT_MAX_BYTES);
    w.write(&piece()).unwrap();
    drop(w);
    assert_eq!(hash_threads(), 0, "after a drop mid-stream");

    // over the limit
    let mut w = open(100_000);
    assert!(matches!(
        w.write(&piece()),
        Err(AttachmentError::TooLarge { .. })
    ));
    assert_eq!(hash_threads(), 0, "after a write over the limit");
    drop(w);

    // the vault locked while the writer is open: the lock itself ends the thread
    let mut w = open(DEFAULT_MAX_BYTES);
    w.write(&piece()).unwrap();
    assert_eq!(hash_threads(), 1);
    vault.lock();
    assert_eq!(hash_threads(), 0, "after lock(), before the writer notices");
    assert!(w.write(&piece()).is_err());
    drop(w);
    assert_eq!(hash_threads(), 0);
}
