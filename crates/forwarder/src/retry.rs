//! When to try a batch again: exponential backoff with jitter, never sooner than the vendor's
//! `Retry-After` (`metrics_http::parse_retry_after`: seconds or an HTTP date), and never past the function's deadline.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay; each retry doubles it.
    pub base: Duration,
    /// Largest delay from the backoff (a longer `Retry-After` is still honoured).
    pub max: Duration,
    /// Attempts per batch, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Mixpanel suggests 2 s doubling to 60 s plus 1-5 s of jitter. An invocation has minutes
        // at most, so this starts lower (0.5-1 s with equal jitter); a vendor's Retry-After wins.
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0 for the first retry): equal jitter over
    /// `min(max, base · 2^retry)`, so the delay is between half and all of it, and at least
    /// `retry_after`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut fastrand::Rng) -> Duration {
        let exp = self.base.saturating_mul(1u32 << retry.min(20)).min(self.max);
        let half = exp / 2;
        let jitter = Duration::from_millis(rng.u64(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX)));
        let backoff = half + jitter;
        match retry_after {
            Some(after) => backoff.max(after),
            None => backoff,
        }
    }
}

/// The time this invocation must be done by, with a margin kept back for writing dead letters
/// and progress markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn at(at: Instant) -> Deadline {
        Deadline { at }
    }

    pub fn after(duration: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + duration,
        }
    }

    /// From Lambda's deadline (epoch milliseconds), less `margin`
    /// ([`metrics_objects::work_time`]: at most a quarter of the time left).
    pub fn from_epoch_millis(deadline_ms: u64, margin: Duration) -> Deadline {
        Deadline::after(metrics_objects::work_time(deadline_ms, margin, SystemTime::now()))
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_before_2001_is_time_from_now_as_cargo_lambda_watch_sends_it() {
        let left = Deadline::from_epoch_millis(600_000, Duration::from_secs(5)).remaining();
        assert!(
            left > Duration::from_millis(594_500) && left <= Duration::from_secs(595),
            "{left:?}"
        );
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = Deadline::from_epoch_millis(now_ms + 30_000, Duration::from_secs(5)).remaining();
        assert!(
            left > Duration::from_millis(24_500) && left <= Duration::from_secs(25),
            "{left:?}"
        );
        assert_eq!(
            Deadline::from_epoch_millis(now_ms - 1, Duration::ZERO).remaining(),
            Duration::ZERO
        );
    }

    #[test]
    fn delays_double_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_attempts: 5,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            let first = policy.delay(0, None, &mut rng);
            assert!(
                (Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first),
                "{first:?}"
            );
            let third = policy.delay(2, None, &mut rng);
            assert!(
                (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third),
                "{third:?}"
            );
            let late = policy.delay(30, None, &mut rng);
            assert!(
                (Duration::from_millis(500)..=Duration::from_millis(1000)).contains(&late),
                "{late:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy {
            base: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3)), &mut rng),
            Duration::from_secs(3)
        );
    }
}
