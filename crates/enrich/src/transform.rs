//! The transform itself, in two steps around the tenant lookup:
//!
//! 1. [`Batch::parse`]: base64-decode every record into one reused arena, map each wrapped
//!    EventBridge event (`{"metric":…,"event":…}`, see `metrics_mapping`) into a unified
//!    event, and validate it with the schema (borrowing from the arenas), so the batch's
//!    distinct tenants are known before any lookup ([`Batch::tenant_ids`]). A wrapped event is
//!    mapped straight into the event's parts when it can be ([`Mapping::map_parts`]), else its
//!    JSON is written and parsed. A record that is not wrapped is a unified event a producer
//!    put directly, validated as it is.
//! 2. [`Batch::respond`]: per record, add `metadata.tenant_name`, `metadata.environment` and
//!    `ingest_time` (Firehose's arrival time), write compact JSON plus `\n`, base64 it into the
//!    response; anything else echoes the original data with the policy's result.
//!
//! With a tenants file the names are known up front, and [`respond_each`] does both steps one
//! record at a time instead.
//!
//! No network, no clock: `now` and the names come in as arguments.

use std::borrow::Cow;

use base64_simd::STANDARD as BASE64;
use metrics_mapping::{MapError, Mapping, is_wrapped};
use metrics_schema::json::TopLevel;
use metrics_schema::limits::{MAX_DIMENSIONS, MAX_VALUE_BYTES};
use metrics_schema::{Dimension, EventTime, Invalid, Reason, TenantId, UnifiedEvent, parse_event, validate};
use serde::Deserialize;

use crate::config::InvalidRecordPolicy;
use crate::directory::{TenantNames, check_tenant_name};
use crate::firehose::{FirehoseRecord, FirehoseResponse, ResponseWriter};
use crate::reason::RejectReason;

/// Lambda's synchronous response limit: 6 MiB.
pub const MAX_RESPONSE_BYTES: usize = 6_291_456;

/// Dimension added from the tenant directory.
pub const TENANT_NAME: &str = "tenant_name";
/// Dimension added from `ENVIRONMENT`.
pub const ENVIRONMENT: &str = "environment";

/// What a batch is transformed with.
#[derive(Debug, Clone, Copy)]
pub struct Context<'c> {
    pub environment: &'c str,
    pub policy: InvalidRecordPolicy,
    /// What wrapped events are mapped with.
    pub mapping: &'c Mapping,
}

/// A record that was not enriched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Position in the input (and the response).
    pub index: usize,
    pub reason: RejectReason,
    /// The record's tenant id when it has a valid one.
    pub tenant: Option<String>,
    /// What broke, without the payload (at most a bounded field name).
    pub detail: String,
}

/// Counts per outcome, and every rejection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: usize,
    pub ok: usize,
    pub rejected: Vec<Rejected>,
}

impl Summary {
    /// Rejections per reason code, in code order.
    pub fn by_reason(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.rejected {
            *counts.entry(r.reason.code()).or_insert(0) += 1;
        }
        counts
    }
}

/// The response and what happened.
#[derive(Debug)]
pub struct Transformed {
    pub response: FirehoseResponse,
    pub summary: Summary,
}

/// A batch that cannot be answered; the invocation fails and Firehose retries it.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(
        "the response would be {bytes} bytes for {records} records, over Lambda's 6,291,456-byte \
         limit: lower the Firehose processor buffer size (see the metrics-enrich README)"
    )]
    ResponseTooLarge { bytes: usize, records: usize },
}

enum Parsed<'a> {
    Valid(UnifiedEvent<'a>),
    Rejected {
        reason: RejectReason,
        detail: String,
        /// The record's tenant when it still carries a valid one, for the log line.
        tenant: Option<String>,
    },
}

/// One record's bytes after decoding (and mapping, when it is a wrapped event).
enum Payload<'a> {
    NotBase64,
    /// A unified event as the producer put it.
    Unified(&'a [u8]),
    /// The parts of the unified event a wrapped event (`record`) maps to, borrowing from
    /// `source` (the record's text) and the mapping.
    Parts {
        parts: TopLevel<'a>,
        source: &'a str,
        record: &'a [u8],
    },
    /// The unified event a wrapped event maps to.
    Mapped(&'a [u8]),
    /// Why the mapping refused a wrapped event.
    Unmapped(MapError),
}

/// Decoded records, borrowing from the event and the arenas.
pub struct Decoded<'a> {
    records: &'a [FirehoseRecord<'a>],
    mapping: &'a Mapping,
    payloads: Vec<Payload<'a>>,
}

