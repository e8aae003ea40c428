//! Chain of custody: the per-record chain rule applied on receive, and [`verify_custody_in`],
//! which walks every chain a vault holds and names the exact item that fails and why.
//!
//! **The receive rule** (docs/SYNC.md, "Chains"). Every envelope names the content hash of the
//! previous envelope of the same record from the same author (`prev_hash`). A receiver keeps, per
//! (author, kind, record), the hash of the last envelope it applied (the head), every hash it
//! applied, and the predecessors it never received (gaps). An incoming envelope whose
//! `prev_hash` …
//! * is the head (or the chain is new) → applied, it becomes the head;
//! * is unknown → applied as a **gap**: a sender's wedged entry that was discarded, or one retried
//!   after its successors, leaves exactly this; refusing it would block every later change of the
//!   record for good. The missing hash is kept, and custody reports the gap count;
//! * is missing, but the envelope's own hash is a recorded gap → applied as the **fill** (a late
//!   retry), the head stays;
//! * is absent while the chain exists, or names a hash already applied that is not the head → a
//!   **fork**: the author signed two different successors of one version (a cloned or restored
//!   device, or a stolen key). Quarantined `chain_broken`, never applied.
//!
//! **What is kept to re-check later**: each applied envelope's signed fields except the content
//! (an [`AppliedRecord`]: signature, hashes, author key, HLC, relay sequence and the link
//! outcome), under its envelope id in `sync_applied`. The signature covers only those fields and
//! the content hash, so custody re-verifies every signature without keeping a second copy of
//! survivor data.
//!
//! [`verify_custody_in`] is a pure function over a store transaction, the vault directory (for
//! attachment files) and the age identities that open them: HQ's tool reuses it with its group
//! identities.

use super::*;
use crate::forms::AnswerValue;
use crate::journal::audit::{self, AuditError};
use crate::names::collections::{ATTACHMENTS, INTERVIEWS};
use crate::records::attachments::{AttachmentInfo, AttachmentReader};
use crate::records::interviews::{self, Interview};
use std::path::Path;

/// How an applied envelope joined its chain (kept with it; custody replays the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The first envelope of the chain, naming no predecessor.
    First,
    /// Followed the head.
    Next,
    /// Named a predecessor never received (kept as a gap).
    Gap,
    /// Was itself a recorded gap (a late retry); the head did not move.
    Fill,
}

/// What a device keeps of each envelope it applied: every signed field except the content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedRecord {
    /// Signed-record format.
    pub format: u32,
    /// Envelope id (UUIDv7 text; also the key it is stored under).
    pub envelope_id: String,
    /// Record kind.
    pub kind: String,
    /// Record id (hex).
    pub record_id: String,
    /// The record's version on the author device.
    pub version: u64,
    /// The author's HLC.
    pub hlc: Hlc,
    /// Author device id.
    pub author: String,
    /// Author's Ed25519 public key, hex.
    pub author_key: String,
    /// Content hash of the author's previous envelope of the record.
    pub prev_hash: Option<String>,
    /// Content hash of the applied content.
    pub content_hash: String,
    /// The author's signature over the signed bytes.
    pub signature: String,
    /// Relay sequence number it arrived under (the order of application).
    pub relay_seq: u64,
    /// How it joined its chain.
    pub link: Link,
}

impl AppliedRecord {
    pub(super) fn new(r: &SignedRecord, relay_seq: u64, link: Link) -> Self {
        Self {
            format: r.format,
            envelope_id: r.envelope_id.clone(),
            kind: r.kind.clone(),
            record_id: r.record_id.clone(),
            version: r.version,
            hlc: r.hlc,
            author: r.author.clone(),
            author_key: r.author_key.clone(),
            prev_hash: r.prev_hash.clone(),
            content_hash: r.content_hash.clone(),
            signature: r.signature.clone(),
            relay_seq,
            link,
        }
    }

