//! Dead letters: records a consumer could not deliver, written next to the data as NDJSON
//! with their reason, so a person can find, count and replay them.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use metrics_schema::{ReasonCode, Stage};
use serde::Serialize;

use crate::key::derived_key;
use crate::trigger::ObjectRef;

/// One record that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The stage that gave up: `writer`, `forwarder`.
    pub stage: Stage,
    /// Stable reason code.
    pub reason: ReasonCode,
    /// Human-readable detail (never credentials).
    pub detail: String,
    pub source_bucket: String,
    pub source_key: String,
    /// 1-based line in the decompressed source object, when the failure is about one record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The record's tenant, when it has a valid one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
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
        stage: Stage,
        reason: impl Into<ReasonCode>,
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
            tenant_id: None,
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

/// Appends one dead letter as an NDJSON line.
pub fn encode(letter: &DeadLetter, out: &mut Vec<u8>) {
    // Serialising plain strings and integers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, letter);
    out.push(b'\n');
}

/// Dead letters as NDJSON.
pub fn to_ndjson(items: &[DeadLetter]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        encode(item, &mut out);
    }
    out
}

/// Where one object's dead letters go, one at a time, so memory stays bounded whatever their
/// number. Every letter of an object goes to one sink, which is then finished: its letters
/// replace any stored earlier for the same object (processing an object again never adds
/// copies). A sink finished with no letters writes nothing.
pub trait DeadLetterSink {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Adds one letter; may store a part of the letters so far.
    fn push(&mut self, letter: &DeadLetter) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stores the rest and makes the letters visible; returns how many were stored.
    fn finish(self) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Gives up: nothing pushed becomes visible, and what was stored earlier stays.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// Letters kept in memory, unbounded: for tests and benchmarks, never for a function.
impl DeadLetterSink for Vec<DeadLetter> {
    type Error = std::convert::Infallible;

    async fn push(&mut self, letter: &DeadLetter) -> Result<(), Self::Error> {
        Vec::push(self, letter.clone());
        Ok(())
    }

    async fn finish(self) -> Result<u64, Self::Error> {
        Ok(self.len() as u64)
    }

    async fn abort(self) {}
}

#[derive(Debug, thiserror::Error)]
#[error("writing dead letters to s3://{bucket}/{key} failed: {message}")]
pub struct DeadLetterError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// Bytes of dead letters sent per part. S3 takes parts of 5 MiB to 5 GiB, the last one
/// smaller, and at most 10,000 parts (80 GB here, far more than the read limits let an object
/// produce): <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Dead letters streamed to one S3 object. Up to one part's worth they are sent in a single
/// `PutObject` when finished; past that, a multipart upload starts and each full part is sent
/// as it fills, so at most one part is held. Completing the upload replaces the object at the
/// key, as `PutObject` does.
#[derive(Debug)]
pub struct S3DeadLetters {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    part_bytes: usize,
    buffer: Vec<u8>,
    upload: Option<Upload>,
    letters: u64,
}

#[derive(Debug)]
struct Upload {
    id: String,
    parts: Vec<CompletedPart>,
}

impl S3DeadLetters {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        S3DeadLetters::with_part_bytes(client, bucket, key, PART_BYTES)
    }

    /// With another part size (at least 5 MiB for S3 to accept the upload).
    pub fn with_part_bytes(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        key: impl Into<String>,
        part_bytes: usize,
    ) -> Self {
        S3DeadLetters {
            client,
            bucket: bucket.into(),
            key: key.into(),
            part_bytes,
            buffer: Vec::new(),
            upload: None,
            letters: 0,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn error(&self, e: impl std::error::Error + Send + Sync + 'static) -> DeadLetterError {
        DeadLetterError {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        }
    }

    /// Sends the buffer as the next part, starting the upload first if needed.
    async fn send_part(&mut self) -> Result<(), DeadLetterError> {
        if self.upload.is_none() {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(CONTENT_TYPE)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let id = created.upload_id().unwrap_or_default().to_owned();
            self.upload = Some(Upload {
                id,
                parts: Vec::new(),
            });
        }
        let Some(upload) = &self.upload else {
            return Ok(());
        };
        let number = upload.parts.len() as i32 + 1;
        let body = std::mem::take(&mut self.buffer);
        let sent = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload.id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let part = CompletedPart::builder()
            .part_number(number)
            .set_e_tag(sent.e_tag().map(str::to_owned))
            .build();
        if let Some(upload) = &mut self.upload {
            upload.parts.push(part);
        }
        Ok(())
    }

    async fn store_rest(&mut self) -> Result<(), DeadLetterError> {
        let Some(upload) = &self.upload else {
            return self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(CONTENT_TYPE)
                .body(ByteStream::from(std::mem::take(&mut self.buffer)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error(e));
        };
        let id = upload.id.clone();
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let parts = self.upload.take().map(|u| u.parts).unwrap_or_default();
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        if let Err(e) = completed {
            // Put the upload back so that `abort` removes its parts.
            self.upload = Some(Upload {
                id,
                parts: Vec::new(),
            });
            return Err(self.error(e));
        }
        Ok(())
    }
}

const CONTENT_TYPE: &str = "application/x-ndjson";

impl DeadLetterSink for S3DeadLetters {
    type Error = DeadLetterError;

    async fn push(&mut self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        encode(letter, &mut self.buffer);
        self.letters += 1;
        if self.buffer.len() >= self.part_bytes {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, DeadLetterError> {
        if self.letters == 0 {
            return Ok(0);
        }
        match self.store_rest().await {
            Ok(()) => Ok(self.letters),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn abort(self) {
        // Parts of an upload never completed are kept (and billed) until it is aborted; a
        // failure here leaves them to the bucket's lifecycle rule for incomplete uploads.
        if let Some(upload) = &self.upload {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&upload.id)
                .send()
                .await;
        }
    }
}

/// Writes dead letters as one NDJSON object. Nothing is written for an empty list.
pub async fn put_dead_letters(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    items: &[DeadLetter],
) -> Result<(), DeadLetterError> {
    let mut sink = S3DeadLetters::new(client.clone(), bucket, key);
    for item in items {
        if let Err(e) = sink.push(item).await {
            sink.abort().await;
            return Err(e);
        }
    }
    sink.finish().await.map(|_| ())
}
