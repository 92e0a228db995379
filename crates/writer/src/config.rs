//! The writer's configuration: environment variables, read once at start, validated, with
//! documented defaults. AWS regions, credentials and endpoints come from the SDK's standard
//! variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_TIMESTREAM_WRITE`, …).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `METRICS_STORE` | `timestream` | `timestream`, `influxdb` or `embedded` |
//! | `INFLUXDB_URL` | none (required for `influxdb`) | `https://<endpoint>:<port>` of the Timestream for InfluxDB instance |
//! | `INFLUXDB_API` | `v3` | `v3` (`/api/v3/write_lp`, one database per tenant) or `v2` (`/api/v2/write`, one bucket per tenant) |
//! | `INFLUXDB_TOKEN` | none | the API token itself (local runs); never logged |
//! | `INFLUXDB_TOKEN_SECRET_ARN` | none | Secrets Manager secret holding the token (the string, or JSON with `token`); read once per container. One of the two token variables is required for `influxdb` |
//! | `INFLUXDB_ORG` | none (required for `v2`) | the InfluxDB 2 organization |
//! | `INFLUXDB_RETENTION_DAYS` | `365` | retention of new databases or buckets (0 keeps data forever, up to 36500) |
//! | `TIMESTREAM_DATABASE` | `Metrics` | database holding one table per tenant |
//! | `TIMESTREAM_CREATE_DATABASE` | `false` | create the database too when it is missing |
//! | `MEMORY_RETENTION_HOURS` | `336` (14 days) | memory-store retention of new tables (1–8766) |
//! | `MAGNETIC_RETENTION_DAYS` | `365` | magnetic-store retention of new tables (1–73000); also the embedded store's retention |
//! | `EMBEDDED_STORE_PATH` | `metrics-lake.sqlite` | SQLite file of the embedded store |
//! | `WRITE_CONCURRENCY` | `16` | write calls in flight at once (1–256) |
//! | `WRITE_WINDOW_RECORDS` | `20000` | records converted and held at once (≥ 100) |
//! | `DEAD_LETTER_BUCKET` | the source object's bucket | where dead letters go |
//! | `DEAD_LETTER_PREFIX` | `Error/writer/` | key prefix of dead letters (`<prefix><source key>.ndjson`) |
//! | `MAX_OBJECT_BYTES` | `134217728` (128 MiB) | largest object read, as stored |
//! | `MAX_DECOMPRESSED_BYTES` | `1073741824` (1 GiB) | largest object after gunzip |
//! | `MAX_RECORD_BYTES` | `1048576` (1 MiB) | longest line |
//! | `DEADLINE_MARGIN_MS` | `3000` | time kept back from the Lambda deadline to report and write dead letters (at most a quarter of the time left) |

use std::path::PathBuf;
use std::time::Duration;

use metrics_objects::ReadLimits;
use metrics_store::influx::{ApiVersion, BothTokenVariables, Endpoint, InfluxSettings, TokenSource};
use metrics_store::timestream::{TableSettings, TimestreamSettings};
use metrics_store::{
    AnyStore, EmbeddedSettings, EmbeddedStore, InfluxStore, StoreError, StoreKind, TimestreamStore,
};

use crate::write::WriteOptions;

/// The writer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreKind,
    pub timestream: TimestreamSettings,
    pub embedded_path: PathBuf,
    /// The InfluxDB adapter's settings (used when `store` is `influxdb`).
    pub influxdb: InfluxSettings,
    /// Where the InfluxDB token comes from; `Some` whenever `store` is `influxdb`.
    pub influxdb_token: Option<TokenSource>,
    pub write: WriteOptions,
    /// `None`: the source object's bucket.
    pub dead_letter_bucket: Option<String>,
    pub dead_letter_prefix: String,
    pub deadline_margin: Duration,
}

/// A variable with a value the writer cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is invalid: {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub expected: String,
}

