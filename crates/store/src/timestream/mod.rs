//! The Amazon Timestream for LiveAnalytics adapter. All SDK mapping lives in this module.
//!
//! - One table per tenant in one database; missing tables are created on the first
//!   `ResourceNotFoundException` (check, then create, 1 create call per second).
//! - Throttling, 5xx, timeouts and connection failures are retried with exponential backoff
//!   and full jitter until the deadline; what is still unwritten is then `Retryable`.
//! - `RejectedRecords` are classified per record ([`classify::rejected_outcome`]); the other
//!   records of that request were written.
//! - A request refused as a whole (`ValidationException`) is split in halves until the
//!   refused records stand alone, so one bad record never takes its neighbours with it.
//! - In AWS the client must use endpoint discovery; against an endpoint override (moto, a
//!   local fake) discovery is off, because moto's `DescribeEndpoints` names the real AWS host.

pub mod classify;
pub mod request;
mod tables;

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_timestreamwrite::Client;
use metrics_schema::TenantId;

use crate::port::{Deadline, MAX_RECORDS_PER_WRITE, RecordOutcome, Store, StoreError, WriteReport};
use crate::reason::RejectReason;
use crate::record::StoreRecord;
use crate::retry::Backoff;
use classify::{Failure, classify, rejected_outcome};
pub use tables::CREATE_INTERVAL;

/// How new tables are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    /// Memory-store retention, hours (default 14 days).
    pub memory_retention_hours: i64,
    /// Magnetic-store retention, days (default 365).
    pub magnetic_retention_days: i64,
    /// Create the database too when it is missing (default: no; the stack creates it).
    pub create_database: bool,
}

impl Default for TableSettings {
    fn default() -> Self {
        TableSettings {
            memory_retention_hours: 14 * 24,
            magnetic_retention_days: 365,
            create_database: false,
        }
    }
}

/// The Timestream adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestreamSettings {
    /// The database holding one table per tenant (default `Metrics`).
    pub database: String,
    pub table: TableSettings,
    /// Retry delays for throttling and transient failures.
    pub backoff: Backoff,
    /// Minimum time between two create calls of this process.
    pub create_interval: Duration,
}

impl Default for TimestreamSettings {
    fn default() -> Self {
        TimestreamSettings {
            database: "Metrics".into(),
            table: TableSettings::default(),
            backoff: Backoff::default(),
            create_interval: CREATE_INTERVAL,
        }
    }
}

/// Writes to Amazon Timestream for LiveAnalytics.
#[derive(Debug)]
pub struct TimestreamStore {
    client: Client,
    settings: TimestreamSettings,
    tables: tables::Tables,
}

impl TimestreamStore {
    /// Builds the client from the SDK config. With an endpoint override (`AWS_ENDPOINT_URL`,
    /// `AWS_ENDPOINT_URL_TIMESTREAM_WRITE`, or one set in code) the client talks to it
    /// directly; otherwise it uses endpoint discovery, as Timestream requires, and a
    /// background task keeps the discovered endpoint fresh.
    pub async fn connect(sdk: &SdkConfig, settings: TimestreamSettings) -> Result<Self, StoreError> {
        let client = Client::new(sdk);
        let overridden =
            sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_TIMESTREAM_WRITE").is_some();
        let client = if overridden {
            client
        } else {
            let (client, reload) = client
                .with_endpoint_discovery_enabled()
                .await
                .map_err(|e| StoreError::Unavailable(format!("endpoint discovery failed: {e}")))?;
            tokio::spawn(reload.reload_task());
            client
        };
        Ok(TimestreamStore::with_client(client, settings))
    }

    /// Uses a ready client (tests, or a caller that built its own).
    pub fn with_client(client: Client, settings: TimestreamSettings) -> Self {
        TimestreamStore {
            client,
            settings,
            tables: tables::Tables::default(),
        }
    }

    pub fn settings(&self) -> &TimestreamSettings {
        &self.settings
    }

