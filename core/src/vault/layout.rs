//! Where each file of a vault lives, and the clean-up of files a crash left behind.
//!
//! The vault owns its directory, so the on-disk layout (names in [`crate::names::files`]) and the
//! crash clean-up that unlock performs belong here, below the record components that write
//! attachment files: `records::attachments` asks this module for paths instead of the vault
//! reaching up into it.

use crate::fsutil;
use crate::names::files;
use std::io;
use std::path::{Path, PathBuf};

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

/// Removes partial attachment files left by a crash (ciphertext, but incomplete and useless).
/// Called at unlock; returns how many were removed.
pub fn remove_partials(vault_dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(attachments_dir(vault_dir)) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(files::PARTIAL_SUFFIX)
        {
            fsutil::remove(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
