//! `amanat verify DIR`: re-checks an export from its files alone — no vault, no key — and says
//! what each interview rests on, in a report a lawyer can read.
//!
//! Checked, each failure a [`Finding`] naming the file or item:
//! * the manifest: the organisation's fingerprint matches its keys (and the expected
//!   organisation, when given), the installation's certificate is that organisation's signature,
//!   the manifest is signed by the certified key;
//! * every file: listed, present, and its SHA-256 as listed; no file that is not listed;
//! * every signed record: the device's Ed25519 signature and the content hash;
//! * every interview: each answer equals the signed one, none added or removed (beyond identity
//!   answers a de-identified export declares), the version's own hash, the amendment chain (each
//!   amended version present, its hash the one the amendment names, numbers in order, no version
//!   amended twice);
//! * every attachment: the decrypted file's size and SHA-256 are the signed ones, and the
//!   interview's answer names that same hash.

use super::format::*;
use crate::forms::AnswerValue;
use crate::records::interviews::{self, Interview};
use crate::sync::envelope::{self, SignedRecord};
use crate::sync::media::AttachmentMeta;
use amanat_protocol::OrgPublic;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Why an export could not be read as one at all (a readable export with failures gives a
/// report with findings instead).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No readable `manifest.json` of a known format.
    #[error("not an Amanat export (no readable manifest.json)")]
    NotAnExport,
    /// The directory could not be read.
    #[error("cannot read the export: {0:?}")]
    Io(std::io::ErrorKind),
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What failed: a file path or `manifest`.
    pub item: String,
    /// Why, in words.
    pub reason: String,
}

/// What one interview version rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterviewCustody {
    /// Interview version id.
    pub interview_id: String,
    /// Case code.
    pub case_code: String,
    /// The device that signed it.
    pub device: String,
    /// The worker who recorded the consent in force.
    pub worker: Option<String>,
    /// Template id and version.
    pub template: String,
    /// Language.
    pub language: String,
    /// Started and submitted (ms since the epoch, device clock).
    pub started_at_ms: u64,
    /// Submitted (ms since the epoch, device clock).
    pub submitted_at_ms: Option<u64>,
    /// 0 for the original, n for the n-th amendment.
    pub amendment: u32,
    /// The version it amends.
    pub amends: Option<String>,
    /// Questions whose answer differs from the amended version.
    pub amended_questions: Vec<String>,
    /// Attachments checked.
    pub attachments: usize,
    /// Whether every check of this version (and its files) passed.
    pub verified: bool,
}

