//! The whole pipeline in one process, each stage the code its Lambda runs:
//!
//! 1. the EventBridge emulator applies the rules to each event: every matching rule delivers
//!    the event wrapped with its metric's name (no match is counted, not an error);
//! 2. the Firehose emulator buffers them and calls the enrich transformer ([`Enricher`]) per
//!    processor buffer, which maps each wrapped event and validates it, writing `Data/…` and
//!    `Error/processing-failed/…` objects into the local bucket;
//! 3. every new `Data/` object goes to the store stage (the writer) and the forward stage
//!    (the forwarder), as their queues would deliver it.
//!
//! The readers of step 3 run where the events are pushed, or each on a thread of its own
//! ([`Pipeline::reading_on_threads`]), given a bounded window of objects, so that a bulk run
//! uses every core. They take the objects in order either way, so the store, the outbox and the
//! summary come out the same.
//!
//! Every input event ends with exactly one outcome in the [`Summary`], so the run can prove
//! that nothing was lost.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use metrics_enrich::Enricher;
use metrics_enrich::firehose::FirehoseEvent;
use metrics_mapping::RuleSet;
use metrics_schema::{EventTime, Outcome, OutcomeCounts, ReasonCode, Stage};
use serde::Serialize;

use metrics_objects::ObjectRef;
use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink};

use crate::bucket::{BucketError, LocalBucket, LocalDeadLetters};
use crate::firehose::{Firehose, FirehoseConfig, Invocation, NewObject, ObjectKind};
use crate::origin::{INPUT_REJECTS_PREFIX, Origin, origins_key};
use crate::readers::{ObjectRead, ObjectReader, ReaderThreads, Readers};

/// What the store stage did with one object's records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreReport {
    /// Records written, per tenant.
    pub written: BTreeMap<String, u64>,
    /// Records already stored (a replay or a redelivered duplicate): nothing changed.
    pub duplicates: u64,
    /// Records not written, per reason code (each is in the stage's dead-letter location).
    pub dead_lettered: BTreeMap<ReasonCode, u64>,
}

/// What the forward stage did with one object's records, per destination.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ForwardReport {
    pub destinations: BTreeMap<String, DestinationCounts>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationCounts {
    /// Events in request bodies (delivered, or written to the outbox).
    pub events: u64,
    pub requests: u64,
    /// Events not sent, per reason code.
    pub dead_lettered: BTreeMap<ReasonCode, u64>,
}

/// An object of the local bucket, as the store and forward stages read it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectInput<'a> {
    pub key: &'a str,
    /// The object's size in the bucket (its dead letters name the object with its size).
    pub size: u64,
    /// Its records: the object's bytes as stored, or the plain content they decompress to
    /// (the same records; see [`crate::firehose::NewObject::content`]).
    pub records: &'a [u8],
}

impl<'a> ObjectInput<'a> {
    /// An object read from its bytes as stored.
    pub fn stored(key: &'a str, bytes: &'a [u8]) -> Self {
        ObjectInput {
            key,
            size: bytes.len() as u64,
            records: bytes,
        }
    }

    /// A new object, read from its content when the Firehose emulation kept it.
    pub fn new_object(object: &'a NewObject) -> Self {
        ObjectInput {
            records: object.content.as_deref().unwrap_or(&object.bytes),
            ..ObjectInput::stored(&object.key, &object.bytes)
        }
    }
}

/// The store writer, reading one new object. The bucket is where its dead letters go.
#[allow(async_fn_in_trait)] // used in one process, never across threads
pub trait StoreStage {
    async fn consume(
        &mut self,
        bucket: &LocalBucket,
        object: ObjectInput<'_>,
    ) -> Result<StoreReport, StageError>;
}

/// The forwarder, reading one new object.
#[allow(async_fn_in_trait)]
pub trait ForwardStage {
    async fn consume(
        &mut self,
        bucket: &LocalBucket,
        object: ObjectInput<'_>,
    ) -> Result<ForwardReport, StageError>;
}

