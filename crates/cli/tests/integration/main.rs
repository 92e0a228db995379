//! The integration tests of `cli`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod alerts_cli;
mod mappings_cli;
mod run_cli;
