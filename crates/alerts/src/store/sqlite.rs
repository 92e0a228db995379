//! The alert store in SQLite: the local adapter (`.metrics-lake/alerts.db`, beside the
//! embedded metrics store) and the one tests run against.
//!
//! One row per alert with its definition and state as JSON, plus the columns conditions need
//! (`version` for compare-and-set, `next_due_ms` and `claimed_until_ms` for finding due
//! alerts). Several processes may share the file (`metrics-lake serve` evaluating on its timer
//! while `metrics-lake alerts evaluate` runs): every write is one statement or one immediate
//! transaction, so SQLite's lock serialises them and `UPDATE … WHERE version = ?` decides races.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use metrics_http::Secret;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::{
    Alert, AlertEvent, AlertStore, MAX_EVENTS, StoreError, StoreFuture, StoredAlert, definition_from_json,
};
use crate::model::AlertDefinition;
use crate::state::AlertState;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    definition TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    next_due_ms INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (next_due_ms);
CREATE TABLE IF NOT EXISTS alert_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_by_alert ON alert_events (tenant, id, seq);
";

const COLUMNS: &str = "tenant, id, definition, secret, created_ms, updated_ms, state";

/// Alerts in one SQLite file.
#[derive(Debug)]
pub struct SqliteAlertStore {
    conn: Mutex<Connection>,
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Failed(e.to_string()),
    }
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Failed(format!("stored JSON: {e}"))
}

/// A row as read, before its JSON is parsed.
type Row = (String, String, String, String, i64, i64, String);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn stored(
    (tenant, id, definition, secret, created_ms, updated_ms, state): Row,
) -> Result<StoredAlert, StoreError> {
    Ok(StoredAlert {
        alert: Alert {
            id,
            tenant,
            definition: definition_from_json(&definition)?,
            created_ms,
            updated_ms,
        },
        secret: Secret::new(secret),
        state: serde_json::from_str(&state).map_err(json_error)?,
    })
}

impl SqliteAlertStore {
    /// Opens (or creates) the file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Failed(format!("{}: {e}", dir.display())))?;
        }
        Self::init(Connection::open(path).map_err(sql_error)?)
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(sql_error)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        // A second process waits for the lock rather than failing; WAL lets readers read.
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_error)?;
        conn.execute_batch(SCHEMA).map_err(sql_error)?;
        Ok(SqliteAlertStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it rolls back).
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<StoredAlert>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(sql).map_err(sql_error)?;
        let rows = statement
            .query_map(params, read_row)
            .map_err(sql_error)?
            .collect::<Result<Vec<Row>, _>>()
            .map_err(sql_error)?;
        rows.into_iter().map(stored).collect()
    }

    fn create_now(&self, alert: &Alert, secret: &Secret, max: usize) -> Result<(), StoreError> {
        let definition = serde_json::to_string(&alert.definition).map_err(json_error)?;
        let state = AlertState::default();
        let state_json = serde_json::to_string(&state).map_err(json_error)?;
        let mut conn = self.conn();
        // Immediate: the count and the insert see no other writer in between.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let count: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM alerts WHERE tenant = ?1",
                [&alert.tenant],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max {
            return Err(StoreError::TooMany { max });
        }
        tx.execute(
            &format!(
                "INSERT INTO alerts ({COLUMNS}, version, next_due_ms, claimed_until_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)"
            ),
            params![
                alert.tenant,
                alert.id,
                definition,
                secret.expose(),
                alert.created_ms,
                alert.updated_ms,
                state_json,
                state.version as i64,
                state.next_due_ms
            ],
        )
        .map_err(sql_error)?;
        tx.commit().map_err(sql_error)
    }

    fn changed(rows: usize) -> Result<(), StoreError> {
        if rows == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    fn write_state_now(
        &self,
        tenant: &str,
        id: &str,
        expected: u64,
        state: &AlertState,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(json_error)?;
        let conn = self.conn();
        let rows = conn
            .execute(
                "UPDATE alerts SET state = ?1, version = ?2, next_due_ms = ?3, claimed_until_ms = ?4 \
                 WHERE tenant = ?5 AND id = ?6 AND version = ?7",
                params![
                    json,
                    state.version as i64,
                    state.next_due_ms,
                    state.pending.as_ref().map(|p| p.claimed_until_ms),
                    tenant,
                    id,
                    expected as i64
                ],
            )
            .map_err(sql_error)?;
        if rows == 1 {
            return Ok(());
        }
        // Nothing written: the alert is gone, or someone else wrote first.
        let exists: Option<i64> = conn
            .query_row(
                "SELECT version FROM alerts WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error)?;
        Err(if exists.is_some() {
            StoreError::Conflict
        } else {
            StoreError::NotFound
        })
    }

    fn add_event_now(&self, tenant: &str, id: &str, event: &AlertEvent) -> Result<(), StoreError> {
        let detail = serde_json::to_string(&event.detail).map_err(json_error)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO alert_events (tenant, id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, id, event.at_ms, event.kind, detail],
        )
        .map_err(sql_error)?;
        conn.execute(
            "DELETE FROM alert_events WHERE tenant = ?1 AND id = ?2 AND seq <= \
             (SELECT seq FROM alert_events WHERE tenant = ?1 AND id = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
            params![tenant, id, MAX_EVENTS as i64],
        )
        .map_err(sql_error)?;
        Ok(())
    }

    fn events_now(&self, tenant: &str, id: &str, limit: usize) -> Result<Vec<AlertEvent>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT at_ms, kind, detail FROM alert_events WHERE tenant = ?1 AND id = ?2 \
                 ORDER BY seq DESC LIMIT ?3",
            )
            .map_err(sql_error)?;
        let rows = statement
            .query_map(params![tenant, id, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        rows.into_iter()
            .map(|(at_ms, kind, detail)| {
                Ok(AlertEvent {
                    at_ms,
                    kind,
                    detail: serde_json::from_str(&detail).map_err(json_error)?,
                })
            })
            .collect()
    }
}

