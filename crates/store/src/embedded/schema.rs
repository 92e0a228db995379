//! The embedded store's catalog: which columns of a tenant's table are dimensions and which
//! are measures, with their types. Kept in `ts_schema` next to the tables, so a query engine
//! can check every identifier of a request against the tenant's own schema.

use std::cell::OnceCell;
use std::collections::HashMap;

use rusqlite::{Connection, params};

use crate::record::{MeasureType, StoreRecord};

/// The catalog table.
pub const CATALOG: &str = "ts_schema";
/// Columns every tenant table has besides its dimensions and measures.
pub const TIME: &str = "time";
pub const MEASURE_NAME: &str = "measure_name";
pub const SERIES: &str = "ts_series";
pub const DIGEST: &str = "ts_digest";

/// Tables per tenant are limited like Timestream's.
pub const MAX_TABLE_DIMENSIONS: usize = 128;
pub const MAX_TABLE_MEASURES: usize = 1024;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Dimension,
    Measure(MeasureType),
}

impl ColumnKind {
    fn kind_name(self) -> &'static str {
        match self {
            ColumnKind::Dimension => "dimension",
            ColumnKind::Measure(_) => "measure",
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            ColumnKind::Dimension => "VARCHAR",
            ColumnKind::Measure(t) => t.name(),
        }
    }
}

/// A dimension or measure column of a tenant's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

/// The columns of one table, looked up without regard to case (SQLite's column names are
/// case-insensitive, so `Region` and `region` cannot both be columns).
#[derive(Debug, Default, Clone)]
pub struct TableSchema {
    by_folded_name: HashMap<String, Column>,
    /// Each column by its exact name, with its kind and its place in [`TableSchema::insert_sql`]:
    /// a record whose columns are all here needs no folding, no new column and no SQL built.
    by_name: foldhash::HashMap<String, (usize, ColumnKind)>,
    /// The exact names, in their places.
    in_place: Vec<String>,
    /// The INSERT of a row of every column, built once per schema.
    insert_sql: OnceCell<String>,
    dimensions: usize,
    measures: usize,
}

/// Why a record does not fit the table's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    Conflict(String),
    Limit(String),
}

impl TableSchema {
    pub fn load(conn: &Connection, table: &str) -> rusqlite::Result<TableSchema> {
        let mut stmt =
            conn.prepare_cached("SELECT column_name, kind, type FROM ts_schema WHERE table_name = ?1")?;
        let mut schema = TableSchema::default();
        let rows = stmt.query_map(params![table], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (name, kind, ty) = row?;
            let kind = match (kind.as_str(), MeasureType::from_name(&ty)) {
                ("measure", Some(t)) => ColumnKind::Measure(t),
                _ => ColumnKind::Dimension,
            };
            schema.insert(Column { name, kind });
        }
        Ok(schema)
    }

    fn insert(&mut self, column: Column) {
        match column.kind {
            ColumnKind::Dimension => self.dimensions += 1,
            ColumnKind::Measure(_) => self.measures += 1,
        }
        self.by_name
            .insert(column.name.clone(), (self.in_place.len(), column.kind));
        self.in_place.push(column.name.clone());
        self.insert_sql = OnceCell::new();
        self.by_folded_name.insert(column.name.to_lowercase(), column);
    }

    /// The place in [`TableSchema::insert_sql`] of each of the record's columns (its
    /// dimensions, then its measures), into `places`; false when one is not a column of this
    /// kind yet (then [`TableSchema::missing_columns`] says what to add, or why not).
    pub fn places(&self, record: &StoreRecord, places: &mut Vec<usize>) -> bool {
        places.clear();
        for (name, kind) in wanted_columns(record) {
            match self.by_name.get(name) {
                Some(&(place, existing)) if existing == kind => places.push(place),
                _ => return false,
            }
        }
        true
    }

    /// `INSERT INTO table (measure_name, time, ts_series, ts_digest, <every column in its
    /// place>) VALUES (?, …) ON CONFLICT (measure_name, time, ts_series) DO NOTHING`: a record
    /// binds its own columns and leaves the others NULL, as an INSERT of just its columns
    /// would (the row is the same), with one statement per table instead of one per set of
    /// columns.
    pub fn insert_sql(&self, table: &str) -> &str {
        self.insert_sql.get_or_init(|| {
            let mut sql = String::with_capacity(160 + 24 * self.in_place.len());
            sql.push_str("INSERT INTO ");
            push_quoted(&mut sql, table);
            sql.push_str(" (measure_name, time, ts_series, ts_digest");
            for name in &self.in_place {
                sql.push_str(", ");
                push_quoted(&mut sql, name);
            }
            sql.push_str(") VALUES (?, ?, ?, ?");
            for _ in &self.in_place {
                sql.push_str(", ?");
            }
            sql.push_str(") ON CONFLICT (measure_name, time, ts_series) DO NOTHING");
            sql
        })
    }

