#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The alert routes: the secret once, tenant isolation, the catalog's errors, limits, and a
//! 4xx with a code for every kind of bad input.

use metrics_alerts::{AlertLimits, AlertStore, UrlPolicy};
use serde_json::{Value, json};

use crate::common::*;

/// A public https receiver (a literal address, so no name is resolved in tests).
const URL: &str = "https://93.184.215.14/hooks/alerts";

fn alert(patch: Value) -> Value {
    let mut body = json!({
        "name": "Many findings",
        "metric": "scan_completed",
        "measure": "findings_count",
        "aggregation": "sum",
        "window": "1h",
        "interval": "5m",
        "condition": {"type": "above", "threshold": 5},
        "url": URL
    });
    for (k, v) in patch.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn app() -> axum::Router {
    alerts_app(
        two_tenant_store().await,
        AlertLimits::default(),
        UrlPolicy::PUBLIC,
    )
    .0
}

async fn create(app: &axum::Router, tenant: &str, body: Value) -> Answer {
    send(app, post("/v1/alerts", Some(&token(tenant)), body)).await
}

#[tokio::test]
async fn an_alert_is_created_with_its_secret_once_then_read_changed_and_deleted() {
    let app = app().await;
    let acme = token("acme-prod");
    let created = create(&app, "acme-prod", alert(json!({"filters": {"repo_name": "api"}}))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = created.json["id"].as_str().unwrap().to_owned();
    let secret = created.json["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created.json["window"], "1h");
    assert_eq!(created.json["state"]["status"], "ok");

    let listed = send(&app, get("/v1/alerts", Some(&acme))).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["alerts"][0]["id"], id.as_str());
    assert!(!listed.text.contains(secret), "the secret is shown once");
    let one = send(&app, get(&format!("/v1/alerts/{id}"), Some(&acme))).await;
    assert_eq!(
        (one.status.as_u16(), &one.json["filters"]),
        (200, &json!({"repo_name": "api"}))
    );
    assert!(!one.text.contains(secret));

    let changed = send(
        &app,
        with_body(
            "PUT",
            &format!("/v1/alerts/{id}"),
            Some(&acme),
            alert(json!({"condition": {"type": "below", "threshold": 1}})),
        ),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        changed.json["condition"],
        json!({"type": "below", "threshold": 1.0})
    );
    let events = send(&app, get(&format!("/v1/alerts/{id}/events"), Some(&acme))).await;
    assert_eq!(
        (events.status.as_u16(), &events.json),
        (200, &json!({"events": []}))
    );

    let deleted = send(&app, bare("DELETE", &format!("/v1/alerts/{id}"), Some(&acme))).await;
    assert_eq!(deleted.status, 204);
    let gone = send(&app, get(&format!("/v1/alerts/{id}"), Some(&acme))).await;
    assert_refused(&gone, 404, "alert_not_found", "deleted");
}

#[tokio::test]
async fn a_measure_without_an_aggregation_takes_the_mapping_default_and_count_needs_none() {
    let app = app().await;
    let mut body = alert(json!({}));
    body.as_object_mut().unwrap().remove("aggregation");
    let created = create(&app, "acme-prod", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(["sum", "avg"].contains(&created.json["aggregation"].as_str().unwrap()));
    let mut count = alert(json!({"condition": {"type": "absent"}, "window": "1d"}));
    count.as_object_mut().unwrap().remove("aggregation");
    count.as_object_mut().unwrap().remove("measure");
    let created = create(&app, "acme-prod", count).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["aggregation"], "count");
}

#[tokio::test]
async fn a_tenant_cannot_create_read_change_or_delete_another_tenants_alerts() {
    let (app, store) = alerts_app(
        two_tenant_store().await,
        AlertLimits::default(),
        UrlPolicy::PUBLIC,
    );
    let created = create(&app, "acme-prod", alert(json!({}))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let globex = token("globex");

    let listed = send(&app, get("/v1/alerts", Some(&globex))).await;
    assert_eq!(listed.json, json!({"alerts": []}));
    for (what, request) in [
        ("read", get(&format!("/v1/alerts/{id}"), Some(&globex))),
        ("events", get(&format!("/v1/alerts/{id}/events"), Some(&globex))),
        (
            "delete",
            bare("DELETE", &format!("/v1/alerts/{id}"), Some(&globex)),
        ),
        (
            "change",
            with_body(
                "PUT",
                &format!("/v1/alerts/{id}"),
                Some(&globex),
                alert(json!({})),
            ),
        ),
    ] {
        let answer = send(&app, request).await;
        assert_refused(&answer, 404, "alert_not_found", what);
        assert!(!answer.text.contains("Many findings"), "{what}: {}", answer.text);
    }
    // acme's alert is untouched.
    let stored = store.get("acme-prod", &id).await.unwrap().unwrap();
    assert_eq!(
        stored.alert.definition.condition,
        metrics_alerts::Condition::Above { threshold: 5.0 }
    );

    // Nor can a tenant point an alert at another's metric or dimension, or name a tenant.
    let theirs = create(
        &app,
        "acme-prod",
        alert(json!({"metric": "globex_only_metric", "measure": "amount"})),
    )
    .await;
    assert_refused(&theirs, 404, "unknown_metric", "globex's metric");
    let their_dim = create(&app, "acme-prod", alert(json!({"filters": {"globex_dim": "x"}}))).await;
    assert_refused(&their_dim, 400, "unknown_dimension", "globex's dimension");
    let named = create(&app, "acme-prod", alert(json!({"tenant_id": "globex"}))).await;
    assert_refused(&named, 400, "tenant_not_allowed", "a tenant in the body");
    let unauthenticated = send(&app, post("/v1/alerts", None, alert(json!({})))).await;
    assert_eq!(unauthenticated.status, 401);
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_its_code() {
    let app = app().await;
    for (patch, status, code) in [
        (json!({"aggregation": "median"}), 400, "invalid_aggregation"),
        (json!({"window": "0m"}), 400, "invalid_window"),
        (json!({"window": "99999d"}), 400, "invalid_window"),
        (json!({"interval": "30s"}), 400, "invalid_interval"),
        (json!({"interval": "0m"}), 400, "invalid_interval"),
        (json!({"cooldown": "365d"}), 400, "invalid_cooldown"),
        (
            json!({"condition": {"type": "above", "threshold": "five"}}),
            400,
            "invalid_condition",
        ),
        (json!({"condition": null}), 400, "invalid_condition"),
        (json!({"name": ""}), 400, "invalid_name"),
        (json!({"url": "not a url"}), 400, "invalid_url"),
        (json!({"url": "http://93.184.215.14/"}), 400, "invalid_url"),
        (json!({"url": "http://127.0.0.1:9000/"}), 400, "invalid_url"),
        (
            json!({"url": "https://169.254.169.254/latest/meta-data/"}),
            400,
            "address_not_allowed",
        ),
        (
            json!({"url": "https://[::ffff:10.0.0.1]/"}),
            400,
            "address_not_allowed",
        ),
        (json!({"url": "https://localhost/"}), 400, "address_not_allowed"),
        (json!({"measure": "nope"}), 400, "unknown_measure"),
        (json!({"metric": "nope"}), 404, "unknown_metric"),
        (json!({"metric": "bad name"}), 400, "invalid_metric"),
        (json!({"filters": {"nope": "x"}}), 400, "unknown_dimension"),
        (json!({"colour": "red"}), 400, "unknown_parameter"),
        (json!({"window": 60}), 400, "invalid_request"),
    ] {
        let answer = create(&app, "acme-prod", alert(patch.clone())).await;
        assert_refused(&answer, status, code, &patch.to_string());
    }
    let not_json = send(
        &app,
        axum::http::Request::post("/v1/alerts")
            .header("authorization", format!("Bearer {}", token("acme-prod")))
            .body(axum::body::Body::from("{"))
            .unwrap(),
    )
    .await;
    assert_refused(&not_json, 400, "invalid_request", "not JSON");
    let huge = create(&app, "acme-prod", alert(json!({"name": "x".repeat(20_000)}))).await;
    assert_eq!(huge.status, 400, "{}", huge.text);
    let odd_id = send(&app, get("/v1/alerts/..%2F..%2Fetc", Some(&token("acme-prod")))).await;
    assert_refused(&odd_id, 404, "alert_not_found", "not an id");
}

#[tokio::test]
async fn per_tenant_limits_are_clear_errors() {
    let limits = AlertLimits {
        max_alerts: 2,
        min_interval_minutes: 5,
        ..AlertLimits::default()
    };
    let (app, _) = alerts_app(two_tenant_store().await, limits, UrlPolicy::PUBLIC);
    let fast = create(&app, "acme-prod", alert(json!({"interval": "1m"}))).await;
    assert_refused(&fast, 400, "invalid_interval", "under the minimum interval");
    assert!(fast.json["error"]["message"].as_str().unwrap().contains('5'));
    for _ in 0..2 {
        assert_eq!(create(&app, "acme-prod", alert(json!({}))).await.status, 201);
    }
    let third = create(&app, "acme-prod", alert(json!({}))).await;
    assert_refused(&third, 409, "too_many_alerts", "over the count");
    // Another tenant's count is its own.
    let globex = create(&app, "globex", alert(json!({}))).await;
    assert_eq!(globex.status, 201, "{}", globex.text);
}

#[tokio::test]
async fn local_mode_accepts_a_receiver_on_127_0_0_1_only_when_allowed() {
    let (app, _) = alerts_app(two_tenant_store().await, AlertLimits::default(), UrlPolicy::LOCAL);
    let ok = create(
        &app,
        "acme-prod",
        alert(json!({"url": "http://127.0.0.1:9000/hook"})),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let other = create(&app, "acme-prod", alert(json!({"url": "http://10.0.0.1/hook"}))).await;
    assert_refused(&other, 400, "invalid_url", "http to another address");
}

#[test]
fn the_openapi_document_lists_every_alert_error_code() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let listed = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    for code in metrics_alerts::AlertError::CODES {
        assert!(
            listed.as_array().unwrap().contains(&code.into()),
            "{code} is not in openapi.json"
        );
    }
}
