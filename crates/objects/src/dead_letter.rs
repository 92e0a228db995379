//! Dead letters: records a consumer could not deliver, written next to the data as NDJSON
//! with their reason, so a person can find, count and replay them.

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use serde::Serialize;

use crate::key::derived_key;
use crate::trigger::ObjectRef;

/// One record that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The stage that gave up: `writer`, `forwarder`.
    pub stage: &'static str,
    /// Stable reason code.
    pub reason: String,
    /// Human-readable detail (never credentials).
    pub detail: String,
    pub source_bucket: String,
    pub source_key: String,
    /// 1-based line in the decompressed source object, when the failure is about one record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The destination that refused it (forwarder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The record as read: its text, or base64 when it is not UTF-8 (see `record_encoding`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_encoding: Option<&'static str>,
}

impl DeadLetter {
    /// A dead letter for one record of `source`.
    pub fn for_record(
        stage: &'static str,
        reason: impl Into<String>,
        detail: impl Into<String>,
        source: &ObjectRef,
        line: Option<usize>,
        record: Option<&[u8]>,
    ) -> DeadLetter {
        let (record, record_encoding) = match record.map(std::str::from_utf8) {
            None => (None, None),
            Some(Ok(text)) => (Some(text.to_owned()), None),
            Some(Err(_)) => (
                record.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
                Some("base64"),
            ),
        };
        DeadLetter {
            stage,
            reason: reason.into(),
            detail: detail.into(),
            source_bucket: source.bucket.clone(),
            source_key: source.key.clone(),
            line,
            destination: None,
            record,
            record_encoding,
        }
    }
}

/// The dead-letter key for a source object: the same source always maps to the same key, so
/// processing an object again overwrites its dead letters instead of adding copies.
/// `prefix` is e.g. `Error/writer/`; the result is `Error/writer/<source key>.ndjson`, shortened
/// with a hash of the source key when that would pass S3's key limit ([`derived_key`]).
pub fn dead_letter_key(prefix: &str, source: &ObjectRef) -> String {
    derived_key(prefix, &source.key, ".ndjson")
}

/// Dead letters as NDJSON.
pub fn to_ndjson(items: &[DeadLetter]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        // Serialising plain strings and integers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, item);
        out.push(b'\n');
    }
    out
}

#[derive(Debug, thiserror::Error)]
#[error("writing dead letters to s3://{bucket}/{key} failed: {message}")]
pub struct DeadLetterError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// Writes dead letters as one NDJSON object. Nothing is written for an empty list.
pub async fn put_dead_letters(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    items: &[DeadLetter],
) -> Result<(), DeadLetterError> {
    if items.is_empty() {
        return Ok(());
    }
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/x-ndjson")
        .body(ByteStream::from(to_ndjson(items)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| DeadLetterError {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })
}
