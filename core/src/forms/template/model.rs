//! The template model: validated, immutable types with getters.
//!
//! Every value here comes from the reader (`Template::from_json`), so the rest of the forms
//! module can rely on its invariants (ids unique, conditions only look backwards, translations
//! complete) without re-checking.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::forms::logic::Condition;

/// Languages every template must support, because the field teams work in
/// English, Russian and Uzbek and an interview must never stall on a
/// missing translation.
pub const REQUIRED_LANGUAGES: [&str; 3] = ["en", "ru", "uz"];

/// Longest accepted id (template, section, question, choice). Ids are stored
/// with every answer, so they are kept short and predictable.
pub const MAX_ID_LEN: usize = 64;

/// A text in every language of the template. Field workers switch language
/// mid-interview, so every visible string exists in all template languages
/// (enforced at load time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LocalizedText(pub(super) BTreeMap<String, String>);

impl LocalizedText {
    /// The text in `lang`, or `None` if the template does not have that
    /// language; shells use it to render without cloning the whole template.
    pub fn get(&self, lang: &str) -> Option<&str> {
        self.0.get(lang).map(String::as_str)
    }

    /// All `(language, text)` pairs, so tools (and tests) can check
    /// translations without knowing the language list up front.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The kind of answer a question expects. It decides which `AnswerValue`
/// variant is accepted, which constraints may be set and which skip-logic
/// operators may refer to the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    /// Short free text (one line).
    Text,
    /// Long free text such as a narrative.
    LongText,
    /// Whole number, e.g. a count of people.
    Integer,
    /// Number with a fraction, e.g. an amount of money.
    Decimal,
    /// Calendar date, `YYYY-MM-DD`.
    Date,
    /// Exactly one of the listed choices.
    SingleChoice,
    /// Any number of the listed choices.
    MultipleChoice,
    /// A yes/no answer.
    YesNo,
    /// An informed-consent decision for one `ConsentScope`.
    Consent,
    /// An audio recording stored elsewhere, referenced by id and hash.
    Audio,
    /// A photo stored elsewhere, referenced by id and hash.
    Photo,
    /// A coarse location (district), never coordinates.
    Location,
}

impl QuestionType {
    /// Every type, so tooling and tests can iterate over all of them.
    pub const ALL: [QuestionType; 12] = [
        QuestionType::Text,
        QuestionType::LongText,
        QuestionType::Integer,
        QuestionType::Decimal,
        QuestionType::Date,
        QuestionType::SingleChoice,
        QuestionType::MultipleChoice,
        QuestionType::YesNo,
        QuestionType::Consent,
        QuestionType::Audio,
        QuestionType::Photo,
        QuestionType::Location,
    ];

    /// The name used in template JSON, so error messages match what the
    /// author wrote.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionType::Text => "text",
            QuestionType::LongText => "long_text",
            QuestionType::Integer => "integer",
            QuestionType::Decimal => "decimal",
            QuestionType::Date => "date",
            QuestionType::SingleChoice => "single_choice",
            QuestionType::MultipleChoice => "multiple_choice",
            QuestionType::YesNo => "yes_no",
            QuestionType::Consent => "consent",
            QuestionType::Audio => "audio",
            QuestionType::Photo => "photo",
            QuestionType::Location => "location",
        }
    }

    /// Parses the template/wire name; `None` for an unknown scope.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the question has a `choices` list, because choice ids are
    /// checked both in answers and in skip-logic values.
    pub fn has_choices(self) -> bool {
        matches!(
            self,
            QuestionType::SingleChoice | QuestionType::MultipleChoice
        )
    }
}

