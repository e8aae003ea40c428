//! Test helper: writes records in a loop until killed, printing each committed record's id.
//!
//! Usage: `crash-writer VAULT_DIR KEY_FILE MARKER`. The parent test kills it with SIGKILL at an
//! arbitrary moment and then checks that every printed (committed) record is intact.

use amanat_core::{Passcode, SoftwareKeyProvider, StoreError, Vault};
use amanat_tests::{crash_record, FAST_KDF, NOTES, PASSCODE};
use std::io::Write;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(key), Some(marker)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: crash-writer VAULT_DIR KEY_FILE MARKER".into());
    };
    let provider = Arc::new(SoftwareKeyProvider::new(key));
    let passcode = Passcode::from(PASSCODE);
    let vault = if Vault::exists(dir) {
        let v = Vault::open(dir, provider)?;
        v.unlock(&passcode)?;
        v
    } else {
        Vault::create(dir, &passcode, provider, FAST_KDF)?
    };
    let store = vault.store()?;
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        // Three records per transaction: a kill must never leave one of them without the others.
        let ids = store.write(|tx| {
            let mut ids = Vec::new();
            for k in 0..3 {
                ids.push(tx.insert(NOTES, &crash_record(n * 3 + k, marker))?);
            }
            Ok::<_, StoreError>(ids)
        })?;
        for (k, id) in ids.iter().enumerate() {
            writeln!(out, "{id} {}", n * 3 + k as u64)?;
        }
        out.flush()?;
    }
    Ok(())
}
