//! Fetching an object and splitting it into records, with every size bounded.
//!
//! Memory is the compressed object plus one record: the body is collected up to
//! `max_compressed_bytes`, then decompressed as a stream. A record longer than
//! `max_record_bytes` or more than `max_decompressed_bytes` in all (a gzip bomb) fails the
//! object with a reason code instead of exhausting the function.

use std::io::{BufRead, BufReader, Read};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;

use crate::trigger::ObjectRef;

/// Size bounds for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The object as stored (Firehose objects are at most 128 MiB).
    pub max_compressed_bytes: u64,
    /// All records together after decompression.
    pub max_decompressed_bytes: u64,
    /// One record (Firehose accepts records up to 1,000 KiB; enrichment adds a little).
    pub max_record_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_compressed_bytes: 128 * 1024 * 1024,
            max_decompressed_bytes: 1024 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
        }
    }
}

/// Why an object could not be read (entirely, or past some record).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the object does not exist (any more)")]
    NotFound,
    #[error("fetching the object failed: {0}")]
    Fetch(String),
    #[error("the object is over {limit} bytes")]
    ObjectTooLarge { limit: u64 },
    #[error("the object decompresses to over {limit} bytes")]
    DecompressedTooLarge { limit: u64 },
    #[error("record at line {line} is over {limit} bytes")]
    RecordTooLarge { line: usize, limit: usize },
    #[error("the gzip stream is truncated or corrupt after line {line}: {message}")]
    Corrupt { line: usize, message: String },
}

impl ReadError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::NotFound => "object_not_found",
            ReadError::Fetch(_) => "object_fetch_failed",
            ReadError::ObjectTooLarge { .. } => "object_too_large",
            ReadError::DecompressedTooLarge { .. } => "object_decompressed_too_large",
            ReadError::RecordTooLarge { .. } => "record_too_large",
            ReadError::Corrupt { .. } => "object_corrupt",
        }
    }

    /// Whether reading again later may succeed (an outage), as opposed to a property of the
    /// object that no retry changes.
    pub fn is_transient(&self) -> bool {
        matches!(self, ReadError::Fetch(_))
    }
}

/// Reads an object's bytes as stored, streaming the body and stopping at the limit.
pub async fn fetch_object(
    client: &aws_sdk_s3::Client,
    object: &ObjectRef,
    limits: &ReadLimits,
) -> Result<Vec<u8>, ReadError> {
    let response = client
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .send()
        .await
        .map_err(|e| match e {
            SdkError::ServiceError(ref s) if matches!(s.err(), GetObjectError::NoSuchKey(_)) => {
                ReadError::NotFound
            }
            other => ReadError::Fetch(aws_sdk_s3::error::DisplayErrorContext(other).to_string()),
        })?;
    let limit = limits.max_compressed_bytes;
    if response
        .content_length()
        .is_some_and(|n| u64::try_from(n).unwrap_or(u64::MAX) > limit)
    {
        return Err(ReadError::ObjectTooLarge { limit });
    }
    let mut body = response.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ReadError::Fetch(e.to_string()))?
    {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::ObjectTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// One record of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// 1-based line in the decompressed object.
    pub line: usize,
    /// 1-based position among the object's records (differs from `line` when records were
    /// concatenated without a delimiter).
    pub ordinal: usize,
    pub bytes: Vec<u8>,
}

/// The records of an object's bytes. gzip is recognised by its magic bytes, not by name.
/// Yields the records in order; after an error it yields nothing more.
pub fn records<'a>(bytes: &'a [u8], limits: &ReadLimits) -> Records<'a> {
    let source: Box<dyn Read + 'a> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    Records {
        reader: BufReader::with_capacity(64 * 1024, source),
        limits: *limits,
        line: 0,
        ordinal: 0,
        total: 0,
        pending: Vec::new(),
        done: false,
        buf: Vec::new(),
    }
}

/// Iterator returned by [`records`].
pub struct Records<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    limits: ReadLimits,
    line: usize,
    ordinal: usize,
    total: u64,
    /// Further records split from the current line, in reverse order.
    pending: Vec<Vec<u8>>,
    done: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("line", &self.line)
            .field("ordinal", &self.ordinal)
            .finish()
    }
}

impl Iterator for Records<'_> {
    type Item = Result<SourceRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(bytes) = self.pending.pop() {
                self.ordinal += 1;
                return Some(Ok(SourceRecord {
                    line: self.line,
                    ordinal: self.ordinal,
                    bytes,
                }));
            }
            if self.done {
                return None;
            }
            match self.next_line() {
                Ok(true) => {
                    let line = trim(&self.buf);
                    if line.is_empty() {
                        continue;
                    }
                    // The usual line is one record: hand it out without the split's buffers.
                    if memchr::memmem::find(line, b"}{").is_none() {
                        self.ordinal += 1;
                        return Some(Ok(SourceRecord {
                            line: self.line,
                            ordinal: self.ordinal,
                            bytes: line.to_vec(),
                        }));
                    }
                    let mut parts = split_concatenated(line);
                    parts.reverse();
                    self.pending = parts;
                }
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Records<'_> {
    /// Reads the next line into `buf`; `Ok(false)` at the end of the object.
    fn next_line(&mut self) -> Result<bool, ReadError> {
        self.buf.clear();
        let cap = self.limits.max_record_bytes as u64 + 1;
        let n = (&mut self.reader)
            .take(cap)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| ReadError::Corrupt {
                line: self.line,
                message: e.to_string(),
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.total += n as u64;
        if self.total > self.limits.max_decompressed_bytes {
            return Err(ReadError::DecompressedTooLarge {
                limit: self.limits.max_decompressed_bytes,
            });
        }
        if trim(&self.buf).len() > self.limits.max_record_bytes {
            return Err(ReadError::RecordTooLarge {
                line: self.line,
                limit: self.limits.max_record_bytes,
            });
        }
        Ok(true)
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &line[start..end]
}

/// Splits a line holding several JSON values written back to back (`{…}{…}`, as Firehose
/// writes records when the producer adds no delimiter). A line that is one value, or that is
/// not valid JSON, stays whole: validation then reports it with its reason.
fn split_concatenated(line: &[u8]) -> Vec<Vec<u8>> {
    // Cheap test first: concatenated objects always contain `}{` somewhere.
    if memchr::memmem::find(line, b"}{").is_none() {
        return vec![line.to_vec()];
    }
    let mut parts = Vec::new();
    let stream = serde_json::Deserializer::from_slice(line).into_iter::<&RawValue>();
    for value in stream {
        match value {
            Ok(v) => parts.push(v.get().as_bytes().to_vec()),
            Err(_) => return vec![line.to_vec()],
        }
    }
    if parts.is_empty() {
        vec![line.to_vec()]
    } else {
        parts
    }
}
