//! The line-protocol encoder against a small parser written from InfluxData's documented
//! grammar: any record either encodes to a line that parses back to exactly its measurement,
//! tags, fields and time, or is refused for a reason it really has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use metrics_store::influx::line_protocol::{EVENT_ID, EncodeError, encode_line, timestamp_ns};
use metrics_store::{StoreRecord, StoreValue};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Parsed {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Field)>,
    time: i64,
}

/// Reads an unquoted element up to one of `stops` (unescaped). A backslash before one of
/// `escapable` yields that character; before anything else it is literal.
fn element(s: &[char], i: &mut usize, stops: &[char], escapable: &[char]) -> String {
    let mut out = String::new();
    while *i < s.len() {
        let c = s[*i];
        if c == '\\' && *i + 1 < s.len() && escapable.contains(&s[*i + 1]) {
            out.push(s[*i + 1]);
            *i += 2;
            continue;
        }
        if stops.contains(&c) {
            break;
        }
        out.push(c);
        *i += 1;
    }
    out
}

fn expect(s: &[char], i: &mut usize, c: char) {
    assert_eq!(
        s.get(*i),
        Some(&c),
        "expected {c:?} at {i} in {:?}",
        s.iter().collect::<String>()
    );
    *i += 1;
}

fn parse(line: &str) -> Parsed {
    let line = line.strip_suffix('\n').expect("a line ends with a newline");
    assert!(
        !line.contains('\n') || line.contains('"'),
        "one line per record: {line:?}"
    );
    let s: Vec<char> = line.chars().collect();
    let mut i = 0;
    let measurement = element(&s, &mut i, &[',', ' '], &[',', ' ']);
    let mut tags = Vec::new();
    while s.get(i) == Some(&',') {
        i += 1;
        let k = element(&s, &mut i, &['='], &[',', '=', ' ']);
        expect(&s, &mut i, '=');
        let v = element(&s, &mut i, &[',', ' '], &[',', '=', ' ']);
        tags.push((k, v));
    }
    expect(&s, &mut i, ' ');
    let mut fields = Vec::new();
    loop {
        let k = element(&s, &mut i, &['='], &[',', '=', ' ']);
        expect(&s, &mut i, '=');
        let v = if s.get(i) == Some(&'"') {
            i += 1;
            let mut out = String::new();
            loop {
                match s.get(i) {
                    Some('\\') if matches!(s.get(i + 1), Some('"' | '\\')) => {
                        out.push(s[i + 1]);
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        out.push(c);
                        i += 1;
                    }
                    None => panic!("unterminated string in {line:?}"),
                }
            }
            Field::Str(out)
        } else {
            let raw = element(&s, &mut i, &[',', ' '], &[]);
            if let Some(n) = raw.strip_suffix('i') {
                Field::Int(n.parse().expect("integer"))
            } else if raw == "true" || raw == "false" {
                Field::Bool(raw == "true")
            } else {
                Field::Float(raw.parse().expect("float"))
            }
        };
        fields.push((k, v));
        if s.get(i) == Some(&',') {
            i += 1;
        } else {
            break;
        }
    }
    expect(&s, &mut i, ' ');
    let time: String = s[i..].iter().collect();
    Parsed {
        measurement,
        tags,
        fields,
        time: time.parse().expect("timestamp"),
    }
}

/// Whether every parser reads `text` back exactly as a name or tag value: no line break, and a
/// backslash only before a character that no parser might unescape (the grammar's escapable
/// characters, `"` and `=`, which the Go parsers of 1.x/2.x also unescape in every name, and a
/// backslash).
fn representable(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    !text.is_empty()
        && !chars.iter().any(|c| matches!(c, '\n' | '\r'))
        && chars.iter().enumerate().all(|(i, &c)| {
            c != '\\'
                || chars
                    .get(i + 1)
                    .is_some_and(|n| !matches!(n, ',' | '=' | ' ' | '"' | '\\'))
        })
}

