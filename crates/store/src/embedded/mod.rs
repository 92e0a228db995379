//! The embedded store: SQLite in one file, with Timestream's semantics, for the local
//! pipeline (`metrics-lake run`) and tests.
//!
//! Layout (what a query engine reads):
//! - one table per tenant, named [`names::table_name`] of the tenant id (`tenant/` and a
//!   case-exact encoding, always quoted), with columns
//!   `measure_name TEXT`, `time INTEGER` (epoch milliseconds), `ts_series TEXT` (the
//!   dimensions as a canonical JSON array), `ts_digest TEXT` (a digest of the measure values),
//!   then one column per dimension (`VARCHAR`, NULL when a record lacks it) and one per measure
//!   (`BIGINT`, `DOUBLE`, `BOOLEAN` as 0/1, or `VARCHAR`), added as they first appear. A
//!   table is `WITHOUT ROWID`: its primary key is its only b-tree, so the key's columns are
//!   not stored twice (the sample's store is a third smaller); tables made before keep their
//!   rowid, and both read and write the same;
//! - `ts_schema(table_name, column_name, kind, type)`: which columns are dimensions and which
//!   are measures, with their types.
//!
//! A store written before tenant tables were named this way (each table named exactly as its
//! tenant) is migrated when it is opened: each such table is renamed, with its catalog rows.
//! Two tenants that differed only in case shared one table then; it becomes the table of the
//! tenant that created it (write the other again from its source objects to separate them).
//!
//! Batches: a write is one transaction by default. A bulk loader (`metrics-lake run`) can ask
//! for [`EmbeddedStore::batch_writes`]: writes then share one transaction, committed every so
//! many writes, by [`EmbeddedStore::commit`] and when the store is dropped. A transaction
//! costs a WAL commit and a dozen lock calls, which is most of the time of a write of a few
//! records. A write that fails for a transient cause before it changed anything leaves the
//! batch as it was; one that fails after part of it landed (a full disk in the middle of it)
//! gives up the whole batch, because only the transaction can take that part back, and
//! `commit` then names how many earlier writes were lost. SQLite may also roll the whole
//! transaction back by itself on such errors
//! (<https://www.sqlite.org/lang_transaction.html>, "Response To Errors Within A
//! Transaction"), with the same report.
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics_schema::TenantId;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{CachedStatement, Connection, ErrorCode, OptionalExtension, params};

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

/// The page cache of a batched store (`cache_size` in KiB when negative): 32 MiB.
const BULK_CACHE_KIB: i64 = -32 * 1024;
/// WAL pages between checkpoints of a batched store (SQLite's default is 1,000): 64 MiB.
const BULK_CHECKPOINT_PAGES: i64 = 16 * 1024;

/// The SQLite store. Calls are short and synchronous under a mutex: the local pipeline and
/// tests write from one process, and SQLite serialises writers anyway.
#[derive(Debug)]
pub struct EmbeddedStore {
    conn: Mutex<Connection>,
    settings: EmbeddedSettings,
    /// Locked after `conn`, never before.
    batch: Mutex<Batch>,
}

