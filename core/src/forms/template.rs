//! The template model and its loader/validator.
//!
//! Templates arrive as JSON written by people (and one day maybe downloaded
//! from a server), so loading is strict: the JSON is walked by hand so that
//! every error carries an exact, index-based path (`sections[2].questions[4].relevant`)
//! and exactly one root cause, checked in a fixed order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::answers::is_valid_date;
use super::logic::{Condition, Literal};

/// Languages every template must support, because the field teams work in
/// English, Russian and Uzbek and an interview must never stall on a
/// missing translation.
pub const REQUIRED_LANGUAGES: [&str; 3] = ["en", "ru", "uz"];

/// Longest accepted id (template, section, question, choice). Ids are stored
/// with every answer, so they are kept short and predictable.
pub const MAX_ID_LEN: usize = 64;

/// A template that could not be loaded, with the exact place and the single
/// root cause, so that template authors can fix it without guessing.
///
/// `Display` is `"{path}: {reason}"`, e.g.
/// `sections[2].questions[4].relevant: unknown question "q9"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TemplateError {
    /// Index-based location inside the template (`$` for the whole document),
    /// so tooling can point at the faulty spot.
    pub path: String,
    /// Human-readable explanation of the single root cause.
    pub reason: String,
}

impl TemplateError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// A text in every language of the template. Field workers switch language
/// mid-interview, so every visible string exists in all template languages
/// (enforced at load time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LocalizedText(BTreeMap<String, String>);

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

    /// Load and completely validate a template from JSON. This is the only
    /// way to build a `Template`, so invalid templates never reach an interview.
    pub fn from_json(json: &str) -> Result<Template, TemplateError> {
        let root: Value =
            serde_json::from_str(json).map_err(|e| TemplateError::new("$", e.to_string()))?;
        parse_template(&root)
    }
}

// ---------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------

type Obj = Map<String, Value>;

fn join(path: &str, field: &str) -> String {
    // A field name read from the document may be empty; it still has to name a place.
    let field = if field.is_empty() { "\"\"" } else { field };
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(path: &str, what: &str, v: &Value) -> TemplateError {
    TemplateError::new(path, format!("expected {what}, found {}", json_kind(v)))
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, TemplateError> {
    v.as_object()
        .ok_or_else(|| expected(if path.is_empty() { "$" } else { path }, "an object", v))
}

fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, TemplateError> {
    v.as_array().ok_or_else(|| expected(path, "an array", v))
}

fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, TemplateError> {
    v.as_str().ok_or_else(|| expected(path, "a string", v))
}

fn as_bool(v: &Value, path: &str) -> Result<bool, TemplateError> {
    v.as_bool().ok_or_else(|| expected(path, "a boolean", v))
}

fn as_u64(v: &Value, path: &str) -> Result<u64, TemplateError> {
    v.as_u64()
        .ok_or_else(|| TemplateError::new(path, "expected a non-negative integer"))
}

fn check_fields(obj: &Obj, path: &str, allowed: &[&str]) -> Result<(), TemplateError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(TemplateError::new(join(path, k), "unknown field")),
        None => Ok(()),
    }
}

fn required<'a>(obj: &'a Obj, path: &str, field: &str) -> Result<&'a Value, TemplateError> {
    obj.get(field)
        .ok_or_else(|| TemplateError::new(join(path, field), "missing field"))
}

fn optional_bool(obj: &Obj, path: &str, field: &str) -> Result<bool, TemplateError> {
    match obj.get(field) {
        None => Ok(false),
        Some(v) => as_bool(v, &join(path, field)),
    }
}

/// Whether `s` is a valid id: 1..=64 characters of `a-z 0-9 _ . -`.
pub(crate) fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

fn parse_id(v: &Value, path: &str) -> Result<String, TemplateError> {
    let s = as_str(v, path)?;
    if is_valid_id(s) {
        Ok(s.to_string())
    } else {
        Err(TemplateError::new(
            path,
            format!("invalid id {s:?} (use 1 to {MAX_ID_LEN} characters of a-z, 0-9, _ . -)"),
        ))
    }
}

