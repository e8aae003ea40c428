//! Cases, consent, interviews and the audit log through the public API, on the built-in
//! trafficking screening template.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::audit::{self, AuditError, AuditKind};
use amanat_core::records::cases::{self, CaseError};
use amanat_core::records::consent::{self, ConsentError, Scope};
use amanat_core::records::interviews::{self, InterviewError, Status, INTERVIEWS};
use amanat_core::store::StoreError;
use amanat_core::{Passcode, RecordId, SoftwareKeyProvider, Vault};
use std::sync::Arc;

use amanat_core::testing::FAST_KDF as FAST;
const TEMPLATE: &str = "trafficking_screening";

fn vault() -> (tempfile::TempDir, Vault) {
    let tmp = tempfile::tempdir().unwrap();
    let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
    let v = Vault::create(
        tmp.path().join("vault"),
        &Passcode::from("246810"),
        provider,
        FAST,
    )
    .unwrap();
    (tmp, v)
}

fn batch(items: &[(&str, AnswerValue)]) -> Answers {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn choice(s: &str) -> AnswerValue {
    AnswerValue::Choice(s.into())
}

fn case_with_consent(v: &Vault, scopes: &[Scope]) -> RecordId {
    let case = cases::create_case(v).unwrap();
    consent::record_consent(v, case.id, "worker-17", "ru", scopes).unwrap();
    case.id
}

#[test]
fn case_codes_lookup_fields_and_identity_kept_apart() {
    let (_t, v) = vault();
    let a = cases::create_case(&v).unwrap();
    let b = cases::create_case(&v).unwrap();
    assert_ne!(a.code, b.code);
    let typed = a.code.as_str().to_lowercase().replace('-', "");
    assert_eq!(cases::find_by_code(&v, &typed).unwrap().unwrap().id, a.id);
    assert!(matches!(
        cases::find_by_code(&v, "ZZZZ-ZZZ"),
        Err(CaseError::BadCode(_))
    ));
    let c1 = cases::set_field(&v, a.id, "status", "open").unwrap();
    let c2 = cases::set_field(&v, a.id, "status", "referred").unwrap();
    assert!(c2.fields["status"].hlc > c1.fields["status"].hlc);
    cases::set_identity_field(&v, a.id, "given_name", "Madina").unwrap();
    let case = cases::get_case(&v, a.id).unwrap();
    assert!(
        !case.fields.contains_key("given_name"),
        "identity kept apart"
    );
    assert_eq!(
        cases::get_identity(&v, a.id).unwrap().fields["given_name"].value,
        "Madina"
    );
    assert!(cases::get_identity(&v, b.id).unwrap().fields.is_empty());
    assert!(matches!(
        cases::set_field(&v, a.id, "Bad Name", "x"),
        Err(CaseError::BadField { .. })
    ));
    assert!(matches!(
        cases::set_field(&v, a.id, "notes", &"x".repeat(5000)),
        Err(CaseError::BadField { .. })
    ));
    assert_eq!(cases::list_cases(&v).unwrap().len(), 2);
}

#[test]
fn no_consent_nothing_stored() {
    let (_t, v) = vault();
    let case = cases::create_case(&v).unwrap();
    assert!(matches!(
        interviews::start(&v, case.id, TEMPLATE, 1, "ru"),
        Err(InterviewError::Consent(ConsentError::Missing(
            Scope::Interview
        )))
    ));
    assert!(interviews::list_for_case(&v, case.id).unwrap().is_empty());
    // Consent without the interview scope is not enough either.
    consent::record_consent(&v, case.id, "worker-17", "ru", &[Scope::ShareCaseworkers]).unwrap();
    assert!(interviews::start(&v, case.id, TEMPLATE, 1, "ru").is_err());
    assert!(matches!(
        consent::record_consent(&v, case.id, "", "ru", &[Scope::Interview]),
        Err(ConsentError::Invalid(_))
    ));
    assert!(matches!(
        consent::record_consent(&v, case.id, "w", "Russian", &[Scope::Interview]),
        Err(ConsentError::Invalid(_))
    ));
}

#[test]
fn audio_and_photos_need_their_own_consent() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview]);
    let i = interviews::start(&v, case, TEMPLATE, 1, "ru").unwrap();
    let audio = AnswerValue::Attachment {
        id: "att-1".into(),
        sha256: "ab".repeat(32),
        media_type: "audio/ogg".into(),
    };
    assert!(matches!(
        interviews::save_answers(&v, &i.id, &batch(&[("narrative_audio", audio.clone())])),
        Err(InterviewError::Consent(ConsentError::Missing(Scope::Audio)))
    ));
    let photo = AnswerValue::Attachment {
        id: "att-2".into(),
        sha256: "cd".repeat(32),
        media_type: "image/jpeg".into(),
    };
    assert!(matches!(
        interviews::save_answers(&v, &i.id, &batch(&[("document_photo", photo)])),
        Err(InterviewError::Consent(ConsentError::Missing(
            Scope::Photos
        )))
    ));
    consent::record_consent(
        &v,
        case,
        "worker-17",
        "ru",
        &[Scope::Interview, Scope::Audio],
    )
    .unwrap();
    let saved = interviews::save_answers(&v, &i.id, &batch(&[("narrative_audio", audio)])).unwrap();
    assert!(saved.answers.contains("narrative_audio"));
    // Consent answers come from the record and cannot be typed in.
    assert!(matches!(
        interviews::save_answers(
            &v,
            &i.id,
            &batch(&[("consent_photos", AnswerValue::Consent(true))])
        ),
        Err(InterviewError::ConsentAnswer { .. })
    ));
    assert_eq!(
        saved.answers.get("consent_audio"),
        Some(&AnswerValue::Consent(true))
    );
}

