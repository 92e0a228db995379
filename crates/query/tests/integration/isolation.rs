#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Every way a caller could try to read another tenant's data, against the router with no
//! server: each attempt must get a clean 4xx with a JSON error, and no byte of globex's data.
//! acme-prod is the caller; globex's records carry marker values (`common::GLOBEX_MARKERS`).

use super::common;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use metrics_query::api::LocalTokens;
use metrics_query::api::token::{LOCAL_AUDIENCE, LOCAL_ISSUER, LocalClaims};
use metrics_schema::TenantId;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(tenant: &str) -> LocalClaims {
    LocalClaims {
        sub: format!("local:{tenant}"),
        tenant_id: tenant.into(),
        aud: LOCAL_AUDIENCE.into(),
        iss: LOCAL_ISSUER.into(),
        iat: now(),
        exp: now() + 300,
    }
}

#[tokio::test]
async fn the_callers_own_request_succeeds_so_refusals_below_mean_something() {
    let app = local_app(two_tenant_store().await);
    let a = send(&app, get(&series_uri(""), Some(&token("acme-prod")))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let values: Vec<_> = a.json["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["v"].clone())
        .collect();
    assert_eq!(
        values,
        [
            7.0.into(),
            serde_json::Value::Null,
            10.0.into(),
            serde_json::Value::Null
        ]
    );
    assert_no_globex(&a, "acme's own series");
    let g = send(&app, get(&series_uri(""), Some(&token("globex")))).await;
    assert!(
        g.text.contains("987654"),
        "globex's token reads globex: {}",
        g.text
    );
}

#[tokio::test]
async fn another_tenants_id_in_the_query_string_is_refused() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    for extra in [
        "&tenant=globex",
        "&tenant_id=globex",
        "&TENANT=globex",
        "&tenant-id=globex",
        "&x-tenant-id=globex",
    ] {
        let a = send(&app, get(&series_uri(extra), Some(&t))).await;
        assert_refused(&a, 400, "tenant_not_allowed", extra);
    }
    for uri in [
        "/v1/metrics?tenant=globex",
        "/v1/breakdown?metric=scan_completed&dimension=repo_name&tenant=globex",
    ] {
        assert_refused(
            &send(&app, get(uri, Some(&t))).await,
            400,
            "tenant_not_allowed",
            uri,
        );
    }
    // Any other unknown parameter is refused too, so nothing is silently ignored.
    let a = send(&app, get(&series_uri("&table=globex"), Some(&t))).await;
    assert_refused(&a, 400, "unknown_parameter", "table=");
    let a = send(
        &app,
        get(&series_uri("&sql=SELECT%20*%20FROM%20globex"), Some(&t)),
    )
    .await;
    assert_refused(&a, 400, "unknown_parameter", "sql=");
}

#[tokio::test]
async fn another_tenants_id_in_the_path_finds_no_route() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    for path in [
        "/v1/tenants/globex/series?metric=scan_completed",
        "/globex/v1/series?metric=scan_completed",
        "/v1/series/globex?metric=scan_completed",
        "/v1/metrics/globex",
        "/v1/../globex/metrics",
        "/v1/%2e%2e/globex/metrics",
        // Token minting exists only in `metrics-lake serve`, never in this (the Lambda) router.
        "/local/token?tenant=globex",
        "/local/tenants",
    ] {
        assert_refused(&send(&app, get(path, Some(&t))).await, 404, "not_found", path);
    }
}

#[tokio::test]
async fn another_tenants_id_in_the_body_is_refused() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let base = serde_json::json!({"metric": "scan_completed", "measures": ["findings_count"], "from": T0, "to": T0 + 4 * 3_600_000});
    for field in ["tenant", "tenant_id", "tenantId", "TENANT_ID"] {
        let mut body = base.clone();
        body[field] = "globex".into();
        assert_refused(
            &send(&app, post("/v1/series", Some(&t), body)).await,
            400,
            "tenant_not_allowed",
            field,
        );
    }
    let body = serde_json::json!({"metric": "scan_completed", "dimension": "repo_name", "tenant": "globex"});
    assert_refused(
        &send(&app, post("/v1/breakdown", Some(&t), body)).await,
        400,
        "tenant_not_allowed",
        "breakdown",
    );
    let mut body = base.clone();
    body["table"] = "globex".into();
    assert_refused(
        &send(&app, post("/v1/series", Some(&t), body)).await,
        400,
        "unknown_parameter",
        "table",
    );
    let a = send(&app, post("/v1/series?tenant=globex", Some(&t), base.clone())).await;
    assert_refused(&a, 400, "tenant_not_allowed", "query string of a POST");
}

