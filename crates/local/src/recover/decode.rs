//! Reading the bucket's error objects back into records: Firehose's processing-failed wrappers,
//! the consumers' dead letters, and a local run's rejected input. Pure: bytes in, records out.
//! A line that cannot be read is a record too (`corrupt_error_record`), so nothing in an error
//! object is skipped without a trace.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use metrics_objects::ReadLimits;
use metrics_objects::read::records;
use serde::Deserialize;

/// Error objects hold whole records, base64-encoded in Firehose's wrapper (4/3 of a
/// 1,000 KiB record): read lines up to 4 MiB.
const ERROR_READ_LIMITS: ReadLimits = ReadLimits {
    max_compressed_bytes: 128 * 1024 * 1024,
    max_decompressed_bytes: 1024 * 1024 * 1024,
    max_record_bytes: 4 * 1024 * 1024,
};

/// Firehose's wrapper for a record its Lambda processor failed, one JSON line each in
/// `Error/processing-failed/…` (fields as documented in "Handle failure in data
/// transformation", <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcessingFailed {
    #[serde(rename = "attemptsMade", default)]
    pub attempts_made: u32,
    #[serde(rename = "arrivalTimestamp", default)]
    pub arrival_timestamp: Option<i64>,
    #[serde(rename = "errorCode", default)]
    pub error_code: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
    #[serde(rename = "attemptEndingTimestamp", default)]
    pub attempt_ending_timestamp: Option<i64>,
    #[serde(rename = "rawData")]
    pub raw_data: String,
}

/// A dead letter as written by `metrics_objects::dead_letter::DeadLetter`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoredLetter {
    pub stage: String,
    pub reason: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub source_bucket: String,
    #[serde(default)]
    pub source_key: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub record_encoding: Option<String>,
}

impl StoredLetter {
    /// The record's bytes, decoded from base64 when it was not UTF-8.
    pub fn record_bytes(&self) -> Option<Vec<u8>> {
        let record = self.record.as_ref()?;
        match self.record_encoding.as_deref() {
            Some("base64") => B64.decode(record).ok(),
            _ => Some(record.as_bytes().to_vec()),
        }
    }
}

/// One line of an error object, decoded, or why it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<T> {
    /// 1-based line in the (decompressed) object.
    pub line: u64,
    pub item: Result<T, Corrupt>,
}

/// A line (or the rest of an object) that is not what its prefix promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub detail: String,
    /// The line as read, when there is one.
    pub bytes: Vec<u8>,
}

/// Reads every line of an error object (gzip or not) as `T`.
pub fn lines<T: for<'de> Deserialize<'de>>(object: &[u8]) -> Vec<Line<T>> {
    let mut out = Vec::new();
    for record in records(object, &ERROR_READ_LIMITS) {
        match record {
            Ok(record) => out.push(Line {
                line: record.line as u64,
                item: serde_json::from_slice(&record.bytes).map_err(|e| Corrupt {
                    detail: format!("not a valid error record: {e}"),
                    bytes: record.bytes,
                }),
            }),
            Err(error) => out.push(Line {
                line: error.line().unwrap_or(0) as u64,
                item: Err(Corrupt {
                    detail: format!("the error object cannot be read: {error}"),
                    bytes: Vec::new(),
                }),
            }),
        }
    }
    out
}

impl ProcessingFailed {
    /// The record Firehose handed the processor.
    pub fn data(&self) -> Result<Vec<u8>, Corrupt> {
        B64.decode(&self.raw_data).map_err(|e| Corrupt {
            detail: format!("rawData is not base64: {e}"),
            bytes: self.raw_data.as_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrappers_and_keeps_corrupt_lines() {
        let data = B64.encode(br#"{"metric":"m","event":{}}"#);
        let object = format!(
            "{{\"attemptsMade\":1,\"arrivalTimestamp\":5,\"errorCode\":\"Lambda.ProcessingFailedStatus\",\"errorMessage\":\"x\",\"attemptEndingTimestamp\":6,\"rawData\":\"{data}\",\"lambdaArn\":\"arn\"}}\nnot json\n"
        );
        let lines: Vec<Line<ProcessingFailed>> = lines(object.as_bytes());
        assert_eq!(lines.len(), 2);
        let first = lines[0].item.as_ref().unwrap();
        assert_eq!(first.data().unwrap(), br#"{"metric":"m","event":{}}"#);
        assert_eq!(first.arrival_timestamp, Some(5));
        let corrupt = lines[1].item.as_ref().unwrap_err();
        assert_eq!((lines[1].line, corrupt.bytes.as_slice()), (2, &b"not json"[..]));
    }

    #[test]
    fn a_truncated_gzip_object_is_a_corrupt_line_not_nothing() {
        let lines: Vec<Line<StoredLetter>> = lines(&[0x1f, 0x8b, 8, 0, 0, 0]);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0]
                .item
                .as_ref()
                .unwrap_err()
                .detail
                .contains("cannot be read")
        );
    }

    #[test]
    fn base64_letters_decode_to_their_bytes() {
        let letter: StoredLetter = serde_json::from_str(
            r#"{"stage":"writer","reason":"r","source_key":"k","record":"/w==","record_encoding":"base64"}"#,
        )
        .unwrap();
        assert_eq!(letter.record_bytes().unwrap(), vec![0xff]);
    }
}
