//! Reading EventBridge events for `metrics-lake run`: NDJSON files, JSON arrays, gzip-compressed
//! either way, directories of them, or standard input (`-`). NDJSON is streamed, so memory
//! does not grow with the input; a JSON array is read whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// One source of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// The source's name in error listings: its path, or `-`.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// Expands the command-line arguments into sources: directories become their files (sorted,
/// recursively, `.json`, `.ndjson`, `.jsonl` and their `.gz` forms).
pub fn sources(args: &[String]) -> io::Result<Vec<Source>> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let path = PathBuf::from(arg);
        if path.is_dir() {
            let mut files = Vec::new();
            walk(&path, &mut files)?;
            files.sort();
            out.extend(files.into_iter().map(Source::File));
        } else if path.exists() {
            out.push(Source::File(path));
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{arg}: no such file or directory"),
            ));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = name.strip_suffix(".gz").unwrap_or(&name);
            if [".json", ".ndjson", ".jsonl"]
                .iter()
                .any(|ext| name.ends_with(ext))
            {
                files.push(path);
            }
        }
    }
    Ok(())
}

/// The events of one source, in order.
pub struct Events {
    reader: Box<dyn BufRead>,
    /// A JSON array's items, read whole (in reverse, popped from the end).
    array: Option<Vec<Vec<u8>>>,
    line: Vec<u8>,
    /// The 1-based line (NDJSON) or item (JSON array) of the event returned last.
    position: u64,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// Opens a source: gzip is recognised by its magic bytes, a JSON array by its `[`.
pub fn open(source: &Source) -> io::Result<Events> {
    let raw: Box<dyn Read> = match source {
        Source::Stdin => Box::new(io::stdin()),
        Source::File(path) => Box::new(File::open(path).map_err(|e| with_path(path, e))?),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, raw);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(256 * 1024, MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    let mut array = None;
    if first_non_space(&mut reader)? == Some(b'[') {
        let mut all = Vec::new();
        reader.read_to_end(&mut all)?;
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&all).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a JSON array of events: {e}"),
            )
        })?;
        array = Some(
            items
                .into_iter()
                .rev()
                .map(|item| item.get().as_bytes().to_vec())
                .collect(),
        );
    }
    Ok(Events {
        reader,
        array,
        line: Vec::new(),
        position: 0,
    })
}

impl Events {
    /// Where the event returned last is in its source: its line in NDJSON (blank lines
    /// counted), its position in a JSON array.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl Iterator for Events {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(items) = &mut self.array {
            self.position += 1;
            return items.pop().map(Ok);
        }
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) => {
                    self.position += 1;
                    let trimmed = self.line.trim_ascii();
                    if !trimmed.is_empty() {
                        return Some(Ok(trimmed.to_vec()));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn first_non_space(reader: &mut dyn BufRead) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                return Ok(Some(b));
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