impl std::fmt::Debug for Decoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("records", &self.records.len())
            .finish()
    }
}

impl<'a> Decoded<'a> {
    /// Decodes every record into `arena`, and maps every wrapped event into its parts, or
    /// when it cannot be, its JSON into `mapped` (both cleared first, reused across
    /// invocations).
    pub fn new(
        records: &'a [FirehoseRecord<'a>],
        mapping: &'a Mapping,
        arena: &'a mut Vec<u8>,
        mapped: &'a mut Vec<u8>,
    ) -> Decoded<'a> {
        arena.clear();
        mapped.clear();
        // Upper bound of the decoded size, so the arena is allocated once.
        arena.reserve(records.iter().map(|r| r.data.len() / 4 * 3 + 3).sum());
        let mut spans = Vec::with_capacity(records.len());
        for record in records {
            let start = arena.len();
            match BASE64.decode_append(record.data.as_bytes(), arena) {
                Ok(()) => spans.push(Some(start..arena.len())),
                Err(_) => {
                    arena.truncate(start);
                    spans.push(None);
                }
            }
        }
        let arena: &'a [u8] = arena;
        let mut one = Vec::new();
        let mut forms = Vec::with_capacity(records.len());
        for span in &spans {
            let form = match span.clone().map(|span| &arena[span]) {
                Some(bytes) if is_wrapped(bytes) => match mapping.map_parts(bytes) {
                    Some((parts, source)) => Form::Parts(parts, source),
                    None => match mapping.map_record(bytes, &mut one) {
                        Ok(()) => {
                            let start = mapped.len();
                            mapped.extend_from_slice(&one);
                            Form::Written(start..mapped.len())
                        }
                        Err(error) => Form::Unmapped(error),
                    },
                },
                _ => Form::AsIs,
            };
            forms.push(form);
        }
        let mapped: &'a [u8] = mapped;
        let payloads = spans
            .into_iter()
            .zip(forms)
            .map(|(span, form)| match (span.map(|span| &arena[span]), form) {
                (None, _) => Payload::NotBase64,
                (Some(record), Form::Parts(parts, source)) => Payload::Parts {
                    parts,
                    source,
                    record,
                },
                (Some(_), Form::Written(unified)) => Payload::Mapped(&mapped[unified]),
                (Some(original), Form::AsIs) => Payload::Unified(original),
                (Some(_), Form::Unmapped(error)) => Payload::Unmapped(error),
            })
            .collect();
        Decoded {
            records,
            mapping,
            payloads,
        }
    }

    /// Parses every record, so the batch's tenants are known before they are looked up.
    /// `now` is the clock for the schema's future-time rule, read once per batch.
    pub fn parse(self, now: EventTime) -> Batch<'a> {
        let mapping = self.mapping;
        let parsed = self
            .payloads
            .into_iter()
            .map(|payload| parse_one(payload, now, mapping))
            .collect();
        Batch {
            records: self.records,
            parsed,
        }
    }
}

