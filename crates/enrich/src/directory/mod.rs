//! The tenant directory: tenant id → display name, behind a port.
//!
//! - [`TenantSource`] is the port: look up many ids in one call.
//! - [`FileDirectory`] (`TENANTS_FILE`) is loaded once and needs no network or credentials.
//! - [`DynamoDbDirectory`] (`TENANTS_TABLE`) answers with one `BatchGetItem` per 100 ids, behind
//!   a [`CachedDirectory`] that remembers answers for a TTL (unknown tenants for a shorter one).
//!
//! The handler asks [`Directory::resolve`] once per batch, for the batch's distinct tenants,
//! and gets [`Names`]; a failing source fails the invocation so Firehose retries it, rather than
//! failing every record.

mod cache;
mod dynamodb;
mod file;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

pub use cache::{CachedDirectory, Clock, SystemClock};
pub use dynamodb::{BATCH_GET_MAX_KEYS, DynamoDbDirectory, MAX_BATCH_GET_ATTEMPTS};
pub use file::FileDirectory;

/// Longest tenant display name, in bytes. Bounding it bounds how much enrichment can grow a
/// record, which keeps the response under Lambda's limit (see the crate docs).
pub const MAX_TENANT_NAME_BYTES: usize = 64;

/// The port: display names for many tenant ids at once. Ids missing from the answer are
/// unknown tenants; an `Err` means the directory could not answer.
pub trait TenantSource: Send + Sync {
    fn lookup_many(
        &self,
        ids: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, String>, DirectoryError>> + Send;
}

/// Display names known for one batch.
pub trait TenantNames {
    fn name(&self, tenant_id: &str) -> Option<&str>;
}

impl TenantNames for HashMap<String, String> {
    fn name(&self, tenant_id: &str) -> Option<&str> {
        self.get(tenant_id).map(String::as_str)
    }
}

impl TenantNames for HashMap<String, Arc<str>> {
    fn name(&self, tenant_id: &str) -> Option<&str> {
        self.get(tenant_id).map(|n| &**n)
    }
}

/// Whether a display name can be added to events: 1–64 bytes, no control characters.
pub fn check_tenant_name(name: &str) -> bool {
    (1..=MAX_TENANT_NAME_BYTES).contains(&name.len()) && !name.chars().any(char::is_control)
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read the tenants file {path}: {source}")]
    ReadFile { path: String, source: std::io::Error },
    #[error("the tenants file {path} is not a JSON object of tenant_id -> name strings: {source}")]
    ParseFile { path: String, source: serde_json::Error },
    #[error("the tenants file {path} has an invalid entry: {detail}")]
    InvalidEntry { path: String, detail: String },
    #[error("the tenants table {table} could not be read: {source}")]
    Lookup {
        table: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the tenants table {table} left {keys} keys unprocessed after {attempts} attempts")]
    Unprocessed {
        table: String,
        keys: usize,
        attempts: usize,
    },
}

/// The directory the handler uses, chosen by configuration.
#[derive(Debug)]
pub enum Directory {
    File(FileDirectory),
    Table(CachedDirectory<DynamoDbDirectory>),
}

/// The names a batch can use.
#[derive(Debug)]
pub enum Names<'d> {
    /// The whole file: every lookup is a map read.
    File(&'d FileDirectory),
    /// The batch's tenants that the directory knows.
    Resolved(HashMap<String, Arc<str>>),
}

impl TenantNames for Names<'_> {
    fn name(&self, tenant_id: &str) -> Option<&str> {
        match self {
            Names::File(file) => file.name(tenant_id),
            Names::Resolved(map) => map.name(tenant_id),
        }
    }
}

impl Directory {
    /// Names for a batch's distinct tenant ids.
    pub async fn resolve(&self, ids: &[&str]) -> Result<Names<'_>, DirectoryError> {
        match self {
            Directory::File(file) => Ok(Names::File(file)),
            Directory::Table(cached) => cached.resolve(ids).await.map(Names::Resolved),
        }
    }
}
