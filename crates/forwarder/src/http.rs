//! The HTTP client (shared with the store's InfluxDB adapter): see `metrics_http`.

pub use metrics_http::{HttpClient, HttpError, HttpResponse};

/// At most this much of a vendor's answer is read: answers are small JSON documents, the
/// largest being a Mixpanel strict-mode 400 listing up to 2,000 `failed_records`.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
