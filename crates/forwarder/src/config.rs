//! Configuration from environment variables, read once at start and validated, so a mistake
//! stops the function before it takes an event, with a message naming the variable. Every
//! variable and its default is listed in the crate README.

use std::time::Duration;

use crate::credentials::{MixpanelSource, SegmentSource};
use crate::destination::mixpanel::{MixpanelAuth, Residency};
use crate::destination::segment::DEFAULT_ENDPOINT as SEGMENT_DEFAULT_ENDPOINT;
use crate::payload::mixpanel::{DEFAULT_GROUP_KEY, MixpanelFormat};
use crate::payload::segment::SegmentFormat;
use crate::policy::{DEFAULT_METADATA_FIELDS, Policy, Selection, names};
use crate::retry::RetryPolicy;
use metrics_http::Secret;

pub const DEFAULT_CONCURRENCY: usize = 4;
pub const MAX_CONCURRENCY: usize = 64;
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_RETRY_BASE_MS: u64 = 1_000;
pub const DEFAULT_RETRY_MAX_MS: u64 = 60_000;
pub const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 8;
pub const DEFAULT_DEADLINE_MARGIN_MS: u64 = 5_000;
pub const DEFAULT_DEAD_LETTER_PREFIX: &str = "Error/forwarder/";
pub const DEFAULT_PROGRESS_PREFIX: &str = "State/forwarder/";

/// One destination's settings. `source` is `None` when no credentials are configured, and the
/// destination is then disabled; the format is always there, for [`crate::prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConfig<F, S> {
    pub format: F,
    /// Scheme and host (and optional path prefix), without a trailing slash.
    pub endpoint: String,
    pub source: Option<S>,
    /// `false` when `*_ENABLED=false`.
    pub enabled: bool,
}

impl<F, S> DestinationConfig<F, S> {
    /// Why it is disabled, if it is.
    pub fn disabled_because(&self) -> Option<&'static str> {
        if !self.enabled {
            Some("disabled by configuration")
        } else if self.source.is_none() {
            Some("no credentials configured")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub segment: DestinationConfig<SegmentFormat, SegmentSource>,
    pub mixpanel: DestinationConfig<MixpanelFormat, MixpanelSource>,
    /// `FORWARD_CONCURRENCY`: requests in flight per destination.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// `HTTP_TIMEOUT_MS`: longest wait for one answer.
    pub request_timeout: Duration,
    /// `DEADLINE_MARGIN_MS`: time kept back from the Lambda deadline for dead letters and markers
    /// (at most a quarter of the time left, `metrics_objects::work_time`).
    pub deadline_margin: Duration,
    /// `DEAD_LETTER_BUCKET`: `None` means the source object's bucket.
    pub dead_letter_bucket: Option<String>,
    /// `DEAD_LETTER_PREFIX`.
    pub dead_letter_prefix: String,
    /// `PROGRESS_PREFIX`: per-destination completion markers, in the dead-letter bucket.
    pub progress_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("{0} is set but empty")]
    Empty(&'static str),
    #[error("set only one of {0} and {1}")]
    Both(&'static str, &'static str),
    #[error("{0} lists fields to hash, so PII_HASH_SALT must be set")]
    NoSalt(&'static str),
    #[error("Mixpanel service-account credentials need {0} as well")]
    IncompleteMixpanel(&'static str),
}

/// Reads variables through a lookup function (tests pass a map).
struct Env<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.0)(name) {
            Some(v) if v.trim().is_empty() => Err(ConfigError::Empty(name)),
            other => Ok(other.map(|v| v.trim().to_owned())),
        }
    }

    fn text(&self, name: &'static str, default: &str) -> String {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| default.to_owned())
    }

    fn number<T: std::str::FromStr + PartialOrd>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        match self.get(name)? {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or(ConfigError::Invalid {
                    name,
                    expected,
                    value: v,
                }),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.get(name)?.as_deref() {
            None | Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                name,
                expected: "true or false",
                value: other.into(),
            }),
        }
    }

    fn endpoint(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name)?.unwrap_or_else(|| default.to_owned());
        let uri: Option<http::Uri> = value.parse().ok();
        let valid = uri.is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some() && u.query().is_none()
        });
        if valid {
            Ok(value.trim_end_matches('/').to_owned())
        } else {
            Err(ConfigError::Invalid {
                name,
                expected: "an http(s) URL such as https://host",
                value,
            })
        }
    }
}

