//! Payloads field by field against the vendors' documented formats, dedup ids that never
//! change, and batches split at the exact limits. Pure: no network.
#![allow(clippy::unwrap_used)] // helpers of tests: failing loudly is the point

use super::common;

use common::{config, event_line, lines};
use metrics_forwarder::{DestinationKind, Prepared, prepare};
use metrics_schema::{EventTime, UnifiedEvent, parse_event};
use serde_json::{Value, json};

const T: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

fn parse(lines: &[String]) -> Vec<UnifiedEvent<'_>> {
    lines
        .iter()
        .map(|l| parse_event(l.as_bytes(), EventTime::from_millis(T)).unwrap())
        .collect()
}

fn segment_items(prepared: &Prepared) -> Vec<Value> {
    prepared
        .requests
        .iter()
        .flat_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["batch"].as_array().unwrap().clone()
        })
        .collect()
}

fn mixpanel_items(prepared: &Prepared) -> Vec<Value> {
    prepared
        .requests
        .iter()
        .flat_map(|r| lines(&r.body)[0].as_array().unwrap().clone())
        .collect()
}

#[test]
fn a_segment_track_call_has_every_documented_field() {
    let c = config("http://127.0.0.1:1", &[("USER_ID_FIELD", "user_id")]);
    let input = vec![event_line("scan_started", "acme-prod", "evt-1", T + 123)];
    let prepared = prepare(&c, DestinationKind::Segment, &parse(&input));
    let request = &prepared.requests[0];
    assert_eq!((request.method, request.url_path.as_str()), ("POST", "/v1/batch"));
    assert!(
        request
            .headers
            .contains(&("content-type".into(), "application/json".into()))
    );
    assert!(request.headers.iter().all(|(name, _)| name != "authorization"));
    let item = &segment_items(&prepared)[0];
    assert_eq!(item["type"], "track");
    assert_eq!(item["event"], "scan_started");
    assert_eq!(item["timestamp"], "2026-11-23T10:00:00.123Z");
    assert_eq!(item["userId"], "user-evt-1");
    assert!(item.get("anonymousId").is_none() && item.get("sentAt").is_none());
    assert_eq!(item["context"]["groupId"], "acme-prod");
    assert_eq!(item["context"]["library"]["name"], "metrics-lake");
    // Data fields plus the default metadata selection; user fields stay home by default.
    assert_eq!(
        item["properties"],
        json!({"tenant_name": "Acme Corp", "environment": "test", "new_findings_count": 3, "duration_ms": 1.5,
               "success": true, "status": "ok"})
    );
    assert_eq!(item["messageId"].as_str().unwrap().len(), 64);
    assert_eq!(request.dedup_ids, [item["messageId"].as_str().unwrap()]);
    assert_eq!(request.event_ids, [Some("evt-1".to_owned())]);
}

#[test]
fn without_a_user_the_tenant_is_the_segment_anonymous_id() {
    let c = config("http://127.0.0.1:1", &[]);
    let input = vec![event_line("scan_started", "acme-prod", "evt-1", T)];
    let item = &segment_items(&prepare(&c, DestinationKind::Segment, &parse(&input)))[0];
    assert_eq!(item["anonymousId"], "tenant:acme-prod");
    assert!(item.get("userId").is_none());
}

#[test]
fn a_mixpanel_event_has_every_documented_field() {
    let c = config(
        "http://127.0.0.1:1",
        &[("MIXPANEL_METADATA_FIELDS", "tenant_name,tenant_id,user_email")],
    );
    let input = vec![event_line("scan_started", "acme-prod", "evt-1", T + 123)];
    let prepared = prepare(&c, DestinationKind::Mixpanel, &parse(&input));
    let request = &prepared.requests[0];
    assert_eq!(request.url_path, "/import?strict=1&project_id=424242");
    assert!(
        request
            .headers
            .contains(&("content-encoding".into(), "gzip".into()))
    );
    assert!(request.body.starts_with(&[0x1f, 0x8b]), "the body is gzip");
    let item = &mixpanel_items(&prepared)[0];
    assert_eq!(item["event"], "scan_started");
    let p = &item["properties"];
    assert_eq!(p["time"], T + 123, "milliseconds");
    assert_eq!(p["distinct_id"], "tenant:acme-prod");
    assert_eq!(p["$insert_id"], "evt-1", "a qualifying event_id is used as is");
    assert_eq!(p["ip"], "0");
    assert_eq!(p["tenant_id"], "acme-prod");
    assert_eq!(p["tenant_name"], "Acme Corp");
    assert_eq!(p["user_email"], "someone@example.com");
    assert_eq!(p["new_findings_count"], 3);
    assert_eq!(p.as_object().unwrap().len(), 11);
}

