//! The JSON reader: turns template JSON into a [`Template`], checking every rule.
//!
//! The JSON is walked by hand (not derived) so that every error carries an exact, index-based
//! path and exactly one root cause, checked in a fixed order: the first problem in document
//! order wins, deterministically.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::condition::parse_condition;
use super::error::{JsonType, TemplateError, TemplateReason as R};
use super::model::{
    Choice, ConsentScope, Constraints, LocalizedText, LocationLevel, Question, QuestionType,
    Section, Template, MAX_ID_LEN, REQUIRED_LANGUAGES,
};
use crate::forms::answers::is_valid_date;

impl Template {
    /// Load and completely validate a template from JSON. This is the only
    /// way to build a `Template`, so invalid templates never reach an interview.
    pub fn from_json(json: &str) -> Result<Template, TemplateError> {
        let root: Value = serde_json::from_str(json).map_err(|e| {
            let reason = R::InvalidJson {
                line: e.line() as u64,
                column: e.column() as u64,
            };
            TemplateError::new("$", reason, e.to_string())
        })?;
        parse_template(&root)
    }
}

type Obj = Map<String, Value>;

pub(super) fn join(path: &str, field: &str) -> String {
    // A field name read from the document may be empty; it still has to name a place.
    let field = if field.is_empty() { "\"\"" } else { field };
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

pub(super) fn index(path: &str, i: usize) -> String {
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

fn expected(path: &str, what: JsonType, v: &Value) -> TemplateError {
    let name = match what {
        JsonType::Object => "an object",
        JsonType::Array => "an array",
        JsonType::String => "a string",
        JsonType::Boolean => "a boolean",
        JsonType::Number => "a number",
        JsonType::Integer => "an integer",
        JsonType::NonNegativeInteger => "a non-negative integer",
    };
    TemplateError::new(
        path,
        R::WrongType { expected: what },
        format!("expected {name}, found {}", json_kind(v)),
    )
}

/// A value of the wrong JSON type where the message names only what was expected.
pub(super) fn expected_only(
    path: impl Into<String>,
    what: JsonType,
    detail: &str,
) -> TemplateError {
    TemplateError::new(path, R::WrongType { expected: what }, detail)
}

pub(super) fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, TemplateError> {
    v.as_object().ok_or_else(|| {
        expected(
            if path.is_empty() { "$" } else { path },
            JsonType::Object,
            v,
        )
    })
}

pub(super) fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, TemplateError> {
    v.as_array()
        .ok_or_else(|| expected(path, JsonType::Array, v))
}

pub(super) fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, TemplateError> {
    v.as_str()
        .ok_or_else(|| expected(path, JsonType::String, v))
}

fn as_bool(v: &Value, path: &str) -> Result<bool, TemplateError> {
    v.as_bool()
        .ok_or_else(|| expected(path, JsonType::Boolean, v))
}

fn as_u64(v: &Value, path: &str) -> Result<u64, TemplateError> {
    v.as_u64().ok_or_else(|| {
        expected_only(
            path,
            JsonType::NonNegativeInteger,
            "expected a non-negative integer",
        )
    })
}

pub(super) fn check_fields(obj: &Obj, path: &str, allowed: &[&str]) -> Result<(), TemplateError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(TemplateError::new(
            join(path, k),
            R::UnknownField,
            "unknown field",
        )),
        None => Ok(()),
    }
}

