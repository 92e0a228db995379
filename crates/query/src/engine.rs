//! The engine port: what the query API needs from a store, so one router serves every store.
//!
//! An engine answers for one tenant at a time; the tenant is always the caller's verified
//! identity, chosen by the API before the engine is called. Engines check every request
//! against that tenant's own [`Catalog`] (see [`SeriesRequest::check`]) before running it.
//!
//! The engines, one module each and named after their store: [`EmbeddedEngine`]
//! (`embedded`), [`TimestreamEngine`] (`timestream`) and [`InfluxEngine`] (`influx`).
//! Adding a store: implement [`Engine`] in its own module, then open it in
//! `Config::open_engine` (`config.rs`) from its `StoreKind`. Nothing in `api/` changes.
//!
//! [`EmbeddedEngine`]: crate::embedded::EmbeddedEngine
//! [`TimestreamEngine`]: crate::timestream::TimestreamEngine
//! [`InfluxEngine`]: crate::influx::InfluxEngine

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use metrics_schema::TenantId;

use crate::catalog::Catalog;
use crate::model::{BreakdownRequest, BreakdownResult, QueryError, SeriesRequest, SeriesResult};

/// A boxed future, so engines can be trait objects (`Arc<dyn Engine>`).
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, QueryError>> + Send + 'a>>;

/// A store the API can query. Errors carry stable codes and caller-safe messages; anything
/// internal is logged by the engine and reported as `store_unavailable` (a retry may help) or
/// `query_failed` (it will not).
pub trait Engine: Send + Sync + fmt::Debug {
    /// The store's name, as `METRICS_STORE` spells it (`embedded`, `timestream`, `influxdb`).
    fn name(&self) -> &'static str;

    /// The tenant's metrics with their dimensions and measures (empty for an unknown tenant).
    fn catalog<'a>(&'a self, tenant: &'a TenantId<'static>) -> EngineFuture<'a, Catalog>;

    /// A time series; the engine checks `request` against the tenant's catalog and its limits.
    fn series<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a SeriesRequest,
    ) -> EngineFuture<'a, SeriesResult>;

    /// A top-N breakdown, checked likewise.
    fn breakdown<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a BreakdownRequest,
    ) -> EngineFuture<'a, BreakdownResult>;
}
