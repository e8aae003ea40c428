//! Interview forms for Amanat: templates, skip logic and answers.
//!
//! Field workers interview survivors of human trafficking offline. This
//! module keeps the interview *content* as data (a JSON template that is
//! validated completely when loaded) and keeps the *answers* safe: answer
//! values are never printed in `Debug` output or error messages, answers to
//! questions hidden by skip logic are dropped, and consent is recorded per
//! purpose.
//!
//! Typical flow for a shell:
//! 1. `let t = default_template()?;` (or `Template::from_json`)
//! 2. render `t.localized("uz")?` and show `t.visible_questions(&answers)`
//! 3. on every save: `answers = t.merge_batch(&answers, &batch)?`
//! 4. before submitting: `t.validate_submission(&answers)?`
//!
//! See `docs/FORMS.md` for the template format.

mod answers;
mod default;
mod localized;
mod logic;
mod template;

pub use answers::{
    AnswerError, AnswerReason, AnswerValue, Answers, MAX_ATTACHMENT_ID_LEN, MAX_DISTRICT_LEN,
};
pub use default::{default_template, DEFAULT_TEMPLATE_JSON};
pub use localized::{LocalizedChoice, LocalizedQuestion, LocalizedSection, LocalizedTemplate};
pub use logic::{Condition, Literal};
pub use template::{
    Choice, ConsentScope, Constraints, JsonType, LocalizedText, LocationLevel, Question,
    QuestionType, Section, Template, TemplateError, TemplateReason, MAX_ID_LEN, REQUIRED_LANGUAGES,
};
