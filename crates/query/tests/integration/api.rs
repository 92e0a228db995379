#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The query API's behaviour over the embedded store: answers, parameters in both forms,
//! caching headers, JSON errors for every failure, and the OpenAPI document matching the router.

use super::common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::*;
use metrics_query::api::{AppState, IdentitySource, LocalTokens, ResponseCache, app, routes};
use metrics_query::embedded::EmbeddedEngine;
use metrics_query::engine::{Engine, EngineFuture};
use metrics_query::model::Limits;
use metrics_query::model::{QueryError, QueryErrorCode};
use metrics_query::{
    AggregationDefaults, BreakdownRequest, BreakdownResult, Catalog, SeriesRequest, SeriesResult,
};
use metrics_schema::TenantId;

#[tokio::test]
async fn metrics_lists_the_callers_metrics_with_measures_and_dimensions() {
    let app = local_app(two_tenant_store().await);
    let a = send(&app, get("/v1/metrics", Some(&token("acme-prod")))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["tenant"], "acme-prod");
    let metrics = a.json["metrics"].as_object().unwrap();
    assert_eq!(metrics.keys().collect::<Vec<_>>(), ["scan_completed"]);
    let scan = &metrics["scan_completed"];
    assert_eq!(
        scan["measures"],
        serde_json::json!({"findings_count": "bigint", "ratio": "double"})
    );
    assert!(
        scan["dimensions"]
            .as_array()
            .unwrap()
            .contains(&"repo_name".into())
    );
    assert_eq!(scan["records"], 3);
    assert_eq!(a.headers["content-type"], "application/json");
    // Each measure's default aggregation is added beside the schema's keys: findings_count is
    // a count in infra/metrics.toml, ratio is not in it (numeric, so summed).
    assert_eq!(
        scan["default_aggregation"],
        serde_json::json!({"findings_count": "sum", "ratio": "sum"})
    );
    let mut keys: Vec<&str> = scan.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "default_aggregation",
            "dimensions",
            "first_ms",
            "last_ms",
            "measures",
            "records"
        ]
    );
}

/// acme's scan_completed as a mapping file that averages `ratio` by default.
const RATIO_AVERAGED: &str = r#"
[[metric]]
name = "scan_completed"
pattern = { source = ["scanner"], detail-type = ["scan-completed"] }
tenant_id = "$.detail.tenant_id"
metadata.repo_name = { from = "$.detail.repo_name", type = "id" }
data.findings_count = { from = "$.detail.findings_count", type = "number" }
data.ratio = { from = "$.detail.ratio", type = "number", agg = "avg" }
"#;

#[tokio::test]
async fn a_measure_named_without_an_aggregation_takes_its_declared_default() {
    let defaults = AggregationDefaults::from_toml(RATIO_AVERAGED).unwrap();
    let app = app(AppState::new(
        Arc::new(EmbeddedEngine::new(two_tenant_store().await, Limits::default())),
        IdentitySource::local(tokens()),
        ResponseCache::new(Duration::from_secs(60), 100),
    )
    .with_defaults(defaults));
    let t = token("acme-prod");
    let values = |a: &Answer| -> Vec<Option<f64>> {
        a.json["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["v"].as_f64())
            .collect()
    };

    let catalog = send(&app, get("/v1/metrics", Some(&t))).await;
    assert_eq!(
        catalog.json["metrics"]["scan_completed"]["default_aggregation"],
        serde_json::json!({"findings_count": "sum", "ratio": "avg"})
    );

    let uri = |extra: &str| {
        format!(
            "/v1/series?metric=scan_completed&bin=1h&from={T0}&to={}{extra}",
            T0 + 4 * 3_600_000
        )
    };
    let averaged = send(&app, get(&uri("&measure=ratio"), Some(&t))).await;
    assert_eq!(averaged.status, 200, "{}", averaged.text);
    assert_eq!(averaged.json["aggregation"], "avg");
    assert_eq!(values(&averaged), [Some(0.375), None, Some(1.0), None]);
    let body = serde_json::json!({"metric": "scan_completed", "measures": ["ratio"], "bin": "1h",
        "from": T0, "to": T0 + 4 * 3_600_000});
    assert_eq!(
        send(&app, post("/v1/series", Some(&t), body)).await.json,
        averaged.json
    );

    // An explicit aggregation always wins; a count measure keeps sum.
    let summed = send(&app, get(&uri("&measure=ratio&agg=sum"), Some(&t))).await;
    assert_eq!(summed.json["aggregation"], "sum");
    assert_eq!(values(&summed), [Some(0.75), None, Some(1.0), None]);
    let counts = send(&app, get(&uri("&measure=findings_count"), Some(&t))).await;
    assert_eq!(counts.json["aggregation"], "sum");
    // Measures whose defaults differ take sum, the default before measures declared one.
    let mixed = send(&app, get(&uri("&measure=ratio&measure=findings_count"), Some(&t))).await;
    assert_eq!(mixed.json["aggregation"], "sum", "{}", mixed.text);
    // No measure: records are counted, as before.
    let records = send(&app, get(&uri(""), Some(&t))).await;
    assert_eq!(records.json["aggregation"], "count");

    let breakdown = format!(
        "/v1/breakdown?metric=scan_completed&measure=ratio&dimension=repo_name&from={T0}&to={}",
        T0 + 86_400_000
    );
    let b = send(&app, get(&breakdown, Some(&t))).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json["aggregation"], "avg");
    assert_eq!(
        b.json["rows"],
        serde_json::json!([{"value": "api", "v": 0.75}, {"value": "web", "v": 0.25}])
    );

    // A metric the tenant does not have is still refused as before.
    let unknown = send(&app, get("/v1/series?metric=nope&measure=ratio", Some(&t))).await;
    assert_refused(&unknown, 404, "unknown_metric", "unknown metric");
}

