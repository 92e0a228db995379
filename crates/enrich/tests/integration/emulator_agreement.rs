//! For generated mappings and events, the Lambda's output equals the local emulator's: the
//! emulator applies the rule (pattern, then the wrapping input transformer) and the mapping;
//! the Lambda gets the event wrapped as EventBridge sends it, inside a Firehose invocation.
//! Both must give the same unified event, or reject it for the same reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use common::*;
use metrics_enrich::config::InvalidRecordPolicy;
use metrics_mapping::RuleSet;
use metrics_schema::parse_event;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KINDS: [&str; 4] = ["id", "text", "number", "bool"];

/// One mapped field: its type, whether it is required, and where it goes.
#[derive(Debug, Clone)]
struct FieldDecl {
    kind: &'static str,
    required: bool,
    measure: bool,
}

fn mapping_text(fields: &[FieldDecl]) -> String {
    let mut text = String::from(
        "[[metric]]\nname = \"m\"\npattern = { source = [\"s\"], detail-type = [\"t\"] }\n\
         tenant_id = \"$.detail.tenant_id\"\nevent_time = { from = \"$.detail.at\", required = false }\n",
    );
    for (section, measure) in [("metadata", false), ("data", true)] {
        text.push_str(&format!("[metric.{section}]\n"));
        for (i, f) in fields.iter().enumerate().filter(|(_, f)| f.measure == measure) {
            text.push_str(&format!(
                "f{i} = {{ from = \"$.detail.f{i}\", type = \"{}\", required = {} }}\n",
                f.kind, f.required
            ));
        }
    }
    text
}

fn value_strategy() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        3 => any::<String>().prop_map(|s| Some(Value::String(s))),
        2 => any::<i64>().prop_map(|n| Some(json!(n))),
        1 => (-1e6f64..1e6).prop_map(|x| Some(json!(x))),
        1 => any::<bool>().prop_map(|b| Some(json!(b))),
        1 => prop_oneof![Just("42"), Just("-2.5"), Just("true"), Just("False"), Just("4 2")]
            .prop_map(|s| Some(json!(s))),
        1 => Just(Some(json!([1, "a"]))),
        1 => Just(Some(Value::Null)),
    ]
}

fn case_strategy() -> impl Strategy<Value = (Vec<FieldDecl>, Vec<Option<Value>>, Option<Value>)> {
    let field = (0..KINDS.len(), any::<bool>(), any::<bool>()).prop_map(|(k, required, measure)| FieldDecl {
        kind: KINDS[k],
        required,
        measure,
    });
    proptest::collection::vec(field, 0..6).prop_flat_map(|fields| {
        let n = fields.len();
        (
            Just(fields),
            proptest::collection::vec(value_strategy(), n),
            prop_oneof![
                Just(None),
                Just(Some(json!("2026-11-23T09:00:00Z"))),
                Just(Some(json!(1_795_400_000_000_i64))),
                Just(Some(json!("yesterday"))),
            ],
        )
    })
}

/// The emulator: EventBridge's rule, then the mapping, then validation. `Ok` holds the unified
/// event as JSON, `Err` the reason code.
fn emulated(rules: &RuleSet, event: &[u8]) -> Result<Value, String> {
    let matches = rules.apply(event, NOW).unwrap();
    assert_eq!(matches.len(), 1);
    let mut unified = Vec::new();
    rules
        .mapping()
        .map_record(&matches[0].output, &mut unified)
        .map_err(|e| e.reason.code().to_owned())?;
    parse_event(&unified, NOW).map_err(|e| e.reason.code().to_owned())?;
    Ok(serde_json::from_slice(&unified).unwrap())
}

/// The Lambda, on the event wrapped as EventBridge delivers it (with every non-ASCII
/// character escaped, when `ascii`). The enrichment it adds is removed, so what is left is the
/// mapped event.
fn lambda(rules: &RuleSet, event: &Value, ascii: bool) -> Result<Value, String> {
    let mut wrapped = serde_json::to_string(&json!({"metric": "m", "event": event})).unwrap();
    if ascii {
        wrapped = ascii_only(&wrapped);
    }
    let wrapped = wrapped.into_bytes();
    let enricher = enricher_with_mapping(InvalidRecordPolicy::Fail, rules.mapping().clone());
    let out = run(&enricher, &common::event(vec![record("r", &wrapped)]));
    if let Some(rejected) = out.summary.rejected.first() {
        return Err(rejected.reason.code().to_owned());
    }
    let response = response_json(&out);
    let mut unified: Value = serde_json::from_slice(&decode(&response["records"][0]["data"])).unwrap();
    let metadata = unified["metadata"].as_object_mut().unwrap();
    metadata.remove("tenant_name");
    metadata.remove("environment");
    unified.as_object_mut().unwrap().remove("ingest_time");
    Ok(unified)
}

/// The same JSON with every non-ASCII character written as `\u` escapes, as a producer that
/// escapes them sends it. (Outside strings JSON is ASCII, so only strings change.)
fn ascii_only(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_lambda_maps_every_event_as_the_emulator_does((fields, values, at) in case_strategy(), ascii in any::<bool>()) {
        let rules = RuleSet::from_toml(&mapping_text(&fields)).unwrap();
        let mut detail = Map::new();
        detail.insert("tenant_id".into(), json!("acme-prod"));
        if let Some(at) = at {
            detail.insert("at".into(), at);
        }
        for (i, value) in values.into_iter().enumerate() {
            if let Some(value) = value {
                detail.insert(format!("f{i}"), value);
            }
        }
        let event = json!({"id": "e-1", "time": "2026-11-23T08:00:00Z", "source": "s",
                           "detail-type": "t", "detail": detail});
        let emulator = emulated(&rules, &serde_json::to_vec_pretty(&event).unwrap());
        let lambda = lambda(&rules, &event, ascii);
        prop_assert_eq!(lambda, emulator);
    }
}