fn is_valid_language(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn parse_languages(v: &Value, path: &str) -> Result<Vec<String>, TemplateError> {
    let arr = as_array(v, path)?;
    let mut langs: Vec<String> = Vec::new();
    for (i, item) in arr.iter().enumerate() {
        let p = index(path, i);
        let s = as_str(item, &p)?;
        if !is_valid_language(s) {
            return Err(TemplateError::new(
                p,
                format!("invalid language code {s:?} (expected e.g. \"en\" or \"uz-cyrl\")"),
            ));
        }
        if langs.iter().any(|l| l == s) {
            return Err(TemplateError::new(p, format!("duplicate language {s:?}")));
        }
        langs.push(s.to_string());
    }
    for req in REQUIRED_LANGUAGES {
        if !langs.iter().any(|l| l == req) {
            return Err(TemplateError::new(
                path,
                format!("missing required language {req:?}"),
            ));
        }
    }
    Ok(langs)
}

fn parse_localized(
    v: &Value,
    path: &str,
    languages: &[String],
) -> Result<LocalizedText, TemplateError> {
    let obj = as_object(v, path)?;
    for lang in languages {
        match obj.get(lang) {
            None => {
                return Err(TemplateError::new(
                    path,
                    format!("missing translation for language {lang:?}"),
                ))
            }
            Some(t) => {
                let s = as_str(t, &join(path, lang))?;
                if s.trim().is_empty() {
                    return Err(TemplateError::new(
                        path,
                        format!("empty translation for language {lang:?}"),
                    ));
                }
            }
        }
    }
    if let Some(extra) = obj.keys().find(|k| !languages.contains(k)) {
        return Err(TemplateError::new(
            path,
            format!("translation for language {extra:?}, which is not in languages"),
        ));
    }
    let map = obj
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect();
    Ok(LocalizedText(map))
}

fn optional_localized(
    obj: &Obj,
    path: &str,
    field: &str,
    languages: &[String],
) -> Result<Option<LocalizedText>, TemplateError> {
    obj.get(field)
        .map(|v| parse_localized(v, &join(path, field), languages))
        .transpose()
}

/// What the loader knows about an earlier question, for checking conditions.
pub(crate) struct Target {
    pub(crate) kind: QuestionType,
    pub(crate) choices: BTreeSet<String>,
}

struct Ctx {
    languages: Vec<String>,
    /// Every question id in the document (pre-pass), to tell forward
    /// references from unknown ones.
    all_ids: BTreeSet<String>,
    /// Questions loaded so far (the ones a condition may refer to).
    earlier: BTreeMap<String, Target>,
    section_ids: BTreeSet<String>,
    /// Which question already asks for each consent scope.
    scopes: BTreeMap<ConsentScope, String>,
}

fn parse_template(root: &Value) -> Result<Template, TemplateError> {
    let obj = as_object(root, "")?;
    check_fields(
        obj,
        "",
        &["id", "version", "title", "languages", "sections"],
    )?;
    let id = parse_id(required(obj, "", "id")?, "id")?;
    let version_v = required(obj, "", "version")?;
    let version = match version_v.as_u64() {
        Some(n) if n >= 1 => u32::try_from(n)
            .map_err(|_| TemplateError::new("version", "must be at most 4294967295"))?,
        _ => return Err(TemplateError::new("version", "must be a positive integer")),
    };
    let languages = parse_languages(required(obj, "", "languages")?, "languages")?;
    let title = parse_localized(required(obj, "", "title")?, "title", &languages)?;
    let sections_v = as_array(required(obj, "", "sections")?, "sections")?;
    if sections_v.is_empty() {
        return Err(TemplateError::new("sections", "must not be empty"));
    }
    let all_ids = sections_v
        .iter()
        .filter_map(|s| s.get("questions").and_then(Value::as_array))
        .flatten()
        .filter_map(|q| q.get("id").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let mut ctx = Ctx {
        languages,
        all_ids,
        earlier: BTreeMap::new(),
        section_ids: BTreeSet::new(),
        scopes: BTreeMap::new(),
    };
    let mut sections = Vec::with_capacity(sections_v.len());
    for (i, s) in sections_v.iter().enumerate() {
        sections.push(parse_section(s, &index("sections", i), &mut ctx)?);
    }
    Ok(Template {
        id,
        version,
        title,
        languages: ctx.languages,
        sections,
    })
}

fn parse_section(v: &Value, path: &str, ctx: &mut Ctx) -> Result<Section, TemplateError> {
    let obj = as_object(v, path)?;
    check_fields(
        obj,
        path,
        &[
            "id",
            "title",
            "description",
            "identity",
            "relevant",
            "questions",
        ],
    )?;
    let id_path = join(path, "id");
    let id = parse_id(required(obj, path, "id")?, &id_path)?;
    if !ctx.section_ids.insert(id.clone()) {
        return Err(TemplateError::new(
            id_path,
            format!("duplicate section id {id:?}"),
        ));
    }
    let title = parse_localized(
        required(obj, path, "title")?,
        &join(path, "title"),
        &ctx.languages,
    )?;
    let description = optional_localized(obj, path, "description", &ctx.languages)?;
    let identity = optional_bool(obj, path, "identity")?;
    let relevant = obj
        .get("relevant")
        .map(|c| parse_condition(c, &join(path, "relevant"), ctx, None))
        .transpose()?;
    let qpath = join(path, "questions");
    let qs = as_array(required(obj, path, "questions")?, &qpath)?;
    if qs.is_empty() {
        return Err(TemplateError::new(qpath, "must not be empty"));
    }
    let mut questions = Vec::with_capacity(qs.len());
    for (j, q) in qs.iter().enumerate() {
        questions.push(parse_question(q, &index(&qpath, j), ctx)?);
    }
    Ok(Section {
        id,
        title,
        description,
        identity,
        relevant,
        questions,
    })
}

const QUESTION_FIELDS: [&str; 11] = [
    "id",
    "type",
    "label",
    "hint",
    "why_we_ask",
    "sensitive",
    "required",
    "choices",
    "constraints",
    "scope",
    "relevant",
];

fn parse_question(v: &Value, path: &str, ctx: &mut Ctx) -> Result<Question, TemplateError> {
    let obj = as_object(v, path)?;
    check_fields(obj, path, &QUESTION_FIELDS)?;
    let id_path = join(path, "id");
    let id = parse_id(required(obj, path, "id")?, &id_path)?;
    if ctx.earlier.contains_key(&id) {
        return Err(TemplateError::new(
            id_path,
            format!("duplicate question id {id:?}"),
        ));
    }
    let type_path = join(path, "type");
    let type_s = as_str(required(obj, path, "type")?, &type_path)?;
    let kind = QuestionType::parse(type_s).ok_or_else(|| {
        TemplateError::new(&type_path, format!("unknown question type {type_s:?}"))
    })?;
    let label = parse_localized(
        required(obj, path, "label")?,
        &join(path, "label"),
        &ctx.languages,
    )?;
    let hint = optional_localized(obj, path, "hint", &ctx.languages)?;
    let why_we_ask = optional_localized(obj, path, "why_we_ask", &ctx.languages)?;
    let sensitive = optional_bool(obj, path, "sensitive")?;
    if sensitive && why_we_ask.is_none() {
        return Err(TemplateError::new(
            join(path, "why_we_ask"),
            "required when sensitive is true",
        ));
    }
    let required_flag = optional_bool(obj, path, "required")?;
    if kind == QuestionType::Consent && !required_flag {
        return Err(TemplateError::new(
            join(path, "required"),
            "consent questions must be required (set \"required\": true)",
        ));
    }
    let choices = parse_choices(obj, path, kind, &ctx.languages)?;
    let constraints = parse_constraints(obj, path, kind, choices.len())?;
    let scope_path = join(path, "scope");
    let scope = match (obj.get("scope"), kind) {
        (None, QuestionType::Consent) => {
            return Err(TemplateError::new(
                scope_path,
                "required for consent questions",
            ))
        }
        (None, _) => None,
        (Some(_), k) if k != QuestionType::Consent => {
            return Err(TemplateError::new(
                scope_path,
                "only allowed for consent questions",
            ))
        }
        (Some(s), _) => {
            let s = as_str(s, &scope_path)?;
            let scope = ConsentScope::parse(s).ok_or_else(|| {
                TemplateError::new(&scope_path, format!("unknown consent scope {s:?}"))
            })?;
            if let Some(other) = ctx.scopes.get(&scope) {
                return Err(TemplateError::new(
                    scope_path,
                    format!("consent scope {s:?} is already asked by question {other:?}"),
                ));
            }
            ctx.scopes.insert(scope, id.clone());
            Some(scope)
        }
    };
    let relevant = obj
        .get("relevant")
        .map(|c| parse_condition(c, &join(path, "relevant"), ctx, Some(&id)))
        .transpose()?;
    ctx.earlier.insert(
        id.clone(),
        Target {
            kind,
            choices: choices.iter().map(|c| c.id.clone()).collect(),
        },
    );
    Ok(Question {
        id,
        kind,
        label,
        hint,
        why_we_ask,
        sensitive,
        required: required_flag,
        choices,
        constraints,
        relevant,
        scope,
    })
}

fn parse_choices(
    obj: &Obj,
    path: &str,
    kind: QuestionType,
    languages: &[String],
) -> Result<Vec<Choice>, TemplateError> {
    let cpath = join(path, "choices");
    let Some(v) = obj.get("choices") else {
        if kind.has_choices() {
            return Err(TemplateError::new(
                cpath,
                format!("required for {kind} questions"),
            ));
        }
        return Ok(Vec::new());
    };
    if !kind.has_choices() {
        return Err(TemplateError::new(
            cpath,
            format!("not allowed for {kind} questions (only single_choice and multiple_choice)"),
        ));
    }
    let arr = as_array(v, &cpath)?;
    if arr.is_empty() {
        return Err(TemplateError::new(cpath, "must not be empty"));
    }
    let mut choices: Vec<Choice> = Vec::with_capacity(arr.len());
    for (i, c) in arr.iter().enumerate() {
        let p = index(&cpath, i);
        let o = as_object(c, &p)?;
        check_fields(o, &p, &["id", "label"])?;
        let id_path = join(&p, "id");
        let id = parse_id(required(o, &p, "id")?, &id_path)?;
        if choices.iter().any(|c| c.id == id) {
            return Err(TemplateError::new(
                id_path,
                format!("duplicate choice id {id:?}"),
            ));
        }
        let label = parse_localized(required(o, &p, "label")?, &join(&p, "label"), languages)?;
        choices.push(Choice { id, label });
    }
    Ok(choices)
}

fn allowed_constraints(kind: QuestionType) -> &'static [&'static str] {
    match kind {
        QuestionType::Text | QuestionType::LongText => &["min_length", "max_length"],
        QuestionType::Integer | QuestionType::Decimal | QuestionType::Date => &["min", "max"],
        QuestionType::MultipleChoice => &["min_choices", "max_choices"],
        QuestionType::Location => &["level"],
        _ => &[],
    }
}

fn parse_constraints(
    obj: &Obj,
    path: &str,
    kind: QuestionType,
    n_choices: usize,
) -> Result<Constraints, TemplateError> {
    let cpath = join(path, "constraints");
    let default = if kind == QuestionType::Location {
        Constraints::Location {
            level: LocationLevel::District,
        }
    } else {
        Constraints::None
    };
    let Some(v) = obj.get("constraints") else {
        return Ok(default);
    };
    let o = as_object(v, &cpath)?;
    let allowed = allowed_constraints(kind);
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        const KNOWN: [&str; 7] = [
            "min_length",
            "max_length",
            "min",
            "max",
            "min_choices",
            "max_choices",
            "level",
        ];
        let reason = if KNOWN.contains(&k.as_str()) {
            format!("not a constraint for {kind} questions")
        } else {
            "unknown constraint".to_string()
        };
        return Err(TemplateError::new(join(&cpath, k), reason));
    }
    let field = |name: &str| o.get(name).map(|v| (v, join(&cpath, name)));
    let order_err = |lo: &str, hi: &str| {
        TemplateError::new(&cpath, format!("{lo} must not be greater than {hi}"))
    };
    let c = match kind {
        QuestionType::Text | QuestionType::LongText => {
            let min_length = field("min_length")
                .map(|(v, p)| as_u64(v, &p))
                .transpose()?;
            let max_length = field("max_length")
                .map(|(v, p)| as_u64(v, &p))
                .transpose()?;
            if max_length == Some(0) {
                return Err(TemplateError::new(
                    join(&cpath, "max_length"),
                    "must be at least 1",
                ));
            }
            if let (Some(a), Some(b)) = (min_length, max_length) {
                if a > b {
                    return Err(order_err("min_length", "max_length"));
                }
            }
            Constraints::Length {
                min_length,
                max_length,
            }
        }
        QuestionType::Integer => {
            let int = |(v, p): (&Value, String)| {
                v.as_i64()
                    .ok_or_else(|| TemplateError::new(p, "expected an integer"))
            };
            let min = field("min").map(int).transpose()?;
            let max = field("max").map(int).transpose()?;
            if let (Some(a), Some(b)) = (min, max) {
                if a > b {
                    return Err(order_err("min", "max"));
                }
            }
            Constraints::Integer { min, max }
        }
        QuestionType::Decimal => {
            let num = |(v, p): (&Value, String)| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| TemplateError::new(p, "expected a number"))
            };
            let min = field("min").map(num).transpose()?;
            let max = field("max").map(num).transpose()?;
            if let (Some(a), Some(b)) = (min, max) {
                if a > b {
                    return Err(order_err("min", "max"));
                }
            }
            Constraints::Decimal { min, max }
        }
        QuestionType::Date => {
            let date = |(v, p): (&Value, String)| -> Result<String, TemplateError> {
                let s = as_str(v, &p)?;
                if is_valid_date(s) {
                    Ok(s.to_string())
                } else {
                    Err(TemplateError::new(
                        p,
                        format!("invalid date {s:?} (expected a real calendar date as YYYY-MM-DD)"),
                    ))
                }
            };
            let min = field("min").map(date).transpose()?;
            let max = field("max").map(date).transpose()?;
            if let (Some(a), Some(b)) = (&min, &max) {
                if a > b {
                    return Err(order_err("min", "max"));
                }
            }
            Constraints::Date { min, max }
        }
        QuestionType::MultipleChoice => {
            let min_choices = field("min_choices")
                .map(|(v, p)| as_u64(v, &p))
                .transpose()?;
            let max_choices = field("max_choices")
                .map(|(v, p)| as_u64(v, &p))
                .transpose()?;
            let n = n_choices as u64;
            for (name, val) in [("min_choices", min_choices), ("max_choices", max_choices)] {
                match val {
                    Some(0) if name == "max_choices" => {
                        return Err(TemplateError::new(join(&cpath, name), "must be at least 1"))
                    }
                    Some(x) if x > n => {
                        return Err(TemplateError::new(
                            join(&cpath, name),
                            format!("must not exceed the number of choices ({n})"),
                        ))
                    }
                    _ => {}
                }
            }
            if let (Some(a), Some(b)) = (min_choices, max_choices) {
                if a > b {
                    return Err(order_err("min_choices", "max_choices"));
                }
            }
            Constraints::ChoiceCount {
                min_choices,
                max_choices,
            }
        }
        QuestionType::Location => {
            if let Some((v, p)) = field("level") {
                let s = as_str(v, &p)?;
                if s != "district" {
                    return Err(TemplateError::new(
                        p,
                        format!("unsupported level {s:?} (only \"district\"; coordinates are never collected)"),
                    ));
                }
            }
            default
        }
        _ => default,
    };
    Ok(c)
}

