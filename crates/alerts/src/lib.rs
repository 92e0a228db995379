//! Alerts tenants set on their own metrics.
//!
//! - [`model`]: an alert (metric, measure, aggregation, filters, window, condition, interval,
//!   cooldown, webhook URL) and its checks, with typed errors ([`error`]);
//! - [`state`]: the `ok → firing → resolved` state machine, one transition per evaluation,
//!   each with its idempotency key;
//! - [`evaluate`]: due alerts read through the [`reader`] port (the query engines implement
//!   it), judged, and notified once per transition, with bounded concurrency and a time budget
//!   per tenant;
//! - [`delivery`]: signed webhooks ([`signing`], Standard Webhooks) with timeouts, a response
//!   cap, retries with backoff and jitter, and dead letters with reason codes;
//! - [`url`] and [`ssrf`]: which URLs and addresses a webhook may reach;
//! - [`store`]: the alert store port, conditional state writes, and its SQLite adapter;
//! - [`clock`]: the injected wall clock.

pub mod clock;
pub mod delivery;
pub mod error;
pub mod evaluate;
pub mod model;
pub mod reader;
pub mod redeliver;
pub mod signing;
pub mod ssrf;
pub mod state;
pub mod store;
pub mod url;

pub use clock::{Clock, FixedClock, SystemClock};
pub use delivery::{Deliverer, Delivery, DeliveryReason, DeliverySettings};
pub use error::AlertError;
pub use evaluate::{AlertOutcome, EvaluationReport, Evaluator, EvaluatorSettings};
pub use model::{AlertDefinition, AlertInput, AlertLimits, Condition, Minutes};
pub use reader::{ReadError, WindowQuery, WindowReader};
pub use state::{AlertState, Status};
pub use store::{Alert, AlertEvent, AlertStore, StoreError, StoredAlert};
pub use url::{UrlPolicy, WebhookUrl};
