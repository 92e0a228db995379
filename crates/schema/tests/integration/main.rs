//! The integration tests of `schema`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod examples;
mod properties;
