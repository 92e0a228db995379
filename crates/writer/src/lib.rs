//! The store writer: Firehose's S3 batches into one table per tenant.
//!
//! - This module is the pure core: an object's bytes into per-tenant batches of at most 100
//!   records, plus the lines that cannot be written and why. No network, no clock (the caller
//!   passes `now`).
//! - [`write`]: a converted object into any [`metrics_store::Store`], with bounded
//!   concurrency, into one [`write::ObjectReport`] (what the local pipeline calls).
//! - [`handler`]: the Lambda: S3 or SQS triggers, S3 reads, dead letters, `batchItemFailures`.
//! - [`config`]: environment variables, read once.
//! - [`emf`]: CloudWatch embedded-metric-format counts per outcome and reason.

pub mod config;
pub mod emf;
pub mod handler;
pub mod write;

use std::collections::{HashMap, VecDeque};

use metrics_objects::read::{Records, records};
use metrics_objects::{ReadError, ReadLimits};
use metrics_schema::{EventTime, TenantId, parse_event};
use metrics_store::{MAX_RECORDS_PER_WRITE, StoreRecord, convert};

/// The stage name in dead letters and metrics.
pub const STAGE: &str = metrics_schema::Stage::Writer.name();

/// Records of one tenant for one write call (at most 100), with where each came from.
#[derive(Debug, Clone)]
pub struct Batch {
    pub tenant: TenantId<'static>,
    pub records: Vec<StoreRecord>,
    /// Per record: 1-based line in the decompressed object.
    pub lines: Vec<usize>,
    /// Per record: 1-based position among the object's records. The text is not kept (it
    /// would double the memory held); [`record_texts`] reads it back for the few records the
    /// store refuses.
    pub ordinals: Vec<usize>,
}

/// A line that will not be written: its reason code, a short detail and the text as read
/// (`None` for a line over the size limit, which is never held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub line: usize,
    pub reason: &'static str,
    pub detail: String,
    pub raw: Option<Vec<u8>>,
}

/// What [`Converter::next_piece`] hands out, in object order as far as batching allows.
#[derive(Debug)]
pub enum Piece {
    /// Records of one tenant, ready to write.
    Batch(Batch),
    /// A line that will not be written.
    Refused(Refused),
}

/// A whole object, converted (tests and small objects; the writer streams with
/// [`Converter`] instead).
#[derive(Debug, Default)]
pub struct Converted {
    /// Batches of at most 100 records, each of one tenant.
    pub batches: Vec<Batch>,
    /// Lines that failed validation or conversion.
    pub refused: Vec<Refused>,
    /// Records read (valid or not).
    pub records: usize,
}

impl Converted {
    pub fn record_count(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }
}

/// Converts an object as a stream of batches: each tenant's records collect in a batch that
/// is handed out as soon as it holds 100, so write calls are full and start while the rest of
/// the object is still being read. Partial batches are handed out at the end of the object, or
/// earlier when they hold `max_buffered` records together, which bounds memory.
///
/// As an iterator it yields batches and collects the lines that fail in
/// [`Converter::refused`]; [`Converter::next_piece`] hands those out one by one instead, so
/// that nothing grows with the number of bad lines. A line over the size limit is refused like
/// an invalid one; any other read error (a truncated gzip stream, a gzip bomb) ends the object
/// after the records before it.
#[derive(Debug)]
pub struct Converter<'a> {
    records: Records<'a>,
    now: EventTime,
    max_buffered: usize,
    /// Tenant id → index in `pending`.
    tenants: HashMap<String, usize>,
    /// One partial batch per tenant seen.
    pending: Vec<Batch>,
    buffered: usize,
    ready: VecDeque<Batch>,
    /// Lines that will not be written, in object order.
    pub refused: Vec<Refused>,
    /// Records read so far (valid or not).
    pub records_read: usize,
    error: Option<ReadError>,
    finished: bool,
}

impl<'a> Converter<'a> {
    /// `max_buffered` bounds the records held in partial batches (at least one batch).
    pub fn new(bytes: &'a [u8], limits: &ReadLimits, now: EventTime, max_buffered: usize) -> Self {
        Converter {
            records: records(bytes, limits),
            now,
            max_buffered: max_buffered.max(MAX_RECORDS_PER_WRITE),
            tenants: HashMap::new(),
            pending: Vec::new(),
            buffered: 0,
            ready: VecDeque::new(),
            refused: Vec::new(),
            records_read: 0,
            error: None,
            finished: false,
        }
    }

    /// Records held in partial batches right now.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The error that ended the object early, once the iterator is done.
    pub fn take_error(&mut self) -> Option<ReadError> {
        self.error.take()
    }

