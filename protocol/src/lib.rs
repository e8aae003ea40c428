//! # amanat-protocol
//!
//! Wire formats shared by devices, HQ and the sync relay (no HTTP here, only bytes and rules).
//!
//! Why a crate of its own: the relay (`amanat serve`), the command-line tool and the future sync engine
//! on the phones must produce and check *the same* bytes. Keeping the canonical strings, the
//! enrollment-code format and the envelope shape in one module means they cannot drift apart.
//!
//! * **Request signing**: every relay request carries four headers ([`HEADER_DEVICE`],
//!   [`HEADER_TIMESTAMP`], [`HEADER_NONCE`], [`HEADER_SIGNATURE`]); the signature is Ed25519 by the
//!   device key over [`canonical_request`] (method, path with query, timestamp, nonce, SHA-256 of
//!   the body).
//! * **Organisation**: [`OrgPublic`] (signing key + group recipients) and its fingerprint.
//! * **Enrollment codes** and **revocations**: org-signed statements ([`EnrollmentCode`],
//!   [`Revocation`]) the relay accepts only under the organisation key it was started with.
//! * **Envelopes**: opaque ciphertext plus the routing list ([`Envelope`]).
//!
//! Encoding: binary values in headers and JSON are lowercase hex, except envelope payloads
//! (standard base64, padded) where size matters.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every name of the wire format that must never change once devices are in the field: the
/// first line of each signed statement, the fingerprint's domain, header names, routing names.
/// One place, pinned by `tests/vectors.rs`.
pub mod names {
    /// First line of a signed request's canonical string ([`crate::canonical_request`]).
    pub const REQUEST_V1: &str = "AMANAT-REQUEST-V1";
    /// First line of a deferred request's canonical string ([`crate::canonical_deferred_request`]):
    /// a request signed now and sent later (iOS background uploads), valid until its expiry.
    pub const DEFERRED_V1: &str = "AMANAT-DEFERRED-V1";
    /// First line of an enrollment code's signed statement.
    pub const ENROLL_V1: &str = "AMANAT-ENROLL-V1";
    /// First line of an enrollment code's signed statement when the code carries the relay URL
    /// (a distinct first line, so a code with a URL and one without never share signed bytes).
    pub const ENROLL_RELAY_V1: &str = "AMANAT-ENROLL-RELAY-V1";
    /// First line of a revocation's signed statement.
    pub const REVOKE_V1: &str = "AMANAT-REVOKE-V1";
    /// Prefix of the organisation fingerprint's canonical text (then the version number).
    pub const ORG_V: &str = "AMANAT-ORG-V";
    /// First line of an HQ installation certificate's signed statement.
    pub const HQ_CERT_V1: &str = "AMANAT-HQ-CERT-V1";
    /// First line of the signed statement of an HQ export's manifest.
    pub const EXPORT_V1: &str = "AMANAT-EXPORT-V1";
    /// First line of an organisation order's signed statement, and the first line of an order
    /// envelope's payload.
    pub const ORDER_V1: &str = "AMANAT-ORDER-V1";
    /// First line of an HQ receipt's signed statement, and of a receipt envelope's payload.
    pub const RECEIPT_V1: &str = "AMANAT-RECEIPT-V1";
}

/// Header naming the device that signed the request (its [`device_id`]).
pub const HEADER_DEVICE: &str = "x-amanat-device";
/// Header with the signing time, milliseconds since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "x-amanat-timestamp";
/// Header with a random, single-use request nonce (32 hex characters).
pub const HEADER_NONCE: &str = "x-amanat-nonce";
/// Header with the Ed25519 signature over [`canonical_request`], hex.
pub const HEADER_SIGNATURE: &str = "x-amanat-signature";
/// How far a request timestamp may be from the relay's clock (±5 minutes); nonces are kept as long.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Header of a deferred request ([`canonical_deferred_request`]): until when (ms since the epoch)
/// the signature may be used. Its presence is what makes a request deferred.
pub const HEADER_EXPIRES: &str = "x-amanat-expires";
/// Longest validity of a deferred request (72 hours): how long a locked phone may keep handing
/// already-signed blob chunks to the system's background uploader.
pub const MAX_DEFERRED_MS: u64 = 72 * 60 * 60 * 1000;
/// Routing name of the organisation's headquarters in [`Envelope::recipients`].
pub const HQ_RECIPIENT: &str = "hq";
/// Recipient groups an organisation has, one age identity each (consent scopes map onto them).
pub const RECIPIENT_GROUPS: [&str; 4] = ["caseworkers", "legal", "law_enforcement", "research"];

