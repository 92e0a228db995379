#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The conversion from a validated event to a store record, against the store's limits.

use metrics_schema::{EventTime, parse_event};
use metrics_store::convert::{check_limits, limits};
use metrics_store::{RejectReason, StoreRecord, StoreValue, convert};
use serde_json::{Value, json};

const NOW: i64 = 1_795_910_400_000; // 2026-11-26T00:00:00Z

fn record(event: Value) -> Result<StoreRecord, RejectReason> {
    let bytes = serde_json::to_vec(&event).unwrap();
    let parsed = parse_event(&bytes, EventTime::from_millis(NOW)).expect("the schema accepts the event");
    convert(&parsed).map_err(|r| r.reason)
}

fn event(metadata: Value, data: Value) -> Value {
    json!({"metric_name": "findings_upload_completed", "metadata": metadata, "data": data})
}

#[test]
fn maps_metadata_to_dimensions_and_data_to_typed_measures() {
    let r = record(event(
        json!({"tenant_id": "acme-prod", "event_id": "e-1", "repo": "api", "environment": "prod"}),
        json!({"event_time": "2026-11-23T10:00:00.123Z", "count": 3, "ratio": 0.5, "big": 1e300, "ok": true, "label": "x"}),
    ))
    .unwrap();
    assert_eq!(r.measure_name, "findings_upload_completed");
    assert_eq!(r.time_ms, 1_795_428_000_123);
    assert_eq!(r.version, 1);
    // Input order is kept (`json!` sorts keys, so the input here is in name order).
    assert_eq!(
        r.dimensions,
        [
            ("environment".into(), "prod".into()),
            ("event_id".into(), "e-1".into()),
            ("repo".into(), "api".into())
        ],
        "tenant_id is the table, not a dimension"
    );
    assert_eq!(
        r.measures,
        [
            ("big".into(), StoreValue::Double(1e300)),
            ("count".into(), StoreValue::BigInt(3)),
            ("label".into(), StoreValue::Varchar("x".into())),
            ("ok".into(), StoreValue::Boolean(true)),
            ("ratio".into(), StoreValue::Double(0.5)),
        ]
    );
}

#[test]
fn epoch_millisecond_times_are_kept_exactly() {
    let r = record(event(
        json!({"tenant_id": "acme"}),
        json!({"event_time": 1_795_428_000_007_i64, "n": 1}),
    ))
    .unwrap();
    assert_eq!(r.time_ms, 1_795_428_000_007);
}

#[test]
fn an_event_without_event_id_gets_a_stable_derived_one() {
    let e = event(
        json!({"tenant_id": "acme", "repo": "api"}),
        json!({"event_time": 1_000, "n": 1}),
    );
    let a = record(e.clone()).unwrap();
    let b = record(e).unwrap();
    let id = a.dimension("event_id").unwrap().to_owned();
    assert!(id.starts_with("sha256-") && id.len() == 39, "{id}");
    assert_eq!(
        b.dimension("event_id"),
        Some(id.as_str()),
        "a replay derives the same id"
    );
    let reordered = record(event(
        json!({"repo": "api", "tenant_id": "acme"}),
        json!({"n": 1, "event_time": 1_000}),
    ))
    .unwrap();
    assert_eq!(
        reordered.dimension("event_id"),
        Some(id.as_str()),
        "key order does not matter"
    );
    let other = record(event(
        json!({"tenant_id": "acme", "repo": "api"}),
        json!({"event_time": 1_000, "n": 2}),
    ))
    .unwrap();
    assert_ne!(
        other.dimension("event_id"),
        Some(id.as_str()),
        "a different event gets a different id"
    );
}

#[test]
fn two_events_in_the_same_millisecond_differ_by_event_id() {
    let a = record(event(
        json!({"tenant_id": "acme", "event_id": "a"}),
        json!({"event_time": 5, "n": 1}),
    ))
    .unwrap();
    let b = record(event(
        json!({"tenant_id": "acme", "event_id": "b"}),
        json!({"event_time": 5, "n": 1}),
    ))
    .unwrap();
    assert_eq!((a.time_ms, &a.measure_name), (b.time_ms, &b.measure_name));
    assert_ne!(a.series_key(), b.series_key());
}

