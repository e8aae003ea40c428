//! One error type for the whole FFI surface, with stable codes.
//!
//! Shells switch on the variant (Kotlin `AmanatException.WrongPasscode`, Swift
//! `AmanatError.WrongPasscode`, Python `AmanatError.WrongPasscode`) or on [`AmanatError::code`],
//! a stable snake-case string that never changes once released (telemetry, translations of error
//! screens and support tickets key on it). Every `detail` text is the core's `Display` string,
//! which never contains a passcode, key, answer value or field value; the FFI layer adds nothing
//! that could. Typed fields (failed attempts, question id, template path …) are ids and counts.
//!
//! Nothing panics across the boundary: every exported call runs inside [`guard`], which turns a
//! panic into [`AmanatError::Internal`] instead of letting uniffi raise its untyped
//! `InternalException`.

use amanat_core::crypto::CryptoError;
use amanat_core::forms::{AnswerError, TemplateError};
use amanat_core::journal::audit::AuditError;
use amanat_core::records::attachments::AttachmentError;
use amanat_core::records::cases::CaseError;
use amanat_core::records::consent::ConsentError;
use amanat_core::records::interviews::InterviewError;
use amanat_core::sync::{ClashError, SyncError};
use amanat_core::{KeyProviderError, StoreError, VaultError};

use crate::remote::{AnswerReason, ConsentScope, TemplateReason};
use crate::sync_types::TransportErrorKind;

/// Which way the platform key provider failed, so a shell can tell "key gone after reinstall"
/// (offer a wipe and a fresh start) from "keystore busy" (retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyProviderErrorKind {
    /// The platform key does not exist (destroyed by a wipe, or the app was reinstalled).
    KeyMissing,
    /// The platform key refused the data (tampered or foreign blob).
    Rejected,
    /// The platform could not perform the operation now (locked keystore, I/O, a crash in the
    /// provider implementation).
    Unavailable,
    /// The platform key answered, but with bytes that do not belong to this vault (a broken or
    /// substituted keystore). Not a wrong passcode: no attempt was counted. Offer support / wipe.
    Mismatch,
}

