#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Trigger payloads as S3, SNS, EventBridge and SQS deliver them (real shapes, and moto's
//! S3 event without `userIdentity`).

use metrics_objects::trigger::{ObjectRef, Trigger, TriggerError, parse_trigger};

fn object(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: "lake".into(),
        key: key.into(),
        size: Some(42),
        sequencer: Some("0A1B".into()),
    }
}

const REAL_S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
 "eventTime":"2026-11-23T10:00:00.000Z","eventName":"ObjectCreated:Put",
 "userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},"requestParameters":{"sourceIPAddress":"10.0.0.1"},
 "responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},
 "s3":{"s3SchemaVersion":"1.0","configurationId":"data","bucket":{"name":"lake","ownerIdentity":{"principalId":"P"},"arn":"arn:aws:s3:::lake"},
 "object":{"key":"Data/2026/11/23/10/a+b%2Bc.gz","size":42,"eTag":"e","sequencer":"0A1B"}}}]}"#;

// moto's shape: no userIdentity, no requestParameters, `/` encoded as %2F.
const MOTO_S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
 "eventTime":"2026-11-23T10:00:00.000Z","eventName":"ObjectCreated:Put",
 "s3":{"s3SchemaVersion":"1.0","configurationId":"data","bucket":{"name":"lake","arn":"arn:aws:s3:::lake"},
 "object":{"key":"Data%2F2026%2F11%2F23%2F10%2Fa+b%2Bc.gz","size":42,"eTag":"e","sequencer":"0A1B"}}}]}"#;

fn sqs(bodies: &[(&str, &str)]) -> String {
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .map(|(id, body)| {
            serde_json::json!({"messageId": id, "receiptHandle": "h", "body": body,
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "m",
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

#[test]
fn a_direct_s3_event_decodes_its_keys() {
    let expected = Trigger::S3(vec![object("Data/2026/11/23/10/a b+c.gz")]);
    assert_eq!(parse_trigger(REAL_S3_EVENT.as_bytes()).unwrap(), expected);
    assert_eq!(parse_trigger(MOTO_S3_EVENT.as_bytes()).unwrap(), expected);
}

#[test]
fn sqs_bodies_may_be_raw_sns_wrapped_or_eventbridge() {
    let sns =
        serde_json::json!({"Type": "Notification", "MessageId": "n", "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": MOTO_S3_EVENT, "Timestamp": "2026-11-23T10:00:00.000Z"})
        .to_string();
    let eventbridge = r#"{"version":"0","id":"e","detail-type":"Object Created","source":"aws.s3","account":"1",
        "time":"2026-11-23T10:00:00Z","region":"us-east-1","resources":["arn:aws:s3:::lake"],
        "detail":{"version":"0","bucket":{"name":"lake"},"object":{"key":"Data/2026/11/23/10/a b+c.gz","size":42,"etag":"e","sequencer":"0A1B"},
        "request-id":"r","requester":"1","reason":"PutObject"}}"#;
    let payload = sqs(&[("raw", REAL_S3_EVENT), ("sns", &sns), ("eb", eventbridge)]);
    let Trigger::Sqs(messages) = parse_trigger(payload.as_bytes()).unwrap() else {
        panic!("not SQS")
    };
    let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["raw", "sns", "eb"]);
    for m in &messages {
        assert_eq!(
            m.objects,
            Ok(vec![object("Data/2026/11/23/10/a b+c.gz")]),
            "{}",
            m.message_id
        );
    }
}

#[test]
fn the_s3_test_event_announces_nothing() {
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-23T10:00:00.000Z","Bucket":"lake","RequestId":"r","HostId":"h"}"#;
    let Trigger::Sqs(messages) = parse_trigger(sqs(&[("t", test_event)]).as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(messages[0].objects, Ok(vec![]));
}

#[test]
fn a_bad_message_fails_alone() {
    let payload = sqs(&[
        ("good", REAL_S3_EVENT),
        ("bad", "not json"),
        ("odd", r#"{"hello":1}"#),
    ]);
    let Trigger::Sqs(messages) = parse_trigger(payload.as_bytes()).unwrap() else {
        panic!()
    };
    assert!(messages[0].objects.is_ok());
    assert_eq!(messages[1].objects, Err(TriggerError::NotJson));
    assert_eq!(messages[2].objects, Err(TriggerError::UnrecognisedShape));
}

#[test]
fn deletions_are_not_objects_to_read() {
    let removed = REAL_S3_EVENT.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
    assert_eq!(parse_trigger(removed.as_bytes()).unwrap(), Trigger::S3(vec![]));
}

#[test]
fn errors_have_stable_codes() {
    assert_eq!(parse_trigger(b"{").unwrap_err().code(), "trigger_not_json");
    assert_eq!(parse_trigger(b"[1]").unwrap_err().code(), "trigger_unrecognised");
    let bad_key = REAL_S3_EVENT.replace("a+b%2Bc.gz", "bad%FF");
    assert_eq!(
        parse_trigger(bad_key.as_bytes()).unwrap_err().code(),
        "trigger_invalid_key"
    );
    let no_key = REAL_S3_EVENT.replace("\"key\"", "\"kee\"");
    assert_eq!(
        parse_trigger(no_key.as_bytes()).unwrap_err().code(),
        "trigger_missing_field"
    );
}