/// Errors of the wire layer: malformed input or a failed signature. Never carries secrets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// A field is not in the documented format (bad hex, wrong length, unknown version).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A signature does not verify under the expected key.
    #[error("signature does not verify")]
    BadSignature,
    /// The statement was signed for another organisation (fingerprint mismatch).
    #[error("signed for another organisation")]
    WrongOrganisation,
    /// The operating system's random generator failed.
    #[error("random number generator failed")]
    Random,
    /// A key could not be generated or parsed.
    #[error("invalid key")]
    Key,
}

/// Lowercase hex of `bytes` (the encoding of every binary field except envelope payloads).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Decodes hex (either case); `None` on odd length or a non-hex character.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// SHA-256 of `bytes`, hex: body hashes, blob addresses, fingerprints.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// A device's routing id: the first 16 bytes of SHA-256 of its Ed25519 public key, hex.
///
/// Derived rather than assigned so that it is self-authenticating: the relay cannot hand a device
/// an id that belongs to another key, and the id needs no round trip to learn.
pub fn device_id(signing_public_key: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, signing_public_key);
    to_hex(&d.as_ref()[..16])
}

/// A fresh 128-bit request nonce, hex.
pub fn new_nonce() -> Result<String, WireError> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| WireError::Random)?;
    Ok(to_hex(&b))
}

/// The exact bytes a device signs for a request.
///
/// `path` is the request target as sent (path plus `?query` if any), so a signed pull for one cursor
/// cannot be replayed for another. Lines are separated by `\n`; no field may contain one (the relay
/// rejects such headers as malformed before building this string).
pub fn canonical_request(
    method: &str,
    path: &str,
    timestamp_ms: u64,
    nonce: &str,
    body_sha256_hex: &str,
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        names::REQUEST_V1,
        method.to_ascii_uppercase(),
        path,
        timestamp_ms,
        nonce,
        body_sha256_hex
    )
}

/// The exact bytes a device signs for a **deferred** request: one signed now (`issued_ms`) to be
/// sent by someone else later, until `expires_ms` — a phone's background uploader, while the vault
/// that holds the signing key is locked.
///
/// A first line of its own, so a deferred signature is never a valid normal one or the reverse.
/// The relay accepts deferred requests only where a repeat cannot change the outcome (a blob
/// chunk `PUT` at a fixed offset: docs/PROTOCOL.md, "Deferred requests"), so it keeps no nonce for
/// them; the nonce stays in the string only to keep the header set uniform.
pub fn canonical_deferred_request(
    method: &str,
    path: &str,
    issued_ms: u64,
    expires_ms: u64,
    nonce: &str,
    body_sha256_hex: &str,
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        names::DEFERRED_V1,
        method.to_ascii_uppercase(),
        path,
        issued_ms,
        expires_ms,
        nonce,
        body_sha256_hex
    )
}

/// Signs a deferred request ([`canonical_deferred_request`]) with a fresh nonce: the four usual
/// headers (the timestamp is the issue time) plus [`HEADER_EXPIRES`].
pub fn sign_deferred_request(
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    issued_ms: u64,
    expires_ms: u64,
    body: &[u8],
) -> Result<DeferredHeaders, WireError> {
    let nonce = new_nonce()?;
    let canonical = canonical_deferred_request(
        method,
        path,
        issued_ms,
        expires_ms,
        &nonce,
        &sha256_hex(body),
    );
    let sig = key.sign(canonical.as_bytes());
    Ok(DeferredHeaders {
        signed: SignedHeaders {
            device: device_id(key.public_key().as_ref()),
            timestamp: issued_ms.to_string(),
            nonce,
            signature: to_hex(sig.as_ref()),
        },
        expires: expires_ms.to_string(),
    })
}

/// The five headers of a deferred request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredHeaders {
    /// Device, issue time (as [`HEADER_TIMESTAMP`]), nonce and signature.
    pub signed: SignedHeaders,
    /// Value of [`HEADER_EXPIRES`].
    pub expires: String,
}

impl DeferredHeaders {
    /// The headers as (name, value) pairs, for any HTTP client.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        let [a, b, c, d] = self.signed.pairs();
        [a, b, c, d, (HEADER_EXPIRES, &self.expires)]
    }
}

