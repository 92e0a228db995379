//! `UnprocessedKeys` handling, which moto never produces: a minimal DynamoDB endpoint on
//! 127.0.0.1 answers `BatchGetItem` with some keys unprocessed, and the directory asks again a
//! bounded number of times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use common::{HttpRequest, read_request};
use metrics_enrich::directory::{DirectoryError, DynamoDbDirectory, TenantSource};
use metrics_testkit::Moto;
use serde_json::{Value, json};

/// Answers each `BatchGetItem` with the next canned body; records every request body.
fn fake_dynamodb(answers: Vec<Value>) -> (String, Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (Arc::clone(&requests), Arc::clone(&calls));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (seen, count, answers) = (Arc::clone(&seen), Arc::clone(&count), answers.clone());
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some(HttpRequest { body, .. }) = read_request(&mut reader) {
                    seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let answer = answers[n.min(answers.len() - 1)].to_string();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    );
                    writer.write_all(head.as_bytes()).unwrap();
                    writer.write_all(answer.as_bytes()).unwrap();
                }
            });
        }
    });
    (endpoint, requests, calls)
}

async fn directory(endpoint: &str) -> DynamoDbDirectory {
    // Static test credentials and region from the test kit; the endpoint is the fake.
    let sdk = Moto::shared().sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    DynamoDbDirectory::new(Client::from_conf(config), "tenants")
}

fn item(id: &str, name: &str) -> Value {
    json!({"tenant_id": {"S": id}, "name": {"S": name}})
}

fn unprocessed(ids: &[&str]) -> Value {
    let keys: Vec<Value> = ids.iter().map(|id| json!({"tenant_id": {"S": id}})).collect();
    json!({"tenants": {"Keys": keys}})
}

#[tokio::test]
async fn unprocessed_keys_are_asked_for_again() {
    let (endpoint, requests, calls) = fake_dynamodb(vec![
        json!({"Responses": {"tenants": [item("acme", "Acme")]}, "UnprocessedKeys": unprocessed(&["globex"])}),
        json!({"Responses": {"tenants": [item("globex", "Globex")]}, "UnprocessedKeys": {}}),
    ]);
    let found = directory(&endpoint)
        .await
        .lookup_many(&["acme", "globex"])
        .await
        .unwrap();
    assert_eq!(found.get("acme").map(String::as_str), Some("Acme"));
    assert_eq!(found.get("globex").map(String::as_str), Some("Globex"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let requests = requests.lock().unwrap();
    let retried = &requests[1]["RequestItems"]["tenants"];
    assert_eq!(
        retried["Keys"],
        json!([{"tenant_id": {"S": "globex"}}]),
        "only the unprocessed key is asked again"
    );
    assert_eq!(retried["ProjectionExpression"], "#id, #name");
    assert_eq!(
        retried["ExpressionAttributeNames"],
        json!({"#id": "tenant_id", "#name": "name"})
    );
}

#[tokio::test]
async fn keys_still_unprocessed_after_the_last_attempt_are_an_error() {
    let (endpoint, _, calls) = fake_dynamodb(vec![
        json!({"Responses": {"tenants": []}, "UnprocessedKeys": unprocessed(&["acme"])}),
    ]);
    let error = directory(&endpoint)
        .await
        .lookup_many(&["acme"])
        .await
        .unwrap_err();
    assert!(
        matches!(error, DirectoryError::Unprocessed { keys: 1, .. }),
        "{error}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        metrics_enrich::directory::MAX_BATCH_GET_ATTEMPTS
    );
}

#[tokio::test]
async fn more_than_100_ids_are_split_into_calls_of_at_most_100_keys() {
    let (endpoint, requests, _) =
        fake_dynamodb(vec![json!({"Responses": {"tenants": []}, "UnprocessedKeys": {}})]);
    let ids: Vec<String> = (0..250).map(|i| format!("tenant-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    directory(&endpoint).await.lookup_many(&ids).await.unwrap();
    let sizes: Vec<usize> = requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r["RequestItems"]["tenants"]["Keys"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
}
