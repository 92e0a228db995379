//! The alert store in DynamoDB: the deployed adapter (infra/lib/constructs/alerts.ts creates
//! the table).
//!
//! One table, keyed by tenant: `pk = t#<tenant>`, and `sk = a#<alert id>` for an alert,
//! `e#<alert id>#<time>#<random>` for its events, `count` for the tenant's number of alerts.
//! Every read and write names the partition of the caller's tenant, so another tenant's id is
//! never found. Due alerts are found through the global secondary index `due` (`due_shard`,
//! `due_at`): `due_at` is when the alert is next due, or when its pending notification's claim
//! expires, whichever is first; alerts spread over [`DUE_SHARDS`] shards so no single index
//! partition takes every alert. The index is read eventually consistently; every state write
//! is conditional on the version read from the table itself, so a stale index entry costs a
//! read, never a second notification.
//!
//! AWS behaviour relied on:
//! - condition expressions make a write happen only if the item is as expected, atomically,
//!   and fail with `ConditionalCheckFailedException` otherwise:
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html>
//! - a transaction (the alert and its tenant's count) succeeds or fails as a whole:
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html>
//! - global secondary indexes are eventually consistent:
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html>
//! - events expire through the table's time to live on `expires_at` (epoch seconds):
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html>

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem, Update,
};
use metrics_http::Secret;

use super::{Alert, AlertEvent, AlertStore, StoreError, StoreFuture, StoredAlert, definition_from_json};
use crate::model::AlertDefinition;
use crate::state::AlertState;

/// Shards of the `due` index.
pub const DUE_SHARDS: u32 = 8;
/// The index that finds due alerts.
pub const DUE_INDEX: &str = "due";
/// How long events are kept.
pub const EVENT_TTL_DAYS: i64 = 30;

type Item = HashMap<String, AttributeValue>;

/// This process's event sequence: the order of events written in the same millisecond.
static EVENT_ORDER: AtomicU64 = AtomicU64::new(0);

/// Alerts in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn pk(tenant: &str) -> AttributeValue {
    s(format!("t#{tenant}"))
}

fn alert_sk(id: &str) -> AttributeValue {
    s(format!("a#{id}"))
}

/// The shard of an alert's `due` index entry (a stable hash of its id).
fn shard(id: &str) -> String {
    let h = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("due#{}", h % DUE_SHARDS)
}

/// When the alert needs an evaluator: next due, or its claim's expiry, whichever is first.
fn due_at(state: &AlertState) -> i64 {
    match &state.pending {
        Some(p) => state.next_due_ms.min(p.claimed_until_ms),
        None => state.next_due_ms,
    }
}

fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or_default().to_owned();
    let retryable = matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || matches!(
        code.as_str(),
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "TransactionConflictException"
    );
    let detail = match e.message() {
        Some(m) => format!("{code}: {m}"),
        None => format!("{code}: {e:?}"),
    };
    if retryable {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Failed(detail)
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(
        e.code(),
        Some("ConditionalCheckFailedException") | Some("TransactionCanceledException")
    )
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Failed(format!("stored item lacks {name}")))
}

fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Failed(format!("stored item lacks {name}")))
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Failed(format!("stored JSON: {e}"))
}

fn stored(item: &Item) -> Result<StoredAlert, StoreError> {
    Ok(StoredAlert {
        alert: Alert {
            id: text(item, "id")?.to_owned(),
            tenant: text(item, "tenant")?.to_owned(),
            definition: definition_from_json(text(item, "definition")?)?,
            created_ms: number(item, "created_ms")?,
            updated_ms: number(item, "updated_ms")?,
        },
        secret: Secret::new(text(item, "secret")?),
        state: serde_json::from_str(text(item, "state")?).map_err(json_error)?,
    })
}

