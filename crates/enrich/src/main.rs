//! The `metrics-enrich` Lambda: configuration and tenant directory once per container, then one
//! Firehose transformation per invocation. Everything else lives in the library.

// The runtime's service stack nests deeply enough that computing the layout of `main`'s future
// passes the default query depth.
#![recursion_limit = "256"]

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use metrics_enrich::config::Config;
use metrics_enrich::firehose::{FirehoseEvent, FirehoseResponse};
use metrics_enrich::{Enricher, telemetry};
use metrics_schema::EventTime;

// One thread: invocations arrive one at a time, and a second runtime thread would only add
// start-up time and memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "Invalid configuration."))?;
    let enricher = Enricher::from_config(&config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "Cannot load the tenant directory."))?;
    let enricher = &enricher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<FirehoseEvent>| async move {
        handle(enricher, event).await
    }))
    .await
}

async fn handle(
    enricher: &Enricher,
    event: LambdaEvent<FirehoseEvent>,
) -> Result<FirehoseResponse, Diagnostic> {
    let now = EventTime::now();
    let records = &event.payload.records;
    match enricher.handle(&event.payload, now).await {
        Ok(out) => {
            telemetry::log_rejections(records, &out.summary, enricher.rejected_result());
            telemetry::emit(&telemetry::metric_documents(
                &out.summary,
                enricher.rejected_result(),
                now,
            ));
            Ok(out.response)
        }
        Err(error) => {
            tracing::error!(error = %error, code = error.code(), records = records.len(), "Invocation failed; Firehose will retry it.");
            telemetry::emit(&[telemetry::error_document(error.code(), now)]);
            Err(error.into())
        }
    }
}
