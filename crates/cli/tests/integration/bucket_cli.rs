#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! `metrics-lake bucket ls|cat` as a user runs them, over a bucket holding both layouts:
//! objects packed in the bucket's database and plain files an older run left.

use std::io::Write;
use std::process::Output;

use metrics_local::bucket::LocalBucket;

use crate::run_cli::{State, metrics_lake};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A state directory whose bucket holds three packed objects and one plain file.
fn filled(name: &str) -> State {
    let state = State::new(name);
    let bucket = LocalBucket::open(state.0.join("bucket")).unwrap();
    bucket
        .put("Data/2026/03/01/00/a.gz", &gzip(b"{\"n\":1}\n"))
        .unwrap();
    bucket.put("Data/2026/04/01/00/b.gz", b"not gzip").unwrap();
    // Committed when the bucket is dropped, as at the end of a run.
    bucket
        .put_deferred("Error/processing-failed/2026/03/01/00/c", b"failed")
        .unwrap();
    let file = state.0.join("bucket/Data/2026/03/01/00/old.gz");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, gzip(b"{\"n\":0}\n")).unwrap();
    state
}

#[test]
fn ls_lists_both_layouts_sorted_and_by_prefix() {
    let state = filled("bucket-ls");
    let all = stdout(&metrics_lake(&["bucket", "ls", "--state-dir", state.arg()]));
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        [
            "Data/2026/03/01/00/a.gz",
            "Data/2026/03/01/00/old.gz",
            "Data/2026/04/01/00/b.gz",
            "Error/processing-failed/2026/03/01/00/c",
        ]
    );
    let march = stdout(&metrics_lake(&[
        "bucket",
        "ls",
        "Data/2026/03/",
        "--state-dir",
        state.arg(),
    ]));
    assert_eq!(march, "Data/2026/03/01/00/a.gz\nData/2026/03/01/00/old.gz\n");
    assert_eq!(
        stdout(&metrics_lake(&[
            "bucket",
            "ls",
            "Nothing/",
            "--state-dir",
            state.arg()
        ])),
        ""
    );

    let long = stdout(&metrics_lake(&[
        "bucket",
        "ls",
        "Data/2026/04/",
        "--long",
        "--state-dir",
        state.arg(),
    ]));
    let fields: Vec<&str> = long.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{long}");
    assert_eq!(fields[0], "8");
    assert!(
        fields[1].len() == 24 && fields[1].starts_with("20") && fields[1].ends_with('Z'),
        "{long}"
    );
    assert_eq!(fields[2], "Data/2026/04/01/00/b.gz");
}

#[test]
fn cat_writes_an_object_as_stored_or_decompressed() {
    let state = filled("bucket-cat");
    let cat = |key: &str, extra: &[&str]| {
        let mut args = vec!["bucket", "cat", key, "--state-dir", state.arg()];
        args.extend(extra);
        metrics_lake(&args)
    };
    let packed = cat("Data/2026/03/01/00/a.gz", &[]);
    assert!(packed.status.success());
    assert_eq!(packed.stdout, gzip(b"{\"n\":1}\n"));
    assert_eq!(
        stdout(&cat("Data/2026/03/01/00/a.gz", &["--gunzip"])),
        "{\"n\":1}\n"
    );
    assert_eq!(
        stdout(&cat("Data/2026/03/01/00/old.gz", &["--gunzip"])),
        "{\"n\":0}\n"
    );
    assert_eq!(
        stdout(&cat("Error/processing-failed/2026/03/01/00/c", &[])),
        "failed"
    );

    let missing = failure(&cat("Data/2026/03/01/00/none.gz", &[]));
    assert!(
        missing.contains("no object \"Data/2026/03/01/00/none.gz\""),
        "{missing}"
    );
    let unsafe_key = failure(&cat("../state.db", &[]));
    assert!(unsafe_key.contains("not a safe relative path"), "{unsafe_key}");
    let not_gzip = failure(&cat("Data/2026/04/01/00/b.gz", &["--gunzip"]));
    assert!(
        not_gzip.contains("Data/2026/04/01/00/b.gz: not a gzip object"),
        "{not_gzip}"
    );
}

#[test]
fn without_a_bucket_it_says_so_and_creates_nothing() {
    let state = State::new("bucket-none");
    for args in [
        &["bucket", "ls", "--state-dir", state.arg()][..],
        &["bucket", "cat", "Data/a.gz", "--state-dir", state.arg()],
    ] {
        let message = failure(&metrics_lake(args));
        assert!(message.contains("no local bucket at"), "{message}");
        assert!(message.contains("metrics-lake run"), "{message}");
    }
    assert!(!state.0.exists());
}
