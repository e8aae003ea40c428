//! Cases, consent, templates, interviews and the audit log as methods of [`Vault`].
//!
//! Each method converts its arguments, calls the one core function of the same name, and converts
//! the result; rules (consent gates, validation, hashing) stay in the core.

use std::collections::HashMap;

use amanat_core::forms as core_forms;
use amanat_core::journal::audit as core_audit;
use amanat_core::records::cases as core_cases;
use amanat_core::records::consent as core_consent;
use amanat_core::records::interviews as core_interviews;
use amanat_core::RecordId;

use crate::error::{guard, AmanatError, AmanatResult};
use crate::remote::{AuditEntry, ConsentScope};
use crate::types::{
    answers_from, AnswerValue, Case, CaseIdentity, Consent, Interview, LocalizedTemplate,
    TemplateRef,
};
use crate::vault::Vault;

/// Parses a record id given by the shell; a malformed id is reported as "not found" (as the core
/// does for interview ids), since no record can have it.
pub(crate) fn record_id(id: &str, what: &str) -> AmanatResult<RecordId> {
    RecordId::parse(id).ok_or_else(|| AmanatError::not_found(what))
}

#[uniffi::export]
impl Vault {
    // ---- cases ----

    /// Creates a case with a fresh pseudonymous code.
    pub fn create_case(&self) -> AmanatResult<Case> {
        guard(|| Ok(core_cases::create_case(&self.inner)?.into()))
    }

