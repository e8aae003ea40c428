//! The cryptographic primitives of the vault, in one place.
//!
//! * **Sealing**: an AEAD from ring with a random 96-bit nonce and caller-supplied associated data.
//!   Format of a sealed value: `format ‖ nonce(12) ‖ ciphertext ‖ tag(16)`, where the format byte
//!   names the [`Cipher`]: `0x01` ChaCha20-Poly1305 (every key slot, and the store of a vault made
//!   on a CPU without AES instructions), `0x02` AES-256-GCM (the store of a vault made on a CPU with
//!   them). A vault's store uses one cipher for its whole life (docs/SECURITY.md, "Ciphers").
//! * **Nonces** come from [`NonceSource`], a ChaCha20 CSPRNG in user space seeded from the OS once
//!   per unlock: random nonces cannot repeat after a crash, a restore from backup or a clock change
//!   (a persisted counter could), and a syscall per record would cost a third of the sealing time.
//! * **Subkeys**: HKDF-SHA256 of the data key with one label per purpose ([`labels`]).
//! * **Blind indexes**: HMAC-SHA256 under their own subkey.
//! * **Passcode KDF**: Argon2id with parameters stored next to the salt ([`KdfParams`]).
//! * **Padding**: plaintexts are padded (Padmé) before sealing so stored sizes leak little.

pub mod provider;

use crate::names::labels;
use crate::secret::{Passcode, SecretBytes, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use ring::aead::{Aad, Algorithm, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use zeroize::Zeroize;

/// Errors of the cryptographic layer. None of them carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed: wrong key, or the bytes or their context (row, version) were altered.
    #[error("integrity check failed: data altered, moved, or sealed under another key")]
    Integrity,
    /// The sealed value is too short or has an unknown format byte.
    #[error("malformed sealed value")]
    Malformed,
    /// The operating system's random generator failed; nothing can be sealed safely.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Argon2 parameters outside the accepted range (possibly a tampered key slot).
    #[error("invalid key derivation parameters: {0}")]
    KdfParams(&'static str),
    /// Argon2 itself failed (e.g. could not allocate its memory).
    #[error("key derivation failed")]
    Kdf,
}

/// Nonce length of both ciphers.
pub const NONCE_LEN: usize = 12;
/// Tag length of both ciphers.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its (padded) plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Fills `buf` from the operating system's CSPRNG.
///
/// Used for long-lived secrets (data key, salts, seeds); per-record nonces use [`NonceSource`].
pub fn os_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Random)
}

/// A fresh random 256-bit key from the OS.
pub fn random_key() -> Result<SecretKey, CryptoError> {
    let mut bytes = [0u8; 32];
    os_random(&mut bytes)?;
    Ok(SecretKey::from_array(bytes))
}

/// Derives the subkey for `label` from `key` with HKDF-SHA256.
pub fn derive_subkey(key: &SecretKey, label: &[u8]) -> SecretKey {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, labels::HKDF_SALT);
    let prk = salt.extract(key.expose());
    let mut out = [0u8; 32];
    let info = [label];
    // `expand` fails only if the output is longer than 255 × 32 bytes; fill only if the length
    // differs from the key type's. Neither can happen with a fixed 32-byte output.
    if let Ok(okm) = prk.expand(&info, hkdf::HKDF_SHA256) {
        let _ = okm.fill(&mut out);
    }
    SecretKey::from_array(out)
}

/// A user-space CSPRNG for nonces and record ids, seeded from the OS once per unlock.
///
/// Why not the OS per nonce: a `getrandom` syscall per record costs about a third of sealing time.
/// Why not a counter: a persisted counter repeats after a crash or a restore from backup. A ChaCha20
/// stream seeded with 256 fresh OS bits per unlock gives 96-bit nonces whose collision probability
/// stays negligible (birthday bound ~2^48 values per key).
pub struct NonceSource(Mutex<ChaCha20Rng>);

impl NonceSource {
    /// Seeds a new generator from the OS.
    pub fn new() -> Result<Self, CryptoError> {
        let mut seed = [0u8; 32];
        os_random(&mut seed)?;
        let rng = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        Ok(Self(Mutex::new(rng)))
    }

