//! The typed multi-measure record every adapter writes.

use std::borrow::Cow;

use metrics_schema::json::write_str;
use sha2::{Digest, Sha256};

/// The dimension that carries the event's identity.
pub const EVENT_ID_DIMENSION: &str = "event_id";

/// One multi-measure record: a row of the tenant's table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRecord {
    /// `metric_name` of the event.
    pub measure_name: String,
    /// `event_time` in milliseconds since the epoch.
    pub time_ms: i64,
    /// String dimensions in input order; `event_id` is always one of them.
    pub dimensions: Vec<(String, String)>,
    /// Typed measures in input order; never empty.
    pub measures: Vec<(String, StoreValue)>,
    /// Always 1: a replay is a no-op, a different value at the same identity is a conflict.
    pub version: i64,
}

/// A measure value, typed from its JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreValue {
    BigInt(i64),
    Double(f64),
    Boolean(bool),
    Varchar(String),
}

/// The store's measure types, named as Timestream names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasureType {
    BigInt,
    Double,
    Boolean,
    Varchar,
}

impl MeasureType {
    /// `BIGINT`, `DOUBLE`, `BOOLEAN` or `VARCHAR`.
    pub const fn name(self) -> &'static str {
        match self {
            MeasureType::BigInt => "BIGINT",
            MeasureType::Double => "DOUBLE",
            MeasureType::Boolean => "BOOLEAN",
            MeasureType::Varchar => "VARCHAR",
        }
    }

    pub fn from_name(name: &str) -> Option<MeasureType> {
        [
            MeasureType::BigInt,
            MeasureType::Double,
            MeasureType::Boolean,
            MeasureType::Varchar,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

impl StoreValue {
    pub const fn measure_type(&self) -> MeasureType {
        match self {
            StoreValue::BigInt(_) => MeasureType::BigInt,
            StoreValue::Double(_) => MeasureType::Double,
            StoreValue::Boolean(_) => MeasureType::Boolean,
            StoreValue::Varchar(_) => MeasureType::Varchar,
        }
    }

    /// The value as the store's wire text. Doubles use the shortest text that reads back to
    /// the same number (with an exponent for very large or small ones, so `1e300` stays short).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            StoreValue::BigInt(i) => Cow::Owned(i.to_string()),
            StoreValue::Double(f) => Cow::Owned(format!("{f:?}")),
            StoreValue::Boolean(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            StoreValue::Varchar(s) => Cow::Borrowed(s),
        }
    }
}

impl StoreRecord {
    /// The value of a dimension.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The series this record belongs to: its dimensions, sorted by name, as a JSON array of
    /// `[name, value]` pairs. Equal for equal dimension sets whatever their order.
    pub fn series_key(&self) -> String {
        let mut dims: Vec<&(String, String)> = self.dimensions.iter().collect();
        dims.sort();
        // serde_json's text of `dims`, written directly: the key is stored, so it must stay
        // byte for byte what serde_json writes (`write_str` escapes exactly as serde_json).
        let size: usize = dims.iter().map(|(n, v)| n.len() + v.len() + 8).sum();
        let mut json = Vec::with_capacity(2 + size);
        json.push(b'[');
        for (i, (name, value)) in dims.into_iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.push(b'[');
            write_str(&mut json, name);
            json.push(b',');
            write_str(&mut json, value);
            json.push(b']');
        }
        json.push(b']');
        // Only `&str`s and ASCII punctuation went in.
        String::from_utf8(json).unwrap_or_default()
    }

    /// A digest of the measure values (names, types and values, sorted by name): two records
    /// with the same identity are the same record exactly when their digests are equal.
    pub fn value_digest(&self) -> String {
        let mut measures: Vec<(&str, MeasureType, Cow<'_, str>)> = self
            .measures
            .iter()
            .map(|(n, v)| (n.as_str(), v.measure_type(), v.to_text()))
            .collect();
        measures.sort_by(|a, b| a.0.cmp(b.0));
        let mut hash = Sha256::new();
        for (name, ty, text) in measures {
            for part in [name, ty.name(), text.as_ref()] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part.as_bytes());
            }
        }
        hex::encode(&hash.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(dims: &[(&str, &str)], measures: Vec<(&str, StoreValue)>) -> StoreRecord {
        StoreRecord {
            measure_name: "m".into(),
            time_ms: 1,
            dimensions: dims.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            measures: measures.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            version: 1,
        }
    }

    #[test]
    fn doubles_are_short_and_read_back_exactly() {
        for f in [0.1, 1.0, -2.5, 1e300, 5e-324, 123456.789] {
            let text = StoreValue::Double(f).to_text().into_owned();
            assert!(text.len() <= 24, "{text}");
            assert_eq!(text.parse::<f64>().unwrap(), f);
        }
        assert_eq!(StoreValue::BigInt(i64::MIN).to_text(), "-9223372036854775808");
        assert_eq!(StoreValue::Boolean(true).to_text(), "true");
    }

    #[test]
    fn series_keys_are_what_serde_json_writes() {
        use proptest::prelude::*;
        let text = "[ a-z\"\\\\\u{0}-\u{1f}/é😀]{0,8}";
        proptest!(|(dims in prop::collection::vec((text, text), 0..6))| {
            let r = StoreRecord {
                dimensions: dims,
                ..record(&[], Vec::new())
            };
            let mut sorted: Vec<&(String, String)> = r.dimensions.iter().collect();
            sorted.sort();
            prop_assert_eq!(r.series_key(), serde_json::to_string(&sorted).unwrap());
        });
    }

    #[test]
    fn series_key_ignores_dimension_order() {
        let a = record(&[("a", "1"), ("b", "2")], vec![("x", StoreValue::BigInt(1))]);
        let b = record(&[("b", "2"), ("a", "1")], vec![("x", StoreValue::BigInt(1))]);
        assert_eq!(a.series_key(), b.series_key());
        assert_eq!(a.series_key(), r#"[["a","1"],["b","2"]]"#);
    }

    #[test]
    fn value_digest_changes_with_value_and_type_but_not_order() {
        let base = record(
            &[],
            vec![("x", StoreValue::BigInt(1)), ("y", StoreValue::Boolean(true))],
        );
        let swapped = record(
            &[],
            vec![("y", StoreValue::Boolean(true)), ("x", StoreValue::BigInt(1))],
        );
        let other_value = record(
            &[],
            vec![("x", StoreValue::BigInt(2)), ("y", StoreValue::Boolean(true))],
        );
        let other_type = record(
            &[],
            vec![("x", StoreValue::Double(1.0)), ("y", StoreValue::Boolean(true))],
        );
        assert_eq!(base.value_digest(), swapped.value_digest());
        assert_ne!(base.value_digest(), other_value.value_digest());
        assert_ne!(base.value_digest(), other_type.value_digest());
    }
}
