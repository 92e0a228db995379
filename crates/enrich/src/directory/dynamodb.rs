//! `TENANTS_TABLE`: tenant names from a DynamoDB table keyed by `tenant_id` (string) with a
//! string attribute `name`.
//!
//! One `BatchGetItem` per 100 ids (the API's limit), reading only the two attributes.
//! `UnprocessedKeys` (throttling or the 16 MB response cap) are retried a bounded number of
//! times with a short backoff; what is still unprocessed after that is an error, because
//! calling those tenants unknown would fail their records for no reason.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::{DirectoryError, TenantSource};

/// `BatchGetItem` takes at most 100 keys.
pub const BATCH_GET_MAX_KEYS: usize = 100;
/// Calls per chunk, the first included, before unprocessed keys become an error.
pub const MAX_BATCH_GET_ATTEMPTS: usize = 4;
const BACKOFF_START: Duration = Duration::from_millis(25);

/// Key attribute.
pub const KEY_ATTRIBUTE: &str = "tenant_id";
/// Display-name attribute. `name` is a DynamoDB reserved word, hence the placeholders.
pub const NAME_ATTRIBUTE: &str = "name";

/// A DynamoDB-backed [`TenantSource`].
#[derive(Debug, Clone)]
pub struct DynamoDbDirectory {
    client: Client,
    table: String,
}

impl DynamoDbDirectory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDbDirectory {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// SDK errors print only their kind through `Display`; `DisplayErrorContext` prints the
    /// whole chain (service code, message, connection cause), which an operator needs.
    fn lookup_error(&self, error: impl std::error::Error) -> DirectoryError {
        let message = aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string();
        DirectoryError::Lookup {
            table: self.table.clone(),
            source: message.into(),
        }
    }

    fn request(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<KeysAndAttributes, DirectoryError> {
        KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .projection_expression("#id, #name")
            .expression_attribute_names("#id", KEY_ATTRIBUTE)
            .expression_attribute_names("#name", NAME_ATTRIBUTE)
            .build()
            .map_err(|e| self.lookup_error(e))
    }

    async fn lookup_chunk(
        &self,
        ids: &[&str],
        found: &mut HashMap<String, String>,
    ) -> Result<(), DirectoryError> {
        let mut keys: Vec<HashMap<String, AttributeValue>> = ids
            .iter()
            .map(|id| HashMap::from([(KEY_ATTRIBUTE.to_owned(), AttributeValue::S((*id).to_owned()))]))
            .collect();
        let mut backoff = BACKOFF_START;
        for attempt in 1..=MAX_BATCH_GET_ATTEMPTS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, self.request(keys)?)
                .send()
                .await
                .map_err(|e| self.lookup_error(e))?;
            for item in output
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let (Some(AttributeValue::S(id)), Some(AttributeValue::S(name))) =
                    (item.get(KEY_ATTRIBUTE), item.get(NAME_ATTRIBUTE))
                {
                    found.insert(id.clone(), name.clone());
                } else {
                    // An item without a string name cannot enrich anything: its tenant stays
                    // unknown, and the log says why.
                    tracing::warn!(table = %self.table, "Tenant item without a string `name` attribute.");
                }
            }
            keys = output
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok(());
            }
            if attempt < MAX_BATCH_GET_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(DirectoryError::Unprocessed {
            table: self.table.clone(),
            keys: keys.len(),
            attempts: MAX_BATCH_GET_ATTEMPTS,
        })
    }
}

impl TenantSource for DynamoDbDirectory {
    async fn lookup_many(&self, ids: &[&str]) -> Result<HashMap<String, String>, DirectoryError> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_MAX_KEYS) {
            self.lookup_chunk(chunk, &mut found).await?;
        }
        Ok(found)
    }
}
