//! Core types that cross the boundary as they are (uniffi "remote types").
//!
//! Field-less enums and plain records that hold no survivor data need no FFI twin: each
//! definition below is a *copy* of the core's, wrapped in `#[uniffi::remote(..)]`. uniffi
//! generates the converters for the core type itself and never emits the copy, so `amanat-core`
//! stays free of uniffi and this crate has no second type and no pair of conversion matches to
//! keep in step. The generated converters match on the core type's variants and fields, so a
//! variant or field added in the core (or one that differs here) fails to compile until this
//! copy is updated — the same compile-time decision the error mapping forces.
//!
//! Not here, on purpose (mirrors in `types.rs`): anything holding survivor data (answers, case
//! fields: their mirrors redact `Debug`), types whose shape uniffi cannot carry (`Consent` has
//! sets, `Case` has HLCs and newtypes), and `Constraints` (its `None` variant would clash with
//! Swift's `Optional.none`; the mirror names it `Unconstrained`) with the localized template
//! records that contain it.
//!
//! The doc comments here are what Kotlin, Swift and Python developers see.

pub use amanat_core::forms::{
    AnswerReason, ConsentScope, JsonType, LocationLevel, QuestionType, TemplateReason,
};
pub use amanat_core::journal::audit::{AuditEntry, AuditKind};
pub use amanat_core::records::attachments::AttachmentInfo;
pub use amanat_core::{KdfParams, UnlockStatus};

/// Draft or submitted (the core's `interviews::Status`).
pub type InterviewStatus = amanat_core::records::interviews::Status;

/// Argon2id parameters of a new vault.
///
/// A record (not hidden behind a default) so tests and benchmarks can pass tiny values;
/// production shells use `defaultKdfParams()`.
#[uniffi::remote(Record)]
pub struct KdfParams {
    /// Memory in KiB (default 65536 = 64 MiB).
    pub m_kib: u32,
    /// Iterations (default 3).
    pub t: u32,
    /// Parallelism (default 1).
    pub p: u32,
}

/// The backoff state, so the unlock screen can show "try again in …" before the user types.
#[uniffi::remote(Record)]
pub struct UnlockStatus {
    /// Consecutive failed attempts.
    pub failed_attempts: u32,
    /// When the next attempt is allowed (ms since epoch), if not now.
    pub retry_at_ms: Option<u64>,
}

/// One thing a survivor can agree to; the same scopes the templates' consent questions use.
#[uniffi::remote(Enum)]
pub enum ConsentScope {
    /// Taking part in the interview at all.
    Interview,
    /// Recording audio.
    Audio,
    /// Taking photos (e.g. of documents).
    Photos,
    /// Sharing with caseworkers of the organisation.
    ShareCaseworkers,
    /// Sharing with legal aid providers.
    ShareLegal,
    /// Sharing with police or other law enforcement.
    ShareLawEnforcement,
    /// Sharing anonymised data for research.
    ShareResearch,
    /// Using the information in legal proceedings.
    LegalProceedings,
}

/// The kind of answer a question expects: decides the widget and the `AnswerValue` variant.
#[uniffi::remote(Enum)]
pub enum QuestionType {
    /// Short free text → `AnswerValue.Text`.
    Text,
    /// Long free text → `AnswerValue.Text`.
    LongText,
    /// Whole number → `AnswerValue.Integer`.
    Integer,
    /// Number with a fraction → `AnswerValue.Decimal`.
    Decimal,
    /// Calendar date → `AnswerValue.Date`.
    Date,
    /// One choice → `AnswerValue.Choice`.
    SingleChoice,
    /// Several choices → `AnswerValue.Choices`.
    MultipleChoice,
    /// Yes/no → `AnswerValue.YesNo`.
    YesNo,
    /// Consent decision (filled from the consent record).
    Consent,
    /// Audio recording → `AnswerValue.Attachment` (via an attachment writer).
    Audio,
    /// Photo → `AnswerValue.Attachment` (via an attachment writer).
    Photo,
    /// Coarse location → `AnswerValue.Location`.
    Location,
}

/// Granularity of a location question (only coarse levels exist, on purpose).
#[uniffi::remote(Enum)]
pub enum LocationLevel {
    /// A district (or comparable administrative area).
    District,
}

/// Draft or submitted.
#[uniffi::remote(Enum)]
pub enum InterviewStatus {
    /// Being filled in; answers can change.
    Draft,
    /// Hashed and immutable; corrections are amendments.
    Submitted,
}

