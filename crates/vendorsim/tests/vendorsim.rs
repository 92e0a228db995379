//! The simulator over real HTTP: each vendor's documented auth, limits and answers, its dedup,
//! and the programmable faults.
#![allow(clippy::unwrap_used)] // helpers of tests: failing loudly is the point

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_vendorsim::auth::basic_header;
use metrics_vendorsim::{Credentials, Fault, Settings, Sim, Target};
use serde_json::{Value, json};

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn post(sim: &Sim, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::post(format!("{}{path}", sim.endpoint()));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn segment_headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        (
            "authorization",
            basic_header(&Credentials::test().segment_write_key, ""),
        ),
    ]
}

fn service_account() -> Vec<(&'static str, String)> {
    let c = Credentials::test();
    vec![
        ("content-type", "application/json".into()),
        (
            "authorization",
            basic_header(&c.mixpanel_service_account, &c.mixpanel_service_secret),
        ),
    ]
}

const IMPORT: &str = "/import?strict=1&project_id=424242";

fn track(message_id: &str) -> Value {
    json!({"type": "track", "event": "scan_started", "messageId": message_id, "anonymousId": "tenant:acme",
           "timestamp": "2026-11-23T10:00:00.000Z", "properties": {"n": 1}})
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn mp_event(insert_id: &str, time: i64) -> Value {
    json!({"event": "scan_started", "properties": {"time": time, "distinct_id": "tenant:acme", "$insert_id": insert_id, "ip": "0"}})
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn segment_accepts_a_batch_and_keeps_one_event_per_message_id() {
    let sim = Sim::start_local().await.unwrap();
    let body = json!({"batch": [track("m1"), track("m2"), track("m1")]});
    let answer = post(
        &sim,
        "/v1/batch",
        &segment_headers(),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let state = sim.client().state().await.unwrap();
    assert_eq!(state.segment.received, 3);
    let ids: Vec<&str> = state
        .segment
        .accepted
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1", "m2"]);
}

#[tokio::test]
async fn segment_checks_the_write_key_in_the_header_or_the_body() {
    let sim = Sim::start_local().await.unwrap();
    let body = serde_json::to_vec(&json!({"batch": [track("m1")]})).unwrap();
    let wrong = vec![
        ("content-type", "application/json".into()),
        ("authorization", basic_header("nope", "")),
    ];
    assert_eq!(post(&sim, "/v1/batch", &wrong, body.clone()).await.status, 401);
    let in_body = json!({"batch": [track("m2")], "writeKey": Credentials::test().segment_write_key});
    let plain = vec![("content-type", "application/json".into())];
    assert_eq!(
        post(&sim, "/v1/batch", &plain, serde_json::to_vec(&in_body).unwrap())
            .await
            .status,
        200
    );
    assert_eq!(sim.client().state().await.unwrap().segment.accepted.len(), 1);
}

#[tokio::test]
async fn segment_limits_are_400_and_a_2501_event_batch_is_200_but_dropped() {
    let sim = Sim::start_local().await.unwrap();
    // One event of exactly 32,000 bytes passes; one byte more is refused.
    let item_of = |size: usize| {
        let empty = serde_json::to_vec(
            &json!({"type": "track", "event": "e", "anonymousId": "a", "properties": {"pad": ""}}),
        )
        .unwrap();
        json!({"type": "track", "event": "e", "anonymousId": "a", "properties": {"pad": "y".repeat(size - empty.len())}})
    };
    for (size, status) in [(32_000, 200), (32_001, 400)] {
        let body = serde_json::to_vec(&json!({"batch": [item_of(size)]})).unwrap();
        assert_eq!(
            post(&sim, "/v1/batch", &segment_headers(), body).await.status,
            status,
            "event of {size}"
        );
    }
    // Bodies at the 500,000-byte limit (made of events under 32,000 bytes each).
    let batch_of = |size: usize| {
        let mut items: Vec<Value> = (0..16).map(|_| item_of(31_000)).collect();
        let used = serde_json::to_vec(&json!({"batch": items})).unwrap().len();
        items.push(item_of(size - used - 1));
        serde_json::to_vec(&json!({"batch": items})).unwrap()
    };
    assert_eq!(batch_of(500_000).len(), 500_000);
    assert_eq!(
        post(&sim, "/v1/batch", &segment_headers(), batch_of(500_000))
            .await
            .status,
        200
    );
    assert_eq!(
        post(&sim, "/v1/batch", &segment_headers(), batch_of(500_001))
            .await
            .status,
        400
    );
    assert_eq!(
        post(&sim, "/v1/batch", &segment_headers(), b"{not json".to_vec())
            .await
            .status,
        400
    );

    sim.client().reset().await.unwrap();
    let many: Vec<Value> = (0..2501).map(|i| track(&format!("m{i}"))).collect();
    let answer = post(
        &sim,
        "/v1/batch",
        &segment_headers(),
        serde_json::to_vec(&json!({"batch": many})).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let state = sim.client().state().await.unwrap();
    assert!(state.segment.accepted.is_empty());
    assert_eq!(state.segment.rejected.len(), 2501);
    assert_eq!(state.segment.rejected[0].reason, "batch_over_2500_events");
}

#[tokio::test]
async fn segment_drops_events_without_an_identity_while_answering_200() {
    let sim = Sim::start_local().await.unwrap();
    let body = json!({"batch": [{"type": "track", "event": "e", "messageId": "x"}, track("ok")]});
    assert_eq!(
        post(
            &sim,
            "/v1/batch",
            &segment_headers(),
            serde_json::to_vec(&body).unwrap()
        )
        .await
        .status,
        200
    );
    let state = sim.client().state().await.unwrap();
    assert_eq!(state.segment.accepted.len(), 1);
    assert_eq!(state.segment.rejected[0].reason, "no_user_anon_id");
}

#[tokio::test]
async fn mixpanel_strict_mode_imports_valid_events_and_lists_the_failed_ones() {
    let sim = Sim::start_local().await.unwrap();
    let events = json!([
        mp_event("good-1", now_ms()),
        mp_event("bad_id", now_ms()),
        mp_event("old-1", 1000),
        mp_event("good-2", now_ms())
    ]);
    let mut headers = service_account();
    headers.push(("content-encoding", "gzip".into()));
    let answer = post(
        &sim,
        IMPORT,
        &headers,
        gzip(&serde_json::to_vec(&events).unwrap()),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["num_records_imported"], 2);
    let failed = answer.body["failed_records"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        (failed[0]["index"].clone(), failed[0]["$insert_id"].clone()),
        (json!(1), json!("bad_id"))
    );
    assert_eq!(
        (failed[1]["index"].clone(), failed[1]["field"].clone()),
        (json!(2), json!("properties.time"))
    );
    let state = sim.client().state().await.unwrap();
    assert_eq!(state.mixpanel.accepted.len(), 2);
    assert!(state.requests[0].gzip);

    // The other spelling of the key, as on Mixpanel's 400 page.
    sim.client()
        .settings(&Settings {
            failed_records_key: Some("insert_id".into()),
            ..Settings::default()
        })
        .await
        .unwrap();
    let answer = post(
        &sim,
        IMPORT,
        &service_account(),
        serde_json::to_vec(&json!([mp_event("bad_id", now_ms())])).unwrap(),
    )
    .await;
    assert_eq!(answer.body["failed_records"][0]["insert_id"], "bad_id");
}

#[tokio::test]
async fn mixpanel_keeps_one_event_per_name_time_distinct_id_and_insert_id() {
    let sim = Sim::start_local().await.unwrap();
    let t = now_ms();
    let events = json!([
        mp_event("a", t),
        mp_event("a", t),
        mp_event("a", t + 1),
        mp_event("b", t)
    ]);
    assert_eq!(
        post(
            &sim,
            IMPORT,
            &service_account(),
            serde_json::to_vec(&events).unwrap()
        )
        .await
        .status,
        200
    );
    let state = sim.client().state().await.unwrap();
    assert_eq!((state.mixpanel.received, state.mixpanel.accepted.len()), (4, 3));
}

#[tokio::test]
async fn mixpanel_checks_service_account_and_project_token_auth() {
    let sim = Sim::start_local().await.unwrap();
    let c = Credentials::test();
    let body = || serde_json::to_vec(&json!([mp_event("a", now_ms())])).unwrap();
    let token = vec![("authorization", basic_header(&c.mixpanel_project_token, ""))];
    assert_eq!(post(&sim, "/import?strict=1", &token, body()).await.status, 200);
    let wrong_project = "/import?strict=1&project_id=1";
    assert_eq!(
        post(&sim, wrong_project, &service_account(), body()).await.status,
        401
    );
    let bad_secret = vec![("authorization", basic_header(&c.mixpanel_service_account, "nope"))];
    assert_eq!(post(&sim, IMPORT, &bad_secret, body()).await.status, 401);
    assert_eq!(post(&sim, IMPORT, &[], body()).await.status, 401);
}

#[tokio::test]
async fn mixpanel_size_is_measured_uncompressed_and_counts_are_capped_at_2000() {
    let sim = Sim::start_local().await.unwrap();
    let events: Vec<Value> = (0..2001)
        .map(|i| mp_event(&format!("id-{i}"), now_ms()))
        .collect();
    let answer = post(
        &sim,
        IMPORT,
        &service_account(),
        serde_json::to_vec(&events).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 400);

    // Lower the limit to a body's exact size: accepted; one byte less: 413, even gzipped.
    let body = serde_json::to_vec(&json!([mp_event("a", now_ms())])).unwrap();
    sim.client()
        .settings(&Settings {
            mixpanel_max_bytes: Some(body.len()),
            ..Settings::default()
        })
        .await
        .unwrap();
    let mut gz = service_account();
    gz.push(("content-encoding", "gzip".into()));
    assert_eq!(post(&sim, IMPORT, &gz, gzip(&body)).await.status, 200);
    sim.client()
        .settings(&Settings {
            mixpanel_max_bytes: Some(body.len() - 1),
            ..Settings::default()
        })
        .await
        .unwrap();
    let answer = post(&sim, IMPORT, &gz, gzip(&body)).await;
    assert_eq!(answer.status, 413);
    assert!(answer.body["error"].as_str().unwrap().contains("max limit"));
}

#[tokio::test]
async fn faults_answer_the_next_requests_then_normal_service_resumes() {
    let sim = Sim::start_local().await.unwrap();
    let fault = Fault {
        target: Target::Segment,
        status: Some(429),
        count: 2,
        retry_after: Some("3".into()),
        delay_ms: 0,
        body: None,
    };
    sim.client().fault(&fault).await.unwrap();
    let body = || serde_json::to_vec(&json!({"batch": [track("m1")]})).unwrap();
    for _ in 0..2 {
        let answer = post(&sim, "/v1/batch", &segment_headers(), body()).await;
        assert_eq!((answer.status, answer.retry_after.as_deref()), (429, Some("3")));
    }
    assert_eq!(
        post(&sim, "/v1/batch", &segment_headers(), body()).await.status,
        200
    );

    // A fault for one vendor leaves the other alone; a delay-only fault slows without failing.
    let slow = Fault {
        target: Target::Mixpanel,
        status: None,
        count: 1,
        retry_after: None,
        delay_ms: 300,
        body: None,
    };
    sim.client()
        .fault(&Fault {
            status: Some(503),
            ..slow.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        post(&sim, "/v1/batch", &segment_headers(), body()).await.status,
        200
    );
    let mp = || serde_json::to_vec(&json!([mp_event("a", now_ms())])).unwrap();
    assert_eq!(post(&sim, IMPORT, &service_account(), mp()).await.status, 503);
    sim.client().fault(&slow).await.unwrap();
    let started = Instant::now();
    assert_eq!(post(&sim, IMPORT, &service_account(), mp()).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<u16> = sim
        .client()
        .state()
        .await
        .unwrap()
        .requests
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200, 200, 503, 200]);
}
