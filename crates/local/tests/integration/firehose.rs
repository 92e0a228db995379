#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The Firehose emulator: buffering, the response contract, object names and the
//! processing-failed wrapper.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use flate2::read::GzDecoder;
use metrics_local::firehose::{Firehose, FirehoseConfig, Invocation, ObjectKind};
use serde_json::{Value, json};

const T0: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

/// A stand-in transform: `ok…` records pass with a newline added, `drop…` are dropped, the
/// rest fail.
fn transform(invocation: &Invocation) -> Vec<u8> {
    let event: Value = serde_json::from_slice(&invocation.event_json).unwrap();
    let records: Vec<Value> = event["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let data = B64.decode(r["data"].as_str().unwrap()).unwrap();
            let (result, out) = if data.starts_with(b"ok") {
                ("Ok", [data.as_slice(), b"\n"].concat())
            } else if data.starts_with(b"drop") {
                ("Dropped", data)
            } else {
                ("ProcessingFailed", data)
            };
            json!({"recordId": r["recordId"], "result": result, "data": B64.encode(out)})
        })
        .collect();
    serde_json::to_vec(&json!({ "records": records })).unwrap()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    GzDecoder::new(bytes).read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_event_is_what_firehose_sends() {
    let mut firehose = Firehose::new(FirehoseConfig::default());
    assert!(firehose.put(b"ok-1".to_vec(), T0).is_none());
    let invocation = firehose.drain().unwrap();
    let event: Value = serde_json::from_slice(&invocation.event_json).unwrap();
    assert!(event["invocationId"].is_string());
    assert!(
        event["deliveryStreamArn"]
            .as_str()
            .unwrap()
            .ends_with(":deliverystream/metrics-lake")
    );
    let record = &event["records"][0];
    assert_eq!(record["approximateArrivalTimestamp"], T0);
    assert_eq!(B64.decode(record["data"].as_str().unwrap()).unwrap(), b"ok-1");
    assert!(firehose.drain().is_none(), "a drained buffer is empty");
}

#[test]
fn the_processor_buffer_closes_on_size_or_interval() {
    let config = FirehoseConfig {
        processor_buffer_bytes: 10,
        ..FirehoseConfig::default()
    };
    let mut firehose = Firehose::new(config);
    assert!(firehose.put(b"ok-1".to_vec(), T0).is_none());
    assert!(firehose.put(b"ok-2".to_vec(), T0 + 1).is_none());
    let full = firehose
        .put(b"ok-3".to_vec(), T0 + 2)
        .expect("12 bytes fill a 10-byte buffer");
    assert_eq!(full.record_count(), 3);
    assert!(firehose.put(b"ok-4".to_vec(), T0 + 3).is_none());
    let late = firehose
        .put(b"ok-5".to_vec(), T0 + 3 + 60_000)
        .expect("the interval passed");
    assert_eq!(
        late.record_count(),
        1,
        "the interval closes the buffer before the new record"
    );
}

#[test]
fn ok_records_become_one_gzip_object_named_like_firehose() {
    let mut firehose = Firehose::new(FirehoseConfig::default());
    for (i, data) in ["ok-a", "drop-b", "bad-c", "ok-d"].iter().enumerate() {
        assert!(firehose.put(data.as_bytes().to_vec(), T0 + i as i64).is_none());
    }
    let invocation = firehose.drain().unwrap();
    let response = transform(&invocation);
    let completion = firehose.complete(invocation, &response);
    assert_eq!((completion.ok, completion.dropped, completion.failed), (2, 1, 1));

    let failed = &completion.objects[0];
    assert_eq!(failed.kind, ObjectKind::ProcessingFailed);
    assert!(
        failed
            .key
            .starts_with("Error/processing-failed/2026/11/23/10/metrics-lake-1-2026-11-23-10-00-00-")
    );
    let wrapper: Value = serde_json::from_str(gunzip(&failed.bytes).trim()).unwrap();
    assert_eq!(wrapper["errorCode"], "Lambda.ProcessingFailedStatus");
    assert_eq!(wrapper["arrivalTimestamp"], T0 + 2);
    assert_eq!(
        B64.decode(wrapper["rawData"].as_str().unwrap()).unwrap(),
        b"bad-c"
    );
    for field in [
        "attemptsMade",
        "errorMessage",
        "attemptEndingTimestamp",
        "lambdaArn",
    ] {
        assert!(wrapper.get(field).is_some(), "{field}");
    }

    let data = firehose.flush().unwrap();
    assert_eq!(data.kind, ObjectKind::Data);
    assert_eq!(data.records, 2);
    assert_eq!(gunzip(&data.bytes), "ok-a\nok-d\n");
    // The readers of a run read a small object's content as it was before compression.
    assert_eq!(data.content.as_deref(), Some(&b"ok-a\nok-d\n"[..]));
    let name = data
        .key
        .strip_prefix("Data/2026/11/23/10/metrics-lake-1-2026-11-23-10-00-00-")
        .unwrap();
    assert!(name.ends_with(".gz") && name.len() == 36 + 3, "{name}");
    assert!(firehose.flush().is_none());
}