impl Config {
    /// Opens the configured store. `sdk` is called only for the stores that need AWS
    /// (Timestream; InfluxDB, for its token secret), so the embedded store needs no AWS
    /// configuration at all.
    pub async fn open_store<F, Fut>(&self, sdk: F) -> Result<AnyStore, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = aws_config::SdkConfig>,
    {
        Ok(match self.store {
            StoreKind::Timestream => {
                AnyStore::Timestream(TimestreamStore::connect(&sdk().await, self.timestream.clone()).await?)
            }
            StoreKind::Embedded => {
                let mut settings = EmbeddedSettings::new(&self.embedded_path);
                settings.retention_days = self.timestream.table.magnetic_retention_days;
                AnyStore::Embedded(EmbeddedStore::open(settings)?)
            }
            StoreKind::Influxdb => {
                let source = self.influxdb_token.clone().ok_or_else(|| {
                    StoreError::Refused("set INFLUXDB_TOKEN or INFLUXDB_TOKEN_SECRET_ARN".into())
                })?;
                AnyStore::Influxdb(Box::new(
                    InfluxStore::connect(&sdk().await, self.influxdb.clone(), source).await?,
                ))
            }
        })
    }

    /// From the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let setting = get(StoreKind::VARIABLE);
        let store = StoreKind::from_setting(setting.as_deref()).map_err(|expected| ConfigError {
            name: StoreKind::VARIABLE,
            value: setting.clone().unwrap_or_default(),
            expected,
        })?;
        let database = get("TIMESTREAM_DATABASE").unwrap_or_else(|| "Metrics".into());
        if database.len() < 3
            || database.len() > 256
            || !database
                .bytes()
                .all(metrics_schema::names::is_safe_identifier_byte)
        {
            return Err(ConfigError {
                name: "TIMESTREAM_DATABASE",
                value: database,
                expected: "3-256 bytes of [A-Za-z0-9_.-]".into(),
            });
        }
        let (influxdb, influxdb_token) = influxdb(&get, store)?;
        let defaults = WriteOptions::default();
        let limits = ReadLimits::default();
        let config = Config {
            store,
            timestream: TimestreamSettings {
                database,
                table: TableSettings {
                    memory_retention_hours: number(&get, "MEMORY_RETENTION_HOURS", 14 * 24, 1, 8766)?,
                    magnetic_retention_days: number(&get, "MAGNETIC_RETENTION_DAYS", 365, 1, 73_000)?,
                    create_database: flag(&get, "TIMESTREAM_CREATE_DATABASE", false)?,
                },
                ..TimestreamSettings::default()
            },
            embedded_path: get("EMBEDDED_STORE_PATH")
                .map_or_else(|| PathBuf::from("metrics-lake.sqlite"), PathBuf::from),
            influxdb,
            influxdb_token,
            write: WriteOptions {
                concurrency: number(&get, "WRITE_CONCURRENCY", defaults.concurrency as i64, 1, 256)? as usize,
                window_records: number(
                    &get,
                    "WRITE_WINDOW_RECORDS",
                    defaults.window_records as i64,
                    100,
                    i64::MAX,
                )? as usize,
                limits: ReadLimits {
                    max_compressed_bytes: number(
                        &get,
                        "MAX_OBJECT_BYTES",
                        limits.max_compressed_bytes as i64,
                        1,
                        i64::MAX,
                    )? as u64,
                    max_decompressed_bytes: number(
                        &get,
                        "MAX_DECOMPRESSED_BYTES",
                        limits.max_decompressed_bytes as i64,
                        1,
                        i64::MAX,
                    )? as u64,
                    max_record_bytes: number(
                        &get,
                        "MAX_RECORD_BYTES",
                        limits.max_record_bytes as i64,
                        1,
                        i64::MAX,
                    )? as usize,
                },
            },
            dead_letter_bucket: get("DEAD_LETTER_BUCKET"),
            dead_letter_prefix: get("DEAD_LETTER_PREFIX").unwrap_or_else(|| "Error/writer/".into()),
            deadline_margin: Duration::from_millis(
                number(&get, "DEADLINE_MARGIN_MS", 3000, 0, 600_000)? as u64
            ),
        };
        Ok(config)
    }
}

