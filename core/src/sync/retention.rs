//! Receipts and retention (docs/SYNC.md, "Receipts and retention"): a phone that may be seized
//! should not keep testimony HQ already holds. HQ acknowledges what it received with a signed
//! [`Receipt`] (its installation key, certified by the organisation); the organisation sets how
//! long a phone keeps acknowledged records (an org-signed `retention` order, in days). After that
//! period a device deletes its copies — and only of what both hold:
//!
//! * submitted interview versions whose receipt names the exact content hash the device signed
//!   (an HQ that received another version acknowledges nothing here);
//! * a version only once every version amending it is purged too, and never while a draft amends
//!   it (an amendment in progress keeps its base);
//! * attachments answered in a purged version, when HQ acknowledged their plaintext hash and no
//!   remaining interview (draft or version) answers with them.
//!
//! Drafts, unacknowledged records, cases and consent are never purged. Each purge leaves a
//! tombstone (`sync_purged`: id, hash, when) so custody can tell purged from lost. The period
//! runs from when the receipt *arrived* on the device (its own clock), never from a time HQ
//! claims.

use super::*;
use crate::forms::AnswerValue;
use crate::names::collections::{ATTACHMENTS, INTERVIEWS, SYNC_PURGED, SYNC_RECEIPTS};
use crate::names::indexes::AMENDS;
use crate::records::attachments::AttachmentInfo;
use crate::records::interviews::{Interview, Status};
use amanat_protocol::Receipt;

/// First bytes of a receipt envelope's payload (after base64).
pub const RECEIPT_PREFIX: &[u8] = b"AMANAT-RECEIPT-V1\n";

/// The payload (base64) of an envelope carrying `receipt`.
pub fn payload(receipt: &Receipt) -> Result<String, SyncError> {
    let mut bytes = RECEIPT_PREFIX.to_vec();
    bytes.extend_from_slice(&serde_json::to_vec(receipt).map_err(|_| SyncError::Envelope)?);
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// What a device keeps of an acknowledged record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acknowledged {
    /// `interview` or `attachment`.
    pub kind: String,
    /// The hash HQ acknowledged (and the device checked).
    pub hash: String,
    /// When the receipt arrived (ms, the device's clock).
    pub received_at_ms: u64,
    /// The installation that signed it.
    pub hq_device: String,
}

/// A purged record's tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purged {
    /// `interview` or `attachment`.
    pub kind: String,
    /// Its hash (interview version hash, or attachment plaintext SHA-256).
    pub hash: Option<String>,
    /// When it was purged (ms, the device's clock).
    pub purged_at_ms: u64,
}

/// What one [`purge_due`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Interview versions purged.
    pub interviews: u64,
    /// Attachments purged (records and files).
    pub attachments: u64,
}

/// If `payload` is a receipt, records what it acknowledges inside the page's transaction: `None`
/// when it is no receipt, `Some(Ok(()))` when recorded, `Some(Err(code))` to quarantine.
pub(super) fn receive(
    tx: &mut Tx<'_>,
    state: &State,
    payload: &[u8],
) -> Result<Option<Result<(), &'static str>>, SyncError> {
    let Some(json) = payload.strip_prefix(RECEIPT_PREFIX) else {
        return Ok(None);
    };
    let Ok(receipt) = serde_json::from_slice::<Receipt>(json) else {
        return Ok(Some(Err("malformed_receipt")));
    };
    if receipt.verify(&state.org).is_err() {
        return Ok(Some(Err("bad_receipt_signature")));
    }
    if receipt.device_id != state.device_id {
        return Ok(Some(Err("receipt_for_another_device")));
    }
    let now = tx.clock().now_ms();
    for e in &receipt.entries {
        let Some(id) = RecordId::parse(&e.record_id) else {
            continue;
        };
        if tx.get(SYNC_RECEIPTS, id)?.is_some() {
            continue; // the first arrival starts the period
        }
        // Only what the device holds, exactly as HQ says it holds it.
        let matches = match e.kind.as_str() {
            "interview" => match tx.get(INTERVIEWS, id)? {
                Some(r) => envelope::content_hash(r.value.expose()) == e.hash,
                None => false,
            },
            "attachment" => tx
                .get_json::<AttachmentInfo>(ATTACHMENTS, id)?
                .is_some_and(|(info, _)| info.sha256 == e.hash),
            _ => false,
        };
        if matches {
            tx.insert_json_with_id(
                SYNC_RECEIPTS,
                id,
                &Acknowledged {
                    kind: e.kind.clone(),
                    hash: e.hash.clone(),
                    received_at_ms: now,
                    hq_device: receipt.hq.device_id.clone(),
                },
            )?;
        }
    }
    Ok(Some(Ok(())))
}

/// The retention period in force (days), from the newest `retention` order obeyed.
pub(super) fn retention_days_in(tx: &mut Tx<'_>) -> Result<Option<u64>, SyncError> {
    let mut best: Option<(u64, u64)> = None;
    for id in tx.list(SYNC_ORDERS)? {
        let o: orders::Obeyed = tx.require_json(SYNC_ORDERS, id)?.0;
        if o.order.kind != orders::KIND_RETENTION {
            continue;
        }
        if let Some(days) = orders::retention_days(&o.order.body) {
            if best.is_none_or(|(at, _)| o.order.issued_at > at) {
                best = Some((o.order.issued_at, days));
            }
        }
    }
    Ok(best.map(|(_, d)| d))
}