    /// A generator with a fixed seed, so tests can freeze sealed bytes as vectors. Test support
    /// only: a fixed seed repeats nonces across runs.
    #[cfg(any(test, feature = "testing"))]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(Mutex::new(ChaCha20Rng::from_seed(seed)))
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&self, buf: &mut [u8]) {
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rng.fill_bytes(buf);
    }
}

impl std::fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSource(<redacted>)")
    }
}

/// The AEAD of a sealed value, named by its first byte.
///
/// Why two: field phones include budget SoCs without AES instructions, where ChaCha20-Poly1305 is
/// the fast constant-time choice (and ring's AES falls back to a slower bitsliced code); on CPUs
/// with AES instructions AES-256-GCM opens a 2 KiB record about three times faster, which is most
/// of the store's point-read cost after SQLite itself (docs/BENCHMARKS.md). Both have 256-bit keys,
/// 96-bit nonces and 128-bit tags, so the layout and the overhead are the same.
///
/// A key is only ever used with one cipher: the store derives its records key with a label per
/// cipher ([`Cipher::records_label`]) and refuses a value whose format byte is not its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// ChaCha20-Poly1305, format byte `0x01`.
    ChaCha20Poly1305,
    /// AES-256-GCM, format byte `0x02`.
    Aes256Gcm,
}

impl Cipher {
    /// The format byte that starts every value sealed with this cipher. Never changes: it is in
    /// every stored value.
    pub const fn format_byte(self) -> u8 {
        match self {
            Cipher::ChaCha20Poly1305 => 1,
            Cipher::Aes256Gcm => 2,
        }
    }

