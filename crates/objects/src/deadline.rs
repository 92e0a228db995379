//! How long an invocation may work: the one rule the writer and the forwarder share.
//!
//! Lambda gives each invocation a deadline (epoch milliseconds, the Runtime API's
//! `Lambda-Runtime-Deadline-Ms` header). A function keeps `margin` of it back to finish:
//! report, store dead letters and progress markers. The margin is at most a quarter of the time
//! left, so a short timeout (or a late start) still leaves three quarters of its time for work.
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-next>
//!
//! `cargo lambda watch` sends the function's timeout instead (`600000`), which read as a date
//! would leave no time at all: a deadline before 2001 is taken as milliseconds from now.

use std::time::{Duration, SystemTime};

/// Deadlines below this (epoch milliseconds of 2001-09-09) are durations from now.
const RELATIVE_DEADLINE_BELOW_MS: u64 = 1_000_000_000_000;

/// The time left for work at `now`: until `deadline_ms`, less `margin` (at most a quarter of
/// the time left). Zero once the deadline has passed.
pub fn work_time(deadline_ms: u64, margin: Duration, now: SystemTime) -> Duration {
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let left_ms = if deadline_ms < RELATIVE_DEADLINE_BELOW_MS {
        deadline_ms
    } else {
        deadline_ms.saturating_sub(now_ms)
    };
    let left = Duration::from_millis(left_ms);
    left.saturating_sub(margin.min(left / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_795_428_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(NOW_MS)
    }

    #[test]
    fn the_margin_is_kept_back_from_lambdas_deadline() {
        assert_eq!(
            work_time(NOW_MS + 30_000, Duration::from_secs(3), now()),
            Duration::from_secs(27)
        );
    }

    #[test]
    fn a_short_timeout_keeps_three_quarters_of_its_time_for_work() {
        assert_eq!(
            work_time(NOW_MS + 2_000, Duration::from_secs(3), now()),
            Duration::from_millis(1_500)
        );
        assert_eq!(
            work_time(NOW_MS + 2_000, Duration::ZERO, now()),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn a_deadline_before_2001_is_time_from_now_as_cargo_lambda_watch_sends_it() {
        assert_eq!(
            work_time(600_000, Duration::from_secs(3), now()),
            Duration::from_secs(597)
        );
    }

    #[test]
    fn a_passed_deadline_leaves_no_time() {
        assert_eq!(
            work_time(NOW_MS - 1, Duration::from_secs(3), now()),
            Duration::ZERO
        );
        assert_eq!(work_time(0, Duration::ZERO, now()), Duration::ZERO);
    }
}
