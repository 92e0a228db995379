//! Replaying into the local pipeline: each record goes back to the stage that failed it, run
//! by the same code `metrics-lake run` uses.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use metrics_schema::{Outcome, OutcomeCounts, ReasonCode, Stage};
use sha2::{Digest, Sha256};

use super::record::{ErrorRecord, NOT_REPLAYABLE, ReplayTo};
use super::replay::{ReplayError, ReplayTarget, route};
use super::scan::{ErrorObject, FORWARDER_PREFIX, WRITER_PREFIX};
use crate::origin::Origin;
use crate::outbox::Forwarding;
use crate::pipeline::{ForwardReport, ObjectInput, Pipeline, StageError, StoreReport, StoreStage};
use crate::stages::EmbeddedWriter;

/// Where replays put the records they send to one consumer: an object like the `Data/` ones,
/// which only that consumer reads (the deployed stack routes these prefixes the same way).
pub use metrics_objects::key::{FORWARDER_REPLAY_PREFIX, WRITER_REPLAY_PREFIX};

/// The local pipeline, taking replayed records.
#[derive(Debug)]
pub struct LocalTarget {
    pub pipeline: Pipeline<EmbeddedWriter, Forwarding>,
}

impl ReplayTarget for LocalTarget {
    async fn send(
        &mut self,
        object: &ErrorObject,
        records: &[&ErrorRecord],
    ) -> Result<OutcomeCounts, ReplayError> {
        let mut outcomes = OutcomeCounts::new();
        let routed = route(records);
        let before = self.pipeline.summary().outcomes.clone();
        let failures_before = self.pipeline.summary().stage_errors.len();
        for record in &routed.stream {
            let origin = record
                .source
                .as_ref()
                .map(|s| Origin::new(s.as_str().into(), record.line));
            match &record.replay_to {
                ReplayTo::Enrich { arrival_ms } => {
                    let arrival = arrival_ms.unwrap_or_else(|| metrics_schema::EventTime::now().as_millis());
                    self.pipeline
                        .push_record(record.raw.clone(), arrival, origin)
                        .await
                        .map_err(pipeline_failed)?;
                }
                _ => self
                    .pipeline
                    .push_from(&record.raw, origin)
                    .await
                    .map_err(pipeline_failed)?,
            }
        }
        for record in &routed.nowhere {
            outcomes.add(Outcome::failed(record.stage, NOT_REPLAYABLE), 1);
        }
        // Everything pushed is processed and stored before the object counts as replayed.
        self.pipeline.flush().await.map_err(pipeline_failed)?;
        self.flush_outbox()?;
        // A stage that could not finish an object (the forwarder past its deadline, a dead
        // letter not written): nothing of this error object counts as replayed.
        if let Some(failure) = self.pipeline.summary().stage_errors.get(failures_before) {
            return Err(ReplayError::Stage {
                stage: failure.stage.name(),
                reason: failure.reason.clone(),
                message: format!("{}: {}", failure.key, failure.message),
            });
        }
        outcomes.merge(&difference(&self.pipeline.summary().outcomes, &before));
        if !routed.writer.is_empty() {
            outcomes.merge(&self.send_to_writer(object, &routed.writer).await?);
        }
        for (destination, lines) in routed.forwarder {
            outcomes.merge(&self.send_to_forwarder(object, destination, &lines).await?);
        }
        self.flush_outbox()?;
        Ok(outcomes)
    }
}

impl LocalTarget {
    /// Writes out the outbox's buffered requests: an object counts as replayed (and a resumed
    /// replay skips it) only once what it forwarded is on disk.
    fn flush_outbox(&mut self) -> Result<(), ReplayError> {
        let (_, _, forward) = self.pipeline.stages_mut().map_err(pipeline_failed)?;
        forward.flush().map_err(|e| ReplayError::Stage {
            stage: "forwarder",
            reason: ReasonCode::new("outbox_write_failed"),
            message: e.to_string(),
        })
    }

    async fn send_to_writer(
        &mut self,
        object: &ErrorObject,
        lines: &[&[u8]],
    ) -> Result<OutcomeCounts, ReplayError> {
        let key = replay_key(&object.key, WRITER_PREFIX, WRITER_REPLAY_PREFIX, lines);
        let bytes = gzip_lines(lines);
        let (bucket, store, _) = self.pipeline.stages_mut().map_err(pipeline_failed)?;
        bucket.put(&key, &bytes).map_err(|e| bucket_error(&key, e))?;
        let report = store.consume(bucket, ObjectInput::stored(&key, &bytes)).await;
        Ok(match report {
            Ok(report) => store_outcomes(report),
            Err(error) => failed(error, lines.len()),
        })
    }

