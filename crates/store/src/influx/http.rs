//! The HTTP client (shared with the forwarder): see `metrics_http`.

pub use metrics_http::{HttpClient, HttpError, HttpResponse};
