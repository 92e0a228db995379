//! The store of metrics-lake: one table per tenant, multi-measure records.
//!
//! - [`record`]: the typed record every adapter writes, and [`convert`] from a validated
//!   [`metrics_schema::UnifiedEvent`] to it (pure, checked against the store's limits);
//! - [`port`]: the [`Store`] trait, with one outcome per record;
//! - adapters: [`timestream`] (Amazon Timestream for LiveAnalytics), [`influx`] (Timestream
//!   for InfluxDB 3 or 2, line protocol over HTTP: the store for AWS accounts opened after
//!   20 June 2025, when LiveAnalytics closed to new customers) and [`embedded`] (SQLite, for
//!   the local pipeline and tests), chosen at run time through [`AnyStore`]
//!   (`METRICS_STORE=timestream|influxdb|embedded`; choosing and migrating: infra/README.md);
//! - [`reason`]: stable codes for every record the store does not take.
//!
//! Identity and replays: a record is identified by its table, dimensions, measure name and
//! time. `event_id` is always a dimension, so two events in the same millisecond never collide,
//! and every record is written with `Version = 1`, so writing the same record again is a no-op
//! while a different value at the same identity is rejected (`version_conflict`). InfluxDB
//! keeps `event_id` as a field and folds it into the point's time instead (see [`influx`]).

pub mod any;
pub mod convert;
pub mod embedded;
pub mod influx;
pub mod port;
pub mod reason;
pub mod record;
pub mod retry;
pub mod timestream;

pub use any::{AnyStore, StoreKind};
pub use convert::{Rejection, convert};
pub use embedded::{EmbeddedSettings, EmbeddedStore};
pub use influx::{InfluxSettings, InfluxStore, TokenSource};
pub use port::{Deadline, MAX_RECORDS_PER_WRITE, RecordOutcome, Store, StoreError, WriteReport};
pub use reason::RejectReason;
pub use record::{MeasureType, StoreRecord, StoreValue};
pub use timestream::{TableSettings, TimestreamSettings, TimestreamStore};
