//! The readers of new `Data/` objects: the store stage and the forward stage, each object
//! read by both in the order the stream delivered it. They run where the pipeline pushes
//! events, or each on a thread of its own (the cores of the machine for a bulk run). Objects
//! given to the threads and not yet read by both are bounded in number and in bytes: the
//! pushing side waits for results when either bound is reached, so memory stays bounded.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, dead_letter_key};
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::Stage;

use crate::bucket::{BucketError, LocalBucket};
use crate::firehose::NewObject;
use crate::pipeline::{
    ForwardReport, ForwardStage, ObjectInput, PipelineError, StageError, StoreReport, StoreStage,
};
use crate::stages::{LOCAL_BUCKET, WRITER_DEAD_LETTER_PREFIX};

/// Objects go to the readers' threads in batches of this many: a thread that has caught up
/// sleeps until its queue has something, and waking it for every object of a run of small ones
/// cost a context switch each (the sample: 25,713 objects, some 24,000 switches).
const BATCH: usize = 4;
/// The most objects given to the threads whose results are not both back. A deep window lets
/// the pushing thread run ahead while a reader is behind, so that both cores stay busy when
/// the three threads take turns (the sample: 2.0 s against 2.4 s with a window of some twenty
/// objects).
const MAX_IN_FLIGHT_OBJECTS: usize = 256;
/// The most bytes (compressed and kept content) of the objects in the window: what bounds memory
/// when objects are large (each is at most one destination buffer).
const MAX_IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;

/// One of the two stages that read every object, with the bucket it keeps dead letters in.
#[allow(async_fn_in_trait)] // each reader is driven by one thread's own runtime
pub(crate) trait ObjectReader {
    type Output;
    async fn read(&mut self, object: &NewObject) -> Self::Output;
}

/// The store stage.
#[derive(Debug)]
pub(crate) struct StoreSide<S> {
    pub(crate) bucket: LocalBucket,
    pub(crate) store: S,
}

/// What the store stage did with one object.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) report: Result<StoreReport, StageError>,
    /// Whether the records of an object the stage failed were kept as dead letters.
    pub(crate) kept: Result<(), BucketError>,
    pub(crate) time: Duration,
}

impl<S: StoreStage> ObjectReader for StoreSide<S> {
    type Output = Stored;

    async fn read(&mut self, object: &NewObject) -> Stored {
        let started = Instant::now();
        let input = ObjectInput::new_object(object);
        let report = self.store.consume(&self.bucket, input).await;
        let kept = match &report {
            Err(error) => keep_unstored(&self.bucket, input, error).await,
            Ok(_) => Ok(()),
        };
        Stored {
            report,
            kept,
            time: started.elapsed(),
        }
    }
}

/// The forward stage.
#[derive(Debug)]
pub(crate) struct ForwardSide<F> {
    pub(crate) bucket: LocalBucket,
    pub(crate) forward: F,
}

/// What the forward stage did with one object.
#[derive(Debug)]
pub(crate) struct Forwarded {
    pub(crate) report: Result<ForwardReport, StageError>,
    pub(crate) time: Duration,
}

impl<F: ForwardStage> ObjectReader for ForwardSide<F> {
    type Output = Forwarded;

    async fn read(&mut self, object: &NewObject) -> Forwarded {
        let started = Instant::now();
        let report = self
            .forward
            .consume(&self.bucket, ObjectInput::new_object(object))
            .await;
        Forwarded {
            report,
            time: started.elapsed(),
        }
    }
}

/// The store stage failed a whole object: a deployed writer would be retried from its queue,
/// then the DLQ. A local run has no queue, so each record becomes a writer dead letter with the
/// stage's reason, where `metrics-lake errors` finds it and `replay` sends it to the store
/// again.
async fn keep_unstored(
    bucket: &LocalBucket,
    object: ObjectInput<'_>,
    error: &StageError,
) -> Result<(), BucketError> {
    let source = ObjectRef {
        bucket: LOCAL_BUCKET.to_owned(),
        key: object.key.to_owned(),
        size: Some(object.size),
        sequencer: None,
    };
    let key = dead_letter_key(WRITER_DEAD_LETTER_PREFIX, &source);
    let mut letters = bucket.dead_letter_file(&key)?;
    for record in metrics_objects::read::records(object.records, &ReadLimits::default()).flatten() {
        let letter = DeadLetter::for_record(
            Stage::Writer,
            error.reason.clone(),
            error.message.clone(),
            &source,
            Some(record.line),
            Some(&record.bytes),
        );
        letters.push(&letter).await?;
    }
    letters.finish().await?;
    Ok(())
}

/// What both stages did with one object.
#[derive(Debug)]
pub(crate) struct ObjectRead {
    pub(crate) records: usize,
    pub(crate) stored: Stored,
    pub(crate) forwarded: Forwarded,
}

/// Where the readers are.
#[derive(Debug)]
pub(crate) enum Readers<S, F> {
    Here(StoreSide<S>, ForwardSide<F>),
    OnThreads(Box<ReaderThreads<S, F>>),
    /// A thread failed; the pipeline cannot go on.
    Stopped,
}

