//! Exponential backoff with full jitter, bounded by a deadline.

use std::time::{Duration, Instant};

/// Delays grow as `base × 2^attempt` up to `cap`; each actual delay is uniform in
/// `[0, that]` ("full jitter"), so many writers throttled together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The upper bound of the delay before retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry number `attempt`, or `None` when waiting it would reach the
    /// deadline (then the caller stops retrying).
    pub fn delay(&self, attempt: u32, now: Instant, deadline: Instant) -> Option<Duration> {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(fastrand::u64(0..=nanos));
        // Leave room for the request itself after the wait: never start a retry that could
        // only finish after the deadline.
        if now + delay + self.base >= deadline {
            None
        } else {
            Some(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        };
        let ceilings: Vec<u128> = (0..6).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let b = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_secs(1),
        };
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        let delays: Vec<Duration> = (0..200).filter_map(|_| b.delay(3, now, far)).collect();
        assert_eq!(delays.len(), 200);
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(80)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 50,
            "delays should be spread, got {} distinct",
            distinct.len()
        );
    }

    #[test]
    fn no_retry_is_started_that_would_reach_the_deadline() {
        let b = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_secs(1),
        };
        let now = Instant::now();
        assert_eq!(b.delay(0, now, now + Duration::from_millis(10)), None);
        assert_eq!(b.delay(0, now, now), None);
        assert!(b.delay(0, now, now + Duration::from_millis(21)).is_some());
    }
}