/// The InfluxDB variables; the endpoint and a token are required only when the store is
/// `influxdb`, and checked then, so a bad URL fails at start rather than at the first write.
fn influxdb(
    get: &impl Fn(&str) -> Option<String>,
    store: StoreKind,
) -> Result<(InfluxSettings, Option<TokenSource>), ConfigError> {
    let api = match get("INFLUXDB_API") {
        None => ApiVersion::V3,
        Some(v) => v.trim().parse().map_err(|expected| ConfigError {
            name: "INFLUXDB_API",
            value: v.clone(),
            expected,
        })?,
    };
    let settings = InfluxSettings {
        url: get("INFLUXDB_URL").unwrap_or_default(),
        api,
        org: get("INFLUXDB_ORG"),
        retention_days: number(get, "INFLUXDB_RETENTION_DAYS", 365, 0, 36_500)? as u32,
        ..InfluxSettings::default()
    };
    let token = TokenSource::from_lookup(get).map_err(|e| ConfigError {
        name: BothTokenVariables::VARIABLE,
        value: get(BothTokenVariables::VARIABLE).unwrap_or_default(),
        expected: e.to_string(),
    })?;
    if store != StoreKind::Influxdb {
        return Ok((settings, token));
    }
    if let Err(e) = Endpoint::new(&settings.url, settings.api, settings.org.clone()) {
        let (name, value) = if settings.url.is_empty() || api == ApiVersion::V3 || settings.org.is_some() {
            ("INFLUXDB_URL", settings.url.clone())
        } else {
            ("INFLUXDB_ORG", String::new())
        };
        return Err(ConfigError {
            name,
            value,
            expected: e.to_string(),
        });
    }
    if token.is_none() {
        return Err(ConfigError {
            name: "INFLUXDB_TOKEN_SECRET_ARN",
            value: String::new(),
            expected: "INFLUXDB_TOKEN or INFLUXDB_TOKEN_SECRET_ARN is required for the influxdb store".into(),
        });
    }
    Ok((settings, token))
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            name,
            value,
            expected: if max == i64::MAX {
                format!("an integer of at least {min}")
            } else {
                format!("an integer from {min} to {max}")
            },
        }),
    }
}

