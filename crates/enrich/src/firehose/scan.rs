//! Reading a Firehose event of the usual shape without serde: string members at the top level
//! and `records`, each record exactly `recordId`, `approximateArrivalTimestamp` (a whole number
//! of milliseconds) and `data`, in any order, nothing escaped. The record ids and data are
//! borrowed as serde borrows them; `data` is found with a vectorised search, as serde finds it.
//!
//! It answers only where it is sure to give what serde gives; anything else (another member
//! in a record, a nested value at the top level, an escape, a fraction, a repeated member,
//! malformed input) gives `None`, and [`super::FirehoseEvent::from_json`] hands the event to
//! serde, which also says what is wrong with a malformed one.

use std::borrow::Cow;

use super::{ArrivalTime, FirehoseEvent, FirehoseRecord};

/// The event's records, when `bytes` is an event of the usual shape.
pub(super) fn scan_event(bytes: &[u8]) -> Option<FirehoseEvent<'_>> {
    let mut scan = Scanner { bytes, at: 0 };
    scan.expect(b'{')?;
    let mut records = None;
    if !scan.eat(b'}') {
        loop {
            let key = scan.string_bytes()?;
            // serde checks a name it decodes for UTF-8; one in ASCII needs no check.
            if !key.is_ascii() {
                return None;
            }
            scan.expect(b':')?;
            if key == b"records" {
                if records.is_some() {
                    return None;
                }
                records = Some(scan.records()?);
            } else {
                // Any other member: only a plain string is stepped over here.
                scan.expect(b'"')?;
                let text = scan.rest_of_string()?;
                if !text.iter().all(|&b| (0x20..0x80).contains(&b)) {
                    return None;
                }
            }
            if scan.eat(b'}') {
                break;
            }
            scan.expect(b',')?;
        }
    }
    scan.skip_whitespace();
    (scan.at == bytes.len()).then_some(FirehoseEvent {
        records: records.unwrap_or_default(),
    })
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn skip_whitespace(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Whitespace, then `byte` if it is next: whether it was.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let next = self.bytes.get(self.at) == Some(&byte);
        if next {
            self.at += 1;
        }
        next
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A string's bytes between its quotes (`at` just after the opening one), when it holds
    /// no backslash; past its closing quote.
    fn rest_of_string(&mut self) -> Option<&'a [u8]> {
        let rest = self.bytes.get(self.at..)?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// Whitespace, then a string without escapes or control characters: its bytes.
    fn string_bytes(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let text = self.rest_of_string()?;
        // No early exit, so the check compiles to wide compares.
        let control = text.iter().fold(false, |acc, &b| acc | (b < 0x20));
        (!control).then_some(text)
    }

    /// `[` record, … `]`.
    fn records(&mut self) -> Option<Vec<FirehoseRecord<'a>>> {
        self.expect(b'[')?;
        // A record takes some 100 bytes at the least; a guess that avoids most regrowing.
        let mut records = Vec::with_capacity((self.bytes.len() - self.at) / 256 + 1);
        if self.eat(b']') {
            return Some(records);
        }
        loop {
            records.push(self.record()?);
            if self.eat(b']') {
                return Some(records);
            }
            self.expect(b',')?;
        }
    }

    /// One record: its three members, each once, in any order.
    fn record(&mut self) -> Option<FirehoseRecord<'a>> {
        self.expect(b'{')?;
        let (mut record_id, mut arrival, mut data) = (None, None, None);
        loop {
            let key = self.string_bytes()?;
            self.expect(b':')?;
            match key {
                b"recordId" if record_id.is_none() => {
                    // serde checks a string it decodes for UTF-8.
                    record_id = Some(std::str::from_utf8(self.string_bytes()?).ok()?);
                }
                b"approximateArrivalTimestamp" if arrival.is_none() => {
                    arrival = Some(self.millis()?);
                }
                b"data" if data.is_none() => {
                    // Read as bytes, as serde reads it (`base64_text`): control characters
                    // are left to the decoder; the text must be UTF-8.
                    self.expect(b'"')?;
                    data = Some(std::str::from_utf8(self.rest_of_string()?).ok()?);
                }
                _ => return None,
            }
            if self.eat(b'}') {
                break;
            }
            self.expect(b',')?;
        }
        Some(FirehoseRecord {
            record_id: Cow::Borrowed(record_id?),
            approximate_arrival_timestamp: arrival.unwrap_or_default(),
            data: Cow::Borrowed(data?),
        })
    }

    /// A whole number of milliseconds, 1 to 18 digits without a leading zero (or `0`).
    fn millis(&mut self) -> Option<ArrivalTime> {
        self.skip_whitespace();
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        let fraction = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        if digits.is_empty() || digits.len() > 18 || leading_zero || fraction {
            return None;
        }
        let millis = digits.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Some(ArrivalTime(Some(millis)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn records(event: &FirehoseEvent<'_>) -> Vec<(String, Option<i64>, String)> {
        event
            .records
            .iter()
            .map(|r| {
                (
                    r.record_id.to_string(),
                    r.approximate_arrival_timestamp.0,
                    r.data.to_string(),
                )
            })
            .collect()
    }

    /// The scanner either leaves the event to serde or reads what serde reads: whether it
    /// answered.
    fn agrees(bytes: &[u8]) -> bool {
        let slow: Result<FirehoseEvent<'_>, _> = serde_json::from_slice(bytes);
        let Some(fast) = scan_event(bytes) else {
            return false;
        };
        match slow {
            Ok(slow) => assert_eq!(
                records(&fast),
                records(&slow),
                "{}",
                String::from_utf8_lossy(bytes)
            ),
            Err(e) => panic!(
                "scanned what serde refuses ({e}): {}",
                String::from_utf8_lossy(bytes)
            ),
        }
        true
    }

    #[test]
    fn usual_events_are_scanned_as_serde_reads_them() {
        for event in [
            r#"{"invocationId": "i", "records": [{"recordId": "1", "approximateArrivalTimestamp": 1795651200000, "data": "e30="}]}"#,
            r#"{"records":[]}"#,
            r#" { } "#,
            "{\"records\":[{\"data\":\"e\u{1}=\",\"recordId\":\"é\",\"approximateArrivalTimestamp\":0},{\"recordId\":\"2\",\"data\":\"\"}]}",
        ] {
            assert!(agrees(event.as_bytes()), "{event}");
        }
    }

    #[test]
    fn unusual_and_malformed_events_are_left_to_serde() {
        for event in [
            &br#"{"records":[{"recordId":"1","data":"e30=","kinesisRecordMetadata":{}}]}"#[..],
            br#"{"records":[{"recordId":"\u0031","data":"e30="}]}"#,
            br#"{"records":[{"recordId":"1","data":"e\/30="}]}"#,
            br#"{"records":[{"recordId":"1","data":"e30=","data":"e30="}]}"#,
            br#"{"records":[{"recordId":"1","approximateArrivalTimestamp":1.5,"data":"e30="}]}"#,
            br#"{"records":[{"recordId":"1","approximateArrivalTimestamp":-1,"data":"e30="}]}"#,
            br#"{"records":[{"recordId":"1","approximateArrivalTimestamp":01,"data":"e30="}]}"#,
            br#"{"records":[{"recordId":"1","approximateArrivalTimestamp":null,"data":"e30="}]}"#,
            br#"{"records":[{"recordId":"1"}]}"#,
            br#"{"records":[],"records":[]}"#,
            br#"{"records":null}"#,
            br#"{"region":{"a":1},"records":[]}"#,
            br#"{"records":[{"recordId":"1","data":"e30="},]}"#,
            br#"{"records":[]} x"#,
            b"{\"records\":[{\"recordId\":\"\xff\",\"data\":\"e30=\"}]}",
            b"{\"records\":[{\"recordId\":\"1\",\"data\":\"e\xff\"}]}",
            b"{\"records\":[{\"recordId\":\"a\x01\",\"data\":\"e30=\"}]}",
        ] {
            assert!(!agrees(event), "{}", String::from_utf8_lossy(event));
        }
    }

    fn member() -> impl Strategy<Value = String> {
        let text = prop::sample::select(vec!["", "1", "e30=", "a\\u0041", "é", "a\u{1}", "\\\"", "x y"]);
        let millis = prop::sample::select(vec![
            "0",
            "1795651200000",
            "01",
            "-5",
            "1.5",
            "1e3",
            "null",
            "\"t\"",
        ]);
        prop_oneof![
            text.clone().prop_map(|t| format!("\"recordId\":\"{t}\"")),
            millis.prop_map(|m| format!("\"approximateArrivalTimestamp\":{m}")),
            text.prop_map(|t| format!("\"data\":\"{t}\"")),
            Just("\"other\":{}".to_owned()),
        ]
    }

    fn event() -> impl Strategy<Value = String> {
        let record = prop::collection::vec(member(), 0..5).prop_map(|m| format!("{{{}}}", m.join(",")));
        let space = prop::sample::select(vec!["", " ", "\n"]);
        (prop::collection::vec(record, 0..4), space, any::<bool>()).prop_map(|(records, s, extra)| {
            let head = if extra {
                format!("\"invocationId\":{s}\"x\",")
            } else {
                String::new()
            };
            format!(
                "{s}{{{head}\"records\":{s}[{s}{}{s}]{s}}}{s}",
                records.join(&format!(",{s}"))
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn the_scanner_reads_what_serde_reads_or_leaves_it(event in event()) {
            agrees(event.as_bytes());
        }

        #[test]
        fn damaged_events_are_never_read_differently(
            event in event(),
            at in any::<usize>(),
            byte in prop::sample::select(b"\"\\{}[],:0-.eE \x01\xff9a".to_vec()),
            how in 0..3u8,
        ) {
            let mut bytes = event.into_bytes();
            let at = at % (bytes.len() + 1);
            match how {
                0 => bytes.truncate(at),
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
            agrees(&bytes);
        }
    }
}
