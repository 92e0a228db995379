#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! `metrics-lake mappings …` as a user runs it: the built binary, from the repository root,
//! checking exit codes and what is printed where.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metrics-lake"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file in the system temp directory, unique to this test process, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("metrics-lake-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn check_passes_on_the_shipped_mapping_file() {
    let o = run(&["mappings", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("infra/metrics.toml: ok, 7 rules"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_exits_1_with_every_problem_on_a_bad_file() {
    let bad = TempFile::new(
        "bad.toml",
        r#"
[[metric]]
name = "no_tenant"
pattern = { source = ["s"], detail-type = ["t"] }

[[metric]]
name = "bad_default"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
metadata.title = { from = "$.detail.title", type = "text", default = 3 }

[[metric]]
name = "bad_agg"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
data.duration_ms = { from = "$.detail.duration_ms", type = "number", agg = "average" }
"#,
    );
    let o = run(&["mappings", "check", "--file", bad.path()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("error[missing_tenant_id] in metric \"no_tenant\""),
        "{err}"
    );
    assert!(
        err.contains("error[invalid_default] in metric \"bad_default\""),
        "{err}"
    );
    assert!(
        err.contains("error[invalid_aggregation] in metric \"bad_agg\": data.duration_ms: agg = \"average\""),
        "{err}"
    );
    assert!(err.contains("3 problems; nothing was rendered"), "{err}");
    assert_eq!(stdout(&o), "");
}

#[test]
fn check_reports_an_unknown_field_with_its_line() {
    let bad = TempFile::new(
        "unknown.toml",
        "[[metric]]\nname = \"m\"\npatern = { source = [\"s\"] }\n",
    );
    let o = run(&["mappings", "check", "--file", bad.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error[unknown_field] at line 3"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_missing_mapping_file_is_an_error_not_a_panic() {
    let o = run(&["mappings", "check", "--file", "does/not/exist.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read does/not/exist.toml"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn render_prints_the_committed_rules_document() {
    let o = run(&["mappings", "render"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let committed = std::fs::read_to_string(repo_root().join("infra/generated/rules.json")).unwrap();
    assert_eq!(stdout(&o), committed);
}

#[test]
fn render_out_writes_the_document_to_a_file() {
    let target = TempFile::new("rules.json", "");
    let o = run(&["mappings", "render", "--out", target.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote 7 rules"), "{}", stderr(&o));
    let written = std::fs::read_to_string(&target.0).unwrap();
    let committed = std::fs::read_to_string(repo_root().join("infra/generated/rules.json")).unwrap();
    assert_eq!(written, committed);
}

#[test]
fn render_refuses_a_file_that_fails_its_checks() {
    let bad = TempFile::new(
        "render-bad.toml",
        "[[metric]]\nname = \"m\"\npattern = { source = [\"s\"], detail-type = [\"t\"] }\n",
    );
    let o = run(&["mappings", "render", "--file", bad.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
}

#[test]
fn apply_prints_the_unified_event_of_the_matching_rule() {
    let o = run(&[
        "mappings",
        "apply",
        "--event",
        "events/mappings/findings_upload_completed.json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("rule findings_upload_completed matched"), "{out}");
    assert!(
        out.contains(r#""new_findings_count":3,"existing_findings_count":41"#),
        "{out}"
    );
    assert!(out.contains("valid unified event"), "{out}");
}

#[test]
fn apply_maps_the_article_event_without_its_optional_dimensions() {
    let o = run(&[
        "mappings",
        "apply",
        "--event",
        "events/mappings/article-findings-uploaded.json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("rule findings_upload_completed matched"), "{out}");
    assert!(
        out.contains(r#"{"metric_name":"findings_upload_completed","metadata":{"tenant_id":"acme-prod","event_id":"0b9c7d3e-2f1a-4e8b-9c6d-5a4b3c2d1e0f"},"data":{"event_time":"2026-11-23T10:00:00Z","new_findings_count":7,"existing_findings_count":12}}"#),
        "{out}"
    );
    assert!(out.contains("  valid unified event"), "{out}");
}

#[test]
fn apply_exits_1_and_names_the_reason_when_the_event_cannot_be_mapped() {
    let o = run(&[
        "mappings",
        "apply",
        "--event",
        "events/mappings/awkward-missing-measure.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(
            "NOT MAPPED: missing_field (data.existing_findings_count: $.detail.existing_findings_count is missing)"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn apply_matches_no_rule_for_an_unrelated_event() {
    let o = run(&[
        "mappings",
        "apply",
        "--event",
        "events/mappings/unmatched-user-signed-in.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("no rule matches"), "{out}");
    assert!(!out.contains("matched;"), "{out}");
}

#[test]
fn apply_explains_why_no_rule_matches() {
    let o = run(&[
        "mappings",
        "apply",
        "--event",
        "events/mappings/awkward-cancelled-check.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("no rule matches"), "{out}");
    assert!(
        out.contains(r#"pr_check_completed: detail.conclusion must match [{"anything-but":["cancelled","skipped"]}], but the event has "cancelled""#),
        "{out}"
    );
}

#[test]
fn apply_rejects_input_that_is_not_an_event() {
    let not_json = TempFile::new("not-json.json", "{\"id\": ");
    let o = run(&["mappings", "apply", "--event", not_json.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the event is not JSON"), "{}", stderr(&o));
    let o = run(&["mappings", "apply", "--event", "no/such/event.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read no/such/event.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let o = run(&["mappings", "apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--event"), "{}", stderr(&o));
    let o = run(&["mappings", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    for command in ["check", "render", "apply"] {
        assert!(stdout(&o).contains(command), "{}", stdout(&o));
    }
}
