//! Records and enums that mirror the core's types, and the conversions between them.
//!
//! Only types that need a twin are mirrored (types that cross as they are live in
//! `remote.rs`): the core's versions carry survivor data whose `Debug` must be redacted on
//! both sides, serde attributes, sets, newtypes (`CaseCode`, `RecordId`, `Hlc`) and private
//! fields that uniffi cannot and should not see; these mirrors are plain data. Conversions are
//! total and lossless for what a shell needs (ids become 32-hex-digit strings, HLCs become their
//! millisecond part). Types holding survivor data redact their `Debug`, like the core's.

use std::collections::HashMap;
use std::fmt;

use amanat_core::forms as core_forms;
use amanat_core::records::cases as core_cases;
use amanat_core::records::consent as core_consent;
use amanat_core::records::interviews as core_interviews;

use crate::remote::{ConsentScope, InterviewStatus, LocationLevel, QuestionType};

/// A mutable case field with the time of its last change. `Debug` redacts the value.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct CaseField {
    /// The value (survivor data).
    pub value: String,
    /// When it was last set (ms since epoch, from the field's hybrid logical clock).
    pub updated_at_ms: u64,
}

impl fmt::Debug for CaseField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseField(<redacted>, {})", self.updated_at_ms)
    }
}

fn fields(
    map: std::collections::BTreeMap<String, core_cases::Field>,
) -> HashMap<String, CaseField> {
    // A cleared field (a tombstone kept for merging) is not shown.
    map.into_iter()
        .filter(|(_, f)| !f.cleared)
        .map(|(k, f)| {
            (
                k,
                CaseField {
                    value: f.value,
                    updated_at_ms: f.hlc.ms,
                },
            )
        })
        .collect()
}

/// A case: one per survivor, known by its pseudonymous code.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Case {
    /// Record id (32 hex digits); pass it to the other case, consent and interview calls.
    pub id: String,
    /// The pseudonymous code, `XXXX-XXXX`, to read out or write down instead of a name.
    pub code: String,
    /// When it was created (ms since epoch).
    pub created_at_ms: u64,
    /// Narrative/case-management fields (status, district, notes …).
    pub fields: HashMap<String, CaseField>,
    /// Consent was withdrawn: sync and HQ must act on it.
    pub withdrawal_pending: bool,
}

impl From<core_cases::Case> for Case {
    fn from(c: core_cases::Case) -> Self {
        Self {
            id: c.id.to_string(),
            code: c.code.as_str().to_string(),
            created_at_ms: c.created.ms,
            fields: fields(c.fields),
            withdrawal_pending: c.withdrawal_pending,
        }
    }
}

/// Identity fields of a case (name, phone …), kept apart from the narrative so exports can omit
/// them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CaseIdentity {
    /// Fields by name.
    pub fields: HashMap<String, CaseField>,
}

impl From<core_cases::CaseIdentity> for CaseIdentity {
    fn from(c: core_cases::CaseIdentity) -> Self {
        Self {
            fields: fields(c.fields),
        }
    }
}

/// One consent version of a case.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Consent {
    /// The case id.
    pub case_id: String,
    /// 1, 2, 3 … per case.
    pub version: u32,
    /// When it was recorded (ms since epoch).
    pub recorded_at_ms: u64,
    /// Who recorded it (the field worker's id, not the survivor).
    pub recorded_by: String,
    /// Language the consent was explained in (`ru`, `uz`, `en` …).
    pub language: String,
    /// Scopes granted in this version.
    pub scopes: Vec<ConsentScope>,
    /// Scopes granted before and withdrawn by this version.
    pub withdrawn: Vec<ConsentScope>,
}

impl From<core_consent::Consent> for Consent {
    fn from(c: core_consent::Consent) -> Self {
        Self {
            case_id: c.case_id,
            version: c.version,
            recorded_at_ms: c.recorded_at_ms,
            recorded_by: c.recorded_by,
            language: c.language,
            scopes: c.scopes.into_iter().collect(),
            withdrawn: c.withdrawn.into_iter().collect(),
        }
    }
}