/// The variable names of one destination's policy.
struct PolicyVars {
    metrics: &'static str,
    metadata: &'static str,
    data: &'static str,
    drop: &'static str,
    hash: &'static str,
}

const SEGMENT_POLICY: PolicyVars = PolicyVars {
    metrics: "SEGMENT_METRICS",
    metadata: "SEGMENT_METADATA_FIELDS",
    data: "SEGMENT_DATA_FIELDS",
    drop: "SEGMENT_DROP_FIELDS",
    hash: "SEGMENT_HASH_FIELDS",
};

const MIXPANEL_POLICY: PolicyVars = PolicyVars {
    metrics: "MIXPANEL_METRICS",
    metadata: "MIXPANEL_METADATA_FIELDS",
    data: "MIXPANEL_DATA_FIELDS",
    drop: "MIXPANEL_DROP_FIELDS",
    hash: "MIXPANEL_HASH_FIELDS",
};

fn policy<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    vars: &PolicyVars,
    salt: Option<&Secret>,
    user_id_field: Option<&String>,
) -> Result<Policy, ConfigError> {
    let hash = names(&env.text(vars.hash, ""));
    if !hash.is_empty() && salt.is_none() {
        return Err(ConfigError::NoSalt(vars.hash));
    }
    Ok(Policy {
        metrics: Selection::parse(&env.text(vars.metrics, "*")),
        metadata: Selection::parse(&env.text(vars.metadata, DEFAULT_METADATA_FIELDS)),
        data: Selection::parse(&env.text(vars.data, "*")),
        drop: names(&env.text(vars.drop, "")),
        hash,
        salt: salt.cloned(),
        user_id_field: user_id_field.cloned(),
    })
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(var);
        let salt = env.get("PII_HASH_SALT")?.map(Secret::new);
        let user_id_field = env.get("USER_ID_FIELD")?;

        let segment_policy = policy(&env, &SEGMENT_POLICY, salt.as_ref(), user_id_field.as_ref())?;
        let segment_source = match (
            env.get("SEGMENT_WRITE_KEY_SECRET_ARN")?,
            env.get("SEGMENT_WRITE_KEY")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Both(
                    "SEGMENT_WRITE_KEY_SECRET_ARN",
                    "SEGMENT_WRITE_KEY",
                ));
            }
            (Some(arn), None) => Some(SegmentSource::SecretArn(arn)),
            (None, Some(key)) => Some(SegmentSource::Env(Secret::new(key))),
            (None, None) => None,
        };
        let segment = DestinationConfig {
            format: SegmentFormat::new(segment_policy),
            endpoint: env.endpoint("SEGMENT_ENDPOINT", SEGMENT_DEFAULT_ENDPOINT)?,
            source: segment_source,
            enabled: env.flag("SEGMENT_ENABLED")?,
        };

        let mixpanel_policy = policy(&env, &MIXPANEL_POLICY, salt.as_ref(), user_id_field.as_ref())?;
        let group_key = env
            .get("MIXPANEL_GROUP_KEY")?
            .unwrap_or_else(|| DEFAULT_GROUP_KEY.to_owned());
        let residency = match env.get("MIXPANEL_RESIDENCY")? {
            None => Residency::Us,
            Some(v) => Residency::parse(&v).ok_or(ConfigError::Invalid {
                name: "MIXPANEL_RESIDENCY",
                expected: "us, eu or in",
                value: v,
            })?,
        };
        let mixpanel = DestinationConfig {
            format: MixpanelFormat::new(mixpanel_policy, group_key),
            endpoint: env.endpoint("MIXPANEL_ENDPOINT", residency.endpoint())?,
            source: mixpanel_source(&env)?,
            enabled: env.flag("MIXPANEL_ENABLED")?,
        };

        let ms = |name, default, min| {
            env.number::<u64>(name, default, min..=u64::MAX, "a whole number of milliseconds")
        };
        let retry = RetryPolicy {
            base: Duration::from_millis(ms("RETRY_BASE_MS", DEFAULT_RETRY_BASE_MS, 1)?),
            max: Duration::from_millis(ms("RETRY_MAX_MS", DEFAULT_RETRY_MAX_MS, 1)?),
            max_attempts: env.number(
                "RETRY_MAX_ATTEMPTS",
                DEFAULT_RETRY_MAX_ATTEMPTS,
                1..=100,
                "1 to 100",
            )?,
        };
        Ok(Config {
            segment,
            mixpanel,
            concurrency: env.number(
                "FORWARD_CONCURRENCY",
                DEFAULT_CONCURRENCY,
                1..=MAX_CONCURRENCY,
                "1 to 64",
            )?,
            retry,
            request_timeout: Duration::from_millis(ms("HTTP_TIMEOUT_MS", DEFAULT_HTTP_TIMEOUT_MS, 1)?),
            deadline_margin: Duration::from_millis(ms("DEADLINE_MARGIN_MS", DEFAULT_DEADLINE_MARGIN_MS, 0)?),
            dead_letter_bucket: env.get("DEAD_LETTER_BUCKET")?,
            dead_letter_prefix: env
                .get("DEAD_LETTER_PREFIX")?
                .unwrap_or_else(|| DEFAULT_DEAD_LETTER_PREFIX.into()),
            progress_prefix: env
                .get("PROGRESS_PREFIX")?
                .unwrap_or_else(|| DEFAULT_PROGRESS_PREFIX.into()),
        })
    }
}

