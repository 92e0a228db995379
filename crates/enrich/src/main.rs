//! The `metrics-enrich` Lambda: configuration, metric mapping and tenant directory once per
//! container, then one Firehose transformation per invocation. Everything else lives in the library.

use metrics_enrich::config::Config;
use metrics_enrich::firehose::FirehoseEvent;
use metrics_enrich::runtime_api::{Diagnostic, RuntimeApi};
use metrics_enrich::{EnrichError, Enricher, mapping, telemetry};
use metrics_schema::EventTime;

// Every record allocates and frees a few small vectors, and every invocation the list of its
// records (and, with a tenants table, its parsed records); mimalloc serves them from per-size
// free lists and keeps freed memory with the process. (The event, the response and the decoded
// records' buffers are kept across invocations by the loop and the `Enricher`.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    telemetry::init_logging();
    // One thread: invocations arrive one at a time, and a second runtime thread would only add
    // start-up time and memory. Only the tenant directory (DynamoDB) is asynchronous.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "Invalid configuration."))?;
    let mapping =
        mapping::compiled_in().inspect_err(|e| tracing::error!(error = %e, "Invalid metric mapping."))?;
    let enricher = runtime
        .block_on(Enricher::from_config(&config, std::sync::Arc::new(mapping)))
        .inspect_err(|e| tracing::error!(error = %e, "Cannot load the tenant directory."))?;
    let mut runtime_api = RuntimeApi::from_env()?;
    // The event's bytes come straight from the Runtime API, and the response's bytes go back
    // as they are (see `runtime_api`).
    runtime_api
        .run(|event, buffer| runtime.block_on(handle(&enricher, event, buffer)))
        .inspect_err(|e| tracing::error!(error = %e, "The Lambda Runtime API failed."))?;
    Ok(())
}

/// One invocation; the response is built in `buffer` (see [`RuntimeApi::run`]).
async fn handle(enricher: &Enricher, bytes: &[u8], buffer: Vec<u8>) -> Result<Vec<u8>, Diagnostic> {
    let now = EventTime::now();
    let event = match FirehoseEvent::from_json(bytes) {
        Ok(event) => event,
        Err(error) => return Err(fail(EnrichError::InvalidEvent(error), 0, now)),
    };
    let records = &event.records;
    match enricher.handle_into(&event, now, buffer).await {
        Ok(out) => {
            telemetry::log_rejections(
                records,
                &out.summary,
                enricher.rejected_result(),
                &mut std::io::stdout().lock(),
            );
            telemetry::emit(&telemetry::metric_documents(
                &out.summary,
                enricher.rejected_result(),
                now,
            ));
            Ok(out.response.into_bytes())
        }
        Err(error) => Err(fail(error, records.len(), now)),
    }
}

/// Logs and counts an invocation that fails as a whole; Firehose retries it.
fn fail(error: EnrichError, records: usize, now: EventTime) -> Diagnostic {
    tracing::error!(error = %error, code = error.code(), records, "Invocation failed; Firehose will retry it.");
    telemetry::emit(&[telemetry::error_document(error.code(), now)]);
    error.into()
}
