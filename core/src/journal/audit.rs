//! The audit log: append-only, hash-chained entries for what happens to survivor data.
//!
//! Each entry holds a sequence number, a time, a kind and the id of the record concerned (never its
//! content), and the SHA-256 of the previous entry. A separate head record holds the latest
//! sequence number and hash, written in the same transaction, so removing the newest entries is
//! detected too. [`verify`] finds any edited, removed, inserted or reordered entry.

use crate::store::{RecordId, Store, StoreError, Tx};
use ring::digest;
use serde::{Deserialize, Serialize};

/// Entries of the log.
pub use crate::names::collections::AUDIT;
use crate::names::collections::AUDIT_HEAD;
const HEAD_ID: RecordId = RecordId::from_bytes([0xA0; 16]);
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// The vault was unlocked.
    Unlock,
    /// A case was created.
    CaseCreate,
    /// A case was opened for viewing.
    CaseView,
    /// Consent was recorded or changed.
    ConsentRecord,
    /// Consent was withdrawn (in whole or part).
    ConsentWithdraw,
    /// Interview answers were saved.
    AnswerSave,
    /// An interview was submitted.
    Submit,
    /// An amendment of a submitted interview was started.
    Amend,
    /// Data left the vault (export).
    Export,
    /// A wipe order was carried out (recorded by the sync engine, which reports it to HQ; a local
    /// panic wipe records nothing, since the log is destroyed with the vault).
    Wipe,
    /// An HQ operator revealed a case's identity answers in the review console.
    IdentityReveal,
    /// An HQ operator sent receipts to the devices (`hq ack`, or the review console's button).
    Acknowledge,
    /// An HQ operator resolved a clash in the review console.
    ClashResolve,
    /// An HQ operator referred a case to a device, or took it back (review console).
    CaseRefer,
}

impl AuditKind {
    /// Stable name, as hashed into the chain (never change an existing one).
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditKind::Unlock => "unlock",
            AuditKind::CaseCreate => "case_create",
            AuditKind::CaseView => "case_view",
            AuditKind::ConsentRecord => "consent_record",
            AuditKind::ConsentWithdraw => "consent_withdraw",
            AuditKind::AnswerSave => "answer_save",
            AuditKind::Submit => "submit",
            AuditKind::Amend => "amend",
            AuditKind::Export => "export",
            AuditKind::Wipe => "wipe",
            AuditKind::IdentityReveal => "identity_reveal",
            AuditKind::Acknowledge => "acknowledge",
            AuditKind::ClashResolve => "clash_resolve",
            AuditKind::CaseRefer => "case_refer",
        }
    }
}

/// One entry. Contains ids and times only, never survivor data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3 … without gaps.
    pub seq: u64,
    /// When (ms since epoch, device clock).
    pub at_ms: u64,
    /// What.
    pub kind: AuditKind,
    /// Id of the record concerned, if any.
    pub subject: Option<String>,
    /// Hash of the previous entry (all zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over this entry's other fields.
    pub hash: String,
}

#[derive(Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// Why the log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An entry's content does not match its hash.
    #[error("audit entry {seq} was altered")]
    Edited {
        /// The entry.
        seq: u64,
    },
    /// The sequence has a hole or a duplicate.
    #[error("audit entry {seq} is missing or duplicated")]
    Missing {
        /// The first sequence number that is not where it should be.
        seq: u64,
    },
    /// An entry does not link to its predecessor (moved, or the chain was rebuilt).
    #[error("audit entry {seq} does not follow its predecessor")]
    Reordered {
        /// The entry.
        seq: u64,
    },
    /// The newest entries were removed (the head record disagrees).
    #[error("the newest audit entries were removed")]
    Truncated,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// SHA-256 (hex) of one audit entry: domain label, sequence and time (big-endian), then kind,
/// subject and the previous entry's hash, each length-prefixed. Frozen by `tests/vectors.rs`.
pub fn entry_hash(
    seq: u64,
    at_ms: u64,
    kind: AuditKind,
    subject: Option<&str>,
    prev: &str,
) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(crate::names::labels::AUDIT_HASH);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&at_ms.to_be_bytes());
    for part in [kind.as_str(), subject.unwrap_or(""), prev] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    crate::fsutil::to_hex(ctx.finish().as_ref())
}

