//! Device-local bookkeeping that every upper layer writes into, inside its own transactions: the
//! hash-chained [`audit`] log, the hybrid logical clock ([`hlc`]) and the sync [`outbox`].
//!
//! Layer 3: above the store (it persists through [`crate::store::Tx`]), below the vault (whose unlock
//! records an audit entry) and the record components.

pub mod audit;
pub mod hlc;
pub mod outbox;
