//! The integration tests of `cli`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

// Futures of the writer's code nest deeply enough to pass the compiler's default query depth.
#![recursion_limit = "256"]

mod alerts_cli;
mod bucket_cli;
mod mappings_cli;
mod recover_aws;
mod recover_cli;
mod run_cli;