/// Decodes, maps, parses, enriches and writes each record in turn, when the names are known up
/// front (a tenants file). Each record is decoded into `payload` (and a wrapped event mapped
/// into `mapped`), buffers reused from record to record, so it is still in cache while it is
/// parsed, written back and encoded. The response is built in `buffer` (cleared first; its
/// allocation is kept).
#[allow(clippy::too_many_arguments)] // the reused buffers are the point
pub fn respond_each(
    records: &[FirehoseRecord<'_>],
    now: EventTime,
    names: &impl TenantNames,
    ctx: &Context<'_>,
    payload: &mut Vec<u8>,
    mapped: &mut Vec<u8>,
    json: &mut Vec<u8>,
    buffer: Vec<u8>,
) -> Result<Transformed, TransformError> {
    let mut response = Response::new(records, buffer);
    for (index, record) in records.iter().enumerate() {
        payload.clear();
        let decoded = match BASE64.decode_append(record.data.as_bytes(), payload) {
            Err(_) => Payload::NotBase64,
            Ok(()) if is_wrapped(payload) => match ctx.mapping.map_parts(payload) {
                Some((parts, source)) => Payload::Parts {
                    parts,
                    source,
                    record: payload,
                },
                None => match ctx.mapping.map_record(payload, mapped) {
                    Ok(()) => Payload::Mapped(mapped),
                    Err(error) => Payload::Unmapped(error),
                },
            },
            Ok(()) => Payload::Unified(payload),
        };
        response.push(
            index,
            record,
            parse_one(decoded, now, ctx.mapping),
            names,
            ctx,
            json,
        );
    }
    response.finish()
}

/// A record's parsed event, or why it has none. A wrapped event's mapped output is validated
/// exactly like a unified event a producer put.
fn parse_one<'a>(payload: Payload<'a>, now: EventTime, mapping: &Mapping) -> Parsed<'a> {
    let bytes = match payload {
        Payload::NotBase64 => {
            return Parsed::Rejected {
                reason: RejectReason::NotBase64,
                detail: "data is not base64".to_owned(),
                tenant: None,
            };
        }
        Payload::Unmapped(error) => {
            return Parsed::Rejected {
                reason: RejectReason::Mapping(error.reason),
                detail: error.detail,
                tenant: None,
            };
        }
        Payload::Parts {
            parts,
            source,
            record,
        } => {
            return match validate(parts, source, now) {
                Ok(event) => Parsed::Valid(event),
                // Rare: the tenant for the log line is read as from the written event.
                Err(Invalid { reason, detail }) => Parsed::Rejected {
                    reason: reason.into(),
                    detail,
                    tenant: written_tenant(mapping, record),
                },
            };
        }
        Payload::Unified(bytes) | Payload::Mapped(bytes) => bytes,
    };
    match parse_event(bytes, now) {
        Ok(event) => Parsed::Valid(event),
        Err(Invalid { reason, detail }) => Parsed::Rejected {
            reason: reason.into(),
            detail,
            tenant: probe_tenant(bytes).map(|t| t.as_str().to_owned()),
        },
    }
}

/// The tenant of a wrapped event the schema rejected, probed in the unified event's JSON as
/// for any other rejected record.
fn written_tenant(mapping: &Mapping, record: &[u8]) -> Option<String> {
    let mut unified = Vec::new();
    mapping.map_record(record, &mut unified).ok()?;
    probe_tenant(&unified).map(|t| t.as_str().to_owned())
}

/// What a wrapped event was mapped into, before the arenas are read-only.
enum Form<'a> {
    /// Not wrapped.
    AsIs,
    Parts(TopLevel<'a>, &'a str),
    /// The span of its JSON in `mapped`.
    Written(std::ops::Range<usize>),
    Unmapped(MapError),
}

/// Decoded and parsed records, borrowing from the event and the arena.
pub struct Batch<'a> {
    records: &'a [FirehoseRecord<'a>],
    parsed: Vec<Parsed<'a>>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("records", &self.records.len())
            .finish()
    }
}

