//! Evaluations end to end: a SQLite store, the real delivery client, a receiver on 127.0.0.1.

use std::sync::Arc;

use metrics_alerts::state::{Pending, TransitionKind};
use metrics_alerts::{AlertOutcome, AlertStore, Status};
use serde_json::json;

use crate::common::{Kit, MINUTE, Receiver, T0, TableReader, alert};

const HOUR: i64 = 60 * MINUTE;

#[tokio::test]
async fn a_transition_is_sent_once_signed_and_the_way_back_once() {
    let receiver = Receiver::start().await;
    let kit = Kit::new(TableReader::default());
    let a = alert("acme-prod", &receiver.url("/hook"), json!({}));
    let secret = kit.add(&a).await;
    kit.reader.set("acme-prod", T0 - HOUR, 7.0);
    let evaluator = kit.evaluator();

    let report = evaluator.run_due(T0).await.unwrap();
    assert_eq!((report.transitions, report.delivered), (1, 1), "{report:?}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, format!("{}.1.firing", a.id));
    assert!(got[0].verifies(&secret, T0 / 1000));
    let body = got[0].json();
    assert_eq!(body["type"], "alert.firing");
    assert_eq!(body["data"]["value"], 7.0);
    assert_eq!(body["data"]["alert_id"], a.id.as_str());

    // The same time again: not due, nothing sent. A minute later, still above: nothing sent.
    assert_eq!(evaluator.run_due(T0).await.unwrap().evaluated, 0);
    kit.reader.set("acme-prod", T0 + MINUTE - HOUR, 9.0);
    let report = evaluator.run_due(T0 + MINUTE).await.unwrap();
    assert_eq!((report.evaluated, report.transitions), (1, 0));
    assert_eq!(receiver.received().len(), 1);

    // Two hours on, no data: a sum of nothing is 0, the alert resolves, once.
    let report = evaluator.run_due(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(report.delivered, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].id, format!("{}.2.resolved", a.id));
    assert_eq!(got[1].json()["type"], "alert.resolved");
    assert!(got[1].verifies(&secret, T0 / 1000));
    let stored = kit.store.get("acme-prod", &a.id).await.unwrap().unwrap();
    assert_eq!(stored.state.status, Status::Resolved);
    assert_eq!(stored.state.pending, None);
    let events = kit.store.events("acme-prod", &a.id, 10).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["delivered", "evaluated", "evaluated", "delivered", "evaluated"]
    );
}