    /// The signed record without its content: enough for [`envelope::signed_bytes`].
    fn signed(&self) -> SignedRecord {
        SignedRecord {
            format: self.format,
            envelope_id: self.envelope_id.clone(),
            kind: self.kind.clone(),
            record_id: self.record_id.clone(),
            version: self.version,
            hlc: self.hlc,
            author: self.author.clone(),
            author_key: self.author_key.clone(),
            prev_hash: self.prev_hash.clone(),
            content_hash: self.content_hash.clone(),
            content: String::new(),
            signature: self.signature.clone(),
        }
    }
}

/// Receive-side state of one (author, kind, record) chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RecvChain {
    pub(super) head: Option<String>,
    pub(super) hashes: BTreeSet<String>,
    pub(super) gaps: BTreeSet<String>,
}

/// Id of the receive-side chain record in `sync_chain` (distinct from the sender-side ids of
/// [`super::prepare`], which hash kind and record only).
pub(super) fn recv_chain_id(author: &str, kind: &str, record: &str) -> RecordId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in ["received", author, kind, record] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let d = ctx.finish();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    RecordId::from_bytes(id)
}

/// The receive rule (module docs): how an envelope with `prev` and own `hash` joins `chain`, or
/// the quarantine code `chain_broken` for a fork.
pub(super) fn link(
    chain: &RecvChain,
    prev: Option<&str>,
    hash: &str,
) -> Result<Link, &'static str> {
    match (&chain.head, prev) {
        (None, None) => Ok(Link::First),
        (None, Some(_)) => Ok(Link::Gap),
        (Some(h), Some(p)) if h == p => Ok(Link::Next),
        _ if chain.gaps.contains(hash) => Ok(Link::Fill),
        (Some(_), None) => Err("chain_broken"),
        (Some(_), Some(p)) if chain.hashes.contains(p) => Err("chain_broken"),
        (Some(_), Some(_)) => Ok(Link::Gap),
    }
}

/// Moves `chain` past an envelope that joined it as `link`.
pub(super) fn advance(chain: &mut RecvChain, prev: Option<&str>, hash: &str, link: Link) {
    match link {
        Link::First | Link::Next => chain.head = Some(hash.to_string()),
        Link::Gap => {
            if let Some(p) = prev {
                chain.gaps.insert(p.to_string());
            }
            chain.head = Some(hash.to_string());
        }
        Link::Fill => {
            chain.gaps.remove(hash);
        }
    }
    chain.hashes.insert(hash.to_string());
}

/// The kind of item a custody failure names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustodyItem {
    /// An entry of the audit chain (id: its sequence number, or `head`).
    AuditEntry,
    /// A submitted interview or amendment (id: record id).
    Interview,
    /// An envelope applied from another device (id: envelope id).
    AppliedEnvelope,
    /// An attachment file (id: attachment id).
    Attachment,
}

impl CustodyItem {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            CustodyItem::AuditEntry => "audit_entry",
            CustodyItem::Interview => "interview",
            CustodyItem::AppliedEnvelope => "applied_envelope",
            CustodyItem::Attachment => "attachment",
        }
    }
}

/// Why an item fails custody. Stable codes ([`CustodyReason::code`]), never renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustodyReason {
    /// An audit entry's content does not match its hash.
    AuditEntryAltered,
    /// The audit sequence has a hole or a duplicate at this number.
    AuditEntryMissing,
    /// An audit entry does not link to its predecessor.
    AuditEntryOutOfOrder,
    /// The newest audit entries were removed (the head disagrees).
    AuditTruncated,
    /// A submitted interview's content does not match its recorded hash.
    InterviewAltered,
    /// An amendment's `prev_hash` or case does not match the version it amends.
    AmendmentChainBroken,
    /// The kept record of an applied envelope is unreadable or not bound to its id.
    AppliedMalformed,
    /// The author's signature over the applied envelope does not verify.
    AppliedBadSignature,
    /// The author id does not derive from the author key.
    AppliedWrongAuthor,
    /// The author is neither this device nor a registered team device with that key.
    AppliedUnknownAuthor,
    /// Replaying the receive rule over the applied envelopes finds a fork, a link other than the
    /// one recorded, or a head other than the stored one.
    AppliedChainBroken,
    /// An attachment's file is gone.
    AttachmentMissing,
    /// An attachment's file decrypts, but not to the plaintext whose SHA-256 was recorded.
    AttachmentHashMismatch,
    /// An attachment's file does not decrypt with the identities given (swapped or damaged).
    AttachmentUnreadable,
    /// An attachment's record names another SHA-256 than the submitted interview that answers
    /// with it (the record and its file were replaced together).
    AttachmentRecordMismatch,
}