/// One answer, typed: the variant must match the question's [`QuestionType`].
///
/// `Debug` is redacted: answers are survivor data.
#[derive(Clone, PartialEq, uniffi::Enum)]
pub enum AnswerValue {
    /// Answer to `text` and `long_text` questions.
    Text {
        /// The text.
        value: String,
    },
    /// Answer to `integer` questions.
    Integer {
        /// The number.
        value: i64,
    },
    /// Answer to `decimal` questions; must be finite.
    Decimal {
        /// The number.
        value: f64,
    },
    /// Answer to `date` questions, `YYYY-MM-DD`.
    Date {
        /// The date.
        value: String,
    },
    /// Answer to `single_choice` questions: the choice id.
    Choice {
        /// The choice id (never the label).
        value: String,
    },
    /// Answer to `multiple_choice` questions: the selected choice ids.
    Choices {
        /// The choice ids.
        values: Vec<String>,
    },
    /// Answer to `yes_no` questions.
    YesNo {
        /// Yes (`true`) or no.
        value: bool,
    },
    /// Answer to `consent` questions (filled by the core from the consent record; a shell
    /// never sends one).
    Consent {
        /// Granted or not.
        value: bool,
    },
    /// Answer to `audio` / `photo` questions: a reference to the encrypted media.
    Attachment {
        /// Attachment id.
        id: String,
        /// SHA-256 of the content, 64 lowercase hex characters.
        sha256: String,
        /// MIME type, `audio/...` or `image/...`.
        media_type: String,
    },
    /// Answer to `location` questions: a coarse place, never coordinates.
    Location {
        /// District (or comparable area) name.
        district: String,
    },
}

impl fmt::Debug for AnswerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnswerValue(<redacted>)")
    }
}

impl From<core_forms::AnswerValue> for AnswerValue {
    fn from(v: core_forms::AnswerValue) -> Self {
        use core_forms::AnswerValue as A;
        match v {
            A::Text(value) => Self::Text { value },
            A::Integer(value) => Self::Integer { value },
            A::Decimal(value) => Self::Decimal { value },
            A::Date(value) => Self::Date { value },
            A::Choice(value) => Self::Choice { value },
            A::Choices(values) => Self::Choices { values },
            A::YesNo(value) => Self::YesNo { value },
            A::Consent(value) => Self::Consent { value },
            A::Attachment {
                id,
                sha256,
                media_type,
            } => Self::Attachment {
                id,
                sha256,
                media_type,
            },
            A::Location { district } => Self::Location { district },
        }
    }
}

impl From<AnswerValue> for core_forms::AnswerValue {
    fn from(v: AnswerValue) -> Self {
        use core_forms::AnswerValue as A;
        match v {
            AnswerValue::Text { value } => A::Text(value),
            AnswerValue::Integer { value } => A::Integer(value),
            AnswerValue::Decimal { value } => A::Decimal(value),
            AnswerValue::Date { value } => A::Date(value),
            AnswerValue::Choice { value } => A::Choice(value),
            AnswerValue::Choices { values } => A::Choices(values),
            AnswerValue::YesNo { value } => A::YesNo(value),
            AnswerValue::Consent { value } => A::Consent(value),
            AnswerValue::Attachment {
                id,
                sha256,
                media_type,
            } => A::Attachment {
                id,
                sha256,
                media_type,
            },
            AnswerValue::Location { district } => A::Location { district },
        }
    }
}

/// Converts a shell's answer map into the core's `Answers`.
pub(crate) fn answers_from(map: HashMap<String, AnswerValue>) -> core_forms::Answers {
    map.into_iter().map(|(k, v)| (k, v.into())).collect()
}

/// Converts the core's `Answers` into the map a shell receives.
pub(crate) fn answers_to(answers: core_forms::Answers) -> HashMap<String, AnswerValue> {
    answers
        .into_inner()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect()
}

