//! A small client for the control API, so tests talk to the simulator over HTTP only.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::state::{Fault, Settings, SimState};

#[derive(Debug, thiserror::Error)]
pub enum SimClientError {
    #[error("request to the simulator failed: {0}")]
    Http(String),
    #[error("the simulator answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the simulator's answer is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Talks to a simulator's `/_sim/` API.
#[derive(Debug, Clone)]
pub struct SimClient {
    endpoint: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl SimClient {
    /// `endpoint` is `http://host:port`.
    pub fn new(endpoint: &str) -> SimClient {
        SimClient {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Everything accepted and every request seen since the last reset.
    pub async fn state(&self) -> Result<SimState, SimClientError> {
        let body = self.call(http::Method::GET, "/_sim/state", Bytes::new()).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Queues a fault.
    pub async fn fault(&self, fault: &Fault) -> Result<(), SimClientError> {
        self.post("/_sim/faults", fault).await
    }

    /// Changes settings (absent fields keep their value).
    pub async fn settings(&self, settings: &Settings) -> Result<(), SimClientError> {
        self.post("/_sim/settings", settings).await
    }

    /// Forgets accepted events, requests, faults and settings.
    pub async fn reset(&self) -> Result<(), SimClientError> {
        self.call(http::Method::POST, "/_sim/reset", Bytes::new())
            .await
            .map(drop)
    }

    async fn post(&self, path: &str, value: &impl Serialize) -> Result<(), SimClientError> {
        let body = serde_json::to_vec(value)?;
        self.call(http::Method::POST, path, Bytes::from(body))
            .await
            .map(drop)
    }

    async fn call(&self, method: http::Method, path: &str, body: Bytes) -> Result<Bytes, SimClientError> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| SimClientError::Http(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| SimClientError::Http(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| SimClientError::Http(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(SimClientError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(body)
    }
}