/// Appends an entry inside the caller's transaction, so the action and its audit entry commit
/// together, and queues it for HQ (outbox kind `audit`) in the same transaction: the chain of
/// custody travels with the data it describes.
pub fn append(
    tx: &mut Tx<'_>,
    kind: AuditKind,
    subject: Option<RecordId>,
) -> Result<AuditEntry, StoreError> {
    let head: Option<(Head, u64)> = tx.get_json(AUDIT_HEAD, HEAD_ID)?;
    let (seq, prev) = match &head {
        Some((h, _)) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let subject = subject.map(|id| id.to_string());
    let at_ms = tx.clock().now_ms();
    let hash = entry_hash(seq, at_ms, kind, subject.as_deref(), &prev);
    let entry = AuditEntry {
        seq,
        at_ms,
        kind,
        subject,
        prev_hash: prev,
        hash: hash.clone(),
    };
    let id = tx.insert_json(AUDIT, &entry)?;
    crate::journal::outbox::enqueue(tx, crate::journal::outbox::EntryKind::Audit, AUDIT, id)?;
    let new_head = Head { seq, hash };
    match head {
        Some((_, version)) => {
            tx.update_json(AUDIT_HEAD, HEAD_ID, version, &new_head)?;
        }
        None => tx.insert_json_with_id(AUDIT_HEAD, HEAD_ID, &new_head)?,
    }
    Ok(entry)
}

/// Appends an entry in its own transaction.
pub fn record(
    store: &Store,
    kind: AuditKind,
    subject: Option<RecordId>,
) -> Result<AuditEntry, StoreError> {
    store.write(|tx| append(tx, kind, subject))
}

/// Every entry, in sequence order.
pub fn entries(store: &Store) -> Result<Vec<AuditEntry>, StoreError> {
    store.read(entries_in)
}

/// [`entries`] inside the caller's transaction.
pub fn entries_in(tx: &mut Tx<'_>) -> Result<Vec<AuditEntry>, StoreError> {
    let mut out = Vec::new();
    for id in tx.list(AUDIT)? {
        out.push(tx.require_json::<AuditEntry>(AUDIT, id)?.0);
    }
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// Checks the whole chain; returns the number of entries on success.
pub fn verify(store: &Store) -> Result<u64, AuditError> {
    store.read(verify_in)
}

/// [`verify`] inside the caller's transaction (custody verification walks it with the others).
pub fn verify_in(tx: &mut Tx<'_>) -> Result<u64, AuditError> {
    let list = entries_in(tx)?;
    let head: Option<(Head, u64)> = tx.get_json(AUDIT_HEAD, HEAD_ID)?;
    verify_entries(&list, head.map(|(h, _)| (h.seq, h.hash)))
}

/// Checks a list of entries (sorted by `seq`) against the expected head.
pub fn verify_entries(list: &[AuditEntry], head: Option<(u64, String)>) -> Result<u64, AuditError> {
    let mut prev = GENESIS.to_string();
    for (i, e) in list.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if e.seq != expected_seq {
            return Err(AuditError::Missing { seq: expected_seq });
        }
        if entry_hash(e.seq, e.at_ms, e.kind, e.subject.as_deref(), &e.prev_hash) != e.hash {
            return Err(AuditError::Edited { seq: e.seq });
        }
        if e.prev_hash != prev {
            return Err(AuditError::Reordered { seq: e.seq });
        }
        prev = e.hash.clone();
    }
    match head {
        None if list.is_empty() => Ok(0),
        Some((seq, hash)) if seq == list.len() as u64 && hash == prev => Ok(seq),
        _ => Err(AuditError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        let kinds = [
            AuditKind::Unlock,
            AuditKind::CaseView,
            AuditKind::AnswerSave,
        ];
        (1..=n)
            .map(|seq| {
                let kind = kinds[(seq % 3) as usize];
                let subject = Some(format!("{seq:032x}"));
                let hash = entry_hash(seq, 1000 + seq, kind, subject.as_deref(), &prev);
                let e = AuditEntry {
                    seq,
                    at_ms: 1000 + seq,
                    kind,
                    subject,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn head(list: &[AuditEntry]) -> Option<(u64, String)> {
        list.last().map(|e| (e.seq, e.hash.clone()))
    }

    /// Recomputes an entry's hash after a forger changed it (keeping its prev_hash).
    fn rehash(e: &mut AuditEntry) {
        e.hash = entry_hash(e.seq, e.at_ms, e.kind, e.subject.as_deref(), &e.prev_hash);
    }

    #[test]
    fn intact_chain_verifies() {
        let list = chain(10);
        assert_eq!(verify_entries(&list, head(&list)).unwrap(), 10);
        assert_eq!(verify_entries(&[], None).unwrap(), 0);
    }

    #[test]
    fn edited_entry_detected() {
        let list = chain(10);
        let h = head(&list);
        for field in 0..3 {
            let mut bad = list.clone();
            match field {
                0 => bad[4].kind = AuditKind::Export,
                1 => bad[4].at_ms += 1,
                _ => bad[4].subject = None,
            }
            assert!(matches!(
                verify_entries(&bad, h.clone()),
                Err(AuditError::Edited { seq: 5 })
            ));
        }
        // A forger who also recomputes the edited entry's hash breaks the next link.
        let mut bad = list.clone();
        bad[4].kind = AuditKind::Export;
        rehash(&mut bad[4]);
        assert!(matches!(
            verify_entries(&bad, h),
            Err(AuditError::Reordered { seq: 6 })
        ));
    }

    #[test]
    fn removed_entries_detected() {
        let list = chain(10);
        let mut bad = list.clone();
        bad.remove(3);
        assert!(matches!(
            verify_entries(&bad, head(&list)),
            Err(AuditError::Missing { seq: 4 })
        ));
        let mut bad = list.clone();
        bad.pop();
        assert!(matches!(
            verify_entries(&bad, head(&list)),
            Err(AuditError::Truncated)
        ));
        assert!(matches!(
            verify_entries(&[], head(&list)),
            Err(AuditError::Truncated)
        ));
    }

    #[test]
    fn reordered_entries_detected() {
        let list = chain(10);
        let h = head(&list);
        // Swap two entries' positions by exchanging their sequence numbers, hashes recomputed.
        let mut bad = list.clone();
        bad.swap(2, 3);
        bad[2].seq = 3;
        bad[3].seq = 4;
        rehash(&mut bad[2]);
        rehash(&mut bad[3]);
        assert!(matches!(
            verify_entries(&bad, h.clone()),
            Err(AuditError::Reordered { seq: 3 })
        ));
        // Swapped without fixing anything: sequence out of place.
        let mut bad = list;
        bad.swap(2, 3);
        assert!(matches!(
            verify_entries(&bad, h),
            Err(AuditError::Missing { seq: 3 })
        ));
    }
}
