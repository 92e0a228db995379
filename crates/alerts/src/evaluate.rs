//! Evaluation: every due alert is read, judged and, on a transition, notified, each under its
//! own tenant's scope (the reader is asked for the alert's tenant only).
//!
//! Order of work for one alert, chosen so a transition is notified once even when evaluations
//! overlap or a process dies mid-way:
//! 1. read the window(s) and decide the transition ([`AlertState::step`]);
//! 2. write the new state, with the notification as `pending` and claimed by this evaluator,
//!    conditional on the version read in 1 — an evaluator that lost the race stops here and
//!    sends nothing;
//! 3. send it ([`Deliverer::send`]: retries, then a dead letter);
//! 4. clear `pending` (conditional again) and record the delivery or the dead letter.
//!
//! A process that dies between 2 and 4 leaves a claimed `pending`: once the claim expires the
//! next evaluation takes it over (conditionally, so only one does) and sends it with the same
//! `webhook-id`, which receivers deduplicate on.
//!
//! Fairness: tenants are evaluated concurrently (at most `concurrency` at once), each tenant's
//! alerts one after another within `tenant_budget`; what the budget does not reach stays due
//! for the next run, so one tenant's slow queries cannot hold back the others.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_schema::{EventTime, Outcome, Stage, TenantId};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::delivery::{Deliverer, Delivery};
use crate::model::{Observation, observed};
use crate::reader::{ReadError, WindowQuery, WindowReader};
use crate::state::{AlertState, Pending, Transition};
use crate::store::{Alert, AlertEvent, AlertStore, StoreError, StoredAlert};

/// Evaluation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluatorSettings {
    /// Tenants evaluated at the same time.
    pub concurrency: usize,
    /// Time one tenant's reads may take in one run.
    pub tenant_budget: Duration,
    /// How long a claimed notification belongs to its claimant (longer than a delivery's
    /// attempts and backoffs).
    pub lease: Duration,
    /// Alerts taken per run.
    pub batch: usize,
}

impl Default for EvaluatorSettings {
    fn default() -> Self {
        EvaluatorSettings {
            concurrency: 8,
            tenant_budget: Duration::from_secs(20),
            lease: Duration::from_secs(120),
            batch: 5_000,
        }
    }
}

/// What happened to one alert in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOutcome {
    /// Evaluated, no transition.
    Unchanged,
    /// A transition, notified.
    Delivered,
    /// A transition whose notification was dead lettered.
    DeadLettered,
    /// Another evaluator wrote first: nothing written, nothing sent.
    Conflict,
    /// Not due (or its notification is claimed by another evaluator).
    NotDue,
    /// The window could not be read (the state is left as it was).
    ReadFailed,
    /// Its tenant's time budget ran out first; it stays due.
    OverBudget,
    /// Deleted while being evaluated.
    Gone,
}

/// A run's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EvaluationReport {
    pub evaluated: u64,
    pub transitions: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub conflicts: u64,
    pub not_due: u64,
    pub read_failed: u64,
    pub over_budget: u64,
}

impl EvaluationReport {
    pub fn add(&mut self, outcome: AlertOutcome) {
        let counter = match outcome {
            AlertOutcome::Unchanged => &mut self.evaluated,
            AlertOutcome::Delivered => {
                self.evaluated += 1;
                self.transitions += 1;
                &mut self.delivered
            }
            AlertOutcome::DeadLettered => {
                self.evaluated += 1;
                self.transitions += 1;
                &mut self.dead_lettered
            }
            AlertOutcome::Conflict => &mut self.conflicts,
            AlertOutcome::NotDue | AlertOutcome::Gone => &mut self.not_due,
            AlertOutcome::ReadFailed => &mut self.read_failed,
            AlertOutcome::OverBudget => &mut self.over_budget,
        };
        *counter += 1;
    }

    pub fn merge(&mut self, other: &EvaluationReport) {
        self.evaluated += other.evaluated;
        self.transitions += other.transitions;
        self.delivered += other.delivered;
        self.dead_lettered += other.dead_lettered;
        self.conflicts += other.conflicts;
        self.not_due += other.not_due;
        self.read_failed += other.read_failed;
        self.over_budget += other.over_budget;
    }
}

