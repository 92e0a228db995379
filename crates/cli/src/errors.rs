//! `metrics-lake errors`: every record that did not become `stored` or `duplicate`, read from
//! the local state directory or the deployed bucket, with its stage, reason and where it came
//! from. Counts per reason by default; `--records` for one row per record; `--json` for one
//! JSON object, `{"records":[…],"counts":{<reason>: n},"counts_by_stage":{…}}`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::Args;
use metrics_local::recover::{ErrorKind, ErrorRecord, Objects, RecordJson, Scanner};

use crate::output::{err, out};
use crate::recover::{FilterArgs, Source, SourceArgs, now};
use crate::summary::thousands;

#[derive(Debug, Args)]
pub struct ErrorsArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// One row per record, not only the counts.
    #[arg(long)]
    records: bool,
    /// Print one JSON object: `{"records":[…],"counts":{…}}`.
    #[arg(long)]
    json: bool,
    /// Include each record's raw bytes (text, or base64 when not UTF-8).
    #[arg(long)]
    raw: bool,
}

pub fn run(args: ErrorsArgs) -> ExitCode {
    match crate::runtime::block_on(list(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

async fn list(args: &ErrorsArgs) -> Result<(), String> {
    let filter = args.filter.filter().map_err(|e| e.to_string())?;
    let (enricher, _) = args.source.enricher().await?;
    let source = args.source.open().await?;
    let alerts = crate::recover_alerts::alert_store(&args.source, &source)?;
    let alerts = alerts.as_deref();
    match &source {
        Source::Local { bucket, .. } => {
            let scanner = Scanner {
                objects: bucket,
                enricher: &enricher,
                now: now(),
            };
            print(args, &filter, &scanner, alerts).await
        }
        Source::Deployed { objects: s3, .. } => {
            let scanner = Scanner {
                objects: s3,
                enricher: &enricher,
                now: now(),
            };
            print(args, &filter, &scanner, alerts).await
        }
    }
}

/// Per stage, per reason.
type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// Writes the selected records as they come, and counts them.
struct Listing<'a> {
    args: &'a ErrorsArgs,
    filter: &'a metrics_local::recover::Filter,
    counts: Counts,
    seen_reasons: BTreeSet<String>,
    first: bool,
}

impl Listing<'_> {
    fn record(&mut self, record: &ErrorRecord) -> Result<(), String> {
        self.seen_reasons.insert(record.reason.as_str().to_owned());
        if !self.filter.matches(record) {
            return Ok(());
        }
        *self
            .counts
            .entry(record.stage.name().to_owned())
            .or_default()
            .entry(record.reason.as_str().to_owned())
            .or_insert(0) += 1;
        if self.args.json {
            let json = RecordJson {
                record,
                with_raw: self.args.raw,
            };
            let text = serde_json::to_string(&json).map_err(|e| e.to_string())?;
            print_raw(&format!("{}{text}", if self.first { "" } else { "," }));
            self.first = false;
        } else if self.args.records {
            print_row(record, self.args.raw);
        }
        Ok(())
    }
}

async fn print<O: Objects>(
    args: &ErrorsArgs,
    filter: &metrics_local::recover::Filter,
    scanner: &Scanner<'_, O>,
    alerts: Option<&dyn metrics_alerts::AlertStore>,
) -> Result<(), String> {
    let mut listing = Listing {
        args,
        filter,
        counts: Counts::new(),
        seen_reasons: BTreeSet::new(),
        first: true,
    };
    if args.json {
        // Streamed: the records of a large bucket never sit in memory together.
        print_raw("{\"records\":[");
    }
    let objects = scanner.list(&ErrorKind::ALL).await.map_err(|e| e.to_string())?;
    for (_, kind, listed) in &objects.entries {
        let object = scanner
            .read(&objects, *kind, listed)
            .await
            .map_err(|e| e.to_string())?;
        for record in &object.records {
            listing.record(record)?;
        }
    }
    if let Some(alerts) = alerts {
        let everything = metrics_local::recover::Filter::default();
        for (_, _, record) in crate::recover_alerts::selected(alerts, &everything).await? {
            listing.record(&record)?;
        }
    }
    let Listing {
        counts, seen_reasons, ..
    } = listing;
    for reason in &filter.reasons {
        if !seen_reasons.contains(reason) {
            let present: Vec<&str> = seen_reasons.iter().map(String::as_str).collect();
            err(format!(
                "note: no failed record has reason {reason:?} (reasons present: {})",
                if present.is_empty() {
                    "none".to_owned()
                } else {
                    present.join(", ")
                }
            ));
        }
    }
    let by_reason = by_reason(&counts);
    if args.json {
        let by_reason = serde_json::to_string(&by_reason).map_err(|e| e.to_string())?;
        let by_stage = serde_json::to_string(&counts).map_err(|e| e.to_string())?;
        out(format!(
            "],\"counts\":{by_reason},\"counts_by_stage\":{by_stage}}}"
        ));
    } else {
        print_counts(&counts, scanner.objects.describe());
    }
    Ok(())
}

fn by_reason(counts: &Counts) -> BTreeMap<&str, u64> {
    let mut totals = BTreeMap::new();
    for reasons in counts.values() {
        for (reason, n) in reasons {
            *totals.entry(reason.as_str()).or_insert(0) += n;
        }
    }
    totals
}

fn print_raw(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_row(record: &ErrorRecord, raw: bool) {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    out(format!(
        "{:<9} {:<28} tenant={} metric={}{} at={} from={} in={}:{}{}\n    {}",
        record.stage.name(),
        record.reason.as_str(),
        dash(&record.tenant_id),
        dash(&record.metric),
        record
            .destination
            .as_ref()
            .map(|d| format!(" destination={d}"))
            .unwrap_or_default(),
        record
            .at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".to_owned()),
        dash(&record.source),
        record.object,
        record.line,
        record
            .replayed_at
            .map(|t| format!(" replayed_at={}", t.to_rfc3339()))
            .unwrap_or_default(),
        record.detail,
    ));
    if raw {
        out(format!("    {}", String::from_utf8_lossy(&record.raw)));
    }
}

fn print_counts(counts: &Counts, location: String) {
    let total: u64 = counts.values().flat_map(|r| r.values()).sum();
    out(format!(
        "metrics-lake errors: {} failed records in {location}",
        thousands(total)
    ));
    for (stage, reasons) in counts {
        out(format!("  {stage}"));
        for (reason, n) in reasons {
            out(format!("    {reason:<36}{:>12}", thousands(*n)));
        }
    }
    if total > 0 {
        out("\n`--records` lists them; `metrics-lake replay --dry-run` says what a replay would do now.");
    }
}
