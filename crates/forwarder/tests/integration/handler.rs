//! The whole invocation against moto (S3) and the vendor simulator: S3 and SQS triggers, dead
//! letters with destination and reason, progress markers, and a retry that re-sends only what
//! a destination did not accept.
#![allow(clippy::unwrap_used)] // helpers of tests: failing loudly is the point

use super::common;

use std::time::Duration;

use common::{config, event_line, gzip, lines, ndjson, now_ms};
use metrics_forwarder::retry::Deadline;
use metrics_forwarder::{Forwarder, Progress, build_forwarder};
use metrics_testkit::Moto;
use metrics_testkit::s3::{get, keys, put};
use metrics_vendorsim::{Fault, Sim, Target};
use serde_json::{Value, json};

async fn bucket(name: &str) -> aws_sdk_s3::Client {
    Moto::shared().s3_with_bucket(name).await
}

async fn forwarder(sim: &Sim, vars: &[(&str, &str)]) -> Forwarder {
    let sdk = Moto::shared().sdk_config().await;
    build_forwarder(&config(&sim.endpoint(), vars), &sdk)
        .await
        .unwrap()
}

fn s3_event(bucket: &str, key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace('/', "%2F"), "size": 1}}
    }]})
}

fn sqs_event(messages: &[(&str, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| json!({"messageId": id, "eventSource": "aws:sqs", "body": body}))
        .collect();
    json!({"Records": records})
}

fn payload(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test]
async fn an_s3_object_reaches_both_vendors_and_what_they_refused_is_dead_lettered() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-s3-trigger").await;
    let mut object = ndjson(20, now_ms());
    object.push_str("{not json\n");
    object.push_str(&(event_line("scan_started", "acme-prod", "evt-old", 1_000) + "\n"));
    let key = "Data/2026/11/23/10/batch-1.gz";
    put(&client, "fwd-s3-trigger", key, gzip(object.as_bytes())).await;

    let f = forwarder(&sim, &[]).await;
    let invocation = f
        .handle(
            &payload(&s3_event("fwd-s3-trigger", key)),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(invocation.error.is_none(), "{:?}", invocation.error);
    let report = &invocation.objects[0];
    assert_eq!((report.records, report.invalid), (22, 1));
    for d in &report.destinations {
        assert_eq!(d.progress, Progress::Complete);
    }

    let state = sim.client().state().await.unwrap();
    assert_eq!(state.segment.accepted.len(), 21);
    assert_eq!(state.mixpanel.accepted.len(), 20);

    let segment_letters = lines(
        &get(
            &client,
            "fwd-s3-trigger",
            &format!("Error/forwarder/segment/{key}.ndjson"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(segment_letters.len(), 1);
    assert_eq!(segment_letters[0]["reason"], "not_json");
    assert_eq!(segment_letters[0]["destination"], "segment");
    assert_eq!(segment_letters[0]["stage"], "forwarder");
    assert_eq!(
        (
            segment_letters[0]["source_key"].as_str(),
            segment_letters[0]["line"].as_u64()
        ),
        (Some(key), Some(21))
    );
    let mixpanel_letters = lines(
        &get(
            &client,
            "fwd-s3-trigger",
            &format!("Error/forwarder/mixpanel/{key}.ndjson"),
        )
        .await
        .unwrap(),
    );
    let reasons: Vec<&str> = mixpanel_letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["not_json", "mixpanel_validation_failed"]);
    assert!(
        mixpanel_letters[1]["record"]
            .as_str()
            .unwrap()
            .contains("evt-old")
    );
    assert!(
        mixpanel_letters[1]["detail"]
            .as_str()
            .unwrap()
            .contains("properties.time")
    );

    for destination in ["segment", "mixpanel"] {
        let marker = get(
            &client,
            "fwd-s3-trigger",
            &format!("State/forwarder/{destination}/{key}.done"),
        )
        .await;
        let marker: Value = serde_json::from_slice(&marker.unwrap()).unwrap();
        assert_eq!(marker["destination"], destination);
    }

    // A replay of the same notification sends nothing again.
    let again = f
        .handle(
            &payload(&s3_event("fwd-s3-trigger", key)),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(
        again.objects[0]
            .destinations
            .iter()
            .all(|d| d.progress == Progress::AlreadyDone)
    );
    assert_eq!(
        sim.client().state().await.unwrap().requests.len(),
        state.requests.len()
    );
}

#[tokio::test]
async fn a_retried_message_resends_only_to_the_destination_that_did_not_accept() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-sqs-retry").await;
    let key = "Data/2026/11/23/11/batch-2.gz";
    put(
        &client,
        "fwd-sqs-retry",
        key,
        gzip(ndjson(30, now_ms()).as_bytes()),
    )
    .await;
    let f = forwarder(&sim, &[]).await;
    let event = sqs_event(&[("m-1", s3_event("fwd-sqs-retry", key).to_string())]);

    // Mixpanel is down for longer than the invocation has.
    sim.client()
        .fault(&Fault {
            target: Target::Mixpanel,
            status: Some(503),
            count: 10_000,
            retry_after: None,
            delay_ms: 0,
            body: None,
        })
        .await
        .unwrap();
    let first = f
        .handle(&payload(&event), Deadline::after(Duration::from_secs(2)))
        .await;
    assert_eq!(
        first.response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );
    let progress: Vec<(&str, Progress)> = first.objects[0]
        .destinations
        .iter()
        .map(|d| (d.destination.name(), d.progress))
        .collect();
    assert_eq!(
        progress,
        [
            ("segment", Progress::Complete),
            ("mixpanel", Progress::Incomplete)
        ]
    );
    assert_eq!(
        first.objects[0].destinations[1].deferred.get("http_503"),
        Some(&30)
    );
    assert!(
        get(
            &client,
            "fwd-sqs-retry",
            &format!("State/forwarder/mixpanel/{key}.done")
        )
        .await
        .is_none()
    );
    assert!(
        get(
            &client,
            "fwd-sqs-retry",
            &format!("Error/forwarder/mixpanel/{key}.ndjson")
        )
        .await
        .is_none()
    );
    assert_eq!(sim.client().state().await.unwrap().segment.accepted.len(), 30);

    // Mixpanel is back; SQS delivers the message again.
    sim.client().reset().await.unwrap();
    let second = f
        .handle(&payload(&event), Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(second.response, json!({"batchItemFailures": []}));
    let state = sim.client().state().await.unwrap();
    assert!(
        state.requests.iter().all(|r| r.target == Target::Mixpanel),
        "Segment was not sent again"
    );
    assert_eq!(state.mixpanel.accepted.len(), 30);
    assert!(
        get(
            &client,
            "fwd-sqs-retry",
            &format!("State/forwarder/mixpanel/{key}.done")
        )
        .await
        .is_some()
    );
}

#[tokio::test]
async fn each_sqs_message_succeeds_or_fails_on_its_own() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-sqs-messages").await;
    let key = "Data/2026/11/23/12/batch-3.gz";
    put(
        &client,
        "fwd-sqs-messages",
        key,
        gzip(ndjson(3, now_ms()).as_bytes()),
    )
    .await;
    let f = forwarder(&sim, &[]).await;
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "fwd-sqs-messages"});
    let event = sqs_event(&[
        ("ok", s3_event("fwd-sqs-messages", key).to_string()),
        ("garbage", "not json".to_owned()),
        ("test", test_event.to_string()),
    ]);
    let invocation = f
        .handle(&payload(&event), Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(
        invocation.response,
        json!({"batchItemFailures": [{"itemIdentifier": "garbage"}]})
    );
    assert_eq!(sim.client().state().await.unwrap().segment.accepted.len(), 3);
}

#[tokio::test]
async fn an_unreadable_object_is_one_dead_letter_per_destination() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-corrupt").await;
    let key = "Data/2026/11/23/13/batch-4.gz";
    let mut body = gzip(ndjson(5, now_ms()).as_bytes());
    body.truncate(body.len() / 2);
    put(&client, "fwd-corrupt", key, body).await;
    let f = forwarder(
        &sim,
        &[
            ("DEAD_LETTER_BUCKET", "fwd-corrupt"),
            ("DEAD_LETTER_PREFIX", "dead/"),
        ],
    )
    .await;
    let invocation = f
        .handle(
            &payload(&s3_event("fwd-corrupt", key)),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(invocation.error.is_none());
    let letters = lines(
        &get(&client, "fwd-corrupt", &format!("dead/segment/{key}.ndjson"))
            .await
            .unwrap(),
    );
    let last = letters.last().unwrap();
    assert_eq!(last["reason"], "object_corrupt");
    assert_eq!(last["destination"], "segment");
}

#[tokio::test]
async fn a_missing_object_is_dead_lettered_and_an_s3_outage_fails_the_invocation() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-missing").await;
    let f = forwarder(&sim, &[("MIXPANEL_ENABLED", "false")]).await;
    let invocation = f
        .handle(
            &payload(&s3_event("fwd-missing", "Data/gone.gz")),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(invocation.error.is_none());
    assert_eq!(
        invocation.objects[0].destinations.len(),
        1,
        "Mixpanel is disabled"
    );
    let letters = lines(
        &get(
            &client,
            "fwd-missing",
            "Error/forwarder/segment/Data/gone.gz.ndjson",
        )
        .await
        .unwrap(),
    );
    assert_eq!(letters[0]["reason"], "object_not_found");

    // A bucket that does not exist is not the object's fault: retried, not dead-lettered.
    let invocation = f
        .handle(
            &payload(&s3_event("fwd-no-such-bucket", "Data/x.gz")),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert_eq!(invocation.error.map(|e| e.code()), Some("incomplete"));
}

#[tokio::test]
async fn the_sample_events_in_the_repository_deliver_their_object_once() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("metrics-lake-data").await;
    let key = "Data/2026/11/23/10/metrics-lake-events-1-2026-11-23-10-00-00-7c9e6679.gz";
    put(
        &client,
        "metrics-lake-data",
        key,
        gzip(ndjson(7, now_ms()).as_bytes()),
    )
    .await;
    let f = forwarder(&sim, &[]).await;
    let s3_event = include_bytes!("../../../../events/forwarder/s3-object-created.json");
    let invocation = f.handle(s3_event, Deadline::after(Duration::from_secs(20))).await;
    assert!(invocation.error.is_none());
    assert_eq!(sim.client().state().await.unwrap().mixpanel.accepted.len(), 7);

    let sqs_event = include_bytes!("../../../../events/forwarder/sqs-s3-notification.json");
    let invocation = f
        .handle(sqs_event, Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(invocation.response, json!({"batchItemFailures": []}));
    assert_eq!(
        invocation.objects.len(),
        2,
        "a raw notification and an SNS envelope"
    );
    for report in &invocation.objects {
        assert!(
            report
                .destinations
                .iter()
                .all(|d| d.progress == Progress::AlreadyDone)
        );
    }
}

/// A line over the record limit is one record's dead letter (its physical line number, the
/// lines after it still delivered), and a source key near S3's 1,024-byte limit still gets
/// bounded dead-letter and marker keys that carry the full key inside.
#[tokio::test]
async fn an_oversize_line_is_one_dead_letter_and_a_long_key_gets_bounded_keys() {
    let sim = Sim::start_local().await.unwrap();
    let b = "fwd-hostile";
    let client = bucket(b).await;
    let key = format!("Data/{}", "k".repeat(1010));
    let mut object = ndjson(2, now_ms());
    // Leading spaces count toward the limit, as the read cap counts them.
    object.push_str(&" ".repeat(1024 * 1024 + 1));
    object.push_str("{}\n");
    object.push_str(&(event_line("scan_started", "acme-prod", "evt-after", now_ms()) + "\n"));
    put(&client, b, &key, gzip(object.as_bytes())).await;

    let f = forwarder(&sim, &[("MIXPANEL_ENABLED", "false")]).await;
    let invocation = f
        .handle(
            &payload(&s3_event(b, &key)),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(invocation.error.is_none(), "{:?}", invocation.error);
    let report = &invocation.objects[0];
    assert_eq!((report.records, report.invalid), (4, 1));
    assert_eq!(report.destinations[0].progress, Progress::Complete);
    assert_eq!(sim.client().state().await.unwrap().segment.accepted.len(), 3);

    let letters_keys = keys(&client, b, "Error/forwarder/segment/Data/kkk").await;
    let marker_keys = keys(&client, b, "State/forwarder/segment/Data/kkk").await;
    assert_eq!((letters_keys.len(), marker_keys.len()), (1, 1));
    assert!(letters_keys[0].len() <= 1024 && marker_keys[0].len() <= 1024);
    let letters = lines(&get(&client, b, &letters_keys[0]).await.unwrap());
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["reason"], "record_too_large");
    assert_eq!(letters[0]["line"], 3);
    assert_eq!(letters[0]["source_key"], key.as_str());
}

/// An object `metrics-lake replay` writes under `Replay/forwarder/<destination>/` goes to
/// that destination only: the others already have its events.
#[tokio::test]
async fn a_replay_object_goes_only_to_the_destination_it_names() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-replay").await;
    let key = "Replay/forwarder/segment/Data/2026/11/23/10/s-1.gz.gz";
    put(&client, "fwd-replay", key, gzip(ndjson(4, now_ms()).as_bytes())).await;
    let f = forwarder(&sim, &[]).await;
    let invocation = f
        .handle(
            &payload(&s3_event("fwd-replay", key)),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert!(invocation.error.is_none());
    let state = sim.client().state().await.unwrap();
    assert_eq!(state.segment.accepted.len(), 4);
    assert_eq!(state.mixpanel.received, 0, "Mixpanel is not asked again");
    let names: Vec<&str> = invocation.objects[0]
        .destinations
        .iter()
        .map(|d| d.destination.name())
        .collect();
    assert_eq!(names, ["segment"]);
}

/// A replay object for a destination that is not enabled is not dropped: the object stays
/// incomplete, so its message returns to the queue (and ends in the DLQ).
#[tokio::test]
async fn a_replay_object_for_a_disabled_destination_returns_to_the_queue() {
    let sim = Sim::start_local().await.unwrap();
    let client = bucket("fwd-replay-off").await;
    let key = "Replay/forwarder/segment/Data/2026/11/23/10/s-2.gz.gz";
    put(
        &client,
        "fwd-replay-off",
        key,
        gzip(ndjson(2, now_ms()).as_bytes()),
    )
    .await;
    let f = forwarder(&sim, &[("SEGMENT_ENABLED", "false")]).await;
    let body = s3_event("fwd-replay-off", key).to_string();
    let invocation = f
        .handle(
            &payload(&sqs_event(&[("m-1", body)])),
            Deadline::after(Duration::from_secs(20)),
        )
        .await;
    assert_eq!(
        invocation.response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );
    assert!(
        invocation.objects[0]
            .blocked
            .as_deref()
            .unwrap()
            .contains("segment")
    );
    assert_eq!(sim.client().state().await.unwrap().mixpanel.received, 0);
}
