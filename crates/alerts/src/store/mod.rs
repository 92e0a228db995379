//! The alert store port: alerts, their state and their recent events, kept per tenant. Like
//! the metrics store it is a port with adapters: [`sqlite::SqliteAlertStore`] locally (in the
//! state directory, beside the embedded store) and [`dynamodb::DynamoAlertStore`] in AWS.
//!
//! Every read and write names the tenant: an alert is found by (tenant, id) only, so another
//! tenant's id is simply not found. State writes are compare-and-set on the state's version
//! ([`AlertStore::write_state`]): of two evaluators that read the same version, one writes and
//! the other gets [`StoreError::Conflict`] and sends nothing.

pub mod dynamodb;
pub mod sqlite;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use metrics_http::Secret;
use serde::Serialize;

use crate::model::{AlertDefinition, AlertInput, AlertLimits};
use crate::state::AlertState;
use crate::url::UrlPolicy;

/// A boxed future, so stores can be trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An alert of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: String,
    #[serde(skip)]
    pub tenant: String,
    #[serde(flatten)]
    pub definition: AlertDefinition,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An alert with its secret and state, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub alert: Alert,
    pub secret: Secret,
    pub state: AlertState,
}

/// Something that happened to an alert: an evaluation, a delivery attempt's end, a dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    /// Wall-clock epoch milliseconds.
    pub at_ms: i64,
    /// `evaluated`, `delivered` or `dead_lettered`.
    pub kind: String,
    pub detail: serde_json::Value,
}

/// Events kept per alert (older ones are dropped).
pub const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The state changed since it was read (compare-and-set lost).
    #[error("the alert's state changed since it was read")]
    Conflict,
    #[error("no such alert")]
    NotFound,
    #[error("a tenant has at most {max} alerts")]
    TooMany { max: usize },
    /// A retry may pass (busy, throttled, unreachable).
    #[error("the alert store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data that cannot be read, or a write refused for good.
    #[error("the alert store failed: {0}")]
    Failed(String),
}

impl StoreError {
    pub const fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict => "state_conflict",
            StoreError::NotFound => "alert_not_found",
            StoreError::TooMany { .. } => "too_many_alerts",
            StoreError::Unavailable(_) => "store_unavailable",
            StoreError::Failed(_) => "store_failed",
        }
    }
}

/// Where alerts live.
pub trait AlertStore: Send + Sync + fmt::Debug {
    /// Adds an alert with its secret and a fresh state, unless its tenant already has
    /// `max_per_tenant` alerts ([`StoreError::TooMany`]).
    fn create<'a>(
        &'a self,
        alert: &'a Alert,
        secret: &'a Secret,
        max_per_tenant: usize,
    ) -> StoreFuture<'a, ()>;

    fn get<'a>(&'a self, tenant: &'a str, id: &'a str) -> StoreFuture<'a, Option<StoredAlert>>;

    /// The tenant's alerts, by id.
    fn list<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<StoredAlert>>;

    /// Every tenant's alerts (the local command line).
    fn list_all(&self) -> StoreFuture<'_, Vec<StoredAlert>>;

    /// Replaces an alert's definition (its secret and state stay).
    fn update<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        definition: &'a AlertDefinition,
        updated_ms: i64,
    ) -> StoreFuture<'a, ()>;

    /// Removes an alert and its events.
    fn delete<'a>(&'a self, tenant: &'a str, id: &'a str) -> StoreFuture<'a, ()>;

    /// Alerts due at evaluation time `at_ms`, and alerts whose pending notification's claim
    /// expired by wall-clock `wall_ms`, at most `limit`.
    fn due(&self, at_ms: i64, wall_ms: i64, limit: usize) -> StoreFuture<'_, Vec<StoredAlert>>;

    /// Writes `state` if the stored state's version is still `expected_version`.
    fn write_state<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        expected_version: u64,
        state: &'a AlertState,
    ) -> StoreFuture<'a, ()>;

    fn add_event<'a>(&'a self, tenant: &'a str, id: &'a str, event: &'a AlertEvent) -> StoreFuture<'a, ()>;

    /// The alert's most recent events, newest first.
    fn events<'a>(&'a self, tenant: &'a str, id: &'a str, limit: usize) -> StoreFuture<'a, Vec<AlertEvent>>;
}

/// A stored definition read back: checked again as input, with no tenant limit and the local
/// URL policy (it was checked against the real ones when it was saved).
pub fn definition_from_json(text: &str) -> Result<AlertDefinition, StoreError> {
    let input: AlertInput =
        serde_json::from_str(text).map_err(|e| StoreError::Failed(format!("stored definition: {e}")))?;
    let limits = AlertLimits {
        max_alerts: usize::MAX,
        min_interval_minutes: 1,
        max_filters: usize::MAX,
    };
    input
        .validate(&limits, UrlPolicy::LOCAL, None)
        .map_err(|e| StoreError::Failed(format!("stored definition: {}", e.code())))
}

/// A new alert id: `al_` and 20 random hex digits.
pub fn new_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Failed(format!("random: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("al_{hex}"))
}

/// Whether `id` has the form of an alert id (anything else is not found without a lookup).
pub fn is_id(id: &str) -> bool {
    id.len() == 23 && id.starts_with("al_") && id[3..].bytes().all(|b| b.is_ascii_hexdigit())
}
