//! The `alerts` stage in `metrics-lake errors` and `replay`: webhook notifications that were
//! dead lettered, from the local alert store (`alerts.db` in the state directory) or, with
//! `--bucket`, the deployed alerts table (`--alerts-table`). They are not in the bucket: each
//! is an event of its alert, which keeps the notification, so a replay sends it again under
//! the same webhook-id.

use std::sync::Arc;

use metrics_alerts::redeliver::{DeadNotification, dead_notifications, redeliver};
use metrics_alerts::store::dynamodb::DynamoAlertStore;
use metrics_alerts::store::sqlite::SqliteAlertStore;
use metrics_alerts::{
    AlertStore, Deliverer, Delivery, DeliverySettings, StoredAlert, SystemClock, UrlPolicy,
};
use metrics_local::recover::replay::ReplaySummary;
use metrics_local::recover::{ErrorRecord, Filter, ReplayTo};
use metrics_schema::{EventTime, Outcome, ReasonCode, Stage};

use crate::recover::{Source, SourceArgs};

/// Where the alerts are, if anywhere: the local alert store when the state directory has one,
/// the deployed table when `--alerts-table` names it.
pub fn alert_store(args: &SourceArgs, source: &Source) -> Result<Option<Arc<dyn AlertStore>>, String> {
    match (source, &args.alerts_table) {
        (Source::Local { state, .. }, _) => {
            let path = state.alerts_path();
            if !path.exists() {
                return Ok(None);
            }
            let store = SqliteAlertStore::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Some(Arc::new(store)))
        }
        (Source::Deployed { sdk, .. }, Some(table)) => {
            let client = aws_sdk_dynamodb::Client::new(sdk);
            Ok(Some(Arc::new(DynamoAlertStore::new(client, table.clone()))))
        }
        (Source::Deployed { .. }, None) => Ok(None),
    }
}

/// A dead-lettered notification as a failed record of the `alerts` stage.
pub fn record(stored: &StoredAlert, dead: &DeadNotification) -> ErrorRecord {
    ErrorRecord {
        stage: Stage::Alerts,
        reason: ReasonCode::from(dead.reason.clone()),
        detail: format!(
            "the {} notification of alert {:?} was not delivered: {}",
            dead.transition, stored.alert.definition.name, dead.detail["delivery"]
        ),
        tenant_id: Some(dead.tenant.clone()),
        metric: Some(dead.metric.clone()),
        destination: None,
        object: format!("alerts/{}", dead.alert_id),
        line: 0,
        source: Some(dead.key.clone()),
        at: Some(EventTime::from_millis(dead.at_ms)),
        raw: dead.body.clone().unwrap_or_default().into_bytes(),
        replay_to: ReplayTo::Nowhere,
        replayed_at: None,
        resolved: dead.resolved,
    }
}

/// The dead-lettered notifications `filter` selects.
pub async fn selected(
    store: &dyn AlertStore,
    filter: &Filter,
) -> Result<Vec<(StoredAlert, DeadNotification, ErrorRecord)>, String> {
    Ok(dead_notifications(store)
        .await
        .map_err(|e| format!("the alert store: {e}"))?
        .into_iter()
        .map(|(stored, dead)| {
            let record = record(&stored, &dead);
            (stored, dead, record)
        })
        .filter(|(_, _, record)| filter.matches(record))
        .collect())
}

/// Sends every selected notification again, counting each in `summary`: `delivered`,
/// `duplicate` (delivered since), `dead_lettered:<reason>`, or `would_replay` in a dry run.
pub async fn replay(
    store: &dyn AlertStore,
    filter: &Filter,
    policy: UrlPolicy,
    dry_run: bool,
    summary: &mut ReplaySummary,
) -> Result<(), String> {
    let clock = SystemClock;
    let deliverer = Deliverer::new(policy, DeliverySettings::default(), Arc::new(SystemClock))
        .map_err(|e| e.to_string())?;
    for (stored, dead, _) in selected(store, filter).await? {
        let outcome = if dead.resolved {
            Outcome::Duplicate
        } else if dead.body.is_none() {
            Outcome::failed(Stage::Alerts, metrics_local::recover::record::NOT_REPLAYABLE)
        } else if dry_run {
            Outcome::WouldReplay
        } else {
            match redeliver(store, &deliverer, &clock, &stored, &dead).await {
                Some(Delivery::Delivered { .. }) => Outcome::Delivered,
                Some(Delivery::DeadLettered { reason, .. }) => {
                    Outcome::dead_lettered(Stage::Alerts, reason.code())
                }
                None => Outcome::failed(Stage::Alerts, metrics_local::recover::record::NOT_REPLAYABLE),
            }
        };
        summary.add_record(outcome);
    }
    Ok(())
}
