//! `metrics-lake replay`: sends failed records back to the stage that failed them, with the
//! same sources and filters as `metrics-lake errors`. Locally each stage is the code `run`
//! uses; against the deployed bucket (`--bucket`) records go back into the deployed pipeline
//! (Firehose `PutRecordBatch`, and `Replay/…` objects its consumers read).

use std::process::ExitCode;

use clap::Args;
use metrics_local::firehose::FirehoseConfig;
use metrics_local::pipeline::Pipeline;
use metrics_local::recover::local::LocalTarget;
use metrics_local::recover::replay::{ReplayPlan, ReplaySummary, ReplayTarget, replay};
use metrics_local::recover::{Objects, Scanner};
use metrics_local::stages::EmbeddedWriter;
use metrics_writer::write::WriteOptions;

use crate::output::{err, out};
use crate::recover::{FilterArgs, Source, SourceArgs, now};
use crate::run::{ForwardMode, forwarding};
use crate::summary::thousands;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// Local forwarding of replayed records: `outbox` (added to the run's outbox) or `live`
    /// (the endpoints the forwarder's environment variables configure).
    #[arg(long, value_enum, default_value_t = ForwardMode::Outbox)]
    forward: ForwardMode,
    /// With `--bucket`: the deployed Firehose delivery stream records failed by enrich go
    /// back into (the stack's `DeliveryStreamName` output).
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,
    /// Say what a replay would do with the current code, mapping and tenant directory; send
    /// and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// With `--bucket`: also redrive this SQS dead-letter queue (repeatable; the stack's
    /// `…DeadLetterQueueArn` outputs). The writer's and forwarder's DLQs move back to their
    /// queues; the rules' and fan-out DLQs' events go again to the target each names.
    #[arg(long, value_name = "QUEUE_ARN")]
    redrive: Vec<String>,
    /// Only redrive the `--redrive` queues; leave the bucket's error records alone.
    #[arg(long, requires = "redrive")]
    redrive_only: bool,
    /// Replay at most this many error objects; the next replay of the same selection resumes
    /// after them.
    #[arg(long, value_name = "N")]
    max_objects: Option<usize>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Alert notifications may go to a receiver on http://127.0.0.1:<port>/… (local only).
    #[arg(long)]
    allow_local_webhooks: bool,
}

