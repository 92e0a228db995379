//! The Lambda Runtime API loop, on the same client `lambda_runtime` uses
//! (`lambda_runtime_api_client`), moving the event and the response as bytes.
//!
//! `lambda_runtime` deserialises every event into an owned payload, and serialises every
//! response again with `serde_json::to_vec`. For a 3 MB Firehose batch answered with 4 MB, that
//! meant a copy of the body into fresh memory, a 4 MB copy of a response that is already JSON,
//! and (for serde to accept pre-built JSON) a full parse of it: about 2 ms of the 12 ms an
//! invocation cost (see `bench/README.md`). Here the event's body is read into one buffer reused
//! from invocation to invocation, and the response bytes are posted as they are.
//!
//! What the loop keeps from `lambda_runtime`: one invocation at a time; a handler error is
//! posted to `/error` as a [`Diagnostic`], and so is a panic, after which the loop goes on; the
//! invocation id is echoed so a stale answer is rejected; a non-success answer from the Runtime
//! API is logged; a `204` from `/next` (local emulators' keep-alive) is skipped. What it leaves
//! out, because this function does not use it: the `Context` object, the `_X_AMZN_TRACE_ID`
//! variable, SnapStart hooks and concurrent invocations.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use lambda_runtime::Diagnostic;
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{BoxError, PooledClient, build_request};

/// What [`PooledClient::call`] returns.
type ResponseFuture = lambda_runtime::BoxFuture<'static, Result<http::Response<Incoming>, BoxError>>;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const INVOCATION_ID: &str = "lambda-runtime-invocation-id";
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";

/// Why the loop stopped: the Runtime API cannot be reached or spoke out of protocol.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("AWS_LAMBDA_RUNTIME_API is not set: the function runs only under a Lambda Runtime API")]
    NoEndpoint,
    #[error("AWS_LAMBDA_RUNTIME_API is neither a host and port nor a URL: {0}")]
    BadEndpoint(String),
    #[error("the Runtime API's /next answer has status {0}")]
    NextStatus(StatusCode),
    #[error("the Runtime API's /next answer has no Lambda-Runtime-Aws-Request-Id")]
    NoRequestId,
    #[error("the Runtime API request failed: {0}")]
    Transport(BoxError),
}

/// One invocation, as `/next` announced it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// Echoed on the answer, so the Runtime API can reject an answer to a timed-out invocation.
    invocation_id: Option<HeaderValue>,
}

/// A client for the Runtime API at `AWS_LAMBDA_RUNTIME_API`.
#[derive(Debug)]
pub struct RuntimeApi {
    client: PooledClient,
}

