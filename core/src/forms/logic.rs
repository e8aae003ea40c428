//! Skip logic: conditions are plain data (no expression language), so they
//! can be validated completely at load time and evaluated without any risk
//! of code injection or runaway evaluation.

use std::collections::BTreeMap;

use super::answers::{AnswerValue, Answers};
use super::template::{ConsentScope, Question, Template};

/// A constant in a condition, already checked against the type of the
/// question it is compared with (a choice id for choice questions, a bool for
/// yes/no and consent, ...), so evaluation never has to guess.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Choice id, text, date (`YYYY-MM-DD`) or district name.
    Str(String),
    /// Value for an integer question.
    Int(i64),
    /// Value for a decimal question.
    Num(f64),
    /// Value for a yes/no or consent question.
    Bool(bool),
}

/// A skip-logic condition. Only questions earlier in the template may be
/// referenced (checked at load time), which rules out cycles and lets
/// relevance be computed in a single pass in template order.
///
/// A condition on a question that is unanswered or not relevant is false;
/// `Not` simply negates its operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// True when every operand is true (never empty).
    All(Vec<Condition>),
    /// True when at least one operand is true (never empty).
    Any(Vec<Condition>),
    /// Negation.
    Not(Box<Condition>),
    /// The answer equals `value`; for multiple_choice, the selection contains it.
    Equals {
        /// Referenced question id.
        question: String,
        /// Value to compare with.
        value: Literal,
    },
    /// The answer (or any selected choice) is one of `values`.
    In {
        /// Referenced question id.
        question: String,
        /// Accepted values (never empty).
        values: Vec<Literal>,
    },
    /// The numeric answer is strictly greater than `value`.
    GreaterThan {
        /// Referenced question id (integer or decimal).
        question: String,
        /// Threshold.
        value: f64,
    },
    /// The numeric answer is strictly less than `value`.
    LessThan {
        /// Referenced question id (integer or decimal).
        question: String,
        /// Threshold.
        value: f64,
    },
    /// The question has an answer (and is relevant).
    Answered(String),
}

impl Condition {
    /// Evaluate against a lookup that returns an answer only for questions
    /// that are answered AND relevant. Kept public so shells/tests can
    /// evaluate a single condition with the same semantics as the core.
    pub fn evaluate<'a, F>(&self, lookup: &F) -> bool
    where
        F: Fn(&str) -> Option<&'a AnswerValue>,
    {
        match self {
            Condition::All(items) => items.iter().all(|c| c.evaluate(lookup)),
            Condition::Any(items) => items.iter().any(|c| c.evaluate(lookup)),
            Condition::Not(inner) => !inner.evaluate(lookup),
            Condition::Equals { question, value } => {
                lookup(question).is_some_and(|a| matches_literal(a, value))
            }
            Condition::In { question, values } => {
                lookup(question).is_some_and(|a| values.iter().any(|v| matches_literal(a, v)))
            }
            Condition::GreaterThan { question, value } => lookup(question)
                .and_then(numeric)
                .is_some_and(|n| n > *value),
            Condition::LessThan { question, value } => lookup(question)
                .and_then(numeric)
                .is_some_and(|n| n < *value),
            Condition::Answered(question) => lookup(question).is_some(),
        }
    }
}

fn numeric(a: &AnswerValue) -> Option<f64> {
    match a {
        AnswerValue::Integer(i) => Some(*i as f64),
        AnswerValue::Decimal(f) => Some(*f),
        _ => None,
    }
}

fn matches_literal(a: &AnswerValue, lit: &Literal) -> bool {
    match (a, lit) {
        (AnswerValue::Text(s), Literal::Str(l))
        | (AnswerValue::Choice(s), Literal::Str(l))
        | (AnswerValue::Date(s), Literal::Str(l))
        | (AnswerValue::Location { district: s }, Literal::Str(l)) => s == l,
        (AnswerValue::Choices(v), Literal::Str(l)) => v.iter().any(|s| s == l),
        (AnswerValue::Integer(i), Literal::Int(l)) => i == l,
        (AnswerValue::Integer(i), Literal::Num(l)) => (*i as f64) == *l,
        (AnswerValue::Decimal(f), Literal::Num(l)) => f == l,
        (AnswerValue::Decimal(f), Literal::Int(l)) => *f == (*l as f64),
        (AnswerValue::YesNo(b), Literal::Bool(l)) | (AnswerValue::Consent(b), Literal::Bool(l)) => {
            b == l
        }
        _ => false,
    }
}

