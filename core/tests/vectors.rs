//! Frozen test vectors of every byte format the vault writes or hashes (as the age crate freezes
//! its format in `tests/test_vectors.rs`). Vaults in the field hold these bytes: a change that alters
//! any of them must fail here. A new format gets a new version byte and new vectors beside these;
//! these stay. The on-disk whole is frozen separately by `tests/compat_v1.rs` (a version-1 vault
//! directory that every future version must open and read).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::crypto::{self, Cipher, NonceSource};
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::audit::{entry_hash, AuditKind};
use amanat_core::names::{collections, labels};
use amanat_core::records::interviews::{content_hash, Interview, Status};
use amanat_core::store::record_aad;
use amanat_core::testing::fixed_key;
use amanat_core::{KdfParams, Passcode, RecordId};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Sealed value, format 1: `0x01 ‖ nonce(12) ‖ ChaCha20-Poly1305(body) ‖ tag(16)`, under the
/// HKDF-SHA256 records subkey of the data key.
#[test]
fn sealed_value_format_v1() {
    let records = crypto::derive_subkey(&fixed_key(0x11), labels::RECORDS);
    let nonces = NonceSource::from_seed([0x22; 32]);
    let aad = record_aad(collections::CASES, &RecordId::from_bytes([0x33; 16]), 1);
    let sealed = crypto::seal(&records, &nonces, &aad, b"amanat vector").unwrap();
    assert_eq!(sealed[0], 1, "format byte");
    assert_eq!(sealed.len(), 1 + 12 + 13 + 16);
    assert_eq!(hex(&sealed), SEALED_V1);
    // And the frozen bytes open, today and forever.
    let opened = crypto::open(&records, &aad, &unhex(SEALED_V1)).unwrap();
    assert_eq!(opened.expose(), b"amanat vector");
    // Padded form: plaintext ‖ 0x80 ‖ 0… up to the Padmé length.
    let mut padded = Vec::new();
    crypto::seal_into(&records, &nonces, &aad, &[0x61; 100], true, &mut padded).unwrap();
    assert_eq!(padded.len(), 1 + 12 + crypto::padme_len(101) + 16);
    assert_eq!(hex(&padded), SEALED_PADDED_V1);
}

/// Sealed value, format 2: `0x02 ‖ nonce(12) ‖ AES-256-GCM(body) ‖ tag(16)`, under the records
/// subkey derived with the AES label (a store made on a CPU with AES instructions).
#[test]
fn sealed_value_format_2_aes256gcm() {
    let records = crypto::derive_subkey(&fixed_key(0x11), labels::RECORDS_AES256GCM);
    let nonces = NonceSource::from_seed([0x22; 32]);
    let aad = record_aad(collections::CASES, &RecordId::from_bytes([0x33; 16]), 1);
    let aes = Cipher::Aes256Gcm;
    let mut sealed = Vec::new();
    crypto::seal_into_with(
        aes,
        &records,
        &nonces,
        &aad,
        b"amanat vector",
        false,
        &mut sealed,
    )
    .unwrap();
    assert_eq!(sealed[0], 2, "format byte");
    assert_eq!(sealed.len(), 1 + 12 + 13 + 16);
    assert_eq!(hex(&sealed), SEALED_AES256GCM);
    let opened = crypto::open_with(aes, &records, &aad, &unhex(SEALED_AES256GCM)).unwrap();
    assert_eq!(opened.expose(), b"amanat vector");
    let mut padded = Vec::new();
    crypto::seal_into_with(
        aes,
        &records,
        &nonces,
        &aad,
        &[0x61; 100],
        true,
        &mut padded,
    )
    .unwrap();
    assert_eq!(padded.len(), 1 + 12 + crypto::padme_len(101) + 16);
    assert_eq!(hex(&padded), SEALED_PADDED_AES256GCM);
    // The same nonces as format 1's vector: only the cipher and the key's label differ.
    assert_eq!(&unhex(SEALED_AES256GCM)[1..13], &unhex(SEALED_V1)[1..13]);
}

#[test]
fn record_associated_data() {
    let aad = record_aad(
        collections::INTERVIEWS,
        &RecordId::from_bytes([0xab; 16]),
        7,
    );
    assert_eq!(hex(&aad), RECORD_AAD);
}

#[test]
fn blind_index_token() {
    let index = crypto::derive_subkey(&fixed_key(0x11), labels::BLIND_INDEX);
    let token = crypto::blind_token(
        &index,
        &[labels::BLIND_VALUE, b"cases", b"code", b"K7Q2MX9C"],
    );
    assert_eq!(hex(&token), BLIND_TOKEN);
}

#[test]
fn padme_lengths() {
    let got: Vec<usize> = [0, 1, 2, 9, 100, 1000, 1900, 1920, 65_537]
        .iter()
        .map(|&n| crypto::padme_len(n))
        .collect();
    assert_eq!(got, [0, 1, 2, 10, 104, 1024, 1920, 1920, 67_584]);
}

/// Argon2id(passcode, salt) with the slot's parameters, pinned through a seal with a fixed nonce.
#[test]
fn passcode_kdf() {
    let params = KdfParams {
        m_kib: 256,
        t: 1,
        p: 1,
    };
    let kek = params
        .derive(&Passcode::from("246810"), &[0x01; 16])
        .unwrap();
    let nonces = NonceSource::from_seed([0x00; 32]);
    let sealed = crypto::seal(&kek, &nonces, b"", b"").unwrap();
    assert_eq!(hex(&sealed), KDF_PROBE);
}

