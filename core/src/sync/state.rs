//! Persistent sync state and the queries the shell uses: enrollment, peers, wedged entries,
//! quarantine, pending count.

use super::*;

pub(super) const STATE_ID: RecordId = RecordId::from_bytes([0x5A; 16]);
pub(super) const SIGNING_KEY_ID: RecordId = RecordId::from_bytes([0xD2; 16]);

/// What this device knows about its enrollment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// This device's id (derived from its signing key).
    pub device_id: String,
    /// Role the organisation signed into the code.
    pub role: DeviceRole,
    /// Fingerprint of the organisation.
    pub org_fingerprint: String,
    /// The relay's base URL.
    pub relay_url: String,
    /// This device's Ed25519 public key, hex (what a team member registers with [`share_case`]).
    pub signing_public_key: String,
    /// This device's age recipient (`age1…`).
    pub age_recipient: String,
}

/// A wedged outbox entry, for the shell to list, retry or discard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WedgedEntry {
    /// Outbox position.
    pub seq: u64,
    /// Kind of change.
    pub kind: EntryKind,
    /// Stable reason code (the relay's error code).
    pub reason: String,
}

/// A pulled envelope kept because it failed verification (payload still encrypted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Envelope id as delivered.
    pub envelope_id: String,
    /// Relay sequence number.
    pub seq: u64,
    /// Sender as the relay named it.
    pub sender: String,
    /// Stable reason code ([`envelope::OpenError::code`] or an apply rule).
    pub reason: String,
    /// The payload as delivered (base64 age ciphertext).
    pub payload: String,
}

/// Another device of the team: its keys, and the cases shared with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its device id (derived from `signing_public_key`).
    pub device_id: String,
    /// Its Ed25519 public key, hex.
    pub signing_public_key: String,
    /// Its age recipient (`age1…`).
    pub age_recipient: String,
    /// Ids (hex) of the cases this device shares with it.
    pub cases: BTreeSet<String>,
    /// Its HLC clock ids (hex), learnt from the HLCs of envelopes it signed: how a clash names
    /// the device that wrote each value.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub clocks: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct State {
    pub(super) relay_url: String,
    pub(super) device_id: String,
    pub(super) role: DeviceRole,
    pub(super) org: OrgPublic,
    pub(super) cursor: u64,
    pub(super) last_ack_seq: u64,
    pub(super) last_success_ms: Option<u64>,
    /// Consecutive transient failures (reset by a finished run); drives [`super::backoff()`].
    #[serde(default)]
    pub(super) failures: u32,
    /// When the next attempt is due after a transient failure (ms, vault clock).
    #[serde(default)]
    pub(super) retry_at_ms: Option<u64>,
}

pub(super) fn load_state(tx: &mut Tx<'_>) -> Result<(State, u64), SyncError> {
    tx.get_json::<State>(SYNC_STATE, STATE_ID)?
        .ok_or(SyncError::NotEnrolled)
}

pub(super) fn load_key(tx: &mut Tx<'_>) -> Result<Ed25519KeyPair, SyncError> {
    let record = tx.require(DEVICE_KEYS, SIGNING_KEY_ID)?;
    amanat_protocol::ed25519_from_pkcs8(record.value.expose()).map_err(|_| SyncError::Key)
}

/// This device's enrollment, if any.
pub fn enrollment(vault: &Vault) -> Result<Option<Enrollment>, SyncError> {
    let store = vault.store()?;
    store.write(|tx| {
        let Some((s, _)) = tx.get_json::<State>(SYNC_STATE, STATE_ID)? else {
            return Ok(None);
        };
        let key = load_key(tx)?;
        let age_recipient = attachments::device_identity(tx)?.to_public().to_string();
        Ok(Some(Enrollment {
            device_id: s.device_id,
            role: s.role,
            org_fingerprint: s.org.fingerprint,
            relay_url: s.relay_url,
            signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
            age_recipient,
        }))
    })
}

/// Registers (or updates) a team device and shares `case_id` with it: from now on that case's
/// envelopes are also encrypted to its age recipient and routed to it, and envelopes it signs are
/// accepted. The caller vouches for the peer's keys; the organisation's way is an `assign` order
/// from HQ (`sync::orders`), which calls the same code with keys HQ pinned.
pub fn share_case(
    vault: &Vault,
    case_id: RecordId,
    signing_public_key: &str,
    age_recipient: &str,
) -> Result<Peer, SyncError> {
    let key = amanat_protocol::from_hex(signing_public_key)
        .filter(|k| k.len() == 32)
        .ok_or(SyncError::Key)?;
    age::x25519::Recipient::from_str(age_recipient).map_err(|_| SyncError::Key)?;
    vault
        .store()?
        .write(|tx| share_case_in(tx, case_id, &key, age_recipient))
}

/// [`share_case`] inside the caller's transaction, with a checked 32-byte key and recipient.
pub(super) fn share_case_in(
    tx: &mut Tx<'_>,
    case_id: RecordId,
    key: &[u8],
    age_recipient: &str,
) -> Result<Peer, SyncError> {
    let device_id = amanat_protocol::device_id(key);
    let peer_id = RecordId::parse(&device_id).ok_or(SyncError::Key)?;
    let held = tx.get_json::<Peer>(SYNC_PEERS, peer_id)?;
    let mut peer = match &held {
        Some((p, _)) => p.clone(),
        None => Peer {
            device_id: device_id.clone(),
            signing_public_key: amanat_protocol::to_hex(key),
            age_recipient: age_recipient.to_string(),
            cases: BTreeSet::new(),
            clocks: BTreeSet::new(),
        },
    };
    peer.age_recipient = age_recipient.to_string();
    peer.cases.insert(case_id.to_string());
    match held {
        Some((_, version)) => {
            tx.update_json(SYNC_PEERS, peer_id, version, &peer)?;
        }
        None => tx.insert_json_with_id(SYNC_PEERS, peer_id, &peer)?,
    }
    Ok(peer)
}