#[test]
fn the_destination_buffer_closes_on_interval_and_names_the_oldest_arrival() {
    let mut firehose = Firehose::new(FirehoseConfig::default());
    let mut objects = Vec::new();
    for (i, at) in [T0, T0 + 30_000, T0 + 61_000, T0 + 3_600_000]
        .into_iter()
        .enumerate()
    {
        firehose.put(format!("ok-{i}").into_bytes(), at);
        let invocation = firehose.drain().unwrap();
        let response = transform(&invocation);
        objects.extend(firehose.complete(invocation, &response).objects);
    }
    objects.extend(firehose.flush());
    let keys: Vec<&str> = objects.iter().map(|o| &o.key[..o.key.len() - 39]).collect();
    assert_eq!(
        keys,
        [
            "Data/2026/11/23/10/metrics-lake-1-2026-11-23-10-00-00-",
            "Data/2026/11/23/10/metrics-lake-1-2026-11-23-10-01-01-",
            "Data/2026/11/23/11/metrics-lake-1-2026-11-23-11-00-00-",
        ]
    );
    assert_eq!(objects.iter().map(|o| o.records).collect::<Vec<_>>(), [2, 1, 1]);
}

#[test]
fn a_response_that_breaks_the_contract_fails_the_whole_batch() {
    type Response = fn(&str) -> Value;
    let cases: [(&str, Response); 4] = [
        ("Lambda.MissingRecordId", |_| json!({"records": []})),
        (
            "Lambda.DuplicatedRecordId",
            |id| json!({"records": [{"recordId": id, "result": "Ok", "data": ""}, {"recordId": id, "result": "Ok", "data": ""}]}),
        ),
        (
            "Lambda.JsonProcessingException",
            |id| json!({"records": [{"recordId": id, "result": "TRANSFORMED_STATE_OK", "data": ""}]}),
        ),
        (
            "Lambda.JsonProcessingException",
            |_| json!({"records": [{"recordId": "never-sent", "result": "Ok", "data": ""}]}),
        ),
    ];
    for (code, response) in cases {
        let mut firehose = Firehose::new(FirehoseConfig::default());
        firehose.put(b"ok-1".to_vec(), T0);
        let invocation = firehose.drain().unwrap();
        let event: Value = serde_json::from_slice(&invocation.event_json).unwrap();
        let id = event["records"][0]["recordId"].as_str().unwrap().to_owned();
        let completion = firehose.complete(invocation, &serde_json::to_vec(&response(&id)).unwrap());
        assert_eq!((completion.ok, completion.failed), (0, 1), "{code}");
        let wrapper: Value = serde_json::from_str(gunzip(&completion.objects[0].bytes).trim()).unwrap();
        assert_eq!(wrapper["errorCode"], code);
    }
}

#[test]
fn the_same_records_always_give_the_same_object() {
    let run = || {
        let mut firehose = Firehose::new(FirehoseConfig::default());
        firehose.put(b"ok-same".to_vec(), T0);
        let invocation = firehose.drain().unwrap();
        let response = transform(&invocation);
        firehose.complete(invocation, &response);
        firehose.flush().unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn only_a_small_objects_content_is_kept_beside_its_bytes() {
    let config = FirehoseConfig {
        destination_buffer_bytes: 8 * 1024 * 1024,
        ..FirehoseConfig::default()
    };
    let object_of = |record_bytes: usize| {
        let mut firehose = Firehose::new(config.clone());
        // The transform adds a newline: two records make an object of `2 * record_bytes`.
        let record = format!("ok-{}", "x".repeat(record_bytes - 4));
        for i in 0..2 {
            firehose.put(record.clone().into_bytes(), T0 + i);
            let invocation = firehose.drain().unwrap();
            let response = transform(&invocation);
            firehose.complete(invocation, &response);
        }
        firehose.flush().unwrap()
    };
    let small = object_of(1000);
    assert_eq!(small.content.as_deref(), Some(gunzip(&small.bytes).as_bytes()));
    let large = object_of(600 * 1024);
    assert_eq!(gunzip(&large.bytes).len(), 2 * 600 * 1024);
    assert_eq!(large.content, None, "read from its bytes");
}
