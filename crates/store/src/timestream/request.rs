//! Building one `WriteRecords` request from store records. Whatever every record shares
//! (dimensions with the same value, the measure name, the version, the value type and time
//! unit) goes once into `CommonAttributes`, which Timestream merges into each record: fewer
//! bytes on the wire and fewer billed write units.

use aws_sdk_timestreamwrite::types::{
    Dimension, DimensionValueType, MeasureValue, MeasureValueType, Record, TimeUnit,
};

use crate::record::StoreRecord;

/// The records of one request, and their common attributes (only for two or more records).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub common: Option<Record>,
    pub records: Vec<Record>,
}

/// A record that the SDK's builders refused (a required field missing): a bug, not data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build a Timestream record: {0}")]
pub struct BuildError(pub String);

pub fn prepare(records: &[StoreRecord]) -> Result<Prepared, BuildError> {
    let Some(first) = records.first() else {
        return Ok(Prepared {
            common: None,
            records: Vec::new(),
        });
    };
    if records.len() == 1 {
        return Ok(Prepared {
            common: None,
            records: vec![record(first, &Shared::default(), true)?],
        });
    }
    let shared = Shared::of(records);
    let mut common = Record::builder()
        .measure_value_type(MeasureValueType::Multi)
        .time_unit(TimeUnit::Milliseconds)
        .set_dimensions(non_empty(dimensions(
            shared.dimensions.iter().map(|(n, v)| (*n, *v)),
        )?));
    if let Some(name) = shared.measure_name {
        common = common.measure_name(name);
    }
    if let Some(version) = shared.version {
        common = common.version(version);
    }
    let out = records
        .iter()
        .map(|r| record(r, &shared, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Prepared {
        common: Some(common.build()),
        records: out,
    })
}

/// What all records of a request have in common.
#[derive(Debug, Default)]
struct Shared<'a> {
    dimensions: Vec<(&'a str, &'a str)>,
    measure_name: Option<&'a str>,
    version: Option<i64>,
}

impl<'a> Shared<'a> {
    fn of(records: &'a [StoreRecord]) -> Self {
        let Some((first, rest)) = records.split_first() else {
            return Shared::default();
        };
        let dimensions = first
            .dimensions
            .iter()
            .filter(|(name, value)| rest.iter().all(|r| r.dimension(name) == Some(value.as_str())))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let measure_name = rest
            .iter()
            .all(|r| r.measure_name == first.measure_name)
            .then_some(first.measure_name.as_str());
        let version = rest
            .iter()
            .all(|r| r.version == first.version)
            .then_some(first.version);
        Shared {
            dimensions,
            measure_name,
            version,
        }
    }

    fn has_dimension(&self, name: &str) -> bool {
        self.dimensions.iter().any(|(n, _)| *n == name)
    }
}

fn record(r: &StoreRecord, shared: &Shared<'_>, alone: bool) -> Result<Record, BuildError> {
    let own_dimensions = r
        .dimensions
        .iter()
        .filter(|(n, _)| !shared.has_dimension(n))
        .map(|(n, v)| (n.as_str(), v.as_str()));
    let measures = r
        .measures
        .iter()
        .map(|(name, value)| {
            MeasureValue::builder()
                .name(name)
                .value(value.to_text())
                .r#type(MeasureValueType::from(value.measure_type().name()))
                .build()
                .map_err(|e| BuildError(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut b = Record::builder()
        .set_dimensions(non_empty(dimensions(own_dimensions)?))
        .time(r.time_ms.to_string())
        .set_measure_values(Some(measures));
    if shared.measure_name.is_none() {
        b = b.measure_name(&r.measure_name);
    }
    if shared.version.is_none() {
        b = b.version(r.version);
    }
    if alone {
        b = b
            .measure_value_type(MeasureValueType::Multi)
            .time_unit(TimeUnit::Milliseconds);
    }
    Ok(b.build())
}

fn dimensions<'a>(dims: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Vec<Dimension>, BuildError> {
    dims.map(|(name, value)| {
        Dimension::builder()
            .name(name)
            .value(value)
            .dimension_value_type(DimensionValueType::Varchar)
            .build()
            .map_err(|e| BuildError(e.to_string()))
    })
    .collect()
}

/// Leaves an empty list out of the request (fewer bytes; Timestream treats both the same).
fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() { None } else { Some(v) }
}