/// The four authentication headers of one request, ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`HEADER_DEVICE`].
    pub device: String,
    /// Value of [`HEADER_TIMESTAMP`].
    pub timestamp: String,
    /// Value of [`HEADER_NONCE`].
    pub nonce: String,
    /// Value of [`HEADER_SIGNATURE`].
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as (name, value) pairs, for any HTTP client.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_DEVICE, &self.device),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

/// Signs a request with the device key, using a fresh nonce.
pub fn sign_request(
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    timestamp_ms: u64,
    body: &[u8],
) -> Result<SignedHeaders, WireError> {
    let nonce = new_nonce()?;
    Ok(sign_request_with_nonce(
        key,
        method,
        path,
        timestamp_ms,
        &nonce,
        body,
    ))
}

/// Signs a request with a caller-chosen nonce (tests of replay protection need to reuse one).
pub fn sign_request_with_nonce(
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    timestamp_ms: u64,
    nonce: &str,
    body: &[u8],
) -> SignedHeaders {
    let canonical = canonical_request(method, path, timestamp_ms, nonce, &sha256_hex(body));
    let sig = key.sign(canonical.as_bytes());
    SignedHeaders {
        device: device_id(key.public_key().as_ref()),
        timestamp: timestamp_ms.to_string(),
        nonce: nonce.to_owned(),
        signature: to_hex(sig.as_ref()),
    }
}

/// Verifies an Ed25519 signature (hex) over `message` under `public_key` (32 raw bytes).
pub fn verify_ed25519(
    public_key: &[u8],
    message: &[u8],
    signature_hex: &str,
) -> Result<(), WireError> {
    let sig = from_hex(signature_hex).ok_or(WireError::Malformed("signature"))?;
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, &sig)
        .map_err(|_| WireError::BadSignature)
}

/// The organisation's public configuration (`org.pub`): what the relay and devices trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgPublic {
    /// Format version (1).
    pub version: u32,
    /// Ed25519 public key of the organisation signing key, hex (32 bytes).
    pub signing_public_key: String,
    /// age recipient (`age1…`) per recipient group.
    pub groups: BTreeMap<String, String>,
    /// [`OrgPublic::compute_fingerprint`] at creation; checked on load.
    pub fingerprint: String,
}

impl OrgPublic {
    /// SHA-256 (hex) of the canonical encoding: version, signing key, then groups sorted by name.
    ///
    /// A canonical text rather than the JSON bytes, so whitespace or key order in `org.pub` does
    /// not change the fingerprint that enrollment codes and devices compare.
    pub fn compute_fingerprint(&self) -> String {
        let mut s = format!(
            "{}{}\nsigning:{}\n",
            names::ORG_V,
            self.version,
            self.signing_public_key.to_ascii_lowercase()
        );
        for (name, recipient) in &self.groups {
            s.push_str(&format!("group:{name}={recipient}\n"));
        }
        sha256_hex(s.as_bytes())
    }

    /// Parses and checks `org.pub`: version, key length, and that the stored fingerprint matches.
    pub fn from_json(bytes: &[u8]) -> Result<Self, WireError> {
        let org: OrgPublic =
            serde_json::from_slice(bytes).map_err(|_| WireError::Malformed("org.pub"))?;
        if org.version != 1 {
            return Err(WireError::Malformed("org.pub version"));
        }
        org.signing_key_bytes()?;
        if org.compute_fingerprint() != org.fingerprint {
            return Err(WireError::Malformed("org.pub fingerprint"));
        }
        Ok(org)
    }

    /// The raw 32-byte organisation public key.
    pub fn signing_key_bytes(&self) -> Result<Vec<u8>, WireError> {
        match from_hex(&self.signing_public_key) {
            Some(k) if k.len() == 32 => Ok(k),
            _ => Err(WireError::Malformed("organisation signing key")),
        }
    }
}

/// Role a device is enrolled with; decides which envelopes it may pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    /// A field device: pulls envelopes that list its device id.
    Field,
    /// An HQ installation: also pulls envelopes addressed to [`HQ_RECIPIENT`].
    Hq,
}

impl DeviceRole {
    /// Stable text form (used in the signed canonical string and in storage).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Field => "field",
            DeviceRole::Hq => "hq",
        }
    }

    /// Parses [`DeviceRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "field" => Some(DeviceRole::Field),
            "hq" => Some(DeviceRole::Hq),
            _ => None,
        }
    }
}

