//! The sync engine on the device (phase 1): enrollment, envelopes, push, pull, apply, revocation.
//!
//! Layer 6, above the records. It never opens a socket: every request goes through a
//! [`Transport`] the caller passes in. See docs/SYNC.md for what phase 1 covers and what remains.
//!
//! * [`enroll`]: generates the device's Ed25519 signing key, registers it (and the age identity's
//!   recipient) with the relay using an org-signed code, checks the returned `org.pub` against the
//!   code's fingerprint, then stores key, organisation, group recipients and relay in one
//!   transaction. A substituted `org.pub` stores nothing.
//! * [`sync_once`]: prepares an envelope for each queued outbox entry (once: the id and bytes are
//!   stored sealed, so a retry resends identical bytes), pushes them in batches, removes entries
//!   only in the transaction that records the relay's ack, then pulls after the persisted cursor
//!   and applies each envelope in one transaction with the cursor advance.
//! * A `revoked_device` answer carrying an organisation-signed revocation of this device wipes
//!   the vault; one that does not verify under the enrolled organisation key is ignored.

mod apply;
pub mod envelope;
pub mod transport;

pub use transport::{Request, Response, Transport, TransportError};

use crate::journal::hlc::Hlc;
use crate::journal::outbox::{self, Entry, EntryKind};
use crate::names::collections::{
    self, DEVICE_KEYS, SYNC_APPLIED, SYNC_CHAIN, SYNC_PEERS, SYNC_PREPARED, SYNC_QUARANTINE,
    SYNC_STATE,
};
use crate::names::Collection;
use crate::records::attachments::{self, AttachmentError, GROUPS};
use crate::records::consent::{self, Scope};
use crate::store::{RecordId, Store, StoreError, Tx};
use crate::vault::{Vault, VaultError};
use amanat_protocol::{
    DeviceRole, EnrollRequest, EnrollmentCode, Envelope, OrgPublic, PullResponse, PushRequest,
    PushResponse, Revocation, HQ_RECIPIENT,
};
use base64::Engine as _;
use envelope::{OpenError, SignedRecord};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use zeroize::Zeroizing;

const STATE_ID: RecordId = RecordId::from_bytes([0x5A; 16]);
const SIGNING_KEY_ID: RecordId = RecordId::from_bytes([0xD2; 16]);

/// Most envelopes per push (the relay's default limit is 500).
pub const PUSH_BATCH: usize = 100;
/// Most payload bytes (base64) per push, below the relay's 4 MiB body limit.
pub const PUSH_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Envelopes asked for per pull page.
pub const PULL_PAGE: u32 = 100;

/// Errors of the sync engine. Messages hold codes and counts, never record content.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The device is not enrolled yet.
    #[error("this device is not enrolled")]
    NotEnrolled,
    /// The device is enrolled already.
    #[error("this device is already enrolled")]
    AlreadyEnrolled,
    /// The enrollment code is not the documented JSON.
    #[error("the enrollment code is malformed")]
    BadCode,
    /// The relay URL is not `http(s)://host[:port]`.
    #[error("invalid relay URL")]
    InvalidRelayUrl,
    /// The relay returned an organisation whose fingerprint or signature does not match the code:
    /// a substituted `org.pub`. Nothing was stored.
    #[error("the relay's organisation key does not match the enrollment code")]
    OrgMismatch,
    /// The relay refused the request (stable error code from the relay, or `http_<status>`).
    #[error("the relay refused the request: {status} {code}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The relay's error code.
        code: String,
    },
    /// The relay's answer is not what the protocol says.
    #[error("unexpected answer from the relay")]
    UnexpectedResponse,
    /// No answer (enrollment only; sync reports transport failures as an interruption).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The organisation revoked this device (signature verified): the vault was wiped.
    #[error("this device was revoked by the organisation; its data was wiped")]
    Revoked,
    /// A key could not be generated or loaded.
    #[error("device key failure")]
    Key,
    /// Preparing an envelope failed (encryption).
    #[error("envelope preparation failed")]
    Envelope,
    /// The organisation's recipients could not be stored.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// Why a sync stopped early with everything kept for a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// No answer from the relay (network, timeout, connection lost).
    Transport(TransportError),
    /// The relay answered 5xx.
    Server {
        /// The status.
        status: u16,
    },
    /// The relay answered 429.
    RateLimited,
}

