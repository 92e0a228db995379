//! Why an alert is refused: one typed error with a stable code per rule, so the API answers
//! `4xx {"error": {"code", "message"}}` and tests match on codes, not sentences.

/// An alert definition that cannot be accepted. Messages are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("aggregation must be sum, avg, min, max or count")]
    InvalidAggregation,
    /// Not like `15m`, `1h`, `1d`, or outside one minute to 31 days (zero included).
    #[error("window must be like 15m, 1h or 1d (1 minute to 31 days)")]
    InvalidWindow,
    /// Less than the tenant's minimum interval, or more than a day.
    #[error("interval must be a whole number of minutes from {min_minutes} to 1440")]
    InvalidInterval { min_minutes: u64 },
    #[error("cooldown must be a whole number of minutes from 0 to 10080 (7 days)")]
    InvalidCooldown,
    #[error("the condition must be above, below or change_pct with a finite threshold, or absent")]
    InvalidCondition,
    #[error("name must be 1 to 128 characters of text")]
    InvalidName,
    #[error("metric must be 1 to 256 bytes of [A-Za-z0-9_.-]")]
    InvalidMetric,
    #[error("at most {max} filters, each value at most 2,048 bytes of text")]
    InvalidFilter { max: usize },
    /// Not an absolute `https://host/path` URL of at most 2,048 bytes, without credentials.
    #[error("{0}")]
    InvalidUrl(&'static str),
    /// The URL's host is, or resolves to, an address alerts never call.
    #[error("the webhook host resolves to an address that is not allowed ({0})")]
    AddressNotAllowed(&'static str),
    /// The host could not be resolved.
    #[error("the webhook host cannot be resolved")]
    UnresolvableHost,
    #[error("a tenant has at most {max} alerts")]
    TooManyAlerts { max: usize },
    #[error("no alert with that id")]
    NotFound,
}

impl AlertError {
    /// The stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            AlertError::InvalidAggregation => "invalid_aggregation",
            AlertError::InvalidWindow => "invalid_window",
            AlertError::InvalidInterval { .. } => "invalid_interval",
            AlertError::InvalidCooldown => "invalid_cooldown",
            AlertError::InvalidCondition => "invalid_condition",
            AlertError::InvalidName => "invalid_name",
            AlertError::InvalidMetric => "invalid_metric",
            AlertError::InvalidFilter { .. } => "invalid_filter",
            AlertError::InvalidUrl(_) => "invalid_url",
            AlertError::AddressNotAllowed(_) => "address_not_allowed",
            AlertError::UnresolvableHost => "unresolvable_host",
            AlertError::TooManyAlerts { .. } => "too_many_alerts",
            AlertError::NotFound => "alert_not_found",
        }
    }

    /// Every code (the OpenAPI document lists the same).
    pub const CODES: [&'static str; 13] = [
        "invalid_aggregation",
        "invalid_window",
        "invalid_interval",
        "invalid_cooldown",
        "invalid_condition",
        "invalid_name",
        "invalid_metric",
        "invalid_filter",
        "invalid_url",
        "address_not_allowed",
        "unresolvable_host",
        "too_many_alerts",
        "alert_not_found",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_distinct() {
        assert_eq!(metrics_schema::outcome::first_bad_code(AlertError::CODES), None);
        assert!(AlertError::CODES.contains(&AlertError::InvalidUrl("x").code()));
        assert!(AlertError::CODES.contains(&AlertError::NotFound.code()));
    }
}
