//! `amanat export`: what one recipient group may read, as files a caseworker or a court can use —
//! readable interviews with question labels, a CSV summary, decrypted attachments — beside the
//! evidence each rests on (the signed records and the envelopes as delivered) and a manifest
//! signed by the installation (format: [`super::format`], docs/HQ.md).
//!
//! **What is exported for group G** — a submitted interview version is exported when (1) the
//! installation holds G's identity, (2) the envelope it arrived in opens with G's identity (the
//! device encrypted it to G: consent allowed it when it was sent), and (3) the case's current
//! consent still includes G's scope (a withdrawal is honoured for every later export; when the
//! withdrawing version was not encrypted to any group held here, its withdrawal notice decides:
//! [`scopes_now`]). Everything
//! written is decrypted from the kept originals with G's identity alone, so the export cannot
//! contain what G could not read.

use super::format::*;
use super::HqError;
use crate::forms::AnswerValue;
use crate::names::collections::{ATTACHMENTS, CASES, CONSENTS, INTERVIEWS, SYNC_APPLIED};
use crate::names::indexes::BY_CASE;
use crate::records::attachments::{AttachmentInfo, AttachmentReader};
use crate::records::cases::Case;
use crate::records::consent::{self, Consent};
use crate::records::interviews::{self, Interview, Status};
use crate::store::{RecordId, Tx};
use crate::sync::custody::AppliedRecord;
use crate::sync::envelope::{self, SignedRecord};
use crate::sync::hq as receive;
use crate::sync::media::AttachmentMeta;
use crate::vault::Vault;
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The recipient group (`caseworkers`, `legal`, `law_enforcement`, `research`).
    pub group: String,
    /// Leave out identity-section answers.
    pub deidentified: bool,
    /// Only versions submitted at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// When the export is made (ms since the epoch; the vault clock by default).
    pub now_ms: u64,
    /// Only this case (its code); every case when `None`.
    pub case_code: Option<String>,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Interview versions exported.
    pub interviews: u64,
    /// Attachments exported (decrypted).
    pub attachments: u64,
    /// Cases exported.
    pub cases: u64,
    /// Submitted versions held here but not exported: not sent to this group, consent since
    /// withdrawn, or before `since`.
    pub not_shared: u64,
}

/// Progress of a long export (a terminal draws a bar from it).
pub trait ExportProgress {
    /// `done` of `total` interview versions handled.
    fn progress(&self, done: u64, total: u64);
}

struct Writer {
    root: PathBuf,
    files: Vec<FileHash>,
}

impl Writer {
    fn has(&self, rel: &str) -> bool {
        self.files.iter().any(|f| f.path == rel)
    }

    fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<(), HqError> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HqError::Io(e.kind()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| HqError::Io(e.kind()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| HqError::Io(e.kind()))?;
        self.files.push(FileHash {
            path: rel.to_string(),
            sha256: amanat_protocol::sha256_hex(bytes),
        });
        Ok(())
    }
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/mp4" | "audio/aac" => "m4a",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        _ => "bin",
    }
}

/// The newest applied envelope of each (kind, record id).
fn applied_index(tx: &mut Tx<'_>) -> Result<HashMap<(String, String), AppliedRecord>, HqError> {
    let mut out: HashMap<(String, String), AppliedRecord> = HashMap::new();
    for id in tx.list(SYNC_APPLIED)? {
        let a: AppliedRecord = tx.require_json(SYNC_APPLIED, id)?.0;
        let key = (a.kind.clone(), a.record_id.clone());
        match out.get(&key) {
            Some(held) if held.relay_seq >= a.relay_seq => {}
            _ => {
                out.insert(key, a);
            }
        }
    }
    Ok(out)
}