impl CustodyReason {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            CustodyReason::AuditEntryAltered => "audit_entry_altered",
            CustodyReason::AuditEntryMissing => "audit_entry_missing",
            CustodyReason::AuditEntryOutOfOrder => "audit_entry_out_of_order",
            CustodyReason::AuditTruncated => "audit_truncated",
            CustodyReason::InterviewAltered => "interview_altered",
            CustodyReason::AmendmentChainBroken => "amendment_chain_broken",
            CustodyReason::AppliedMalformed => "applied_malformed",
            CustodyReason::AppliedBadSignature => "applied_bad_signature",
            CustodyReason::AppliedWrongAuthor => "applied_wrong_author",
            CustodyReason::AppliedUnknownAuthor => "applied_unknown_author",
            CustodyReason::AppliedChainBroken => "applied_chain_broken",
            CustodyReason::AttachmentMissing => "attachment_missing",
            CustodyReason::AttachmentHashMismatch => "attachment_hash_mismatch",
            CustodyReason::AttachmentUnreadable => "attachment_unreadable",
            CustodyReason::AttachmentRecordMismatch => "attachment_record_mismatch",
        }
    }
}

/// One failing item: what it is, which one (an id, never content) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustodyFailure {
    /// The kind of item.
    pub item: CustodyItem,
    /// Which one: audit sequence number, record, envelope or attachment id.
    pub id: String,
    /// Why.
    pub reason: CustodyReason,
}

/// What [`verify_custody_in`] checked, and every failure found. Counts and ids only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustodyReport {
    /// Audit entries verified (0 when the chain fails).
    pub audit_entries: u64,
    /// Submitted interviews whose hash was checked (amendment links are checked on drafts too).
    pub interviews: u64,
    /// Applied envelopes checked.
    pub applied_envelopes: u64,
    /// Predecessors never received, over all receive chains (not a failure: see the rule).
    pub chain_gaps: u64,
    /// Attachment files checked.
    pub attachments: u64,
    /// Every failing item.
    pub failures: Vec<CustodyFailure>,
}

impl CustodyReport {
    /// True when no item failed.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    fn fail(&mut self, item: CustodyItem, id: impl Into<String>, reason: CustodyReason) {
        self.failures.push(CustodyFailure {
            item,
            id: id.into(),
            reason,
        });
    }
}

/// Verifies this device's vault with its own age identity ([`verify_custody_in`]).
pub fn verify_custody(vault: &Vault) -> Result<CustodyReport, SyncError> {
    let store = vault.store()?;
    let dir = vault.dir().to_path_buf();
    store.read(|tx| {
        let identity = attachments::device_identity(tx)?;
        Ok(verify_custody_in(tx, &dir, &[identity])?)
    })
}

/// Walks every chain the store holds: the audit chain, interview hashes and amendment links,
/// every applied envelope (signature, author, receive chain replayed) and every attachment file
/// (decrypted with `identities`, plaintext SHA-256 against the record). Reads only.
pub fn verify_custody_in(
    tx: &mut Tx<'_>,
    vault_dir: &Path,
    identities: &[age::x25519::Identity],
) -> Result<CustodyReport, StoreError> {
    let mut report = CustodyReport::default();
    check_audit(tx, &mut report)?;
    let signed_attachments = check_interviews(tx, &mut report)?;
    check_applied(tx, &mut report)?;
    check_attachments(tx, vault_dir, identities, &signed_attachments, &mut report)?;
    Ok(report)
}

