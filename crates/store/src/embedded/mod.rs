//! The embedded store: SQLite in one file, with Timestream's semantics, for the local
//! pipeline (`metrics-lake run`) and tests.
//!
//! Layout (what a query engine reads):
//! - one table per tenant, named [`names::table_name`] of the tenant id (`tenant/` and a
//!   case-exact encoding, always quoted), with columns
//!   `measure_name TEXT`, `time INTEGER` (epoch milliseconds), `ts_series TEXT` (the
//!   dimensions as a canonical JSON array), `ts_digest TEXT` (a digest of the measure values),
//!   then one column per dimension (`VARCHAR`, NULL when a record lacks it) and one per measure
//!   (`BIGINT`, `DOUBLE`, `BOOLEAN` as 0/1, or `VARCHAR`), added as they first appear;
//! - `ts_schema(table_name, column_name, kind, type)`: which columns are dimensions and which
//!   are measures, with their types.
//!
//! A store written before tenant tables were named this way (each table named exactly as its
//! tenant) is migrated when it is opened: each such table is renamed, with its catalog rows.
//! Two tenants that differed only in case shared one table then; it becomes the table of the
//! tenant that created it (write the other again from its source objects to separate them).
//!
//! Semantics, as in Timestream: the primary key is (measure_name, time, ts_series), so writing
//! the same record again is `AlreadyPresent` and a different value at the same identity is
//! `Rejected { version_conflict }`; a name keeps its role and type (`schema_conflict`); a
//! table has at most 128 dimensions and 1,024 measures (`limit_exceeded`); times older than
//! the retention or more than 15 minutes ahead are `time_out_of_range`. Each write is one
//! transaction, so overlapping writers (two deliveries of one object) serialise on SQLite's
//! lock and the result is as if each record were written once.
//!
//! Failures: a record SQLite refuses for good (a column it cannot add, a value it cannot
//! store) is `Rejected` on its own (`schema_conflict` or `store_rejected`), its neighbours
//! written, because a failed INSERT undoes itself and a record that adds columns is its own
//! savepoint; only what a retry can fix (a busy or
//! locked file, I/O, a full disk: [`is_transient`]) makes the batch `Retryable`.

pub mod names;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics_schema::TenantId;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params, params_from_iter};

use crate::port::{Deadline, RecordOutcome, Store, StoreError, WriteReport};
use crate::reason::RejectReason;
use crate::record::{MeasureType, StoreRecord, StoreValue};
use names::table_name;
use schema::{ColumnKind, Misfit, TableSchema, quote};

/// The embedded store's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSettings {
    /// The SQLite file (created if missing).
    pub path: PathBuf,
    /// Records older than this many days are refused, like Timestream's magnetic retention.
    pub retention_days: i64,
    /// Records further ahead of the clock than this are refused (Timestream: 15 minutes).
    pub max_future: Duration,
}

impl EmbeddedSettings {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        EmbeddedSettings {
            path: path.into(),
            retention_days: 365,
            max_future: Duration::from_secs(15 * 60),
        }
    }
}

/// The SQLite store. Calls are short and synchronous under a mutex: the local pipeline and
/// tests write from one process, and SQLite serialises writers anyway.
#[derive(Debug)]
pub struct EmbeddedStore {
    conn: Mutex<Connection>,
    settings: EmbeddedSettings,
}

/// Whether an SQLite failure may pass when the same call is made again: a busy or locked
/// database, I/O, a full disk, a file that cannot be opened or written, memory, a schema that
/// changed under a statement. Everything else (SQL and schema errors, constraint violations,
/// values too big, type mismatches) fails the same way every time.
pub fn is_transient(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => matches!(
            failure.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
                | ErrorCode::OperationInterrupted
                | ErrorCode::SchemaChanged
        ),
        _ => false,
    }
}