/// Every failure of the Amanat API, as seen by Kotlin, Swift and Python.
///
/// One enum rather than one per surface because most calls can fail for the same shared reasons
/// (locked vault, damaged store), and a shell handles those once. `detail` is a safe, English,
/// human-readable sentence for logs; show your own localized text keyed on [`AmanatError::code`].
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum AmanatError {
    /// The directory holds no vault (never created, or wiped). Code `no_vault` (1001).
    #[error("{detail}")]
    NoVault {
        /// Safe description.
        detail: String,
    },
    /// `create` was called where a vault already exists. Code `vault_exists` (1002).
    #[error("{detail}")]
    VaultExists {
        /// Safe description.
        detail: String,
    },
    /// The call needs an unlocked vault. Code `locked` (1003).
    #[error("{detail}")]
    Locked {
        /// Safe description.
        detail: String,
    },
    /// The passcode did not open the vault. Code `wrong_passcode` (1004).
    #[error("{detail}")]
    WrongPasscode {
        /// Consecutive failures, including this one.
        failed_attempts: u32,
        /// When the next attempt is allowed (ms since epoch), if a wait is now required.
        retry_at_ms: Option<u64>,
        /// Safe description.
        detail: String,
    },
    /// Too many failures: no attempt before `retry_at_ms`. Code `backoff` (1005).
    #[error("{detail}")]
    Backoff {
        /// Consecutive failures so far.
        failed_attempts: u32,
        /// When the next attempt is allowed (ms since epoch).
        retry_at_ms: u64,
        /// Seconds from now until then, rounded up.
        retry_after_secs: u64,
        /// Safe description.
        detail: String,
    },
    /// The new passcode is too short. Code `passcode_too_short` (1006).
    #[error("{detail}")]
    PasscodeTooShort {
        /// Required minimum number of characters.
        min_chars: u32,
        /// Safe description.
        detail: String,
    },
    /// The duress passcode must differ from the passcode. Code `duress_conflict` (1007).
    #[error("{detail}")]
    DuressConflict {
        /// Safe description.
        detail: String,
    },
    /// The platform key provider failed; nothing was changed. Code `key_provider` (1008).
    #[error("{detail}")]
    KeyProvider {
        /// Which way it failed.
        kind: KeyProviderErrorKind,
        /// Safe description.
        detail: String,
    },
    /// Vault files or the database are damaged, truncated or from a newer app. Code `corrupt`
    /// (1101).
    #[error("{detail}")]
    Corrupt {
        /// Safe description.
        detail: String,
    },
    /// Stored data failed authentication (altered, moved, or from another vault). Code
    /// `integrity` (1102).
    #[error("{detail}")]
    Integrity {
        /// Safe description.
        detail: String,
    },
    /// Disk, database, randomness or key-derivation failure. Code `storage` (1103).
    #[error("{detail}")]
    Storage {
        /// Safe description.
        detail: String,
    },
    /// A record changed or appeared concurrently; reload and retry. Code `conflict` (1104).
    #[error("{detail}")]
    Conflict {
        /// Safe description.
        detail: String,
    },
    /// No such case, interview, attachment or record. Code `not_found` (1201).
    #[error("{detail}")]
    NotFound {
        /// What was looked for: `case`, `interview`, `attachment` or `record`.
        what: String,
        /// Safe description.
        detail: String,
    },
    /// An argument was malformed (case code, field name, language, KDF parameters …). Code
    /// `invalid_input` (1202).
    #[error("{detail}")]
    InvalidInput {
        /// The argument or field concerned (a schema name, never a value).
        field: String,
        /// Safe description.
        detail: String,
    },
    /// A template failed to load. Code `template` (1301).
    #[error("{detail}")]
    Template {
        /// Index-based location in the template JSON (`$` for the whole document).
        path: String,
        /// The single root cause, typed (show it translated).
        reason: TemplateReason,
        /// Safe English description (`path: cause`).
        detail: String,
    },
    /// The template id/version is neither built in nor installed. Code `unknown_template` (1302).
    #[error("{detail}")]
    UnknownTemplate {
        /// Template id.
        template_id: String,
        /// Template version.
        version: u32,
        /// Safe description.
        detail: String,
    },
    /// An answer was rejected; nothing of the batch was stored. Code `answer` (1303).
    #[error("{detail}")]
    Answer {
        /// Id of the question whose answer was rejected.
        question: String,
        /// The rule that was broken, typed (show it translated; never the value).
        reason: AnswerReason,
        /// Safe English description (`question: rule`).
        detail: String,
    },
    /// The action needs a consent scope the survivor has not (or no longer) granted. Code
    /// `consent_missing` (1401).
    #[error("{detail}")]
    ConsentMissing {
        /// The missing scope.
        scope: ConsentScope,
        /// Safe description.
        detail: String,
    },
    /// A submitted interview cannot change; amend it instead. Code `interview_submitted` (1402).
    #[error("{detail}")]
    InterviewSubmitted {
        /// Safe description.
        detail: String,
    },
    /// Only a submitted interview can be amended. Code `interview_not_submitted` (1403).
    #[error("{detail}")]
    InterviewNotSubmitted {
        /// Safe description.
        detail: String,
    },
    /// This version already has an amendment; amend the newest. Code `already_amended` (1404).
    #[error("{detail}")]
    AlreadyAmended {
        /// Safe description.
        detail: String,
    },
    /// The amendment hash chain does not verify. Code `chain_broken` (1405).
    #[error("{detail}")]
    ChainBroken {
        /// Amendment number where the problem is (0 = original).
        amendment: u32,
        /// Safe description.
        detail: String,
    },
    /// The audit log does not verify. Code `audit_broken` (1406).
    #[error("{detail}")]
    AuditBroken {
        /// The first entry found wrong, if one can be named (none when the newest were removed).
        seq: Option<u64>,
        /// Safe description.
        detail: String,
    },
    /// The attachment exceeded its size limit and was discarded. Code `too_large` (1501).
    #[error("{detail}")]
    TooLarge {
        /// The limit in bytes.
        max_bytes: u64,
        /// Safe description.
        detail: String,
    },
    /// An attachment file is altered, truncated or not an attachment. Code `attachment_damaged`
    /// (1502).
    #[error("{detail}")]
    AttachmentDamaged {
        /// The failing 64 KiB chunk, when known.
        chunk: Option<u64>,
        /// Safe description.
        detail: String,
    },
    /// No key on this device can decrypt the attachment. Code `no_matching_key` (1503).
    #[error("{detail}")]
    NoMatchingKey {
        /// Safe description.
        detail: String,
    },
    /// The attachment writer was finished or aborted already. Code `closed` (1504).
    #[error("{detail}")]
    Closed {
        /// Safe description.
        detail: String,
    },
    /// The call needs an enrolled device (`Vault.enroll` first). Code `not_enrolled` (1601).
    #[error("{detail}")]
    NotEnrolled {
        /// Safe description.
        detail: String,
    },
    /// `enroll` on a device that is enrolled already. Code `already_enrolled` (1602).
    #[error("{detail}")]
    AlreadyEnrolled {
        /// Safe description.
        detail: String,
    },
    /// The enrollment code is not what `amanat device enroll` prints. Code
    /// `bad_enrollment_code` (1603).
    #[error("{detail}")]
    BadEnrollmentCode {
        /// Safe description.
        detail: String,
    },
    /// The relay URL is not `http(s)://host[:port]`. Code `invalid_relay_url` (1604).
    #[error("{detail}")]
    InvalidRelayUrl {
        /// Safe description.
        detail: String,
    },
    /// The relay returned an organisation key that does not match the enrollment code (a
    /// substituted `org.pub`); nothing was stored. Code `org_mismatch` (1605).
    #[error("{detail}")]
    OrgMismatch {
        /// Safe description.
        detail: String,
    },
    /// The relay refused the request for good (enrollment: `code_used`, `code_expired` …; sync:
    /// 401/403 for this device). Code `rejected` (1606).
    #[error("{detail}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The relay's stable error code (`[a-z0-9_]`), or `http_<status>`.
        relay_code: String,
        /// Safe description.
        detail: String,
    },
    /// The relay's answer is not what the protocol says. Code `unexpected_response` (1607).
    #[error("{detail}")]
    UnexpectedResponse {
        /// Safe description.
        detail: String,
    },
    /// No answer from the relay during enrollment, or a URL no transport may call (sync
    /// reports network failures as `SyncReport.interrupted` instead). Code `transport` (1608).
    #[error("{detail}")]
    Transport {
        /// What failed.
        kind: TransportErrorKind,
        /// Safe description.
        detail: String,
    },
    /// The organisation revoked this device (signature verified): the vault was wiped. Show
    /// the wiped state; the vault object is unusable. Code `revoked` (1609).
    #[error("{detail}")]
    Revoked {
        /// Safe description.
        detail: String,
    },
    /// The device signing key could not be generated or loaded. Code `device_key` (1610).
    #[error("{detail}")]
    DeviceKey {
        /// Safe description.
        detail: String,
    },
    /// An envelope could not be built (encryption to the recipients failed). Code `envelope`
    /// (1611).
    #[error("{detail}")]
    Envelope {
        /// Safe description.
        detail: String,
    },
    /// The relay URL given differs from the one the organisation signed into the enrollment code
    /// (a lure, or a typo); nothing was sent. Code `relay_url_mismatch` (1612).
    #[error("{detail}")]
    RelayUrlMismatch {
        /// Safe description.
        detail: String,
    },
    /// The enrollment code names no relay and none was given. Code `no_relay_url` (1613).
    #[error("{detail}")]
    NoRelayUrl {
        /// Safe description.
        detail: String,
    },
    /// A bug: a panic inside the core was caught at the boundary. Code `internal` (1900).
    #[error("{detail}")]
    Internal {
        /// Safe description (never the panic message, which could quote data).
        detail: String,
    },
}

