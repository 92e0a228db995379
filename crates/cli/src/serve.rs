//! `metrics-lake serve`: the query API over the local store, on 127.0.0.1, with the dashboard.
//!
//! The `/v1/…` routes are the deployed API's router (`metrics_query::api::app`), so what works
//! here works in Lambda; only identity differs: tokens are minted here with a per-run secret.
//! The routes under `/local/` (the tenant list and the token minting behind the dashboard's
//! tenant picker) exist only in this command, never in the Lambda router.
//!
//! Alerts created through the API live in the state directory (`alerts.db`) and are evaluated
//! on a timer (`--alerts-every`, as the deployed evaluator's schedule does every minute); their
//! webhooks go to public https URLs only, unless `--allow-local-webhooks` also allows a
//! receiver on `http://127.0.0.1`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use metrics_alerts::AlertLimits;
use metrics_query::api::{AlertsApi, AppError, AppState, IdentitySource, LocalTokens, ResponseCache, app};
use metrics_query::embedded::{EmbeddedEngine, EmbeddedReader};
use metrics_query::model::Limits;
use metrics_schema::TenantId;
use metrics_store::EmbeddedStore;
use serde_json::json;

use crate::alerts::{WebhookArgs, alert_store, evaluator, show_report};
use crate::output::{err, out};
use crate::state::{StateArgs, StateDir};

/// The dashboard page and the chart component, built from web/ (the bundle is committed).
const DASHBOARD: &str = include_str!("../../../web/dashboard.html");
const CHART_JS: &str = include_str!("../../../web/dist/metrics-lake-chart.js");
/// Local tokens live a quarter of an hour; the dashboard mints a new one per tenant switch.
const TOKEN_TTL_SECS: u64 = 15 * 60;
/// Local answers are reused briefly (a re-run of `metrics-lake run` shows within seconds).
const LOCAL_CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Seconds between alert evaluations (0: never; `metrics-lake alerts evaluate` still works).
    #[arg(long, default_value_t = 60)]
    alerts_every: u64,
    #[command(flatten)]
    webhooks: WebhookArgs,
    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Clone)]
struct Local {
    store: Arc<EmbeddedStore>,
    tokens: Arc<LocalTokens>,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            err(format!("error: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &ServeArgs) -> Result<(), String> {
    let state = StateDir::existing(&args.state.state_dir)?;
    let store = Arc::new(state.open_store()?);
    // One secret signs tokens for the API and the minting route; it dies with the process.
    let tokens = LocalTokens::random().map_err(|e| e.to_string())?;
    let alerts = alert_store(&state)?;
    let policy = args.webhooks.policy();
    if args.alerts_every > 0 {
        let evaluator = evaluator(Arc::clone(&store), Arc::clone(&alerts), policy)?;
        let every = Duration::from_secs(args.alerts_every);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            // The first tick is at once: evaluations start one interval after the start.
            tick.tick().await;
            loop {
                tick.tick().await;
                match evaluator
                    .run_due(metrics_schema::EventTime::now().as_millis())
                    .await
                {
                    Ok(report) if report.transitions > 0 || report.read_failed > 0 => {
                        show_report(&report, false)
                    }
                    Ok(_) => {}
                    Err(e) => err(format!("error: alert evaluation: {e}")),
                }
            }
        });
    }
    let alerts = AlertsApi {
        store: alerts,
        limits: AlertLimits::default(),
        policy,
    };
    let router = router(store, tokens.clone(), tokens, alerts);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    out(format!(
        "Serving the dashboard at http://{addr}/ and the query API at http://{addr}/v1/ (Ctrl-C stops)."
    ));
    // Ctrl-C ends the process: nothing here needs flushing (the store is only read).
    axum::serve(listener, router).await.map_err(|e| e.to_string())
}

/// The API router plus the local-only routes.
fn router(store: Arc<EmbeddedStore>, mint: LocalTokens, verify: LocalTokens, alerts: AlertsApi) -> Router {
    let api = app(AppState::new(
        Arc::new(EmbeddedEngine::new(Arc::clone(&store), Limits::default())),
        IdentitySource::local(verify),
        ResponseCache::new(LOCAL_CACHE_TTL, 200),
    )
    .with_alerts(alerts));
    let local = Router::new()
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], DASHBOARD) }),
        )
        .route(
            "/metrics-lake-chart.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    CHART_JS,
                )
            }),
        )
        .route("/local/tenants", get(tenants))
        .route("/local/token", get(token))
        .with_state(Local {
            store,
            tokens: Arc::new(mint),
        });
    local.merge(api)
}

#[derive(Debug, serde::Deserialize)]
struct TokenParams {
    tenant: String,
}

