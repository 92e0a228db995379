//! Queries of one tenant's metrics, built from a structured request, never from caller SQL.
//!
//! - [`model`]: the request (metric, measures, aggregation, bin, time range, dimension filters,
//!   group-by, fill), parsed from text and checked against the tenant's own [`Catalog`] so
//!   every identifier is one that exists in that tenant's table;
//! - [`catalog`]: what a tenant has: its metrics, and each metric's dimensions and measures;
//! - [`embedded`]: the engine for the embedded store (SQLite), used by `metrics-lake query`
//!   and the local API.
//!
//! The tenant is always an argument chosen by the caller's verified identity; nothing in a
//! request names a table.

pub mod catalog;
pub mod embedded;
pub mod model;

pub use catalog::{Catalog, MetricSchema};
pub use model::{
    Aggregation, Bin, BreakdownRequest, BreakdownResult, Fill, Filter, Point, QueryError, Series,
    SeriesRequest, SeriesResult, TimeRange,
};