    /// One `WriteRecords` request (at most 100 records), retried until the deadline. `Err` is a
    /// `ValidationException` for the request as a whole, with the service's text.
    async fn write_request(
        &self,
        table: &str,
        records: &[StoreRecord],
        deadline: Deadline,
    ) -> Result<WriteReport, String> {
        let n = records.len();
        let prepared = match request::prepare(records) {
            Ok(p) => p,
            Err(e) => {
                return Ok(WriteReport::all(
                    n,
                    RecordOutcome::Rejected {
                        reason: RejectReason::InvalidRecord,
                        detail: e.to_string(),
                    },
                ));
            }
        };
        let mut attempt = 0u32;
        let mut created = false;
        // Reported when the deadline cuts the retries short, so the log says what kept failing.
        let mut last_cause: Option<String> = None;
        let deadline_passed = |during: &str, last: &Option<String>| match last {
            None => retryable(&format!("the deadline passed {during}")),
            Some(cause) => retryable(&format!("the deadline passed {during}; last failure: {cause}")),
        };
        loop {
            if Instant::now() >= deadline {
                return Ok(WriteReport::all(
                    n,
                    deadline_passed("before the write", &last_cause),
                ));
            }
            let send = self
                .client
                .write_records()
                .database_name(&self.settings.database)
                .table_name(table)
                .set_common_attributes(prepared.common.clone())
                .set_records(Some(prepared.records.clone()))
                .send();
            let failure = match tokio::time::timeout_at(deadline.into(), send).await {
                Ok(Ok(_)) => return Ok(WriteReport::all(n, RecordOutcome::Written)),
                Ok(Err(e)) => classify(&e),
                Err(_) => {
                    return Ok(WriteReport::all(
                        n,
                        deadline_passed("during the write", &last_cause),
                    ));
                }
            };
            let cause = match failure {
                Failure::Rejected(rejected) => {
                    let mut outcomes = vec![RecordOutcome::Written; n];
                    for r in &rejected {
                        if let Some(slot) = usize::try_from(r.record_index())
                            .ok()
                            .and_then(|i| outcomes.get_mut(i))
                        {
                            *slot = rejected_outcome(r);
                        }
                    }
                    return Ok(WriteReport { outcomes });
                }
                Failure::Invalid(text) => return Err(text),
                Failure::Refused(text) => return Ok(WriteReport::all(n, retryable(&text))),
                Failure::NotFound(text) if !created => {
                    self.tables.forget(table);
                    if let Err(e) = self
                        .tables
                        .ensure(&self.client, &self.settings, table, deadline)
                        .await
                    {
                        return Ok(WriteReport::all(n, retryable(&e.to_string())));
                    }
                    created = true;
                    tracing::debug!(table, cause = %text, "Table was missing; writing again.");
                    continue;
                }
                // A table just created can answer not-found for a moment: wait like a throttle.
                Failure::NotFound(text) | Failure::Transient(text) => text,
            };
            match self.settings.backoff.delay(attempt, Instant::now(), deadline) {
                Some(delay) => {
                    tracing::debug!(table, attempt, cause = %cause, "Write failed; retrying.");
                    attempt += 1;
                    last_cause = Some(cause);
                    tokio::time::sleep(delay).await;
                }
                None => return Ok(WriteReport::all(n, retryable(&cause))),
            }
        }
    }

    /// Writes up to 100 records. A `ValidationException` names no record, so a refused request
    /// is split in halves until the refused records stand alone: one invalid record costs
    /// about 2 × log2(100) extra calls, and never takes its valid neighbours with it.
    async fn write_isolating(&self, table: &str, records: &[StoreRecord], deadline: Deadline) -> WriteReport {
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; records.len()];
        let mut pending = vec![(0, records.len())];
        while let Some((start, end)) = pending.pop() {
            match self.write_request(table, &records[start..end], deadline).await {
                Ok(report) => {
                    for (slot, outcome) in outcomes[start..end].iter_mut().zip(report.outcomes) {
                        *slot = Some(outcome);
                    }
                }
                Err(text) if end - start > 1 => {
                    tracing::debug!(table, records = end - start, cause = %text, "Request refused as invalid; splitting it.");
                    let mid = start + (end - start) / 2;
                    pending.push((mid, end));
                    pending.push((start, mid));
                }
                Err(text) => {
                    outcomes[start] = Some(RecordOutcome::Rejected {
                        reason: RejectReason::InvalidRecord,
                        detail: text,
                    });
                }
            }
        }
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| retryable("the record was not sent")))
            .collect();
        WriteReport { outcomes }
    }
}

fn retryable(cause: &str) -> RecordOutcome {
    RecordOutcome::Retryable {
        cause: cause.to_owned(),
    }
}

impl Store for TimestreamStore {
    async fn ensure_table(&self, tenant: &TenantId<'_>, deadline: Deadline) -> Result<(), StoreError> {
        self.tables
            .ensure(&self.client, &self.settings, tenant.as_str(), deadline)
            .await
    }

    async fn write(&self, tenant: &TenantId<'_>, records: &[StoreRecord], deadline: Deadline) -> WriteReport {
        let mut report = WriteReport {
            outcomes: Vec::with_capacity(records.len()),
        };
        for chunk in records.chunks(MAX_RECORDS_PER_WRITE) {
            report.outcomes.extend(
                self.write_isolating(tenant.as_str(), chunk, deadline)
                    .await
                    .outcomes,
            );
        }
        report
    }
}
