//! The metrics-lake forwarder: every enriched event of Firehose's S3 batches to Segment
//! (`/v1/batch`) and Mixpanel (`/import`), with dedup ids derived from `event_id`, per-destination
//! metric and field policies (PII dropped or hashed), retries within the function's deadline,
//! and a dead letter for everything a destination did not accept.
//!
//! The pure core (no network, no credentials): [`policy`], [`dedup`], [`payload`] and
//! [`prepare`], which the local pipeline uses to write the exact requests it would send.
//! The I/O: [`destination`] adapters over [`http`], [`deliver`] (retries, splitting,
//! concurrency), [`handler`] (triggers, objects, dead letters, progress markers).

pub mod config;
pub mod credentials;
pub mod dedup;
pub mod deliver;
pub mod destination;
pub mod handler;
pub mod http;
pub mod payload;
pub mod policy;
pub mod reason;
pub mod retry;
pub mod telemetry;

use aws_config::SdkConfig;
use bytes::Bytes;
use metrics_schema::UnifiedEvent;

pub use config::Config;
pub use destination::{Destination, DestinationKind};
pub use handler::{Forwarder, HandlerOptions, Invocation, ObjectReport, Progress};
pub use metrics_http::Secret;
pub use payload::{Built, PreparedBatch, Refusal};
pub use reason::Reason;

use credentials::{MixpanelSource, SegmentSource};
use destination::mixpanel::{Mixpanel, MixpanelAuth};
use destination::segment::Segment;

/// One request exactly as it would be sent, without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    pub destination: DestinationKind,
    pub method: &'static str,
    /// Path and query, e.g. `/v1/batch` or `/import?strict=1&project_id=42`.
    pub url_path: String,
    /// Every header but `Authorization`.
    pub headers: Vec<(String, String)>,
    /// The body as sent (gzip for Mixpanel).
    pub body: Bytes,
    /// For each event in the body: its position in the input slice.
    pub events: Vec<usize>,
    /// For each event: `metadata.event_id`, when it has one.
    pub event_ids: Vec<Option<String>>,
    /// For each event: Segment `messageId` or Mixpanel `$insert_id`.
    pub dedup_ids: Vec<String>,
}

/// The requests for one destination, plus what was refused or filtered before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub requests: Vec<PreparedRequest>,
    pub refused: Vec<Refusal>,
    pub filtered: usize,
}

fn header_strings(headers: Vec<(::http::HeaderName, ::http::HeaderValue)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The requests `kind` would receive for `events` under `config`, built without network or
/// credentials (whether or not the destination is enabled). Pure: the same input gives the
/// same bytes.
pub fn prepare(config: &Config, kind: DestinationKind, events: &[UnifiedEvent<'_>]) -> Prepared {
    let (built, url_path, headers) = match kind {
        DestinationKind::Segment => (
            payload::build(&config.segment.format, events),
            payload::segment::PATH.to_owned(),
            destination::segment::public_headers(),
        ),
        DestinationKind::Mixpanel => {
            let project_id = match &config.mixpanel.source {
                Some(MixpanelSource::Env(auth)) => auth.project_id().map(str::to_owned),
                Some(MixpanelSource::SecretArn { project_id, .. }) => project_id.clone(),
                None => None,
            };
            (
                payload::build(&config.mixpanel.format, events),
                destination::mixpanel::path_and_query(project_id.as_deref()),
                destination::mixpanel::public_headers(),
            )
        }
    };
    let headers = header_strings(headers);
    let requests = built
        .batches
        .into_iter()
        .map(|batch| PreparedRequest {
            destination: kind,
            method: "POST",
            url_path: url_path.clone(),
            headers: headers.clone(),
            events: batch.items.iter().map(|i| i.index).collect(),
            event_ids: batch
                .items
                .iter()
                .map(|i| {
                    events
                        .get(i.index)
                        .and_then(|e| e.event_id.as_ref())
                        .map(|id| id.to_string())
                })
                .collect(),
            dedup_ids: batch.items.iter().map(|i| i.dedup_id.clone()).collect(),
            body: batch.body,
        })
        .collect();
    Prepared {
        requests,
        refused: built.refused,
        filtered: built.filtered,
    }
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("the {0} credentials cannot be sent in an HTTP header")]
    Header(&'static str),
}

/// Builds the forwarder: clients, credentials (fetched once here, for the container's life),
/// and one adapter per enabled destination. Logs which destinations are enabled and why the
/// others are not.
pub async fn build_forwarder(config: &Config, sdk: &SdkConfig) -> Result<Forwarder, StartError> {
    let s3 = metrics_objects::s3_client(sdk);
    let needs_secrets = matches!(config.segment.source, Some(SegmentSource::SecretArn(_)))
        || matches!(config.mixpanel.source, Some(MixpanelSource::SecretArn { .. }));
    let secrets = needs_secrets.then(|| aws_sdk_secretsmanager::Client::new(sdk));
    let http = http::HttpClient::new()?.with_max_response_bytes(http::MAX_RESPONSE_BYTES);

    let segment = match (config.segment.disabled_because(), &config.segment.source) {
        (None, Some(source)) => {
            let key = credentials::segment(source, secrets.as_ref()).await?;
            let segment = Segment::new(
                config.segment.format.clone(),
                &config.segment.endpoint,
                &key,
                http.clone(),
            )
            .ok_or(StartError::Header("segment"))?;
            tracing::info!(destination = "segment", endpoint = %config.segment.endpoint, "Destination enabled.");
            Some(segment)
        }
        (why, _) => {
            tracing::warn!(
                destination = "segment",
                reason = why.unwrap_or_default(),
                "Destination disabled."
            );
            None
        }
    };
    let mixpanel = match (config.mixpanel.disabled_because(), &config.mixpanel.source) {
        (None, Some(source)) => {
            let auth: MixpanelAuth = credentials::mixpanel(source, secrets.as_ref()).await?;
            let mixpanel = Mixpanel::new(
                config.mixpanel.format.clone(),
                &config.mixpanel.endpoint,
                &auth,
                http.clone(),
            )
            .ok_or(StartError::Header("mixpanel"))?;
            tracing::info!(destination = "mixpanel", endpoint = %config.mixpanel.endpoint, "Destination enabled.");
            Some(mixpanel)
        }
        (why, _) => {
            tracing::warn!(
                destination = "mixpanel",
                reason = why.unwrap_or_default(),
                "Destination disabled."
            );
            None
        }
    };
    Ok(Forwarder::new(
        s3,
        segment,
        mixpanel,
        HandlerOptions::from_config(config),
    ))
}
