//! The read port: one aggregated value of a tenant's metric over a time window. The query
//! crate implements it over its engines (`metrics_query::alerts::EngineWindows`), so an alert
//! reads through the same tenant-scoped engine, catalog checks and limits as a chart does.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use metrics_schema::{Aggregation, TenantId};
use serde::Serialize;

/// A window to aggregate: `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowQuery {
    pub metric: String,
    pub measure: Option<String>,
    pub aggregation: Aggregation,
    pub filters: BTreeMap<String, String>,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A window that could not be read. `code` is the query model's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ReadError {
    pub code: &'static str,
    pub message: String,
}

pub type ReadFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ReadError>> + Send + 'a>>;

/// Reads windows of one tenant's metrics; `None` is a window with no data.
pub trait WindowReader: Send + Sync + fmt::Debug {
    fn value<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        query: &'a WindowQuery,
    ) -> ReadFuture<'a, Option<f64>>;
}
