//! Metric mappings: one declarative file (`infra/metrics.toml`) that says which EventBridge
//! events become which per-tenant metric, and how each becomes a unified metric event.
//!
//! ```text
//! metrics.toml ──parse──▶ MappingFile ──check──▶ Diagnostics (stable codes)
//!                                   ├──render──▶ rules: pattern + wrapping input transformer
//!                                   │              └──to_rendered_json──▶ rules.json (CDK)
//!                                   └──compile─▶ Mapping: wrapped event ──map──▶ unified event
//! ```
//!
//! Each rule selects events with its pattern and wraps the whole event with the metric's name
//! (`{"metric":"…","event":<aws.events.event.json>}`); the [`Mapping`] turns a wrapped event
//! into a unified event in metrics-enrich. [`RuleSet::apply`] emulates EventBridge (pattern,
//! then input transformer), so the local pipeline runs both halves as deployed.
//!
//! The library does no I/O: text and bytes in, typed values out.
//!
//! ```
//! use metrics_mapping::RuleSet;
//! use metrics_schema::EventTime;
//!
//! let rules = RuleSet::from_toml(r#"
//!     [[metric]]
//!     name = "scan_completed"
//!     pattern = { source = ["scanner"], detail-type = ["scan-completed"] }
//!     tenant_id = "$.detail.tenant_id"
//!     metadata.branch = { from = "$.detail.branch", type = "text", required = false }
//!     data.duration_ms = { from = "$.detail.duration_ms", type = "number" }
//! "#).unwrap();
//! let event = br#"{"id":"e-1","time":"2026-11-20T08:00:00Z","source":"scanner",
//!     "detail-type":"scan-completed","detail":{"tenant_id":"acme","duration_ms":"1200"}}"#;
//! let matches = rules.apply(event, EventTime::from_millis(0)).unwrap();
//! let mut unified = Vec::new();
//! rules.mapping().map_record(&matches[0].output, &mut unified).unwrap();
//! assert_eq!(
//!     String::from_utf8_lossy(&unified),
//!     r#"{"metric_name":"scan_completed","metadata":{"tenant_id":"acme","event_id":"e-1"},"data":{"event_time":"2026-11-20T08:00:00Z","duration_ms":1200}}"#
//! );
//! ```

pub mod check;
pub mod diagnostic;
pub mod emulate;
pub mod map;
mod mapped;
pub mod model;
pub mod path;
pub mod pattern;
mod read;
pub mod reason;
pub mod render;
pub mod section;
pub mod source;
pub mod transform;
pub mod wrap;

pub use diagnostic::{Code, Diagnostic};
pub use emulate::{CompiledRule, Evaluation, EventError, Match};
pub use map::{Mapping, MetricMapping};
pub use model::{FieldKind, FieldSpec, MappingFile, MetricSpec, TimeFormat, TimeSpec};
pub use pattern::{Mismatch, Pattern};
pub use reason::{MapError, MapReason};
pub use render::Rule;
pub use transform::{CompiledTransformer, InputTransformer, RuleContext};
pub use wrap::is_wrapped;

use crate::diagnostic::Code as DiagnosticCode;
use metrics_schema::time::EventTime;

/// Every rule of a mapping file that passed all checks.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    mapping: Mapping,
}

impl RuleSet {
    /// Parses, checks and renders a mapping file. Any finding fails the whole file: a file
    /// that renders is one whose every rule passed every check.
    pub fn from_toml(text: &str) -> Result<RuleSet, Vec<Diagnostic>> {
        let file = MappingFile::parse(text).map_err(|d| vec![d])?;
        RuleSet::from_file(&file)
    }

