//! The store stage of the local pipeline: the writer's own code ([`write_object`]) into the
//! embedded store, with its dead letters streamed to the local bucket under `Error/writer/`,
//! exactly where the deployed writer puts them in S3.

use std::time::{Duration, Instant};

use metrics_objects::ObjectRef;
use metrics_objects::dead_letter::{DeadLetterSink, dead_letter_key};
use metrics_schema::{EventTime, Outcome, ReasonCode, Stage};
use metrics_store::EmbeddedStore;
use metrics_writer::write::{WriteOptions, write_object};

use crate::bucket::LocalBucket;
use crate::pipeline::{ObjectInput, StageError, StoreReport, StoreStage};

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
        object: ObjectInput<'_>,
    ) -> Result<StoreReport, StageError> {
        let key = object.key;
        let source = ObjectRef {
            bucket: LOCAL_BUCKET.to_owned(),
            key: key.to_owned(),
            size: Some(object.size),
            sequencer: None,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        let failed = |reason: &'static str, message: String| StageError {
            stage: Stage::Writer,
            reason: ReasonCode::new(reason),
            key: key.to_owned(),
            message,
        };
        let mut letters = bucket
            .dead_letter_file(&dead_letter_key(WRITER_DEAD_LETTER_PREFIX, &source))
            .map_err(|e| failed("dead_letter_write_failed", e.to_string()))?;
        let report = write_object(
            &self.store,
            &source,
            object.records,
            &self.options,
            self.now,
            deadline,
            &mut letters,
        )
        .await;
        if let Some(error) = report.dead_letter_error {
            letters.abort().await;
            return Err(failed("dead_letter_write_failed", error));
        }
        if report.needs_retry() {
            letters.abort().await;
            return Err(failed(
                "store_failed",
                report
                    .retry_cause
                    .unwrap_or_else(|| "the store did not take every record".into()),
            ));
        }
        letters
            .finish()
            .await
            .map_err(|e| failed("dead_letter_write_failed", e.to_string()))?;
        let mut stored = StoreReport {
            written: report.written_by_tenant.clone(),
            duplicates: report.already_present as u64,
            ..StoreReport::default()
        };
        // Every dead letter is counted under its outcome and reason.
        for ((fate, reason), n) in &report.counts {
            if let Some(Outcome::DeadLettered(failure)) = fate.outcome(reason) {
                *stored.dead_lettered.entry(failure.reason).or_insert(0) += n;
            }
        }
        Ok(stored)
    }
}
