//! Delivery against the vendor simulator over 127.0.0.1: retries, Retry-After, timeouts, 413
//! splitting, strict-mode partial failures, permanent refusals, the deadline, concurrency.
#![allow(clippy::unwrap_used)] // helpers of tests: failing loudly is the point

use super::common;

use std::time::{Duration, Instant};

use common::{config, event_line, now_ms};
use metrics_forwarder::Config;
use metrics_forwarder::Secret;
use metrics_forwarder::deliver::{DeliveryOptions, deliver};
use metrics_forwarder::destination::mixpanel::{Mixpanel, MixpanelAuth};
use metrics_forwarder::destination::segment::Segment;
use metrics_forwarder::http::HttpClient;
use metrics_forwarder::retry::Deadline;
use metrics_schema::{EventTime, UnifiedEvent, parse_event};
use metrics_vendorsim::{Credentials, Fault, Settings, Sim, Target};

fn segment(sim: &Sim, c: &Config, key: &str) -> Segment {
    Segment::new(
        c.segment.format.clone(),
        &sim.endpoint(),
        &Secret::new(key),
        HttpClient::new().unwrap(),
    )
    .unwrap()
}

fn mixpanel(sim: &Sim, c: &Config) -> Mixpanel {
    let t = Credentials::test();
    let auth = MixpanelAuth::ServiceAccount {
        project_id: t.mixpanel_project_id,
        username: t.mixpanel_service_account,
        secret: Secret::new(t.mixpanel_service_secret),
    };
    Mixpanel::new(
        c.mixpanel.format.clone(),
        &sim.endpoint(),
        &auth,
        HttpClient::new().unwrap(),
    )
    .unwrap()
}

fn options(c: &Config, deadline: Duration) -> DeliveryOptions {
    DeliveryOptions {
        concurrency: c.concurrency,
        retry: c.retry,
        request_timeout: c.request_timeout,
        deadline: Deadline::after(deadline),
    }
}

fn lines(n: usize, time_ms: i64) -> Vec<String> {
    (0..n)
        .map(|i| event_line("scan_started", "acme-prod", &format!("evt-{i}"), time_ms))
        .collect()
}

fn parse(lines: &[String]) -> Vec<UnifiedEvent<'_>> {
    lines
        .iter()
        .map(|l| parse_event(l.as_bytes(), EventTime::now()).unwrap())
        .collect()
}

fn fault(target: Target, status: u16, count: u32) -> Fault {
    Fault {
        target,
        status: Some(status),
        count,
        retry_after: None,
        delay_ms: 0,
        body: None,
    }
}

