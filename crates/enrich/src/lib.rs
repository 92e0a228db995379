//! `metrics-enrich`: the Firehose data-transformation Lambda of metrics-lake.
//!
//! Every record Firehose buffers comes back exactly once, in order. A record is either a
//! wrapped EventBridge event (`{"metric":…,"event":…}`, what the rules deliver), mapped into a
//! unified event with the mapping compiled in from `infra/metrics.toml` ([`mapping`]), or a
//! unified event a producer put directly. Either way the answer is `Ok` with the event
//! validated by the unified schema and enriched with `metadata.tenant_name` (from the tenant
//! directory), `metadata.environment` (from `ENVIRONMENT`) and top-level `ingest_time`
//! (Firehose's `approximateArrivalTimestamp`, so lateness can be measured), as one line of
//! compact JSON ending in `\n`; or `ProcessingFailed` / `Dropped` (per
//! `INVALID_RECORD_POLICY`) with its original bytes, logged and counted with a reason code.
//!
//! Modules: [`firehose`] (wire types), [`transform`] (the pure core), [`mapping`] (the
//! compiled-in mapping), [`directory`] (tenant
//! names behind a port, with a TTL cache), [`telemetry`] (logs, EMF metrics), [`config`],
//! [`runtime_api`] (the Lambda Runtime API loop the binary runs).
//!
//! # Processor buffer size: 1 MB
//!
//! Lambda answers at most 6,291,456 bytes. Per record, with a record id of `k` bytes and a
//! payload of `p` bytes (`B(n) = 4⌈n/3⌉` is base64's length):
//!
//! - the request entry is `70 + k + B(p)` bytes (`recordId`, `approximateArrivalTimestamp`,
//!   `data`);
//! - a `ProcessingFailed`/`Dropped` entry echoes the data and is 16 bytes *shorter*;
//! - an `Ok` entry is `40 + k + B(q)`, where the enriched line `q` is the unified event plus
//!   the enrichment `G` and a newline. `G` is at most 222 bytes (`,"tenant_name":` + a name of
//!   at most 64 bytes, 130 once escaped, `,"environment":` + at most 32 bytes,
//!   `,"ingest_time":` + 13 digits).
//!
//! Two kinds of record reach the function:
//!
//! - **A unified event a producer put directly**: compact re-serialisation never lengthens
//!   its JSON, so `q ≤ p + 223` and an `Ok` entry is at most about 270 bytes longer than its
//!   request entry. The smallest valid event is 74 bytes, so with Firehose's 56-character record
//!   ids the response is at most 2.18× the request, and 6.65× the raw payload bytes.
//! - **A wrapped event** (what the rules deliver): the mapped event is never longer than the
//!   wrapped event it comes from, for the shipped mapping (strings are copied no longer than
//!   sent, and the wrapper and the envelope members every EventBridge event carries outweigh
//!   the output names and defaults; `mapping::tests` checks it for every shipped metric), so
//!   again `q ≤ p + 223`, and a wrapped event is 150 bytes or more, so the worst case is
//!   smaller than the first kind's. Typically the unified event is about half the wrapped one
//!   (424 → 215 bytes for the original article's event), and the response is *smaller* than
//!   the request: 0.80× on the benchmark's wrapped events (2,523,489 bytes for 3 MiB).
//!
//! - A 1 MB buffer gives at most about 2.2 MB of response when the buffer counts the request,
//!   and stays under 6 MiB when it counts raw payload for every payload of 100 bytes or more
//!   (5.3× at 100 bytes, 2.7× at 300); our events are 300–900 bytes unified, 400–1,000 wrapped.
//! - 3 MB (the maximum, and CDK's default) is not safe: the worst case is 6.5 MB counted
//!   either way, although typical traffic fits (a 3 MB benchmark event of 300–900-byte records
//!   gives 3.29 MB, +4.7%, and wrapped events give less than they take).
//!
//! The infrastructure must therefore set the processor's `BufferSizeInMBs` to `1`, which keeps
//! the worst case under a third of the limit. As a defence, a response that would still be
//! over the limit fails the invocation with a clear error
//! ([`transform::TransformError::ResponseTooLarge`]): Firehose retries it and then delivers the
//! batch under `Error/processing-failed/`, instead of Lambda rejecting the reply.

pub mod config;
pub mod directory;
pub mod firehose;
pub mod mapping;
pub mod reason;
pub mod runtime_api;
pub mod telemetry;
pub mod transform;

use std::sync::{Arc, Mutex};

use metrics_mapping::Mapping;
use metrics_schema::EventTime;

use crate::config::{Config, InvalidRecordPolicy, TenantsConfig};
use crate::directory::{CachedDirectory, Directory, DirectoryError, DynamoDbDirectory, FileDirectory};
use crate::firehose::{FirehoseEvent, FirehoseResult};
use crate::transform::{Context, Decoded, TransformError, Transformed, respond_each};

pub use crate::transform::MAX_RESPONSE_BYTES;

/// An invocation that cannot be answered record by record; Firehose retries the batch.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("the invocation is not a Firehose transformation event: {0}")]
    InvalidEvent(#[source] serde_json::Error),
    #[error("tenant directory unavailable: {0}")]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Transform(#[from] TransformError),
}

