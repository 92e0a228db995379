//! The DynamoDB tenant directory against a real moto server (the official SDK over HTTP on
//! 127.0.0.1): batched lookups, the whole transform, caching across invocations, and outages
//! failing the invocation rather than the records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use common::*;
use metrics_enrich::config::InvalidRecordPolicy;
use metrics_enrich::directory::{
    CachedDirectory, Directory, DirectoryError, DynamoDbDirectory, TenantSource,
};
use metrics_enrich::{EnrichError, Enricher};
use metrics_testkit::Moto;

async fn client() -> Client {
    Client::new(&Moto::shared().sdk_config().await)
}

/// A fresh table `name` with `items` (tenant id, optional name).
async fn table(client: &Client, name: &str, items: &[(String, Option<String>)]) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("tenant_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("tenant_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    for (id, display) in items {
        let mut put = client
            .put_item()
            .table_name(name)
            .item("tenant_id", AttributeValue::S(id.clone()));
        if let Some(display) = display {
            put = put
                .item("name", AttributeValue::S(display.clone()))
                .item("plan", AttributeValue::S("pro".into()));
        }
        put.send().await.unwrap();
    }
}

fn enricher_for(source: DynamoDbDirectory) -> Enricher {
    let cached = CachedDirectory::new(source, Duration::from_secs(300), Duration::from_secs(30));
    Enricher::new(
        &config(InvalidRecordPolicy::Fail),
        Directory::Table(cached),
        std::sync::Arc::new(metrics_enrich::mapping::compiled_in().unwrap()),
    )
}

#[tokio::test]
async fn lookups_cover_more_than_one_batch_get_of_100_keys() {
    let client = client().await;
    let mut items: Vec<(String, Option<String>)> = (0..150)
        .map(|i| (format!("tenant-{i:03}"), Some(format!("Tenant {i}"))))
        .collect();
    items.push(("nameless".into(), None));
    table(&client, "tenants-many", &items).await;
    let directory = DynamoDbDirectory::new(client, "tenants-many");
    let mut ids: Vec<String> = (0..150).map(|i| format!("tenant-{i:03}")).collect();
    ids.push("nameless".into());
    ids.push("ghost".into());
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let found = directory.lookup_many(&ids).await.unwrap();
    assert_eq!(found.len(), 150);
    assert_eq!(found.get("tenant-149").map(String::as_str), Some("Tenant 149"));
    assert!(
        !found.contains_key("nameless"),
        "an item without a name is not a known tenant"
    );
    assert!(!found.contains_key("ghost"));
}

#[tokio::test]
async fn the_whole_transform_enriches_from_the_table_and_caches_across_invocations() {
    let client = client().await;
    table(
        &client,
        "tenants-transform",
        &[("acme-prod".into(), Some("Acme (table)".into()))],
    )
    .await;
    let enricher = enricher_for(DynamoDbDirectory::new(client.clone(), "tenants-transform"));
    let batch = event(vec![
        record("1", &valid_payload("acme-prod")),
        record("2", &valid_payload("initech")),
    ]);

    let out = enricher.handle(&batch, NOW).await.unwrap();
    let response = response_json(&out);
    assert_eq!(response["records"][0]["result"], "Ok");
    let line: serde_json::Value = serde_json::from_slice(&decode(&response["records"][0]["data"])).unwrap();
    assert_eq!(line["metadata"]["tenant_name"], "Acme (table)");
    assert_eq!(response["records"][1]["result"], "ProcessingFailed");
    assert_eq!(out.summary.rejected[0].reason.code(), "unknown_tenant");

    // With the table gone, the next invocation is served from the cache (both the known and
    // the unknown tenant), so it makes no call that could fail.
    client
        .delete_table()
        .table_name("tenants-transform")
        .send()
        .await
        .unwrap();
    let again = enricher.handle(&batch, NOW).await.unwrap();
    assert_eq!(again.response, out.response);
}

#[tokio::test]
async fn a_missing_table_fails_the_invocation_not_the_records() {
    let enricher = enricher_for(DynamoDbDirectory::new(client().await, "no-such-table"));
    let batch = event(vec![record("1", &valid_payload("acme-prod"))]);
    let error = enricher.handle(&batch, NOW).await.unwrap_err();
    assert!(
        matches!(error, EnrichError::Directory(DirectoryError::Lookup { .. })),
        "{error}"
    );
    assert_eq!(error.code(), "directory_unavailable");
    assert!(error.to_string().contains("no-such-table"), "{error}");
    assert!(
        error.to_string().contains("ResourceNotFound"),
        "the service's reason is kept: {error}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_the_invocation_not_the_records() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let sdk = Moto::shared().sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(closed)
        .build();
    let enricher = enricher_for(DynamoDbDirectory::new(Client::from_conf(config), "tenants"));
    let batch = event(vec![
        record("1", &valid_payload("acme-prod")),
        record("2", b"not json"),
    ]);
    let error = enricher.handle(&batch, NOW).await.unwrap_err();
    assert!(matches!(error, EnrichError::Directory(_)), "{error}");
}

#[tokio::test]
async fn a_batch_without_valid_records_makes_no_lookup() {
    // The endpoint is closed, so any call would fail the invocation.
    let sdk = Moto::shared().sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let enricher = enricher_for(DynamoDbDirectory::new(Client::from_conf(config), "tenants"));
    let out = enricher
        .handle(&event(vec![record("1", b"not json")]), NOW)
        .await
        .unwrap();
    assert_eq!(out.summary.rejected[0].reason.code(), "not_json");
}
