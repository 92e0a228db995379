//! An alert as a tenant defines it: what to measure (the query model's metric, measure,
//! aggregation, filters and window), when it fires (a [`Condition`]), how often it is
//! evaluated, how long it stays quiet after firing, and where it posts. [`AlertInput`] is what
//! the API receives; [`AlertInput::validate`] turns it into an [`AlertDefinition`] or a typed
//! [`AlertError`]. The metric, measure and dimensions are checked against the tenant's own
//! catalog by the API (the query model's checks), not here.

use std::collections::BTreeMap;
use std::fmt;

use metrics_schema::{Aggregation, MetricName};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::AlertError;
use crate::url::UrlPolicy;

/// A whole number of minutes, written like the query model's bins: `15m`, `1h`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minutes(pub u64);

impl Minutes {
    pub const fn millis(self) -> i64 {
        (self.0 as i64) * 60_000
    }

    /// `<n>m`, `<n>h` or `<n>d`, within `min..=max` minutes.
    pub fn parse(text: &str, min: u64, max: u64) -> Option<Minutes> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let per = match unit {
            "m" => 1,
            "h" => 60,
            "d" => 1_440,
            _ => return None,
        };
        let minutes = n.checked_mul(per)?;
        (min..=max).contains(&minutes).then_some(Minutes(minutes))
    }
}

impl fmt::Display for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("0m"),
            m if m % 1_440 == 0 => write!(f, "{}d", m / 1_440),
            m if m % 60 == 0 => write!(f, "{}h", m / 60),
            m => write!(f, "{m}m"),
        }
    }
}

impl Serialize for Minutes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// When an alert fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The window's value is greater than the threshold.
    Above { threshold: f64 },
    /// The window's value is less than the threshold.
    Below { threshold: f64 },
    /// The value changed by at least `threshold` percent against the previous window (a rise
    /// for a positive threshold, a fall for a negative one).
    ChangePct { threshold: f64 },
    /// No data in the window.
    Absent,
}

/// What one evaluation observed: the window's value and, for `change_pct`, the previous
/// window's. `None` is "no data" (counts and sums of no data are 0, see [`observed`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Observation {
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<f64>,
}

/// A value as a condition sees it: a count or a sum over no data is 0, other aggregations of
/// no data have no value.
pub fn observed(aggregation: Aggregation, value: Option<f64>) -> Option<f64> {
    match (aggregation, value) {
        (Aggregation::Count | Aggregation::Sum, None) => Some(0.0),
        (_, v) => v,
    }
}

impl Condition {
    /// Whether the condition holds for what was observed.
    pub fn holds(&self, seen: &Observation) -> bool {
        match *self {
            Condition::Above { threshold } => seen.value.is_some_and(|v| v > threshold),
            Condition::Below { threshold } => seen.value.is_some_and(|v| v < threshold),
            Condition::ChangePct { threshold } => match (seen.value, seen.previous) {
                (Some(now), Some(before)) if before != 0.0 => {
                    let pct = (now - before) / before.abs() * 100.0;
                    if threshold > 0.0 {
                        pct >= threshold
                    } else {
                        pct <= threshold
                    }
                }
                // No baseline: no change can be stated.
                _ => false,
            },
            Condition::Absent => seen.value.is_none_or(|v| v == 0.0),
        }
    }

    /// Whether it compares with the previous window.
    pub fn needs_previous(&self) -> bool {
        matches!(self, Condition::ChangePct { .. })
    }

    fn check(&self) -> Result<(), AlertError> {
        let ok = match *self {
            Condition::Above { threshold } | Condition::Below { threshold } => threshold.is_finite(),
            Condition::ChangePct { threshold } => threshold.is_finite() && threshold != 0.0,
            Condition::Absent => true,
        };
        if ok {
            Ok(())
        } else {
            Err(AlertError::InvalidCondition)
        }
    }
}

/// Per-tenant limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLimits {
    /// Alerts one tenant may have.
    pub max_alerts: usize,
    /// The shortest evaluation interval, in minutes (at least 1).
    pub min_interval_minutes: u64,
    pub max_filters: usize,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits {
            max_alerts: 100,
            min_interval_minutes: 1,
            max_filters: 8,
        }
    }
}

