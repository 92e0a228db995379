#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Splitting objects into records, with the limits that keep a bad object from taking the
//! function down, and fetching through the real S3 client from a moto server.

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use flate2::Compression;
use flate2::write::GzEncoder;
use metrics_objects::dead_letter::{DeadLetter, dead_letter_key, put_dead_letters, to_ndjson};
use metrics_objects::read::{ReadError, ReadLimits, SourceRecord, fetch_object, records};
use metrics_objects::trigger::{ObjectRef, Trigger, parse_trigger};
use metrics_schema::Stage;
use metrics_testkit::Moto;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn texts(bytes: &[u8], limits: &ReadLimits) -> Vec<Result<(usize, usize, String), String>> {
    records(bytes, limits)
        .map(|r| {
            r.map(|SourceRecord { line, ordinal, bytes }| (line, ordinal, String::from_utf8(bytes).unwrap()))
                .map_err(|e| e.code().to_owned())
        })
        .collect()
}

const NDJSON: &str = "{\"a\":1}\n\n{\"b\":2}\r\n  \n{\"c\":3}";

#[test]
fn plain_and_gzip_objects_give_the_same_records() {
    let expected: Vec<Result<(usize, usize, String), String>> = vec![
        Ok((1, 1, r#"{"a":1}"#.into())),
        Ok((3, 2, r#"{"b":2}"#.into())),
        Ok((5, 3, r#"{"c":3}"#.into())),
    ];
    assert_eq!(texts(NDJSON.as_bytes(), &ReadLimits::default()), expected);
    assert_eq!(texts(&gzip(NDJSON.as_bytes()), &ReadLimits::default()), expected);
}

#[test]
fn records_concatenated_without_a_delimiter_are_split() {
    let object = "{\"a\":1}{\"b\":\"}{\"}\n{\"c\":3}";
    let got = texts(object.as_bytes(), &ReadLimits::default());
    assert_eq!(
        got,
        vec![
            Ok((1, 1, r#"{"a":1}"#.into())),
            Ok((1, 2, r#"{"b":"}{"}"#.into())),
            Ok((2, 3, r#"{"c":3}"#.into()))
        ]
    );
}

#[test]
fn a_broken_line_stays_one_record_for_validation_to_reject() {
    let got = texts(b"{\"a\":1}{\"b\":\n", &ReadLimits::default());
    assert_eq!(got, vec![Ok((1, 1, r#"{"a":1}{"b":"#.into()))]);
}

#[test]
fn an_empty_object_has_no_records() {
    assert!(texts(b"", &ReadLimits::default()).is_empty());
    assert!(texts(&gzip(b""), &ReadLimits::default()).is_empty());
}

#[test]
fn a_giant_line_is_refused_alone_and_reading_goes_on_after_it() {
    let limits = ReadLimits {
        max_record_bytes: 1024,
        ..ReadLimits::default()
    };
    let mut object = b"{\"ok\":1}\n".to_vec();
    object.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    object.extend(b"\n{\"ok\":2}\n");
    let got = texts(&gzip(&object), &limits);
    assert_eq!(
        got,
        vec![
            Ok((1, 1, r#"{"ok":1}"#.into())),
            Err("record_too_large".into()),
            Ok((3, 2, r#"{"ok":2}"#.into()))
        ]
    );
    let errors: Vec<Option<usize>> = records(&gzip(&object), &limits)
        .filter_map(Result::err)
        .map(|e| e.line())
        .collect();
    assert_eq!(errors, [Some(2)]);
}

/// A record of exactly `len` bytes: `{"p":"xxx…"}`.
fn record_of(len: usize) -> String {
    format!("{{\"p\":\"{}\"}}", "x".repeat(len - 8))
}

#[test]
fn the_size_check_counts_the_bytes_the_read_cap_counts() {
    let limits = ReadLimits {
        max_record_bytes: 100,
        ..ReadLimits::default()
    };
    // 98 bytes of record after 3 spaces: 101 bytes on the line. It used to pass the check
    // (98 trimmed) after the cap had cut it in two, both halves then refused as not JSON.
    let object = format!(
        "{}\n   {}\n{}\r\n  {}\n{}",
        record_of(20),
        record_of(98),
        record_of(100),
        record_of(98),
        record_of(30)
    );
    let got = texts(object.as_bytes(), &limits);
    assert_eq!(
        got,
        vec![
            Ok((1, 1, record_of(20))),
            Err("record_too_large".into()),
            // Exactly the limit, with the `\r\n` that ends it: allowed.
            Ok((3, 2, record_of(100))),
            // 100 bytes with its leading spaces: allowed.
            Ok((4, 3, record_of(98))),
            Ok((5, 4, record_of(30))),
        ]
    );
    assert_eq!(texts(&gzip(object.as_bytes()), &limits), got);
}

#[test]
fn line_numbers_stay_physical_after_oversize_blank_and_invalid_lines() {
    let limits = ReadLimits {
        max_record_bytes: 64,
        ..ReadLimits::default()
    };
    let object = format!(
        "{}\n{}\n\nnot json\n{}\n{}{}\n{}\n",
        record_of(10),
        "y".repeat(5000),
        "z".repeat(65),
        record_of(11),
        record_of(12),
        record_of(13)
    );
    let got = texts(&gzip(object.as_bytes()), &limits);
    assert_eq!(
        got,
        vec![
            Ok((1, 1, record_of(10))),
            Err("record_too_large".into()),
            Ok((4, 2, "not json".into())),
            Err("record_too_large".into()),
            Ok((6, 3, record_of(11))),
            Ok((6, 4, record_of(12))),
            Ok((7, 5, record_of(13))),
        ]
    );
    let lines: Vec<Option<usize>> = records(object.as_bytes(), &limits)
        .filter_map(Result::err)
        .map(|e| e.line())
        .collect();
    assert_eq!(lines, [Some(2), Some(5)]);
}

#[test]
fn a_bomb_of_one_endless_line_stops_at_the_decompressed_limit() {
    let bomb = gzip(&vec![b'x'; 64 * 1024 * 1024]);
    let limits = ReadLimits {
        max_decompressed_bytes: 1024 * 1024,
        max_record_bytes: 1024,
        ..ReadLimits::default()
    };
    assert_eq!(
        texts(&bomb, &limits),
        vec![Err("object_decompressed_too_large".to_owned())]
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_decompressed_limit() {
    // 64 MiB of newlines compresses to a few tens of KiB.
    let bomb = gzip(&vec![b'\n'; 64 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let limits = ReadLimits {
        max_decompressed_bytes: 1024 * 1024,
        ..ReadLimits::default()
    };
    assert_eq!(
        texts(&bomb, &limits),
        vec![Err("object_decompressed_too_large".to_owned())]
    );
}

#[test]
fn a_truncated_gzip_yields_what_was_readable_then_a_reason() {
    let lines: String = (0..2000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let whole = gzip(lines.as_bytes());
    let cut = &whole[..whole.len() / 2];
    let got = texts(cut, &ReadLimits::default());
    let (last, rest) = got.split_last().unwrap();
    assert_eq!(last, &Err("object_corrupt".to_owned()));
    assert!(!rest.is_empty() && rest.iter().all(Result::is_ok));
}

#[test]
fn dead_letters_keep_non_utf8_records_as_base64() {
    let source = ObjectRef {
        bucket: "lake".into(),
        key: "Data/x.gz".into(),
        size: None,
        sequencer: None,
    };
    let letters = [
        DeadLetter::for_record(Stage::Writer, "not_json", "bad", &source, Some(3), Some(b"{oops")),
        DeadLetter::for_record(
            Stage::Writer,
            "not_utf8",
            "bad",
            &source,
            Some(4),
            Some(&[0xff, 0xfe]),
        ),
    ];
    let text = String::from_utf8(to_ndjson(&letters)).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["record"], "{oops");
    assert_eq!(lines[0]["line"], 3);
    assert!(lines[0].get("record_encoding").is_none());
    assert_eq!(lines[1]["record"], "//4=");
    assert_eq!(lines[1]["record_encoding"], "base64");
    assert_eq!(
        dead_letter_key("Error/writer/", &source),
        "Error/writer/Data/x.gz.ndjson"
    );
}

#[test]
fn s3_answers_are_transient_only_when_a_retry_can_change_them() {
    use metrics_objects::read::is_transient_answer;
    for (status, code) in [
        (503, Some("SlowDown")),
        (500, Some("InternalError")),
        (503, Some("ServiceUnavailable")),
        (400, Some("RequestTimeout")),
        (400, Some("ExpiredToken")),
        (403, Some("RequestTimeTooSkewed")),
        (429, None),
        (502, None),
    ] {
        assert!(is_transient_answer(status, code), "{status} {code:?}");
    }
    for (status, code) in [
        (403, Some("AccessDenied")),
        (403, Some("InvalidObjectState")),
        (404, Some("NoSuchBucket")),
        (400, Some("KeyTooLongError")),
        (400, None),
    ] {
        assert!(!is_transient_answer(status, code), "{status} {code:?}");
    }
}

#[tokio::test]
async fn objects_are_fetched_through_the_sdk_and_notified_keys_decode_to_them() {
    let moto = Moto::shared();
    let config = moto.sdk_config().await;
    // The functions' own S3 client: moto's endpoint is set, so it addresses buckets by path.
    let s3 = metrics_objects::s3_client(&config);
    s3.create_bucket().bucket("objects-fetch").send().await.unwrap();
    let key = "Data/2026/11/23/10/with space+plus.gz";
    s3.put_object()
        .bucket("objects-fetch")
        .key(key)
        .body(ByteStream::from(gzip(NDJSON.as_bytes())))
        .send()
        .await
        .unwrap();

    // The key as a notification carries it.
    let event = format!(
        r#"{{"Records":[{{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"objects-fetch"}},"object":{{"key":"{}","size":1}}}}}}]}}"#,
        "Data%2F2026%2F11%2F23%2F10%2Fwith+space%2Bplus.gz"
    );
    let Trigger::S3(objects) = parse_trigger(event.as_bytes()).unwrap() else {
        panic!("not S3")
    };
    assert_eq!(objects[0].key, key);

    let bytes = fetch_object(&s3, &objects[0], &ReadLimits::default())
        .await
        .unwrap();
    assert_eq!(records(&bytes, &ReadLimits::default()).count(), 3);

    let small = ReadLimits {
        max_compressed_bytes: 10,
        ..ReadLimits::default()
    };
    assert!(matches!(
        fetch_object(&s3, &objects[0], &small).await,
        Err(ReadError::ObjectTooLarge { limit: 10 })
    ));
    let missing = ObjectRef {
        key: "Data/none.gz".into(),
        ..objects[0].clone()
    };
    let err = fetch_object(&s3, &missing, &ReadLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "object_not_found");
    assert!(!err.is_transient());

    let letter = DeadLetter::for_record(Stage::Writer, "not_json", "x", &objects[0], Some(1), Some(b"x"));
    let dl_key = dead_letter_key("Error/writer/", &objects[0]);
    put_dead_letters(&s3, "objects-fetch", &dl_key, std::slice::from_ref(&letter))
        .await
        .unwrap();
    // Writing again replaces, never appends.
    put_dead_letters(&s3, "objects-fetch", &dl_key, &[letter])
        .await
        .unwrap();
    let stored = s3
        .get_object()
        .bucket("objects-fetch")
        .key(&dl_key)
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(stored.body.collect().await.unwrap().to_vec()).unwrap();
    assert_eq!(text.lines().count(), 1);
}
