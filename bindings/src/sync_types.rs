//! Sync types that cross the boundary as they are (uniffi remote types, like `remote.rs`), and
//! the few that need a twin here.
//!
//! Remote, renamed through a type alias because the core's names are only clear inside its
//! `sync` module (`Phase`, `Progress`, `Interruption`, `Quarantined`, `EntryKind`): the alias
//! gives the generated type a name that says "sync" in a flat Kotlin/Swift/Python namespace.
//! None of these holds survivor data: ids, counts, reason codes, ciphertext.
//!
//! Mirrored: [`TeamDevice`] (the core's `Peer` holds a set, which uniffi cannot carry), and the
//! clash types [`SyncClash`], [`SyncClashValue`], [`ClashChoice`] (they carry survivor data, so
//! their `Debug` here is redacted like the core's, and ids cross as hex text).

use std::collections::BTreeSet;

/// Step of a sync run (the core's `sync::Phase`).
pub type SyncPhase = amanat_core::sync::Phase;
/// Where a sync run is (the core's `sync::Progress`).
pub type SyncProgress = amanat_core::sync::Progress;
/// Why a sync run stopped early (the core's `sync::Interruption`).
pub type SyncInterruption = amanat_core::sync::Interruption;
/// Why a request got no HTTP answer (the core's `sync::TransportError`).
pub type TransportErrorKind = amanat_core::sync::TransportError;
/// Kind of a queued change (the core's `journal::outbox::EntryKind`).
pub type SyncEntryKind = amanat_core::journal::outbox::EntryKind;
/// A pulled envelope kept because it failed verification (the core's `sync::Quarantined`).
pub type QuarantinedEnvelope = amanat_core::sync::Quarantined;
pub use amanat_core::sync::{Enrollment, SyncReport, SyncStatus, WedgedEntry};
pub use amanat_protocol::DeviceRole;

/// Step of a sync run, for a progress notification.
#[uniffi::remote(Enum)]
pub enum SyncPhase {
    /// Building, signing and encrypting envelopes for queued changes (local, no network).
    Prepare,
    /// Sending envelopes to the relay.
    Push,
    /// Uploading attachment files.
    Upload,
    /// Fetching, verifying and applying envelopes.
    Pull,
    /// Downloading attachment files.
    Download,
}

/// Where a sync run is: a phase, items done of the items known, bytes moved so far in the run.
#[uniffi::remote(Record)]
pub struct SyncProgress {
    /// Current step.
    pub phase: SyncPhase,
    /// Items of this phase done (entries, envelopes, chunks).
    pub done: u64,
    /// Items of this phase known so far (a pull learns its total as pages arrive).
    pub total: u64,
    /// Request body bytes sent in this run so far.
    pub bytes_up: u64,
    /// Response body bytes received in this run so far.
    pub bytes_down: u64,
}

/// Why a request got no HTTP answer. All are transient (try again later) except `InsecureUrl`
/// and `InvalidUrl`, configuration errors no retry fixes.
#[uniffi::remote(Enum)]
pub enum TransportErrorKind {
    /// The connection could not be made (DNS, refused, unreachable).
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The connection broke mid-request or mid-response.
    Io,
    /// The answer was not valid HTTP or too large.
    Protocol,
    /// Plain `http://` to a host that is not a loopback address.
    InsecureUrl,
    /// The URL cannot be parsed or has an unsupported scheme.
    InvalidUrl,
    /// Anything else the HTTP stack reported, including an exception thrown by a shell's
    /// `Transport` (its text is not kept).
    Other,
}

/// Why a sync run stopped early. Everything not acknowledged stays queued; schedule another
/// run (with backoff) and it resumes where this one stopped.
#[uniffi::remote(Enum)]
pub enum SyncInterruption {
    /// No answer from the relay (network, timeout, a failing shell transport).
    Transport(TransportErrorKind),
    /// The relay answered 5xx.
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The relay answered 429.
    RateLimited,
    /// `SyncSession.cancel()` was called; the run stopped between two steps.
    Cancelled,
}