fn check_audit(tx: &mut Tx<'_>, report: &mut CustodyReport) -> Result<(), StoreError> {
    use CustodyReason as R;
    let (id, reason) = match audit::verify_in(tx) {
        Ok(n) => {
            report.audit_entries = n;
            return Ok(());
        }
        Err(AuditError::Store(e)) => return Err(e),
        Err(AuditError::Edited { seq }) => (seq.to_string(), R::AuditEntryAltered),
        Err(AuditError::Missing { seq }) => (seq.to_string(), R::AuditEntryMissing),
        Err(AuditError::Reordered { seq }) => (seq.to_string(), R::AuditEntryOutOfOrder),
        Err(AuditError::Truncated) => ("head".to_string(), R::AuditTruncated),
    };
    report.fail(CustodyItem::AuditEntry, id, reason);
    Ok(())
}

/// Checks interviews; returns the attachment SHA-256s that intact submitted interviews answer with
/// (attachment id → hash), which bind the attachment records.
fn check_interviews(
    tx: &mut Tx<'_>,
    report: &mut CustodyReport,
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let mut signed_attachments: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut all = BTreeMap::new();
    for id in tx.list(INTERVIEWS)? {
        let (mut i, _): (Interview, u64) = tx.require_json(INTERVIEWS, id)?;
        i.id = id.to_string();
        all.insert(id, i);
    }
    for (id, i) in &all {
        if i.status == interviews::Status::Submitted {
            report.interviews += 1;
            if i.hash.as_deref() != Some(interviews::content_hash(i)?.as_str()) {
                report.fail(
                    CustodyItem::Interview,
                    id.to_string(),
                    CustodyReason::InterviewAltered,
                );
                continue;
            }
            for (_, answer) in i.answers.iter() {
                if let AnswerValue::Attachment { id, sha256, .. } = answer {
                    signed_attachments
                        .entry(id.clone())
                        .or_default()
                        .insert(sha256.clone());
                }
            }
        }
        // The amendment link (drafts carry it too). A predecessor this device never held (it
        // joined the case later) is not a failure; a held one must match.
        if let Some(prev_hex) = &i.amends {
            let broken = match RecordId::parse(prev_hex) {
                None => true,
                Some(prev_id) => all.get(&prev_id).is_some_and(|prev| {
                    prev.status != interviews::Status::Submitted
                        || prev.hash != i.prev_hash
                        || prev.case_id != i.case_id
                }),
            };
            if broken {
                report.fail(
                    CustodyItem::Interview,
                    id.to_string(),
                    CustodyReason::AmendmentChainBroken,
                );
            }
        }
    }
    Ok(signed_attachments)
}

