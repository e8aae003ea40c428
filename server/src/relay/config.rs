//! Limits and policies of a relay. The lowest piece: it imports nothing of the relay.

/// Limits and policies of a relay; every one has a safe default ([`RelayConfig::default`]).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Largest decoded envelope payload accepted (bytes), rounded down to a multiple of 3 by
    /// [`RelayConfig::envelope_cap`].
    pub max_envelope_bytes: usize,
    /// Most envelopes in one push.
    pub max_batch_envelopes: usize,
    /// Largest request body of a push (bytes, JSON as sent).
    pub max_batch_bytes: usize,
    /// Largest blob chunk in one upload request (bytes).
    pub max_chunk_bytes: usize,
    /// Largest blob (bytes).
    pub max_blob_bytes: u64,
    /// Largest slice of a blob returned by one download (bytes).
    pub max_download_bytes: u64,
    /// Most envelopes per pull page (a larger `limit` is served as this many).
    pub max_pull_limit: u32,
    /// Per-device sustained request rate (requests per second).
    pub rate_per_sec: f64,
    /// Per-device burst (token bucket size).
    pub rate_burst: f64,
}

/// Body limit of the small JSON routes (enroll, revocations, blob completion).
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

impl RelayConfig {
    /// The payload cap actually applied: `max_envelope_bytes` rounded down to a multiple of 3
    /// (at least 3), so that the base64 length states it exactly — the OpenAPI `maxLength` is
    /// [`RelayConfig::envelope_cap_base64`] and a client that keeps to it is never refused.
    pub fn envelope_cap(&self) -> usize {
        (self.max_envelope_bytes / 3 * 3).max(3)
    }

    /// Longest payload text accepted: the base64 length of [`RelayConfig::envelope_cap`] bytes.
    pub fn envelope_cap_base64(&self) -> usize {
        self.envelope_cap() / 3 * 4
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_envelope_bytes: 256 * 1024,
            max_batch_envelopes: 500,
            max_batch_bytes: 4 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            max_blob_bytes: 1024 * 1024 * 1024,
            max_download_bytes: 8 * 1024 * 1024,
            max_pull_limit: 1000,
            rate_per_sec: 50.0,
            rate_burst: 100.0,
        }
    }
}