#[tokio::test]
async fn series_by_get_and_by_post_are_the_same_answer() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let by_get = send(
        &app,
        get(&series_uri("&fill=zero&filter=repo_name%3Dapi"), Some(&t)),
    )
    .await;
    let body = serde_json::json!({
        "metric": "scan_completed", "measures": ["findings_count"], "bin": "1h", "from": T0,
        "to": T0 + 4 * 3_600_000, "fill": "zero", "filters": {"repo_name": "api"}
    });
    let by_post = send(&app, post("/v1/series", Some(&t), body)).await;
    assert_eq!(by_get.status, 200, "{}", by_get.text);
    assert_eq!(by_get.json, by_post.json);
    let values: Vec<f64> = by_get.json["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["v"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [3.0, 0.0, 10.0, 0.0]);
    assert_eq!(by_get.json["bin"], "1h");
}

#[tokio::test]
async fn series_group_by_and_times_as_dates() {
    let app = local_app(two_tenant_store().await);
    let a = send(
        &app,
        get("/v1/series?metric=scan_completed&measure=findings_count&group_by=repo_name&bin=1d&from=2026-11-23&to=2026-11-24", Some(&token("acme-prod"))),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let groups: Vec<(String, f64)> = a.json["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["group"].as_str().unwrap().to_owned(),
                s["points"][0]["v"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("api".to_owned(), 13.0), ("web".to_owned(), 4.0)]);
}

#[tokio::test]
async fn breakdown_ranks_values_by_get_and_post() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let uri = format!(
        "/v1/breakdown?metric=scan_completed&measure=findings_count&dimension=repo_name&from={T0}&to={}&limit=1",
        T0 + 86_400_000
    );
    let a = send(&app, get(&uri, Some(&t))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["rows"], serde_json::json!([{"value": "api", "v": 13.0}]));
    let body = serde_json::json!({"metric": "scan_completed", "dimension": "repo_name", "from": T0, "to": T0 + 86_400_000});
    let counts = send(&app, post("/v1/breakdown", Some(&t), body)).await;
    assert_eq!(counts.json["aggregation"], "count");
    assert_eq!(
        counts.json["rows"],
        serde_json::json!([{"value": "api", "v": 2.0}, {"value": "web", "v": 1.0}])
    );
}

#[tokio::test]
async fn answers_are_cached_per_tenant_with_private_cache_headers_and_etags() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let first = send(&app, get(&series_uri(""), Some(&t))).await;
    assert_eq!(first.headers["x-cache"], "miss");
    assert_eq!(first.headers["cache-control"], "private, max-age=60");
    assert_eq!(first.headers["vary"], "Authorization");
    let again = send(&app, get(&series_uri(""), Some(&t))).await;
    assert_eq!(again.headers["x-cache"], "hit");
    assert_eq!(again.text, first.text);
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");

    let conditional = Request::get(series_uri(""))
        .header("authorization", format!("Bearer {t}"))
        .header("if-none-match", &etag)
        .body(Body::empty())
        .unwrap();
    let not_modified = send(&app, conditional).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.text.is_empty());

    // The same request by another tenant is its own entry, with its own data.
    let theirs = send(&app, get(&series_uri(""), Some(&token("globex")))).await;
    assert_eq!(theirs.headers["x-cache"], "miss");
    assert_ne!(theirs.headers["etag"], first.headers["etag"]);
}

