//! The `metrics-query` function's settings, read once at start from the environment (the
//! names the CDK stack sets, infra/lib/constructs/query-api.ts and store.ts), and the engine
//! they open ([`Config::open_engine`]).
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `TENANT_CLAIM` | `tenant_id` | JWT claim (or Lambda-authorizer context key) holding the tenant |
//! | `METRICS_STORE` | `timestream` | `timestream`, `influxdb` or `embedded` (parsed by [`StoreKind`], as the writer parses it) |
//! | `TIMESTREAM_DATABASE` | `Metrics` | Timestream database holding one table per tenant |
//! | `TENANT_QUERY_ROLE_ARN` | unset | role assumed per tenant with a session tag (IAM isolation) |
//! | `TENANT_SESSION_TAG` | `tenant` | the session tag's key |
//! | `EMBEDDED_STORE_PATH` | `metrics-lake.sqlite` | SQLite file of the embedded store |
//! | `INFLUXDB_URL` | — | with `influxdb`: the instance's `https://host:port` |
//! | `INFLUXDB_API` | `v3` | with `influxdb`: only `v3` is accepted; the engine speaks InfluxDB 3 SQL, so `v2` is refused at start rather than answering every chart empty |
//! | `INFLUXDB_TOKEN_SECRET_ARN` | — | with `influxdb`: Secrets Manager secret holding the read token (bare, or `{"token", "tenants": {…}}` for per-tenant read tokens) |
//! | `INFLUXDB_TOKEN` | — | the token itself (local runs); set exactly one of the two |
//! | `QUERY_CACHE_TTL_SECS` | `60` | how long an answer is reused (0: never) |
//! | `QUERY_CACHE_MAX_ENTRIES` | `1000` | answers kept per container |
//!
//! `INFLUXDB_ORG` is not read: InfluxDB 3 has no organizations.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
pub use metrics_store::influx::TokenSource;
use metrics_store::influx::{ApiVersion, BothTokenVariables};
use metrics_store::{EmbeddedSettings, EmbeddedStore, StoreError, StoreKind};

use crate::embedded::EmbeddedEngine;
use crate::engine::Engine;
use crate::influx::{InfluxEngine, QueryTokens};
use crate::model::{Limits, QueryError};
use crate::timestream::{TenantRole, TimestreamEngine};

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
        let kind =
            StoreKind::from_setting(get(StoreKind::VARIABLE).as_deref()).map_err(|problem| ConfigError {
                name: StoreKind::VARIABLE,
                problem,
            })?;
        let store = match kind {
            StoreKind::Timestream => StoreChoice::Timestream {
                database: get("TIMESTREAM_DATABASE").unwrap_or_else(|| "Metrics".to_owned()),
                role_arn: get("TENANT_QUERY_ROLE_ARN"),
                session_tag: get("TENANT_SESSION_TAG").unwrap_or_else(|| "tenant".to_owned()),
            },
            StoreKind::Embedded => StoreChoice::Embedded {
                path: get("EMBEDDED_STORE_PATH")
                    .unwrap_or_else(|| "metrics-lake.sqlite".to_owned())
                    .into(),
            },
            StoreKind::Influxdb => influxdb(&get)?,
        };
        Ok(Config {
            tenant_claim: get("TENANT_CLAIM").unwrap_or_else(|| "tenant_id".to_owned()),
            store,
            cache_ttl: Duration::from_secs(number(&get, "QUERY_CACHE_TTL_SECS", 60)?),
            cache_entries: number(&get, "QUERY_CACHE_MAX_ENTRIES", 1000)?,
        })
    }

    /// Builds the engine of the configured store, once per container. `sdk` is called only for
    /// the stores that need AWS (Timestream; InfluxDB with a token secret), so the embedded
    /// store needs no AWS configuration at all.
    pub async fn open_engine<F, Fut>(&self, sdk: F) -> Result<Arc<dyn Engine>, OpenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = SdkConfig>,
    {
        let limits = Limits::default();
        Ok(match &self.store {
            StoreChoice::Embedded { path } => {
                let store = EmbeddedStore::open(EmbeddedSettings::new(path)).map_err(OpenError::Store)?;
                Arc::new(EmbeddedEngine::new(Arc::new(store), limits))
            }
            StoreChoice::Timestream {
                database,
                role_arn,
                session_tag,
            } => {
                let role = role_arn.clone().map(|arn| TenantRole {
                    arn,
                    session_tag: session_tag.clone(),
                });
                let engine = TimestreamEngine::connect(sdk().await, database.clone(), role, limits)
                    .await
                    .map_err(OpenError::Engine)?;
                Arc::new(engine)
            }
            StoreChoice::Influxdb { url, token } => {
                // Read once per container; errors name the secret, never its value.
                let text = token
                    .read(sdk)
                    .await
                    .map_err(|e| OpenError::Secret(e.to_string()))?;
                let tokens = QueryTokens::from_secret_string(text.expose()).ok_or(OpenError::NoToken)?;
                Arc::new(InfluxEngine::new(url, tokens, limits).map_err(OpenError::Engine)?)
            }
        })
    }
}

