//! One object to every destination: the forwarder's per-object loop, shared by the Lambda
//! ([`crate::handler`]), `metrics-lake run --forward live` and the local outbox.
//!
//! The object is read as a stream, a chunk of records at a time: each chunk is parsed, built
//! into every destination's batches (on one thread per destination: building is pure CPU
//! work) and sent before the next is read, so memory holds one chunk and its requests whatever
//! the object's size. Every record ends, per destination, as accepted, filtered (that
//! destination does not take its metric), dead-lettered with a reason, or deferred (not
//! accepted yet for a transient reason: the object is left incomplete for its trigger to retry,
//! unless the caller has no retry, see [`ForwardOptions::dead_letter_deferred`]).
//!
//! Where dead letters and progress markers go is the [`Ledger`]'s business: S3 in the Lambda,
//! the local bucket locally.

use std::collections::BTreeMap;
use std::future::Future;

use futures_util::future::join_all;
use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink};
use metrics_objects::read::{ReadError, ReadLimits, SourceRecord, records};
use metrics_objects::trigger::ObjectRef;
use metrics_schema::{EventTime, Invalid, ReasonCode, Stage, UnifiedEvent, parse_event};

use crate::deliver::{DeliveryOptions, DeliveryReport, send_built};
use crate::destination::{Destination, DestinationKind};
use crate::payload::{Built, Refusal};
use crate::reason::Reason;

/// Records parsed, built and sent at a time (the first bound reached ends a chunk).
pub const CHUNK_RECORDS: usize = 10_000;
/// Bytes of records parsed, built and sent at a time.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// How to forward an object.
#[derive(Debug, Clone, Copy)]
pub struct ForwardOptions {
    pub delivery: DeliveryOptions,
    pub read_limits: ReadLimits,
    /// Dead-letter events still deferred at the end instead of leaving the object incomplete:
    /// for callers with no queue to retry from (a local run).
    pub dead_letter_deferred: bool,
    /// The clock for the schema's future-time rule.
    pub now: EventTime,
}

/// Where a destination stands with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A marker says an earlier invocation finished it.
    AlreadyDone,
    /// Every event accepted, filtered or dead-lettered, and the ledger has it all.
    Complete,
    /// Something is left for a retry.
    Incomplete,
}

/// One destination's result for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationOutcome {
    pub destination: DestinationKind,
    pub progress: Progress,
    pub accepted: usize,
    pub filtered: usize,
    pub requests: usize,
    pub retries: usize,
    /// Dead letters written, by reason code.
    pub dead_lettered: BTreeMap<ReasonCode, usize>,
    /// Events left for a retry, by reason code.
    pub deferred: BTreeMap<ReasonCode, usize>,
    /// Why the object could not be finished, if it was not.
    pub error: Option<String>,
}

impl DestinationOutcome {
    pub fn new(destination: DestinationKind, progress: Progress) -> DestinationOutcome {
        DestinationOutcome {
            destination,
            progress,
            accepted: 0,
            filtered: 0,
            requests: 0,
            retries: 0,
            dead_lettered: BTreeMap::new(),
            deferred: BTreeMap::new(),
            error: None,
        }
    }

    /// Dead letters written, all reasons together.
    pub fn dead_letters(&self) -> usize {
        self.dead_lettered.values().sum()
    }
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    /// Records read (valid or not).
    pub records: usize,
    /// Records that are not valid unified events.
    pub invalid: usize,
    pub destinations: Vec<DestinationOutcome>,
    /// Why the object was not forwarded at all, when it was not: a replay object for a
    /// destination that is not enabled. It stays incomplete, so its message returns to the
    /// queue and ends in the DLQ, where the alarm and `metrics-lake replay --redrive` find it.
    pub blocked: Option<String>,
}

impl ObjectReport {
    pub fn new(object: &ObjectRef) -> ObjectReport {
        ObjectReport {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            records: 0,
            invalid: 0,
            destinations: Vec::new(),
            blocked: None,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.blocked.is_none()
            && self
                .destinations
                .iter()
                .all(|d| d.progress != Progress::Incomplete)
    }
}

/// A ledger write that failed: the destination stays incomplete, so the object is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LedgerError {
    /// `dead_letter_write_failed` or `marker_write_failed`.
    pub code: &'static str,
    pub message: String,
}