/// A stage that could not process an object at all (its Lambda would fail and be retried; a
/// local run has no retry, so the object's records end with this as their failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage} failed on {key}: {reason}: {message}")]
pub struct StageError {
    pub stage: Stage,
    /// Stable reason code.
    pub reason: ReasonCode,
    pub key: String,
    pub message: String,
}

/// Why the pipeline stopped: the local bucket cannot be written, so nothing more can be kept;
/// or the readers' thread could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("the thread that reads new objects {0}")]
    Readers(String),
}

/// Counts for the whole run. Every input event has one outcome in `outcomes`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events_read: u64,
    /// Input that is not an EventBridge event (not JSON, not an object).
    pub not_events: u64,
    pub unmatched: u64,
    pub matched: u64,
    /// Unified events the rules produced (more than `matched` only when rules overlap).
    pub records: u64,
    pub transform: TransformCounts,
    pub objects: ObjectCounts,
    pub store: StoreCounts,
    pub forward: BTreeMap<String, DestinationCounts>,
    /// One entry per input event: `unmatched`, `not_an_event`, `stored`, `duplicate`,
    /// `failed:<reason>`, `dropped:<reason>`, `dead_lettered:<reason>`.
    pub outcomes: OutcomeCounts,
    /// Objects a stage could not process at all, with the reason (their records are counted
    /// as failed by the store stage; the forward stage's are only listed here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stage_errors: Vec<StageFailure>,
}

/// One object a stage could not process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageFailure {
    pub stage: Stage,
    pub reason: ReasonCode,
    pub key: String,
    pub message: String,
    /// The object's records.
    pub records: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TransformCounts {
    pub ok: u64,
    pub dropped: BTreeMap<ReasonCode, u64>,
    pub failed: BTreeMap<ReasonCode, u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectCounts {
    pub data: u64,
    pub processing_failed: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    pub written: BTreeMap<String, u64>,
    pub duplicates: u64,
    pub dead_lettered: BTreeMap<ReasonCode, u64>,
    /// Records of objects the store stage could not process at all, per reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<ReasonCode, u64>,
}

/// Where a run's time went, stage by stage: the time each stage was busy, on the thread that
/// pushes events or on the readers' thread. `metrics-lake run --timings`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StageTimes {
    /// The EventBridge emulation: the rules' patterns and input templates.
    pub rules: Duration,
    /// The Firehose emulation: buffering, the invocation and response (base64), gzip.
    pub firehose: Duration,
    /// The enrich transform, as its Lambda runs it.
    pub enrich: Duration,
    /// Writing objects into the local bucket.
    pub objects: Duration,
    /// The writer's code into the embedded store.
    pub store: Duration,
    /// The forwarder's code: reading the object, building requests, the outbox.
    pub forward: Duration,
    /// The pushing thread waiting for the readers' threads (their window of objects full, or
    /// the end of the input): zero when the readers run on the pushing thread.
    pub waiting: Duration,
}

impl StageTimes {
    /// The time the stages on the pushing thread took (the rest of a run's wall time there is
    /// reading or generating the input).
    pub fn pushing(&self, readers_on_threads: bool) -> Duration {
        let own = self.rules + self.firehose + self.enrich + self.objects + self.waiting;
        if readers_on_threads {
            own
        } else {
            own + self.store + self.forward
        }
    }
}

/// Whether every input event is accounted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accounting {
    pub input_events: u64,
    /// Extra unified events when one event matched several rules.
    pub extra_records: u64,
    pub outcomes_total: u64,
    pub balanced: bool,
}

impl Summary {
    fn outcome(&mut self, outcome: Outcome, n: u64) {
        self.outcomes.add(outcome, n);
    }

    /// Whether the run did everything: every event accounted for and no stage failure.
    pub fn is_clean(&self) -> bool {
        self.stage_errors.is_empty() && self.accounting().balanced
    }

