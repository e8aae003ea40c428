//! Interviews: answers to a template version, from draft to signed-off submission and amendments.
//!
//! Rules, all enforced here so no shell can skip them:
//! * an interview can only be started, saved or submitted while the case's current consent
//!   includes `interview`; audio and photo answers need `audio` / `photos`;
//! * consent questions of the template are filled from the consent record, never typed into the
//!   interview (one source of truth for what the survivor agreed to);
//! * every saved batch is validated as a whole: a bad answer names the question and the reason,
//!   and nothing of that batch is stored; answers hidden by skip logic are not kept;
//! * submit runs full validation (required-when-relevant), then hashes the interview; a submitted
//!   interview is immutable;
//! * corrections are amendments: a new draft chained to the previous version's hash, itself
//!   immutable once submitted. [`verify_chain`] re-checks every hash and link.

use crate::forms::{
    self, AnswerError, AnswerValue, Answers, QuestionType, Template, TemplateError,
};
use crate::journal::audit::{self, AuditKind};
use crate::journal::outbox::{self, EntryKind};
use crate::records::cases::{self, CaseError};
use crate::records::consent::{self, ConsentError, Scope};
use crate::store::{RecordId, StoreError, Tx};
use crate::vault::{Vault, VaultError};
use ring::digest;
use serde::{Deserialize, Serialize};

/// Interview records.
pub use crate::names::collections::INTERVIEWS;
/// Installed templates (JSON source), besides the built-in default.
pub use crate::names::collections::TEMPLATES;
use crate::names::indexes::{
    AMENDS as AMENDS_INDEX, BY_CASE as CASE_INDEX, TEMPLATE_KEY as TEMPLATE_INDEX,
};

