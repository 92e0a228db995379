//! Reading every failed record out of the bucket's error prefixes, one error object at a time.

use std::collections::HashSet;

use metrics_enrich::Enricher;
use metrics_schema::{EventTime, ReasonCode, Stage};

use super::check::{Verdict, check};
use super::decode::{Corrupt, Line, ProcessingFailed, StoredLetter, lines};
use super::marks::{REPLAYED_PREFIX, ReplayedMark, existing, replayed_mark};
use super::objects::{Listed, Objects, ObjectsError};
use super::record::{CORRUPT_ERROR_RECORD, ErrorRecord, PASSES_NOW, ReplayTo, peek};
use crate::origin::{INPUT_BUCKET, INPUT_REJECTS_PREFIX, ORIGINS_PREFIX, Origin, origins_key, parse_origins};

pub const PROCESSING_FAILED_PREFIX: &str = "Error/processing-failed/";
pub const WRITER_PREFIX: &str = "Error/writer/";
pub const FORWARDER_PREFIX: &str = "Error/forwarder/";

/// The kinds of error object, by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A local run's input that was not an event (`Error/input/`).
    Input,
    /// Firehose's processing-failed records.
    ProcessingFailed,
    /// The writer's dead letters (replays' own dead letters included).
    Writer,
    /// The forwarder's dead letters, per destination.
    Forwarder,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Input,
        ErrorKind::ProcessingFailed,
        ErrorKind::Writer,
        ErrorKind::Forwarder,
    ];

    pub const fn prefix(self) -> &'static str {
        match self {
            ErrorKind::Input => INPUT_REJECTS_PREFIX,
            ErrorKind::ProcessingFailed => PROCESSING_FAILED_PREFIX,
            ErrorKind::Writer => WRITER_PREFIX,
            ErrorKind::Forwarder => FORWARDER_PREFIX,
        }
    }

    pub const fn stage(self) -> Stage {
        match self {
            ErrorKind::Input => Stage::Rules,
            ErrorKind::ProcessingFailed => Stage::Enrich,
            ErrorKind::Writer => Stage::Writer,
            ErrorKind::Forwarder => Stage::Forwarder,
        }
    }
}

/// One error object and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    pub kind: ErrorKind,
    pub key: String,
    pub records: Vec<ErrorRecord>,
    /// The mark an earlier replay left on it.
    pub mark: Option<ReplayedMark>,
}

/// The error objects to read, in order, and the marks and origins beside them (listed once, so
/// no key that may not exist is ever read).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// (position of the kind in the listing, kind, object).
    pub entries: Vec<(usize, ErrorKind, Listed)>,
    marks: HashSet<String>,
    origins: HashSet<String>,
}

/// Reads error objects; processing-failed records are re-checked with `enricher`.
#[derive(Debug)]
pub struct Scanner<'a, O> {
    pub objects: &'a O,
    pub enricher: &'a Enricher,
    /// The clock for the schema's time rules in the re-check.
    pub now: EventTime,
}