/// The longest window: 31 days, the query model's widest bin.
pub const MAX_WINDOW_MINUTES: u64 = 31 * 1_440;
/// The longest interval: one day.
pub const MAX_INTERVAL_MINUTES: u64 = 1_440;
/// The longest cooldown: seven days.
pub const MAX_COOLDOWN_MINUTES: u64 = 7 * 1_440;
const MAX_FILTER_VALUE_BYTES: usize = 2_048;

/// The default evaluation interval.
pub const DEFAULT_INTERVAL: &str = "5m";

/// An alert as the API receives it (`POST /v1/alerts`, `PUT /v1/alerts/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertInput {
    pub name: Option<String>,
    pub metric: Option<String>,
    pub measure: Option<String>,
    pub aggregation: Option<String>,
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    pub window: Option<String>,
    pub condition: Option<serde_json::Value>,
    pub interval: Option<String>,
    pub cooldown: Option<String>,
    pub url: Option<String>,
}

/// The fields of [`AlertInput`] (the API refuses any other name).
pub const INPUT_FIELDS: &[&str] = &[
    "name",
    "metric",
    "measure",
    "aggregation",
    "filters",
    "window",
    "condition",
    "interval",
    "cooldown",
    "url",
];

/// A checked alert definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertDefinition {
    pub name: String,
    pub metric: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    pub aggregation: Aggregation,
    pub filters: BTreeMap<String, String>,
    pub window: Minutes,
    pub condition: Condition,
    pub interval: Minutes,
    pub cooldown: Minutes,
    pub url: String,
}