#[test]
fn pii_fields_are_dropped_or_hashed_per_destination() {
    let c = config(
        "http://127.0.0.1:1",
        &[
            ("USER_ID_FIELD", "user_id"),
            ("PII_HASH_SALT", "pepper"),
            ("MIXPANEL_METADATA_FIELDS", "*"),
            ("MIXPANEL_HASH_FIELDS", "user_id"),
            ("MIXPANEL_DROP_FIELDS", "user_email,status"),
        ],
    );
    let input = vec![event_line("scan_started", "acme-prod", "evt-1", T)];
    let events = parse(&input);
    let mixpanel = &mixpanel_items(&prepare(&c, DestinationKind::Mixpanel, &events))[0]["properties"];
    let hashed = metrics_forwarder::dedup::salted_hash("pepper", "user-evt-1");
    assert_eq!(mixpanel["distinct_id"], hashed.as_str());
    assert_eq!(mixpanel["user_id"], hashed.as_str());
    assert!(mixpanel.get("user_email").is_none() && mixpanel.get("status").is_none());
    // Segment has its own policy: the user id goes in clear there.
    let segment = &segment_items(&prepare(&c, DestinationKind::Segment, &events))[0];
    assert_eq!(segment["userId"], "user-evt-1");
}

#[test]
fn dedup_ids_are_the_same_on_every_run() {
    let c = config("http://127.0.0.1:1", &[]);
    let input = vec![
        event_line("scan_started", "acme-prod", "evt-1", T),
        event_line("scan_started", "acme-prod", "evt_with_underscore", T),
        r#"{"metric_name":"scan_started","metadata":{"tenant_id":"acme-prod"},"data":{"event_time":1795428000000,"n":1}}"#.to_owned(),
    ];
    let events = parse(&input);
    let segment = prepare(&c, DestinationKind::Segment, &events);
    let mixpanel = prepare(&c, DestinationKind::Mixpanel, &events);
    // Pinned values (sha256("evt_with_underscore")[..36], sha256("scan_started\0evt-1")): a
    // change here breaks deduplication of replays across versions.
    assert_eq!(
        mixpanel.requests[0].dedup_ids,
        [
            "evt-1",
            "e72da10aad18d84774ddc05e4dc83c589831",
            "9d2c2ba7e99641b3a77cc84c670a320337c7"
        ]
    );
    assert_eq!(
        segment.requests[0].dedup_ids[0],
        "08b66ef3ccfa5ffbd0c42d0e904e5f9fd1219140beb82ecad10dfc2a271e036d"
    );
    assert_eq!(
        segment,
        prepare(&c, DestinationKind::Segment, &events),
        "byte for byte the same"
    );
    assert_eq!(mixpanel, prepare(&c, DestinationKind::Mixpanel, &events));
}

#[test]
fn segment_and_mixpanel_limits_are_the_documented_ones() {
    use metrics_forwarder::payload::pack::pack;
    let c = config("http://127.0.0.1:1", &[]);
    // A track call is over 200 bytes, so 2,500 of them never fit 500 KB: the count limit is
    // checked on sizes directly.
    let segment = c.segment.format.limits;
    assert_eq!((segment.max_body_bytes, segment.max_events), (500_000, 2_500));
    assert_eq!(pack(&[100; 2501], &segment), vec![0..2500, 2500..2501]);
    let mixpanel = c.mixpanel.format.limits;
    assert_eq!(
        (mixpanel.max_body_bytes, mixpanel.max_events),
        (10_000_000, 2_000)
    );
    // `[` + 4,999,998 + `,` + 4,999,999 + `]` = 10,000,000 bytes exactly: fits; one more does not.
    assert_eq!(pack(&[4_999_998, 4_999_999], &mixpanel), vec![0..2]);
    assert_eq!(pack(&[4_999_998, 5_000_000], &mixpanel), vec![0..1, 1..2]);
}