    /// Every input event is stored, a duplicate of a stored event, failed or dead-lettered
    /// with a reason, or unmatched; and the stages agree with each other.
    pub fn accounting(&self) -> Accounting {
        let extra_records = self.records.saturating_sub(self.matched);
        let outcomes_total: u64 = self.outcomes.total();
        let transformed = self.transform.ok
            + self.transform.dropped.values().sum::<u64>()
            + self.transform.failed.values().sum::<u64>();
        let stored = self.store.written.values().sum::<u64>()
            + self.store.duplicates
            + self.store.dead_lettered.values().sum::<u64>()
            + self.store.failed.values().sum::<u64>();
        let balanced = self.events_read == self.not_events + self.unmatched + self.matched
            && transformed == self.records
            && stored == self.transform.ok
            && outcomes_total == self.events_read + extra_records;
        Accounting {
            input_events: self.events_read,
            extra_records,
            outcomes_total,
            balanced,
        }
    }
}

/// The pipeline. Feed it events in arrival order with [`Pipeline::push`], then call
/// [`Pipeline::finish`].
#[derive(Debug)]
pub struct Pipeline<S, F> {
    rules: RuleSet,
    firehose: Firehose,
    enricher: Enricher,
    bucket: LocalBucket,
    readers: Readers<S, F>,
    summary: Summary,
    /// The clock the schema's future-time rule uses: the real one, read once per run.
    now: EventTime,
    last_arrival_ms: i64,
    /// Where each record in the processor buffer came from, by its Firehose tag: kept beside
    /// the records Firehose fails, which carry no trace of their input.
    origins: HashMap<u64, Origin>,
    next_tag: u64,
    /// Input that is not an EventBridge event, kept under `Error/input/` so it can be shown.
    rejected_input: Option<LocalDeadLetters>,
    /// Off for a replay: input it rejects again is already kept where the replay found it.
    keep_rejected_input: bool,
    times: StageTimes,
}

impl<S: StoreStage, F: ForwardStage> Pipeline<S, F> {
    pub fn new(
        rules: RuleSet,
        firehose: FirehoseConfig,
        enricher: Enricher,
        bucket: LocalBucket,
        store: S,
        forward: F,
    ) -> Self {
        Pipeline {
            rules,
            firehose: Firehose::new(firehose),
            enricher,
            readers: Readers::new(&bucket, store, forward),
            bucket,
            summary: Summary::default(),
            now: EventTime::now(),
            last_arrival_ms: 0,
            origins: HashMap::new(),
            next_tag: 0,
            rejected_input: None,
            keep_rejected_input: true,
            times: StageTimes::default(),
        }
    }

    /// Where the time went so far.
    pub fn times(&self) -> StageTimes {
        self.times
    }