impl RuntimeApi {
    pub fn from_env() -> Result<Self, RuntimeApiError> {
        let address = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| RuntimeApiError::NoEndpoint)?;
        Self::new(&address)
    }

    /// `address`: the Runtime API's `host:port` as Lambda gives it, or a URL with a base path
    /// as local emulators give it (`http://127.0.0.1:9000/.rt/NAME`).
    pub fn new(address: &str) -> Result<Self, RuntimeApiError> {
        let endpoint = http::Uri::try_from(address)
            .ok()
            .filter(|uri| uri.authority().is_some())
            .ok_or_else(|| RuntimeApiError::BadEndpoint(address.to_owned()))?;
        let client = PooledClient::builder().with_endpoint(endpoint).build();
        Ok(RuntimeApi { client })
    }

    /// Serves invocations one at a time until the Runtime API fails. `handler` gets each event's
    /// bytes and returns the response's bytes (JSON), or the error to report.
    pub async fn run<H>(&self, mut handler: H) -> Result<(), RuntimeApiError>
    where
        H: AsyncFnMut(&[u8]) -> Result<Vec<u8>, Diagnostic>,
    {
        let mut event = Vec::new();
        loop {
            let Some(invocation) = self.next(&mut event).await? else {
                continue;
            };
            let outcome = AssertUnwindSafe(handler(&event)).catch_unwind().await;
            let outcome = outcome.unwrap_or_else(|panic| Err(panicked(panic.as_ref())));
            match outcome {
                Ok(response) => self.respond(&invocation, response).await?,
                Err(diagnostic) => self.fail(&invocation, &diagnostic).await?,
            }
        }
    }

    /// Waits for the next invocation and reads its event into `event`, replacing what was there.
    /// `None` when the Runtime API answered `204 No Content` (no invocation).
    pub async fn next(&self, event: &mut Vec<u8>) -> Result<Option<Invocation>, RuntimeApiError> {
        let request = build_request().method(Method::GET).uri(NEXT).body(Body::empty());
        let answer = self.send(request)?.await.map_err(RuntimeApiError::Transport)?;
        let (parts, mut body) = answer.into_parts();
        if parts.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if !parts.status.is_success() {
            return Err(RuntimeApiError::NextStatus(parts.status));
        }
        let invocation = Invocation::from_headers(&parts.headers)?;
        event.clear();
        event.reserve(content_length(&parts.headers));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| RuntimeApiError::Transport(e.into()))?;
            if let Some(data) = frame.data_ref() {
                event.extend_from_slice(data);
            }
        }
        Ok(Some(invocation))
    }

    /// Posts the invocation's response, exactly these bytes.
    pub async fn respond(&self, invocation: &Invocation, response: Vec<u8>) -> Result<(), RuntimeApiError> {
        let uri = format!(
            "/2018-06-01/runtime/invocation/{}/response",
            invocation.request_id
        );
        let request = invocation.answer(uri, &[]).body(Body::from(response));
        self.post(request).await
    }

    /// Posts the invocation's error; the caller (Firehose) sees the invocation fail.
    pub async fn fail(
        &self,
        invocation: &Invocation,
        diagnostic: &Diagnostic,
    ) -> Result<(), RuntimeApiError> {
        let uri = format!("/2018-06-01/runtime/invocation/{}/error", invocation.request_id);
        let request = invocation
            .answer(uri, &[(ERROR_TYPE, "Unhandled")])
            .body(Body::from(diagnostic_json(diagnostic)));
        self.post(request).await
    }

    async fn post(&self, request: Result<Request<Body>, http::Error>) -> Result<(), RuntimeApiError> {
        let answer = self.send(request)?.await.map_err(RuntimeApiError::Transport)?;
        let status = answer.status();
        if !status.is_success() {
            // 413: the response was over the payload limit; 410: the invocation timed out.
            // Either way this invocation is over and the next one can be served.
            tracing::error!(
                status = status.as_u16(),
                "The Lambda Runtime API refused the answer."
            );
        }
        Ok(())
    }

    /// The call's future, for a request that could be built.
    fn send(&self, request: Result<Request<Body>, http::Error>) -> Result<ResponseFuture, RuntimeApiError> {
        let request = request.map_err(|e| RuntimeApiError::Transport(e.into()))?;
        Ok(self.client.call(request))
    }
}

impl Invocation {
    fn from_headers(headers: &HeaderMap) -> Result<Self, RuntimeApiError> {
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| !id.is_empty())
            .ok_or(RuntimeApiError::NoRequestId)?
            .to_owned();
        Ok(Invocation {
            request_id,
            invocation_id: headers.get(INVOCATION_ID).cloned(),
        })
    }

    /// A POST for this invocation's answer at `uri`.
    fn answer(&self, uri: String, headers: &[(&'static str, &'static str)]) -> http::request::Builder {
        let mut request = build_request().method(Method::POST).uri(uri);
        if let Some(id) = &self.invocation_id {
            request = request.header(INVOCATION_ID, id.clone());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }
}

fn content_length(headers: &HeaderMap) -> usize {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `{"errorType":…,"errorMessage":…}`, the body `/error` expects.
fn diagnostic_json(diagnostic: &Diagnostic) -> Vec<u8> {
    serde_json::to_vec(diagnostic)
        .unwrap_or_else(|_| br#"{"errorType":"Unhandled","errorMessage":""}"#.to_vec())
}

/// A panic in the handler, reported like any other invocation error.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Diagnostic {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the handler panicked".to_owned());
    tracing::error!(error = %message, "The handler panicked; the invocation fails.");
    Diagnostic {
        error_type: "panic".to_owned(),
        error_message: message,
    }
}