    /// Takes one record into its tenant's batch, or gives it back refused.
    fn accept(&mut self, line: usize, ordinal: usize, raw: Vec<u8>) -> Option<Refused> {
        let converted = parse_event(&raw, self.now)
            .map_err(|e| (e.reason.code(), e.detail))
            .and_then(|event| {
                let record = convert(&event).map_err(|r| (r.reason.code(), r.detail))?;
                let tenant = event.tenant_id.as_str();
                let index = match self.tenants.get(tenant) {
                    Some(&i) => i,
                    None => {
                        let i = self.pending.len();
                        self.tenants.insert(tenant.to_owned(), i);
                        self.pending
                            .push(Batch::new(event.tenant_id.clone().into_owned()));
                        i
                    }
                };
                Ok((index, record))
            });
        match converted {
            Err((reason, detail)) => {
                return Some(Refused {
                    line,
                    reason,
                    detail,
                    raw: Some(raw),
                });
            }
            Ok((index, record)) => {
                let batch = &mut self.pending[index];
                batch.records.push(record);
                batch.lines.push(line);
                batch.ordinals.push(ordinal);
                self.buffered += 1;
                if batch.records.len() == MAX_RECORDS_PER_WRITE {
                    let full = std::mem::replace(batch, Batch::new(batch.tenant.clone()));
                    self.buffered -= full.records.len();
                    self.ready.push_back(full);
                } else if self.buffered >= self.max_buffered {
                    self.flush();
                }
            }
        }
        None
    }

    /// The next batch or refused line; `None` at the end of the object.
    pub fn next_piece(&mut self) -> Option<Piece> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Piece::Batch(batch));
            }
            if self.finished {
                return None;
            }
            match self.records.next() {
                Some(Ok(source)) => {
                    self.records_read += 1;
                    if let Some(refused) = self.accept(source.line, source.ordinal, source.bytes) {
                        return Some(Piece::Refused(refused));
                    }
                }
                Some(Err(e)) if e.is_record_error() => {
                    self.records_read += 1;
                    return Some(Piece::Refused(Refused {
                        line: e.line().unwrap_or(0),
                        reason: e.code(),
                        detail: e.to_string(),
                        raw: None,
                    }));
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.finished = true;
                    self.flush();
                }
                None => {
                    self.finished = true;
                    self.flush();
                }
            }
        }
    }

    /// Hands out every partial batch, in the order tenants were first seen.
    fn flush(&mut self) {
        if self.finished {
            // Nothing more comes: the batches go as they are, with no empty ones in their place.
            self.tenants.clear();
            let partial = self.pending.drain(..).filter(|batch| !batch.records.is_empty());
            self.ready.extend(partial);
        }
        for batch in &mut self.pending {
            if !batch.records.is_empty() {
                let partial = std::mem::replace(batch, Batch::new(batch.tenant.clone()));
                self.ready.push_back(partial);
            }
        }
        self.buffered = 0;
    }
}

impl Iterator for Converter<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        loop {
            match self.next_piece()? {
                Piece::Batch(batch) => return Some(batch),
                Piece::Refused(refused) => self.refused.push(refused),
            }
        }
    }
}

impl Batch {
    /// An empty batch, grown as records come: most objects of a busy stream hold a few
    /// records per tenant, far fewer than a full batch.
    fn new(tenant: TenantId<'static>) -> Self {
        Batch {
            tenant,
            records: Vec::new(),
            lines: Vec::new(),
            ordinals: Vec::new(),
        }
    }
}

/// The texts of the records at `ordinals` (sorted), read again from the object.
pub fn record_texts(bytes: &[u8], limits: &ReadLimits, ordinals: &[usize]) -> HashMap<usize, Vec<u8>> {
    let mut wanted = ordinals.iter().copied().peekable();
    let mut out = HashMap::with_capacity(ordinals.len());
    for record in records(bytes, limits) {
        let Ok(record) = record else { break };
        let Some(&next) = wanted.peek() else { break };
        if record.ordinal == next {
            out.insert(record.ordinal, record.bytes);
            wanted.next();
        }
    }
    out
}

/// Converts a whole object at once (tests, small objects).
pub fn convert_object(bytes: &[u8], limits: &ReadLimits, now: EventTime) -> (Converted, Option<ReadError>) {
    let mut converter = Converter::new(bytes, limits, now, usize::MAX);
    let batches: Vec<Batch> = converter.by_ref().collect();
    let converted = Converted {
        batches,
        refused: std::mem::take(&mut converter.refused),
        records: converter.records_read,
    };
    (converted, converter.take_error())
}

/// One line: validated with the schema, then converted for the store. The error is a stable
/// reason code (the schema's or the store's) and a short detail without the payload.
pub fn convert_line(
    bytes: &[u8],
    now: EventTime,
) -> Result<(TenantId<'static>, StoreRecord), (&'static str, String)> {
    let event = parse_event(bytes, now).map_err(|e| (e.reason.code(), e.detail))?;
    let record = convert(&event).map_err(|r| (r.reason.code(), r.detail))?;
    Ok((event.tenant_id.into_owned(), record))
}