fn check_applied(tx: &mut Tx<'_>, report: &mut CustodyReport) -> Result<(), StoreError> {
    use CustodyReason as R;
    let own = tx
        .get_json::<State>(SYNC_STATE, STATE_ID)?
        .map(|(s, _)| s.device_id);
    let mut chains: BTreeMap<(String, String, String), Vec<AppliedRecord>> = BTreeMap::new();
    for key in tx.list(SYNC_APPLIED)? {
        report.applied_envelopes += 1;
        let record = tx.require(SYNC_APPLIED, key)?;
        let Ok(applied) = serde_json::from_slice::<AppliedRecord>(record.value.expose()) else {
            report.fail(
                CustodyItem::AppliedEnvelope,
                key.to_string(),
                R::AppliedMalformed,
            );
            continue;
        };
        let id = applied.envelope_id.clone();
        let bound =
            uuid::Uuid::parse_str(&id).is_ok_and(|u| RecordId::from_bytes(*u.as_bytes()) == key);
        if !bound {
            report.fail(
                CustodyItem::AppliedEnvelope,
                key.to_string(),
                R::AppliedMalformed,
            );
            continue;
        }
        let Some(author_key) = amanat_protocol::from_hex(&applied.author_key) else {
            report.fail(CustodyItem::AppliedEnvelope, id, R::AppliedMalformed);
            continue;
        };
        // A record that fails here is named; it still takes its place in the chain replay below,
        // so one forged field is reported once, not again as a broken chain.
        let signed = envelope::signed_bytes(&applied.signed());
        let failure = if amanat_protocol::device_id(&author_key) != applied.author {
            Some(R::AppliedWrongAuthor)
        } else if amanat_protocol::verify_ed25519(&author_key, &signed, &applied.signature).is_err()
        {
            Some(R::AppliedBadSignature)
        } else {
            let trusted = own.as_deref() == Some(applied.author.as_str())
                || match RecordId::parse(&applied.author) {
                    Some(peer) => tx
                        .get_json::<Peer>(SYNC_PEERS, peer)?
                        .is_some_and(|(p, _)| p.signing_public_key == applied.author_key),
                    None => false,
                };
            (!trusted).then_some(R::AppliedUnknownAuthor)
        };
        if let Some(reason) = failure {
            report.fail(CustodyItem::AppliedEnvelope, id, reason);
        }
        chains
            .entry((
                applied.author.clone(),
                applied.kind.clone(),
                applied.record_id.clone(),
            ))
            .or_default()
            .push(applied);
    }
    // Replay the receive rule per chain, in the order the relay delivered.
    let mut replayed = BTreeSet::new();
    for ((author, kind, record), mut list) in chains {
        list.sort_by_key(|a| a.relay_seq);
        let mut chain = RecvChain::default();
        let mut broken = None;
        for a in &list {
            match link(&chain, a.prev_hash.as_deref(), &a.content_hash) {
                Ok(l) if l == a.link => {
                    advance(&mut chain, a.prev_hash.as_deref(), &a.content_hash, l)
                }
                _ => {
                    broken = Some(a.envelope_id.clone());
                    break;
                }
            }
        }
        let chain_key = recv_chain_id(&author, &kind, &record);
        replayed.insert(chain_key);
        let stored = tx
            .get_json::<RecvChain>(SYNC_CHAIN, chain_key)?
            .map(|(c, _)| c);
        if broken.is_none() && stored.as_ref() != Some(&chain) {
            broken = list.last().map(|a| a.envelope_id.clone());
        }
        match broken {
            Some(id) => report.fail(CustodyItem::AppliedEnvelope, id, R::AppliedChainBroken),
            None => report.chain_gaps += chain.gaps.len() as u64,
        }
    }
    // A receive chain with no kept envelope left: every applied envelope of it was removed.
    // (Sender-side heads share the collection; they do not parse as a receive chain.)
    for key in tx.list(SYNC_CHAIN)? {
        if replayed.contains(&key) {
            continue;
        }
        let record = tx.require(SYNC_CHAIN, key)?;
        if let Ok(c) = serde_json::from_slice::<RecvChain>(record.value.expose()) {
            if !c.hashes.is_empty() {
                report.fail(
                    CustodyItem::AppliedEnvelope,
                    key.to_string(),
                    R::AppliedChainBroken,
                );
            }
        }
    }
    Ok(())
}

fn check_attachments(
    tx: &mut Tx<'_>,
    vault_dir: &Path,
    identities: &[age::x25519::Identity],
    signed: &BTreeMap<String, BTreeSet<String>>,
    report: &mut CustodyReport,
) -> Result<(), StoreError> {
    use CustodyReason as R;
    for key in tx.list(ATTACHMENTS)? {
        let (info, _): (AttachmentInfo, u64) = tx.require_json(ATTACHMENTS, key)?;
        report.attachments += 1;
        if signed
            .get(&info.id)
            .is_some_and(|hashes| hashes.iter().any(|h| *h != info.sha256))
        {
            report.fail(
                CustodyItem::Attachment,
                info.id,
                R::AttachmentRecordMismatch,
            );
            continue;
        }
        let path = crate::vault::layout::attachment_path(vault_dir, &info.id);
        if !path.exists() {
            report.fail(CustodyItem::Attachment, info.id, R::AttachmentMissing);
            continue;
        }
        match plaintext_sha256(&path, identities) {
            Some(h) if h == info.sha256 => {}
            Some(_) => report.fail(CustodyItem::Attachment, info.id, R::AttachmentHashMismatch),
            None => report.fail(CustodyItem::Attachment, info.id, R::AttachmentUnreadable),
        }
    }
    Ok(())
}

