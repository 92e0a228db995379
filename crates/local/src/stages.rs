//! The store stage of the local pipeline: the writer's own code ([`write_object`]) into the
//! embedded store, with its dead letters written to the local bucket under `Error/writer/`,
//! exactly where the deployed writer puts them in S3.

use std::time::{Duration, Instant};

use metrics_objects::ObjectRef;
use metrics_objects::dead_letter::{dead_letter_key, to_ndjson};
use metrics_schema::{EventTime, ReasonCode, Stage};
use metrics_store::EmbeddedStore;
use metrics_writer::write::{WriteOptions, write_object};

use crate::bucket::LocalBucket;
use crate::pipeline::{StageError, StoreReport, StoreStage};

/// The bucket name objects carry in dead letters of a local run.
pub const LOCAL_BUCKET: &str = "local";
/// Where the writer's dead letters go (the writer's `DEAD_LETTER_PREFIX` default).
pub const WRITER_DEAD_LETTER_PREFIX: &str = "Error/writer/";

/// The writer Lambda's core over the embedded store.
#[derive(Debug)]
pub struct EmbeddedWriter {
    store: EmbeddedStore,
    options: WriteOptions,
    now: EventTime,
}

impl EmbeddedWriter {
    pub fn new(store: EmbeddedStore, options: WriteOptions) -> Self {
        EmbeddedWriter {
            store,
            options,
            now: EventTime::now(),
        }
    }

    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }
}

impl StoreStage for EmbeddedWriter {
    async fn consume(
        &mut self,
        bucket: &LocalBucket,
        key: &str,
        bytes: &[u8],
    ) -> Result<StoreReport, StageError> {
        let source = ObjectRef {
            bucket: LOCAL_BUCKET.to_owned(),
            key: key.to_owned(),
            size: Some(bytes.len() as u64),
            sequencer: None,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        let report = write_object(&self.store, &source, bytes, &self.options, self.now, deadline).await;
        if report.needs_retry() {
            return Err(StageError {
                stage: Stage::Writer,
                reason: ReasonCode::new("store_failed"),
                key: key.to_owned(),
                message: report
                    .retry_cause
                    .unwrap_or_else(|| "the store did not take every record".into()),
            });
        }
        if !report.dead_letters.is_empty() {
            let letters_key = dead_letter_key(WRITER_DEAD_LETTER_PREFIX, &source);
            bucket
                .put(&letters_key, &to_ndjson(&report.dead_letters))
                .map_err(|e| StageError {
                    stage: Stage::Writer,
                    reason: ReasonCode::new("dead_letter_write_failed"),
                    key: key.to_owned(),
                    message: e.to_string(),
                })?;
        }
        let mut stored = StoreReport {
            written: report.written_by_tenant.clone(),
            duplicates: report.already_present as u64,
            ..StoreReport::default()
        };
        for letter in &report.dead_letters {
            *stored.dead_lettered.entry(letter.reason.clone()).or_insert(0) += 1;
        }
        Ok(stored)
    }
}
