//! The integration tests of `query`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod alerts_api;
mod alerts_windows;
mod api;
mod common;
mod embedded;
mod isolation;
mod timestream_moto;
mod timestream_sql;