#[uniffi::export]
impl AmanatError {
    /// The stable snake-case code of this error; never changes once released.
    pub fn code(&self) -> String {
        self.code_str().to_string()
    }

    /// The stable numeric code of this error (for telemetry that wants numbers).
    pub fn numeric_code(&self) -> u32 {
        self.code_pair().1
    }
}

impl AmanatError {
    /// The stable string code, without allocation (for Rust callers and tests).
    pub fn code_str(&self) -> &'static str {
        self.code_pair().0
    }

    fn code_pair(&self) -> (&'static str, u32) {
        match self {
            AmanatError::NoVault { .. } => ("no_vault", 1001),
            AmanatError::VaultExists { .. } => ("vault_exists", 1002),
            AmanatError::Locked { .. } => ("locked", 1003),
            AmanatError::WrongPasscode { .. } => ("wrong_passcode", 1004),
            AmanatError::Backoff { .. } => ("backoff", 1005),
            AmanatError::PasscodeTooShort { .. } => ("passcode_too_short", 1006),
            AmanatError::DuressConflict { .. } => ("duress_conflict", 1007),
            AmanatError::KeyProvider { .. } => ("key_provider", 1008),
            AmanatError::Corrupt { .. } => ("corrupt", 1101),
            AmanatError::Integrity { .. } => ("integrity", 1102),
            AmanatError::Storage { .. } => ("storage", 1103),
            AmanatError::Conflict { .. } => ("conflict", 1104),
            AmanatError::NotFound { .. } => ("not_found", 1201),
            AmanatError::InvalidInput { .. } => ("invalid_input", 1202),
            AmanatError::Template { .. } => ("template", 1301),
            AmanatError::UnknownTemplate { .. } => ("unknown_template", 1302),
            AmanatError::Answer { .. } => ("answer", 1303),
            AmanatError::ConsentMissing { .. } => ("consent_missing", 1401),
            AmanatError::InterviewSubmitted { .. } => ("interview_submitted", 1402),
            AmanatError::InterviewNotSubmitted { .. } => ("interview_not_submitted", 1403),
            AmanatError::AlreadyAmended { .. } => ("already_amended", 1404),
            AmanatError::ChainBroken { .. } => ("chain_broken", 1405),
            AmanatError::AuditBroken { .. } => ("audit_broken", 1406),
            AmanatError::TooLarge { .. } => ("too_large", 1501),
            AmanatError::AttachmentDamaged { .. } => ("attachment_damaged", 1502),
            AmanatError::NoMatchingKey { .. } => ("no_matching_key", 1503),
            AmanatError::Closed { .. } => ("closed", 1504),
            AmanatError::NotEnrolled { .. } => ("not_enrolled", 1601),
            AmanatError::AlreadyEnrolled { .. } => ("already_enrolled", 1602),
            AmanatError::BadEnrollmentCode { .. } => ("bad_enrollment_code", 1603),
            AmanatError::InvalidRelayUrl { .. } => ("invalid_relay_url", 1604),
            AmanatError::OrgMismatch { .. } => ("org_mismatch", 1605),
            AmanatError::Rejected { .. } => ("rejected", 1606),
            AmanatError::UnexpectedResponse { .. } => ("unexpected_response", 1607),
            AmanatError::Transport { .. } => ("transport", 1608),
            AmanatError::Revoked { .. } => ("revoked", 1609),
            AmanatError::DeviceKey { .. } => ("device_key", 1610),
            AmanatError::Envelope { .. } => ("envelope", 1611),
            AmanatError::RelayUrlMismatch { .. } => ("relay_url_mismatch", 1612),
            AmanatError::NoRelayUrl { .. } => ("no_relay_url", 1613),
            AmanatError::Internal { .. } => ("internal", 1900),
        }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        AmanatError::NotFound {
            what: what.to_string(),
            detail: format!("{what} not found"),
        }
    }

    pub(crate) fn invalid(field: &str, detail: impl Into<String>) -> Self {
        AmanatError::InvalidInput {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

/// Result type of every exported call.
pub type AmanatResult<T> = Result<T, AmanatError>;

/// Runs `f`, turning a panic into [`AmanatError::Internal`].
///
/// uniffi would catch the panic too, but as an untyped `InternalException` / `InternalError`
/// carrying the panic message, which could quote data; shells should only ever see typed errors.
/// The panic hook installed on the first call keeps the message off stderr (logcat) as well.
pub(crate) fn guard<T>(f: impl FnOnce() -> AmanatResult<T>) -> AmanatResult<T> {
    panic_hook::install();
    let _inside = panic_hook::InsideFfiCall::enter();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_payload) => Err(AmanatError::Internal {
            detail: "internal error in the Amanat core; the operation did not complete".into(),
        }),
    }
}

