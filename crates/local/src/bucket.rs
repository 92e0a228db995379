//! The local S3 bucket: a directory, objects stored by key.
//!
//! - Whole objects ([`LocalBucket::put`], [`LocalBucket::put_deferred`]) are rows of one SQLite
//!   database in the directory ([`pack`]): millions of them cost one file, not an inode each.
//! - Dead letters streamed to the bucket ([`LocalBucket::dead_letter_file`]) are plain files
//!   under the root, a key's path ([`files`]), as is every object of a bucket an older run left.
//!
//! Reads look in both: a key in both is the newer of the two.

mod files;
mod letters;
mod pack;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use letters::LocalDeadLetters;
use pack::Pack;

/// A local bucket. Clones share one database connection, so deferred objects are seen by every
/// clone at once; the last clone dropped commits them.
#[derive(Debug, Clone)]
pub struct LocalBucket {
    root: PathBuf,
    pack: Arc<Pack>,
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("object key {0:?} is not a safe relative path")]
    UnsafeKey(String),
    #[error("no object {0:?}")]
    NotFound(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    Database { path: PathBuf, message: String },
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// When it was last written, in milliseconds since the epoch (a file's time may be unknown).
    pub modified_ms: Option<i64>,
}

impl LocalBucket {
    /// Opens (creating if needed) a bucket rooted at `root`. Its database is opened (or
    /// created, by a first write) when first used.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BucketError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|source| BucketError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(LocalBucket {
            pack: Arc::new(Pack::new(&root)),
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key` when it is kept as a file.
    pub fn path(&self, key: &str) -> Result<PathBuf, BucketError> {
        if !is_safe(key)
            || key
                .split('/')
                .next()
                .is_some_and(|top| files::is_database_file(top.as_ref()))
        {
            return Err(BucketError::UnsafeKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    /// Stores an object, replacing any object with the same key; other processes see it when
    /// this returns, with every object [`LocalBucket::put_deferred`] stored before it.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BucketError> {
        let path = self.path(key)?;
        self.pack
            .put(key, bytes, now_ms(), true)
            .map_err(|e| self.database(e))?;
        // A file of the same key (an older layout, streamed dead letters) would be older than
        // the row, so never read again: it goes, after the row is committed. Rare, but cheap to
        // try: a key's directories seldom exist.
        let _ = fs::remove_file(path);
        Ok(())
    }

    /// [`LocalBucket::put`] for many objects in a row (a run's Firehose objects): the object
    /// joins a transaction committed every 512 objects (sooner for large or slow ones), by
    /// [`LocalBucket::sync`], by the next `put`, by a finished dead-letter file, or when the
    /// last handle is dropped.
    /// This process (every clone) sees it at once; other processes when it is committed, and a
    /// process killed before then loses it.
    pub fn put_deferred(&self, key: &str, bytes: &[u8]) -> Result<(), BucketError> {
        self.path(key)?;
        self.pack
            .put(key, bytes, now_ms(), false)
            .map_err(|e| self.database(e))
    }

    /// Commits the deferred objects: other processes see them when this returns.
    pub fn sync(&self) -> Result<(), BucketError> {
        self.pack.sync().map_err(|e| self.database(e))
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>, BucketError> {
        let path = self.path(key)?;
        if let Some((bytes, row_ms)) = self.pack.get(key).map_err(|e| self.database(e))? {
            // A file written after the row (dead letters replacing the object) is the object.
            let file_ms = files::file_metadata(&path).and_then(|meta| files::modified_ms(&meta));
            if file_ms.is_none_or(|f| f <= row_ms) {
                return Ok(bytes);
            }
            // Gone since (deleted, replaced by a put): the row is the object.
            return Ok(fs::read(&path).unwrap_or(bytes));
        }
        fs::read(&path).map_err(|source| {
            if is_missing(&source) {
                BucketError::NotFound(key.to_owned())
            } else {
                BucketError::Io { path, source }
            }
        })
    }

    /// Keys under `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, BucketError> {
        Ok(self.merged(prefix, false)?.into_iter().map(|o| o.key).collect())
    }

    /// Objects under `prefix`, sorted by key, with their size and time.
    pub fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BucketError> {
        self.merged(prefix, true)
    }

    /// Removes the object wherever it is kept; no object is no error.
    pub fn delete(&self, key: &str) -> Result<(), BucketError> {
        let path = self.path(key)?;
        self.pack.delete(key).map_err(|e| self.database(e))?;
        match fs::remove_file(&path) {
            Err(e) if !is_missing(&e) => Err(BucketError::Io { path, source: e }),
            _ => Ok(()),
        }
    }

    /// A dead-letter sink writing to `key` as letters come (see [`LocalDeadLetters`]).
    pub fn dead_letter_file(&self, key: &str) -> Result<LocalDeadLetters, BucketError> {
        let path = self.path(key)?;
        Ok(LocalDeadLetters::new(self.clone(), key, path))
    }

    /// The packed objects and the files under `prefix`, merged; a key in both is the newer.
    fn merged(&self, prefix: &str, detailed: bool) -> Result<Vec<ObjectInfo>, BucketError> {
        // Only the prefix's directory is walked: the older layout has a directory per hour.
        let dir = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        if !dir.is_empty() && !is_safe(dir) {
            // No key is under a directory that is not a safe path.
            return Ok(Vec::new());
        }
        let files = files::list(&self.root, dir, prefix, detailed)?;
        let rows = self.pack.list(prefix).map_err(|e| self.database(e))?;
        let mut rows = rows.into_iter().peekable();
        let mut merged = Vec::with_capacity(files.len() + rows.len());
        for file in files {
            while let Some(row) = rows.next_if(|row| row.key < file.key) {
                merged.push(packed_info(row));
            }
            match rows.next_if(|row| row.key == file.key) {
                Some(row) if file.modified_ms.is_none_or(|f| f <= row.modified_ms) => {
                    merged.push(packed_info(row));
                }
                _ => merged.push(file),
            }
        }
        merged.extend(rows.map(packed_info));
        Ok(merged)
    }

    fn database(&self, error: rusqlite::Error) -> BucketError {
        BucketError::Database {
            path: self.pack.path().to_owned(),
            message: error.to_string(),
        }
    }
}

fn packed_info(row: pack::Row) -> ObjectInfo {
    ObjectInfo {
        key: row.key,
        size: row.size,
        modified_ms: Some(row.modified_ms),
    }
}

/// A relative path that stays under the root, on every platform.
fn is_safe(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && !key.contains('\\')
        && !key.contains('\0')
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