/// Where dead letters and per-destination progress markers are kept.
pub trait Ledger: Sync {
    /// Where one destination's dead letters for one object go, as they arise.
    type Letters: DeadLetterSink + Send;

    /// Whether `destination` finished `object` before. An error reading counts as "not
    /// finished": sending again is harmless (the dedup ids), skipping wrongly is not.
    fn is_done(&self, destination: DestinationKind, object: &ObjectRef) -> impl Future<Output = bool> + Send;

    /// A sink for the destination's dead letters for the object. Finished, they replace any
    /// earlier ones; aborted (the object is retried), nothing of them is visible.
    fn dead_letters(
        &self,
        destination: DestinationKind,
        object: &ObjectRef,
    ) -> Result<Self::Letters, LedgerError>;

    /// Records that the destination is done with the object (after its dead letters).
    fn mark_done(
        &self,
        destination: DestinationKind,
        object: &ObjectRef,
        outcome: &DestinationOutcome,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// Forwards one object to every destination of `destinations` that has not finished it.
/// `fetch` reads the object's bytes; it is not called when every destination is done.
pub async fn forward_object<L, F, B>(
    destinations: &[&dyn Destination],
    ledger: &L,
    object: &ObjectRef,
    fetch: F,
    options: &ForwardOptions,
) -> ObjectReport
where
    L: Ledger,
    F: Future<Output = Result<B, ReadError>>,
    B: AsRef<[u8]>,
{
    let mut report = ObjectReport::new(object);
    let mut pending: Vec<&dyn Destination> = Vec::new();
    for destination in destinations {
        if ledger.is_done(destination.kind(), object).await {
            report
                .destinations
                .push(DestinationOutcome::new(destination.kind(), Progress::AlreadyDone));
        } else {
            pending.push(*destination);
        }
    }
    if pending.is_empty() {
        return report;
    }
    let bytes = match fetch.await {
        Ok(bytes) => bytes,
        Err(error) if error.is_transient() => {
            for destination in pending {
                let mut outcome = DestinationOutcome::new(destination.kind(), Progress::Incomplete);
                outcome.error = Some(error.to_string());
                outcome.deferred.insert(error.code().into(), 1);
                report.destinations.push(outcome);
            }
            return report;
        }
        Err(error) => {
            // Nothing of the object can be read, ever: one object-level dead letter each.
            for destination in pending {
                let mut state = DestinationState::new(destination.kind(), ledger, object);
                state.push(object_dead_letter(object, &error)).await;
                let outcome = state.finish(ledger, object).await;
                report.destinations.push(outcome);
            }
            return report;
        }
    };

    let mut states: Vec<DestinationState<L::Letters>> = pending
        .iter()
        .map(|d| DestinationState::new(d.kind(), ledger, object))
        .collect();
    let mut reader = records(bytes.as_ref(), &options.read_limits);
    let mut read_error = None;
    loop {
        let (chunk, unreadable) = next_chunk(&mut reader, &mut read_error);
        if chunk.is_empty() && unreadable.is_empty() {
            break;
        }
        report.records += chunk.len() + unreadable.len();
        report.invalid += unreadable.len();
        for state in states.iter_mut().filter(|s| !s.stopped) {
            for error in &unreadable {
                state.push(object_dead_letter(object, error)).await;
            }
        }
        let parsed = Parsed::of(&chunk, options.now);
        report.invalid += parsed.invalid.len();
        let active: Vec<(usize, &dyn Destination)> = pending
            .iter()
            .enumerate()
            .filter(|(i, _)| states.get(*i).is_some_and(|s| !s.stopped))
            .map(|(i, d)| (i, *d))
            .collect();
        if active.is_empty() {
            break;
        }
        let builds = build_all(&active, &parsed.events);
        let deliveries = join_all(
            active
                .iter()
                .zip(builds)
                .map(|((_, d), built)| send_built(*d, built, &options.delivery)),
        )
        .await;
        for ((index, _), delivery) in active.iter().zip(deliveries) {
            if let Some(state) = states.get_mut(*index) {
                state.absorb(delivery, object, &chunk, &parsed, options).await;
            }
        }
    }
    drop(reader);
    drop(bytes);
    for (destination, mut state) in pending.iter().zip(states) {
        debug_assert_eq!(destination.kind(), state.outcome.destination);
        if let Some(error) = &read_error {
            state.push(object_dead_letter(object, error)).await;
        }
        let outcome = state.finish(ledger, object).await;
        report.destinations.push(outcome);
    }
    report
}

/// The next records of the object, up to [`CHUNK_RECORDS`] or [`CHUNK_BYTES`], and the
/// records among them that cannot be read (a line over the size limit: reading goes on). An
/// error that ends the stream is kept in `error`.
fn next_chunk(
    reader: &mut impl Iterator<Item = Result<SourceRecord, ReadError>>,
    error: &mut Option<ReadError>,
) -> (Vec<SourceRecord>, Vec<ReadError>) {
    let mut chunk = Vec::new();
    let mut unreadable = Vec::new();
    let mut bytes = 0;
    if error.is_some() {
        return (chunk, unreadable);
    }
    for record in reader.by_ref() {
        match record {
            Ok(record) => {
                bytes += record.bytes.len();
                chunk.push(record);
                if chunk.len() >= CHUNK_RECORDS || bytes >= CHUNK_BYTES {
                    break;
                }
            }
            Err(e) if e.is_record_error() => {
                unreadable.push(e);
                if unreadable.len() >= CHUNK_RECORDS {
                    break;
                }
            }
            Err(e) => {
                *error = Some(e);
                break;
            }
        }
    }
    (chunk, unreadable)
}

/// The events parsed from one chunk, with where each came from.
struct Parsed<'a> {
    events: Vec<UnifiedEvent<'a>>,
    /// For each event, its record's position in the chunk.
    origin: Vec<usize>,
    invalid: Vec<(usize, Invalid)>,
}

impl<'a> Parsed<'a> {
    fn of(records: &'a [SourceRecord], now: EventTime) -> Parsed<'a> {
        let mut parsed = Parsed {
            events: Vec::with_capacity(records.len()),
            origin: Vec::with_capacity(records.len()),
            invalid: Vec::new(),
        };
        for (position, record) in records.iter().enumerate() {
            match parse_event(&record.bytes, now) {
                Ok(event) => {
                    parsed.events.push(event);
                    parsed.origin.push(position);
                }
                Err(invalid) => parsed.invalid.push((position, invalid)),
            }
        }
        parsed
    }
}

/// Below this many events a chunk's batches are built on the calling thread: starting a thread
/// costs more than building a few events' requests (the local pipeline forwards tens of
/// thousands of small objects, and spent most of its time starting threads).
const PARALLEL_BUILD_MIN_EVENTS: usize = 256;

/// Every destination's batches, built on a thread each when there are several and the chunk
/// is large enough to pay for the threads.
fn build_all(destinations: &[(usize, &dyn Destination)], events: &[UnifiedEvent<'_>]) -> Vec<Built> {
    match destinations {
        [] => Vec::new(),
        [(_, only)] => vec![only.build_batches(events)],
        _ if events.len() < PARALLEL_BUILD_MIN_EVENTS => destinations
            .iter()
            .map(|(_, d)| d.build_batches(events))
            .collect(),
        [(_, first), rest @ ..] => std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter()
                .map(|(_, d)| scope.spawn(move || d.build_batches(events)))
                .collect();
            let mut built = vec![first.build_batches(events)];
            for handle in others {
                // A panic while building is a bug: let it surface with its own payload.
                match handle.join() {
                    Ok(b) => built.push(b),
                    Err(payload) => std::panic::resume_unwind(payload),
                }
            }
            built
        }),
    }
}

/// One destination's progress through an object.
struct DestinationState<S> {
    outcome: DestinationOutcome,
    /// Where its dead letters go as they arise; `None` once a letter could not be stored.
    letters: Option<S>,
    /// Dead letters pushed, by reason (they count as dead-lettered once the sink is finished).
    pushed: BTreeMap<ReasonCode, usize>,
    /// Deferred events in a chunk, or a dead letter that could not be stored: the rest of the
    /// object is not sent to this destination in this invocation.
    stopped: bool,
}

impl<S: DeadLetterSink + Send> DestinationState<S> {
    fn new<L: Ledger<Letters = S>>(
        destination: DestinationKind,
        ledger: &L,
        object: &ObjectRef,
    ) -> DestinationState<S> {
        let mut state = DestinationState {
            outcome: DestinationOutcome::new(destination, Progress::Complete),
            letters: None,
            pushed: BTreeMap::new(),
            stopped: false,
        };
        match ledger.dead_letters(destination, object) {
            Ok(sink) => state.letters = Some(sink),
            Err(error) => state.give_up(error.code, error.to_string()),
        }
        state
    }