/// What one sync run did.
#[uniffi::remote(Record)]
pub struct SyncReport {
    /// Envelopes the relay acknowledged (entries removed from the outbox).
    pub pushed: u64,
    /// Of those, envelopes the relay already held (a retry after a lost answer).
    pub duplicates: u64,
    /// Envelopes pulled and applied.
    pub pulled: u64,
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Response body bytes received.
    pub bytes_down: u64,
    /// Fields (case or identity) that entered a clash in this run: concurrent edits kept side by
    /// side until resolved.
    pub clashes: u64,
    /// Pulled envelopes that failed verification and were quarantined (`Vault.quarantined()`).
    pub quarantined: u64,
    /// Entries newly marked wedged by this run (refused for good by the relay).
    pub wedged: u64,
    /// Entries that consent allowed to send to nobody (e.g. an identity record without
    /// caseworker consent): removed from the outbox without an envelope.
    pub withheld: u64,
    /// Entries still queued after this run (wedged ones included).
    pub pending: u64,
    /// Set when the run stopped early; `null` when it completed.
    pub interrupted: Option<SyncInterruption>,
    /// After a transient failure: how long to wait before the next run (ms; 0.5 s doubling per
    /// consecutive failure to 15 min, with jitter, or the relay's `Retry-After` if longer).
    /// `null` after a completed or cancelled run. Schedule the retry with it.
    pub retry_after_ms: Option<u64>,
}

/// Kind of a queued change.
#[uniffi::remote(Enum)]
pub enum SyncEntryKind {
    /// A case: creation or a change of its narrative fields.
    Case,
    /// The identity record of a case (names, contacts).
    Identity,
    /// A consent version (including a withdrawal).
    Consent,
    /// A submitted interview or amendment.
    Interview,
    /// An audit chain entry (to HQ only; ids and times).
    Audit,
    /// The signed withdrawal notice of a consent version (to HQ only).
    Withdrawal,
    /// An attachment's metadata (its encrypted file travels as a blob first).
    Attachment,
    /// This device's keys, sent once to HQ after enrollment (so HQ can refer cases to it).
    Device,
}

/// An outbox entry the relay refused for good: list it, retry it or discard it.
#[uniffi::remote(Record)]
pub struct WedgedEntry {
    /// Outbox position (what `discardWedged` takes).
    pub seq: u64,
    /// Kind of change.
    pub kind: SyncEntryKind,
    /// Stable reason code from the relay (`envelope_too_large`, …), or `http_<status>`.
    pub reason: String,
}

/// The sync screen's state, read in one transaction.
#[uniffi::remote(Record)]
pub struct SyncStatus {
    /// Entries waiting in the outbox (wedged ones included).
    pub pending: u64,
    /// Entries the relay refused for good, oldest first, with their reason codes.
    pub wedged: Vec<WedgedEntry>,
    /// When a sync run last completed without interruption (ms since epoch).
    pub last_success_ms: Option<u64>,
    /// Whether this device is enrolled (if not, a sync fails with `NotEnrolled`).
    pub enrolled: bool,
    /// Transient failures in a row since the last finished run (the backoff's step).
    pub consecutive_failures: u32,
    /// When the backoff says to try again (ms since epoch, vault clock), after a failed run.
    pub next_attempt_ms: Option<u64>,
}

/// The role the organisation signed into an enrollment code.
#[uniffi::remote(Enum)]
pub enum DeviceRole {
    /// A field device: pulls envelopes that list its device id.
    Field,
    /// An HQ installation: also pulls envelopes addressed to HQ.
    Hq,
}

/// This device's enrollment: ids and public keys only.
#[uniffi::remote(Record)]
pub struct Enrollment {
    /// This device's id (derived from its signing key).
    pub device_id: String,
    /// Role the organisation signed into the code.
    pub role: DeviceRole,
    /// Fingerprint of the organisation (checked against the code).
    pub org_fingerprint: String,
    /// The relay's base URL.
    pub relay_url: String,
    /// This device's Ed25519 public key, hex (what a team member passes to `shareCase`).
    pub signing_public_key: String,
    /// This device's age recipient (`age1…`; also passed to `shareCase`).
    pub age_recipient: String,
}

/// A pulled envelope kept because it failed verification; never applied. The payload is still
/// encrypted.
#[uniffi::remote(Record)]
pub struct QuarantinedEnvelope {
    /// Envelope id as delivered.
    pub envelope_id: String,
    /// Relay sequence number.
    pub seq: u64,
    /// Sender as the relay named it.
    pub sender: String,
    /// Stable reason code (`bad_signature`, `unknown_author`, `undecryptable`, …).
    pub reason: String,
    /// The payload as delivered (base64 age ciphertext).
    pub payload: String,
}

