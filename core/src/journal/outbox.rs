//! The outbox: an ordered queue of references to changes that must travel to the relay.
//!
//! The record components (layer 5) call [`enqueue`] inside the very transaction that makes the
//! change, so a change and its outbox entry commit together or not at all: nothing is changed
//! without being queued, nothing is queued that was not changed. An entry holds only a reference
//! (kind, collection name, record id): the sync engine (`crate::sync`, layer 6) reads the record
//! when it prepares the envelope. An entry leaves the queue only through [`remove`], which the sync
//! engine calls in the transaction that persists the relay's acknowledgement; an entry the relay
//! refuses for good is marked *wedged* ([`mark_wedged`]) with a stable reason code, never dropped.
//!
//! Order: entry ids are the big-endian sequence number followed by zeros, and the store lists ids
//! in byte order, so [`entries`] returns the queue in the order changes were made. The ids reveal
//! the order and count of *pending* entries to someone who reads the database file (not what they
//! are: collection names are blind tags and values are sealed). Entries are ordinary sealed records
//! of the generic `records` table, so a store schema migration carries them like any other record.

use crate::names::collections::{OUTBOX, OUTBOX_HEAD};
use crate::store::{RecordId, StoreError, Tx};
use serde::{Deserialize, Serialize};

const HEAD_ID: RecordId = RecordId::from_bytes([0x0B; 16]);

/// What kind of change travels; decides how the sync engine packs and routes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A case: creation or a change of its narrative fields.
    Case,
    /// The identity record of a case (names, contacts): travels in its own envelope.
    Identity,
    /// A consent version (including a withdrawal).
    Consent,
    /// A submitted interview or amendment (drafts never travel).
    Interview,
    /// An audit chain entry: travels to HQ only, encrypted to the `caseworkers` group (ids and
    /// times, never survivor content), so HQ holds each device's chain of custody.
    Audit,
    /// The withdrawal notice of a consent version that withdraws scopes (the entry references the
    /// consent version): to HQ only, encrypted to every group, so the groups that lost consent
    /// learn they must act on what they already hold.
    Withdrawal,
    /// An attachment's metadata (plaintext and ciphertext SHA-256, sizes); its `.age` file
    /// travels as a blob through the relay's blob API before this entry is pushed.
    Attachment,
    /// This field device's profile (signing key, age recipient): queued once at enrollment,
    /// to HQ only, so HQ can seal case assignments to the device (`sync::orders`).
    Device,
}

impl EntryKind {
    /// Stable name (signed into every envelope; never change an existing one).
    pub fn as_str(self) -> &'static str {
        use crate::names::kinds;
        match self {
            EntryKind::Case => kinds::CASE,
            EntryKind::Identity => kinds::IDENTITY,
            EntryKind::Consent => kinds::CONSENT,
            EntryKind::Interview => kinds::INTERVIEW,
            EntryKind::Audit => kinds::AUDIT,
            EntryKind::Withdrawal => kinds::WITHDRAWAL,
            EntryKind::Attachment => kinds::ATTACHMENT,
            EntryKind::Device => kinds::DEVICE,
        }
    }

    /// Parses [`EntryKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            EntryKind::Case,
            EntryKind::Identity,
            EntryKind::Consent,
            EntryKind::Interview,
            EntryKind::Audit,
            EntryKind::Withdrawal,
            EntryKind::Attachment,
            EntryKind::Device,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One queued reference. Holds ids only, never content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the queue: 1, 2, 3 … (never reused).
    pub seq: u64,
    /// What kind of change.
    pub kind: EntryKind,
    /// Name of the collection holding the record.
    pub collection: String,
    /// The record (hex id).
    pub record: String,
    /// Set when the relay refused the entry for good: a stable reason code (e.g. the relay's
    /// `envelope_too_large`). A wedged entry stays until the shell retries or discards it.
    pub wedged: Option<String>,
}

impl Entry {
    /// The entry's own record id (sequence number, big-endian, then zeros).
    pub fn id(&self) -> RecordId {
        entry_id(self.seq)
    }
}

#[derive(Serialize, Deserialize)]
struct Head {
    next: u64,
}

/// The record id of the entry at `seq` (other collections key per-entry data by it).
pub fn entry_id(seq: u64) -> RecordId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&seq.to_be_bytes());
    RecordId::from_bytes(id)
}