    /// Checks and renders an already parsed file.
    pub fn from_file(file: &MappingFile) -> Result<RuleSet, Vec<Diagnostic>> {
        let mut diagnostics = check::check_file(file);
        let mut rules = Vec::with_capacity(file.metrics.len());
        let mut mappings = Vec::with_capacity(file.metrics.len());
        for metric in &file.metrics {
            let found = check::check_metric(metric);
            if !found.is_empty() {
                diagnostics.extend(found);
                continue;
            }
            let Some(mapping) = MetricMapping::compile(metric) else {
                // The checks accept only what compiles; never drop a metric silently if they drift.
                diagnostics.push(Diagnostic::for_metric(
                    DiagnosticCode::InvalidPath,
                    &metric.name,
                    "the metric passed its checks but could not be compiled; please report this",
                ));
                continue;
            };
            let rule = render::render_metric(metric, &file.defaults.event_bus);
            match CompiledTransformer::new(&rule.transformer) {
                Ok(transformer) => {
                    rules.push(CompiledRule::new(rule, transformer));
                    mappings.push(mapping);
                }
                Err(e) => diagnostics.push(Diagnostic::for_metric(
                    DiagnosticCode::InvalidPath,
                    &rule.metric_name,
                    e.to_string(),
                )),
            }
        }
        if diagnostics.is_empty() {
            Ok(RuleSet {
                rules,
                mapping: Mapping::new(mappings),
            })
        } else {
            Err(diagnostics)
        }
    }

    /// The mapping metrics-enrich applies to wrapped events.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    pub fn into_mapping(self) -> Mapping {
        self.mapping
    }

    /// The rendered rules, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The JSON document the CDK app reads (`infra/generated/rules.json`).
    pub fn to_rendered_json(&self) -> String {
        let rules: Vec<Rule> = self.rules().cloned().collect();
        render::rules_document(&rules)
    }

    /// Every rule's result for one EventBridge event: its output (the wrapped event), or why
    /// it did not match. `ingestion_time` is the value of `aws.events.event.ingestion-time`.
    pub fn evaluate(
        &self,
        event: &[u8],
        ingestion_time: EventTime,
    ) -> Result<Vec<Evaluation<'_>>, EventError> {
        let event = path::EventView::new(emulate::parse_envelope(event)?);
        Ok(self
            .rules
            .iter()
            .map(|r| Evaluation {
                rule: &r.rule,
                outcome: r.evaluate_in(&event, ingestion_time),
            })
            .collect())
    }

    /// The outputs of the rules that match one EventBridge event, in file order: what
    /// EventBridge delivers to Firehose, the wrapped event ([`Mapping::map_record`] maps it).
    pub fn apply(&self, event: &[u8], ingestion_time: EventTime) -> Result<Vec<Match<'_>>, EventError> {
        let event = path::EventView::new(emulate::parse_envelope(event)?);
        Ok(self.matches(&event, ingestion_time))
    }

    /// [`RuleSet::apply`] to an event that arrives at its envelope's `time` (RFC 3339), or at
    /// `otherwise` when it has no such member, has it twice, or has one that does not parse:
    /// how the local pipeline replays a stream of events. Returns that envelope time too; the
    /// envelope is read once for both.
    pub fn apply_on_arrival(
        &self,
        event: &[u8],
        otherwise: EventTime,
    ) -> (Option<EventTime>, Result<Vec<Match<'_>>, EventError>) {
        let event = match emulate::parse_envelope(event) {
            Ok(raw) => path::EventView::new(raw),
            Err(error) => return (None, Err(error)),
        };
        let time = event
            .get_once("time")
            .and_then(|raw| serde_json::from_str::<metrics_schema::json::CowStr<'_>>(raw.get()).ok())
            .and_then(|time| EventTime::parse_rfc3339(&time.0).ok());
        (time, Ok(self.matches(&event, time.unwrap_or(otherwise))))
    }

    fn matches(&self, event: &path::EventView<'_>, ingestion_time: EventTime) -> Vec<Match<'_>> {
        self.rules
            .iter()
            .filter_map(|r| {
                let output = r.output(event, ingestion_time)?;
                Some(Match {
                    rule: &r.rule,
                    output,
                })
            })
            .collect()
    }
}

/// Checks a mapping file and returns every finding (empty when it is deployable).
pub fn check(text: &str) -> Vec<Diagnostic> {
    RuleSet::from_toml(text).err().unwrap_or_default()
}

impl Mapping {
    /// Parses and checks a mapping file and keeps its mapping: what metrics-enrich loads at
    /// start. Any finding fails the whole file.
    pub fn from_toml(text: &str) -> Result<Mapping, Vec<Diagnostic>> {
        RuleSet::from_toml(text).map(RuleSet::into_mapping)
    }
}
