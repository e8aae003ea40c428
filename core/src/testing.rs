//! Test support, compiled only with the `testing` feature (or in this crate's own unit tests).
//!
//! Defined once so every test, benchmark and binding test of the workspace uses the same cheap
//! parameters; never enable this feature in a shipped build.

use crate::crypto::provider::SoftwareKeyProvider;
use crate::crypto::KdfParams;
use crate::secret::Passcode;
use crate::vault::{Vault, VaultError};
use std::path::Path;
use std::sync::Arc;

/// Cheap Argon2id parameters (256 KiB, one pass) so tests stay fast. Never use them outside tests.
pub const FAST_KDF: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

/// The passcode tests use unless they test passcodes.
pub const PASSCODE: &str = "246810";

/// Creates an unlocked vault in `<dir>/vault` with a software key provider at `<dir>/device.key`,
/// the [`PASSCODE`] and [`FAST_KDF`].
pub fn create_vault(dir: &Path) -> Result<Vault, VaultError> {
    let provider = Arc::new(SoftwareKeyProvider::new(dir.join("device.key")));
    Vault::create(
        dir.join("vault"),
        &Passcode::from(PASSCODE),
        provider,
        FAST_KDF,
    )
}

/// A key with fixed bytes, for frozen test vectors (`tests/vectors.rs`).
pub fn fixed_key(byte: u8) -> crate::secret::SecretKey {
    crate::secret::SecretKey::from_array([byte; 32])
}
