//! The integration tests of `local`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod firehose;
mod live;
mod pipeline;
