//! Segment's HTTP Tracking API: `POST {endpoint}/v1/batch`, HTTP Basic with the write key as
//! user name and an empty password.

use std::time::Duration;

use base64::Engine;
use http::{HeaderName, HeaderValue};

use super::{Destination, Endpoint, SendFuture};
use crate::http::HttpClient;
use crate::payload::segment::{PATH, SegmentFormat};
use crate::payload::{Format, PreparedBatch};
use metrics_http::Secret;

/// `SEGMENT_ENDPOINT` when unset (Oregon; EU workspaces must set their regional host).
pub const DEFAULT_ENDPOINT: &str = "https://api.segment.io";

#[derive(Debug, Clone)]
pub struct Segment {
    format: SegmentFormat,
    endpoint: Endpoint,
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
        let uri = format!("{}{PATH}", endpoint.trim_end_matches('/'));
        let endpoint = Endpoint::new(&uri, public_headers(), authorization(write_key)?, http)?;
        Some(Segment { format, endpoint })
    }
}

impl Destination for Segment {
    fn format(&self) -> &dyn Format {
        &self.format
    }

    fn send<'a>(&'a self, batch: &'a PreparedBatch, timeout: Duration) -> SendFuture<'a> {
        // Segment explains no refusal further than its status.
        Box::pin(self.endpoint.send(batch, timeout, |_| None))
    }
}