/// A one-time, expiring enrollment code, signed by the organisation key.
///
/// The relay accepts it once (by `code_id`) before `expires_at`; the device checks
/// `org_fingerprint` against the `org.pub` it receives so a relay cannot substitute keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentCode {
    /// Random 128-bit id, hex: what makes the code single-use.
    pub code_id: String,
    /// Fingerprint of the organisation that issued it.
    pub org_fingerprint: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Role the enrolled device gets.
    pub role: DeviceRole,
    /// The relay the device must enroll with (`http(s)://host[:port]`), signed with the rest, so
    /// a field worker cannot be pointed at another relay by whoever hands over the code. Absent
    /// in codes issued without `--relay` (those still verify; the URL is then given separately).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_url: Option<String>,
    /// Ed25519 signature by the organisation over [`EnrollmentCode::canonical`] (or
    /// [`EnrollmentCode::canonical_with_relay`] when `relay_url` is set), hex.
    pub signature: String,
}

/// Whether `url` may be signed into an enrollment code: `http://` or `https://`, 12–256 printable
/// ASCII characters without spaces (one line of the signed statement; the device checks the
/// host rules itself).
pub fn is_valid_relay_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && (12..=256).contains(&url.len())
        && url.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl EnrollmentCode {
    /// The signed bytes.
    pub fn canonical(
        code_id: &str,
        org_fingerprint: &str,
        expires_at: u64,
        role: DeviceRole,
    ) -> String {
        format!(
            "{}\n{code_id}\n{org_fingerprint}\n{expires_at}\n{}",
            names::ENROLL_V1,
            role.as_str()
        )
    }

    /// The signed bytes of a code that carries the relay URL: the same lines under the first
    /// line [`names::ENROLL_RELAY_V1`], then the URL as the last line.
    pub fn canonical_with_relay(
        code_id: &str,
        org_fingerprint: &str,
        expires_at: u64,
        role: DeviceRole,
        relay_url: &str,
    ) -> String {
        format!(
            "{}\n{code_id}\n{org_fingerprint}\n{expires_at}\n{}\n{relay_url}",
            names::ENROLL_RELAY_V1,
            role.as_str()
        )
    }

    /// The statement this code's signature covers (either form, by whether it names a relay).
    pub fn signed_text(&self) -> String {
        match &self.relay_url {
            None => Self::canonical(
                &self.code_id,
                &self.org_fingerprint,
                self.expires_at,
                self.role,
            ),
            Some(url) => Self::canonical_with_relay(
                &self.code_id,
                &self.org_fingerprint,
                self.expires_at,
                self.role,
                url,
            ),
        }
    }

    /// Issues a new code (HQ side: needs the organisation key).
    pub fn issue(
        org_key: &Ed25519KeyPair,
        org_fingerprint: &str,
        expires_at: u64,
        role: DeviceRole,
    ) -> Result<Self, WireError> {
        Self::issue_inner(org_key, org_fingerprint, expires_at, role, None)
    }

    /// Issues a new code that names the relay the device must enroll with (signed with the rest).
    /// `relay_url` must pass [`is_valid_relay_url`].
    pub fn issue_for_relay(
        org_key: &Ed25519KeyPair,
        org_fingerprint: &str,
        expires_at: u64,
        role: DeviceRole,
        relay_url: &str,
    ) -> Result<Self, WireError> {
        let url = relay_url.trim_end_matches('/');
        if !is_valid_relay_url(url) {
            return Err(WireError::Malformed("relay_url"));
        }
        Self::issue_inner(
            org_key,
            org_fingerprint,
            expires_at,
            role,
            Some(url.to_owned()),
        )
    }

    fn issue_inner(
        org_key: &Ed25519KeyPair,
        org_fingerprint: &str,
        expires_at: u64,
        role: DeviceRole,
        relay_url: Option<String>,
    ) -> Result<Self, WireError> {
        let mut code = Self {
            code_id: new_nonce()?,
            org_fingerprint: org_fingerprint.to_owned(),
            expires_at,
            role,
            relay_url,
            signature: String::new(),
        };
        code.signature = to_hex(org_key.sign(code.signed_text().as_bytes()).as_ref());
        Ok(code)
    }

    /// Checks the signature and the organisation (not expiry or reuse: those need the relay's
    /// clock and state).
    pub fn verify(&self, org: &OrgPublic) -> Result<(), WireError> {
        if self.org_fingerprint != org.fingerprint {
            return Err(WireError::WrongOrganisation);
        }
        if self
            .relay_url
            .as_deref()
            .is_some_and(|u| !is_valid_relay_url(u))
        {
            return Err(WireError::Malformed("relay_url"));
        }
        let canonical = self.signed_text();
        verify_ed25519(
            &org.signing_key_bytes()?,
            canonical.as_bytes(),
            &self.signature,
        )
    }
}