/// What one [`sync_once`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Envelopes the relay acknowledged (entries removed from the outbox).
    pub pushed: u64,
    /// Of those, envelopes the relay already held (a retry after a lost answer).
    pub duplicates: u64,
    /// Envelopes pulled and applied.
    pub pulled: u64,
    /// Pulled envelopes that failed verification and were quarantined.
    pub quarantined: u64,
    /// Entries newly marked wedged by this run (refused for good by the relay).
    pub wedged: u64,
    /// Entries that had nothing consent allows to send (e.g. identity without caseworker
    /// consent): removed from the outbox without an envelope.
    pub withheld: u64,
    /// Entries still queued after this run (wedged ones included).
    pub pending: u64,
    /// Set when the run stopped on a transient failure; everything not acknowledged stays queued.
    pub interrupted: Option<Interruption>,
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
}

#[derive(Serialize, Deserialize)]
struct State {
    relay_url: String,
    device_id: String,
    role: DeviceRole,
    org: OrgPublic,
    cursor: u64,
    last_ack_seq: u64,
    last_success_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Prepared {
    envelopes: Vec<Envelope>,
}

#[derive(Serialize, Deserialize)]
struct ChainHead {
    version: u64,
    hash: String,
}

#[derive(Deserialize)]
struct EnrollAnswer {
    device_id: String,
    role: DeviceRole,
    org: OrgPublic,
}

fn load_state(tx: &mut Tx<'_>) -> Result<(State, u64), SyncError> {
    tx.get_json::<State>(SYNC_STATE, STATE_ID)?
        .ok_or(SyncError::NotEnrolled)
}

fn load_key(tx: &mut Tx<'_>) -> Result<Ed25519KeyPair, SyncError> {
    let record = tx.require(DEVICE_KEYS, SIGNING_KEY_ID)?;
    amanat_protocol::ed25519_from_pkcs8(record.value.expose()).map_err(|_| SyncError::Key)
}

/// `http(s)://host[:port]` without a trailing slash; the transport checks the loopback rule.
fn normalize_url(url: &str) -> Result<String, SyncError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or(SyncError::InvalidRelayUrl)?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(SyncError::InvalidRelayUrl);
    }
    Ok(trimmed.to_string())
}

fn signed_request(
    key: &Ed25519KeyPair,
    base_url: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    now_ms: u64,
) -> Result<Request, SyncError> {
    let h = amanat_protocol::sign_request(key, method, path, now_ms, &body)
        .map_err(|_| SyncError::Key)?;
    let mut headers: Vec<(String, String)> = h
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !body.is_empty() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(Request {
        method: method.to_string(),
        base_url: base_url.to_string(),
        path: path.to_string(),
        headers,
        body,
    })
}

/// The relay's error code from a JSON error body, reduced to `[a-z0-9_]{1,64}` (a code, never
/// free text), or `http_<status>`.
fn error_code(resp: &Response) -> String {
    let code = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    code.unwrap_or_else(|| format!("http_{}", resp.status))
}

/// How a relay answer is handled.
enum Answer {
    Ok(Vec<u8>),
    Transient(Interruption),
    Revoked(Vec<u8>),
    Refused { status: u16, code: String },
}

fn classify(result: Result<Response, TransportError>) -> Result<Answer, SyncError> {
    let resp = match result {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Ok(Answer::Transient(Interruption::Transport(e))),
        Err(e) => return Err(SyncError::Transport(e)),
    };
    Ok(match resp.status {
        200..=299 => Answer::Ok(resp.body),
        429 => Answer::Transient(Interruption::RateLimited),
        408 | 500..=599 => Answer::Transient(Interruption::Server {
            status: resp.status,
        }),
        status => {
            let code = error_code(&resp);
            if status == 403 && code == "revoked_device" {
                Answer::Revoked(resp.body)
            } else {
                Answer::Refused { status, code }
            }
        }
    })
}