fn mixpanel_source<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<MixpanelSource>, ConfigError> {
    let project_id = env.get("MIXPANEL_PROJECT_ID")?;
    if let Some(arn) = env.get("MIXPANEL_SECRET_ARN")? {
        for name in [
            "MIXPANEL_SERVICE_ACCOUNT",
            "MIXPANEL_SERVICE_SECRET",
            "MIXPANEL_PROJECT_TOKEN",
        ] {
            if env.get(name)?.is_some() {
                return Err(ConfigError::Both("MIXPANEL_SECRET_ARN", name));
            }
        }
        return Ok(Some(MixpanelSource::SecretArn { arn, project_id }));
    }
    let account = env.get("MIXPANEL_SERVICE_ACCOUNT")?;
    let secret = env.get("MIXPANEL_SERVICE_SECRET")?;
    let token = env.get("MIXPANEL_PROJECT_TOKEN")?;
    let auth = match (account, secret, token) {
        (Some(_), Some(_), Some(_)) => {
            return Err(ConfigError::Both(
                "MIXPANEL_SERVICE_ACCOUNT",
                "MIXPANEL_PROJECT_TOKEN",
            ));
        }
        (Some(username), Some(secret), None) => {
            let project_id = project_id.ok_or(ConfigError::IncompleteMixpanel("MIXPANEL_PROJECT_ID"))?;
            MixpanelAuth::ServiceAccount {
                project_id,
                username,
                secret: Secret::new(secret),
            }
        }
        (Some(_), None, _) => return Err(ConfigError::IncompleteMixpanel("MIXPANEL_SERVICE_SECRET")),
        (None, Some(_), _) => return Err(ConfigError::IncompleteMixpanel("MIXPANEL_SERVICE_ACCOUNT")),
        (None, None, Some(token)) => MixpanelAuth::ProjectToken {
            token: Secret::new(token),
        },
        (None, None, None) => return Ok(None),
    };
    Ok(Some(MixpanelSource::Env(auth)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(metrics_testkit::lookup(vars))
    }

    #[test]
    fn without_credentials_both_destinations_are_disabled_with_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.segment.disabled_because(), Some("no credentials configured"));
        assert_eq!(c.mixpanel.disabled_because(), Some("no credentials configured"));
        assert_eq!(c.segment.endpoint, "https://api.segment.io");
        assert_eq!(c.mixpanel.endpoint, "https://api.mixpanel.com");
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.retry, RetryPolicy::default());
        assert_eq!(c.deadline_margin, Duration::from_secs(5));
        assert_eq!(
            (c.dead_letter_bucket, c.dead_letter_prefix.as_str()),
            (None, "Error/forwarder/")
        );
        assert_eq!(c.progress_prefix, "State/forwarder/");
        assert_eq!(c.mixpanel.format.group_key, "tenant_id");
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            ("SEGMENT_WRITE_KEY", "wk"),
            ("SEGMENT_ENDPOINT", "http://127.0.0.1:9/"),
            ("SEGMENT_METRICS", "a,b"),
            ("SEGMENT_HASH_FIELDS", "user_id"),
            ("PII_HASH_SALT", "pepper"),
            ("USER_ID_FIELD", "user_id"),
            ("MIXPANEL_PROJECT_TOKEN", "tok"),
            ("MIXPANEL_RESIDENCY", "eu"),
            ("MIXPANEL_DROP_FIELDS", "email"),
            ("MIXPANEL_GROUP_KEY", "company_id"),
            ("MIXPANEL_ENABLED", "false"),
            ("FORWARD_CONCURRENCY", "16"),
            ("HTTP_TIMEOUT_MS", "2500"),
            ("RETRY_BASE_MS", "10"),
            ("RETRY_MAX_MS", "100"),
            ("RETRY_MAX_ATTEMPTS", "3"),
            ("DEADLINE_MARGIN_MS", "0"),
            ("DEAD_LETTER_BUCKET", "dl"),
            ("DEAD_LETTER_PREFIX", "dead/"),
            ("PROGRESS_PREFIX", "progress/"),
        ])
        .unwrap();
        assert_eq!(c.segment.source, Some(SegmentSource::Env(Secret::new("wk"))));
        assert_eq!(c.segment.endpoint, "http://127.0.0.1:9");
        assert!(c.segment.format.policy.admits("a") && !c.segment.format.policy.admits("c"));
        assert_eq!(c.segment.format.policy.salt, Some(Secret::new("pepper")));
        assert_eq!(c.segment.format.policy.user_id_field.as_deref(), Some("user_id"));
        assert_eq!(c.mixpanel.endpoint, "https://api-eu.mixpanel.com");
        assert_eq!(c.mixpanel.disabled_because(), Some("disabled by configuration"));
        assert!(c.mixpanel.format.policy.drop.contains("email"));
        assert_eq!(c.mixpanel.format.group_key, "company_id");
        assert_eq!(
            (c.concurrency, c.request_timeout),
            (16, Duration::from_millis(2500))
        );
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.dead_letter_bucket.as_deref(), Some("dl"));
        assert_eq!(
            (c.dead_letter_prefix.as_str(), c.progress_prefix.as_str()),
            ("dead/", "progress/")
        );
    }

    #[test]
    fn mistakes_name_their_variable() {
        let message = |vars: &[(&str, &str)]| config(vars).unwrap_err().to_string();
        assert!(message(&[("FORWARD_CONCURRENCY", "0")]).contains("FORWARD_CONCURRENCY"));
        assert!(message(&[("SEGMENT_ENDPOINT", "api.segment.io")]).contains("SEGMENT_ENDPOINT"));
        assert!(message(&[("MIXPANEL_RESIDENCY", "mars")]).contains("MIXPANEL_RESIDENCY"));
        assert!(message(&[("MIXPANEL_HASH_FIELDS", "email")]).contains("PII_HASH_SALT"));
        assert!(
            message(&[("SEGMENT_WRITE_KEY", "a"), ("SEGMENT_WRITE_KEY_SECRET_ARN", "b")])
                .contains("only one")
        );
        assert!(
            message(&[
                ("MIXPANEL_SERVICE_ACCOUNT", "u"),
                ("MIXPANEL_SERVICE_SECRET", "s")
            ])
            .contains("MIXPANEL_PROJECT_ID")
        );
        assert!(message(&[("HTTP_TIMEOUT_MS", "")]).contains("HTTP_TIMEOUT_MS"));
    }

    #[test]
    fn mixpanel_credentials_come_from_a_service_account_a_token_or_a_secret() {
        let c = config(&[
            ("MIXPANEL_SERVICE_ACCOUNT", "u"),
            ("MIXPANEL_SERVICE_SECRET", "s"),
            ("MIXPANEL_PROJECT_ID", "42"),
        ])
        .unwrap();
        assert_eq!(
            c.mixpanel.source,
            Some(MixpanelSource::Env(MixpanelAuth::ServiceAccount {
                project_id: "42".into(),
                username: "u".into(),
                secret: Secret::new("s"),
            }))
        );
        let c = config(&[("MIXPANEL_SECRET_ARN", "arn:aws:secretsmanager:x")]).unwrap();
        assert_eq!(
            c.mixpanel.source,
            Some(MixpanelSource::SecretArn {
                arn: "arn:aws:secretsmanager:x".into(),
                project_id: None
            })
        );
    }

    #[test]
    fn credentials_never_show_in_the_debug_form() {
        let c = config(&[
            ("SEGMENT_WRITE_KEY", "wk-very-secret"),
            ("MIXPANEL_PROJECT_TOKEN", "tok-secret"),
        ])
        .unwrap();
        let text = format!("{c:?}");
        assert!(
            !text.contains("very-secret") && !text.contains("tok-secret"),
            "{text}"
        );
    }
}
