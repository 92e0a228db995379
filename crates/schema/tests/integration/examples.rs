#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The JSON Schema file and the Rust validation agree on a shared table of examples
//! (`tests/examples.json`), and every reason code has at least one example.

use std::collections::BTreeSet;

use base64::Engine as _;
use metrics_schema::{EventTime, Reason, parse_event};
use serde_json::Value;

struct Example {
    name: String,
    expect: String,
    bytes: Vec<u8>,
    /// The parsed JSON the schema validator sees, when the rule is one it can express.
    schema_input: Option<Value>,
}

fn examples() -> (EventTime, Vec<Example>) {
    let doc: Value = serde_json::from_str(include_str!("examples.json")).unwrap();
    let now = EventTime::parse_rfc3339(doc["now"].as_str().unwrap()).unwrap();
    let examples = doc["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let bytes = if let Some(event) = e.get("event") {
                serde_json::to_vec(event).unwrap()
            } else if let Some(raw) = e.get("raw") {
                raw.as_str().unwrap().as_bytes().to_vec()
            } else {
                base64::engine::general_purpose::STANDARD
                    .decode(e["raw_base64"].as_str().unwrap())
                    .unwrap()
            };
            let schema_applies = e.get("schema").and_then(Value::as_bool).unwrap_or(true);
            Example {
                name: e["name"].as_str().unwrap().to_owned(),
                expect: e["expect"].as_str().unwrap().to_owned(),
                schema_input: schema_applies.then(|| e["event"].clone()),
                bytes,
            }
        })
        .collect();
    (now, examples)
}

#[test]
fn rust_validation_gives_the_expected_outcome_for_every_example() {
    let (now, examples) = examples();
    for e in &examples {
        let got = match parse_event(&e.bytes, now) {
            Ok(_) => "valid".to_owned(),
            Err(invalid) => invalid.reason.code().to_owned(),
        };
        assert_eq!(got, e.expect, "example {:?}", e.name);
    }
}

#[test]
fn json_schema_accepts_exactly_the_valid_examples() {
    let (_, examples) = examples();
    let schema: Value = serde_json::from_str(include_str!("../../unified-event.schema.json")).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler
        .add_resource("unified-event.schema.json", schema)
        .unwrap();
    let index = compiler
        .compile("unified-event.schema.json", &mut schemas)
        .unwrap();
    let mut checked = 0;
    for e in &examples {
        let Some(input) = &e.schema_input else { continue };
        let valid = schemas.validate(input, index).is_ok();
        assert_eq!(valid, e.expect == "valid", "example {:?}", e.name);
        checked += 1;
    }
    assert!(
        checked >= 40,
        "most rules are expressible in the schema; only {checked} checked"
    );
}

#[test]
fn every_reason_code_has_an_example() {
    let (_, examples) = examples();
    let covered: BTreeSet<&str> = examples.iter().map(|e| e.expect.as_str()).collect();
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(|r| r.code())
        .filter(|c| !covered.contains(c))
        .collect();
    assert!(missing.is_empty(), "reason codes without an example: {missing:?}");
}

#[test]
fn reason_codes_are_unique_and_round_trip() {
    let codes: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), Reason::ALL.len());
    for r in Reason::ALL {
        assert_eq!(Reason::from_code(r.code()), Some(r));
    }
}
