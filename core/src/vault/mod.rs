//! The vault: key slots, unlock with backoff, duress passcode, panic wipe, and the store it guards.
//!
//! Files in a vault directory:
//!
//! | file                | content                                                              |
//! |---------------------|----------------------------------------------------------------------|
//! | `keyslots.json`     | vault id; main and duress slots: Argon2 params, salt, wrapped blob,   |
//! |                     | check value of the blob before wrapping (format 2)                   |
//! | `unlock-state.json` | failed-attempt counter (not secret)                                  |
//! | `vault.db` (+WAL)   | the encrypted store                                                  |
//!
//! A slot's blob is `provider.wrap(seal(Argon2id(passcode, salt), DK))`. The duress slot has the same
//! shape; when no duress passcode is set it holds random bytes, so the file does not reveal whether
//! one exists. Every unlock runs the KDF for both slots, so a duress unlock takes as long as a normal
//! one. The presence of `keyslots.json` is what makes a directory a vault: it is written last on
//! create and destroyed first on wipe.
//!
//! Each slot carries a check value: SHA-256 (domain [`crate::names::labels::SLOT_CHECK`]) of the
//! sealed blob as it was before the provider wrapped it. It is not secret (the sealed blob is
//! ciphertext under the passcode's key; its hash helps no guessing) and lets unlock tell a provider
//! that returned other bytes ([`KeyProviderError::Mismatch`], no attempt counted) from a wrong
//! passcode. Slot files of format 1 have no check value; the next successful unlock adds it.

use self::lockout::{LockoutFile, LockoutState};
use crate::clock::{Clock, SystemClock};
use crate::crypto::provider::{KeyProvider, KeyProviderError};
use crate::crypto::{self, CryptoError, KdfParams, NonceSource};
use crate::fsutil;
use crate::journal::audit::{self, AuditKind};
use crate::names::collections::{self, ATTACHMENTS};
use crate::secret::SecretBytes;
use crate::secret::{Passcode, SecretKey};
use crate::store::{Store, StoreError, StoreKeys};
use ring::digest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub mod layout;
pub mod lockout;

use crate::names::files::{
    ATTACHMENTS_DIR, DATABASE as DB_FILE, LOCKOUT as LOCKOUT_FILE, SLOTS as SLOTS_FILE,
    TRASH_PREFIX,
};
/// Minimum passcode length in characters. Organisation policy may ask for more.
pub const MIN_PASSCODE_CHARS: usize = 6;

/// Everything that can go wrong with the vault. No variant carries a passcode, key or record.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The directory holds no vault (never created, or wiped).
    #[error("no vault in this directory")]
    NoVault,
    /// `create` was called where a vault already exists.
    #[error("a vault already exists in this directory")]
    AlreadyExists,
    /// The operation needs an unlocked vault.
    #[error("the vault is locked")]
    Locked,
    /// The passcode did not open the vault.
    #[error("wrong passcode ({failed_attempts} failed attempts in a row)")]
    WrongPasscode {
        /// Consecutive failures, including this one.
        failed_attempts: u32,
        /// When the next attempt is allowed (ms since epoch), if a wait is now required.
        retry_at_ms: Option<u64>,
    },
    /// Too many failures: no attempt is allowed before `retry_at_ms`.
    #[error("too many failed attempts: try again in {retry_after_secs} s")]
    Backoff {
        /// Consecutive failures so far.
        failed_attempts: u32,
        /// When the next attempt is allowed (ms since epoch).
        retry_at_ms: u64,
        /// Seconds from now until then, rounded up.
        retry_after_secs: u64,
    },
    /// The new passcode is shorter than [`MIN_PASSCODE_CHARS`].
    #[error("the passcode must have at least {min} characters")]
    PasscodeTooShort {
        /// Required minimum.
        min: usize,
    },
    /// The duress passcode must differ from the real one (and vice versa).
    #[error("the duress passcode must differ from the passcode")]
    DuressConflict,
    /// The key slot file is unreadable or malformed.
    #[error("the key slot file is damaged: {0}")]
    CorruptSlots(&'static str),
    /// The platform key provider failed; nothing was changed.
    #[error("key provider: {0}")]
    KeyProvider(#[from] KeyProviderError),
    /// The encrypted store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A cryptographic primitive failed.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// File-system failure (the message is the OS's; paths are not included).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The backoff state, for a shell to show "try again in …" before the user types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlockStatus {
    /// Consecutive failed attempts.
    pub failed_attempts: u32,
    /// When the next attempt is allowed (ms since epoch), if not now.
    pub retry_at_ms: Option<u64>,
}

/// What the last successful unlock found and repaired, for a shell to read after `unlock`.
///
/// Unlock makes attachment files agree with their records (see [`layout`]): a crash can leave an
/// incomplete file (removed), a complete file whose record never committed (removed), or a
/// committed record whose file kept its temporary name (put in place). A record whose file is gone
/// cannot be repaired on the device: it is listed here, and reading it fails with a typed error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnlockReport {
    /// False if the attachment records failed their integrity check; no file was touched then
    /// (run [`Vault::check_integrity`] to learn more).
    pub attachments_checked: bool,
    /// Incomplete attachment files of interrupted writers, removed.
    pub partial_files_removed: u32,
    /// Complete attachment files without a record, removed.
    pub orphan_files_removed: u32,
    /// Attachments whose record committed just before a crash, whose file was put in place.
    pub attachments_completed: u32,
    /// Attachment ids with a record but no file (lost: e.g. deleted by another app or a restore).
    pub missing_attachment_files: Vec<String>,
}

