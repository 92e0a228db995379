//! Firehose data-transformation wire types: the event Firehose sends, and the response written
//! straight into one buffer.
//!
//! The event deserialises into records that borrow from its bytes, with only the fields the
//! transform reads (other fields such as `invocationId` or `kinesisRecordMetadata` are skipped
//! without being built).
//! The response is never a tree of values: [`ResponseWriter`] appends each record's JSON to one
//! buffer, and [`FirehoseResponse`] is those bytes, posted to the Runtime API as they are. The
//! writer is the only way to build one, and it escapes every string it did not produce, so the
//! response is JSON by construction (the contract and property tests parse every response).
//!
//! Contract (AWS "data transformation status model"): every input `recordId` exactly once, in
//! input order; `result` is exactly `Ok`, `Dropped` or `ProcessingFailed`; `data` is always
//! present and base64.

use std::borrow::Cow;
use std::fmt;

use base64_simd::STANDARD as BASE64;
use metrics_schema::json::write_str;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

mod scan;

/// The event Firehose sends to a transformation Lambda, borrowing from its JSON: record ids
/// and base64 data hold no escapes, so no record is copied.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FirehoseEvent<'a> {
    #[serde(default, borrow)]
    pub records: Vec<FirehoseRecord<'a>>,
}

impl<'a> FirehoseEvent<'a> {
    /// Parses an event. Only the strings kept are checked for UTF-8: record ids by the parser,
    /// `data` as it is read (see `base64_text`).
    ///
    /// An event of the usual shape is read by a scanner ([`scan`]) that finds the same
    /// records without serde's per-member work; serde reads any other.
    pub fn from_json(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        if let Some(event) = scan::scan_event(bytes) {
            return Ok(event);
        }
        serde_json::from_slice(bytes)
    }

    /// The same event, owning its strings.
    pub fn into_owned(self) -> FirehoseEvent<'static> {
        FirehoseEvent {
            records: self.records.into_iter().map(FirehoseRecord::into_owned).collect(),
        }
    }
}

/// One buffered record.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseRecord<'a> {
    #[serde(borrow)]
    pub record_id: Cow<'a, str>,
    /// When Firehose received the record, epoch milliseconds.
    #[serde(default)]
    pub approximate_arrival_timestamp: ArrivalTime,
    /// The producer's bytes, base64.
    #[serde(borrow, deserialize_with = "base64_text")]
    pub data: Cow<'a, str>,
}

/// `data`, read as the raw text between its quotes. serde_json then finds the closing quote
/// with a vectorised search instead of checking every byte for control characters: a batch
/// is megabytes of base64, so that check was half the cost of reading the event. The text is
/// checked for UTF-8 here. Text that is not base64 (a control character included) is found by
/// the decoder, and echoed escaped.
fn base64_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'de, str>, D::Error> {
    struct TextVisitor;

    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Cow<'de, str>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
            std::str::from_utf8(v).map(Cow::Borrowed).map_err(E::custom)
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            std::str::from_utf8(v)
                .map(|s| Cow::Owned(s.to_owned()))
                .map_err(E::custom)
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
    }

    deserializer.deserialize_bytes(TextVisitor)
}

impl FirehoseRecord<'_> {
    /// A record owning its strings.
    pub fn new(
        record_id: impl Into<String>,
        approximate_arrival_timestamp: ArrivalTime,
        data: impl Into<String>,
    ) -> FirehoseRecord<'static> {
        FirehoseRecord {
            record_id: Cow::Owned(record_id.into()),
            approximate_arrival_timestamp,
            data: Cow::Owned(data.into()),
        }
    }

    pub fn into_owned(self) -> FirehoseRecord<'static> {
        FirehoseRecord {
            record_id: Cow::Owned(self.record_id.into_owned()),
            approximate_arrival_timestamp: self.approximate_arrival_timestamp,
            data: Cow::Owned(self.data.into_owned()),
        }
    }
}

/// `approximateArrivalTimestamp`: an integer of epoch milliseconds. A float is truncated; an
/// absent, null, string or negative value gives no arrival time (it only feeds `ingest_time`),
/// so an odd timestamp never fails a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArrivalTime(pub Option<i64>);

