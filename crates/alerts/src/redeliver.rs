//! Notifications that were dead lettered, found again and sent again: what `metrics-lake
//! errors` lists under the `alerts` stage and `metrics-lake replay` redelivers once the
//! receiver is back. A dead letter's event keeps the notification's body and webhook-id, so
//! the receiver gets the same message (signed anew) and can drop a copy by its id.

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::delivery::{Deliverer, Delivery};
use crate::store::{AlertEvent, AlertStore, MAX_EVENTS, StoreError, StoredAlert};

/// A notification that was dead lettered.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadNotification {
    pub tenant: String,
    pub alert_id: String,
    pub alert_name: String,
    pub metric: String,
    /// The webhook-id (the alert and its transition).
    pub key: String,
    pub transition: String,
    /// The delivery's reason code.
    pub reason: String,
    pub detail: Value,
    pub at_ms: i64,
    /// The notification; `None` for a dead letter recorded without it.
    pub body: Option<String>,
    /// A later delivery of the same notification succeeded.
    pub resolved: bool,
}

/// Every dead-lettered notification of every alert, oldest first per alert.
pub async fn dead_notifications(
    store: &dyn AlertStore,
) -> Result<Vec<(StoredAlert, DeadNotification)>, StoreError> {
    let mut found = Vec::new();
    for stored in store.list_all().await? {
        let events = store
            .events(&stored.alert.tenant, &stored.alert.id, MAX_EVENTS)
            .await?;
        found.extend(
            dead_in(&stored, &events)
                .into_iter()
                .map(|dead| (stored.clone(), dead)),
        );
    }
    Ok(found)
}

/// The dead letters among one alert's events (newest first, as the store gives them).
pub fn dead_in(stored: &StoredAlert, events: &[AlertEvent]) -> Vec<DeadNotification> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let delivered_later = |key: &str, at: i64| {
        events
            .iter()
            .any(|e| e.kind == "delivered" && e.at_ms >= at && text(&e.detail, "key") == key)
    };
    let mut dead: Vec<DeadNotification> = events
        .iter()
        .filter(|e| e.kind == "dead_lettered")
        .map(|e| {
            let key = text(&e.detail, "key");
            DeadNotification {
                tenant: stored.alert.tenant.clone(),
                alert_id: stored.alert.id.clone(),
                alert_name: stored.alert.definition.name.clone(),
                metric: stored.alert.definition.metric.clone(),
                resolved: delivered_later(&key, e.at_ms),
                transition: text(&e.detail, "transition"),
                reason: e
                    .detail
                    .pointer("/delivery/reason")
                    .and_then(Value::as_str)
                    .unwrap_or("dead_lettered")
                    .to_owned(),
                body: e.detail.get("body").and_then(Value::as_str).map(str::to_owned),
                detail: e.detail.clone(),
                at_ms: e.at_ms,
                key,
            }
        })
        .collect();
    dead.reverse();
    dead
}

/// Sends `dead` again to its alert's URL, and records the delivery (or the new dead letter)
/// as an event of the alert, so `errors` sees it resolved (or failed again, with its reason).
pub async fn redeliver(
    store: &dyn AlertStore,
    deliverer: &Deliverer,
    clock: &dyn Clock,
    stored: &StoredAlert,
    dead: &DeadNotification,
) -> Option<Delivery> {
    let body = dead.body.as_deref()?;
    let delivery = deliverer
        .send(&stored.alert.definition.url, &stored.secret, &dead.key, body)
        .await;
    let mut detail = json!({
        "key": dead.key, "transition": dead.transition, "delivery": &delivery, "replayed": true,
    });
    let kind = if delivery.is_delivered() {
        "delivered"
    } else {
        detail["body"] = Value::from(body);
        "dead_lettered"
    };
    let event = AlertEvent {
        at_ms: clock.now_ms(),
        kind: kind.to_owned(),
        detail,
    };
    if let Err(e) = store
        .add_event(&stored.alert.tenant, &stored.alert.id, &event)
        .await
    {
        tracing::warn!(alert = %stored.alert.id, error = %e, "A redelivery could not be recorded.");
    }
    Some(delivery)
}
