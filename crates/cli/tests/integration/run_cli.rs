#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! `metrics-lake run`, `query` and `sample` as a user runs them: the built binary from the
//! repository root, each test with its own state directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn metrics_lake(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metrics-lake"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the binary runs")
}

fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metrics-lake"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A state directory of its own, removed afterwards.
pub(crate) struct State(pub(crate) PathBuf);

impl State {
    pub(crate) fn new(name: &str) -> State {
        let dir = std::env::temp_dir().join(format!("metrics-lake-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        State(dir)
    }

    pub(crate) fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for State {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn outcomes_total(summary: &Value) -> u64 {
    summary["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

#[test]
fn the_sample_run_accounts_for_every_event_and_a_rerun_changes_no_row() {
    let state = State::new("sample");
    let run = || {
        json(&metrics_lake(&[
            "run",
            "--sample-events",
            "3000",
            "--json",
            "--state-dir",
            state.arg(),
        ]))
    };
    let first = run();
    let read = first["events_read"].as_u64().unwrap();
    assert!(read >= 3000);
    assert_eq!(outcomes_total(&first), read, "{first:#}");
    assert_eq!(first["accounting"]["balanced"], true);
    assert!(first["outcomes"]["stored"].as_u64().unwrap() > 2000);
    assert!(first["outcomes"]["failed:unknown_tenant"].as_u64().unwrap() > 0);
    assert!(first["forward"]["segment"]["events"].as_u64().unwrap() > 0);

    // The bucket is laid out like Firehose's, the outbox holds the request bodies.
    let bucket = metrics_local::bucket::LocalBucket::open(state.0.join("bucket")).unwrap();
    assert!(!bucket.list("Data/2026/10/27/").unwrap().is_empty());
    assert!(!bucket.list("Error/processing-failed/").unwrap().is_empty());
    let segment = std::fs::read_to_string(state.0.join("outbox/segment/requests.ndjson")).unwrap();
    let first_request: Value = serde_json::from_str(segment.lines().next().unwrap()).unwrap();
    assert_eq!(first_request["path"], "/v1/batch");
    assert_eq!(first_request["body"]["batch"][0]["type"], "track");
    assert!(
        first_request["headers"]
            .to_string()
            .to_lowercase()
            .find("authorization")
            .is_none()
    );
    let sent: u64 = segment
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["events"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(sent, first["forward"]["segment"]["events"].as_u64().unwrap());
    let mixpanel = std::fs::read_to_string(state.0.join("outbox/mixpanel/requests.ndjson")).unwrap();
    let first_import: Value = serde_json::from_str(mixpanel.lines().next().unwrap()).unwrap();
    assert!(
        first_import["path"]
            .as_str()
            .unwrap()
            .starts_with("/import?strict=1")
    );
    assert_eq!(first_import["content_encoding"], "gzip");

    let tenants_before = json(&metrics_lake(&["tenants", "--json", "--state-dir", state.arg()]));
    // Running again over the same input: every stored event is now a duplicate, no row changes.
    let second = run();
    assert_eq!(
        second["outcomes"]["duplicate"],
        first["outcomes"]["stored"].as_u64().unwrap() + first["outcomes"]["duplicate"].as_u64().unwrap()
    );
    assert!(
        second["outcomes"].get("stored").is_none(),
        "{:#}",
        second["outcomes"]
    );
    let tenants_after = json(&metrics_lake(&["tenants", "--json", "--state-dir", state.arg()]));
    assert_eq!(tenants_before, tenants_after);
}

#[test]
fn events_come_from_files_arrays_directories_and_stdin() {
    let sample = metrics_lake(&["sample", "--events", "200"]);
    assert!(sample.status.success());
    let lines: Vec<&[u8]> = sample
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 200);

    let state = State::new("inputs");
    std::fs::create_dir_all(&state.0).unwrap();
    let ndjson = state.0.join("events.ndjson");
    std::fs::write(&ndjson, &sample.stdout).unwrap();
    let array = state.0.join("events.json");
    let items: Vec<Value> = lines.iter().map(|l| serde_json::from_slice(l).unwrap()).collect();
    std::fs::write(&array, serde_json::to_vec_pretty(&items).unwrap()).unwrap();

    let read = |args: &[&str]| json(&metrics_lake(args))["events_read"].as_u64().unwrap();
    let n = lines.len() as u64;
    assert_eq!(
        read(&[
            "run",
            "--json",
            "--state-dir",
            state.arg(),
            ndjson.to_str().unwrap()
        ]),
        n
    );
    assert_eq!(
        read(&[
            "run",
            "--json",
            "--state-dir",
            state.arg(),
            array.to_str().unwrap()
        ]),
        n
    );
    let from_stdin = json(&with_stdin(
        &["run", "--json", "--state-dir", state.arg(), "-"],
        &sample.stdout,
    ));
    assert_eq!(from_stdin["events_read"].as_u64().unwrap(), n);
    assert_eq!(outcomes_total(&from_stdin), n);

    let dir = state.0.join("dir");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::copy(&ndjson, dir.join("a.ndjson")).unwrap();
    std::fs::copy(&array, dir.join("nested/b.json")).unwrap();
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    assert_eq!(
        read(&["run", "--json", "--state-dir", state.arg(), dir.to_str().unwrap()]),
        2 * n
    );
}

#[test]
fn query_returns_a_tenants_series_and_only_its_own() {
    let state = State::new("query");
    json(&metrics_lake(&[
        "run",
        "--sample-events",
        "3000",
        "--json",
        "--state-dir",
        state.arg(),
    ]));
    let query = |tenant: &str| {
        json(&metrics_lake(&[
            "query",
            "--tenant",
            tenant,
            "--metric",
            "findings_upload_completed",
            "--measure",
            "new_findings_count",
            "--bin",
            "1d",
            "--json",
            "--state-dir",
            state.arg(),
        ]))
    };
    let acme = query("acme-prod");
    let points = acme["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 30, "one bin per day of the sample month");
    let total: f64 = points.iter().filter_map(|p| p["v"].as_f64()).sum();
    assert!(total > 0.0);
    let globex = query("globex");
    let globex_total: f64 = globex["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["v"].as_f64())
        .sum();
    assert_ne!(total, globex_total, "each tenant sees its own table");
    assert_eq!(acme["aggregation"], "sum", "a count keeps sum");

    // Without --agg, a measure takes its default from infra/metrics.toml: durations are
    // averaged (every sampled scan took 5 to 245 seconds), and --agg still wins.
    let duration = |agg: &[&str]| {
        let mut args = vec![
            "query",
            "--tenant",
            "acme-prod",
            "--metric",
            "scan_completed",
            "--measure",
            "duration_ms",
            "--json",
            "--state-dir",
            state.arg(),
        ];
        args.extend_from_slice(agg);
        json(&metrics_lake(&args))
    };
    let values = |answer: &serde_json::Value| -> Vec<f64> {
        answer["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["v"].as_f64())
            .collect()
    };
    let averaged = duration(&[]);
    assert_eq!(averaged["aggregation"], "avg");
    let daily = values(&averaged);
    assert!(!daily.is_empty());
    assert!(
        daily.iter().all(|v| (5_000.0..=245_000.0).contains(v)),
        "{daily:?}"
    );
    let summed = duration(&["--agg", "sum"]);
    assert_eq!(summed["aggregation"], "sum");
    assert!(values(&summed).iter().sum::<f64>() > daily.iter().sum::<f64>());

    // The table and chart print, and an unknown metric says what exists.
    let text = metrics_lake(&[
        "query",
        "--tenant",
        "acme-prod",
        "--metric",
        "scan_completed",
        "--state-dir",
        state.arg(),
    ]);
    assert!(text.status.success());
    let printed = String::from_utf8_lossy(&text.stdout);
    assert!(
        printed.contains("2026-11-02") && printed.contains('█'),
        "{printed}"
    );
    let unknown = metrics_lake(&[
        "query",
        "--tenant",
        "acme-prod",
        "--metric",
        "nope",
        "--state-dir",
        state.arg(),
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("scan_completed"));
    let hostile = metrics_lake(&[
        "query",
        "--tenant",
        "../acme",
        "--metric",
        "scan_completed",
        "--state-dir",
        state.arg(),
    ]);
    assert_eq!(hostile.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&hostile.stderr).contains("invalid_tenant_id"));
}

#[test]
fn the_sample_is_the_same_every_time() {
    let a = metrics_lake(&["sample", "--events", "300"]);
    let b = metrics_lake(&["sample", "--events", "300"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let other = metrics_lake(&["sample", "--events", "300", "--seed", "7"]);
    assert_ne!(a.stdout, other.stdout);
}

#[test]
fn a_missing_input_or_state_fails_with_a_message() {
    let state = State::new("missing");
    let missing = metrics_lake(&["run", "--state-dir", state.arg(), "no/such/file.ndjson"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
    let no_store = metrics_lake(&[
        "query",
        "--tenant",
        "acme-prod",
        "--metric",
        "m",
        "--state-dir",
        state.arg(),
    ]);
    assert_eq!(no_store.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_store.stderr).contains("metrics-lake run"));
}

#[test]
fn timings_break_the_run_down_by_stage_without_changing_the_summary() {
    let state = State::new("timings");
    let output = metrics_lake(&[
        "run",
        "events/sample/first-500.ndjson",
        "--json",
        "--timings",
        "--state-dir",
        state.arg(),
    ]);
    let summary = json(&output);
    assert_eq!(summary["accounting"]["balanced"], true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seconds = |stage: &str| -> f64 {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("no {stage} row: {stderr}"));
        line[60..].split_whitespace().next().unwrap().parse().unwrap()
    };
    // The thread that pushes events: its rows add up to the run (each rounded to a
    // millisecond), waiting for the readers included.
    let pushing = [
        "events thread: read and generate input",
        "events thread: rules (EventBridge emulation)",
        "events thread: Firehose emulation",
        "events thread: enrich",
        "events thread: object writes",
        "events thread: waiting for the readers",
        "outbox index flush",
    ];
    let sum: f64 = pushing.iter().map(|s| seconds(s)).sum();
    let total = seconds("wall time");
    assert!((sum - total).abs() < 0.01 * pushing.len() as f64, "{stderr}");
    // The readers' threads work while events are pushed: neither stage can take longer than
    // the run.
    let store = seconds("reader threads: writer and store");
    let forward = seconds("reader threads: forwarder");
    assert!(store > 0.0 && seconds("events thread: enrich") > 0.0, "{stderr}");
    assert!(store <= total + 0.01 && forward <= total + 0.01, "{stderr}");
}