/// A panic hook that keeps panic messages of FFI calls off stderr.
///
/// Rust's default hook prints the panic message to stderr before `catch_unwind` sees it; on
/// Android stderr can end up in logcat, readable by anyone with a USB cable and a debug bridge,
/// and a message may quote survivor data (`index out of bounds`, a formatted value …). While a
/// thread is inside an FFI call ([`guard`]), the hook prints only the place of the panic and that
/// the message was withheld; panics elsewhere (Rust tests, tools linking this crate) go to the
/// hook that was installed before, unchanged.
mod panic_hook {
    use std::cell::Cell;
    use std::sync::Once;

    thread_local! {
        /// How many guarded FFI calls are running on this thread (they can nest).
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    /// Marks the current thread as inside an FFI call until dropped.
    pub(super) struct InsideFfiCall(());

    impl InsideFfiCall {
        pub(super) fn enter() -> Self {
            DEPTH.with(|d| d.set(d.get().saturating_add(1)));
            InsideFfiCall(())
        }
    }

    impl Drop for InsideFfiCall {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }

    fn inside_ffi_call() -> bool {
        DEPTH.with(|d| d.get() > 0)
    }

    /// Installs the hook once per process, chaining to the previous one.
    pub(super) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if inside_ffi_call() {
                    // The place is code, not data; the payload is never formatted.
                    let place = info
                        .location()
                        .map(|l| format!("{}:{}", l.file(), l.line()))
                        .unwrap_or_else(|| "an unknown place".into());
                    eprintln!(
                        "amanat: internal error (panic) at {place}, caught at the FFI boundary; \
                         message withheld"
                    );
                } else {
                    previous(info);
                }
            }));
        });
    }
}

impl From<KeyProviderError> for AmanatError {
    fn from(e: KeyProviderError) -> Self {
        let kind = match e {
            KeyProviderError::KeyMissing => KeyProviderErrorKind::KeyMissing,
            KeyProviderError::Rejected => KeyProviderErrorKind::Rejected,
            KeyProviderError::Unavailable(_) => KeyProviderErrorKind::Unavailable,
            KeyProviderError::Mismatch => KeyProviderErrorKind::Mismatch,
        };
        AmanatError::KeyProvider {
            kind,
            detail: format!("key provider: {e}"),
        }
    }
}

