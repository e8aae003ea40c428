//! The platform key provider across the boundary.
//!
//! Shells implement [`KeyProvider`] (Android Keystore, iOS Secure Enclave) in Kotlin/Swift; the
//! vault calls it through [`ProviderAdapter`], which implements the core's
//! `amanat_core::KeyProvider` and wraps what comes back in `SecretBytes` at once. Failures of a
//! foreign implementation, including exceptions it did not declare, come back as typed
//! `AmanatError::KeyProvider` errors, never as panics, and only their *kind* crosses back: the
//! platform's text is dropped here, at the first point it reaches Rust.
//!
//! Only shells implement this trait across the FFI: no exported call returns a Rust
//! implementation (the software provider is chosen by path, `Vault::create_with_key_file`),
//! so a shell can never hold a Rust object here and pass it back after freeing it.

use std::sync::Arc;

use amanat_core::{KeyProviderError, SecretBytes};

/// Why a key provider failed. Thrown by shell implementations of [`KeyProvider`]
/// (Kotlin `KeyProviderFfiException`, Swift `KeyProviderFfiError`).
///
/// The `reason` is for the shell's own logs: it is dropped when the error reaches Rust, so
/// vault errors carry only the kind (platform messages can contain anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeyProviderFfiError {
    /// The platform key does not exist (destroyed by a wipe, or the app was reinstalled).
    #[error("the platform key is missing")]
    KeyMissing,
    /// The platform key refused the data (tampered or foreign blob).
    #[error("the platform key rejected the wrapped data")]
    Rejected,
    /// The platform could not perform the operation now.
    #[error("the platform key store failed: {reason}")]
    Unavailable {
        /// What failed, for the shell's own logs; never passed on.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeyProviderFfiError {
    fn from(_: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // The foreign exception's text is dropped on purpose: it is arbitrary platform output and
        // could quote anything; the vault error says which operation failed.
        KeyProviderFfiError::Unavailable {
            reason: "the key provider raised an unexpected exception".into(),
        }
    }
}

/// What replaces a platform's own `Unavailable` text once it reaches Rust.
pub(crate) const UNAVAILABLE_TEXT: &str = "reason withheld (platform text is not passed on)";

impl From<KeyProviderFfiError> for KeyProviderError {
    fn from(e: KeyProviderFfiError) -> Self {
        match e {
            KeyProviderFfiError::KeyMissing => KeyProviderError::KeyMissing,
            KeyProviderFfiError::Rejected => KeyProviderError::Rejected,
            // The platform's text is dropped here: it is arbitrary and could quote anything.
            KeyProviderFfiError::Unavailable { reason: _ } => {
                KeyProviderError::Unavailable(UNAVAILABLE_TEXT.into())
            }
        }
    }
}

impl From<KeyProviderError> for KeyProviderFfiError {
    fn from(e: KeyProviderError) -> Self {
        match e {
            KeyProviderError::KeyMissing => KeyProviderFfiError::KeyMissing,
            KeyProviderError::Rejected => KeyProviderFfiError::Rejected,
            KeyProviderError::Unavailable(reason) => KeyProviderFfiError::Unavailable { reason },
            // Raised by the vault about a provider's answer, never by a provider itself; a
            // provider that sees it reports its data as refused.
            KeyProviderError::Mismatch => KeyProviderFfiError::Rejected,
        }
    }
}