/// The signed record in the original of `envelope_id`, opened with one of `identity` (the
/// group's keys: after a rotation, old and new) and verified; `None` when none opens it (not sent
/// to this group).
fn open_original(
    tx: &mut Tx<'_>,
    envelope_id: &str,
    identity: &[age::x25519::Identity],
) -> Result<Option<(SignedRecord, Vec<u8>)>, HqError> {
    let Some(original) = receive::original_in(tx, envelope_id)? else {
        return Ok(None);
    };
    let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(&original.payload) else {
        return Ok(None);
    };
    let Ok(record) = envelope::open_any(&payload, identity) else {
        return Ok(None);
    };
    if envelope::verify(&record).is_err() || record.envelope_id != envelope_id {
        return Ok(None);
    }
    Ok(Some((record, payload)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the export for `opts.group` into `out` (a new or empty directory).
pub fn export(
    vault: &Vault,
    out: &Path,
    opts: &ExportOptions,
    progress: Option<&dyn ExportProgress>,
) -> Result<ExportReport, HqError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| HqError::Io(e.kind()))?
            .next()
            .is_some()
    {
        return Err(HqError::OutputNotEmpty);
    }
    std::fs::create_dir_all(out).map_err(|e| HqError::Io(e.kind()))?;
    let store = vault.store()?;
    let keys = store.read(|tx| receive::export_keys_in(tx, &opts.group))?;
    let certificate = keys.certificate.clone().ok_or(HqError::NoCertificate)?;
    let identity = keys.identities;
    if identity.is_empty() {
        return Err(HqError::GroupNotHeld);
    }
    let scope = crate::records::attachments::GROUPS
        .iter()
        .find(|(g, _)| *g == opts.group)
        .map(|(_, s)| *s)
        .ok_or(HqError::GroupNotHeld)?;
    let mut w = Writer {
        root: out.to_path_buf(),
        files: Vec::new(),
    };
    let mut report = ExportReport::default();
    let mut summary = String::from(
        "interview_id,case_code,template,template_version,language,amendment,amends,\
         submitted_at_ms,device,worker,attachments,verified\n",
    );
    // One read transaction at a time per interview keeps memory flat on large stores.
    let ids = store.read(|tx| Ok::<_, HqError>(tx.list(INTERVIEWS)?))?;
    let applied = store.read(applied_index)?;
    let notices = store.read(notices_in)?;
    let total = ids.len() as u64;
    let mut cases_done: BTreeMap<String, ()> = BTreeMap::new();
    for (n, id) in ids.iter().enumerate() {
        if let Some(p) = progress {
            p.progress(n as u64, total);
        }
        let exported = store.read(|tx| {
            export_one(
                tx,
                vault.dir(),
                *id,
                &applied,
                &identity,
                scope,
                &notices,
                opts,
                &mut w,
                &mut summary,
                &mut cases_done,
                &mut report,
            )
        })?;
        if !exported {
            report.not_shared += 1;
        }
    }
    if let Some(p) = progress {
        p.progress(total, total);
    }
    w.put(SUMMARY, summary.as_bytes())?;
    w.files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut manifest = Manifest {
        format: FORMAT,
        organisation: keys.org,
        group: opts.group.clone(),
        deidentified: opts.deidentified,
        since_ms: opts.since_ms,
        exported_at_ms: opts.now_ms,
        hq: certificate,
        files: w.files,
        signature: String::new(),
    };
    let signed = manifest_signed_bytes(&manifest).map_err(|_| HqError::Format)?;
    manifest.signature = amanat_protocol::to_hex(keys.key.sign(&signed).as_ref());
    let json = serde_json::to_vec_pretty(&manifest).map_err(|_| HqError::Format)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out.join(MANIFEST))
        .map_err(|e| HqError::Io(e.kind()))?;
    f.write_all(&json)
        .and_then(|_| f.sync_all())
        .map_err(|e| HqError::Io(e.kind()))?;
    Ok(report)
}

/// What one recipient group may read of an interview version, and the rules that decide it.
pub(crate) struct Rules<'a> {
    /// The group's keys (after a rotation, old and new; everything is decrypted with them alone).
    pub identity: &'a [age::x25519::Identity],
    /// The consent scope that shares with the group.
    pub scope: consent::Scope,
    /// Leave out identity-section answers.
    pub deidentified: bool,
    /// Only versions submitted at or after this time.
    pub since_ms: Option<u64>,
    /// Label the answers in this language instead of the interview's (when the template has it).
    pub language: Option<&'a str>,
    /// Withdrawal notices received ([`notices_in`]).
    pub notices: &'a Notices,
}

// The rule of which scopes are in force at HQ lives with the HQ store (`sync::hq`), where the
// referral of a case needs it too.
pub(crate) use crate::sync::hq::{notices_in, Notices};
pub use crate::sync::hq::{scopes_now, Notice};

