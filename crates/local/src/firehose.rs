//! A Firehose DirectPut delivery stream with a Lambda processor and an S3 destination,
//! reproduced without AWS:
//!
//! 1. records are buffered for the processor (size or interval, whichever first) and handed
//!    to the caller as one [`Invocation`] carrying the exact event JSON Firehose sends;
//! 2. the caller runs the transform and returns its response to [`Firehose::complete`], which
//!    enforces the response contract (every record id once, `Ok|Dropped|ProcessingFailed`,
//!    base64 data) as Firehose does;
//! 3. `Ok` data is buffered again for the destination and delivered, GZIP-compressed, as
//!    `Data/YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>.gz`; failed records go
//!    to `Error/processing-failed/…` in Firehose's JSON wrapper with the original bytes in
//!    base64.
//!
//! Time is the records' arrival time, supplied by the caller, so replaying a month of events
//! lays objects out as a month of live traffic would.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;

use base64_simd::STANDARD as B64;
use flate2::Compression;
use metrics_objects::gzip::Gzip;
use serde::{Deserialize, Serialize};

use metrics_schema::EventTime;
use metrics_schema::time::Civil;

use crate::digits::{push_civil, push_decimal};
use crate::ids::content_uuid;

/// Buffering and naming, with the deployed stack's values as defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseConfig {
    pub stream_name: String,
    /// Firehose's stream version in object names; it starts at 1.
    pub stream_version: u32,
    /// Processor buffer (`BufferSizeInMBs` of the Lambda processor): 1 MB, see the enrich crate.
    pub processor_buffer_bytes: usize,
    pub processor_interval_ms: i64,
    /// S3 destination buffer: 5 MB / 60 s.
    pub destination_buffer_bytes: usize,
    pub destination_interval_ms: i64,
    /// Recorded in processing-failed records, as Firehose does.
    pub lambda_arn: String,
}

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            stream_name: "metrics-lake".to_owned(),
            stream_version: 1,
            processor_buffer_bytes: 1_000_000,
            processor_interval_ms: 60_000,
            destination_buffer_bytes: 5 * 1024 * 1024,
            destination_interval_ms: 60_000,
            lambda_arn: "arn:aws:lambda:local:000000000000:function:metrics-enrich".to_owned(),
        }
    }
}

/// One processor call: the event JSON to pass to the transform.
#[derive(Debug)]
pub struct Invocation {
    pub event_json: Vec<u8>,
    records: Vec<Pending>,
}

impl Invocation {
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// The tags of the invocation's records, in order.
    pub fn tags(&self) -> impl Iterator<Item = u64> + '_ {
        self.records.iter().map(|r| r.tag)
    }
}

#[derive(Debug)]
struct Pending {
    record_id: String,
    arrival_ms: i64,
    data: Vec<u8>,
    /// The caller's tag for the record ([`Firehose::put_tagged`]), handed back with it when it
    /// fails processing.
    tag: u64,
}

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Transformed records under `Data/`.
    Data,
    /// Firehose's wrappers around records that failed processing, under
    /// `Error/processing-failed/`.
    ProcessingFailed,
}

/// The largest object content kept beside its compressed bytes ([`NewObject::content`]). The
/// readers' window counts it with the compressed bytes, so memory stays bounded either way; a
/// larger object is read from its gzip bytes, which take less room while it waits.
const MAX_KEPT_CONTENT_BYTES: usize = 1024 * 1024;

/// An object to store in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    pub kind: ObjectKind,
    pub key: String,
    /// GZIP-compressed content.
    pub bytes: Vec<u8>,
    /// The content before compression, kept for a small object: the stages that read every
    /// new object read these records without decompressing what was just compressed (for an
    /// object of a few records, setting up the decompression costs more than reading them).
    /// Larger objects are read from `bytes`.
    pub content: Option<Vec<u8>>,
    pub records: usize,
    /// For a processing-failed object, the tag of the record on each line, in order (empty for
    /// `Data/` objects, whose records the transform has rewritten).
    pub tags: Vec<u64>,
}

/// The outcome of one processor call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Completion {
    pub ok: usize,
    pub dropped: usize,
    pub failed: usize,
    /// Objects now due (data buffers that filled up, and this call's failed records).
    pub objects: Vec<NewObject>,
}

