//! Vault directories made once by `examples/make_vault_fixture.rs` with a fixed software key, that
//! every later version must still open and read: slots, KDF, provider wrapping, store schema,
//! sealed records, blind indexes, hash chains, attachment files. `tests/fixtures/vault-v1` is
//! version 1 (store sealed with ChaCha20-Poly1305, format byte 1); `tests/fixtures/vault-v2-aes256gcm`
//! is the first store sealed with AES-256-GCM (format byte 2, slot format 2, store schema 2).
//! Tests work on a copy; the fixtures themselves are never written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::forms::AnswerValue;
use amanat_core::journal::audit;
use amanat_core::records::attachments::AttachmentReader;
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews::{self, Status};
use amanat_core::{Passcode, RecordId, SoftwareKeyProvider, Vault, VaultError};
use ring::digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const V1: &str = "vault-v1";
const V2_AES: &str = "vault-v2-aes256gcm";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture(name).join("expected.json")).unwrap()).unwrap()
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

/// A writable copy of the fixture, opened (locked) with its software key.
fn open_copy(name: &str) -> (tempfile::TempDir, Vault) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), tmp.path());
    let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
    let vault = Vault::open(tmp.path().join("vault"), provider).unwrap();
    (tmp, vault)
}

fn text(s: &str) -> String {
    s.to_string()
}

#[test]
fn v1_vault_opens_and_every_record_reads_back() {
    opens_and_every_record_reads_back(V1);
}

#[test]
fn aes_vault_opens_and_every_record_reads_back() {
    opens_and_every_record_reads_back(V2_AES);
}

fn opens_and_every_record_reads_back(name: &str) {
    let e = expected(name);
    let (_tmp, vault) = open_copy(name);
    vault
        .unlock(&Passcode::from(e["passcode"].as_str().unwrap()))
        .unwrap();

    // Case through its blind index, narrative and identity kept apart.
    let case = cases::find_by_code(&vault, e["case_code"].as_str().unwrap())
        .unwrap()
        .expect("the case is found by its code");
    assert_eq!(case.id.to_string(), e["case_id"].as_str().unwrap());
    assert_eq!(
        case.fields.get("district_note").map(|f| f.value.clone()),
        Some(text("Тошкент вилояти, Юнусобод"))
    );
    assert!(case.withdrawal_pending);
    let identity = cases::get_identity(&vault, case.id).unwrap();
    assert_eq!(
        identity.fields.get("name").map(|f| f.value.clone()),
        Some(text("Нигора Каримова"))
    );

    // Consent: two versions, the second withdrawing research.
    let history = consent::history(&vault, case.id).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].scopes.contains(&Scope::ShareResearch));
    assert!(!history[1].scopes.contains(&Scope::ShareResearch));
    assert!(history[1].withdrawn.contains(&Scope::ShareResearch));
    assert!(history[1].scopes.contains(&Scope::ShareCaseworkers));

    // Interviews: original + amendment (submitted, chained) and a draft.
    let list = interviews::list_for_case(&vault, case.id).unwrap();
    assert_eq!(list.len(), 3);
    let original = interviews::get(&vault, e["interview_original"].as_str().unwrap()).unwrap();
    assert_eq!(original.status, Status::Submitted);
    assert_eq!(original.language, "uz");
    assert_eq!(
        original.hash.as_deref(),
        e["interview_original_hash"].as_str()
    );
    assert_eq!(
        original.answers.get("narrative"),
        Some(&AnswerValue::Text(text("Паспортимни олиб қўйишди.")))
    );
    assert_eq!(
        original.answers.get("hours_per_day"),
        Some(&AnswerValue::Integer(14))
    );
    let amendment_id = e["interview_amendment"].as_str().unwrap();
    let amendment = interviews::get(&vault, amendment_id).unwrap();
    assert_eq!(
        amendment.answers.get("hours_per_day"),
        Some(&AnswerValue::Integer(16))
    );
    assert_eq!(amendment.prev_hash, original.hash);
    assert_eq!(interviews::verify_chain(&vault, amendment_id).unwrap(), 2);
    let draft = interviews::get(&vault, e["interview_draft"].as_str().unwrap()).unwrap();
    assert_eq!(draft.status, Status::Draft);
    assert_eq!(draft.language, "ru");

    // The audio attachment: referenced by the answer, decrypts to the recorded bytes.
    let attachment_id = e["attachment_id"].as_str().unwrap();
    match original.answers.get("narrative_audio") {
        Some(AnswerValue::Attachment { id, sha256, .. }) => {
            assert_eq!(id, attachment_id);
            assert_eq!(sha256, e["attachment_sha256"].as_str().unwrap());
        }
        other => panic!("audio answer missing: {}", other.is_some()),
    }
    let mut reader = AttachmentReader::open(&vault, attachment_id).unwrap();
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).unwrap();
    assert_eq!(plain.len() as u64, e["attachment_size"].as_u64().unwrap());
    let sha = digest::digest(&digest::SHA256, &plain);
    let hex: String = sha.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, e["attachment_sha256"].as_str().unwrap());

    // The audit chain of version 1 verifies, and new entries append to it.
    let before = audit::verify(&vault.store().unwrap()).unwrap();
    assert!(before > 10, "{before} audit entries");
    cases::set_field(&vault, case.id, "follow_up", "2026-12-01").unwrap();
    assert!(audit::verify(&vault.store().unwrap()).unwrap() >= before);

    // It stays writable across a lock.
    vault.lock();
    vault
        .unlock(&Passcode::from(e["passcode"].as_str().unwrap()))
        .unwrap();
    let case = cases::get_case(&vault, case.id).unwrap();
    assert_eq!(
        case.fields.get("follow_up").map(|f| f.value.clone()),
        Some(text("2026-12-01"))
    );
}