/// What an audit entry records.
#[uniffi::remote(Enum)]
pub enum AuditKind {
    /// The vault was unlocked.
    Unlock,
    /// A case was created.
    CaseCreate,
    /// A case was opened for viewing.
    CaseView,
    /// Consent was recorded or changed.
    ConsentRecord,
    /// Consent was withdrawn.
    ConsentWithdraw,
    /// Interview answers were saved.
    AnswerSave,
    /// An interview was submitted.
    Submit,
    /// An amendment was started.
    Amend,
    /// Data left the vault.
    Export,
    /// A remote wipe order was carried out.
    Wipe,
    /// An HQ operator revealed a case's identity answers (review console; HQ only).
    IdentityReveal,
    /// An HQ operator sent receipts to the devices (HQ only).
    Acknowledge,
    /// An HQ operator resolved a clash in the review console (HQ only).
    ClashResolve,
    /// An HQ operator referred a case to a device or took it back (HQ only).
    CaseRefer,
}

/// One audit entry: ids and times only, never survivor data.
#[uniffi::remote(Record)]
pub struct AuditEntry {
    /// 1, 2, 3 … without gaps.
    pub seq: u64,
    /// When (ms since epoch, device clock).
    pub at_ms: u64,
    /// What happened.
    pub kind: AuditKind,
    /// Id of the record concerned, if any.
    pub subject: Option<String>,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

/// What is known about a stored attachment (ids, sizes and hashes; never content).
#[uniffi::remote(Record)]
pub struct AttachmentInfo {
    /// Attachment id (also what the interview answer references).
    pub id: String,
    /// Interview it belongs to.
    pub interview_id: String,
    /// Question it answers.
    pub question_id: String,
    /// MIME type.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext, as recorded in the answer.
    pub sha256: String,
    /// Organisation groups it was encrypted to (besides the device).
    pub groups: Vec<String>,
}

/// Which rule an answer broke (`AmanatError.Answer.reason`), so a shell can explain it in the
/// interviewer's language. Fields hold the template's limits, never the answer.
#[uniffi::remote(Enum)]
pub enum AnswerReason {
    /// No question of the template has this id.
    UnknownQuestion,
    /// The answer's variant does not fit the question type.
    WrongType {
        /// The question's type, which decides the variant to send.
        expected: QuestionType,
    },
    /// A text or district is empty or only whitespace.
    Empty,
    /// A text is shorter than its `minLength`.
    TooShort {
        /// Minimum number of characters.
        min_chars: u64,
    },
    /// A text (or district name) is longer than allowed.
    TooLong {
        /// Maximum number of characters.
        max_chars: u64,
    },
    /// A decimal is NaN or infinite.
    NotFinite,
    /// A number or date lies outside the question's limits.
    OutOfRange {
        /// The lower limit in canonical form (`0`, `0.5`, `2000-01-01`), if any.
        min: Option<String>,
        /// The upper limit in the same form, if any.
        max: Option<String>,
    },
    /// A date is not a real calendar date written `YYYY-MM-DD`.
    InvalidDate,
    /// A choice id that the question does not offer.
    UnknownChoice,
    /// The same choice selected twice.
    DuplicateChoice,
    /// Fewer choices selected than allowed (at least one always).
    TooFewChoices {
        /// Fewest choices to select.
        min_choices: u64,
    },
    /// More choices selected than allowed.
    TooManyChoices {
        /// Most choices to select.
        max_choices: u64,
    },
    /// An attachment id that is not 1–128 characters of `A-Z a-z 0-9 _ . -`.
    InvalidAttachmentId,
    /// A SHA-256 that is not 64 lowercase hex characters.
    InvalidSha256,
    /// The media type does not fit the question (`audio/…` for audio, `image/…` for photo).
    WrongMediaType,
    /// A location answer that looks like coordinates (only district names are kept).
    Coordinates,
    /// A required question (in practice: a consent question) has no answer at submission.
    Required,
    /// An answer to a question that skip logic hides.
    NotRelevant,
    /// An answer to a consent question: record consent with `recordConsent` instead.
    ConsentViaRecord,
    /// An attachment writer for a question that is not an audio or photo question.
    NotAttachmentQuestion,
}

/// The JSON type a template field must have (`TemplateReason.WrongType`).
#[uniffi::remote(Enum)]
pub enum JsonType {
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// A JSON string.
    String,
    /// `true` or `false`.
    Boolean,
    /// Any finite number.
    Number,
    /// A whole number (may be negative).
    Integer,
    /// A whole number ≥ 0.
    NonNegativeInteger,
}

/// Why a template was rejected (`AmanatError.Template.reason`), one variant per rule of the
/// template format (docs/FORMS.md), so an authoring tool can explain it in the author's
/// language. The place is the error's `path`.
#[uniffi::remote(Enum)]
pub enum TemplateReason {
    /// The text is not JSON (syntax error or truncated); path `$`.
    InvalidJson {
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// The value has the wrong JSON type.
    WrongType {
        /// What it must be.
        expected: JsonType,
    },
    /// A field the format does not define.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A list that must not be empty is empty.
    Empty,
    /// An id is not 1–64 characters of `a-z 0-9 _ . -`.
    InvalidId {
        /// The id as written.
        id: String,
    },
    /// A section, question or choice id is used twice (the path tells which).
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// `version` is not a whole number from 1 to 4294967295.
    InvalidVersion,
    /// A language code is not like `en` or `uz-cyrl`.
    InvalidLanguageCode {
        /// The code as written.
        code: String,
    },
    /// A language is listed twice.
    DuplicateLanguage {
        /// The repeated language.
        language: String,
    },
    /// A required language (en, ru, uz) is not listed.
    MissingLanguage {
        /// The missing language.
        language: String,
    },
    /// A text lacks a translation.
    MissingTranslation {
        /// The missing language.
        language: String,
    },
    /// A translation is empty.
    EmptyTranslation {
        /// Its language.
        language: String,
    },
    /// A translation for a language not in `languages`.
    UndeclaredLanguage {
        /// That language.
        language: String,
    },
    /// The template was asked for in a language it does not have (path `languages`).
    UnsupportedLanguage {
        /// The requested language.
        language: String,
        /// The template's languages.
        available: Vec<String>,
    },
    /// `type` names no question type.
    UnknownQuestionType {
        /// The type as written.
        name: String,
    },
    /// A sensitive question has no `why_we_ask`.
    WhyWeAskRequired,
    /// A consent question is not marked `required`.
    ConsentNotRequired,
    /// A consent question has no `scope`.
    ScopeRequired,
    /// A non-consent question has a `scope`.
    ScopeNotAllowed,
    /// `scope` names no consent scope.
    UnknownScope {
        /// The scope as written.
        name: String,
    },
    /// Two consent questions ask for the same scope.
    ScopeAlreadyAsked {
        /// The scope.
        scope: ConsentScope,
        /// The question that asks for it first.
        question: String,
    },
    /// A choice question has no `choices`.
    ChoicesRequired {
        /// The question's type.
        question_type: QuestionType,
    },
    /// A non-choice question has `choices`.
    ChoicesNotAllowed {
        /// The question's type.
        question_type: QuestionType,
    },
    /// A constraint name the format does not define.
    UnknownConstraint,
    /// A constraint that does not apply to the question type.
    ConstraintNotAllowed {
        /// The question's type.
        question_type: QuestionType,
    },
    /// A lower limit is greater than the upper one.
    MinAboveMax,
    /// A maximum is 0.
    LimitBelowOne,
    /// A choice count exceeds the number of choices.
    MoreThanChoices {
        /// The number of choices.
        choices: u64,
    },
    /// A date limit is not a real calendar date.
    InvalidDate {
        /// The date as written.
        value: String,
    },
    /// A location level other than `district`.
    UnsupportedLocationLevel {
        /// The level as written.
        level: String,
    },
    /// A condition has no operator or more than one.
    OperatorCount,
    /// An unknown condition operator.
    UnknownOperator {
        /// The operator as written.
        name: String,
    },
    /// `greater_than`/`less_than` on a question that is not a number.
    NotNumeric {
        /// The referenced question.
        question: String,
        /// Its type.
        question_type: QuestionType,
    },
    /// A question's condition refers to itself.
    SelfReference {
        /// The question.
        question: String,
    },
    /// A condition refers to a later question.
    ForwardReference {
        /// The referenced question.
        question: String,
    },
    /// A condition refers to a question id that does not exist.
    UnknownQuestion {
        /// The referenced id.
        question: String,
    },
    /// A condition value does not fit the referenced question's type.
    ValueMismatch {
        /// The referenced question.
        question: String,
        /// Its type.
        question_type: QuestionType,
    },
    /// A condition value is not a choice of the referenced question.
    UnknownChoice {
        /// The referenced question.
        question: String,
        /// The value as written.
        choice: String,
    },
    /// A condition compares an audio/photo answer (only `answered` is allowed).
    NotComparable {
        /// The referenced question.
        question: String,
        /// Its type.
        question_type: QuestionType,
    },
}