/// What a device sends to enroll (body of `POST /v1/enroll`, itself signed by the new device key,
/// which proves possession of the key being registered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The org-signed one-time code.
    pub code: EnrollmentCode,
    /// The device's Ed25519 public key, hex (32 bytes); its [`device_id`] is derived from it.
    pub signing_public_key: String,
    /// The device's age recipient (`age1…`), so HQ can encrypt to it.
    pub age_recipient: String,
}

/// An org-signed order that a device is revoked (body of `POST /v1/revocations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// The revoked device.
    pub device_id: String,
    /// Fingerprint of the organisation.
    pub org_fingerprint: String,
    /// When it was issued, seconds since the Unix epoch.
    pub revoked_at: u64,
    /// Ed25519 signature by the organisation over [`Revocation::canonical`], hex.
    pub signature: String,
}

impl Revocation {
    /// The signed bytes.
    pub fn canonical(device_id: &str, org_fingerprint: &str, revoked_at: u64) -> String {
        format!(
            "{}\n{device_id}\n{org_fingerprint}\n{revoked_at}",
            names::REVOKE_V1
        )
    }

    /// Issues a revocation (HQ side).
    pub fn issue(
        org_key: &Ed25519KeyPair,
        org_fingerprint: &str,
        device_id: &str,
        revoked_at: u64,
    ) -> Self {
        let canonical = Self::canonical(device_id, org_fingerprint, revoked_at);
        Self {
            device_id: device_id.to_owned(),
            org_fingerprint: org_fingerprint.to_owned(),
            revoked_at,
            signature: to_hex(org_key.sign(canonical.as_bytes()).as_ref()),
        }
    }

    /// Checks the signature and the organisation. A device verifies this too before obeying.
    pub fn verify(&self, org: &OrgPublic) -> Result<(), WireError> {
        if self.org_fingerprint != org.fingerprint {
            return Err(WireError::WrongOrganisation);
        }
        let canonical = Self::canonical(&self.device_id, &self.org_fingerprint, self.revoked_at);
        verify_ed25519(
            &org.signing_key_bytes()?,
            canonical.as_bytes(),
            &self.signature,
        )
    }
}

/// An org-signed statement that an HQ installation's signing key belongs to the organisation:
/// what an export's manifest signature rests on, so `amanat verify` can tell an export of this
/// organisation from one re-signed by anyone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HqCertificate {
    /// The installation's device id (derived from `signing_public_key`).
    pub device_id: String,
    /// The installation's Ed25519 public key, hex.
    pub signing_public_key: String,
    /// Fingerprint of the organisation.
    pub org_fingerprint: String,
    /// When it was issued, seconds since the Unix epoch.
    pub issued_at: u64,
    /// Ed25519 signature by the organisation over [`HqCertificate::canonical`], hex.
    pub signature: String,
}

impl HqCertificate {
    /// The signed bytes.
    pub fn canonical(
        device_id: &str,
        signing_public_key: &str,
        org_fingerprint: &str,
        issued_at: u64,
    ) -> String {
        format!(
            "{}\n{device_id}\n{signing_public_key}\n{org_fingerprint}\n{issued_at}",
            names::HQ_CERT_V1
        )
    }

    /// Issues a certificate for the installation whose public key is `signing_public_key` (hex).
    pub fn issue(
        org_key: &Ed25519KeyPair,
        org_fingerprint: &str,
        signing_public_key: &str,
        issued_at: u64,
    ) -> Result<Self, WireError> {
        let key = from_hex(signing_public_key)
            .filter(|k| k.len() == 32)
            .ok_or(WireError::Malformed("signing_public_key"))?;
        let device_id = device_id(&key);
        let canonical = Self::canonical(&device_id, signing_public_key, org_fingerprint, issued_at);
        Ok(Self {
            device_id,
            signing_public_key: signing_public_key.to_owned(),
            org_fingerprint: org_fingerprint.to_owned(),
            issued_at,
            signature: to_hex(org_key.sign(canonical.as_bytes()).as_ref()),
        })
    }

    /// Checks the organisation, the id ↔ key binding and the signature.
    pub fn verify(&self, org: &OrgPublic) -> Result<(), WireError> {
        if self.org_fingerprint != org.fingerprint {
            return Err(WireError::WrongOrganisation);
        }
        let key = from_hex(&self.signing_public_key)
            .filter(|k| k.len() == 32)
            .ok_or(WireError::Malformed("signing_public_key"))?;
        if device_id(&key) != self.device_id {
            return Err(WireError::Malformed("device_id"));
        }
        let canonical = Self::canonical(
            &self.device_id,
            &self.signing_public_key,
            &self.org_fingerprint,
            self.issued_at,
        );
        verify_ed25519(
            &org.signing_key_bytes()?,
            canonical.as_bytes(),
            &self.signature,
        )
    }
}

