//! Upgrading a vault made by version 1 (the frozen fixture `tests/fixtures/vault-v1`, made by the
//! code as it was before slot check values and store manifests existed): it opens, its slot file
//! gains check values on the first successful unlock, its store gains a manifest, and from then on
//! both protections hold. `compat_v1.rs` checks that everything still reads back; this file checks
//! the upgrade itself. Tests work on a copy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::names::files::{DATABASE as DB_FILE, SLOTS as SLOTS_FILE};
use amanat_core::records::cases::{self, CaseError};
use amanat_core::store::StoreError;
use amanat_core::{
    KeyProvider, KeyProviderError, Passcode, RecordId, SecretBytes, SoftwareKeyProvider, Vault,
    VaultError,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-v1")
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture().join("expected.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture's software key, made to answer `unwrap` with wrong bytes on demand.
struct Garbage {
    inner: SoftwareKeyProvider,
    garbage: Mutex<Option<usize>>,
}

impl KeyProvider for Garbage {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyProviderError> {
        self.inner.wrap(plaintext)
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes, KeyProviderError> {
        match *self.garbage.lock().unwrap() {
            Some(len) => Ok(SecretBytes::new(vec![0x42; len])),
            None => self.inner.unwrap(wrapped),
        }
    }
    fn destroy(&self) -> Result<(), KeyProviderError> {
        self.inner.destroy()
    }
}

fn slots_format(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(SLOTS_FILE)).unwrap()).unwrap()
}

#[test]
fn v1_slots_gain_check_values_and_then_tell_a_broken_provider_from_a_wrong_passcode() {
    let e = expected();
    let passcode = Passcode::from(e["passcode"].as_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let dir = tmp.path().join("vault");
    let provider = Arc::new(Garbage {
        inner: SoftwareKeyProvider::new(tmp.path().join("device.key")),
        garbage: Mutex::new(None),
    });
    let vault = Vault::open(&dir, provider.clone()).unwrap();
    assert_eq!(slots_format(&dir)["format"], 1);

    // Format 1 has no check value, but a blob of the wrong length is still the provider's fault.
    for len in [0usize, 32, 4096] {
        *provider.garbage.lock().unwrap() = Some(len);
        assert!(matches!(
            vault.unlock(&passcode),
            Err(VaultError::KeyProvider(KeyProviderError::Mismatch))
        ));
        assert_eq!(vault.unlock_status().failed_attempts, 0);
    }
    assert_eq!(
        slots_format(&dir)["format"],
        1,
        "nothing written on failure"
    );

    // The first successful unlock upgrades the slot file; the data key and slots stay the same.
    *provider.garbage.lock().unwrap() = None;
    let before = slots_format(&dir);
    vault.unlock(&passcode).unwrap();
    let after = slots_format(&dir);
    assert_eq!(after["format"], 2);
    for slot in ["main", "duress"] {
        assert_eq!(after[slot]["wrapped"], before[slot]["wrapped"]);
        assert_eq!(after[slot]["salt"], before[slot]["salt"]);
        assert_eq!(after[slot]["check"].as_str().map(str::len), Some(64));
    }
    vault.lock();

    // Now even bytes of exactly the right length are caught, for either passcode.
    *provider.garbage.lock().unwrap() = Some(61);
    for p in [
        e["passcode"].as_str().unwrap(),
        e["duress_passcode"].as_str().unwrap(),
    ] {
        assert!(matches!(
            vault.unlock(&Passcode::from(p)),
            Err(VaultError::KeyProvider(KeyProviderError::Mismatch))
        ));
    }
    assert_eq!(vault.unlock_status().failed_attempts, 0);
    *provider.garbage.lock().unwrap() = None;
    vault.unlock(&passcode).unwrap();
    assert!(
        cases::find_by_code(&vault, e["case_code"].as_str().unwrap())
            .unwrap()
            .is_some()
    );
    // The duress passcode still wipes an upgraded vault.
    vault.lock();
    vault
        .unlock(&Passcode::from(e["duress_passcode"].as_str().unwrap()))
        .unwrap();
    assert!(cases::list_cases(&vault).unwrap().is_empty());
}

#[test]
fn v1_store_gains_a_manifest_that_then_catches_missing_records() {
    let e = expected();
    let passcode = Passcode::from(e["passcode"].as_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let dir = tmp.path().join("vault");
    let key = tmp.path().join("device.key");
    let schema = |dir: &Path| -> u32 {
        rusqlite::Connection::open(dir.join(DB_FILE))
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(schema(&dir), 1);

    let vault = Vault::open(&dir, Arc::new(SoftwareKeyProvider::new(&key))).unwrap();
    vault.unlock(&passcode).unwrap();
    let report = vault.check_integrity().unwrap();
    assert!(report.records > 20, "{report:?}");
    assert_eq!(report.records, report.records_opened);
    assert!(report.index_entries >= 5, "{report:?}");
    assert!(report.missing_attachment_files.is_empty());
    let unlock = vault.last_unlock_report().unwrap();
    assert!(unlock.attachments_checked);
    assert_eq!(unlock.orphan_files_removed, 0);
    let case_id = RecordId::parse(e["case_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        cases::find_by_code(&vault, e["case_code"].as_str().unwrap())
            .unwrap()
            .unwrap()
            .id,
        case_id
    );
    drop(vault);
    assert_eq!(schema(&dir), 2);

    // The identity record removed behind the vault's back: a typed error, not "no identity".
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    let removed = conn
        .execute(
            "DELETE FROM records WHERE id = ?1 AND rowid <> (SELECT min(rowid) FROM records WHERE id = ?1)",
            [&case_id.as_bytes()[..]],
        )
        .unwrap();
    assert_eq!(removed, 1);
    drop(conn);
    let vault = Vault::open(&dir, Arc::new(SoftwareKeyProvider::new(&key))).unwrap();
    vault.unlock(&passcode).unwrap();
    assert!(matches!(
        cases::get_identity(&vault, case_id),
        Err(CaseError::Store(StoreError::Integrity))
    ));
    assert!(matches!(
        vault.check_integrity(),
        Err(VaultError::Store(StoreError::Integrity))
    ));
}
