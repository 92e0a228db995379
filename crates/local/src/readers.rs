//! The readers of new `Data/` objects: the store stage and the forward stage, each object
//! read by both in the order the stream delivered it. They run where the pipeline pushes
//! events, or on a thread of their own behind a short queue (two cores for a bulk run, and
//! memory bounded by the queue: the pushing side waits when it is full).

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, dead_letter_key};
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::Stage;

use crate::bucket::{BucketError, LocalBucket};
use crate::firehose::NewObject;
use crate::pipeline::{ForwardReport, ForwardStage, PipelineError, StageError, StoreReport, StoreStage};
use crate::stages::{LOCAL_BUCKET, WRITER_DEAD_LETTER_PREFIX};

/// Objects waiting for the readers' thread. Each is at most one destination buffer, gzip
/// compressed: a few MB at worst, so the queue bounds memory at some tens of MB.
const QUEUE: usize = 16;

/// The two stages and the bucket they keep dead letters in.
#[derive(Debug)]
pub(crate) struct ObjectReaders<S, F> {
    pub(crate) bucket: LocalBucket,
    pub(crate) store: S,
    pub(crate) forward: F,
}

/// What the readers did with one object.
#[derive(Debug)]
pub(crate) struct ObjectRead {
    pub(crate) records: usize,
    pub(crate) stored: Result<StoreReport, StageError>,
    pub(crate) forwarded: Result<ForwardReport, StageError>,
    /// Whether the records of an object the store stage failed were kept as dead letters.
    pub(crate) kept: Result<(), BucketError>,
    pub(crate) store_time: Duration,
    pub(crate) forward_time: Duration,
}

impl<S: StoreStage, F: ForwardStage> ObjectReaders<S, F> {
    pub(crate) async fn read(&mut self, object: NewObject) -> ObjectRead {
        let started = Instant::now();
        let stored = self.store.consume(&self.bucket, &object.key, &object.bytes).await;
        let kept = match &stored {
            Err(error) => self.keep_unstored(&object, error).await,
            Ok(_) => Ok(()),
        };
        let store_time = started.elapsed();
        let started = Instant::now();
        let forwarded = self
            .forward
            .consume(&self.bucket, &object.key, &object.bytes)
            .await;
        ObjectRead {
            records: object.records,
            stored,
            forwarded,
            kept,
            store_time,
            forward_time: started.elapsed(),
        }
    }

    /// The store stage failed a whole object: a deployed writer would be retried from its
    /// queue, then the DLQ. A local run has no queue, so each record becomes a writer dead
    /// letter with the stage's reason, where `metrics-lake errors` finds it and `replay` sends
    /// it to the store again.
    async fn keep_unstored(&self, object: &NewObject, error: &StageError) -> Result<(), BucketError> {
        let source = ObjectRef {
            bucket: LOCAL_BUCKET.to_owned(),
            key: object.key.clone(),
            size: Some(object.bytes.len() as u64),
            sequencer: None,
        };
        let key = dead_letter_key(WRITER_DEAD_LETTER_PREFIX, &source);
        let mut letters = self.bucket.dead_letter_file(&key)?;
        for record in metrics_objects::read::records(&object.bytes, &ReadLimits::default()).flatten() {
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
}

/// Where the readers are.
#[derive(Debug)]
pub(crate) enum Readers<S, F> {
    Here(ObjectReaders<S, F>),
    OnAThread(ReaderThread<S, F>),
    /// Their thread failed; the pipeline cannot go on.
    Stopped,
}

impl<S, F> Readers<S, F> {
    /// A result the readers' thread has ready, without waiting.
    pub(crate) fn try_result(&mut self) -> Option<Result<ObjectRead, PipelineError>> {
        match self {
            Readers::OnAThread(thread) => thread.try_result(),
            _ => None,
        }
    }

    /// The next result of an object given to the readers' thread, waiting for it; `None`
    /// once every object given has its result.
    pub(crate) fn next_result(&mut self) -> Option<Result<ObjectRead, PipelineError>> {
        match self {
            Readers::OnAThread(thread) => thread.next_result(),
            _ => None,
        }
    }
}

/// The readers on their own thread, each with its own single-threaded runtime.
#[derive(Debug)]
pub(crate) struct ReaderThread<S, F> {
    objects: Option<SyncSender<NewObject>>,
    results: Receiver<ObjectRead>,
    handle: Option<JoinHandle<ObjectReaders<S, F>>>,
    /// Objects sent whose result has not been received.
    in_flight: usize,
}

impl<S, F> ReaderThread<S, F>
where
    S: StoreStage + Send + 'static,
    F: ForwardStage + Send + 'static,
{
    /// Starts the thread. On failure the readers are gone with it (the pipeline cannot go on).
    pub(crate) fn start(mut readers: ObjectReaders<S, F>) -> Result<Self, PipelineError> {
        let cannot_start = |e: std::io::Error| PipelineError::Readers(format!("could not start: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(cannot_start)?;
        let (objects, queue) = mpsc::sync_channel::<NewObject>(QUEUE);
        let (done, results) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("object-readers".to_owned())
            .spawn(move || {
                while let Ok(object) = queue.recv() {
                    let read = runtime.block_on(readers.read(object));
                    if done.send(read).is_err() {
                        break;
                    }
                }
                readers
            });
        Ok(ReaderThread {
            objects: Some(objects),
            results,
            handle: Some(handle.map_err(cannot_start)?),
            in_flight: 0,
        })
    }
}

impl<S, F> ReaderThread<S, F> {
    /// Queues an object; waits while the queue is full.
    pub(crate) fn send(&mut self, object: NewObject) -> Result<(), PipelineError> {
        let sent = match &self.objects {
            Some(objects) => objects.send(object).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.stopped());
        }
        self.in_flight += 1;
        Ok(())
    }

    fn try_result(&mut self) -> Option<Result<ObjectRead, PipelineError>> {
        if self.in_flight == 0 {
            return None;
        }
        match self.results.try_recv() {
            Ok(read) => {
                self.in_flight -= 1;
                Some(Ok(read))
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(self.stopped())),
        }
    }

    fn next_result(&mut self) -> Option<Result<ObjectRead, PipelineError>> {
        if self.in_flight == 0 {
            return None;
        }
        Some(match self.results.recv() {
            Ok(read) => {
                self.in_flight -= 1;
                Ok(read)
            }
            Err(_) => Err(self.stopped()),
        })
    }

    /// Ends the thread once it has read what it was given, and takes the readers back.
    pub(crate) fn join(mut self) -> Result<ObjectReaders<S, F>, PipelineError> {
        self.objects = None; // the thread's loop ends when the queue closes
        let handle = self.handle.take();
        match handle.map(JoinHandle::join) {
            Some(Ok(readers)) => Ok(readers),
            _ => Err(PipelineError::Readers(
                "stopped before the end of the run".to_owned(),
            )),
        }
    }

    /// Why the thread is gone (it panicked: its message went to standard error).
    fn stopped(&mut self) -> PipelineError {
        self.objects = None;
        self.in_flight = 0;
        PipelineError::Readers("stopped unexpectedly (see the message above)".to_owned())
    }
}
