//! The integration tests of `forwarder`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod common;
mod credentials;
mod delivery;
mod handler;
mod payload;
