//! Writes a complete vault with known content, for the compatibility fixtures under
//! `core/tests/fixtures/` (`cargo run -p amanat-core --features testing --example make_vault_fixture -- DIR`;
//! add `--cipher aes256gcm` or `--cipher chacha20poly1305` to fix the store's cipher instead of
//! letting the CPU choose).
//!
//! A fixture is made once, by the code of its version, and then never regenerated: it is the proof
//! that later versions still open what earlier ones wrote. `tests/fixtures/vault-v1` was made by this
//! program at the commit that added it (see its README); running it today makes a vault of
//! today's format, which is what a *new* fixture version would be.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::ExposeSecret;
use amanat_core::crypto::Cipher;
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::records::attachments::{self, AttachmentWriter, DEFAULT_MAX_BYTES};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};
use amanat_core::testing::{FAST_KDF, PASSCODE};
use amanat_core::{Passcode, SoftwareKeyProvider, Vault};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The duress passcode of the fixture.
const DURESS: &str = "135790";

fn batch(items: &[(&str, AnswerValue)]) -> Answers {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The fixture's audio: 100,000 deterministic bytes (two 64 KiB chunks).
fn audio() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect()
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make_vault_fixture DIR"),
    );
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--cipher")
        .map(|i| args.get(i + 1))
    {
        None => {}
        Some(Some(name)) if name == "aes256gcm" => {
            amanat_core::crypto::force_preferred_cipher(Some(Cipher::Aes256Gcm))
        }
        Some(Some(name)) if name == "chacha20poly1305" => {
            amanat_core::crypto::force_preferred_cipher(Some(Cipher::ChaCha20Poly1305))
        }
        Some(_) => panic!("--cipher takes aes256gcm or chacha20poly1305"),
    }
    assert!(
        !out.exists(),
        "{} exists; a fixture is made once",
        out.display()
    );
    std::fs::create_dir_all(&out).unwrap();
    let provider = Arc::new(SoftwareKeyProvider::new(out.join("device.key")));
    let vault = Vault::create(
        out.join("vault"),
        &Passcode::from(PASSCODE),
        provider,
        FAST_KDF,
    )
    .unwrap();
    vault
        .set_duress_passcode(&Passcode::from(PASSCODE), &Passcode::from(DURESS))
        .unwrap();

    // HQ's caseworkers identity (kept in the fixture so the test can decrypt as HQ would).
    let hq = age::x25519::Identity::generate();
    let research = age::x25519::Identity::generate();
    let mut recipients = BTreeMap::new();
    recipients.insert("caseworkers".to_string(), hq.to_public().to_string());
    recipients.insert("research".to_string(), research.to_public().to_string());
    attachments::set_org_recipients(&vault, &recipients).unwrap();
    std::fs::write(
        out.join("hq-caseworkers.identity"),
        hq.to_string().expose_secret(),
    )
    .unwrap();

    let case = cases::create_case(&vault).unwrap();
    cases::set_field(
        &vault,
        case.id,
        "district_note",
        "Тошкент вилояти, Юнусобод",
    )
    .unwrap();
    cases::set_identity_field(&vault, case.id, "name", "Нигора Каримова").unwrap();
    consent::record_consent(
        &vault,
        case.id,
        "worker-7",
        "uz",
        &[
            Scope::Interview,
            Scope::Audio,
            Scope::ShareCaseworkers,
            Scope::ShareResearch,
        ],
    )
    .unwrap();
    consent::withdraw(&vault, case.id, "worker-7", "uz", &[Scope::ShareResearch]).unwrap();

    let first = interviews::start(&vault, case.id, "trafficking_screening", 1, "uz").unwrap();
    interviews::save_answers(
        &vault,
        &first.id,
        &batch(&[
            ("interpreter_used", AnswerValue::YesNo(true)),
            (
                "interpreter_language",
                AnswerValue::Choice("russian".into()),
            ),
            ("first_contact", AnswerValue::Choice("messaging_app".into())),
            ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
            ("hours_per_day", AnswerValue::Integer(14)),
            (
                "narrative",
                AnswerValue::Text("Паспортимни олиб қўйишди.".into()),
            ),
        ]),
    )
    .unwrap();
    let mut writer = AttachmentWriter::open(
        &vault,
        &first.id,
        "narrative_audio",
        "audio/wav",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    writer.write(&audio()).unwrap();
    let audio_info = writer.finish().unwrap();
    let submitted = interviews::submit(&vault, &first.id).unwrap();
    let amendment = interviews::amend(&vault, &submitted.id).unwrap();
    interviews::save_answers(
        &vault,
        &amendment.id,
        &batch(&[("hours_per_day", AnswerValue::Integer(16))]),
    )
    .unwrap();
    let amendment = interviews::submit(&vault, &amendment.id).unwrap();
    let draft = interviews::start(&vault, case.id, "trafficking_screening", 1, "ru").unwrap();
    interviews::save_answers(
        &vault,
        &draft.id,
        &batch(&[("narrative", AnswerValue::Text("Черновик".into()))]),
    )
    .unwrap();

    let expected = serde_json::json!({
        "passcode": PASSCODE,
        "duress_passcode": DURESS,
        "case_id": case.id.to_string(),
        "case_code": case.code.as_str(),
        "interview_original": submitted.id,
        "interview_original_hash": submitted.hash,
        "interview_amendment": amendment.id,
        "interview_amendment_hash": amendment.hash,
        "interview_draft": draft.id,
        "attachment_id": audio_info.id,
        "attachment_sha256": audio_info.sha256,
        "attachment_size": audio_info.size,
    });
    std::fs::write(
        out.join("expected.json"),
        serde_json::to_vec_pretty(&expected).unwrap(),
    )
    .unwrap();
    vault.lock();
    println!("fixture written to {}", out.display());
}