/// An order of the organisation to its devices (a template to install, …), signed by the
/// organisation key: a device obeys only what verifies under the `org.pub` it enrolled with, so
/// neither the relay nor an HQ installation alone can order anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgOrder {
    /// Fingerprint of the organisation.
    pub org_fingerprint: String,
    /// When it was issued, seconds since the Unix epoch.
    pub issued_at: u64,
    /// What is ordered (`template`, …): the device refuses kinds it does not know.
    pub kind: String,
    /// The order's content (for `template`: the template's JSON source).
    pub body: String,
    /// Ed25519 signature by the organisation over [`OrgOrder::canonical`], hex.
    pub signature: String,
}

impl OrgOrder {
    /// The signed bytes: the domain line, fingerprint, time, kind and the body's SHA-256.
    pub fn canonical(org_fingerprint: &str, issued_at: u64, kind: &str, body: &str) -> String {
        format!(
            "{}\n{org_fingerprint}\n{issued_at}\n{kind}\n{}",
            names::ORDER_V1,
            sha256_hex(body.as_bytes())
        )
    }

    /// Issues an order (HQ side, with the organisation key).
    pub fn issue(
        org_key: &Ed25519KeyPair,
        org_fingerprint: &str,
        issued_at: u64,
        kind: &str,
        body: String,
    ) -> Self {
        let canonical = Self::canonical(org_fingerprint, issued_at, kind, &body);
        Self {
            org_fingerprint: org_fingerprint.to_owned(),
            issued_at,
            kind: kind.to_owned(),
            body,
            signature: to_hex(org_key.sign(canonical.as_bytes()).as_ref()),
        }
    }

    /// Checks the organisation and the signature (a device does before obeying).
    pub fn verify(&self, org: &OrgPublic) -> Result<(), WireError> {
        if self.org_fingerprint != org.fingerprint {
            return Err(WireError::WrongOrganisation);
        }
        let canonical = Self::canonical(
            &self.org_fingerprint,
            self.issued_at,
            &self.kind,
            &self.body,
        );
        verify_ed25519(
            &org.signing_key_bytes()?,
            canonical.as_bytes(),
            &self.signature,
        )
    }
}

/// One record an HQ receipt acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptEntry {
    /// `interview` or `attachment`.
    pub kind: String,
    /// Record id (hex) on the device.
    pub record_id: String,
    /// For an interview: the content hash it was signed with; for an attachment: the SHA-256 of
    /// its plaintext (HQ downloaded and checked the blob).
    pub hash: String,
}

/// HQ's signed acknowledgement that it holds records a device sent: what lets a device purge its
/// copies after the organisation's retention period. Signed by an HQ installation whose key the
/// organisation certified ([`HqCertificate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The device the records came from.
    pub device_id: String,
    /// When HQ issued it, seconds since the Unix epoch.
    pub issued_at: u64,
    /// The records acknowledged.
    pub entries: Vec<ReceiptEntry>,
    /// The signing installation's certificate.
    pub hq: HqCertificate,
    /// Ed25519 signature by the installation over [`Receipt::canonical`], hex.
    pub signature: String,
}

impl Receipt {
    /// The signed bytes: domain line, device, time, installation, then one line per entry.
    pub fn canonical(
        device_id: &str,
        issued_at: u64,
        hq_device: &str,
        entries: &[ReceiptEntry],
    ) -> String {
        let mut out = format!(
            "{}\n{device_id}\n{issued_at}\n{hq_device}",
            names::RECEIPT_V1
        );
        for e in entries {
            out.push_str(&format!("\n{} {} {}", e.kind, e.record_id, e.hash));
        }
        out
    }

    /// Signs a receipt with the installation key.
    pub fn issue(
        hq_key: &Ed25519KeyPair,
        hq: HqCertificate,
        device_id: &str,
        issued_at: u64,
        entries: Vec<ReceiptEntry>,
    ) -> Self {
        let canonical = Self::canonical(device_id, issued_at, &hq.device_id, &entries);
        Self {
            device_id: device_id.to_owned(),
            issued_at,
            entries,
            signature: to_hex(hq_key.sign(canonical.as_bytes()).as_ref()),
            hq,
        }
    }

