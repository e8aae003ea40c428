//! Request authentication: the four signed headers, the clock window, the Ed25519 signature over
//! the canonical request, revocation, rate limit, and the one-time nonce — in that order.
//!
//! Every handler of a signed route calls [`App::authenticate`] before it looks at the path
//! parameters, the query or the JSON body, so an unauthenticated caller learns nothing about what
//! the relay would have thought of them.

use super::errors::{ApiError, ErrorCode};
use super::state::{now_ms, App};
use super::storage::Storage;
use super::validate;
use amanat_protocol::{
    sha256_hex, DeviceRole, HEADER_DEVICE, HEADER_EXPIRES, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, MAX_CLOCK_SKEW_MS, MAX_DEFERRED_MS,
};
use axum::http::{HeaderMap, Method, Uri};

/// The authenticated caller of a request.
pub struct Caller {
    /// Its device id.
    pub device_id: String,
    /// Field device or HQ.
    pub role: DeviceRole,
}

/// The four authentication headers, each in its one accepted format.
pub struct AuthHeaders<'a> {
    /// Claimed device id.
    pub device: &'a str,
    /// Milliseconds since the epoch, parsed from exactly the text that was signed.
    pub timestamp: u64,
    /// Request nonce.
    pub nonce: &'a str,
    /// Signature (hex).
    pub signature: &'a str,
    /// Expiry of a deferred request ([`HEADER_EXPIRES`]); `None` for a normal one.
    pub expires: Option<u64>,
}

/// Whether a route accepts deferred requests (signed earlier, sent later; docs/PROTOCOL.md,
/// "Deferred requests"). Only where sending the same request again cannot change the outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Deferral {
    /// Normal requests only; a deferred one is `deferred_not_allowed`.
    Refused,
    /// A blob chunk `PUT`: content-addressed, at a fixed offset — a repeat is `offset_mismatch`
    /// or `blob_complete`, never a second append. No nonce is kept for deferred requests here.
    Accepted,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    let mut values = h.get_all(name).iter();
    let v = values.next().ok_or(ErrorCode::UnsignedRequest)?;
    // A repeated header would leave it to chance which copy is read: one copy only.
    if values.next().is_some() {
        return Err(ErrorCode::MalformedAuth.into());
    }
    v.to_str().map_err(|_| ErrorCode::MalformedAuth.into())
}

impl<'a> AuthHeaders<'a> {
    /// Reads the headers: a missing one is `unsigned_request`, one out of format `malformed_auth`.
    pub fn parse(h: &'a HeaderMap) -> Result<Self, ApiError> {
        let device = header_str(h, HEADER_DEVICE)?;
        let timestamp = header_str(h, HEADER_TIMESTAMP)?;
        let nonce = header_str(h, HEADER_NONCE)?;
        let signature = header_str(h, HEADER_SIGNATURE)?;
        if !validate::is_device_id(device)
            || !validate::is_nonce(nonce)
            || !validate::is_signature(signature)
        {
            return Err(ErrorCode::MalformedAuth.into());
        }
        // The canonical string carries the decimal the relay formats from this number: only the
        // one spelling of it is accepted, so what is verified is what the device sent.
        let timestamp = validate::decimal(timestamp).ok_or(ErrorCode::MalformedAuth)?;
        let expires = match h.get(HEADER_EXPIRES) {
            None => None,
            Some(_) => Some(
                validate::decimal(header_str(h, HEADER_EXPIRES)?)
                    .ok_or(ErrorCode::MalformedAuth)?,
            ),
        };
        Ok(Self {
            device,
            timestamp,
            nonce,
            signature,
            expires,
        })
    }
}

impl<S: Storage> App<S> {
    /// Refuses a timestamp outside the clock window.
    pub(super) fn check_clock(&self, ts: u64) -> Result<(), ApiError> {
        if now_ms().abs_diff(ts) > MAX_CLOCK_SKEW_MS {
            return Err(ErrorCode::StaleTimestamp.into());
        }
        Ok(())
    }

    /// Refuses a deferred request outside its window: issued in the future (beyond the clock
    /// skew), expired, expiring before it was issued, or valid longer than [`MAX_DEFERRED_MS`].
    pub(super) fn check_deferred_window(&self, issued: u64, expires: u64) -> Result<(), ApiError> {
        if expires <= issued || expires - issued > MAX_DEFERRED_MS {
            return Err(ErrorCode::MalformedAuth.into());
        }
        let now = now_ms();
        if issued > now.saturating_add(MAX_CLOCK_SKEW_MS) || expires < now {
            return Err(ErrorCode::StaleTimestamp.into());
        }
        Ok(())
    }

    /// Verifies the signature over the canonical request under `key`.
    pub(super) fn check_signature(
        &self,
        a: &AuthHeaders<'_>,
        key: &[u8],
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let canonical = match a.expires {
            None => amanat_protocol::canonical_request(
                method.as_str(),
                path,
                a.timestamp,
                a.nonce,
                &sha256_hex(body),
            ),
            Some(expires) => amanat_protocol::canonical_deferred_request(
                method.as_str(),
                path,
                a.timestamp,
                expires,
                a.nonce,
                &sha256_hex(body),
            ),
        };
        amanat_protocol::verify_ed25519(key, canonical.as_bytes(), a.signature)
            .map_err(|_| ErrorCode::BadSignature.into())
    }

    /// Records the nonce; a second use by the same device is `replayed_nonce`.
    pub(super) async fn consume_nonce(&self, a: &AuthHeaders<'_>) -> Result<(), ApiError> {
        if !self
            .storage
            .record_nonce(a.device, a.nonce, a.timestamp)
            .await?
        {
            return Err(ErrorCode::ReplayedNonce.into());
        }
        Ok(())
    }

    /// Authenticates a request from an enrolled device. Order matters: cheap checks first, the
    /// nonce is recorded only for a request whose signature verified (an attacker cannot burn a
    /// device's nonces), and nothing else is stored for a rejected request.
    pub(super) async fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Caller, ApiError> {
        self.authenticate_with(Deferral::Refused, method, uri, headers, body)
            .await
    }

    /// [`App::authenticate`] for a route that says whether it takes deferred requests. A
    /// deferred request is checked against its own window instead of the clock skew, verified
    /// over its own canonical string, and records no nonce; everything else is the same.
    pub(super) async fn authenticate_with(
        &self,
        deferral: Deferral,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Caller, ApiError> {
        let a = AuthHeaders::parse(headers)?;
        match (a.expires, deferral) {
            (None, _) => self.check_clock(a.timestamp)?,
            (Some(expires), Deferral::Accepted) => {
                self.check_deferred_window(a.timestamp, expires)?
            }
            (Some(_), Deferral::Refused) => return Err(ErrorCode::DeferredNotAllowed.into()),
        }
        let device = self
            .storage
            .device(a.device)
            .await?
            .ok_or(ErrorCode::UnknownDevice)?;
        self.check_signature(&a, &device.signing_public_key, method, uri, body)?;
        if let Some(rev) = &device.revocation {
            // Signed by the organisation: the device can verify it before wiping itself.
            let rev: serde_json::Value = serde_json::from_str(rev).unwrap_or_default();
            return Err(ApiError::new(ErrorCode::RevokedDevice).with("revocation", rev));
        }
        self.rate_limit(a.device)?;
        if a.expires.is_none() {
            self.consume_nonce(&a).await?;
        }
        Ok(Caller {
            device_id: device.device_id,
            role: device.role,
        })
    }
}
