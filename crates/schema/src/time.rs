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
        if let Some(ms) = parse_utc_fast(s) {
            return Ok(EventTime(ms));
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| invalid_format())?;
        let nanos = t.unix_timestamp_nanos();
        let ms = nanos.div_euclid(1_000_000);
        let ms = i64::try_from(ms).map_err(|_| invalid_format())?;
        Ok(EventTime(ms))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-23T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match self.civil() {
            Some(c) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
            ),
            None => format!("{}ms", self.0),
        }
    }

    /// The calendar date and time of day in UTC; `None` past the years `time` can represent.
    pub fn civil(self) -> Option<Civil> {
        let t = OffsetDateTime::from_unix_timestamp(self.0.div_euclid(1000)).ok()?;
        Some(Civil {
            year: t.year(),
            month: u8::from(t.month()),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            millis: self.0.rem_euclid(1000) as u16,
        })
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
                let s = crate::json::raw_json_str(raw).ok_or_else(invalid_format)?;
                EventTime::parse_rfc3339(&s)?
            }
            Some(b'-' | b'0'..=b'9') => {
                // Integers only: `1.7e12` or `1700000000000.5` are ambiguous about precision.
                match crate::json::number_text(raw) {
                    crate::json::NumberText::Integer(Some(ms)) => EventTime(ms),
                    _ => return Err(invalid_format()),
                }
            }
            _ => return Err(invalid_format()),
        };
        t.check_range(now)
    }
}

/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` from 1970 on, the form producers almost always send,
/// read without the general parser. `None` for anything else (other offsets, lower-case
/// letters, leap seconds, invalid dates, long fractions), which the general parser decides.
fn parse_utc_fast(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[b.len() - 1] != b'Z'
    {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |value, &c| {
            c.is_ascii_digit().then(|| value * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(number(&b[0..4])?).ok()?;
    let month = time::Month::try_from(u8::try_from(number(&b[5..7])?).ok()?).ok()?;
    let day = u8::try_from(number(&b[8..10])?).ok()?;
    let (hour, minute, second) = (number(&b[11..13])?, number(&b[14..16])?, number(&b[17..19])?);
    let millis = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            number(fraction)?;
            // Milliseconds are the first three digits: the rest is truncated, toward the past.
            let ms = &fraction[..fraction.len().min(3)];
            number(ms)? * 10u32.pow(3 - ms.len() as u32)
        }
        _ => return None,
    };
    if year < 1970 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let days = i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1000 + i64::from(millis))
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

/// An instant's UTC calendar fields ([`EventTime::civil`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
}

impl Civil {
    pub const EPOCH: Civil = Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
    };
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

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_general_parser(
            year in 1960u32..2200,
            month in 0u32..14,
            day in 0u32..33,
            hour in 0u32..25,
            minute in 0u32..61,
            second in 0u32..62,
            fraction in proptest::option::of("[0-9]{0,11}"),
            end in proptest::sample::select(vec!["Z", "z", "+00:00", "-01:30", ""]),
        ) {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{end}");
            let general = OffsetDateTime::parse(&text, &Rfc3339)
                .ok()
                .and_then(|t| i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok());
            if let Some(fast) = parse_utc_fast(&text) {
                proptest::prop_assert_eq!(Some(fast), general, "{}", text);
            }
            proptest::prop_assert_eq!(EventTime::parse_rfc3339(&text).ok().map(EventTime::as_millis), general, "{}", text);
        }
    }

    #[test]
    fn the_fast_path_takes_the_usual_forms() {
        assert_eq!(parse_utc_fast("2026-11-23T10:00:00Z"), Some(1_795_428_000_000));
        assert_eq!(parse_utc_fast("2026-11-23T10:00:00.1Z"), Some(1_795_428_000_100));
        assert_eq!(
            parse_utc_fast("2026-11-23T10:00:00.123456789Z"),
            Some(1_795_428_000_123)
        );
        assert_eq!(parse_utc_fast("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for other in [
            "2026-02-29T00:00:00Z",
            "2026-11-23T10:00:00+00:00",
            "2026-11-23t10:00:00Z",
            "2026-11-23T10:00:00.Z",
        ] {
            assert_eq!(parse_utc_fast(other), None, "{other}");
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