fn flag(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError {
            name,
            value,
            expected: "true or false".into(),
        }),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(metrics_testkit::lookup(vars))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = config(&[]).unwrap();
        assert_eq!(c.store, StoreKind::Timestream);
        assert_eq!(c.timestream.database, "Metrics");
        assert_eq!(c.timestream.table.memory_retention_hours, 336);
        assert_eq!(c.timestream.table.magnetic_retention_days, 365);
        assert!(!c.timestream.table.create_database);
        assert_eq!(c.write.concurrency, 16);
        assert_eq!(c.dead_letter_bucket, None);
        assert_eq!(c.dead_letter_prefix, "Error/writer/");
        assert_eq!(c.embedded_path, PathBuf::from("metrics-lake.sqlite"));
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            ("METRICS_STORE", "embedded"),
            ("TIMESTREAM_DATABASE", "Other_db"),
            ("TIMESTREAM_CREATE_DATABASE", "true"),
            ("MEMORY_RETENTION_HOURS", "24"),
            ("MAGNETIC_RETENTION_DAYS", "30"),
            ("EMBEDDED_STORE_PATH", "/tmp/x.sqlite"),
            ("WRITE_CONCURRENCY", "4"),
            ("WRITE_WINDOW_RECORDS", "500"),
            ("DEAD_LETTER_BUCKET", "dlq-bucket"),
            ("DEAD_LETTER_PREFIX", "Errors/w/"),
            ("MAX_RECORD_BYTES", "1000"),
            ("DEADLINE_MARGIN_MS", "100"),
        ])
        .unwrap();
        assert_eq!(c.store, StoreKind::Embedded);
        assert_eq!(c.timestream.database, "Other_db");
        assert!(c.timestream.table.create_database);
        assert_eq!(
            (
                c.timestream.table.memory_retention_hours,
                c.timestream.table.magnetic_retention_days
            ),
            (24, 30)
        );
        assert_eq!(c.embedded_path, PathBuf::from("/tmp/x.sqlite"));
        assert_eq!((c.write.concurrency, c.write.window_records), (4, 500));
        assert_eq!(c.dead_letter_bucket.as_deref(), Some("dlq-bucket"));
        assert_eq!(c.dead_letter_prefix, "Errors/w/");
        assert_eq!(c.write.limits.max_record_bytes, 1000);
        assert_eq!(c.deadline_margin, Duration::from_millis(100));
    }

    #[test]
    fn the_influxdb_store_reads_endpoint_api_org_token_and_retention() {
        let c = config(&[
            ("METRICS_STORE", "influxdb"),
            (
                "INFLUXDB_URL",
                "https://db-1.timestream-influxdb.us-east-1.on.aws:8181",
            ),
            (
                "INFLUXDB_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:influx",
            ),
            ("INFLUXDB_RETENTION_DAYS", "90"),
        ])
        .unwrap();
        assert_eq!(c.store, StoreKind::Influxdb);
        assert_eq!(c.influxdb.api, ApiVersion::V3);
        assert_eq!(
            c.influxdb.url,
            "https://db-1.timestream-influxdb.us-east-1.on.aws:8181"
        );
        assert_eq!(c.influxdb.retention_days, 90);
        assert_eq!(
            c.influxdb_token,
            Some(TokenSource::SecretArn(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:influx".into()
            ))
        );
        let v2 = config(&[
            ("METRICS_STORE", "influxdb"),
            ("INFLUXDB_URL", "http://127.0.0.1:8086"),
            ("INFLUXDB_API", "v2"),
            ("INFLUXDB_ORG", "metrics"),
            ("INFLUXDB_TOKEN", "local-token"),
        ])
        .unwrap();
        assert_eq!(
            (v2.influxdb.api, v2.influxdb.org.as_deref()),
            (ApiVersion::V2, Some("metrics"))
        );
        assert_eq!(v2.influxdb.retention_days, 365);
        assert_eq!(
            v2.influxdb_token,
            Some(TokenSource::Value(metrics_store::influx::Secret::new(
                "local-token"
            )))
        );
        assert!(
            !format!("{v2:?}").contains("local-token"),
            "the token is never printed"
        );
    }

    #[test]
    fn the_influxdb_store_needs_an_endpoint_a_token_and_for_v2_an_org() {
        let base = [("METRICS_STORE", "influxdb"), ("INFLUXDB_TOKEN", "t")];
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "INFLUXDB_URL"),
            (&[("INFLUXDB_URL", "db.example:8181")], "INFLUXDB_URL"),
            (
                &[("INFLUXDB_URL", "https://db.example"), ("INFLUXDB_API", "v2")],
                "INFLUXDB_ORG",
            ),
            (
                &[("INFLUXDB_URL", "https://db.example"), ("INFLUXDB_API", "v4")],
                "INFLUXDB_API",
            ),
            (
                &[
                    ("INFLUXDB_URL", "https://db.example"),
                    ("INFLUXDB_TOKEN_SECRET_ARN", "arn:x"),
                ],
                "INFLUXDB_TOKEN_SECRET_ARN",
            ),
        ];
        for (extra, variable) in cases {
            let vars: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
            assert_eq!(config(&vars).unwrap_err().name, variable, "{extra:?}");
        }
        let no_token = config(&[
            ("METRICS_STORE", "influxdb"),
            ("INFLUXDB_URL", "https://db.example"),
        ])
        .unwrap_err();
        assert_eq!(no_token.name, "INFLUXDB_TOKEN_SECRET_ARN");
        // Other stores do not need the InfluxDB variables.
        assert!(config(&[("METRICS_STORE", "embedded")]).is_ok());
    }

    #[test]
    fn bad_values_name_the_variable_and_what_is_expected() {
        let cases = [
            ("METRICS_STORE", "influx"),
            ("WRITE_CONCURRENCY", "0"),
            ("WRITE_CONCURRENCY", "many"),
            ("MEMORY_RETENTION_HOURS", "9000"),
            ("TIMESTREAM_DATABASE", "a b"),
            ("TIMESTREAM_CREATE_DATABASE", "maybe"),
        ];
        for (name, value) in cases {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name);
            assert!(
                err.to_string().contains(name) && !err.expected.is_empty(),
                "{err}"
            );
        }
    }
}
