//! `metrics-telemetry`: what metrics-lake's Lambda functions write to stdout, where Lambda
//! sends it to CloudWatch Logs: JSON log lines, and embedded-metric-format (EMF) documents
//! that CloudWatch turns into metrics. This crate sets up logging, builds the one EMF envelope
//! ([`count_document`]) every function fills with its own dimensions and counts, and prints
//! the documents.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// JSON logs on stdout. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's logging
/// configuration) or `RUST_LOG`, default `info`.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".to_owned());
    let _ = tracing::subscriber::set_global_default(json_subscriber(std::io::stdout, &level));
}

/// The log format: one flat JSON object per line, no timestamp (Lambda stamps every line).
/// (metrics-enrich writes its per-record rejection lines in this format itself, in one write
/// per batch; a test there compares them with this subscriber's.)
pub fn json_subscriber<W>(writer: W, level: &str) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// CloudWatch namespace of every metric the functions emit.
pub const NAMESPACE: &str = "MetricsLake";

/// One EMF document: a single dimension set (`dimensions`, names and values, in order) and
/// `counts` (metric names and values, all of unit `Count`), at `timestamp_ms` (epoch
/// milliseconds), in [`NAMESPACE`]. Every metric and dimension the `_aws` metadata names gets
/// its value as a top-level member, as the format requires:
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
pub fn count_document(
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    counts: &[(&str, u64)],
) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut document = Map::with_capacity(1 + dimensions.len() + counts.len());
    document.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": counts
                    .iter()
                    .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        document.insert((*name).to_owned(), Value::from(*value));
    }
    for (name, count) in counts {
        document.insert((*name).to_owned(), Value::from(*count));
    }
    Value::Object(document)
}

/// The document for an invocation that failed as a whole (`InvocationErrors`, dimensions
/// `Stage` and `ErrorType`): the event source retries it.
pub fn invocation_error_document(stage: &str, error_type: &str, timestamp_ms: i64) -> serde_json::Value {
    count_document(
        timestamp_ms,
        &[("Stage", stage), ("ErrorType", error_type)],
        &[("InvocationErrors", 1)],
    )
}

/// Set by [`capture_in_tests`].
static THROUGH_TEST_HARNESS: AtomicBool = AtomicBool::new(false);

/// Makes [`emit`] print through `print!`, which the Rust test harness captures per test and
/// shows only for a failing one; a direct write to stdout is not captured and lands among the
/// test results. For tests only: `print!` panics if stdout is closed, the direct write does not.
pub fn capture_in_tests() {
    THROUGH_TEST_HARNESS.store(true, Ordering::Relaxed);
}

/// Prints EMF documents, one line each, in one write.
pub fn emit(documents: &[serde_json::Value]) {
    let mut buf = Vec::with_capacity(512 * documents.len());
    for doc in documents {
        if serde_json::to_writer(&mut buf, doc).is_ok() {
            buf.push(b'\n');
        }
    }
    if THROUGH_TEST_HARNESS.load(Ordering::Relaxed) {
        print!("{}", String::from_utf8_lossy(&buf));
        return;
    }
    // Nothing useful can be done if stdout is gone.
    let _ = std::io::stdout().lock().write_all(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_count_document_is_the_emf_envelope_with_every_named_value() {
        let document = count_document(
            1_000,
            &[("Stage", "writer"), ("Reason", "not_json")],
            &[("A", 2), ("B", 0)],
        );
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_000,
                    "CloudWatchMetrics": [{
                        "Namespace": "MetricsLake",
                        "Dimensions": [["Stage", "Reason"]],
                        "Metrics": [{"Name": "A", "Unit": "Count"}, {"Name": "B", "Unit": "Count"}],
                    }],
                },
                "Stage": "writer",
                "Reason": "not_json",
                "A": 2,
                "B": 0,
            })
        );
    }
}
