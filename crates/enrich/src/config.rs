//! Configuration from environment variables, read once at start. Invalid configuration stops
//! the function before it takes an event, with a message naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use crate::firehose::FirehoseResult;

/// `ENVIRONMENT` when unset.
pub const DEFAULT_ENVIRONMENT: &str = "dev";
/// `TENANT_CACHE_TTL_SECS` when unset.
pub const DEFAULT_TENANT_TTL_SECS: u64 = 300;
/// `UNKNOWN_TENANT_CACHE_TTL_SECS` when unset: shorter, so a tenant added to the directory
/// starts being accepted soon.
pub const DEFAULT_UNKNOWN_TENANT_TTL_SECS: u64 = 30;
/// Longest `ENVIRONMENT` value, in bytes (it is added to every event; see the response-size
/// derivation in the crate docs).
pub const MAX_ENVIRONMENT_BYTES: usize = 32;

/// What happens to a record that is invalid or names an unknown tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidRecordPolicy {
    /// `ProcessingFailed`: Firehose writes it under `Error/processing-failed/` for inspection
    /// and replay.
    #[default]
    Fail,
    /// `Dropped`: Firehose discards it (counted and logged here).
    Drop,
}

impl InvalidRecordPolicy {
    pub const fn result(self) -> FirehoseResult {
        match self {
            InvalidRecordPolicy::Fail => FirehoseResult::ProcessingFailed,
            InvalidRecordPolicy::Drop => FirehoseResult::Dropped,
        }
    }
}

/// Where tenant display names come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantsConfig {
    /// `TENANTS_FILE`: a JSON object `tenant_id → display name`, loaded once.
    File(PathBuf),
    /// `TENANTS_TABLE`: a DynamoDB table keyed by `tenant_id` with a string attribute `name`.
    Table(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ENVIRONMENT`: written to `metadata.environment`.
    pub environment: String,
    /// `INVALID_RECORD_POLICY`: `fail` (default) or `drop`.
    pub policy: InvalidRecordPolicy,
    /// `TENANTS_FILE` or `TENANTS_TABLE` (exactly one).
    pub tenants: TenantsConfig,
    /// `TENANT_CACHE_TTL_SECS`: how long a found tenant is cached (table only).
    pub tenant_ttl: Duration,
    /// `UNKNOWN_TENANT_CACHE_TTL_SECS`: how long an unknown tenant is cached (table only).
    pub unknown_tenant_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("set TENANTS_FILE (a JSON object tenant_id -> name) or TENANTS_TABLE (a DynamoDB table)")]
    NoTenantDirectory,
    #[error("set only one of TENANTS_FILE and TENANTS_TABLE")]
    TwoTenantDirectories,
    #[error("INVALID_RECORD_POLICY must be `fail` or `drop`, not {0:?}")]
    Policy(String),
    #[error("ENVIRONMENT must be 1-32 bytes of [A-Za-z0-9_.-], not {0:?}")]
    Environment(String),
    #[error("{name} must be a whole number of seconds, not {value:?}")]
    Seconds { name: &'static str, value: String },
    #[error("{0} is set but empty")]
    Empty(&'static str),
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `var` (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let environment = var("ENVIRONMENT").unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
        let environment_ok = (1..=MAX_ENVIRONMENT_BYTES).contains(&environment.len())
            && environment
                .bytes()
                .all(metrics_schema::names::is_safe_identifier_byte);
        if !environment_ok {
            return Err(ConfigError::Environment(environment));
        }

        let policy = match var("INVALID_RECORD_POLICY").as_deref().map(str::trim) {
            None | Some("fail") => InvalidRecordPolicy::Fail,
            Some("drop") => InvalidRecordPolicy::Drop,
            Some(other) => return Err(ConfigError::Policy(other.to_owned())),
        };

        let non_empty = |name: &'static str| match var(name) {
            Some(v) if v.is_empty() => Err(ConfigError::Empty(name)),
            other => Ok(other),
        };
        let tenants = match (non_empty("TENANTS_FILE")?, non_empty("TENANTS_TABLE")?) {
            (Some(file), None) => TenantsConfig::File(PathBuf::from(file)),
            (None, Some(table)) => TenantsConfig::Table(table),
            (None, None) => return Err(ConfigError::NoTenantDirectory),
            (Some(_), Some(_)) => return Err(ConfigError::TwoTenantDirectories),
        };

        let seconds = |name: &'static str, default: u64| match var(name) {
            None => Ok(Duration::from_secs(default)),
            Some(value) => value
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| ConfigError::Seconds { name, value }),
        };

        Ok(Config {
            environment,
            policy,
            tenants,
            tenant_ttl: seconds("TENANT_CACHE_TTL_SECS", DEFAULT_TENANT_TTL_SECS)?,
            unknown_tenant_ttl: seconds("UNKNOWN_TENANT_CACHE_TTL_SECS", DEFAULT_UNKNOWN_TENANT_TTL_SECS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(metrics_testkit::lookup(vars))
    }

    #[test]
    fn defaults_apply_when_only_a_directory_is_set() {
        let c = config(&[("TENANTS_FILE", "tenants.json")]).unwrap();
        assert_eq!(c.environment, "dev");
        assert_eq!(c.policy, InvalidRecordPolicy::Fail);
        assert_eq!(c.tenants, TenantsConfig::File("tenants.json".into()));
        assert_eq!(c.tenant_ttl, Duration::from_secs(300));
        assert_eq!(c.unknown_tenant_ttl, Duration::from_secs(30));
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            ("TENANTS_TABLE", "tenants"),
            ("ENVIRONMENT", "prod"),
            ("INVALID_RECORD_POLICY", "drop"),
            ("TENANT_CACHE_TTL_SECS", "60"),
            ("UNKNOWN_TENANT_CACHE_TTL_SECS", "0"),
        ])
        .unwrap();
        assert_eq!(c.environment, "prod");
        assert_eq!(c.policy, InvalidRecordPolicy::Drop);
        assert_eq!(c.policy.result(), FirehoseResult::Dropped);
        assert_eq!(c.tenants, TenantsConfig::Table("tenants".into()));
        assert_eq!(c.tenant_ttl, Duration::from_secs(60));
        assert_eq!(c.unknown_tenant_ttl, Duration::ZERO);
    }

    #[test]
    fn invalid_configuration_is_refused_with_the_variable_named() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "TENANTS_FILE"),
            (&[("TENANTS_FILE", "a"), ("TENANTS_TABLE", "b")], "only one"),
            (
                &[("TENANTS_FILE", "a"), ("INVALID_RECORD_POLICY", "ignore")],
                "INVALID_RECORD_POLICY",
            ),
            (
                &[("TENANTS_FILE", "a"), ("ENVIRONMENT", "has space")],
                "ENVIRONMENT",
            ),
            (
                &[("TENANTS_FILE", "a"), ("TENANT_CACHE_TTL_SECS", "5m")],
                "TENANT_CACHE_TTL_SECS",
            ),
            (&[("TENANTS_TABLE", "")], "TENANTS_TABLE"),
        ];
        for (vars, needle) in cases {
            let message = config(vars).unwrap_err().to_string();
            assert!(message.contains(needle), "{vars:?}: {message}");
        }
    }
}
