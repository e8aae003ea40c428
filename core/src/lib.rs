//! # amanat-core
//!
//! The core of Amanat, an offline-first app for field workers who interview survivors of human
//! trafficking. Everything that must hold whatever the platform — encryption, validation, consent,
//! sync and custody rules — lives here, so the Android and iOS shells cannot disagree.
//!
//! Modules form layers; a module may use only modules of its own or a lower layer (checked by
//! `tests/layers.rs`, drawn in `docs/ARCHITECTURE.md`):
//!
//! | layer | modules | what they own |
//! |---|---|---|
//! | 0 | [`names`], [`clock`], [`secret`], `fsutil` | names that never change, time, secret types, file helpers |
//! | 1 | [`crypto`], [`forms`] | sealing, KDF, blind indexes, key provider; template and answer rules |
//! | 2 | [`store`] | the sealed record store, transactions, schema |
//! | 3 | [`journal`] | the hash-chained audit log and the hybrid logical clock |
//! | 4 | [`vault`] | key slots, unlock, lockout, wipe, on-disk layout |
//! | 5 | [`records`] | cases, consent, interviews, attachments |
//! | 6 | [`sync`] | enrollment, envelopes, push / pull / apply, revocation (through a [`sync::Transport`]) |
//! | 7 | [`hq`] | HQ's work on what it received: export for one group, verification of an export |
//!
//! See `docs/ARCHITECTURE.md` and `docs/SECURITY.md` in the repository.

pub mod clock;
pub mod crypto;
pub mod forms;
mod fsutil;
pub mod hq;
pub mod journal;
pub mod names;
pub mod records;
pub mod secret;
pub mod store;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vault;

pub use clock::{Clock, SystemClock};
pub use crypto::provider::{KeyProvider, KeyProviderError, SoftwareKeyProvider};
pub use crypto::KdfParams;
pub use secret::{Passcode, SecretBytes};
pub use store::{Collection, Record, RecordId, Store, StoreError, Tx};
pub use vault::{UnlockStatus, Vault, VaultError};