impl<'a> Batch<'a> {
    /// Decodes (and maps) every record and parses it: [`Decoded::new`] then
    /// [`Decoded::parse`].
    pub fn parse(
        records: &'a [FirehoseRecord<'a>],
        mapping: &'a Mapping,
        arena: &'a mut Vec<u8>,
        mapped: &'a mut Vec<u8>,
        now: EventTime,
    ) -> Batch<'a> {
        Decoded::new(records, mapping, arena, mapped).parse(now)
    }

    /// The distinct tenant ids of the valid records, sorted.
    pub fn tenant_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .parsed
            .iter()
            .filter_map(|p| match p {
                Parsed::Valid(event) => Some(event.tenant_id.as_str()),
                Parsed::Rejected { .. } => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Enriches every valid record with a known tenant and writes the whole response into
    /// `buffer` (cleared first; its allocation is kept). `json` is a reusable buffer for one
    /// record's JSON.
    pub fn respond(
        self,
        names: &impl TenantNames,
        ctx: &Context<'_>,
        json: &mut Vec<u8>,
        buffer: Vec<u8>,
    ) -> Result<Transformed, TransformError> {
        let mut response = Response::new(self.records, buffer);
        for (index, (record, parsed)) in self.records.iter().zip(self.parsed).enumerate() {
            response.push(index, record, parsed, names, ctx, json);
        }
        response.finish()
    }
}

/// The response being written: one entry per record, in order, and what happened.
struct Response {
    writer: ResponseWriter,
    summary: Summary,
}

impl Response {
    fn new(records: &[FirehoseRecord<'_>], buffer: Vec<u8>) -> Self {
        // Enrichment grows an Ok record by a few percent; reserve that once.
        let input: usize = records
            .iter()
            .map(|r| r.record_id.len() + r.data.len() + 48)
            .sum();
        Response {
            writer: ResponseWriter::in_buffer(buffer, input + input / 8 + 64),
            summary: Summary {
                records: records.len(),
                ..Summary::default()
            },
        }
    }

    /// Adds record `index`: enriched when it is valid and its tenant is known, else echoed with
    /// the policy's result.
    fn push(
        &mut self,
        index: usize,
        record: &FirehoseRecord<'_>,
        parsed: Parsed<'_>,
        names: &impl TenantNames,
        ctx: &Context<'_>,
        json: &mut Vec<u8>,
    ) {
        let outcome = match parsed {
            Parsed::Valid(event) => {
                let tenant = event.tenant_id.clone();
                enrich(event, names, ctx, record, json)
                    .map_err(|invalid| (invalid, Some(tenant.as_str().to_owned())))
            }
            Parsed::Rejected {
                reason,
                detail,
                tenant,
            } => Err((Rejection { reason, detail }, tenant)),
        };
        match outcome {
            Ok(()) => {
                self.summary.ok += 1;
                self.writer.push_ok(&record.record_id, json);
            }
            Err((rejection, tenant)) => {
                self.writer
                    .push_original(&record.record_id, ctx.policy.result(), &record.data);
                self.summary.rejected.push(Rejected {
                    index,
                    reason: rejection.reason,
                    tenant,
                    detail: rejection.detail,
                });
            }
        }
    }

    fn finish(self) -> Result<Transformed, TransformError> {
        let bytes = self.writer.len();
        if bytes > MAX_RESPONSE_BYTES {
            return Err(TransformError::ResponseTooLarge {
                bytes,
                records: self.summary.records,
            });
        }
        let response = self.writer.finish();
        Ok(Transformed {
            response,
            summary: self.summary,
        })
    }
}

struct Rejection {
    reason: RejectReason,
    detail: String,
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Rejection {
            reason: invalid.reason.into(),
            detail: invalid.detail,
        }
    }
}

/// Adds the enrichment to one valid event and writes it as one JSON line into `out`.
fn enrich<'e>(
    mut event: UnifiedEvent<'e>,
    names: &'e impl TenantNames,
    ctx: &Context<'e>,
    record: &FirehoseRecord<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Rejection> {
    let Some(name) = names.name(event.tenant_id.as_str()) else {
        return Err(Rejection {
            reason: RejectReason::UnknownTenant,
            detail: "the tenant directory does not know this tenant".to_owned(),
        });
    };
    if !check_tenant_name(name) {
        return Err(Rejection {
            reason: RejectReason::InvalidTenantName,
            detail: "the directory's name for this tenant is empty, over 64 bytes or has control characters"
                .to_owned(),
        });
    }
    put_dimensions(&mut event, [(TENANT_NAME, name), (ENVIRONMENT, ctx.environment)])?;
    if let Some(ms) = record.approximate_arrival_timestamp.0 {
        event.ingest_time = Some(EventTime::from_millis(ms));
    }
    out.clear();
    event.write_json(out);
    out.push(b'\n');
    Ok(())
}

/// Sets the dimensions the pipeline owns: replaces the producer's value if there is one (the
/// directory and the deployment are the authority for these), else appends it, within the
/// schema's limits. One pass over the measures and one over the dimensions for all of them.
fn put_dimensions<'e, const N: usize>(
    event: &mut UnifiedEvent<'e>,
    owned: [(&'static str, &'e str); N],
) -> Result<(), Invalid> {
    let is_owned = |name: &str| owned.iter().position(|(owned, _)| *owned == name);
    if let Some(clash) = event.measures.iter().find_map(|m| is_owned(&m.name)) {
        let name = owned[clash].0;
        return Err(Invalid::new(
            Reason::NameClash,
            format!("{name} is both a dimension and a measure"),
        ));
    }
    if let Some((name, _)) = owned.iter().find(|(_, value)| value.len() > MAX_VALUE_BYTES) {
        return Err(Invalid::new(
            Reason::ValueTooLong,
            format!("metadata.{name} is over 2048 bytes"),
        ));
    }
    let mut present = [false; N];
    for dimension in &mut event.dimensions {
        if let Some(i) = is_owned(&dimension.name) {
            dimension.value = Cow::Borrowed(owned[i].1);
            present[i] = true;
        }
    }
    for (i, (name, value)) in owned.into_iter().enumerate() {
        if present[i] {
            continue;
        }
        if event.dimensions.len() >= MAX_DIMENSIONS {
            return Err(Invalid::new(
                Reason::TooManyDimensions,
                format!("adding metadata.{name} would make more than 128 dimensions"),
            ));
        }
        event.dimensions.push(Dimension {
            name: Cow::Borrowed(name),
            value: Cow::Borrowed(value),
        });
    }
    Ok(())
}