impl From<layout::Reconciliation> for UnlockReport {
    fn from(r: layout::Reconciliation) -> Self {
        Self {
            attachments_checked: r.checked,
            partial_files_removed: r.partials_removed,
            orphan_files_removed: r.orphans_removed,
            attachments_completed: r.completed,
            missing_attachment_files: r.missing,
        }
    }
}

/// The result of [`Vault::check_integrity`] when the store is intact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Records matched against the sealed manifest.
    pub records: u64,
    /// Records decrypted and authenticated.
    pub records_opened: u64,
    /// Blind-index entries matched against the manifest.
    pub index_entries: u64,
    /// Attachment ids with a record but no file.
    pub missing_attachment_files: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Slot {
    kdf: KdfParams,
    salt: String,
    wrapped: String,
    /// Hex SHA-256 (domain `SLOT_CHECK`) of the blob before wrapping; absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotFile {
    format: u32,
    vault_id: String,
    main: Slot,
    duress: Slot,
}

/// Slot file format written now: 2 adds each slot's check value. Format 1 is still read.
const SLOT_FORMAT: u32 = 2;
const SLOT_FORMAT_V1: u32 = 1;
const SALT_LEN: usize = 16;
/// Length of a sealed 32-byte secret: what a real duress slot holds before wrapping.
const SEALED_SECRET_LEN: usize = 32 + crypto::SEAL_OVERHEAD;

#[derive(Clone, Copy)]
enum SlotKind {
    Main,
    Duress,
}

fn slot_aad(kind: SlotKind, vault_id: &[u8], kdf: &KdfParams, salt: &[u8]) -> Vec<u8> {
    let mut aad = crate::names::labels::SLOT_AAD_PREFIX.to_vec();
    aad.extend_from_slice(match kind {
        SlotKind::Main => b"main/",
        SlotKind::Duress => b"duress/",
    });
    aad.extend_from_slice(vault_id);
    for n in [kdf.m_kib, kdf.t, kdf.p] {
        aad.extend_from_slice(&n.to_be_bytes());
    }
    aad.extend_from_slice(salt);
    aad
}

struct ParsedSlot {
    kdf: KdfParams,
    salt: Vec<u8>,
    wrapped: Vec<u8>,
    check: Option<[u8; 32]>,
}