/// Errors of the interview component. Messages name questions, never answer values.
#[derive(Debug, thiserror::Error)]
pub enum InterviewError {
    /// No interview with that id.
    #[error("interview not found")]
    NotFound,
    /// The template id/version is neither built in nor installed.
    #[error("unknown template {id} version {version}")]
    UnknownTemplate {
        /// Template id.
        id: String,
        /// Template version.
        version: u32,
    },
    /// A template failed to load (path and reason).
    #[error("template: {0}")]
    Template(#[from] TemplateError),
    /// An answer failed validation (question and reason).
    #[error("answer rejected: {0}")]
    Answer(#[from] AnswerError),
    /// The interview was submitted: it can only be amended.
    #[error("a submitted interview cannot be changed; amend it instead")]
    Immutable,
    /// The interview is a draft: only a submitted interview can be amended or have its chain
    /// verified.
    #[error("the interview is not submitted")]
    NotSubmitted,
    /// This version already has an amendment: amend the newest version.
    #[error("this version was already amended; amend the newest version")]
    AlreadyAmended,
    /// Consent questions are answered by recording consent, not by saving answers.
    #[error("{question}: consent is recorded through the consent record")]
    ConsentAnswer {
        /// The consent question.
        question: String,
    },
    /// The hash chain does not verify.
    #[error("amendment chain broken at version {amendment}: {reason}")]
    ChainBroken {
        /// Amendment number where the problem is (0 = original).
        amendment: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A consent rule refused the action.
    #[error(transparent)]
    Consent(#[from] ConsentError),
    /// The case is missing or failed.
    #[error(transparent)]
    Case(#[from] CaseError),
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Draft or submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being filled in; answers can change.
    Draft,
    /// Hashed and immutable.
    Submitted,
}

/// An interview as stored. `Debug` of the answers is redacted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Interview {
    /// Record id (hex).
    #[serde(skip, default)]
    pub id: String,
    /// The case (hex id).
    pub case_id: String,
    /// Template id.
    pub template_id: String,
    /// Template version.
    pub template_version: u32,
    /// Interview language (one of the template's).
    pub language: String,
    /// Draft or submitted.
    pub status: Status,
    /// The answers.
    pub answers: Answers,
    /// 0 for the original, n for the n-th amendment.
    pub amendment: u32,
    /// The version this one amends (hex id).
    pub amends: Option<String>,
    /// Hash of the version this one amends.
    pub prev_hash: Option<String>,
    /// SHA-256 of the submitted content (set at submit).
    pub hash: Option<String>,
    /// When it was started (ms since epoch).
    pub started_at_ms: u64,
    /// When it was submitted.
    pub submitted_at_ms: Option<u64>,
}

/// What the hash covers: everything that makes the interview what it is.
#[derive(Serialize)]
struct Hashed<'a> {
    domain: &'static str,
    id: &'a str,
    case_id: &'a str,
    template_id: &'a str,
    template_version: u32,
    language: &'a str,
    answers: &'a Answers,
    amendment: u32,
    amends: &'a Option<String>,
    prev_hash: &'a Option<String>,
    submitted_at_ms: Option<u64>,
}

/// SHA-256 (hex) of a submitted version's content: domain label, then every field that makes the
/// interview what it is, as canonical JSON (fields in declaration order, answers sorted by id).
/// Frozen by `tests/vectors.rs`: HQ recomputes it to prove nothing changed since capture.
pub fn content_hash(i: &Interview) -> Result<String, StoreError> {
    let hashed = Hashed {
        domain: crate::names::labels::INTERVIEW_HASH,
        id: &i.id,
        case_id: &i.case_id,
        template_id: &i.template_id,
        template_version: i.template_version,
        language: &i.language,
        answers: &i.answers,
        amendment: i.amendment,
        amends: &i.amends,
        prev_hash: &i.prev_hash,
        submitted_at_ms: i.submitted_at_ms,
    };
    // Canonical: struct fields in declaration order, answers in a BTreeMap (sorted keys).
    let bytes = crate::store::to_json(&hashed)?;
    Ok(crate::fsutil::to_hex(
        digest::digest(&digest::SHA256, bytes.expose()).as_ref(),
    ))
}

fn template_key(id: &str, version: u32) -> String {
    format!("{id}@{version}")
}

/// Installs a template (validated completely) so interviews can use it; returns its id and version.
pub fn install_template(vault: &Vault, json: &str) -> Result<(String, u32), InterviewError> {
    vault.store()?.write(|tx| install_template_in(tx, json))
}

/// [`install_template`] inside the caller's transaction.
pub fn install_template_in(tx: &mut Tx<'_>, json: &str) -> Result<(String, u32), InterviewError> {
    let template = Template::from_json(json)?;
    let key = template_key(template.id(), template.version());
    for old in tx.find(TEMPLATES, TEMPLATE_INDEX, key.as_bytes())? {
        tx.delete(TEMPLATES, old)?;
    }
    let id = tx.insert(TEMPLATES, json.as_bytes())?;
    tx.set_index(TEMPLATES, TEMPLATE_INDEX, id, key.as_bytes())?;
    Ok((template.id().to_string(), template.version()))
}

/// Looks a template up inside the caller's transaction (installed first, then the default).
pub fn template_in(tx: &mut Tx<'_>, id: &str, version: u32) -> Result<Template, InterviewError> {
    let key = template_key(id, version);
    if let Some(record_id) = tx.find(TEMPLATES, TEMPLATE_INDEX, key.as_bytes())?.first() {
        let record = tx.require(TEMPLATES, *record_id)?;
        let json = std::str::from_utf8(record.value.expose()).map_err(|_| StoreError::Shape)?;
        return Ok(Template::from_json(json)?);
    }
    let default = forms::default_template()?;
    if default.id() == id && default.version() == version {
        return Ok(default);
    }
    Err(InterviewError::UnknownTemplate {
        id: id.to_string(),
        version,
    })
}

/// Looks a template up: installed ones first, then the built-in default.
pub fn template(vault: &Vault, id: &str, version: u32) -> Result<Template, InterviewError> {
    let store = vault.store()?;
    store.read(|tx| template_in(tx, id, version))
}

pub(crate) fn parse_id(hex: &str) -> Result<RecordId, InterviewError> {
    RecordId::parse(hex).ok_or(InterviewError::NotFound)
}

/// Reads an interview inside the caller's transaction, with its record version.
pub fn load(tx: &mut Tx<'_>, id: RecordId) -> Result<(Interview, u64), InterviewError> {
    let (mut interview, version): (Interview, u64) = tx
        .get_json(INTERVIEWS, id)?
        .ok_or(InterviewError::NotFound)?;
    interview.id = id.to_string();
    Ok((interview, version))
}

/// The consent questions' answers as the consent record says, merged through skip logic.
fn with_consent_answers(
    tx: &mut Tx<'_>,
    template: &Template,
    case_id: RecordId,
    answers: &Answers,
) -> Result<Answers, InterviewError> {
    let current = consent::current_in(tx, case_id)?;
    let mut base = answers.clone();
    for scope in Scope::ALL {
        if let Some(q) = template.consent_question(scope) {
            base.remove(q.id());
        }
    }
    let mut consent_batch = Answers::new();
    for scope in Scope::ALL {
        if let Some(q) = template.consent_question(scope) {
            let granted = current.as_ref().is_some_and(|c| c.scopes.contains(&scope));
            consent_batch.insert(q.id(), AnswerValue::Consent(granted));
        }
    }
    // Consent first, then the rest, so answers that depend on consent are kept only if allowed.
    let seeded = template.merge_batch(&Answers::new(), &consent_batch)?;
    Ok(template.merge_batch(&seeded, &base)?)
}

/// Starts an interview for a case (needs `interview` consent).
pub fn start(
    vault: &Vault,
    case_id: RecordId,
    template_id: &str,
    template_version: u32,
    language: &str,
) -> Result<Interview, InterviewError> {
    vault
        .store()?
        .write(|tx| start_in(tx, case_id, template_id, template_version, language))
}

/// [`start`] inside the caller's transaction.
pub fn start_in(
    tx: &mut Tx<'_>,
    case_id: RecordId,
    template_id: &str,
    template_version: u32,
    language: &str,
) -> Result<Interview, InterviewError> {
    cases::load(tx, case_id)?;
    consent::require_in(tx, case_id, Scope::Interview)?;
    let template = template_in(tx, template_id, template_version)?;
    template.localized(language)?;
    let answers = with_consent_answers(tx, &template, case_id, &Answers::new())?;
    let mut interview = Interview {
        id: String::new(),
        case_id: case_id.to_string(),
        template_id: template_id.to_string(),
        template_version,
        language: language.to_string(),
        status: Status::Draft,
        answers,
        amendment: 0,
        amends: None,
        prev_hash: None,
        hash: None,
        started_at_ms: tx.clock().now_ms(),
        submitted_at_ms: None,
    };
    let id = tx.insert_json(INTERVIEWS, &interview)?;
    tx.set_index(INTERVIEWS, CASE_INDEX, id, case_id.as_bytes())?;
    interview.id = id.to_string();
    Ok(interview)
}

/// Reads an interview.
pub fn get(vault: &Vault, id: &str) -> Result<Interview, InterviewError> {
    let id = parse_id(id)?;
    let store = vault.store()?;
    store.read(|tx| Ok(load(tx, id)?.0))
}

/// Every interview (all versions) of a case, oldest first.
pub fn list_for_case(vault: &Vault, case_id: RecordId) -> Result<Vec<Interview>, InterviewError> {
    let store = vault.store()?;
    let mut list = store.read(|tx| {
        let mut out = Vec::new();
        for id in tx.find(INTERVIEWS, CASE_INDEX, case_id.as_bytes())? {
            out.push(load(tx, id)?.0);
        }
        Ok::<_, InterviewError>(out)
    })?;
    list.sort_by_key(|i| (i.started_at_ms, i.amendment));
    Ok(list)
}

/// Saves a batch of answers to a draft. All or nothing: on any error nothing of the batch is kept.
pub fn save_answers(vault: &Vault, id: &str, batch: &Answers) -> Result<Interview, InterviewError> {
    let record_id = parse_id(id)?;
    vault
        .store()?
        .write(|tx| save_answers_in(tx, record_id, batch))
}

/// [`save_answers`] inside the caller's transaction (attachments record their answer together
/// with their metadata).
pub fn save_answers_in(
    tx: &mut Tx<'_>,
    record_id: RecordId,
    batch: &Answers,
) -> Result<Interview, InterviewError> {
    let (mut interview, version) = load(tx, record_id)?;
    if interview.status != Status::Draft {
        return Err(InterviewError::Immutable);
    }
    let case_id = parse_id(&interview.case_id)?;
    consent::require_in(tx, case_id, Scope::Interview)?;
    let template = template_in(tx, &interview.template_id, interview.template_version)?;
    for (question_id, _) in batch.iter() {
        let Some(question) = template.question(question_id) else {
            continue; // merge_batch reports unknown questions with the right message
        };
        match question.kind() {
            QuestionType::Consent => {
                return Err(InterviewError::ConsentAnswer {
                    question: question_id.to_string(),
                })
            }
            QuestionType::Audio => consent::require_in(tx, case_id, Scope::Audio)?,
            QuestionType::Photo => consent::require_in(tx, case_id, Scope::Photos)?,
            _ => {}
        }
    }
    // Consent answers are refreshed from the record first, so a scope granted since the
    // interview started makes its questions visible to this batch.
    let current = with_consent_answers(tx, &template, case_id, &interview.answers)?;
    interview.answers = template.merge_batch(&current, batch)?;
    tx.update_json(INTERVIEWS, record_id, version, &interview)?;
    audit::append(tx, AuditKind::AnswerSave, Some(record_id))?;
    Ok(interview)
}

/// The draft interview and its template, for components that attach to a question
/// (attachments check the question's type before they accept a byte).
pub(crate) fn draft_question_kind(
    tx: &mut Tx<'_>,
    record_id: RecordId,
    question_id: &str,
) -> Result<(Interview, Option<QuestionType>), InterviewError> {
    let (interview, _) = load(tx, record_id)?;
    if interview.status != Status::Draft {
        return Err(InterviewError::Immutable);
    }
    let template = template_in(tx, &interview.template_id, interview.template_version)?;
    let kind = template.question(question_id).map(|q| q.kind());
    Ok((interview, kind))
}

/// Submits a draft: full validation, then the content hash; immutable from then on.
pub fn submit(vault: &Vault, id: &str) -> Result<Interview, InterviewError> {
    let record_id = parse_id(id)?;
    vault.store()?.write(|tx| submit_in(tx, record_id))
}

/// [`submit`] inside the caller's transaction.
pub fn submit_in(tx: &mut Tx<'_>, record_id: RecordId) -> Result<Interview, InterviewError> {
    let (mut interview, version) = load(tx, record_id)?;
    if interview.status != Status::Draft {
        return Err(InterviewError::Immutable);
    }
    let case_id = parse_id(&interview.case_id)?;
    consent::require_in(tx, case_id, Scope::Interview)?;
    let template = template_in(tx, &interview.template_id, interview.template_version)?;
    interview.answers = with_consent_answers(tx, &template, case_id, &interview.answers)?;
    template.validate_submission(&interview.answers)?;
    interview.status = Status::Submitted;
    interview.submitted_at_ms = Some(tx.clock().now_ms());
    interview.hash = Some(content_hash(&interview)?);
    tx.update_json(INTERVIEWS, record_id, version, &interview)?;
    audit::append(tx, AuditKind::Submit, Some(record_id))?;
    outbox::enqueue(tx, EntryKind::Interview, INTERVIEWS, record_id)?;
    Ok(interview)
}

/// Starts an amendment of a submitted interview: a new draft with the same answers, chained to
/// the submitted version's hash. Only the newest version of a chain can be amended.
pub fn amend(vault: &Vault, id: &str) -> Result<Interview, InterviewError> {
    let record_id = parse_id(id)?;
    vault.store()?.write(|tx| amend_in(tx, record_id))
}

/// [`amend`] inside the caller's transaction.
pub fn amend_in(tx: &mut Tx<'_>, record_id: RecordId) -> Result<Interview, InterviewError> {
    let (previous, _) = load(tx, record_id)?;
    if previous.status != Status::Submitted {
        return Err(InterviewError::NotSubmitted);
    }
    if !tx
        .find(INTERVIEWS, AMENDS_INDEX, record_id.as_bytes())?
        .is_empty()
    {
        return Err(InterviewError::AlreadyAmended);
    }
    let case_id = parse_id(&previous.case_id)?;
    consent::require_in(tx, case_id, Scope::Interview)?;
    let mut draft = Interview {
        id: String::new(),
        status: Status::Draft,
        amendment: previous.amendment + 1,
        amends: Some(previous.id.clone()),
        prev_hash: previous.hash.clone(),
        hash: None,
        started_at_ms: tx.clock().now_ms(),
        submitted_at_ms: None,
        ..previous
    };
    let id = tx.insert_json(INTERVIEWS, &draft)?;
    tx.set_index(INTERVIEWS, CASE_INDEX, id, case_id.as_bytes())?;
    tx.set_index(INTERVIEWS, AMENDS_INDEX, id, record_id.as_bytes())?;
    audit::append(tx, AuditKind::Amend, Some(id))?;
    draft.id = id.to_string();
    Ok(draft)
}

/// Verifies the chain ending at `id` (a submitted version): every hash recomputed, every link to
/// the previous version's hash checked, back to the original. Returns the number of versions.
///
/// A draft (an interview not yet submitted, or an amendment being written) has no chain to verify
/// yet: that is [`InterviewError::NotSubmitted`], a usage error, not [`InterviewError::ChainBroken`]
/// ("tampering detected").
pub fn verify_chain(vault: &Vault, id: &str) -> Result<u32, InterviewError> {
    let store = vault.store()?;
    let mut chain = Vec::new();
    let mut next = Some(id.to_string());
    store.read(|tx| {
        while let Some(hex) = next.take() {
            let (interview, _) = load(tx, parse_id(&hex)?)?;
            next = interview.amends.clone();
            chain.push(interview);
            if chain.len() > 10_000 {
                return Err(InterviewError::ChainBroken {
                    amendment: 0,
                    reason: "loop in the chain",
                });
            }
        }
        Ok::<_, InterviewError>(())
    })?;
    verify_versions(&chain)?;
    Ok(chain.len() as u32)
}

/// Checks a chain given newest first. A draft at the head is [`InterviewError::NotSubmitted`]; a
/// draft further back (a version that was amended must have been submitted) is a broken chain.
pub fn verify_versions(chain: &[Interview]) -> Result<(), InterviewError> {
    for (i, v) in chain.iter().enumerate() {
        let broken = |reason| InterviewError::ChainBroken {
            amendment: v.amendment,
            reason,
        };
        if i == 0 && v.status == Status::Draft {
            return Err(InterviewError::NotSubmitted);
        }
        if v.status != Status::Submitted {
            return Err(broken("version not submitted"));
        }
        let recomputed = content_hash(v)?;
        if v.hash.as_deref() != Some(recomputed.as_str()) {
            return Err(broken("content does not match its hash"));
        }
        match chain.get(i + 1) {
            Some(prev) => {
                if v.amendment != prev.amendment + 1 {
                    return Err(broken("amendment numbers out of sequence"));
                }
                if v.prev_hash != prev.hash || v.case_id != prev.case_id {
                    return Err(broken("does not link to the previous version"));
                }
            }
            None => {
                if v.amendment != 0 || v.prev_hash.is_some() || v.amends.is_some() {
                    return Err(broken("the original version is missing"));
                }
            }
        }
    }
    Ok(())
}