#[test]
fn full_interview_flow_with_validation_submit_amend_and_chain() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview, Scope::ShareCaseworkers]);
    let i = interviews::start(&v, case, TEMPLATE, 1, "uz").unwrap();
    assert_eq!(i.status, Status::Draft);
    assert_eq!(
        i.answers.get("consent_interview"),
        Some(&AnswerValue::Consent(true))
    );
    let i = interviews::save_answers(
        &v,
        &i.id,
        &batch(&[
            ("interpreter_used", AnswerValue::YesNo(true)),
            ("interpreter_language", choice("russian")),
            ("first_contact", choice("messaging_app")),
            ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
            ("hours_per_day", AnswerValue::Integer(14)),
        ]),
    )
    .unwrap();
    // A bad batch: the error names the question and the reason, and nothing of it is stored.
    let err = interviews::save_answers(
        &v,
        &i.id,
        &batch(&[
            ("narrative", AnswerValue::Text("kept out".into())),
            ("hours_per_day", AnswerValue::Integer(30)),
        ]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("hours_per_day"), "{msg}");
    assert!(!msg.contains("30"), "value leaked: {msg}");
    let now = interviews::get(&v, &i.id).unwrap();
    assert!(!now.answers.contains("narrative"));
    assert_eq!(
        now.answers.get("hours_per_day"),
        Some(&AnswerValue::Integer(14))
    );
    // Skip logic: no interpreter → the interpreter language is dropped.
    let now = interviews::save_answers(
        &v,
        &i.id,
        &batch(&[("interpreter_used", AnswerValue::YesNo(false))]),
    )
    .unwrap();
    assert!(!now.answers.contains("interpreter_language"));
    assert!(now.answers.contains("platforms"));

    let submitted = interviews::submit(&v, &i.id).unwrap();
    assert_eq!(submitted.status, Status::Submitted);
    assert_eq!(submitted.hash.as_ref().map(String::len), Some(64));
    assert!(matches!(
        interviews::save_answers(&v, &i.id, &batch(&[("safe_now", choice("yes"))])),
        Err(InterviewError::Immutable)
    ));
    assert!(matches!(
        interviews::submit(&v, &i.id),
        Err(InterviewError::Immutable)
    ));
    assert_eq!(interviews::verify_chain(&v, &i.id).unwrap(), 1);

    // Amend: a new draft chained to the submitted hash.
    let a1 = interviews::amend(&v, &i.id).unwrap();
    assert_eq!(a1.amendment, 1);
    assert_eq!(a1.prev_hash, submitted.hash);
    assert!(matches!(
        interviews::amend(&v, &a1.id),
        Err(InterviewError::NotSubmitted)
    ));
    interviews::save_answers(&v, &a1.id, &batch(&[("safe_now", choice("no"))])).unwrap();
    interviews::submit(&v, &a1.id).unwrap();
    assert!(matches!(
        interviews::amend(&v, &i.id),
        Err(InterviewError::AlreadyAmended)
    ));
    let a2 = interviews::amend(&v, &a1.id).unwrap();
    interviews::submit(&v, &a2.id).unwrap();
    assert_eq!(interviews::verify_chain(&v, &a2.id).unwrap(), 3);
    assert_eq!(interviews::list_for_case(&v, case).unwrap().len(), 3);
    assert!(audit::verify(&v.store().unwrap()).unwrap() > 5);

    // Tamper with the original version (someone holding the keys rewrites an answer).
    let store = v.store().unwrap();
    let id = RecordId::parse(&i.id).unwrap();
    store
        .write(|tx| {
            let (mut value, version): (serde_json::Value, u64) = tx.require_json(INTERVIEWS, id)?;
            value["answers"]["hours_per_day"]["value"] = serde_json::json!(8);
            tx.update_json(INTERVIEWS, id, version, &value)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(matches!(
        interviews::verify_chain(&v, &a2.id),
        Err(InterviewError::ChainBroken { amendment: 0, .. })
    ));
}

#[test]
fn submit_enforces_required_and_current_consent() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview]);
    let i = interviews::start(&v, case, TEMPLATE, 1, "en").unwrap();
    consent::withdraw(&v, case, "worker-17", "en", &[Scope::Interview]).unwrap();
    assert!(matches!(
        interviews::submit(&v, &i.id),
        Err(InterviewError::Consent(ConsentError::Missing(
            Scope::Interview
        )))
    ));
    assert!(matches!(
        interviews::save_answers(&v, &i.id, &batch(&[("safe_now", choice("yes"))])),
        Err(InterviewError::Consent(_))
    ));
    let history = consent::history(&v, case).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[1].withdrawn.contains(&Scope::Interview));
    assert!(cases::get_case(&v, case).unwrap().withdrawal_pending);
}

