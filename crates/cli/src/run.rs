//! `metrics-lake run`: the whole pipeline on this machine, on the bundled sample data set or
//! on EventBridge events from files or standard input. Every stage is the code its Lambda runs
//! (see `metrics_local::pipeline`); state lives in one directory that is safe to delete.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use metrics_enrich::Enricher;
use metrics_enrich::config::Config as EnrichConfig;
use metrics_local::bucket::LocalBucket;
use metrics_local::firehose::FirehoseConfig;
use metrics_local::live::LiveForwarder;
use metrics_local::origin::Origin;
use metrics_local::outbox::{Forwarding, Outbox};
use metrics_local::pipeline::{Pipeline, StageTimes, Summary};
use metrics_local::sample::{SampleConfig, SampleEvents};
use metrics_local::stages::EmbeddedWriter;
use metrics_mapping::RuleSet;
use metrics_writer::write::WriteOptions;

use crate::input;
use crate::output::{err, out};
use crate::state::StateDir;

/// Store writes (one per object) per SQLite transaction in a run.
const STORE_BATCH_WRITES: usize = 512;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// EventBridge events: NDJSON or JSON-array files (gzip or not), directories of them, or
    /// `-` for standard input. Without any, the bundled sample data set.
    events: Vec<String>,
    #[command(flatten)]
    state: crate::state::StateArgs,
    /// The metric mapping file.
    #[arg(long, default_value = "infra/metrics.toml")]
    mappings: PathBuf,
    /// The tenant directory: a JSON object tenant_id -> display name.
    #[arg(long, default_value = "events/sample/tenants.json")]
    tenants: PathBuf,
    /// `metadata.environment` of every event.
    #[arg(long, default_value = "local")]
    environment: String,
    /// What enrichment does with invalid records (as INVALID_RECORD_POLICY).
    #[arg(long, value_enum, default_value_t = Policy::Fail)]
    invalid_record_policy: Policy,
    /// Firehose processor buffer: bytes, and seconds.
    #[arg(long, default_value_t = 1_000_000)]
    processor_buffer_bytes: usize,
    #[arg(long, default_value_t = 60)]
    processor_interval_secs: i64,
    /// Firehose S3 destination buffer: bytes, and seconds.
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    buffer_bytes: usize,
    #[arg(long, default_value_t = 60)]
    buffer_interval_secs: i64,
    /// Events in the sample data set when no input is given.
    #[arg(long, default_value_t = 100_000)]
    sample_events: u64,
    /// Forwarding: `outbox` writes the exact request bodies under the state directory; `live`
    /// sends them to the endpoints and credentials the forwarder's environment variables
    /// configure (SEGMENT_ENDPOINT, SEGMENT_WRITE_KEY, MIXPANEL_ENDPOINT, …).
    #[arg(long, value_enum, default_value_t = ForwardMode::Outbox)]
    forward: ForwardMode,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print where the time went, stage by stage, on standard error.
    #[arg(long)]
    timings: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForwardMode {
    Outbox,
    Live,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Policy {
    Fail,
    Drop,
}

pub fn run(args: RunArgs) -> ExitCode {
    match crate::runtime::block_on(run_pipeline(&args)) {
        Ok((summary, elapsed)) => report(&args, &summary, elapsed),
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

async fn run_pipeline(args: &RunArgs) -> Result<(Summary, f64), String> {
    // Inputs and configuration first, so a typo leaves no state behind.
    let sources = input::sources(&args.events).map_err(|e| e.to_string())?;
    let rules = load_rules(&args.mappings)?;
    // Enrich maps what the rules deliver with the same mapping file the rules come from.
    let enricher = enricher(args, std::sync::Arc::new(rules.mapping().clone())).await?;
    let state = StateDir::open(&args.state.state_dir)?;
    let bucket = LocalBucket::open(state.bucket()).map_err(|e| e.to_string())?;
    let store = state.open_store()?;
    // A run writes tens of thousands of objects of a few records: their writes share
    // transactions, committed at the end at the latest.
    store
        .batch_writes(STORE_BATCH_WRITES)
        .map_err(|e| format!("{}: {e}", state.store_path().display()))?;
    let writer = EmbeddedWriter::new(store, WriteOptions::default());
    let forwarder = forwarding(args.forward, &state, false).await?;
    let firehose = FirehoseConfig {
        processor_buffer_bytes: args.processor_buffer_bytes,
        processor_interval_ms: args.processor_interval_secs * 1000,
        destination_buffer_bytes: args.buffer_bytes,
        destination_interval_ms: args.buffer_interval_secs * 1000,
        ..FirehoseConfig::default()
    };
    // The store and forward stages on threads of their own, behind short queues.
    let mut pipeline = Pipeline::new(rules, firehose, enricher, bucket.clone(), writer, forwarder)
        .reading_on_threads()
        .map_err(|e| e.to_string())?;

    let progress = progress_bar(args);
    let started = Instant::now();
    if args.events.is_empty() {
        progress.set_message("sample data set");
        let sample = SampleConfig {
            events: args.sample_events,
            ..SampleConfig::default()
        };
        let input: Arc<str> = Arc::from("sample");
        for (i, e) in SampleEvents::new(sample).enumerate() {
            let origin = Origin::new(input.clone(), i as u64 + 1);
            pipeline
                .push_from(e.json.as_bytes(), Some(origin))
                .await
                .map_err(|e| e.to_string())?;
            progress.inc(1);
        }
    } else {
        for source in &sources {
            let input: Arc<str> = Arc::from(source.name());
            let mut events = input::open(source).map_err(|e| e.to_string())?;
            while let Some(event) = events.next() {
                let event = event.map_err(|e| e.to_string())?;
                let origin = Origin::new(input.clone(), events.position());
                pipeline
                    .push_from(&event, Some(origin))
                    .await
                    .map_err(|e| e.to_string())?;
                progress.inc(1);
            }
        }
    }
    progress.set_message("flushing buffers");
    pipeline.flush().await.map_err(|e| e.to_string())?;
    let times = pipeline.times();
    let threaded = pipeline.reads_on_threads();
    let (summary, writer, mut forwarding) = pipeline.finish().await.map_err(|e| e.to_string())?;
    // Objects and store writes are committed in batches: the last ones are committed here,
    // where a failure can still be reported (dropping them would commit them silently).
    writer
        .store()
        .commit()
        .map_err(|e| format!("{}: {e}", state.store_path().display()))?;
    bucket.sync().map_err(|e| e.to_string())?;
    let outbox_started = Instant::now();
    forwarding
        .flush()
        .map_err(|e| format!("writing the outbox index: {e}"))?;
    let outbox = outbox_started.elapsed();
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    if args.timings {
        print_timings(&times, threaded, outbox, started.elapsed());
    }
    state.save_summary(&summary)?;
    Ok((summary, elapsed))
}

/// The forward stage: the forwarder's own configuration (its environment variables: metric
/// selections, field policies, Mixpanel project), its requests written to the outbox (after
/// the ones there when `append`) or sent to the endpoints.
pub async fn forwarding(mode: ForwardMode, state: &StateDir, append: bool) -> Result<Forwarding, String> {
    let config =
        metrics_forwarder::Config::from_env().map_err(|e| format!("forwarder configuration: {e}"))?;
    Ok(match mode {
        ForwardMode::Outbox => {
            let outbox = if append {
                Outbox::appending(config, state.outbox())
            } else {
                Outbox::new(config, state.outbox())
            };
            Forwarding::Outbox(Box::new(outbox.map_err(|e| e.to_string())?))
        }
        ForwardMode::Live => {
            let live = LiveForwarder::new(config)
                .await
                .map_err(|e| format!("forwarder: {e}"))?;
            for (destination, why) in live.disabled() {
                err(format!("note: {destination} is disabled: {why}"));
            }
            Forwarding::Live(Box::new(live))
        }
    })
}

pub fn load_rules(path: &Path) -> Result<RuleSet, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (run from the repository root, or pass --mappings FILE)",
            path.display()
        )
    })?;
    RuleSet::from_toml(&text).map_err(|diagnostics| {
        let mut message = format!(
            "{} has problems; `metrics-lake mappings check` explains:",
            path.display()
        );
        for d in diagnostics {
            message.push_str(&format!("\n  {d}"));
        }
        message
    })
}