    /// The cipher a format byte names; `None` for a byte no version wrote.
    pub const fn from_format_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Cipher::ChaCha20Poly1305),
            2 => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }

    /// The cipher of a sealed value, read from its format byte.
    pub fn of_sealed(sealed: &[u8]) -> Result<Self, CryptoError> {
        sealed
            .first()
            .and_then(|&b| Self::from_format_byte(b))
            .ok_or(CryptoError::Malformed)
    }

    /// The HKDF label of the store's records subkey under this cipher, so the two ciphers never
    /// share a key. ChaCha20-Poly1305 keeps the label vaults have used from the start.
    pub const fn records_label(self) -> &'static [u8] {
        match self {
            Cipher::ChaCha20Poly1305 => labels::RECORDS,
            Cipher::Aes256Gcm => labels::RECORDS_AES256GCM,
        }
    }

    /// The cipher a new vault's store should use on this CPU: AES-256-GCM where the CPU has AES
    /// and carry-less multiply instructions (x86-64 AES-NI + PCLMULQDQ, AArch64 AES + PMULL),
    /// ChaCha20-Poly1305 everywhere else.
    pub fn preferred() -> Self {
        #[cfg(any(test, feature = "testing"))]
        if let Some(forced) = FORCED_CIPHER.with(|f| f.get()) {
            return forced;
        }
        if cpu_has_aes() {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        }
    }

    fn algorithm(self) -> &'static Algorithm {
        match self {
            Cipher::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            Cipher::Aes256Gcm => &AES_256_GCM,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn cpu_has_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_has_aes() -> bool {
    false
}

#[cfg(any(test, feature = "testing"))]
thread_local! {
    static FORCED_CIPHER: std::cell::Cell<Option<Cipher>> = const { std::cell::Cell::new(None) };
}

/// Makes [`Cipher::preferred`] answer `cipher` on this thread (`None`: the CPU decides again), so
/// tests can make a vault of each kind on any machine. Test support only.
#[cfg(any(test, feature = "testing"))]
pub fn force_preferred_cipher(cipher: Option<Cipher>) {
    FORCED_CIPHER.with(|f| f.set(cipher));
}

/// Seals `plaintext` with ChaCha20-Poly1305 under `key`, binding `aad`, writing the sealed value
/// to `out` (cleared first). See [`seal_into_with`].
pub fn seal_into(
    key: &SecretKey,
    nonces: &NonceSource,
    aad: &[u8],
    plaintext: &[u8],
    padded: bool,
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    seal_into_with(
        Cipher::ChaCha20Poly1305,
        key,
        nonces,
        aad,
        plaintext,
        padded,
        out,
    )
}

/// Seals `plaintext` with `cipher` under `key`, binding `aad`, writing the sealed value to `out`
/// (cleared first).
///
/// With `padded`, the plaintext is sealed as `plaintext ‖ 0x80 ‖ 0…` up to its Padmé length (undo
/// with [`unpad`]). `out` is reusable across calls so the hot path of the store does not allocate.
pub fn seal_into_with(
    cipher: Cipher,
    key: &SecretKey,
    nonces: &NonceSource,
    aad: &[u8],
    plaintext: &[u8],
    padded: bool,
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    AeadKey::new(cipher, key)?.seal_into(nonces, aad, plaintext, padded, out)
}

/// A sealing key with its cipher's key schedule built, for a batch of operations.
///
/// Building the schedule costs little for ChaCha20-Poly1305 but, for AES-256-GCM, about as much
/// as opening a small record (the AES round keys and the GHASH table). The store builds one per
/// transaction and drops it with the transaction, like [`Prf`]: ring does not zeroize its key
/// schedule, so it is never kept for the whole unlock (docs/SECURITY.md).
pub struct AeadKey {
    cipher: Cipher,
    key: LessSafeKey,
}

impl AeadKey {
    /// `key`'s schedule for `cipher`.
    pub fn new(cipher: Cipher, key: &SecretKey) -> Result<Self, CryptoError> {
        let key = UnboundKey::new(cipher.algorithm(), key.expose())
            .map(LessSafeKey::new)
            .map_err(|_| CryptoError::Integrity)?;
        Ok(Self { cipher, key })
    }

    /// Seals like [`seal_into_with`] under this key.
    pub fn seal_into(
        &self,
        nonces: &NonceSource,
        aad: &[u8],
        plaintext: &[u8],
        padded: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        nonces.fill(&mut nonce);
        let body_len = if padded {
            padme_len(plaintext.len() + 1)
        } else {
            plaintext.len()
        };
        out.clear();
        out.reserve(SEAL_OVERHEAD + body_len);
        out.push(self.cipher.format_byte());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        if padded {
            out.push(0x80);
        }
        out.resize(1 + NONCE_LEN + body_len, 0);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Integrity)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens like [`open_with`] under this key.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(CryptoError::Malformed);
        }
        let (head, body) = sealed.split_at(1 + NONCE_LEN);
        if head.first() != Some(&self.cipher.format_byte()) {
            return Err(CryptoError::Malformed);
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&head[1..]).map_err(|_| CryptoError::Malformed)?;
        let mut buf = Vec::with_capacity(body.len());
        buf.extend_from_slice(body);
        let mut plain = SecretBytes::new(buf);
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), plain.as_mut_vec())
            .map_err(|_| CryptoError::Integrity)?
            .len();
        plain.as_mut_vec().truncate(len);
        Ok(plain)
    }
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AeadKey({:?}, <redacted>)", self.cipher)
    }
}

/// Seals `plaintext` without padding into a new buffer.
pub fn seal(
    key: &SecretKey,
    nonces: &NonceSource,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::new();
    seal_into(key, nonces, aad, plaintext, false, &mut out)?;
    Ok(out)
}

/// Opens a ChaCha20-Poly1305 value made by [`seal_into`]; see [`open_with`].
pub fn open(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
    open_with(Cipher::ChaCha20Poly1305, key, aad, sealed)
}

/// Opens a value made by [`seal_into_with`] with `cipher`; fails with [`CryptoError::Integrity`]
/// if the key, the bytes or the associated data differ in any way, and with
/// [`CryptoError::Malformed`] if the value is too short or was not sealed with `cipher` (a key is
/// never tried with a cipher it was not made for).
pub fn open_with(
    cipher: Cipher,
    key: &SecretKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    AeadKey::new(cipher, key)?.open(aad, sealed)
}