/// Enrolls this device with the relay at `relay_url` using the org-signed `code_json` (the line
/// `amanat device enroll` prints).
pub fn enroll(
    vault: &Vault,
    code_json: &str,
    relay_url: &str,
    transport: &dyn Transport,
) -> Result<Enrollment, SyncError> {
    let code: EnrollmentCode =
        serde_json::from_str(code_json.trim()).map_err(|_| SyncError::BadCode)?;
    let base = normalize_url(relay_url)?;
    let store = vault.store()?;
    let (enrolled, age_recipient) = store.write(|tx| {
        let enrolled = tx.get(SYNC_STATE, STATE_ID)?.is_some();
        let identity = attachments::device_identity(tx)?;
        Ok::<_, StoreError>((enrolled, identity.to_public().to_string()))
    })?;
    if enrolled {
        return Err(SyncError::AlreadyEnrolled);
    }
    let pkcs8 =
        Zeroizing::new(amanat_protocol::generate_ed25519_pkcs8().map_err(|_| SyncError::Key)?);
    let key = amanat_protocol::ed25519_from_pkcs8(&pkcs8).map_err(|_| SyncError::Key)?;
    let public = key.public_key().as_ref();
    let device_id = amanat_protocol::device_id(public);
    let request_recipient = age_recipient.clone();
    let body = serde_json::to_vec(&EnrollRequest {
        code: code.clone(),
        signing_public_key: amanat_protocol::to_hex(public),
        age_recipient,
    })
    .map_err(|_| SyncError::BadCode)?;
    let now = vault.clock().now_ms();
    let request = signed_request(&key, &base, "POST", "/v1/enroll", body, now)?;
    let resp = transport.send(&request)?;
    if resp.status != 200 {
        return Err(SyncError::Rejected {
            status: resp.status,
            code: error_code(&resp),
        });
    }
    let answer: EnrollAnswer =
        serde_json::from_slice(&resp.body).map_err(|_| SyncError::UnexpectedResponse)?;
    // The relay could hand out any org.pub: only one whose fingerprint is the code's, and under
    // whose key the code verifies, is the organisation that issued the code.
    let org = answer.org;
    if org.version != 1
        || org.compute_fingerprint() != org.fingerprint
        || org.fingerprint != code.org_fingerprint
        || code.verify(&org).is_err()
    {
        return Err(SyncError::OrgMismatch);
    }
    if answer.device_id != device_id || answer.role != code.role {
        return Err(SyncError::UnexpectedResponse);
    }
    let state = State {
        relay_url: base.clone(),
        device_id: device_id.clone(),
        role: answer.role,
        org: org.clone(),
        cursor: 0,
        last_ack_seq: 0,
        last_success_ms: None,
    };
    store.write(|tx| {
        attachments::set_org_recipients_in(tx, &org.groups)?;
        tx.insert_with_id(DEVICE_KEYS, SIGNING_KEY_ID, &pkcs8)?;
        tx.insert_json_with_id(SYNC_STATE, STATE_ID, &state)?;
        Ok::<_, SyncError>(())
    })?;
    Ok(Enrollment {
        device_id,
        role: answer.role,
        org_fingerprint: org.fingerprint,
        relay_url: base,
        signing_public_key: amanat_protocol::to_hex(public),
        age_recipient: request_recipient,
    })
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
/// accepted. Phase 1: the caller vouches for the peer's keys; the org-signed assignment order that
/// will set this comes with the HQ issue.
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
    let device_id = amanat_protocol::device_id(&key);
    let peer_id = RecordId::parse(&device_id).ok_or(SyncError::Key)?;
    vault.store()?.write(|tx| {
        let mut peer = match tx.get_json::<Peer>(SYNC_PEERS, peer_id)? {
            Some((p, _)) => p,
            None => Peer {
                device_id: device_id.clone(),
                signing_public_key: amanat_protocol::to_hex(&key),
                age_recipient: age_recipient.to_string(),
                cases: BTreeSet::new(),
            },
        };
        peer.age_recipient = age_recipient.to_string();
        peer.cases.insert(case_id.to_string());
        match tx.get(SYNC_PEERS, peer_id)? {
            Some(r) => {
                tx.update_json(SYNC_PEERS, peer_id, r.version, &peer)?;
            }
            None => tx.insert_json_with_id(SYNC_PEERS, peer_id, &peer)?,
        }
        Ok::<_, SyncError>(peer)
    })
}

/// Outbox entries the relay refused for good, oldest first.
pub fn wedged(vault: &Vault) -> Result<Vec<WedgedEntry>, SyncError> {
    let store = vault.store()?;
    let entries = store.read(outbox::entries)?;
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
        for e in outbox::entries(tx)? {
            if e.wedged.is_some() {
                outbox::clear_wedged(tx, e.seq)?;
                n += 1;
            }
        }
        Ok(n)
    })
}

