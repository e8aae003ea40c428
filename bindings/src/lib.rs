//! # amanat-ffi
//!
//! The uniffi layer of Amanat: what the Android (Kotlin) and iOS (Swift) shells, and Python test
//! tools, call. See `docs/API.md` for the shell developer's view.
//!
//! ## Design: the core knows nothing of uniffi
//!
//! `amanat-core` has no uniffi dependency and no FFI-shaped compromises: its types keep their
//! serde attributes, newtypes and redacted `Debug`, and its rules stay testable in plain Rust.
//! Core types reach the shells in one of two ways:
//!
//! * **as they are** (`remote.rs`): field-less enums and plain records without survivor data
//!   (`ConsentScope`, `QuestionType`, `AuditEntry`, `KdfParams`, the typed error reasons …) are
//!   uniffi *remote types*: a copy of the definition here makes uniffi generate converters for
//!   the core type itself, and the compiler rejects the copy when the core type changes;
//! * **as mirrors** (`types.rs`), as `matrix-sdk-ffi` does for `matrix-sdk`: records holding
//!   survivor data (their mirrors redact `Debug`), and types uniffi cannot carry as they are
//!   (sets, newtypes, HLCs, a `None` variant that Swift reserves).
//!
//! This crate only
//!
//! * converts types (ids become hex strings, `Answers` a map of typed [`AnswerValue`]s …),
//! * maps every core error to a typed [`AmanatError`] with a stable code,
//! * adapts a foreign [`KeyProvider`] to the core's trait, and a foreign [`Transport`] /
//!   [`SyncObserver`] to the sync engine's (`sync.rs`),
//! * catches panics so nothing unwinds into the JVM or Swift.
//!
//! No business rule lives here: each exported method calls exactly the core function of the same
//! name (two composites, `visible_questions*`, chain `template` + `Template::visible_questions`).
//! The price is some duplication of type definitions; the gain is a core free of binding concerns
//! and a boundary where every conversion is explicit and tested.
//!
//! ## Threads
//!
//! Every object is `Send + Sync`. The vault serialises access internally (one SQLite connection
//! behind a mutex), so shells may call from any background thread. Calls block: run them off the
//! UI thread.

uniffi::setup_scaffolding!();

mod attachments;
mod background;
mod domain;
mod error;
mod provider;
mod remote;
mod sync;
mod sync_types;
mod types;
mod vault;

pub use attachments::{AttachmentReader, AttachmentWriter};
pub use background::{
    background_upload_next, background_uploads_dir, discard_background_uploads,
    BackgroundChunkRequest, BackgroundUploadPlan, BackgroundUploadStep,
};
pub use domain::{check_template, parse_case_code};
pub use error::{AmanatError, AmanatResult, KeyProviderErrorKind};
pub use provider::{software_key_provider, KeyProvider, KeyProviderFfiError};
pub use remote::{
    AnswerReason, AttachmentInfo, AuditEntry, AuditKind, ConsentScope, InterviewStatus, JsonType,
    KdfParams, LocationLevel, QuestionType, TemplateReason, UnlockStatus,
};
pub use sync::{
    HttpHeader, HttpRequest, HttpResponse, SyncObserver, SyncObserverError, SyncSession, Transport,
    TransportFfiError,
};
pub use sync_types::{
    ClashChoice, ClashedRecord, DeviceRole, Enrollment, QuarantinedEnvelope, SyncClash,
    SyncClashValue, SyncEntryKind, SyncInterruption, SyncPhase, SyncProgress, SyncReport,
    SyncStatus, TeamDevice, TransportErrorKind, WedgedEntry,
};
pub use types::{
    AnswerValue, Case, CaseField, CaseIdentity, Consent, Constraints, Interview, LocalizedChoice,
    LocalizedQuestion, LocalizedSection, LocalizedTemplate, TemplateRef,
};
pub use vault::{
    default_kdf_params, min_passcode_chars, vault_exists, wipe_vault, wipe_vault_with_key_file,
    Vault,
};
