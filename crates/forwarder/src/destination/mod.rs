//! The destination port: a pure half that turns events into request batches, and an I/O half
//! that sends one batch and classifies the answer. Adapters: [`segment`], [`mixpanel`].

pub mod mixpanel;
pub mod segment;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use metrics_schema::UnifiedEvent;

use http::{HeaderName, HeaderValue, Uri};

use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::payload::{Built, Format, PreparedBatch, PreparedItem, batch, build};
use crate::reason::Reason;

/// The destinations this function knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestinationKind {
    Segment,
    Mixpanel,
}

impl DestinationKind {
    pub const ALL: [DestinationKind; 2] = [DestinationKind::Segment, DestinationKind::Mixpanel];

    /// Lower-case name: dead letters, metrics, logs, progress markers.
    pub const fn name(self) -> &'static str {
        match self {
            DestinationKind::Segment => "segment",
            DestinationKind::Mixpanel => "mixpanel",
        }
    }
}

/// What the vendor did with one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Every event was accepted.
    Accepted,
    /// Some events were refused (by position in the batch), the rest accepted.
    Partial { refused: Vec<(usize, String)> },
    /// 413: the batch must be split.
    TooLarge,
    /// Worth trying again: 429, 5xx, timeout, connection failure.
    Retry {
        reason: Reason,
        retry_after: Option<String>,
        detail: String,
    },
    /// Trying again cannot help: the whole batch is refused.
    Refused { reason: Reason, detail: String },
}

/// What [`Destination::send`] returns: boxed, so destinations of different types can stand in
/// one list (one request's allocation is nothing next to its network round trip).
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// A destination. The enabled ones are built once, as a list ([`crate::build_destinations`]),
/// and every object goes to each of them through [`crate::forward::forward_object`]. A vendor
/// supplies its payload [`Format`] (the pure half) and `send` (the I/O half).
pub trait Destination: Send + Sync {
    /// The vendor's payload format: what events become, and its limits.
    fn format(&self) -> &dyn Format;

    /// Sends one batch and classifies the answer.
    fn send<'a>(&'a self, batch: &'a PreparedBatch, timeout: Duration) -> SendFuture<'a>;

    fn kind(&self) -> DestinationKind {
        self.format().kind()
    }

    fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Pure: the batches for `events`, within the vendor's limits.
    fn build_batches(&self, events: &[UnifiedEvent<'_>]) -> Built {
        build(self.format(), events)
    }

    /// Pure: a batch of some of another batch's items (after a 413).
    fn rebuild(&self, items: Vec<PreparedItem>) -> PreparedBatch {
        batch(self.format(), items)
    }
}

/// Where a vendor's requests go: its URL, headers (credentials included) and client.
#[derive(Debug, Clone)]
pub struct Endpoint {
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    http: HttpClient,
}

impl Endpoint {
    /// `headers` plus `authorization` (marked sensitive by its maker); `None` when `uri` is not
    /// a URL.
    pub fn new(
        uri: &str,
        mut headers: Vec<(HeaderName, HeaderValue)>,
        authorization: HeaderValue,
        http: HttpClient,
    ) -> Option<Endpoint> {
        headers.push((http::header::AUTHORIZATION, authorization));
        Some(Endpoint {
            uri: uri.parse().ok()?,
            headers,
            http,
        })
    }

    /// Posts one batch and classifies the answer: 2xx is accepted, and what both vendors treat
    /// alike is [`classify`]'s; another answer is the vendor's `own` outcome for it if it has
    /// one, else the whole batch is refused with the status.
    pub async fn send(
        &self,
        batch: &PreparedBatch,
        timeout: Duration,
        own: impl FnOnce(&HttpResponse) -> Option<SendOutcome>,
    ) -> SendOutcome {
        let result = self
            .http
            .post(&self.uri, &self.headers, batch.body.clone(), timeout)
            .await;
        match classify(result) {
            Err(outcome) => outcome,
            Ok(response) if (200..300).contains(&response.status) => SendOutcome::Accepted,
            Ok(response) => own(&response).unwrap_or_else(|| SendOutcome::Refused {
                reason: Reason::Http(response.status),
                detail: excerpt(&response.body),
            }),
        }
    }
}

/// The classification both vendors share for answers that are not their special cases.
pub(crate) fn classify(result: Result<HttpResponse, HttpError>) -> Result<HttpResponse, SendOutcome> {
    let response = match result {
        Ok(response) => response,
        Err(HttpError::Timeout(t)) => {
            return Err(SendOutcome::Retry {
                reason: Reason::Timeout,
                retry_after: None,
                detail: format!("no answer within {} ms", t.as_millis()),
            });
        }
        Err(e) => {
            return Err(SendOutcome::Retry {
                reason: Reason::ConnectionFailed,
                retry_after: None,
                detail: e.to_string(),
            });
        }
    };
    match response.status {
        200..=299 => Ok(response),
        413 => Err(SendOutcome::TooLarge),
        408 | 429 | 500..=599 => Err(SendOutcome::Retry {
            reason: Reason::Http(response.status),
            retry_after: response.retry_after.clone(),
            detail: excerpt(&response.body),
        }),
        _ => Ok(response),
    }
}

/// The start of a response body, for a dead letter's detail (vendors never echo credentials).
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 1024;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    text.trim().to_owned()
}
