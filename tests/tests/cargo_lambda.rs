//! The README's way to try a function: `cargo lambda invoke --data-file` with the payloads under
//! `events/`, for all five functions, and the answers they must give.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

use metrics_e2e::fixtures::{aws_env, borrowed, keys_under, put_object, rows, s3, vendor_env};
use metrics_e2e::{Emulator, TempDir, read_json, workspace_file};
use metrics_testkit::Moto;
use metrics_vendorsim::{Sim, Target};
use serde_json::{Value, json};

/// Puts `events/writer/sample-batch.ndjson` at the key the trigger payload `trigger` names.
async fn put_sample_batch(client: &aws_sdk_s3::Client, trigger: &str) -> String {
    let key = object_key(&read_json(&workspace_file(trigger)));
    let batch = std::fs::read(workspace_file("events/writer/sample-batch.ndjson")).unwrap();
    put_object(client, &key, &batch).await;
    key
}

/// The object key of an S3 notification, direct or inside an SQS message.
fn object_key(trigger: &Value) -> String {
    let record = &trigger["Records"][0];
    let s3 = match record["body"].as_str() {
        Some(body) => serde_json::from_str::<Value>(body).unwrap()["Records"][0]["s3"].clone(),
        None => record["s3"].clone(),
    };
    s3["object"]["key"].as_str().unwrap().to_owned()
}

