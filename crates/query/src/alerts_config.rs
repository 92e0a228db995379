//! Alert settings of the deployed functions, from the environment (the names the CDK stack
//! sets, infra/lib/constructs/alerts.ts): the query function serves the alert routes when
//! `ALERTS_TABLE` is set, and the evaluator function needs it.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `ALERTS_TABLE` | unset | the DynamoDB table of alerts (unset: the alert routes answer `not_found`) |
//! | `ALERTS_MAX_PER_TENANT` | `100` | alerts one tenant may have |
//! | `ALERTS_MIN_INTERVAL_MINUTES` | `1` | the shortest evaluation interval a tenant may set |
//! | `ALERTS_CONCURRENCY` | `8` | evaluator: tenants evaluated at the same time |
//! | `ALERTS_TENANT_BUDGET_SECS` | `20` | evaluator: time one tenant's reads may take per run |
//! | `ALERTS_BATCH` | `5000` | evaluator: alerts taken per run |

use std::time::Duration;

use metrics_alerts::{AlertLimits, EvaluatorSettings};

use crate::config::ConfigError;

/// The alert settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    pub table: Option<String>,
    pub limits: AlertLimits,
    pub evaluator: EvaluatorSettings,
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError {
                name,
                problem: format!("{text:?} is not a positive whole number"),
            }),
    }
}

fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl AlertsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        AlertsConfig::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = EvaluatorSettings::default();
        Ok(AlertsConfig {
            table: get("ALERTS_TABLE"),
            limits: AlertLimits {
                max_alerts: size(number(&get, "ALERTS_MAX_PER_TENANT", 100)?),
                min_interval_minutes: number(&get, "ALERTS_MIN_INTERVAL_MINUTES", 1)?,
                ..AlertLimits::default()
            },
            evaluator: EvaluatorSettings {
                concurrency: size(number(&get, "ALERTS_CONCURRENCY", 8)?),
                tenant_budget: Duration::from_secs(number(&get, "ALERTS_TENANT_BUDGET_SECS", 20)?),
                batch: size(number(&get, "ALERTS_BATCH", 5_000)?),
                ..defaults
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let none = AlertsConfig::from_lookup(|_| None);
        assert_eq!(
            none.as_ref()
                .map(|c| (c.table.clone(), c.limits.max_alerts, c.evaluator.concurrency)),
            Ok((None, 100, 8))
        );
        let set = AlertsConfig::from_lookup(|name| match name {
            "ALERTS_TABLE" => Some("alerts".into()),
            "ALERTS_MIN_INTERVAL_MINUTES" => Some("5".into()),
            "ALERTS_TENANT_BUDGET_SECS" => Some("3".into()),
            _ => None,
        });
        assert_eq!(
            set.map(|c| (c.table, c.limits.min_interval_minutes, c.evaluator.tenant_budget)),
            Ok((Some("alerts".into()), 5, Duration::from_secs(3)))
        );
        let bad = AlertsConfig::from_lookup(|name| (name == "ALERTS_CONCURRENCY").then(|| "0".into()));
        assert_eq!(bad.map_err(|e| e.name), Err("ALERTS_CONCURRENCY"));
    }
}
