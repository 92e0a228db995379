//! `metrics-query`: the tenant query API in Lambda. The router is `metrics_query::api::app`;
//! this file only sets up logging, reads the configuration, opens the engine once per
//! container, and hands the router to `lambda_http`.

use std::process::ExitCode;

use std::sync::Arc;

use metrics_alerts::UrlPolicy;
use metrics_alerts::store::dynamodb::DynamoAlertStore;
use metrics_query::alerts_config::AlertsConfig;
use metrics_query::api::{AlertsApi, AppState, IdentitySource, ResponseCache, app};
use metrics_query::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    metrics_telemetry::init_logging();
    let (config, alerts) = match (Config::from_env(), AlertsConfig::from_env()) {
        (Ok(c), Ok(a)) => (c, a),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "Bad configuration.");
            return ExitCode::FAILURE;
        }
    };
    // Region, credentials and endpoint from the standard AWS variables, loaded only when the
    // store needs them.
    let engine = match config.open_engine(aws_config::load_from_env).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "Cannot open the store.");
            return ExitCode::FAILURE;
        }
    };
    let state = AppState::new(
        engine,
        IdentitySource::ApiGateway {
            claim: config.tenant_claim.clone(),
        },
        ResponseCache::new(config.cache_ttl, config.cache_entries),
    );
    // The alert routes, when the stack gives the function its alerts table.
    let state = match alerts.table {
        Some(table) => {
            let sdk = aws_config::load_from_env().await;
            state.with_alerts(AlertsApi {
                store: Arc::new(DynamoAlertStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)),
                limits: alerts.limits,
                policy: UrlPolicy::PUBLIC,
            })
        }
        None => state,
    };
    match lambda_http::run(app(state)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "The runtime stopped.");
            ExitCode::FAILURE
        }
    }
}