impl<O: Objects> Scanner<'_, O> {
    /// Every error object of the `kinds` given, in key order per kind.
    pub async fn list(&self, kinds: &[ErrorKind]) -> Result<Listing, ObjectsError> {
        let mut entries = Vec::new();
        for (position, kind) in kinds.iter().enumerate() {
            for listed in self.objects.list(kind.prefix()).await? {
                entries.push((position, *kind, listed));
            }
        }
        Ok(Listing {
            entries,
            marks: existing(self.objects, REPLAYED_PREFIX).await?,
            origins: existing(self.objects, ORIGINS_PREFIX).await?,
        })
    }

    /// The records of one error object (an object gone since it was listed has none).
    pub async fn read(
        &self,
        listing: &Listing,
        kind: ErrorKind,
        listed: &Listed,
    ) -> Result<ErrorObject, ObjectsError> {
        let bytes = self.objects.get(&listed.key).await?.unwrap_or_default();
        let mark = replayed_mark(self.objects, &listing.marks, &listed.key).await?;
        let mut records = match kind {
            ErrorKind::ProcessingFailed => {
                let origins = match listing.origins.contains(&origins_key(&listed.key)) {
                    true => self.objects.get(&origins_key(&listed.key)).await?,
                    false => None,
                };
                self.processing_failed(&listed.key, &bytes, origins).await?
            }
            _ => {
                let mut records = letters(kind, &listed.key, &bytes, listed.modified);
                self.refuse_gone_tenants(&mut records).await;
                records
            }
        };
        if let Some(mark) = &mark {
            let at = EventTime::parse_rfc3339(&mark.replayed_at).ok();
            let resolved: HashSet<u64> = mark.resolved_lines.iter().copied().collect();
            for record in &mut records {
                record.replayed_at = at;
                record.resolved = resolved.contains(&record.line);
            }
        }
        Ok(ErrorObject {
            kind,
            key: listed.key.clone(),
            records,
            mark,
        })
    }

    /// A dead letter's tenant must still be in the directory for a replay to send it: a
    /// tenant removed since is not written or forwarded again.
    async fn refuse_gone_tenants(&self, records: &mut [ErrorRecord]) {
        for record in records.iter_mut() {
            if !matches!(record.replay_to, ReplayTo::Writer | ReplayTo::Forwarder { .. }) {
                continue;
            }
            let Some(tenant) = &record.tenant_id else { continue };
            match self.enricher.knows_tenant(tenant).await {
                Ok(true) => {}
                Ok(false) => {
                    record.detail = format!(
                        "{}; the tenant directory no longer has tenant {tenant:?}: a replay does not send it",
                        record.detail
                    );
                    record.replay_to = ReplayTo::Refused(ReasonCode::new("unknown_tenant"));
                }
                Err(error) => {
                    record.detail =
                        format!("{}; the tenant directory cannot be read: {error}", record.detail);
                    record.replay_to = ReplayTo::Refused(ReasonCode::new("directory_unavailable"));
                }
            }
        }
    }

    async fn processing_failed(
        &self,
        key: &str,
        bytes: &[u8],
        origins: Option<Vec<u8>>,
    ) -> Result<Vec<ErrorRecord>, ObjectsError> {
        let origins = origins.map(|bytes| parse_origins(&bytes)).unwrap_or_default();
        let decoded: Vec<(u64, Decoded)> = lines::<ProcessingFailed>(bytes)
            .into_iter()
            .map(|Line { line, item }| (line, item.and_then(|w| w.data().map(|data| (w, data)))))
            .collect();
        let checked: Vec<(&[u8], Option<i64>)> = decoded
            .iter()
            .filter_map(|(_, item)| item.as_ref().ok())
            .map(|(wrapper, data)| (data.as_slice(), wrapper.arrival_timestamp))
            .collect();
        let mut verdicts = check(self.enricher, &checked, self.now).await.into_iter();
        let mut records = Vec::with_capacity(decoded.len());
        for (position, (line, item)) in decoded.into_iter().enumerate() {
            let origin = origins.get(position).cloned().flatten();
            let record = match item {
                Err(corrupt) => corrupt_record(Stage::Enrich, key, line, corrupt),
                Ok((wrapper, data)) => {
                    let verdict = verdicts.next().unwrap_or(Verdict::Passes {
                        tenant_id: None,
                        metric: None,
                    });
                    enrich_record(key, line, wrapper, data, verdict, origin)
                }
            };
            records.push(record);
        }
        Ok(records)
    }
}

/// A processing-failed line: Firehose's wrapper and the record's bytes, or why not.
type Decoded = Result<(ProcessingFailed, Vec<u8>), Corrupt>;

