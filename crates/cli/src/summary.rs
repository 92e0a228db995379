//! The human-readable summary of a local run.

use std::collections::BTreeMap;
use std::path::Path;

use metrics_local::pipeline::{Accounting, Summary};

use crate::output::out;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(indent: usize, label: &str, n: u64) {
    out(format!(
        "{:indent$}{label:<38}{:>12}",
        "",
        thousands(n),
        indent = indent
    ));
}

fn rows<K: std::fmt::Display>(indent: usize, prefix: &str, counts: &BTreeMap<K, u64>) {
    for (k, n) in counts {
        row(indent, &format!("{prefix}{k}"), *n);
    }
}

pub fn print(summary: &Summary, accounting: &Accounting, elapsed: f64, state_dir: &Path) {
    let rate = if elapsed > 0.0 {
        summary.events_read as f64 / elapsed
    } else {
        0.0
    };
    out(format!(
        "metrics-lake run: {} events in {elapsed:.1} s ({} events/s)",
        thousands(summary.events_read),
        thousands(rate as u64)
    ));
    out("");
    row(2, "events read", summary.events_read);
    if summary.not_events > 0 {
        row(4, "not EventBridge events", summary.not_events);
    }
    row(4, "unmatched (no rule)", summary.unmatched);
    row(4, "matched", summary.matched);
    row(4, "unified events produced", summary.records);
    out("  transform (metrics-enrich)");
    row(4, "ok", summary.transform.ok);
    rows(4, "failed: ", &summary.transform.failed);
    rows(4, "dropped: ", &summary.transform.dropped);
    out("  objects");
    row(4, "Data/", summary.objects.data);
    row(4, "Error/processing-failed/", summary.objects.processing_failed);
    out("  store (metrics-writer, embedded store)");
    rows(4, "written: ", &summary.store.written);
    row(4, "duplicates (already stored)", summary.store.duplicates);
    rows(4, "dead-lettered: ", &summary.store.dead_lettered);
    rows(4, "failed: ", &summary.store.failed);
    out("  forward (metrics-forwarder)");
    if summary.forward.is_empty() {
        out("    no destination configured");
    }
    for (destination, counts) in &summary.forward {
        row(4, &format!("{destination}: events"), counts.events);
        row(4, &format!("{destination}: requests"), counts.requests);
        rows(
            4,
            &format!("{destination}: dead-lettered: "),
            &counts.dead_lettered,
        );
    }
    out("");
    let verdict = if accounting.balanced {
        "every input event is accounted for"
    } else {
        "COUNTS DO NOT ADD UP"
    };
    out(format!(
        "  accounting: {verdict}: {} outcomes for {} input events{}",
        thousands(accounting.outcomes_total),
        thousands(accounting.input_events),
        if accounting.extra_records > 0 {
            format!(
                " (+{} from overlapping rules)",
                thousands(accounting.extra_records)
            )
        } else {
            String::new()
        }
    ));
    rows(4, "", &summary.outcomes.by_key());
    if !summary.stage_errors.is_empty() {
        out("  objects a stage could not process");
        for failure in &summary.stage_errors {
            out(format!(
                "    {} {}: {} ({} records): {}",
                failure.stage,
                failure.key,
                failure.reason,
                thousands(failure.records),
                failure.message
            ));
        }
    }
    out(format!(
        "  state: {} (bucket/, store.db, outbox/, last-run.json)",
        state_dir.display()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
