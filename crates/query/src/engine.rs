//! The engine port: what the query API needs from a store, so one router serves every store.
//!
//! An engine answers for one tenant at a time; the tenant is always the caller's verified
//! identity, chosen by the API before the engine is called. Engines check every request
//! against that tenant's own [`Catalog`] (see [`SeriesRequest::check`]) before running it.
//!
//! Adding a store (e.g. an `influx` engine for Timestream for InfluxDB): implement [`Engine`]
//! in its own module, then add a variant to `config::StoreChoice` in `config.rs` so the
//! `metrics-query` binary can build it from the environment. Nothing in `api/` changes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use metrics_schema::TenantId;
use metrics_store::EmbeddedStore;

use crate::catalog::Catalog;
use crate::embedded::EmbeddedEngine;
use crate::model::{
    BreakdownRequest, BreakdownResult, Limits, QueryError, QueryErrorCode, SeriesRequest, SeriesResult,
};

/// A boxed future, so engines can be trait objects (`Arc<dyn Engine>`).
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, QueryError>> + Send + 'a>>;

/// A store the API can query. Errors carry stable codes and caller-safe messages; anything
/// internal is logged by the engine and reported as `store_unavailable`.
pub trait Engine: Send + Sync + fmt::Debug {
    /// A short name for logs (`embedded`, `timestream`, …).
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

/// The embedded store behind the [`Engine`] port. SQLite calls are synchronous, so each runs
/// on the blocking pool rather than on the async workers.
#[derive(Debug, Clone)]
pub struct EmbeddedQueries {
    store: Arc<EmbeddedStore>,
    limits: Limits,
}

impl EmbeddedQueries {
    pub fn new(store: Arc<EmbeddedStore>, limits: Limits) -> Self {
        EmbeddedQueries { store, limits }
    }

    pub fn store(&self) -> &Arc<EmbeddedStore> {
        &self.store
    }

    async fn blocking<T, F>(&self, job: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&EmbeddedEngine<'_>) -> Result<T, QueryError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || job(&EmbeddedEngine::with_limits(&store, limits)))
            .await
            .unwrap_or_else(|_| {
                Err(QueryError::new(
                    QueryErrorCode::StoreUnavailable,
                    "the store could not answer",
                ))
            })
    }
}

impl Engine for EmbeddedQueries {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn catalog<'a>(&'a self, tenant: &'a TenantId<'static>) -> EngineFuture<'a, Catalog> {
        let tenant = tenant.clone();
        Box::pin(self.blocking(move |e| e.catalog(&tenant)))
    }

    fn series<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a SeriesRequest,
    ) -> EngineFuture<'a, SeriesResult> {
        let (tenant, request) = (tenant.clone(), request.clone());
        Box::pin(self.blocking(move |e| e.series(&tenant, &request)))
    }

    fn breakdown<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a BreakdownRequest,
    ) -> EngineFuture<'a, BreakdownResult> {
        let (tenant, request) = (tenant.clone(), request.clone());
        Box::pin(self.blocking(move |e| e.breakdown(&tenant, &request)))
    }
}
