//! HQ's own work on what it received (layer 7, above `sync`): `export` writes what one
//! recipient group may read as files with the evidence they rest on; `verify` re-checks such an
//! export from its files alone. Receiving (originals, group identities) is `sync::hq`.
//! docs/HQ.md is the operator's guide.

pub mod export;
pub mod format;
pub mod verify;
pub mod view;

pub use export::{export, ExportOptions, ExportProgress, ExportReport};
pub use verify::{verify_export, Finding, InterviewCustody, VerifyReport};

use crate::store::StoreError;
use crate::sync::hq::HqError as ReceiveError;
use crate::vault::VaultError;

/// Errors of exporting (verification failures are findings in a [`VerifyReport`], not errors).
#[derive(Debug, thiserror::Error)]
pub enum HqError {
    /// The output directory exists and is not empty: an export never mixes with other files.
    #[error("the output directory is not empty")]
    OutputNotEmpty,
    /// The installation has no org-signed certificate: its signature would prove nothing.
    #[error("this installation has no organisation certificate (amanat org certify-hq)")]
    NoCertificate,
    /// The installation does not hold that group's identity (or the group does not exist).
    #[error("this installation does not hold that group's identity")]
    GroupNotHeld,
    /// This installation may not reveal identities (only a caseworkers installation may).
    #[error("this installation may not reveal identities")]
    NotAllowed,
    /// An attachment file is missing or does not open with the group's identity.
    #[error("an attachment cannot be read")]
    AttachmentUnreadable,
    /// A held record does not have the documented shape.
    #[error("a record is malformed")]
    Format,
    /// A file could not be read or written.
    #[error("file error: {0:?}")]
    Io(std::io::ErrorKind),
    /// The installation's keys or state.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
