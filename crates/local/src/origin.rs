//! Where a record came from before it reached the bucket: the input file and line of
//! `metrics-lake run`. Firehose keeps no trace of it, so the local run writes it beside each
//! processing-failed object, and input that is not an event is kept whole under `Error/input/`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Local-only: input lines that are not EventBridge events, as dead letters of the `rules`
/// stage (one object per run). EventBridge itself accepts only JSON, so the deployed bucket
/// never has this prefix.
pub const INPUT_REJECTS_PREFIX: &str = "Error/input/";
/// The `source_bucket` of those dead letters: their `source_key` is the input's name.
pub const INPUT_BUCKET: &str = "input";
/// Local-only: one line per record of a processing-failed object, its [`Origin`] or `null`.
pub const ORIGINS_PREFIX: &str = "State/origins/";

/// An input and a 1-based line (for the sample data set, the event's number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub input: Arc<str>,
    pub line: u64,
}

impl Origin {
    pub fn new(input: Arc<str>, line: u64) -> Origin {
        Origin { input, line }
    }

    /// An event pushed without saying where it came from.
    pub fn unknown() -> Origin {
        Origin {
            input: Arc::from("-"),
            line: 0,
        }
    }
}

/// Where the origins of the processing-failed object `key` are kept.
pub fn origins_key(key: &str) -> String {
    format!("{ORIGINS_PREFIX}{key}.ndjson")
}

/// The origins file's lines: one per record of the object, `None` where the run did not know.
pub fn parse_origins(bytes: &[u8]) -> Vec<Option<Origin>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .map(|line| serde_json::from_slice(line).ok().flatten())
        .collect()
}
