//! `metrics-lake run`'s pipeline on one machine, with the deployed functions' own code:
//!
//! - [`bucket`]: the S3 bucket's keys in a directory: whole objects as rows of one SQLite
//!   database, streamed dead letters as files;
//! - [`firehose`]: a Firehose delivery stream emulator that buffers records, hands each
//!   processor batch to the real enrich transform, and names objects the way Firehose does (no
//!   I/O: it returns the invocation to run and the objects to store);
//! - [`stages`]: the store stage, the writer's own `write_object` into the embedded store;
//! - [`forward`]: the forward stage's loop, the forwarder's own `forward_object` over the local
//!   bucket; [`outbox`] (the default: every request written to a file and accepted) and
//!   [`live`] (`--forward live`: the real or simulated endpoints) are its two destination sets;
//! - [`pipeline`]: the run itself, every record counted once in the shared outcome vocabulary;
//!   `readers` runs its store and forward stages, each on a thread of its own for a bulk run;
//! - [`origin`]: where records came from before the bucket (input file and line);
//! - [`recover`]: failed records read back from the bucket, and replayed to their stage;
//! - [`sample`]: the bundled sample data, generated deterministically.

pub mod bucket;
mod digits;
pub mod firehose;
pub mod forward;
mod ids;
pub mod live;
pub mod origin;
pub mod outbox;
pub mod pipeline;
mod readers;
pub mod recover;
pub mod sample;
pub mod stages;
