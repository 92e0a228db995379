#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The alerts' read port over the embedded engine: each aggregation over a window, windows
//! that straddle bins, and each tenant reading only its own table.

use std::collections::BTreeMap;
use std::sync::Arc;

use metrics_alerts::{WindowQuery, WindowReader};
use metrics_query::alerts::EngineWindows;
use metrics_query::embedded::EmbeddedEngine;
use metrics_query::model::Limits;
use metrics_schema::{Aggregation, TenantId};

use crate::common::*;

const HOUR: i64 = 3_600_000;

fn window(aggregation: Aggregation, from_ms: i64, to_ms: i64) -> WindowQuery {
    WindowQuery {
        metric: "scan_completed".into(),
        measure: (aggregation != Aggregation::Count).then(|| "findings_count".into()),
        aggregation,
        filters: BTreeMap::new(),
        from_ms,
        to_ms,
    }
}

#[tokio::test]
async fn every_aggregation_over_a_window_and_a_window_across_bins() {
    let windows = EngineWindows::new(Arc::new(EmbeddedEngine::new(
        two_tenant_store().await,
        Limits::default(),
    )));
    let acme = TenantId::parse("acme-prod").unwrap().into_owned();
    let value = |a, from, to| {
        let q = window(a, from, to);
        let w = windows.clone();
        let t = acme.clone();
        async move { w.value(&t, &q).await.unwrap() }
    };
    // acme: 3 and 4 in hour 0, 10 in hour 2.
    assert_eq!(value(Aggregation::Sum, T0, T0 + 3 * HOUR).await, Some(17.0));
    assert_eq!(value(Aggregation::Count, T0, T0 + 3 * HOUR).await, Some(3.0));
    assert_eq!(value(Aggregation::Min, T0, T0 + 3 * HOUR).await, Some(3.0));
    assert_eq!(value(Aggregation::Max, T0, T0 + 3 * HOUR).await, Some(10.0));
    assert_eq!(value(Aggregation::Avg, T0, T0 + 3 * HOUR).await, Some(17.0 / 3.0));
    // A 2 h window from 00:30 spans the 00:00 and 02:00 bins; only the 02:00 record is in it.
    assert_eq!(
        value(Aggregation::Sum, T0 + HOUR / 2, T0 + 5 * HOUR / 2).await,
        Some(10.0)
    );
    assert_eq!(
        value(Aggregation::Avg, T0 + HOUR / 2, T0 + 5 * HOUR / 2).await,
        Some(10.0)
    );
    // No data.
    assert_eq!(
        value(Aggregation::Avg, T0 + 10 * HOUR, T0 + 11 * HOUR).await,
        None
    );
    let filtered = WindowQuery {
        filters: BTreeMap::from([("repo_name".to_owned(), "web".to_owned())]),
        ..window(Aggregation::Sum, T0, T0 + 3 * HOUR)
    };
    assert_eq!(windows.value(&acme, &filtered).await.unwrap(), Some(4.0));
}

#[tokio::test]
async fn a_window_reads_only_its_tenants_table() {
    let windows = EngineWindows::new(Arc::new(EmbeddedEngine::new(
        two_tenant_store().await,
        Limits::default(),
    )));
    let globex = TenantId::parse("globex").unwrap().into_owned();
    let acme = TenantId::parse("acme-prod").unwrap().into_owned();
    let q = window(Aggregation::Sum, T0, T0 + 3 * HOUR);
    assert_eq!(windows.value(&globex, &q).await.unwrap(), Some(987_654.0));
    assert_eq!(windows.value(&acme, &q).await.unwrap(), Some(17.0));
    let theirs = WindowQuery {
        metric: "globex_only_metric".into(),
        measure: Some("amount".into()),
        ..q
    };
    assert_eq!(
        windows.value(&acme, &theirs).await.unwrap_err().code,
        "unknown_metric"
    );
}