    /// Checks the certificate under the organisation and the signature under the certified key.
    pub fn verify(&self, org: &OrgPublic) -> Result<(), WireError> {
        self.hq.verify(org)?;
        let key = from_hex(&self.hq.signing_public_key).ok_or(WireError::Malformed("key"))?;
        let canonical = Self::canonical(
            &self.device_id,
            self.issued_at,
            &self.hq.device_id,
            &self.entries,
        );
        verify_ed25519(&key, canonical.as_bytes(), &self.signature)
    }
}

/// One envelope as pushed: ciphertext the relay cannot read, plus routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Client-chosen UUIDv7 (text form): the idempotency key of a push.
    pub id: String,
    /// Device ids and/or [`HQ_RECIPIENT`] that may pull it.
    pub recipients: Vec<String>,
    /// The age ciphertext (already signed inside by the author device), standard base64.
    pub payload: String,
}

/// Body of `POST /v1/envelopes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The batch, stored atomically.
    pub envelopes: Vec<Envelope>,
}

/// Per-envelope acknowledgement of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    /// The envelope id.
    pub id: String,
    /// Its per-organisation sequence number (the same on every retry).
    pub seq: u64,
    /// True if the relay already held it (a retry).
    pub duplicate: bool,
}

/// Response of `POST /v1/envelopes`: sent only after the batch is durably committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One ack per pushed envelope, in request order.
    pub acks: Vec<PushAck>,
}

/// One envelope as pulled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledEnvelope {
    /// Sequence number: the cursor to resume after.
    pub seq: u64,
    /// The envelope id.
    pub id: String,
    /// Device id of the sender (authenticated by the request signature at push time).
    pub sender: String,
    /// The ciphertext, standard base64.
    pub payload: String,
}

/// Response of `GET /v1/envelopes?after=SEQ&limit=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Envelopes routed to the caller with `seq > after`, ascending.
    pub envelopes: Vec<PulledEnvelope>,
    /// Cursor to send as `after` next time.
    pub next_after: u64,
    /// True if more envelopes are waiting beyond this page.
    pub more: bool,
}

/// Generates an Ed25519 key as PKCS#8 (device or organisation key).
pub fn generate_ed25519_pkcs8() -> Result<Vec<u8>, WireError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| WireError::Key)
}