/// One interview version as a group reads it, with the evidence it rests on.
pub(crate) struct Built {
    /// What a reader sees.
    pub readable: ReadableInterview,
    /// The signed record of the version and its envelope as delivered.
    pub record: SignedRecord,
    pub payload: Vec<u8>,
    /// Each attachment's vault file id with its signed metadata record and envelope.
    pub evidence: Vec<(String, SignedRecord, Vec<u8>)>,
    /// The case and its code.
    pub case_id: RecordId,
    pub code: String,
    /// The case's consent history.
    pub history: Vec<Consent>,
    /// The version's own hash holds (the device signature was verified on opening).
    pub verified: bool,
}

/// The newest applied envelope of each (kind, record id), for [`build_in`].
pub(crate) fn applied_in(
    tx: &mut Tx<'_>,
) -> Result<HashMap<(String, String), AppliedRecord>, HqError> {
    applied_index(tx)
}

/// Builds interview `id` as the group of `rules` may read it, or `None` when the export rules
/// (submitted, since, consent now, sent to the group) leave it out. Shared by `export` and the
/// review console (`super::view`), so both show exactly the same.
pub(crate) fn build_in(
    tx: &mut Tx<'_>,
    id: RecordId,
    applied: &HashMap<(String, String), AppliedRecord>,
    rules: &Rules<'_>,
) -> Result<Option<Built>, HqError> {
    let identity = rules.identity;
    let held: Interview = tx.require_json(INTERVIEWS, id)?.0;
    if held.status != Status::Submitted {
        return Ok(None);
    }
    if rules
        .since_ms
        .is_some_and(|since| held.submitted_at_ms.unwrap_or(0) < since)
    {
        return Ok(None);
    }
    let Some(case_id) = RecordId::parse(&held.case_id) else {
        return Ok(None);
    };
    // (3) consent now, withdrawal notices included.
    let current = consent::current_in(tx, case_id)?;
    let notices = rules
        .notices
        .get(&case_id.to_string())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !scopes_now(current.as_ref(), notices).contains(&rules.scope) {
        return Ok(None);
    }
    // (2) sent to this group: the interview's own envelope opens with its identity.
    let Some(a) = applied.get(&("interview".to_string(), id.to_string())) else {
        return Ok(None);
    };
    let Some((record, payload)) = open_original(tx, &a.envelope_id, identity)? else {
        return Ok(None);
    };
    let mut interview: Interview =
        serde_json::from_str(&record.content).map_err(|_| HqError::Format)?;
    // As on apply: the version's id is the record id it was signed under.
    interview.id = record.record_id.clone();
    let Some((case, _)) = tx.get_json::<Case>(CASES, case_id)? else {
        return Ok(None);
    };
    let code = case.code.as_str().to_string();
    let template = interviews::template_in(tx, &interview.template_id, interview.template_version)
        .map_err(|_| HqError::Format)?;
    let language = match rules.language {
        Some(l) if template.languages().iter().any(|t| t == l) => l,
        _ => interview.language.as_str(),
    };
    let localized = template.localized(language).map_err(|_| HqError::Format)?;
    // Answers in template order, labelled in the interview's language.
    let mut answers = Vec::new();
    let mut withheld = 0u32;
    for section in &localized.sections {
        for q in &section.questions {
            let Some(value) = interview.answers.get(&q.id) else {
                continue;
            };
            if rules.deidentified && section.identity {
                withheld += 1;
                continue;
            }
            answers.push(ReadableAnswer {
                question: q.id.clone(),
                label: q.label.clone(),
                section: section.id.clone(),
                value: serde_json::to_value(value).map_err(|_| HqError::Format)?,
            });
        }
    }
    // Attachments answered in this version, with their signed metadata.
    let mut attachments = Vec::new();
    let mut evidence = Vec::new();
    for (question, value) in interview.answers.iter() {
        let AnswerValue::Attachment { id: att_id, .. } = value else {
            continue;
        };
        let Some(att_rid) = RecordId::parse(att_id) else {
            continue;
        };
        let Some((info, _)) = tx.get_json::<AttachmentInfo>(ATTACHMENTS, att_rid)? else {
            continue;
        };
        let Some(meta_applied) = applied.get(&("attachment".to_string(), att_rid.to_string()))
        else {
            continue;
        };
        let Some((meta_record, meta_payload)) =
            open_original(tx, &meta_applied.envelope_id, identity)?
        else {
            continue;
        };
        let meta: AttachmentMeta =
            serde_json::from_str(&meta_record.content).map_err(|_| HqError::Format)?;
        let file = format!(
            "{ATTACHMENTS_DIR}/{}.{}",
            info.id,
            extension(&meta.info.media_type)
        );
        attachments.push(ReadableAttachment {
            id: meta.info.id.clone(),
            question: question.to_string(),
            media_type: meta.info.media_type.clone(),
            size: meta.info.size,
            sha256: meta.info.sha256.clone(),
            file,
            record: meta_record.envelope_id.clone(),
        });
        evidence.push((info.id.clone(), meta_record, meta_payload));
    }
    // The consent in force at submission names the worker.
    let history = consent::history_in(tx, case_id)?;
    let worker = history
        .iter()
        .rfind(|c| c.recorded_at_ms <= interview.submitted_at_ms.unwrap_or(u64::MAX))
        .map(|c| c.recorded_by.clone());
    // Verified here: the device signature (on opening), the content hash and the version's own
    // hash (`amanat verify` re-checks all of it from the files).
    let verified = interviews::content_hash(&interview)
        .map(|h| Some(h) == interview.hash)
        .unwrap_or(false);
    let readable = ReadableInterview {
        interview_id: interview.id.clone(),
        case_code: code.clone(),
        template_id: interview.template_id.clone(),
        template_version: interview.template_version,
        language: interview.language.clone(),
        amendment: interview.amendment,
        amends: interview.amends.clone(),
        hash: interview.hash.clone(),
        prev_hash: interview.prev_hash.clone(),
        started_at_ms: interview.started_at_ms,
        submitted_at_ms: interview.submitted_at_ms,
        device: record.author.clone(),
        worker,
        hlc: record.hlc,
        record: record.envelope_id.clone(),
        answers,
        withheld_identity_answers: withheld,
        attachments,
    };
    Ok(Some(Built {
        readable,
        record,
        payload,
        evidence,
        case_id,
        code,
        history,
        verified,
    }))
}

