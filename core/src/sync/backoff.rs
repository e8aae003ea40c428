//! Retry schedule after transient failures (network, timeouts, 408, 429, 5xx).
//!
//! The core never sleeps and never schedules: it counts consecutive transient failures in the
//! persisted sync state (reset by a run that finishes), and tells the shell how long to wait
//! before the next attempt ([`SyncReport::retry_after_ms`], [`backoff()`]). The shell's scheduler
//! (WorkManager, BGTaskScheduler, the CLI) honours it. The delay doubles from
//! [`BACKOFF_BASE_MS`] to [`BACKOFF_CAP_MS`] with "equal jitter" (uniform in the upper half of
//! the step), so a fleet of devices that lost the relay together does not return together, yet
//! no device waits less than half its step.

use super::*;

/// Ceiling of the first retry delay (one failure): 0.5 s.
pub const BACKOFF_BASE_MS: u64 = 500;
/// Largest retry delay: 15 minutes (a device offline for days still tries four times an hour).
pub const BACKOFF_CAP_MS: u64 = 15 * 60 * 1000;

/// Upper bound of the delay after `failures` consecutive transient failures:
/// `BACKOFF_BASE_MS · 2^(failures−1)`, capped at [`BACKOFF_CAP_MS`]; 0 for no failure.
pub fn backoff_ceiling_ms(failures: u32) -> u64 {
    if failures == 0 {
        return 0;
    }
    let shift = (failures - 1).min(40);
    BACKOFF_BASE_MS
        .saturating_mul(1u64 << shift)
        .min(BACKOFF_CAP_MS)
}

/// The delay after `failures` consecutive transient failures, from `random` (any 64 bits):
/// uniform in `[ceiling/2, ceiling]` of [`backoff_ceiling_ms`].
pub fn backoff_delay_ms(failures: u32, random: u64) -> u64 {
    let ceiling = backoff_ceiling_ms(failures);
    let floor = ceiling / 2;
    floor + random % (ceiling - floor + 1)
}

/// 64 random bits for the jitter (the OS CSPRNG; 0, the lower bound, if it fails: the schedule
/// stays within bounds either way).
fn jitter_bits() -> u64 {
    let mut b = [0u8; 8];
    match crate::crypto::os_random(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => 0,
    }
}

/// Where the retry schedule stands, for the shell's scheduler and status screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Transient failures in a row since the last run that finished (0 after a success).
    pub consecutive_failures: u32,
    /// When the next attempt is due (ms since epoch, vault clock), if the last run failed.
    pub next_attempt_ms: Option<u64>,
}

/// The persisted retry schedule (all zero before enrollment or after a success).
pub fn backoff(vault: &Vault) -> Result<Backoff, SyncError> {
    let store = vault.store()?;
    store.read(|tx| {
        Ok(tx
            .get_json::<State>(SYNC_STATE, STATE_ID)?
            .map(|(s, _)| Backoff {
                consecutive_failures: s.failures,
                next_attempt_ms: s.retry_at_ms,
            })
            .unwrap_or_default())
    })
}

/// Records how a run ended in the state it persists: a finished run resets the schedule and
/// stamps the success; a transient failure counts one more and returns the delay to wait (the
/// relay's `Retry-After`, `hint_ms`, if that is longer); a cancellation is not a failure and
/// changes nothing.
pub(super) fn record_outcome(
    tx: &mut Tx<'_>,
    interrupted: Option<&Interruption>,
    now_ms: u64,
    hint_ms: Option<u64>,
) -> Result<Option<u64>, SyncError> {
    let (mut st, version) = load_state(tx)?;
    let delay = match interrupted {
        Some(Interruption::Cancelled) => return Ok(None),
        None => {
            st.last_success_ms = Some(now_ms);
            st.failures = 0;
            st.retry_at_ms = None;
            None
        }
        Some(_) => {
            st.failures = st.failures.saturating_add(1);
            let delay = backoff_delay_ms(st.failures, jitter_bits()).max(hint_ms.unwrap_or(0));
            st.retry_at_ms = Some(now_ms.saturating_add(delay));
            Some(delay)
        }
    };
    tx.update_json(SYNC_STATE, STATE_ID, version, &st)?;
    Ok(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_half_a_second_to_the_cap() {
        assert_eq!(backoff_ceiling_ms(0), 0);
        let ceilings: Vec<u64> = (1..=13).map(backoff_ceiling_ms).collect();
        assert_eq!(
            ceilings,
            [
                500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000,
                900_000, 900_000
            ]
        );
        // Far beyond: still the cap, no overflow.
        for n in [40, 41, 64, 1_000, u32::MAX] {
            assert_eq!(backoff_ceiling_ms(n), BACKOFF_CAP_MS);
        }
    }

    #[test]
    fn delays_stay_in_the_upper_half_of_their_step() {
        for n in 1..=20 {
            let c = backoff_ceiling_ms(n);
            assert_eq!(backoff_delay_ms(n, 0), c / 2, "lower bound at {n}");
            assert_eq!(backoff_delay_ms(n, c - c / 2), c, "upper bound at {n}");
            for r in [1, 7, 12_345, u64::MAX / 3, u64::MAX - 1, u64::MAX] {
                let d = backoff_delay_ms(n, r);
                assert!((c / 2..=c).contains(&d), "{d} outside [{}, {c}]", c / 2);
            }
        }
        assert_eq!(backoff_delay_ms(0, u64::MAX), 0);
    }

    #[test]
    fn jitter_spreads_devices_that_failed_together() {
        // 200 devices at their 6th failure: many distinct delays, all inside [8 s, 16 s].
        let delays: BTreeSet<u64> = (0..200)
            .map(|_| backoff_delay_ms(6, jitter_bits()))
            .collect();
        assert!(delays.len() > 150, "{} distinct", delays.len());
        assert!(delays.iter().all(|d| (8_000..=16_000).contains(d)));
    }
}
