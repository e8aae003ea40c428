//! Tests of the template reader and condition parser: every rule, with its exact path and reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::*;

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

/// Apply `edit` at JSON pointer `ptr` of the base template and return the error.
fn load_err(ptr: &str, edit: impl FnOnce(&mut Value)) -> TemplateError {
    let mut v = base();
    edit(v.pointer_mut(ptr).expect(ptr));
    Template::from_json(&v.to_string()).unwrap_err()
}

/// Apply `edit` at JSON pointer `ptr` of the base template and expect
/// exactly `path: detail`.
fn expect(ptr: &str, edit: impl FnOnce(&mut Value), path: &str, detail: &str) {
    let e = load_err(ptr, edit);
    assert_eq!((e.path.as_str(), e.detail.as_str()), (path, detail));
    assert_eq!(e.to_string(), format!("{path}: {detail}"));
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
    assert_eq!(e.detail, "EOF while parsing a value at line 1 column 7");
    assert_eq!(e.reason, TemplateReason::InvalidJson { line: 1, column: 7 });
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

/// The position of `r`'s variant in the list below; the exhaustive match makes a new variant
/// fail to compile here until the coverage test gets a case for it.
fn variant_index(r: &TemplateReason) -> usize {
    use TemplateReason as R;
    match r {
        R::InvalidJson { .. } => 0,
        R::WrongType { .. } => 1,
        R::UnknownField => 2,
        R::MissingField => 3,
        R::Empty => 4,
        R::InvalidId { .. } => 5,
        R::DuplicateId { .. } => 6,
        R::InvalidVersion => 7,
        R::InvalidLanguageCode { .. } => 8,
        R::DuplicateLanguage { .. } => 9,
        R::MissingLanguage { .. } => 10,
        R::MissingTranslation { .. } => 11,
        R::EmptyTranslation { .. } => 12,
        R::UndeclaredLanguage { .. } => 13,
        R::UnsupportedLanguage { .. } => 14,
        R::UnknownQuestionType { .. } => 15,
        R::WhyWeAskRequired => 16,
        R::ConsentNotRequired => 17,
        R::ScopeRequired => 18,
        R::ScopeNotAllowed => 19,
        R::UnknownScope { .. } => 20,
        R::ScopeAlreadyAsked { .. } => 21,
        R::ChoicesRequired { .. } => 22,
        R::ChoicesNotAllowed { .. } => 23,
        R::UnknownConstraint => 24,
        R::ConstraintNotAllowed { .. } => 25,
        R::MinAboveMax => 26,
        R::LimitBelowOne => 27,
        R::MoreThanChoices { .. } => 28,
        R::InvalidDate { .. } => 29,
        R::UnsupportedLocationLevel { .. } => 30,
        R::OperatorCount => 31,
        R::UnknownOperator { .. } => 32,
        R::NotNumeric { .. } => 33,
        R::SelfReference { .. } => 34,
        R::ForwardReference { .. } => 35,
        R::UnknownQuestion { .. } => 36,
        R::ValueMismatch { .. } => 37,
        R::UnknownChoice { .. } => 38,
        R::NotComparable { .. } => 39,
    }
}
const REASON_VARIANTS: usize = 40;

fn retype(kind: &'static str, field: &'static str, val: Value) -> impl FnOnce(&mut Value) {
    move |q| {
        let o = q.as_object_mut().unwrap();
        o.insert("type".into(), json!(kind));
        o.insert(field.into(), val);
    }
}

/// Every rule reports its own typed reason with the fields a translated message needs, and
/// every reason variant is produced by at least one rule.
#[test]
fn every_rule_has_a_typed_reason() {
    use QuestionType as T;
    use TemplateReason as R;
    let s = |x: &str| x.to_string();
    let cases: Vec<(TemplateError, TemplateReason)> = vec![
        (
            Template::from_json("{").unwrap_err(),
            R::InvalidJson { line: 1, column: 1 },
        ),
        (
            Template::from_json("[]").unwrap_err(),
            R::WrongType {
                expected: JsonType::Object,
            },
        ),
        (
            load_err("", set("sections", json!({}))),
            R::WrongType {
                expected: JsonType::Array,
            },
        ),
        (
            load_err(Q2, set("type", json!(5))),
            R::WrongType {
                expected: JsonType::String,
            },
        ),
        (
            load_err(Q2, set("required", json!("yes"))),
            R::WrongType {
                expected: JsonType::Boolean,
            },
        ),
        (
            load_err(Q2, set("constraints", json!({"max_length": -1}))),
            R::WrongType {
                expected: JsonType::NonNegativeInteger,
            },
        ),
        (
            load_err(Q3, set("constraints", json!({"min": 1.5}))),
            R::WrongType {
                expected: JsonType::Integer,
            },
        ),
        (
            load_err(
                Q4,
                set(
                    "relevant",
                    json!({"less_than": {"question": "q3", "value": "10"}}),
                ),
            ),
            R::WrongType {
                expected: JsonType::Number,
            },
        ),
        (load_err(Q1, set("colour", json!("red"))), R::UnknownField),
        (load_err(Q2, del("label")), R::MissingField),
        (load_err("", set("sections", json!([]))), R::Empty),
        (
            load_err("", set("id", json!("Bad Id"))),
            R::InvalidId { id: s("Bad Id") },
        ),
        (
            load_err(Q4, set("id", json!("q2"))),
            R::DuplicateId { id: s("q2") },
        ),
        (load_err("", set("version", json!(0))), R::InvalidVersion),
        (
            load_err("", set("version", json!(4_294_967_296_u64))),
            R::InvalidVersion,
        ),
        (
            load_err("", set("languages", json!(["en", "ru", "uz", "EN"]))),
            R::InvalidLanguageCode { code: s("EN") },
        ),
        (
            load_err("", set("languages", json!(["en", "ru", "uz", "en"]))),
            R::DuplicateLanguage { language: s("en") },
        ),
        (
            load_err("", set("languages", json!(["en", "ru"]))),
            R::MissingLanguage { language: s("uz") },
        ),
        (
            load_err(&format!("{Q2}/label"), del("uz")),
            R::MissingTranslation { language: s("uz") },
        ),
        (
            load_err(&format!("{Q2}/label"), set("ru", json!(" "))),
            R::EmptyTranslation { language: s("ru") },
        ),
        (
            load_err("/title", set("de", json!("Titel"))),
            R::UndeclaredLanguage { language: s("de") },
        ),
        (
            Template::from_json(&base().to_string())
                .unwrap()
                .localized("de")
                .unwrap_err(),
            R::UnsupportedLanguage {
                language: s("de"),
                available: vec![s("en"), s("ru"), s("uz")],
            },
        ),
        (
            load_err(Q2, set("type", json!("essay"))),
            R::UnknownQuestionType { name: s("essay") },
        ),
        (
            load_err(Q2, set("sensitive", json!(true))),
            R::WhyWeAskRequired,
        ),
        (
            load_err(Q0, set("required", json!(false))),
            R::ConsentNotRequired,
        ),
        (load_err(Q0, del("scope")), R::ScopeRequired),
        (
            load_err(Q2, set("scope", json!("audio"))),
            R::ScopeNotAllowed,
        ),
        (
            load_err(Q0, set("scope", json!("everything"))),
            R::UnknownScope {
                name: s("everything"),
            },
        ),
        (
            load_err(Q4, |q| {
                let o = q.as_object_mut().unwrap();
                o.insert("type".into(), json!("consent"));
                o.insert("required".into(), json!(true));
                o.insert("scope".into(), json!("interview"));
            }),
            R::ScopeAlreadyAsked {
                scope: ConsentScope::Interview,
                question: s("c"),
            },
        ),
        (
            load_err(Q1, del("choices")),
            R::ChoicesRequired {
                question_type: T::SingleChoice,
            },
        ),
        (
            load_err(Q2, set("choices", json!([{"id": "a", "label": l()}]))),
            R::ChoicesNotAllowed {
                question_type: T::Text,
            },
        ),
        (
            load_err(Q3, set("constraints", json!({"minimum": 1}))),
            R::UnknownConstraint,
        ),
        (
            load_err(Q3, set("constraints", json!({"min_length": 1}))),
            R::ConstraintNotAllowed {
                question_type: T::Integer,
            },
        ),
        (
            load_err(Q3, set("constraints", json!({"min": 5, "max": 1}))),
            R::MinAboveMax,
        ),
        (
            load_err(Q2, set("constraints", json!({"max_length": 0}))),
            R::LimitBelowOne,
        ),
        (
            load_err(
                Q1,
                retype("multiple_choice", "constraints", json!({"min_choices": 3})),
            ),
            R::MoreThanChoices { choices: 2 },
        ),
        (
            load_err(
                Q3,
                retype("date", "constraints", json!({"min": "2023-02-29"})),
            ),
            R::InvalidDate {
                value: s("2023-02-29"),
            },
        ),
        (
            load_err(
                Q3,
                retype("location", "constraints", json!({"level": "gps"})),
            ),
            R::UnsupportedLocationLevel { level: s("gps") },
        ),
        (
            load_err(
                Q4,
                set(
                    "relevant",
                    json!({"answered": "q2", "not": {"answered": "q2"}}),
                ),
            ),
            R::OperatorCount,
        ),
        (
            load_err(Q4, set("relevant", json!({"xor": []}))),
            R::UnknownOperator { name: s("xor") },
        ),
        (
            load_err(
                Q4,
                set(
                    "relevant",
                    json!({"greater_than": {"question": "q2", "value": 1}}),
                ),
            ),
            R::NotNumeric {
                question: s("q2"),
                question_type: T::Text,
            },
        ),
        (
            load_err(Q2, set("relevant", json!({"answered": "q2"}))),
            R::SelfReference { question: s("q2") },
        ),
        (
            load_err(Q2, set("relevant", json!({"answered": "q3"}))),
            R::ForwardReference { question: s("q3") },
        ),
        (
            load_err(Q4, set("relevant", json!({"answered": "q9"}))),
            R::UnknownQuestion { question: s("q9") },
        ),
        (
            load_err(
                Q4,
                set(
                    "relevant",
                    json!({"equals": {"question": "q3", "value": "5"}}),
                ),
            ),
            R::ValueMismatch {
                question: s("q3"),
                question_type: T::Integer,
            },
        ),
        (
            load_err(
                Q4,
                set(
                    "relevant",
                    json!({"in": {"question": "q1", "values": ["a", "z"]}}),
                ),
            ),
            R::UnknownChoice {
                question: s("q1"),
                choice: s("z"),
            },
        ),
        (
            {
                let mut v = base();
                v["sections"][0]["questions"][3]["type"] = json!("photo");
                v["sections"][1]["questions"][0]["relevant"] =
                    json!({"equals": {"question": "q3", "value": "x"}});
                Template::from_json(&v.to_string()).unwrap_err()
            },
            R::NotComparable {
                question: s("q3"),
                question_type: T::Photo,
            },
        ),
    ];
    let mut seen = [false; REASON_VARIANTS];
    for (e, want) in cases {
        assert_eq!(e.reason, want, "{e}");
        // The English sentence is still there, and the typed reason never replaces the path.
        assert!(!e.detail.is_empty() && !e.path.is_empty(), "{e:?}");
        seen[variant_index(&e.reason)] = true;
    }
    let missing: Vec<usize> = (0..REASON_VARIANTS).filter(|i| !seen[*i]).collect();
    assert!(missing.is_empty(), "reasons without a case: {missing:?}");
}