impl<S: StoreStage, F: ForwardStage> Readers<S, F> {
    pub(crate) fn new(bucket: &LocalBucket, store: S, forward: F) -> Self {
        Readers::Here(
            StoreSide {
                bucket: bucket.clone(),
                store,
            },
            ForwardSide {
                bucket: bucket.clone(),
                forward,
            },
        )
    }
}

impl<S, F> Readers<S, F> {
    /// Whether the threads hold as many objects as they may: take a result before sending more.
    pub(crate) fn full(&self) -> bool {
        match self {
            Readers::OnThreads(threads) => threads.full(),
            _ => false,
        }
    }

    /// A result the threads have ready, without waiting.
    pub(crate) fn try_result(&mut self) -> Option<Result<ObjectRead, PipelineError>> {
        match self {
            Readers::OnThreads(threads) => threads.result(false),
            _ => None,
        }
    }

    /// The next result of an object given to the threads, waiting for it; `None` once every
    /// object given has its result.
    pub(crate) fn next_result(&mut self) -> Option<Result<ObjectRead, PipelineError>> {
        match self {
            Readers::OnThreads(threads) => threads.result(true),
            _ => None,
        }
    }
}

/// Each stage on its own thread.
#[derive(Debug)]
pub(crate) struct ReaderThreads<S, F> {
    store: Worker<StoreSide<S>, Stored>,
    forward: Worker<ForwardSide<F>, Forwarded>,
    /// Records and bytes of each object sent whose results have not both been taken, in order.
    in_flight: VecDeque<InFlight>,
    /// The bytes of the objects in `in_flight`.
    in_flight_bytes: usize,
    /// Objects sent but not yet queued: the next batch.
    pending: Vec<Arc<NewObject>>,
}

impl<S, F> ReaderThreads<S, F>
where
    S: StoreStage + Send + 'static,
    F: ForwardStage + Send + 'static,
{
    /// Starts the threads. On failure the readers are gone with them (the pipeline cannot go on).
    pub(crate) fn start(store: StoreSide<S>, forward: ForwardSide<F>) -> Result<Self, PipelineError> {
        Ok(ReaderThreads {
            store: Worker::start("store-reader", store)?,
            forward: Worker::start("forward-reader", forward)?,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            pending: Vec::with_capacity(BATCH),
        })
    }
}

impl<S, F> ReaderThreads<S, F> {
    /// Sends an object to both stages, with the next ones of its batch. It never waits: the
    /// caller takes results while [`ReaderThreads::full`].
    pub(crate) fn send(&mut self, object: NewObject) -> Result<(), PipelineError> {
        let bytes = object.bytes.len() + object.content.as_ref().map_or(0, Vec::len);
        self.in_flight.push_back(InFlight {
            records: object.records,
            bytes,
        });
        self.in_flight_bytes += bytes;
        self.pending.push(Arc::new(object));
        if self.pending.len() >= BATCH {
            self.queue_pending()?;
        }
        Ok(())
    }

    /// Whether the window of objects given and not yet read by both stages is full: the caller
    /// waits for a result before it sends another.
    pub(crate) fn full(&self) -> bool {
        self.in_flight.len() >= MAX_IN_FLIGHT_OBJECTS || self.in_flight_bytes >= MAX_IN_FLIGHT_BYTES
    }

    /// Queues the objects not yet queued for both stages.
    fn queue_pending(&mut self) -> Result<(), PipelineError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        self.store.send(batch.clone())?;
        self.forward.send(batch)
    }

    /// The oldest object's results once both stages have them (waiting for them when `wait`,
    /// after queuing what is not yet queued).
    fn result(&mut self, wait: bool) -> Option<Result<ObjectRead, PipelineError>> {
        let InFlight { records, bytes } = *self.in_flight.front()?;
        if wait && let Err(e) = self.queue_pending() {
            return Some(Err(e));
        }
        let stored = match self.store.output(wait)? {
            Ok(stored) => stored,
            Err(e) => return Some(Err(e)),
        };
        let forwarded = match self.forward.output(wait) {
            Some(Ok(forwarded)) => forwarded,
            Some(Err(e)) => return Some(Err(e)),
            None => {
                self.store.put_back(stored);
                return None;
            }
        };
        self.in_flight.pop_front();
        self.in_flight_bytes -= bytes;
        Some(Ok(ObjectRead {
            records,
            stored,
            forwarded,
        }))
    }

    /// Ends the threads once they have read what they were given, and takes the stages back.
    pub(crate) fn join(mut self) -> Result<(StoreSide<S>, ForwardSide<F>), PipelineError> {
        self.queue_pending()?;
        Ok((self.store.join()?, self.forward.join()?))
    }
}

/// An object given to the threads.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    records: usize,
    bytes: usize,
}

/// One reader on its own thread, with its own single-threaded runtime.
#[derive(Debug)]
struct Worker<R, O> {
    /// Unbounded: what it holds is bounded by the window of objects in flight.
    objects: Option<Sender<Vec<Arc<NewObject>>>>,
    outputs: Receiver<O>,
    /// An output taken before the other stage's for the same object was ready.
    early: Option<O>,
    handle: Option<JoinHandle<R>>,
}

