//! Fetching an object and splitting it into records, with every size bounded.
//!
//! Memory is the compressed object plus one record: the body is collected up to
//! `max_compressed_bytes`, then decompressed as a stream. A line longer than
//! `max_record_bytes` is skipped without being held and reported for that line; more than
//! `max_decompressed_bytes` in all (a gzip bomb) fails the object with a reason code instead
//! of exhausting the function. Line numbers are the physical lines of the decompressed
//! object, whatever was skipped or refused before them.

use std::io::{BufRead, BufReader, Read};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use flate2::bufread::MultiGzDecoder;
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
    #[error("S3 refuses to serve the object: {0}")]
    Unreadable(String),
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
            ReadError::Unreadable(_) => "object_unreadable",
            ReadError::ObjectTooLarge { .. } => "object_too_large",
            ReadError::DecompressedTooLarge { .. } => "object_decompressed_too_large",
            ReadError::RecordTooLarge { .. } => "record_too_large",
            ReadError::Corrupt { .. } => "object_corrupt",
        }
    }

    /// The line the error is about, when it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ReadError::RecordTooLarge { line, .. } | ReadError::Corrupt { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// Whether the error is about one record only: reading goes on with the next line.
    pub fn is_record_error(&self) -> bool {
        matches!(self, ReadError::RecordTooLarge { .. })
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
        .map_err(get_error)?;
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

/// A failed `GetObject`, classified once: a missing object or an answer no retry changes (access
/// denied, an archived object, a bad request) is a property of the object; throttling
/// (`SlowDown`), 5xx answers, timeouts and connection failures are transient.
fn get_error(e: SdkError<GetObjectError>) -> ReadError {
    let permanent = match &e {
        SdkError::ServiceError(s) if matches!(s.err(), GetObjectError::NoSuchKey(_)) => {
            return ReadError::NotFound;
        }
        SdkError::ServiceError(s) => !is_transient_answer(s.raw().status().as_u16(), s.err().code()),
        _ => false,
    };
    let message = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
    if permanent {
        ReadError::Unreadable(message)
    } else {
        ReadError::Fetch(message)
    }
}

/// Whether an S3 error answer may go away on a retry: any 5xx (`InternalError`, `SlowDown`,
/// `ServiceUnavailable`), a timeout or throttling status, and the few 4xx codes that are
/// about the request's moment rather than the object (an expired token, a skewed clock). See
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>.
pub fn is_transient_answer(status: u16, code: Option<&str>) -> bool {
    const TRANSIENT_CODES: [&str; 7] = [
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestTimeTooSkewed",
        "ExpiredToken",
        "TokenRefreshRequired",
    ];
    status >= 500 || status == 408 || status == 429 || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// How much decompressed content is read at a time.
const DECOMPRESSED_WINDOW_BYTES: usize = 16 * 1024;

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
/// Yields the records in order. A line over `max_record_bytes` is an error for that line only
/// ([`ReadError::is_record_error`]) and the records after it follow; after any other error it
/// yields nothing more.
pub fn records<'a>(bytes: &'a [u8], limits: &ReadLimits) -> Records<'a> {
    // Plain bytes are read in place. gzip is decompressed a window at a time into one buffer
    // (the decoder reads the bytes in place, so no second buffer): a buffer is zeroed before its
    // first use, and objects of a few records are common, so it is kept small.
    let reader: Box<dyn BufRead + 'a> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            DECOMPRESSED_WINDOW_BYTES,
            MultiGzDecoder::new(bytes),
        ))
    } else {
        Box::new(bytes)
    };
    Records {
        reader,
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
    reader: Box<dyn BufRead + 'a>,
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
                    // One line over the limit is that record's failure; the others end the object.
                    self.done = !e.is_record_error();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Records<'_> {
    /// Reads the next line into `buf`; `Ok(false)` at the end of the object.
    ///
    /// A line is counted as it is read (its bytes without the `\n` or `\r\n` that ends it,
    /// whitespace included), so the size check and the read cap measure the same bytes. A line
    /// over the limit is skipped to its end without being held, and reported as
    /// [`ReadError::RecordTooLarge`] with its own line number; reading goes on after it.
    fn next_line(&mut self) -> Result<bool, ReadError> {
        self.buf.clear();
        let max = self.limits.max_record_bytes;
        // Room for the longest allowed line and its `\r\n`: anything longer is over the limit.
        let cap = max as u64 + 2;
        let n = (&mut self.reader)
            .take(cap)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| corrupt(self.line, e))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.count(n as u64)?;
        let ended = self.buf.last() == Some(&b'\n');
        if line_length(&self.buf) > max {
            if ended {
                self.buf.clear();
            } else {
                self.skip_rest_of_line()?;
            }
            return Err(ReadError::RecordTooLarge {
                line: self.line,
                limit: max,
            });
        }
        Ok(true)
    }

    /// Reads past the end of the current line without keeping it.
    fn skip_rest_of_line(&mut self) -> Result<(), ReadError> {
        self.buf.clear();
        let line = self.line;
        loop {
            let chunk = self.reader.fill_buf().map_err(|e| corrupt(line, e))?;
            if chunk.is_empty() {
                return Ok(());
            }
            let (used, ended) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            self.reader.consume(used);
            self.count(used as u64)?;
            if ended {
                return Ok(());
            }
        }
    }

    /// Adds `n` decompressed bytes to the object's total, which is bounded.
    fn count(&mut self, n: u64) -> Result<(), ReadError> {
        self.total += n;
        if self.total > self.limits.max_decompressed_bytes {
            return Err(ReadError::DecompressedTooLarge {
                limit: self.limits.max_decompressed_bytes,
            });
        }
        Ok(())
    }
}

fn corrupt(line: usize, e: std::io::Error) -> ReadError {
    ReadError::Corrupt {
        line,
        message: e.to_string(),
    }
}

/// A line's length without the `\n` or `\r\n` that ends it.
fn line_length(line: &[u8]) -> usize {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line).len()
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
