//! The survivor's records: [`cases`], [`consent`], [`interviews`] and their [`attachments`].
//!
//! Layer 5: each component is free functions over an unlocked [`crate::vault::Vault`]. Every
//! operation that changes something has an `…_in(&mut Tx, …)` form doing the work inside a caller's
//! transaction (so the sync engine can apply an incoming change and advance its cursor atomically),
//! and a public wrapper that opens the transaction.

pub mod attachments;
pub mod cases;
pub mod consent;
pub mod interviews;
mod plain_hash;
