//! Dead letters streamed to one object of the bucket as they come: written to a temporary file
//! that replaces the object when finished, so memory stays bounded (an object of dead letters
//! can be as large as the object that failed) and a reader never sees half of it.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, encode};

use super::{BucketError, LocalBucket};

/// Dead letters streamed to one object of a [`LocalBucket`] (see
/// [`LocalBucket::dead_letter_file`]). Nothing is written when no letter comes.
#[derive(Debug)]
pub struct LocalDeadLetters {
    bucket: LocalBucket,
    key: String,
    path: PathBuf,
    /// Where the letters are written until they are finished: named when the first letter
    /// comes (most objects have none, and naming it is a visible part of a sink's cost).
    partial: Option<PathBuf>,
    file: Option<io::BufWriter<fs::File>>,
    /// One encoded letter, reused.
    line: Vec<u8>,
    letters: u64,
}

impl LocalDeadLetters {
    pub(super) fn new(bucket: LocalBucket, key: &str, path: PathBuf) -> Self {
        LocalDeadLetters {
            bucket,
            key: key.to_owned(),
            partial: None,
            path,
            file: None,
            line: Vec::new(),
            letters: 0,
        }
    }

    fn io(&self, source: io::Error) -> BucketError {
        BucketError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write(&mut self, letter: &DeadLetter) -> Result<(), BucketError> {
        if self.file.is_none() {
            let partial = self.path.with_extension("partial");
            if let Some(dir) = partial.parent() {
                fs::create_dir_all(dir).map_err(|e| self.io(e))?;
            }
            let file = fs::File::create(&partial).map_err(|e| self.io(e))?;
            self.partial = Some(partial);
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
        let (Some(file), Some(partial)) = (self.file.take(), self.partial.clone()) else {
            return Ok(0);
        };
        let file = file.into_inner().map_err(|e| self.io(e.into_error()))?;
        drop(file);
        // The objects these letters point at (deferred puts) are stored before the letters.
        self.bucket.sync()?;
        fs::rename(&partial, &self.path).map_err(|e| self.io(e))?;
        // A packed object of the same key is older than the file, which is the object either
        // way (see `LocalBucket::get`): removing the row only frees its space.
        let _ = self.bucket.pack.delete(&self.key);
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
        if done.is_err()
            && let Some(partial) = &self.partial
        {
            let _ = fs::remove_file(partial);
        }
        done
    }

    async fn abort(mut self) {
        if self.file.take().is_some()
            && let Some(partial) = &self.partial
        {
            let _ = fs::remove_file(partial);
        }
    }
}
