//! Wall-clock time, injected.
//!
//! Every rule that depends on time (unlock backoff, audit timestamps, hybrid logical clocks, later
//! retention) reads it through [`Clock`], so tests can move time and the shells use [`SystemClock`].
//! A layer-0 module: it imports nothing from the crate.

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// Injected so tests can move time; the shells use [`SystemClock`].
pub trait Clock: Send + Sync {
    /// Current time in ms since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}
