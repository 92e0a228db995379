//! `metrics-lake alerts`: the local store's alerts (created through the API of
//! `metrics-lake serve`), evaluated on demand at a chosen time, for tests and trying things.
//!
//! - `list`: every tenant's alerts with their state;
//! - `evaluate [--now RFC3339]`: one evaluation of every due alert, as the deployed evaluator
//!   runs it every minute: transitions are sent as signed webhooks, once each;
//! - `test ID`: the alert's window now (or at `--now`), and a signed `alert.test` notification
//!   to its URL; the alert's state does not change.
//!
//! Deliveries go to https URLs of public addresses only, unless `--allow-local-webhooks` also
//! allows `http://127.0.0.1:<port>/…` (a receiver on this machine).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use metrics_alerts::store::sqlite::SqliteAlertStore;
use metrics_alerts::{
    AlertStore, Deliverer, Delivery, DeliverySettings, EvaluationReport, Evaluator, EvaluatorSettings,
    SystemClock, UrlPolicy,
};
use metrics_query::alerts::EngineWindows;
use metrics_query::embedded::EmbeddedEngine;
use metrics_query::model::Limits;
use metrics_schema::EventTime;
use metrics_store::EmbeddedStore;
use serde_json::json;

use crate::output::{err, out};
use crate::state::{StateArgs, StateDir};

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Every alert in the local store, with its state.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Evaluate every due alert once, at a chosen time, sending each transition's webhook.
    Evaluate {
        /// The evaluation time (RFC 3339); default now.
        #[arg(long)]
        now: Option<String>,
        #[command(flatten)]
        webhooks: WebhookArgs,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Show an alert's window and send it a signed test notification (its state stays).
    Test {
        /// The alert's id (`al_…`).
        id: String,
        /// The evaluation time (RFC 3339); default now.
        #[arg(long)]
        now: Option<String>,
        #[command(flatten)]
        webhooks: WebhookArgs,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Clone, Copy, Args)]
pub struct WebhookArgs {
    /// Also deliver to http://127.0.0.1:<port>/… (a receiver on this machine; never in AWS).
    #[arg(long)]
    pub allow_local_webhooks: bool,
}

impl WebhookArgs {
    pub fn policy(self) -> UrlPolicy {
        UrlPolicy {
            allow_local_http: self.allow_local_webhooks,
        }
    }
}

