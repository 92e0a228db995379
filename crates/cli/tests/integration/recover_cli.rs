#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! `metrics-lake errors` and `metrics-lake replay` on a local state directory, as a user runs
//! them: see why records failed, fix the cause, replay, and replay again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use metrics_local::bucket::LocalBucket;
use serde_json::Value;

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn metrics_lake(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metrics-lake"))
        .args(args)
        .env_remove("AWS_PROFILE")
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .output()
        .expect("the binary runs")
}

pub(crate) fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// A state directory and a tenant directory without `globex`, removed afterwards.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(name: &str) -> Case {
        let dir = std::env::temp_dir().join(format!("metrics-lake-recover-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let full: serde_json::Map<String, Value> =
            serde_json::from_slice(&std::fs::read(repo_root().join("events/sample/tenants.json")).unwrap())
                .unwrap();
        let mut partial = full.clone();
        partial.remove("globex");
        std::fs::write(dir.join("partial.json"), Value::Object(partial).to_string()).unwrap();
        std::fs::write(dir.join("full.json"), Value::Object(full).to_string()).unwrap();
        Case { dir }
    }

    fn state(&self) -> String {
        self.dir.join("state").to_string_lossy().into_owned()
    }

    fn tenants(&self, which: &str) -> String {
        self.dir
            .join(format!("{which}.json"))
            .to_string_lossy()
            .into_owned()
    }

    /// `run` on the first 500 sample events plus one line that is not JSON, without globex.
    fn run(&self, extra: &[&str], env: &[(&str, &str)]) -> Value {
        let input = self.dir.join("input.ndjson");
        let mut events = std::fs::read(repo_root().join("events/sample/first-500.ndjson")).unwrap();
        events.extend_from_slice(b"this line is not JSON\n");
        std::fs::write(&input, events).unwrap();
        let (state, tenants) = (self.state(), self.tenants("partial"));
        let mut args = vec![
            "run",
            input.to_str().unwrap(),
            "--json",
            "--state-dir",
            &state,
            "--tenants",
            &tenants,
        ];
        args.extend_from_slice(extra);
        json(&metrics_lake(&args, env))
    }

    fn cmd(&self, command: &str, tenants: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let (state, tenants) = (self.state(), self.tenants(tenants));
        let mut args = vec![command, "--state-dir", &state, "--tenants", &tenants];
        args.extend_from_slice(extra);
        metrics_lake(&args, env)
    }

    fn stored(&self, tenant: &str) -> u64 {
        let state = self.state();
        let tenants = json(&metrics_lake(&["tenants", "--json", "--state-dir", &state], &[]));
        tenants
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant"] == tenant)
            .map_or(0, |t| t["records"].as_u64().unwrap())
    }

    fn outbox_events(&self, destination: &str) -> u64 {
        let index = std::fs::read_to_string(
            self.dir
                .join(format!("state/outbox/{destination}/requests.ndjson")),
        )
        .unwrap_or_default();
        index
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["events"]
                    .as_u64()
                    .unwrap()
            })
            .sum()
    }

    fn bucket(&self) -> PathBuf {
        self.dir.join("state/bucket")
    }

    /// The keys under `prefix` in the run's bucket (most objects are rows of its database).
    fn objects(&self, prefix: &str) -> Vec<String> {
        LocalBucket::open(self.bucket()).unwrap().list(prefix).unwrap()
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn n(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

#[test]
fn unknown_tenant_records_are_listed_then_replayed_once_the_tenant_exists() {
    let case = Case::new("tenant");
    let run = case.run(&[], &[]);
    let unknown = n(&run["outcomes"]["failed:unknown_tenant"]);
    assert!(unknown > 50, "{run:#}");
    assert_eq!(case.stored("globex"), 0);

    // Every record that did not become stored is listed with its reason and origin.
    let errors = json(&case.cmd("errors", "partial", &["--json"], &[]));
    let records = errors["records"].as_array().unwrap();
    let failed_in_run: u64 = run["outcomes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("failed:"))
        .map(|(_, v)| n(v))
        .sum();
    assert_eq!(
        records.len() as u64,
        failed_in_run + n(&run["outcomes"]["not_an_event"])
    );
    assert_eq!(n(&errors["counts"]["unknown_tenant"]), unknown);
    let globex = records.iter().find(|r| r["tenant_id"] == "globex").unwrap();
    assert_eq!(globex["stage"], "enrich");
    assert_eq!(globex["reason"], "unknown_tenant");
    assert!(
        globex["source"].as_str().unwrap().contains("input.ndjson:"),
        "{globex:#}"
    );
    assert!(
        globex["object"]
            .as_str()
            .unwrap()
            .starts_with("Error/processing-failed/")
    );
    let not_json = records.iter().find(|r| r["reason"] == "not_json").unwrap();
    assert_eq!(not_json["stage"], "rules");
    let sample_lines = std::fs::read_to_string(repo_root().join("events/sample/first-500.ndjson"))
        .unwrap()
        .lines()
        .count();
    let last_line = format!("input.ndjson:{}", sample_lines + 1);
    assert!(
        not_json["source"].as_str().unwrap().ends_with(&last_line),
        "{not_json:#}"
    );
    let raw = json(&case.cmd(
        "errors",
        "partial",
        &["--json", "--raw", "--reason", "not_json"],
        &[],
    ));
    assert_eq!(raw["records"][0]["raw"], "this line is not JSON");

    // A dry run with the fixed directory says what would happen, and changes nothing.
    let outbox_before = case.outbox_events("segment");
    let globex_records = records.iter().filter(|r| r["tenant_id"] == "globex").count() as u64;
    let dry = json(&case.cmd(
        "replay",
        "full",
        &["--tenant", "globex", "--dry-run", "--json"],
        &[],
    ));
    assert_eq!(n(&dry["selected"]), globex_records);
    assert_eq!(
        n(&dry["outcomes"]["would_replay"]),
        unknown_globex(records),
        "{dry:#}"
    );
    // Records that failed for another reason still fail, and say why.
    let other_reasons = globex_records - unknown_globex(records);
    assert_eq!(
        n(&dry["outcomes"]["failed:invalid_event_time"]),
        other_reasons,
        "{dry:#}"
    );
    assert_eq!(case.stored("globex"), 0);
    assert!(case.objects("Replayed/").is_empty());
    assert_eq!(case.outbox_events("segment"), outbox_before);

    // The replay stores them, with balanced accounting.
    let first = json(&case.cmd("replay", "full", &["--tenant", "globex", "--json"], &[]));
    assert_eq!(first["accounting"]["balanced"], true, "{first:#}");
    assert_eq!(n(&first["selected"]), globex_records);
    let stored = n(&first["outcomes"]["stored"]);
    assert_eq!(
        stored + n(&first["outcomes"]["duplicate"]),
        unknown_globex(records),
        "{first:#}"
    );
    assert_eq!(n(&first["outcomes"]["failed:invalid_event_time"]), other_reasons);
    assert_eq!(case.stored("globex"), stored);
    assert!(case.outbox_events("segment") > outbox_before);

    // A second replay of the records the current code accepts stores nothing new: every one
    // is a duplicate.
    let second = json(&case.cmd(
        "replay",
        "full",
        &["--tenant", "globex", "--reason", "passes_now", "--json"],
        &[],
    ));
    assert_eq!(second["accounting"]["balanced"], true);
    assert_eq!(
        second["outcomes"],
        serde_json::json!({"duplicate": unknown_globex(records)}),
        "{second:#}"
    );
    assert_eq!(case.stored("globex"), stored);

    // The originals are kept and marked; `--pending` shows only what still fails.
    let after = json(&case.cmd("errors", "full", &["--json", "--tenant", "globex"], &[]));
    let after = after["records"].as_array().unwrap();
    assert_eq!(after.len() as u64, globex_records);
    assert!(after.iter().all(|r| r["replayed_at"].is_string()));
    let pending = json(&case.cmd(
        "errors",
        "full",
        &["--json", "--tenant", "globex", "--pending"],
        &[],
    ));
    let pending = pending["records"].as_array().unwrap();
    assert_eq!(pending.len() as u64, other_reasons, "{pending:#?}");
    assert!(pending.iter().all(|r| r["reason"] == "invalid_event_time"));
}

/// Records the run failed for `globex`, the tenant missing from the directory.
fn unknown_globex(records: &[Value]) -> u64 {
    records
        .iter()
        .filter(|r| r["tenant_id"] == "globex" && r["reason"] == "unknown_tenant")
        .count() as u64
}

#[test]
fn an_interrupted_replay_resumes_without_doubles() {
    let case = Case::new("resume");
    case.run(&[], &[]);
    let other = Case::new("resume-whole");
    other.run(&[], &[]);
    let whole = json(&other.cmd("replay", "full", &["--tenant", "globex", "--json"], &[]));
    let part = json(&case.cmd(
        "replay",
        "full",
        &["--tenant", "globex", "--json", "--max-objects", "5"],
        &[],
    ));
    assert_eq!(part["interrupted"], true);
    assert_eq!(n(&part["objects"]), 5);
    assert_eq!(part["accounting"]["balanced"], true);
    let rest = json(&case.cmd("replay", "full", &["--tenant", "globex", "--json"], &[]));
    assert_eq!(rest["interrupted"], false);
    assert_eq!(n(&rest["resumed_objects"]), 5);
    // The resumed replay accounts for the whole selection, exactly as one uninterrupted run.
    assert_eq!(rest["outcomes"], whole["outcomes"], "{rest:#} {whole:#}");
    assert_eq!(rest["selected"], whole["selected"]);
    assert_eq!(case.stored("globex"), n(&whole["outcomes"]["stored"]));
    // And it forwarded exactly what the uninterrupted replay did: no event twice.
    assert_eq!(dedup_ids(&case), dedup_ids(&other));
    // The progress marker is gone once the replay finished.
    assert!(case.objects("State/replay/").is_empty());
}

#[test]
fn bad_input_gets_a_clear_message_and_loses_nothing() {
    let case = Case::new("bad");
    case.run(&[], &[]);
    let bucket = case.bucket();
    // A corrupt error object (truncated gzip) and a writer dead letter whose tenant is gone.
    std::fs::create_dir_all(bucket.join("Error/writer/Data/x")).unwrap();
    std::fs::write(
        bucket.join("Error/writer/Data/x/corrupt.gz.ndjson"),
        [0x1f, 0x8b, 8, 0, 1, 2],
    )
    .unwrap();
    let ghost = r#"{"stage":"writer","reason":"store_rejected","detail":"refused","source_bucket":"local","source_key":"Data/x/y.gz","line":3,"tenant_id":"ghost","record":"{\"tenant_id\":\"ghost\"}"}"#;
    std::fs::write(
        bucket.join("Error/writer/Data/x/ghost.gz.ndjson"),
        format!("{ghost}\n"),
    )
    .unwrap();

    let errors = json(&case.cmd("errors", "full", &["--json", "--stage", "writer"], &[]));
    let records = errors["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{errors:#}");
    let corrupt = records
        .iter()
        .find(|r| r["reason"] == "corrupt_error_record")
        .unwrap();
    assert!(
        corrupt["detail"].as_str().unwrap().contains("cannot be read"),
        "{corrupt:#}"
    );
    let gone = records.iter().find(|r| r["tenant_id"] == "ghost").unwrap();
    assert!(
        gone["detail"].as_str().unwrap().contains("no longer has tenant"),
        "{gone:#}"
    );
    assert_eq!(gone["source"], "Data/x/y.gz:3");

    let replay = json(&case.cmd("replay", "full", &["--json", "--stage", "writer"], &[]));
    assert_eq!(replay["accounting"]["balanced"], true);
    assert_eq!(
        n(&replay["outcomes"]["failed:corrupt_error_record"]),
        1,
        "{replay:#}"
    );
    assert_eq!(n(&replay["outcomes"]["failed:unknown_tenant"]), 1, "{replay:#}");
    assert_eq!(case.stored("ghost"), 0);
    // Nothing was deleted: both originals are still there.
    assert!(bucket.join("Error/writer/Data/x/corrupt.gz.ndjson").exists());
    assert!(bucket.join("Error/writer/Data/x/ghost.gz.ndjson").exists());
    let still = json(&case.cmd(
        "errors",
        "full",
        &["--json", "--stage", "writer", "--pending"],
        &[],
    ));
    assert_eq!(still["records"].as_array().unwrap().len(), 2);

    // Filters that cannot select anything are refused or explained.
    for (args, message) in [
        (vec!["--reason", "Not-A-Code"], "is not a reason code"),
        (vec!["--stage", "storage"], "unknown stage"),
        (vec!["--since", "yesterday"], "not an RFC 3339 time"),
    ] {
        let output = case.cmd("errors", "full", &args, &[]);
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(message),
            "{args:?}"
        );
    }
    let unknown = case.cmd("errors", "full", &["--reason", "no_such_reason"], &[]);
    assert!(unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("no failed record has reason \"no_such_reason\"")
            && stderr.contains("unknown_tenant"),
        "{stderr}"
    );
}

#[test]
fn a_writer_dead_letter_is_stored_by_the_writer_once_replayed() {
    let case = Case::new("writer");
    case.run(&[], &[]);
    // A record the store refused at the time (say, while a table was being changed): an
    // enriched event exactly as the writer read it, with an event id of its own.
    let object = case.objects("Data/").into_iter().next().unwrap();
    let bytes = LocalBucket::open(case.bucket()).unwrap().get(&object).unwrap();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    let mut event: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    event["metadata"]["event_id"] = Value::from("5f0c4a8e-0d0b-4c2a-9a51-7f7c1d2e3b4a");
    let tenant = event["metadata"]["tenant_id"].as_str().unwrap().to_owned();
    let letter = serde_json::json!({
        "stage": "writer", "reason": "store_unavailable", "detail": "the store did not answer",
        "source_bucket": "local", "source_key": "Data/2026/x.gz", "line": 1,
        "tenant_id": tenant, "record": event.to_string(),
    });
    // A plain file, as a bucket of an older run kept every object: replay reads it all the same.
    let dir = case.bucket().join("Error/writer/Data/2026");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x.gz.ndjson"), format!("{letter}\n")).unwrap();
    let before = case.stored(&tenant);

    let first = json(&case.cmd("replay", "full", &["--json", "--stage", "writer"], &[]));
    assert_eq!(first["outcomes"], serde_json::json!({"stored": 1}), "{first:#}");
    assert_eq!(case.stored(&tenant), before + 1);
    // The writer read it from a replay object, the way the deployed writer does.
    let replays = case.objects("Replay/writer/");
    assert_eq!(replays.len(), 1);
    let name = replays[0].rsplit('/').next().unwrap();
    assert!(name.starts_with("x.gz-") && name.ends_with(".gz"), "{name}");
    let second = json(&case.cmd("replay", "full", &["--json", "--stage", "writer"], &[]));
    assert_eq!(
        second["outcomes"],
        serde_json::json!({"duplicate": 1}),
        "{second:#}"
    );
    assert_eq!(case.stored(&tenant), before + 1);
}

/// Every dedup id in the Segment outbox, sorted, with repeats.
fn dedup_ids(case: &Case) -> Vec<String> {
    let index = std::fs::read_to_string(case.dir.join("state/outbox/segment/requests.ndjson")).unwrap();
    let mut ids: Vec<String> = index
        .lines()
        .flat_map(|l| {
            let request: Value = serde_json::from_str(l).unwrap();
            let ids = request["dedup_ids"].as_array().unwrap().clone();
            ids.into_iter().map(|v| v.as_str().unwrap().to_owned())
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn events_lost_while_a_destination_was_down_are_delivered_once_by_a_replay() {
    let sim = metrics_vendorsim::Sim::start_local().await.unwrap();
    let endpoint = sim.endpoint();
    let env = [
        ("SEGMENT_WRITE_KEY", "test-write-key"),
        ("SEGMENT_ENDPOINT", endpoint.as_str()),
        ("MIXPANEL_ENABLED", "false"),
        ("RETRY_MAX_ATTEMPTS", "1"),
        ("RETRY_BASE_MS", "1"),
        ("RETRY_MAX_MS", "2"),
    ];
    // Segment answers 503 to everything while the run forwards.
    let down: metrics_vendorsim::Fault = serde_json::from_value(serde_json::json!({
        "target": "segment", "status": 503, "count": 100000
    }))
    .unwrap();
    sim.client().fault(&down).await.unwrap();
    let case = Case::new("down");
    let full = case.tenants("full");
    let run = {
        let input = case.dir.join("input.ndjson");
        std::fs::copy(repo_root().join("events/sample/first-500.ndjson"), &input).unwrap();
        let state = case.state();
        json(&metrics_lake(
            &[
                "run",
                input.to_str().unwrap(),
                "--json",
                "--forward",
                "live",
                "--state-dir",
                &state,
                "--tenants",
                &full,
            ],
            &env,
        ))
    };
    let dead: u64 = run["forward"]["segment"]["dead_lettered"]
        .as_object()
        .unwrap()
        .values()
        .map(n)
        .sum();
    assert_eq!(dead, n(&run["transform"]["ok"]), "{run:#}");
    let errors = json(&case.cmd("errors", "full", &["--json", "--stage", "forwarder"], &[]));
    assert_eq!(errors["records"].as_array().unwrap().len() as u64, dead);
    assert!(
        errors["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["destination"] == "segment")
    );

    // Segment is back: the replay delivers every event once.
    sim.client().reset().await.unwrap();
    let replay = json(&case.cmd(
        "replay",
        "full",
        &["--json", "--stage", "forwarder", "--forward", "live"],
        &env,
    ));
    assert_eq!(replay["accounting"]["balanced"], true);
    assert_eq!(n(&replay["outcomes"]["delivered"]), dead, "{replay:#}");
    let state = sim.client().state().await.unwrap();
    let stored = n(&run["outcomes"]["stored"]);
    assert_eq!(
        state.segment.accepted.len() as u64,
        stored,
        "each distinct event once"
    );
    // A second replay sends the same message ids: Segment keeps one copy of each.
    json(&case.cmd(
        "replay",
        "full",
        &["--json", "--stage", "forwarder", "--forward", "live"],
        &env,
    ));
    let state = sim.client().state().await.unwrap();
    assert_eq!(state.segment.accepted.len() as u64, stored);
}

/// A replay killed part-way (SIGKILL, no chance to tidy up) resumes from its progress marker:
/// the store ends with exactly the rows one uninterrupted replay gives, and the resumed run
/// still accounts for the whole selection.
#[test]
fn a_replay_killed_part_way_resumes_and_stores_nothing_twice() {
    let case = Case::new("killed");
    case.run(&[], &[]);
    let reference = Case::new("killed-reference");
    reference.run(&[], &[]);
    let whole = json(&reference.cmd("replay", "full", &["--tenant", "globex", "--json"], &[]));

    let (state, tenants) = (case.state(), case.tenants("full"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_metrics-lake"))
        .args([
            "replay",
            "--tenant",
            "globex",
            "--json",
            "--state-dir",
            &state,
            "--tenants",
            &tenants,
        ])
        .current_dir(repo_root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has replayed something (its progress marker exists), or as it ends.
    let bucket = LocalBucket::open(case.bucket()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let started = bucket
            .list("State/replay/")
            .is_ok_and(|markers| !markers.is_empty());
        if started || child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();

    let resumed = json(&case.cmd("replay", "full", &["--tenant", "globex", "--json"], &[]));
    assert_eq!(resumed["accounting"]["balanced"], true, "{resumed:#}");
    assert_eq!(resumed["selected"], whole["selected"], "{resumed:#} {whole:#}");
    assert_eq!(case.stored("globex"), reference.stored("globex"));
    assert_eq!(case.stored("globex"), n(&whole["outcomes"]["stored"]));
    // Every event the reference forwarded was forwarded here too (an object being sent when
    // the process died is sent again on resume: its ids repeat, which the vendors drop).
    let (ids, reference_ids) = (dedup_ids(&case), dedup_ids(&reference));
    let distinct = |ids: &[String]| ids.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct(&ids), distinct(&reference_ids));
}