impl AlertInput {
    /// Checks every field. `default_aggregation` is used when none is named (the API passes
    /// the measure's default from the mapping file); without a measure the default is count.
    /// The URL's form is checked here; where it leads, by [`crate::url::WebhookUrl::resolve`].
    pub fn validate(
        self,
        limits: &AlertLimits,
        policy: UrlPolicy,
        default_aggregation: Option<Aggregation>,
    ) -> Result<AlertDefinition, AlertError> {
        let name = self.name.unwrap_or_default();
        if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(AlertError::InvalidName);
        }
        let metric = self.metric.unwrap_or_default();
        MetricName::parse(metric.as_str()).map_err(|_| AlertError::InvalidMetric)?;
        let aggregation = match (self.aggregation.as_deref(), &self.measure) {
            (Some(text), _) => Aggregation::parse(text).map_err(|_| AlertError::InvalidAggregation)?,
            (None, Some(_)) => default_aggregation.unwrap_or(Aggregation::Sum),
            (None, None) => Aggregation::Count,
        };
        if self.filters.len() > limits.max_filters
            || self
                .filters
                .values()
                .any(|v| v.len() > MAX_FILTER_VALUE_BYTES || v.chars().any(char::is_control))
        {
            return Err(AlertError::InvalidFilter {
                max: limits.max_filters,
            });
        }
        let window = self
            .window
            .as_deref()
            .and_then(|w| Minutes::parse(w, 1, MAX_WINDOW_MINUTES))
            .ok_or(AlertError::InvalidWindow)?;
        let condition: Condition = self
            .condition
            .and_then(|c| serde_json::from_value(c).ok())
            .ok_or(AlertError::InvalidCondition)?;
        condition.check()?;
        let min_interval = limits.min_interval_minutes.max(1);
        let interval = Minutes::parse(
            self.interval.as_deref().unwrap_or(DEFAULT_INTERVAL),
            min_interval,
            MAX_INTERVAL_MINUTES,
        )
        .ok_or(AlertError::InvalidInterval {
            min_minutes: min_interval,
        })?;
        let cooldown = Minutes::parse(self.cooldown.as_deref().unwrap_or("0m"), 0, MAX_COOLDOWN_MINUTES)
            .ok_or(AlertError::InvalidCooldown)?;
        let url = self.url.unwrap_or_default();
        policy.parse(&url)?;
        Ok(AlertDefinition {
            name,
            metric,
            measure: self.measure,
            aggregation,
            filters: self.filters,
            window,
            condition,
            interval,
            cooldown,
            url,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(patch: serde_json::Value) -> AlertInput {
        let mut base = json!({
            "name": "Many new findings",
            "metric": "findings_upload_completed",
            "measure": "new_findings_count",
            "aggregation": "sum",
            "window": "1h",
            "condition": {"type": "above", "threshold": 5},
            "url": "https://hooks.example.com/alerts"
        });
        if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap_or_default()
    }

    fn code(patch: serde_json::Value) -> &'static str {
        match input(patch).validate(&AlertLimits::default(), UrlPolicy::PUBLIC, None) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn a_complete_alert_is_accepted_with_its_defaults() {
        let d = input(json!({})).validate(&AlertLimits::default(), UrlPolicy::PUBLIC, None);
        let Ok(d) = d else { unreachable!("valid: {d:?}") };
        assert_eq!(d.interval, Minutes(5));
        assert_eq!(d.cooldown, Minutes(0));
        assert_eq!(d.window.to_string(), "1h");
        let shown = serde_json::to_value(&d).unwrap_or_default();
        assert_eq!(shown["window"], "1h");
        assert_eq!(shown["condition"], json!({"type": "above", "threshold": 5.0}));
    }

    #[test]
    fn bad_input_gets_its_own_code() {
        assert_eq!(code(json!({"aggregation": "median"})), "invalid_aggregation");
        assert_eq!(code(json!({"window": "0m"})), "invalid_window");
        assert_eq!(code(json!({"window": "0h"})), "invalid_window");
        assert_eq!(code(json!({"window": "32d"})), "invalid_window");
        assert_eq!(code(json!({"window": "99999999999999999999d"})), "invalid_window");
        assert_eq!(code(json!({"window": null})), "invalid_window");
        assert_eq!(code(json!({"interval": "30s"})), "invalid_interval");
        assert_eq!(code(json!({"interval": "0m"})), "invalid_interval");
        assert_eq!(code(json!({"interval": "2d"})), "invalid_interval");
        assert_eq!(code(json!({"cooldown": "8d"})), "invalid_cooldown");
        assert_eq!(code(json!({"condition": {"type": "above"}})), "invalid_condition");
        assert_eq!(
            code(json!({"condition": {"type": "between", "threshold": 1}})),
            "invalid_condition"
        );
        assert_eq!(
            code(json!({"condition": {"type": "change_pct", "threshold": 0}})),
            "invalid_condition"
        );
        assert_eq!(code(json!({"name": ""})), "invalid_name");
        assert_eq!(code(json!({"metric": "no spaces"})), "invalid_metric");
        assert_eq!(code(json!({"url": "http://hooks.example.com/"})), "invalid_url");
        assert_eq!(code(json!({"url": "not a url"})), "invalid_url");
        let many: serde_json::Map<String, serde_json::Value> =
            (0..9).map(|i| (format!("d{i}"), json!("v"))).collect();
        assert_eq!(code(json!({ "filters": many })), "invalid_filter");
    }

    #[test]
    fn the_tenant_minimum_interval_applies() {
        let limits = AlertLimits {
            min_interval_minutes: 15,
            ..AlertLimits::default()
        };
        let r = input(json!({"interval": "5m"})).validate(&limits, UrlPolicy::PUBLIC, None);
        assert_eq!(r.err(), Some(AlertError::InvalidInterval { min_minutes: 15 }));
    }

    #[test]
    fn conditions_hold_as_documented() {
        let seen = |value, previous| Observation { value, previous };
        let above = Condition::Above { threshold: 5.0 };
        assert!(above.holds(&seen(Some(6.0), None)));
        assert!(!above.holds(&seen(Some(5.0), None)));
        assert!(!above.holds(&seen(None, None)));
        let below = Condition::Below { threshold: 1.0 };
        assert!(below.holds(&seen(Some(0.0), None)));
        assert!(!below.holds(&seen(None, None)));
        let rise = Condition::ChangePct { threshold: 50.0 };
        assert!(rise.holds(&seen(Some(15.0), Some(10.0))));
        assert!(!rise.holds(&seen(Some(14.0), Some(10.0))));
        assert!(!rise.holds(&seen(Some(15.0), Some(0.0))));
        assert!(!rise.holds(&seen(Some(15.0), None)));
        let fall = Condition::ChangePct { threshold: -50.0 };
        assert!(fall.holds(&seen(Some(5.0), Some(10.0))));
        assert!(!fall.holds(&seen(Some(6.0), Some(10.0))));
        assert!(Condition::Absent.holds(&seen(None, None)));
        assert!(Condition::Absent.holds(&seen(Some(0.0), None)));
        assert!(!Condition::Absent.holds(&seen(Some(1.0), None)));
        assert_eq!(observed(Aggregation::Count, None), Some(0.0));
        assert_eq!(observed(Aggregation::Avg, None), None);
    }
}