/// Why the engine could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the embedded store cannot be opened: {0}")]
    Store(StoreError),
    #[error("the InfluxDB token secret cannot be read: {0}")]
    Secret(String),
    #[error("the InfluxDB token secret holds no token")]
    NoToken,
    #[error("the engine cannot start: {}", .0.message)]
    Engine(QueryError),
}

/// The InfluxDB settings: a URL, exactly one token source, and the API the engine speaks.
fn influxdb(get: &impl Fn(&str) -> Option<String>) -> Result<StoreChoice, ConfigError> {
    let url = get("INFLUXDB_URL").ok_or_else(|| ConfigError {
        name: "INFLUXDB_URL",
        problem: "required with METRICS_STORE=influxdb".into(),
    })?;
    let api = match get("INFLUXDB_API") {
        None => ApiVersion::V3,
        Some(v) => v.trim().parse().map_err(|problem| ConfigError {
            name: "INFLUXDB_API",
            problem,
        })?,
    };
    if api == ApiVersion::V2 {
        // v2 answers `/api/v3/query_sql` with 404, which would read as "no data" for every
        // tenant: refuse at start instead of serving empty charts.
        return Err(ConfigError {
            name: "INFLUXDB_API",
            problem: "v2 is not supported by the query API, which reads InfluxDB 3 over SQL \
                      (/api/v3/query_sql); query an InfluxDB 3 instance (INFLUXDB_API=v3)"
                .into(),
        });
    }
    let token = match TokenSource::from_lookup(get) {
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
    Ok(StoreChoice::Influxdb { url, token })
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
                token: TokenSource::SecretArn("arn:aws:secretsmanager:us-east-1:1:secret:t".into()),
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
    fn influxdb_v2_is_refused_at_start_with_a_clear_message() {
        let base = [
            ("METRICS_STORE", "influxdb"),
            ("INFLUXDB_URL", "http://127.0.0.1:8086"),
            ("INFLUXDB_TOKEN", "t"),
        ];
        for v2 in ["v2", "2"] {
            let refused = from(&[base.as_slice(), &[("INFLUXDB_API", v2), ("INFLUXDB_ORG", "org")]].concat())
                .unwrap_err();
            assert_eq!(refused.name, "INFLUXDB_API");
            assert!(refused.problem.contains("InfluxDB 3"), "{refused}");
        }
        assert!(from(&[base.as_slice(), &[("INFLUXDB_API", "v3")]].concat()).is_ok());
        assert!(from(&base).is_ok(), "v3 is the default");
        assert_eq!(
            from(&[base.as_slice(), &[("INFLUXDB_API", "v4")]].concat()).map_err(|e| e.name),
            Err("INFLUXDB_API")
        );
    }

    #[tokio::test]
    async fn the_embedded_engine_opens_without_any_aws_configuration() {
        let dir = std::env::temp_dir().join(format!("metrics-query-config-{}", std::process::id()));
        let path = dir.join("store.sqlite");
        let config = from(&[
            ("METRICS_STORE", "embedded"),
            ("EMBEDDED_STORE_PATH", path.to_str().unwrap_or_default()),
        ])
        .unwrap_or_else(|e| unreachable!("{e}"));
        let engine = config
            .open_engine(|| async { unreachable!("the embedded store asks for no AWS configuration") })
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(engine.name(), "embedded");
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(dir);
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
