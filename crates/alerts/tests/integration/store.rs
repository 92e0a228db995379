//! The SQLite alert store: tenant scoping, limits, compare-and-set, due alerts, events.

use metrics_alerts::store::sqlite::SqliteAlertStore;
use metrics_alerts::{AlertEvent, AlertState, AlertStore, StoreError};
use serde_json::json;

use crate::common::{T0, alert};

const URL: &str = "https://hooks.example.com/a";

#[tokio::test]
async fn alerts_are_found_only_under_their_own_tenant() {
    let store = SqliteAlertStore::in_memory().unwrap();
    let a = alert("acme-prod", URL, json!({}));
    let secret = metrics_alerts::signing::new_secret().unwrap();
    store.create(&a, &secret, 10).await.unwrap();
    let got = store.get("acme-prod", &a.id).await.unwrap().unwrap();
    assert_eq!((got.alert, got.secret), (a.clone(), secret));
    assert_eq!(store.get("globex", &a.id).await.unwrap(), None);
    assert!(store.list("globex").await.unwrap().is_empty());
    let d = &a.definition;
    assert_eq!(
        store.update("globex", &a.id, d, T0).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.delete("globex", &a.id).await, Err(StoreError::NotFound));
    let state = AlertState::default();
    assert_eq!(
        store.write_state("globex", &a.id, 0, &state).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.list("acme-prod").await.unwrap().len(), 1);
    store.delete("acme-prod", &a.id).await.unwrap();
    assert_eq!(store.get("acme-prod", &a.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_tenant_limit_counts_only_that_tenants_alerts() {
    let store = SqliteAlertStore::in_memory().unwrap();
    let secret = metrics_alerts::signing::new_secret().unwrap();
    for _ in 0..2 {
        store
            .create(&alert("acme-prod", URL, json!({})), &secret, 2)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .create(&alert("acme-prod", URL, json!({})), &secret, 2)
            .await,
        Err(StoreError::TooMany { max: 2 })
    );
    store
        .create(&alert("globex", URL, json!({})), &secret, 2)
        .await
        .unwrap();
}

#[tokio::test]
async fn state_writes_are_compare_and_set_across_connections() {
    let dir = std::env::temp_dir().join(format!("metrics-alerts-cas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("alerts.db");
    // Two connections to one file, as two processes would have.
    let one = SqliteAlertStore::open(&path).unwrap();
    let two = SqliteAlertStore::open(&path).unwrap();
    let a = alert("acme-prod", URL, json!({}));
    one.create(&a, &metrics_alerts::signing::new_secret().unwrap(), 10)
        .await
        .unwrap();
    let read = two.get("acme-prod", &a.id).await.unwrap().unwrap().state;
    let next = AlertState {
        version: read.version + 1,
        next_due_ms: T0,
        ..read.clone()
    };
    one.write_state("acme-prod", &a.id, read.version, &next)
        .await
        .unwrap();
    assert_eq!(
        two.write_state("acme-prod", &a.id, read.version, &next).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(two.get("acme-prod", &a.id).await.unwrap().unwrap().state, next);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn due_alerts_and_recent_events() {
    let store = SqliteAlertStore::in_memory().unwrap();
    let secret = metrics_alerts::signing::new_secret().unwrap();
    let a = alert("acme-prod", URL, json!({}));
    let b = alert("globex", URL, json!({}));
    store.create(&a, &secret, 10).await.unwrap();
    store.create(&b, &secret, 10).await.unwrap();
    let later = AlertState {
        version: 1,
        next_due_ms: T0 + 60_000,
        ..AlertState::default()
    };
    store.write_state("globex", &b.id, 0, &later).await.unwrap();
    let due: Vec<String> = store
        .due(T0, T0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.alert.id)
        .collect();
    assert_eq!(due, vec![a.id.clone()]);
    assert_eq!(store.due(T0 + 60_000, T0, 10).await.unwrap().len(), 2);

    for i in 0..(metrics_alerts::store::MAX_EVENTS + 5) {
        let event = AlertEvent {
            at_ms: i as i64,
            kind: "evaluated".into(),
            detail: json!({"i": i}),
        };
        store.add_event("acme-prod", &a.id, &event).await.unwrap();
    }
    let events = store.events("acme-prod", &a.id, 1_000).await.unwrap();
    assert_eq!(events.len(), metrics_alerts::store::MAX_EVENTS);
    assert_eq!(events[0].detail["i"], metrics_alerts::store::MAX_EVENTS + 4);
    assert!(store.events("globex", &a.id, 10).await.unwrap().is_empty());
}
