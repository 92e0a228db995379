//! Validated identifiers. A [`TenantId`] becomes a table name and a file name; a
//! [`MetricName`] becomes a measure name, a Segment or Mixpanel event name and an identifier.
//! Both are `[A-Za-z0-9_.-]` only, so they need no quoting or escaping anywhere.

use std::borrow::Cow;
use std::fmt;

use crate::limits::{MAX_DIMENSION_NAME_BYTES, MAX_MEASURE_NAME_BYTES, METRIC_NAME_BYTES, TENANT_ID_BYTES};
use crate::reason::{Invalid, Reason};

/// `[A-Za-z0-9_.-]`: safe as a table name, a file name and an identifier.
pub fn is_safe_identifier_byte(b: u8) -> bool {
    SAFE_IDENTIFIER_BYTES[usize::from(b)]
}

/// [`is_safe_identifier_byte`] as a table: one load per byte.
const SAFE_IDENTIFIER_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-';
        b += 1;
    }
    table
};

fn is_safe_identifier(s: &str, len: &std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(is_safe_identifier_byte)
}

/// A tenant id: 3–256 bytes of `[A-Za-z0-9_.-]`, and not `.` or `..`-like path tricks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId<'a>(Cow<'a, str>);

impl<'a> TenantId<'a> {
    pub fn parse(s: impl Into<Cow<'a, str>>) -> Result<Self, Invalid> {
        let s = s.into();
        // A name made only of dots would be a special path segment when used as a file name.
        if !is_safe_identifier(&s, &TENANT_ID_BYTES) || s.bytes().all(|b| b == b'.') {
            return Err(Invalid::new(
                Reason::InvalidTenantId,
                "tenant_id must be 3-256 bytes of [A-Za-z0-9_.-]",
            ));
        }
        Ok(TenantId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> TenantId<'static> {
        TenantId(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for TenantId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TenantId<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A metric name: 1–256 bytes of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName<'a>(Cow<'a, str>);

impl<'a> MetricName<'a> {
    pub fn parse(s: impl Into<Cow<'a, str>>) -> Result<Self, Invalid> {
        let s = s.into();
        if !is_safe_identifier(&s, &METRIC_NAME_BYTES) {
            return Err(Invalid::new(
                Reason::InvalidMetricName,
                "metric_name must be 1-256 bytes of [A-Za-z0-9_.-]",
            ));
        }
        Ok(MetricName(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> MetricName<'static> {
        MetricName(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for MetricName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MetricName<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Names the store reserves for its own columns (compared case-insensitively, since SQL
/// identifiers usually are): `time`, `measure_name`, anything starting `measure_value` or `ts_`.
pub fn is_reserved_name(name: &str) -> bool {
    let b = name.as_bytes();
    // Every reserved name starts with a `t` or an `m`.
    if !matches!(b.first(), Some(b't' | b'T' | b'm' | b'M')) {
        return false;
    }
    let starts = |prefix: &[u8]| b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix);
    b.eq_ignore_ascii_case(b"time")
        || b.eq_ignore_ascii_case(b"measure_name")
        || starts(b"measure_value")
        || starts(b"ts_")
}

/// Control characters (C0, DEL, C1).
/// Whether `s` holds a control character (what [`char::is_control`] says), quickly for
/// printable ASCII.
pub fn has_control_char(s: &str) -> bool {
    // Printable ASCII (0x20..=0x7e) is by far the usual text: one pass over the bytes with no
    // early exit (so long text is compared many bytes at a time, and short text costs a few
    // instructions a byte), and only text with another byte is looked at character by
    // character (DEL is U+007F, C1 controls are U+0080 to U+009F).
    let unusual = s
        .bytes()
        .fold(false, |acc, b| acc | (b.wrapping_sub(0x20) > 0x5e));
    unusual && s.chars().any(char::is_control)
}

/// Checks a `metadata` key (a dimension name).
pub fn check_dimension_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || has_control_char(name) {
        return Err(Invalid::new(
            Reason::InvalidDimensionName,
            "dimension names must be non-empty without control characters",
        ));
    }
    if name.len() > MAX_DIMENSION_NAME_BYTES {
        return Err(Invalid::new(
            Reason::DimensionNameTooLong,
            "a dimension name is over 60 bytes",
        ));
    }
    if is_reserved_name(name) {
        return Err(Invalid::new(
            Reason::ReservedName,
            format!("dimension name {name:?} is reserved"),
        ));
    }
    Ok(())
}

/// Checks a `data` key (a measure name).
pub fn check_measure_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || has_control_char(name) || name.len() > MAX_MEASURE_NAME_BYTES {
        return Err(Invalid::new(
            Reason::InvalidMeasureName,
            "measure names must be 1-256 bytes without control characters",
        ));
    }
    if is_reserved_name(name) {
        return Err(Invalid::new(
            Reason::ReservedName,
            format!("measure name {name:?} is reserved"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_accept_only_the_table_name_alphabet() {
        for ok in ["acme", "acme-prod", "a.b_c-D9", &"x".repeat(256)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "",
            "acme prod",
            "acme/prod",
            "ácme",
            "acme\0",
            "...",
            &"x".repeat(257),
            "a'b",
        ] {
            assert_eq!(
                TenantId::parse(bad).unwrap_err().reason,
                Reason::InvalidTenantId,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn metric_names_accept_only_identifier_bytes() {
        assert!(MetricName::parse("a").is_ok());
        assert!(MetricName::parse("findings_upload_completed").is_ok());
        for bad in ["", "with space", "quote\"", "ü", &"m".repeat(257)] {
            assert_eq!(
                MetricName::parse(bad).unwrap_err().reason,
                Reason::InvalidMetricName
            );
        }
    }

    #[test]
    fn control_characters_are_found_anywhere_in_any_length() {
        for len in 0..24 {
            let plain = "a".repeat(len);
            assert!(!has_control_char(&plain), "{len}");
            for at in 0..len {
                for control in ["\u{0}", "\u{1f}", "\u{7f}", "\u{85}", "\u{9f}"] {
                    let text = format!("{}{control}{}", &plain[..at], &plain[at + 1..]);
                    assert!(has_control_char(&text), "{text:?}");
                }
                for fine in ["~", " ", "é", "\u{a0}", "\u{10ffff}", "\u{7e}"] {
                    let text = format!("{}{fine}{}", &plain[..at], &plain[at + 1..]);
                    assert!(!has_control_char(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn the_identifier_table_matches_its_definition() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
            assert_eq!(is_safe_identifier_byte(b), expected, "{b}");
        }
    }

    #[test]
    fn reserved_names_are_caught_in_any_case() {
        for name in [
            "time",
            "TIME",
            "measure_name",
            "measure_value",
            "measure_value::double",
            "ts_x",
            "TS_",
        ] {
            assert!(is_reserved_name(name), "{name}");
        }
        for name in ["times", "event_time", "measure", "its_fine"] {
            assert!(!is_reserved_name(name), "{name}");
        }
    }
}