impl EnrichError {
    /// Stable code for logs, metrics and Lambda's `errorType`.
    pub fn code(&self) -> &'static str {
        match self {
            EnrichError::InvalidEvent(_) => "invalid_event",
            EnrichError::Directory(_) => "directory_unavailable",
            EnrichError::Transform(TransformError::ResponseTooLarge { .. }) => "response_too_large",
        }
    }
}

impl From<EnrichError> for runtime_api::Diagnostic {
    fn from(error: EnrichError) -> Self {
        runtime_api::Diagnostic {
            error_type: error.code().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// The transformer: configuration, tenant directory, and buffers kept between invocations.
#[derive(Debug)]
pub struct Enricher {
    environment: String,
    policy: InvalidRecordPolicy,
    directory: Directory,
    mapping: Arc<Mapping>,
    scratch: Mutex<Scratch>,
}

/// Buffers reused by every invocation of a warm Lambda, so a batch does not allocate them anew.
#[derive(Debug, Default)]
struct Scratch {
    /// Decoded payloads: all of the batch's (DynamoDB directory) or one record's (tenants file).
    arena: Vec<u8>,
    /// Unified events mapped from wrapped ones: the batch's, or one record's.
    mapped: Vec<u8>,
    json: Vec<u8>,
}

impl Enricher {
    /// `mapping` maps wrapped events (the binary's is compiled in: [`mapping::compiled_in`]).
    pub fn new(config: &Config, directory: Directory, mapping: Arc<Mapping>) -> Self {
        Enricher {
            environment: config.environment.clone(),
            policy: config.policy,
            directory,
            mapping,
            scratch: Mutex::new(Scratch::default()),
        }
    }

    /// Builds the configured directory. The AWS SDK configuration (region, credentials,
    /// `AWS_ENDPOINT_URL`) is loaded only for `TENANTS_TABLE`, so `TENANTS_FILE` needs neither
    /// credentials nor network.
    pub async fn from_config(config: &Config, mapping: Arc<Mapping>) -> Result<Self, DirectoryError> {
        let directory = match &config.tenants {
            TenantsConfig::File(path) => Directory::File(FileDirectory::load(path)?),
            TenantsConfig::Table(table) => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                let source = DynamoDbDirectory::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
                Directory::Table(CachedDirectory::new(
                    source,
                    config.tenant_ttl,
                    config.unknown_tenant_ttl,
                ))
            }
        };
        Ok(Self::new(config, directory, mapping))
    }

    /// Whether the tenant directory knows `tenant_id` (a replay checks dead letters with it:
    /// a tenant removed since is not written again).
    pub async fn knows_tenant(&self, tenant_id: &str) -> Result<bool, DirectoryError> {
        use crate::directory::TenantNames;
        let names = self.directory.resolve(&[tenant_id]).await?;
        Ok(names.name(tenant_id).is_some())
    }

    /// What rejected records become.
    pub fn rejected_result(&self) -> FirehoseResult {
        self.policy.result()
    }

    /// Transforms one Firehose event. `now` is the clock for the schema's time rules.
    pub async fn handle(
        &self,
        event: &FirehoseEvent<'_>,
        now: EventTime,
    ) -> Result<Transformed, EnrichError> {
        self.handle_into(event, now, Vec::new()).await
    }

    /// [`Enricher::handle`], building the response in `buffer` (cleared first), so a warm
    /// function can reuse the last response's allocation.
    pub async fn handle_into(
        &self,
        event: &FirehoseEvent<'_>,
        now: EventTime,
        buffer: Vec<u8>,
    ) -> Result<Transformed, EnrichError> {
        // Taken out rather than locked, so no guard is held across the directory lookup.
        let mut scratch = std::mem::take(&mut *self.scratch.lock().unwrap_or_else(|p| p.into_inner()));
        let result = self.transform(event, now, &mut scratch, buffer).await;
        *self.scratch.lock().unwrap_or_else(|p| p.into_inner()) = scratch;
        result
    }

    async fn transform(
        &self,
        event: &FirehoseEvent<'_>,
        now: EventTime,
        scratch: &mut Scratch,
        buffer: Vec<u8>,
    ) -> Result<Transformed, EnrichError> {
        let ctx = Context {
            environment: &self.environment,
            policy: self.policy,
            mapping: &self.mapping,
        };
        let records = &event.records;
        match &self.directory {
            // Names known up front: each record is decoded, parsed and written in one go.
            Directory::File(file) => Ok(respond_each(
                records,
                now,
                file,
                &ctx,
                &mut scratch.arena,
                &mut scratch.mapped,
                &mut scratch.json,
                buffer,
            )?),
            // Parse everything first, so one lookup covers the batch's tenants.
            Directory::Table(_) => {
                let batch =
                    Decoded::new(records, &self.mapping, &mut scratch.arena, &mut scratch.mapped).parse(now);
                let names = self.directory.resolve(&batch.tenant_ids()).await?;
                Ok(batch.respond(&names, &ctx, &mut scratch.json, buffer)?)
            }
        }
    }
}