#[test]
fn unknown_template_and_language_rejected() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview]);
    assert!(matches!(
        interviews::start(&v, case, "nope", 1, "en"),
        Err(InterviewError::UnknownTemplate { .. })
    ));
    assert!(matches!(
        interviews::start(&v, case, TEMPLATE, 2, "en"),
        Err(InterviewError::UnknownTemplate { .. })
    ));
    assert!(matches!(
        interviews::start(&v, case, TEMPLATE, 1, "fr"),
        Err(InterviewError::Template(_))
    ));
    assert!(matches!(
        interviews::install_template(&v, "{\"id\": 5}"),
        Err(InterviewError::Template(_))
    ));
    assert!(matches!(
        interviews::get(&v, "not-an-id"),
        Err(InterviewError::NotFound)
    ));
}

#[test]
fn installed_template_is_used_and_survives_relock() {
    let (_t, v) = vault();
    let json =
        amanat_core::forms::DEFAULT_TEMPLATE_JSON.replacen("\"version\": 1", "\"version\": 2", 1);
    assert_eq!(
        interviews::install_template(&v, &json).unwrap(),
        (TEMPLATE.to_string(), 2)
    );
    v.lock();
    v.unlock(&Passcode::from("246810")).unwrap();
    let case = case_with_consent(&v, &[Scope::Interview]);
    let i = interviews::start(&v, case, TEMPLATE, 2, "ru").unwrap();
    assert_eq!(i.template_version, 2);
}

#[test]
fn audit_log_records_actions_and_detects_tampering() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview]);
    cases::get_case(&v, case).unwrap();
    let i = interviews::start(&v, case, TEMPLATE, 1, "ru").unwrap();
    interviews::save_answers(&v, &i.id, &batch(&[("safe_now", choice("yes"))])).unwrap();
    interviews::submit(&v, &i.id).unwrap();
    v.lock();
    v.unlock(&Passcode::from("246810")).unwrap();
    let store = v.store().unwrap();
    let entries = audit::entries(&store).unwrap();
    let kinds: Vec<AuditKind> = entries.iter().map(|e| e.kind).collect();
    for k in [
        AuditKind::CaseCreate,
        AuditKind::ConsentRecord,
        AuditKind::CaseView,
        AuditKind::AnswerSave,
        AuditKind::Submit,
        AuditKind::Unlock,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing in {kinds:?}");
    }
    let n = audit::verify(&store).unwrap();
    assert_eq!(n as usize, entries.len());

    // Edit one entry in place (re-sealed by someone holding the keys).
    let ids = store.read(|tx| tx.list(audit::AUDIT)).unwrap();
    let target = ids
        .iter()
        .copied()
        .find(|id| {
            store
                .read(|tx| tx.require_json::<audit::AuditEntry>(audit::AUDIT, *id))
                .unwrap()
                .0
                .seq
                == 3
        })
        .unwrap();
    store
        .write(|tx| {
            let (mut e, version): (audit::AuditEntry, u64) =
                tx.require_json(audit::AUDIT, target)?;
            e.kind = AuditKind::Export;
            tx.update_json(audit::AUDIT, target, version, &e)
        })
        .unwrap();
    assert!(matches!(
        audit::verify(&store),
        Err(AuditError::Edited { seq: 3 })
    ));
    // Delete it instead.
    store.write(|tx| tx.delete(audit::AUDIT, target)).unwrap();
    assert!(matches!(
        audit::verify(&store),
        Err(AuditError::Missing { seq: 3 })
    ));
}

