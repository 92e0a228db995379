//! The metrics-lake forwarder: every enriched event of Firehose's S3 batches to Segment
//! (`/v1/batch`) and Mixpanel (`/import`), with dedup ids derived from `event_id`, per-destination
//! metric and field policies (PII dropped or hashed), retries within the function's deadline,
//! and a dead letter for everything a destination did not accept.
//!
//! The pure core (no network, no credentials): [`policy`], [`dedup`], [`payload`] and
//! [`prepare`], which the local pipeline uses to write the exact requests it would send.
//! The I/O: [`destination`] adapters over [`http`], [`deliver`] (retries, splitting,
//! concurrency), [`forward`] (one object to every destination, as a stream, through a ledger of
//! dead letters and progress markers: shared by the Lambda and the local pipeline), [`handler`]
//! (triggers, S3).

pub mod config;
pub mod credentials;
pub mod dedup;
pub mod deliver;
pub mod destination;
pub mod forward;
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
pub use forward::{DestinationOutcome, ObjectReport, Progress, forward_object};
pub use handler::{Forwarder, HandlerOptions, Invocation};
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

/// What every request to `kind` shares, credentials excepted: its wire format, path and query,
/// and headers. Pure: built from the configuration alone.
#[derive(Debug, Clone)]
pub struct RequestTemplate<'c> {
    /// The destination's wire format (its kind is `format.kind()`).
    pub format: &'c dyn payload::Format,
    /// Path and query, e.g. `/v1/batch` or `/import?strict=1&project_id=42`.
    pub url_path: String,
    /// Every header but `Authorization`.
    pub headers: Vec<(String, String)>,
}

impl<'c> RequestTemplate<'c> {
    pub fn new(config: &'c Config, kind: DestinationKind) -> RequestTemplate<'c> {
        let (format, url_path, headers): (&dyn payload::Format, _, _) = match kind {
            DestinationKind::Segment => (
                &config.segment.format,
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
                    &config.mixpanel.format,
                    destination::mixpanel::path_and_query(project_id.as_deref()),
                    destination::mixpanel::public_headers(),
                )
            }
        };
        RequestTemplate {
            format,
            url_path,
            headers: header_strings(headers),
        }
    }
}

/// The requests `kind` would receive for `events` under `config`, built without network or
/// credentials (whether or not the destination is enabled). Pure: the same input gives the
/// same bytes.
pub fn prepare(config: &Config, kind: DestinationKind, events: &[UnifiedEvent<'_>]) -> Prepared {
    let template = RequestTemplate::new(config, kind);
    let built = payload::build(template.format, events);
    let requests = built
        .batches
        .into_iter()
        .map(|batch| PreparedRequest {
            destination: kind,
            method: "POST",
            url_path: template.url_path.clone(),
            headers: template.headers.clone(),
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

/// The enabled destinations, built once (clients and credentials for the container's life),
/// and the disabled ones with the reason. `secrets` reads credentials kept in Secrets Manager;
/// without it (a local run) they must come from the environment. Adding a vendor means its own
/// modules and one entry here.
pub async fn build_destinations(
    config: &Config,
    secrets: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<Destinations, StartError> {
    let http = http::HttpClient::new()?.with_max_response_bytes(http::MAX_RESPONSE_BYTES);
    let mut built = Destinations::default();
    match (config.segment.disabled_because(), &config.segment.source) {
        (None, Some(source)) => {
            let key = credentials::segment(source, secrets).await?;
            let segment = Segment::new(
                config.segment.format.clone(),
                &config.segment.endpoint,
                &key,
                http.clone(),
            )
            .ok_or(StartError::Header("segment"))?;
            built.enabled.push(Box::new(segment));
        }
        (why, _) => built
            .disabled
            .push((DestinationKind::Segment, why.unwrap_or("no credentials"))),
    }
    match (config.mixpanel.disabled_because(), &config.mixpanel.source) {
        (None, Some(source)) => {
            let auth: MixpanelAuth = credentials::mixpanel(source, secrets).await?;
            let mixpanel = Mixpanel::new(
                config.mixpanel.format.clone(),
                &config.mixpanel.endpoint,
                &auth,
                http.clone(),
            )
            .ok_or(StartError::Header("mixpanel"))?;
            built.enabled.push(Box::new(mixpanel));
        }
        (why, _) => built
            .disabled
            .push((DestinationKind::Mixpanel, why.unwrap_or("no credentials"))),
    }
    Ok(built)
}

/// The destinations [`build_destinations`] made.
#[derive(Default)]
pub struct Destinations {
    pub enabled: Vec<Box<dyn Destination>>,
    /// Each disabled destination and why (no credentials, switched off).
    pub disabled: Vec<(DestinationKind, &'static str)>,
}

impl std::fmt::Debug for Destinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destinations")
            .field(
                "enabled",
                &self.enabled.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Builds the forwarder: clients, credentials (fetched once here, for the container's life),
/// and one adapter per enabled destination. Logs which destinations are enabled and why the
/// others are not.
pub async fn build_forwarder(config: &Config, sdk: &SdkConfig) -> Result<Forwarder, StartError> {
    let s3 = metrics_objects::s3_client(sdk);
    let needs_secrets = matches!(config.segment.source, Some(SegmentSource::SecretArn(_)))
        || matches!(config.mixpanel.source, Some(MixpanelSource::SecretArn { .. }));
    let secrets = needs_secrets.then(|| aws_sdk_secretsmanager::Client::new(sdk));
    let destinations = build_destinations(config, secrets.as_ref()).await?;
    for destination in &destinations.enabled {
        tracing::info!(destination = destination.name(), "Destination enabled.");
    }
    for (kind, reason) in &destinations.disabled {
        tracing::warn!(destination = kind.name(), reason, "Destination disabled.");
    }
    Ok(Forwarder::new(
        s3,
        destinations.enabled,
        HandlerOptions::from_config(config),
    ))
}
