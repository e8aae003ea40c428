//! Secret-holding types: zeroized on drop, redacted in `Debug`.
//!
//! Every passcode, key and decrypted value in the core passes through one of these types, so a stray
//! `{:?}` in a log line or a panic message can never print survivor data or key material.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A passcode typed by the field worker.
///
/// Held in a zeroizing buffer so it is wiped from memory as soon as the KDF has consumed it; `Debug`
/// prints a redaction. The bytes are used exactly as given (UTF-8): shells should restrict passcodes
/// to digits or normalise them (NFC) so the same passcode always yields the same bytes.
#[derive(Clone)]
pub struct Passcode(Zeroizing<String>);

impl Passcode {
    /// Wraps a passcode in Unicode NFC; the `String` is moved in, so no un-zeroized copy is left
    /// behind here. Why NFC: a keyboard may send "é" or "й" precomposed one day and as a letter
    /// plus a combining mark the next (another keyboard, an OS update); both must open the vault.
    /// Text already in NFC (ASCII digits included) is kept byte for byte.
    pub fn new(passcode: String) -> Self {
        use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
        let passcode = Zeroizing::new(passcode);
        if is_nfc_quick(passcode.chars()) == IsNormalized::Yes {
            return Self(passcode);
        }
        // Room for any expansion up front, so the buffer is never reallocated (a reallocation
        // would leave an un-zeroized copy behind).
        let mut nfc = Zeroizing::new(String::with_capacity(passcode.len() * 3 + 16));
        for c in passcode.nfc() {
            nfc.push(c);
        }
        Self(nfc)
    }

    /// The passcode bytes, for the key derivation function only.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in characters, for policy checks that must not look at the content.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<&str> for Passcode {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for Passcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passcode(<redacted>)")
    }
}

/// Decrypted bytes (a record's plaintext, an unwrapped key).
///
/// Zeroized on drop and redacted in `Debug`, because whatever comes out of the vault is either
/// survivor data or key material.
///
/// The whole allocation (spare capacity included) is wiped by [`wipe_vec`], not by
/// `Zeroizing<Vec<u8>>`: zeroize's `Vec` impl wipes the elements through an iterator, one volatile
/// byte store at a time, which was ≈ 6 % of a store point read (docs/BENCHMARKS.md).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they will be zeroized when this value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Borrows the plaintext. Callers must not copy it into non-zeroizing storage longer than needed.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of plaintext bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Mutable access for code that decrypts in place.
    pub(crate) fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe_vec(&mut self.0);
    }
}

/// Zeroizes a byte vector's whole allocation, spare capacity included, and empties it.
///
/// The same guarantee as zeroize's own `Vec<u8>` impl, by the mechanism zeroize uses for byte
/// slices (a bulk write followed by an optimisation barrier the compiler cannot see through), so a
/// 2 KiB record is wiped by one `memset` rather than 2,048 volatile byte stores.
pub(crate) fn wipe_vec(v: &mut Vec<u8>) {
    v.spare_capacity_mut().zeroize();
    v.as_mut_slice().zeroize();
    v.clear();
}

impl From<Vec<u8>> for SecretBytes {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// A 256-bit symmetric key.
///
/// The data key and every subkey derived from it are of this type, so they are always zeroized on
/// drop (the vault's `lock` drops them) and never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// Key length in bytes.
    pub const LEN: usize = 32;

    /// Wraps key bytes that were produced by a CSPRNG, a KDF or an unwrap.
    pub(crate) fn from_array(bytes: [u8; 32]) -> Self {
        let key = Self(Zeroizing::new(bytes));
        let mut bytes = bytes;
        bytes.zeroize();
        key
    }

    /// Copies a key out of a slice; `None` unless it is exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut array: [u8; 32] = bytes.try_into().ok()?;
        let key = Self(Zeroizing::new(array));
        array.zeroize();
        Some(key)
    }

    /// The raw key, for the primitives that need it.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_redacted() {
        let marker = "SURVIVOR-MARKER-4711";
        let p = Passcode::from(marker);
        let b = SecretBytes::new(marker.as_bytes().to_vec());
        let k = SecretKey::from_array([7u8; 32]);
        for s in [format!("{p:?}"), format!("{b:?}"), format!("{k:?}")] {
            assert!(!s.contains(marker), "{s}");
            assert!(s.contains("redacted"), "{s}");
            assert!(!s.contains("7, 7"), "{s}");
        }
    }

    #[test]
    fn passcodes_are_compared_in_nfc_whatever_the_keyboard_sent() {
        // Precomposed and combining forms of the same text: Latin é, Cyrillic й, Uzbek oʻ stays.
        for (composed, decomposed) in [
            ("caf\u{e9} 12345", "cafe\u{301} 12345"),
            (
                "\u{439}\u{43e}\u{434} 2024",
                "\u{438}\u{306}\u{43e}\u{434} 2024",
            ),
        ] {
            assert_ne!(composed.as_bytes(), decomposed.as_bytes());
            assert_eq!(
                Passcode::from(composed).as_bytes(),
                Passcode::from(decomposed).as_bytes()
            );
            assert_eq!(Passcode::from(decomposed).as_bytes(), composed.as_bytes());
        }
        // ASCII (and anything already in NFC) is unchanged: existing vaults open as before.
        assert_eq!(Passcode::from("123456").as_bytes(), b"123456");
        assert_eq!(
            Passcode::from("o\u{2bb}zbek").as_bytes(),
            "o\u{2bb}zbek".as_bytes()
        );
    }

    #[test]
    fn from_slice_requires_32_bytes() {
        assert!(SecretKey::from_slice(&[1u8; 31]).is_none());
        assert!(SecretKey::from_slice(&[1u8; 33]).is_none());
        assert_eq!(
            SecretKey::from_slice(&[1u8; 32]).map(|k| *k.expose()),
            Some([1u8; 32])
        );
    }
}