impl From<CryptoError> for AmanatError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity | CryptoError::Malformed => AmanatError::Integrity {
                detail: e.to_string(),
            },
            CryptoError::KdfParams(_) => AmanatError::invalid("kdf_params", e.to_string()),
            CryptoError::Random | CryptoError::Kdf => AmanatError::Storage {
                detail: e.to_string(),
            },
        }
    }
}

impl From<StoreError> for AmanatError {
    fn from(e: StoreError) -> Self {
        let detail = e.to_string();
        match e {
            StoreError::Locked => AmanatError::Locked { detail },
            StoreError::NotFound => AmanatError::NotFound {
                what: "record".into(),
                detail,
            },
            StoreError::VersionConflict { .. } | StoreError::AlreadyExists => {
                AmanatError::Conflict { detail }
            }
            StoreError::Integrity => AmanatError::Integrity { detail },
            StoreError::Corrupt | StoreError::UnsupportedSchema(_) | StoreError::Shape => {
                AmanatError::Corrupt { detail }
            }
            StoreError::Crypto(c) => c.into(),
            // SQLite messages name no data (only ciphertext enters SQLite): kept as detail.
            StoreError::Database(_) => AmanatError::Storage { detail },
        }
    }
}

impl From<VaultError> for AmanatError {
    fn from(e: VaultError) -> Self {
        let detail = e.to_string();
        match e {
            VaultError::NoVault => AmanatError::NoVault { detail },
            VaultError::AlreadyExists => AmanatError::VaultExists { detail },
            VaultError::Locked => AmanatError::Locked { detail },
            VaultError::WrongPasscode {
                failed_attempts,
                retry_at_ms,
            } => AmanatError::WrongPasscode {
                failed_attempts,
                retry_at_ms,
                detail,
            },
            VaultError::Backoff {
                failed_attempts,
                retry_at_ms,
                retry_after_secs,
            } => AmanatError::Backoff {
                failed_attempts,
                retry_at_ms,
                retry_after_secs,
                detail,
            },
            VaultError::PasscodeTooShort { min } => AmanatError::PasscodeTooShort {
                min_chars: u32::try_from(min).unwrap_or(u32::MAX),
                detail,
            },
            VaultError::DuressConflict => AmanatError::DuressConflict { detail },
            VaultError::CorruptSlots(_) => AmanatError::Corrupt { detail },
            VaultError::KeyProvider(k) => k.into(),
            VaultError::Store(s) => s.into(),
            VaultError::Crypto(c) => c.into(),
            VaultError::Io(_) => AmanatError::Storage { detail },
        }
    }
}

impl From<CaseError> for AmanatError {
    fn from(e: CaseError) -> Self {
        let detail = e.to_string();
        match e {
            CaseError::NotFound => AmanatError::NotFound {
                what: "case".into(),
                detail,
            },
            CaseError::BadCode(_) => AmanatError::invalid("case_code", detail),
            CaseError::BadField { field, .. } => AmanatError::InvalidInput { field, detail },
            CaseError::Vault(v) => v.into(),
            CaseError::Store(s) => s.into(),
        }
    }
}

impl From<ConsentError> for AmanatError {
    fn from(e: ConsentError) -> Self {
        let detail = e.to_string();
        match e {
            ConsentError::Missing(scope) => AmanatError::ConsentMissing { scope, detail },
            ConsentError::Invalid(_) => AmanatError::invalid("consent", detail),
            ConsentError::Case(c) => c.into(),
            ConsentError::Vault(v) => v.into(),
            ConsentError::Store(s) => s.into(),
        }
    }
}

impl From<TemplateError> for AmanatError {
    fn from(e: TemplateError) -> Self {
        let detail = e.to_string();
        let TemplateError {
            path,
            reason,
            detail: _,
        } = e;
        AmanatError::Template {
            path,
            reason,
            detail,
        }
    }
}

impl From<AnswerError> for AmanatError {
    fn from(e: AnswerError) -> Self {
        let detail = e.to_string();
        let AnswerError {
            question,
            reason,
            detail: _,
        } = e;
        AmanatError::Answer {
            question,
            reason,
            detail,
        }
    }
}