/// The custody report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The organisation's fingerprint the export claims (and, when verified, is signed under).
    pub organisation: String,
    /// Recipient group.
    pub group: String,
    /// De-identified export.
    pub deidentified: bool,
    /// When it was exported.
    pub exported_at_ms: u64,
    /// The installation that signed it.
    pub hq_device: String,
    /// Files checked.
    pub files: usize,
    /// Interviews, in case and version order.
    pub interviews: Vec<InterviewCustody>,
    /// Every failed check; empty when the export verifies.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), VerifyError> {
    for entry in std::fs::read_dir(dir).map_err(|e| VerifyError::Io(e.kind()))? {
        let entry = entry.map_err(|e| VerifyError::Io(e.kind()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if entry.path().is_dir() {
            walk(&entry.path(), &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

struct Ctx<'a> {
    dir: &'a Path,
    listed: BTreeMap<String, String>,
    findings: Vec<Finding>,
}

impl Ctx<'_> {
    fn fail(&mut self, item: impl Into<String>, reason: impl Into<String>) {
        self.findings.push(Finding {
            item: item.into(),
            reason: reason.into(),
        });
    }

    /// A listed file's bytes (its hash is checked separately).
    fn read(&mut self, rel: &str) -> Option<Vec<u8>> {
        if !self.listed.contains_key(rel) {
            self.fail(rel, "not in the manifest");
            return None;
        }
        std::fs::read(self.dir.join(rel)).ok()
    }

    fn record(&mut self, envelope_id: &str) -> Option<SignedRecord> {
        let rel = format!("{RECORDS_DIR}/{envelope_id}.json");
        let bytes = self.read(&rel)?;
        let Ok(r) = serde_json::from_slice::<SignedRecord>(&bytes) else {
            self.fail(&rel, "not a signed record");
            return None;
        };
        if r.envelope_id != envelope_id {
            self.fail(&rel, "names another envelope");
            return None;
        }
        if let Err(e) = envelope::verify(&r) {
            self.fail(
                &rel,
                format!("the device's signature does not hold ({})", e.code()),
            );
            return None;
        }
        Some(r)
    }
}

/// Verifies the export in `dir`; `expected` is the organisation it must come from (its
/// `org.pub`), when the caller has it.
pub fn verify_export(
    dir: &Path,
    expected: Option<&OrgPublic>,
) -> Result<VerifyReport, VerifyError> {
    let manifest: Manifest = std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|m: &Manifest| m.format == FORMAT)
        .ok_or(VerifyError::NotAnExport)?;
    let mut ctx = Ctx {
        dir,
        listed: manifest
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect(),
        findings: Vec::new(),
    };
    check_manifest(&mut ctx, &manifest, expected);
    // Files: present, as listed; nothing unlisted.
    let mut present = Vec::new();
    walk(dir, "", &mut present)?;
    let present: BTreeSet<String> = present.into_iter().filter(|p| p != MANIFEST).collect();
    for (path, sha) in ctx.listed.clone() {
        match std::fs::read(dir.join(&path)) {
            Ok(bytes) if amanat_protocol::sha256_hex(&bytes) == sha => {}
            Ok(_) => ctx.fail(
                &path,
                "changed since export (SHA-256 differs from the manifest)",
            ),
            Err(_) => ctx.fail(&path, "missing"),
        }
    }
    for path in present.difference(&ctx.listed.keys().cloned().collect()) {
        ctx.fail(path, "not in the manifest");
    }
    // Interviews.
    let mut versions: BTreeMap<String, (ReadableInterview, Interview)> = BTreeMap::new();
    let interview_files: Vec<String> = present
        .iter()
        .chain(ctx.listed.keys())
        .filter(|p| p.starts_with(&format!("{INTERVIEWS_DIR}/")) && p.ends_with(".json"))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut failed_items: BTreeSet<String> = BTreeSet::new();
    for rel in &interview_files {
        let before = ctx.findings.len();
        if let Some(v) = check_interview(&mut ctx, rel) {
            if ctx.findings.len() > before {
                failed_items.insert(v.0.interview_id.clone());
            }
            versions.insert(v.0.interview_id.clone(), v);
        }
    }
    // Amendment chains.
    let mut amended_by: BTreeMap<String, String> = BTreeMap::new();
    let mut custody = Vec::new();
    for (id, (readable, signed)) in &versions {
        let mut amended_questions = Vec::new();
        if let Some(prev) = &signed.amends {
            let item = format!("{INTERVIEWS_DIR}/{id}.json");
            if let Some(other) = amended_by.insert(prev.clone(), id.clone()) {
                ctx.fail(
                    &item,
                    format!("version {prev} is amended twice (also by {other})"),
                );
                failed_items.insert(id.clone());
            }
            match versions.get(prev) {
                None => {
                    ctx.fail(&item, format!("the version it amends ({prev}) is missing"));
                    failed_items.insert(id.clone());
                }
                Some((_, p)) => {
                    if p.hash != signed.prev_hash {
                        ctx.fail(
                            &item,
                            format!("does not chain to version {prev} (hash differs)"),
                        );
                        failed_items.insert(id.clone());
                    }
                    if p.amendment + 1 != signed.amendment {
                        ctx.fail(&item, "versions out of order (amendment numbers)");
                        failed_items.insert(id.clone());
                    }
                    let keys: BTreeSet<&str> = p
                        .answers
                        .iter()
                        .map(|(k, _)| k)
                        .chain(signed.answers.iter().map(|(k, _)| k))
                        .collect();
                    for k in keys {
                        if p.answers.get(k) != signed.answers.get(k) {
                            amended_questions.push(k.to_string());
                        }
                    }
                }
            }
        }
        custody.push(InterviewCustody {
            interview_id: id.clone(),
            case_code: readable.case_code.clone(),
            device: readable.device.clone(),
            worker: readable.worker.clone(),
            template: format!("{} v{}", readable.template_id, readable.template_version),
            language: readable.language.clone(),
            started_at_ms: readable.started_at_ms,
            submitted_at_ms: readable.submitted_at_ms,
            amendment: readable.amendment,
            amends: readable.amends.clone(),
            amended_questions,
            attachments: readable.attachments.len(),
            verified: !failed_items.contains(id),
        });
    }
    // A file finding names the interview whose files it is.
    for c in &mut custody {
        let own = format!("{INTERVIEWS_DIR}/{}.json", c.interview_id);
        if ctx.findings.iter().any(|f| f.item == own) {
            c.verified = false;
        }
    }
    custody.sort_by(|a, b| {
        (&a.case_code, a.amendment, &a.interview_id).cmp(&(
            &b.case_code,
            b.amendment,
            &b.interview_id,
        ))
    });
    Ok(VerifyReport {
        organisation: manifest.organisation.fingerprint.clone(),
        group: manifest.group.clone(),
        deidentified: manifest.deidentified,
        exported_at_ms: manifest.exported_at_ms,
        hq_device: manifest.hq.device_id.clone(),
        files: ctx.listed.len(),
        interviews: custody,
        findings: ctx.findings,
    })
}

fn check_manifest(ctx: &mut Ctx<'_>, m: &Manifest, expected: Option<&OrgPublic>) {
    if m.organisation.compute_fingerprint() != m.organisation.fingerprint {
        ctx.fail(
            MANIFEST,
            "the organisation's fingerprint does not match its keys",
        );
    }
    if let Some(e) = expected {
        if e.fingerprint != m.organisation.fingerprint || *e != m.organisation {
            ctx.fail(
                MANIFEST,
                format!(
                    "signed under organisation {}, not the expected {}",
                    m.organisation.fingerprint, e.fingerprint
                ),
            );
        }
    }
    if m.hq.verify(&m.organisation).is_err() {
        ctx.fail(
            MANIFEST,
            "the installation's certificate is not the organisation's",
        );
    }
    let key = amanat_protocol::from_hex(&m.hq.signing_public_key).unwrap_or_default();
    let signed = manifest_signed_bytes(m).unwrap_or_default();
    if amanat_protocol::verify_ed25519(&key, &signed, &m.signature).is_err() {
        ctx.fail(MANIFEST, "the manifest's signature does not hold");
    }
}

fn check_interview(ctx: &mut Ctx<'_>, rel: &str) -> Option<(ReadableInterview, Interview)> {
    let bytes = ctx.read(rel)?;
    let Ok(readable) = serde_json::from_slice::<ReadableInterview>(&bytes) else {
        ctx.fail(rel, "not a readable interview");
        return None;
    };
    let record = ctx.record(&readable.record)?;
    if record.kind != "interview" {
        ctx.fail(rel, "its record is not an interview");
        return None;
    }
    let Ok(mut signed) = serde_json::from_str::<Interview>(&record.content) else {
        ctx.fail(rel, "its signed record holds no interview");
        return None;
    };
    // The version's id is the record id it was signed under (as on apply).
    signed.id = record.record_id.clone();
    // The version's own hash, over its canonical content.
    if interviews::content_hash(&signed).ok() != signed.hash {
        ctx.fail(rel, "the signed version's hash does not match its content");
    }
    let same = readable.interview_id == signed.id
        && readable.template_id == signed.template_id
        && readable.template_version == signed.template_version
        && readable.language == signed.language
        && readable.amendment == signed.amendment
        && readable.amends == signed.amends
        && readable.hash == signed.hash
        && readable.prev_hash == signed.prev_hash
        && readable.started_at_ms == signed.started_at_ms
        && readable.submitted_at_ms == signed.submitted_at_ms
        && readable.device == record.author;
    if !same {
        ctx.fail(rel, "its description differs from the signed record");
    }
    let mut shown = 0usize;
    for a in &readable.answers {
        shown += 1;
        let signed_value = signed
            .answers
            .get(&a.question)
            .and_then(|v| serde_json::to_value(v).ok());
        if signed_value.as_ref() != Some(&a.value) {
            ctx.fail(
                rel,
                format!("answer to {} differs from the signed one", a.question),
            );
        }
    }
    if shown + readable.withheld_identity_answers as usize != signed.answers.len() {
        ctx.fail(rel, "answers were removed or added");
    }
    for att in &readable.attachments {
        check_attachment(ctx, rel, &signed, att);
    }
    Some((readable, signed))
}

fn check_attachment(ctx: &mut Ctx<'_>, rel: &str, signed: &Interview, att: &ReadableAttachment) {
    let Some(meta_record) = ctx.record(&att.record) else {
        ctx.fail(
            rel,
            format!("attachment {}: its signed metadata does not hold", att.id),
        );
        return;
    };
    let Ok(meta) = serde_json::from_str::<AttachmentMeta>(&meta_record.content) else {
        ctx.fail(rel, format!("attachment {}: no signed metadata", att.id));
        return;
    };
    let answered = signed.answers.get(&att.question);
    let names_it = matches!(answered, Some(AnswerValue::Attachment { id, sha256, .. })
        if *id == meta.info.id && *sha256 == meta.info.sha256);
    if !names_it || meta.info.id != att.id {
        ctx.fail(
            rel,
            format!("attachment {}: not the one the answer names", att.id),
        );
    }
    match ctx.read(&att.file) {
        Some(bytes) => {
            if bytes.len() as u64 != meta.info.size
                || amanat_protocol::sha256_hex(&bytes) != meta.info.sha256
            {
                ctx.fail(
                    &att.file,
                    "the attachment is not the recorded one (size or SHA-256 differs from the \
                     signed metadata)",
                );
                ctx.fail(rel, format!("attachment {} does not verify", att.id));
            }
        }
        None => ctx.fail(rel, format!("attachment {} is missing", att.id)),
    }
}