// ---------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------

const OPERATORS: &str = "all, any, not, equals, in, greater_than, less_than, answered";

fn parse_condition(
    v: &Value,
    path: &str,
    ctx: &Ctx,
    self_id: Option<&str>,
) -> Result<Condition, TemplateError> {
    let obj = as_object(v, path)?;
    let mut entries = obj.iter();
    let (op, arg) = match (entries.next(), entries.next()) {
        (Some(e), None) => e,
        _ => {
            return Err(TemplateError::new(
                path,
                format!("a condition must have exactly one operator ({OPERATORS})"),
            ))
        }
    };
    let arg_path = join(path, op);
    match op.as_str() {
        "all" | "any" => {
            let arr = as_array(arg, &arg_path)?;
            if arr.is_empty() {
                return Err(TemplateError::new(arg_path, "must not be empty"));
            }
            let mut items = Vec::with_capacity(arr.len());
            for (i, c) in arr.iter().enumerate() {
                items.push(parse_condition(c, &index(&arg_path, i), ctx, self_id)?);
            }
            Ok(if op == "all" {
                Condition::All(items)
            } else {
                Condition::Any(items)
            })
        }
        "not" => Ok(Condition::Not(Box::new(parse_condition(
            arg, &arg_path, ctx, self_id,
        )?))),
        "answered" => {
            let q = as_str(arg, &arg_path)?;
            resolve(q, path, ctx, self_id)?;
            Ok(Condition::Answered(q.to_string()))
        }
        "equals" | "greater_than" | "less_than" => {
            let o = as_object(arg, &arg_path)?;
            check_fields(o, &arg_path, &["question", "value"])?;
            let q = as_str(
                required(o, &arg_path, "question")?,
                &join(&arg_path, "question"),
            )?;
            let value = required(o, &arg_path, "value")?;
            let target = resolve(q, path, ctx, self_id)?;
            let question = q.to_string();
            if op == "equals" {
                let value = literal_for(target, q, value, path)?;
                return Ok(Condition::Equals { question, value });
            }
            if !matches!(target.kind, QuestionType::Integer | QuestionType::Decimal) {
                return Err(TemplateError::new(
                    path,
                    format!(
                        "{op} needs an integer or decimal question, but {q:?} is {}",
                        target.kind
                    ),
                ));
            }
            let value = value
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| TemplateError::new(join(&arg_path, "value"), "expected a number"))?;
            Ok(if op == "greater_than" {
                Condition::GreaterThan { question, value }
            } else {
                Condition::LessThan { question, value }
            })
        }
        "in" => {
            let o = as_object(arg, &arg_path)?;
            check_fields(o, &arg_path, &["question", "values"])?;
            let q = as_str(
                required(o, &arg_path, "question")?,
                &join(&arg_path, "question"),
            )?;
            let vpath = join(&arg_path, "values");
            let values = as_array(required(o, &arg_path, "values")?, &vpath)?;
            if values.is_empty() {
                return Err(TemplateError::new(vpath, "must not be empty"));
            }
            let target = resolve(q, path, ctx, self_id)?;
            let mut lits = Vec::with_capacity(values.len());
            for v in values {
                lits.push(literal_for(target, q, v, path)?);
            }
            Ok(Condition::In {
                question: q.to_string(),
                values: lits,
            })
        }
        other => Err(TemplateError::new(
            path,
            format!("unknown operator {other:?} (expected one of {OPERATORS})"),
        )),
    }
}

