//! Who is asking: the tenant, taken only from a verified identity.
//!
//! - Deployed ([`IdentitySource::ApiGateway`]): API Gateway's JWT authorizer has verified the
//!   token (issuer, audience, expiry, signature) before the function runs, and `lambda_http`
//!   puts the request context in the request's extensions. The tenant is the claim named by
//!   `TENANT_CLAIM`; a Lambda authorizer may put the same key in its context instead (that is
//!   how an IAM caller's principal tag reaches the function: API Gateway's IAM context carries
//!   no tags, so a Lambda authorizer reads the tag and returns it as context).
//! - Local ([`IdentitySource::Local`]): a bearer token verified by [`LocalTokens`].
//!
//! A tenant named anywhere else (a header, the path, the query, the body) is never read; a
//! request that names one in a header is refused so a client bug shows.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use metrics_schema::TenantId;

use super::AppState;
use super::error::AppError;
use super::token::LocalTokens;

/// Where identities come from.
#[derive(Debug)]
pub enum IdentitySource {
    /// The request context of an API Gateway HTTP API (v2) event; `claim` names the tenant.
    ApiGateway { claim: String },
    /// Bearer tokens minted by this process.
    Local(Box<LocalTokens>),
}

impl IdentitySource {
    /// Local tokens signed by `tokens`.
    pub fn local(tokens: LocalTokens) -> Self {
        IdentitySource::Local(Box::new(tokens))
    }
}

/// Headers a confused client might use to pick a tenant. Refused, never read.
const TENANT_HEADERS: &[&str] = &[
    "tenant",
    "tenant-id",
    "tenant_id",
    "x-tenant",
    "x-tenant-id",
    "x-metrics-tenant",
];

/// Whether a parameter or field name tries to choose the tenant.
pub(crate) fn names_a_tenant(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase().replace('-', "_");
    matches!(
        k.as_str(),
        "tenant" | "tenant_id" | "tenantid" | "x_tenant_id" | "x_tenant" | "tenant_name"
    )
}

/// The caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub TenantId<'static>);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if TENANT_HEADERS.iter().any(|h| parts.headers.contains_key(*h)) {
            return Err(AppError::TenantNotAllowed);
        }
        let raw = match state.identity.as_ref() {
            IdentitySource::ApiGateway { claim } => from_request_context(parts, claim)?,
            IdentitySource::Local(tokens) => from_local_token(parts, tokens)?,
        };
        TenantId::parse(raw)
            .map(|t| Tenant(t.into_owned()))
            .map_err(|_| AppError::NoTenant)
    }
}

fn from_request_context(parts: &Parts, claim: &str) -> Result<String, AppError> {
    let Some(RequestContext::ApiGatewayV2(context)) = parts.extensions.get::<RequestContext>() else {
        return Err(AppError::Unauthorized);
    };
    let authorizer = context.authorizer.as_ref().ok_or(AppError::Unauthorized)?;
    if let Some(value) = authorizer.jwt.as_ref().and_then(|jwt| jwt.claims.get(claim)) {
        return Ok(value.clone());
    }
    match authorizer.fields.get(claim) {
        Some(serde_json::Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(AppError::NoTenant),
        None if authorizer.jwt.is_some() || !authorizer.fields.is_empty() => Err(AppError::NoTenant),
        None => Err(AppError::Unauthorized),
    }
}

fn from_local_token(parts: &Parts, tokens: &LocalTokens) -> Result<String, AppError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AppError::Unauthorized)?;
    let text = header.to_str().map_err(|_| AppError::Unauthorized)?;
    let (scheme, token) = text.split_once(' ').ok_or(AppError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::Unauthorized);
    }
    tokens
        .verify(token.trim())
        .map(|c| c.tenant_id)
        .ok_or(AppError::Unauthorized)
}
