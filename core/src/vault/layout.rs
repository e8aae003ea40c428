//! Where each file of a vault lives, and the reconciliation of files with records that unlock
//! performs after a crash.
//!
//! The vault owns its directory, so the on-disk layout (names in [`crate::names::files`]) and the
//! crash clean-up belong here, below the record components that write attachment files:
//! `records::attachments` asks this module for paths instead of the vault reaching up into it. The
//! clean-up reads the ids of the `attachments` collection through the store
//! ([`crate::names::collections::ATTACHMENTS`]), not through the attachments component.
//!
//! An attachment's file and its record appear together or not at all: the writer fsyncs the
//! complete ciphertext under `<id>.age.partial`, commits the record, and only then renames the file
//! to `<id>.age`. So after a crash:
//!
//! | on disk | record | meaning | unlock does |
//! |---|---|---|---|
//! | `<id>.age.partial` | no | interrupted before the commit | removes it |
//! | `<id>.age.partial` | yes | committed, rename not done | renames it to `<id>.age` |
//! | `<id>.age` | no | orphan (left by versions before this rule, or planted) | removes it |
//! | nothing | yes | the file was lost | reports it ([`Reconciliation::missing`]) |
//!
//! `<id>.age.download` (ciphertext a sync download is fetching, `names::files::DOWNLOAD_SUFFIX`)
//! is left alone: it belongs to the sync engine, which resumes it, checks it and cleans up strays.

use crate::fsutil;
use crate::names::collections::ATTACHMENTS;
use crate::names::files;
use crate::store::{RecordId, Store};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Folder of attachment files inside a vault directory.
pub fn attachments_dir(vault_dir: &Path) -> PathBuf {
    vault_dir.join(files::ATTACHMENTS_DIR)
}

/// Path of a finished attachment file (`<id>.age`, a standard age file).
pub fn attachment_path(vault_dir: &Path, id: &str) -> PathBuf {
    attachments_dir(vault_dir).join(format!("{id}.age"))
}

/// Path of an attachment file while it is written (`<id>.age.partial`).
pub fn partial_path(vault_dir: &Path, id: &str) -> PathBuf {
    attachments_dir(vault_dir).join(format!("{id}{}", files::PARTIAL_SUFFIX))
}

/// Puts a complete attachment file in place after its record committed: renames
/// `<id>.age.partial` to `<id>.age` and makes the rename durable. Returns whether the final file
/// exists afterwards (true also if another thread renamed it first).
///
/// Only for an id whose record exists: the writer commits the record after the partial file is
/// complete and synced, so such a partial file is whole.
pub fn complete_partial(vault_dir: &Path, id: &str) -> io::Result<bool> {
    let final_path = attachment_path(vault_dir, id);
    match std::fs::rename(partial_path(vault_dir, id), &final_path) {
        Ok(()) => {
            fsutil::sync_parent(&final_path)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(final_path.exists()),
        Err(e) => Err(e),
    }
}

/// What [`reconcile`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Whether the attachment records could be read (their list passed the manifest check). If
    /// not, no file was touched: a file is never deleted on the word of an unverified list.
    pub checked: bool,
    /// Incomplete files of writers interrupted before their commit, removed.
    pub partials_removed: u32,
    /// Complete files without a record, removed.
    pub orphans_removed: u32,
    /// Complete files whose record committed before the rename, put in place.
    pub completed: u32,
    /// Attachment ids that have a record but no file, sorted.
    pub missing: Vec<String>,
}

/// Makes the attachment files agree with the `attachments` records (see the module table). Best
/// effort per file: a file that cannot be removed or renamed is left for the next unlock.
pub fn reconcile(vault_dir: &Path, store: &Store) -> Reconciliation {
    let mut out = Reconciliation::default();
    let Ok(ids) = store.read(|tx| tx.list(ATTACHMENTS)) else {
        return out;
    };
    out.checked = true;
    let ids: BTreeSet<String> = ids.iter().map(RecordId::to_string).collect();
    let mut changed = false;
    if let Ok(entries) = std::fs::read_dir(attachments_dir(vault_dir)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(files::PARTIAL_SUFFIX) {
                if ids.contains(id) {
                    if attachment_path(vault_dir, id).exists() {
                        // Both names: the rename happened and a copy is left (cannot normally
                        // occur); the final file is the one the record's users read.
                        if fsutil::remove(&entry.path()).is_ok() {
                            out.partials_removed += 1;
                        }
                    } else if complete_partial(vault_dir, id).unwrap_or(false) {
                        out.completed += 1;
                    }
                } else if fsutil::remove(&entry.path()).is_ok() {
                    out.partials_removed += 1;
                    changed = true;
                }
            } else if let Some(id) = name.strip_suffix(".age") {
                if !ids.contains(id) && fsutil::remove(&entry.path()).is_ok() {
                    out.orphans_removed += 1;
                    changed = true;
                }
            }
        }
    }
    if changed {
        let _ = fsutil::sync_parent(&attachment_path(vault_dir, "x"));
    }
    out.missing = missing_files(vault_dir, &ids);
    out
}

/// Attachment ids among `ids` whose `<id>.age` file does not exist, sorted.
pub fn missing_files<'a>(
    vault_dir: &Path,
    ids: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut missing: Vec<String> = ids
        .into_iter()
        .filter(|id| !attachment_path(vault_dir, id).exists())
        .cloned()
        .collect();
    missing.sort();
    missing
}

/// Paths in `vault_dir` retired by a wipe and still awaiting deletion (`.trash-…`).
pub fn trash(vault_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(vault_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(files::TRASH_PREFIX)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// How much of a large retired file is freed at a time, and the pause between steps.
const TRASH_STEP: u64 = 32 * 1024 * 1024;
const TRASH_PAUSE: Duration = Duration::from_millis(5);

/// Deletes retired files gently: large files shrink in steps with pauses between, so the kernel
/// frees their blocks (and drops their dirty pages) in small journal transactions instead of one
/// long one that every fsync of the app — the new vault's first writes, a case saved right after a
/// duress unlock — would queue behind. Missing paths are fine; errors are left for the next sweep.
pub fn delete_gently(paths: &[PathBuf]) {
    for path in paths {
        delete_tree_gently(path);
    }
}

fn delete_tree_gently(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                delete_tree_gently(&entry.path());
            }
        }
        let _ = std::fs::remove_dir(path);
        return;
    }
    if meta.is_file() && meta.len() > TRASH_STEP {
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
            let mut len = meta.len();
            while len > TRASH_STEP {
                len -= TRASH_STEP;
                if file.set_len(len).is_err() {
                    break;
                }
                std::thread::sleep(TRASH_PAUSE);
            }
        }
    }
    let _ = fsutil::remove(path);
}