pub fn run(args: AlertsArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            err(format!("error: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(args.command)) {
        Ok(code) => code,
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

async fn command(command: AlertsCommand) -> Result<ExitCode, String> {
    match command {
        AlertsCommand::List { json, state } => list(&StateDir::existing(&state.state_dir)?, json).await,
        AlertsCommand::Evaluate {
            now,
            webhooks,
            json,
            state,
        } => {
            let at = at(now.as_deref())?;
            let state = StateDir::existing(&state.state_dir)?;
            let evaluator = evaluator(
                Arc::new(state.open_store()?),
                alert_store(&state)?,
                webhooks.policy(),
            )?;
            let report = evaluator.run_due(at).await.map_err(|e| e.to_string())?;
            show_report(&report, json);
            Ok(if report.dead_lettered > 0 || report.read_failed > 0 {
                err(
                    "error: some alerts could not be read or notified (see `metrics-lake alerts list` and the API's /events)",
                );
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        AlertsCommand::Test {
            id,
            now,
            webhooks,
            json,
            state,
        } => {
            let at = at(now.as_deref())?;
            let state = StateDir::existing(&state.state_dir)?;
            let alerts = alert_store(&state)?;
            let all = alerts.list_all().await.map_err(|e| e.to_string())?;
            let stored = all
                .into_iter()
                .find(|s| s.alert.id == id)
                .ok_or_else(|| format!("no alert {id:?} in the local store"))?;
            let evaluator = evaluator(Arc::new(state.open_store()?), alerts, webhooks.policy())?;
            let (seen, holds, delivery) = evaluator
                .send_test(&stored, at)
                .await
                .map_err(|e| format!("{} ({})", e.message, e.code))?;
            if json {
                out(json!({"value": seen.value, "previous": seen.previous, "holds": holds, "delivery": delivery})
                    .to_string());
            } else {
                out(format!(
                    "{} ({}): value {} — the condition {}; test notification {}.",
                    stored.alert.id,
                    stored.alert.definition.name,
                    seen.value.map_or("none".to_owned(), |v| v.to_string()),
                    if holds { "holds" } else { "does not hold" },
                    describe(&delivery)
                ));
            }
            Ok(if delivery.is_delivered() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The evaluation time: `--now`, or the clock.
fn at(now: Option<&str>) -> Result<i64, String> {
    match now {
        None => Ok(EventTime::now().as_millis()),
        Some(text) => EventTime::parse_rfc3339(text)
            .map(EventTime::as_millis)
            .map_err(|_| format!("--now {text:?} is not an RFC 3339 time")),
    }
}

pub fn alert_store(state: &StateDir) -> Result<Arc<SqliteAlertStore>, String> {
    let path = state.alerts_path();
    SqliteAlertStore::open(&path)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The evaluator over the embedded store, as `serve` and these commands run it.
pub fn evaluator(
    store: Arc<EmbeddedStore>,
    alerts: Arc<SqliteAlertStore>,
    policy: UrlPolicy,
) -> Result<Evaluator, String> {
    let clock = Arc::new(SystemClock);
    let deliverer =
        Deliverer::new(policy, DeliverySettings::default(), clock.clone()).map_err(|e| e.to_string())?;
    let engine = Arc::new(EmbeddedEngine::new(store, Limits::default()));
    Ok(Evaluator::new(
        alerts,
        Arc::new(EngineWindows::new(engine)),
        Arc::new(deliverer),
        clock,
        EvaluatorSettings::default(),
    ))
}

fn describe(delivery: &Delivery) -> String {
    match delivery {
        Delivery::Delivered { attempts, status } => format!("delivered (HTTP {status}, attempt {attempts})"),
        Delivery::DeadLettered { attempts, reason, .. } => {
            format!("not delivered: {reason} after {attempts} attempt(s)")
        }
    }
}

pub fn show_report(report: &EvaluationReport, json: bool) {
    if json {
        out(serde_json::to_string(report).unwrap_or_default());
    } else {
        out(format!(
            "Evaluated {} alert(s): {} transition(s), {} delivered, {} dead lettered, {} not due, {} lost to another evaluator, {} unreadable, {} over their tenant's time budget.",
            report.evaluated,
            report.transitions,
            report.delivered,
            report.dead_lettered,
            report.not_due,
            report.conflicts,
            report.read_failed,
            report.over_budget
        ));
    }
}

async fn list(state: &StateDir, json: bool) -> Result<ExitCode, String> {
    let alerts = alert_store(state)?.list_all().await.map_err(|e| e.to_string())?;
    if json {
        let rows: Vec<serde_json::Value> = alerts
            .iter()
            .map(|s| {
                json!({
                    "tenant": s.alert.tenant,
                    "alert": s.alert,
                    "status": s.state.status.as_str(),
                    "last_value": s.state.last_value,
                    "next_due": EventTime::from_millis(s.state.next_due_ms).to_rfc3339(),
                })
            })
            .collect();
        out(json!({ "alerts": rows }).to_string());
        return Ok(ExitCode::SUCCESS);
    }
    if alerts.is_empty() {
        out("No alerts (create them through `metrics-lake serve`'s API: POST /v1/alerts).");
    }
    for s in &alerts {
        let d = &s.alert.definition;
        out(format!(
            "{}  {:<14} {:<9} {} {}({}) over {} {}  → {}",
            s.alert.id,
            s.alert.tenant,
            s.state.status.as_str(),
            d.metric,
            d.aggregation,
            d.measure.as_deref().unwrap_or("records"),
            d.window,
            serde_json::to_string(&d.condition).unwrap_or_default(),
            d.url
        ));
    }
    Ok(ExitCode::SUCCESS)
}
