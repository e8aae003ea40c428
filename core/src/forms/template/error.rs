//! The error of loading a template, with a typed reason.

use super::model::{ConsentScope, QuestionType};

/// A template that could not be loaded, with the exact place and the single
/// root cause, so that template authors can fix it without guessing.
///
/// `reason` is typed so a shell or authoring tool can explain the problem in
/// the author's language (Russian, Uzbek …); `detail` is the same cause as an
/// English sentence for logs and developers. `Display` is `"{path}: {detail}"`,
/// e.g. `sections[2].questions[4].relevant: unknown question "q9"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct TemplateError {
    /// Index-based location inside the template (`$` for the whole document),
    /// so tooling can point at the faulty spot.
    pub path: String,
    /// The single root cause, typed, for translated messages.
    pub reason: TemplateReason,
    /// The root cause as an English sentence (logs, developers).
    pub detail: String,
}

impl TemplateError {
    pub(crate) fn new(
        path: impl Into<String>,
        reason: TemplateReason,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            reason,
            detail: detail.into(),
        }
    }
}

/// The JSON type a template field must have, for [`TemplateReason::WrongType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// A JSON object (`{…}`).
    Object,
    /// A JSON array (`[…]`).
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

/// Why a template was rejected: one variant per rule of the template format
/// (docs/FORMS.md), so a shell can show the reason in the author's language.
///
/// Fields carry what a translated message needs (the id, language code or name
/// as written in the template — template content, never survivor data); the
/// place is [`TemplateError::path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateReason {
    /// The text is not JSON (syntax error or truncated document); path `$`.
    InvalidJson {
        /// 1-based line of the error.
        line: u64,
        /// 1-based column of the error.
        column: u64,
    },
    /// The value has the wrong JSON type.
    WrongType {
        /// What the field must be.
        expected: JsonType,
    },
    /// A field the format does not define (typos are errors, not ignored).
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A list that must have at least one element is empty (sections,
    /// questions, choices, `all`/`any` operands, `in` values).
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
    /// A language is listed twice in `languages`.
    DuplicateLanguage {
        /// The repeated language.
        language: String,
    },
    /// One of the required languages (en, ru, uz) is not in `languages`.
    MissingLanguage {
        /// The missing language.
        language: String,
    },
    /// A text lacks the translation for one of the template's languages.
    MissingTranslation {
        /// The missing language.
        language: String,
    },
    /// A translation is empty or only whitespace.
    EmptyTranslation {
        /// The language of the empty text.
        language: String,
    },
    /// A text has a translation for a language not in `languages`.
    UndeclaredLanguage {
        /// The undeclared language.
        language: String,
    },
    /// A template was asked for in a language it does not have (path `languages`).
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
    /// A question that is not a consent question has a `scope`.
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
    /// A question that is not a choice question has `choices`.
    ChoicesNotAllowed {
        /// The question's type.
        question_type: QuestionType,
    },
    /// A constraint name the format does not define.
    UnknownConstraint,
    /// A known constraint that does not apply to this question type.
    ConstraintNotAllowed {
        /// The question's type.
        question_type: QuestionType,
    },
    /// A lower limit is greater than the upper one (`min`/`max`,
    /// `min_length`/`max_length`, `min_choices`/`max_choices`).
    MinAboveMax,
    /// A maximum (`max_length`, `max_choices`) is 0.
    LimitBelowOne,
    /// `min_choices`/`max_choices` exceeds the number of choices.
    MoreThanChoices {
        /// The number of choices.
        choices: u64,
    },
    /// A date limit is not a real calendar date `YYYY-MM-DD`.
    InvalidDate {
        /// The date as written.
        value: String,
    },
    /// A location level other than `district` (coordinates are never collected).
    UnsupportedLocationLevel {
        /// The level as written.
        level: String,
    },
    /// A condition object has no operator or more than one.
    OperatorCount,
    /// A condition operator the format does not define.
    UnknownOperator {
        /// The operator as written.
        name: String,
    },
    /// `greater_than`/`less_than` on a question that is not integer or decimal.
    NotNumeric {
        /// The referenced question.
        question: String,
        /// Its type.
        question_type: QuestionType,
    },
    /// A question's condition refers to the question itself.
    SelfReference {
        /// The question.
        question: String,
    },
    /// A condition refers to a later question (or, for a section, one of its own).
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
        /// Its type (which decides what a value must be).
        question_type: QuestionType,
    },
    /// A condition value is not a choice id of the referenced choice question.
    UnknownChoice {
        /// The referenced question.
        question: String,
        /// The value as written.
        choice: String,
    },
    /// A condition compares the value of an audio/photo question (only
    /// `answered` is allowed).
    NotComparable {
        /// The referenced question.
        question: String,
        /// Its type.
        question_type: QuestionType,
    },
}
