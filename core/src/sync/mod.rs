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
pub mod background;
mod backoff;
mod clashes;
#[cfg(test)]
mod convergence_tests;
pub mod custody;
mod enroll;
pub mod envelope;
pub mod hq;
pub mod media;
pub mod orders;
mod prepare;
mod pull;
mod push;
mod relay;
pub mod retention;
mod state;
pub mod transport;

pub use backoff::{
    backoff, backoff_ceiling_ms, backoff_delay_ms, Backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
};
pub use clashes::{clashes, resolve_clash, Choice, Clash, ClashError, ClashValue, ClashedRecord};
pub use custody::{
    verify_custody, verify_custody_in, CustodyFailure, CustodyItem, CustodyReason, CustodyReport,
};
pub use enroll::{enroll, enroll_with_code};
pub use media::{pending_downloads, AttachmentMeta, BLOB_CHUNK};
pub use prepare::{DeviceProfile, WithdrawalNotice};
pub use state::{
    discard_wedged, enrollment, pending, quarantined, retry_wedged, share_case, status, wedged,
    Enrollment, Peer, Quarantined, SyncStatus, WedgedEntry,
};
pub use transport::{Request, Response, Transport, TransportError};

use prepare::*;
use pull::*;
use push::*;
use relay::*;
use state::*;

use crate::journal::hlc::Hlc;
use crate::journal::outbox::{self, Entry, EntryKind};
use crate::names::collections::{
    self, DEVICE_KEYS, SYNC_APPLIED, SYNC_CHAIN, SYNC_ORDERS, SYNC_PEERS, SYNC_PREPARED,
    SYNC_QUARANTINE, SYNC_STATE, SYNC_UPLOADS,
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
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::Zeroizing;

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
    /// The code names a relay (org-signed) and the URL given separately is another one. Refused
    /// rather than silently preferring either: a URL typed or scanned beside the code may be a
    /// lure, and the signed one may be a mistake the worker should report. Nothing was sent.
    #[error("the relay URL differs from the one signed into the enrollment code")]
    RelayUrlMismatch,
    /// No relay URL: the code does not carry one and none was given.
    #[error("the enrollment code names no relay; give the relay URL")]
    NoRelayUrl,
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

/// Why a sync stopped early with everything kept for a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// No answer from the relay (network, timeout, connection lost).
    Transport(TransportError),
    /// The relay answered 5xx or 408, or something between answered what no relay does (1xx,
    /// 3xx: a captive portal's redirect).
    Server {
        /// The status.
        status: u16,
    },
    /// The relay answered 429.
    RateLimited,
    /// The caller cancelled the run ([`Cancel::cancel`]); it stopped between two steps.
    Cancelled,
}

/// Step of a sync run, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Building envelopes for queued changes.
    Prepare,
    /// Sending envelopes to the relay.
    Push,
    /// Uploading attachment files.
    Upload,
    /// Fetching and applying envelopes.
    Pull,
    /// Downloading attachment files.
    Download,
}

/// Where a sync run is: a phase, items done of the items known, bytes moved so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Current step.
    pub phase: Phase,
    /// Items of this phase done (entries, envelopes, chunks).
    pub done: u64,
    /// Items of this phase known so far (a pull learns its total as pages arrive).
    pub total: u64,
    /// Request body bytes sent in this run so far.
    pub bytes_up: u64,
    /// Response body bytes received in this run so far.
    pub bytes_down: u64,
}

/// Receives progress reports during [`sync_with`] (a shell updates its notification). Called on
/// the syncing thread; keep it quick.
pub trait Observer: Send + Sync {
    /// One progress report.
    fn progress(&self, progress: &Progress);
}

/// Cancellation handle: another thread calls [`Cancel::cancel`]; the run stops at the next
/// boundary between batches, pages or chunks with [`Interruption::Cancelled`], everything it had
/// not finished still queued.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

impl Cancel {
    /// A handle not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the run to stop at its next boundary.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the caller lends a sync run: an optional observer and an optional cancellation handle.
#[derive(Clone, Copy, Default)]
pub struct Control<'a> {
    /// Gets progress reports.
    pub observer: Option<&'a dyn Observer>,
    /// Checked between steps.
    pub cancel: Option<&'a Cancel>,
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
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Response body bytes received.
    pub bytes_down: u64,
    /// Fields (case or identity) that entered a clash in this run: concurrent edits kept side by
    /// side until resolved ([`clashes`], [`resolve_clash`]).
    pub clashes: u64,
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
    /// After a transient failure: how long the shell should wait before the next run (ms; 0.5 s
    /// doubling per consecutive failure to 15 min, with jitter, or the relay's `Retry-After` if
    /// longer; see [`backoff()`]). `None` after a finished or cancelled run.
    pub retry_after_ms: Option<u64>,
}

/// One sync run: prepare, push, pull, apply. Blocking; the shell schedules it (the core never
/// starts a background loop). A transient failure ends the run early with
/// [`SyncReport::interrupted`] set and nothing lost; a verified revocation wipes the vault and
/// returns [`SyncError::Revoked`].
pub fn sync_once(vault: &Vault, transport: &dyn Transport) -> Result<SyncReport, SyncError> {
    sync_with(vault, transport, &Control::default())
}

/// [`sync_once`] with a progress observer and a cancellation handle.
pub fn sync_with(
    vault: &Vault,
    transport: &dyn Transport,
    control: &Control<'_>,
) -> Result<SyncReport, SyncError> {
    let store = vault.store()?;
    let (state, key) = store.read(|tx| {
        let (state, _) = load_state(tx)?;
        Ok::<_, SyncError>((state, load_key(tx)?))
    })?;
    let ctx = Ctx::new(vault, &store, state, key, transport, control);
    let mut report = SyncReport::default();
    // Order (docs/SYNC.md "Attachments"): an attachment's metadata is pushed only after the relay
    // confirmed its complete blob, so no receiver waits for a blob that can never arrive; other
    // entries do not wait behind a large upload.
    media::prepare_uploads(vault, ctx.store, &mut report)?;
    let (withheld, interrupted) = prepare_all(&ctx)?;
    report.withheld = withheld;
    report.interrupted = interrupted;
    if report.interrupted.is_none() {
        report.interrupted = push_all(&ctx, &mut report)?;
    }
    if report.interrupted.is_none() {
        report.interrupted = media::upload_all(&ctx, &mut report)?;
    }
    if report.interrupted.is_none() {
        // The attachment entries whose blob just completed.
        report.interrupted = push_all(&ctx, &mut report)?;
    }
    if report.interrupted.is_none() {
        report.interrupted = pull_all(&ctx, &mut report)?;
    }
    if report.interrupted.is_none() {
        report.interrupted = media::download_all(&ctx, &mut report)?;
    }
    // What HQ acknowledged and the retention period let go (only with a retention order).
    retention::purge_due(vault, vault.clock().now_ms())?;
    let now = vault.clock().now_ms();
    let hint = ctx.retry_hint_ms.get();
    report.retry_after_ms =
        store.write(|tx| backoff::record_outcome(tx, report.interrupted.as_ref(), now, hint))?;
    report.bytes_up = ctx.bytes_up.get();
    report.bytes_down = ctx.bytes_down.get();
    report.pending = pending(vault)?;
    Ok(report)
}