impl From<InterviewError> for AmanatError {
    fn from(e: InterviewError) -> Self {
        let detail = e.to_string();
        match e {
            InterviewError::NotFound => AmanatError::NotFound {
                what: "interview".into(),
                detail,
            },
            InterviewError::UnknownTemplate { id, version } => AmanatError::UnknownTemplate {
                template_id: id,
                version,
                detail,
            },
            InterviewError::Template(t) => t.into(),
            InterviewError::Answer(a) => AmanatError::Answer {
                question: a.question,
                reason: a.reason,
                detail,
            },
            InterviewError::Immutable => AmanatError::InterviewSubmitted { detail },
            InterviewError::NotSubmitted => AmanatError::InterviewNotSubmitted { detail },
            InterviewError::AlreadyAmended => AmanatError::AlreadyAmended { detail },
            InterviewError::ConsentAnswer { question } => AmanatError::Answer {
                question,
                reason: AnswerReason::ConsentViaRecord,
                detail,
            },
            InterviewError::ChainBroken { amendment, .. } => {
                AmanatError::ChainBroken { amendment, detail }
            }
            InterviewError::Consent(c) => c.into(),
            InterviewError::Case(c) => c.into(),
            InterviewError::Vault(v) => v.into(),
            InterviewError::Store(s) => s.into(),
        }
    }
}

impl From<AuditError> for AmanatError {
    fn from(e: AuditError) -> Self {
        let detail = e.to_string();
        match e {
            AuditError::Edited { seq }
            | AuditError::Missing { seq }
            | AuditError::Reordered { seq } => AmanatError::AuditBroken {
                seq: Some(seq),
                detail,
            },
            AuditError::Truncated => AmanatError::AuditBroken { seq: None, detail },
            AuditError::Store(s) => s.into(),
        }
    }
}

impl From<AttachmentError> for AmanatError {
    fn from(e: AttachmentError) -> Self {
        let detail = e.to_string();
        match e {
            AttachmentError::WrongQuestion { question, reason } => AmanatError::Answer {
                question,
                reason: attachment_question_reason(reason),
                detail,
            },
            AttachmentError::TooLarge { max_bytes } => AmanatError::TooLarge { max_bytes, detail },
            AttachmentError::Integrity { chunk } => AmanatError::AttachmentDamaged {
                chunk: Some(chunk),
                detail,
            },
            AttachmentError::Truncated | AttachmentError::Malformed => {
                AmanatError::AttachmentDamaged {
                    chunk: None,
                    detail,
                }
            }
            AttachmentError::NoMatchingKey => AmanatError::NoMatchingKey { detail },
            AttachmentError::NotFound => AmanatError::NotFound {
                what: "attachment".into(),
                detail,
            },
            // The record exists (evidence kept) but its file is gone: a distinct `what` so the
            // shell can say "the recording is missing" rather than "no such attachment".
            AttachmentError::FileMissing => AmanatError::NotFound {
                what: "attachment_file".into(),
                detail,
            },
            AttachmentError::Closed => AmanatError::Closed { detail },
            AttachmentError::BadRecipient(_) => AmanatError::invalid("recipients", detail),
            AttachmentError::Consent(c) => c.into(),
            AttachmentError::Interview(i) => i.into(),
            AttachmentError::Vault(v) => v.into(),
            AttachmentError::Store(s) => s.into(),
            AttachmentError::Io(_) | AttachmentError::HashThread => AmanatError::Storage { detail },
        }
    }
}

impl From<ClashError> for AmanatError {
    fn from(e: ClashError) -> Self {
        match e {
            ClashError::NotFound => AmanatError::NotFound {
                what: "clash".to_string(),
                detail: e.to_string(),
            },
            ClashError::BadChoice => AmanatError::invalid("choice", e.to_string()),
            ClashError::Case(c) => c.into(),
            ClashError::Vault(v) => v.into(),
            ClashError::Store(s) => s.into(),
        }
    }
}

impl From<SyncError> for AmanatError {
    fn from(e: SyncError) -> Self {
        let detail = e.to_string();
        match e {
            SyncError::NotEnrolled => AmanatError::NotEnrolled { detail },
            SyncError::AlreadyEnrolled => AmanatError::AlreadyEnrolled { detail },
            SyncError::BadCode => AmanatError::BadEnrollmentCode { detail },
            SyncError::InvalidRelayUrl => AmanatError::InvalidRelayUrl { detail },
            SyncError::OrgMismatch => AmanatError::OrgMismatch { detail },
            // `code` is already reduced by the core to `[a-z0-9_]{1,64}` or `http_<status>`.
            SyncError::Rejected { status, code } => AmanatError::Rejected {
                status,
                relay_code: code,
                detail,
            },
            SyncError::UnexpectedResponse => AmanatError::UnexpectedResponse { detail },
            SyncError::Transport(kind) => AmanatError::Transport { kind, detail },
            SyncError::Revoked => AmanatError::Revoked { detail },
            SyncError::Key => AmanatError::DeviceKey { detail },
            SyncError::Envelope => AmanatError::Envelope { detail },
            SyncError::RelayUrlMismatch => AmanatError::RelayUrlMismatch { detail },
            SyncError::NoRelayUrl => AmanatError::NoRelayUrl { detail },
            SyncError::Attachment(a) => a.into(),
            SyncError::Vault(v) => v.into(),
            SyncError::Store(s) => s.into(),
        }
    }
}

