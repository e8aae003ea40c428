//! The `Vault` object: lifecycle (create, open, unlock, lock, passcodes, wipe).
//!
//! The domain calls (cases, consent, templates, interviews, audit, attachments) are further
//! methods of the same object, in `domain.rs` and `attachments.rs`: a shell holds one handle and
//! every call is a single FFI crossing.

use std::sync::Arc;

use amanat_core::Passcode;

use crate::error::{guard, AmanatResult};
use crate::provider::{KeyProvider, ProviderAdapter};
use crate::remote::{KdfParams, UnlockStatus};

/// An encrypted vault in one directory. Thread-safe: share one instance across threads.
///
/// Free it when the app no longer needs it: Kotlin `destroy()` / `use {}`; Python and Swift free
/// it when the last reference goes (Python has no `destroy()` or context manager). `lock()`
/// first if keys should be dropped at once.
#[derive(uniffi::Object)]
pub struct Vault {
    pub(crate) inner: amanat_core::Vault,
    /// Serialises sync runs on this vault: two runs at once would push the same envelopes and
    /// race on the acks; a second run waits for the first.
    pub(crate) sync_lock: std::sync::Mutex<()>,
}

impl Vault {
    fn new(inner: amanat_core::Vault) -> Arc<Self> {
        Arc::new(Self {
            inner,
            sync_lock: std::sync::Mutex::new(()),
        })
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

fn adapter(key_provider: Arc<dyn KeyProvider>) -> Arc<dyn amanat_core::KeyProvider> {
    Arc::new(ProviderAdapter(key_provider))
}

/// The core's file-based provider for the `…_with_key_file` calls.
fn key_file(key_path: String) -> Arc<dyn amanat_core::KeyProvider> {
    Arc::new(amanat_core::SoftwareKeyProvider::new(key_path))
}

#[uniffi::export]
impl Vault {
    /// Creates a new vault in `dir` protected by `passcode` and `key_provider`; returns it
    /// unlocked. Fails with `VaultExists` if there is one already.
    #[uniffi::constructor]
    pub fn create(
        dir: String,
        passcode: String,
        key_provider: Arc<dyn KeyProvider>,
        kdf_params: KdfParams,
    ) -> AmanatResult<Arc<Self>> {
        guard(|| {
            let passcode = Passcode::new(passcode);
            let inner =
                amanat_core::Vault::create(dir, &passcode, adapter(key_provider), kdf_params)?;
            Ok(Self::new(inner))
        })
    }

    /// Opens the vault in `dir`, locked. Fails with `NoVault` if there is none (and finishes an
    /// interrupted wipe if remains are found).
    #[uniffi::constructor]
    pub fn open(dir: String, key_provider: Arc<dyn KeyProvider>) -> AmanatResult<Arc<Self>> {
        guard(|| {
            let inner = amanat_core::Vault::open(dir, adapter(key_provider))?;
            Ok(Self::new(inner))
        })
    }

    /// `create` with the software key provider: the platform key is the file `key_path`
    /// (created on first use, mode 0600; keep it outside `dir`).
    ///
    /// **Weaker than a hardware keystore**: for desktop tools, demos and tests. A software
    /// provider is selected by path rather than passed as an object because uniffi's generated
    /// code does not check that an object argument is still alive (docs/API.md, "Known
    /// upstream issues"); the API never takes a Rust object as an argument.
    #[uniffi::constructor]
    pub fn create_with_key_file(
        dir: String,
        passcode: String,
        key_path: String,
        kdf_params: KdfParams,
    ) -> AmanatResult<Arc<Self>> {
        guard(|| {
            let passcode = Passcode::new(passcode);
            let inner = amanat_core::Vault::create(dir, &passcode, key_file(key_path), kdf_params)?;
            Ok(Self::new(inner))
        })
    }

    /// `open` with the software key provider whose key is the file `key_path` (see
    /// [`Vault::create_with_key_file`]).
    #[uniffi::constructor]
    pub fn open_with_key_file(dir: String, key_path: String) -> AmanatResult<Arc<Self>> {
        guard(|| {
            let inner = amanat_core::Vault::open(dir, key_file(key_path))?;
            Ok(Self::new(inner))
        })
    }

    /// Unlocks with `passcode`. `WrongPasscode` carries the failed-attempt count; `Backoff` says
    /// when to try again. The duress passcode also returns normally (with an empty vault).
    pub fn unlock(&self, passcode: String) -> AmanatResult<()> {
        guard(|| Ok(self.inner.unlock(&Passcode::new(passcode))?))
    }

    /// Locks: closes the store and zeroizes every key. Objects derived from the vault (attachment
    /// readers/writers) fail with `Locked` afterwards.
    pub fn lock(&self) {
        // A panic here cannot leave a key behind (the keys are dropped on unwind too), and lock has
        // no error to report, so the guard's error is not needed.
        let _ = guard(|| {
            self.inner.lock();
            Ok(())
        });
    }

    /// True while unlocked.
    pub fn is_unlocked(&self) -> bool {
        guard(|| Ok(self.inner.is_unlocked())).unwrap_or(false)
    }

    /// The failed-attempt counter and when the next attempt is allowed, for the unlock screen.
    pub fn unlock_status(&self) -> UnlockStatus {
        guard(|| Ok(self.inner.unlock_status())).unwrap_or(UnlockStatus {
            failed_attempts: 0,
            retry_at_ms: None,
        })
    }

    /// Changes the passcode (needs the vault unlocked and the current passcode).
    pub fn change_passcode(&self, current: String, new_passcode: String) -> AmanatResult<()> {
        guard(|| {
            Ok(self
                .inner
                .change_passcode(&Passcode::new(current), &Passcode::new(new_passcode))?)
        })
    }

    /// Sets or replaces the duress passcode (needs the vault unlocked and the current passcode).
    /// Entering it at unlock wipes the vault and opens a new, empty one.
    pub fn set_duress_passcode(&self, current: String, duress: String) -> AmanatResult<()> {
        guard(|| {
            Ok(self
                .inner
                .set_duress_passcode(&Passcode::new(current), &Passcode::new(duress))?)
        })
    }

    /// Crypto-shreds the vault (platform key first, then slots, then data). Idempotent; works
    /// locked or unlocked. The object is unusable afterwards (`NoVault`/`Locked`).
    pub fn panic_wipe(&self) -> AmanatResult<()> {
        guard(|| Ok(self.inner.panic_wipe()?))
    }

    /// The vault's directory, as given at create/open.
    pub fn dir(&self) -> String {
        self.inner.dir().to_string_lossy().into_owned()
    }
}

/// True if `dir` holds a vault, so the app knows whether to show "create" or "unlock".
#[uniffi::export]
pub fn vault_exists(dir: String) -> bool {
    guard(|| Ok(amanat_core::Vault::exists(dir))).unwrap_or(false)
}

/// Wipes the vault in `dir` without opening it (when its files are too damaged to open).
#[uniffi::export]
pub fn wipe_vault(dir: String, key_provider: Arc<dyn KeyProvider>) -> AmanatResult<()> {
    guard(|| Ok(amanat_core::Vault::wipe(dir, adapter(key_provider))?))
}

/// `wipe_vault` for a vault made with [`Vault::create_with_key_file`]: destroys the key file
/// `key_path` first, then the vault.
#[uniffi::export]
pub fn wipe_vault_with_key_file(dir: String, key_path: String) -> AmanatResult<()> {
    guard(|| Ok(amanat_core::Vault::wipe(dir, key_file(key_path))?))
}

/// The production Argon2id parameters (64 MiB, 3 iterations, 1 lane); tests pass smaller ones.
#[uniffi::export]
pub fn default_kdf_params() -> KdfParams {
    KdfParams::default()
}

/// The minimum passcode length in characters, so the shell can check before calling `create`.
#[uniffi::export]
pub fn min_passcode_chars() -> u32 {
    u32::try_from(amanat_core::vault::MIN_PASSCODE_CHARS).unwrap_or(u32::MAX)
}