/// Another device of the team and the cases shared with it (the core's `sync::Peer`; mirrored
/// because the core keeps the case ids in a set).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TeamDevice {
    /// Its device id (derived from its signing key).
    pub device_id: String,
    /// Its Ed25519 public key, hex.
    pub signing_public_key: String,
    /// Its age recipient (`age1…`).
    pub age_recipient: String,
    /// Ids of the cases this device shares with it, sorted.
    pub cases: Vec<String>,
}

impl From<amanat_core::sync::Peer> for TeamDevice {
    fn from(p: amanat_core::sync::Peer) -> Self {
        let amanat_core::sync::Peer {
            device_id,
            signing_public_key,
            age_recipient,
            cases,
            // The peer's HLC clock ids: bookkeeping for naming clash authors, not for shells.
            clocks: _,
        } = p;
        let cases: BTreeSet<String> = cases;
        TeamDevice {
            device_id,
            signing_public_key,
            age_recipient,
            cases: cases.into_iter().collect(),
        }
    }
}

/// Which record of a case a clashing field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ClashedRecord {
    /// The case's narrative fields.
    Case,
    /// The case's identity record (names, contacts).
    Identity,
}

/// One value of a clash: what was written (or that the field was cleared), by which device,
/// when. `Debug` redacts the value (survivor data).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncClashValue {
    /// The value written; `null` when that write cleared the field.
    pub value: Option<String>,
    /// The writing device's id, or `clock:<hex>` when its envelopes were never seen here.
    pub author: String,
    /// When it was written (the hybrid logical clock's milliseconds since the Unix epoch).
    pub written_at_ms: u64,
}

impl std::fmt::Debug for SyncClashValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SyncClashValue(<redacted>, cleared: {}, {}, {})",
            self.value.is_none(),
            self.author,
            self.written_at_ms
        )
    }
}

/// A case or identity field two devices edited concurrently: every value is kept until a person
/// chooses (`Vault.resolveClash`). The first value is the one every replica shows meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncClash {
    /// Names this exact clash; a sync that changes its values changes the id, so a stale choice
    /// is refused (`NotFound{what: "clash"}`).
    pub id: String,
    /// The case (hex id).
    pub case_id: String,
    /// Narrative or identity field.
    pub record: ClashedRecord,
    /// The field name.
    pub field: String,
    /// At least two values, the one shown meanwhile first.
    pub values: Vec<SyncClashValue>,
}

impl From<amanat_core::sync::Clash> for SyncClash {
    fn from(c: amanat_core::sync::Clash) -> Self {
        SyncClash {
            id: c.id,
            case_id: c.case_id.to_string(),
            record: match c.record {
                amanat_core::sync::ClashedRecord::Case => ClashedRecord::Case,
                amanat_core::sync::ClashedRecord::Identity => ClashedRecord::Identity,
            },
            field: c.field,
            values: c
                .values
                .into_iter()
                .map(|v| SyncClashValue {
                    value: v.value,
                    author: v.author,
                    written_at_ms: v.hlc.ms,
                })
                .collect(),
        }
    }
}

/// How to resolve a clash. `Debug` redacts a new value.
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ClashChoice {
    /// Keep the value at `index` of `SyncClash.values`.
    Keep {
        /// Position in `values`.
        index: u32,
    },
    /// Write a new value instead.
    Value {
        /// The new value (survivor data).
        value: String,
    },
    /// Clear the field.
    Clear,
}

impl std::fmt::Debug for ClashChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClashChoice::Keep { index } => write!(f, "Keep({index})"),
            ClashChoice::Value { .. } => f.write_str("Value(<redacted>)"),
            ClashChoice::Clear => f.write_str("Clear"),
        }
    }
}

impl From<ClashChoice> for amanat_core::sync::Choice {
    fn from(c: ClashChoice) -> Self {
        match c {
            ClashChoice::Keep { index } => {
                amanat_core::sync::Choice::Keep(usize::try_from(index).unwrap_or(usize::MAX))
            }
            ClashChoice::Value { value } => amanat_core::sync::Choice::Value(value),
            ClashChoice::Clear => amanat_core::sync::Choice::Clear,
        }
    }
}
