//! Interview templates: the model, its JSON reader and the skip-logic condition parser.
//!
//! Templates arrive as JSON written by people (and one day maybe downloaded
//! from a server), so loading is strict: the JSON is walked by hand so that
//! every error carries an exact, index-based path (`sections[2].questions[4].relevant`)
//! and exactly one root cause, checked in a fixed order.
//!
//! * [`model`]: the validated types (`Template`, `Section`, `Question` …) and their getters;
//! * `error`: [`TemplateError`], the one error of loading;
//! * `reader`: JSON → `Template`, every structural and cross-reference rule;
//! * `condition`: the skip-logic part of the reader (`relevant` objects).

mod condition;
mod error;
mod model;
mod reader;
#[cfg(test)]
mod tests;

pub use error::{JsonType, TemplateError, TemplateReason};
pub use model::{
    Choice, ConsentScope, Constraints, LocalizedText, LocationLevel, Question, QuestionType,
    Section, Template, MAX_ID_LEN, REQUIRED_LANGUAGES,
};
