//! Shared set-up for the API tests: an embedded store with two tenants whose data carry
//! markers (so a leak is visible in any body), the router over it, and request helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use metrics_query::api::{AppState, IdentitySource, LocalTokens, ResponseCache, app};
use metrics_query::embedded::EmbeddedEngine;
use metrics_query::model::Limits;
use metrics_schema::{EventTime, TenantId, parse_event};
use metrics_store::{EmbeddedSettings, EmbeddedStore, Store, convert};
use tower::ServiceExt;

pub const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z
pub const SECRET: &[u8] = b"test-secret-0123456789abcdef0123";
/// Values only globex's records hold: none may ever appear in an answer to acme (names a
/// caller sent may be echoed in an error; data never is).
pub const GLOBEX_MARKERS: &[&str] = &["globex-secret-repo", "987654"];

fn event(
    tenant: &str,
    metric: &str,
    id: u32,
    hour: i64,
    metadata: serde_json::Value,
    data: serde_json::Value,
) -> Vec<u8> {
    let mut meta = serde_json::json!({"tenant_id": tenant, "event_id": format!("e{id}")});
    meta.as_object_mut()
        .unwrap()
        .extend(metadata.as_object().unwrap().clone());
    let mut d = serde_json::json!({"event_time": T0 + hour * 3_600_000 + i64::from(id)});
    d.as_object_mut()
        .unwrap()
        .extend(data.as_object().unwrap().clone());
    serde_json::to_vec(&serde_json::json!({"metric_name": metric, "metadata": meta, "data": d})).unwrap()
}

/// acme-prod: `scan_completed` in hours 0 and 2 (repos api, web); globex: the same metric with
/// its own marker values, and a metric and a dimension acme does not have.
pub async fn two_tenant_store() -> Arc<EmbeddedStore> {
    let mut settings = EmbeddedSettings::new(":memory:");
    settings.retention_days = 365 * 100;
    let store = EmbeddedStore::open(settings).unwrap();

    let events = [
        event(
            "acme-prod",
            "scan_completed",
            1,
            0,
            serde_json::json!({"repo_name": "api"}),
            serde_json::json!({"findings_count": 3, "ratio": 0.5}),
        ),
        event(
            "acme-prod",
            "scan_completed",
            2,
            0,
            serde_json::json!({"repo_name": "web"}),
            serde_json::json!({"findings_count": 4, "ratio": 0.25}),
        ),
        event(
            "acme-prod",
            "scan_completed",
            3,
            2,
            serde_json::json!({"repo_name": "api"}),
            serde_json::json!({"findings_count": 10, "ratio": 1.0}),
        ),
        event(
            "globex",
            "scan_completed",
            4,
            0,
            serde_json::json!({"repo_name": "globex-secret-repo", "globex_dim": "x"}),
            serde_json::json!({"findings_count": 987654, "ratio": 9.0}),
        ),
        event(
            "globex",
            "globex_only_metric",
            5,
            1,
            serde_json::json!({"repo_name": "globex-secret-repo"}),
            serde_json::json!({"amount": 987654}),
        ),
    ];
    let now = EventTime::from_millis(T0 + 86_400_000);
    for bytes in events {
        let e = parse_event(&bytes, now).unwrap();
        let record = convert(&e).unwrap();
        let report = store
            .write(&e.tenant_id, &[record], Instant::now() + Duration::from_secs(5))
            .await;
        assert_eq!(report.count("written"), 1, "{report:?}");
    }
    Arc::new(store)
}

pub fn tokens() -> LocalTokens {
    LocalTokens::new(SECRET)
}

pub fn token(tenant: &str) -> String {
    tokens().mint(&TenantId::parse(tenant).unwrap(), 300).unwrap()
}

pub fn local_app(store: Arc<EmbeddedStore>) -> Router {
    app(AppState::new(
        Arc::new(EmbeddedEngine::new(store, Limits::default())),
        IdentitySource::local(tokens()),
        ResponseCache::new(Duration::from_secs(60), 100),
    ))
}

pub fn gateway_app(store: Arc<EmbeddedStore>, claim: &str) -> Router {
    app(AppState::new(
        Arc::new(EmbeddedEngine::new(store, Limits::default())),
        IdentitySource::ApiGateway {
            claim: claim.to_owned(),
        },
        ResponseCache::new(Duration::ZERO, 0),
    ))
}

/// The answer: status, headers, body text and body as JSON (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

pub fn get(uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

pub fn post(uri: &str, bearer: Option<&str>, body: serde_json::Value) -> Request<Body> {
    let mut b = Request::post(uri).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// A series request over acme's data (hours 0–3 of T0).
pub fn series_uri(extra: &str) -> String {
    format!(
        "/v1/series?metric=scan_completed&measure=findings_count&bin=1h&from={T0}&to={}{extra}",
        T0 + 4 * 3_600_000
    )
}

/// The answer is a clean refusal: the expected 4xx, a JSON error with a code and message, and
/// nothing of globex's data.
pub fn assert_refused(answer: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(answer.status.as_u16(), status, "{what}: {}", answer.text);
    assert_eq!(answer.json["error"]["code"], code, "{what}: {}", answer.text);
    assert!(
        answer.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    assert_eq!(
        answer.json.as_object().map(|o| o.len()),
        Some(1),
        "{what}: only the error: {}",
        answer.text
    );
    assert_no_globex(answer, what);
}

pub fn assert_no_globex(answer: &Answer, what: &str) {
    for marker in GLOBEX_MARKERS {
        assert!(
            !answer.text.contains(marker),
            "{what}: leaked {marker}: {}",
            answer.text
        );
    }
}

/// The router over `store` with the alert routes, their store in memory, and `limits`.
pub fn alerts_app(
    store: Arc<EmbeddedStore>,
    limits: metrics_alerts::AlertLimits,
    policy: metrics_alerts::UrlPolicy,
) -> (Router, Arc<metrics_alerts::store::sqlite::SqliteAlertStore>) {
    let alerts = Arc::new(metrics_alerts::store::sqlite::SqliteAlertStore::in_memory().unwrap());
    let state = AppState::new(
        Arc::new(EmbeddedEngine::new(store, Limits::default())),
        IdentitySource::local(tokens()),
        ResponseCache::new(Duration::from_secs(60), 100),
    )
    .with_alerts(metrics_query::api::AlertsApi {
        store: alerts.clone(),
        limits,
        policy,
    });
    (app(state), alerts)
}

/// A request with a JSON body and any method.
pub fn with_body(method: &str, uri: &str, bearer: Option<&str>, body: serde_json::Value) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// A request without a body and any method.
pub fn bare(method: &str, uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}