fn acknowledged_due(
    tx: &mut Tx<'_>,
    id: RecordId,
    hash: &str,
    cutoff_ms: u64,
) -> Result<bool, SyncError> {
    Ok(tx
        .get_json::<Acknowledged>(SYNC_RECEIPTS, id)?
        .is_some_and(|(a, _)| a.hash == hash && a.received_at_ms <= cutoff_ms))
}

/// Purges what is acknowledged and past the retention period at `now_ms` (rules: module docs).
/// Without a retention order nothing is purged. Records go in one transaction; attachment files
/// are shredded after it commits (a crash in between leaves a file without a record, which the
/// vault removes at the next unlock).
pub fn purge_due(vault: &Vault, now_ms: u64) -> Result<PurgeReport, SyncError> {
    let store = vault.store()?;
    let (report, files) = store.write(|tx| {
        let Some(days) = retention_days_in(tx)? else {
            return Ok::<_, SyncError>((PurgeReport::default(), Vec::new()));
        };
        let cutoff = now_ms.saturating_sub(days.saturating_mul(86_400_000));
        // Every interview version held, and which are due on their own.
        let mut all: BTreeMap<RecordId, Interview> = BTreeMap::new();
        for id in tx.list(INTERVIEWS)? {
            let i: Interview = tx.require_json(INTERVIEWS, id)?.0;
            all.insert(id, i);
        }
        let mut due: BTreeSet<RecordId> = BTreeSet::new();
        for (id, i) in &all {
            if i.status != Status::Submitted {
                continue;
            }
            let content = tx.require(INTERVIEWS, *id)?;
            let hash = envelope::content_hash(content.value.expose());
            if acknowledged_due(tx, *id, &hash, cutoff)? {
                due.insert(*id);
            }
        }
        // A version goes only with every version amending it (and never under a draft).
        let mut purge: BTreeSet<RecordId> = BTreeSet::new();
        loop {
            let mut grew = false;
            for id in &due {
                if purge.contains(id) {
                    continue;
                }
                let amenders = tx.find(INTERVIEWS, AMENDS, id.as_bytes())?;
                if amenders.iter().all(|a| purge.contains(a)) {
                    purge.insert(*id);
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        // Attachments still answered by what stays.
        let mut kept_refs: BTreeSet<String> = BTreeSet::new();
        let mut purged_refs: BTreeSet<String> = BTreeSet::new();
        for (id, i) in &all {
            let into = if purge.contains(id) {
                &mut purged_refs
            } else {
                &mut kept_refs
            };
            for (_, v) in i.answers.iter() {
                if let AnswerValue::Attachment { id: att, .. } = v {
                    into.insert(att.clone());
                }
            }
        }
        let mut report = PurgeReport::default();
        let mut files = Vec::new();
        for id in &purge {
            let hash = all.get(id).and_then(|i| i.hash.clone());
            tx.delete(INTERVIEWS, *id)?;
            tombstone(tx, *id, "interview", hash, now_ms)?;
            report.interviews += 1;
        }
        for att in purged_refs.difference(&kept_refs) {
            let Some(aid) = RecordId::parse(att) else {
                continue;
            };
            let Some((info, _)) = tx.get_json::<AttachmentInfo>(ATTACHMENTS, aid)? else {
                continue;
            };
            if !acknowledged_due(tx, aid, &info.sha256, cutoff)? {
                continue;
            }
            tx.delete(ATTACHMENTS, aid)?;
            tombstone(tx, aid, "attachment", Some(info.sha256.clone()), now_ms)?;
            files.push(info.id.clone());
            report.attachments += 1;
        }
        Ok((report, files))
    })?;
    for id in files {
        let path = crate::vault::layout::attachment_path(vault.dir(), &id);
        let _ = crate::fsutil::shred(&path);
    }
    Ok(report)
}

fn tombstone(
    tx: &mut Tx<'_>,
    id: RecordId,
    kind: &str,
    hash: Option<String>,
    now_ms: u64,
) -> Result<(), SyncError> {
    let t = Purged {
        kind: kind.to_string(),
        hash,
        purged_at_ms: now_ms,
    };
    if tx.get(SYNC_PURGED, id)?.is_none() {
        tx.insert_json_with_id(SYNC_PURGED, id, &t)?;
    }
    tx.delete(SYNC_RECEIPTS, id)?;
    Ok(())
}

/// Records purged so far (tombstones), by record id (hex).
pub fn purged(vault: &Vault) -> Result<Vec<(String, Purged)>, SyncError> {
    vault.store()?.read(|tx| {
        let mut out = Vec::new();
        for id in tx.list(SYNC_PURGED)? {
            out.push((
                id.to_string(),
                tx.require_json::<Purged>(SYNC_PURGED, id)?.0,
            ));
        }
        Ok(out)
    })
}

/// Records this device holds a receipt for and has not purged yet.
pub fn acknowledged(vault: &Vault) -> Result<u64, SyncError> {
    Ok(vault.store()?.read(|tx| tx.list(SYNC_RECEIPTS))?.len() as u64)
}
