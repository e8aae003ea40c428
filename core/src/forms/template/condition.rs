//! The skip-logic part of the reader: parses and checks `relevant` conditions.
//!
//! A condition may only refer to questions loaded before it (never itself, never a later one),
//! and every value it compares with is checked against the referenced question's type, so
//! evaluation (`forms::logic`) never has to guess.

use serde_json::Value;

use super::error::{JsonType, TemplateError, TemplateReason as R};
use super::model::QuestionType;
use super::reader::{
    as_array, as_object, as_str, check_fields, expected_only, index, join, required, Ctx, Target,
};
use crate::forms::answers::is_valid_date;
use crate::forms::logic::{Condition, Literal};

const OPERATORS: &str = "all, any, not, equals, in, greater_than, less_than, answered";

pub(super) fn parse_condition(
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
                R::OperatorCount,
                format!("a condition must have exactly one operator ({OPERATORS})"),
            ))
        }
    };
    let arg_path = join(path, op);
    match op.as_str() {
        "all" | "any" => {
            let arr = as_array(arg, &arg_path)?;
            if arr.is_empty() {
                return Err(TemplateError::new(arg_path, R::Empty, "must not be empty"));
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
                    R::NotNumeric {
                        question: q.to_string(),
                        question_type: target.kind,
                    },
                    format!(
                        "{op} needs an integer or decimal question, but {q:?} is {}",
                        target.kind
                    ),
                ));
            }
            let value = value.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                expected_only(
                    join(&arg_path, "value"),
                    JsonType::Number,
                    "expected a number",
                )
            })?;
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
                return Err(TemplateError::new(vpath, R::Empty, "must not be empty"));
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
            R::UnknownOperator {
                name: other.to_string(),
            },
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
            R::SelfReference {
                question: q.to_string(),
            },
            format!("question {q:?} refers to itself (cycle)"),
        ));
    }
    if let Some(t) = ctx.earlier.get(q) {
        return Ok(t);
    }
    if ctx.all_ids.contains(q) {
        Err(TemplateError::new(
            path,
            R::ForwardReference {
                question: q.to_string(),
            },
            format!("forward reference to question {q:?} (conditions may only refer to earlier questions)"),
        ))
    } else {
        Err(TemplateError::new(
            path,
            R::UnknownQuestion {
                question: q.to_string(),
            },
            format!("unknown question {q:?}"),
        ))
    }
}

fn literal_for(target: &Target, q: &str, v: &Value, path: &str) -> Result<Literal, TemplateError> {
    let kind = target.kind;
    let mismatch = |what: &str| {
        TemplateError::new(
            path,
            R::ValueMismatch {
                question: q.to_string(),
                question_type: kind,
            },
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
                    R::UnknownChoice {
                        question: q.to_string(),
                        choice: s.to_string(),
                    },
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
            R::NotComparable {
                question: q.to_string(),
                question_type: kind,
            },
            format!("values cannot be compared with {kind} question {q:?} (use answered)"),
        )),
    }
}
