//! The relay's one list of error codes and the JSON error answer.
//!
//! Every refusal is `{"error": "<code>"}` (plus, for a few codes, one extra field) with the HTTP
//! status fixed by the code, so a client can switch on the code alone. The list below is the only
//! place a code is spelled: the handlers use the variants, the OpenAPI document and its `Error`
//! schema are generated from [`ErrorCode::ALL`], and a test checks that docs/PROTOCOL.md names
//! every code. Codes are stable: never rename one, add a new one instead.

use super::storage::StorageError;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:ident), )*) => {
        /// A stable error code of the relay, with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as sent in the `error` field (stable snake_case).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status that always accompanies this code.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }
        }
    };
}

error_codes! {
    /// An authentication header is present but not in its one accepted format.
    MalformedAuth = ("malformed_auth", BAD_REQUEST),
    /// The body is not the documented JSON (or a field is not in its format).
    MalformedBody = ("malformed_body", BAD_REQUEST),
    /// The query string is not made of the documented `name=decimal` pairs.
    MalformedQuery = ("malformed_query", BAD_REQUEST),
    /// The `{sha256}` path segment is not 64 lowercase hex characters.
    MalformedBlobAddress = ("malformed_blob_address", BAD_REQUEST),
    /// An envelope id is not a lowercase UUIDv7.
    MalformedEnvelopeId = ("malformed_envelope_id", BAD_REQUEST),
    /// Recipients empty, more than 64, or not device ids / `hq`.
    MalformedRecipients = ("malformed_recipients", BAD_REQUEST),
    /// A payload is not canonical standard base64 of at least one byte.
    MalformedPayload = ("malformed_payload", BAD_REQUEST),
    /// A push with no envelope.
    EmptyBatch = ("empty_batch", BAD_REQUEST),
    /// A blob upload with an empty body.
    EmptyChunk = ("empty_chunk", BAD_REQUEST),
    /// A request the relay could not read at all (last-resort mapping of a framework refusal).
    MalformedRequest = ("malformed_request", BAD_REQUEST),
    /// An authentication header is missing.
    UnsignedRequest = ("unsigned_request", UNAUTHORIZED),
    /// The timestamp is outside the clock window.
    StaleTimestamp = ("stale_timestamp", UNAUTHORIZED),
    /// The signing device is not enrolled.
    UnknownDevice = ("unknown_device", UNAUTHORIZED),
    /// The signature does not verify (or the enrolling key is not the signer).
    BadSignature = ("bad_signature", UNAUTHORIZED),
    /// The nonce was already used by this device.
    ReplayedNonce = ("replayed_nonce", UNAUTHORIZED),
    /// A deferred request (`x-amanat-expires`) on a route that takes only normal ones.
    DeferredNotAllowed = ("deferred_not_allowed", UNAUTHORIZED),
    /// The device is revoked (the answer carries the org-signed `revocation`).
    RevokedDevice = ("revoked_device", FORBIDDEN),
    /// An enrollment code or revocation is not signed by the organisation key.
    InvalidOrgSignature = ("invalid_org_signature", FORBIDDEN),
    /// An enrollment code or revocation names another organisation.
    WrongOrganisation = ("wrong_organisation", FORBIDDEN),
    /// No such route.
    NotFound = ("not_found", NOT_FOUND),
    /// The blob is not held complete.
    BlobNotFound = ("blob_not_found", NOT_FOUND),
    /// A revocation names a device that was never enrolled.
    DeviceNotEnrolled = ("device_not_enrolled", NOT_FOUND),
    /// The route exists but not for this method (the answer has an `Allow` header).
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED),
    /// The enrollment code was already used.
    CodeUsed = ("code_used", CONFLICT),
    /// The key is already enrolled.
    AlreadyEnrolled = ("already_enrolled", CONFLICT),
    /// An envelope id is held for another sender (with `id`).
    EnvelopeIdConflict = ("envelope_id_conflict", CONFLICT),
    /// A chunk's offset is not the bytes held (with the held `offset`).
    OffsetMismatch = ("offset_mismatch", CONFLICT),
    /// The blob is complete; nothing more can be appended.
    BlobComplete = ("blob_complete", CONFLICT),
    /// The enrollment code has expired.
    CodeExpired = ("code_expired", GONE),
    /// The body is over the route's limit.
    BodyTooLarge = ("body_too_large", PAYLOAD_TOO_LARGE),
    /// An envelope's payload is over the limit (with `id`).
    EnvelopeTooLarge = ("envelope_too_large", PAYLOAD_TOO_LARGE),
    /// More envelopes than one push may carry.
    BatchTooLarge = ("batch_too_large", PAYLOAD_TOO_LARGE),
    /// The blob would exceed the size limit.
    BlobTooLarge = ("blob_too_large", PAYLOAD_TOO_LARGE),
    /// The `Range` header is not one satisfiable byte range (with the blob's `size`).
    RangeNotSatisfiable = ("range_not_satisfiable", RANGE_NOT_SATISFIABLE),
    /// The bytes held do not hash to the address; the upload was discarded.
    HashMismatch = ("hash_mismatch", UNPROCESSABLE_ENTITY),
    /// The device's token bucket is empty (`Retry-After: 1`).
    RateLimited = ("rate_limited", TOO_MANY_REQUESTS),
    /// A failure of the relay itself.
    Internal = ("internal", INTERNAL_SERVER_ERROR),
    /// The database failed (detail only in the server log).
    StorageUnavailable = ("storage_unavailable", SERVICE_UNAVAILABLE),
}