/// An interview version. `Debug` redacts the answers.
#[derive(Clone, PartialEq, uniffi::Record)]
pub struct Interview {
    /// Record id (32 hex digits).
    pub id: String,
    /// The case id.
    pub case_id: String,
    /// Template id.
    pub template_id: String,
    /// Template version.
    pub template_version: u32,
    /// Interview language (one of the template's).
    pub language: String,
    /// Draft or submitted.
    pub status: InterviewStatus,
    /// Answers by question id (hidden questions' answers are never kept).
    pub answers: HashMap<String, AnswerValue>,
    /// 0 for the original, n for the n-th amendment.
    pub amendment: u32,
    /// Id of the version this one amends.
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

impl fmt::Debug for Interview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interview")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("amendment", &self.amendment)
            .field(
                "answers",
                &format_args!("<redacted: {}>", self.answers.len()),
            )
            .finish_non_exhaustive()
    }
}

impl From<core_interviews::Interview> for Interview {
    fn from(i: core_interviews::Interview) -> Self {
        Self {
            id: i.id,
            case_id: i.case_id,
            template_id: i.template_id,
            template_version: i.template_version,
            language: i.language,
            status: i.status,
            answers: answers_to(i.answers),
            amendment: i.amendment,
            amends: i.amends,
            prev_hash: i.prev_hash,
            hash: i.hash,
            started_at_ms: i.started_at_ms,
            submitted_at_ms: i.submitted_at_ms,
        }
    }
}

/// A template's identity, as returned by installing or checking one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TemplateRef {
    /// Template id.
    pub id: String,
    /// Template version.
    pub version: u32,
}

/// Limits on an answer, so a shell can give immediate feedback (the core still validates).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Constraints {
    /// No limits (named so because `None` clashes with Swift's `Optional.none`).
    Unconstrained,
    /// Length limits in characters for text answers.
    Length {
        /// Minimum number of characters.
        min_length: Option<u64>,
        /// Maximum number of characters.
        max_length: Option<u64>,
    },
    /// Inclusive range for integer answers.
    IntegerRange {
        /// Smallest allowed value.
        min: Option<i64>,
        /// Largest allowed value.
        max: Option<i64>,
    },
    /// Inclusive range for decimal answers.
    DecimalRange {
        /// Smallest allowed value.
        min: Option<f64>,
        /// Largest allowed value.
        max: Option<f64>,
    },
    /// Inclusive date range, `YYYY-MM-DD`.
    DateRange {
        /// Earliest allowed date.
        min: Option<String>,
        /// Latest allowed date.
        max: Option<String>,
    },
    /// How many choices a multiple-choice answer may select.
    ChoiceCount {
        /// Fewest selected choices.
        min_choices: Option<u64>,
        /// Most selected choices.
        max_choices: Option<u64>,
    },
    /// Granularity of a location question.
    Location {
        /// Always `District` today.
        level: LocationLevel,
    },
}

impl From<core_forms::Constraints> for Constraints {
    fn from(c: core_forms::Constraints) -> Self {
        use core_forms::Constraints as C;
        match c {
            C::None => Self::Unconstrained,
            C::Length {
                min_length,
                max_length,
            } => Self::Length {
                min_length,
                max_length,
            },
            C::Integer { min, max } => Self::IntegerRange { min, max },
            C::Decimal { min, max } => Self::DecimalRange { min, max },
            C::Date { min, max } => Self::DateRange { min, max },
            C::ChoiceCount {
                min_choices,
                max_choices,
            } => Self::ChoiceCount {
                min_choices,
                max_choices,
            },
            C::Location { level } => Self::Location { level },
        }
    }
}

/// A choice in one language: show the label, send back the id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LocalizedChoice {
    /// Choice id, what the shell sends back.
    pub id: String,
    /// Text shown in the chosen language.
    pub label: String,
}

