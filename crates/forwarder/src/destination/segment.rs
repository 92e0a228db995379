//! Segment's HTTP Tracking API: `POST {endpoint}/v1/batch`, HTTP Basic with the write key as
//! user name and an empty password.

use std::time::Duration;

use base64::Engine;
use http::{HeaderName, HeaderValue, Uri};
use metrics_schema::UnifiedEvent;

use super::{Destination, DestinationKind, SendFuture, SendOutcome, classify, excerpt};
use crate::http::HttpClient;
use crate::payload::segment::{PATH, SegmentFormat};
use crate::payload::{Built, PreparedBatch, PreparedItem, batch, build};
use crate::reason::Reason;
use metrics_http::Secret;

/// `SEGMENT_ENDPOINT` when unset (Oregon; EU workspaces must set their regional host).
pub const DEFAULT_ENDPOINT: &str = "https://api.segment.io";

#[derive(Debug, Clone)]
pub struct Segment {
    format: SegmentFormat,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    http: HttpClient,
}

/// The headers of a Segment request, credentials excepted.
pub fn public_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("metrics-lake/", env!("CARGO_PKG_VERSION"))),
        ),
    ]
}

/// `Authorization: Basic base64("<write key>:")`, marked sensitive.
pub fn authorization(write_key: &Secret) -> Option<HeaderValue> {
    Secret::new(base64::engine::general_purpose::STANDARD.encode(format!("{}:", write_key.expose())))
        .authorization("Basic")
}

impl Segment {
    /// `endpoint` is the scheme and host (`https://api.segment.io`); `None` when the write key
    /// cannot be a header value or the endpoint is not a URL.
    pub fn new(
        format: SegmentFormat,
        endpoint: &str,
        write_key: &Secret,
        http: HttpClient,
    ) -> Option<Segment> {
        let uri: Uri = format!("{}{PATH}", endpoint.trim_end_matches('/')).parse().ok()?;
        let mut headers = public_headers();
        headers.push((http::header::AUTHORIZATION, authorization(write_key)?));
        Some(Segment {
            format,
            uri,
            headers,
            http,
        })
    }
}

impl Destination for Segment {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Segment
    }

    fn build_batches(&self, events: &[UnifiedEvent<'_>]) -> Built {
        build(&self.format, events)
    }

    fn rebuild(&self, items: Vec<PreparedItem>) -> PreparedBatch {
        batch(&self.format, items)
    }

    fn send<'a>(&'a self, batch: &'a PreparedBatch, timeout: Duration) -> SendFuture<'a> {
        Box::pin(async move {
            let result = self
                .http
                .post(&self.uri, &self.headers, batch.body.clone(), timeout)
                .await;
            match classify(result) {
                Err(outcome) => outcome,
                Ok(response) if (200..300).contains(&response.status) => SendOutcome::Accepted,
                Ok(response) => SendOutcome::Refused {
                    reason: Reason::Http(response.status),
                    detail: excerpt(&response.body),
                },
            }
        })
    }
}
