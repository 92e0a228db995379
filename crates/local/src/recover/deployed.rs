//! Replaying into the deployed pipeline with the operator's credentials:
//!
//! - records enrich failed go back into the delivery stream with Firehose `PutRecordBatch`
//!   (at most 500 records and 4 MiB per call; entries the answer marks failed are sent again),
//!   so the deployed enrich function maps and checks them like any new record;
//! - writer and forwarder dead letters become one object under `Replay/writer/` or
//!   `Replay/forwarder/<destination>/`, which the stack routes to that consumer's queue only:
//!   the store is written by the writer's code path and nothing else.
//!
//! The replay's outcome for a record is `resubmitted`; its final outcome is the deployed
//! functions', and a record that fails again is found again by `metrics-lake errors`.

use std::time::Duration;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use metrics_schema::{Outcome, OutcomeCounts, ReasonCode, Stage};

use super::local::{FORWARDER_REPLAY_PREFIX, WRITER_REPLAY_PREFIX, replay_key};
use super::objects::Objects;
use super::record::{ErrorRecord, NOT_REPLAYABLE, ReplayTo};
use super::replay::{ReplayError, ReplayTarget, route};
use super::scan::{ErrorObject, FORWARDER_PREFIX, WRITER_PREFIX};

/// `PutRecordBatch` limits: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Sends of the entries a `PutRecordBatch` answer marks failed, before giving up on them.
const PUT_ATTEMPTS: u32 = 5;

/// A delivery stream taking records.
#[allow(async_fn_in_trait)]
pub trait RecordStream {
    /// Sends one batch (within the limits); returns, per record in order, `None` when taken
    /// or the error code of a failed entry. `Err` when the call itself failed.
    async fn put_batch(&self, records: &[&[u8]]) -> Result<Vec<Option<String>>, String>;
}

/// The deployed stream, through the AWS SDK.
#[derive(Debug, Clone)]
pub struct FirehoseStream {
    pub client: aws_sdk_firehose::Client,
    pub name: String,
}

impl RecordStream for FirehoseStream {
    async fn put_batch(&self, records: &[&[u8]]) -> Result<Vec<Option<String>>, String> {
        let entries = records
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.to_vec())).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let answer = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| aws_sdk_firehose::error::DisplayErrorContext(e).to_string())?;
        Ok(answer
            .request_responses()
            .iter()
            .map(|r| r.error_code().map(str::to_owned))
            .collect())
    }
}

/// Index ranges of `records` that each fit one `PutRecordBatch` call.
pub fn batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_RECORDS || bytes + size > MAX_BATCH_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// Sends every record, again for entries that failed; per record, `None` when taken or the
/// last error code.
pub async fn put_all(stream: &impl RecordStream, records: &[&[u8]]) -> Vec<Option<String>> {
    let mut results: Vec<Option<String>> = vec![Some("not_sent".to_owned()); records.len()];
    let mut pending: Vec<usize> = (0..records.len()).collect();
    for attempt in 0..PUT_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let sizes: Vec<usize> = pending.iter().map(|&i| records[i].len()).collect();
        let mut still = Vec::new();
        for range in batches(&sizes) {
            let indices = &pending[range];
            let batch: Vec<&[u8]> = indices.iter().map(|&i| records[i]).collect();
            match stream.put_batch(&batch).await {
                Ok(answers) => {
                    for (n, &i) in indices.iter().enumerate() {
                        let answer = answers.get(n).cloned().unwrap_or(Some("no_answer".to_owned()));
                        if answer.is_some() {
                            still.push(i);
                        }
                        results[i] = answer;
                    }
                }
                Err(error) => {
                    for &i in indices {
                        results[i] = Some(error.clone());
                        still.push(i);
                    }
                }
            }
        }
        pending = still;
    }
    results
}