/// SHA-256 (hex) of an attachment file's plaintext, streamed; `None` if it does not decrypt.
fn plaintext_sha256(path: &Path, identities: &[age::x25519::Identity]) -> Option<String> {
    let mut reader = AttachmentReader::open_file(path, identities).ok()?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = reader.read(&mut buf).ok()?;
        if n == 0 {
            return Some(amanat_protocol::to_hex(hash.finish().as_ref()));
        }
        hash.update(buf.get(..n)?);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn h(n: u8) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn chain_rule_in_order_gap_fill_and_fork() {
        let mut c = RecvChain::default();
        // 1 ← 2 ← 3 ← 4 ← 5, with 3 delivered last (a wedged entry retried late).
        for (prev, hash, expect) in [
            (None, h(1), Link::First),
            (Some(h(1)), h(2), Link::Next),
            (Some(h(3)), h(4), Link::Gap),
            (Some(h(4)), h(5), Link::Next),
            (Some(h(2)), h(3), Link::Fill),
        ] {
            let l = link(&c, prev.as_deref(), &hash).unwrap();
            assert_eq!(l, expect);
            advance(&mut c, prev.as_deref(), &hash, l);
        }
        assert_eq!(c.head, Some(h(5)));
        assert!(c.gaps.is_empty());
        // A second successor of an applied version, or a restarted chain: a fork.
        assert_eq!(link(&c, Some(&h(2)), &h(9)), Err("chain_broken"));
        assert_eq!(link(&c, None, &h(9)), Err("chain_broken"));
        // Identical content twice in a row (same hash) still follows the head.
        assert_eq!(link(&c, Some(&h(5)), &h(5)), Ok(Link::Next));
        // A receiver that joined late: the first envelope it sees names a predecessor.
        assert_eq!(
            link(&RecvChain::default(), Some(&h(7)), &h(8)),
            Ok(Link::Gap)
        );
    }

    #[test]
    fn reason_codes_are_frozen() {
        use CustodyReason as R;
        let all = [
            R::AuditEntryAltered,
            R::AuditEntryMissing,
            R::AuditEntryOutOfOrder,
            R::AuditTruncated,
            R::InterviewAltered,
            R::AmendmentChainBroken,
            R::AppliedMalformed,
            R::AppliedBadSignature,
            R::AppliedWrongAuthor,
            R::AppliedUnknownAuthor,
            R::AppliedChainBroken,
            R::AttachmentMissing,
            R::AttachmentHashMismatch,
            R::AttachmentUnreadable,
            R::AttachmentRecordMismatch,
        ];
        assert_eq!(
            all.map(R::code),
            [
                "audit_entry_altered",
                "audit_entry_missing",
                "audit_entry_out_of_order",
                "audit_truncated",
                "interview_altered",
                "amendment_chain_broken",
                "applied_malformed",
                "applied_bad_signature",
                "applied_wrong_author",
                "applied_unknown_author",
                "applied_chain_broken",
                "attachment_missing",
                "attachment_hash_mismatch",
                "attachment_unreadable",
                "attachment_record_mismatch",
            ]
        );
        assert_eq!(
            [
                CustodyItem::AuditEntry,
                CustodyItem::Interview,
                CustodyItem::AppliedEnvelope,
                CustodyItem::Attachment
            ]
            .map(CustodyItem::code),
            ["audit_entry", "interview", "applied_envelope", "attachment"]
        );
    }
}