fn enrich_record(
    key: &str,
    line: u64,
    wrapper: ProcessingFailed,
    data: Vec<u8>,
    verdict: Verdict,
    origin: Option<Origin>,
) -> ErrorRecord {
    let (tenant, metric) = peek(&data);
    let firehose = format!("Firehose: {} ({})", wrapper.error_code, wrapper.error_message);
    let mut metric = metric;
    let (reason, detail, tenant_id) = match verdict {
        Verdict::Passes {
            tenant_id,
            metric: mapped,
        } => {
            metric = mapped.or(metric);
            (
                ReasonCode::new(PASSES_NOW),
                format!("the current code, mapping and tenant directory accept it: replay it; {firehose}"),
                tenant_id.or(tenant),
            )
        }
        Verdict::Rejected {
            reason,
            detail,
            tenant_id,
        } => (reason, format!("{detail}; {firehose}"), tenant_id.or(tenant)),
    };
    ErrorRecord {
        stage: Stage::Enrich,
        reason,
        detail,
        tenant_id,
        metric,
        destination: None,
        object: key.to_owned(),
        line,
        source: origin.map(|o| format!("{}:{}", o.input, o.line)),
        at: wrapper
            .attempt_ending_timestamp
            .or(wrapper.arrival_timestamp)
            .map(EventTime::from_millis),
        raw: data,
        replay_to: ReplayTo::Enrich {
            arrival_ms: wrapper.arrival_timestamp,
        },
        replayed_at: None,
        resolved: false,
    }
}

/// The records of a dead-letter object (the writer's, the forwarder's, or rejected input).
fn letters(kind: ErrorKind, key: &str, bytes: &[u8], modified: Option<EventTime>) -> Vec<ErrorRecord> {
    lines::<StoredLetter>(bytes)
        .into_iter()
        .map(|Line { line, item }| match item {
            Err(corrupt) => {
                let mut record = corrupt_record(kind.stage(), key, line, corrupt);
                record.at = modified;
                record
            }
            Ok(letter) => letter_record(kind, key, line, letter, modified),
        })
        .collect()
}

fn letter_record(
    kind: ErrorKind,
    key: &str,
    line: u64,
    letter: StoredLetter,
    modified: Option<EventTime>,
) -> ErrorRecord {
    let raw = letter.record_bytes();
    let (peeked_tenant, metric) = raw.as_deref().map(peek).unwrap_or_default();
    let destination = letter.destination.clone().or_else(|| match kind {
        ErrorKind::Forwarder => key
            .strip_prefix(FORWARDER_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .map(|(destination, _)| destination.to_owned()),
        _ => None,
    });
    let replay_to = match (kind, &raw, &destination) {
        (_, None, _) => ReplayTo::Nowhere,
        (ErrorKind::Input, Some(_), _) => ReplayTo::Rules,
        (ErrorKind::Forwarder, Some(_), Some(destination)) => ReplayTo::Forwarder {
            destination: destination.clone(),
        },
        (ErrorKind::Writer, Some(_), _) => ReplayTo::Writer,
        _ => ReplayTo::Nowhere,
    };
    let source = match (letter.source_bucket.as_str(), letter.line) {
        (INPUT_BUCKET, Some(line)) => Some(format!("{}:{line}", letter.source_key)),
        (_, Some(line)) => Some(format!("{}:{line}", letter.source_key)),
        (_, None) if !letter.source_key.is_empty() => Some(letter.source_key.clone()),
        _ => None,
    };
    ErrorRecord {
        stage: Stage::from_name(&letter.stage).unwrap_or(kind.stage()),
        reason: ReasonCode::from(letter.reason),
        detail: letter.detail,
        tenant_id: letter.tenant_id.or(peeked_tenant),
        metric,
        destination,
        object: key.to_owned(),
        line,
        source,
        at: modified,
        raw: raw.unwrap_or_default(),
        replay_to,
        replayed_at: None,
        resolved: false,
    }
}

fn corrupt_record(stage: Stage, key: &str, line: u64, corrupt: Corrupt) -> ErrorRecord {
    ErrorRecord {
        stage,
        reason: ReasonCode::new(CORRUPT_ERROR_RECORD),
        detail: corrupt.detail,
        tenant_id: None,
        metric: None,
        destination: None,
        object: key.to_owned(),
        line,
        source: None,
        at: None,
        raw: corrupt.bytes,
        replay_to: ReplayTo::Nowhere,
        replayed_at: None,
        resolved: false,
    }
}
