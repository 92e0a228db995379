//! The integration tests of `local`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

// The pipeline's futures nest the enrich, writer and forwarder futures deeply enough to pass
// the compiler's default query depth when laying them out.
#![recursion_limit = "256"]

mod firehose;
mod live;
mod pipeline;
mod redrive;
mod threads;
