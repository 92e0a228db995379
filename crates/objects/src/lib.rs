//! What every consumer of Firehose's S3 objects (the store writer, the forwarder) needs, so
//! they read objects exactly the same way:
//!
//! - [`trigger`]: a Lambda payload (an S3 notification, or SQS messages carrying S3
//!   notifications raw, in an SNS envelope or as EventBridge `Object Created` events) into the
//!   objects to read, per SQS message so failures are reported per message;
//! - [`read`]: fetching an object as a bounded stream and splitting it into records (gzip by
//!   magic bytes, newline-delimited or concatenated JSON), with limits so a gzip bomb fails
//!   that object and a giant line that record, not the process;
//! - [`dead_letter`]: where records that could not be delivered go, with their reason,
//!   streamed through a [`dead_letter::DeadLetterSink`] so memory stays bounded;
//! - [`key`]: notification keys decoded, and keys derived from a source key (dead letters,
//!   progress markers) kept within S3's 1,024-byte limit;
//! - [`sqs`]: the partial-batch response;
//! - [`deadline`]: how long an invocation may work ([`work_time`]), one rule for both;
//! - [`gzip`]: GZIP members from one reusable compressor (Mixpanel's request bodies, the local
//!   Firehose's objects);
//! - [`s3`]: the S3 client, path-style against a local endpoint ([`s3_client`]).

pub mod dead_letter;
pub mod deadline;
pub mod gzip;
pub mod key;
pub mod read;
pub mod s3;
pub mod sqs;
pub mod trigger;

pub use deadline::work_time;
pub use read::{ReadError, ReadLimits, SourceRecord};
pub use s3::s3_client;
pub use trigger::{ObjectRef, SqsMessage, Trigger, TriggerError};