impl<'de> Deserialize<'de> for ArrivalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MillisVisitor;

        impl Visitor<'_> for MillisVisitor {
            type Value = ArrivalTime;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ArrivalTime, E> {
                Ok(ArrivalTime((v >= 0).then_some(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ArrivalTime, E> {
                Ok(ArrivalTime(i64::try_from(v).ok()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ArrivalTime, E> {
                // `as` saturates; the range check keeps NaN and negatives out.
                Ok(ArrivalTime((v.is_finite() && v >= 0.0).then_some(v as i64)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<ArrivalTime, E> {
                Ok(ArrivalTime(None))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<ArrivalTime, E> {
                Ok(ArrivalTime(None))
            }
        }

        deserializer.deserialize_any(MillisVisitor)
    }
}

/// A record's outcome. Serialised as exactly `Ok`, `Dropped` or `ProcessingFailed` (the
/// `aws_lambda_events` type is a free string and its fixture says `TRANSFORMED_STATE_OK`, which
/// Firehose rejects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FirehoseResult {
    Ok,
    Dropped,
    ProcessingFailed,
}

impl FirehoseResult {
    pub const ALL: [FirehoseResult; 3] = [
        FirehoseResult::Ok,
        FirehoseResult::Dropped,
        FirehoseResult::ProcessingFailed,
    ];

    /// The wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            FirehoseResult::Ok => "Ok",
            FirehoseResult::Dropped => "Dropped",
            FirehoseResult::ProcessingFailed => "ProcessingFailed",
        }
    }

    /// `,"result":"…","data":` — the bytes between a record's id and its data.
    const fn infix(self) -> &'static [u8] {
        match self {
            FirehoseResult::Ok => b",\"result\":\"Ok\",\"data\":",
            FirehoseResult::Dropped => b",\"result\":\"Dropped\",\"data\":",
            FirehoseResult::ProcessingFailed => b",\"result\":\"ProcessingFailed\",\"data\":",
        }
    }
}

impl fmt::Display for FirehoseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds `{"records":[…]}` record by record into one buffer.
#[derive(Debug)]
pub struct ResponseWriter {
    out: Vec<u8>,
    records: usize,
}

impl ResponseWriter {
    /// Writes into `buffer`, cleared first, keeping its allocation (pass `Vec::new()` for a
    /// new one). `capacity`: the expected response size, so the buffer is allocated at most
    /// once.
    pub fn in_buffer(mut buffer: Vec<u8>, capacity: usize) -> Self {
        buffer.clear();
        if buffer.capacity() < capacity {
            // Too small: one allocation of the expected size, rather than growing this one
            // (which could double it, and copies what it held).
            buffer = Vec::with_capacity(capacity);
        }
        buffer.extend_from_slice(b"{\"records\":[");
        ResponseWriter {
            out: buffer,
            records: 0,
        }
    }

    fn begin(&mut self, record_id: &str, result: FirehoseResult) {
        if self.records > 0 {
            self.out.push(b',');
        }
        self.records += 1;
        self.out.extend_from_slice(b"{\"recordId\":");
        write_str(&mut self.out, record_id);
        self.out.extend_from_slice(result.infix());
    }

    /// An `Ok` record: `payload` is base64-encoded into the response.
    pub fn push_ok(&mut self, record_id: &str, payload: &[u8]) {
        self.begin(record_id, FirehoseResult::Ok);
        self.out.push(b'"');
        BASE64.encode_append(payload, &mut self.out);
        self.out.extend_from_slice(b"\"}");
    }

    /// A `Dropped` or `ProcessingFailed` record with the data exactly as Firehose sent it.
    /// Valid base64 needs no JSON escaping; anything else is escaped so the response stays JSON.
    pub fn push_original(&mut self, record_id: &str, result: FirehoseResult, original: &str) {
        self.begin(record_id, result);
        write_str(&mut self.out, original);
        self.out.push(b'}');
    }

    /// Bytes written so far, with the closing brackets.
    pub fn len(&self) -> usize {
        self.out.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Closes the JSON document.
    pub fn finish(mut self) -> FirehoseResponse {
        self.out.extend_from_slice(b"]}");
        FirehoseResponse(self.out)
    }
}

/// A transformation response: the JSON [`ResponseWriter`] built (UTF-8, since every byte came
/// from a `&str` or is base64), sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseResponse(Vec<u8>);

impl FirehoseResponse {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_serialise_only_to_the_three_values_firehose_accepts() {
        for result in FirehoseResult::ALL {
            // Exhaustive: a new variant must be added here and to the accepted set.
            let expected = match result {
                FirehoseResult::Ok => "Ok",
                FirehoseResult::Dropped => "Dropped",
                FirehoseResult::ProcessingFailed => "ProcessingFailed",
            };
            assert_eq!(serde_json::to_string(&result).unwrap(), format!("\"{expected}\""));
            assert_eq!(result.as_str(), expected);
            let infix = std::str::from_utf8(result.infix()).unwrap();
            assert_eq!(infix, format!(",\"result\":\"{expected}\",\"data\":"));
            assert_ne!(result.as_str(), "TRANSFORMED_STATE_OK");
        }
    }

    #[test]
    fn written_response_is_json_with_one_entry_per_push_in_order() {
        let mut writer = ResponseWriter::in_buffer(Vec::new(), 0);
        writer.push_ok("a\"1", b"{}\n");
        writer.push_original("b", FirehoseResult::Dropped, "eyJ4IjoxfQ==");
        writer.push_original("c", FirehoseResult::ProcessingFailed, "not base64 \"quoted\"");
        let response = writer.finish();
        let parsed: serde_json::Value = serde_json::from_slice(response.as_bytes()).unwrap();
        let records = parsed["records"].as_array().unwrap();
        let ids: Vec<&str> = records.iter().map(|r| r["recordId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a\"1", "b", "c"]);
        assert_eq!(records[0]["result"], "Ok");
        assert_eq!(records[0]["data"], "e30K");
        assert_eq!(records[1]["data"], "eyJ4IjoxfQ==");
        assert_eq!(records[2]["data"], "not base64 \"quoted\"");
        assert_eq!(records[2]["result"], "ProcessingFailed");
    }

    #[test]
    fn empty_response_is_an_empty_records_array() {
        let response = ResponseWriter::in_buffer(Vec::new(), 0).finish();
        assert_eq!(response.into_bytes(), br#"{"records":[]}"#);
    }

    #[test]
    fn arrival_time_accepts_integers_floats_and_absence() {
        let parse = |json: &str| {
            serde_json::from_str::<FirehoseRecord>(json)
                .unwrap()
                .approximate_arrival_timestamp
        };
        assert_eq!(
            parse(r#"{"recordId":"1","data":"","approximateArrivalTimestamp":1795428000000}"#).0,
            Some(1_795_428_000_000)
        );
        assert_eq!(
            parse(r#"{"recordId":"1","data":"","approximateArrivalTimestamp":1.5e12}"#).0,
            Some(1_500_000_000_000)
        );
        assert_eq!(
            parse(r#"{"recordId":"1","data":"","approximateArrivalTimestamp":-4}"#).0,
            None
        );
        assert_eq!(parse(r#"{"recordId":"1","data":""}"#).0, None);
        assert_eq!(
            parse(r#"{"recordId":"1","data":"","approximateArrivalTimestamp":"soon"}"#).0,
            None
        );
        assert_eq!(
            parse(r#"{"recordId":"1","data":"","approximateArrivalTimestamp":null}"#).0,
            None
        );
    }

    #[test]
    fn parsed_events_borrow_their_records_and_owned_ones_do_not() {
        let json = br#"{"records":[{"recordId":"r1","data":"e30="},{"recordId":"r\u0032","data":"e30="}]}"#;
        let event = FirehoseEvent::from_json(json).unwrap();
        assert!(matches!(event.records[0].record_id, Cow::Borrowed("r1")));
        assert!(matches!(event.records[0].data, Cow::Borrowed("e30=")));
        // An escaped id cannot be borrowed, and still reads right.
        assert_eq!(event.records[1].record_id, "r2");
        let owned = event.into_owned();
        assert!(matches!(owned.records[0].record_id, Cow::Owned(_)));
        assert!(FirehoseEvent::from_json(b"{\"records\":[\xff]}").is_err());
    }

    #[test]
    fn data_is_read_as_the_text_between_its_quotes() {
        // Escapes are decoded (and the text owned); a raw control character, which strict JSON
        // forbids, is kept, so the decoder rejects that one record instead of the whole batch.
        let json = "{\"records\":[{\"recordId\":\"a\",\"data\":\"e30\\u003d\"},\
                    {\"recordId\":\"b\",\"data\":\"e3\t0=\"},{\"recordId\":\"c\",\"data\":7}]}";
        assert!(
            FirehoseEvent::from_json(json.as_bytes()).is_err(),
            "data must be a string"
        );
        let json = json.replace(",{\"recordId\":\"c\",\"data\":7}", "");
        let event = FirehoseEvent::from_json(json.as_bytes()).unwrap();
        assert!(matches!(&event.records[0].data, Cow::Owned(d) if d == "e30="));
        assert_eq!(event.records[1].data, "e3\t0=");
        // Bytes that are not UTF-8 cannot be echoed in a JSON response: the event is refused.
        assert!(
            FirehoseEvent::from_json(b"{\"records\":[{\"recordId\":\"a\",\"data\":\"e\xff\"}]}").is_err()
        );
        assert!(
            FirehoseEvent::from_json(b"{\"records\":[{\"recordId\":\"\xff\",\"data\":\"e30=\"}]}").is_err()
        );

        let mut writer = ResponseWriter::in_buffer(Vec::new(), 0);
        writer.push_original("b", FirehoseResult::ProcessingFailed, &event.records[1].data);
        let response: serde_json::Value = serde_json::from_slice(writer.finish().as_bytes()).unwrap();
        assert_eq!(response["records"][0]["data"], "e3\t0=");
    }

    #[test]
    fn event_ignores_fields_it_does_not_use() {
        let event: FirehoseEvent = serde_json::from_str(
            r#"{"invocationId":"i","deliveryStreamArn":"arn","region":"us-east-1","records":[
                {"recordId":"r","approximateArrivalTimestamp":1,"data":"e30=",
                 "kinesisRecordMetadata":{"shardId":"s","partitionKey":"p"}}]}"#,
        )
        .unwrap();
        assert_eq!(event.records.len(), 1);
        assert_eq!(event.records[0].data, "e30=");
    }
}