#[tokio::test]
async fn a_receiver_that_fails_then_recovers_gets_one_delivery_per_transition() {
    let receiver = Receiver::start().await;
    receiver.script(&[500, 503]);
    let kit = Kit::new(TableReader::default());
    let a = alert("acme-prod", &receiver.url("/hook"), json!({}));
    let secret = kit.add(&a).await;
    kit.reader.set("acme-prod", T0 - HOUR, 7.0);
    let evaluator = kit.evaluator();

    let report = evaluator.run_due(T0).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let got = receiver.received();
    // Three attempts at one message: the same webhook-id, each signed on its own.
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.id == format!("{}.1.firing", a.id)));
    assert!(got.iter().all(|r| r.verifies(&secret, T0 / 1000)));
    let events = kit.store.events("acme-prod", &a.id, 1).await.unwrap();
    assert_eq!(events[0].kind, "delivered");
    assert_eq!(events[0].detail["delivery"]["attempts"], 3);

    // Later evaluations while still firing send nothing more.
    kit.reader.set("acme-prod", T0 + MINUTE - HOUR, 8.0);
    evaluator.run_due(T0 + MINUTE).await.unwrap();
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_gets_a_dead_letter_with_a_reason_and_no_repeat() {
    let receiver = Receiver::start().await;
    receiver.script(&[500, 500, 500]);
    let kit = Kit::new(TableReader::default());
    let a = alert("acme-prod", &receiver.url("/hook"), json!({}));
    kit.add(&a).await;
    kit.reader.set("acme-prod", T0 - HOUR, 7.0);
    let evaluator = kit.evaluator();

    let report = evaluator.run_due(T0).await.unwrap();
    assert_eq!((report.transitions, report.dead_lettered), (1, 1), "{report:?}");
    let events = kit.store.events("acme-prod", &a.id, 1).await.unwrap();
    assert_eq!(events[0].kind, "dead_lettered");
    assert_eq!(events[0].detail["delivery"]["reason"], "receiver_failed");
    assert_eq!(events[0].detail["delivery"]["status"], 500);
    let stored = kit.store.get("acme-prod", &a.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state.status, stored.state.pending),
        (Status::Firing, None)
    );
    kit.reader.set("acme-prod", T0 + MINUTE - HOUR, 7.0);
    evaluator.run_due(T0 + MINUTE).await.unwrap();
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn overlapping_evaluations_send_a_transition_once() {
    let receiver = Receiver::start().await;
    // Both evaluators read before either writes: the barrier lets them through together.
    let kit = Kit::new(TableReader {
        gate: Some(Arc::new(tokio::sync::Barrier::new(2))),
        ..TableReader::default()
    });
    let a = alert("acme-prod", &receiver.url("/hook"), json!({}));
    kit.add(&a).await;
    kit.reader.set("acme-prod", T0 - HOUR, 7.0);
    let (first, second) = (kit.evaluator(), kit.evaluator());

    let (r1, r2) = tokio::join!(first.run_due(T0), second.run_due(T0));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.delivered + r2.delivered, 1, "{r1:?} {r2:?}");
    assert_eq!(r1.conflicts + r2.conflicts, 1, "{r1:?} {r2:?}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_notification_left_by_a_dead_evaluator_is_sent_once_when_its_claim_expires() {
    let receiver = Receiver::start().await;
    let kit = Kit::new(TableReader::default());
    let a = alert("acme-prod", &receiver.url("/hook"), json!({}));
    kit.add(&a).await;
    // An evaluator wrote the transition, claimed it until T0 + 1 min, and died.
    let mut state = kit.store.get("acme-prod", &a.id).await.unwrap().unwrap().state;
    let written = metrics_alerts::AlertState {
        status: Status::Firing,
        version: state.version + 1,
        transitions: 1,
        next_due_ms: T0 + HOUR,
        pending: Some(Pending {
            key: format!("{}.1.firing", a.id),
            kind: TransitionKind::Firing,
            body: "{\"type\":\"alert.firing\"}".into(),
            claimed_until_ms: T0 + MINUTE,
        }),
        ..state.clone()
    };
    kit.store
        .write_state("acme-prod", &a.id, state.version, &written)
        .await
        .unwrap();
    state = written;
    let evaluator = kit.evaluator();

    // Claimed by someone else: left alone.
    assert_eq!(evaluator.run_due(T0).await.unwrap().delivered, 0);
    assert!(receiver.received().is_empty());
    // The claim expired: taken over and sent once, with the transition's own key.
    kit.clock.set(T0 + 2 * MINUTE);
    let stored = kit.store.get("acme-prod", &a.id).await.unwrap().unwrap();
    assert_eq!(stored.state, state);
    assert_eq!(
        evaluator.evaluate(stored, T0 + 2 * MINUTE, None).await,
        AlertOutcome::NotDue
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, format!("{}.1.firing", a.id));
    assert_eq!(
        kit.store
            .get("acme-prod", &a.id)
            .await
            .unwrap()
            .unwrap()
            .state
            .pending,
        None
    );
    evaluator.run_due(T0 + 3 * MINUTE).await.unwrap();
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn each_alert_reads_only_its_own_tenant_and_a_failing_read_changes_nothing() {
    let receiver = Receiver::start().await;
    let kit = Kit::new(TableReader::default());
    let a = alert("acme-prod", &receiver.url("/hook"), json!({}));
    let b = alert(
        "globex",
        &receiver.url("/hook"),
        json!({"filters": {"repo_name": "api"}}),
    );
    let broken = alert("initech", &receiver.url("/hook"), json!({"metric": "broken"}));
    for x in [&a, &b, &broken] {
        kit.add(x).await;
    }
    let report = kit.evaluator().run_due(T0).await.unwrap();
    assert_eq!((report.evaluated, report.read_failed), (2, 1), "{report:?}");
    let asked = kit.reader.asked.lock().unwrap().clone();
    for (tenant, query) in &asked {
        let expected = match query.metric.as_str() {
            "broken" => "initech",
            _ if query.filters.is_empty() => "acme-prod",
            _ => "globex",
        };
        assert_eq!(tenant, expected, "{query:?}");
        assert_eq!((query.from_ms, query.to_ms), (T0 - HOUR, T0));
    }
    let stored = kit.store.get("initech", &broken.id).await.unwrap().unwrap();
    assert_eq!(stored.state.version, 0);
    let events = kit.store.events("initech", &broken.id, 1).await.unwrap();
    assert_eq!(events[0].kind, "read_failed");
}

#[tokio::test]
async fn change_pct_compares_with_the_previous_window_and_absent_fires_on_no_data() {
    let receiver = Receiver::start().await;
    let kit = Kit::new(TableReader::default());
    let up = alert(
        "acme-prod",
        &receiver.url("/hook"),
        json!({"window": "7d", "aggregation": "avg", "condition": {"type": "change_pct", "threshold": 50}}),
    );
    let quiet = alert(
        "globex",
        &receiver.url("/hook"),
        json!({"window": "1d", "measure": null, "aggregation": "count", "condition": {"type": "absent"}}),
    );
    kit.add(&up).await;
    kit.add(&quiet).await;
    let week = 7 * 24 * HOUR;
    kit.reader.set("acme-prod", T0 - week, 15.0);
    kit.reader.set("acme-prod", T0 - 2 * week, 10.0);
    let report = kit.evaluator().run_due(T0).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    let mut types: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            let j = r.json();
            (
                j["data"]["alert_id"].as_str().unwrap().to_owned(),
                j["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    types.sort();
    let mut expected = vec![
        (up.id.clone(), "alert.firing".to_owned()),
        (quiet.id.clone(), "alert.firing".to_owned()),
    ];
    expected.sort();
    assert_eq!(types, expected);
    let fired = receiver
        .received()
        .into_iter()
        .find(|r| r.json()["data"]["alert_id"] == up.id.as_str())
        .unwrap();
    assert_eq!(fired.json()["data"]["previous_value"], 10.0);
}

#[tokio::test]
async fn a_tenant_whose_store_never_answers_uses_up_only_its_own_budget() {
    let receiver = Receiver::start().await;
    let kit = Kit::new(TableReader::default());
    let stuck = alert("abc-stuck", &receiver.url("/hook"), json!({"metric": "hangs"}));
    let stuck_too = alert("abc-stuck", &receiver.url("/hook"), json!({"metric": "hangs"}));
    let fine = alert("acme-prod", &receiver.url("/hook"), json!({}));
    for a in [&stuck, &stuck_too, &fine] {
        kit.add(a).await;
    }
    kit.reader.set("acme-prod", T0 - HOUR, 7.0);
    // One tenant at a time, the stuck one first (tenants run in id order): without its budget
    // it would hold back the other.
    let evaluator = kit.evaluator_with(metrics_alerts::EvaluatorSettings {
        concurrency: 1,
        tenant_budget: std::time::Duration::from_millis(200),
        ..Default::default()
    });
    let report = evaluator.run_due(T0).await.unwrap();
    assert_eq!((report.over_budget, report.delivered), (2, 1), "{report:?}");
    assert_eq!(receiver.received().len(), 1);
    // The stuck tenant's alerts stay due for the next run, their state untouched.
    for a in [&stuck, &stuck_too] {
        assert_eq!(
            kit.store
                .get("abc-stuck", &a.id)
                .await
                .unwrap()
                .unwrap()
                .state
                .version,
            0
        );
    }
    assert_eq!(kit.store.due(T0, T0, 10).await.unwrap().len(), 2);
}