    async fn send_to_forwarder(
        &mut self,
        object: &ErrorObject,
        destination: &str,
        lines: &[&[u8]],
    ) -> Result<OutcomeCounts, ReplayError> {
        let from = format!("{FORWARDER_PREFIX}{destination}/");
        let key = replay_key(
            &object.key,
            &from,
            &format!("{FORWARDER_REPLAY_PREFIX}{destination}/"),
            lines,
        );
        let bytes = gzip_lines(lines);
        let (bucket, _, forward) = self.pipeline.stages_mut().map_err(pipeline_failed)?;
        bucket.put(&key, &bytes).map_err(|e| bucket_error(&key, e))?;
        let report = forward
            .consume_to(Some(destination), bucket, ObjectInput::stored(&key, &bytes))
            .await;
        Ok(match report {
            Ok(report) => forward_outcomes(report, destination, lines.len() as u64),
            Err(error) => failed(error, lines.len()),
        })
    }
}

/// `Error/writer/<rest>.ndjson` → `Replay/writer/<rest>-<hash of the records>.gz`, within S3's
/// key limit: the same records always get the same key (a second replay of them replaces the
/// object, and a consumer that finished it skips it), while another selection from the same
/// error object gets its own object, never replacing one a consumer may not have read yet.
pub fn replay_key(error_key: &str, from: &str, to: &str, lines: &[&[u8]]) -> String {
    let rest = error_key.strip_prefix(from).unwrap_or(error_key);
    let rest = rest.strip_suffix(".ndjson").unwrap_or(rest);
    let mut digest = Sha256::new();
    for line in lines {
        digest.update(line);
        digest.update(b"\n");
    }
    let hash: String = digest
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    metrics_objects::key::derived_key(to, &format!("{rest}-{hash}"), ".gz")
}

fn store_outcomes(report: StoreReport) -> OutcomeCounts {
    let mut outcomes = OutcomeCounts::new();
    outcomes.add(Outcome::Stored, report.written.values().sum());
    outcomes.add(Outcome::Duplicate, report.duplicates);
    for (reason, n) in report.dead_lettered {
        outcomes.add(Outcome::dead_lettered(Stage::Writer, reason), n);
    }
    outcomes
}

/// The destination's counts as outcomes; what it neither took nor dead-lettered is no longer
/// selected for it by the forwarder's configuration.
fn forward_outcomes(report: ForwardReport, destination: &str, records: u64) -> OutcomeCounts {
    let mut outcomes = OutcomeCounts::new();
    let counts = report.destinations.get(destination).cloned().unwrap_or_default();
    let dead: u64 = counts.dead_lettered.values().sum();
    outcomes.add(Outcome::Delivered, counts.events);
    for (reason, n) in counts.dead_lettered {
        outcomes.add(Outcome::dead_lettered(Stage::Forwarder, reason), n);
    }
    let rest = records.saturating_sub(counts.events + dead);
    outcomes.add(Outcome::dropped(Stage::Forwarder, "not_selected"), rest);
    outcomes
}

fn failed(error: StageError, records: usize) -> OutcomeCounts {
    let mut outcomes = OutcomeCounts::new();
    outcomes.add(Outcome::failed(error.stage, error.reason), records as u64);
    outcomes
}

/// `after - before`, per outcome.
fn difference(after: &OutcomeCounts, before: &OutcomeCounts) -> OutcomeCounts {
    after
        .iter()
        .map(|(outcome, n)| (outcome.clone(), n.saturating_sub(before.get(outcome))))
        .collect()
}

pub(crate) fn gzip_lines(lines: &[&[u8]]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for line in lines {
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(line);
        let _ = encoder.write_all(b"\n");
    }
    encoder.finish().unwrap_or_default()
}

fn pipeline_failed(error: crate::pipeline::PipelineError) -> ReplayError {
    ReplayError::Stage {
        stage: "bucket",
        reason: ReasonCode::new("bucket_unavailable"),
        message: error.to_string(),
    }
}

fn bucket_error(key: &str, error: crate::bucket::BucketError) -> ReplayError {
    ReplayError::Stage {
        stage: "bucket",
        reason: ReasonCode::new("bucket_unavailable"),
        message: format!("{key}: {error}"),
    }
}
