//! `metrics-writer`: the store writer Lambda. Configuration is read and clients are built
//! once per container; each invocation goes to [`metrics_writer::handler::Writer::handle`].

use aws_config::BehaviorVersion;
use lambda_runtime::{LambdaEvent, service_fn};
use metrics_writer::config::Config;
use metrics_writer::emf::init_logging;
use metrics_writer::handler::{Writer, deadline_from_epoch_ms};
use serde_json::value::RawValue;

// Converting an object allocates a few strings per dimension of every record, and the buffers
// of a batch are megabytes: mimalloc does both faster than the system allocator and keeps
// freed memory for the next invocation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "Invalid configuration."))?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let s3 = metrics_objects::s3_client(&sdk);
    let store = config.open_store(|| async { sdk.clone() }).await?;
    let writer = Writer::new(s3, store, config);
    let writer = &writer;
    // The payload stays raw JSON: the trigger parser reads only the fields it needs.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline, writer.config.deadline_margin);
        writer.handle(event.payload.get().as_bytes(), deadline).await
    }))
    .await
}
