//! Credentials from Secrets Manager (moto), used to authenticate against the vendor simulator,
//! and never shown in errors.
#![allow(clippy::unwrap_used)] // helpers of tests: failing loudly is the point

use super::common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::{config, gzip, ndjson, now_ms};
use metrics_forwarder::retry::Deadline;
use metrics_forwarder::{StartError, build_forwarder};
use metrics_testkit::Moto;
use metrics_vendorsim::{Credentials, Sim};
use serde_json::json;

async fn secret(name: &str, value: &str) -> String {
    let sdk = Moto::shared().sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let created = client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    created.arn.unwrap()
}

#[tokio::test]
async fn secrets_manager_credentials_authenticate_both_destinations() {
    let sim = Sim::start_local().await.unwrap();
    let c = Credentials::test();
    let segment_arn = secret("fwd/segment", &c.segment_write_key).await;
    let mixpanel_value = json!({
        "project_id": c.mixpanel_project_id,
        "service_account_username": c.mixpanel_service_account,
        "service_account_secret": c.mixpanel_service_secret,
    });
    let mixpanel_arn = secret("fwd/mixpanel", &mixpanel_value.to_string()).await;
    let vars = [
        ("SEGMENT_WRITE_KEY", ""),
        ("MIXPANEL_SERVICE_ACCOUNT", ""),
        ("MIXPANEL_SERVICE_SECRET", ""),
        ("MIXPANEL_PROJECT_ID", ""),
        ("SEGMENT_WRITE_KEY_SECRET_ARN", segment_arn.as_str()),
        ("MIXPANEL_SECRET_ARN", mixpanel_arn.as_str()),
    ];
    let sdk = Moto::shared().sdk_config().await;
    let forwarder = build_forwarder(&config(&sim.endpoint(), &vars), &sdk)
        .await
        .unwrap();

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("fwd-secrets").send().await.unwrap();
    let key = "Data/2026/11/23/14/batch.gz";
    let body = ByteStream::from(gzip(ndjson(4, now_ms()).as_bytes()));
    s3.put_object()
        .bucket("fwd-secrets")
        .key(key)
        .body(body)
        .send()
        .await
        .unwrap();
    let event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": "fwd-secrets"}, "object": {"key": key}}}]});
    let invocation = forwarder
        .handle(
            &serde_json::to_vec(&event).unwrap(),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(invocation.error.is_none());
    let state = sim.client().state().await.unwrap();
    assert_eq!(
        (state.segment.accepted.len(), state.mixpanel.accepted.len()),
        (4, 4)
    );
}

#[tokio::test]
async fn a_missing_secret_stops_the_start_without_showing_any_credential() {
    let sim = Sim::start_local().await.unwrap();
    let vars = [
        ("SEGMENT_WRITE_KEY", ""),
        (
            "SEGMENT_WRITE_KEY_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
        ),
    ];
    let sdk = Moto::shared().sdk_config().await;
    let error = build_forwarder(&config(&sim.endpoint(), &vars), &sdk)
        .await
        .unwrap_err();
    let StartError::Credentials(error) = error else {
        panic!("{error}")
    };
    assert_eq!(error.code(), "secret_fetch_failed");
    let text = error.to_string();
    assert!(
        !text.contains(&Credentials::test().mixpanel_service_secret),
        "{text}"
    );
}

#[tokio::test]
async fn a_secret_in_the_wrong_shape_is_refused_by_name_not_by_value() {
    let sim = Sim::start_local().await.unwrap();
    let arn = secret(
        "fwd/bad-shape",
        r#"{"username": "u", "password": "pw-should-not-show"}"#,
    )
    .await;
    let vars = [
        ("MIXPANEL_SERVICE_ACCOUNT", ""),
        ("MIXPANEL_SERVICE_SECRET", ""),
        ("MIXPANEL_PROJECT_ID", ""),
        ("MIXPANEL_SECRET_ARN", arn.as_str()),
    ];
    let sdk = Moto::shared().sdk_config().await;
    let error = build_forwarder(&config(&sim.endpoint(), &vars), &sdk)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("fwd/bad-shape") && text.contains("project_token"),
        "{text}"
    );
    assert!(!text.contains("pw-should-not-show"), "{text}");
}

/// The one Secrets Manager reader (`metrics_http::secrets_manager`), which the InfluxDB token
/// and the vendor credentials both go through: text is read, binary secrets and missing ones
/// are refused with their codes.
#[tokio::test]
async fn the_secret_reader_reads_text_and_refuses_binary_and_missing_secrets() {
    use metrics_http::secrets_manager::read_secret;
    let arn = secret("reader/text", "  the-value ").await;
    let sdk = Moto::shared().sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    assert_eq!(read_secret(&client, &arn).await.unwrap().expose(), "  the-value ");
    let binary = client
        .create_secret()
        .name("reader/binary")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(b"bytes".to_vec()))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let error = read_secret(&client, &binary).await.unwrap_err();
    assert_eq!(error.code(), "secret_not_text");
    let error = read_secret(&client, "reader/none").await.unwrap_err();
    assert_eq!(error.code(), "secret_fetch_failed");
    assert!(error.to_string().contains("reader/none"), "{error}");
}