/// Removes one wedged entry and its prepared envelope for good (the shell's explicit choice).
pub fn discard_wedged(vault: &Vault, seq: u64) -> Result<bool, SyncError> {
    vault.store()?.write(|tx| {
        let entry = outbox::entries(tx)?.into_iter().find(|e| e.seq == seq);
        match entry {
            Some(e) if e.wedged.is_some() => {
                tx.delete(SYNC_PREPARED, e.id())?;
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
    Ok(store.read(outbox::entries)?.len() as u64)
}

/// A UUIDv7 (text) from the vault's clock and CSPRNG.
fn new_envelope_id(tx: &Tx<'_>) -> String {
    let mut random = [0u8; 10];
    tx.fill_random(&mut random);
    uuid::Builder::from_unix_timestamp_millis(tx.clock().now_ms(), &random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn collection_named(name: &str) -> Option<Collection> {
    collections::ALL.into_iter().find(|c| c.name() == name)
}

#[derive(Deserialize)]
struct CaseRef {
    case_id: String,
}

fn chain_id(kind: EntryKind, record: &str) -> RecordId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(kind.as_str().as_bytes());
    ctx.update(b"\0");
    ctx.update(record.as_bytes());
    let d = ctx.finish();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    RecordId::from_bytes(id)
}

/// Builds the envelope of one outbox entry (or none, when consent allows nobody).
fn prepare_entry(
    tx: &mut Tx<'_>,
    entry: &Entry,
    state: &State,
    key: &Ed25519KeyPair,
) -> Result<Vec<Envelope>, SyncError> {
    let (Some(collection), Some(record_id)) = (
        collection_named(&entry.collection),
        RecordId::parse(&entry.record),
    ) else {
        return Ok(Vec::new());
    };
    let Some(record) = tx.get(collection, record_id)? else {
        return Ok(Vec::new()); // the record is gone: nothing to send
    };
    let content =
        String::from_utf8(record.value.expose().to_vec()).map_err(|_| StoreError::Shape)?;
    let case_id = match entry.kind {
        EntryKind::Case | EntryKind::Identity => record_id,
        EntryKind::Consent | EntryKind::Interview => {
            let r: CaseRef = serde_json::from_str(&content).map_err(|_| StoreError::Shape)?;
            RecordId::parse(&r.case_id).ok_or(StoreError::Shape)?
        }
    };
    // Recipients: what the case's current consent allows, the author device, the team devices.
    let scopes = consent::current_in(tx, case_id)?
        .map(|c| c.scopes)
        .unwrap_or_default();
    let caseworkers_ok = scopes.contains(&Scope::ShareCaseworkers);
    if entry.kind == EntryKind::Identity && !caseworkers_ok {
        return Ok(Vec::new());
    }
    let mut recipients = vec![attachments::device_identity(tx)?.to_public()];
    for (group, scope) in GROUPS {
        let allowed = if entry.kind == EntryKind::Identity {
            group == "caseworkers"
        } else {
            scopes.contains(&scope)
        };
        if let (true, Some(text)) = (allowed, state.org.groups.get(group)) {
            recipients
                .push(age::x25519::Recipient::from_str(text).map_err(|_| SyncError::Envelope)?);
        }
    }
    let mut route = vec![HQ_RECIPIENT.to_string()];
    let case_hex = case_id.to_string();
    if entry.kind != EntryKind::Identity || caseworkers_ok {
        for peer_id in tx.list(SYNC_PEERS)? {
            let peer: Peer = tx.require_json(SYNC_PEERS, peer_id)?.0;
            if peer.cases.contains(&case_hex) {
                recipients.push(
                    age::x25519::Recipient::from_str(&peer.age_recipient)
                        .map_err(|_| SyncError::Envelope)?,
                );
                route.push(peer.device_id);
            }
        }
    }
    // The per-record chain: each envelope names the content hash of the previous one.
    let chain = chain_id(entry.kind, &entry.record);
    let head: Option<(ChainHead, u64)> = tx.get_json(SYNC_CHAIN, chain)?;
    let mut signed = SignedRecord {
        format: envelope::FORMAT,
        envelope_id: new_envelope_id(tx),
        kind: entry.kind.as_str().to_string(),
        record_id: entry.record.clone(),
        version: record.version,
        hlc: Hlc::next(tx)?,
        author: String::new(),
        author_key: String::new(),
        prev_hash: head.as_ref().map(|(h, _)| h.hash.clone()),
        content_hash: String::new(),
        content,
        signature: String::new(),
    };
    envelope::sign(&mut signed, key);
    let new_head = ChainHead {
        version: signed.version,
        hash: signed.content_hash.clone(),
    };
    match head {
        Some((_, v)) => {
            tx.update_json(SYNC_CHAIN, chain, v, &new_head)?;
        }
        None => tx.insert_json_with_id(SYNC_CHAIN, chain, &new_head)?,
    }
    let payload = envelope::seal(&signed, &recipients).map_err(|_| SyncError::Envelope)?;
    Ok(vec![Envelope {
        id: signed.envelope_id.clone(),
        recipients: route,
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
    }])
}

/// Prepares envelopes for every queued entry that has none yet, one transaction per entry (the
/// entry, its envelope and the chain head move together). Returns how many were withheld.
fn prepare_all(store: &Store, key: &Ed25519KeyPair) -> Result<u64, SyncError> {
    let entries = store.read(outbox::entries)?;
    let mut withheld = 0;
    for entry in entries {
        if entry.wedged.is_some() {
            continue;
        }
        let done = store.write(|tx| {
            if tx.get(SYNC_PREPARED, entry.id())?.is_some() {
                return Ok::<_, SyncError>(false);
            }
            let (state, _) = load_state(tx)?;
            let envelopes = prepare_entry(tx, &entry, &state, key)?;
            if envelopes.is_empty() {
                outbox::remove(tx, entry.seq)?;
                return Ok(true);
            }
            tx.insert_json_with_id(SYNC_PREPARED, entry.id(), &Prepared { envelopes })?;
            Ok(false)
        })?;
        if done {
            withheld += 1;
        }
    }
    Ok(withheld)
}

/// Verifies a revocation under the enrolled organisation key; if it is this device's, wipes.
fn obey_revocation(vault: &Vault, state: &State, body: &[u8]) -> Result<(), SyncError> {
    #[derive(Deserialize)]
    struct Body {
        revocation: Revocation,
    }
    let valid = serde_json::from_slice::<Body>(body)
        .ok()
        .map(|b| b.revocation)
        .filter(|r| r.device_id == state.device_id && r.verify(&state.org).is_ok());
    match valid {
        Some(_) => {
            vault.panic_wipe()?;
            Err(SyncError::Revoked)
        }
        // Not signed by our organisation for this device: the relay cannot make us wipe.
        None => Err(SyncError::Rejected {
            status: 403,
            code: "revoked_device".into(),
        }),
    }
}

enum PushOutcome {
    Done,
    Interrupted(Interruption),
}

/// What one sync run works with.
struct Ctx<'a> {
    vault: &'a Vault,
    store: &'a Store,
    state: State,
    key: Ed25519KeyPair,
    transport: &'a dyn Transport,
}

impl Ctx<'_> {
    fn send(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Answer, SyncError> {
        let now = self.vault.clock().now_ms();
        let request = signed_request(&self.key, &self.state.relay_url, method, path, body, now)?;
        classify(self.transport.send(&request))
    }
}

/// Pushes the entries `batch` (seq and envelopes) in one request and records the outcome.
fn push_batch(
    ctx: &Ctx<'_>,
    batch: &[(u64, Vec<Envelope>)],
    report: &mut SyncReport,
) -> Result<PushOutcome, SyncError> {
    let envelopes: Vec<Envelope> = batch.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
    let body = serde_json::to_vec(&PushRequest { envelopes }).map_err(|_| SyncError::Envelope)?;
    let store = ctx.store;
    match ctx.send("POST", "/v1/envelopes", body)? {
        Answer::Ok(body) => {
            let answer: PushResponse =
                serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
            let acked: BTreeMap<&str, &amanat_protocol::PushAck> =
                answer.acks.iter().map(|a| (a.id.as_str(), a)).collect();
            store.write(|tx| {
                let (mut st, version) = load_state(tx)?;
                for (seq, envs) in batch {
                    if envs.iter().all(|e| acked.contains_key(e.id.as_str())) {
                        outbox::remove(tx, *seq)?;
                        tx.delete(SYNC_PREPARED, outbox::entry_id(*seq))?;
                        for e in envs {
                            if let Some(a) = acked.get(e.id.as_str()) {
                                st.last_ack_seq = st.last_ack_seq.max(a.seq);
                                report.pushed += 1;
                                if a.duplicate {
                                    report.duplicates += 1;
                                }
                            }
                        }
                    }
                }
                tx.update_json(SYNC_STATE, STATE_ID, version, &st)?;
                Ok::<_, SyncError>(())
            })?;
            Ok(PushOutcome::Done)
        }
        Answer::Transient(why) => Ok(PushOutcome::Interrupted(why)),
        Answer::Revoked(body) => {
            obey_revocation(ctx.vault, &ctx.state, &body).map(|_| PushOutcome::Done)
        }
        Answer::Refused { status, code } if status == 401 || status == 403 => {
            Err(SyncError::Rejected { status, code })
        }
        Answer::Refused { code, .. } => {
            if batch.len() > 1 {
                // Find the entry the relay refuses: each alone (the others go through).
                for one in batch {
                    if let PushOutcome::Interrupted(why) =
                        push_batch(ctx, std::slice::from_ref(one), report)?
                    {
                        return Ok(PushOutcome::Interrupted(why));
                    }
                }
                return Ok(PushOutcome::Done);
            }
            store.write(|tx| {
                for (seq, _) in batch {
                    outbox::mark_wedged(tx, *seq, &code)?;
                    report.wedged += 1;
                }
                Ok::<_, SyncError>(())
            })?;
            Ok(PushOutcome::Done)
        }
    }
}

/// Pushes every prepared, non-wedged entry in order, in batches.
fn push_all(ctx: &Ctx<'_>, report: &mut SyncReport) -> Result<Option<Interruption>, SyncError> {
    let ready = ctx.store.read(|tx| {
        let mut out = Vec::new();
        for e in outbox::entries(tx)? {
            if e.wedged.is_some() {
                continue;
            }
            if let Some((p, _)) = tx.get_json::<Prepared>(SYNC_PREPARED, e.id())? {
                out.push((e.seq, p.envelopes));
            }
        }
        Ok::<_, StoreError>(out)
    })?;
    let mut batch: Vec<(u64, Vec<Envelope>)> = Vec::new();
    let (mut count, mut bytes) = (0usize, 0usize);
    let flush = |batch: &mut Vec<(u64, Vec<Envelope>)>, report: &mut SyncReport| {
        let outcome = if batch.is_empty() {
            PushOutcome::Done
        } else {
            push_batch(ctx, batch, report)?
        };
        batch.clear();
        Ok::<_, SyncError>(outcome)
    };
    for (seq, envelopes) in ready {
        let size: usize = envelopes.iter().map(|e| e.payload.len() + 128).sum();
        if !batch.is_empty()
            && (count + envelopes.len() > PUSH_BATCH || bytes + size > PUSH_BATCH_BYTES)
        {
            if let PushOutcome::Interrupted(why) = flush(&mut batch, report)? {
                return Ok(Some(why));
            }
            count = 0;
            bytes = 0;
        }
        count += envelopes.len();
        bytes += size;
        batch.push((seq, envelopes));
    }
    match flush(&mut batch, report)? {
        PushOutcome::Interrupted(why) => Ok(Some(why)),
        PushOutcome::Done => Ok(None),
    }
}

/// Decrypts, verifies and applies one pulled envelope inside the page's transaction; returns the
/// quarantine reason if it is refused.
fn receive(
    tx: &mut Tx<'_>,
    state: &State,
    identity: &age::x25519::Identity,
    env: &amanat_protocol::PulledEnvelope,
) -> Result<Option<&'static str>, SyncError> {
    let payload = match base64::engine::general_purpose::STANDARD.decode(&env.payload) {
        Ok(p) => p,
        Err(_) => return Ok(Some(OpenError::Malformed.code())),
    };
    let record = match envelope::open(&payload, identity) {
        Ok(r) => r,
        Err(e) => return Ok(Some(e.code())),
    };
    if let Err(e) = envelope::verify(&record) {
        return Ok(Some(e.code()));
    }
    if record.envelope_id != env.id {
        return Ok(Some(OpenError::WrongEnvelopeId.code()));
    }
    if record.author != env.sender {
        return Ok(Some(OpenError::WrongAuthor.code()));
    }
    // Trusted authors: this device itself, and team devices it registered ([`share_case`]).
    let trusted = record.author == state.device_id || {
        match RecordId::parse(&record.author) {
            Some(id) => tx
                .get_json::<Peer>(SYNC_PEERS, id)?
                .is_some_and(|(p, _)| p.signing_public_key == record.author_key),
            None => false,
        }
    };
    if !trusted {
        return Ok(Some(OpenError::UnknownAuthor.code()));
    }
    Ok(apply::apply(tx, &record)?.err())
}

/// Pulls every page after the persisted cursor; each page is applied in one transaction with the
/// cursor advance.
fn pull_all(ctx: &Ctx<'_>, report: &mut SyncReport) -> Result<Option<Interruption>, SyncError> {
    loop {
        let cursor = ctx.store.read(load_state)?.0.cursor;
        let path = format!("/v1/envelopes?after={cursor}&limit={PULL_PAGE}");
        let body = match ctx.send("GET", &path, Vec::new())? {
            Answer::Ok(body) => body,
            Answer::Transient(why) => return Ok(Some(why)),
            Answer::Revoked(body) => {
                obey_revocation(ctx.vault, &ctx.state, &body)?;
                return Ok(None);
            }
            Answer::Refused { status, code } => return Err(SyncError::Rejected { status, code }),
        };
        let page: PullResponse =
            serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
        if page.next_after < cursor {
            return Err(SyncError::UnexpectedResponse);
        }
        let (pulled, quarantined) = ctx.store.write(|tx| {
            let identity = attachments::device_identity(tx)?;
            let (mut state, version) = load_state(tx)?;
            let (mut pulled, mut quarantined) = (0u64, 0u64);
            for env in &page.envelopes {
                let Some(uuid) = uuid::Uuid::parse_str(&env.id).ok() else {
                    return Err(SyncError::UnexpectedResponse);
                };
                let applied_id = RecordId::from_bytes(*uuid.as_bytes());
                if tx.get(SYNC_APPLIED, applied_id)?.is_some() {
                    continue; // at-least-once delivery: already applied
                }
                match receive(tx, &state, &identity, env)? {
                    None => {
                        tx.insert_with_id(SYNC_APPLIED, applied_id, b"1")?;
                        pulled += 1;
                    }
                    Some(reason) => {
                        tx.insert_json(
                            SYNC_QUARANTINE,
                            &Quarantined {
                                envelope_id: env.id.clone(),
                                seq: env.seq,
                                sender: env.sender.clone(),
                                reason: reason.to_string(),
                                payload: env.payload.clone(),
                            },
                        )?;
                        quarantined += 1;
                    }
                }
            }
            state.cursor = page.next_after;
            tx.update_json(SYNC_STATE, STATE_ID, version, &state)?;
            Ok::<_, SyncError>((pulled, quarantined))
        })?;
        report.pulled += pulled;
        report.quarantined += quarantined;
        if !page.more {
            return Ok(None);
        }
    }
}

/// One sync run: prepare, push, pull, apply. Blocking; the shell schedules it (the core never
/// starts a background loop). A transient failure ends the run early with
/// [`SyncReport::interrupted`] set and nothing lost; a verified revocation wipes the vault and
/// returns [`SyncError::Revoked`].
pub fn sync_once(vault: &Vault, transport: &dyn Transport) -> Result<SyncReport, SyncError> {
    let store = vault.store()?;
    let (state, key) = store.read(|tx| {
        let (state, _) = load_state(tx)?;
        Ok::<_, SyncError>((state, load_key(tx)?))
    })?;
    let ctx = Ctx {
        vault,
        store: &store,
        state,
        key,
        transport,
    };
    let mut report = SyncReport {
        withheld: prepare_all(&store, &ctx.key)?,
        ..SyncReport::default()
    };
    report.interrupted = push_all(&ctx, &mut report)?;
    if report.interrupted.is_none() {
        report.interrupted = pull_all(&ctx, &mut report)?;
    }
    if report.interrupted.is_none() {
        let now = vault.clock().now_ms();
        store.write(|tx| {
            let (mut st, version) = load_state(tx)?;
            st.last_success_ms = Some(now);
            tx.update_json(SYNC_STATE, STATE_ID, version, &st)?;
            Ok::<_, SyncError>(())
        })?;
    }
    report.pending = pending(vault)?;
    Ok(report)
}
