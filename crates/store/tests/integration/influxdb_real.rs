//! The line-protocol encoder against a real InfluxDB server: Debian's `influxdb` 1.x, which
//! parses the same line protocol at `/write` and answers InfluxQL at `/query`. What is written
//! through the encoder is read back and compared field by field. The server is started by the
//! test (metrics-testkit); the test command installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use metrics_store::influx::line_protocol::encode_line;
use metrics_store::{StoreRecord, StoreValue};
use metrics_testkit::influxd::Influxd;
use serde_json::Value;

/// Names and values with every character the grammar treats specially, and some it does not.
const TRICKY: &[&str] = &[
    "plain",
    "a b",
    "a,b",
    "a=b",
    "a\"b",
    "C:\\dir",
    "x\\y z",
    "a, =\"",
    " leading",
    "trailing ",
    "=start",
    "tab\there",
    "é ü 日本 🚀",
    "'single'",
    "semi;colon",
];

/// Texts only a string field can carry.
const STRING_ONLY: &[&str] = &["line1\nline2", "back\\slash\\", "quote\"\\\"", "\r\n", ""];

fn record(
    measure: String,
    dims: Vec<(String, String)>,
    measures: Vec<(String, StoreValue)>,
    time_ms: i64,
) -> StoreRecord {
    StoreRecord {
        measure_name: measure,
        time_ms,
        dimensions: dims,
        measures,
        version: 1,
    }
}

fn create_db(server: &Influxd, db: &str) {
    let a = server.query(db, &format!("CREATE DATABASE \"{db}\""));
    assert_eq!(a.status, 200, "{}", a.body);
}

fn write(server: &Influxd, db: &str, records: &[StoreRecord]) {
    let mut body = String::new();
    for r in records {
        encode_line(&mut body, r).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    }
    let a = server.write(db, "ns", &body);
    assert_eq!(a.status, 204, "influxd refused:\n{body}\n{}", a.body);
}

/// Every point of every measurement: name → rows of column → value (nulls left out).
fn read_all(server: &Influxd, db: &str) -> BTreeMap<String, Vec<BTreeMap<String, Value>>> {
    let a = server.query(db, "SELECT * FROM /.*/");
    assert_eq!(a.status, 200, "{}", a.body);
    let json: Value = serde_json::from_str(&a.body).unwrap();
    assert!(json["results"][0]["error"].is_null(), "{}", a.body);
    let mut out: BTreeMap<String, Vec<BTreeMap<String, Value>>> = BTreeMap::new();
    for series in json["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = series["name"].as_str().unwrap().to_owned();
        let columns: Vec<String> = series["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        for row in series["values"].as_array().unwrap() {
            let row: BTreeMap<String, Value> = columns
                .iter()
                .cloned()
                .zip(row.as_array().unwrap().iter().cloned())
                .filter(|(_, v)| !v.is_null())
                .collect();
            out.entry(name.clone()).or_default().push(row);
        }
    }
    out
}

#[test]
fn names_tags_and_fields_with_special_characters_read_back_exactly() {
    let server = Influxd::shared();
    let db = "lp_names";
    create_db(server, db);
    let records: Vec<StoreRecord> = TRICKY
        .iter()
        .enumerate()
        .map(|(i, s)| {
            record(
                format!("m{s}"),
                vec![
                    (format!("k{s}"), (*s).to_owned()),
                    ("event_id".into(), format!("e{i}")),
                ],
                vec![(format!("f{s}"), StoreValue::Varchar((*s).to_owned()))],
                1_700_000_000_000 + i as i64,
            )
        })
        .collect();
    write(server, db, &records);
    let stored = read_all(server, db);
    assert_eq!(
        stored.len(),
        TRICKY.len(),
        "one measurement per name: {:?}",
        stored.keys()
    );
    for (i, s) in TRICKY.iter().enumerate() {
        let rows = stored
            .get(&format!("m{s}"))
            .unwrap_or_else(|| panic!("measurement m{s:?} missing: {:?}", stored.keys()));
        assert_eq!(rows.len(), 1, "{s:?}");
        let row = &rows[0];
        assert_eq!(row["time"], Value::from(1_700_000_000_000 + i as i64), "{s:?}");
        assert_eq!(row[&format!("k{s}")], Value::from(*s), "tag {s:?}");
        assert_eq!(row[&format!("f{s}")], Value::from(*s), "field {s:?}");
        assert_eq!(row["event_id"], Value::from(format!("e{i}")));
        assert_eq!(row.len(), 4, "no other column: {row:?}");
    }
}

