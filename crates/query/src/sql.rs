//! SQL text that the Timestream and InfluxDB 3 engines build the same way: quoted identifiers
//! and literals, and columns checked against the tenant's catalog before they are named.

use crate::catalog::MetricSchema;
use crate::model::{Filter, QueryError, QueryErrorCode};

/// `"name"`, with inner double quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'value'`, with inner single quotes doubled (backslashes are literal in both dialects).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A column the metric does not have.
pub(crate) fn unknown(code: QueryErrorCode, what: &str) -> QueryError {
    QueryError::new(code, format!("the metric has no {what} of that name"))
}

/// A dimension column, checked against the schema.
pub(crate) fn dimension(schema: &MetricSchema, name: &str) -> Result<String, QueryError> {
    if schema.dimensions.iter().any(|d| d == name) {
        Ok(ident(name))
    } else {
        Err(unknown(QueryErrorCode::UnknownDimension, "dimension"))
    }
}

/// ` AND "dimension" = 'value'` for each filter, every dimension checked against the schema.
pub(crate) fn filter_conditions(schema: &MetricSchema, filters: &[Filter]) -> Result<String, QueryError> {
    let mut sql = String::new();
    for f in filters {
        sql.push_str(&format!(
            " AND {} = {}",
            dimension(schema, &f.dimension)?,
            literal(&f.value)
        ));
    }
    Ok(sql)
}