#[tokio::test]
async fn both_vendors_accept_everything_and_a_resend_is_deduplicated() {
    let sim = Sim::start_local().await.unwrap();
    let c = config(&sim.endpoint(), &[]);
    let input = lines(50, now_ms());
    let events = parse(&input);
    let key = Credentials::test().segment_write_key;
    for _ in 0..2 {
        let s = deliver(
            &segment(&sim, &c, &key),
            &events,
            &options(&c, Duration::from_secs(10)),
        )
        .await;
        let m = deliver(
            &mixpanel(&sim, &c),
            &events,
            &options(&c, Duration::from_secs(10)),
        )
        .await;
        assert_eq!((s.accepted, s.requests, s.is_complete()), (50, 1, true));
        assert_eq!((m.accepted, m.requests, m.is_complete()), (50, 1, true));
    }
    let state = sim.client().state().await.unwrap();
    assert_eq!((state.segment.received, state.segment.accepted.len()), (100, 50));
    assert_eq!(
        (state.mixpanel.received, state.mixpanel.accepted.len()),
        (100, 50)
    );
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_delivers() {
    let sim = Sim::start_local().await.unwrap();
    let c = config(&sim.endpoint(), &[]);
    let f = Fault {
        retry_after: Some("1".into()),
        ..fault(Target::Mixpanel, 429, 1)
    };
    sim.client().fault(&f).await.unwrap();
    let input = lines(5, now_ms());
    let started = Instant::now();
    let report = deliver(
        &mixpanel(&sim, &c),
        &parse(&input),
        &options(&c, Duration::from_secs(10)),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!((report.accepted, report.requests, report.retries), (5, 2, 1));
}

#[tokio::test]
async fn server_errors_and_slow_answers_are_retried() {
    let sim = Sim::start_local().await.unwrap();
    let c = config(&sim.endpoint(), &[("HTTP_TIMEOUT_MS", "300")]);
    sim.client().fault(&fault(Target::Segment, 503, 2)).await.unwrap();
    sim.client()
        .fault(&Fault {
            status: None,
            delay_ms: 1000,
            ..fault(Target::Segment, 0, 1)
        })
        .await
        .unwrap();
    let input = lines(5, now_ms());
    let key = Credentials::test().segment_write_key;
    let report = deliver(
        &segment(&sim, &c, &key),
        &parse(&input),
        &options(&c, Duration::from_secs(10)),
    )
    .await;
    assert_eq!((report.accepted, report.requests, report.retries), (5, 4, 3));
    assert!(report.refused.is_empty() && report.deferred.is_empty());
}

#[tokio::test]
async fn a_413_splits_the_batch_until_it_fits() {
    let sim = Sim::start_local().await.unwrap();
    let c = config(&sim.endpoint(), &[]);
    let input = lines(8, now_ms());
    let events = parse(&input);
    // Room for about three events per request.
    let one = input[0].len();
    sim.client()
        .settings(&Settings {
            mixpanel_max_bytes: Some(one * 3),
            ..Settings::default()
        })
        .await
        .unwrap();
    let report = deliver(
        &mixpanel(&sim, &c),
        &events,
        &options(&c, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(report.accepted, 8);
    assert!(report.requests > 3, "{} requests", report.requests);
    let statuses: Vec<u16> = sim
        .client()
        .state()
        .await
        .unwrap()
        .requests
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses[0], 413);
    assert_eq!(sim.client().state().await.unwrap().mixpanel.accepted.len(), 8);

    // A single event that still does not fit is a dead letter, not an endless split.
    sim.client()
        .settings(&Settings {
            mixpanel_max_bytes: Some(10),
            ..Settings::default()
        })
        .await
        .unwrap();
    let report = deliver(
        &mixpanel(&sim, &c),
        &events[..2],
        &options(&c, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(report.refused.len(), 2);
    assert!(
        report
            .refused
            .iter()
            .all(|r| r.reason.code() == "payload_too_large")
    );
}

#[tokio::test]
async fn strict_mode_failures_are_refused_one_by_one_and_the_rest_counts_as_sent() {
    for key in ["$insert_id", "insert_id"] {
        let sim = Sim::start_local().await.unwrap();
        sim.client()
            .settings(&Settings {
                failed_records_key: Some(key.into()),
                ..Settings::default()
            })
            .await
            .unwrap();
        let c = config(&sim.endpoint(), &[]);
        // Mixpanel refuses times before 1971; the schema accepts them.
        let mut input = lines(4, now_ms());
        input[2] = event_line("scan_started", "acme-prod", "evt-old", 1_000);
        let report = deliver(
            &mixpanel(&sim, &c),
            &parse(&input),
            &options(&c, Duration::from_secs(10)),
        )
        .await;
        assert_eq!((report.accepted, report.requests), (3, 1), "{key}");
        assert_eq!(report.refused.len(), 1);
        assert_eq!(report.refused[0].index, 2);
        assert_eq!(report.refused[0].reason.code(), "mixpanel_validation_failed");
        assert!(
            report.refused[0].detail.contains("properties.time"),
            "{}",
            report.refused[0].detail
        );
        assert!(report.is_complete());
    }
}

#[tokio::test]
async fn a_permanent_4xx_refuses_the_batch_with_the_response() {
    let sim = Sim::start_local().await.unwrap();
    let c = config(&sim.endpoint(), &[]);
    let input = lines(3, now_ms());
    let report = deliver(
        &segment(&sim, &c, "wrong-key"),
        &parse(&input),
        &options(&c, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        (report.accepted, report.requests, report.refused.len()),
        (0, 1, 3)
    );
    assert_eq!(report.refused[0].reason.code(), "http_401");
    assert!(report.refused[0].detail.contains("invalid write key"));
    assert!(!report.refused[0].detail.contains("wrong-key"));
}

#[tokio::test]
async fn an_outage_longer_than_the_deadline_defers_the_events() {
    let sim = Sim::start_local().await.unwrap();
    let c = config(&sim.endpoint(), &[]);
    sim.client()
        .fault(&fault(Target::Mixpanel, 503, 1000))
        .await
        .unwrap();
    let input = lines(4, now_ms());
    let started = Instant::now();
    let report = deliver(
        &mixpanel(&sim, &c),
        &parse(&input),
        &options(&c, Duration::from_millis(1500)),
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(1600));
    assert_eq!(
        (report.accepted, report.refused.len(), report.deferred.len()),
        (0, 0, 4)
    );
    assert_eq!(report.deferred[0].reason.code(), "http_503");
    assert!(!report.is_complete());
    assert!(report.requests > 2);
}

#[tokio::test]
async fn requests_run_side_by_side_up_to_the_concurrency() {
    let sim = Sim::start_local().await.unwrap();
    sim.client()
        .settings(&Settings {
            latency_ms: Some(300),
            ..Settings::default()
        })
        .await
        .unwrap();
    // Events of about 20 KB: 24 per Segment request, so 96 events make 4 requests.
    let c = config(
        &sim.endpoint(),
        &[("SEGMENT_METADATA_FIELDS", "pad"), ("FORWARD_CONCURRENCY", "4")],
    );
    let input: Vec<String> = (0..96)
        .map(|i| {
            let mut v: serde_json::Value =
                serde_json::from_str(&event_line("m", "acme-prod", &format!("e{i}"), now_ms())).unwrap();
            for k in 0..10 {
                v["metadata"][if k == 0 { "pad".to_owned() } else { format!("x{k}") }] =
                    serde_json::json!("p".repeat(1990));
                v["data"][format!("s{k}")] = serde_json::json!("q".repeat(1990));
            }
            v.to_string()
        })
        .collect();
    let events = parse(&input);
    let key = Credentials::test().segment_write_key;
    let started = Instant::now();
    let report = deliver(
        &segment(&sim, &c, &key),
        &events,
        &options(&c, Duration::from_secs(10)),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(report.accepted, 96);
    assert!(report.requests >= 4, "{} requests", report.requests);
    // One after the other would take 4 × 300 ms.
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
}
