//! The `metrics-forwarder` Lambda: configuration, clients and credentials once per container,
//! then one [`Forwarder::handle`] per invocation. Everything else lives in the library.

// The runtime's service stack nests deeply enough that computing the layout of `main`'s future
// passes the default query depth.
#![recursion_limit = "256"]

use aws_config::BehaviorVersion;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use metrics_forwarder::retry::Deadline;
use metrics_forwarder::{Config, Forwarder, build_forwarder, telemetry};
use metrics_schema::EventTime;
use serde_json::Value;
use serde_json::value::RawValue;

// Several threads: both destinations' requests and their gzip work run side by side.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "Invalid configuration."))?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let forwarder = build_forwarder(&config, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "Cannot start the forwarder."))?;
    let forwarder = &forwarder;
    let margin = config.deadline_margin;
    // The payload stays raw JSON: the trigger parser reads only the fields it needs.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        handle(forwarder, event, margin).await
    }))
    .await
}

async fn handle(
    forwarder: &Forwarder,
    event: LambdaEvent<Box<RawValue>>,
    margin: std::time::Duration,
) -> Result<Value, Diagnostic> {
    let deadline = Deadline::from_epoch_millis(event.context.deadline, margin);
    let invocation = forwarder.handle(event.payload.get().as_bytes(), deadline).await;
    let now = EventTime::now();
    telemetry::log_reports(&invocation.objects);
    telemetry::emit(&telemetry::metric_documents(&invocation.objects, now));
    match invocation.error {
        None => Ok(invocation.response),
        Some(error) => {
            tracing::error!(error = %error, code = error.code(), "Invocation failed; it will be retried.");
            telemetry::emit(&[telemetry::error_document(error.code(), now)]);
            Err(Diagnostic {
                error_type: error.code().to_owned(),
                error_message: error.to_string(),
            })
        }
    }
}
