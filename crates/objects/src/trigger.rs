//! Lambda payloads that announce new objects, reduced to the objects to read.
//!
//! Only the fields we use are parsed: moto's S3 events lack `userIdentity` and
//! `requestParameters`, real ones carry them, and both must work.

use serde::Deserialize;
use serde_json::Value;

use crate::key::decode_notification_key;

/// One object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The real key (notification keys are decoded).
    pub key: String,
    pub size: Option<u64>,
    /// Orders events for the same key (S3 notifications only).
    pub sequencer: Option<String>,
}

/// What the function was invoked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Invoked by S3 (or an EventBridge rule) directly: all objects form one unit of work.
    S3(Vec<ObjectRef>),
    /// Invoked by an SQS event source mapping: each message succeeds or fails on its own.
    Sqs(Vec<SqsMessage>),
}

/// One SQS message and the objects it announces. A message that cannot be understood is an
/// `Err`, reported as a batch item failure so it ends in the queue's DLQ after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    pub message_id: String,
    pub objects: Result<Vec<ObjectRef>, TriggerError>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("the payload is not JSON")]
    NotJson,
    #[error(
        "the payload is not an S3 notification, an SNS envelope, an EventBridge Object Created event or an SQS batch"
    )]
    UnrecognisedShape,
    #[error("an S3 record lacks {0}")]
    MissingField(&'static str),
    #[error("an object key does not decode to UTF-8")]
    InvalidKeyEncoding,
}

impl TriggerError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            TriggerError::NotJson => "trigger_not_json",
            TriggerError::UnrecognisedShape => "trigger_unrecognised",
            TriggerError::MissingField(_) => "trigger_missing_field",
            TriggerError::InvalidKeyEncoding => "trigger_invalid_key",
        }
    }
}

#[derive(Deserialize)]
struct Records {
    #[serde(rename = "Records")]
    records: Vec<Value>,
}

#[derive(Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: String,
    body: String,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Named,
    object: S3Object,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// Parses a Lambda payload.
pub fn parse_trigger(payload: &[u8]) -> Result<Trigger, TriggerError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| TriggerError::NotJson)?;
    let is_sqs = value
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if is_sqs {
        let Records { records } =
            serde_json::from_value(value).map_err(|_| TriggerError::UnrecognisedShape)?;
        let messages = records
            .into_iter()
            .map(|record| {
                let record: SqsRecord = serde_json::from_value(record)
                    .map_err(|_| TriggerError::MissingField("messageId or body"))?;
                Ok(SqsMessage {
                    objects: objects_in_body(record.body.as_bytes()),
                    message_id: record.message_id,
                })
            })
            .collect::<Result<Vec<_>, TriggerError>>()?;
        return Ok(Trigger::Sqs(messages));
    }
    objects_in(value).map(Trigger::S3)
}

/// The objects announced by one message body (an SQS body, or an SNS `Message`).
pub fn objects_in_body(body: &[u8]) -> Result<Vec<ObjectRef>, TriggerError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| TriggerError::NotJson)?;
    objects_in(value)
}

fn objects_in(value: Value) -> Result<Vec<ObjectRef>, TriggerError> {
    // S3's test message when a notification is configured: nothing to read.
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    // SNS envelope: the S3 notification is a JSON string in `Message`.
    if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = value
            .get("Message")
            .and_then(Value::as_str)
            .ok_or(TriggerError::MissingField("Message"))?;
        return objects_in_body(message.as_bytes());
    }
    if value.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge_object(&value);
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        return records.iter().filter_map(s3_record).collect();
    }
    Err(TriggerError::UnrecognisedShape)
}

/// One S3 notification record; `None` for events other than object creation.
fn s3_record(record: &Value) -> Option<Result<ObjectRef, TriggerError>> {
    let record: S3Record = match S3Record::deserialize(record) {
        Ok(r) => r,
        Err(_) => return Some(Err(TriggerError::MissingField("s3.bucket.name or s3.object.key"))),
    };
    if !record.event_name.is_empty() && !record.event_name.starts_with("ObjectCreated") {
        return None;
    }
    let key = match decode_notification_key(&record.s3.object.key) {
        Some(k) => k,
        None => return Some(Err(TriggerError::InvalidKeyEncoding)),
    };
    Some(Ok(ObjectRef {
        bucket: record.s3.bucket.name,
        key,
        size: record.s3.object.size,
        sequencer: record.s3.object.sequencer,
    }))
}

/// An EventBridge `Object Created` event. Its key is the plain key, not form-encoded
/// like notification keys.
fn eventbridge_object(event: &Value) -> Result<Vec<ObjectRef>, TriggerError> {
    if event.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Ok(Vec::new());
    }
    let detail = event.get("detail").ok_or(TriggerError::MissingField("detail"))?;
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or(TriggerError::MissingField("detail.bucket.name"))?;
    let key = detail
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or(TriggerError::MissingField("detail.object.key"))?;
    Ok(vec![ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size: detail.pointer("/object/size").and_then(Value::as_u64),
        sequencer: detail
            .pointer("/object/sequencer")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }])
}