/// A question in one language, with what a shell needs to draw it and explain why it is asked.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LocalizedQuestion {
    /// Question id, the key of its answer.
    pub id: String,
    /// Answer type (decides the widget and the [`AnswerValue`] variant).
    pub question_type: QuestionType,
    /// Question text.
    pub label: String,
    /// Optional guidance so questions are asked consistently.
    pub hint: Option<String>,
    /// Why the question is asked (always set for sensitive questions).
    pub why_we_ask: Option<String>,
    /// Handle with extra care (e.g. show `why_we_ask` first).
    pub sensitive: bool,
    /// A submission must answer it when it is visible.
    pub required: bool,
    /// Options of choice questions.
    pub choices: Vec<LocalizedChoice>,
    /// Limits for immediate feedback.
    pub constraints: Constraints,
    /// Consent scope of a consent question.
    pub scope: Option<ConsentScope>,
}

/// A section in one language (a page or group of questions).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LocalizedSection {
    /// Section id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Optional introduction to read before the questions.
    pub description: Option<String>,
    /// The section holds identifying data (shells may show a notice).
    pub identity: bool,
    /// Questions in display order; filter with `visible_questions`.
    pub questions: Vec<LocalizedQuestion>,
}

/// A template rendered in one language, so shells never handle translation maps.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LocalizedTemplate {
    /// Template id.
    pub id: String,
    /// Template version.
    pub version: u32,
    /// Language of every text.
    pub language: String,
    /// Title.
    pub title: String,
    /// Sections in display order.
    pub sections: Vec<LocalizedSection>,
}

impl From<core_forms::LocalizedTemplate> for LocalizedTemplate {
    fn from(t: core_forms::LocalizedTemplate) -> Self {
        Self {
            id: t.id,
            version: t.version,
            language: t.language,
            title: t.title,
            sections: t
                .sections
                .into_iter()
                .map(|s| LocalizedSection {
                    id: s.id,
                    title: s.title,
                    description: s.description,
                    identity: s.identity,
                    questions: s
                        .questions
                        .into_iter()
                        .map(|q| LocalizedQuestion {
                            id: q.id,
                            question_type: q.kind,
                            label: q.label,
                            hint: q.hint,
                            why_we_ask: q.why_we_ask,
                            sensitive: q.sensitive,
                            required: q.required,
                            choices: q
                                .choices
                                .into_iter()
                                .map(|c| LocalizedChoice {
                                    id: c.id,
                                    label: c.label,
                                })
                                .collect(),
                            constraints: q.constraints.into(),
                            scope: q.scope,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn answer_values_round_trip_through_the_core_type() {
        let all = vec![
            AnswerValue::Text { value: "t".into() },
            AnswerValue::Integer { value: -5 },
            AnswerValue::Decimal { value: 2.5 },
            AnswerValue::Date {
                value: "2024-02-29".into(),
            },
            AnswerValue::Choice { value: "a".into() },
            AnswerValue::Choices {
                values: vec!["a".into(), "b".into()],
            },
            AnswerValue::YesNo { value: true },
            AnswerValue::Consent { value: false },
            AnswerValue::Attachment {
                id: "x".into(),
                sha256: "ab".repeat(32),
                media_type: "audio/ogg".into(),
            },
            AnswerValue::Location {
                district: "Chilonzor".into(),
            },
        ];
        for v in all {
            let core: core_forms::AnswerValue = v.clone().into();
            assert_eq!(AnswerValue::from(core), v);
        }
        assert_eq!(
            format!(
                "{:?}",
                AnswerValue::Text {
                    value: "SECRET".into()
                }
            ),
            "AnswerValue(<redacted>)"
        );
    }

    #[test]
    fn localized_default_template_converts() {
        let t = core_forms::default_template().unwrap();
        let l: LocalizedTemplate = t.localized("ru").unwrap().into();
        assert_eq!(l.id, "trafficking_screening");
        assert_eq!(l.language, "ru");
        let q = l
            .sections
            .iter()
            .flat_map(|s| s.questions.iter())
            .find(|q| q.id == "hours_per_day")
            .unwrap();
        assert_eq!(q.question_type, QuestionType::Integer);
        assert!(matches!(
            q.constraints,
            Constraints::IntegerRange {
                min: Some(0),
                max: Some(24)
            }
        ));
    }
}