impl Template {
    /// Relevance of every question, computed in one pass in template order
    /// (valid because conditions only look backwards).
    pub(crate) fn relevance<'t>(&'t self, answers: &Answers) -> BTreeMap<&'t str, bool> {
        let mut rel: BTreeMap<&str, bool> = BTreeMap::new();
        for section in &self.sections {
            let section_rel = {
                let lookup = |q: &str| visible_answer(&rel, answers, q);
                section
                    .relevant
                    .as_ref()
                    .is_none_or(|c| c.evaluate(&lookup))
            };
            for q in &section.questions {
                let r = section_rel && {
                    let lookup = |id: &str| visible_answer(&rel, answers, id);
                    q.relevant.as_ref().is_none_or(|c| c.evaluate(&lookup))
                };
                rel.insert(q.id.as_str(), r);
            }
        }
        rel
    }

    /// Whether question `question_id` should be shown given `answers`, so
    /// shells ask only what applies (unknown ids are never relevant).
    pub fn is_relevant(&self, question_id: &str, answers: &Answers) -> bool {
        self.relevance(answers)
            .get(question_id)
            .copied()
            .unwrap_or(false)
    }

    /// The questions to show, in order, given `answers`; this is what shells
    /// render so that skip logic lives in one place.
    pub fn visible_questions(&self, answers: &Answers) -> Vec<&Question> {
        let rel = self.relevance(answers);
        self.questions()
            .filter(|q| rel.get(q.id.as_str()).copied().unwrap_or(false))
            .collect()
    }

    /// Whether the survivor gave consent for `scope`: the scope's consent
    /// question is relevant and answered `Consent(true)`. Anything else
    /// (absent, declined, hidden, scope not asked) is "no", so data is never
    /// used without an explicit yes.
    pub fn consent_given(&self, scope: ConsentScope, answers: &Answers) -> bool {
        self.consent_question(scope).is_some_and(|q| {
            self.is_relevant(&q.id, answers)
                && matches!(answers.get(&q.id), Some(AnswerValue::Consent(true)))
        })
    }
}

