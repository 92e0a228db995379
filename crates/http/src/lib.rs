//! The HTTP client the functions share (the forwarder to Segment and Mixpanel, the store to
//! InfluxDB): hyper over rustls with the aws-lc-rs provider and the system's roots, the same
//! stack the AWS SDK already compiles, so a function carries one TLS implementation. Plain
//! `http://` is allowed for local servers (tests, the vendor simulator, a tunnel).
//!
//! A client made [`HttpClient::guarded`] connects only to addresses its [`AddressFilter`]
//! allows, and its answers are never followed: a redirect is an answer like any other.
//!
//! Beside the client: [`parse_retry_after`], the one `Retry-After` parser; [`Secret`], the one credential type (it never prints its value), and,
//! with the `secrets-manager` feature, [`secrets_manager::read_secret`], the one Secrets
//! Manager reader.

mod guard;
mod retry_after;
mod secret;
#[cfg(feature = "secrets-manager")]
pub mod secrets_manager;

pub use guard::{AddressFilter, AddressRefused, GuardedResolver};
pub use retry_after::parse_retry_after;
pub use secret::Secret;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// By default at most this much of an answer is read: the answers the functions read are JSON
/// documents bounded by their own limits (a Mixpanel strict-mode 400 lists at most 2,000
/// records, an InfluxDB query answer is bounded by the query model).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A failed exchange: no status was received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the request failed: {0}")]
    Connection(String),
    #[error("the TLS roots could not be loaded: {0}")]
    Tls(String),
    #[error("the request could not be built: {0}")]
    Request(String),
    /// A guarded client refused to connect to this address.
    #[error("the address {0} is not allowed")]
    AddressRefused(std::net::IpAddr),
}

/// An answer: status, `Retry-After` as sent, and the start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Bytes,
}

impl HttpResponse {
    /// The wait `Retry-After` asks for, from now ([`parse_retry_after`]).
    pub fn retry_after_delay(&self) -> Option<Duration> {
        parse_retry_after(self.retry_after.as_deref()?, SystemTime::now())
    }
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    resolver: GuardedResolver,
    max_response_bytes: usize,
}

impl HttpClient {
    /// A client with pooled keep-alive connections.
    pub fn new() -> Result<HttpClient, HttpError> {
        HttpClient::build(GuardedResolver::new(None))
    }

    /// A client that connects only to addresses `filter` allows: every address a name resolves
    /// to, and an address written in the URL, are checked before connecting.
    pub fn guarded(filter: AddressFilter) -> Result<HttpClient, HttpError> {
        HttpClient::build(GuardedResolver::new(Some(filter)))
    }

    fn build(resolver: GuardedResolver) -> Result<HttpClient, HttpError> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut http = HttpConnector::new_with_resolver(resolver.clone());
        // The TLS layer decides the scheme; the TCP layer must accept https URLs.
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| HttpError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(HttpClient {
            client,
            resolver,
            max_response_bytes: MAX_RESPONSE_BYTES,
        })
    }

    /// The same client, reading at most `bytes` of each answer.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> HttpClient {
        self.max_response_bytes = bytes;
        self
    }

    /// `POST`s `body` with `headers`, waiting at most `timeout` for the whole answer.
    pub async fn post(
        &self,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        self.send(Method::POST, uri, headers, body, timeout).await
    }

    /// Sends one request and waits at most `timeout` for the whole answer.
    pub async fn send(
        &self,
        method: Method,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        // hyper connects to an address written in the URL without asking the resolver.
        let literal = uri
            .host()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        if let Some(ip) = self.resolver.refused(literal) {
            return Err(HttpError::AddressRefused(ip));
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri.clone())
            .body(Full::new(body))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| match guard::refused_in(&e) {
                    Some(ip) => HttpError::AddressRefused(ip),
                    None => HttpError::Connection(describe(&e)),
                })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // A body over the limit is dropped rather than failing the exchange: the status decides.
            let body = match Limited::new(response.into_body(), self.max_response_bytes)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            Ok(HttpResponse {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout(timeout)))
    }
}

/// The error and its causes on one line (hyper's top-level message alone says little).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