async fn enricher(
    args: &RunArgs,
    mapping: std::sync::Arc<metrics_mapping::Mapping>,
) -> Result<Enricher, String> {
    let policy = match args.invalid_record_policy {
        Policy::Fail => "fail",
        Policy::Drop => "drop",
    };
    let tenants = Tenants::File(args.tenants.clone());
    build_enricher(&tenants, &args.environment, policy, mapping).await
}

/// Where enrich finds tenants: a JSON file (`--tenants`), or the deployed DynamoDB table.
#[derive(Debug, Clone)]
pub enum Tenants {
    File(PathBuf),
    Table(String),
}

/// The enrich transformer as its Lambda is configured, with `mapping`.
pub async fn build_enricher(
    tenants: &Tenants,
    environment: &str,
    policy: &str,
    mapping: std::sync::Arc<metrics_mapping::Mapping>,
) -> Result<Enricher, String> {
    let (name, value) = match tenants {
        Tenants::File(path) if !path.exists() => {
            return Err(format!(
                "{}: no such tenant directory (pass --tenants FILE)",
                path.display()
            ));
        }
        Tenants::File(path) => ("TENANTS_FILE", path.to_string_lossy().into_owned()),
        Tenants::Table(table) => ("TENANTS_TABLE", table.clone()),
    };
    let config = EnrichConfig::from_lookup(|var| match var {
        v if v == name => Some(value.clone()),
        "ENVIRONMENT" => Some(environment.to_owned()),
        "INVALID_RECORD_POLICY" => Some(policy.to_owned()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    Enricher::from_config(&config, mapping)
        .await
        .map_err(|e| e.to_string())
}

/// The stage breakdown (`--timings`): the time each stage was busy, and its share of the run's
/// wall time. With the readers on their own threads, the shares of the threads overlap.
fn print_timings(times: &StageTimes, threaded: bool, outbox: Duration, total: Duration) {
    let read = total.saturating_sub(times.pushing(threaded) + outbox);
    let (pushing, reading) = if threaded {
        ("events thread: ", "reader threads: ")
    } else {
        ("", "")
    };
    let rows = [
        (pushing, "read and generate input", read),
        (pushing, "rules (EventBridge emulation)", times.rules),
        (
            pushing,
            "Firehose emulation (buffers, base64, gzip)",
            times.firehose,
        ),
        (pushing, "enrich", times.enrich),
        (pushing, "object writes (local bucket)", times.objects),
        (pushing, "waiting for the readers", times.waiting),
        (reading, "writer and store", times.store),
        (reading, "forwarder (requests, outbox)", times.forward),
        ("", "outbox index flush", outbox),
    ];
    err("stage                                                          seconds   share");
    for (thread, name, time) in rows {
        let share = 100.0 * time.as_secs_f64() / total.as_secs_f64().max(f64::MIN_POSITIVE);
        let name = format!("{thread}{name}");
        err(format!("{name:<60} {:>9.3} {share:>6.1}%", time.as_secs_f64()));
    }
    err(format!("{:<60} {:>9.3}", "wall time", total.as_secs_f64()));
}

fn progress_bar(args: &RunArgs) -> ProgressBar {
    let bar = if args.events.is_empty() {
        ProgressBar::new(args.sample_events)
    } else {
        ProgressBar::no_length()
    };
    if args.quiet || args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    let template = if args.events.is_empty() {
        "{spinner} {msg}: {pos}/{len} events [{bar:30}] {per_sec}"
    } else {
        "{spinner} {msg}: {pos} events {per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("reading events");
    bar
}

fn report(args: &RunArgs, summary: &Summary, elapsed: f64) -> ExitCode {
    let accounting = summary.accounting();
    if args.json {
        let mut value = serde_json::to_value(summary).unwrap_or_default();
        value["accounting"] = serde_json::to_value(&accounting).unwrap_or_default();
        value["elapsed_seconds"] = serde_json::json!((elapsed * 1000.0).round() / 1000.0);
        out(value.to_string());
    } else {
        crate::summary::print(summary, &accounting, elapsed, &args.state.state_dir);
    }
    if !summary.stage_errors.is_empty() {
        err(format!(
            "error: {} object(s) could not be processed by a stage; their records are counted \
             with the stage's reason (see the summary)",
            summary.stage_errors.len()
        ));
    }
    if !accounting.balanced {
        err("error: the counts do not add up: some events are not accounted for (see the summary)");
    }
    if summary.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
