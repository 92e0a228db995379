//! The local pipeline's building blocks: a directory laid out exactly like the S3 bucket
//! ([`bucket`]) and a Firehose delivery stream emulator ([`firehose`]) that buffers records,
//! hands each processor batch to the real enrich transform, and names objects the way
//! Firehose does.
//!
//! The emulator does no I/O and runs no transform itself: it returns the invocation to run and
//! the objects to store, so the same code serves the CLI and tests.

pub mod bucket;
pub mod firehose;
pub mod forward;
mod ids;
pub mod live;
pub mod outbox;
pub mod pipeline;
pub mod sample;
pub mod stages;