/// The check value of a slot's blob before wrapping.
fn slot_check(sealed: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(crate::names::labels::SLOT_CHECK);
    ctx.update(sealed);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl ParsedSlot {
    /// Asks the provider to unwrap the slot and checks that it gave back the blob it wrapped: the
    /// length of a sealed secret, and (format 2) the check value. Anything else is the provider's
    /// failure, reported as [`KeyProviderError::Mismatch`] — never as a wrong passcode.
    fn unwrap(&self, provider: &dyn KeyProvider) -> Result<SecretBytes, VaultError> {
        let sealed = provider.unwrap(&self.wrapped)?;
        let fits = sealed.expose().len() == SEALED_SECRET_LEN
            && self
                .check
                .is_none_or(|check| slot_check(sealed.expose()) == check);
        if !fits {
            return Err(VaultError::KeyProvider(KeyProviderError::Mismatch));
        }
        Ok(sealed)
    }
}

impl Slot {
    fn parse(&self) -> Result<ParsedSlot, VaultError> {
        self.kdf
            .validate()
            .map_err(|_| VaultError::CorruptSlots("KDF parameters out of range"))?;
        let salt = fsutil::from_hex(&self.salt)
            .filter(|s| s.len() == SALT_LEN)
            .ok_or(VaultError::CorruptSlots("bad salt"))?;
        let wrapped =
            fsutil::from_hex(&self.wrapped).ok_or(VaultError::CorruptSlots("bad wrapped key"))?;
        let check = match &self.check {
            None => None,
            Some(hex) => Some(
                fsutil::from_hex(hex)
                    .and_then(|c| <[u8; 32]>::try_from(c).ok())
                    .ok_or(VaultError::CorruptSlots("bad check value"))?,
            ),
        };
        Ok(ParsedSlot {
            kdf: self.kdf,
            salt,
            wrapped,
            check,
        })
    }
}

fn random_salt() -> Result<[u8; SALT_LEN], CryptoError> {
    let mut salt = [0u8; SALT_LEN];
    crypto::os_random(&mut salt)?;
    Ok(salt)
}

/// Builds a slot sealing `secret` under `kek` (already derived with `kdf` and `salt`).
fn make_slot(
    provider: &dyn KeyProvider,
    kind: SlotKind,
    vault_id: &[u8],
    kdf: KdfParams,
    salt: &[u8],
    kek: &SecretKey,
    secret: &SecretKey,
) -> Result<Slot, VaultError> {
    let nonces = NonceSource::new()?;
    let sealed = crypto::seal(
        kek,
        &nonces,
        &slot_aad(kind, vault_id, &kdf, salt),
        secret.expose(),
    )?;
    let wrapped = provider.wrap(&sealed)?;
    Ok(Slot {
        kdf,
        salt: fsutil::to_hex(salt),
        wrapped: fsutil::to_hex(&wrapped),
        check: Some(fsutil::to_hex(&slot_check(&sealed))),
    })
}

/// A duress slot for a vault without a duress passcode: indistinguishable random content.
fn filler_slot(provider: &dyn KeyProvider, kdf: KdfParams) -> Result<Slot, VaultError> {
    let salt = random_salt()?;
    let mut noise = vec![0u8; SEALED_SECRET_LEN];
    crypto::os_random(&mut noise)?;
    let wrapped = provider.wrap(&noise)?;
    Ok(Slot {
        kdf,
        salt: fsutil::to_hex(&salt),
        wrapped: fsutil::to_hex(&wrapped),
        check: Some(fsutil::to_hex(&slot_check(&noise))),
    })
}

/// The earliest a successful unlock may return, so that a duress unlock and a normal one take the
/// same time.
///
/// After the KDFs a duress unlock does more than a normal one: destroy the platform key, shred the
/// slots, make a new key, store, counter and slots — about ten durable writes and a few keystore
/// calls, against two writes, a database open and the attachment reconciliation. Both paths
/// therefore wait until `KDF end + max(KDF/4, 25 ms) + 8 × (one durable write)`, where the durable
/// write is the attempt counter both paths wrote just before (write, fsync, rename, fsync the
/// directory): the floor follows the storage's latency of the moment (a busy disk makes every
/// fsync slower, the duress path's most), the KDF share covers keystore and CPU work on slow
/// devices, and the 25 ms covers small KDF parameters. On an idle development machine at the
/// default KDF this is ≈ 70 ms after ≈ 260 ms of KDF. A duress unlock whose extra work exceeds the
/// floor still ends later: docs/BENCHMARKS.md measures both.
fn unlock_floor(kdf_start: Instant, durable_write: std::time::Duration) -> Instant {
    const MIN_MARGIN: std::time::Duration = std::time::Duration::from_millis(25);
    let kdf = kdf_start.elapsed();
    kdf_start + kdf + (kdf / 4).max(MIN_MARGIN) + durable_write * 8
}

fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

fn check_passcode_policy(passcode: &Passcode) -> Result<(), VaultError> {
    if passcode.char_count() < MIN_PASSCODE_CHARS {
        return Err(VaultError::PasscodeTooShort {
            min: MIN_PASSCODE_CHARS,
        });
    }
    Ok(())
}

enum State {
    Locked,
    Unlocked(Arc<Store>),
    Wiped,
}

/// An encrypted vault in one directory.
///
/// Thread-safe: operations are serialised internally. Obtain one with [`Vault::create`] (returns it
/// unlocked) or [`Vault::open`] (returns it locked), then [`Vault::unlock`].
pub struct Vault {
    dir: PathBuf,
    provider: Arc<dyn KeyProvider>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// What the last successful unlock found and repaired.
    report: Mutex<Option<UnlockReport>>,
    /// Set while a background thread deletes retired files, so two never race.
    deleting: Arc<AtomicBool>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

/// The material of a freshly made vault, before its slot file is written.
struct Fresh {
    slots: SlotFile,
    store: Store,
}

impl Vault {
    /// Creates a new vault in `dir` protected by `passcode` and `provider`, and returns it unlocked.
    ///
    /// The provider is asked to wrap before anything is written, so a failing provider leaves the
    /// directory as it was.
    pub fn create(
        dir: impl AsRef<Path>,
        passcode: &Passcode,
        provider: Arc<dyn KeyProvider>,
        kdf: KdfParams,
    ) -> Result<Vault, VaultError> {
        check_passcode_policy(passcode)?;
        kdf.validate()?;
        let dir = dir.as_ref().to_path_buf();
        if dir.join(SLOTS_FILE).exists() {
            return Err(VaultError::AlreadyExists);
        }
        let salt = random_salt()?;
        let kek = kdf.derive(passcode, &salt)?;
        let vault = Vault {
            dir,
            provider,
            clock: Arc::new(SystemClock),
            state: Mutex::new(State::Locked),
            report: Mutex::new(None),
            deleting: Arc::new(AtomicBool::new(false)),
        };
        vault.sweep_trash();
        let fresh = vault.make_fresh(kdf, &salt, &kek, crypto::Cipher::preferred())?;
        let store = vault.commit_fresh(fresh)?;
        vault.set_state(State::Unlocked(Arc::new(store)));
        Ok(vault)
    }

    /// Opens the vault in `dir`, locked.
    ///
    /// If the directory holds the remains of an interrupted wipe (no key slots but other vault
    /// files), those remains are removed and [`VaultError::NoVault`] is returned.
    pub fn open(
        dir: impl AsRef<Path>,
        provider: Arc<dyn KeyProvider>,
    ) -> Result<Vault, VaultError> {
        let vault = Vault {
            dir: dir.as_ref().to_path_buf(),
            provider,
            clock: Arc::new(SystemClock),
            state: Mutex::new(State::Locked),
            report: Mutex::new(None),
            deleting: Arc::new(AtomicBool::new(false)),
        };
        if !vault.path(SLOTS_FILE).exists() {
            vault.remove_remains()?;
            vault.sweep_trash();
            return Err(VaultError::NoVault);
        }
        let slots = vault.read_slots()?;
        Self::vault_id(&slots)?;
        slots.main.parse()?;
        slots.duress.parse()?;
        Ok(vault)
    }

    /// True if `dir` holds a vault (its key slot file exists).
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        dir.as_ref().join(SLOTS_FILE).exists()
    }

    /// Replaces the clock used for backoff (tests move time with it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock used for backoff, HLCs and audit times.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The clock, shared (for objects that outlive a call, like attachment writers).
    pub fn clock_arc(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The vault's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Unlocks with `passcode`.
    ///
    /// On the duress passcode the vault is crypto-shredded and replaced by a new, empty vault whose
    /// passcode is the duress passcode; the call returns `Ok` exactly as for the real passcode.
    ///
    /// A provider that fails, or that returns other bytes than it wrapped, is a
    /// [`VaultError::KeyProvider`] error and is not counted as a failed attempt. After a successful
    /// unlock, [`Vault::last_unlock_report`] says what was repaired after a crash.
    pub fn unlock(&self, passcode: &Passcode) -> Result<(), VaultError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, State::Wiped) {
            return Err(VaultError::NoVault);
        }
        let slots = self.read_slots()?;
        let vault_id = Self::vault_id(&slots)?;
        let main = slots.main.parse()?;
        let duress = slots.duress.parse()?;
        let lockout = self.check_backoff()?;
        // Provider first: its failure is not a wrong passcode and must not count as one.
        let main_sealed = main.unwrap(self.provider.as_ref())?;
        let duress_sealed = duress.unwrap(self.provider.as_ref())?;
        let write_start = Instant::now();
        let attempt = self.record_attempt(lockout)?;
        let durable_write = write_start.elapsed();

        // Both KDFs always run, so a duress unlock is not slower than a normal one.
        let kdf_start = Instant::now();
        let main_kek = main.kdf.derive(passcode, &main.salt)?;
        let duress_kek = duress.kdf.derive(passcode, &duress.salt)?;
        let done_no_earlier = unlock_floor(kdf_start, durable_write);
        let main_aad = slot_aad(SlotKind::Main, &vault_id, &main.kdf, &main.salt);
        let duress_aad = slot_aad(SlotKind::Duress, &vault_id, &duress.kdf, &duress.salt);

        if let Ok(dk) = crypto::open(&main_kek, &main_aad, main_sealed.expose()) {
            let dk = SecretKey::from_slice(dk.expose())
                .ok_or(VaultError::CorruptSlots("bad data key length"))?;
            self.reset_lockout()?;
            if slots.format == SLOT_FORMAT_V1 {
                // Best effort: a failed upgrade leaves a readable format-1 file for next time.
                let _ = self.add_slot_checks(slots, &main_sealed, &duress_sealed);
            }
            if let State::Unlocked(old) = &*state {
                old.close();
            }
            let store = Store::open(&self.path(DB_FILE), &dk, &vault_id, self.clock.clone())?;
            audit::record(&store, AuditKind::Unlock, None)?;
            // Attachment files and records agree again after a crash (see `layout`).
            let report = layout::reconcile(&self.dir, &store);
            *state = State::Unlocked(Arc::new(store));
            self.set_report(report.into());
            wait_until(done_no_earlier);
            // Files a wipe retired but did not finish deleting (the app was killed) would show
            // that a wipe happened: finish them, in the background.
            self.delete_in_background(layout::trash(&self.dir));
            return Ok(());
        }
        if crypto::open(&duress_kek, &duress_aad, duress_sealed.expose()).is_ok() {
            // The decoy keeps the cipher of the store it replaces: a vault made before AES-256-GCM
            // stores existed must not change format at a duress unlock (an inspector comparing
            // before and after would see it).
            let cipher = Store::cipher_on_disk(&self.path(DB_FILE))
                .unwrap_or_else(crypto::Cipher::preferred);
            let open_store = match std::mem::replace(&mut *state, State::Wiped) {
                State::Unlocked(store) => Some(store),
                _ => None,
            };
            // Errors are ignored on purpose: whatever the platform says, the slots are gone and the
            // person under coercion must see an ordinary unlock.
            // The directory is synced by the new vault's first durable write below.
            let retired = self
                .wipe_files(open_store.as_deref(), false)
                .unwrap_or_else(|(_, retired)| retired);
            let fresh = self.make_fresh(duress.kdf, &duress.salt, &duress_kek, cipher)?;
            let store = self.commit_fresh(fresh)?;
            audit::record(&store, AuditKind::Unlock, None)?;
            let report = layout::reconcile(&self.dir, &store);
            *state = State::Unlocked(Arc::new(store));
            self.set_report(report.into());
            wait_until(done_no_earlier);
            // Only now, with the new vault committed, do the old files start to go: their deletion
            // must not compete with the new vault's fsyncs, or the unlock would take longer the
            // more data there was (docs/BENCHMARKS.md).
            self.delete_in_background(retired);
            return Ok(());
        }
        Err(VaultError::WrongPasscode {
            failed_attempts: attempt.failed_attempts,
            retry_at_ms: attempt.retry_at(self.clock.now_ms()),
        })
    }

    /// What the last successful unlock found and repaired (attachment files after a crash), or
    /// `None` if this `Vault` was never unlocked (a vault returned by `create` has nothing to
    /// repair).
    pub fn last_unlock_report(&self) -> Option<UnlockReport> {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Checks the whole vault: every record and blind-index entry against the sealed manifest,
    /// every record decrypted and authenticated, SQLite's own structure, and every attachment
    /// record against its file.
    ///
    /// Reads everything, so it takes time on a large vault: run it off the UI thread (e.g. after
    /// unlock). Other calls wait while each step holds the store.
    ///
    /// Errors: `Store(Integrity)` if a record is missing, hidden, added or altered;
    /// `Store(Corrupt)` if the database structure is damaged. Missing attachment files are
    /// reported in the result, not as an error (the records themselves are intact).
    pub fn check_integrity(&self) -> Result<IntegrityReport, VaultError> {
        let store = self.store()?;
        let check = store.check_integrity(&collections::ALL)?;
        let ids = store.read(|tx| tx.list(ATTACHMENTS))?;
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        Ok(IntegrityReport {
            records: check.records,
            records_opened: check.records_opened,
            index_entries: check.index_entries,
            missing_attachment_files: layout::missing_files(&self.dir, &ids),
        })
    }

    /// Locks: closes the store and drops (zeroizes) every key. Store handles still held elsewhere
    /// fail with `Locked` from now on.
    pub fn lock(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Unlocked(store) = &*state {
            store.close();
            *state = State::Locked;
        }
    }

    /// True while unlocked.
    pub fn is_unlocked(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(|e| e.into_inner()),
            State::Unlocked(_)
        )
    }

    /// The encrypted store, if unlocked.
    pub fn store(&self) -> Result<Arc<Store>, VaultError> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Unlocked(store) => Ok(Arc::clone(store)),
            State::Locked => Err(VaultError::Locked),
            State::Wiped => Err(VaultError::NoVault),
        }
    }

    /// The failed-attempt counter and when the next attempt is allowed.
    pub fn unlock_status(&self) -> UnlockStatus {
        let state = self.lockout().load();
        UnlockStatus {
            failed_attempts: state.failed_attempts,
            retry_at_ms: state.retry_at(self.clock.now_ms()),
        }
    }

    /// Changes the passcode. Needs the vault unlocked and the current passcode; the data key and all
    /// data stay as they are (only the main slot is rewritten, atomically).
    pub fn change_passcode(&self, current: &Passcode, new: &Passcode) -> Result<(), VaultError> {
        check_passcode_policy(new)?;
        let _state = self.unlocked_guard()?;
        let mut slots = self.read_slots()?;
        let vault_id = Self::vault_id(&slots)?;
        let dk = self.verify_main(&slots, &vault_id, current)?;
        let duress = slots.duress.parse()?;
        if self.opens_slot(&duress, SlotKind::Duress, &vault_id, new)? {
            return Err(VaultError::DuressConflict);
        }
        let kdf = slots.main.kdf;
        let salt = random_salt()?;
        let kek = kdf.derive(new, &salt)?;
        slots.main = make_slot(
            self.provider.as_ref(),
            SlotKind::Main,
            &vault_id,
            kdf,
            &salt,
            &kek,
            &dk,
        )?;
        self.ensure_checks(&mut slots)?;
        self.write_slots(&slots)
    }

    /// Sets (or replaces) the duress passcode. Needs the vault unlocked and the current passcode.
    pub fn set_duress_passcode(
        &self,
        current: &Passcode,
        duress: &Passcode,
    ) -> Result<(), VaultError> {
        check_passcode_policy(duress)?;
        let _state = self.unlocked_guard()?;
        let mut slots = self.read_slots()?;
        let vault_id = Self::vault_id(&slots)?;
        self.verify_main(&slots, &vault_id, current)?;
        let main = slots.main.parse()?;
        if self.opens_slot(&main, SlotKind::Main, &vault_id, duress)? {
            return Err(VaultError::DuressConflict);
        }
        let kdf = slots.main.kdf;
        let salt = random_salt()?;
        let kek = kdf.derive(duress, &salt)?;
        let token = crypto::random_key()?;
        slots.duress = make_slot(
            self.provider.as_ref(),
            SlotKind::Duress,
            &vault_id,
            kdf,
            &salt,
            &kek,
            &token,
        )?;
        self.ensure_checks(&mut slots)?;
        self.write_slots(&slots)
    }

    /// Crypto-shreds the vault: destroys the platform key, overwrites and deletes the key slots,
    /// then removes everything else. Works locked or unlocked, is idempotent, and an interruption
    /// at any point leaves nothing decryptable (the slots go before the data).
    ///
    /// Returns the provider's error if it could not destroy its key, after completing every other
    /// step (the slots are gone either way, so the data is already undecryptable).
    pub fn panic_wipe(&self) -> Result<(), VaultError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let open_store = match std::mem::replace(&mut *state, State::Wiped) {
            State::Unlocked(store) => Some(store),
            _ => None,
        };
        let result = self.wipe_files(open_store.as_deref(), true);
        let retired = match &result {
            Ok(retired) => retired.clone(),
            Err((_, retired)) => retired.clone(),
        };
        self.delete_in_background(retired);
        result.map(|_| ()).map_err(|(e, _)| e)
    }

    /// Wipes the vault in `dir` without opening it (e.g. when its files are damaged).
    pub fn wipe(dir: impl AsRef<Path>, provider: Arc<dyn KeyProvider>) -> Result<(), VaultError> {
        let vault = Vault {
            dir: dir.as_ref().to_path_buf(),
            provider,
            clock: Arc::new(SystemClock),
            state: Mutex::new(State::Wiped),
            report: Mutex::new(None),
            deleting: Arc::new(AtomicBool::new(false)),
        };
        let result = vault.wipe_files(None, true);
        let retired = match &result {
            Ok(retired) => retired.clone(),
            Err((_, retired)) => retired.clone(),
        };
        vault.delete_in_background(retired);
        result.map(|_| ()).map_err(|(e, _)| e)
    }

    // ---- internals ----

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lockout(&self) -> LockoutFile {
        LockoutFile::new(&self.path(LOCKOUT_FILE))
    }

    fn set_state(&self, new: State) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = new;
    }

    fn set_report(&self, report: UnlockReport) {
        *self.report.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }

    /// Gives every slot of a format-1 file its check value before the file is rewritten (normally
    /// unlock did it already; this covers an upgrade that could not be written then).
    fn ensure_checks(&self, slots: &mut SlotFile) -> Result<(), VaultError> {
        for slot in [&mut slots.main, &mut slots.duress] {
            if slot.check.is_none() {
                let sealed = slot.parse()?.unwrap(self.provider.as_ref())?;
                slot.check = Some(fsutil::to_hex(&slot_check(sealed.expose())));
            }
        }
        slots.format = SLOT_FORMAT;
        Ok(())
    }

    /// Upgrades a format-1 slot file: adds the check value of each slot, computed from the blobs
    /// the provider just unwrapped (and that opened with the passcode, so they are the right ones).
    fn add_slot_checks(
        &self,
        mut slots: SlotFile,
        main_sealed: &SecretBytes,
        duress_sealed: &SecretBytes,
    ) -> Result<(), VaultError> {
        slots.format = SLOT_FORMAT;
        slots.main.check = Some(fsutil::to_hex(&slot_check(main_sealed.expose())));
        slots.duress.check = Some(fsutil::to_hex(&slot_check(duress_sealed.expose())));
        self.write_slots(&slots)
    }

    fn unlocked_guard(&self) -> Result<std::sync::MutexGuard<'_, State>, VaultError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            State::Unlocked(_) => Ok(state),
            State::Locked => Err(VaultError::Locked),
            State::Wiped => Err(VaultError::NoVault),
        }
    }

    fn read_slots(&self) -> Result<SlotFile, VaultError> {
        let bytes = match std::fs::read(self.path(SLOTS_FILE)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(VaultError::NoVault),
            Err(e) => return Err(e.into()),
        };
        let slots: SlotFile = serde_json::from_slice(&bytes)
            .map_err(|_| VaultError::CorruptSlots("not a key slot file"))?;
        match slots.format {
            SLOT_FORMAT_V1 => {}
            SLOT_FORMAT if slots.main.check.is_some() && slots.duress.check.is_some() => {}
            SLOT_FORMAT => return Err(VaultError::CorruptSlots("missing check value")),
            _ => return Err(VaultError::CorruptSlots("unknown format")),
        }
        Ok(slots)
    }

    fn write_slots(&self, slots: &SlotFile) -> Result<(), VaultError> {
        if slots.format != SLOT_FORMAT || slots.main.check.is_none() || slots.duress.check.is_none()
        {
            return Err(VaultError::CorruptSlots("slot without check value"));
        }
        let bytes = serde_json::to_vec_pretty(slots)
            .map_err(|_| VaultError::CorruptSlots("cannot encode"))?;
        fsutil::write_atomic(&self.path(SLOTS_FILE), &bytes)?;
        Ok(())
    }

    fn vault_id(slots: &SlotFile) -> Result<Vec<u8>, VaultError> {
        fsutil::from_hex(&slots.vault_id)
            .filter(|id| id.len() == 16)
            .ok_or(VaultError::CorruptSlots("bad vault id"))
    }

    /// Refuses if a wait is required; repairs a clock that went backwards.
    fn check_backoff(&self) -> Result<LockoutState, VaultError> {
        let file = self.lockout();
        let mut state = file.load();
        let now = self.clock.now_ms();
        if state.last_attempt_ms > now {
            // The clock went back (or was set back): restart the wait from now rather than locking
            // the field worker out until the old time comes round again.
            state.last_attempt_ms = now;
            file.store(&state)?;
        }
        if let Some(retry_at_ms) = state.retry_at(now) {
            return Err(VaultError::Backoff {
                failed_attempts: state.failed_attempts,
                retry_at_ms,
                retry_after_secs: (retry_at_ms - now).div_ceil(1000),
            });
        }
        Ok(state)
    }

    /// Counts the attempt as failed, durably, before the passcode is checked.
    fn record_attempt(&self, mut state: LockoutState) -> Result<LockoutState, VaultError> {
        state.failed_attempts = state.failed_attempts.saturating_add(1);
        state.last_attempt_ms = self.clock.now_ms();
        self.lockout().store(&state)?;
        Ok(state)
    }

    fn reset_lockout(&self) -> Result<(), VaultError> {
        self.lockout().store(&LockoutState::default())?;
        Ok(())
    }

    /// Verifies `passcode` against the main slot (with backoff) and returns the data key.
    fn verify_main(
        &self,
        slots: &SlotFile,
        vault_id: &[u8],
        passcode: &Passcode,
    ) -> Result<SecretKey, VaultError> {
        let main = slots.main.parse()?;
        let lockout = self.check_backoff()?;
        let sealed = main.unwrap(self.provider.as_ref())?;
        let attempt = self.record_attempt(lockout)?;
        let kek = main.kdf.derive(passcode, &main.salt)?;
        let aad = slot_aad(SlotKind::Main, vault_id, &main.kdf, &main.salt);
        match crypto::open(&kek, &aad, sealed.expose()) {
            Ok(dk) => {
                self.reset_lockout()?;
                SecretKey::from_slice(dk.expose())
                    .ok_or(VaultError::CorruptSlots("bad data key length"))
            }
            Err(_) => Err(VaultError::WrongPasscode {
                failed_attempts: attempt.failed_attempts,
                retry_at_ms: attempt.retry_at(self.clock.now_ms()),
            }),
        }
    }

    fn opens_slot(
        &self,
        slot: &ParsedSlot,
        kind: SlotKind,
        vault_id: &[u8],
        passcode: &Passcode,
    ) -> Result<bool, VaultError> {
        let sealed = slot.unwrap(self.provider.as_ref())?;
        let kek = slot.kdf.derive(passcode, &slot.salt)?;
        let aad = slot_aad(kind, vault_id, &slot.kdf, &slot.salt);
        Ok(crypto::open(&kek, &aad, sealed.expose()).is_ok())
    }

    /// Makes a new data key, slots and database; nothing is visible as a vault until
    /// [`Vault::commit_fresh`] writes the slot file.
    fn make_fresh(
        &self,
        kdf: KdfParams,
        salt: &[u8],
        kek: &SecretKey,
        cipher: crypto::Cipher,
    ) -> Result<Fresh, VaultError> {
        let mut vault_id = [0u8; 16];
        crypto::os_random(&mut vault_id)?;
        let dk = crypto::random_key()?;
        let main = make_slot(
            self.provider.as_ref(),
            SlotKind::Main,
            &vault_id,
            kdf,
            salt,
            kek,
            &dk,
        )?;
        let duress = filler_slot(self.provider.as_ref(), kdf)?;
        fsutil::create_private_dir(&self.dir)?;
        self.remove_remains()?;
        let store = Store::create(
            &self.path(DB_FILE),
            StoreKeys::derive(&dk, cipher),
            &vault_id,
            self.clock.clone(),
        )?;
        Ok(Fresh {
            slots: SlotFile {
                format: SLOT_FORMAT,
                vault_id: fsutil::to_hex(&vault_id),
                main,
                duress,
            },
            store,
        })
    }

    fn commit_fresh(&self, fresh: Fresh) -> Result<Store, VaultError> {
        self.reset_lockout()?;
        if let Err(e) = self.write_slots(&fresh.slots) {
            fresh.store.close();
            let _ = self.remove_remains();
            return Err(e);
        }
        Ok(fresh.store)
    }

    /// Removes database and counter files (what is left of a vault without slots).
    fn remove_remains(&self) -> Result<(), VaultError> {
        for name in Self::data_file_names() {
            remove_tree(&self.path(&name))?;
        }
        Ok(())
    }

    /// Best-effort removal, now, of files a wipe retired but whose background deletion was cut
    /// short (ciphertext whose keys are gone). For `create` and for `open` of a directory without a
    /// vault, where no unlock is being timed.
    fn sweep_trash(&self) {
        for path in layout::trash(&self.dir) {
            let _ = remove_tree(&path);
        }
    }

    fn data_file_names() -> [String; 8] {
        [
            ATTACHMENTS_DIR.to_string(),
            crate::names::files::UPLOADS_DIR.to_string(),
            DB_FILE.to_string(),
            format!("{DB_FILE}-wal"),
            format!("{DB_FILE}-shm"),
            format!("{DB_FILE}-journal"),
            LOCKOUT_FILE.to_string(),
            format!("{}.tmp", LOCKOUT_FILE.trim_end_matches(".json")),
        ]
    }

    /// The wipe, in the order that makes an interruption harmless: platform key, then key slots
    /// (from here on nothing is decryptable), then the open store (closed without a checkpoint),
    /// then the remaining files.
    ///
    /// The database files and the attachment folder are renamed out of the way (O(1)) and returned;
    /// the caller deletes them with [`Vault::delete_in_background`] when it is done with the disk:
    /// unlinking a large file with unwritten pages in the page cache takes the kernel ~0.1 s per
    /// 200 MB, which would make a wipe — and a duress unlock — slower the more data there is.
    /// Renamed remains carry a `.trash-` prefix; an interrupted deletion is finished by the next
    /// unlock (in the background), open or create.
    ///
    /// On error (the provider could not destroy its key, the slots could not be shredded) every
    /// other step has still run, and the retired paths come with the error.
    #[allow(clippy::type_complexity)]
    fn wipe_files(
        &self,
        open_store: Option<&Store>,
        sync_dir: bool,
    ) -> Result<Vec<PathBuf>, (VaultError, Vec<PathBuf>)> {
        let destroyed = self.provider.destroy();
        let slots_tmp = self.path(SLOTS_FILE).with_extension("tmp");
        let shredded = fsutil::shred(&self.path(SLOTS_FILE)).and(fsutil::shred(&slots_tmp));
        if let Some(store) = open_store {
            store.discard();
        }
        let mut retired = Vec::new();
        let mut tag = [0u8; 8];
        let _ = crypto::os_random(&mut tag);
        for name in Self::data_file_names() {
            let from = self.path(&name);
            let to = self.path(&format!("{TRASH_PREFIX}{}-{name}", fsutil::to_hex(&tag)));
            match std::fs::rename(&from, &to) {
                Ok(()) => retired.push(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => {
                    let _ = fsutil::remove(&from);
                }
            }
        }
        if sync_dir {
            let _ = fsutil::sync_parent(&self.path(SLOTS_FILE));
        }
        if let Err(e) = shredded {
            return Err((e.into(), retired));
        }
        if let Err(e) = destroyed {
            return Err((e.into(), retired));
        }
        Ok(retired)
    }

    /// Deletes retired files on a background thread, gently ([`layout::delete_gently`]); at most
    /// one such thread per `Vault` at a time (a second call while one runs leaves its paths to the
    /// next sweep).
    fn delete_in_background(&self, paths: Vec<PathBuf>) {
        if paths.is_empty() || self.deleting.swap(true, Ordering::SeqCst) {
            return;
        }
        let deleting = Arc::clone(&self.deleting);
        let spawned = std::thread::Builder::new()
            .name("amanat-trash".into())
            .spawn(move || {
                layout::delete_gently(&paths);
                deleting.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.deleting.store(false, Ordering::SeqCst);
        }
    }
}

/// Removes a file or a whole directory; missing is fine.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    } else {
        fsutil::remove(path)
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        self.lock();
    }
}