/// Creates the table as the stack does (keys, the `due` index): for tests and local setups.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(DUE_INDEX)
        .key_schema(key("due_shard", KeyType::Hash)?)
        .key_schema(key("due_at", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("tenant")
                .non_key_attributes("id")
                .build(),
        )
        .build()
        .map_err(|e| StoreError::Failed(e.to_string()))?;
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("due_shard", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("due_at", ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

impl DynamoAlertStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoAlertStore {
            client,
            table: table.into(),
        }
    }

    async fn get_now(&self, tenant: &str, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(tenant))
            .key("sk", alert_sk(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.as_ref().map(stored).transpose()
    }

    /// Every item of a query (or scan), page by page.
    async fn query_alerts(&self, tenant: Option<&str>) -> Result<Vec<StoredAlert>, StoreError> {
        let mut alerts = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = match tenant {
                Some(tenant) => {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk AND begins_with(sk, :a)")
                        .expression_attribute_values(":pk", pk(tenant))
                        .expression_attribute_values(":a", s("a#"))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(sdk_error)?;
                    (out.items.unwrap_or_default(), out.last_evaluated_key)
                }
                None => {
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .filter_expression("begins_with(sk, :a)")
                        .expression_attribute_values(":a", s("a#"))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(sdk_error)?;
                    (out.items.unwrap_or_default(), out.last_evaluated_key)
                }
            };
            for item in &items {
                alerts.push(stored(item)?);
            }
            match next {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        alerts.sort_by(|a, b| (&a.alert.tenant, &a.alert.id).cmp(&(&b.alert.tenant, &b.alert.id)));
        Ok(alerts)
    }

    async fn create_now(&self, alert: &Alert, secret: &Secret, max: usize) -> Result<(), StoreError> {
        let state = AlertState::default();
        let definition = serde_json::to_string(&alert.definition).map_err(json_error)?;
        let state_json = serde_json::to_string(&state).map_err(json_error)?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", pk(&alert.tenant))
            .item("sk", alert_sk(&alert.id))
            .item("id", s(&alert.id))
            .item("tenant", s(&alert.tenant))
            .item("definition", s(definition))
            .item("secret", s(secret.expose()))
            .item("created_ms", n(alert.created_ms))
            .item("updated_ms", n(alert.updated_ms))
            .item("state", s(state_json))
            .item("version", n(state.version))
            .item("due_shard", s(shard(&alert.id)))
            .item("due_at", n(due_at(&state)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        // The tenant's count goes up only below the limit, in the same transaction.
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", pk(&alert.tenant))
            .key("sk", s("count"))
            .update_expression("ADD alerts :one")
            .condition_expression("attribute_not_exists(alerts) OR alerts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(count).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The put's condition cannot fail for a new random id: the count's did.
            Err(e) if is_condition_failure(&e) => Err(StoreError::TooMany { max }),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn delete_now(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", pk(tenant))
            .key("sk", alert_sk(id))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", pk(tenant))
            .key("sk", s("count"))
            .update_expression("ADD alerts :minus")
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        // Its events expire on their own (time to live); nothing reads them without the alert.
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn update_now(
        &self,
        tenant: &str,
        id: &str,
        definition: &AlertDefinition,
        updated_ms: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(definition).map_err(json_error)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(tenant))
            .key("sk", alert_sk(id))
            .update_expression("SET #def = :d, updated_ms = :u")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#def", "definition")
            .expression_attribute_values(":d", s(json))
            .expression_attribute_values(":u", n(updated_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn write_state_now(
        &self,
        tenant: &str,
        id: &str,
        expected: u64,
        state: &AlertState,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(json_error)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(tenant))
            .key("sk", alert_sk(id))
            .update_expression("SET #state = :s, #version = :v, due_at = :d")
            .condition_expression("attribute_exists(pk) AND #version = :expected")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":s", s(json))
            .expression_attribute_values(":v", n(state.version))
            .expression_attribute_values(":d", n(due_at(state)))
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => match self.get_now(tenant, id).await? {
                Some(_) => Err(StoreError::Conflict),
                None => Err(StoreError::NotFound),
            },
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn due_now(&self, at_ms: i64, wall_ms: i64, limit: usize) -> Result<Vec<StoredAlert>, StoreError> {
        let until = at_ms.max(wall_ms);
        let mut keys = Vec::new();
        for shard in 0..DUE_SHARDS {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(DUE_INDEX)
                    .key_condition_expression("due_shard = :shard AND due_at <= :until")
                    .expression_attribute_values(":shard", s(format!("due#{shard}")))
                    .expression_attribute_values(":until", n(until))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for item in out.items.unwrap_or_default() {
                    keys.push((text(&item, "tenant")?.to_owned(), text(&item, "id")?.to_owned()));
                }
                match out.last_evaluated_key {
                    Some(key) if !key.is_empty() && keys.len() < limit => start = Some(key),
                    _ => break,
                }
            }
        }
        keys.truncate(limit);
        // The index may lag: read each alert from the table itself.
        let mut due = Vec::with_capacity(keys.len());
        for (tenant, id) in keys {
            if let Some(alert) = self.get_now(&tenant, &id).await? {
                due.push(alert);
            }
        }
        Ok(due)
    }

    async fn add_event_now(&self, tenant: &str, id: &str, event: &AlertEvent) -> Result<(), StoreError> {
        // Events of the same millisecond keep this process's order; the random part keeps
        // two processes' events apart.
        let order = EVENT_ORDER.fetch_add(1, Ordering::Relaxed);
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).map_err(|e| StoreError::Failed(format!("random: {e}")))?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let detail = serde_json::to_string(&event.detail).map_err(json_error)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(tenant))
            .item(
                "sk",
                s(format!("e#{id}#{:013}#{order:020}#{suffix}", event.at_ms.max(0))),
            )
            .item("at_ms", n(event.at_ms))
            .item("kind", s(&event.kind))
            .item("detail", s(detail))
            .item("expires_at", n(event.at_ms / 1000 + EVENT_TTL_DAYS * 86_400))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn events_now(&self, tenant: &str, id: &str, limit: usize) -> Result<Vec<AlertEvent>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
            .expression_attribute_values(":pk", pk(tenant))
            .expression_attribute_values(":e", s(format!("e#{id}#")))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                Ok(AlertEvent {
                    at_ms: number(item, "at_ms")?,
                    kind: text(item, "kind")?.to_owned(),
                    detail: serde_json::from_str(text(item, "detail")?).map_err(json_error)?,
                })
            })
            .collect()
    }
}

impl AlertStore for DynamoAlertStore {
    fn create<'a>(&'a self, alert: &'a Alert, secret: &'a Secret, max: usize) -> StoreFuture<'a, ()> {
        Box::pin(self.create_now(alert, secret, max))
    }

    fn get<'a>(&'a self, tenant: &'a str, id: &'a str) -> StoreFuture<'a, Option<StoredAlert>> {
        Box::pin(self.get_now(tenant, id))
    }

    fn list<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<StoredAlert>> {
        Box::pin(self.query_alerts(Some(tenant)))
    }

    fn list_all(&self) -> StoreFuture<'_, Vec<StoredAlert>> {
        Box::pin(self.query_alerts(None))
    }

    fn update<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        definition: &'a AlertDefinition,
        updated_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.update_now(tenant, id, definition, updated_ms))
    }

    fn delete<'a>(&'a self, tenant: &'a str, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.delete_now(tenant, id))
    }

    fn due(&self, at_ms: i64, wall_ms: i64, limit: usize) -> StoreFuture<'_, Vec<StoredAlert>> {
        Box::pin(self.due_now(at_ms, wall_ms, limit))
    }

    fn write_state<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        expected_version: u64,
        state: &'a AlertState,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.write_state_now(tenant, id, expected_version, state))
    }

    fn add_event<'a>(&'a self, tenant: &'a str, id: &'a str, event: &'a AlertEvent) -> StoreFuture<'a, ()> {
        Box::pin(self.add_event_now(tenant, id, event))
    }

    fn events<'a>(&'a self, tenant: &'a str, id: &'a str, limit: usize) -> StoreFuture<'a, Vec<AlertEvent>> {
        Box::pin(self.events_now(tenant, id, limit))
    }
}
