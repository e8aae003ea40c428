//! # amanat-ffi
//!
//! The uniffi layer of Amanat: what the Android (Kotlin) and iOS (Swift) shells, and Python test
//! tools, call. See `docs/API.md` for the shell developer's view.
//!
//! ## Design: this crate mirrors the core, the core knows nothing of uniffi
//!
//! As `matrix-sdk-ffi` does for `matrix-sdk`, the FFI types here are *mirrors* of the core's
//! types (records, enums, one error enum), converted at the boundary. `amanat-core` has no uniffi
//! dependency and no FFI-shaped compromises: its types keep their serde attributes, newtypes and
//! redacted `Debug`, and its rules stay testable in plain Rust. This crate only
//!
//! * converts types (ids become hex strings, `Answers` a map of typed [`AnswerValue`]s …),
//! * maps every core error to a typed [`AmanatError`] with a stable code,
//! * adapts a foreign [`KeyProvider`] to the core's trait,
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
mod domain;
mod error;
mod provider;
mod types;
mod vault;

pub use attachments::{AttachmentReader, AttachmentWriter};
pub use domain::{check_template, parse_case_code};
pub use error::{AmanatError, AmanatResult, KeyProviderErrorKind};
pub use provider::{software_key_provider, KeyProvider, KeyProviderFfiError};
pub use types::{
    AnswerValue, AttachmentInfo, AuditEntry, AuditKind, Case, CaseField, CaseIdentity, Consent,
    ConsentScope, Constraints, Interview, InterviewStatus, KdfParams, LocalizedChoice,
    LocalizedQuestion, LocalizedSection, LocalizedTemplate, LocationLevel, QuestionType,
    TemplateRef, UnlockStatus,
};
pub use vault::{default_kdf_params, min_passcode_chars, vault_exists, wipe_vault, Vault};