/// Padmé padding length for a message of `len` bytes (Nikitin et al., 2019).
///
/// Leaks O(log log n) bits of the length with at most 12% overhead: a 1,900-byte and a 1,920-byte
/// narrative are stored at the same size.
pub fn padme_len(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e.saturating_sub(s);
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// Strips the padding of a value sealed with `padded = true`; `None` if the padding is malformed.
pub fn unpad(value: &mut SecretBytes) -> Option<()> {
    let v = value.as_mut_vec();
    // The padding is up to 12 % of the value: skip it 16 bytes at a time rather than byte by byte
    // (every point read does this), then find the marker byte by byte.
    let mut zeros_from = v.len();
    while zeros_from >= 16 && v[zeros_from - 16..zeros_from] == [0u8; 16] {
        zeros_from -= 16;
    }
    let end = v[..zeros_from].iter().rposition(|&b| b != 0)?;
    if v[end] != 0x80 {
        return None;
    }
    v.truncate(end);
    Some(())
}

/// A blind-index token: HMAC-SHA256 under the index subkey over a length-prefixed context and value.
///
/// Lets the store answer "which case has code X?" without storing X: an attacker holding the
/// database but not the key cannot test guesses.
pub fn blind_token(index_key: &SecretKey, parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, index_key.expose());
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// A keyed pseudo-random function (HMAC-SHA256 over length-prefixed parts, like [`blind_token`])
/// whose key schedule is built once for a batch of inputs.
///
/// The store's manifests hash every record and index entry of a collection when they check a list
/// or a lookup; building the HMAC key per row would double the cost. A `Prf` lives for one store
/// transaction and is dropped with it (ring does not zeroize its key schedule, so it is not kept
/// for the whole unlock).
pub struct Prf(hmac::Key);

impl Prf {
    /// A PRF keyed with `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key.expose()))
    }

    /// HMAC-SHA256 of the length-prefixed `parts`.
    pub fn eval(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

impl std::fmt::Debug for Prf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prf(<redacted>)")
    }
}

