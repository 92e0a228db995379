//! The objects [`super::LocalBucket::put`] writes: rows of one SQLite database in the bucket
//! directory, not a file each. A year of one-minute objects is ~525,000 of them: as files that
//! is an inode and a directory entry each (file creation was up to a third of a run), as rows
//! it is one file, written in transactions and listed by key range from its primary key.
//!
//! The database is opened on first use, and a read never creates it: listing a bucket that has
//! none (a dry run, an older run's bucket of files) leaves the directory as it was.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};

/// The database under the bucket root; SQLite keeps `-wal` and `-shm` files beside it.
pub(super) const FILE_NAME: &str = ".objects.sqlite3";

/// Deferred objects committed together: a commit per 512 objects costs little per object,
/// and another process waits at most that many objects to see them.
pub(super) const DEFERRED_OBJECTS: usize = 512;
/// …or fewer when they are large (Firehose objects reach 128 MiB), so a transaction stays small.
const DEFERRED_BYTES: usize = 64 << 20;
/// …or sooner when they come slowly (events streamed in): the next deferred object after this
/// long commits. (Nothing commits an idle transaction: the producer's `sync` or drop does.)
const DEFERRED_AGE: Duration = Duration::from_secs(1);

/// Another process's transaction (a run's deferred objects) is waited for this long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// `modified_ms` before `bytes`: a row's first few hundred bytes are on its b-tree page, the rest
/// on overflow pages, so a listing (key, time, and the size from the record header) never reads
/// an object's bytes. A rowid table: filling one was faster than `WITHOUT ROWID` with 4 KB rows.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    modified_ms INTEGER NOT NULL,
    bytes BLOB NOT NULL
)";

/// One stored object, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub key: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// The database of one bucket, shared by every handle of that bucket in this process.
#[derive(Debug)]
pub(super) struct Pack {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    conn: Option<Connection>,
    /// Deferred objects in the open transaction (SQLite knows whether one is), and their bytes.
    pending: usize,
    pending_bytes: usize,
    /// When the open transaction began.
    began: Option<Instant>,
}

impl Pack {
    pub fn new(root: &Path) -> Pack {
        Pack {
            path: root.join(FILE_NAME),
            state: Mutex::new(State::default()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves SQLite consistent: the connection is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores an object. `durable`: committed (with every deferred object before it) when
    /// this returns; otherwise it joins the open transaction, committed later.
    pub fn put(&self, key: &str, bytes: &[u8], modified_ms: i64, durable: bool) -> rusqlite::Result<()> {
        let mut state = self.lock();
        let done = state.put(&self.path, key, bytes, modified_ms, durable);
        state.settle(done)
    }

    /// Commits the deferred objects.
    pub fn sync(&self) -> rusqlite::Result<()> {
        let mut state = self.lock();
        let done = state.commit();
        state.settle(done)
    }

    /// The object's bytes and when it was written, when there is one.
    pub fn get(&self, key: &str) -> rusqlite::Result<Option<(Vec<u8>, i64)>> {
        let mut state = self.lock();
        let Some(conn) = state.reader(&self.path)? else {
            return Ok(None);
        };
        conn.prepare_cached("SELECT bytes, modified_ms FROM objects WHERE key = ?1")?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
    }

    /// The objects whose key starts with `prefix`, sorted by key (bytewise, as `str` sorts).
    pub fn list(&self, prefix: &str) -> rusqlite::Result<Vec<Row>> {
        let mut state = self.lock();
        let Some(conn) = state.reader(&self.path)? else {
            return Ok(Vec::new());
        };
        // A range scan of the primary key from `prefix`, up to the first key past it.
        let mut statement = conn.prepare_cached(
            "SELECT key, length(bytes), modified_ms FROM objects WHERE key >= ?1 ORDER BY key",
        )?;
        let mut rows = statement.query([prefix])?;
        let mut listed = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            let size: i64 = row.get(1)?;
            listed.push(Row {
                key,
                size: size.unsigned_abs(),
                modified_ms: row.get(2)?,
            });
        }
        Ok(listed)
    }

    /// Deletes the object if there is one, durably (deferred objects are committed first).
    pub fn delete(&self, key: &str) -> rusqlite::Result<()> {
        let mut state = self.lock();
        let done = state.delete(&self.path, key);
        state.settle(done)
    }
}

impl Drop for Pack {
    /// The last handle of the bucket is gone: its deferred objects are committed. An error
    /// cannot be reported here; a caller that must know calls [`Pack::sync`] first.
    fn drop(&mut self) {
        let _ = self.lock().commit();
    }
}

impl State {
    /// The connection, opened (and the database created) if need be.
    fn writer(&mut self, path: &Path) -> rusqlite::Result<&Connection> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot => Ok(slot.insert(open(path)?)),
        }
    }

    /// The connection, or `None` when there is no database (nothing is created).
    fn reader(&mut self, path: &Path) -> rusqlite::Result<Option<&Connection>> {
        if self.conn.is_none() && !path.exists() {
            return Ok(None);
        }
        self.writer(path).map(Some)
    }

    fn put(
        &mut self,
        path: &Path,
        key: &str,
        bytes: &[u8],
        modified_ms: i64,
        durable: bool,
    ) -> rusqlite::Result<()> {
        let conn = self.writer(path)?;
        if !durable && conn.is_autocommit() {
            // IMMEDIATE: the write lock is taken (or waited for) now, not half-way through.
            conn.execute_batch("BEGIN IMMEDIATE")?;
            self.began = Some(Instant::now());
        }
        let conn = self.writer(path)?;
        conn.prepare_cached("INSERT OR REPLACE INTO objects (key, modified_ms, bytes) VALUES (?1, ?2, ?3)")?
            .execute(params![key, modified_ms, bytes])?;
        if durable {
            return self.commit();
        }
        self.pending += 1;
        self.pending_bytes += bytes.len();
        if self.pending >= DEFERRED_OBJECTS
            || self.pending_bytes >= DEFERRED_BYTES
            || self.began.is_some_and(|t| t.elapsed() >= DEFERRED_AGE)
        {
            self.commit()?;
        }
        Ok(())
    }

    fn delete(&mut self, path: &Path, key: &str) -> rusqlite::Result<()> {
        let Some(conn) = self.reader(path)? else {
            return Ok(());
        };
        conn.prepare_cached("DELETE FROM objects WHERE key = ?1")?
            .execute([key])?;
        self.commit()
    }

    /// Commits the open transaction, if one is.
    fn commit(&mut self) -> rusqlite::Result<()> {
        if let Some(conn) = &self.conn
            && !conn.is_autocommit()
        {
            conn.execute_batch("COMMIT")?;
        }
        self.forget();
        Ok(())
    }

    fn forget(&mut self) {
        self.pending = 0;
        self.pending_bytes = 0;
        self.began = None;
    }

    /// After a failure SQLite may have rolled the open transaction back (a full disk): the
    /// deferred objects are then gone, and the next deferred put starts a new transaction.
    fn settle<T>(&mut self, done: rusqlite::Result<T>) -> rusqlite::Result<T> {
        if done.is_err() && self.conn.as_ref().is_none_or(Connection::is_autocommit) {
            self.forget();
        }
        done
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers in other processes (`errors`, `bucket ls`) never block the run's writes;
    // NORMAL: a commit is not synced to disk, only ordered (a power cut may lose the last few).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}
