//! Event time: an RFC 3339 string with any offset (normalised to UTC) or an integer of epoch
//! milliseconds. The clock is a parameter (`now`), never read here, so validation is
//! deterministic and the caller reads the clock once per batch.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::limits::MAX_FUTURE_MS;
use crate::reason::{Invalid, Reason};

/// Milliseconds since 1970-01-01T00:00:00Z, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventTime(i64);

impl EventTime {
    pub const fn from_millis(ms: i64) -> Self {
        EventTime(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The system clock, for callers at the edge (Lambda handlers, the CLI).
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        EventTime(ms)
    }

    /// Parses an RFC 3339 timestamp with any offset; fractions beyond milliseconds are
    /// truncated toward the past (the store keeps milliseconds).
    pub fn parse_rfc3339(s: &str) -> Result<Self, Invalid> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| invalid_format())?;
        let nanos = t.unix_timestamp_nanos();
        let ms = nanos.div_euclid(1_000_000);
        let ms = i64::try_from(ms).map_err(|_| invalid_format())?;
        Ok(EventTime(ms))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-23T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let millis = self.0.rem_euclid(1000);
        match OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                millis
            ),
            Err(_) => format!("{}ms", self.0),
        }
    }

    /// Rejects times before the epoch and more than 15 minutes after `now`.
    pub fn check_range(self, now: EventTime) -> Result<Self, Invalid> {
        if self.0 < 0 {
            return Err(Invalid::new(
                Reason::EventTimeBeforeEpoch,
                "event_time is before 1970-01-01",
            ));
        }
        if self.0 > now.0.saturating_add(MAX_FUTURE_MS) {
            return Err(Invalid::new(
                Reason::EventTimeInFuture,
                "event_time is more than 15 minutes in the future",
            ));
        }
        Ok(self)
    }

    /// Parses `data.event_time` from its raw JSON text and checks its range.
    pub fn from_json(raw: &str, now: EventTime) -> Result<Self, Invalid> {
        let t = match raw.as_bytes().first() {
            Some(b'"') => {
                let s: std::borrow::Cow<'_, str> = serde_json::from_str(raw).map_err(|_| invalid_format())?;
                EventTime::parse_rfc3339(&s)?
            }
            Some(b'-' | b'0'..=b'9') => {
                // Integers only: `1.7e12` or `1700000000000.5` are ambiguous about precision.
                let ms: i64 = raw.parse().map_err(|_| invalid_format())?;
                EventTime(ms)
            }
            _ => return Err(invalid_format()),
        };
        t.check_range(now)
    }
}

fn invalid_format() -> Invalid {
    Invalid::new(
        Reason::InvalidEventTime,
        "event_time must be an RFC 3339 string or an integer of epoch milliseconds",
    )
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: EventTime = EventTime::from_millis(1_795_000_000_000);

    #[test]
    fn rfc3339_offsets_normalise_to_utc() {
        let utc = EventTime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        let plus2 = EventTime::parse_rfc3339("2026-11-23T12:00:00+02:00").unwrap();
        let minus = EventTime::parse_rfc3339("2026-11-23T05:30:00-04:30").unwrap();
        assert_eq!(utc, plus2);
        assert_eq!(utc, minus);
        assert_eq!(utc.as_millis(), 1_795_428_000_000);
        assert_eq!(utc.to_rfc3339(), "2026-11-23T10:00:00.000Z");
    }

    #[test]
    fn fractions_keep_milliseconds() {
        let t = EventTime::parse_rfc3339("2026-11-23T10:00:00.123456789Z").unwrap();
        assert_eq!(t.as_millis() % 1000, 123);
    }

    #[test]
    fn epoch_millis_and_strings_parse_from_json() {
        assert_eq!(EventTime::from_json("0", NOW).unwrap().as_millis(), 0);
        assert_eq!(
            EventTime::from_json("\"1970-01-01T00:00:00Z\"", NOW)
                .unwrap()
                .as_millis(),
            0
        );
        for bad in [
            "1.5",
            "1e12",
            "true",
            "null",
            "\"yesterday\"",
            "\"2026-11-23\"",
            "\"1700000000000\"",
        ] {
            assert_eq!(
                EventTime::from_json(bad, NOW).unwrap_err().reason,
                Reason::InvalidEventTime,
                "{bad}"
            );
        }
    }

    #[test]
    fn range_rules_have_their_own_codes() {
        assert_eq!(
            EventTime::from_json("-1", NOW).unwrap_err().reason,
            Reason::EventTimeBeforeEpoch
        );
        assert_eq!(
            EventTime::from_json("\"1969-12-31T23:59:59Z\"", NOW)
                .unwrap_err()
                .reason,
            Reason::EventTimeBeforeEpoch
        );
        let limit = NOW.as_millis() + MAX_FUTURE_MS;
        assert!(EventTime::from_json(&limit.to_string(), NOW).is_ok());
        assert_eq!(
            EventTime::from_json(&(limit + 1).to_string(), NOW)
                .unwrap_err()
                .reason,
            Reason::EventTimeInFuture
        );
    }
}