pub fn run(args: ReplayArgs) -> ExitCode {
    match crate::runtime::block_on(replay_all(&args)) {
        Ok(summary) => report(&args, &summary),
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

async fn replay_all(args: &ReplayArgs) -> Result<ReplaySummary, String> {
    let filter = args.filter.filter().map_err(|e| e.to_string())?;
    let plan = ReplayPlan {
        filter,
        dry_run: args.dry_run,
        max_objects: args.max_objects,
        selection: format!("{} {}", args.source.describe(), args.filter.describe()),
    };
    if !args.redrive.is_empty() && args.source.bucket.is_none() {
        return Err("--redrive redrives the deployed stack's queues: it needs --bucket".into());
    }
    let (checker, rules) = args.source.enricher().await?;
    let source = args.source.open().await?;
    let alerts = crate::recover_alerts::alert_store(&args.source, &source)?;
    let mut summary = replay_records(args, &plan, source, &checker, rules).await?;
    if let Some(alerts) = alerts
        && !args.redrive_only
    {
        let policy = metrics_alerts::UrlPolicy {
            allow_local_http: args.allow_local_webhooks,
        };
        crate::recover_alerts::replay(alerts.as_ref(), &plan.filter, policy, args.dry_run, &mut summary)
            .await?;
    }
    Ok(summary)
}

/// The bucket's records (and, with `--bucket`, the `--redrive` queues).
async fn replay_records(
    args: &ReplayArgs,
    plan: &ReplayPlan,
    source: Source,
    checker: &metrics_enrich::Enricher,
    rules: metrics_mapping::RuleSet,
) -> Result<ReplaySummary, String> {
    match source {
        Source::Local { state, bucket } => {
            // The pipeline's own transformer: the scan's re-check keeps its own.
            let (enricher, _) = args.source.enricher().await?;
            let writer = EmbeddedWriter::new(state.open_store()?, WriteOptions::default());
            let forward = forwarding(args.forward, &state, true).await?;
            let pipeline = Pipeline::new(
                rules,
                FirehoseConfig::default(),
                enricher,
                bucket.clone(),
                writer,
                forward,
            )
            .without_keeping_rejected_input();
            let mut target = LocalTarget { pipeline };
            let summary = run_replay(&bucket, checker, &mut target, plan).await?;
            let (_, _, mut forward) = target.pipeline.finish().await.map_err(|e| e.to_string())?;
            forward
                .flush()
                .map_err(|e| format!("writing the outbox index: {e}"))?;
            Ok(summary)
        }
        Source::Deployed { objects: s3, sdk } => {
            let mut summary = if args.redrive_only {
                let mut empty = ReplaySummary {
                    dry_run: args.dry_run,
                    ..ReplaySummary::default()
                };
                empty.accounting.balanced = true;
                empty
            } else {
                let mut target = crate::replay_deployed::target(args.stream.as_deref(), &s3, &sdk);
                run_replay(&s3, checker, &mut target, plan).await?
            };
            // A queue that cannot be redriven is reported beside the records' summary, which
            // says what was already sent.
            let (queues, errors) =
                crate::replay_deployed::redrive_queues(&args.redrive, &rules, args.dry_run, &sdk).await;
            summary.queues = queues;
            summary.errors.extend(errors);
            Ok(summary)
        }
    }
}

async fn run_replay<O: Objects, T: ReplayTarget>(
    objects: &O,
    checker: &metrics_enrich::Enricher,
    target: &mut T,
    plan: &ReplayPlan,
) -> Result<ReplaySummary, String> {
    let scanner = Scanner {
        objects,
        enricher: checker,
        now: now(),
    };
    replay(&scanner, target, plan).await.map_err(|e| e.to_string())
}

fn report(args: &ReplayArgs, summary: &ReplaySummary) -> ExitCode {
    if args.json {
        out(serde_json::to_string(summary).unwrap_or_default());
    } else {
        print(summary);
    }
    for error in &summary.errors {
        err(format!("error: {error}"));
    }
    for reason in &summary.unseen_reasons {
        err(format!("note: no failed record has reason {reason:?}"));
    }
    if !summary.accounting.balanced {
        err("error: the counts do not add up: some selected records have no outcome");
    }
    let left: u64 = summary.queues.iter().map(|q| q.left).sum();
    if left > 0 {
        err(format!(
            "error: {left} message(s) left in dead-letter queues (see `queues` for why)"
        ));
    }
    if summary.accounting.balanced && summary.errors.is_empty() && left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print(summary: &ReplaySummary) {
    let verb = if summary.dry_run {
        "replay --dry-run"
    } else {
        "replay"
    };
    out(format!(
        "metrics-lake {verb}: {} records from {} error objects{}",
        thousands(summary.selected),
        thousands(summary.objects),
        if summary.resumed_objects > 0 {
            format!(
                " ({} done by the interrupted replay this one resumes)",
                thousands(summary.resumed_objects)
            )
        } else {
            String::new()
        }
    ));
    for (key, n) in summary.outcomes.by_key() {
        out(format!("    {key:<36}{:>12}", thousands(n)));
    }
    let still_failing: Vec<String> = summary
        .outcomes
        .by_key()
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("failed:") || k.starts_with("dead_lettered:") || k.starts_with("dropped:")
        })
        .map(|(k, n)| format!("{} {k}", thousands(n)))
        .collect();
    if summary.dry_run {
        let would = summary.outcomes.get(&metrics_schema::Outcome::WouldReplay);
        out(format!(
            "{} records: {} would now be replayed, {}",
            thousands(summary.selected),
            thousands(would),
            if still_failing.is_empty() {
                "none still fails".to_owned()
            } else {
                format!("still failing: {}", still_failing.join(", "))
            }
        ));
    } else if !still_failing.is_empty() {
        out(format!(
            "still failing (`metrics-lake errors` shows why): {}",
            still_failing.join(", ")
        ));
    }
    if summary.interrupted {
        out("stopped at --max-objects: run the same command again to resume");
    }
    for queue in &summary.queues {
        out(format!(
            "queue {}: {} messages, {} ({} moved, {} left){}",
            queue.queue,
            thousands(queue.messages),
            queue.action,
            thousands(queue.moved),
            thousands(queue.left),
            queue
                .task_handle
                .as_ref()
                .map(|t| format!(", task {t}"))
                .unwrap_or_default()
        ));
        for why in &queue.detail {
            out(format!("    {why}"));
        }
    }
    out(format!(
        "accounting: {} selected, {} outcomes: {}",
        thousands(summary.accounting.selected),
        thousands(summary.accounting.outcomes_total),
        if summary.accounting.balanced {
            "balanced"
        } else {
            "NOT balanced"
        }
    ));
}
