//! Timestream answers as typed cells: every scalar arrives as a string and is parsed by its
//! column's declared type; `NullValue` is a null of any type.

use aws_sdk_timestreamquery::types::{ColumnInfo, Datum, ScalarType};
use metrics_schema::EventTime;

/// One parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Number(f64),
    /// Epoch milliseconds.
    Time(i64),
    /// Nested values (arrays and rows), e.g. `SHOW MEASURES`' dimensions.
    List(Vec<Cell>),
}

impl Cell {
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(v) => Some(*v),
            _ => None,
        }
    }
}

/// A value that does not parse as its column's type: the store broke its contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {value:?} is not a {kind}")]
pub struct BadValue {
    pub column: String,
    pub value: String,
    pub kind: &'static str,
}

/// A Timestream timestamp (`2026-11-23 10:00:00.000000000`, UTC) in epoch milliseconds.
pub fn timestamp_ms(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(' ')?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let millis: String = fraction.chars().chain(std::iter::repeat('0')).take(3).collect();
    let millis: i64 = millis.parse().ok()?;
    let whole = EventTime::parse_rfc3339(&format!("{date}T{hms}Z")).ok()?;
    Some(whole.as_millis() + millis)
}

fn scalar(column: &str, kind: Option<&ScalarType>, value: &str) -> Result<Cell, BadValue> {
    let bad = |kind| BadValue {
        column: column.to_owned(),
        value: value.chars().take(40).collect(),
        kind,
    };
    match kind {
        Some(ScalarType::Bigint | ScalarType::Integer | ScalarType::Double) => {
            value.parse::<f64>().map(Cell::Number).map_err(|_| bad("number"))
        }
        Some(ScalarType::Boolean) => match value {
            "true" => Ok(Cell::Number(1.0)),
            "false" => Ok(Cell::Number(0.0)),
            _ => Err(bad("boolean")),
        },
        Some(ScalarType::Timestamp) => timestamp_ms(value)
            .map(Cell::Time)
            .ok_or_else(|| bad("timestamp")),
        _ => Ok(Cell::Text(value.to_owned())),
    }
}

/// One datum of a column described by `info`.
pub fn cell(info: &ColumnInfo, datum: &Datum) -> Result<Cell, BadValue> {
    let name = info.name().unwrap_or("?");
    if datum.null_value() == Some(true) {
        return Ok(Cell::Null);
    }
    let kind = info.r#type();
    if let Some(value) = datum.scalar_value() {
        return scalar(name, kind.and_then(|t| t.scalar_type()), value);
    }
    if let Some(items) = datum.array_value.as_deref() {
        let inner = kind.and_then(|t| t.array_column_info());
        return items
            .iter()
            .map(|d| match inner {
                Some(i) => cell(i, d),
                None => Ok(Cell::Null),
            })
            .collect::<Result<_, _>>()
            .map(Cell::List);
    }
    if let Some(row) = datum.row_value() {
        let infos = kind.map(|t| t.row_column_info()).unwrap_or_default();
        return row
            .data()
            .iter()
            .zip(infos)
            .map(|(d, i)| cell(i, d))
            .collect::<Result<_, _>>()
            .map(Cell::List);
    }
    Ok(Cell::Null)
}