#[test]
fn segment_batches_stop_at_500000_bytes_and_no_byte_sooner() {
    let c = config("http://127.0.0.1:1", &[("SEGMENT_METADATA_FIELDS", "pad")]);
    // Events of about 20 KB: a request holds 24 of them, never one that would pass 500,000.
    let input: Vec<String> = (0..100)
        .map(|i| {
            let mut v: Value =
                serde_json::from_str(&event_line("m", "acme-prod", &format!("e{i}"), T)).unwrap();
            v["metadata"]["pad"] = json!("p".repeat(2000));
            for k in 0..9 {
                v["data"][format!("s{k}")] = json!("q".repeat(2000 - i));
            }
            v.to_string()
        })
        .collect();
    let events = parse(&input);
    let prepared = prepare(&c, DestinationKind::Segment, &events);
    assert!(prepared.requests.len() > 1);
    let items = segment_items(&prepared);
    assert_eq!(items.len(), 100);
    for pair in prepared.requests.windows(2) {
        assert!(pair[0].body.len() <= 500_000);
        // The next request's first event would not have fitted: body + comma + event.
        let next =
            serde_json::to_vec(&serde_json::from_slice::<Value>(&pair[1].body).unwrap()["batch"][0]).unwrap();
        assert!(
            pair[0].body.len() + 1 + next.len() > 500_000,
            "{} + {}",
            pair[0].body.len(),
            next.len()
        );
    }
}

#[test]
fn oversize_events_are_refused_with_their_reason_and_the_rest_still_go() {
    let c = config(
        "http://127.0.0.1:1",
        &[
            ("SEGMENT_METADATA_FIELDS", "*"),
            ("MIXPANEL_METADATA_FIELDS", "*"),
        ],
    );
    let mut big: Value = serde_json::from_str(&event_line("m", "acme-prod", "big", T)).unwrap();
    for k in 0..17 {
        big["metadata"][format!("d{k}")] = json!("x".repeat(2000));
    }
    let mut wide: Value = serde_json::from_str(&event_line("m", "acme-prod", "wide", T)).unwrap();
    for k in 0..250 {
        wide["data"][format!("m{k}")] = json!(k);
    }
    let input = vec![
        big.to_string(),
        event_line("m", "acme-prod", "ok", T),
        wide.to_string(),
    ];
    let events = parse(&input);
    let segment = prepare(&c, DestinationKind::Segment, &events);
    assert_eq!(segment.refused.len(), 1);
    assert_eq!(
        (
            segment.refused[0].index,
            segment.refused[0].reason.code().as_ref()
        ),
        (0, "segment_event_too_large")
    );
    assert_eq!(segment.requests[0].events, [1, 2]);
    let mixpanel = prepare(&c, DestinationKind::Mixpanel, &events);
    assert_eq!(mixpanel.refused.len(), 1);
    assert_eq!(
        (
            mixpanel.refused[0].index,
            mixpanel.refused[0].reason.code().as_ref()
        ),
        (2, "mixpanel_too_many_properties")
    );
    assert_eq!(mixpanel.requests[0].events, [0, 1]);
}

#[test]
fn mixpanel_batches_hold_at_most_2000_events() {
    let c = config("http://127.0.0.1:1", &[]);
    let input: Vec<String> = (0..4001)
        .map(|i| event_line("m", "acme-prod", &format!("e{i}"), T))
        .collect();
    let prepared = prepare(&c, DestinationKind::Mixpanel, &parse(&input));
    let sizes: Vec<usize> = prepared.requests.iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, [2000, 2000, 1]);
}

#[test]
fn metrics_outside_a_destinations_allow_list_are_filtered_not_refused() {
    let c = config("http://127.0.0.1:1", &[("MIXPANEL_METRICS", "scan_completed")]);
    let input = vec![
        event_line("scan_started", "acme-prod", "a", T),
        event_line("scan_completed", "acme-prod", "b", T),
    ];
    let events = parse(&input);
    let mixpanel = prepare(&c, DestinationKind::Mixpanel, &events);
    assert_eq!((mixpanel.filtered, mixpanel.refused.len()), (1, 0));
    assert_eq!(mixpanel.requests[0].events, [1]);
    assert_eq!(
        prepare(&c, DestinationKind::Segment, &events).requests[0].events,
        [0, 1]
    );
}