/// The open batch, when writes are batched.
#[derive(Debug, Default)]
struct Batch {
    /// Writes per transaction (at least 1).
    max_writes: usize,
    /// Writes in the open transaction (none open when 0).
    writes: usize,
    /// Schemas of the tables written in the open transaction: nothing else can change them
    /// while it holds the write lock, so they are loaded once per transaction.
    schemas: HashMap<String, TableSchema>,
    /// SQLite rolled back an open batch by itself (a full disk, an I/O error): writes it had
    /// reported as written were lost, and the store refuses more until [`EmbeddedStore::commit`]
    /// reports it.
    lost_writes: usize,
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
        // A record that adds columns is a savepoint, whose statement journal stays in memory
        // instead of a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::create_catalog(&conn).map_err(sql_error)?;
        migrate_legacy_tables(&conn).map_err(sql_error)?;
        Ok(EmbeddedStore {
            conn: Mutex::new(conn),
            settings,
            batch: Mutex::new(Batch {
                max_writes: 1,
                ..Batch::default()
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    pub fn settings(&self) -> &EmbeddedSettings {
        &self.settings
    }

    /// Batches writes: up to `max_writes` (1: no batching, the default) share one transaction (see the module's docs). Other
    /// connections see a write once its batch is committed.
    pub fn batch_writes(&self, max_writes: usize) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // A bulk load touches the same index pages batch after batch: a larger page cache and
        // rarer checkpoints write each of them out fewer times.
        conn.pragma_update(None, "cache_size", BULK_CACHE_KIB)
            .and_then(|()| conn.pragma_update(None, "wal_autocheckpoint", BULK_CHECKPOINT_PAGES))
            .map_err(sql_error)?;
        self.batch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .max_writes = max_writes.max(1);
        Ok(())
    }

    /// Commits the open batch, if any. Fails when SQLite rolled back a batch by itself, naming
    /// how many writes were lost (each of them had been reported as written).
    pub fn commit(&self) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
        let committed = batch.end(&conn);
        if batch.lost_writes > 0 {
            return Err(StoreError::Embedded(format!(
                "SQLite rolled back a batch of {} write(s) after reporting them written (a full \
                 disk or an I/O error); write their objects again",
                batch.lost_writes
            )));
        }
        committed.map_err(sql_error)
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
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
        if batch.lost_writes > 0 {
            // Reported by `commit`; writing on would hide that earlier writes are gone.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("an earlier batch was rolled back; see EmbeddedStore::commit".into()),
            ));
        }
        // IMMEDIATE: the write lock is taken at the start, so a second writer waits for it
        // (busy timeout) instead of failing to upgrade a read transaction.
        if batch.writes == 0 {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            batch.schemas.clear();
        }
        batch.writes += 1;
        let known = batch.schemas.remove(&table);
        // No savepoint around the write: it would cost a statement journal per write, and a
        // write only fails as a whole when SQLite refuses for a transient cause, which it
        // reports before changing anything, or after (then the batch is given up below).
        let changes_before = conn.total_changes();
        let written = self.write_records(&conn, &table, known, records);
        match written {
            Ok((report, schema)) => {
                batch.schemas.insert(table, schema);
                if batch.writes >= batch.max_writes
                    && let Err(e) = batch.end(&conn)
                {
                    // This write is reported failed; only the ones before it were lost.
                    batch.lost_writes -= 1;
                    return Err(e);
                }
                Ok(report)
            }
            Err(e) => {
                if !conn.is_autocommit() && conn.total_changes() != changes_before {
                    // Part of this write landed before it failed, and nothing but the whole
                    // transaction can take it back.
                    let _ = conn.execute_batch("ROLLBACK");
                }
                if conn.is_autocommit() {
                    // The whole transaction is gone, not just this write: `commit` reports the
                    // earlier writes it held.
                    batch.lost_writes += batch.writes - 1;
                    batch.writes = 0;
                } else if batch.writes >= batch.max_writes {
                    batch.end(&conn)?; // this write changed nothing
                }
                Err(e)
            }
        }
    }

    /// Writes `records` inside the caller's transaction; returns the table's
    /// schema as it is after them. `known` is the schema when this transaction already has it.
    fn write_records(
        &self,
        tx: &Connection,
        table: &str,
        known: Option<TableSchema>,
        records: &[StoreRecord],
    ) -> Result<(WriteReport, TableSchema), rusqlite::Error> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let oldest = now_ms.saturating_sub(self.settings.retention_days.saturating_mul(86_400_000));
        let newest = now_ms.saturating_add(self.settings.max_future.as_millis() as i64);
        let mut schema = match known {
            Some(schema) => schema,
            None => {
                schema::create_table(tx, table)?;
                TableSchema::load(tx, table)?
            }
        };
        let mut outcomes = Vec::with_capacity(records.len());
        let mut inserts = Inserts::new(tx, table);
        for record in records {
            if record.time_ms < oldest || record.time_ms > newest {
                outcomes.push(rejected(
                    RejectReason::TimeOutOfRange,
                    "the time is outside the table's retention window",
                ));
                continue;
            }
            if schema.places(record, &mut inserts.places) {
                // One INSERT: SQLite undoes a failed statement by itself, so a refusal leaves
                // nothing behind and needs no savepoint.
                match inserts.insert(&schema, record) {
                    Ok(outcome) => outcomes.push(outcome),
                    // A trigger's RAISE(ROLLBACK) ends the whole transaction: nothing after it
                    // may run outside one.
                    Err(e) if is_transient(&e) || tx.is_autocommit() => return Err(e),
                    Err(e) => outcomes.push(rejected(RejectReason::StoreRejected, &e.to_string())),
                }
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
            // New columns and the row in one savepoint: a refusal undoes this record alone.
            tx.execute_batch("SAVEPOINT new_columns")?;
            inserts.schema_changed();
            let added = missing
                .into_iter()
                .try_for_each(|column| schema.add(tx, table, column));
            let result = match added {
                Ok(()) if schema.places(record, &mut inserts.places) => inserts
                    .insert(&schema, record)
                    .map_err(|e| (RejectReason::StoreRejected, e)),
                Ok(()) => Err((
                    RejectReason::SchemaConflict,
                    rusqlite::Error::InvalidColumnName("a column the record needs was not added".to_owned()),
                )),
                Err(e) => Err((RejectReason::SchemaConflict, e)),
            };
            match result {
                Ok(outcome) => {
                    tx.execute_batch("RELEASE new_columns")?;
                    outcomes.push(outcome);
                }
                // Everything so far is rolled back with the transaction: retry the batch. (SQLite
                // may have ended the transaction, savepoint and all, so this may fail.)
                Err((_, e)) if is_transient(&e) => {
                    let _ = tx.execute_batch(UNDO_NEW_COLUMNS);
                    return Err(e);
                }
                Err((reason, e)) => {
                    tx.execute_batch(UNDO_NEW_COLUMNS)?;
                    schema = TableSchema::load(tx, table)?;
                    inserts.schema_changed();
                    outcomes.push(rejected(reason, &e.to_string()));
                }
            }
        }
        Ok((WriteReport { outcomes }, schema))
    }
}