/// The tenant of a record the schema rejected, when it still carries a valid one, so the log
/// line can name it. Only run for rejected records; anything odd gives `None`.
fn probe_tenant(payload: &[u8]) -> Option<TenantId<'_>> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        metadata: ProbeMetadata<'a>,
    }
    #[derive(Deserialize)]
    struct ProbeMetadata<'a> {
        #[serde(borrow)]
        tenant_id: Cow<'a, str>,
    }
    let probe: Probe<'_> = serde_json::from_slice(payload).ok()?;
    TenantId::parse(probe.metadata.tenant_id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firehose::ArrivalTime;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use std::collections::HashMap;

    #[test]
    fn probe_finds_a_valid_tenant_only() {
        let probe = |json: &str| probe_tenant(json.as_bytes()).map(|t| t.as_str().to_owned());
        assert_eq!(
            probe(r#"{"metadata":{"tenant_id":"acme"},"data":7}"#).as_deref(),
            Some("acme")
        );
        assert_eq!(probe(r#"{"metadata":{"tenant_id":"a b"}}"#), None);
        assert_eq!(probe(r#"{"metadata":[]}"#), None);
        assert_eq!(probe("not json"), None);
    }

    #[test]
    fn producer_values_of_pipeline_dimensions_are_replaced_in_place() {
        let record = FirehoseRecord {
            record_id: "r".into(),
            approximate_arrival_timestamp: ArrivalTime(Some(5)),
            data: STANDARD
                .encode(
                    r#"{"metric_name":"m","metadata":{"tenant_id":"acme","environment":"spoofed","x":"y"},"data":{"event_time":1}}"#,
                )
                .into(),
        };
        let records = [record];
        let (mut arena, mut mapped) = (Vec::new(), Vec::new());
        let mapping = Mapping::default();
        let batch = Batch::parse(
            &records,
            &mapping,
            &mut arena,
            &mut mapped,
            EventTime::from_millis(10),
        );
        let names: HashMap<String, String> = [("acme".to_string(), "Acme".to_string())].into();
        let ctx = Context {
            environment: "prod",
            policy: InvalidRecordPolicy::Fail,
            mapping: &mapping,
        };
        let out = batch.respond(&names, &ctx, &mut Vec::new(), Vec::new()).unwrap();
        let response: serde_json::Value = serde_json::from_slice(out.response.as_bytes()).unwrap();
        let data = STANDARD
            .decode(response["records"][0]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&data).unwrap(),
            "{\"metric_name\":\"m\",\"metadata\":{\"tenant_id\":\"acme\",\"environment\":\"prod\",\"x\":\"y\",\
             \"tenant_name\":\"Acme\"},\"data\":{\"event_time\":1},\"ingest_time\":5}\n"
        );
    }
}
