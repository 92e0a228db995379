//! The Timestream for InfluxDB adapter (InfluxDB 3 and 2): line protocol over HTTP.

pub mod line_protocol;
