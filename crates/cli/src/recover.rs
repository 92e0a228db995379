//! What `metrics-lake errors` and `metrics-lake replay` share: where failed records are read
//! from (the local state directory, or the deployed bucket with `--bucket`), how processing-
//! failed records are re-checked (the mapping and tenant directory), and the filters.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use metrics_enrich::Enricher;
use metrics_local::bucket::LocalBucket;
use metrics_local::recover::{Filter, FilterError, S3Objects};
use metrics_schema::EventTime;

use crate::run::{Tenants, build_enricher, load_rules};
use crate::state::StateDir;

/// The local tenant directory when none is given.
const DEFAULT_TENANTS: &str = "events/sample/tenants.json";

#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub state: crate::state::StateArgs,
    /// Read the deployed bucket instead of the local state directory (standard AWS credential
    /// chain; `AWS_ENDPOINT_URL` for another endpoint).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The metric mapping file: records the enrich function failed are re-checked with it.
    #[arg(long, default_value = "infra/metrics.toml")]
    pub mappings: PathBuf,
    /// The tenant directory: a JSON object tenant_id -> display name (locally, by default
    /// `events/sample/tenants.json`).
    #[arg(long, value_name = "FILE")]
    pub tenants: Option<PathBuf>,
    /// The deployed tenant directory (a DynamoDB table, the stack's `TenantsTableName`) instead
    /// of `--tenants`.
    #[arg(long, value_name = "TABLE", conflicts_with = "tenants")]
    pub tenants_table: Option<String>,
    /// `metadata.environment` of every event.
    #[arg(long, default_value = "local")]
    pub environment: String,
    /// With `--bucket`: the deployed alerts table (the stack's alerts table output), for the
    /// webhook notifications that were dead lettered (stage `alerts`).
    #[arg(long, value_name = "TABLE")]
    pub alerts_table: Option<String>,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only records failed at this stage: rules, enrich, writer, forwarder (repeatable).
    #[arg(long)]
    pub stage: Vec<String>,
    /// Only records with this reason code (repeatable).
    #[arg(long)]
    pub reason: Vec<String>,
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub metric: Option<String>,
    /// Only records that failed at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records that failed before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Only records no replay has taken yet.
    #[arg(long)]
    pub pending: bool,
}

impl FilterArgs {
    pub fn filter(&self) -> Result<Filter, FilterError> {
        Ok(Filter {
            stages: self
                .stage
                .iter()
                .map(|s| Filter::stage(s))
                .collect::<Result<_, _>>()?,
            reasons: self
                .reason
                .iter()
                .map(|r| Filter::reason(r))
                .collect::<Result<_, _>>()?,
            tenant: self.tenant.clone(),
            metric: self.metric.clone(),
            since: self
                .since
                .as_deref()
                .map(|t| Filter::time("--since", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| Filter::time("--until", t))
                .transpose()?,
            pending: self.pending,
        })
    }

    /// The filters as text, for the replay's progress marker.
    pub fn describe(&self) -> String {
        format!(
            "stage={:?} reason={:?} tenant={:?} metric={:?} since={:?} until={:?} pending={}",
            self.stage, self.reason, self.tenant, self.metric, self.since, self.until, self.pending
        )
    }
}

/// Where the failed records are.
#[derive(Debug)]
pub enum Source {
    Local {
        state: StateDir,
        bucket: LocalBucket,
    },
    /// The deployed bucket, and the AWS SDK configuration (loaded once) every other client of
    /// the command is built from.
    Deployed {
        objects: S3Objects,
        sdk: Box<aws_config::SdkConfig>,
    },
}

impl SourceArgs {
    pub async fn open(&self) -> Result<Source, String> {
        match &self.bucket {
            Some(name) => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                let objects = S3Objects::new(metrics_objects::s3_client(&sdk), name.clone());
                Ok(Source::Deployed {
                    objects,
                    sdk: Box::new(sdk),
                })
            }
            None => {
                if !self.state.state_dir.join("bucket").is_dir() {
                    return Err(format!(
                        "no local state at {}: run `metrics-lake run` first (or pass --state-dir, or --bucket for the deployed bucket)",
                        self.state.state_dir.display()
                    ));
                }
                let state = StateDir::open(&self.state.state_dir)?;
                let bucket = LocalBucket::open(state.bucket()).map_err(|e| e.to_string())?;
                Ok(Source::Local { state, bucket })
            }
        }
    }

    /// The enrich transformer the re-check (and a local replay) runs, configured like `run`.
    pub async fn enricher(&self) -> Result<(Enricher, metrics_mapping::RuleSet), String> {
        let rules = load_rules(&self.mappings)?;
        let tenants = match (&self.tenants_table, &self.tenants, &self.bucket) {
            (Some(table), _, _) => Tenants::Table(table.clone()),
            (None, Some(file), _) => Tenants::File(file.clone()),
            // The sample directory would call every real tenant unknown.
            (None, None, Some(_)) => {
                return Err(
                    "with --bucket, pass --tenants-table <TenantsTableName> (or --tenants FILE): records are re-checked against the deployed tenant directory"
                        .into(),
                );
            }
            (None, None, None) => Tenants::File(PathBuf::from(DEFAULT_TENANTS)),
        };
        let mapping = Arc::new(rules.mapping().clone());
        // Rejected records are always answered `ProcessingFailed` here, so each gets its reason.
        let enricher = build_enricher(&tenants, &self.environment, "fail", mapping).await?;
        Ok((enricher, rules))
    }

    /// The source as text, for the replay's progress marker.
    pub fn describe(&self) -> String {
        match &self.bucket {
            Some(bucket) => format!("s3://{bucket}"),
            None => self.state.state_dir.display().to_string(),
        }
    }
}

/// The clock for the re-check's time rules.
pub fn now() -> EventTime {
    EventTime::now()
}