/// An SQLite failure as a store error: `Unavailable` when a retry may pass, else `Embedded`.
fn sql_error(e: rusqlite::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Embedded(e.to_string())
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store file.
    pub fn open(settings: EmbeddedSettings) -> Result<Self, StoreError> {
        if let Some(dir) = settings.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Embedded(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(&settings.path).map_err(sql_error)?;
        Self::init(conn, settings)
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql_error)?;
        Self::init(conn, EmbeddedSettings::new(":memory:"))
    }

    fn init(conn: Connection, settings: EmbeddedSettings) -> Result<Self, StoreError> {
        // WAL lets a reader (the query engine, a test) read while a writer writes; the busy
        // timeout makes a second writer wait for the lock instead of failing.
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::create_catalog(&conn).map_err(sql_error)?;
        migrate_legacy_tables(&conn).map_err(sql_error)?;
        Ok(EmbeddedStore {
            conn: Mutex::new(conn),
            settings,
        })
    }

    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    pub fn settings(&self) -> &EmbeddedSettings {
        &self.settings
    }

    /// The connection, for reading (a query engine, tests). Do not write through it. A
    /// call that panicked left no transaction open (it rolled back as it unwound), so the
    /// connection is still good.
    pub fn connection(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        Ok(self.conn.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The tenants that have a table, by id.
    pub fn tables(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(sql_error)?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        let mut tenants: Vec<String> = names.iter().filter_map(|n| names::tenant_of(n)).collect();
        tenants.sort();
        Ok(tenants)
    }

    /// The dimension and measure columns of a tenant's table (empty if it has none yet).
    pub fn schema(&self, tenant: &str) -> Result<TableSchema, StoreError> {
        TableSchema::load(&*self.connection()?, &table_name(tenant)).map_err(sql_error)
    }

    /// Every record of a tenant's table, ordered by time, measure name and series.
    pub fn records(&self, tenant: &str) -> Result<Vec<StoreRecord>, StoreError> {
        let conn = self.connection()?;
        let table = table_name(tenant);
        let schema = TableSchema::load(&conn, &table).map_err(sql_error)?;
        let columns: Vec<&schema::Column> = schema.columns().collect();
        let mut select = String::from("SELECT measure_name, time");
        for c in &columns {
            select.push_str(", ");
            select.push_str(&quote(&c.name));
        }
        select.push_str(&format!(
            " FROM {} ORDER BY time, measure_name, ts_series",
            quote(&table)
        ));
        let mut stmt = conn.prepare(&select).map_err(sql_error)?;
        let rows = stmt
            .query_map([], |row| {
                let mut record = StoreRecord {
                    measure_name: row.get(0)?,
                    time_ms: row.get(1)?,
                    dimensions: Vec::new(),
                    measures: Vec::new(),
                    version: 1,
                };
                for (i, c) in columns.iter().enumerate() {
                    let value: Value = row.get(i + 2)?;
                    let name = c.name.clone();
                    match (c.kind, value) {
                        (_, Value::Null) => {}
                        (ColumnKind::Dimension, Value::Text(s)) => record.dimensions.push((name, s)),
                        (ColumnKind::Measure(MeasureType::BigInt), Value::Integer(i)) => {
                            record.measures.push((name, StoreValue::BigInt(i)))
                        }
                        (ColumnKind::Measure(MeasureType::Double), Value::Real(f)) => {
                            record.measures.push((name, StoreValue::Double(f)))
                        }
                        (ColumnKind::Measure(MeasureType::Double), Value::Integer(i)) => {
                            record.measures.push((name, StoreValue::Double(i as f64)))
                        }
                        (ColumnKind::Measure(MeasureType::Boolean), Value::Integer(i)) => {
                            record.measures.push((name, StoreValue::Boolean(i != 0)))
                        }
                        (ColumnKind::Measure(MeasureType::Varchar), Value::Text(s)) => {
                            record.measures.push((name, StoreValue::Varchar(s)))
                        }
                        (_, other) => record.dimensions.push((name, format!("{other:?}"))),
                    }
                }
                record.dimensions.sort();
                record.measures.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(record)
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    }

    fn ensure_sync(&self, tenant: &str) -> Result<(), StoreError> {
        schema::create_table(&*self.connection()?, &table_name(tenant)).map_err(sql_error)
    }

    fn write_sync(&self, tenant: &str, records: &[StoreRecord]) -> Result<WriteReport, rusqlite::Error> {
        let table = table_name(tenant);
        let table = table.as_str();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let oldest = now_ms.saturating_sub(self.settings.retention_days.saturating_mul(86_400_000));
        let newest = now_ms.saturating_add(self.settings.max_future.as_millis() as i64);
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        schema::create_table(&tx, table)?;
        let mut schema = TableSchema::load(&tx, table)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            if record.time_ms < oldest || record.time_ms > newest {
                outcomes.push(rejected(
                    RejectReason::TimeOutOfRange,
                    "the time is outside the table's retention window",
                ));
                continue;
            }
            let missing = match schema.missing_columns(record) {
                Err(Misfit::Conflict(detail)) => {
                    outcomes.push(rejected(RejectReason::SchemaConflict, &detail));
                    continue;
                }
                Err(Misfit::Limit(detail)) => {
                    outcomes.push(rejected(RejectReason::LimitExceeded, &detail));
                    continue;
                }
                Ok(missing) => missing,
            };
            if missing.is_empty() {
                // One INSERT: SQLite undoes a failed statement by itself, so a refusal leaves
                // nothing behind and needs no savepoint.
                match insert(&tx, table, record) {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) if is_transient(&e) => return Err(e),
                    Err(e) => outcomes.push(rejected(RejectReason::StoreRejected, &e.to_string())),
                }
                continue;
            }
            // New columns and the row in one savepoint: a refusal undoes this record alone.
            let savepoint = tx.savepoint()?;
            let added = missing
                .into_iter()
                .try_for_each(|column| schema.add(&savepoint, table, column));
            let result = match added {
                Ok(()) => insert(&savepoint, table, record).map_err(|e| (RejectReason::StoreRejected, e)),
                Err(e) => Err((RejectReason::SchemaConflict, e)),
            };
            match result {
                Ok(outcome) => {
                    savepoint.commit()?;
                    outcomes.push(outcome);
                }
                // Everything so far is rolled back with the transaction: retry the batch.
                Err((_, e)) if is_transient(&e) => return Err(e),
                Err((reason, e)) => {
                    drop(savepoint); // rolls back this record's columns and row
                    schema = TableSchema::load(&tx, table)?;
                    outcomes.push(rejected(reason, &e.to_string()));
                }
            }
        }
        tx.commit()?;
        Ok(WriteReport { outcomes })
    }
}

fn rejected(reason: RejectReason, detail: &str) -> RecordOutcome {
    RecordOutcome::Rejected {
        reason,
        detail: detail.to_owned(),
    }
}

/// Inserts one record unless its identity is taken; then compares values.
fn insert(conn: &Connection, table: &str, record: &StoreRecord) -> rusqlite::Result<RecordOutcome> {
    let series = record.series_key();
    let digest = record.value_digest();
    let mut sql = format!(
        "INSERT INTO {} (measure_name, time, ts_series, ts_digest",
        quote(table)
    );
    let mut values: Vec<Value> = vec![
        Value::Text(record.measure_name.clone()),
        Value::Integer(record.time_ms),
        Value::Text(series.clone()),
        Value::Text(digest.clone()),
    ];
    for (name, value) in &record.dimensions {
        sql.push_str(", ");
        sql.push_str(&quote(name));
        values.push(Value::Text(value.clone()));
    }
    for (name, value) in &record.measures {
        sql.push_str(", ");
        sql.push_str(&quote(name));
        values.push(match value {
            StoreValue::BigInt(i) => Value::Integer(*i),
            StoreValue::Double(f) => Value::Real(*f),
            StoreValue::Boolean(b) => Value::Integer(i64::from(*b)),
            StoreValue::Varchar(s) => Value::Text(s.clone()),
        });
    }
    sql.push_str(") VALUES (?");
    for _ in 1..values.len() {
        sql.push_str(", ?");
    }
    sql.push_str(") ON CONFLICT (measure_name, time, ts_series) DO NOTHING");
    let inserted = conn.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    if inserted == 1 {
        return Ok(RecordOutcome::Written);
    }
    let existing: Option<String> = conn
        .prepare_cached(&format!(
            "SELECT ts_digest FROM {} WHERE measure_name = ?1 AND time = ?2 AND ts_series = ?3",
            quote(table)
        ))?
        .query_row(params![record.measure_name, record.time_ms, series], |r| r.get(0))
        .optional()?;
    Ok(match existing {
        Some(d) if d == digest => RecordOutcome::AlreadyPresent,
        _ => rejected(
            RejectReason::VersionConflict,
            "a record with the same dimensions, measure name and time has different values",
        ),
    })
}

impl Store for EmbeddedStore {
    async fn ensure_table(&self, tenant: &TenantId<'_>, _deadline: Deadline) -> Result<(), StoreError> {
        self.ensure_sync(tenant.as_str())
    }

    async fn write(
        &self,
        tenant: &TenantId<'_>,
        records: &[StoreRecord],
        _deadline: Deadline,
    ) -> WriteReport {
        match self.write_sync(tenant.as_str(), records) {
            Ok(report) => report,
            // The transaction rolled back: nothing of this batch was written.
            Err(e) if is_transient(&e) => {
                WriteReport::all(records.len(), RecordOutcome::Retryable { cause: e.to_string() })
            }
            // No retry can fix it: each record gets its dead letter with the reason.
            Err(e) => WriteReport::all(
                records.len(),
                RecordOutcome::Rejected {
                    reason: RejectReason::StoreRejected,
                    detail: e.to_string(),
                },
            ),
        }
    }
}

/// Renames the tables of a store written before tenant tables had their own names (each was
/// named exactly as its tenant), with their catalog rows; run at every open, in one
/// transaction, and a no-op once done.
fn migrate_legacy_tables(conn: &Connection) -> rusqlite::Result<()> {
    let legacy: Vec<String> = {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
        names
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|name| name != schema::CATALOG && !name.starts_with("sqlite_"))
            .filter(|name| names::tenant_of(name).is_none())
            .filter(|name| TenantId::parse(name.as_str()).is_ok())
            .collect()
    };
    if legacy.is_empty() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    for old in legacy {
        let new = table_name(&old);
        tx.execute(
            &format!("ALTER TABLE {} RENAME TO {}", quote(&old), quote(&new)),
            [],
        )?;
        // Rows of a tenant that differed only in case describe columns of this same table.
        tx.execute(
            "UPDATE OR IGNORE ts_schema SET table_name = ?1 WHERE table_name = ?2 COLLATE NOCASE",
            params![new, old],
        )?;
        tx.execute(
            "DELETE FROM ts_schema WHERE table_name = ?1 COLLATE NOCASE",
            params![old],
        )?;
    }
    tx.commit()
}