/// A response Firehose would reject as a whole: every record of the batch is then delivered
/// as processing-failed with this code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractViolation {
    #[error("the response is not the transformation response JSON")]
    JsonProcessing,
    #[error("record id {0:?} was not returned")]
    MissingRecordId(String),
    #[error("record id {0:?} was returned twice")]
    DuplicatedRecordId(String),
    #[error("record id {0:?} was never sent")]
    UnknownRecordId(String),
}

impl ContractViolation {
    /// Firehose's error code for it.
    pub fn firehose_code(&self) -> &'static str {
        match self {
            ContractViolation::JsonProcessing | ContractViolation::UnknownRecordId(_) => {
                "Lambda.JsonProcessingException"
            }
            ContractViolation::MissingRecordId(_) => "Lambda.MissingRecordId",
            ContractViolation::DuplicatedRecordId(_) => "Lambda.DuplicatedRecordId",
        }
    }
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    records: Vec<ResponseRecord<'a>>,
}

/// Borrowed from the response where it has no escapes (base64 and our record ids never do).
#[derive(Deserialize)]
struct ResponseRecord<'a> {
    #[serde(rename = "recordId", borrow)]
    record_id: Cow<'a, str>,
    #[serde(borrow)]
    result: Cow<'a, str>,
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// The processor event Firehose sends, as serde_json would write it (members in this order,
/// compact): written directly, because each record's data would otherwise be encoded into a
/// string of its own and scanned again for escapes that base64 never has.
fn event_json(invocation_id: &str, stream_name: &str, records: &[Pending]) -> Vec<u8> {
    let data_bytes: usize = records.iter().map(|r| r.data.len()).sum();
    let mut json = Vec::with_capacity(200 + records.len() * 90 + data_bytes / 3 * 4);
    json.extend_from_slice(b"{\"invocationId\":");
    push_json_str(&mut json, invocation_id);
    json.extend_from_slice(b",\"deliveryStreamArn\":");
    push_json_str(
        &mut json,
        &format!("arn:aws:firehose:local:000000000000:deliverystream/{stream_name}"),
    );
    json.extend_from_slice(b",\"region\":\"local\",\"records\":[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"recordId\":");
        push_json_str(&mut json, &record.record_id);
        json.extend_from_slice(b",\"approximateArrivalTimestamp\":");
        // Writing to a Vec cannot fail.
        let _ = write!(json, "{}", record.arrival_ms);
        json.extend_from_slice(b",\"data\":\"");
        B64.encode_append(&record.data, &mut json);
        json.extend_from_slice(b"\"}");
    }
    json.extend_from_slice(b"]}");
    json
}

/// A JSON string, escaped as serde_json escapes it.
fn push_json_str(json: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *json, s);
}

/// Firehose's wrapper for a record that failed processing.
#[derive(Serialize)]
struct FailedRecord<'a> {
    #[serde(rename = "attemptsMade")]
    attempts_made: u32,
    #[serde(rename = "arrivalTimestamp")]
    arrival_timestamp: i64,
    #[serde(rename = "errorCode")]
    error_code: &'a str,
    #[serde(rename = "errorMessage")]
    error_message: &'a str,
    #[serde(rename = "attemptEndingTimestamp")]
    attempt_ending_timestamp: i64,
    #[serde(rename = "rawData")]
    raw_data: String,
    #[serde(rename = "lambdaArn")]
    lambda_arn: &'a str,
}

/// The stream.
#[derive(Debug)]
pub struct Firehose {
    config: FirehoseConfig,
    next_record: u64,
    processor: Vec<Pending>,
    processor_bytes: usize,
    destination: Vec<u8>,
    destination_records: usize,
    destination_first_arrival: Option<i64>,
    /// One compressor for every object: a new one per object cost more than compressing it.
    /// At the fastest level: Firehose does not document its own, readers only gunzip, and
    /// level 6 made compression the largest cost of a local run's events thread.
    gzip: Gzip,
}

impl Firehose {
    pub fn new(config: FirehoseConfig) -> Self {
        Firehose {
            config,
            next_record: 0,
            processor: Vec::new(),
            processor_bytes: 0,
            destination: Vec::new(),
            destination_records: 0,
            destination_first_arrival: None,
            gzip: Gzip::new(Compression::fast()),
        }
    }

