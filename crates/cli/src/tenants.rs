//! `metrics-lake tenants provision`: creates each tenant's table ahead of its first event
//! (onboarding), with the same settings the writer uses (its environment variables:
//! `METRICS_STORE`, `TIMESTREAM_DATABASE`, `TIMESTREAM_CREATE_DATABASE`,
//! `MEMORY_RETENTION_HOURS`, `MAGNETIC_RETENTION_DAYS`, `EMBEDDED_STORE_PATH`), which the
//! flags override. Existing tables are left as they are; Timestream create calls are spaced
//! by one second (the account's rate for them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use metrics_schema::TenantId;
use metrics_store::{Store, StoreKind};
use metrics_writer::config::Config;

use crate::output::{err, out};

#[derive(Debug, Args)]
pub struct TenantsArgs {
    #[command(subcommand)]
    command: Option<TenantsCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// List the tenants of the local store with their row counts and time ranges (the default).
    List(ListArgs),
    /// Create the tables of these tenants if they do not exist.
    Provision(ProvisionArgs),
}

#[derive(Debug, Args)]
struct ProvisionArgs {
    /// A tenant id (repeat for several).
    #[arg(
        long = "tenant",
        value_name = "TENANT_ID",
        required_unless_present = "tenants_file"
    )]
    tenants: Vec<String>,
    /// A file of tenant ids: a JSON object keyed by tenant id (the tenant directory file), a
    /// JSON array of ids, or one id per line (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    tenants_file: Option<PathBuf>,
    /// The store: timestream, influxdb or embedded (default: `METRICS_STORE`, else timestream).
    #[arg(long, value_parser = |name: &str| name.parse::<StoreKind>())]
    store: Option<StoreKind>,
    /// The Timestream database (default: `TIMESTREAM_DATABASE`, else Metrics).
    #[arg(long)]
    database: Option<String>,
    /// Create the Timestream database too if it is missing.
    #[arg(long)]
    create_database: bool,
    /// The embedded store's file (default: `EMBEDDED_STORE_PATH`, else metrics-lake.sqlite).
    #[arg(long, value_name = "FILE")]
    embedded_path: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: crate::state::StateArgs,
}

pub fn run(args: TenantsArgs) -> ExitCode {
    match args.command {
        None => list_command(&args.list),
        Some(TenantsCommand::List(list)) => list_command(&list),
        Some(TenantsCommand::Provision(args)) => provision_command(args),
    }
}