/// The typed reason for the attachment component's `WrongQuestion` rejections.
///
/// The core reports these as fixed English strings (`AttachmentError::WrongQuestion.reason`),
/// so this is the one mapping here that is not checked by the compiler; `rust_api.rs`
/// (`attachment_rejections_have_typed_reasons`) drives each of the three through the real core
/// so a changed string fails a test. A string not listed (none exists today) is reported as
/// `NotAttachmentQuestion`, the most general of the three.
fn attachment_question_reason(reason: &str) -> AnswerReason {
    match reason {
        "unknown question" => AnswerReason::UnknownQuestion,
        "media type does not match the question" => AnswerReason::WrongMediaType,
        "not an audio or photo question" => AnswerReason::NotAttachmentQuestion,
        _unlisted => AnswerReason::NotAttachmentQuestion,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use amanat_core::forms::ConsentScope as CoreScope;
    use amanat_core::forms::Template;

    #[test]
    fn vault_errors_keep_their_typed_fields() {
        let e: AmanatError = VaultError::WrongPasscode {
            failed_attempts: 3,
            retry_at_ms: Some(42),
        }
        .into();
        assert_eq!(e.code(), "wrong_passcode");
        assert_eq!(e.numeric_code(), 1004);
        assert!(matches!(
            e,
            AmanatError::WrongPasscode {
                failed_attempts: 3,
                retry_at_ms: Some(42),
                ..
            }
        ));
        let e: AmanatError = VaultError::KeyProvider(KeyProviderError::KeyMissing).into();
        assert!(matches!(
            e,
            AmanatError::KeyProvider {
                kind: KeyProviderErrorKind::KeyMissing,
                ..
            }
        ));
        let e: AmanatError = VaultError::Store(StoreError::Corrupt).into();
        assert_eq!(e.code_str(), "corrupt");
        let e: AmanatError = CaseError::Vault(VaultError::Locked).into();
        assert_eq!(e.code_str(), "locked");
    }

    #[test]
    fn nested_domain_errors_map_to_the_innermost_cause() {
        let e: AmanatError =
            InterviewError::Consent(ConsentError::Missing(CoreScope::Audio)).into();
        assert!(matches!(
            e,
            AmanatError::ConsentMissing {
                scope: ConsentScope::Audio,
                ..
            }
        ));
        let out_of_range = AnswerReason::OutOfRange {
            min: Some("0".into()),
            max: Some("24".into()),
        };
        let e: AmanatError = InterviewError::Answer(AnswerError::new(
            "hours_per_day",
            out_of_range.clone(),
            "must be between 0 and 24",
        ))
        .into();
        match e {
            AmanatError::Answer {
                question,
                reason,
                detail,
            } => {
                assert_eq!(question, "hours_per_day");
                assert_eq!(reason, out_of_range);
                assert!(detail.contains("hours_per_day: must be between 0 and 24"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let e: AmanatError = InterviewError::ConsentAnswer {
            question: "consent_audio".into(),
        }
        .into();
        assert!(matches!(
            e,
            AmanatError::Answer {
                reason: AnswerReason::ConsentViaRecord,
                ..
            }
        ));
        let e: AmanatError = AuditError::Truncated.into();
        assert!(matches!(e, AmanatError::AuditBroken { seq: None, .. }));
        let e: AmanatError = AttachmentError::Integrity { chunk: 2 }.into();
        assert!(matches!(
            e,
            AmanatError::AttachmentDamaged { chunk: Some(2), .. }
        ));
    }

    #[test]
    fn template_errors_carry_path_and_typed_reason() {
        let e: AmanatError = Template::from_json(r#"{"id": "t"}"#).unwrap_err().into();
        match e {
            AmanatError::Template {
                path,
                reason,
                detail,
            } => {
                assert_eq!(path, "version");
                assert_eq!(reason, TemplateReason::MissingField);
                assert_eq!(detail, "version: missing field");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn codes_are_unique() {
        let all = [
            AmanatError::NoVault {
                detail: String::new(),
            },
            AmanatError::Locked {
                detail: String::new(),
            },
            AmanatError::Internal {
                detail: String::new(),
            },
            AmanatError::Storage {
                detail: String::new(),
            },
            AmanatError::not_found("case"),
            AmanatError::invalid("x", "y"),
        ];
        let mut codes: Vec<u32> = all.iter().map(AmanatError::numeric_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn clash_errors_map_to_not_found_and_invalid_input_and_clash_values_stay_out_of_debug() {
        let e: AmanatError = ClashError::NotFound.into();
        assert!(matches!(&e, AmanatError::NotFound { what, .. } if what == "clash"));
        let e: AmanatError = ClashError::BadChoice.into();
        assert!(matches!(&e, AmanatError::InvalidInput { field, .. } if field == "choice"));
        let e: AmanatError = ClashError::Store(StoreError::Integrity).into();
        assert_eq!(e.code_str(), "integrity");
        let value = crate::sync_types::SyncClashValue {
            value: Some("Гульнара".into()),
            author: "device-a".into(),
            written_at_ms: 1,
        };
        let choice = crate::sync_types::ClashChoice::Value {
            value: "Гульнара".into(),
        };
        for text in [format!("{value:?}"), format!("{choice:?}")] {
            assert!(!text.contains("Гульнара"), "{text}");
        }
    }

    #[test]
    fn every_sync_error_maps_to_a_distinct_typed_code() {
        use amanat_core::sync::TransportError;
        let all = [
            SyncError::NotEnrolled,
            SyncError::AlreadyEnrolled,
            SyncError::BadCode,
            SyncError::InvalidRelayUrl,
            SyncError::OrgMismatch,
            SyncError::Rejected {
                status: 409,
                code: "code_used".into(),
            },
            SyncError::UnexpectedResponse,
            SyncError::Transport(TransportError::InsecureUrl),
            SyncError::Revoked,
            SyncError::Key,
            SyncError::Envelope,
            SyncError::RelayUrlMismatch,
            SyncError::NoRelayUrl,
        ];
        let mapped: Vec<AmanatError> = all.into_iter().map(AmanatError::from).collect();
        let codes: Vec<&str> = mapped.iter().map(AmanatError::code_str).collect();
        let numbers: std::collections::BTreeSet<u32> =
            mapped.iter().map(AmanatError::numeric_code).collect();
        assert_eq!(numbers.len(), mapped.len(), "numeric codes are distinct");
        assert_eq!(
            codes,
            [
                "not_enrolled",
                "already_enrolled",
                "bad_enrollment_code",
                "invalid_relay_url",
                "org_mismatch",
                "rejected",
                "unexpected_response",
                "transport",
                "revoked",
                "device_key",
                "envelope",
                "relay_url_mismatch",
                "no_relay_url",
            ]
        );
        match AmanatError::from(SyncError::Rejected {
            status: 409,
            code: "code_used".into(),
        }) {
            AmanatError::Rejected {
                status, relay_code, ..
            } => assert_eq!((status, relay_code.as_str()), (409, "code_used")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            AmanatError::from(SyncError::Transport(TransportError::Timeout)),
            AmanatError::Transport {
                kind: TransportErrorKind::Timeout,
                ..
            }
        ));
        // Shared reasons keep their shared codes.
        assert_eq!(
            AmanatError::from(SyncError::Vault(VaultError::Locked)).code_str(),
            "locked"
        );
        assert_eq!(
            AmanatError::from(SyncError::Store(StoreError::Corrupt)).code_str(),
            "corrupt"
        );
    }

    const PANIC_MARKER: &str = "SECRET-IN-PANIC-9c2e";

    /// The child half of `a_panic_message_never_reaches_stderr`: does nothing unless that test
    /// re-runs this binary with `AMANAT_PANIC_CHILD` set.
    #[test]
    fn panic_child() {
        if std::env::var_os("AMANAT_PANIC_CHILD").is_none() {
            return;
        }
        let r: AmanatResult<()> = guard(|| panic!("answer was {PANIC_MARKER}"));
        assert!(matches!(r, Err(AmanatError::Internal { .. })));
        eprintln!("panic child finished");
    }

    /// A panic inside an FFI call must not print its message (which could quote survivor data)
    /// to stderr, which is logcat on Android. Checked in a separate process, whose stderr is
    /// real (the test harness captures output in-process).
    #[test]
    fn a_panic_message_never_reaches_stderr() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "error::tests::panic_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AMANAT_PANIC_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stderr.contains("panic child finished"), "{stderr}");
        assert!(!stderr.contains(PANIC_MARKER), "{stderr}");
        assert!(!stdout.contains(PANIC_MARKER), "{stdout}");
        // The panic is still reported, with its place, so a bug can be found.
        assert!(stderr.contains("message withheld"), "{stderr}");
    }

    #[test]
    fn a_panic_becomes_a_typed_internal_error() {
        let r: AmanatResult<()> = guard(|| panic!("SECRET-ANSWER-VALUE"));
        let e = r.unwrap_err();
        assert_eq!(e.code_str(), "internal");
        assert!(!e.to_string().contains("SECRET"));
    }
}
