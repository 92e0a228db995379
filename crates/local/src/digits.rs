//! Numbers written into names and timestamps without `format!`: a run writes several per
//! event (record ids, object keys, the sample's ids and times), and the formatting machinery
//! was a visible part of its profile.

use metrics_schema::json::decimal_digits;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in decimal, zero-padded on the left to at least `width` digits.
pub(crate) fn push_decimal(out: &mut String, n: u64, width: usize) {
    let mut buf = [0u8; 20];
    let digits = decimal_digits(n, &mut buf);
    for _ in digits.len()..width {
        out.push('0');
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Appends the last `width` hex digits of `n` (lower case, zero-padded), most significant
/// first.
pub(crate) fn push_hex(out: &mut String, n: u128, width: usize) {
    for i in (0..width.min(32)).rev() {
        out.push(char::from(HEX[((n >> (4 * i)) & 0xf) as usize]));
    }
}

/// `YYYY<d>MM<d>DD<t>HH<c>MM<c>SS`: a civil time with the separators of one format.
pub(crate) fn push_civil(
    out: &mut String,
    c: &metrics_schema::time::Civil,
    [date, between, clock]: [char; 3],
) {
    push_decimal(out, u64::try_from(c.year).unwrap_or(0), 4);
    out.push(date);
    push_decimal(out, u64::from(c.month), 2);
    out.push(date);
    push_decimal(out, u64::from(c.day), 2);
    out.push(between);
    push_decimal(out, u64::from(c.hour), 2);
    out.push(clock);
    push_decimal(out, u64::from(c.minute), 2);
    out.push(clock);
    push_decimal(out, u64::from(c.second), 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_padded_as_format_pads_them() {
        for (n, width) in [
            (0, 1),
            (0, 4),
            (7, 2),
            (42, 2),
            (123, 2),
            (2026, 4),
            (u64::MAX, 20),
            (u64::MAX, 25),
            (5, 0),
        ] {
            let mut out = String::new();
            push_decimal(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$}"));
        }
    }

    #[test]
    fn hex_digits_are_the_last_ones_zero_padded() {
        for (n, width) in [
            (0u128, 4),
            (0xabc, 4),
            (0x1234_5678_9abc, 12),
            (u128::MAX, 32),
            (0xfedcba, 2),
        ] {
            let mut out = String::new();
            push_hex(&mut out, n, width);
            let full = format!("{n:032x}");
            assert_eq!(out, full[32 - width..]);
        }
    }

    #[test]
    fn civil_times_take_the_separators_given() {
        let c = metrics_schema::EventTime::from_millis(1_795_435_207_000)
            .civil()
            .unwrap();
        let mut out = String::new();
        push_civil(&mut out, &c, ['-', 'T', ':']);
        assert_eq!(out, "2026-11-23T12:00:07");
        out.clear();
        push_civil(&mut out, &c, ['-', '-', '-']);
        assert_eq!(out, "2026-11-23-12-00-07");
    }
}
