//! The local state directory (default `.metrics-lake/`): everything a local run leaves behind,
//! in one place that is safe to delete.
//!
//! ```text
//! .metrics-lake/
//!   bucket/          the S3 bucket: Data/…, Error/processing-failed/…, Error/writer/…, Error/forwarder/…,
//!                    Error/input/… (input that is not an event), Replay/…, Replayed/… (replays);
//!                    objects are rows of bucket/.objects.sqlite3 (one file for a year of one-minute
//!                    objects, not an inode each), streamed dead letters files at their key's path;
//!                    `metrics-lake bucket ls|cat` shows them
//!   store.db         the embedded store (SQLite), one table per tenant
//!   alerts.db        tenants' alerts, their state and recent events (SQLite)
//!   outbox/          the exact request bodies the forwarder would send, per destination
//!   last-run.json    the summary of the last run
//! ```

use std::path::{Path, PathBuf};

use clap::Args;
use metrics_local::pipeline::Summary;
use metrics_store::{EmbeddedSettings, EmbeddedStore};

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Where local state lives (safe to delete).
    #[arg(long, default_value = ".metrics-lake", env = "METRICS_LAKE_STATE_DIR")]
    pub state_dir: PathBuf,
}

/// Local runs replay history (the sample data set has fixed dates), so the embedded store keeps
/// everything instead of applying the deployed magnetic-store retention.
const LOCAL_RETENTION_DAYS: i64 = 100 * 365;

#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens the state directory, creating it.
    pub fn open(root: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        Ok(StateDir {
            root: root.to_owned(),
        })
    }

    /// Opens an existing state directory with a store in it.
    pub fn existing(root: &Path) -> Result<Self, String> {
        let state = StateDir {
            root: root.to_owned(),
        };
        if !state.store_path().exists() {
            return Err(format!(
                "no store at {}: run `metrics-lake run` first (or pass --state-dir)",
                state.store_path().display()
            ));
        }
        Ok(state)
    }

    pub fn bucket(&self) -> PathBuf {
        self.root.join("bucket")
    }

    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }

    pub fn store_path(&self) -> PathBuf {
        self.root.join("store.db")
    }

    pub fn alerts_path(&self) -> PathBuf {
        self.root.join("alerts.db")
    }

    pub fn open_store(&self) -> Result<EmbeddedStore, String> {
        let mut settings = EmbeddedSettings::new(self.store_path());
        settings.retention_days = LOCAL_RETENTION_DAYS;
        EmbeddedStore::open(settings).map_err(|e| format!("{}: {e}", self.store_path().display()))
    }

    pub fn save_summary(&self, summary: &Summary) -> Result<(), String> {
        let path = self.root.join("last-run.json");
        let mut value = serde_json::to_value(summary).map_err(|e| e.to_string())?;
        value["accounting"] = serde_json::to_value(summary.accounting()).map_err(|e| e.to_string())?;
        let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