impl<R, O> Worker<R, O>
where
    R: ObjectReader<Output = O> + Send + 'static,
    O: Send + 'static,
{
    fn start(name: &str, mut reader: R) -> Result<Self, PipelineError> {
        let cannot_start = |e: std::io::Error| PipelineError::Readers(format!("could not start: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(cannot_start)?;
        let (objects, queue) = mpsc::channel::<Vec<Arc<NewObject>>>();
        let (done, outputs) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                'objects: while let Ok(batch) = queue.recv() {
                    for object in batch {
                        let output = runtime.block_on(reader.read(&object));
                        if done.send(output).is_err() {
                            break 'objects;
                        }
                    }
                }
                reader
            })
            .map_err(cannot_start)?;
        Ok(Worker {
            objects: Some(objects),
            outputs,
            early: None,
            handle: Some(handle),
        })
    }
}

impl<R, O> Worker<R, O> {
    fn send(&mut self, batch: Vec<Arc<NewObject>>) -> Result<(), PipelineError> {
        match &self.objects {
            Some(objects) if objects.send(batch).is_ok() => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The next output: `None` when `wait` is false and none is ready.
    fn output(&mut self, wait: bool) -> Option<Result<O, PipelineError>> {
        if let Some(early) = self.early.take() {
            return Some(Ok(early));
        }
        let output = if wait {
            self.outputs.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            self.outputs.try_recv()
        };
        match output {
            Ok(output) => Some(Ok(output)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(self.stopped())),
        }
    }

    fn put_back(&mut self, output: O) {
        self.early = Some(output);
    }

    fn join(mut self) -> Result<R, PipelineError> {
        self.objects = None; // the thread's loop ends when its queue closes
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(reader)) => Ok(reader),
            _ => Err(PipelineError::Readers(
                "stopped before the end of the run".to_owned(),
            )),
        }
    }

    /// Why the thread is gone (it panicked: its message went to standard error).
    fn stopped(&mut self) -> PipelineError {
        self.objects = None;
        PipelineError::Readers("stopped unexpectedly (see the message above)".to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;
    use crate::firehose::ObjectKind;
    use std::sync::mpsc::Receiver;

    /// A store stage that reads an object only when given a permit.
    struct Gated(Receiver<()>);

    impl StoreStage for Gated {
        async fn consume(&mut self, _: &LocalBucket, _: ObjectInput<'_>) -> Result<StoreReport, StageError> {
            self.0.recv().unwrap();
            Ok(StoreReport::default())
        }
    }

    struct Free;

    impl ForwardStage for Free {
        async fn consume(
            &mut self,
            _: &LocalBucket,
            _: ObjectInput<'_>,
        ) -> Result<ForwardReport, StageError> {
            Ok(ForwardReport::default())
        }
    }

    fn object(n: usize, bytes: usize) -> NewObject {
        NewObject {
            kind: ObjectKind::Data,
            key: format!("Data/{n}"),
            bytes: vec![0; bytes],
            content: None,
            records: n,
            tags: Vec::new(),
        }
    }

    #[test]
    fn the_window_of_objects_in_flight_is_bounded_by_number_and_by_bytes() {
        let dir = std::env::temp_dir().join(format!("metrics-local-window-{}", std::process::id()));
        let bucket = LocalBucket::open(&dir).unwrap();
        let (permits, gate) = mpsc::channel();
        let mut threads = ReaderThreads::start(
            StoreSide {
                bucket: bucket.clone(),
                store: Gated(gate),
            },
            ForwardSide {
                bucket,
                forward: Free,
            },
        )
        .unwrap();

        for n in 0..MAX_IN_FLIGHT_OBJECTS {
            assert!(!threads.full(), "full after {n} small objects");
            threads.send(object(n, 100)).unwrap();
        }
        assert!(threads.full());
        assert!(threads.result(false).is_none(), "the store has read nothing yet");

        // Two objects read: room for one more by number, but not for one more window of bytes.
        for n in 0..2 {
            permits.send(()).unwrap();
            assert_eq!(threads.result(true).unwrap().unwrap().records, n);
        }
        assert!(!threads.full());
        threads
            .send(object(MAX_IN_FLIGHT_OBJECTS, MAX_IN_FLIGHT_BYTES))
            .unwrap();
        assert!(threads.full());
        assert_eq!(threads.in_flight.len(), MAX_IN_FLIGHT_OBJECTS - 1);

        // Every object comes back once, in order, and the window empties.
        let mut order = Vec::new();
        for _ in 2..=MAX_IN_FLIGHT_OBJECTS {
            permits.send(()).unwrap();
            order.push(threads.result(true).unwrap().unwrap().records);
        }
        assert_eq!(order, (2..=MAX_IN_FLIGHT_OBJECTS).collect::<Vec<_>>());
        assert!(threads.result(true).is_none());
        assert!(!threads.full());
        assert_eq!(threads.in_flight_bytes, 0);
        threads.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