impl ErrorCode {
    /// The code for a framework answer that carries none (the last-resort JSON mapping).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
            s if s.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::MalformedRequest,
        }
    }
}

/// An API error: a code (which fixes the status) and at most one extra field.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    extra: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    /// An error with no extra field.
    pub fn new(code: ErrorCode) -> Self {
        Self { code, extra: None }
    }

    /// Adds the one extra field some codes carry (`revocation`, `id`, `offset`, `size`).
    pub fn with(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::new(code)
    }
}

/// Marks a response with the code it carries, for the metrics/log middleware (and so the
/// last-resort mapping knows the answer is already in the JSON shape).
#[derive(Clone, Copy, Debug)]
pub struct Coded(pub ErrorCode);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.as_str().into());
        if let Some((k, v)) = self.extra {
            body.insert(k.into(), v);
        }
        let mut resp = json_response(self.code.status(), &serde_json::Value::Object(body));
        resp.extensions_mut().insert(Coded(self.code));
        if self.code == ErrorCode::RateLimited {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Backend(msg) => {
                tracing::error!(error = %msg, "storage failure");
                ApiError::new(ErrorCode::StorageUnavailable)
            }
            StorageError::SchemaTooNew { .. } | StorageError::Migration { .. } => {
                tracing::error!(error = %e, "storage schema");
                ApiError::new(ErrorCode::StorageUnavailable)
            }
            StorageError::CodeUsed => ErrorCode::CodeUsed.into(),
            StorageError::AlreadyEnrolled => ErrorCode::AlreadyEnrolled.into(),
            StorageError::UnknownDevice => ErrorCode::DeviceNotEnrolled.into(),
            StorageError::IdConflict(id) => {
                ApiError::new(ErrorCode::EnvelopeIdConflict).with("id", id.into())
            }
            StorageError::OffsetMismatch { held } => {
                ApiError::new(ErrorCode::OffsetMismatch).with("offset", held.into())
            }
            StorageError::BlobComplete => ErrorCode::BlobComplete.into(),
            StorageError::BlobTooLarge => ErrorCode::BlobTooLarge.into(),
        }
    }
}

/// A JSON answer with `status`.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A 200 JSON answer (a value that cannot be serialised answers `internal`).
pub fn json_ok<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_value(value) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(_) => ApiError::new(ErrorCode::Internal).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_snake_case_and_errors() {
        let mut seen = BTreeSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
    }

    #[test]
    fn every_code_is_in_protocol_md() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
                .unwrap();
        for c in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", c.as_str(), c.status().as_u16());
            assert!(
                doc.contains(&row),
                "docs/PROTOCOL.md error table lacks the row {row}"
            );
        }
    }
}
