//! # amanat-core
//!
//! The core of Amanat, an offline-first app for field workers who interview survivors of human
//! trafficking. Everything that must hold whatever the platform — encryption, validation, consent,
//! sync and custody rules — lives here, so the Android and iOS shells cannot disagree.
//!
//! * [`vault`]: key slots, unlock with backoff, duress passcode, panic wipe.
//! * [`store`]: the encrypted record store every other component builds on.
//! * [`crypto`]: the primitives (sealing, subkeys, blind indexes, Argon2id, padding).
//! * [`provider`]: the platform key provider trait and a software implementation.
//! * [`secret`]: zeroizing, redacting types for passcodes, keys and plaintext.
//!
//! See `docs/ARCHITECTURE.md` and `docs/SECURITY.md` in the repository.

pub mod attachments;
pub mod audit;
pub mod cases;
pub mod consent;
pub mod crypto;
pub mod forms;
mod fsutil;
pub mod hlc;
pub mod interviews;
pub mod lockout;
pub mod provider;
pub mod secret;
pub mod store;
pub mod vault;

pub use crypto::KdfParams;
pub use lockout::{Clock, SystemClock};
pub use provider::{KeyProvider, KeyProviderError, SoftwareKeyProvider};
pub use secret::{Passcode, SecretBytes};
pub use store::{Collection, Record, RecordId, Store, StoreError, Tx};
pub use vault::{UnlockStatus, Vault, VaultError};
