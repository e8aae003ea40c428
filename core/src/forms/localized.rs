//! A single-language, plain-data view of a template for the shells
//! (mobile/desktop UI). Shells only render; skip logic and validation stay in
//! the core, so conditions are deliberately not included here.

use serde::Serialize;

use super::template::{
    ConsentScope, Constraints, LocalizedText, QuestionType, Template, TemplateError, TemplateReason,
};

/// A template rendered in one language, ready to be serialized to the UI
/// layer, so shells never deal with translation maps or missing languages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalizedTemplate {
    /// Template id, so the shell can send answers back tagged with it.
    pub id: String,
    /// Template version, for the same reason as `id`.
    pub version: u32,
    /// Language of all texts below, so the shell can set text direction/fonts.
    pub language: String,
    /// Template title, shown at the top of the interview.
    pub title: String,
    /// Sections in display order, one page or group each.
    pub sections: Vec<LocalizedSection>,
}

/// A section in one language, so shells can group questions into pages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalizedSection {
    /// Section id, so the shell can map visible questions to sections.
    pub id: String,
    /// Section heading, so the survivor knows what comes next.
    pub title: String,
    /// Optional introduction to read before the questions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the section holds identifying data (shells may show a notice).
    pub identity: bool,
    /// Questions in display order (use `Template::visible_questions` to filter).
    pub questions: Vec<LocalizedQuestion>,
}

/// A question in one language, with everything a shell needs to draw the
/// right widget and explain why it is asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalizedQuestion {
    /// Question id, the key the shell must use when sending the answer back.
    pub id: String,
    /// Answer type, which decides the widget and the `AnswerValue` to send.
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Question text in the chosen language.
    pub label: String,
    /// Optional guidance, shown so questions are asked consistently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Why the question is asked (always set for sensitive questions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_we_ask: Option<String>,
    /// Whether to handle with extra care (e.g. show `why_we_ask` first).
    pub sensitive: bool,
    /// Whether a submission must answer it when relevant, so the shell can
    /// mark it before the core rejects the submission.
    pub required: bool,
    /// Options for choice questions; the shell sends back the ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<LocalizedChoice>,
    /// Limits, so shells can give immediate feedback (the core still validates).
    pub constraints: Constraints,
    /// Consent scope, so the shell can explain which use is being agreed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ConsentScope>,
}

/// A choice in one language; the shell shows the label and stores the id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalizedChoice {
    /// Choice id, which is what the shell sends back (never the label).
    pub id: String,
    /// Text shown for the choice in the chosen language.
    pub label: String,
}

fn pick(t: &LocalizedText, lang: &str) -> String {
    // The loader guarantees every language is present; empty is unreachable.
    t.get(lang).unwrap_or_default().to_string()
}

impl Template {
    /// Render the template in `lang` for a shell. Errors (path `languages`)
    /// for a language the template does not have, instead of silently falling
    /// back, so a shell never shows a mix of languages to a survivor.
    pub fn localized(&self, lang: &str) -> Result<LocalizedTemplate, TemplateError> {
        if !self.languages.iter().any(|l| l == lang) {
            return Err(TemplateError::new(
                "languages",
                TemplateReason::UnsupportedLanguage {
                    language: lang.to_string(),
                    available: self.languages.clone(),
                },
                format!(
                    "unsupported language {lang:?} (available: {})",
                    self.languages.join(", ")
                ),
            ));
        }
        let sections = self
            .sections
            .iter()
            .map(|s| LocalizedSection {
                id: s.id.clone(),
                title: pick(&s.title, lang),
                description: s.description.as_ref().map(|d| pick(d, lang)),
                identity: s.identity,
                questions: s
                    .questions
                    .iter()
                    .map(|q| LocalizedQuestion {
                        id: q.id.clone(),
                        kind: q.kind,
                        label: pick(&q.label, lang),
                        hint: q.hint.as_ref().map(|h| pick(h, lang)),
                        why_we_ask: q.why_we_ask.as_ref().map(|w| pick(w, lang)),
                        sensitive: q.sensitive,
                        required: q.required,
                        choices: q
                            .choices
                            .iter()
                            .map(|c| LocalizedChoice {
                                id: c.id.clone(),
                                label: pick(&c.label, lang),
                            })
                            .collect(),
                        constraints: q.constraints.clone(),
                        scope: q.scope,
                    })
                    .collect(),
            })
            .collect();
        Ok(LocalizedTemplate {
            id: self.id.clone(),
            version: self.version,
            language: lang.to_string(),
            title: pick(&self.title, lang),
            sections,
        })
    }
}