    /// Leaves the object incomplete for a retry, with the first cause.
    fn give_up(&mut self, code: &'static str, message: String) {
        self.outcome.progress = Progress::Incomplete;
        self.outcome.error.get_or_insert(message);
        *self.outcome.deferred.entry(ReasonCode::new(code)).or_default() += 1;
        self.stopped = true;
    }

    /// Sends one dead letter to the sink, marked with this destination.
    async fn push(&mut self, mut letter: DeadLetter) {
        let Some(sink) = self.letters.as_mut() else {
            return;
        };
        letter.destination = Some(self.outcome.destination.name().to_owned());
        match sink.push(&letter).await {
            Ok(()) => *self.pushed.entry(letter.reason).or_default() += 1,
            Err(error) => {
                if let Some(sink) = self.letters.take() {
                    sink.abort().await;
                }
                self.give_up("dead_letter_write_failed", error.to_string());
            }
        }
    }

    /// Takes one chunk's delivery into the totals and dead letters.
    async fn absorb(
        &mut self,
        delivery: DeliveryReport,
        object: &ObjectRef,
        chunk: &[SourceRecord],
        parsed: &Parsed<'_>,
        options: &ForwardOptions,
    ) {
        self.outcome.accepted += delivery.accepted;
        self.outcome.filtered += delivery.filtered;
        self.outcome.requests += delivery.requests;
        self.outcome.retries += delivery.retries;
        let letter = |position: usize, reason: &Reason, detail: &str| {
            let record = chunk.get(position);
            DeadLetter::for_record(
                Stage::Forwarder,
                reason.code(),
                detail,
                object,
                record.map(|r| r.line),
                record.map(|r| r.bytes.as_slice()),
            )
        };
        for (position, invalid) in &parsed.invalid {
            self.push(letter(
                *position,
                &Reason::Invalid(invalid.reason),
                &invalid.detail,
            ))
            .await;
        }
        let event_letter = |refusal: &Refusal| {
            let position = parsed.origin.get(refusal.index).copied().unwrap_or(usize::MAX);
            let mut l = letter(position, &refusal.reason, &refusal.detail);
            l.tenant_id = parsed
                .events
                .get(refusal.index)
                .map(|e| e.tenant_id.as_str().to_owned());
            l
        };
        for refusal in &delivery.refused {
            self.push(event_letter(refusal)).await;
        }
        if delivery.deferred.is_empty() {
            return;
        }
        if options.dead_letter_deferred {
            for deferred in &delivery.deferred {
                self.push(event_letter(deferred)).await;
            }
            return;
        }
        for deferred in &delivery.deferred {
            *self
                .outcome
                .deferred
                .entry(deferred.reason.code().into())
                .or_default() += 1;
        }
        if let Some(first) = delivery.deferred.first() {
            self.outcome
                .error
                .get_or_insert_with(|| format!("{}: {}", first.reason, first.detail));
        }
        self.outcome.progress = Progress::Incomplete;
        self.stopped = true;
    }

