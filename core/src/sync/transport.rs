//! The transport contract: the core builds requests and reads responses, something else moves them.
//!
//! The core opens no socket. A shell implements [`Transport`] with its platform's HTTP stack
//! (OkHttp, URLSession: background transfers, proxies, certificate pinning), or uses the built-in
//! client of the `amanat-transport` crate (ureq, rustls on ring), which also serves tests and the
//! CLI. The trait is blocking: the shell calls sync from its own background worker.

use std::fmt;

/// One HTTP request to the relay. `Debug` omits the body (ciphertext, but still not for logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// The relay's base URL as enrolled (`https://relay.example.org`), no trailing slash.
    pub base_url: String,
    /// Path and query, exactly as signed (`/v1/envelopes?after=3&limit=100`).
    pub path: String,
    /// Headers to send (the four signature headers, `content-type`).
    pub headers: Vec<(String, String)>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The relay's answer, whatever its status (a 4xx is a response, not a [`TransportError`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Why a request got no HTTP response. Every variant is transient for the sync engine (the entry
/// stays queued) except [`TransportError::InsecureUrl`] and [`TransportError::InvalidUrl`], which
/// are configuration errors that no retry fixes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be made (DNS, refused, unreachable).
    #[error("could not connect to the relay")]
    Connect,
    /// No answer within the timeout.
    #[error("the relay did not answer in time")]
    Timeout,
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS failure")]
    Tls,
    /// The connection broke mid-request or mid-response.
    #[error("connection lost")]
    Io,
    /// The answer was not valid HTTP or too large.
    #[error("invalid HTTP answer")]
    Protocol,
    /// Plain `http://` to a host that is not a loopback address.
    #[error("plain http is allowed only to loopback addresses")]
    InsecureUrl,
    /// The URL cannot be parsed or has an unsupported scheme.
    #[error("invalid relay URL")]
    InvalidUrl,
    /// Anything else the shell's HTTP stack reports (its message is not kept: it may hold URLs).
    #[error("transport failure")]
    Other,
}

impl TransportError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            TransportError::InsecureUrl | TransportError::InvalidUrl
        )
    }
}

/// Moves one request to the relay and returns its answer. Implementations must apply a timeout
/// to every call, follow no redirects, and return non-2xx answers as [`Response`]s.
pub trait Transport: Send + Sync {
    /// Sends `request`; blocks until the answer arrived or the timeout expired.
    fn send(&self, request: &Request) -> Result<Response, TransportError>;
}
