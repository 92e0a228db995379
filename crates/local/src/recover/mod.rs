//! Recovering from failure: every record that did not become `stored` or `duplicate`, read
//! back from the bucket's error prefixes ([`scan`]), shown by `metrics-lake errors`, and sent
//! back to the stage that failed it by `metrics-lake replay` ([`replay`]).
//!
//! | prefix | what | replayed to |
//! |---|---|---|
//! | `Error/input/` (local only) | input lines that are not events | the rules (the bus) |
//! | `Error/processing-failed/` | records metrics-enrich failed (Firehose's wrapper) | enrich, then the stream |
//! | `Error/writer/` | the writer's dead letters | the store, through the writer |
//! | `Error/forwarder/<destination>/` | the forwarder's dead letters | that destination only |
//!
//! Originals are never deleted: a replay marks them ([`marks`]).

pub mod check;
pub mod decode;
pub mod deployed;
pub mod local;
pub mod marks;
pub mod objects;
pub mod record;
pub mod redrive;
pub mod replay;
pub mod scan;
pub mod select;

pub use objects::{Objects, ObjectsError, S3Objects};
pub use record::{ErrorRecord, RecordJson, ReplayTo};
pub use scan::{ErrorKind, ErrorObject, Scanner};
pub use select::{Filter, FilterError};