    pub fn config(&self) -> &FirehoseConfig {
        &self.config
    }

    /// Accepts one record (`PutRecord`). Returns the processor call that is due, if any: the
    /// buffer before this record when the interval has passed, or with it when it is full.
    pub fn put(&mut self, data: Vec<u8>, arrival_ms: i64) -> Option<Invocation> {
        self.put_tagged(data, arrival_ms, 0)
    }

    /// [`Firehose::put`] with a tag of the caller's that comes back with the record if it fails
    /// processing ([`NewObject::tags`]): where the record came from, which Firehose does not keep.
    pub fn put_tagged(&mut self, data: Vec<u8>, arrival_ms: i64, tag: u64) -> Option<Invocation> {
        let mut due = None;
        if let Some(first) = self.processor.first()
            && arrival_ms - first.arrival_ms >= self.config.processor_interval_ms
        {
            due = self.take_invocation();
        }
        self.next_record += 1;
        self.processor_bytes += data.len();
        self.processor.push(Pending {
            record_id: {
                let mut id = String::with_capacity(20);
                push_decimal(&mut id, self.next_record, 20);
                id
            },
            arrival_ms,
            data,
            tag,
        });
        if due.is_none() && self.processor_bytes >= self.config.processor_buffer_bytes {
            due = self.take_invocation();
        }
        due
    }

    /// The processor call for whatever is buffered (end of input).
    pub fn drain(&mut self) -> Option<Invocation> {
        self.take_invocation()
    }

    fn take_invocation(&mut self) -> Option<Invocation> {
        if self.processor.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.processor);
        self.processor_bytes = 0;
        let event_json = event_json(
            &content_uuid(records[0].record_id.as_bytes()),
            &self.config.stream_name,
            &records,
        );
        Some(Invocation { event_json, records })
    }

    /// Applies the transform's response to its invocation.
    pub fn complete(&mut self, invocation: Invocation, response_json: &[u8]) -> Completion {
        let results = match check_response(&invocation.records, response_json) {
            Ok(results) => results,
            Err(violation) => {
                return self.fail_invocation(invocation, violation.firehose_code(), &violation.to_string());
            }
        };
        let mut completion = Completion::default();
        let mut failed = Vec::new();
        for (pending, result) in invocation.records.into_iter().zip(results) {
            match result {
                RecordResult::Ok(data) => {
                    completion.ok += 1;
                    completion.objects.extend(self.deliver(&data, pending.arrival_ms));
                }
                RecordResult::Dropped => completion.dropped += 1,
                RecordResult::Failed => {
                    completion.failed += 1;
                    failed.push(pending);
                }
            }
        }
        completion.objects.extend(self.failed_object(
            &failed,
            "Lambda.ProcessingFailedStatus",
            "ProcessingFailed status set for record",
        ));
        completion
    }

    /// The transform itself failed (after Firehose's retries): the whole batch is delivered as
    /// processing-failed with `code`.
    pub fn fail_invocation(&mut self, invocation: Invocation, code: &str, message: &str) -> Completion {
        let failed = invocation.records.len();
        let objects = self
            .failed_object(&invocation.records, code, message)
            .into_iter()
            .collect();
        Completion {
            ok: 0,
            dropped: 0,
            failed,
            objects,
        }
    }

    /// Delivers whatever the destination buffer holds (end of input).
    pub fn flush(&mut self) -> Option<NewObject> {
        let first = self.destination_first_arrival.take()?;
        let content = std::mem::take(&mut self.destination);
        let records = std::mem::take(&mut self.destination_records);
        Some(self.object(ObjectKind::Data, "Data/", first, content, records))
    }

    fn deliver(&mut self, data: &[u8], arrival_ms: i64) -> Option<NewObject> {
        let mut due = None;
        if let Some(first) = self.destination_first_arrival
            && (arrival_ms - first >= self.config.destination_interval_ms
                || self.destination.len() + data.len() > self.config.destination_buffer_bytes)
        {
            due = self.flush();
        }
        self.destination_first_arrival.get_or_insert(arrival_ms);
        self.destination.extend_from_slice(data);
        self.destination_records += 1;
        due
    }

    fn failed_object(&mut self, failed: &[Pending], code: &str, message: &str) -> Option<NewObject> {
        let first = failed.iter().map(|p| p.arrival_ms).min()?;
        let ending = failed.iter().map(|p| p.arrival_ms).max().unwrap_or(first);
        let mut content = Vec::new();
        for pending in failed {
            let wrapper = FailedRecord {
                attempts_made: 1,
                arrival_timestamp: pending.arrival_ms,
                error_code: code,
                error_message: message,
                attempt_ending_timestamp: ending,
                raw_data: B64.encode_to_string(&pending.data),
                lambda_arn: &self.config.lambda_arn,
            };
            let _ = serde_json::to_writer(&mut content, &wrapper);
            content.push(b'\n');
        }
        let mut object = self.object(
            ObjectKind::ProcessingFailed,
            "Error/processing-failed/",
            first,
            content,
            failed.len(),
        );
        object.tags = failed.iter().map(|p| p.tag).collect();
        Some(object)
    }

    fn object(
        &mut self,
        kind: ObjectKind,
        prefix: &str,
        first_arrival_ms: i64,
        content: Vec<u8>,
        records: usize,
    ) -> NewObject {
        let key = object_key(
            prefix,
            first_arrival_ms,
            &self.config.stream_name,
            self.config.stream_version,
            &content_uuid(&content),
        );
        NewObject {
            kind,
            key,
            bytes: self.gzip.compress(&content),
            content: (content.len() <= MAX_KEPT_CONTENT_BYTES).then_some(content),
            records,
            tags: Vec::new(),
        }
    }
}