fn visible_answer<'a>(
    rel: &BTreeMap<&str, bool>,
    answers: &'a Answers,
    q: &str,
) -> Option<&'a AnswerValue> {
    if rel.get(q).copied().unwrap_or(false) {
        answers.get(q)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ans(pairs: &[(&str, AnswerValue)]) -> Answers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// A template with one question of each comparable type, then a target
    /// question `t` with the given condition.
    fn tpl(cond: &str) -> Template {
        let l = r#"{"en":"x","ru":"x","uz":"x"}"#;
        let json = format!(
            r#"{{"id":"t","version":1,"languages":["en","ru","uz"],"title":{l},"sections":[{{"id":"s","title":{l},"questions":[
            {{"id":"yn","type":"yes_no","label":{l}}},
            {{"id":"n","type":"integer","label":{l}}},
            {{"id":"d","type":"decimal","label":{l}}},
            {{"id":"sc","type":"single_choice","label":{l},"choices":[{{"id":"a","label":{l}}},{{"id":"b","label":{l}}},{{"id":"c","label":{l}}}]}},
            {{"id":"mc","type":"multiple_choice","label":{l},"choices":[{{"id":"a","label":{l}}},{{"id":"b","label":{l}}},{{"id":"c","label":{l}}}]}},
            {{"id":"tx","type":"text","label":{l}}},
            {{"id":"hidden","type":"integer","label":{l},"relevant":{{"equals":{{"question":"yn","value":true}}}}}},
            {{"id":"t","type":"text","label":{l},"relevant":{cond}}}
            ]}}]}}"#
        );
        Template::from_json(&json).unwrap()
    }

    fn check(cond: &str, cases: &[(&[(&str, AnswerValue)], bool)]) {
        let t = tpl(cond);
        for (i, (pairs, want)) in cases.iter().enumerate() {
            assert_eq!(t.is_relevant("t", &ans(pairs)), *want, "case {i} of {cond}");
        }
    }

    use AnswerValue::*;

    #[test]
    fn equals_truth_table() {
        check(
            r#"{"equals":{"question":"yn","value":true}}"#,
            &[
                (&[], false),
                (&[("yn", YesNo(true))], true),
                (&[("yn", YesNo(false))], false),
                (&[("yn", Integer(1))], false), // wrong type never matches
            ],
        );
        check(
            r#"{"equals":{"question":"n","value":3}}"#,
            &[
                (&[], false),
                (&[("n", Integer(3))], true),
                (&[("n", Integer(4))], false),
            ],
        );
        check(
            r#"{"equals":{"question":"d","value":2.5}}"#,
            &[
                (&[("d", Decimal(2.5))], true),
                (&[("d", Decimal(2.4))], false),
            ],
        );
        check(
            r#"{"equals":{"question":"sc","value":"b"}}"#,
            &[
                (&[("sc", Choice("b".into()))], true),
                (&[("sc", Choice("a".into()))], false),
            ],
        );
        check(
            r#"{"equals":{"question":"tx","value":"hello"}}"#,
            &[
                (&[("tx", Text("hello".into()))], true),
                (&[("tx", Text("Hello".into()))], false),
            ],
        );
    }

    #[test]
    fn equals_on_multiple_choice_means_contains() {
        check(
            r#"{"equals":{"question":"mc","value":"b"}}"#,
            &[
                (&[], false),
                (&[("mc", Choices(vec!["b".into()]))], true),
                (&[("mc", Choices(vec!["a".into(), "b".into()]))], true),
                (&[("mc", Choices(vec!["a".into(), "c".into()]))], false),
            ],
        );
    }

    #[test]
    fn in_truth_table() {
        check(
            r#"{"in":{"question":"sc","values":["a","c"]}}"#,
            &[
                (&[], false),
                (&[("sc", Choice("a".into()))], true),
                (&[("sc", Choice("c".into()))], true),
                (&[("sc", Choice("b".into()))], false),
            ],
        );
        check(
            r#"{"in":{"question":"mc","values":["a","c"]}}"#,
            &[
                (&[("mc", Choices(vec!["b".into(), "c".into()]))], true),
                (&[("mc", Choices(vec!["b".into()]))], false),
            ],
        );
        check(
            r#"{"in":{"question":"n","values":[1,2]}}"#,
            &[(&[("n", Integer(2))], true), (&[("n", Integer(3))], false)],
        );
    }

    #[test]
    fn greater_and_less_than_truth_tables() {
        check(
            r#"{"greater_than":{"question":"n","value":10}}"#,
            &[
                (&[], false),
                (&[("n", Integer(11))], true),
                (&[("n", Integer(10))], false),
                (&[("n", Integer(-3))], false),
            ],
        );
        check(
            r#"{"less_than":{"question":"n","value":10}}"#,
            &[
                (&[], false),
                (&[("n", Integer(9))], true),
                (&[("n", Integer(10))], false),
            ],
        );
        check(
            r#"{"greater_than":{"question":"d","value":1.5}}"#,
            &[
                (&[("d", Decimal(1.6))], true),
                (&[("d", Decimal(1.5))], false),
            ],
        );
        check(
            r#"{"less_than":{"question":"d","value":1.5}}"#,
            &[
                (&[("d", Decimal(1.4))], true),
                (&[("d", Decimal(1.5))], false),
            ],
        );
    }

    #[test]
    fn answered_truth_table() {
        check(
            r#"{"answered":"tx"}"#,
            &[(&[], false), (&[("tx", Text("x".into()))], true)],
        );
    }

    #[test]
    fn not_truth_table() {
        check(
            r#"{"not":{"equals":{"question":"yn","value":true}}}"#,
            &[
                (&[], true), // unanswered: equals is false, not negates
                (&[("yn", YesNo(true))], false),
                (&[("yn", YesNo(false))], true),
            ],
        );
        check(
            r#"{"not":{"answered":"tx"}}"#,
            &[(&[], true), (&[("tx", Text("x".into()))], false)],
        );
    }

    #[test]
    fn all_and_any_truth_tables() {
        let all = r#"{"all":[{"equals":{"question":"yn","value":true}},{"greater_than":{"question":"n","value":0}}]}"#;
        let any = r#"{"any":[{"equals":{"question":"yn","value":true}},{"greater_than":{"question":"n","value":0}}]}"#;
        let cases_all: &[(&[(&str, AnswerValue)], bool)] = &[
            (&[], false),
            (&[("yn", YesNo(true))], false),
            (&[("n", Integer(1))], false),
            (&[("yn", YesNo(true)), ("n", Integer(1))], true),
            (&[("yn", YesNo(false)), ("n", Integer(1))], false),
        ];
        check(all, cases_all);
        let cases_any: &[(&[(&str, AnswerValue)], bool)] = &[
            (&[], false),
            (&[("yn", YesNo(true))], true),
            (&[("n", Integer(1))], true),
            (&[("yn", YesNo(true)), ("n", Integer(1))], true),
            (&[("yn", YesNo(false)), ("n", Integer(0))], false),
        ];
        check(any, cases_any);
    }

    #[test]
    fn nested_all_any_not() {
        // (yn = true AND NOT (sc in [a])) OR (mc contains c AND n < 5)
        let c = r#"{"any":[
            {"all":[{"equals":{"question":"yn","value":true}},{"not":{"in":{"question":"sc","values":["a"]}}}]},
            {"all":[{"equals":{"question":"mc","value":"c"}},{"less_than":{"question":"n","value":5}}]}
        ]}"#;
        check(
            c,
            &[
                (&[], false),
                (&[("yn", YesNo(true))], true),
                (&[("yn", YesNo(true)), ("sc", Choice("a".into()))], false),
                (&[("yn", YesNo(true)), ("sc", Choice("b".into()))], true),
                (
                    &[("mc", Choices(vec!["c".into()])), ("n", Integer(4))],
                    true,
                ),
                (
                    &[("mc", Choices(vec!["c".into()])), ("n", Integer(5))],
                    false,
                ),
                (&[("mc", Choices(vec!["c".into()]))], false),
            ],
        );
    }

    #[test]
    fn not_relevant_question_counts_as_unanswered() {
        // `hidden` is only relevant when yn = true; its answer is ignored otherwise.
        check(
            r#"{"answered":"hidden"}"#,
            &[
                (&[("hidden", Integer(1))], false),
                (&[("hidden", Integer(1)), ("yn", YesNo(false))], false),
                (&[("hidden", Integer(1)), ("yn", YesNo(true))], true),
            ],
        );
        check(
            r#"{"not":{"equals":{"question":"hidden","value":1}}}"#,
            &[
                (&[("hidden", Integer(1))], true),
                (&[("hidden", Integer(1)), ("yn", YesNo(true))], false),
            ],
        );
        check(
            r#"{"greater_than":{"question":"hidden","value":0}}"#,
            &[
                (&[("hidden", Integer(1))], false),
                (&[("hidden", Integer(1)), ("yn", YesNo(true))], true),
            ],
        );
    }

    #[test]
    fn unknown_question_is_never_relevant() {
        let t = tpl(r#"{"answered":"tx"}"#);
        assert!(!t.is_relevant("nope", &Answers::default()));
        assert!(t.is_relevant("yn", &Answers::default()));
    }

    #[test]
    fn visible_questions_follow_skip_logic() {
        let t = tpl(r#"{"answered":"tx"}"#);
        let ids = |a: &Answers| -> Vec<String> {
            t.visible_questions(a)
                .iter()
                .map(|q| q.id().to_string())
                .collect()
        };
        assert_eq!(ids(&Answers::default()), ["yn", "n", "d", "sc", "mc", "tx"]);
        assert_eq!(
            ids(&ans(&[("yn", YesNo(true)), ("tx", Text("x".into()))])),
            ["yn", "n", "d", "sc", "mc", "tx", "hidden", "t"]
        );
    }
}
