//! The integration tests of `store`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod convert;
mod embedded;
mod influx_adapter;
mod influx_line_protocol;
mod influxdb_real;
mod timestream_faults;
mod timestream_moto;
