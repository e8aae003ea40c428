//! The export format (docs/HQ.md, "What an export holds"): the files `export` writes and
//! `verify` reads. Changing a field here changes what old exports verify as: add, never rename.

use crate::journal::hlc::Hlc;
use amanat_protocol::{HqCertificate, OrgPublic};
use serde::{Deserialize, Serialize};

/// Version of the export format.
pub const FORMAT: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The summary's file name.
pub const SUMMARY: &str = "summary.csv";
/// Readable interviews.
pub const INTERVIEWS_DIR: &str = "interviews";
/// Signed records, content included (what each check rests on).
pub const RECORDS_DIR: &str = "records";
/// Envelopes exactly as delivered (still encrypted; the evidentiary originals).
pub const ORIGINALS_DIR: &str = "originals";
/// Decrypted attachments.
pub const ATTACHMENTS_DIR: &str = "attachments";
/// Readable cases (code and consent history).
pub const CASES_DIR: &str = "cases";

/// One exported file and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    /// Path relative to the export directory, `/`-separated.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// The export's table of contents, signed by the HQ installation whose org-signed certificate
/// it carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The organisation (public keys and fingerprint).
    pub organisation: OrgPublic,
    /// The recipient group the export was made for.
    pub group: String,
    /// Whether identity questions and identity records were left out.
    pub deidentified: bool,
    /// Only interviews submitted at or after this time (ms since the epoch), if set.
    pub since_ms: Option<u64>,
    /// When the export was made (ms since the epoch).
    pub exported_at_ms: u64,
    /// The exporting installation's certificate.
    pub hq: HqCertificate,
    /// Every file but the manifest, sorted by path.
    pub files: Vec<FileHash>,
    /// Ed25519 signature by the installation (hex) over [`manifest_signed_bytes`].
    pub signature: String,
}

/// What the manifest signature covers: the domain line, then the SHA-256 of the manifest's JSON
/// with an empty signature.
pub fn manifest_signed_bytes(m: &Manifest) -> Result<Vec<u8>, serde_json::Error> {
    let mut unsigned = m.clone();
    unsigned.signature = String::new();
    let json = serde_json::to_vec(&unsigned)?;
    let mut out = format!("{}\n", amanat_protocol::names::EXPORT_V1).into_bytes();
    out.extend_from_slice(amanat_protocol::sha256_hex(&json).as_bytes());
    Ok(out)
}

/// One answer as a reader sees it. `Debug` omits the value (survivor data).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadableAnswer {
    /// Question id.
    pub question: String,
    /// The question's label in the interview's language.
    pub label: String,
    /// The section's id.
    pub section: String,
    /// The answer exactly as signed (JSON of the answer value).
    pub value: serde_json::Value,
}

impl std::fmt::Debug for ReadableAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadableAnswer")
            .field("question", &self.question)
            .field("section", &self.section)
            .field("value", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// One attachment of an exported interview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadableAttachment {
    /// Attachment id.
    pub id: String,
    /// The question it answers.
    pub question: String,
    /// MIME type.
    pub media_type: String,
    /// Size in bytes (plaintext).
    pub size: u64,
    /// SHA-256 of the plaintext, as signed.
    pub sha256: String,
    /// The decrypted file, relative path.
    pub file: String,
    /// Envelope id of its signed metadata (`records/<id>.json`).
    pub record: String,
}

/// One exported interview version. `Debug` shows the answers redacted ([`ReadableAnswer`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadableInterview {
    /// Interview id (the version's record id).
    pub interview_id: String,
    /// The case's code.
    pub case_code: String,
    /// Template id.
    pub template_id: String,
    /// Template version.
    pub template_version: u32,
    /// Language of the interview (labels are in it).
    pub language: String,
    /// 0 for the original, n for the n-th amendment.
    pub amendment: u32,
    /// The version this one amends, if any.
    pub amends: Option<String>,
    /// The version's hash (signed by the device as part of the record).
    pub hash: Option<String>,
    /// The amended version's hash.
    pub prev_hash: Option<String>,
    /// Started (ms since the epoch, device clock).
    pub started_at_ms: u64,
    /// Submitted (ms since the epoch, device clock).
    pub submitted_at_ms: Option<u64>,
    /// The device that signed it.
    pub device: String,
    /// The worker who recorded the consent in force at submission.
    pub worker: Option<String>,
    /// The device's clock when it prepared the record.
    pub hlc: Hlc,
    /// Envelope id of the signed record (`records/<id>.json`, `originals/<id>.age`).
    pub record: String,
    /// Answers, in template order.
    pub answers: Vec<ReadableAnswer>,
    /// Answers left out because their section holds identity data (`--deidentified`).
    pub withheld_identity_answers: u32,
    /// Attachments.
    pub attachments: Vec<ReadableAttachment>,
}

/// One consent version of an exported case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadableConsent {
    /// Version number.
    pub version: u32,
    /// Recorded (ms since the epoch).
    pub recorded_at_ms: u64,
    /// The worker who recorded it.
    pub recorded_by: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Scopes withdrawn by it.
    pub withdrawn: Vec<String>,
    /// Envelope id of the signed record, when HQ holds it.
    pub record: Option<String>,
}

/// An exported case: its code and consent history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadableCase {
    /// Case code.
    pub case_code: String,
    /// Consent versions, oldest first.
    pub consent: Vec<ReadableConsent>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_of_an_exported_answer_never_shows_its_value() {
        let a = ReadableAnswer {
            question: "name".into(),
            label: "Ism".into(),
            section: "person".into(),
            value: serde_json::json!({"type": "text", "value": "Гульнара"}),
        };
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("Гульнара") && !shown.contains("Ism"),
            "{shown}"
        );
        assert!(
            shown.contains("name") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
