#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The integration tests of metrics-alerts, as modules of one test binary: a real SQLite
//! store, a real HTTP receiver on 127.0.0.1, the real delivery client.

mod common;
mod delivery;
mod dynamodb;
mod evaluate;
mod store;