    /// Finishes the dead letters, then writes the marker; when the destination is incomplete
    /// its dead letters are dropped instead, so a retry that succeeds leaves no stale ones.
    async fn finish<L: Ledger<Letters = S>>(mut self, ledger: &L, object: &ObjectRef) -> DestinationOutcome {
        let Some(sink) = self.letters.take() else {
            return self.outcome;
        };
        if self.outcome.progress == Progress::Incomplete {
            sink.abort().await;
            return self.outcome;
        }
        if let Err(error) = sink.finish().await {
            self.give_up("dead_letter_write_failed", error.to_string());
            return self.outcome;
        }
        self.outcome.dead_lettered = std::mem::take(&mut self.pushed);
        let kind = self.outcome.destination;
        if let Err(error) = ledger.mark_done(kind, object, &self.outcome).await {
            // Dead letters are written; only the marker is missing, so a retry resends (harmless).
            self.give_up(error.code, error.to_string());
        }
        self.outcome
    }
}

/// One dead letter for an object (or its rest) that cannot be read.
fn object_dead_letter(object: &ObjectRef, error: &ReadError) -> DeadLetter {
    DeadLetter::for_record(
        Stage::Forwarder,
        error.code(),
        error.to_string(),
        object,
        error.line(),
        None,
    )
}
