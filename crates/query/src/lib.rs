//! Queries of one tenant's metrics, built from a structured request, never from caller SQL.
//!
//! - [`model`]: the request (metric, measures, aggregation, bin, time range, dimension filters,
//!   group-by, fill), parsed from text and checked against the tenant's own [`Catalog`] so
//!   every identifier is one that exists in that tenant's table;
//! - [`catalog`]: what a tenant has: its metrics, and each metric's dimensions and measures;
//!   [`catalog_cache`] keeps it per tenant for the engines that pay per round trip;
//! - [`defaults`]: each measure's default aggregation, declared in `infra/metrics.toml`
//!   (compiled in) and used when a request names a measure without an aggregation;
//! - [`engine`]: the port every store's engine implements, so one API serves them all;
//! - [`embedded`]: the engine for the embedded store (SQLite), used by `metrics-lake query`
//!   and the local API;
//! - [`timestream`]: the engine for Amazon Timestream for LiveAnalytics (SQL compiled from the
//!   model, paged answers, tenant-scoped credentials);
//! - [`influx`]: the engine for Timestream for InfluxDB 3 (SQL over the HTTP query API, one
//!   database per tenant, per-tenant read tokens);
//! - [`alerts`]: the alerts' read port over the engines, so an alert reads its window like a
//!   chart does, under its own tenant, and the evaluator function's counts; [`alerts_config`]
//!   the alert settings of the deployed functions;
//! - [`api`]: the HTTP API (axum), the same router in Lambda and in `metrics-lake serve`;
//! - [`config`]: the `metrics-query` function's settings, from the environment, and the engine
//!   they open.
//!
//! The tenant is always an argument chosen by the caller's verified identity; nothing in a
//! request names a table.

pub mod alerts;
pub mod alerts_config;
pub mod api;
pub mod assemble;
pub mod catalog;
pub mod catalog_cache;
pub mod config;
pub mod defaults;
pub mod embedded;
pub mod engine;
pub mod influx;
pub mod model;
pub mod sql;
pub mod timestream;

pub use catalog::{Catalog, MetricSchema};
pub use defaults::AggregationDefaults;
pub use model::{
    Aggregation, Bin, BreakdownRequest, BreakdownResult, Fill, Filter, Point, QueryError, Series,
    SeriesRequest, SeriesResult, TimeRange,
};
