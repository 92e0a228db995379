//! The integration tests of `writer`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod core;
mod handler;
