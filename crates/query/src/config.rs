//! The `metrics-query` function's settings, read once at start from the environment (the
//! names the CDK stack sets, infra/lib/constructs/query-api.ts and store.ts).
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `TENANT_CLAIM` | `tenant_id` | JWT claim (or Lambda-authorizer context key) holding the tenant |
//! | `METRICS_STORE` | `timestream` | `timestream`, `influxdb` or `embedded` |
//! | `TIMESTREAM_DATABASE` | `Metrics` | Timestream database holding one table per tenant |
//! | `TENANT_QUERY_ROLE_ARN` | unset | role assumed per tenant with a session tag (IAM isolation) |
//! | `TENANT_SESSION_TAG` | `tenant` | the session tag's key |
//! | `EMBEDDED_STORE_PATH` | `metrics-lake.sqlite` | SQLite file of the embedded store |
//! | `INFLUXDB_URL` | — | with `influxdb`: the instance's `https://host:port` |
//! | `INFLUXDB_TOKEN_SECRET_ARN` | — | with `influxdb`: Secrets Manager secret holding the read token (bare, or `{"token", "tenants": {…}}` for per-tenant read tokens) |
//! | `INFLUXDB_TOKEN` | — | the token itself (local runs); set exactly one of the two |
//! | `QUERY_CACHE_TTL_SECS` | `60` | how long an answer is reused (0: never) |
//! | `QUERY_CACHE_MAX_ENTRIES` | `1000` | answers kept per container |

use std::path::PathBuf;
use std::time::Duration;

use metrics_store::influx::BothTokenVariables;
pub use metrics_store::influx::TokenSource;

/// Which store the function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Timestream {
        database: String,
        role_arn: Option<String>,
        session_tag: String,
    },
    Embedded {
        path: PathBuf,
    },
    /// Timestream for InfluxDB 3: one database per tenant.
    Influxdb {
        url: String,
        token: TokenSource,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tenant_claim: String,
    pub store: StoreChoice,
    pub cache_ttl: Duration,
    pub cache_entries: usize,
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| ConfigError {
            name,
            problem: format!("{text:?} is not a whole number"),
        }),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let store = match get("METRICS_STORE").as_deref() {
            None | Some("timestream") => StoreChoice::Timestream {
                database: get("TIMESTREAM_DATABASE").unwrap_or_else(|| "Metrics".to_owned()),
                role_arn: get("TENANT_QUERY_ROLE_ARN"),
                session_tag: get("TENANT_SESSION_TAG").unwrap_or_else(|| "tenant".to_owned()),
            },
            Some("embedded") => StoreChoice::Embedded {
                path: get("EMBEDDED_STORE_PATH")
                    .unwrap_or_else(|| "metrics-lake.sqlite".to_owned())
                    .into(),
            },
            Some("influxdb") => {
                let url = get("INFLUXDB_URL").ok_or_else(|| ConfigError {
                    name: "INFLUXDB_URL",
                    problem: "required with METRICS_STORE=influxdb".into(),
                })?;
                let token = match TokenSource::from_lookup(&get) {
                    Ok(Some(source)) => source,
                    Ok(None) => {
                        return Err(ConfigError {
                            name: BothTokenVariables::VARIABLE,
                            problem: "set exactly one of INFLUXDB_TOKEN_SECRET_ARN and INFLUXDB_TOKEN".into(),
                        });
                    }
                    Err(both) => {
                        return Err(ConfigError {
                            name: BothTokenVariables::VARIABLE,
                            problem: both.to_string(),
                        });
                    }
                };
                StoreChoice::Influxdb { url, token }
            }
            Some(other) => {
                return Err(ConfigError {
                    name: "METRICS_STORE",
                    problem: format!("{other:?}: the query API reads timestream, influxdb or embedded"),
                });
            }
        };
        Ok(Config {
            tenant_claim: get("TENANT_CLAIM").unwrap_or_else(|| "tenant_id".to_owned()),
            store,
            cache_ttl: Duration::from_secs(number(&get, "QUERY_CACHE_TTL_SECS", 60)?),
            cache_entries: number(&get, "QUERY_CACHE_MAX_ENTRIES", 1000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_read_timestream_with_the_documented_names() {
        let c = from(&[]).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.tenant_claim, "tenant_id");
        assert_eq!(
            c.store,
            StoreChoice::Timestream {
                database: "Metrics".into(),
                role_arn: None,
                session_tag: "tenant".into()
            }
        );
        assert_eq!(c.cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn influxdb_needs_a_url_and_exactly_one_token_source() {
        let c = from(&[
            ("METRICS_STORE", "influxdb"),
            ("INFLUXDB_URL", "https://influx.example:8181"),
            (
                "INFLUXDB_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:t",
            ),
        ])
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            c.store,
            StoreChoice::Influxdb {
                url: "https://influx.example:8181".into(),
                token: TokenSource::SecretArn("arn:aws:secretsmanager:us-east-1:1:secret:t".into())
            }
        );
        let local = from(&[
            ("METRICS_STORE", "influxdb"),
            ("INFLUXDB_URL", "http://127.0.0.1:8181"),
            ("INFLUXDB_TOKEN", "s3cret"),
        ])
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            !format!("{local:?}").contains("s3cret"),
            "the token never shows in Debug output"
        );
        assert_eq!(
            from(&[("METRICS_STORE", "influxdb")]).map_err(|e| e.name),
            Err("INFLUXDB_URL")
        );
        let both = from(&[
            ("METRICS_STORE", "influxdb"),
            ("INFLUXDB_URL", "http://x"),
            ("INFLUXDB_TOKEN", "a"),
            ("INFLUXDB_TOKEN_SECRET_ARN", "b"),
        ]);
        assert_eq!(both.map_err(|e| e.name), Err("INFLUXDB_TOKEN_SECRET_ARN"));
    }

    #[test]
    fn the_stacks_variables_are_read_and_bad_ones_refused() {
        let c = from(&[
            ("TENANT_CLAIM", "custom:tenant_id"),
            ("TIMESTREAM_DATABASE", "metrics-lake-dev"),
            ("TENANT_QUERY_ROLE_ARN", "arn:aws:iam::1:role/q"),
            ("QUERY_CACHE_TTL_SECS", "0"),
        ])
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.tenant_claim, "custom:tenant_id");
        assert!(
            matches!(c.store, StoreChoice::Timestream { ref role_arn, .. } if role_arn.as_deref() == Some("arn:aws:iam::1:role/q"))
        );
        assert_eq!(c.cache_ttl, Duration::ZERO);
        assert_eq!(
            from(&[("METRICS_STORE", "influx")]).map_err(|e| e.name),
            Err("METRICS_STORE")
        );
        assert_eq!(
            from(&[("QUERY_CACHE_TTL_SECS", "soon")]).map_err(|e| e.name),
            Err("QUERY_CACHE_TTL_SECS")
        );
    }
}
