//! Applies rendered rules to an EventBridge event as EventBridge would: match the pattern,
//! then run the input transformer. The output is the bytes the target would receive; callers
//! validate them with [`metrics_schema::parse_event`], as the enrich stage does.

use std::fmt;

use serde_json::value::RawValue;

use crate::model::DEFAULT_EVENT_BUS;
use crate::path::EventView;
use crate::pattern::Mismatch;
use crate::render::Rule;
use crate::transform::{CompiledTransformer, RuleContext};
use metrics_schema::time::EventTime;

/// A rule ready to apply.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: Rule,
    transformer: CompiledTransformer,
}

impl CompiledRule {
    pub(crate) fn new(rule: Rule, transformer: CompiledTransformer) -> Self {
        CompiledRule { rule, transformer }
    }

    /// The rule's output for `event`, or why its pattern does not match.
    pub fn evaluate(&self, event: &RawValue, ingestion_time: EventTime) -> Result<Vec<u8>, Mismatch> {
        self.evaluate_in(&EventView::new(event), ingestion_time)
    }

    /// [`CompiledRule::evaluate`] on an event whose top level is already read.
    pub(crate) fn evaluate_in(
        &self,
        event: &EventView<'_>,
        ingestion_time: EventTime,
    ) -> Result<Vec<u8>, Mismatch> {
        self.rule.pattern.matches_in(event)?;
        Ok(self.deliver(event, ingestion_time))
    }

    /// The rule's output when its pattern matches `event` (the reason of a mismatch is not
    /// worked out: see [`CompiledRule::evaluate`]).
    pub(crate) fn output(&self, event: &EventView<'_>, ingestion_time: EventTime) -> Option<Vec<u8>> {
        self.rule
            .pattern
            .is_match(event)
            .then(|| self.deliver(event, ingestion_time))
    }

    /// The target input for an event that matched.
    fn deliver(&self, event: &EventView<'_>, ingestion_time: EventTime) -> Vec<u8> {
        let context = RuleContext {
            rule_name: self.rule.metric_name.clone(),
            rule_arn: rule_arn(&self.rule, event),
            ingestion_time: ingestion_time.to_rfc3339(),
        };
        self.transformer.apply_in(event, &context)
    }
}

/// What EventBridge would name this rule's ARN, from the event's own region and account.
fn rule_arn(rule: &Rule, event: &EventView<'_>) -> String {
    let envelope = |key: &str| {
        event
            .get(key)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
            .unwrap_or_default()
    };
    // A bus may be given by name or by ARN; the rule ARN holds its name, except for the
    // default bus, which it leaves out.
    let bus_name = rule
        .event_bus
        .rsplit_once("event-bus/")
        .map_or(rule.event_bus.as_str(), |(_, name)| name);
    let bus = if bus_name == DEFAULT_EVENT_BUS {
        String::new()
    } else {
        format!("{bus_name}/")
    };
    format!(
        "arn:aws:events:{}:{}:rule/{bus}{}",
        envelope("region"),
        envelope("account"),
        rule.metric_name
    )
}

/// The result of one rule for one event.
#[derive(Debug, Clone)]
pub struct Evaluation<'r> {
    pub rule: &'r Rule,
    /// The target input when the pattern matched (possibly invalid JSON, exactly like
    /// EventBridge's), or why it did not.
    pub outcome: Result<Vec<u8>, Mismatch>,
}

/// A rule whose pattern matched, and what it delivers.
#[derive(Debug, Clone)]
pub struct Match<'r> {
    pub rule: &'r Rule,
    pub output: Vec<u8>,
}

/// Input that is not an EventBridge event at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not JSON")]
    NotJson,
    #[error("the event is not a JSON object")]
    NotAnObject,
}

impl EventError {
    /// The stable reason code.
    pub const fn code(&self) -> &'static str {
        match self {
            EventError::NotJson => "not_json",
            EventError::NotAnObject => "not_an_object",
        }
    }
}

/// Parses event bytes into the raw form the emulator reads.
pub(crate) fn parse_envelope(bytes: &[u8]) -> Result<&RawValue, EventError> {
    let raw: &RawValue = serde_json::from_slice(bytes).map_err(|_| EventError::NotJson)?;
    if raw.get().starts_with('{') {
        Ok(raw)
    } else {
        Err(EventError::NotAnObject)
    }
}

impl fmt::Display for Match<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.rule.metric_name,
            String::from_utf8_lossy(&self.output)
        )
    }
}
