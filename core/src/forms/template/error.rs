//! The error of loading a template.

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
