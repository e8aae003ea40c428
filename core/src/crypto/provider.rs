//! The platform key provider: the second wrapping layer around the data key.
//!
//! The data key is sealed under a key derived from the passcode, and that sealed blob is wrapped
//! again by a [`KeyProvider`]: on Android a non-exportable Keystore key, on iOS a Secure Enclave
//! key. An attacker who copies the storage therefore cannot brute-force the passcode offline: the
//! platform key never leaves the hardware. Destroying that key (panic wipe) makes every slot
//! useless at once.

use crate::crypto::{self, NonceSource};
use crate::fsutil;
use crate::secret::{SecretBytes, SecretKey};
use std::path::{Path, PathBuf};

/// Why a key provider failed. Messages come from the platform and must not contain secrets.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyProviderError {
    /// The platform key does not exist (destroyed by a wipe, or the app was reinstalled).
    #[error("the platform key is missing")]
    KeyMissing,
    /// The platform key exists but refused the data (tampered or foreign blob).
    #[error("the platform key rejected the wrapped data")]
    Rejected,
    /// The platform could not perform the operation now (keystore unavailable, user not
    /// authenticated, I/O failure).
    #[error("the platform key store failed: {0}")]
    Unavailable(String),
    /// `unwrap` succeeded but returned bytes that are not what `wrap` was given (checked by the
    /// vault against each slot's check value): a broken or substituted keystore, never a wrong
    /// passcode, so no attempt is counted.
    #[error("the platform key returned data that does not match this vault")]
    Mismatch,
}

/// Wraps and unwraps small secrets with a key the platform holds.
///
/// Implemented by the shells (Android Keystore, iOS Secure Enclave) through the FFI layer, and by
/// [`SoftwareKeyProvider`] for desktop and tests. Implementations must be thread-safe; `wrap` creates
/// the platform key on first use; `destroy` is idempotent. `unwrap` must return exactly the bytes
/// `wrap` was given or fail: the vault checks what it returns and reports anything else as
/// [`KeyProviderError::Mismatch`].
pub trait KeyProvider: Send + Sync {
    /// Encrypts `plaintext` under the platform key, creating the key if needed.
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyProviderError>;
    /// Decrypts what [`KeyProvider::wrap`] returned.
    fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes, KeyProviderError>;
    /// Irreversibly destroys the platform key. Must succeed if the key is already gone.
    fn destroy(&self) -> Result<(), KeyProviderError>;
}

/// A key provider that keeps its key in a file (mode 0600).
///
/// **Weaker than a hardware keystore**: anyone who can read the key file together with the vault can
/// run an offline passcode search limited only by Argon2. Use it for desktop tools, the demo and
/// tests; on phones use the platform provider. Keep the key file outside the vault directory where
/// possible (e.g. on a separate volume) so a copy of one is not a copy of both.
pub struct SoftwareKeyProvider {
    key_path: PathBuf,
}

use crate::names::labels::SOFTWARE_PROVIDER_AAD as SOFTWARE_AAD;

impl SoftwareKeyProvider {
    /// A provider whose key lives at `key_path` (created on first `wrap`).
    pub fn new(key_path: impl AsRef<Path>) -> Self {
        Self {
            key_path: key_path.as_ref().to_path_buf(),
        }
    }

    fn load(&self) -> Result<Option<SecretKey>, KeyProviderError> {
        match std::fs::read(&self.key_path) {
            Ok(bytes) => {
                let bytes = SecretBytes::new(bytes);
                SecretKey::from_slice(bytes.expose())
                    .map(Some)
                    .ok_or_else(|| KeyProviderError::Unavailable("key file is malformed".into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeyProviderError::Unavailable(format!(
                "cannot read key file: {}",
                e.kind()
            ))),
        }
    }
}

impl std::fmt::Debug for SoftwareKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKeyProvider")
            .finish_non_exhaustive()
    }
}

impl KeyProvider for SoftwareKeyProvider {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyProviderError> {
        let io = |e: std::io::Error| KeyProviderError::Unavailable(format!("{}", e.kind()));
        let key = match self.load()? {
            Some(key) => key,
            None => {
                let key = crypto::random_key()
                    .map_err(|_| KeyProviderError::Unavailable("no randomness".into()))?;
                if let Some(parent) = self.key_path.parent() {
                    fsutil::create_private_dir(parent).map_err(io)?;
                }
                fsutil::write_atomic(&self.key_path, key.expose()).map_err(io)?;
                key
            }
        };
        let nonces = NonceSource::new()
            .map_err(|_| KeyProviderError::Unavailable("no randomness".into()))?;
        crypto::seal(&key, &nonces, SOFTWARE_AAD, plaintext)
            .map_err(|_| KeyProviderError::Unavailable("sealing failed".into()))
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes, KeyProviderError> {
        let key = self.load()?.ok_or(KeyProviderError::KeyMissing)?;
        crypto::open(&key, SOFTWARE_AAD, wrapped).map_err(|_| KeyProviderError::Rejected)
    }

    fn destroy(&self) -> Result<(), KeyProviderError> {
        fsutil::shred(&self.key_path)
            .map_err(|e| KeyProviderError::Unavailable(format!("cannot destroy key: {}", e.kind())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_destroy() {
        let dir = tempfile::tempdir().unwrap();
        let p = SoftwareKeyProvider::new(dir.path().join("k/device.key"));
        let w = p.wrap(b"secret").unwrap();
        assert_eq!(p.unwrap(&w).unwrap().expose(), b"secret");
        let mut t = w.clone();
        t[20] ^= 1;
        assert_eq!(p.unwrap(&t).unwrap_err(), KeyProviderError::Rejected);
        p.destroy().unwrap();
        p.destroy().unwrap();
        assert_eq!(p.unwrap(&w).unwrap_err(), KeyProviderError::KeyMissing);
        // A new key is made on the next wrap; old blobs stay undecryptable.
        let _ = p.wrap(b"x").unwrap();
        assert_eq!(p.unwrap(&w).unwrap_err(), KeyProviderError::Rejected);
    }

    #[test]
    fn malformed_key_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, b"short").unwrap();
        let p = SoftwareKeyProvider::new(&path);
        assert!(matches!(
            p.wrap(b"x"),
            Err(KeyProviderError::Unavailable(_))
        ));
        assert!(matches!(
            p.unwrap(b"x"),
            Err(KeyProviderError::Unavailable(_))
        ));
    }
}