pub(super) fn required<'a>(
    obj: &'a Obj,
    path: &str,
    field: &str,
) -> Result<&'a Value, TemplateError> {
    obj.get(field)
        .ok_or_else(|| TemplateError::new(join(path, field), R::MissingField, "missing field"))
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
            R::InvalidId { id: s.to_string() },
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
                R::InvalidLanguageCode {
                    code: s.to_string(),
                },
                format!("invalid language code {s:?} (expected e.g. \"en\" or \"uz-cyrl\")"),
            ));
        }
        if langs.iter().any(|l| l == s) {
            return Err(TemplateError::new(
                p,
                R::DuplicateLanguage {
                    language: s.to_string(),
                },
                format!("duplicate language {s:?}"),
            ));
        }
        langs.push(s.to_string());
    }
    for req in REQUIRED_LANGUAGES {
        if !langs.iter().any(|l| l == req) {
            return Err(TemplateError::new(
                path,
                R::MissingLanguage {
                    language: req.to_string(),
                },
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
                    R::MissingTranslation {
                        language: lang.clone(),
                    },
                    format!("missing translation for language {lang:?}"),
                ))
            }
            Some(t) => {
                let s = as_str(t, &join(path, lang))?;
                if s.trim().is_empty() {
                    return Err(TemplateError::new(
                        path,
                        R::EmptyTranslation {
                            language: lang.clone(),
                        },
                        format!("empty translation for language {lang:?}"),
                    ));
                }
            }
        }
    }
    if let Some(extra) = obj.keys().find(|k| !languages.contains(k)) {
        return Err(TemplateError::new(
            path,
            R::UndeclaredLanguage {
                language: extra.clone(),
            },
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
pub(super) struct Target {
    pub(super) kind: QuestionType,
    pub(super) choices: BTreeSet<String>,
}

pub(super) struct Ctx {
    languages: Vec<String>,
    /// Every question id in the document (pre-pass), to tell forward
    /// references from unknown ones.
    pub(super) all_ids: BTreeSet<String>,
    /// Questions loaded so far (the ones a condition may refer to).
    pub(super) earlier: BTreeMap<String, Target>,
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
        Some(n) if n >= 1 => u32::try_from(n).map_err(|_| {
            TemplateError::new("version", R::InvalidVersion, "must be at most 4294967295")
        })?,
        _ => {
            return Err(TemplateError::new(
                "version",
                R::InvalidVersion,
                "must be a positive integer",
            ))
        }
    };
    let languages = parse_languages(required(obj, "", "languages")?, "languages")?;
    let title = parse_localized(required(obj, "", "title")?, "title", &languages)?;
    let sections_v = as_array(required(obj, "", "sections")?, "sections")?;
    if sections_v.is_empty() {
        return Err(TemplateError::new(
            "sections",
            R::Empty,
            "must not be empty",
        ));
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
            R::DuplicateId { id: id.clone() },
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
        return Err(TemplateError::new(qpath, R::Empty, "must not be empty"));
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
            R::DuplicateId { id: id.clone() },
            format!("duplicate question id {id:?}"),
        ));
    }
    let type_path = join(path, "type");
    let type_s = as_str(required(obj, path, "type")?, &type_path)?;
    let kind = QuestionType::parse(type_s).ok_or_else(|| {
        TemplateError::new(
            &type_path,
            R::UnknownQuestionType {
                name: type_s.to_string(),
            },
            format!("unknown question type {type_s:?}"),
        )
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
            R::WhyWeAskRequired,
            "required when sensitive is true",
        ));
    }
    let required_flag = optional_bool(obj, path, "required")?;
    if kind == QuestionType::Consent && !required_flag {
        return Err(TemplateError::new(
            join(path, "required"),
            R::ConsentNotRequired,
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
                R::ScopeRequired,
                "required for consent questions",
            ))
        }
        (None, _) => None,
        (Some(_), k) if k != QuestionType::Consent => {
            return Err(TemplateError::new(
                scope_path,
                R::ScopeNotAllowed,
                "only allowed for consent questions",
            ))
        }
        (Some(s), _) => {
            let s = as_str(s, &scope_path)?;
            let scope = ConsentScope::parse(s).ok_or_else(|| {
                TemplateError::new(
                    &scope_path,
                    R::UnknownScope {
                        name: s.to_string(),
                    },
                    format!("unknown consent scope {s:?}"),
                )
            })?;
            if let Some(other) = ctx.scopes.get(&scope) {
                return Err(TemplateError::new(
                    scope_path,
                    R::ScopeAlreadyAsked {
                        scope,
                        question: other.clone(),
                    },
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
                R::ChoicesRequired {
                    question_type: kind,
                },
                format!("required for {kind} questions"),
            ));
        }
        return Ok(Vec::new());
    };
    if !kind.has_choices() {
        return Err(TemplateError::new(
            cpath,
            R::ChoicesNotAllowed {
                question_type: kind,
            },
            format!("not allowed for {kind} questions (only single_choice and multiple_choice)"),
        ));
    }
    let arr = as_array(v, &cpath)?;
    if arr.is_empty() {
        return Err(TemplateError::new(cpath, R::Empty, "must not be empty"));
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
                R::DuplicateId { id: id.clone() },
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
        let err = if KNOWN.contains(&k.as_str()) {
            TemplateError::new(
                join(&cpath, k),
                R::ConstraintNotAllowed {
                    question_type: kind,
                },
                format!("not a constraint for {kind} questions"),
            )
        } else {
            TemplateError::new(join(&cpath, k), R::UnknownConstraint, "unknown constraint")
        };
        return Err(err);
    }
    let field = |name: &str| o.get(name).map(|v| (v, join(&cpath, name)));
    let order_err = |lo: &str, hi: &str| {
        TemplateError::new(
            &cpath,
            R::MinAboveMax,
            format!("{lo} must not be greater than {hi}"),
        )
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
                    R::LimitBelowOne,
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
                    .ok_or_else(|| expected_only(p, JsonType::Integer, "expected an integer"))
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
                    .ok_or_else(|| expected_only(p, JsonType::Number, "expected a number"))
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
                        R::InvalidDate {
                            value: s.to_string(),
                        },
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
                        return Err(TemplateError::new(
                            join(&cpath, name),
                            R::LimitBelowOne,
                            "must be at least 1",
                        ))
                    }
                    Some(x) if x > n => {
                        return Err(TemplateError::new(
                            join(&cpath, name),
                            R::MoreThanChoices { choices: n },
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
                        R::UnsupportedLocationLevel {
                            level: s.to_string(),
                        },
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
