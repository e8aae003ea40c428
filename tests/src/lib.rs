//! End-to-end scenarios for Amanat live in `tests/`; this library holds what they share.

use amanat_core::{Collection, KdfParams};

/// Collection the scenarios write to.
pub const NOTES: Collection = Collection::new("notes");

/// Cheap Argon2 parameters so scenarios stay fast; never use these outside tests.
pub const FAST_KDF: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

/// The passcode the scenarios use.
pub const PASSCODE: &str = "246810";

/// The value the crash writer stores as record `n`: recognisable, sized like a real record, and
/// carrying `marker` so the plaintext scan has something to look for.
pub fn crash_record(n: u64, marker: &str) -> Vec<u8> {
    let mut value = format!("record {n} {marker} ").into_bytes();
    value.resize(1024 + (n as usize % 2048), b'.');
    value
}
