//! Re-checking records Firehose's processor failed with the current code, mapping and tenant
//! directory: Firehose keeps no reason, and a fix may have changed the verdict since.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use metrics_enrich::Enricher;
use metrics_enrich::firehose::{ArrivalTime, FirehoseEvent, FirehoseRecord};
use metrics_schema::{EventTime, ReasonCode};

/// Records per check, kept under the processor's 1 MB buffer the way Firehose batches them.
const CHECK_BATCH_BYTES: usize = 1_000_000;

/// The current verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The transform now returns `Ok` for it: the tenant and metric of the unified event it
    /// becomes.
    Passes {
        tenant_id: Option<String>,
        metric: Option<String>,
    },
    Rejected {
        reason: ReasonCode,
        detail: String,
        tenant_id: Option<String>,
    },
}

/// Runs the enrich transform on `records` (each with its arrival time), in batches, and
/// returns one verdict per record, in order.
pub async fn check(enricher: &Enricher, records: &[(&[u8], Option<i64>)], now: EventTime) -> Vec<Verdict> {
    let mut verdicts = Vec::with_capacity(records.len());
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < records.len() && (end == start || bytes + records[end].0.len() <= CHECK_BATCH_BYTES) {
            bytes += records[end].0.len();
            end += 1;
        }
        verdicts.extend(check_batch(enricher, &records[start..end], now).await);
        start = end;
    }
    verdicts
}

/// Every record as passing, with the tenant and metric of its output where the response has
/// one (rejected records are overwritten by the caller).
fn passing(response: &[u8], records: usize) -> Vec<Verdict> {
    #[derive(serde::Deserialize)]
    struct Response {
        records: Vec<Record>,
    }
    #[derive(serde::Deserialize)]
    struct Record {
        data: String,
    }
    let outputs = serde_json::from_slice::<Response>(response)
        .map(|r| r.records)
        .unwrap_or_default();
    (0..records)
        .map(|i| {
            let unified = outputs
                .get(i)
                .and_then(|r| B64.decode(&r.data).ok())
                .unwrap_or_default();
            let (tenant_id, metric) = super::record::peek(&unified);
            Verdict::Passes { tenant_id, metric }
        })
        .collect()
}

async fn check_batch(enricher: &Enricher, records: &[(&[u8], Option<i64>)], now: EventTime) -> Vec<Verdict> {
    let event = FirehoseEvent {
        records: records
            .iter()
            .enumerate()
            .map(|(i, (data, arrival))| {
                FirehoseRecord::new(format!("{i}"), ArrivalTime(*arrival), B64.encode(data))
            })
            .collect(),
    };
    match enricher.handle(&event, now).await {
        Ok(transformed) => {
            let mut verdicts = passing(transformed.response.as_bytes(), records.len());
            for rejected in transformed.summary.rejected {
                if let Some(verdict) = verdicts.get_mut(rejected.index) {
                    *verdict = Verdict::Rejected {
                        reason: ReasonCode::new(rejected.reason.code()),
                        detail: rejected.detail,
                        tenant_id: rejected.tenant,
                    };
                }
            }
            verdicts
        }
        // The whole batch failed (the directory is unreachable): every record says why.
        Err(error) => records
            .iter()
            .map(|_| Verdict::Rejected {
                reason: ReasonCode::new(error.code()),
                detail: error.to_string(),
                tenant_id: None,
            })
            .collect(),
    }
}