enum RecordResult {
    Ok(Vec<u8>),
    Dropped,
    Failed,
}

/// Every record id exactly once, a valid result and base64 data, as Firehose requires.
fn check_response(sent: &[Pending], response_json: &[u8]) -> Result<Vec<RecordResult>, ContractViolation> {
    let response: Response =
        serde_json::from_slice(response_json).map_err(|_| ContractViolation::JsonProcessing)?;
    let index: HashMap<&str, usize> = sent
        .iter()
        .enumerate()
        .map(|(i, p)| (p.record_id.as_str(), i))
        .collect();
    let mut results: Vec<Option<RecordResult>> = sent.iter().map(|_| None).collect();
    for record in response.records {
        let i = *index
            .get(&*record.record_id)
            .ok_or_else(|| ContractViolation::UnknownRecordId(record.record_id.to_string()))?;
        if results[i].is_some() {
            return Err(ContractViolation::DuplicatedRecordId(
                record.record_id.into_owned(),
            ));
        }
        let result = match &*record.result {
            "Ok" => RecordResult::Ok(
                B64.decode_to_vec(record.data.as_bytes())
                    .map_err(|_| ContractViolation::JsonProcessing)?,
            ),
            "Dropped" => RecordResult::Dropped,
            "ProcessingFailed" => RecordResult::Failed,
            _ => return Err(ContractViolation::JsonProcessing),
        };
        results[i] = Some(result);
    }
    results
        .into_iter()
        .zip(sent)
        .map(|(r, p)| r.ok_or_else(|| ContractViolation::MissingRecordId(p.record_id.clone())))
        .collect()
}

/// `<prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>.gz`, the time in UTC.
fn object_key(prefix: &str, first_arrival_ms: i64, stream: &str, version: u32, id: &str) -> String {
    let c = EventTime::from_millis(first_arrival_ms)
        .civil()
        .unwrap_or(Civil::EPOCH);
    let mut key = String::with_capacity(prefix.len() + stream.len() + id.len() + 48);
    key.push_str(prefix);
    push_decimal(&mut key, u64::try_from(c.year).unwrap_or(0), 4);
    for part in [c.month, c.day, c.hour] {
        key.push('/');
        push_decimal(&mut key, u64::from(part), 2);
    }
    key.push('/');
    key.push_str(stream);
    key.push('-');
    push_decimal(&mut key, u64::from(version), 1);
    key.push('-');
    push_civil(&mut key, &c, ['-', '-', '-']);
    key.push('-');
    key.push_str(id);
    key.push_str(".gz");
    key
}
