//! A local directory used as the S3 bucket: an object key is a relative path under the root.
//! Writes go to a temporary file first and are renamed into place, so a reader never sees a
//! half-written object.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, encode};

#[derive(Debug, Clone)]
pub struct LocalBucket {
    root: PathBuf,
    /// Directories known to exist: most objects land in a directory made for an earlier one.
    made: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("object key {0:?} is not a safe relative path")]
    UnsafeKey(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl LocalBucket {
    /// Opens (creating if needed) a bucket rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BucketError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|source| BucketError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(LocalBucket {
            root,
            made: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path(&self, key: &str) -> Result<PathBuf, BucketError> {
        let safe = !key.is_empty()
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && !key.contains('\\')
            && !key.contains('\0');
        if !safe {
            return Err(BucketError::UnsafeKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    /// Stores an object, replacing any object with the same key.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BucketError> {
        let path = self.path(key)?;
        let io = |source| BucketError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
            if !made.contains(dir) {
                fs::create_dir_all(dir).map_err(io)?;
                made.insert(dir.to_owned());
            }
        }
        let tmp = path.with_extension("partial");
        fs::write(&tmp, bytes).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>, BucketError> {
        let path = self.path(key)?;
        fs::read(&path).map_err(|source| BucketError::Io { path, source })
    }

    /// Keys under `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, BucketError> {
        let mut keys = Vec::new();
        self.walk(&self.root, &mut keys)?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn walk(&self, dir: &Path, keys: &mut Vec<String>) -> Result<(), BucketError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(BucketError::Io {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| BucketError::Io {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.is_dir() {
                self.walk(&path, keys)?;
            } else if path.extension().is_none_or(|e| e != "partial")
                && let Ok(rel) = path.strip_prefix(&self.root)
            {
                keys.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
}

impl LocalBucket {
    /// A dead-letter sink writing to `key` as letters come: they go to a temporary file that
    /// replaces the object when finished, so memory stays bounded and a reader never sees half.
    pub fn dead_letter_file(&self, key: &str) -> Result<LocalDeadLetters, BucketError> {
        let path = self.path(key)?;
        Ok(LocalDeadLetters {
            partial: path.with_extension("partial"),
            path,
            file: None,
            line: Vec::new(),
            letters: 0,
        })
    }
}

/// Dead letters streamed to one object of a [`LocalBucket`] (see
/// [`LocalBucket::dead_letter_file`]). Nothing is written when no letter comes.
#[derive(Debug)]
pub struct LocalDeadLetters {
    path: PathBuf,
    partial: PathBuf,
    file: Option<io::BufWriter<fs::File>>,
    /// One encoded letter, reused.
    line: Vec<u8>,
    letters: u64,
}

impl LocalDeadLetters {
    fn io(&self, source: io::Error) -> BucketError {
        BucketError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write(&mut self, letter: &DeadLetter) -> Result<(), BucketError> {
        if self.file.is_none() {
            if let Some(dir) = self.partial.parent() {
                fs::create_dir_all(dir).map_err(|e| self.io(e))?;
            }
            let file = fs::File::create(&self.partial).map_err(|e| self.io(e))?;
            self.file = Some(io::BufWriter::new(file));
        }
        self.line.clear();
        encode(letter, &mut self.line);
        let written = match &mut self.file {
            Some(file) => file.write_all(&self.line),
            None => Ok(()),
        };
        written.map_err(|e| self.io(e))?;
        self.letters += 1;
        Ok(())
    }

    fn complete(&mut self) -> Result<u64, BucketError> {
        let Some(file) = self.file.take() else {
            return Ok(0);
        };
        let file = file.into_inner().map_err(|e| self.io(e.into_error()))?;
        drop(file);
        fs::rename(&self.partial, &self.path).map_err(|e| self.io(e))?;
        Ok(self.letters)
    }
}

impl DeadLetterSink for LocalDeadLetters {
    type Error = BucketError;

    async fn push(&mut self, letter: &DeadLetter) -> Result<(), BucketError> {
        self.write(letter)
    }

    async fn finish(mut self) -> Result<u64, BucketError> {
        let done = self.complete();
        if done.is_err() {
            let _ = fs::remove_file(&self.partial);
        }
        done
    }

    async fn abort(mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_bucket(name: &str) -> LocalBucket {
        let dir = std::env::temp_dir().join(format!("metrics-local-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        LocalBucket::open(dir).unwrap()
    }

    #[test]
    fn objects_round_trip_and_list_by_prefix() {
        let bucket = temp_bucket("roundtrip");
        bucket.put("Data/2026/11/23/10/a.gz", b"a").unwrap();
        bucket.put("Data/2026/11/23/11/b.gz", b"b").unwrap();
        bucket.put("Error/processing-failed/x", b"x").unwrap();
        bucket.put("Data/2026/11/23/10/a.gz", b"a2").unwrap();
        assert_eq!(bucket.get("Data/2026/11/23/10/a.gz").unwrap(), b"a2");
        assert_eq!(
            bucket.list("Data/").unwrap(),
            ["Data/2026/11/23/10/a.gz", "Data/2026/11/23/11/b.gz"]
        );
        assert_eq!(bucket.list("").unwrap().len(), 3);
        fs::remove_dir_all(bucket.root()).unwrap();
    }

    fn letter(line: usize) -> DeadLetter {
        let source = metrics_objects::ObjectRef {
            bucket: "local".into(),
            key: "Data/a.gz".into(),
            size: None,
            sequencer: None,
        };
        DeadLetter::for_record(
            metrics_schema::Stage::Writer,
            "not_json",
            "d",
            &source,
            Some(line),
            Some(b"x"),
        )
    }

    async fn stream(bucket: &LocalBucket, lines: &[usize]) {
        let mut sink = bucket.dead_letter_file("Error/writer/Data/a.gz.ndjson").unwrap();
        for &line in lines {
            sink.push(&letter(line)).await.unwrap();
        }
        assert_eq!(sink.finish().await.unwrap(), lines.len() as u64);
    }

    #[tokio::test]
    async fn streamed_dead_letters_replace_the_object_whole() {
        let bucket = temp_bucket("letters");
        let key = "Error/writer/Data/a.gz.ndjson";
        stream(&bucket, &[1, 2, 3]).await;
        let expected = metrics_objects::dead_letter::to_ndjson(&[letter(1), letter(2), letter(3)]);
        assert_eq!(bucket.get(key).unwrap(), expected);
        stream(&bucket, &[7]).await;
        assert_eq!(
            bucket.get(key).unwrap(),
            metrics_objects::dead_letter::to_ndjson(&[letter(7)])
        );
        // No letters: the object stays as the last run left it.
        stream(&bucket, &[]).await;
        assert_eq!(
            bucket.get(key).unwrap(),
            metrics_objects::dead_letter::to_ndjson(&[letter(7)])
        );
        // Given up half-way: nothing changes and no temporary file is left behind.
        let mut sink = bucket.dead_letter_file(key).unwrap();
        sink.push(&letter(9)).await.unwrap();
        sink.abort().await;
        assert_eq!(
            bucket.get(key).unwrap(),
            metrics_objects::dead_letter::to_ndjson(&[letter(7)])
        );
        assert_eq!(bucket.list("").unwrap(), [key]);
        assert!(!bucket.path(key).unwrap().with_extension("partial").exists());
        fs::remove_dir_all(bucket.root()).unwrap();
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let bucket = temp_bucket("escape");
        for key in ["../x", "/etc/passwd", "a/../../x", "a//b", "", "a\\b", "./a"] {
            assert!(
                matches!(bucket.put(key, b""), Err(BucketError::UnsafeKey(_))),
                "{key:?}"
            );
        }
        fs::remove_dir_all(bucket.root()).unwrap();
    }
}
