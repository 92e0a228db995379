//! `metrics-query`: the tenant query API in Lambda. The router is `metrics_query::api::app`;
//! this file only sets up logging, reads the configuration, opens the engine once per
//! container, and hands the router to `lambda_http`.

use std::process::ExitCode;

use metrics_query::api::{AppState, IdentitySource, ResponseCache, app};
use metrics_query::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    metrics_telemetry::init_logging();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
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
    match lambda_http::run(app(state)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "The runtime stopped.");
            ExitCode::FAILURE
        }
    }
}