impl Batch {
    /// Commits the open transaction, if any.
    fn end(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let writes = std::mem::take(&mut self.writes);
        self.schemas.clear();
        if writes == 0 {
            return Ok(());
        }
        conn.execute_batch("COMMIT").inspect_err(|_| {
            // The transaction is still open: give it up, and remember what it held.
            let _ = conn.execute_batch("ROLLBACK");
            self.lost_writes += writes;
        })
    }
}

impl Drop for EmbeddedStore {
    /// Writes of an open batch were reported as written: they are committed, not dropped.
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(PoisonError::into_inner);
        let batch = self.batch.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = batch.end(conn) {
            tracing::error!(error = %e, "the embedded store could not commit its last batch");
        }
    }
}

fn rejected(reason: RejectReason, detail: &str) -> RecordOutcome {
    RecordOutcome::Rejected {
        reason,
        detail: detail.to_owned(),
    }
}

/// A string parameter, bound without a copy.
fn text(s: &str) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
}

/// Rolls back and ends the savepoint of a record that adds columns.
const UNDO_NEW_COLUMNS: &str = "ROLLBACK TO new_columns; RELEASE new_columns";

/// The INSERTs of one write: one statement of every column of the table (see
/// [`TableSchema::insert_sql`]), prepared (found in the statement cache) once per write and
/// again only when a record adds columns.
struct Inserts<'c> {
    conn: &'c Connection,
    table: &'c str,
    /// The statement of the schema as it is, once prepared.
    statement: Option<CachedStatement<'c>>,
    /// The places of the record being inserted's columns ([`TableSchema::places`]).
    places: Vec<usize>,
}

/// The parameters before a record's own columns: measure_name, time, ts_series, ts_digest.
const IDENTITY_PARAMETERS: usize = 4;

impl<'c> Inserts<'c> {
    fn new(conn: &'c Connection, table: &'c str) -> Self {
        Inserts {
            conn,
            table,
            statement: None,
            places: Vec::new(),
        }
    }

    /// Columns were added or the schema loaded again: the statement names other columns.
    fn schema_changed(&mut self) {
        self.statement = None;
    }

    /// Inserts one record, whose columns' places `self.places` holds, unless its identity is
    /// taken; then compares values.
    fn insert(&mut self, schema: &TableSchema, record: &StoreRecord) -> rusqlite::Result<RecordOutcome> {
        let series = record.series_key();
        let digest = record.value_digest();
        let statement = match &mut self.statement {
            Some(statement) => statement,
            None => self
                .statement
                .insert(self.conn.prepare_cached(schema.insert_sql(self.table))?),
        };
        // The last record's values are still bound: every column not this record's is NULL.
        statement.clear_bindings();
        statement.raw_bind_parameter(1, text(&record.measure_name))?;
        statement.raw_bind_parameter(2, record.time_ms)?;
        statement.raw_bind_parameter(3, text(&series))?;
        statement.raw_bind_parameter(4, text(&digest))?;
        let values =
            record
                .dimensions
                .iter()
                .map(|(_, value)| text(value))
                .chain(record.measures.iter().map(|(_, value)| match value {
                    StoreValue::BigInt(i) => ToSqlOutput::Owned(Value::Integer(*i)),
                    StoreValue::Double(f) => ToSqlOutput::Owned(Value::Real(*f)),
                    StoreValue::Boolean(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
                    StoreValue::Varchar(s) => text(s),
                }));
        // Bound last to first: SQLite keeps the first value of a column an INSERT names twice,
        // and so does this (the schema's events never repeat a name; other records might).
        for (place, value) in self.places.iter().rev().zip(values.rev()) {
            statement.raw_bind_parameter(IDENTITY_PARAMETERS + place + 1, value)?;
        }
        if statement.raw_execute()? == 1 {
            return Ok(RecordOutcome::Written);
        }
        let existing: Option<String> = self
            .conn
            .prepare_cached(&format!(
                "SELECT ts_digest FROM {} WHERE measure_name = ?1 AND time = ?2 AND ts_series = ?3",
                quote(self.table)
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