    /// Input the rules reject is counted but not kept again (a replay of kept input).
    pub fn without_keeping_rejected_input(mut self) -> Self {
        self.keep_rejected_input = false;
        self
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn bucket(&self) -> &LocalBucket {
        &self.bucket
    }

    /// The store and forward stages, to hand them one object directly (a replay). Readers on
    /// a thread finish what they were given and come back to this one first.
    pub fn stages_mut(&mut self) -> Result<(&LocalBucket, &mut S, &mut F), PipelineError> {
        self.readers_here()?;
        match &mut self.readers {
            Readers::Here(store, forward) => Ok((&store.bucket, &mut store.store, &mut forward.forward)),
            _ => Err(PipelineError::Readers("did not stop".to_owned())),
        }
    }

    /// Puts one EventBridge event on the bus.
    pub async fn push(&mut self, event: &[u8]) -> Result<(), PipelineError> {
        self.push_from(event, None).await
    }

    /// [`Pipeline::push`] for an event read from `origin` (an input file and line), which
    /// `metrics-lake errors` shows for the event if it fails before the bucket.
    pub async fn push_from(&mut self, event: &[u8], origin: Option<Origin>) -> Result<(), PipelineError> {
        self.summary.events_read += 1;
        let started = Instant::now();
        let (time, applied) = self
            .rules
            .apply_on_arrival(event, EventTime::from_millis(self.last_arrival_ms));
        self.times.rules += started.elapsed();
        let arrival_ms = time.map_or(self.last_arrival_ms, EventTime::as_millis);
        self.last_arrival_ms = self.last_arrival_ms.max(arrival_ms);
        let matches = match applied {
            Ok(matches) => matches,
            Err(error) => {
                self.summary.not_events += 1;
                self.summary.outcome(Outcome::NotAnEvent, 1);
                if self.keep_rejected_input {
                    self.reject_input(event, &error, origin).await?;
                }
                return Ok(());
            }
        };
        if matches.is_empty() {
            self.summary.unmatched += 1;
            self.summary.outcome(Outcome::Unmatched, 1);
            return Ok(());
        }
        self.summary.matched += 1;
        let outputs: Vec<Vec<u8>> = matches.into_iter().map(|m| m.output).collect();
        for output in outputs {
            self.put_record(output, arrival_ms, origin.clone()).await?;
        }
        Ok(())
    }

    /// Puts one record straight into the delivery stream, as a producer calling Firehose's
    /// `PutRecord` (or a replay) does: it counts as one matched event.
    pub async fn push_record(
        &mut self,
        record: Vec<u8>,
        arrival_ms: i64,
        origin: Option<Origin>,
    ) -> Result<(), PipelineError> {
        self.summary.events_read += 1;
        self.summary.matched += 1;
        self.last_arrival_ms = self.last_arrival_ms.max(arrival_ms);
        self.put_record(record, arrival_ms, origin).await
    }

    async fn put_record(
        &mut self,
        record: Vec<u8>,
        arrival_ms: i64,
        origin: Option<Origin>,
    ) -> Result<(), PipelineError> {
        self.summary.records += 1;
        self.next_tag += 1;
        let tag = self.next_tag;
        if let Some(origin) = origin {
            self.origins.insert(tag, origin);
        }
        let started = Instant::now();
        let due = self.firehose.put_tagged(record, arrival_ms, tag);
        self.times.firehose += started.elapsed();
        if let Some(invocation) = due {
            self.invoke(invocation).await?;
        }
        Ok(())
    }

    /// Processes and delivers everything buffered so far, as the stream's buffers would at
    /// their interval: after this, every record pushed has its outcome and its objects exist.
    pub async fn flush(&mut self) -> Result<(), PipelineError> {
        let started = Instant::now();
        let due = self.firehose.drain();
        self.times.firehose += started.elapsed();
        if let Some(invocation) = due {
            self.invoke(invocation).await?;
        }
        let started = Instant::now();
        let last = self.firehose.flush();
        self.times.firehose += started.elapsed();
        if let Some(object) = last {
            self.deliver(object).await?;
        }
        if let Some(rejected) = self.rejected_input.take() {
            rejected.finish().await?;
        }
        self.wait_for_readers()
    }

    /// Ends the input: flushes every buffer and returns the summary.
    pub async fn finish(mut self) -> Result<(Summary, S, F), PipelineError> {
        self.flush().await?;
        self.readers_here()?;
        match self.readers {
            Readers::Here(store, forward) => Ok((self.summary, store.store, forward.forward)),
            _ => Err(PipelineError::Readers("did not stop".to_owned())),
        }
    }

    /// Keeps input that is not an event under `Error/input/` (one object per run).
    async fn reject_input(
        &mut self,
        event: &[u8],
        error: &metrics_mapping::EventError,
        origin: Option<Origin>,
    ) -> Result<(), PipelineError> {
        if self.rejected_input.is_none() {
            let key = format!("{INPUT_REJECTS_PREFIX}{}", run_stamp(self.now));
            self.rejected_input = Some(self.bucket.dead_letter_file(&key)?);
        }
        let origin = origin.unwrap_or_else(Origin::unknown);
        let source = ObjectRef {
            bucket: crate::origin::INPUT_BUCKET.to_owned(),
            key: origin.input.to_string(),
            size: None,
            sequencer: None,
        };
        let letter = DeadLetter::for_record(
            Stage::Rules,
            ReasonCode::new(error.code()),
            error.to_string(),
            &source,
            Some(origin.line as usize),
            Some(event),
        );
        if let Some(sink) = &mut self.rejected_input {
            sink.push(&letter).await?;
        }
        Ok(())
    }

    /// Runs the enrich transformer on one processor buffer, as Firehose invokes the Lambda.
    async fn invoke(&mut self, invocation: Invocation) -> Result<(), PipelineError> {
        let tags: Vec<u64> = invocation.tags().collect();
        let started = Instant::now();
        let transformed = match FirehoseEvent::from_json(&invocation.event_json) {
            Ok(event) => Ok(self.enricher.handle(&event, self.now).await),
            Err(error) => Err(error),
        };
        self.times.enrich += started.elapsed();
        let started = Instant::now();
        let completion = match transformed {
            Ok(handled) => match handled {
                Ok(transformed) => {
                    let dropped =
                        self.enricher.rejected_result() == metrics_enrich::firehose::FirehoseResult::Dropped;
                    for (reason, n) in transformed.summary.by_reason() {
                        self.transform_rejected(dropped, ReasonCode::new(reason), n as u64);
                    }
                    self.firehose
                        .complete(invocation, transformed.response.as_bytes())
                }
                Err(e) => {
                    let n = invocation.record_count() as u64;
                    self.transform_rejected(false, ReasonCode::new(e.code()), n);
                    self.firehose
                        .fail_invocation(invocation, "Lambda.FunctionError", &e.to_string())
                }
            },
            Err(_) => {
                let n = invocation.record_count() as u64;
                self.transform_rejected(false, ReasonCode::new("malformed_event"), n);
                self.firehose
                    .fail_invocation(invocation, "Lambda.JsonProcessingException", "malformed event")
            }
        };
        self.times.firehose += started.elapsed();
        self.summary.transform.ok += completion.ok as u64;
        for object in completion.objects {
            self.keep_origins(&object)?;
            self.deliver(object).await?;
        }
        for tag in tags {
            self.origins.remove(&tag);
        }
        Ok(())
    }

    /// Writes where each record of a processing-failed object came from, line by line, beside
    /// it (`State/origins/…`), when any of them came from an input the run knows.
    fn keep_origins(&self, object: &NewObject) -> Result<(), PipelineError> {
        if object.kind != ObjectKind::ProcessingFailed
            || !object.tags.iter().any(|t| self.origins.contains_key(t))
        {
            return Ok(());
        }
        let mut lines = Vec::new();
        for tag in &object.tags {
            // Plain strings and integers always serialise.
            let _ = serde_json::to_writer(&mut lines, &self.origins.get(tag));
            lines.push(b'\n');
        }
        self.bucket.put_deferred(&origins_key(&object.key), &lines)?;
        Ok(())
    }

    /// Counts `n` records the transformer did not pass, dropped or failed by `reason`.
    fn transform_rejected(&mut self, dropped: bool, reason: ReasonCode, n: u64) {
        let (counts, outcome) = if dropped {
            (
                &mut self.summary.transform.dropped,
                Outcome::dropped(Stage::Enrich, reason.clone()),
            )
        } else {
            (
                &mut self.summary.transform.failed,
                Outcome::failed(Stage::Enrich, reason.clone()),
            )
        };
        *counts.entry(reason).or_insert(0) += n;
        self.summary.outcome(outcome, n);
    }

    /// Stores an object; a `Data/` object is then read by the store and forward stages.
    async fn deliver(&mut self, object: NewObject) -> Result<(), PipelineError> {
        let started = Instant::now();
        self.bucket.put_deferred(&object.key, &object.bytes)?;
        self.times.objects += started.elapsed();
        match object.kind {
            ObjectKind::ProcessingFailed => self.summary.objects.processing_failed += 1,
            ObjectKind::Data => {
                self.summary.objects.data += 1;
                match &mut self.readers {
                    Readers::Here(store, forward) => {
                        let read = ObjectRead {
                            records: object.records,
                            stored: store.read(&object).await,
                            forwarded: forward.read(&object).await,
                        };
                        self.count_read(read)?;
                    }
                    Readers::OnThreads(threads) => {
                        threads.send(object)?;
                        while let Some(read) = self.readers.try_result() {
                            self.count_read(read?)?;
                        }
                        let started = Instant::now();
                        while self.readers.full() {
                            match self.readers.next_result() {
                                Some(read) => self.count_read(read?)?,
                                None => break,
                            }
                        }
                        self.times.waiting += started.elapsed();
                    }
                    Readers::Stopped => return Err(PipelineError::Readers("stopped".to_owned())),
                }
            }
        }
        Ok(())
    }

    /// Counts what the readers did with one object.
    fn count_read(&mut self, read: ObjectRead) -> Result<(), PipelineError> {
        self.times.store += read.stored.time;
        self.times.forward += read.forwarded.time;
        match read.stored.report {
            Ok(stored) => self.count_stored(stored),
            Err(error) => {
                let n = read.records as u64;
                *self.summary.store.failed.entry(error.reason.clone()).or_insert(0) += n;
                self.summary
                    .outcome(Outcome::failed(error.stage, error.reason.clone()), n);
                self.summary.stage_errors.push(StageFailure::new(error, n));
            }
        }
        match read.forwarded.report {
            Ok(forwarded) => self.count_forwarded(forwarded),
            Err(error) => {
                let n = read.records as u64;
                self.summary.stage_errors.push(StageFailure::new(error, n));
            }
        }
        read.stored.kept.map_err(PipelineError::from)
    }

    /// Waits until the readers have read every object given to them, and counts it.
    fn wait_for_readers(&mut self) -> Result<(), PipelineError> {
        let started = Instant::now();
        while let Some(read) = self.readers.next_result() {
            self.count_read(read?)?;
        }
        self.times.waiting += started.elapsed();
        Ok(())
    }

    /// Brings readers on a thread back to this one, after they have read everything given.
    fn readers_here(&mut self) -> Result<(), PipelineError> {
        self.wait_for_readers()?;
        self.readers = match std::mem::replace(&mut self.readers, Readers::Stopped) {
            Readers::OnThreads(threads) => {
                let (store, forward) = threads.join()?;
                Readers::Here(store, forward)
            }
            other => other,
        };
        Ok(())
    }

    fn count_stored(&mut self, stored: StoreReport) {
        for (tenant, n) in stored.written {
            *self.summary.store.written.entry(tenant).or_insert(0) += n;
            self.summary.outcome(Outcome::Stored, n);
        }
        self.summary.store.duplicates += stored.duplicates;
        self.summary.outcome(Outcome::Duplicate, stored.duplicates);
        for (reason, n) in stored.dead_lettered {
            self.summary
                .outcome(Outcome::dead_lettered(Stage::Writer, reason.clone()), n);
            *self.summary.store.dead_lettered.entry(reason).or_insert(0) += n;
        }
    }

    fn count_forwarded(&mut self, forwarded: ForwardReport) {
        for (destination, counts) in forwarded.destinations {
            let total = self.summary.forward.entry(destination).or_default();
            total.events += counts.events;
            total.requests += counts.requests;
            for (reason, n) in counts.dead_lettered {
                *total.dead_lettered.entry(reason).or_insert(0) += n;
            }
        }
    }
}

impl<S, F> Pipeline<S, F>
where
    S: StoreStage + Send + 'static,
    F: ForwardStage + Send + 'static,
{
    /// Runs the store and forward stages each on a thread of its own (see the module's docs).
    pub fn reading_on_threads(mut self) -> Result<Self, PipelineError> {
        self.readers = match std::mem::replace(&mut self.readers, Readers::Stopped) {
            Readers::Here(store, forward) => {
                Readers::OnThreads(Box::new(ReaderThreads::start(store, forward)?))
            }
            other => other,
        };
        Ok(self)
    }
}

impl<S, F> Pipeline<S, F> {
    /// Whether the store and forward stages run on threads of their own.
    pub fn reads_on_threads(&self) -> bool {
        matches!(self.readers, Readers::OnThreads(_))
    }
}

impl StageFailure {
    fn new(error: StageError, records: u64) -> StageFailure {
        StageFailure {
            stage: error.stage,
            reason: error.reason,
            key: error.key,
            message: error.message,
            records,
        }
    }
}

/// `YYYY-MM-DDTHHMMSSZ-<pid>.ndjson`: one rejected-input object per run.
fn run_stamp(now: EventTime) -> String {
    let c = now.civil().unwrap_or(metrics_schema::time::Civil::EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}{:02}{:02}Z-{}.ndjson",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        std::process::id()
    )
}