impl AlertStore for SqliteAlertStore {
    fn create<'a>(&'a self, alert: &'a Alert, secret: &'a Secret, max: usize) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.create_now(alert, secret, max) })
    }

    fn get<'a>(&'a self, tenant: &'a str, id: &'a str) -> StoreFuture<'a, Option<StoredAlert>> {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} FROM alerts WHERE tenant = ?1 AND id = ?2");
            Ok(self.query(&sql, params![tenant, id])?.into_iter().next())
        })
    }

    fn list<'a>(&'a self, tenant: &'a str) -> StoreFuture<'a, Vec<StoredAlert>> {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} FROM alerts WHERE tenant = ?1 ORDER BY id");
            self.query(&sql, [tenant])
        })
    }

    fn list_all(&self) -> StoreFuture<'_, Vec<StoredAlert>> {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} FROM alerts ORDER BY tenant, id");
            self.query(&sql, [])
        })
    }

    fn update<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        definition: &'a AlertDefinition,
        updated_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(definition).map_err(json_error)?;
            let rows = self
                .conn()
                .execute(
                    "UPDATE alerts SET definition = ?1, updated_ms = ?2 WHERE tenant = ?3 AND id = ?4",
                    params![json, updated_ms, tenant, id],
                )
                .map_err(sql_error)?;
            Self::changed(rows)
        })
    }

    fn delete<'a>(&'a self, tenant: &'a str, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn();
            let rows = conn
                .execute(
                    "DELETE FROM alerts WHERE tenant = ?1 AND id = ?2",
                    params![tenant, id],
                )
                .map_err(sql_error)?;
            conn.execute(
                "DELETE FROM alert_events WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(sql_error)?;
            Self::changed(rows)
        })
    }

    fn due(&self, at_ms: i64, wall_ms: i64, limit: usize) -> StoreFuture<'_, Vec<StoredAlert>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM alerts WHERE next_due_ms <= ?1 OR claimed_until_ms <= ?2 \
                 ORDER BY next_due_ms LIMIT ?3"
            );
            self.query(&sql, params![at_ms, wall_ms, limit as i64])
        })
    }

    fn write_state<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        expected_version: u64,
        state: &'a AlertState,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.write_state_now(tenant, id, expected_version, state) })
    }

    fn add_event<'a>(&'a self, tenant: &'a str, id: &'a str, event: &'a AlertEvent) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.add_event_now(tenant, id, event) })
    }

    fn events<'a>(&'a self, tenant: &'a str, id: &'a str, limit: usize) -> StoreFuture<'a, Vec<AlertEvent>> {
        Box::pin(async move { self.events_now(tenant, id, limit) })
    }
}