/// The deployed pipeline.
#[derive(Debug)]
pub struct DeployedTarget<'a, O, S> {
    pub objects: &'a O,
    /// `None` when no stream was named: records enrich failed cannot be replayed then.
    pub stream: Option<S>,
}

impl<O: Objects, S: RecordStream> ReplayTarget for DeployedTarget<'_, O, S> {
    async fn send(
        &mut self,
        object: &ErrorObject,
        records: &[&ErrorRecord],
    ) -> Result<OutcomeCounts, ReplayError> {
        let mut outcomes = OutcomeCounts::new();
        let routed = route(records);
        let mut to_stream = Vec::new();
        for record in &routed.stream {
            match record.replay_to {
                ReplayTo::Enrich { .. } => to_stream.push(record.raw.as_slice()),
                // Input that is not an event exists only in a local run.
                _ => outcomes.add(Outcome::failed(record.stage, NOT_REPLAYABLE), 1),
            }
        }
        for record in &routed.nowhere {
            outcomes.add(Outcome::failed(record.stage, NOT_REPLAYABLE), 1);
        }
        let (to_writer, to_forwarder) = (routed.writer, routed.forwarder);
        if !to_stream.is_empty() {
            let Some(stream) = &self.stream else {
                return Err(ReplayError::Stage {
                    stage: "replay",
                    reason: ReasonCode::new("no_stream"),
                    message: "records the enrich function failed go back into the delivery stream: pass --stream NAME".into(),
                });
            };
            for result in put_all(stream, &to_stream).await {
                match result {
                    None => outcomes.add(Outcome::Resubmitted, 1),
                    Some(_) => outcomes.add(Outcome::failed(Stage::Enrich, "firehose_put_failed"), 1),
                }
            }
        }
        if !to_writer.is_empty() {
            let key = replay_key(&object.key, WRITER_PREFIX, WRITER_REPLAY_PREFIX, &to_writer);
            self.objects.put(&key, gzip(&to_writer)).await?;
            outcomes.add(Outcome::Resubmitted, to_writer.len() as u64);
        }
        for (destination, lines) in to_forwarder {
            let from = format!("{FORWARDER_PREFIX}{destination}/");
            let key = replay_key(
                &object.key,
                &from,
                &format!("{FORWARDER_REPLAY_PREFIX}{destination}/"),
                &lines,
            );
            self.objects.put(&key, gzip(&lines)).await?;
            outcomes.add(Outcome::Resubmitted, lines.len() as u64);
        }
        Ok(outcomes)
    }
}

fn gzip(lines: &[&[u8]]) -> Vec<u8> {
    super::local::gzip_lines(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_record_and_byte_limits() {
        assert_eq!(batches(&[10; 1001]), vec![0..500, 500..1000, 1000..1001]);
        let big = 1_000 * 1024;
        // Four 1,000 KiB records fit 4 MiB; the fifth starts a new call.
        assert_eq!(batches(&[big; 5]), vec![0..4, 4..5]);
        assert_eq!(batches(&[]), Vec::<std::ops::Range<usize>>::new());
    }

    /// A stream that fails chosen entries on the first call, then takes everything.
    struct Flaky {
        calls: std::sync::Mutex<Vec<usize>>,
    }

    impl RecordStream for Flaky {
        async fn put_batch(&self, records: &[&[u8]]) -> Result<Vec<Option<String>>, String> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(records.len());
            let first = calls.len() == 1;
            Ok(records
                .iter()
                .map(|r| (first && r.starts_with(b"x")).then(|| "ServiceUnavailableException".to_owned()))
                .collect())
        }
    }

    #[tokio::test]
    async fn failed_entries_are_sent_again_and_only_them() {
        let stream = Flaky {
            calls: Default::default(),
        };
        let records: Vec<&[u8]> = vec![b"a", b"x1", b"b", b"x2"];
        let results = put_all(&stream, &records).await;
        assert_eq!(results, vec![None; 4]);
        assert_eq!(*stream.calls.lock().unwrap(), vec![4, 2]);
    }
}