#[tokio::test]
async fn another_tenants_id_in_a_header_is_refused() {
    let app = local_app(two_tenant_store().await);
    for header in [
        "x-tenant-id",
        "X-Tenant",
        "tenant",
        "tenant-id",
        "x-metrics-tenant",
    ] {
        let request = Request::get(series_uri(""))
            .header("authorization", format!("Bearer {}", token("acme-prod")))
            .header(header, "globex")
            .body(Body::empty())
            .unwrap();
        assert_refused(&send(&app, request).await, 400, "tenant_not_allowed", header);
    }
}

#[tokio::test]
async fn forged_expired_unsigned_and_foreign_tokens_are_refused() {
    let app = local_app(two_tenant_store().await);
    let tokens = LocalTokens::new(SECRET);
    let mut expired = claims("globex");
    expired.iat = now() - 7200;
    expired.exp = now() - 3600;
    let mut wrong_audience = claims("globex");
    wrong_audience.aud = "some-other-api".into();
    let mut wrong_issuer = claims("globex");
    wrong_issuer.iss = "https://evil.example".into();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("globex")).unwrap())
    );
    // acme's real token with its payload swapped for globex's: the signature no longer matches.
    let real = token("acme-prod");
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("globex")).unwrap()),
        parts[2]
    );
    let other_algorithm = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims("globex"),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        (
            "forged with another secret",
            Some(
                LocalTokens::new(b"not-the-server-secret")
                    .mint(&TenantId::parse("globex").unwrap(), 300)
                    .unwrap(),
            ),
        ),
        ("expired", Some(tokens.mint_claims(&expired).unwrap())),
        (
            "wrong audience",
            Some(tokens.mint_claims(&wrong_audience).unwrap()),
        ),
        ("wrong issuer", Some(tokens.mint_claims(&wrong_issuer).unwrap())),
        ("unsigned (alg none)", Some(unsigned)),
        ("tampered payload", Some(tampered)),
        ("another algorithm", Some(other_algorithm)),
        ("garbage", Some("abc.def.ghi".into())),
        ("empty", Some(String::new())),
    ];
    for (what, bearer) in cases {
        for uri in [series_uri(""), "/v1/metrics".to_owned()] {
            assert_refused(
                &send(&app, get(&uri, bearer.as_deref())).await,
                401,
                "unauthorized",
                what,
            );
        }
    }
    let a = send(&app, get("/v1/metrics", None)).await;
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    let basic = Request::get("/v1/metrics")
        .header("authorization", "Basic Z2xvYmV4Og==")
        .body(Body::empty())
        .unwrap();
    assert_refused(&send(&app, basic).await, 401, "unauthorized", "basic auth");
    let in_query = format!("/v1/metrics?access_token={}", token("globex"));
    assert_refused(
        &send(&app, get(&in_query, None)).await,
        401,
        "unauthorized",
        "token in the query string",
    );
}

#[tokio::test]
async fn a_valid_token_for_an_invalid_tenant_id_is_forbidden() {
    let app = local_app(two_tenant_store().await);
    for tenant in ["../globex", "globex\" OR \"1", "a", ""] {
        let t = LocalTokens::new(SECRET).mint_claims(&claims(tenant)).unwrap();
        assert_refused(
            &send(&app, get("/v1/metrics", Some(&t))).await,
            403,
            "no_tenant",
            tenant,
        );
    }
}

/// An API Gateway HTTP API (v2) event, as `lambda_http` receives it, turned into a request.
fn gateway_request(
    uri_query: &str,
    authorizer: serde_json::Value,
    headers: serde_json::Value,
) -> Request<Body> {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "GET /{proxy+}", "rawPath": "/v1/series", "rawQueryString": uri_query,
        "headers": headers,
        "requestContext": {
            "routeKey": "GET /{proxy+}", "accountId": "123456789012", "stage": "$default", "requestId": "id",
            "authorizer": authorizer, "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_687_200_000_i64,
            "http": {"method": "GET", "path": "/v1/series", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "t"}
        },
        "isBase64Encoded": false
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    request.map(|b| Body::from(b.to_vec()))
}

