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

use std::collections::BTreeMap;

use metrics_objects::read::{Records, records};
use metrics_objects::{ReadError, ReadLimits};
use metrics_schema::{EventTime, TenantId, parse_event};
use metrics_store::{MAX_RECORDS_PER_WRITE, StoreRecord, convert};

/// The stage name in dead letters and metrics.
pub const STAGE: &str = "writer";

/// Records of one tenant for one write call (at most 100), with where each came from.
#[derive(Debug, Clone)]
pub struct Batch {
    pub tenant: TenantId<'static>,
    pub records: Vec<StoreRecord>,
    /// Per record: 1-based line in the decompressed object.
    pub lines: Vec<usize>,
    /// Per record: the record as read, kept for a dead letter if the store refuses it.
    pub raws: Vec<Vec<u8>>,
}

/// A line that will not be written: its reason code, a short detail and the text as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub line: usize,
    pub reason: &'static str,
    pub detail: String,
    pub raw: Vec<u8>,
}

/// One window of an object, converted.
#[derive(Debug, Default)]
pub struct Converted {
    /// Batches grouped by tenant (in tenant order), each at most 100 records.
    pub batches: Vec<Batch>,
    /// Lines that failed validation or conversion.
    pub refused: Vec<Refused>,
    /// Records read in this window (valid or not).
    pub records: usize,
}

impl Converted {
    pub fn record_count(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }
}

/// Converts an object window by window, so memory holds one window of records, not the
/// whole object. The last window may end with a read error (a truncated gzip stream, a line
/// over the limit, a gzip bomb): the records before it are still converted.
#[derive(Debug)]
pub struct Converter<'a> {
    records: Records<'a>,
    now: EventTime,
    window: usize,
    error: Option<ReadError>,
    finished: bool,
}

impl<'a> Converter<'a> {
    /// `window` is the most records per [`Converter::next_window`] (at least one batch).
    pub fn new(bytes: &'a [u8], limits: &ReadLimits, now: EventTime, window: usize) -> Self {
        Converter {
            records: records(bytes, limits),
            now,
            window: window.max(MAX_RECORDS_PER_WRITE),
            error: None,
            finished: false,
        }
    }

    /// The next window, or `None` when the object is done.
    pub fn next_window(&mut self) -> Option<Converted> {
        if self.finished {
            return None;
        }
        let mut out = Converted::default();
        let mut by_tenant: BTreeMap<TenantId<'static>, Vec<(usize, Vec<u8>, StoreRecord)>> = BTreeMap::new();
        while out.records < self.window {
            match self.records.next() {
                None => {
                    self.finished = true;
                    break;
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.finished = true;
                    break;
                }
                Some(Ok(source)) => {
                    out.records += 1;
                    match convert_line(&source.bytes, self.now) {
                        Ok((tenant, record)) => {
                            by_tenant
                                .entry(tenant)
                                .or_default()
                                .push((source.line, source.bytes, record))
                        }
                        Err((reason, detail)) => out.refused.push(Refused {
                            line: source.line,
                            reason,
                            detail,
                            raw: source.bytes,
                        }),
                    }
                }
            }
        }
        for (tenant, rows) in by_tenant {
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let mut batch = Batch {
                    tenant: tenant.clone(),
                    records: Vec::with_capacity(MAX_RECORDS_PER_WRITE),
                    lines: Vec::with_capacity(MAX_RECORDS_PER_WRITE),
                    raws: Vec::with_capacity(MAX_RECORDS_PER_WRITE),
                };
                for (line, raw, record) in rows.by_ref().take(MAX_RECORDS_PER_WRITE) {
                    batch.lines.push(line);
                    batch.raws.push(raw);
                    batch.records.push(record);
                }
                out.batches.push(batch);
            }
        }
        if out.records == 0 && self.finished {
            return None;
        }
        Some(out)
    }

    /// The error that ended the object early, once [`Converter::next_window`] returned `None`.
    pub fn take_error(&mut self) -> Option<ReadError> {
        self.error.take()
    }
}

/// Converts a whole object in one window (benchmarks, small objects).
pub fn convert_object(bytes: &[u8], limits: &ReadLimits, now: EventTime) -> (Converted, Option<ReadError>) {
    let mut converter = Converter::new(bytes, limits, now, usize::MAX);
    let converted = converter.next_window().unwrap_or_default();
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
