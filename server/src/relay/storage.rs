//! The one storage contract of the relay, implemented by the SQLite and PostgreSQL backends.
//!
//! Why a trait with two implementations and not two code paths in the handlers: every rule the
//! relay enforces (one-time codes, nonce replay, idempotent gap-free pushes, resumable blobs) must
//! hold the same on both, and the test suite runs once per backend against this contract.

use amanat_protocol::{DeviceRole, PushAck};
use std::future::Future;

/// Failures of a backend, typed so the HTTP layer can map each to a status and error code.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database or file system failed; the text is for the server log only (never a body).
    #[error("storage backend: {0}")]
    Backend(String),
    /// The enrollment code was already used.
    #[error("enrollment code already used")]
    CodeUsed,
    /// A device with this key is already enrolled.
    #[error("device already enrolled")]
    AlreadyEnrolled,
    /// The device is not known.
    #[error("unknown device")]
    UnknownDevice,
    /// An envelope id is already held for another sender.
    #[error("envelope id held for another sender")]
    IdConflict(String),
    /// A blob chunk was sent for an offset other than the one the relay holds.
    #[error("blob offset mismatch")]
    OffsetMismatch {
        /// Bytes the relay holds for the blob.
        held: u64,
    },
    /// The blob is already complete; nothing more can be appended.
    #[error("blob already complete")]
    BlobComplete,
    /// Appending would exceed the configured blob size limit.
    #[error("blob too large")]
    BlobTooLarge,
    /// The database was migrated by a newer relay: this binary refuses to touch it.
    #[error("relay database schema version {found} is newer than this relay supports ({supported}): run the newer relay, or restore a backup made for this version")]
    SchemaTooNew {
        /// Version recorded in the database.
        found: u32,
        /// Last version this binary knows.
        supported: u32,
    },
    /// A schema migration failed and was rolled back (the version stays where it was).
    #[error("relay schema migration {version} failed: {reason}")]
    Migration {
        /// The migration that failed.
        version: u32,
        /// The database's message (server log only).
        reason: String,
    },
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Backend(format!("sqlite: {e}"))
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        // The OS error kind only: paths name blob addresses, which stay out of logs anyway.
        StorageError::Backend(format!("io: {}", e.kind()))
    }
}

/// An enrolled device as the relay knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Derived id (`amanat_protocol::device_id` of the signing key).
    pub device_id: String,
    /// Raw Ed25519 public key (32 bytes).
    pub signing_public_key: Vec<u8>,
    /// age recipient of the device.
    pub age_recipient: String,
    /// Field device or HQ.
    pub role: DeviceRole,
    /// The org-signed revocation (JSON) if the device is revoked.
    pub revocation: Option<String>,
}

/// An envelope validated by the HTTP layer, ready to store.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// Client UUIDv7.
    pub id: String,
    /// Routing list (device ids and/or `hq`), deduplicated.
    pub recipients: Vec<String>,
    /// Ciphertext bytes.
    pub payload: Vec<u8>,
}

/// A stored envelope returned by a pull.
#[derive(Debug, Clone)]
pub struct StoredEnvelope {
    /// Sequence number.
    pub seq: u64,
    /// Envelope id.
    pub id: String,
    /// Sender device id.
    pub sender: String,
    /// Ciphertext bytes.
    pub payload: Vec<u8>,
}

/// How much of a blob the relay holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobStatus {
    /// Bytes held (the offset to resume at).
    pub held: u64,
    /// True once verified against its address.
    pub complete: bool,
}

/// The storage contract. Every method commits durably before returning `Ok`.
pub trait Storage: Send + Sync + 'static {
    /// Looks a device up by id.
    fn device(
        &self,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, StorageError>> + Send;

    /// Consumes `code_id` and registers `device` in one transaction ([`StorageError::CodeUsed`],
    /// [`StorageError::AlreadyEnrolled`]; neither leaves a trace).
    fn enroll(
        &self,
        code_id: &str,
        device: &DeviceRecord,
        now_s: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Marks a device revoked, keeping the signed order to show it ([`StorageError::UnknownDevice`]).
    fn revoke(
        &self,
        device_id: &str,
        revocation_json: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// All signed revocations held (JSON texts).
    fn revocations(&self) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// Records a request nonce; `false` if this device already used it (a replay).
    fn record_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        timestamp_ms: u64,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// Forgets nonces with a timestamp before `before_ms` (they can no longer pass the clock check).
    fn purge_nonces(
        &self,
        before_ms: u64,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Stores a batch atomically: new ids get the next gap-free sequence numbers, known ids of the
    /// same sender are acknowledged with their existing number.
    fn push(
        &self,
        sender: &str,
        envelopes: &[NewEnvelope],
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<PushAck>, StorageError>> + Send;

    /// Envelopes routed to any of `recipients` (one or two: the caller, and `hq` for an HQ
    /// installation) with `seq > after`, ascending, at most `limit`; the flag tells whether more
    /// follow. Must cost O(limit), not O(backlog): a device pulls a long backlog page by page.
    fn pull(
        &self,
        recipients: &[String],
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<(Vec<StoredEnvelope>, bool), StorageError>> + Send;

    /// Highest sequence number assigned (0 if none); for metrics and tests.
    fn max_seq(&self) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// How much of blob `sha256` is held.
    fn blob_status(
        &self,
        sha256: &str,
    ) -> impl Future<Output = Result<BlobStatus, StorageError>> + Send;

    /// Appends `data` at `offset`, which must equal the bytes held; returns the new length.
    fn blob_append(
        &self,
        sha256: &str,
        offset: u64,
        data: &[u8],
        max_size: u64,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Verifies the held bytes hash to `sha256`: `Some(size)` and marks it complete, or `None`
    /// after discarding the upload (a wrong hash is never kept).
    fn blob_complete(
        &self,
        sha256: &str,
    ) -> impl Future<Output = Result<Option<u64>, StorageError>> + Send;

    /// Reads `len` bytes at `start` of a *complete* blob: `None` if there is no such blob.
    /// Returns the blob's total size with the bytes.
    fn blob_read(
        &self,
        sha256: &str,
        start: u64,
        len: u64,
    ) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, StorageError>> + Send;
}
