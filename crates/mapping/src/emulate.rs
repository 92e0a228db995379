//! Applies rendered rules to an EventBridge event as EventBridge would: match the pattern,
//! then run the input transformer. The output is the bytes the target would receive; callers
//! validate them with [`metrics_schema::parse_event`], as the enrich stage does.

use std::fmt;

use serde_json::value::RawValue;

use crate::model::DEFAULT_EVENT_BUS;
use crate::path::EventView;
use crate::pattern::Mismatch;
use crate::render::Rule;
use crate::source::Reserved;
use crate::transform::{CompiledTransformer, RuleContext};
use metrics_schema::time::EventTime;

/// A rule ready to apply.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: Rule,
    transformer: CompiledTransformer,
    /// Which of the context's values the template uses: only those are worked out for each
    /// event (the rule ARN alone reads the envelope twice and formats a string).
    uses: ContextUse,
}

#[derive(Debug, Clone, Copy)]
struct ContextUse {
    rule_name: bool,
    rule_arn: bool,
    ingestion_time: bool,
}

impl CompiledRule {
    pub(crate) fn new(rule: Rule, transformer: CompiledTransformer) -> Self {
        let uses = ContextUse {
            rule_name: transformer.uses(Reserved::RuleName),
            rule_arn: transformer.uses(Reserved::RuleArn),
            ingestion_time: transformer.uses(Reserved::IngestionTime),
        };
        CompiledRule {
            rule,
            transformer,
            uses,
        }
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
        let uses = self.uses;
        let context = RuleContext {
            rule_name: if uses.rule_name {
                self.rule.metric_name.clone()
            } else {
                String::new()
            },
            rule_arn: if uses.rule_arn {
                rule_arn(&self.rule, event)
            } else {
                String::new()
            },
            ingestion_time: if uses.ingestion_time {
                ingestion_time.to_rfc3339()
            } else {
                String::new()
            },
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::transform::InputTransformer;

    fn rule(template: &str) -> CompiledRule {
        let transformer = InputTransformer {
            input_paths_map: vec![("s".to_owned(), "$.detail.s".to_owned())],
            input_template: template.to_owned(),
        };
        let rule = Rule {
            metric_name: "my-rule".to_owned(),
            description: None,
            event_bus: "default".to_owned(),
            pattern: serde_json::from_str(r#"{"source": ["app"], "detail-type": ["t"]}"#).unwrap(),
            transformer: transformer.clone(),
        };
        CompiledRule::new(rule, CompiledTransformer::new(&transformer).unwrap())
    }

    const EVENT: &str = r#"{"id": "e-1", "detail-type": "t", "source": "app", "account": "123456789012",
        "region": "eu-west-1", "time": "2026-11-25T10:00:00Z", "detail": {"s": "x"}}"#;

    fn output(template: &str) -> String {
        let event = RawValue::from_string(EVENT.to_owned()).unwrap();
        let at = EventTime::parse_rfc3339("2026-11-25T10:00:01Z").unwrap();
        String::from_utf8(rule(template).evaluate(&event, at).unwrap()).unwrap()
    }

    #[test]
    fn the_rule_context_is_filled_for_the_variables_a_template_uses() {
        assert_eq!(
            output(
                r#"{"n": <aws.events.rule-name>, "a": "<aws.events.rule-arn>", "t": <aws.events.event.ingestion-time>, "s": <s>}"#
            ),
            r#"{"n": "my-rule", "a": "arn:aws:events:eu-west-1:123456789012:rule/my-rule", "t": "2026-11-25T10:00:01.000Z", "s": "x"}"#
        );
        assert_eq!(
            output(r#"{"a": "<aws.events.rule-arn>"}"#),
            r#"{"a": "arn:aws:events:eu-west-1:123456789012:rule/my-rule"}"#
        );
        assert_eq!(output(r#"{"s": <s>}"#), r#"{"s": "x"}"#);
    }
}