impl fmt::Display for QuestionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a consent question covers. Consent is recorded per purpose so that
/// each use of the survivor's data (recording, sharing, court use) can be
/// checked against an explicit, separate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl ConsentScope {
    /// Every scope, so callers can enumerate the decisions a template must ask for.
    pub const ALL: [ConsentScope; 8] = [
        ConsentScope::Interview,
        ConsentScope::Audio,
        ConsentScope::Photos,
        ConsentScope::ShareCaseworkers,
        ConsentScope::ShareLegal,
        ConsentScope::ShareLawEnforcement,
        ConsentScope::ShareResearch,
        ConsentScope::LegalProceedings,
    ];

    /// The name used in template JSON, so errors and exports use one spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentScope::Interview => "interview",
            ConsentScope::Audio => "audio",
            ConsentScope::Photos => "photos",
            ConsentScope::ShareCaseworkers => "share_caseworkers",
            ConsentScope::ShareLegal => "share_legal",
            ConsentScope::ShareLawEnforcement => "share_law_enforcement",
            ConsentScope::ShareResearch => "share_research",
            ConsentScope::LegalProceedings => "legal_proceedings",
        }
    }

    /// Parses the template/wire name; `None` for an unknown scope.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Granularity of a location answer. Only coarse levels exist on purpose:
/// precise coordinates could locate a survivor and must never be collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationLevel {
    /// A district (or comparable administrative area) name.
    District,
}

/// Per-type limits on answers, kept separate per type so a constraint that
/// makes no sense for a type (a length on a number) cannot even be expressed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Constraints {
    /// No constraints (types that take none, or none were given).
    None,
    /// Length limits in characters (Unicode scalar values) for text/long_text.
    Length {
        /// Minimum number of characters.
        #[serde(skip_serializing_if = "Option::is_none")]
        min_length: Option<u64>,
        /// Maximum number of characters.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_length: Option<u64>,
    },
    /// Inclusive range for integer answers.
    Integer {
        /// Smallest allowed value.
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        /// Largest allowed value.
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// Inclusive range for decimal answers.
    Decimal {
        /// Smallest allowed value.
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Inclusive date range, `YYYY-MM-DD`.
    Date {
        /// Earliest allowed date.
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<String>,
        /// Latest allowed date.
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<String>,
    },
    /// How many choices a multiple_choice answer may select.
    ChoiceCount {
        /// Fewest selected choices (an answer always selects at least one).
        #[serde(skip_serializing_if = "Option::is_none")]
        min_choices: Option<u64>,
        /// Most selected choices.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_choices: Option<u64>,
    },
    /// Granularity of a location question.
    Location {
        /// Always `district` today.
        level: LocationLevel,
    },
}

/// One option of a choice question; the id is what is stored, the label is
/// what is shown, so labels can be reworded without touching stored data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub(crate) id: String,
    pub(crate) label: LocalizedText,
}

impl Choice {
    /// Stable id stored in answers and used in skip logic, so labels can be
    /// reworded without invalidating stored answers.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Text shown to the interviewer/survivor, in every template language so
    /// the shell can switch language mid-interview.
    pub fn label(&self) -> &LocalizedText {
        &self.label
    }
}

/// One question. Fields are private so a `Question` can only come from a
/// validated template; getters expose everything shells need.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub(crate) id: String,
    pub(crate) kind: QuestionType,
    pub(crate) label: LocalizedText,
    pub(crate) hint: Option<LocalizedText>,
    pub(crate) why_we_ask: Option<LocalizedText>,
    pub(crate) sensitive: bool,
    pub(crate) required: bool,
    pub(crate) choices: Vec<Choice>,
    pub(crate) constraints: Constraints,
    pub(crate) relevant: Option<Condition>,
    pub(crate) scope: Option<ConsentScope>,
}