async fn tenants(State(local): State<Local>) -> Response {
    match tenant_list(&local).await {
        Ok(list) => axum::Json(json!({ "tenants": list })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn tenant_list(local: &Local) -> Result<Vec<metrics_query::embedded::TenantSummary>, AppError> {
    let store = Arc::clone(&local.store);
    tokio::task::spawn_blocking(move || EmbeddedReader::new(&store).tenants())
        .await
        .map_err(|_| AppError::Internal)?
        .map_err(AppError::from)
}

/// A token for a tenant that has a table in the local store; any other name is refused.
async fn token(State(local): State<Local>, params: Result<Query<TokenParams>, QueryRejection>) -> Response {
    let Ok(Query(params)) = params else {
        return AppError::InvalidRequest("tenant is required".into()).into_response();
    };
    let known = match tenant_list(&local).await {
        Ok(list) => list.into_iter().any(|t| t.tenant == params.tenant),
        Err(e) => return e.into_response(),
    };
    let tenant = match TenantId::parse(params.tenant.as_str()) {
        Ok(t) if known => t,
        _ => {
            let body =
                json!({"error": {"code": "unknown_tenant", "message": "no such tenant in the local store"}});
            return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        }
    };
    match local.tokens.mint(&tenant, TOKEN_TTL_SECS) {
        Ok(token) => {
            axum::Json(json!({"tenant": tenant.as_str(), "token": token, "expires_in": TOKEN_TTL_SECS}))
                .into_response()
        }
        Err(_) => AppError::Internal.into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
mod tests {
    use std::time::Instant;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use metrics_schema::{EventTime, parse_event};
    use metrics_store::{Store, convert};
    use tower::ServiceExt;

    use super::*;

    async fn store() -> Arc<EmbeddedStore> {
        let store = EmbeddedStore::in_memory().unwrap();
        let now = EventTime::now();
        let event = serde_json::json!({
            "metric_name": "scan_completed",
            "metadata": {"tenant_id": "acme-prod", "event_id": "e1", "repo_name": "api"},
            "data": {"event_time": now.as_millis() - 60_000, "findings_count": 3}
        });
        let bytes = serde_json::to_vec(&event).unwrap();
        let e = parse_event(&bytes, now).unwrap();
        let report = store
            .write(
                &e.tenant_id,
                &[convert(&e).unwrap()],
                Instant::now() + Duration::from_secs(5),
            )
            .await;
        assert_eq!(report.count("written"), 1);
        Arc::new(store)
    }

    fn alerts() -> AlertsApi {
        let store: Arc<dyn metrics_alerts::AlertStore> =
            Arc::new(metrics_alerts::store::sqlite::SqliteAlertStore::in_memory().unwrap());
        AlertsApi {
            store,
            limits: AlertLimits::default(),
            policy: metrics_alerts::UrlPolicy::LOCAL,
        }
    }

    async fn get(router: &Router, uri: &str, bearer: Option<&str>) -> (StatusCode, String) {
        let mut b = Request::get(uri);
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let response = router
            .clone()
            .oneshot(b.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_minted_token_reads_its_tenant_through_the_same_api() {
        let tokens = LocalTokens::new(b"serve-test-secret");
        let router = router(store().await, tokens.clone(), tokens, alerts());
        let (status, body) = get(&router, "/local/tenants", None).await;
        assert_eq!(status, 200);
        assert!(body.contains("\"tenant\":\"acme-prod\""), "{body}");
        let (status, body) = get(&router, "/local/token?tenant=acme-prod", None).await;
        assert_eq!(status, 200, "{body}");
        let token: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (status, body) = get(
            &router,
            "/v1/series?metric=scan_completed&measure=findings_count&since=1d",
            token["token"].as_str(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"v\":3.0"), "{body}");
    }

    #[tokio::test]
    async fn tokens_are_minted_only_for_tenants_in_the_store() {
        let tokens = LocalTokens::new(b"serve-test-secret");
        let router = router(store().await, tokens.clone(), tokens, alerts());
        for uri in [
            "/local/token?tenant=globex",
            "/local/token?tenant=..%2Facme-prod",
            "/local/token",
        ] {
            let (status, body) = get(&router, uri, None).await;
            assert!(status.is_client_error(), "{uri}: {status}");
            assert!(!body.contains("token\""), "{uri}: {body}");
        }
    }

    #[tokio::test]
    async fn the_dashboard_and_its_chart_are_served() {
        let tokens = LocalTokens::new(b"serve-test-secret");
        let router = router(store().await, tokens.clone(), tokens, alerts());
        let (status, page) = get(&router, "/", None).await;
        assert_eq!(status, 200);
        assert!(page.contains("<script src=\"/metrics-lake-chart.js\">"));
        let (status, js) = get(&router, "/metrics-lake-chart.js", None).await;
        assert_eq!(status, 200);
        assert!(js.contains("metrics-lake-chart"));
    }
}
