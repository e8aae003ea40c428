//! Envelope payloads: a versioned record signed by its author device, then age-encrypted.
//!
//! Layout (format 1): the relay sees `base64(age(JSON(SignedRecord)))`. The signature covers
//! [`signed_bytes`]: the domain label `amanat/v1/sync-record\0`, the format number, then envelope
//! id, record kind, record id, record version, HLC, author device id, author key, previous
//! version's hash and content hash, each length-prefixed (or fixed width), so no two different
//! records share signed bytes. The content itself is bound through its hash
//! (`SHA-256(amanat/v1/sync-content\0 ‖ content)`). Documented in docs/PROTOCOL.md; frozen by the
//! test vectors in `core/tests/sync_vectors.rs`.

use crate::journal::hlc::Hlc;
use crate::names::labels;
use ring::digest;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{Read, Write};

/// Version of the signed-record format.
pub const FORMAT: u32 = 1;

/// The record an envelope carries. `Debug` redacts the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The envelope's UUIDv7 (text): binds the record to the envelope id the relay routes, so a
    /// relay cannot re-send the payload under another id.
    pub envelope_id: String,
    /// Record kind (`case`, `identity`, `consent`, `interview`).
    pub kind: String,
    /// Record id (hex).
    pub record_id: String,
    /// The record's version on the author device when it was prepared.
    pub version: u64,
    /// The author device's hybrid logical clock when it was prepared.
    pub hlc: Hlc,
    /// Author device id (derived from `author_key`).
    pub author: String,
    /// Author's Ed25519 public key, hex.
    pub author_key: String,
    /// Content hash of the previous envelope of the same record from this author, if any.
    pub prev_hash: Option<String>,
    /// [`content_hash`] of `content`.
    pub content_hash: String,
    /// The record as JSON text (survivor data).
    pub content: String,
    /// Ed25519 signature by the author over [`signed_bytes`], hex.
    pub signature: String,
}

