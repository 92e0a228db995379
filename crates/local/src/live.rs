//! The forward stage of the local pipeline when it sends for real: the forwarder's own
//! destinations ([`build_destinations`]) and per-object loop ([`crate::forward`], run by
//! [`crate::outbox::Forwarding`]), to the
//! endpoints and credentials its environment variables configure (`SEGMENT_ENDPOINT`,
//! `SEGMENT_WRITE_KEY`, `MIXPANEL_ENDPOINT`, …). Everything a destination does not accept is
//! written under `Error/forwarder/<destination>/<object key>.ndjson` in the local bucket.

use metrics_forwarder::config::Config;
use metrics_forwarder::destination::Destination;
use metrics_forwarder::{Destinations, build_destinations};
use metrics_schema::EventTime;

/// Sends each object's events to the enabled destinations.
#[derive(Debug)]
pub struct LiveForwarder {
    destinations: Destinations,
    pub(crate) config: Config,
    pub(crate) now: EventTime,
}

impl LiveForwarder {
    /// Builds the destinations from the forwarder's configuration. Credentials must come from
    /// the environment (`SEGMENT_WRITE_KEY`, `MIXPANEL_…`): a local run reads no secrets.
    pub async fn new(config: Config) -> Result<Self, String> {
        let destinations = build_destinations(&config, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(LiveForwarder {
            destinations,
            config,
            now: EventTime::now(),
        })
    }

    /// The enabled destinations.
    pub(crate) fn enabled(&self) -> Vec<&dyn Destination> {
        self.destinations.enabled.iter().map(|d| d.as_ref()).collect()
    }

    /// Destinations that are off, and why (no credentials, switched off).
    pub fn disabled(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.destinations
            .disabled
            .iter()
            .map(|(kind, why)| (kind.name(), *why))
    }
}
