//! Timestream query clients, one per tenant when a tenant role is configured: the function
//! assumes `TENANT_QUERY_ROLE_ARN` with the session tag `tenant=<id>`, and that role may only
//! `Select` the table named by its own tag (reference §3.10). So even a query that named
//! another table would be denied by IAM. Clients are kept until shortly before their
//! credentials expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::types::Tag;
use aws_sdk_timestreamquery::Client;
use aws_sdk_timestreamquery::config::Credentials;
use metrics_schema::TenantId;

use crate::model::QueryError;

/// How long assumed credentials are asked for, and how early they are replaced.
const SESSION: Duration = Duration::from_secs(900);
const MARGIN: Duration = Duration::from_secs(120);

/// The role assumed per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRole {
    pub arn: String,
    pub session_tag: String,
}

#[derive(Debug)]
pub struct Clients {
    sdk: SdkConfig,
    role: Option<TenantRole>,
    /// The function's own client, only without a tenant role (tests, local runs): with one,
    /// the function itself may not even discover endpoints.
    shared: Option<Client>,
    by_tenant: Mutex<HashMap<String, Held>>,
}

/// A tenant's client, until when its credentials serve, and its endpoint-refresh task.
#[derive(Debug)]
struct Held {
    until: SystemTime,
    client: Client,
    refresh: Option<tokio::task::AbortHandle>,
}

fn unavailable(e: impl std::fmt::Display) -> QueryError {
    QueryError::unavailable("timestream", &e)
}

fn failed(e: impl std::fmt::Display) -> QueryError {
    QueryError::failed("timestream", &e)
}

/// A failed AssumeRole: `store_unavailable` for what a retry may pass (STS throttling answers
/// a generic error, timeouts and dropped connections have no service error), `query_failed`
/// for what it cannot (the role's trust policy, a bad tag, an expired token, a region without
/// STS). Errors: https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
fn assume_role_failure(
    e: aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
) -> QueryError {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError as E;
    let permanent = matches!(
        e.as_service_error(),
        Some(
            E::ExpiredTokenException(_)
                | E::MalformedPolicyDocumentException(_)
                | E::PackedPolicyTooLargeException(_)
                | E::RegionDisabledException(_)
        )
    ) || e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("AccessDenied");
    let detail = aws_sdk_sts::error::DisplayErrorContext(e);
    if permanent {
        failed(detail)
    } else {
        unavailable(detail)
    }
}

/// A session name from the tenant id: `[\w+=,.@-]`, at most 64 characters.
pub fn session_name(tenant: &TenantId<'_>) -> String {
    let clean: String = tenant
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("tenant-{clean}").chars().take(64).collect()
}

impl Clients {
    pub async fn new(sdk: SdkConfig, role: Option<TenantRole>) -> Result<Self, QueryError> {
        let shared = match role {
            Some(_) => None,
            None => Some(client(Client::new(&sdk), &sdk).await?.0),
        };
        Ok(Clients {
            sdk,
            role,
            shared,
            by_tenant: Mutex::new(HashMap::new()),
        })
    }

    /// The client that runs `tenant`'s queries.
    pub async fn for_tenant(&self, tenant: &TenantId<'_>) -> Result<Client, QueryError> {
        let (Some(role), None) = (&self.role, &self.shared) else {
            return self.shared.clone().ok_or_else(|| failed("no query client"));
        };
        if let Some(c) = self.by_tenant.lock().ok().and_then(|m| {
            m.get(tenant.as_str())
                .filter(|h| SystemTime::now() < h.until)
                .map(|h| h.client.clone())
        }) {
            return Ok(c);
        }
        let tag = Tag::builder()
            .key(&role.session_tag)
            .value(tenant.as_str())
            .build()
            .map_err(failed)?;
        let out = aws_sdk_sts::Client::new(&self.sdk)
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(session_name(tenant))
            .tags(tag)
            .duration_seconds(SESSION.as_secs() as i32)
            .send()
            .await
            .map_err(assume_role_failure)?;
        let creds = out
            .credentials()
            .ok_or_else(|| failed("AssumeRole returned no credentials"))?;
        let credentials = Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            None,
            "tenant-query-role",
        );
        let config = aws_sdk_timestreamquery::config::Builder::from(&self.sdk)
            .credentials_provider(credentials)
            .build();
        let (c, refresh) = client(Client::from_conf(config), &self.sdk).await?;
        let held = Held {
            until: SystemTime::now() + SESSION - MARGIN,
            client: c.clone(),
            refresh,
        };
        if let Ok(mut m) = self.by_tenant.lock()
            && let Some(old) = m.insert(tenant.as_str().to_owned(), held)
            && let Some(task) = old.refresh
        {
            // The replaced client's endpoint refresh would otherwise run for ever.
            task.abort();
        }
        Ok(c)
    }
}

/// A query client: endpoint discovery in AWS (Timestream requires it); the endpoint as given
/// when one is overridden (moto, whose discovery answer names the real AWS host).
async fn client(
    client: Client,
    sdk: &SdkConfig,
) -> Result<(Client, Option<tokio::task::AbortHandle>), QueryError> {
    if sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_TIMESTREAM_QUERY").is_some() {
        return Ok((client, None));
    }
    let (client, reload) = client
        .with_endpoint_discovery_enabled()
        .await
        .map_err(unavailable)?;
    let task = tokio::spawn(reload.reload_task());
    Ok((client, Some(task.abort_handle())))
}