fn expected(path: &str) -> Value {
    read_json(&workspace_file(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_answers_exactly_the_expected_responses() {
    let mut emulator = Emulator::start();
    emulator.function(
        "metrics-enrich",
        &[("TENANTS_FILE", "events/enrich/tenants.json")],
    );
    for name in ["all-valid", "every-invalid"] {
        let payload = workspace_file(&format!("events/enrich/{name}.json"));
        let answer = emulator.invoke("metrics-enrich", &payload).await;
        assert_eq!(
            answer,
            expected(&format!("events/enrich/{name}.expected.json")),
            "events/enrich/{name}.json"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_stores_the_sample_batch_and_query_answers_only_for_the_callers_tenant() {
    let moto = Moto::start();
    let client = s3(&moto).await;
    let key = put_sample_batch(&client, "events/writer/sqs-event.json").await;
    let dir = TempDir::new("writer-query");
    let store = dir.path().join("store.db");
    let store_path = store.to_str().unwrap();
    let aws = aws_env(&moto);
    let mut env = borrowed(&aws);
    env.extend([("METRICS_STORE", "embedded"), ("EMBEDDED_STORE_PATH", store_path)]);

    let mut emulator = Emulator::start();
    emulator.function("metrics-writer", &env);
    let answer = emulator
        .invoke("metrics-writer", &workspace_file("events/writer/sqs-event.json"))
        .await;
    assert_eq!(answer, expected("events/writer/sqs-event.expected.json"));
    // Three valid events for two tenants; the one without tenant_id is a dead letter.
    assert_eq!(rows(&store, "acme-prod"), 2);
    assert_eq!(rows(&store, "globex"), 1);
    let dead = keys_under(&client, "Error/writer/").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].contains(key.trim_end_matches(".gz")),
        "{dead:?} for {key}"
    );

    emulator.function("metrics-query", &env);
    for name in ["series-acme-prod", "metrics-globex", "series-no-tenant-claim"] {
        let payload = workspace_file(&format!("events/query/{name}.json"));
        let answer = emulator.invoke("metrics-query", &payload).await;
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        let want = expected(&format!("events/query/{name}.expected.json"));
        assert_eq!(
            json!({"statusCode": answer["statusCode"], "body": body}),
            want,
            "events/query/{name}.json"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_sends_the_sample_batch_to_both_vendors_once() {
    let moto = Moto::start();
    let client = s3(&moto).await;
    put_sample_batch(&client, "events/forwarder/s3-object-created.json").await;
    let sim = Sim::start_local().await.unwrap();
    let mut vars = aws_env(&moto);
    vars.extend(vendor_env(&sim.endpoint()));
    let env = borrowed(&vars);

    let mut emulator = Emulator::start();
    emulator.function("metrics-forwarder", &env);
    for name in ["s3-object-created", "sqs-s3-notification"] {
        let answer = emulator
            .invoke(
                "metrics-forwarder",
                &workspace_file(&format!("events/forwarder/{name}.json")),
            )
            .await;
        assert_eq!(
            answer,
            expected(&format!("events/forwarder/{name}.expected.json")),
            "events/forwarder/{name}.json"
        );
    }

    // Three valid events reach each vendor once: the SQS payload names the same object again,
    // and the progress markers say both destinations are done with it.
    let state = sim.client().state().await.unwrap();
    assert_eq!(state.segment.accepted.len(), 3, "{:?}", state.segment);
    assert_eq!(state.mixpanel.accepted.len(), 3, "{:?}", state.mixpanel);
    for target in [Target::Segment, Target::Mixpanel] {
        let sent: Vec<_> = state.requests.iter().filter(|r| r.target == target).collect();
        assert_eq!(sent.len(), 1, "{target:?}: {sent:?}");
        assert_eq!((sent[0].status, sent[0].events), (200, 3), "{target:?}");
    }
    // The event without tenant_id is dead-lettered for each destination.
    let dead = keys_under(&client, "Error/forwarder/").await;
    assert_eq!(dead.len(), 2, "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_evaluator_evaluates_due_alerts_and_never_posts_to_a_local_address() {
    use metrics_alerts::store::dynamodb::{DynamoAlertStore, create_table};
    use metrics_alerts::{Alert, AlertInput, AlertLimits, AlertStore, UrlPolicy};

    // The writer's store, as in the query test: acme-prod's uploads on 23 November 2026.
    let moto = Moto::start();
    let client = s3(&moto).await;
    put_sample_batch(&client, "events/writer/sqs-event.json").await;
    let dir = TempDir::new("alerts");
    let store = dir.path().join("store.db");
    let aws = aws_env(&moto);
    let mut env = borrowed(&aws);
    env.extend([
        ("METRICS_STORE", "embedded"),
        ("EMBEDDED_STORE_PATH", store.to_str().unwrap()),
        ("ALERTS_TABLE", "alerts"),
    ]);
    let mut emulator = Emulator::start();
    emulator.function("metrics-writer", &env);
    let answer = emulator
        .invoke("metrics-writer", &workspace_file("events/writer/sqs-event.json"))
        .await;
    assert_eq!(answer, expected("events/writer/sqs-event.expected.json"));

    // Two alerts of acme-prod over the last hour (no data in it now): one holds (below 1) and
    // names a receiver on 127.0.0.1, which the deployed evaluator never calls; one does not hold.
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamo, "alerts").await.unwrap();
    let alerts = DynamoAlertStore::new(dynamo, "alerts");
    let alert = |threshold: &str, kind: &str| {
        let input: AlertInput = serde_json::from_value(json!({
            "name": kind, "metric": "findings_upload_completed", "measure": "new_findings_count",
            "aggregation": "sum", "window": "1h", "interval": "5m",
            "condition": {"type": kind, "threshold": threshold.parse::<f64>().unwrap()},
            "url": "http://127.0.0.1:9/hook"
        }))
        .unwrap();
        Alert {
            id: metrics_alerts::store::new_id().unwrap(),
            tenant: "acme-prod".into(),
            definition: input
                .validate(&AlertLimits::default(), UrlPolicy::LOCAL, None)
                .unwrap(),
            created_ms: 0,
            updated_ms: 0,
        }
    };
    let (holds, quiet) = (alert("1", "below"), alert("2", "above"));
    let secret = metrics_alerts::signing::new_secret().unwrap();
    for a in [&holds, &quiet] {
        alerts.create(a, &secret, 10).await.unwrap();
    }

    emulator.function("metrics-alert-evaluator", &env);
    let payload = workspace_file("events/alerts/scheduled-event.json");
    let first = emulator.invoke("metrics-alert-evaluator", &payload).await;
    assert_eq!(
        (
            &first["evaluated"],
            &first["transitions"],
            &first["delivered"],
            &first["dead_lettered"]
        ),
        (&json!(2), &json!(1), &json!(0), &json!(1)),
        "{first}"
    );
    let events = alerts.events("acme-prod", &holds.id, 10).await.unwrap();
    assert_eq!(events[0].kind, "dead_lettered");
    assert_eq!(events[0].detail["delivery"]["reason"], "invalid_url");
    let stored = alerts.get("acme-prod", &holds.id).await.unwrap().unwrap();
    assert_eq!(stored.state.status, metrics_alerts::Status::Firing);
    // Evaluated a moment ago: nothing is due on the next run.
    let second = emulator.invoke("metrics-alert-evaluator", &payload).await;
    assert_eq!(
        (&second["evaluated"], &second["transitions"]),
        (&json!(0), &json!(0)),
        "{second}"
    );
}
