//! The integration tests of `enrich`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod binary;
mod common;
mod contract;
mod dynamodb;
mod dynamodb_retry;
mod emulator_agreement;
mod fixtures;
mod property;
mod reasons;
mod runtime_api;
