//! `metrics-lake`: the project's command line. Each command group lives in its own module;
//! this file only parses arguments and turns the group's result into an exit code.

// The replay and errors commands nest the enrich, writer and forwarder futures deeply enough
// to pass the compiler's default query depth when laying them out.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// A run allocates and frees small buffers for every event and object on two threads; mimalloc
// (the enrich function's allocator too) serves them from per-thread free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod alerts;
mod bucket;
mod errors;
mod input;
mod mappings;
mod output;
mod query;
mod recover;
mod recover_alerts;
mod replay;
mod replay_deployed;
mod run;
mod runtime;
mod sample;
mod serve;
mod state;
mod summary;
mod tenants;

#[derive(Debug, Parser)]
#[command(
    name = "metrics-lake",
    version,
    about = "Serverless multi-tenant metrics pipeline: local tools."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline on this machine: the sample data set, or EventBridge events.
    Run(run::RunArgs),
    /// One tenant's time series from the local store: a table and a chart, or JSON.
    Query(query::QueryArgs),
    /// Print the sample data set (EventBridge events, NDJSON), at any size.
    Sample(sample::SampleArgs),
    /// Check, render and try the metric mappings (run these before `cdk deploy`).
    Mappings(mappings::MappingsArgs),
    /// List the local store's tenants, or create tenants' tables ahead of their first event.
    Tenants(tenants::TenantsArgs),
    /// Serve the query API over the local store, with a dashboard (local tokens per tenant).
    Serve(serve::ServeArgs),
    /// Every record that did not become stored: its stage, reason and origin (local or S3).
    Errors(errors::ErrorsArgs),
    /// Send failed records back to the stage that failed them, once their cause is fixed.
    Replay(replay::ReplayArgs),
    /// Tenants' alerts in the local store: list them, evaluate them at a chosen time, test one.
    Alerts(alerts::AlertsArgs),
    /// The local bucket's objects: list keys (`ls`), print one object (`cat`).
    Bucket(bucket::BucketArgs),
}

fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's default is 2); help and version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Query(args) => query::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Mappings(args) => mappings::run(args),
        Command::Tenants(args) => tenants::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Errors(args) => errors::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Alerts(args) => alerts::run(args),
        Command::Bucket(args) => bucket::run(args),
    }
}
