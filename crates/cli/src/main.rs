//! `metrics-lake`: the project's command line. Each command group lives in its own module;
//! this file only parses arguments and turns the group's result into an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod mappings;
mod output;
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
    /// Check, render and try the metric mappings (run these before `cdk deploy`).
    Mappings(mappings::MappingsArgs),
    /// Create tenants' tables ahead of their first event (onboarding).
    Tenants(tenants::TenantsArgs),
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
        Command::Mappings(args) => mappings::run(args),
        Command::Tenants(args) => tenants::run(args),
    }
}