#[tokio::test]
async fn in_lambda_the_tenant_is_the_authorizers_claim_and_nothing_else() {
    let app = gateway_app(two_tenant_store().await, "custom:tenant_id");
    let query = format!(
        "metric=scan_completed&measure=findings_count&bin=1h&from={T0}&to={}",
        T0 + 4 * 3_600_000
    );
    let jwt = |c: serde_json::Value| serde_json::json!({"jwt": {"claims": c, "scopes": null}});

    let ok = send(
        &app,
        gateway_request(
            &query,
            jwt(serde_json::json!({"custom:tenant_id": "acme-prod", "sub": "u1"})),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.text.contains("\"v\":7.0"), "{}", ok.text);
    assert_no_globex(&ok, "acme via the authorizer");

    // A tenant claim under another name (the configured claim is custom:tenant_id) is not read.
    let a = send(
        &app,
        gateway_request(
            &query,
            jwt(serde_json::json!({"tenant_id": "globex", "sub": "u1"})),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_refused(&a, 403, "no_tenant", "claim under another name");
    let a = send(
        &app,
        gateway_request(
            &query,
            jwt(serde_json::json!({"custom:tenant_id": "glo bex"})),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_refused(&a, 403, "no_tenant", "invalid tenant in the claim");
    // A bearer token the function itself would have to trust: ignored, API Gateway verifies.
    let headers = serde_json::json!({"authorization": format!("Bearer {}", token("globex"))});
    let a = send(&app, gateway_request(&query, serde_json::Value::Null, headers)).await;
    assert_refused(&a, 401, "unauthorized", "no authorizer context, a local token");
    let headers = serde_json::json!({"x-tenant-id": "globex"});
    let a = send(
        &app,
        gateway_request(
            &query,
            jwt(serde_json::json!({"custom:tenant_id": "acme-prod"})),
            headers,
        ),
    )
    .await;
    assert_refused(&a, 400, "tenant_not_allowed", "header beside a valid claim");
    let a = send(
        &app,
        gateway_request(
            &format!("{query}&tenant=globex"),
            jwt(serde_json::json!({"custom:tenant_id": "acme-prod"})),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_refused(&a, 400, "tenant_not_allowed", "query beside a valid claim");

    // A Lambda authorizer (e.g. one that reads an IAM principal tag) returns the tenant as context.
    let lambda_ctx = serde_json::json!({"lambda": {"custom:tenant_id": "acme-prod"}});
    let a = send(&app, gateway_request(&query, lambda_ctx, serde_json::json!({}))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_no_globex(&a, "lambda authorizer context");
    // A request that reached the function without API Gateway (no context at all).
    assert_refused(
        &send(&app, get(&series_uri(""), None)).await,
        401,
        "unauthorized",
        "no context",
    );
}

#[tokio::test]
async fn hostile_identifiers_are_refused_by_the_tenants_own_schema() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let range = format!("from={T0}&to={}", T0 + 4 * 3_600_000);
    let enc = |s: &str| serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_owned();
    let metrics = [
        "scan_completed\" OR 1=1 --",
        "scan_completed'; DROP TABLE \"globex\"; --",
        "scan_completed/* */",
        "scаn_completed", // Cyrillic а
        "SCAN_COMPLETED",
        "SELECT",
        "globex_only_metric",
        "\"globex\".\"scan_completed\"",
    ];
    for metric in metrics {
        let uri = format!("/v1/series?metric={}&{range}", enc(metric));
        assert_refused(
            &send(&app, get(&uri, Some(&t))).await,
            404,
            "unknown_metric",
            metric,
        );
    }
    let measures = [
        "findings_count\" FROM \"globex\" --",
        "findings_cоunt",
        "time",
        "measure_name",
        "*",
        "ts_series",
        "1",
    ];
    for measure in measures {
        let uri = format!(
            "/v1/series?metric=scan_completed&measure={}&{range}",
            enc(measure)
        );
        assert_refused(
            &send(&app, get(&uri, Some(&t))).await,
            400,
            "unknown_measure",
            measure,
        );
    }
    let dimensions = [
        "globex_dim",
        "repo_name\" = \"api\" OR \"1",
        "repo_nаme",
        "tenant_name",
        "time",
        "ts_series",
        "WHERE",
    ];
    for dimension in dimensions {
        let uri = format!(
            "/v1/series?metric=scan_completed&filter={}&{range}",
            enc(&format!("{dimension}=x"))
        );
        assert_refused(
            &send(&app, get(&uri, Some(&t))).await,
            400,
            "unknown_dimension",
            dimension,
        );
        let uri = format!(
            "/v1/series?metric=scan_completed&group_by={}&{range}",
            enc(dimension)
        );
        assert_refused(
            &send(&app, get(&uri, Some(&t))).await,
            400,
            "unknown_dimension",
            dimension,
        );
        let uri = format!(
            "/v1/breakdown?metric=scan_completed&dimension={}&{range}",
            enc(dimension)
        );
        assert_refused(
            &send(&app, get(&uri, Some(&t))).await,
            400,
            "unknown_dimension",
            dimension,
        );
    }
    let a = send(
        &app,
        get(
            &format!(
                "/v1/series?metric=scan_completed&agg={}&measure=ratio&{range}",
                enc("sum) FROM globex --")
            ),
            Some(&t),
        ),
    )
    .await;
    assert_refused(&a, 400, "invalid_aggregation", "aggregation");
    let a = send(
        &app,
        get(
            &format!(
                "/v1/series?metric=scan_completed&bin={}&{range}",
                enc("1h); DROP")
            ),
            Some(&t),
        ),
    )
    .await;
    assert_refused(&a, 400, "invalid_bin", "bin");
}

#[tokio::test]
async fn a_metric_only_another_tenant_has_looks_exactly_like_one_nobody_has() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let theirs = send(
        &app,
        get("/v1/series?metric=globex_only_metric&since=30d", Some(&t)),
    )
    .await;
    let nobodys = send(
        &app,
        get("/v1/series?metric=zzzzzz_only_metric&since=30d", Some(&t)),
    )
    .await;
    assert_eq!(theirs.status, nobodys.status);
    assert_eq!(
        theirs.text.replace("globex", "zzzzzz"),
        nobodys.text,
        "no existence oracle"
    );
}

#[tokio::test]
async fn quoted_values_are_values_that_match_nothing() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    for value in [
        "api' OR '1'='1",
        "api\" OR \"1\"=\"1",
        "globex-secret-repo",
        "x'); SELECT * FROM \"globex\" --",
    ] {
        let filter = serde_urlencoded::to_string([("filter", format!("repo_name={value}"))]).unwrap();
        let a = send(&app, get(&series_uri(&format!("&{filter}")), Some(&t))).await;
        assert_eq!(a.status, 200, "{value}: {}", a.text);
        assert!(
            a.json["series"][0]["points"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["v"].is_null()),
            "{value}: {}",
            a.text
        );
        assert!(!a.text.contains("987654"), "{value}");
    }
}

#[tokio::test]
async fn huge_ranges_and_oversized_requests_are_refused() {
    let app = local_app(two_tenant_store().await);
    let t = token("acme-prod");
    let cases = [
        (
            "/v1/series?metric=scan_completed&from=0&to=1795392000000".to_owned(),
            "range_too_large",
        ),
        (
            "/v1/series?metric=scan_completed&since=3650d".to_owned(),
            "range_too_large",
        ),
        (
            "/v1/series?metric=scan_completed&since=99999999d".to_owned(),
            "invalid_range",
        ),
        (
            format!(
                "/v1/series?metric=scan_completed&bin=1m&from={T0}&to={}",
                T0 + 300 * 86_400_000
            ),
            "too_many_points",
        ),
        (
            format!("/v1/series?metric=scan_completed&from={}&to={T0}", T0 + 1),
            "invalid_range",
        ),
        (
            format!("/v1/series?metric=scan_completed&from=-5&to={T0}"),
            "invalid_range",
        ),
        (
            "/v1/series?metric=scan_completed&from=-9223372036854775808&to=9223372036854775807".to_owned(),
            "invalid_range",
        ),
        (
            "/v1/breakdown?metric=scan_completed&dimension=repo_name&from=0&to=9223372036854775807"
                .to_owned(),
            "range_too_large",
        ),
        (
            "/v1/breakdown?metric=scan_completed&dimension=repo_name&limit=100000&since=1d".to_owned(),
            "invalid_limit",
        ),
    ];
    for (uri, code) in cases {
        assert_refused(&send(&app, get(&uri, Some(&t))).await, 400, code, &uri);
    }
    let many: String = (0..20).map(|i| format!("&measure=m{i}")).collect();
    let a = send(
        &app,
        get(
            &format!("/v1/series?metric=scan_completed&since=1d{many}"),
            Some(&t),
        ),
    )
    .await;
    assert_refused(&a, 400, "too_many_measures", "20 measures");
    let huge = serde_json::json!({"metric": "x".repeat(64 * 1024)});
    assert_refused(
        &send(&app, post("/v1/series", Some(&t), huge)).await,
        400,
        "invalid_request",
        "64 KiB body",
    );
}