impl Question {
    /// Stable id, the key of the answer in `Answers`; never reuse an id for a
    /// different meaning, or old answers would be misread.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The answer type, which decides widget, validation and skip-logic use.
    pub fn kind(&self) -> QuestionType {
        self.kind
    }
    /// The question text in every language, so the shell can show it in the
    /// language the survivor is most comfortable with.
    pub fn label(&self) -> &LocalizedText {
        &self.label
    }
    /// Optional guidance (e.g. "you can skip this"), so interviewers can
    /// ask in a consistent, trauma-informed way.
    pub fn hint(&self) -> Option<&LocalizedText> {
        self.hint.as_ref()
    }
    /// Why the question is asked; always present for sensitive questions so
    /// the survivor can make an informed choice to answer or skip.
    pub fn why_we_ask(&self) -> Option<&LocalizedText> {
        self.why_we_ask.as_ref()
    }
    /// Whether the question touches on traumatic or stigmatising topics, so
    /// shells can warn and handle it with extra care.
    pub fn sensitive(&self) -> bool {
        self.sensitive
    }
    /// Whether a submission must answer it (when relevant). Only consent
    /// questions are required in a trauma-informed form.
    pub fn required(&self) -> bool {
        self.required
    }
    /// The options of a choice question (empty for other types), so the shell
    /// can render them and store ids rather than translated text.
    pub fn choices(&self) -> &[Choice] {
        &self.choices
    }
    /// Limits that answers must satisfy, exposed so shells can give instant
    /// feedback offline (the core still enforces them).
    pub fn constraints(&self) -> &Constraints {
        &self.constraints
    }
    /// Skip-logic condition; `None` means always relevant (if its section is).
    pub fn relevant(&self) -> Option<&Condition> {
        self.relevant.as_ref()
    }
    /// For consent questions, the purpose the consent covers.
    pub fn scope(&self) -> Option<ConsentScope> {
        self.scope
    }
    /// Whether `id` is one of this question's choice ids, used by answer
    /// validation.
    pub fn has_choice(&self, id: &str) -> bool {
        self.choices.iter().any(|c| c.id == id)
    }
}

/// A group of questions shown together. Sections marked `identity` hold
/// identifying data, so storage can keep them apart from the narrative.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub(crate) id: String,
    pub(crate) title: LocalizedText,
    pub(crate) description: Option<LocalizedText>,
    pub(crate) identity: bool,
    pub(crate) relevant: Option<Condition>,
    pub(crate) questions: Vec<Question>,
}

impl Section {
    /// Stable section id, so storage and reports can refer to a section
    /// independently of its translated title.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Section heading, so the survivor knows what the next questions are about.
    pub fn title(&self) -> &LocalizedText {
        &self.title
    }
    /// Optional introduction read out before the questions (e.g. the purpose
    /// of the interview), because the fixed question types have no "note" type.
    pub fn description(&self) -> Option<&LocalizedText> {
        self.description.as_ref()
    }
    /// Whether the answers in this section identify the person and must be
    /// stored separately from the narrative.
    pub fn identity(&self) -> bool {
        self.identity
    }
    /// Skip-logic condition for the whole section (may refer only to
    /// questions of earlier sections).
    pub fn relevant(&self) -> Option<&Condition> {
        self.relevant.as_ref()
    }
    /// The questions in display order; order matters because conditions
    /// may only look at earlier questions.
    pub fn questions(&self) -> &[Question] {
        &self.questions
    }
}

/// A validated interview template. It can only be obtained through
/// [`Template::from_json`], so every `Template` value is known to be
/// consistent (ids unique, conditions only look backwards, translations
/// complete) and the rest of the module can rely on that without re-checking.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub(crate) id: String,
    pub(crate) version: u32,
    pub(crate) title: LocalizedText,
    pub(crate) languages: Vec<String>,
    pub(crate) sections: Vec<Section>,
}

impl Template {
    /// Template id, stored with a case so answers are read with the right template.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Template version (>= 1), stored with a case for the same reason.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Template title, shown so interviewer and survivor know which form is used.
    pub fn title(&self) -> &LocalizedText {
        &self.title
    }
    /// Languages every text is available in, so a shell can offer only
    /// languages that are complete.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }
    /// Sections in display order, so shells can group questions into pages.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }
    /// All questions in template order (the order skip logic is evaluated in).
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.sections.iter().flat_map(|s| s.questions.iter())
    }
    /// Look a question up by id, e.g. to render one question or check an answer key.
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions().find(|q| q.id == id)
    }
    /// The section that holds question `id`, so storage can tell whether an
    /// answer is identifying data.
    pub fn section_of(&self, question_id: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.questions.iter().any(|q| q.id == question_id))
    }
    /// The consent question for `scope`, if the template asks for it (each
    /// scope is asked at most once, enforced at load time).
    pub fn consent_question(&self, scope: ConsentScope) -> Option<&Question> {
        self.questions().find(|q| q.scope == Some(scope))
    }
}
