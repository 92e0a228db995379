//! The API's one error type. Every failure leaves as `{"error":{"code","message"}}` with a
//! stable code and a message safe to show; internal details are logged, never returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::model::{QueryError, QueryErrorCode};

/// Why a request failed, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The request could not run as asked (bad or unknown names, limits, …).
    #[error("{0}")]
    Query(QueryError),
    /// No valid identity: missing, forged, expired, unsigned or wrong-audience tokens.
    #[error("unauthorized")]
    Unauthorized,
    /// A verified identity that names no valid tenant.
    #[error("forbidden")]
    NoTenant,
    /// The request named a tenant itself (path, query, body or header): only the identity may.
    #[error("tenant_not_allowed")]
    TenantNotAllowed,
    /// A parameter or body field the route does not take.
    #[error("unknown_parameter: {0}")]
    UnknownParameter(String),
    /// A malformed request: bad JSON, a repeated single-valued parameter, a missing one.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("not_found")]
    NotFound,
    #[error("method_not_allowed")]
    MethodNotAllowed,
    /// An alert that cannot be accepted, or is not found.
    #[error("{0}")]
    Alert(metrics_alerts::AlertError),
    /// Something on our side; the detail went to the log.
    #[error("internal")]
    Internal,
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Query(e) => e.code.as_str(),
            AppError::Unauthorized => "unauthorized",
            AppError::NoTenant => "no_tenant",
            AppError::TenantNotAllowed => "tenant_not_allowed",
            AppError::UnknownParameter(_) => "unknown_parameter",
            AppError::InvalidRequest(_) => "invalid_request",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Alert(e) => e.code(),
            AppError::Internal => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Query(e) if e.code == QueryErrorCode::StoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Query(e) if e.code == QueryErrorCode::UnknownMetric => StatusCode::NOT_FOUND,
            AppError::Query(e) if e.code.is_client_error() => StatusCode::BAD_REQUEST,
            // query_failed: no retry helps, so not 503.
            AppError::Query(_) | AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::NoTenant => StatusCode::FORBIDDEN,
            AppError::TenantNotAllowed | AppError::UnknownParameter(_) | AppError::InvalidRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Alert(metrics_alerts::AlertError::NotFound) => StatusCode::NOT_FOUND,
            AppError::Alert(metrics_alerts::AlertError::TooManyAlerts { .. }) => StatusCode::CONFLICT,
            AppError::Alert(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// What the caller reads. Query messages are written to be shown (names are bounded and
    /// quoted by the model); the others are fixed sentences.
    pub fn message(&self) -> String {
        match self {
            // A store failure's message may hold an engine's detail: never pass it on.
            AppError::Query(e) if e.code == QueryErrorCode::StoreUnavailable => {
                "the store could not answer; try again later".into()
            }
            AppError::Query(e) if !e.code.is_client_error() => {
                "the store cannot run this query; retrying will not help".into()
            }
            AppError::Query(e) => e.message.clone(),
            AppError::Unauthorized => "a valid bearer token is required".into(),
            AppError::NoTenant => "the identity names no valid tenant".into(),
            AppError::TenantNotAllowed => {
                "the tenant comes from your token; requests may not name one".into()
            }
            AppError::UnknownParameter(name) => format!("unknown parameter {}", shown(name)),
            AppError::InvalidRequest(why) => why.clone(),
            AppError::NotFound => "no such route".into(),
            AppError::MethodNotAllowed => "method not allowed on this route".into(),
            AppError::Alert(e) => e.to_string(),
            AppError::Internal => "something went wrong".into(),
        }
    }
}

/// A caller-supplied name, bounded and quoted, for an error message.
pub(crate) fn shown(name: &str) -> String {
    let short: String = name.chars().take(60).collect();
    format!("{short:?}")
}

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        AppError::Query(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), "Query request failed.");
        }
        let body = json!({"error": {"code": self.code(), "message": self.message()}});
        // Errors are never cached: the next attempt may succeed.
        let mut response = (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme is expected, and nothing about why the token failed.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