/// Argon2id cost parameters, stored in each key slot beside its salt.
///
/// Defaults follow the design (m = 64 MiB, t = 3, p = 1): roughly a third of a second on a mid-range
/// phone, and 64 MiB per guess for an attacker. Tests pass small values to stay fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism (lanes).
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// Largest memory cost accepted from a slot file (1 GiB): a tampered slot must not be able to
    /// make the phone allocate unbounded memory.
    pub const MAX_M_KIB: u32 = 1024 * 1024;
    /// Largest iteration count accepted from a slot file.
    pub const MAX_T: u32 = 64;
    /// Largest parallelism accepted.
    pub const MAX_P: u32 = 16;

    /// Checks the parameters are within what Argon2 accepts and what a phone can afford.
    pub fn validate(&self) -> Result<(), CryptoError> {
        if self.p == 0 || self.p > Self::MAX_P {
            return Err(CryptoError::KdfParams("parallelism must be 1..=16"));
        }
        if self.t == 0 || self.t > Self::MAX_T {
            return Err(CryptoError::KdfParams("iterations must be 1..=64"));
        }
        if self.m_kib < 8 * self.p || self.m_kib > Self::MAX_M_KIB {
            return Err(CryptoError::KdfParams(
                "memory must be at least 8 KiB per lane and at most 1 GiB",
            ));
        }
        Ok(())
    }

    /// Derives a 256-bit key-encryption key from `passcode` and `salt`.
    pub fn derive(&self, passcode: &Passcode, salt: &[u8]) -> Result<SecretKey, CryptoError> {
        self.validate()?;
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|_| CryptoError::KdfParams("rejected by Argon2"))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(passcode.as_bytes(), salt, &mut out)
            .map_err(|_| CryptoError::Kdf)?;
        Ok(SecretKey::from_array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_array([b; 32])
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let n = NonceSource::new().unwrap();
        let sealed = seal(&key(1), &n, b"ctx", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&key(1), b"ctx", &sealed).unwrap().expose(), b"hello");
        assert_eq!(open(&key(2), b"ctx", &sealed), Err(CryptoError::Integrity));
        assert_eq!(open(&key(1), b"ctx2", &sealed), Err(CryptoError::Integrity));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(open(&key(1), b"ctx", &t).is_err(), "flip at {i} accepted");
        }
        assert_eq!(
            open(&key(1), b"ctx", &sealed[..10]),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn both_ciphers_round_trip_and_never_open_each_others_values() {
        let n = NonceSource::new().unwrap();
        let mut out = Vec::new();
        for cipher in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
            seal_into_with(cipher, &key(1), &n, b"ctx", b"hello", true, &mut out).unwrap();
            assert_eq!(out[0], cipher.format_byte());
            assert_eq!(Cipher::of_sealed(&out), Ok(cipher));
            assert_eq!(out.len(), padme_len(6) + SEAL_OVERHEAD);
            let mut opened = open_with(cipher, &key(1), b"ctx", &out).unwrap();
            unpad(&mut opened).unwrap();
            assert_eq!(opened.expose(), b"hello");
            assert_eq!(
                open_with(cipher, &key(2), b"ctx", &out),
                Err(CryptoError::Integrity)
            );
            for i in 1..out.len() {
                let mut t = out.clone();
                t[i] ^= 0x80;
                assert_eq!(
                    open_with(cipher, &key(1), b"ctx", &t),
                    Err(CryptoError::Integrity),
                    "{cipher:?}: flip at {i} accepted"
                );
            }
            // The other cipher refuses the value without trying the key on it, and so does the
            // same cipher once the format byte names the other one.
            let other = match cipher {
                Cipher::ChaCha20Poly1305 => Cipher::Aes256Gcm,
                Cipher::Aes256Gcm => Cipher::ChaCha20Poly1305,
            };
            assert_eq!(
                open_with(other, &key(1), b"ctx", &out),
                Err(CryptoError::Malformed)
            );
            let mut relabelled = out.clone();
            relabelled[0] = other.format_byte();
            assert_eq!(
                open_with(cipher, &key(1), b"ctx", &relabelled),
                Err(CryptoError::Malformed)
            );
            assert_eq!(
                open_with(other, &key(1), b"ctx", &relabelled),
                Err(CryptoError::Integrity)
            );
        }
        for byte in [0u8, 3, 0xff] {
            assert_eq!(Cipher::from_format_byte(byte), None);
            assert_eq!(Cipher::of_sealed(&[byte; 40]), Err(CryptoError::Malformed));
        }
        assert_eq!(Cipher::of_sealed(&[]), Err(CryptoError::Malformed));
        assert_ne!(
            Cipher::ChaCha20Poly1305.records_label(),
            Cipher::Aes256Gcm.records_label()
        );
    }

    #[test]
    fn a_transaction_key_seals_and_opens_like_the_one_shot_calls_and_hides_its_bytes() {
        let n = NonceSource::new().unwrap();
        for cipher in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
            let aead = AeadKey::new(cipher, &key(0xab)).unwrap();
            let mut out = Vec::new();
            for value in [&b""[..], b"one", &[7u8; 3000]] {
                aead.seal_into(&n, b"aad", value, false, &mut out).unwrap();
                let one_shot = open_with(cipher, &key(0xab), b"aad", &out).unwrap();
                assert_eq!(one_shot.expose(), value);
                assert_eq!(aead.open(b"aad", &out).unwrap().expose(), value);
                assert_eq!(aead.open(b"other", &out), Err(CryptoError::Integrity));
            }
            let shown = format!("{aead:?}");
            assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        }
    }

    #[test]
    fn the_preferred_cipher_follows_the_cpu_unless_a_test_forces_it() {
        let natural = Cipher::preferred();
        assert_eq!(natural == Cipher::Aes256Gcm, cpu_has_aes());
        for forced in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
            force_preferred_cipher(Some(forced));
            assert_eq!(Cipher::preferred(), forced);
        }
        force_preferred_cipher(None);
        assert_eq!(Cipher::preferred(), natural);
    }

    #[test]
    fn nonces_differ() {
        let n = NonceSource::new().unwrap();
        let a = seal(&key(1), &n, b"", b"same").unwrap();
        let b = seal(&key(1), &n, b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn padme_properties() {
        for len in 0..70_000usize {
            let p = padme_len(len);
            assert!(p >= len);
            assert!(p as f64 <= (len as f64) * 1.12 + 1.0, "len {len} -> {p}");
        }
        assert_eq!(padme_len(1900), padme_len(1920));
    }

    #[test]
    fn pad_unpad_round_trip() {
        let n = NonceSource::new().unwrap();
        let mut out = Vec::new();
        for len in (0usize..300).chain([1023, 1024, 3000, 5000, 70_000]) {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            seal_into(&key(1), &n, b"", &data, true, &mut out).unwrap();
            assert_eq!(out.len(), padme_len(len + 1) + SEAL_OVERHEAD);
            let mut s = open(&key(1), b"", &out).unwrap();
            unpad(&mut s).unwrap();
            assert_eq!(s.expose(), &data[..]);
        }
        assert!(unpad(&mut SecretBytes::new(vec![1, 2, 0])).is_none());
        assert!(unpad(&mut SecretBytes::new(vec![0, 0])).is_none());
        assert!(unpad(&mut SecretBytes::new(vec![0; 100])).is_none());
        assert!(unpad(&mut SecretBytes::new(Vec::new())).is_none());
        // Zeros inside the value, before the marker, stay; a marker other than 0x80 is refused.
        let mut v = SecretBytes::new([&[1u8, 0, 0][..], &[0x80], &[0u8; 40]].concat());
        unpad(&mut v).unwrap();
        assert_eq!(v.expose(), &[1, 0, 0]);
        assert!(unpad(&mut SecretBytes::new([&[0x81u8][..], &[0u8; 40]].concat())).is_none());
    }

    #[test]
    fn subkeys_are_distinct_and_deterministic() {
        let k = key(9);
        let a = derive_subkey(&k, labels::RECORDS);
        let b = derive_subkey(&k, labels::BLIND_INDEX);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose(), derive_subkey(&k, labels::RECORDS).expose());
    }

    #[test]
    fn blind_tokens_separate_parts() {
        let k = key(3);
        assert_ne!(
            blind_token(&k, &[b"ab", b"c"]),
            blind_token(&k, &[b"a", b"bc"])
        );
        assert_eq!(blind_token(&k, &[b"x"]), blind_token(&k, &[b"x"]));
        assert_ne!(blind_token(&k, &[b"x"]), blind_token(&key(4), &[b"x"]));
    }

    #[test]
    fn prf_is_the_blind_token_function_with_a_reused_key() {
        let k = key(5);
        let prf = Prf::new(&k);
        assert_eq!(prf.eval(&[b"ab", b"c"]), blind_token(&k, &[b"ab", b"c"]));
        assert_ne!(prf.eval(&[b"ab", b"c"]), prf.eval(&[b"a", b"bc"]));
        assert!(!format!("{prf:?}").contains('5'));
    }

    #[test]
    fn kdf_params_validated() {
        let small = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let a = small
            .derive(&Passcode::from("123456"), b"saltsaltsaltsalt")
            .unwrap();
        let b = small
            .derive(&Passcode::from("123457"), b"saltsaltsaltsalt")
            .unwrap();
        assert_ne!(a.expose(), b.expose());
        for bad in [
            KdfParams {
                m_kib: 64,
                t: 0,
                p: 1,
            },
            KdfParams {
                m_kib: 64,
                t: 1,
                p: 0,
            },
            KdfParams {
                m_kib: 4,
                t: 1,
                p: 1,
            },
            KdfParams {
                m_kib: u32::MAX,
                t: 1,
                p: 1,
            },
            KdfParams {
                m_kib: 64,
                t: 1000,
                p: 1,
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(CryptoError::KdfParams(_))),
                "{bad:?}"
            );
        }
    }
}