/// Queues a reference to `record` of `collection`, inside the transaction that changed it.
pub fn enqueue(
    tx: &mut Tx<'_>,
    kind: EntryKind,
    collection: crate::names::Collection,
    record: RecordId,
) -> Result<Entry, StoreError> {
    let head: Option<(Head, u64)> = tx.get_json(OUTBOX_HEAD, HEAD_ID)?;
    let seq = head.as_ref().map(|(h, _)| h.next).unwrap_or(1);
    let entry = Entry {
        seq,
        kind,
        collection: collection.name().to_string(),
        record: record.to_string(),
        wedged: None,
    };
    tx.insert_json_with_id(OUTBOX, entry_id(seq), &entry)?;
    let next = Head { next: seq + 1 };
    match head {
        Some((_, version)) => {
            tx.update_json(OUTBOX_HEAD, HEAD_ID, version, &next)?;
        }
        None => tx.insert_json_with_id(OUTBOX_HEAD, HEAD_ID, &next)?,
    }
    Ok(entry)
}

/// Every queued entry (wedged ones included), oldest first, all in memory at once: for tests and
/// small queues. The sync engine walks with [`filtered`] and [`count`] instead.
pub fn entries(tx: &mut Tx<'_>) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    for id in tx.list(OUTBOX)? {
        out.push(tx.require_json::<Entry>(OUTBOX, id)?.0);
    }
    // Ids sort by sequence already; sorting again guards against a hand-edited file.
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// The queued entries `keep` accepts, oldest first, decoding one entry at a time: a sync over a
/// queue of hundreds of thousands of entries holds only their ids (16 bytes each) and what it
/// keeps, not every entry (which was most of a phone's memory during a long push).
pub fn filtered(
    tx: &mut Tx<'_>,
    mut keep: impl FnMut(&mut Tx<'_>, &Entry) -> Result<bool, StoreError>,
) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    // Ids are the big-endian sequence number: id order is queue order.
    for id in tx.list(OUTBOX)? {
        let entry = tx.require_json::<Entry>(OUTBOX, id)?.0;
        if keep(tx, &entry)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// How many entries are queued (wedged ones included), without decoding any.
pub fn count(tx: &mut Tx<'_>) -> Result<u64, StoreError> {
    Ok(tx.list(OUTBOX)?.len() as u64)
}

/// The record ids of every queued entry, oldest first: what a long queue is walked by, a window
/// at a time, without holding every entry in memory.
pub fn ids(tx: &mut Tx<'_>) -> Result<Vec<RecordId>, StoreError> {
    // Ids are the big-endian sequence number: id order is queue order.
    tx.list(OUTBOX)
}

/// The entry stored under `id` (from [`ids`]), if it is still queued.
pub fn get(tx: &mut Tx<'_>, id: RecordId) -> Result<Option<Entry>, StoreError> {
    Ok(tx.get_json::<Entry>(OUTBOX, id)?.map(|(e, _)| e))
}

/// Removes an entry (the sync engine calls this in the transaction that records the relay's ack).
/// Returns whether it was there.
pub fn remove(tx: &mut Tx<'_>, seq: u64) -> Result<bool, StoreError> {
    tx.delete(OUTBOX, entry_id(seq))
}

/// Marks an entry wedged with a stable `reason` code; it keeps its place in the queue.
pub fn mark_wedged(tx: &mut Tx<'_>, seq: u64, reason: &str) -> Result<(), StoreError> {
    let (mut entry, version): (Entry, u64) = tx.require_json(OUTBOX, entry_id(seq))?;
    entry.wedged = Some(reason.to_string());
    tx.update_json(OUTBOX, entry_id(seq), version, &entry)?;
    Ok(())
}

/// Clears the wedged mark of an entry so the next sync tries it again.
pub fn clear_wedged(tx: &mut Tx<'_>, seq: u64) -> Result<(), StoreError> {
    let (mut entry, version): (Entry, u64) = tx.require_json(OUTBOX, entry_id(seq))?;
    entry.wedged = None;
    tx.update_json(OUTBOX, entry_id(seq), version, &entry)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn entry_ids_sort_in_queue_order() {
        let ids: Vec<RecordId> = [1u64, 2, 255, 256, 70_000, u64::MAX]
            .iter()
            .map(|s| entry_id(*s))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            EntryKind::Case,
            EntryKind::Identity,
            EntryKind::Consent,
            EntryKind::Interview,
            EntryKind::Audit,
            EntryKind::Withdrawal,
            EntryKind::Attachment,
        ] {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntryKind::parse("draft"), None);
    }
}
