//! When a failed hand-off or delivery is tried again: exponential backoff with jitter, capped,
//! until the event is too old.
//!
//! After failed attempt `n` (1 = the first) the wait is `base · 2^(n−1)`, at most `cap`, then
//! shortened by up to a quarter by the caller's random `jitter` (so the cap stays a cap and
//! retries of many deliveries spread out). With the defaults (1 s, 1 h, 24 h) the waits are
//! 1, 2, 4, … 2048 s, then hourly, 35 attempts in all; a delivery whose next attempt would
//! fall after `enqueued + expire_after` expires instead.

/// The first wait, unless configured otherwise.
pub const DEFAULT_BASE_MS: u64 = 1_000;
/// The longest wait.
const CAP_MS: u64 = 3_600_000;
/// How long after it was enqueued a delivery is tried, unless configured otherwise.
pub const DEFAULT_EXPIRE_AFTER_MS: u64 = 86_400_000;

/// The retry schedule. Invariant: `1 ≤ base_ms ≤ cap_ms` (see [`RetryPolicy::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    base_ms: u64,
    cap_ms: u64,
    expire_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::new(DEFAULT_BASE_MS, DEFAULT_EXPIRE_AFTER_MS)
    }
}

impl RetryPolicy {
    /// Backoff from `base_ms` (a zero base counts as 1 ms), capped at an hour or at the base if
    /// that is longer, giving up after `expire_after_ms`.
    pub const fn new(base_ms: u64, expire_after_ms: u64) -> RetryPolicy {
        let base_ms = if base_ms == 0 { 1 } else { base_ms };
        let cap_ms = if base_ms > CAP_MS { base_ms } else { CAP_MS };
        RetryPolicy { base_ms, cap_ms, expire_after_ms }
    }

    /// The wait after failed attempt `attempt` (1 = the first); `jitter` is a uniformly random
    /// `u32` and takes off up to a quarter.
    pub fn delay_ms(&self, attempt: u32, jitter: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(63);
        let delay = self.base_ms.checked_shl(doublings).filter(|d| d >> doublings == self.base_ms).unwrap_or(u64::MAX);
        let delay = delay.min(self.cap_ms);
        let off = (u128::from(delay) * u128::from(jitter)) >> 34; // delay · jitter / 2^32 / 4
        delay - off as u64
    }

    /// When to try again after failed attempt `attempt` ended at `now_ms`, for an event
    /// enqueued at `enqueued_ms`; `None` once that would be later than `enqueued_ms + expire_after`.
    pub fn next_attempt(&self, attempt: u32, enqueued_ms: u64, now_ms: u64, jitter: u32) -> Option<u64> {
        let at = now_ms.saturating_add(self.delay_ms(attempt, jitter));
        (at <= enqueued_ms.saturating_add(self.expire_after_ms)).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=14).map(|n| policy.delay_ms(n, 0)).collect();
        assert_eq!(&waits[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(waits[11], 2_048_000);
        assert_eq!(waits[12], 3_600_000, "capped at an hour");
        assert_eq!(policy.delay_ms(u32::MAX, 0), 3_600_000, "no overflow");
    }

    #[test]
    fn jitter_takes_off_at_most_a_quarter() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_ms(3, u32::MAX), 4_000 - 1_000 + 1);
        assert_eq!(policy.delay_ms(3, u32::MAX / 2), 3_501);
        assert!(policy.delay_ms(100, u32::MAX) <= 3_600_000);
    }

    #[test]
    fn gives_up_after_the_expiry() {
        let policy = RetryPolicy::new(1_000, 10_000);
        assert_eq!(policy.next_attempt(1, 0, 0, 0), Some(1_000));
        assert_eq!(policy.next_attempt(4, 0, 2_000, 0), Some(10_000), "exactly at the expiry is still allowed");
        assert_eq!(policy.next_attempt(4, 0, 2_001, 0), None);
    }

    #[test]
    fn the_default_schedule_makes_about_35_attempts_in_a_day() {
        let policy = RetryPolicy::default();
        let (mut now, mut attempts) = (0, 1);
        while let Some(next) = policy.next_attempt(attempts, 0, now, 0) {
            now = next;
            attempts += 1;
        }
        assert_eq!(attempts, 35);
    }

    #[test]
    fn a_zero_base_still_backs_off() {
        assert_eq!(RetryPolicy::new(0, 1).delay_ms(1, 0), 1);
    }
}