impl fmt::Debug for SignedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRecord")
            .field("envelope_id", &self.envelope_id)
            .field("kind", &self.kind)
            .field("record_id", &self.record_id)
            .field("version", &self.version)
            .field("author", &self.author)
            .field("content", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a payload was refused; each maps to a stable quarantine reason code ([`OpenError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not an age file, or no identity of this device opens it.
    #[error("envelope cannot be decrypted by this device")]
    Undecryptable,
    /// Decrypted, but not a signed record of a known format.
    #[error("envelope payload is malformed")]
    Malformed,
    /// The content does not match its hash.
    #[error("envelope content does not match its hash")]
    ContentHash,
    /// The signature does not verify under the author key.
    #[error("envelope signature does not verify")]
    BadSignature,
    /// The author id does not match the author key, or not the relay-authenticated sender.
    #[error("envelope author does not match its key or its sender")]
    WrongAuthor,
    /// The envelope id inside differs from the id the relay delivered it under.
    #[error("envelope id does not match the signed record")]
    WrongEnvelopeId,
    /// The author is not a device this device trusts.
    #[error("envelope from an unknown device")]
    UnknownAuthor,
}

impl OpenError {
    /// Stable reason code (kept with a quarantined envelope, shown to the shell).
    pub fn code(self) -> &'static str {
        match self {
            OpenError::Undecryptable => "undecryptable",
            OpenError::Malformed => "malformed",
            OpenError::ContentHash => "content_hash_mismatch",
            OpenError::BadSignature => "bad_signature",
            OpenError::WrongAuthor => "wrong_author",
            OpenError::WrongEnvelopeId => "wrong_envelope_id",
            OpenError::UnknownAuthor => "unknown_author",
        }
    }
}

/// SHA-256 (hex) of a record's content, domain-separated.
pub fn content_hash(content: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(labels::SYNC_CONTENT_HASH);
    ctx.update(content);
    amanat_protocol::to_hex(ctx.finish().as_ref())
}

fn put(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u64).to_be_bytes());
    out.extend_from_slice(part);
}

/// The exact bytes the author signs (everything but the content itself and the signature).
pub fn signed_bytes(r: &SignedRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(labels::SYNC_RECORD_SIGNATURE);
    out.extend_from_slice(&r.format.to_be_bytes());
    put(&mut out, r.envelope_id.as_bytes());
    put(&mut out, r.kind.as_bytes());
    put(&mut out, r.record_id.as_bytes());
    out.extend_from_slice(&r.version.to_be_bytes());
    out.extend_from_slice(&r.hlc.ms.to_be_bytes());
    out.extend_from_slice(&r.hlc.counter.to_be_bytes());
    out.extend_from_slice(&r.hlc.node.0);
    put(&mut out, r.author.as_bytes());
    put(&mut out, r.author_key.as_bytes());
    match &r.prev_hash {
        Some(h) => {
            out.push(1);
            put(&mut out, h.as_bytes());
        }
        None => out.push(0),
    }
    put(&mut out, r.content_hash.as_bytes());
    out
}

/// Fills in author, content hash and signature of `r` with the device key.
pub fn sign(r: &mut SignedRecord, key: &Ed25519KeyPair) {
    let public = key.public_key().as_ref();
    r.author_key = amanat_protocol::to_hex(public);
    r.author = amanat_protocol::device_id(public);
    r.content_hash = content_hash(r.content.as_bytes());
    r.signature = amanat_protocol::to_hex(key.sign(&signed_bytes(r)).as_ref());
}

/// Checks a record on its own: content hash, author id ↔ key, signature.
pub fn verify(r: &SignedRecord) -> Result<(), OpenError> {
    if r.format != FORMAT {
        return Err(OpenError::Malformed);
    }
    if content_hash(r.content.as_bytes()) != r.content_hash {
        return Err(OpenError::ContentHash);
    }
    let key = amanat_protocol::from_hex(&r.author_key)
        .filter(|k| k.len() == 32)
        .ok_or(OpenError::Malformed)?;
    if amanat_protocol::device_id(&key) != r.author {
        return Err(OpenError::WrongAuthor);
    }
    amanat_protocol::verify_ed25519(&key, &signed_bytes(r), &r.signature)
        .map_err(|_| OpenError::BadSignature)
}

/// age-encrypts the JSON of `r` to `recipients` (the envelope payload before base64).
pub fn seal(r: &SignedRecord, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, OpenError> {
    let json = serde_json::to_vec(r).map_err(|_| OpenError::Malformed)?;
    seal_bytes(crate::secret::SecretBytes::new(json), recipients)
}

/// age-encrypts `plain` to `recipients` (an envelope payload before base64: a signed record, or a
/// sealed organisation order).
pub fn seal_bytes(
    plain: crate::secret::SecretBytes,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, OpenError> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| OpenError::Malformed)?;
    let mut out = Vec::with_capacity(plain.expose().len() + 256);
    let mut w = encryptor
        .wrap_output(&mut out)
        .map_err(|_| OpenError::Malformed)?;
    w.write_all(plain.expose())
        .and_then(|_| w.finish().map(|_| ()))
        .map_err(|_| OpenError::Malformed)?;
    Ok(out)
}

/// Decrypts a payload with `identity` and parses the signed record (not yet verified).
pub fn open(payload: &[u8], identity: &age::x25519::Identity) -> Result<SignedRecord, OpenError> {
    open_any(payload, std::slice::from_ref(identity))
}

/// [`open`] with whichever of `identities` opens the payload: a device passes its own identity,
/// HQ also the group identities it holds.
pub fn open_any(
    payload: &[u8],
    identities: &[age::x25519::Identity],
) -> Result<SignedRecord, OpenError> {
    parse(&decrypt_any(payload, identities)?)
}

/// Parses a decrypted payload as a signed record (not yet verified).
pub fn parse(plain: &[u8]) -> Result<SignedRecord, OpenError> {
    serde_json::from_slice(plain).map_err(|_| OpenError::Malformed)
}

/// Decrypts a payload with whichever of `identities` opens it; the plaintext is wiped on drop.
pub fn decrypt_any(
    payload: &[u8],
    identities: &[age::x25519::Identity],
) -> Result<zeroize::Zeroizing<Vec<u8>>, OpenError> {
    // Buffered: the unbuffered reader re-parses the header as it grows (a large share of the
    // receive cost with several stanzas).
    let decryptor = age::Decryptor::new_buffered(payload).map_err(|_| OpenError::Undecryptable)?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|_| OpenError::Undecryptable)?;
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plain)
        .map_err(|_| OpenError::Undecryptable)?;
    Ok(plain)
}
