//! `metrics-query`: the tenant query API in Lambda. The router is `metrics_query::api::app`;
//! this file only reads the configuration, builds the engine once per container, and hands
//! the router to `lambda_http`.

use std::process::ExitCode;
use std::sync::Arc;

use metrics_query::api::{AppState, IdentitySource, ResponseCache, app};
use metrics_query::config::{Config, StoreChoice};
use metrics_query::engine::{EmbeddedQueries, Engine};
use metrics_query::influx::{InfluxEngine, QueryTokens};
use metrics_query::model::Limits;
use metrics_query::timestream::{TenantRole, TimestreamQueries};
use metrics_store::{EmbeddedSettings, EmbeddedStore};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Bad configuration.");
            return ExitCode::FAILURE;
        }
    };
    let engine = match engine(&config).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "Cannot reach the store.");
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

async fn engine(config: &Config) -> Result<Arc<dyn Engine>, String> {
    match &config.store {
        StoreChoice::Embedded { path } => {
            let store = EmbeddedStore::open(EmbeddedSettings::new(path)).map_err(|e| e.to_string())?;
            Ok(Arc::new(EmbeddedQueries::new(Arc::new(store), Limits::default())))
        }
        StoreChoice::Timestream {
            database,
            role_arn,
            session_tag,
        } => {
            // Region, credentials and endpoint from the standard AWS variables.
            let sdk = aws_config::load_from_env().await;
            let role = role_arn.clone().map(|arn| TenantRole {
                arn,
                session_tag: session_tag.clone(),
            });
            let engine = TimestreamQueries::connect(sdk, database.clone(), role, Limits::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(engine))
        }
        StoreChoice::Influxdb { url, token } => {
            // Region, credentials and endpoint from the standard AWS variables, for a secret only.
            let text = token
                .read(aws_config::load_from_env)
                .await
                .map_err(|e| e.to_string())?;
            let tokens = QueryTokens::from_secret_string(text.expose())
                .ok_or("the InfluxDB token secret holds no token")?;
            let engine = InfluxEngine::new(url, tokens, Limits::default()).map_err(|e| e.message)?;
            Ok(Arc::new(engine))
        }
    }
}
