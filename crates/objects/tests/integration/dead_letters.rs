#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Dead letters streamed to S3 (moto through the real SDK): one `PutObject` while they fit in
//! a part, a multipart upload past that, the object replaced whole each time, and keys kept
//! within S3's limit for any source key.

use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, S3DeadLetters, dead_letter_key, to_ndjson};
use metrics_objects::key::{MAX_KEY_BYTES, progress_marker_key};
use metrics_objects::trigger::ObjectRef;
use metrics_testkit::Moto;

/// S3's smallest part size, to keep the test objects small.
const PART_BYTES: usize = 5 * 1024 * 1024;

async fn s3(bucket: &str) -> aws_sdk_s3::Client {
    Moto::shared().s3_with_bucket(bucket).await
}

fn source(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: "lake".into(),
        key: key.into(),
        size: None,
        sequencer: None,
    }
}

fn letters(source: &ObjectRef, n: usize) -> Vec<DeadLetter> {
    (1..=n)
        .map(|line| {
            let record = format!("not json {line} {}", "x".repeat(200));
            DeadLetter::for_record(
                metrics_schema::Stage::Writer,
                "not_json",
                "expected value",
                source,
                Some(line),
                Some(record.as_bytes()),
            )
        })
        .collect()
}

/// Streams `items` through a new sink and returns the stored object's body and ETag.
async fn stream(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    items: &[DeadLetter],
) -> Option<(Vec<u8>, String)> {
    let mut sink = S3DeadLetters::with_part_bytes(s3.clone(), bucket, key, PART_BYTES);
    for item in items {
        sink.push(item).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), items.len() as u64);
    let out = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    let etag = out.e_tag().unwrap_or_default().to_owned();
    Some((out.body.collect().await.unwrap().to_vec(), etag))
}

#[tokio::test]
async fn many_dead_letters_go_up_in_parts_and_replace_the_object_whole() {
    let s3 = s3("dl-parts").await;
    let source = source("Data/2026/11/23/10/invalid.gz");
    let key = dead_letter_key("Error/writer/", &source);
    // Over two parts' worth.
    let many = letters(&source, 2 * PART_BYTES / 250 + 1000);
    assert!(to_ndjson(&many).len() > 2 * PART_BYTES);
    let (body, etag) = stream(&s3, "dl-parts", &key, &many).await.unwrap();
    assert_eq!(body, to_ndjson(&many));
    // A multipart object's ETag ends in `-<number of parts>`: a part each time the letters
    // held reach the part size, then the rest.
    let mut parts = 1;
    let mut held = 0;
    for letter in &many {
        held += to_ndjson(std::slice::from_ref(letter)).len();
        if held >= PART_BYTES {
            parts += 1;
            held = 0;
        }
    }
    assert!(parts >= 3);
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{etag}, {parts} parts"
    );

    // Processing the object again replaces its letters, whatever the earlier upload was.
    let few = letters(&source, 2);
    let (body, etag) = stream(&s3, "dl-parts", &key, &few).await.unwrap();
    assert_eq!(body, to_ndjson(&few));
    assert!(!etag.contains('-'), "one PutObject: {etag}");
    let (body, _) = stream(&s3, "dl-parts", &key, &many).await.unwrap();
    assert_eq!(body, to_ndjson(&many));
}

#[tokio::test]
async fn no_letters_write_nothing_and_an_abort_leaves_no_upload() {
    let s3 = s3("dl-none").await;
    assert_eq!(
        stream(&s3, "dl-none", "Error/writer/none.ndjson", &[]).await,
        None
    );

    let source = source("Data/aborted.gz");
    let mut sink =
        S3DeadLetters::with_part_bytes(s3.clone(), "dl-none", "Error/writer/aborted.ndjson", PART_BYTES);
    for letter in letters(&source, PART_BYTES / 250 + 10) {
        sink.push(&letter).await.unwrap();
    }
    let open_uploads = || async {
        let listed = s3
            .list_multipart_uploads()
            .bucket("dl-none")
            .send()
            .await
            .unwrap();
        listed.uploads().len()
    };
    assert_eq!(open_uploads().await, 1, "a part was sent before the end");
    sink.abort().await;
    assert_eq!(open_uploads().await, 0);
    let listed = s3.list_objects_v2().bucket("dl-none").send().await.unwrap();
    assert!(listed.contents().is_empty());
}

#[tokio::test]
async fn keys_from_the_longest_source_keys_stay_within_the_limit() {
    let s3 = s3("dl-long").await;
    // S3 takes source keys of up to 1,024 bytes; with a prefix and a suffix the derived key
    // would pass the limit.
    let long = source(&format!("Data/{}", "é".repeat(505)));
    assert_eq!(long.key.len(), 1015);
    let key = dead_letter_key("Error/writer/", &long);
    let marker = progress_marker_key("State/forwarder/", "segment", &long);
    for key in [&key, &marker] {
        assert!(key.len() <= MAX_KEY_BYTES, "{}", key.len());
    }
    assert!(marker.starts_with("State/forwarder/segment/Data/éé") && marker.ends_with(".done"));
    let items = letters(&long, 1);
    let (body, _) = stream(&s3, "dl-long", &key, &items).await.unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        stored["source_key"],
        long.key.as_str(),
        "the full key is in the letter"
    );
}