#[test]
fn the_cache_expires_entries_and_stays_bounded() {
    let cache = ResponseCache::new(Duration::from_millis(30), 2);
    cache.put("a", "k1", "1".into());
    cache.put("a", "k2", "2".into());
    cache.put("a", "k3", "3".into());
    assert_eq!(cache.len(), 2, "the oldest went");
    assert!(cache.get("a", "k1").is_none());
    assert_eq!(cache.get("a", "k3").unwrap().body, "3");
    assert!(cache.get("b", "k3").is_none(), "keys hold the tenant");
    std::thread::sleep(Duration::from_millis(40));
    assert!(cache.get("a", "k3").is_none(), "expired");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    assert_refused(
        &send(&app, get("/nope", Some(&t))).await,
        404,
        "not_found",
        "unknown path",
    );
    let delete = Request::delete("/v1/series")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    assert_refused(&send(&app, delete).await, 405, "method_not_allowed", "DELETE");
    let bad = Request::post("/v1/series")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::from("{not json"))
        .unwrap();
    assert_refused(&send(&app, bad).await, 400, "invalid_request", "bad JSON");
    let missing = send(&app, get("/v1/series?since=1d", Some(&t))).await;
    assert_refused(&missing, 400, "invalid_request", "no metric");
    let twice = send(&app, get("/v1/series?metric=a&metric=b", Some(&t))).await;
    assert_refused(&twice, 400, "invalid_request", "metric twice");
    let wrong_type = send(
        &app,
        post("/v1/series", Some(&t), serde_json::json!({"metric": 5})),
    )
    .await;
    assert_refused(&wrong_type, 400, "invalid_request", "metric as a number");
}

/// An engine whose store is down, with a careless message that must not reach the caller.
#[derive(Debug)]
struct BrokenStore;

const INTERNAL_DETAIL: &str = "connection refused to 10.0.0.7:5432 (arn:aws:timestream:secret)";

fn down<'a, T: Send + 'a>() -> EngineFuture<'a, T> {
    Box::pin(async { Err(QueryError::new(QueryErrorCode::StoreUnavailable, INTERNAL_DETAIL)) })
}

impl Engine for BrokenStore {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn catalog<'a>(&'a self, _: &'a TenantId<'static>) -> EngineFuture<'a, Catalog> {
        down()
    }
    fn series<'a>(
        &'a self,
        _: &'a TenantId<'static>,
        _: &'a SeriesRequest,
    ) -> EngineFuture<'a, SeriesResult> {
        down()
    }
    fn breakdown<'a>(
        &'a self,
        _: &'a TenantId<'static>,
        _: &'a BreakdownRequest,
    ) -> EngineFuture<'a, BreakdownResult> {
        down()
    }
}

#[tokio::test]
async fn a_store_failure_is_a_503_that_is_not_cached() {
    let app = app(AppState::new(
        Arc::new(BrokenStore),
        IdentitySource::local(LocalTokens::new(SECRET)),
        ResponseCache::new(Duration::from_secs(60), 10),
    ));
    let a = send(&app, get(&series_uri(""), Some(&token("acme-prod")))).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json["error"]["code"], "store_unavailable");
    assert_eq!(a.headers["cache-control"], "no-store");
    assert!(
        !a.text.contains("10.0.0.7") && !a.text.contains("arn:"),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_the_router_serves() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let documented: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            let mut methods: Vec<String> = ops.as_object().unwrap().keys().cloned().collect();
            methods.sort();
            (path.clone(), methods)
        })
        .collect();
    let mut served: Vec<(String, Vec<String>)> = routes()
        .into_iter()
        .map(|(path, methods)| {
            let mut m: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
            m.sort();
            (path.to_owned(), m)
        })
        .collect();
    served.sort();
    let mut documented_sorted = documented.clone();
    documented_sorted.sort();
    assert_eq!(documented_sorted, served);

    // And the router really answers those methods (401: exists, needs a token) and no others.
    let app = local_app(two_tenant_store().await);
    for (path, methods) in &documented {
        for method in ["get", "post", "put", "delete", "patch"] {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(path.as_str())
                .body(Body::empty())
                .unwrap();
            let expected = if methods.iter().any(|m| m == method) {
                401
            } else {
                405
            };
            assert_eq!(
                send(&app, request).await.status.as_u16(),
                expected,
                "{method} {path}"
            );
        }
    }
}

/// A store that answers but cannot run the query (here: its table was dropped behind its
/// back) is a 500 with its own code: a retry would fail the same way, so not a 503.
#[tokio::test]
async fn a_query_the_store_cannot_run_is_a_500_query_failed_not_a_503() {
    let store = two_tenant_store().await;
    store
        .connection()
        .unwrap()
        .execute_batch("DROP TABLE \"tenant/acme-prod\"")
        .unwrap();
    let app = local_app(store);
    let a = send(&app, get(&series_uri(""), Some(&token("acme-prod")))).await;
    assert_eq!(a.status, 500, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "query_failed");
    assert!(!a.text.contains("no such table"), "{}", a.text);
    assert_eq!(a.headers["cache-control"], "no-store");
}

#[test]
fn the_openapi_document_lists_every_query_error_code() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let listed = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    for code in QueryErrorCode::ALL {
        assert!(
            listed.as_array().unwrap().contains(&code.as_str().into()),
            "{} is not in openapi.json",
            code.as_str()
        );
    }
}