fn resolve<'a>(
    q: &str,
    path: &str,
    ctx: &'a Ctx,
    self_id: Option<&str>,
) -> Result<&'a Target, TemplateError> {
    if self_id == Some(q) {
        return Err(TemplateError::new(
            path,
            format!("question {q:?} refers to itself (cycle)"),
        ));
    }
    if let Some(t) = ctx.earlier.get(q) {
        return Ok(t);
    }
    if ctx.all_ids.contains(q) {
        Err(TemplateError::new(
            path,
            format!("forward reference to question {q:?} (conditions may only refer to earlier questions)"),
        ))
    } else {
        Err(TemplateError::new(path, format!("unknown question {q:?}")))
    }
}

fn literal_for(target: &Target, q: &str, v: &Value, path: &str) -> Result<Literal, TemplateError> {
    let kind = target.kind;
    let mismatch = |what: &str| {
        TemplateError::new(
            path,
            format!("value for {kind} question {q:?} must be {what}"),
        )
    };
    match kind {
        QuestionType::SingleChoice | QuestionType::MultipleChoice => {
            let s = v.as_str().ok_or_else(|| mismatch("a choice id (string)"))?;
            if target.choices.contains(s) {
                Ok(Literal::Str(s.to_string()))
            } else {
                Err(TemplateError::new(
                    path,
                    format!("{s:?} is not a choice of question {q:?}"),
                ))
            }
        }
        QuestionType::YesNo | QuestionType::Consent => v
            .as_bool()
            .map(Literal::Bool)
            .ok_or_else(|| mismatch("true or false")),
        QuestionType::Integer => v
            .as_i64()
            .map(Literal::Int)
            .ok_or_else(|| mismatch("an integer")),
        QuestionType::Decimal => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Literal::Num)
            .ok_or_else(|| mismatch("a number")),
        QuestionType::Date => match v.as_str() {
            Some(s) if is_valid_date(s) => Ok(Literal::Str(s.to_string())),
            _ => Err(mismatch("a date (YYYY-MM-DD)")),
        },
        QuestionType::Text | QuestionType::LongText | QuestionType::Location => v
            .as_str()
            .map(|s| Literal::Str(s.to_string()))
            .ok_or_else(|| mismatch("a string")),
        QuestionType::Audio | QuestionType::Photo => Err(TemplateError::new(
            path,
            format!("values cannot be compared with {kind} question {q:?} (use answered)"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l() -> Value {
        json!({"en": "x", "ru": "x", "uz": "x"})
    }

    fn base() -> Value {
        json!({
            "id": "t", "version": 1, "languages": ["en", "ru", "uz"], "title": l(),
            "sections": [
                {"id": "s0", "title": l(), "questions": [
                    {"id": "c", "type": "consent", "label": l(), "required": true, "scope": "interview"},
                    {"id": "q1", "type": "single_choice", "label": l(),
                     "choices": [{"id": "a", "label": l()}, {"id": "b", "label": l()}]},
                    {"id": "q2", "type": "text", "label": l()},
                    {"id": "q3", "type": "integer", "label": l()}
                ]},
                {"id": "s1", "title": l(), "questions": [
                    {"id": "q4", "type": "yes_no", "label": l()}
                ]}
            ]
        })
    }

    /// Apply `edit` at JSON pointer `ptr` of the base template and expect
    /// exactly `path: reason`.
    fn expect(ptr: &str, edit: impl FnOnce(&mut Value), path: &str, reason: &str) {
        let mut v = base();
        edit(v.pointer_mut(ptr).expect(ptr));
        let e = Template::from_json(&v.to_string()).unwrap_err();
        assert_eq!((e.path.as_str(), e.reason.as_str()), (path, reason));
        assert_eq!(e.to_string(), format!("{path}: {reason}"));
    }

    fn set(field: &str, val: Value) -> impl FnOnce(&mut Value) + '_ {
        move |v| {
            v.as_object_mut().unwrap().insert(field.to_string(), val);
        }
    }

    fn del(field: &str) -> impl FnOnce(&mut Value) + '_ {
        move |v| {
            v.as_object_mut().unwrap().remove(field);
        }
    }

    const Q0: &str = "/sections/0/questions/0";
    const Q1: &str = "/sections/0/questions/1";
    const Q2: &str = "/sections/0/questions/2";
    const Q3: &str = "/sections/0/questions/3";
    const Q4: &str = "/sections/1/questions/0";

    #[test]
    fn base_template_loads() {
        let t = Template::from_json(&base().to_string()).unwrap();
        assert_eq!(t.id(), "t");
        assert_eq!(t.questions().count(), 5);
        assert_eq!(
            t.consent_question(ConsentScope::Interview).unwrap().id(),
            "c"
        );
        assert!(matches!(
            t.question("q3").unwrap().constraints(),
            Constraints::None
        ));
    }

    #[test]
    fn malformed_json() {
        let e = Template::from_json("{\"id\": ").unwrap_err();
        assert_eq!(e.path, "$");
        assert_eq!(e.reason, "EOF while parsing a value at line 1 column 7");
        let e = Template::from_json("[]").unwrap_err();
        assert_eq!(e.to_string(), "$: expected an object, found an array");
    }

    #[test]
    fn unknown_fields() {
        expect("", set("colour", json!("red")), "colour", "unknown field");
        expect(
            Q1,
            set("colour", json!("red")),
            "sections[0].questions[1].colour",
            "unknown field",
        );
        expect(
            "/sections/1",
            set("notes", json!(1)),
            "sections[1].notes",
            "unknown field",
        );
        expect(
            "/sections/0/questions/1/choices/0",
            set("value", json!(1)),
            "sections[0].questions[1].choices[0].value",
            "unknown field",
        );
    }

    #[test]
    fn missing_fields() {
        expect(
            Q2,
            del("label"),
            "sections[0].questions[2].label",
            "missing field",
        );
        expect("", del("version"), "version", "missing field");
    }

    #[test]
    fn unknown_question_type() {
        expect(
            Q2,
            set("type", json!("essay")),
            "sections[0].questions[2].type",
            "unknown question type \"essay\"",
        );
    }

    #[test]
    fn duplicate_ids() {
        expect(
            Q4,
            set("id", json!("q2")),
            "sections[1].questions[0].id",
            "duplicate question id \"q2\"",
        );
        expect(
            "/sections/1",
            set("id", json!("s0")),
            "sections[1].id",
            "duplicate section id \"s0\"",
        );
        expect(
            "/sections/0/questions/1/choices/1",
            set("id", json!("a")),
            "sections[0].questions[1].choices[1].id",
            "duplicate choice id \"a\"",
        );
    }

    #[test]
    fn choices_rules() {
        expect(
            Q1,
            set("choices", json!([])),
            "sections[0].questions[1].choices",
            "must not be empty",
        );
        expect(
            Q1,
            del("choices"),
            "sections[0].questions[1].choices",
            "required for single_choice questions",
        );
        expect(
            Q2,
            set("choices", json!([{"id": "a", "label": l()}])),
            "sections[0].questions[2].choices",
            "not allowed for text questions (only single_choice and multiple_choice)",
        );
    }

    #[test]
    fn references() {
        expect(
            Q4,
            set("relevant", json!({"answered": "q9"})),
            "sections[1].questions[0].relevant",
            "unknown question \"q9\"",
        );
        expect(
            Q2,
            set("relevant", json!({"answered": "q3"})),
            "sections[0].questions[2].relevant",
            "forward reference to question \"q3\" (conditions may only refer to earlier questions)",
        );
        expect(
            Q2,
            set(
                "relevant",
                json!({"not": {"equals": {"question": "q2", "value": "x"}}}),
            ),
            "sections[0].questions[2].relevant.not",
            "question \"q2\" refers to itself (cycle)",
        );
        // A section condition may not look into its own section.
        expect(
            "/sections/1",
            set("relevant", json!({"answered": "q4"})),
            "sections[1].relevant",
            "forward reference to question \"q4\" (conditions may only refer to earlier questions)",
        );
        expect(
            Q4,
            set(
                "relevant",
                json!({"any": [{"answered": "q2"}, {"not": {"answered": "zz"}}]}),
            ),
            "sections[1].questions[0].relevant.any[1].not",
            "unknown question \"zz\"",
        );
    }

    #[test]
    fn operator_type_mismatch() {
        expect(
            Q4,
            set(
                "relevant",
                json!({"greater_than": {"question": "q2", "value": 1}}),
            ),
            "sections[1].questions[0].relevant",
            "greater_than needs an integer or decimal question, but \"q2\" is text",
        );
        expect(
            Q4,
            set(
                "relevant",
                json!({"equals": {"question": "q1", "value": "z"}}),
            ),
            "sections[1].questions[0].relevant",
            "\"z\" is not a choice of question \"q1\"",
        );
        expect(
            Q4,
            set(
                "relevant",
                json!({"equals": {"question": "q3", "value": "5"}}),
            ),
            "sections[1].questions[0].relevant",
            "value for integer question \"q3\" must be an integer",
        );
        expect(
            Q4,
            set(
                "relevant",
                json!({"in": {"question": "c", "values": [true, "yes"]}}),
            ),
            "sections[1].questions[0].relevant",
            "value for consent question \"c\" must be true or false",
        );
        expect(
            Q4,
            set(
                "relevant",
                json!({"less_than": {"question": "q3", "value": "10"}}),
            ),
            "sections[1].questions[0].relevant.less_than.value",
            "expected a number",
        );
    }

    #[test]
    fn condition_shape() {
        expect(
            Q4,
            set("relevant", json!({"all": []})),
            "sections[1].questions[0].relevant.all",
            "must not be empty",
        );
        expect(
            Q4,
            set("relevant", json!({"any": []})),
            "sections[1].questions[0].relevant.any",
            "must not be empty",
        );
        expect(
            Q4,
            set("relevant", json!({"xor": []})),
            "sections[1].questions[0].relevant",
            "unknown operator \"xor\" (expected one of all, any, not, equals, in, greater_than, less_than, answered)",
        );
        expect(
            Q4,
            set("relevant", json!({"answered": "q2", "not": {"answered": "q2"}})),
            "sections[1].questions[0].relevant",
            "a condition must have exactly one operator (all, any, not, equals, in, greater_than, less_than, answered)",
        );
        expect(
            Q4,
            set(
                "relevant",
                json!({"equals": {"question": "q2", "value": "x", "op": "eq"}}),
            ),
            "sections[1].questions[0].relevant.equals.op",
            "unknown field",
        );
        expect(
            Q4,
            set("relevant", json!({"in": {"question": "q1", "values": []}})),
            "sections[1].questions[0].relevant.in.values",
            "must not be empty",
        );
    }

    #[test]
    fn translations() {
        expect(
            &format!("{Q2}/label"),
            del("uz"),
            "sections[0].questions[2].label",
            "missing translation for language \"uz\"",
        );
        expect(
            &format!("{Q2}/label"),
            set("ru", json!("  ")),
            "sections[0].questions[2].label",
            "empty translation for language \"ru\"",
        );
        expect(
            "/title",
            set("de", json!("Titel")),
            "title",
            "translation for language \"de\", which is not in languages",
        );
        expect(
            "/sections/0/questions/1/choices/1/label",
            del("en"),
            "sections[0].questions[1].choices[1].label",
            "missing translation for language \"en\"",
        );
        expect(
            "",
            set("languages", json!(["en", "ru"])),
            "languages",
            "missing required language \"uz\"",
        );
        expect(
            "",
            set("languages", json!(["en", "ru", "uz", "EN"])),
            "languages[3]",
            "invalid language code \"EN\" (expected e.g. \"en\" or \"uz-cyrl\")",
        );
    }

    #[test]
    fn sensitive_needs_why_we_ask() {
        expect(
            Q2,
            set("sensitive", json!(true)),
            "sections[0].questions[2].why_we_ask",
            "required when sensitive is true",
        );
    }

    #[test]
    fn constraints() {
        expect(
            Q3,
            set("constraints", json!({"min_length": 1})),
            "sections[0].questions[3].constraints.min_length",
            "not a constraint for integer questions",
        );
        expect(
            Q3,
            set("constraints", json!({"minimum": 1})),
            "sections[0].questions[3].constraints.minimum",
            "unknown constraint",
        );
        expect(
            Q3,
            set("constraints", json!({"min": 5, "max": 1})),
            "sections[0].questions[3].constraints",
            "min must not be greater than max",
        );
        expect(
            Q2,
            set("constraints", json!({"min_length": 5, "max_length": 1})),
            "sections[0].questions[2].constraints",
            "min_length must not be greater than max_length",
        );
        expect(
            Q3,
            set("constraints", json!({"min": 1.5})),
            "sections[0].questions[3].constraints.min",
            "expected an integer",
        );
        expect(
            Q4,
            set("constraints", json!({"max": 1})),
            "sections[1].questions[0].constraints.max",
            "not a constraint for yes_no questions",
        );
        expect(
            Q1,
            set("constraints", json!({"max_choices": 2})),
            "sections[0].questions[1].constraints.max_choices",
            "not a constraint for single_choice questions",
        );
    }

    #[test]
    fn invalid_date_constraint() {
        expect(
            Q3,
            |q| {
                let o = q.as_object_mut().unwrap();
                o.insert("type".into(), json!("date"));
                o.insert("constraints".into(), json!({"min": "2023-02-29"}));
            },
            "sections[0].questions[3].constraints.min",
            "invalid date \"2023-02-29\" (expected a real calendar date as YYYY-MM-DD)",
        );
    }

    #[test]
    fn location_level() {
        expect(
            Q3,
            |q| {
                let o = q.as_object_mut().unwrap();
                o.insert("type".into(), json!("location"));
                o.insert("constraints".into(), json!({"level": "gps"}));
            },
            "sections[0].questions[3].constraints.level",
            "unsupported level \"gps\" (only \"district\"; coordinates are never collected)",
        );
    }

    #[test]
    fn multiple_choice_counts() {
        expect(
            Q1,
            |q| {
                let o = q.as_object_mut().unwrap();
                o.insert("type".into(), json!("multiple_choice"));
                o.insert("constraints".into(), json!({"min_choices": 3}));
            },
            "sections[0].questions[1].constraints.min_choices",
            "must not exceed the number of choices (2)",
        );
    }

    #[test]
    fn consent_rules() {
        expect(
            Q0,
            del("scope"),
            "sections[0].questions[0].scope",
            "required for consent questions",
        );
        expect(
            Q0,
            set("scope", json!("everything")),
            "sections[0].questions[0].scope",
            "unknown consent scope \"everything\"",
        );
        expect(
            Q0,
            set("required", json!(false)),
            "sections[0].questions[0].required",
            "consent questions must be required (set \"required\": true)",
        );
        expect(
            Q2,
            set("scope", json!("audio")),
            "sections[0].questions[2].scope",
            "only allowed for consent questions",
        );
        expect(
            Q4,
            |q| {
                let o = q.as_object_mut().unwrap();
                o.insert("type".into(), json!("consent"));
                o.insert("required".into(), json!(true));
                o.insert("scope".into(), json!("interview"));
            },
            "sections[1].questions[0].scope",
            "consent scope \"interview\" is already asked by question \"c\"",
        );
    }

    #[test]
    fn top_level_rules() {
        expect(
            "",
            set("id", json!("Bad Id")),
            "id",
            "invalid id \"Bad Id\" (use 1 to 64 characters of a-z, 0-9, _ . -)",
        );
        expect(
            Q2,
            set("id", json!("q 2")),
            "sections[0].questions[2].id",
            "invalid id \"q 2\" (use 1 to 64 characters of a-z, 0-9, _ . -)",
        );
        expect(
            "",
            set("version", json!(0)),
            "version",
            "must be a positive integer",
        );
        expect(
            "",
            set("version", json!(-3)),
            "version",
            "must be a positive integer",
        );
        expect(
            "",
            set("sections", json!([])),
            "sections",
            "must not be empty",
        );
        expect(
            "/sections/1",
            set("questions", json!([])),
            "sections[1].questions",
            "must not be empty",
        );
        expect(
            Q2,
            set("required", json!("yes")),
            "sections[0].questions[2].required",
            "expected a boolean, found a string",
        );
    }

    #[test]
    fn equals_on_attachment_is_rejected() {
        let mut v = base();
        v["sections"][0]["questions"][3]["type"] = json!("photo");
        v["sections"][1]["questions"][0]["relevant"] =
            json!({"equals": {"question": "q3", "value": "x"}});
        let e = Template::from_json(&v.to_string()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sections[1].questions[0].relevant: values cannot be compared with photo question \"q3\" (use answered)"
        );
    }

    #[test]
    fn first_error_wins_deterministically() {
        let mut v = base();
        // Two problems: bad version and an unknown question type later on.
        v["version"] = json!(0);
        v["sections"][0]["questions"][2]["type"] = json!("essay");
        let a = Template::from_json(&v.to_string()).unwrap_err();
        let b = Template::from_json(&v.to_string()).unwrap_err();
        assert_eq!(a, b);
        assert_eq!(a.path, "version");
    }

    #[test]
    fn localized_view() {
        let t = Template::from_json(&base().to_string()).unwrap();
        let lt = t.localized("uz").unwrap();
        assert_eq!(lt.language, "uz");
        assert_eq!(lt.sections.len(), 2);
        let e = t.localized("de").unwrap_err();
        assert_eq!(
            e.to_string(),
            "languages: unsupported language \"de\" (available: en, ru, uz)"
        );
        let s = serde_json::to_value(&lt).unwrap();
        assert_eq!(s["sections"][0]["questions"][1]["type"], "single_choice");
    }
}