/// Loads an Ed25519 key from PKCS#8.
pub fn ed25519_from_pkcs8(pkcs8: &[u8]) -> Result<Ed25519KeyPair, WireError> {
    Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| WireError::Key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn new_org() -> (Ed25519KeyPair, OrgPublic) {
        let key = ed25519_from_pkcs8(&generate_ed25519_pkcs8().unwrap()).unwrap();
        let mut org = OrgPublic {
            version: 1,
            signing_public_key: to_hex(key.public_key().as_ref()),
            groups: BTreeMap::new(),
            fingerprint: String::new(),
        };
        org.fingerprint = org.compute_fingerprint();
        (key, org)
    }

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert!(from_hex("abc").is_none());
        assert!(from_hex("zz").is_none());
    }

    #[test]
    fn request_signature_binds_every_field() {
        let key = ed25519_from_pkcs8(&generate_ed25519_pkcs8().unwrap()).unwrap();
        let h = sign_request_with_nonce(&key, "POST", "/v1/envelopes", 42, "n1", b"body");
        let pk = key.public_key().as_ref();
        let ok = canonical_request("POST", "/v1/envelopes", 42, "n1", &sha256_hex(b"body"));
        verify_ed25519(pk, ok.as_bytes(), &h.signature).unwrap();
        for bad in [
            canonical_request("GET", "/v1/envelopes", 42, "n1", &sha256_hex(b"body")),
            canonical_request("POST", "/v1/envelopez", 42, "n1", &sha256_hex(b"body")),
            canonical_request("POST", "/v1/envelopes", 43, "n1", &sha256_hex(b"body")),
            canonical_request("POST", "/v1/envelopes", 42, "n2", &sha256_hex(b"body")),
            canonical_request("POST", "/v1/envelopes", 42, "n1", &sha256_hex(b"bodY")),
        ] {
            assert_eq!(
                verify_ed25519(pk, bad.as_bytes(), &h.signature),
                Err(WireError::BadSignature)
            );
        }
        assert_eq!(h.device, device_id(pk));
    }

    #[test]
    fn deferred_signature_binds_every_field_and_is_never_a_normal_one() {
        let key = ed25519_from_pkcs8(&generate_ed25519_pkcs8().unwrap()).unwrap();
        let h = sign_deferred_request(&key, "PUT", "/v1/blobs/ab?offset=0", 42, 99, b"c").unwrap();
        let pk = key.public_key().as_ref();
        let n = h.signed.nonce.as_str();
        let body = sha256_hex(b"c");
        let ok = canonical_deferred_request("PUT", "/v1/blobs/ab?offset=0", 42, 99, n, &body);
        verify_ed25519(pk, ok.as_bytes(), &h.signed.signature).unwrap();
        assert_eq!(h.expires, "99");
        assert_eq!(h.signed.timestamp, "42");
        for bad in [
            canonical_deferred_request("GET", "/v1/blobs/ab?offset=0", 42, 99, n, &body),
            canonical_deferred_request("PUT", "/v1/blobs/ab?offset=1", 42, 99, n, &body),
            canonical_deferred_request("PUT", "/v1/blobs/ab?offset=0", 41, 99, n, &body),
            canonical_deferred_request("PUT", "/v1/blobs/ab?offset=0", 42, 100, n, &body),
            canonical_deferred_request("PUT", "/v1/blobs/ab?offset=0", 42, 99, "n", &body),
            canonical_deferred_request(
                "PUT",
                "/v1/blobs/ab?offset=0",
                42,
                99,
                n,
                &sha256_hex(b"d"),
            ),
            // The same fields as a normal request: a deferred signature is not one.
            canonical_request("PUT", "/v1/blobs/ab?offset=0", 42, n, &body),
        ] {
            assert_eq!(
                verify_ed25519(pk, bad.as_bytes(), &h.signed.signature),
                Err(WireError::BadSignature)
            );
        }
    }

    #[test]
    fn enrollment_and_revocation_need_the_org_key() {
        let (key, org) = new_org();
        let (other, _) = new_org();
        let code = EnrollmentCode::issue(&key, &org.fingerprint, 100, DeviceRole::Field).unwrap();
        code.verify(&org).unwrap();
        let forged =
            EnrollmentCode::issue(&other, &org.fingerprint, 100, DeviceRole::Field).unwrap();
        assert_eq!(forged.verify(&org), Err(WireError::BadSignature));
        let mut altered = code.clone();
        altered.role = DeviceRole::Hq;
        assert_eq!(altered.verify(&org), Err(WireError::BadSignature));
        // The relay URL is signed: stripped, swapped or added, the code no longer verifies.
        let with = EnrollmentCode::issue_for_relay(
            &key,
            &org.fingerprint,
            100,
            DeviceRole::Field,
            "https://relay.example.org/",
        )
        .unwrap();
        assert_eq!(with.relay_url.as_deref(), Some("https://relay.example.org"));
        with.verify(&org).unwrap();
        let mut stripped = with.clone();
        stripped.relay_url = None;
        assert_eq!(stripped.verify(&org), Err(WireError::BadSignature));
        let mut swapped = with.clone();
        swapped.relay_url = Some("https://evil.example.org".into());
        assert_eq!(swapped.verify(&org), Err(WireError::BadSignature));
        let mut added = code.clone();
        added.relay_url = Some("https://relay.example.org".into());
        assert_eq!(added.verify(&org), Err(WireError::BadSignature));
        let mut newline = with.clone();
        newline.relay_url = Some("https://a.example\nfield".into());
        assert_eq!(newline.verify(&org), Err(WireError::Malformed("relay_url")));
        for bad in ["ftp://relay.example.org", "https://a b.example", "http://x"] {
            assert!(EnrollmentCode::issue_for_relay(
                &key,
                &org.fingerprint,
                1,
                DeviceRole::Field,
                bad
            )
            .is_err());
        }
        let r = Revocation::issue(&key, &org.fingerprint, "dev", 5);
        r.verify(&org).unwrap();
        let r2 = Revocation::issue(&other, &org.fingerprint, "dev", 5);
        assert_eq!(r2.verify(&org), Err(WireError::BadSignature));
    }

    #[test]
    fn org_pub_fingerprint_is_checked() {
        let (_, org) = new_org();
        let json = serde_json::to_vec(&org).unwrap();
        assert_eq!(OrgPublic::from_json(&json).unwrap(), org);
        let mut bad = org.clone();
        bad.groups.insert("legal".into(), "age1x".into());
        let json = serde_json::to_vec(&bad).unwrap();
        assert!(OrgPublic::from_json(&json).is_err());
    }
}
