//! The readers of new `Data/` objects: the store stage and the forward stage, each object
//! read by both in the order the stream delivered it. They run where the pipeline pushes
//! events, or each on a thread of its own behind a short queue (the cores of the machine for a
//! bulk run, and memory bounded by the queues: the pushing side waits when one is full).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
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
/// Batches waiting for a reader's thread. Each object is at most one destination buffer, gzip
/// compressed: a few MB at worst, so the queues (with the batch being filled and the one being
/// read, some twenty objects) bound memory at some tens of MB.
const QUEUE: usize = 3;

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
    /// Records of each object sent whose results have not both been taken, in order.
    in_flight: VecDeque<usize>,
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
            pending: Vec::with_capacity(BATCH),
        })
    }
}

impl<S, F> ReaderThreads<S, F> {
    /// Sends an object to both stages, with the next ones of its batch; waits while a queue
    /// is full.
    pub(crate) fn send(&mut self, object: NewObject) -> Result<(), PipelineError> {
        self.in_flight.push_back(object.records);
        self.pending.push(Arc::new(object));
        if self.pending.len() >= BATCH {
            self.queue_pending()?;
        }
        Ok(())
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
        let records = *self.in_flight.front()?;
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

/// One reader on its own thread, with its own single-threaded runtime.
#[derive(Debug)]
struct Worker<R, O> {
    objects: Option<SyncSender<Vec<Arc<NewObject>>>>,
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
        let (objects, queue) = mpsc::sync_channel::<Vec<Arc<NewObject>>>(QUEUE);
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