#[allow(clippy::too_many_arguments)]
fn export_one(
    tx: &mut Tx<'_>,
    vault_dir: &Path,
    id: RecordId,
    applied: &HashMap<(String, String), AppliedRecord>,
    identity: &[age::x25519::Identity],
    scope: consent::Scope,
    notices: &Notices,
    opts: &ExportOptions,
    w: &mut Writer,
    summary: &mut String,
    cases_done: &mut BTreeMap<String, ()>,
    report: &mut ExportReport,
) -> Result<bool, HqError> {
    let rules = Rules {
        identity,
        scope,
        deidentified: opts.deidentified,
        since_ms: opts.since_ms,
        language: None,
        notices,
    };
    let Some(built) = build_in(tx, id, applied, &rules)? else {
        return Ok(false);
    };
    if opts
        .case_code
        .as_deref()
        .is_some_and(|c| c != built.code.as_str())
    {
        return Ok(false);
    }
    let Built {
        readable,
        record,
        payload,
        evidence,
        case_id,
        code,
        history,
        verified,
    } = built;
    for ((file_id, meta_record, meta_payload), att) in evidence.iter().zip(&readable.attachments) {
        // An amendment keeps its attachments: written once.
        if w.has(&att.file) {
            continue;
        }
        // Decrypt with this group's keys alone.
        let path = crate::vault::layout::attachment_path(vault_dir, file_id);
        let mut reader = AttachmentReader::open_file(&path, identity)
            .map_err(|_| HqError::AttachmentUnreadable)?;
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        reader
            .read_to_end(&mut plain)
            .map_err(|_| HqError::AttachmentUnreadable)?;
        w.put(&att.file, &plain)?;
        write_record(w, meta_record, meta_payload)?;
        report.attachments += 1;
    }
    let json = serde_json::to_vec_pretty(&readable).map_err(|_| HqError::Format)?;
    w.put(
        &format!("{INTERVIEWS_DIR}/{}.json", readable.interview_id),
        &json,
    )?;
    write_record(w, &record, &payload)?;
    if cases_done.insert(code.clone(), ()).is_none() {
        write_case(tx, w, applied, identity, (case_id, &code), &history)?;
        report.cases += 1;
    }
    summary.push_str(&format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}\n",
        csv_field(&readable.interview_id),
        csv_field(&code),
        csv_field(&readable.template_id),
        readable.template_version,
        csv_field(&readable.language),
        readable.amendment,
        csv_field(readable.amends.as_deref().unwrap_or("")),
        readable.submitted_at_ms.unwrap_or(0),
        csv_field(&record.author),
        csv_field(readable.worker.as_deref().unwrap_or("")),
        readable.attachments.len(),
        verified,
    ));
    report.interviews += 1;
    Ok(true)
}

