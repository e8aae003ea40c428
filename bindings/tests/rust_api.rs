//! The FFI surface called from Rust exactly as a shell would: the flow, typed errors on damaged
//! files and failing providers, and one vault shared by several threads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_ffi::*;
use std::collections::HashMap;
use std::sync::Arc;

const FAST: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};
const PASS: &str = "246810";
const TEMPLATE: &str = "trafficking_screening";

fn setup() -> (tempfile::TempDir, Arc<dyn KeyProvider>, String, Arc<Vault>) {
    let tmp = tempfile::tempdir().unwrap();
    let provider = software_key_provider(tmp.path().join("device.key").to_string_lossy().into());
    let dir = tmp.path().join("vault").to_string_lossy().into_owned();
    let v = Vault::create(dir.clone(), PASS.into(), provider.clone(), FAST).unwrap();
    (tmp, provider, dir, v)
}

fn text(s: &str) -> AnswerValue {
    AnswerValue::Text { value: s.into() }
}
fn choice(s: &str) -> AnswerValue {
    AnswerValue::Choice { value: s.into() }
}

fn batch(items: Vec<(&str, AnswerValue)>) -> HashMap<String, AnswerValue> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn full_flow_through_the_ffi_types() {
    let (_t, _p, _d, v) = setup();
    let case = v.create_case().unwrap();
    assert_eq!(
        v.find_case_by_code(case.code.to_lowercase())
            .unwrap()
            .unwrap()
            .id,
        case.id
    );
    v.record_consent(
        case.id.clone(),
        "worker-17".into(),
        "ru".into(),
        vec![ConsentScope::Interview, ConsentScope::ShareCaseworkers],
    )
    .unwrap();
    let t = v.template(TEMPLATE.into(), 1, "ru".into()).unwrap();
    assert_eq!(t.language, "ru");
    let i = v
        .start_interview(case.id.clone(), TEMPLATE.into(), 1, "ru".into())
        .unwrap();
    assert_eq!(
        i.answers.get("consent_interview"),
        Some(&AnswerValue::Consent { value: true })
    );
    let i = v
        .save_answers(
            i.id.clone(),
            batch(vec![
                ("interpreter_used", AnswerValue::YesNo { value: true }),
                ("interpreter_language", choice("russian")),
                ("first_contact", choice("messaging_app")),
                (
                    "platforms",
                    AnswerValue::Choices {
                        values: vec!["telegram".into()],
                    },
                ),
                ("hours_per_day", AnswerValue::Integer { value: 14 }),
            ]),
        )
        .unwrap();
    assert!(v
        .visible_questions(i.id.clone())
        .unwrap()
        .contains(&"interpreter_language".to_string()));
    let err = v
        .save_answers(
            i.id.clone(),
            batch(vec![
                ("narrative", text("kept out")),
                ("hours_per_day", AnswerValue::Integer { value: 30 }),
            ]),
        )
        .unwrap_err();
    match &err {
        AmanatError::Answer {
            question,
            reason,
            detail,
        } => {
            assert_eq!(question, "hours_per_day");
            assert_eq!(
                reason,
                &AnswerReason::OutOfRange {
                    min: Some("0".into()),
                    max: Some("24".into())
                }
            );
            assert!(!detail.contains("30"), "{detail}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.code(), "answer");
    let wrong_type = v
        .save_answers(i.id.clone(), batch(vec![("hours_per_day", text("many"))]))
        .unwrap_err();
    assert!(matches!(
        wrong_type,
        AmanatError::Answer {
            ref question,
            reason: AnswerReason::WrongType {
                expected: QuestionType::Integer
            },
            ..
        } if question == "hours_per_day"
    ));
    assert!(matches!(
        v.save_answers(
            i.id.clone(),
            batch(vec![(
                "consent_audio",
                AnswerValue::Consent { value: true }
            )])
        ),
        Err(AmanatError::Answer {
            reason: AnswerReason::ConsentViaRecord,
            ..
        })
    ));
    let s = v.submit_interview(i.id.clone()).unwrap();
    assert_eq!(s.status, InterviewStatus::Submitted);
    assert!(matches!(
        v.save_answers(i.id.clone(), batch(vec![("safe_now", choice("yes"))])),
        Err(AmanatError::InterviewSubmitted { .. })
    ));
    let a = v.amend_interview(i.id.clone()).unwrap();
    v.save_answers(a.id.clone(), batch(vec![("safe_now", choice("no"))]))
        .unwrap();
    v.submit_interview(a.id.clone()).unwrap();
    assert_eq!(v.verify_chain(a.id.clone()).unwrap(), 2);
    assert_eq!(v.list_interviews(case.id.clone()).unwrap().len(), 2);
    assert!(v.verify_audit().unwrap() >= 6);
    assert!(!v.audit_entries().unwrap().is_empty());
    assert!(matches!(
        v.get_case("not-an-id".into()),
        Err(AmanatError::NotFound { .. })
    ));
    assert!(matches!(
        v.find_case_by_code("ZZZZ-ZZZ".into()),
        Err(AmanatError::InvalidInput { .. })
    ));
}

#[test]
fn lock_wrong_passcode_and_duress() {
    let (_t, p, dir, v) = setup();
    v.create_case().unwrap();
    v.set_duress_passcode(PASS.into(), "135791".into()).unwrap();
    v.lock();
    assert!(!v.is_unlocked());
    assert!(matches!(v.list_cases(), Err(AmanatError::Locked { .. })));
    let v = Vault::open(dir.clone(), p.clone()).unwrap();
    match v.unlock("000000".into()).unwrap_err() {
        AmanatError::WrongPasscode {
            failed_attempts, ..
        } => assert_eq!(failed_attempts, 1),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(v.unlock_status().failed_attempts, 1);
    v.unlock("135791".into()).unwrap();
    assert!(
        v.list_cases().unwrap().is_empty(),
        "duress leaves an empty vault"
    );
    v.lock();
    assert!(matches!(
        v.unlock(PASS.into()),
        Err(AmanatError::WrongPasscode { .. })
    ));
    v.panic_wipe().unwrap();
    assert!(!vault_exists(dir));
}

struct Failing;
impl KeyProvider for Failing {
    fn wrap(&self, _: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError> {
        Err(KeyProviderFfiError::Unavailable {
            reason: "keystore locked".into(),
        })
    }
    fn unwrap(&self, _: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError> {
        Err(KeyProviderFfiError::Rejected)
    }
    fn destroy_key(&self) -> Result<(), KeyProviderFfiError> {
        Ok(())
    }
}

#[test]
fn failing_provider_and_damaged_files_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v").to_string_lossy().into_owned();
    let e = Vault::create(dir.clone(), PASS.into(), Arc::new(Failing), FAST).unwrap_err();
    assert!(matches!(
        e,
        AmanatError::KeyProvider {
            kind: KeyProviderErrorKind::Unavailable,
            ..
        }
    ));
    assert!(!vault_exists(dir));

    let (_t, p, dir, v) = setup();
    v.lock();
    drop(v);
    let db = std::path::Path::new(&dir).join("vault.db");
    std::fs::write(&db, vec![0x5Au8; 8192]).unwrap();
    let _ = std::fs::remove_file(std::path::Path::new(&dir).join("vault.db-wal"));
    let v = Vault::open(dir.clone(), p).unwrap();
    let e = v.unlock(PASS.into()).unwrap_err();
    assert!(
        ["corrupt", "integrity", "storage"].contains(&e.code_str()),
        "{e:?}"
    );
    let v = Vault::open(dir, Arc::new(Failing)).unwrap();
    assert!(matches!(
        v.unlock(PASS.into()),
        Err(AmanatError::KeyProvider {
            kind: KeyProviderErrorKind::Rejected,
            ..
        })
    ));
}

#[test]
fn one_vault_many_threads() {
    let (_t, _p, _d, v) = setup();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let v = v.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let c = v.create_case().unwrap();
                    v.set_case_field(c.id.clone(), "status".into(), "open".into())
                        .unwrap();
                    assert_eq!(v.get_case(c.id).unwrap().fields["status"].value, "open");
                    v.list_cases().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(v.list_cases().unwrap().len(), 40);
    v.verify_audit().unwrap();
}

#[test]
fn attachments_write_read_seek() {
    let (_t, _p, _d, v) = setup();
    let case = v.create_case().unwrap();
    v.record_consent(
        case.id.clone(),
        "w".into(),
        "en".into(),
        vec![ConsentScope::Interview, ConsentScope::Audio],
    )
    .unwrap();
    let i = v
        .start_interview(case.id, TEMPLATE.into(), 1, "en".into())
        .unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    let w = v
        .open_attachment_writer(
            i.id.clone(),
            "narrative_audio".into(),
            "audio/ogg".into(),
            None,
        )
        .unwrap();
    for chunk in data.chunks(70_000) {
        w.write(chunk.to_vec()).unwrap();
    }
    let info = w.finish().unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert!(matches!(w.write(vec![1]), Err(AmanatError::Closed { .. })));
    let saved = v.get_interview(i.id.clone()).unwrap();
    assert!(matches!(
        saved.answers.get("narrative_audio"),
        Some(AnswerValue::Attachment { sha256, .. }) if *sha256 == info.sha256
    ));
    let r = v.open_attachment(info.id.clone()).unwrap();
    assert_eq!(r.read_all().unwrap(), data);
    assert_eq!(r.seek(150_000).unwrap(), 150_000);
    assert_eq!(r.read(10).unwrap(), data[150_000..150_010].to_vec());
    assert!(matches!(
        v.open_attachment_writer(i.id, "document_photo".into(), "audio/ogg".into(), None),
        Err(AmanatError::Answer { .. } | AmanatError::ConsentMissing { .. })
    ));
}

/// The attachment component rejects a question with fixed English strings; each must arrive as
/// its own typed reason (the one mapping in error.rs the compiler cannot check).
#[test]
fn attachment_rejections_have_typed_reasons() {
    let (_t, _p, _d, v) = setup();
    let case = v.create_case().unwrap();
    v.record_consent(
        case.id.clone(),
        "w".into(),
        "en".into(),
        vec![ConsentScope::Interview, ConsentScope::Audio],
    )
    .unwrap();
    let i = v
        .start_interview(case.id, TEMPLATE.into(), 1, "en".into())
        .unwrap();
    for (question, media, want) in [
        (
            "no_such_question",
            "audio/ogg",
            AnswerReason::UnknownQuestion,
        ),
        (
            "narrative",
            "audio/ogg",
            AnswerReason::NotAttachmentQuestion,
        ),
        ("narrative_audio", "image/png", AnswerReason::WrongMediaType),
    ] {
        match v.open_attachment_writer(i.id.clone(), question.into(), media.into(), None) {
            Err(AmanatError::Answer {
                question: q,
                reason,
                ..
            }) => {
                assert_eq!(q, question);
                assert_eq!(reason, want, "{question}");
            }
            other => panic!("{question}: unexpected {other:?}"),
        }
    }
}

#[test]
fn template_errors_carry_the_path() {
    let (_t, _p, _d, v) = setup();
    match v.install_template("{\"id\": 5}".into()).unwrap_err() {
        AmanatError::Template { path, reason, .. } => {
            assert_eq!(path, "id");
            assert_eq!(
                reason,
                TemplateReason::WrongType {
                    expected: JsonType::String
                }
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match v.template(TEMPLATE.into(), 1, "de".into()).unwrap_err() {
        AmanatError::Template { path, reason, .. } => {
            assert_eq!(path, "languages");
            assert!(matches!(
                reason,
                TemplateReason::UnsupportedLanguage { ref language, .. } if language == "de"
            ));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        check_template("not json".into()),
        Err(AmanatError::Template { .. })
    ));
    assert_eq!(
        parse_case_code(v.create_case().unwrap().code.replace('-', " "))
            .unwrap()
            .len(),
        9
    );
}

const PLATFORM_MARKER: &str = "PLATFORM-TEXT-4e1d /data/user/0/secret-alias";

/// A provider whose platform message carries a marker: only the kind may cross back.
struct Chatty;
impl KeyProvider for Chatty {
    fn wrap(&self, _: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError> {
        Err(KeyProviderFfiError::Unavailable {
            reason: PLATFORM_MARKER.into(),
        })
    }
    fn unwrap(&self, _: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError> {
        Err(KeyProviderFfiError::Unavailable {
            reason: PLATFORM_MARKER.into(),
        })
    }
    fn destroy_key(&self) -> Result<(), KeyProviderFfiError> {
        Err(KeyProviderFfiError::Unavailable {
            reason: PLATFORM_MARKER.into(),
        })
    }
}

#[test]
fn platform_text_never_reaches_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v").to_string_lossy().into_owned();
    let e = Vault::create(dir.clone(), PASS.into(), Arc::new(Chatty), FAST).unwrap_err();
    assert!(matches!(
        e,
        AmanatError::KeyProvider {
            kind: KeyProviderErrorKind::Unavailable,
            ..
        }
    ));
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("PLATFORM-TEXT"), "{shown}");
    assert!(!shown.contains("secret-alias"), "{shown}");
}
