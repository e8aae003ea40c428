//! End-to-end scenarios for Amanat live in `tests/`; this library holds what they share.

use amanat_core::Collection;

/// Collection the scenarios write to.
pub const NOTES: Collection = Collection::new("notes");

pub use amanat_core::testing::{FAST_KDF, PASSCODE};

/// The value the crash writer stores as record `n`: recognisable, sized like a real record, and
/// carrying `marker` so the plaintext scan has something to look for.
pub fn crash_record(n: u64, marker: &str) -> Vec<u8> {
    let mut value = format!("record {n} {marker} ").into_bytes();
    value.resize(1024 + (n as usize % 2048), b'.');
    value
}

/// The content of the `n`-th attachment the crash writer stores: a few KiB to a few hundred KiB, so
/// kills land in every phase (writing, finishing, committing), and recognisable per `n`.
pub fn attachment_content(n: u64) -> Vec<u8> {
    let len = 1000 + (n as usize * 7919) % (200 * 1024);
    (0..len)
        .map(|i| (i as u64 ^ n.wrapping_mul(31)) as u8)
        .collect()
}

/// TCP fault-injection proxy between a device and the relay.
pub mod proxy;