    pub fn columns(&self) -> impl Iterator<Item = &Column> {
        self.by_folded_name.values()
    }

    pub fn get(&self, name: &str) -> Option<&Column> {
        self.by_folded_name
            .get(&name.to_lowercase())
            .filter(|c| c.name == name)
    }

    /// The columns `record` needs that the table lacks, or why it cannot have them.
    pub fn missing_columns(&self, record: &StoreRecord) -> Result<Vec<Column>, Misfit> {
        let mut missing: Vec<Column> = Vec::new();
        for (name, kind) in wanted_columns(record) {
            let folded = name.to_lowercase();
            if [TIME, MEASURE_NAME, SERIES, DIGEST].contains(&folded.as_str()) {
                return Err(Misfit::Conflict(format!("{name:?} is a reserved column")));
            }
            match self.by_folded_name.get(&folded) {
                Some(existing) if existing.name == name && existing.kind == kind => {}
                Some(existing) => {
                    return Err(Misfit::Conflict(format!(
                        "{name:?} is a {} {} but the table has {:?} as a {} {}",
                        kind.type_name(),
                        kind.kind_name(),
                        existing.name,
                        existing.kind.type_name(),
                        existing.kind.kind_name(),
                    )));
                }
                None => {
                    if let Some(dup) = missing.iter().find(|c| c.name.to_lowercase() == folded) {
                        return Err(Misfit::Conflict(format!(
                            "{name:?} and {:?} differ only in case",
                            dup.name
                        )));
                    }
                    missing.push(Column {
                        name: name.to_owned(),
                        kind,
                    });
                }
            }
        }
        let new_dims = missing.iter().filter(|c| c.kind == ColumnKind::Dimension).count();
        if self.dimensions + new_dims > MAX_TABLE_DIMENSIONS {
            return Err(Misfit::Limit(
                "the table would have more than 128 dimensions".into(),
            ));
        }
        if self.measures + (missing.len() - new_dims) > MAX_TABLE_MEASURES {
            return Err(Misfit::Limit(
                "the table would have more than 1024 measures".into(),
            ));
        }
        Ok(missing)
    }

    /// Adds a column to the table and the catalog.
    pub fn add(&mut self, conn: &Connection, table: &str, column: Column) -> rusqlite::Result<()> {
        conn.execute(
            &format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote(table),
                quote(&column.name),
                column.kind.type_name()
            ),
            [],
        )?;
        conn.execute(
            "INSERT INTO ts_schema (table_name, column_name, kind, type) VALUES (?1, ?2, ?3, ?4)",
            params![
                table,
                column.name,
                column.kind.kind_name(),
                column.kind.type_name()
            ],
        )?;
        self.insert(column);
        Ok(())
    }
}

/// The columns a record needs, with their kinds: its dimensions, then its measures (the order
/// of [`TableSchema::places`]).
fn wanted_columns(record: &StoreRecord) -> impl Iterator<Item = (&str, ColumnKind)> {
    record
        .dimensions
        .iter()
        .map(|(n, _)| (n.as_str(), ColumnKind::Dimension))
        .chain(
            record
                .measures
                .iter()
                .map(|(n, v)| (n.as_str(), ColumnKind::Measure(v.measure_type()))),
        )
}

/// An SQL identifier, quoted: any text is safe inside double quotes once `"` is doubled.
pub fn quote(identifier: &str) -> String {
    let mut quoted = String::with_capacity(identifier.len() + 2);
    push_quoted(&mut quoted, identifier);
    quoted
}

/// [`quote`], onto the end of `sql`.
pub fn push_quoted(sql: &mut String, identifier: &str) {
    sql.push('"');
    for (i, part) in identifier.split('"').enumerate() {
        if i > 0 {
            sql.push_str("\"\"");
        }
        sql.push_str(part);
    }
    sql.push('"');
}

/// Creates the catalog, and the tenant's table if it does not exist.
pub fn create_table(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS {} (measure_name TEXT NOT NULL, time INTEGER NOT NULL, \
             ts_series TEXT NOT NULL, ts_digest TEXT NOT NULL, \
             PRIMARY KEY (measure_name, time, ts_series)) WITHOUT ROWID",
            quote(table)
        ),
        [],
    )?;
    Ok(())
}

pub fn create_catalog(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS ts_schema (table_name TEXT NOT NULL, column_name TEXT NOT NULL, \
         kind TEXT NOT NULL CHECK (kind IN ('dimension', 'measure')), type TEXT NOT NULL, \
         PRIMARY KEY (table_name, column_name))",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote("tenant/acme"), r#""tenant/acme""#);
        assert_eq!(quote(r#"a"b""#), r#""a""b""""#);
        assert_eq!(quote(r#"""#), r#""""""#);
        assert_eq!(quote(""), r#""""#);
        let mut sql = String::from("SELECT ");
        push_quoted(&mut sql, "x\"");
        assert_eq!(sql, r#"SELECT "x""""#);
    }
}
