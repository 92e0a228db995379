#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Properties of the parser over generated input.

use metrics_schema::{EventTime, parse_event};
use proptest::prelude::*;

const NOW: EventTime = EventTime::from_millis(1_795_435_200_000);

fn valid_event() -> impl Strategy<Value = serde_json::Value> {
    let name = "[a-z][a-z0-9_]{0,20}";
    let dims = prop::collection::btree_map(name, "\\PC{0,30}", 0..8);
    let measure = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
    ];
    let measures = prop::collection::btree_map("m_[a-z0-9]{1,10}", measure, 0..8);
    (dims, measures, 0i64..1_795_435_200_000).prop_map(|(dims, measures, t)| {
        let mut metadata = serde_json::Map::new();
        metadata.insert("tenant_id".into(), "acme-prod".into());
        metadata.insert("event_id".into(), "e-1".into());
        for (k, v) in dims {
            metadata.insert(format!("d_{k}"), v.into());
        }
        let mut data = serde_json::Map::new();
        data.insert("event_time".into(), t.into());
        data.extend(measures);
        serde_json::json!({"metric_name": "m", "metadata": metadata, "data": data})
    })
}

/// Any JSON value, with strings full of what a minifier must leave alone.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let text = "[ \t\n\r\"\\\\a-z/{}\\[\\],:é😀]{0,12}";
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text.prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(text, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn raw_values_are_written_as_serde_json_writes_them_compactly(value in any_json()) {
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let raw: &serde_json::value::RawValue = serde_json::from_str(&pretty).unwrap();
        let mut out = Vec::new();
        metrics_schema::json::write_raw(&mut out, raw);
        prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn raw_strings_decode_as_serde_json_decodes_them(s in any::<String>(), slashes in any::<bool>()) {
        // serde_json writes `/` as it is; producers may escape it.
        let mut text = serde_json::to_string(&s).unwrap();
        if slashes {
            text = text.replace('/', "\\/");
        }
        let raw: &serde_json::value::RawValue = serde_json::from_str(&text).unwrap();
        let decoded = metrics_schema::json::raw_str(raw);
        prop_assert_eq!(decoded.as_deref(), Some(s.as_str()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes, NOW);
    }

    #[test]
    fn arbitrary_json_values_never_panic(text in "[{}\\[\\]\":,0-9a-z_ .eE+-]{0,200}") {
        let _ = parse_event(text.as_bytes(), NOW);
    }

    #[test]
    fn written_events_parse_back_to_the_same_event(event in valid_event()) {
        let bytes = serde_json::to_vec(&event).unwrap();
        let parsed = parse_event(&bytes, NOW).unwrap();
        let mut written = Vec::new();
        parsed.write_json(&mut written);
        prop_assert!(!written.contains(&b'\n'));
        let reparsed = parse_event(&written, NOW).unwrap();
        prop_assert_eq!(&reparsed.dimensions, &parsed.dimensions);
        prop_assert_eq!(reparsed.event_time, parsed.event_time);
        let values = |e: &metrics_schema::UnifiedEvent| e.measures.iter().map(|m| (m.name.to_string(), format!("{:?}", m.value))).collect::<Vec<_>>();
        prop_assert_eq!(values(&reparsed), values(&parsed));
        // The written JSON means the same as the input.
        let back: serde_json::Value = serde_json::from_slice(&written).unwrap();
        prop_assert_eq!(&back, &event);
    }

    #[test]
    fn the_written_form_does_not_depend_on_the_inputs_layout(event in valid_event()) {
        let write = |bytes: &[u8]| {
            let mut out = Vec::new();
            parse_event(bytes, NOW).unwrap().write_json(&mut out);
            out
        };
        let compact = write(&serde_json::to_vec(&event).unwrap());
        // Whitespace everywhere gives the same bytes. (The written form orders the fields its
        // own way, so neither input is simply copied.)
        prop_assert_eq!(&write(&serde_json::to_vec_pretty(&event).unwrap()), &compact);
        // Written text is its own written form (most of it is copied in runs).
        prop_assert_eq!(&write(&compact), &compact);
    }
}

#[test]
fn deep_nesting_neither_overflows_nor_gets_in() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        parse_event(deep.as_bytes(), NOW).unwrap_err().reason.code(),
        "not_an_object"
    );
    let unbalanced = "[".repeat(100_000);
    assert_eq!(
        parse_event(unbalanced.as_bytes(), NOW).unwrap_err().reason.code(),
        "not_json"
    );
    let deep_measure = format!(
        r#"{{"metric_name":"m","metadata":{{"tenant_id":"acme"}},"data":{{"event_time":0,"x":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        parse_event(deep_measure.as_bytes(), NOW)
            .unwrap_err()
            .reason
            .code(),
        "invalid_measure_value"
    );
}

#[test]
fn megabyte_strings_are_rejected_by_length_rules() {
    let big = "x".repeat(1 << 20);
    let event = serde_json::json!({"metric_name": "m", "metadata": {"tenant_id": "acme", "note": big}, "data": {"event_time": 0}});
    let err = parse_event(&serde_json::to_vec(&event).unwrap(), NOW).unwrap_err();
    assert_eq!(err.reason.code(), "value_too_long");
    assert!(err.detail.len() < 200, "errors never echo the payload");
}

#[test]
fn strings_not_from_the_parsed_text_are_escaped_when_written() {
    let text = br#"{"metric_name":"m","metadata":{"tenant_id":"acme","q":"a\"b","plain":"x"},"data":{"event_time":1}}"#;
    let mut event = parse_event(text, NOW).unwrap();
    event.dimensions[2].value = std::borrow::Cow::Borrowed("static \"quoted\" \\ \n");
    event.ingest_time = Some(EventTime::from_millis(1_795_435_200_123));
    let mut written = Vec::new();
    event.write_json(&mut written);
    let back: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(back["metadata"]["q"], "a\"b");
    assert_eq!(back["metadata"]["plain"], "static \"quoted\" \\ \n");
    assert_eq!(back["ingest_time"], 1_795_435_200_123_i64);
    assert!(!written.contains(&b'\n'));
}

#[test]
fn a_metadata_number_too_large_for_a_double_is_a_dimension_value_error() {
    let text = br#"{"metric_name":"m","metadata":{"tenant_id":"acme","x":1e400},"data":{"event_time":1}}"#;
    assert_eq!(
        parse_event(text, NOW).unwrap_err().reason.code(),
        "invalid_dimension_value"
    );
    let text = br#"{"metric_name":"m","metadata":{"tenant_id":"acme","x":"\u00e9"},"data":{"event_time":1}}"#;
    assert_eq!(parse_event(text, NOW).unwrap().dimension("x"), Some("é"));
}
