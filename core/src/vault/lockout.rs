//! Failed-unlock backoff: the rule, and its persistence across restarts.
//!
//! After [`FREE_ATTEMPTS`] consecutive failures every further attempt must wait
//! `30 s × 2^(failures − FREE_ATTEMPTS)`, capped at one hour. The counter is written (fsync) *before*
//! the passcode is checked, so killing the app in the middle of an attempt does not earn a free
//! guess; a correct passcode resets it. The file is not secret; someone who can rewrite it already
//! holds the storage, and against that attacker Argon2 and the platform key are the defence.

use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Failures allowed without any wait (typos happen, especially under stress).
pub const FREE_ATTEMPTS: u32 = 5;
/// First wait once the free attempts are used up.
pub const BASE_DELAY_MS: u64 = 30_000;
/// Longest wait between two attempts.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// How long to wait after `failures` consecutive failures.
pub fn delay_ms(failures: u32) -> u64 {
    if failures < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(20);
    BASE_DELAY_MS
        .saturating_mul(1u64 << doublings)
        .min(MAX_DELAY_MS)
}

/// The persisted counter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutState {
    /// Consecutive failed attempts (an attempt in progress counts as failed until it succeeds).
    pub failed_attempts: u32,
    /// When the last attempt was recorded (ms since epoch).
    pub last_attempt_ms: u64,
}

impl LockoutState {
    /// When the next attempt is allowed, if it is not allowed at `now_ms`.
    pub fn retry_at(&self, now_ms: u64) -> Option<u64> {
        let at = self
            .last_attempt_ms
            .saturating_add(delay_ms(self.failed_attempts));
        (at > now_ms).then_some(at)
    }
}

/// Reads and writes the lockout file of one vault.
#[derive(Debug, Clone)]
pub struct LockoutFile {
    path: PathBuf,
}

impl LockoutFile {
    /// The lockout file at `path`.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// Loads the state. A missing file means no failures; a damaged one is treated as if the free
    /// attempts were used up (never as a reset).
    pub fn load(&self) -> LockoutState {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(LockoutState {
                failed_attempts: FREE_ATTEMPTS,
                last_attempt_ms: 0,
            }),
            Err(_) => LockoutState::default(),
        }
    }

    /// Durably stores the state.
    pub fn store(&self, state: &LockoutState) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        fsutil::write_atomic(&self.path, &bytes)
    }

    /// The file's path (for wiping).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        for f in 0..FREE_ATTEMPTS {
            assert_eq!(delay_ms(f), 0);
        }
        assert_eq!(delay_ms(FREE_ATTEMPTS), 30_000);
        assert_eq!(delay_ms(FREE_ATTEMPTS + 1), 60_000);
        assert_eq!(delay_ms(FREE_ATTEMPTS + 2), 120_000);
        assert_eq!(delay_ms(FREE_ATTEMPTS + 10), MAX_DELAY_MS);
        assert_eq!(delay_ms(u32::MAX), MAX_DELAY_MS);
    }

    #[test]
    fn damaged_file_does_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let f = LockoutFile::new(&dir.path().join("l"));
        assert_eq!(f.load(), LockoutState::default());
        std::fs::write(f.path(), b"{garbage").unwrap();
        assert_eq!(f.load().failed_attempts, FREE_ATTEMPTS);
        let s = LockoutState {
            failed_attempts: 7,
            last_attempt_ms: 1000,
        };
        f.store(&s).unwrap();
        assert_eq!(f.load(), s);
        assert_eq!(s.retry_at(1000), Some(1000 + delay_ms(7)));
        assert_eq!(s.retry_at(1000 + delay_ms(7)), None);
    }
}