fn event_id(r: &StoreRecord) -> Option<&str> {
    r.dimensions
        .iter()
        .find(|(k, v)| k == EVENT_ID && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

fn expected_failure(r: &StoreRecord) -> bool {
    !representable(&r.measure_name)
        || r.measure_name.starts_with('#')
        || r.dimensions
            .iter()
            .filter(|(k, v)| !v.is_empty() && k != EVENT_ID)
            .any(|(k, v)| k == "time" || !representable(k) || !representable(v))
        || timestamp_ns(r.time_ms, event_id(r)).is_none()
        || r.measures.is_empty()
        || r.measures.iter().any(|(k, v)| {
            k == "time" || !representable(k) || matches!(v, StoreValue::Double(f) if !f.is_finite())
        })
}

/// Short strings heavy in the characters the grammar cares about, and any strings at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ,=\"\\\\#\n\r\té_]{0,10}",
        "[a-z ,=\"\\\\]{1,6}",
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = StoreValue> {
    prop_oneof![
        any::<i64>().prop_map(StoreValue::BigInt),
        any::<f64>().prop_map(StoreValue::Double),
        any::<bool>().prop_map(StoreValue::Boolean),
        text().prop_map(StoreValue::Varchar),
    ]
}

fn record() -> impl Strategy<Value = StoreRecord> {
    (
        text(),
        prop::collection::btree_map(text(), text(), 0..4),
        prop::collection::btree_map(text(), value(), 0..4),
        prop::option::of(text()),
        // Mostly times InfluxDB can store in nanoseconds (1677 to 2262), some it cannot.
        prop_oneof![4 => -9_000_000_000_000i64..9_000_000_000_000, 1 => any::<i64>()],
    )
        .prop_map(|(measure_name, dims, measures, event_id, time_ms)| {
            let mut dimensions: Vec<(String, String)> = dims.into_iter().collect();
            dimensions.extend(event_id.map(|id| (EVENT_ID.to_owned(), id)));
            StoreRecord {
                measure_name,
                time_ms,
                dimensions,
                measures: measures.into_iter().collect(),
                version: 1,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_record_round_trips_through_the_grammar_or_is_refused_for_a_real_reason(r in record()) {
        let mut out = String::new();
        match encode_line(&mut out, &r) {
            Ok(()) => {
                prop_assert!(!expected_failure(&r), "encoded what cannot be read back: {out:?}");
                let parsed = parse(&out);
                let mut tags: Vec<(String, String)> =
                    r.dimensions.iter().filter(|(k, v)| !v.is_empty() && k != EVENT_ID).cloned().collect();
                tags.sort();
                let mut fields: Vec<(String, Field)> = r.measures.iter().map(|(k, v)| {
                    (k.clone(), match v {
                        StoreValue::BigInt(n) => Field::Int(*n),
                        StoreValue::Double(f) => Field::Float(*f),
                        StoreValue::Boolean(b) => Field::Bool(*b),
                        StoreValue::Varchar(s) => Field::Str(s.clone()),
                    })
                }).collect();
                // The event id is the last field, and its hash the time's nanoseconds.
                if let Some(id) = event_id(&r) {
                    fields.push((EVENT_ID.to_owned(), Field::Str(id.to_owned())));
                }
                let time = timestamp_ns(r.time_ms, event_id(&r)).unwrap();
                prop_assert_eq!(parsed, Parsed { measurement: r.measure_name.clone(), tags, fields, time });
            }
            Err(e) => {
                prop_assert!(expected_failure(&r), "refused a representable record ({e}): {r:?}");
                prop_assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn string_fields_carry_any_text_exactly(s in any::<String>()) {
        let r = StoreRecord {
            measure_name: "m".into(),
            time_ms: 1,
            dimensions: vec![],
            measures: vec![("s".into(), StoreValue::Varchar(s.clone()))],
            version: 1,
        };
        let mut out = String::new();
        encode_line(&mut out, &r).unwrap();
        prop_assert_eq!(&parse(&out).fields[0].1, &Field::Str(s));
    }
}

#[test]
fn a_refusal_is_typed() {
    let r = StoreRecord {
        measure_name: "m".into(),
        time_ms: 1,
        dimensions: vec![("k".into(), "a\nb".into())],
        measures: vec![("x".into(), StoreValue::BigInt(1))],
        version: 1,
    };
    assert!(matches!(
        encode_line(&mut String::new(), &r),
        Err(EncodeError::LineBreak(_))
    ));
}
