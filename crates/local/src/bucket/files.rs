//! Objects kept as plain files under the bucket root: dead letters streamed to the bucket
//! (they can be large, so they never pass through memory whole), and every object of a bucket
//! an older run left, one file per object.

use std::fs;
use std::io;
use std::path::Path;

use super::{BucketError, ObjectInfo, pack};

/// The files under `dir` (a safe relative directory, `""` for the root) whose key starts with
/// `prefix`, sorted by key; with their size and time when `detailed`.
pub(super) fn list(
    root: &Path,
    dir: &str,
    prefix: &str,
    detailed: bool,
) -> Result<Vec<ObjectInfo>, BucketError> {
    let mut keys = Vec::new();
    walk(root, &root.join(dir), &mut keys)?;
    keys.retain(|k| k.starts_with(prefix));
    keys.sort();
    Ok(keys
        .into_iter()
        .map(|key| {
            let meta = detailed.then(|| file_metadata(&root.join(&key))).flatten();
            ObjectInfo {
                size: meta.as_ref().map_or(0, fs::Metadata::len),
                modified_ms: meta.as_ref().and_then(modified_ms),
                key,
            }
        })
        .collect())
}

fn walk(root: &Path, dir: &Path, keys: &mut Vec<String>) -> Result<(), BucketError> {
    let io_error = |source| BucketError::Io {
        path: dir.to_owned(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // No directory, no files: listing never creates one.
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(source) => return Err(io_error(source)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        // The directory entry's own type: no `stat` per file on the file systems that keep it.
        let kind = entry.file_type().map_err(io_error)?;
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            walk(root, &path, keys)?;
        } else if path.extension().is_none_or(|e| e != "partial")
            && !(dir == root && is_database_file(&entry.file_name()))
            && let Ok(rel) = path.strip_prefix(root)
        {
            keys.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// The packed objects' database and the files SQLite keeps beside it (`-wal`, `-shm`, …).
pub(super) fn is_database_file(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with(pack::FILE_NAME))
}

/// The file's metadata, when it is a file.
pub(super) fn file_metadata(path: &Path) -> Option<fs::Metadata> {
    fs::metadata(path).ok().filter(fs::Metadata::is_file)
}

/// When the file was last written, in milliseconds since the epoch.
pub(super) fn modified_ms(meta: &fs::Metadata) -> Option<i64> {
    let time = meta.modified().ok()?;
    let ms = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}
