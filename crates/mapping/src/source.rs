//! Where a mapped value comes from: a JSON path into the event, or one of EventBridge's
//! reserved input-transformer variables (which need no `InputPathsMap` entry).

use crate::path::{EventPath, PathError};

/// A reserved `aws.events.*` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reserved {
    RuleArn,
    RuleName,
    /// When EventBridge received the event (ISO 8601).
    IngestionTime,
    /// The original event without `detail`, as a JSON object.
    Event,
    /// The full original event, as a JSON object.
    EventJson,
}

impl Reserved {
    pub const ALL: [Reserved; 5] = [
        Reserved::RuleArn,
        Reserved::RuleName,
        Reserved::IngestionTime,
        Reserved::Event,
        Reserved::EventJson,
    ];

    /// The variable's name, as written between `<` and `>` in a template.
    pub const fn name(self) -> &'static str {
        match self {
            Reserved::RuleArn => "aws.events.rule-arn",
            Reserved::RuleName => "aws.events.rule-name",
            Reserved::IngestionTime => "aws.events.event.ingestion-time",
            Reserved::Event => "aws.events.event",
            Reserved::EventJson => "aws.events.event.json",
        }
    }

    pub fn from_name(name: &str) -> Option<Reserved> {
        Reserved::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the value is a JSON object (otherwise a string).
    pub const fn is_object(self) -> bool {
        matches!(self, Reserved::Event | Reserved::EventJson)
    }
}

/// A parsed `from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(EventPath),
    Reserved(Reserved),
}

impl Source {
    /// `$.…` is a path; `aws.events.…` must be a reserved variable.
    pub fn parse(text: &str) -> Result<Source, PathError> {
        if let Some(reserved) = Reserved::from_name(text) {
            return Ok(Source::Reserved(reserved));
        }
        if text.starts_with("aws.") {
            return Err(PathError::UnknownVariable(text.to_owned()));
        }
        EventPath::parse(text).map(Source::Path)
    }
}