#[test]
fn debug_of_domain_objects_leaks_no_answers() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview]);
    let i = interviews::start(&v, case, TEMPLATE, 1, "ru").unwrap();
    let i = interviews::save_answers(
        &v,
        &i.id,
        &batch(&[("narrative", AnswerValue::Text("SECRET-Нигора-STORY".into()))]),
    )
    .unwrap();
    let dbg = format!("{i:?}");
    assert!(!dbg.contains("SECRET"), "{dbg}");
    cases::set_field(&v, case, "notes", "SECRET-note").unwrap();
    assert!(!format!("{:?}", cases::get_case(&v, case).unwrap()).contains("SECRET"));
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = AnswerValue> {
        prop_oneof![
            ".{0,12}".prop_map(AnswerValue::Text),
            any::<i64>().prop_map(AnswerValue::Integer),
            (-1e6f64..1e6).prop_map(AnswerValue::Decimal),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(AnswerValue::Date),
            "[a-z_]{1,10}".prop_map(AnswerValue::Choice),
            proptest::collection::vec("[a-z_]{1,10}", 0..3).prop_map(AnswerValue::Choices),
            any::<bool>().prop_map(AnswerValue::YesNo),
            any::<bool>().prop_map(AnswerValue::Consent),
            "[a-z]{1,10}".prop_map(|d| AnswerValue::Location { district: d }),
            (
                "[a-z0-9]{1,8}",
                "[0-9a-f]{64}",
                prop_oneof!["audio/ogg", "image/png", "text/plain"]
            )
                .prop_map(|(id, sha256, media_type)| AnswerValue::Attachment {
                    id,
                    sha256,
                    media_type: media_type.to_string()
                }),
        ]
    }

    fn question_ids() -> Vec<String> {
        let t = amanat_core::forms::default_template().unwrap();
        let mut ids: Vec<String> = t.questions().map(|q| q.id().to_string()).collect();
        ids.push("no_such_question".into());
        ids
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_batches_never_panic_and_never_store_invalid_answers(
            batches in proptest::collection::vec(
                proptest::collection::vec((0usize..200, value()), 1..6), 1..5)
        ) {
            let (_t, v) = vault();
            let case = case_with_consent(&v, &Scope::ALL);
            let i = interviews::start(&v, case, TEMPLATE, 1, "ru").unwrap();
            let ids = question_ids();
            let template = interviews::template(&v, TEMPLATE, 1).unwrap();
            for items in batches {
                let b: Answers = items
                    .into_iter()
                    .map(|(k, val)| (ids[k % ids.len()].clone(), val))
                    .collect();
                let before = interviews::get(&v, &i.id).unwrap().answers;
                match interviews::save_answers(&v, &i.id, &b) {
                    Ok(saved) => {
                        prop_assert!(template.validate_batch(&Answers::new(), &saved.answers).is_ok());
                    }
                    Err(_) => {
                        prop_assert!(interviews::get(&v, &i.id).unwrap().answers == before);
                    }
                }
            }
            let stored = interviews::get(&v, &i.id).unwrap().answers;
            prop_assert!(template.validate_batch(&Answers::new(), &stored).is_ok());
            let _ = interviews::submit(&v, &i.id);
        }
    }
}

/// Regression (issue 10, item 7): a draft has no chain to verify yet. Asking for one is a usage
/// error (`NotSubmitted`), not "tampering detected" (`ChainBroken`); a draft amendment on top of a
/// submitted version is the same.
#[test]
fn verify_chain_on_a_draft_is_not_submitted_not_tampering() {
    let (_t, v) = vault();
    let case = case_with_consent(&v, &[Scope::Interview]);
    let draft = interviews::start(&v, case, TEMPLATE, 1, "en").unwrap();
    assert!(matches!(
        interviews::verify_chain(&v, &draft.id),
        Err(InterviewError::NotSubmitted)
    ));
    interviews::save_answers(
        &v,
        &draft.id,
        &batch(&[
            ("interpreter_used", AnswerValue::YesNo(false)),
            ("first_contact", choice("messaging_app")),
            ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
            ("hours_per_day", AnswerValue::Integer(14)),
        ]),
    )
    .unwrap();
    interviews::submit(&v, &draft.id).unwrap();
    assert_eq!(interviews::verify_chain(&v, &draft.id).unwrap(), 1);
    let amendment = interviews::amend(&v, &draft.id).unwrap();
    assert!(matches!(
        interviews::verify_chain(&v, &amendment.id),
        Err(InterviewError::NotSubmitted)
    ));
}