/// Stops sharing `case_id` with every team device not in `keep` (device ids): their envelopes
/// for it are no longer accepted, and the case's new envelopes no longer go to them.
pub(super) fn unshare_case_in(
    tx: &mut Tx<'_>,
    case_id: RecordId,
    keep: &BTreeSet<String>,
) -> Result<(), SyncError> {
    let case_hex = case_id.to_string();
    for id in tx.list(SYNC_PEERS)? {
        let (mut peer, version) = tx.require_json::<Peer>(SYNC_PEERS, id)?;
        if !keep.contains(&peer.device_id) && peer.cases.remove(&case_hex) {
            tx.update_json(SYNC_PEERS, id, version, &peer)?;
        }
    }
    Ok(())
}

/// Outbox entries the relay refused for good, oldest first.
pub fn wedged(vault: &Vault) -> Result<Vec<WedgedEntry>, SyncError> {
    let store = vault.store()?;
    let entries = store.read(|tx| outbox::filtered(tx, |_, e| Ok(e.wedged.is_some())))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            e.wedged.map(|reason| WedgedEntry {
                seq: e.seq,
                kind: e.kind,
                reason,
            })
        })
        .collect())
}

/// Clears every wedged mark: the next sync pushes those envelopes again (same ids, same bytes).
pub fn retry_wedged(vault: &Vault) -> Result<u64, SyncError> {
    vault.store()?.write(|tx| {
        let mut n = 0;
        for e in outbox::filtered(tx, |_, e| Ok(e.wedged.is_some()))? {
            outbox::clear_wedged(tx, e.seq)?;
            n += 1;
        }
        Ok(n)
    })
}

/// Removes one wedged entry and its prepared envelope for good (the shell's explicit choice).
pub fn discard_wedged(vault: &Vault, seq: u64) -> Result<bool, SyncError> {
    vault.store()?.write(|tx| {
        let entry = outbox::get(tx, outbox::entry_id(seq))?;
        match entry {
            Some(e) if e.wedged.is_some() => {
                tx.delete(SYNC_PREPARED, e.id())?;
                tx.delete(SYNC_UPLOADS, e.id())?;
                outbox::remove(tx, e.seq)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

/// Quarantined envelopes, in the order they arrived.
pub fn quarantined(vault: &Vault) -> Result<Vec<Quarantined>, SyncError> {
    let store = vault.store()?;
    let mut out = store.read(|tx| {
        let mut out = Vec::new();
        for id in tx.list(SYNC_QUARANTINE)? {
            out.push(tx.require_json::<Quarantined>(SYNC_QUARANTINE, id)?.0);
        }
        Ok::<_, StoreError>(out)
    })?;
    out.sort_by_key(|q| q.seq);
    Ok(out)
}

/// Number of entries waiting in the outbox (wedged ones included).
pub fn pending(vault: &Vault) -> Result<u64, SyncError> {
    let store = vault.store()?;
    Ok(store.read(outbox::count)?)
}

/// What a shell shows on its sync screen, read in one transaction so the parts agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStatus {
    /// Entries waiting in the outbox (wedged ones included).
    pub pending: u64,
    /// The entries the relay refused for good, oldest first, with their reason codes.
    pub wedged: Vec<WedgedEntry>,
    /// When a sync run last finished without interruption (ms since epoch; vault clock).
    pub last_success_ms: Option<u64>,
    /// Whether this device is enrolled (if not, `sync` fails with `NotEnrolled`).
    pub enrolled: bool,
    /// Transient failures in a row since the last finished run (the backoff's step).
    pub consecutive_failures: u32,
    /// When the backoff says to try again (ms since epoch, vault clock), after a failed run.
    pub next_attempt_ms: Option<u64>,
}

/// The sync screen's status: pending count, wedged entries, last success, enrollment, and the
/// backoff (what the scheduler needs to pick the next attempt). Works
/// before enrollment too (changes queue from the first write).
pub fn status(vault: &Vault) -> Result<SyncStatus, SyncError> {
    let store = vault.store()?;
    store.read(|tx| {
        let pending = outbox::count(tx)?;
        let entries = outbox::filtered(tx, |_, e| Ok(e.wedged.is_some()))?;
        let state = tx.get_json::<State>(SYNC_STATE, STATE_ID)?;
        Ok(SyncStatus {
            pending,
            wedged: entries
                .into_iter()
                .filter_map(|e| {
                    e.wedged.map(|reason| WedgedEntry {
                        seq: e.seq,
                        kind: e.kind,
                        reason,
                    })
                })
                .collect(),
            last_success_ms: state.as_ref().and_then(|(s, _)| s.last_success_ms),
            enrolled: state.is_some(),
            consecutive_failures: state.as_ref().map_or(0, |(s, _)| s.failures),
            next_attempt_ms: state.as_ref().and_then(|(s, _)| s.retry_at_ms),
        })
    })
}
