//! `metrics-alert-evaluator`: the scheduled Lambda that evaluates tenants' alerts (every
//! minute, an EventBridge schedule rule). It reads through the same engine as the query
//! function (`metrics_query::config`, with the same per-tenant role when one is set), keeps
//! alerts in DynamoDB (`ALERTS_TABLE`), and sends each transition's signed webhook once
//! (`metrics_alerts::Evaluator`). This file only wires them; the logic is in the libraries.

use std::process::ExitCode;
use std::sync::Arc;

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use metrics_alerts::store::dynamodb::DynamoAlertStore;
use metrics_alerts::{Deliverer, DeliverySettings, Evaluator, SystemClock, UrlPolicy};
use metrics_query::alerts::{EngineWindows, report_document};
use metrics_query::alerts_config::AlertsConfig;
use metrics_query::config::Config;
use metrics_schema::EventTime;

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
    let Some(table) = alerts.table.clone() else {
        tracing::error!("ALERTS_TABLE is not set.");
        return ExitCode::FAILURE;
    };
    let sdk = aws_config::load_from_env().await;
    let engine = match config.open_engine(|| std::future::ready(sdk.clone())).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "Cannot open the store.");
            return ExitCode::FAILURE;
        }
    };
    let clock = Arc::new(SystemClock);
    // Deployed, webhooks go to public https addresses only.
    let deliverer = match Deliverer::new(UrlPolicy::PUBLIC, DeliverySettings::default(), clock.clone()) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the webhook client.");
            return ExitCode::FAILURE;
        }
    };
    let evaluator = Evaluator::new(
        Arc::new(DynamoAlertStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)),
        Arc::new(EngineWindows::new(engine)),
        Arc::new(deliverer),
        clock,
        alerts.evaluator,
    );
    let handler = service_fn(|_: LambdaEvent<serde_json::Value>| {
        let evaluator = &evaluator;
        async move {
            let now = EventTime::now().as_millis();
            let report = evaluator.run_due(now).await?;
            metrics_telemetry::emit(&[report_document(&report, now)]);
            tracing::info!(
                evaluated = report.evaluated,
                transitions = report.transitions,
                dead_lettered = report.dead_lettered,
                "Alerts evaluated."
            );
            Ok::<_, lambda_runtime::Error>(report)
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "The runtime stopped.");
            ExitCode::FAILURE
        }
    }
}
