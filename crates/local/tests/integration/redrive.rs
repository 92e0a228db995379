//! Redriving dead-letter queues: EventBridge-target DLQs against moto (SQS, Firehose, S3);
//! `StartMessageMoveTask` against a small local fake, because moto does not implement it
//! (it answers `NotImplementedError`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::{Arc, Mutex};

use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
use aws_sdk_sqs::types::MessageAttributeValue;
use metrics_local::recover::redrive::redrive;
use metrics_mapping::RuleSet;
use metrics_testkit::Moto;
use metrics_testkit::s3::{get, keys};
use serde_json::{Value, json};

fn rules() -> RuleSet {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    RuleSet::from_toml(&std::fs::read_to_string(root.join("infra/metrics.toml")).unwrap()).unwrap()
}

/// A sample event and the metric of the first rule that takes it.
fn sample_event(rules: &RuleSet) -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("events/sample/first-500.ndjson")).unwrap();
    for line in text.lines() {
        if let Ok(matches) = rules.apply(line.as_bytes(), metrics_schema::EventTime::now())
            && let Some(first) = matches.first()
        {
            return (line.to_owned(), first.rule.metric_name.clone());
        }
    }
    panic!("no sample event matches a rule");
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

#[tokio::test]
async fn events_in_an_eventbridge_target_dlq_go_again_to_the_target_each_names() {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let firehose = aws_sdk_firehose::Client::new(&sdk);
    let s3 = moto.s3_with_bucket("redrive-stream-out").await;
    firehose
        .create_delivery_stream()
        .delivery_stream_name("redrive-stream")
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/firehose")
                .bucket_arn("arn:aws:s3:::redrive-stream-out")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let dlq = sqs
        .create_queue()
        .queue_name("redrive-rules-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let consumer = sqs
        .create_queue()
        .queue_name("redrive-writer-queue")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let account = "123456789012";
    let rules = rules();
    let (event, metric) = sample_event(&rules);
    let send = |body: String, target: String, rule: String| {
        let (sqs, dlq) = (sqs.clone(), dlq.clone());
        async move {
            sqs.send_message()
                .queue_url(dlq)
                .message_body(body)
                .message_attributes("TARGET_ARN", attribute(&target))
                .message_attributes("RULE_ARN", attribute(&rule))
                .message_attributes("ERROR_CODE", attribute("ThrottlingException"))
                .send()
                .await
                .unwrap();
        }
    };
    // A metric rule's event that never reached the stream, an S3 notification that never
    // reached a consumer queue, and a message naming a target this project does not have.
    send(
        event.clone(),
        format!("arn:aws:firehose:us-east-1:{account}:deliverystream/redrive-stream"),
        format!("arn:aws:events:us-east-1:{account}:rule/MetricsLake-{metric}"),
    )
    .await;
    let notification = json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "Data/x.gz"}}}).to_string();
    send(
        notification.clone(),
        format!("arn:aws:sqs:us-east-1:{account}:redrive-writer-queue"),
        format!("arn:aws:events:us-east-1:{account}:rule/MetricsLake-WriterRule"),
    )
    .await;
    send(
        "{}".into(),
        "arn:aws:lambda:us-east-1:1:function:x".into(),
        "arn:aws:events:us-east-1:1:rule/x".into(),
    )
    .await;

    let dry = redrive(
        &sqs,
        &firehose,
        &rules,
        &format!("arn:aws:sqs:us-east-1:{account}:redrive-rules-dlq"),
        true,
    )
    .await
    .unwrap();
    assert_eq!((dry.action, dry.messages, dry.moved), ("resent", 3, 0));

    let report = redrive(
        &sqs,
        &firehose,
        &rules,
        &format!("arn:aws:sqs:us-east-1:{account}:redrive-rules-dlq"),
        false,
    )
    .await
    .unwrap();
    assert_eq!((report.moved, report.left), (2, 1), "{report:?}");
    assert!(report.detail[0].contains("names no target"), "{report:?}");

    // The stream got the event wrapped by its metric's rule, exactly as the rule puts it.
    let expected: Vec<Vec<u8>> = rules
        .apply(event.as_bytes(), metrics_schema::EventTime::now())
        .unwrap()
        .into_iter()
        .filter(|m| m.rule.metric_name == metric)
        .map(|m| m.output)
        .collect();
    let mut delivered = Vec::new();
    for key in keys(&s3, "redrive-stream-out", "").await {
        delivered.extend(get(&s3, "redrive-stream-out", &key).await.unwrap());
    }
    assert_eq!(delivered, expected.concat());
    let wrapped: Value = serde_json::from_slice(&expected[0]).unwrap();
    assert_eq!(wrapped["metric"], metric.as_str());

    // The notification is back in the consumer's queue; only the unknown target is left.
    let received = sqs.receive_message().queue_url(&consumer).send().await.unwrap();
    assert_eq!(received.messages().len(), 1);
    assert_eq!(received.messages()[0].body(), Some(notification.as_str()));
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes.unwrap();
    let count =
        |name: aws_sdk_sqs::types::QueueAttributeName| attributes.get(&name).unwrap().parse::<u64>().unwrap();
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        1
    );
}

/// The SQS JSON-protocol calls a move-task redrive makes, answered like SQS does.
async fn fake_sqs(calls: Arc<Mutex<Vec<(String, Value)>>>) -> String {
    use axum::http::HeaderMap;
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let calls = calls.clone();
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                calls.lock().unwrap().push((target.clone(), request));
                let answer = match target.as_str() {
                    "AmazonSQS.GetQueueUrl" => {
                        json!({"QueueUrl": "http://sqs.local/123456789012/metrics-WriterDlq"})
                    }
                    "AmazonSQS.GetQueueAttributes" => {
                        json!({"Attributes": {"ApproximateNumberOfMessages": "3"}})
                    }
                    "AmazonSQS.ListDeadLetterSourceQueues" => {
                        json!({"queueUrls": ["http://sqs.local/123456789012/metrics-WriterQueue"]})
                    }
                    "AmazonSQS.StartMessageMoveTask" => json!({"TaskHandle": "task-1"}),
                    _ => json!({}),
                };
                (
                    [("content-type", "application/x-amz-json-1.0")],
                    answer.to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

#[tokio::test]
async fn a_dlq_of_an_sqs_queue_is_moved_back_with_a_message_move_task() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let endpoint = fake_sqs(calls.clone()).await;
    let sdk = Moto::shared().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(&endpoint)
            .build(),
    );
    let firehose = aws_sdk_firehose::Client::new(&sdk);
    let arn = "arn:aws:sqs:us-east-1:123456789012:metrics-WriterDlq";

    let dry = redrive(&sqs, &firehose, &rules(), arn, true).await.unwrap();
    assert_eq!(
        (dry.action, dry.messages, dry.task_handle.as_deref()),
        ("message_move_task", 3, None)
    );
    assert!(
        !calls
            .lock()
            .unwrap()
            .iter()
            .any(|(t, _)| t == "AmazonSQS.StartMessageMoveTask")
    );

    let report = redrive(&sqs, &firehose, &rules(), arn, false).await.unwrap();
    assert_eq!((report.moved, report.task_handle.as_deref()), (3, Some("task-1")));
    let calls = calls.lock().unwrap();
    let (_, task) = calls
        .iter()
        .find(|(t, _)| t == "AmazonSQS.StartMessageMoveTask")
        .unwrap();
    // No destination: SQS moves the messages back to the queue they came from.
    assert_eq!(task, &json!({"SourceArn": arn}));
}