/// Wraps and unwraps small secrets with a key the platform holds (the second layer around the
/// data key; see docs/SECURITY.md).
///
/// Implemented by the shells. Must be thread-safe (calls arrive on any thread); `wrap` creates the
/// platform key on first use; `destroy_key` must succeed when the key is already gone.
#[uniffi::export(with_foreign)]
pub trait KeyProvider: Send + Sync {
    /// Encrypts `plaintext` under the platform key, creating the key if needed.
    fn wrap(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError>;
    /// Decrypts what `wrap` returned.
    fn unwrap(&self, wrapped: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError>;
    /// Irreversibly destroys the platform key (panic wipe, duress). Named `destroy_key`, not
    /// `destroy`, because `destroy()` is the generated method that frees a uniffi object.
    fn destroy_key(&self) -> Result<(), KeyProviderFfiError>;
}

/// Adapts a (possibly foreign) [`KeyProvider`] to the core's trait.
pub(crate) struct ProviderAdapter(pub(crate) Arc<dyn KeyProvider>);

impl amanat_core::KeyProvider for ProviderAdapter {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyProviderError> {
        // The copy handed to the foreign side is zeroized on our side as soon as it is lowered.
        let buf = SecretBytes::new(plaintext.to_vec());
        self.0
            .wrap(buf.expose().to_vec())
            .map_err(KeyProviderError::from)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes, KeyProviderError> {
        self.0
            .unwrap(wrapped.to_vec())
            .map(SecretBytes::new)
            .map_err(KeyProviderError::from)
    }

    fn destroy(&self) -> Result<(), KeyProviderError> {
        self.0.destroy_key().map_err(KeyProviderError::from)
    }
}

/// The core's file-based provider, usable wherever a [`KeyProvider`] is expected.
///
/// **Weaker than a hardware keystore** (the key is a 0600 file): for desktop tools, demos and
/// tests only. Keep the key file outside the vault directory.
struct SoftwareKeyProvider(amanat_core::SoftwareKeyProvider);

impl KeyProvider for SoftwareKeyProvider {
    fn wrap(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError> {
        let plaintext = SecretBytes::new(plaintext);
        amanat_core::KeyProvider::wrap(&self.0, plaintext.expose()).map_err(Into::into)
    }

    fn unwrap(&self, wrapped: Vec<u8>) -> Result<Vec<u8>, KeyProviderFfiError> {
        amanat_core::KeyProvider::unwrap(&self.0, &wrapped)
            .map(|s| s.expose().to_vec())
            .map_err(Into::into)
    }

    fn destroy_key(&self) -> Result<(), KeyProviderFfiError> {
        amanat_core::KeyProvider::destroy(&self.0).map_err(Into::into)
    }
}

/// A software key provider whose key lives in the file `key_path` (created on first use), for
/// **Rust** callers of this crate (tests, benchmarks).
///
/// Deliberately not exported: a shell holding this Rust object could free it and pass it back,
/// which uniffi's generated code turns into a use-after-free (docs/API.md, "Known upstream
/// issues"). Shells use `Vault::create_with_key_file` / `open_with_key_file` instead.
pub fn software_key_provider(key_path: String) -> Arc<dyn KeyProvider> {
    Arc::new(SoftwareKeyProvider(amanat_core::SoftwareKeyProvider::new(
        key_path,
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use amanat_core::KeyProvider as _;

    #[test]
    fn adapter_round_trips_through_the_software_provider() {
        let dir = tempfile::tempdir().unwrap();
        let p = software_key_provider(dir.path().join("k").to_string_lossy().into_owned());
        let a = ProviderAdapter(p);
        let w = a.wrap(b"secret").unwrap();
        assert_eq!(a.unwrap(&w).unwrap().expose(), b"secret");
        a.destroy().unwrap();
        assert_eq!(a.unwrap(&w).unwrap_err(), KeyProviderError::KeyMissing);
    }

    #[test]
    fn platform_text_is_dropped_when_it_reaches_rust() {
        let e = KeyProviderError::from(KeyProviderFfiError::Unavailable {
            reason: "PLATFORM-MARKER alias=/data/secret".into(),
        });
        assert_eq!(e, KeyProviderError::Unavailable(UNAVAILABLE_TEXT.into()));
        assert!(!format!("{e} {e:?}").contains("PLATFORM-MARKER"));
    }

    #[test]
    fn unexpected_foreign_exceptions_become_unavailable() {
        let e: KeyProviderFfiError = uniffi::UnexpectedUniFFICallbackError {
            reason: "java.lang.IllegalStateException: SECRET".into(),
        }
        .into();
        match e {
            KeyProviderFfiError::Unavailable { reason } => assert!(!reason.contains("SECRET")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
