//! The shared state of one relay process: storage, organisation, limits, counters, rate buckets.

use super::config::RelayConfig;
use super::errors::{ApiError, ErrorCode};
use super::metrics::Metrics;
use super::storage::Storage;
use amanat_protocol::OrgPublic;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Shared state of one relay process.
pub struct App<S: Storage> {
    pub(super) storage: S,
    pub(super) org: OrgPublic,
    pub(super) config: RelayConfig,
    pub(super) metrics: Metrics,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The state as handlers receive it.
pub type Shared<S> = Arc<App<S>>;

impl<S: Storage> App<S> {
    /// Builds the shared state (refuses an `org.pub` whose signing key is unusable).
    pub fn new(storage: S, org: OrgPublic, config: RelayConfig) -> Result<Self, String> {
        org.signing_key_bytes().map_err(|e| e.to_string())?;
        Ok(Self {
            storage,
            org,
            config,
            metrics: Metrics::default(),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The storage backend (tests inspect it directly).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Takes one token from `device`'s bucket, or refuses with `rate_limited`.
    pub(super) fn rate_limit(&self, device: &str) -> Result<(), ApiError> {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = self.config.rate_burst;
        let bucket = b.entry(device.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.config.rate_per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(ErrorCode::RateLimited.into());
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}
