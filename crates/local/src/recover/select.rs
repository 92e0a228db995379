//! Which failed records a command takes: `--stage`, `--reason`, `--tenant`, `--metric`,
//! `--since`, `--until`, `--pending`.

use metrics_schema::{EventTime, Stage};

use super::record::ErrorRecord;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these stages (all when empty).
    pub stages: Vec<Stage>,
    /// Any of these reason codes (all when empty).
    pub reasons: Vec<String>,
    pub tenant: Option<String>,
    pub metric: Option<String>,
    /// Failed at or after.
    pub since: Option<EventTime>,
    /// Failed before.
    pub until: Option<EventTime>,
    /// Only records no replay has resolved yet (never replayed, or failed again).
    pub pending: bool,
}

/// A filter value that cannot select anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown stage {0:?}: expected one of rules, enrich, writer, forwarder, alerts")]
    UnknownStage(String),
    #[error("{0:?} is not a reason code (codes are snake_case, like unknown_tenant)")]
    NotAReasonCode(String),
    #[error("{flag} {value:?} is not an RFC 3339 time (like 2026-12-01T00:00:00Z)")]
    NotATime { flag: &'static str, value: String },
}

impl Filter {
    pub fn stage(name: &str) -> Result<Stage, FilterError> {
        Stage::from_name(name).ok_or_else(|| FilterError::UnknownStage(name.to_owned()))
    }

    pub fn reason(code: &str) -> Result<String, FilterError> {
        match metrics_schema::outcome::first_bad_code([code]) {
            None => Ok(code.to_owned()),
            Some(_) => Err(FilterError::NotAReasonCode(code.to_owned())),
        }
    }

    pub fn time(flag: &'static str, value: &str) -> Result<EventTime, FilterError> {
        EventTime::parse_rfc3339(value).map_err(|_| FilterError::NotATime {
            flag,
            value: value.to_owned(),
        })
    }

    pub fn matches(&self, record: &ErrorRecord) -> bool {
        (self.stages.is_empty() || self.stages.contains(&record.stage))
            && (self.reasons.is_empty() || self.reasons.iter().any(|r| r == record.reason.as_str()))
            && self
                .tenant
                .as_ref()
                .is_none_or(|t| record.tenant_id.as_ref() == Some(t))
            && self
                .metric
                .as_ref()
                .is_none_or(|m| record.metric.as_ref() == Some(m))
            && self.since.is_none_or(|s| record.at.is_some_and(|at| at >= s))
            && self.until.is_none_or(|u| record.at.is_some_and(|at| at < u))
            && (!self.pending || !record.resolved)
    }
}
