//! Local stand-ins for the stores, for tests and benchmarks over real HTTP on 127.0.0.1: they
//! answer as the services document and can be scripted to throttle, fail or reject, which the
//! real services (and moto) cannot be made to do on demand. Used as a dev-dependency only.
//!
//! - [`timestream`]: Timestream's write protocol (`WriteRecords`, tables and databases);
//! - [`influxdb`]: InfluxDB 3 / 2's HTTP API (writes, databases, buckets, SQL queries).

pub mod influxdb;
pub mod timestream;
