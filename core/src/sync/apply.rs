//! Applying a verified record from another device (or this device's own, restored) to the store.
//!
//! Idempotent: applying the same record twice leaves the store as applying it once. Case and
//! identity fields merge per field by HLC (`cases::merge_fields`); consent versions and submitted
//! interviews are immutable and inserted once under their original record id. A record that cannot
//! be applied without breaking a rule is refused with a stable reason code (the caller quarantines
//! it); a store failure is an error (the caller's transaction, cursor included, rolls back).

use super::envelope::SignedRecord;
use crate::journal::hlc::Hlc;
use crate::journal::outbox::EntryKind;
use crate::names::indexes::{AMENDS, BY_CASE, CASE_CODE};
use crate::records::cases::{self, Case, CaseIdentity, CASES, IDENTITIES};
use crate::records::consent::{Consent, CONSENTS};
use crate::records::interviews::{self, Interview, Status, INTERVIEWS};
use crate::store::{RecordId, StoreError, Tx};

/// Outcome of one apply: `Ok(n)` applied (or already held) with `n` fields newly in a clash,
/// `Err(code)` refused.
pub(crate) type Applied = Result<u64, &'static str>;

fn parse<T: serde::de::DeserializeOwned>(content: &str) -> Result<T, &'static str> {
    serde_json::from_str(content).map_err(|_| "malformed_content")
}

/// Applies `rec` (already verified and trusted) inside the caller's transaction; `hq` when this
/// vault is an HQ installation (which also keeps the records that travel to HQ alone).
pub(crate) fn apply(tx: &mut Tx<'_>, rec: &SignedRecord, hq: bool) -> Result<Applied, StoreError> {
    let Some(kind) = EntryKind::parse(&rec.kind) else {
        return Ok(Err("unknown_kind"));
    };
    let Some(id) = RecordId::parse(&rec.record_id) else {
        return Ok(Err("malformed_content"));
    };
    Hlc::observe(tx, rec.hlc)?;
    match kind {
        EntryKind::Case => apply_case(tx, id, &rec.content),
        EntryKind::Identity => apply_identity(tx, id, &rec.content),
        EntryKind::Consent => apply_consent(tx, id, &rec.content),
        EntryKind::Interview => apply_interview(tx, id, &rec.content),
        // Routed to HQ only: HQ keeps them (`sync::hq`). A device that is handed one (a
        // re-routing relay) keeps it quarantined rather than guessing.
        EntryKind::Audit | EntryKind::Withdrawal if hq => super::hq::keep_received(tx, rec),
        EntryKind::Device if hq => super::hq::keep_profile(tx, rec),
        EntryKind::Audit | EntryKind::Withdrawal | EntryKind::Device => Ok(Err("hq_only")),
        // Handled by `sync::media::receive_meta` before apply: it needs the envelope (for a later
        // quarantine) and records a pending download, not the attachment itself.
        EntryKind::Attachment => Ok(Err("unknown_kind")),
    }
}

fn apply_case(tx: &mut Tx<'_>, id: RecordId, content: &str) -> Result<Applied, StoreError> {
    let remote: Case = match parse(content) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    match tx.get_json::<Case>(CASES, id)? {
        Some((mut local, version)) => {
            if local.code != remote.code {
                return Ok(Err("case_code_conflict"));
            }
            let clashes = cases::merge_fields(&mut local.fields, &remote.fields);
            local.withdrawal_pending |= remote.withdrawal_pending;
            tx.update_json(CASES, id, version, &local)?;
            Ok(Ok(clashes))
        }
        None => {
            let holders = tx.find(CASES, CASE_CODE, remote.code.as_str().as_bytes())?;
            if holders.iter().any(|h| *h != id) {
                return Ok(Err("case_code_conflict"));
            }
            tx.insert_json_with_id(CASES, id, &remote)?;
            tx.set_index(CASES, CASE_CODE, id, remote.code.as_str().as_bytes())?;
            Ok(Ok(clashes_in(&remote.fields)))
        }
    }
}

fn clashes_in(fields: &std::collections::BTreeMap<String, cases::Field>) -> u64 {
    fields.values().filter(|f| f.is_clash()).count() as u64
}

fn apply_identity(tx: &mut Tx<'_>, id: RecordId, content: &str) -> Result<Applied, StoreError> {
    let remote: CaseIdentity = match parse(content) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    match tx.get_json::<CaseIdentity>(IDENTITIES, id)? {
        Some((mut local, version)) => {
            let clashes = cases::merge_fields(&mut local.fields, &remote.fields);
            tx.update_json(IDENTITIES, id, version, &local)?;
            Ok(Ok(clashes))
        }
        None => {
            tx.insert_json_with_id(IDENTITIES, id, &remote)?;
            Ok(Ok(clashes_in(&remote.fields)))
        }
    }
}

fn apply_consent(tx: &mut Tx<'_>, id: RecordId, content: &str) -> Result<Applied, StoreError> {
    let remote: Consent = match parse(content) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let Some(case_id) = RecordId::parse(&remote.case_id) else {
        return Ok(Err("malformed_content"));
    };
    if let Some((local, _)) = tx.get_json::<Consent>(CONSENTS, id)? {
        // Immutable: the same version again is a duplicate; a different one is a forgery.
        return Ok(if local == remote {
            Ok(0)
        } else {
            Err("conflicting_version")
        });
    }
    tx.insert_json_with_id(CONSENTS, id, &remote)?;
    tx.set_index(CONSENTS, BY_CASE, id, case_id.as_bytes())?;
    if !remote.withdrawn.is_empty() {
        // A withdrawal wins over concurrent edits: the flag is set wherever the case is held.
        if let Some((mut case, version)) = tx.get_json::<Case>(CASES, case_id)? {
            if !case.withdrawal_pending {
                case.withdrawal_pending = true;
                tx.update_json(CASES, case_id, version, &case)?;
            }
        }
    }
    Ok(Ok(0))
}

fn apply_interview(tx: &mut Tx<'_>, id: RecordId, content: &str) -> Result<Applied, StoreError> {
    let mut remote: Interview = match parse(content) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    remote.id = id.to_string();
    if remote.status != Status::Submitted {
        return Ok(Err("draft_interview"));
    }
    if remote.hash.as_deref() != Some(interviews::content_hash(&remote)?.as_str()) {
        return Ok(Err("interview_hash_mismatch"));
    }
    let Some(case_id) = RecordId::parse(&remote.case_id) else {
        return Ok(Err("malformed_content"));
    };
    // The amendment chain: where the amended version is held, the link must match its hash.
    let amends = match &remote.amends {
        Some(hex) => match RecordId::parse(hex) {
            Some(prev_id) => {
                if let Some((prev, _)) = tx.get_json::<Interview>(INTERVIEWS, prev_id)? {
                    if prev.hash != remote.prev_hash || prev.case_id != remote.case_id {
                        return Ok(Err("chain_broken"));
                    }
                }
                Some(prev_id)
            }
            None => return Ok(Err("malformed_content")),
        },
        None => None,
    };
    if let Some((local, _)) = tx.get_json::<Interview>(INTERVIEWS, id)? {
        return Ok(if local.hash == remote.hash {
            Ok(0)
        } else {
            Err("conflicting_version")
        });
    }
    tx.insert_json_with_id(INTERVIEWS, id, &remote)?;
    tx.set_index(INTERVIEWS, BY_CASE, id, case_id.as_bytes())?;
    if let Some(prev_id) = amends {
        tx.set_index(INTERVIEWS, AMENDS, id, prev_id.as_bytes())?;
    }
    Ok(Ok(0))
}