#[test]
fn empty_strings_are_absent_values() {
    let r = record(event(
        json!({"tenant_id": "acme", "event_id": "e", "branch": ""}),
        json!({"event_time": 1, "n": 1, "note": ""}),
    ))
    .unwrap();
    assert_eq!(r.dimension("branch"), None);
    assert!(r.measures.iter().all(|(n, _)| n != "note"));
}

#[test]
fn an_event_with_no_measure_left_is_rejected() {
    assert_eq!(
        record(event(json!({"tenant_id": "acme"}), json!({"event_time": 1}))),
        Err(RejectReason::NoMeasures)
    );
    assert_eq!(
        record(event(
            json!({"tenant_id": "acme"}),
            json!({"event_time": 1, "s": ""})
        )),
        Err(RejectReason::NoMeasures)
    );
}

#[test]
fn the_2_kb_record_limit_counts_names_values_and_time() {
    // measure name 25 + time 8 + event_id dim (8 + 1) + measure name "s" (1) = 43 bytes of overhead.
    let overhead = "findings_upload_completed".len() + limits::TIME_BYTES + "event_id".len() + 1 + 1;
    let fits = limits::MAX_RECORD_BYTES - overhead;
    let ok = record(event(
        json!({"tenant_id": "acme", "event_id": "e"}),
        json!({"event_time": 1, "s": "x".repeat(fits)}),
    ));
    assert!(ok.is_ok(), "{ok:?}");
    let over = record(event(
        json!({"tenant_id": "acme", "event_id": "e", "d": "y"}),
        json!({"event_time": 1, "s": "x".repeat(fits)}),
    ));
    assert_eq!(over, Err(RejectReason::RecordTooLarge));
}

#[test]
fn measure_values_over_2048_bytes_together_are_rejected() {
    let r = record(event(
        json!({"tenant_id": "acme", "event_id": "e"}),
        json!({"event_time": 1, "a": "x".repeat(1100), "b": "y".repeat(1000)}),
    ));
    assert_eq!(r, Err(RejectReason::MeasureValuesTooLarge));
}

#[test]
fn a_dimension_pair_over_2_kb_is_rejected() {
    let r = record(event(
        json!({"tenant_id": "acme", "event_id": "e", "dim": "v".repeat(2046)}),
        json!({"event_time": 1, "n": 1}),
    ));
    assert_eq!(r, Err(RejectReason::DimensionTooLarge));
}

#[test]
fn counts_are_checked_after_the_event_identity_is_added() {
    let base = StoreRecord {
        measure_name: "m".into(),
        time_ms: 1,
        dimensions: (0..128).map(|i| (format!("d{i}"), "v".into())).collect(),
        measures: vec![("n".into(), StoreValue::BigInt(1))],
        version: 1,
    };
    assert_eq!(check_limits(&base), Ok(()));
    let mut too_many_dims = base.clone();
    too_many_dims.dimensions.push(("event_id".into(), "e".into()));
    assert_eq!(
        check_limits(&too_many_dims).unwrap_err().reason,
        RejectReason::TooManyDimensions
    );

    let mut many_measures = base.clone();
    many_measures.dimensions.truncate(1);
    many_measures.measures = (0..256)
        .map(|i| (format!("m{i}"), StoreValue::Boolean(true)))
        .collect();
    assert_eq!(check_limits(&many_measures), Ok(()));
    many_measures
        .measures
        .push(("one_more".into(), StoreValue::Boolean(true)));
    assert_eq!(
        check_limits(&many_measures).unwrap_err().reason,
        RejectReason::TooManyMeasures
    );
}

#[test]
fn a_schema_valid_event_at_every_schema_limit_converts_or_is_rejected_with_a_reason() {
    // 127 dimensions plus tenant_id: the schema's maximum; event_id is derived and added.
    let mut metadata = serde_json::Map::new();
    metadata.insert("tenant_id".into(), json!("acme"));
    for i in 0..127 {
        metadata.insert(format!("d{i}"), json!("v"));
    }
    let r = record(event(Value::Object(metadata), json!({"event_time": 1, "n": 1}))).unwrap();
    assert_eq!(r.dimensions.len(), 128);
    assert_eq!(check_limits(&r), Ok(()));
}