#[test]
fn typed_fields_keep_their_type_and_value() {
    let server = Influxd::shared();
    let db = "lp_types";
    create_db(server, db);
    let mut measures = vec![
        ("int_min".to_owned(), StoreValue::BigInt(i64::MIN)),
        ("int_max".to_owned(), StoreValue::BigInt(i64::MAX)),
        ("tenth".to_owned(), StoreValue::Double(0.1)),
        ("huge".to_owned(), StoreValue::Double(1e300)),
        ("whole".to_owned(), StoreValue::Double(-2.0)),
        ("yes".to_owned(), StoreValue::Boolean(true)),
        ("no".to_owned(), StoreValue::Boolean(false)),
    ];
    for (i, s) in STRING_ONLY.iter().enumerate() {
        measures.push((format!("s{i}"), StoreValue::Varchar((*s).to_owned())));
    }
    let r = record(
        "types".into(),
        vec![("event_id".into(), "e1".into())],
        measures.clone(),
        1_700_000_000_001,
    );
    write(server, db, &[r]);
    let rows = &read_all(server, db)["types"];
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    for (name, value) in &measures {
        let got = &row[name];
        match value {
            // JSON carries InfluxDB's int64 exactly as an integer, a float as a float.
            StoreValue::BigInt(n) => assert_eq!(got.as_i64(), Some(*n), "{name}"),
            StoreValue::Double(f) => assert_eq!(got.as_f64(), Some(*f), "{name}: {got}"),
            StoreValue::Boolean(b) => assert_eq!(got.as_bool(), Some(*b), "{name}"),
            StoreValue::Varchar(s) => assert_eq!(got.as_str(), Some(s.as_str()), "{name}"),
        }
    }
    let kinds = server.query(db, "SHOW FIELD KEYS FROM \"types\"");
    let json: Value = serde_json::from_str(&kinds.body).unwrap();
    let kinds: BTreeMap<String, String> = json["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv[0].as_str().unwrap().to_owned(),
                kv[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(kinds["int_min"], "integer");
    assert_eq!(kinds["whole"], "float");
    assert_eq!(kinds["yes"], "boolean");
    assert_eq!(kinds["s0"], "string");
}

#[test]
fn same_millisecond_events_stay_apart_and_replays_rewrite_the_same_point() {
    let server = Influxd::shared();
    let db = "lp_identity";
    create_db(server, db);
    let event = |id: &str, v: i64| {
        record(
            "clicks".into(),
            vec![("event_id".into(), id.into()), ("region".into(), "eu".into())],
            vec![("n".into(), StoreValue::BigInt(v))],
            1_700_000_000_000,
        )
    };
    write(server, db, &[event("a", 1), event("b", 2)]);
    // The whole batch again (an at-least-once redelivery), then once more.
    write(server, db, &[event("a", 1), event("b", 2)]);
    write(server, db, &[event("a", 1)]);
    let rows = &read_all(server, db)["clicks"];
    let mut seen: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    let sum = server.query(db, "SELECT SUM(\"n\") FROM \"clicks\"");
    let json: Value = serde_json::from_str(&sum.body).unwrap();
    assert_eq!(json["results"][0]["series"][0]["values"][0][1], Value::from(3));
}

#[test]
fn an_empty_dimension_is_left_out_rather_than_written_empty() {
    let server = Influxd::shared();
    let db = "lp_empty";
    create_db(server, db);
    let r = record(
        "m".into(),
        vec![
            ("event_id".into(), "e".into()),
            ("region".into(), "eu".into()),
            ("blank".into(), String::new()),
        ],
        vec![("x".into(), StoreValue::BigInt(1))],
        1_700_000_000_000,
    );
    write(server, db, &[r]);
    let tags = server.query(db, "SHOW TAG KEYS FROM \"m\"");
    let json: Value = serde_json::from_str(&tags.body).unwrap();
    assert_eq!(
        json["results"][0]["series"][0]["values"],
        serde_json::json!([["region"]])
    );
}

/// The event id is a field, not a tag: one series per dimension set however many events, so
/// InfluxDB's series index does not grow with events.
#[test]
fn events_of_one_dimension_set_are_one_series_with_the_event_id_as_a_field() {
    let server = Influxd::shared();
    let db = "lp_series";
    create_db(server, db);
    let events: Vec<StoreRecord> = (0..50)
        .map(|i| {
            record(
                "clicks".into(),
                vec![
                    ("event_id".into(), format!("e{i}")),
                    ("region".into(), "eu".into()),
                ],
                vec![("n".into(), StoreValue::BigInt(1))],
                1_700_000_000_000,
            )
        })
        .collect();
    write(server, db, &events);
    let series = server.query(db, "SHOW SERIES FROM \"clicks\"");
    let json: Value = serde_json::from_str(&series.body).unwrap();
    assert_eq!(
        json["results"][0]["series"][0]["values"],
        serde_json::json!([["clicks,region=eu"]])
    );
    let fields = server.query(db, "SHOW FIELD KEYS FROM \"clicks\"");
    let json: Value = serde_json::from_str(&fields.body).unwrap();
    assert_eq!(
        json["results"][0]["series"][0]["values"],
        serde_json::json!([["event_id", "string"], ["n", "integer"]])
    );
    let count = server.query(db, "SELECT COUNT(\"n\") FROM \"clicks\"");
    let json: Value = serde_json::from_str(&count.body).unwrap();
    assert_eq!(json["results"][0]["series"][0]["values"][0][1], Value::from(50));
}

mod arbitrary {
    //! Random records with the characters the grammar treats specially: whatever the encoder
    //! accepts, the real server stores exactly.
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;

    use super::*;

    /// Mostly accepted texts: the special characters anywhere, and backslashes before letters
    /// (refusals are the grammar test's subject).
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z ,=\"'#\t_é日]{1,8}",
            "[a-z ,=\"]{0,3}\\\\[a-z][a-z ,=\"]{0,3}",
        ]
    }

    fn value() -> impl Strategy<Value = StoreValue> {
        prop_oneof![
            any::<i64>().prop_map(StoreValue::BigInt),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(StoreValue::Double),
            any::<bool>().prop_map(StoreValue::Boolean),
            "[a-z ,=\"'\\\\\n\r#é]{0,12}".prop_map(StoreValue::Varchar),
        ]
    }

    static CASE: AtomicUsize = AtomicUsize::new(0);

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, max_global_rejects: 4096, ..ProptestConfig::default() })]

        #[test]
        fn whatever_the_encoder_accepts_the_server_stores_exactly(
            measure in text(),
            tags in prop::collection::btree_map(text(), text(), 0..3),
            fields in prop::collection::btree_map(text(), value(), 1..4),
        ) {
            // Prefixes keep tag and field keys apart (InfluxQL would rename a clash).
            let r = record(
                format!("m{measure}"),
                tags.iter().map(|(k, v)| (format!("t{k}"), v.clone())).collect(),
                fields.iter().map(|(k, v)| (format!("f{k}"), v.clone())).collect(),
                1_700_000_000_000,
            );
            let mut line = String::new();
            prop_assume!(encode_line(&mut line, &r).is_ok());
            let server = Influxd::shared();
            let db = format!("lp_prop_{}", CASE.fetch_add(1, Ordering::Relaxed));
            create_db(server, &db);
            write(server, &db, std::slice::from_ref(&r));
            let stored = read_all(server, &db);
            let rows = stored.get(&r.measure_name).unwrap_or_else(|| panic!("{:?} not in {:?}", r.measure_name, stored.keys()));
            prop_assert_eq!(rows.len(), 1);
            let row = &rows[0];
            for (k, v) in &r.dimensions {
                prop_assert_eq!(row.get(k), Some(&Value::from(v.as_str())), "tag {:?} in {:?}: {:?}", k, line, row);
            }
            for (k, v) in &r.measures {
                let got = row.get(k).unwrap_or(&Value::Null);
                let same = match v {
                    StoreValue::BigInt(n) => got.as_i64() == Some(*n),
                    StoreValue::Double(f) => got.as_f64() == Some(*f),
                    StoreValue::Boolean(b) => got.as_bool() == Some(*b),
                    StoreValue::Varchar(s) => got.as_str() == Some(s.as_str()),
                };
                prop_assert!(same, "field {:?}: sent {:?}, stored {} in {}", k, v, got, line);
            }
            prop_assert_eq!(row.len(), 1 + r.dimensions.len() + r.measures.len(), "no other column: {:?}", row);
        }
    }
}