    /// Opens a case for viewing (recorded in the audit log).
    pub fn get_case(&self, case_id: String) -> AmanatResult<Case> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_cases::get_case(&self.inner, id)?.into())
        })
    }

    /// Finds a case by its code as typed (case-insensitive, dashes/spaces ignored); `None` if no
    /// case has it, `InvalidInput` if the code itself is malformed (check character).
    pub fn find_case_by_code(&self, code: String) -> AmanatResult<Option<Case>> {
        guard(|| Ok(core_cases::find_by_code(&self.inner, &code)?.map(Into::into)))
    }

    /// Every case, newest first, in one call (for the case list screen).
    pub fn list_cases(&self) -> AmanatResult<Vec<Case>> {
        guard(|| {
            Ok(core_cases::list_cases(&self.inner)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Sets a narrative field (`[a-z0-9_]{1,64}`, value ≤ 4096 characters); returns the case.
    pub fn set_case_field(
        &self,
        case_id: String,
        name: String,
        value: String,
    ) -> AmanatResult<Case> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_cases::set_field(&self.inner, id, &name, &value)?.into())
        })
    }

    /// Sets an identity field (kept apart from the narrative); returns all identity fields.
    pub fn set_identity_field(
        &self,
        case_id: String,
        name: String,
        value: String,
    ) -> AmanatResult<CaseIdentity> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_cases::set_identity_field(&self.inner, id, &name, &value)?.into())
        })
    }

    /// The identity fields of a case (empty if none).
    pub fn get_identity(&self, case_id: String) -> AmanatResult<CaseIdentity> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_cases::get_identity(&self.inner, id)?.into())
        })
    }

    // ---- consent ----

    /// Records a new consent version granting exactly `scopes` (scopes missing now but granted
    /// before count as withdrawn).
    pub fn record_consent(
        &self,
        case_id: String,
        recorded_by: String,
        language: String,
        scopes: Vec<ConsentScope>,
    ) -> AmanatResult<Consent> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(
                core_consent::record_consent(&self.inner, id, &recorded_by, &language, &scopes)?
                    .into(),
            )
        })
    }

    /// Withdraws `scopes` (all if empty) and flags the case for sync/HQ.
    pub fn withdraw_consent(
        &self,
        case_id: String,
        recorded_by: String,
        language: String,
        scopes: Vec<ConsentScope>,
    ) -> AmanatResult<Consent> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_consent::withdraw(&self.inner, id, &recorded_by, &language, &scopes)?.into())
        })
    }

    /// The case's current consent, if any was recorded.
    pub fn current_consent(&self, case_id: String) -> AmanatResult<Option<Consent>> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_consent::current(&self.inner, id)?.map(Into::into))
        })
    }

    /// Every consent version of the case, oldest first.
    pub fn consent_history(&self, case_id: String) -> AmanatResult<Vec<Consent>> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_consent::history(&self.inner, id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    // ---- templates ----

    /// A template (installed or built in) rendered in `language`; `Template` error with path
    /// `languages` if the template does not have that language.
    pub fn template(
        &self,
        template_id: String,
        version: u32,
        language: String,
    ) -> AmanatResult<LocalizedTemplate> {
        guard(|| {
            let t = core_interviews::template(&self.inner, &template_id, version)?;
            Ok(t.localized(&language)?.into())
        })
    }

    /// Installs a template (validated completely; `Template` error with the JSON path if not).
    pub fn install_template(&self, json: String) -> AmanatResult<TemplateRef> {
        guard(|| {
            let (id, version) = core_interviews::install_template(&self.inner, &json)?;
            Ok(TemplateRef { id, version })
        })
    }

    /// Ids of the questions to show for an interview's saved answers, in order (skip logic).
    pub fn visible_questions(&self, interview_id: String) -> AmanatResult<Vec<String>> {
        guard(|| {
            let interview = core_interviews::get(&self.inner, &interview_id)?;
            let t = core_interviews::template(
                &self.inner,
                &interview.template_id,
                interview.template_version,
            )?;
            Ok(t.visible_questions(&interview.answers)
                .into_iter()
                .map(|q| q.id().to_string())
                .collect())
        })
    }

    /// Ids of the questions to show for unsaved `answers` (live skip logic while the worker
    /// types, before saving).
    pub fn visible_questions_for(
        &self,
        template_id: String,
        version: u32,
        answers: HashMap<String, AnswerValue>,
    ) -> AmanatResult<Vec<String>> {
        guard(|| {
            let t = core_interviews::template(&self.inner, &template_id, version)?;
            let answers = answers_from(answers);
            Ok(t.visible_questions(&answers)
                .into_iter()
                .map(|q| q.id().to_string())
                .collect())
        })
    }

    // ---- interviews ----

    /// Starts an interview (needs `Interview` consent); consent answers are filled from the
    /// consent record.
    pub fn start_interview(
        &self,
        case_id: String,
        template_id: String,
        template_version: u32,
        language: String,
    ) -> AmanatResult<Interview> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(
                core_interviews::start(&self.inner, id, &template_id, template_version, &language)?
                    .into(),
            )
        })
    }

    /// Saves a batch of answers to a draft: all or nothing. A bad answer is an `Answer` error
    /// naming the question and the rule (never the value).
    pub fn save_answers(
        &self,
        interview_id: String,
        answers: HashMap<String, AnswerValue>,
    ) -> AmanatResult<Interview> {
        guard(|| {
            let batch = answers_from(answers);
            Ok(core_interviews::save_answers(&self.inner, &interview_id, &batch)?.into())
        })
    }

    /// Submits a draft: full validation, content hash, immutable from then on.
    pub fn submit_interview(&self, interview_id: String) -> AmanatResult<Interview> {
        guard(|| Ok(core_interviews::submit(&self.inner, &interview_id)?.into()))
    }

    /// Starts an amendment of the newest submitted version: a new draft chained to its hash.
    pub fn amend_interview(&self, interview_id: String) -> AmanatResult<Interview> {
        guard(|| Ok(core_interviews::amend(&self.inner, &interview_id)?.into()))
    }

    /// Reads an interview version.
    pub fn get_interview(&self, interview_id: String) -> AmanatResult<Interview> {
        guard(|| Ok(core_interviews::get(&self.inner, &interview_id)?.into()))
    }

    /// Every interview version of a case, oldest first, in one call.
    pub fn list_interviews(&self, case_id: String) -> AmanatResult<Vec<Interview>> {
        guard(|| {
            let id = record_id(&case_id, "case")?;
            Ok(core_interviews::list_for_case(&self.inner, id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Verifies the amendment chain ending at `interview_id`; returns the number of versions.
    pub fn verify_chain(&self, interview_id: String) -> AmanatResult<u32> {
        guard(|| Ok(core_interviews::verify_chain(&self.inner, &interview_id)?))
    }

    // ---- audit ----

    /// Every audit entry, in order (ids and times only).
    pub fn audit_entries(&self) -> AmanatResult<Vec<AuditEntry>> {
        guard(|| {
            let store = self.inner.store()?;
            Ok(core_audit::entries(&store)?)
        })
    }

    /// Verifies the audit hash chain; returns the number of entries.
    pub fn verify_audit(&self) -> AmanatResult<u64> {
        guard(|| {
            let store = self.inner.store()?;
            Ok(core_audit::verify(&store)?)
        })
    }
}

/// Validates a template without a vault (for template authoring tools); `Template` error with the
/// JSON path of the first problem.
#[uniffi::export]
pub fn check_template(json: String) -> AmanatResult<TemplateRef> {
    guard(|| {
        let t = core_forms::Template::from_json(&json)?;
        Ok(TemplateRef {
            id: t.id().to_string(),
            version: t.version(),
        })
    })
}

/// Parses a case code as typed and returns its canonical form `XXXX-XXXX` (to validate input
/// fields before searching).
#[uniffi::export]
pub fn parse_case_code(input: String) -> AmanatResult<String> {
    guard(|| Ok(core_cases::CaseCode::parse(&input)?.as_str().to_string()))
}
