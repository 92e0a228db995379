//! The store port: what the writer (and `metrics-lake tenants provision`) needs from any store
//! to write. Reading is the query engines' job (`metrics-query`), one per store.

use std::future::Future;
use std::time::Instant;

use metrics_schema::TenantId;

use crate::reason::RejectReason;
use crate::record::StoreRecord;

/// Records per write call (Timestream's `WriteRecords` limit). Adapters accept longer slices
/// and split them, but callers batch to exactly this to control concurrency.
pub const MAX_RECORDS_PER_WRITE: usize = 100;

/// When the caller must have an answer (the Lambda deadline less a margin): retries stop
/// before it, and what is still unwritten is reported [`RecordOutcome::Retryable`].
pub type Deadline = Instant;

/// What happened to one record of a write.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// The store took the record.
    Written,
    /// The same record (identity and values) was already stored: a replay, which is success.
    AlreadyPresent,
    /// The store refuses this record for good.
    Rejected { reason: RejectReason, detail: String },
    /// Not written for a transient cause (throttling, outage, deadline): write it again later.
    Retryable { cause: String },
}

impl RecordOutcome {
    /// `written`, `already_present`, `rejected` or `retryable`.
    pub const fn code(&self) -> &'static str {
        match self {
            RecordOutcome::Written => "written",
            RecordOutcome::AlreadyPresent => "already_present",
            RecordOutcome::Rejected { .. } => "rejected",
            RecordOutcome::Retryable { .. } => "retryable",
        }
    }
}

/// One outcome per record, by index in the slice that was written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteReport {
    pub outcomes: Vec<RecordOutcome>,
}

impl WriteReport {
    /// Every record with the same outcome.
    pub fn all(n: usize, outcome: RecordOutcome) -> Self {
        WriteReport {
            outcomes: vec![outcome; n],
        }
    }

    /// How many records have outcome `code`.
    pub fn count(&self, code: &str) -> usize {
        self.outcomes.iter().filter(|o| o.code() == code).count()
    }
}

/// A failure of a table-level call (creating or checking a table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Throttled, a 5xx, a timeout or a connection failure that outlasted the retries.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The database does not exist and the store is not configured to create it.
    #[error("the database {0} does not exist")]
    DatabaseMissing(String),
    /// The store refused the call (access denied, quota, validation).
    #[error("the store refused the call: {0}")]
    Refused(String),
    /// The deadline came before the call could be made or retried.
    #[error("the deadline passed: {0}")]
    DeadlineExceeded(String),
    /// The embedded database failed (file, lock, SQL).
    #[error("the embedded store failed: {0}")]
    Embedded(String),
}

impl StoreError {
    /// The stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "store_unavailable",
            StoreError::DatabaseMissing(_) => "database_missing",
            StoreError::Refused(_) => "store_refused",
            StoreError::DeadlineExceeded(_) => "deadline_exceeded",
            StoreError::Embedded(_) => "embedded_store_failed",
        }
    }
}

/// A store with one table per tenant.
///
/// `write` never fails as a whole: it answers one [`RecordOutcome`] per record, so a bad
/// record never fails its neighbours, and an outage shows as `Retryable` records.
pub trait Store: Send + Sync {
    /// Makes sure the tenant's table exists (creating it with the configured retention).
    fn ensure_table(
        &self,
        tenant: &TenantId<'_>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes records to the tenant's table, creating it if it is missing.
    fn write(
        &self,
        tenant: &TenantId<'_>,
        records: &[StoreRecord],
        deadline: Deadline,
    ) -> impl Future<Output = WriteReport> + Send;
}
