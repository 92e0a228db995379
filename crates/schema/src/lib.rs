//! The unified metric event of metrics-lake.
//!
//! Every stage of the pipeline (the Firehose enrich transformer, the store writer, the
//! forwarder, the local pipeline) parses events with [`parse_event`], so a rule is enforced in
//! one place and every rejection carries the same stable [`Reason`] code.
//!
//! ```json
//! {"metric_name": "findings_upload_completed",
//!  "metadata": {"tenant_id": "acme-prod", "event_id": "…", "…": "string dimensions"},
//!  "data": {"event_time": "2026-11-23T10:00:00Z", "new_findings_count": 3}}
//! ```
//!
//! Parsing borrows from the input bytes: strings without escapes are never copied, and
//! measures keep their original JSON text so they can be written back unchanged.

pub mod aggregation;
mod echo;
pub mod event;
pub mod json;
pub mod limits;
pub mod names;
pub mod outcome;
pub mod reason;
pub mod text;
pub mod time;

pub use aggregation::{Aggregation, UnknownAggregation};
pub use event::{Dimension, Measure, MeasureValue, UnifiedEvent, parse_event, validate};
pub use names::{MetricName, TenantId};
pub use outcome::{Outcome, OutcomeCounts, ReasonCode, Stage};
pub use reason::{Invalid, Reason};
pub use time::EventTime;