/// Evaluates alerts.
#[derive(Debug, Clone)]
pub struct Evaluator {
    store: Arc<dyn AlertStore>,
    reader: Arc<dyn WindowReader>,
    deliverer: Arc<Deliverer>,
    clock: Arc<dyn Clock>,
    settings: EvaluatorSettings,
}

impl Evaluator {
    pub fn new(
        store: Arc<dyn AlertStore>,
        reader: Arc<dyn WindowReader>,
        deliverer: Arc<Deliverer>,
        clock: Arc<dyn Clock>,
        settings: EvaluatorSettings,
    ) -> Self {
        Evaluator {
            store,
            reader,
            deliverer,
            clock,
            settings,
        }
    }

    /// Evaluates every alert due at evaluation time `at_ms` (epoch ms; normally now).
    pub async fn run_due(&self, at_ms: i64) -> Result<EvaluationReport, StoreError> {
        let due = self
            .store
            .due(at_ms, self.clock.now_ms(), self.settings.batch)
            .await?;
        let mut by_tenant: BTreeMap<String, Vec<StoredAlert>> = BTreeMap::new();
        for alert in due {
            by_tenant
                .entry(alert.alert.tenant.clone())
                .or_default()
                .push(alert);
        }
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (_, alerts) in by_tenant {
            let evaluator = self.clone();
            let permits = Arc::clone(&permits);
            tasks.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return EvaluationReport::default();
                };
                evaluator.run_tenant(alerts, at_ms).await
            });
        }
        let mut report = EvaluationReport::default();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(tenant) => report.merge(&tenant),
                Err(e) => tracing::error!(error = %e, "An alert evaluation task failed."),
            }
        }
        Ok(report)
    }

    /// One tenant's due alerts, one after another, within the tenant's budget.
    async fn run_tenant(&self, alerts: Vec<StoredAlert>, at_ms: i64) -> EvaluationReport {
        let deadline = Instant::now() + self.settings.tenant_budget;
        let mut report = EvaluationReport::default();
        for alert in alerts {
            let outcome = if Instant::now() >= deadline {
                AlertOutcome::OverBudget
            } else {
                self.evaluate(alert, at_ms, Some(deadline)).await
            };
            report.add(outcome);
        }
        report
    }

    /// Evaluates one alert at `at_ms` (see the module docs for the order of work). With a
    /// `deadline`, reads that do not finish by then leave the alert due.
    pub async fn evaluate(&self, stored: StoredAlert, at_ms: i64, deadline: Option<Instant>) -> AlertOutcome {
        let StoredAlert { alert, secret, state } = stored;
        let wall = self.clock.now_ms();
        let state = match &state.pending {
            Some(p) if p.claimed_until_ms > wall => return AlertOutcome::NotDue,
            Some(_) => match self.take_over(&alert, &secret, state).await {
                Ok(state) => state,
                Err(outcome) => return outcome,
            },
            None => state,
        };
        if state.next_due_ms > at_ms {
            return AlertOutcome::NotDue;
        }
        let read = self.observe(&alert, at_ms);
        let seen = match deadline {
            Some(d) => match tokio::time::timeout_at(d, read).await {
                Ok(r) => r,
                Err(_) => return AlertOutcome::OverBudget,
            },
            None => read.await,
        };
        let seen = match seen {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!(alert = %alert.id, tenant = %alert.tenant, code = e.code, "An alert's window could not be read.");
                self.event(&alert, "read_failed", json!({"at": iso(at_ms), "code": e.code}))
                    .await;
                return AlertOutcome::ReadFailed;
            }
        };
        let d = &alert.definition;
        let holds = d.condition.holds(&seen);
        let transition = state.step(holds, at_ms, d.cooldown);
        let pending = transition.map(|t| (t, self.pending(&alert, t, &seen, at_ms, wall)));
        let next = state.next(at_ms, seen.value, d.interval, pending);
        match self
            .store
            .write_state(&alert.tenant, &alert.id, state.version, &next)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return AlertOutcome::Conflict,
            Err(StoreError::NotFound) => return AlertOutcome::Gone,
            Err(e) => {
                tracing::warn!(alert = %alert.id, error = %e, "An alert's state could not be written.");
                return AlertOutcome::ReadFailed;
            }
        }
        self.event(
            &alert,
            "evaluated",
            json!({
                "at": iso(at_ms),
                "value": seen.value,
                "previous": seen.previous,
                "holds": holds,
                "status": next.status.as_str(),
                "transition": transition.map(|t| t.kind.as_str()),
            }),
        )
        .await;
        if next.pending.is_none() {
            return AlertOutcome::Unchanged;
        }
        match self.deliver(&alert, &secret, next).await {
            Some(true) => AlertOutcome::Delivered,
            Some(false) => AlertOutcome::DeadLettered,
            None => AlertOutcome::Conflict,
        }
    }

    /// The window's value (and the previous window's, for `change_pct`), as the condition
    /// sees them.
    async fn observe(&self, alert: &Alert, at_ms: i64) -> Result<Observation, ReadError> {
        let d = &alert.definition;
        let tenant = TenantId::parse(alert.tenant.as_str()).map_err(|_| ReadError {
            code: "invalid_tenant",
            message: "the alert's tenant is not a valid tenant id".into(),
        })?;
        let tenant = tenant.into_owned();
        // Windows end at the minute, so evaluations within a minute read the same data.
        let to_ms = at_ms.div_euclid(60_000) * 60_000;
        let aggregation = match d.condition {
            crate::model::Condition::Absent => metrics_schema::Aggregation::Count,
            _ => d.aggregation,
        };
        let window = |to_ms: i64| WindowQuery {
            metric: d.metric.clone(),
            measure: d.measure.clone(),
            aggregation,
            filters: d.filters.clone(),
            from_ms: to_ms - d.window.millis(),
            to_ms,
        };
        let value = observed(aggregation, self.reader.value(&tenant, &window(to_ms)).await?);
        let previous = if d.condition.needs_previous() {
            observed(
                aggregation,
                self.reader
                    .value(&tenant, &window(to_ms - d.window.millis()))
                    .await?,
            )
        } else {
            None
        };
        Ok(Observation { value, previous })
    }

    fn pending(&self, alert: &Alert, t: Transition, seen: &Observation, at_ms: i64, wall: i64) -> Pending {
        Pending {
            key: t.key(&alert.id),
            kind: t.kind,
            body: notification(alert, &format!("alert.{}", t.kind.as_str()), seen, at_ms),
            claimed_until_ms: wall + self.lease_ms(),
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }

    /// Claims a pending notification whose claimant's lease expired, and sends it.
    async fn take_over(
        &self,
        alert: &Alert,
        secret: &metrics_http::Secret,
        state: AlertState,
    ) -> Result<AlertState, AlertOutcome> {
        let mut claimed = state.clone();
        claimed.version += 1;
        if let Some(p) = claimed.pending.as_mut() {
            p.claimed_until_ms = self.clock.now_ms() + self.lease_ms();
        }
        match self
            .store
            .write_state(&alert.tenant, &alert.id, state.version, &claimed)
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(AlertOutcome::Gone),
            Err(_) => return Err(AlertOutcome::Conflict),
        }
        self.deliver(alert, secret, claimed)
            .await
            .ok_or(AlertOutcome::Conflict)?;
        // Re-read: delivering took time, and the state's version moved on.
        match self.store.get(&alert.tenant, &alert.id).await {
            Ok(Some(s)) => Ok(s.state),
            Ok(None) => Err(AlertOutcome::Gone),
            Err(_) => Err(AlertOutcome::Conflict),
        }
    }

    /// Sends `state`'s pending notification, then clears it and records how it ended.
    /// `Some(delivered?)`, or `None` when the pending notification was no longer this one's.
    async fn deliver(&self, alert: &Alert, secret: &metrics_http::Secret, state: AlertState) -> Option<bool> {
        let pending = state.pending.clone()?;
        let delivery = self
            .deliverer
            .send(&alert.definition.url, secret, &pending.key, &pending.body)
            .await;
        let mut settled = state.clone();
        settled.version += 1;
        settled.pending = None;
        let mut expected = state.version;
        // One retry of the clear: an update of the definition does not touch the state, but a
        // take-over by another evaluator would have bumped it.
        for _ in 0..2 {
            match self
                .store
                .write_state(&alert.tenant, &alert.id, expected, &settled)
                .await
            {
                Ok(()) => break,
                Err(StoreError::Conflict) => match self.store.get(&alert.tenant, &alert.id).await {
                    Ok(Some(now)) if now.state.pending.as_ref().map(|p| &p.key) == Some(&pending.key) => {
                        expected = now.state.version;
                        settled = now.state;
                        settled.version += 1;
                        settled.pending = None;
                    }
                    _ => break,
                },
                Err(_) => break,
            }
        }
        let mut detail =
            json!({"key": pending.key, "transition": pending.kind.as_str(), "delivery": &delivery});
        if !delivery.is_delivered() {
            // The notification itself, so `metrics-lake replay` can send it again, signed anew
            // under the same webhook-id.
            detail["body"] = serde_json::Value::from(pending.body.as_str());
        }
        match &delivery {
            Delivery::Delivered { .. } => {
                self.event(alert, "delivered", detail).await;
                Some(true)
            }
            Delivery::DeadLettered { reason, .. } => {
                let outcome = Outcome::dead_lettered(Stage::Alerts, reason.code());
                tracing::warn!(
                    alert = %alert.id,
                    tenant = %alert.tenant,
                    outcome = %outcome,
                    stage = %Stage::Alerts,
                    "An alert notification was dead lettered."
                );
                self.event(alert, "dead_lettered", detail).await;
                Some(false)
            }
        }
    }

    async fn event(&self, alert: &Alert, kind: &str, detail: serde_json::Value) {
        let event = AlertEvent {
            at_ms: self.clock.now_ms(),
            kind: kind.to_owned(),
            detail,
        };
        if let Err(e) = self.store.add_event(&alert.tenant, &alert.id, &event).await {
            tracing::warn!(alert = %alert.id, error = %e, "An alert event could not be recorded.");
        }
    }

    /// Sends a test notification (`alert.test`) for `stored` as it stands at `at_ms`, changing
    /// no state: the window is read and reported, the condition is not acted on.
    pub async fn send_test(
        &self,
        stored: &StoredAlert,
        at_ms: i64,
    ) -> Result<(Observation, bool, Delivery), ReadError> {
        let seen = self.observe(&stored.alert, at_ms).await?;
        let holds = stored.alert.definition.condition.holds(&seen);
        let body = notification(&stored.alert, "alert.test", &seen, at_ms);
        let key = format!("{}.test.{}", stored.alert.id, self.clock.now_ms());
        let delivery = self
            .deliverer
            .send(&stored.alert.definition.url, &stored.secret, &key, &body)
            .await;
        Ok((seen, holds, delivery))
    }
}

fn iso(ms: i64) -> String {
    EventTime::from_millis(ms).to_rfc3339()
}

/// The notification body, in the Standard Webhooks payload shape (`type`, `timestamp`, `data`).
pub fn notification(alert: &Alert, kind: &str, seen: &Observation, at_ms: i64) -> String {
    let d = &alert.definition;
    json!({
        "type": kind,
        "timestamp": iso(at_ms),
        "data": {
            "alert_id": alert.id,
            "name": d.name,
            "metric": d.metric,
            "measure": d.measure,
            "aggregation": d.aggregation,
            "filters": d.filters,
            "window": d.window,
            "condition": d.condition,
            "value": seen.value,
            "previous_value": seen.previous,
            "evaluated_at": iso(at_ms),
        }
    })
    .to_string()
}