#[test]
fn v1_attachment_is_a_standard_age_file_for_hq() {
    attachment_is_a_standard_age_file_for_hq(V1);
}

#[test]
fn aes_vault_attachment_is_a_standard_age_file_for_hq() {
    attachment_is_a_standard_age_file_for_hq(V2_AES);
}

fn attachment_is_a_standard_age_file_for_hq(name: &str) {
    let e = expected(name);
    let identity = std::fs::read_to_string(fixture(name).join("hq-caseworkers.identity")).unwrap();
    let identity: age::x25519::Identity = identity.trim().parse().unwrap();
    let file = fixture(name)
        .join("vault/attachments")
        .join(format!("{}.age", e["attachment_id"].as_str().unwrap()));
    let mut reader = AttachmentReader::open_file(&file, &[identity]).unwrap();
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).unwrap();
    let sha = digest::digest(&digest::SHA256, &plain);
    let hex: String = sha.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, e["attachment_sha256"].as_str().unwrap());
}

#[test]
fn v1_wrong_passcode_counts_and_duress_wipes() {
    wrong_passcode_counts_and_duress_wipes(V1);
}

#[test]
fn aes_vault_wrong_passcode_counts_and_duress_wipes() {
    wrong_passcode_counts_and_duress_wipes(V2_AES);
}

fn wrong_passcode_counts_and_duress_wipes(name: &str) {
    let e = expected(name);
    let (tmp, vault) = open_copy(name);
    assert!(matches!(
        vault.unlock(&Passcode::from("999999")),
        Err(VaultError::WrongPasscode {
            failed_attempts: 1,
            ..
        })
    ));
    // The duress passcode of a fixture vault still crypto-shreds it into an empty vault.
    vault
        .unlock(&Passcode::from(e["duress_passcode"].as_str().unwrap()))
        .unwrap();
    assert!(cases::list_cases(&vault).unwrap().is_empty());
    // The decoy is sealed with the cipher of the vault it replaced, whatever this CPU prefers.
    assert_eq!(
        format_bytes_at(&tmp.path().join("vault/vault.db")),
        format_bytes(name)
    );
    let case_id = RecordId::parse(e["case_id"].as_str().unwrap()).unwrap();
    assert!(cases::get_case(&vault, case_id).is_err());
    vault.lock();
    assert!(matches!(
        vault.unlock(&Passcode::from(e["passcode"].as_str().unwrap())),
        Err(VaultError::WrongPasscode { .. })
    ));
}

#[test]
fn v1_slot_file_is_format_1() {
    let slots: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture(V1).join("vault/keyslots.json")).unwrap())
            .unwrap();
    assert_eq!(slots["format"], 1);
}

/// The first byte of every sealed value in a fixture's store: the cipher it was sealed with.
fn format_bytes(name: &str) -> std::collections::BTreeSet<u8> {
    // On a copy: even a read-only SQLite connection would create `-shm`/`-wal` files beside the
    // fixture's database.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name).join("vault"), tmp.path());
    format_bytes_at(&tmp.path().join("vault.db"))
}

/// The fixtures are as they were made: no test ever opened their databases in place (SQLite
/// would have left `-shm`/`-wal` files, as an earlier version of this file's tests did).
#[test]
fn fixtures_are_never_written() {
    for name in [V1, V2_AES] {
        let files: Vec<String> = std::fs::read_dir(fixture(name).join("vault"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            files
                .iter()
                .all(|f| !f.ends_with("-shm") && !f.ends_with("-wal")),
            "{name}: {files:?}"
        );
    }
}

fn format_bytes_at(db: &Path) -> std::collections::BTreeSet<u8> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut bytes = std::collections::BTreeSet::new();
    for sql in ["SELECT sealed FROM records", "SELECT sealed FROM meta"] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        for sealed in rows {
            bytes.insert(sealed.unwrap()[0]);
        }
    }
    bytes
}

#[test]
fn each_fixture_store_is_sealed_with_one_cipher_only() {
    assert_eq!(format_bytes(V1), [1u8].into());
    assert_eq!(format_bytes(V2_AES), [2u8].into());
}

/// A new vault takes the cipher `Cipher::preferred` names (the CPU's choice; forced here so both
/// kinds are made on any machine), seals everything with it, and keeps it across a lock.
#[test]
fn a_new_vault_seals_with_the_preferred_cipher_and_keeps_it() {
    use amanat_core::crypto::{force_preferred_cipher, Cipher};
    for cipher in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
        let tmp = tempfile::tempdir().unwrap();
        force_preferred_cipher(Some(cipher));
        let vault = amanat_core::testing::create_vault(&tmp.path().join("v"));
        force_preferred_cipher(None);
        let vault = vault.unwrap();
        let case = cases::create_case(&vault).unwrap();
        cases::set_field(&vault, case.id, "district_note", "Юнусобод").unwrap();
        vault.lock();
        vault
            .unlock(&Passcode::from(amanat_core::testing::PASSCODE))
            .unwrap();
        let read = cases::get_case(&vault, case.id).unwrap();
        assert_eq!(
            read.fields.get("district_note").map(|f| f.value.clone()),
            Some(text("Юнусобод"))
        );
        vault.lock();
        assert_eq!(
            format_bytes_at(&tmp.path().join("v/vault/vault.db")),
            [cipher.format_byte()].into(),
            "{cipher:?}"
        );
    }
}