#[test]
fn interview_content_hash() {
    let items = [
        ("a_text", AnswerValue::Text("Тошкент — ёрдам".into())),
        ("b_int", AnswerValue::Integer(-3)),
        ("c_dec", AnswerValue::Decimal(1.5)),
        ("d_date", AnswerValue::Date("2026-02-28".into())),
        ("e_choice", AnswerValue::Choice("passport_taken".into())),
        (
            "f_choices",
            AnswerValue::Choices(vec!["x".into(), "y".into()]),
        ),
        ("g_yes_no", AnswerValue::YesNo(true)),
        ("h_consent", AnswerValue::Consent(false)),
        (
            "i_audio",
            AnswerValue::Attachment {
                id: "att-1".into(),
                sha256: "ab".repeat(32),
                media_type: "audio/wav".into(),
            },
        ),
        (
            "j_place",
            AnswerValue::Location {
                district: "Yunusobod".into(),
            },
        ),
    ];
    let answers: Answers = items.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let interview = Interview {
        id: "0123456789abcdef0123456789abcdef".into(),
        case_id: "fedcba9876543210fedcba9876543210".into(),
        template_id: "trafficking_screening".into(),
        template_version: 1,
        language: "uz".into(),
        status: Status::Submitted,
        answers,
        amendment: 1,
        amends: Some("00112233445566778899aabbccddeeff".into()),
        prev_hash: Some("cd".repeat(32)),
        hash: None,
        started_at_ms: 1_764_000_000_000,
        submitted_at_ms: Some(1_764_000_360_000),
    };
    assert_eq!(content_hash(&interview).unwrap(), INTERVIEW_HASH);
}

#[test]
fn audit_entry_hash() {
    let genesis = "0".repeat(64);
    let first = entry_hash(1, 1_764_000_000_000, AuditKind::Unlock, None, &genesis);
    let second = entry_hash(
        2,
        1_764_000_000_500,
        AuditKind::CaseCreate,
        Some("0123456789abcdef0123456789abcdef"),
        &first,
    );
    assert_eq!([first.as_str(), second.as_str()], [AUDIT_1, AUDIT_2]);
    let kinds: Vec<&str> = [
        AuditKind::Unlock,
        AuditKind::CaseCreate,
        AuditKind::CaseView,
        AuditKind::ConsentRecord,
        AuditKind::ConsentWithdraw,
        AuditKind::AnswerSave,
        AuditKind::Submit,
        AuditKind::Amend,
        AuditKind::Export,
        AuditKind::Wipe,
    ]
    .iter()
    .map(|k| k.as_str())
    .collect();
    assert_eq!(
        kinds,
        [
            "unlock",
            "case_create",
            "case_view",
            "consent_record",
            "consent_withdraw",
            "answer_save",
            "submit",
            "amend",
            "export",
            "wipe"
        ]
    );
}

const SEALED_AES256GCM: &str =
    "02b41df80b2362f8d1635a00934435d141f3b6b29b89f12b4b70d809917d3c87a436123ee20817d89697";
const SEALED_PADDED_AES256GCM: &str = "0292eca00850e02dbd453723492ed465e786a4ccb7539abbbcd7cf2cefc5440837a460a1f6b75a7389274c4c53ad3b23d388bc128ae6ff83e59a192fe2b97abace4fdca3ae59db7fbaec644558f5fb1f599102b1ce441ff2fa90cbabcd456338cb3d228aa111cd8bd649b27e16a1e5d8dd0e0b00ecf698bf75d95f9cb5d33b4fe6d416cafe";
const SEALED_V1: &str =
    "01b41df80b2362f8d1635a00934df1a57aded9d193c1fdcfb41ccc3cb85a1c8ad8fda7df01bc15ba0dbd";
const SEALED_PADDED_V1: &str = "0192eca00850e02dbd453723494a68f41e24f3f4cafacb02d5415853fc2dbf30f15126e811090ce8bf24aac80715ab8d991f103e9cef0cc0973e92775ec5ba969d9fa8f31e8a7c2dfe714ff07ffc013fbcc19599075e64bb3d890024de84528e23fb5ba020f3ca71643ce96180b233e8fab54b83f10b45adc02148677d2b819969db5d0437";
const RECORD_AAD: &str = "616d616e61742f76312f7265636f7264000a696e7465727669657773abababababababababababababababab0000000000000007";
const BLIND_TOKEN: &str = "4a5159a3ffbc7238d8320d3fcc92de8a0374e3e10281cb3040e2dae6364c5271";
const KDF_PROBE: &str = "0176b8e0ada0f13d90405d6ae5cd30ec9ce82bc3e599e16a19eedad439";
const INTERVIEW_HASH: &str = "4e9641c6690856e23bf520d3e84c6095c411828937eca6028f05692aa40d860a";
const AUDIT_1: &str = "9857c2a02994ff69fb3af537b9df93adb2c106f95eea04db500cad7e12971099";
const AUDIT_2: &str = "21a90b4ed1dd6fde924c06cd9279781214a2cd12c5af5c475ee01df3c1085e41";