fn list_command(args: &ListArgs) -> ExitCode {
    let listed = crate::state::StateDir::existing(&args.state.state_dir).and_then(|state| {
        let store = state.open_store()?;
        metrics_query::embedded::EmbeddedReader::new(&store)
            .tenants()
            .map_err(|e| e.message)
    });
    let tenants = match listed {
        Ok(t) => t,
        Err(message) => {
            err(format!("error: {message}"));
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        out(serde_json::to_string(&tenants).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let day = |ms: Option<i64>| {
        ms.map(|t| metrics_schema::EventTime::from_millis(t).to_rfc3339()[..16].replace('T', " "))
            .unwrap_or_else(|| "-".into())
    };
    out(format!(
        "{:<24}{:>12}{:>9}   {:<17} {:<17}",
        "tenant", "rows", "metrics", "first", "last"
    ));
    for t in &tenants {
        out(format!(
            "{:<24}{:>12}{:>9}   {:<17} {:<17}",
            t.tenant,
            crate::summary::thousands(t.records),
            t.metrics,
            day(t.first_ms),
            day(t.last_ms)
        ));
    }
    ExitCode::SUCCESS
}

fn provision_command(args: ProvisionArgs) -> ExitCode {
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            err(format!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    if let Some(store) = args.store {
        config.store = store;
    }
    if let Some(db) = args.database {
        config.timestream.database = db;
    }
    config.timestream.table.create_database |= args.create_database;
    if let Some(path) = args.embedded_path {
        config.embedded_path = path;
    }
    let mut ids = args.tenants;
    if let Some(file) = &args.tenants_file {
        match read_tenants_file(file) {
            Ok(more) => ids.extend(more),
            Err(e) => {
                err(format!("error: {}: {e}", file.display()));
                return ExitCode::FAILURE;
            }
        }
    }
    let tenants = match parse_tenants(&ids) {
        Ok(t) => t,
        Err(e) => {
            err(format!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            err(format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match config
            .open_store(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest()))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                err(format!("error: {e}"));
                return ExitCode::FAILURE;
            }
        };
        let failures = provision(&store, &tenants, |line| match line {
            Ok(ready) => out(ready),
            Err(failed) => err(failed),
        })
        .await;
        if failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

/// Ensures each tenant's table, one after the other; reports one line per tenant (`Ok` for
/// stdout, `Err` for stderr) and returns how many failed.
async fn provision<S: Store>(
    store: &S,
    tenants: &[TenantId<'static>],
    mut report: impl FnMut(Result<String, String>),
) -> usize {
    let mut failures = 0;
    for tenant in tenants {
        // Each table gets its own minute: creates wait for the rate limit, throttles retry.
        match store
            .ensure_table(tenant, Instant::now() + Duration::from_secs(60))
            .await
        {
            Ok(()) => report(Ok(format!("{tenant}: ready"))),
            Err(e) => {
                failures += 1;
                report(Err(format!("{tenant}: failed ({}): {e}", e.code())));
            }
        }
    }
    failures
}

/// Validated, deduplicated tenant ids, in the order given.
fn parse_tenants(ids: &[String]) -> Result<Vec<TenantId<'static>>, String> {
    let mut out: Vec<TenantId<'static>> = Vec::with_capacity(ids.len());
    for id in ids {
        let tenant = TenantId::parse(id.clone()).map_err(|e| format!("{id:?}: {}", e.detail))?;
        if !out.contains(&tenant) {
            out.push(tenant);
        }
    }
    Ok(out)
}

fn read_tenants_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| format!("not a JSON object of tenants: {e}"))?;
        Ok(map.keys().cloned().collect())
    } else if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|e| format!("not a JSON array of tenant ids: {e}"))
    } else {
        Ok(text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_store::EmbeddedStore;

    fn file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("metrics-lake-tenants-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_the_directory_file_an_array_or_lines() {
        let object = file("dir.json", r#"{"acme": "Acme Inc", "globex": "Globex"}"#);
        let mut ids = read_tenants_file(&object).unwrap();
        ids.sort();
        assert_eq!(ids, ["acme", "globex"]);
        let array = file("ids.json", r#"["acme", "initech"]"#);
        assert_eq!(read_tenants_file(&array).unwrap(), ["acme", "initech"]);
        let lines = file("ids.txt", "# onboarding\nacme\n\n  umbrella  # new\n");
        assert_eq!(read_tenants_file(&lines).unwrap(), ["acme", "umbrella"]);
        for p in [object, array, lines] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn tenant_ids_are_validated_and_deduplicated() {
        let ok = parse_tenants(&["acme".into(), "globex".into(), "acme".into()]).unwrap();
        assert_eq!(
            ok.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["acme", "globex"]
        );
        let bad = parse_tenants(&["acme".into(), "a b".into()]).unwrap_err();
        assert!(bad.contains("\"a b\""), "{bad}");
    }

    #[tokio::test]
    async fn provisioning_creates_each_table_and_keeps_existing_ones() {
        let store = EmbeddedStore::in_memory().unwrap();
        let tenants = parse_tenants(&["acme".into(), "globex".into()]).unwrap();
        let mut lines = Vec::new();
        assert_eq!(provision(&store, &tenants, |l| lines.push(l)).await, 0);
        assert_eq!(store.tables().unwrap(), ["acme", "globex"]);
        // Again: nothing fails, nothing is lost.
        assert_eq!(provision(&store, &tenants, |l| lines.push(l)).await, 0);
        assert_eq!(store.tables().unwrap(), ["acme", "globex"]);
        let ready = Ok::<_, String>;
        assert_eq!(
            lines,
            [
                ready("acme: ready".into()),
                ready("globex: ready".into()),
                ready("acme: ready".into()),
                ready("globex: ready".into())
            ]
        );
    }
}