fn write_record(w: &mut Writer, record: &SignedRecord, payload: &[u8]) -> Result<(), HqError> {
    if w.has(&format!("{RECORDS_DIR}/{}.json", record.envelope_id)) {
        return Ok(());
    }
    let json = serde_json::to_vec_pretty(record).map_err(|_| HqError::Format)?;
    w.put(&format!("{RECORDS_DIR}/{}.json", record.envelope_id), &json)?;
    w.put(
        &format!("{ORIGINALS_DIR}/{}.age", record.envelope_id),
        payload,
    )
}

fn write_case(
    tx: &mut Tx<'_>,
    w: &mut Writer,
    applied: &HashMap<(String, String), AppliedRecord>,
    identity: &[age::x25519::Identity],
    (case_id, code): (RecordId, &str),
    history: &[Consent],
) -> Result<(), HqError> {
    // Each consent version's signed record, found through the case index.
    let mut records: BTreeMap<u32, String> = BTreeMap::new();
    for rid in tx.find(CONSENTS, BY_CASE, case_id.as_bytes())? {
        let Some(a) = applied.get(&("consent".to_string(), rid.to_string())) else {
            continue;
        };
        if let Some((r, payload)) = open_original(tx, &a.envelope_id, identity)? {
            if let Ok(c) = serde_json::from_str::<Consent>(&r.content) {
                write_record(w, &r, &payload)?;
                records.insert(c.version, r.envelope_id.clone());
            }
        }
    }
    let consent = history
        .iter()
        .map(|c| ReadableConsent {
            version: c.version,
            recorded_at_ms: c.recorded_at_ms,
            recorded_by: c.recorded_by.clone(),
            scopes: c.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            withdrawn: c.withdrawn.iter().map(|s| s.as_str().to_string()).collect(),
            record: records.get(&c.version).cloned(),
        })
        .collect();
    let readable = ReadableCase {
        case_code: code.to_string(),
        consent,
    };
    let json = serde_json::to_vec_pretty(&readable).map_err(|_| HqError::Format)?;
    w.put(&format!("{CASES_DIR}/{code}.json"), &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use consent::Scope;
    use std::collections::BTreeSet;

    fn consent(version: u32, scopes: &[Scope]) -> Consent {
        Consent {
            case_id: "c".into(),
            version,
            recorded_at_ms: 0,
            recorded_by: "w".into(),
            language: "en".into(),
            scopes: scopes.iter().copied().collect(),
            withdrawn: BTreeSet::new(),
            seen: None,
        }
    }

    fn notice(version: u32, withdrawn: &[Scope], remaining: &[Scope]) -> Notice {
        (
            version,
            withdrawn.iter().copied().collect(),
            remaining.iter().copied().collect(),
        )
    }

    #[test]
    fn a_withdrawal_notice_newer_than_the_consent_held_decides() {
        let v1 = consent(1, &[Scope::Interview, Scope::ShareCaseworkers]);
        let set = |s: &[Scope]| s.iter().copied().collect::<BTreeSet<_>>();
        // No notice: the consent held.
        assert_eq!(
            scopes_now(Some(&v1), &[]),
            set(&[Scope::Interview, Scope::ShareCaseworkers])
        );
        // Version 2 withdrew caseworkers; HQ could not read version 2 itself.
        let n2 = notice(2, &[Scope::ShareCaseworkers], &[Scope::Interview]);
        assert_eq!(
            scopes_now(Some(&v1), std::slice::from_ref(&n2)),
            set(&[Scope::Interview])
        );
        // A later version HQ can read (version 3, sharing again) decides over the older notice.
        let v3 = consent(3, &[Scope::Interview, Scope::ShareCaseworkers]);
        assert!(scopes_now(Some(&v3), std::slice::from_ref(&n2)).contains(&Scope::ShareCaseworkers));
        // Of several newer notices, the newest decides.
        let n4 = notice(
            4,
            &[Scope::ShareLegal],
            &[Scope::Interview, Scope::ShareCaseworkers],
        );
        let n5 = notice(5, &[Scope::ShareCaseworkers], &[Scope::Interview]);
        assert_eq!(scopes_now(Some(&v3), &[n5, n4]), set(&[Scope::Interview]));
        // No consent held at all: only a notice can grant nothing more than it says.
        assert!(scopes_now(None, &[]).is_empty());
    }
}
