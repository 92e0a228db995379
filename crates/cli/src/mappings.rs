//! `metrics-lake mappings check | render | apply`: the commands a user runs before
//! `cdk deploy`. The logic lives in `metrics_mapping`; this module reads files,
//! prints, and chooses exit codes (0 success, 1 anything to fix).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use metrics_mapping::{Diagnostic, Evaluation, RuleSet};
use metrics_schema::{EventTime, parse_event};

use crate::output::{err, out};

/// The mapping file, relative to the repository root.
pub const DEFAULT_MAPPING_FILE: &str = "infra/metrics.toml";

#[derive(Debug, Args)]
pub struct MappingsArgs {
    #[command(subcommand)]
    command: MappingsCommand,
}

#[derive(Debug, Subcommand)]
enum MappingsCommand {
    /// Validate the mapping file; exit 1 and print every problem if there is one.
    Check {
        /// The mapping file.
        #[arg(long, default_value = DEFAULT_MAPPING_FILE)]
        file: PathBuf,
    },
    /// Print the rendered EventBridge rules (the JSON document the CDK app reads).
    Render {
        /// The mapping file.
        #[arg(long, default_value = DEFAULT_MAPPING_FILE)]
        file: PathBuf,
        /// Write the document to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Apply every rule to one EventBridge event as EventBridge would, map what each matching
    /// rule delivers as metrics-enrich does, and print the unified event and whether it is valid.
    Apply {
        /// A file holding one EventBridge event (the envelope, with `detail`).
        #[arg(long)]
        event: PathBuf,
        /// The mapping file.
        #[arg(long, default_value = DEFAULT_MAPPING_FILE)]
        file: PathBuf,
    },
}

pub fn run(args: MappingsArgs) -> ExitCode {
    match args.command {
        MappingsCommand::Check { file } => check(&file),
        MappingsCommand::Render { file, out } => render(&file, out.as_deref()),
        MappingsCommand::Apply { event, file } => apply(&event, &file),
    }
}

fn check(file: &Path) -> ExitCode {
    match load(file) {
        Some(rules) => {
            out(format!("{}: ok, {} rules", file.display(), rules.len()));
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn render(file: &Path, target: Option<&Path>) -> ExitCode {
    let Some(rules) = load(file) else {
        return ExitCode::FAILURE;
    };
    let document = rules.to_rendered_json();
    let Some(target) = target else {
        out(document.trim_end());
        return ExitCode::SUCCESS;
    };
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(e) = fs::create_dir_all(parent)
    {
        err(format!("error: cannot create {}: {e}", parent.display()));
        return ExitCode::FAILURE;
    }
    match fs::write(target, document) {
        Ok(()) => {
            err(format!("wrote {} rules to {}", rules.len(), target.display()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            err(format!("error: cannot write {}: {e}", target.display()));
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 when at least one rule matched and every matching rule produced a valid unified
/// event; 1 when none matched, an output is invalid, or an input could not be read.
fn apply(event_file: &Path, file: &Path) -> ExitCode {
    let Some(rules) = load(file) else {
        return ExitCode::FAILURE;
    };
    let event = match fs::read(event_file) {
        Ok(bytes) => bytes,
        Err(e) => {
            err(format!("error: cannot read {}: {e}", event_file.display()));
            return ExitCode::FAILURE;
        }
    };
    let now = EventTime::now();
    let evaluations = match rules.evaluate(&event, now) {
        Ok(evaluations) => evaluations,
        Err(e) => {
            err(format!("error: {}: {e}", event_file.display()));
            return ExitCode::FAILURE;
        }
    };

    let mut matched = 0;
    let mut invalid = 0;
    let mut unified = Vec::new();
    for Evaluation { rule, outcome } in &evaluations {
        let Ok(delivered) = outcome else { continue };
        matched += 1;
        out(format!(
            "rule {} matched; EventBridge delivers the event wrapped ({} bytes), which metrics-enrich maps to:",
            rule.metric_name,
            delivered.len()
        ));
        // The same mapping and validation metrics-enrich runs on the delivered record.
        if let Err(e) = rules.mapping().map_record(delivered, &mut unified) {
            invalid += 1;
            out(format!("  NOT MAPPED: {} ({})", e.reason.code(), e.detail));
            continue;
        }
        out(String::from_utf8_lossy(&unified));
        match parse_event(&unified, now) {
            Ok(_) => out("  valid unified event"),
            Err(e) => {
                invalid += 1;
                out(format!(
                    "  INVALID unified event: {} ({})",
                    e.reason.code(),
                    e.detail
                ));
            }
        }
    }
    if matched == 0 {
        out(format!("no rule matches {}:", event_file.display()));
        for Evaluation { rule, outcome } in &evaluations {
            if let Err(why) = outcome {
                out(format!("  {}: {why}", rule.metric_name));
            }
        }
        return ExitCode::FAILURE;
    }
    if invalid > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads and checks the mapping file, printing every problem to stderr.
fn load(file: &Path) -> Option<RuleSet> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            err(format!("error: cannot read {}: {e}", file.display()));
            return None;
        }
    };
    match RuleSet::from_toml(&text) {
        Ok(rules) => Some(rules),
        Err(diagnostics) => {
            print_diagnostics(file, &diagnostics);
            None
        }
    }
}

fn print_diagnostics(file: &Path, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        err(format!("{}: {d}", file.display()));
    }
    let n = diagnostics.len();
    err(format!(
        "{}: {n} problem{}; nothing was rendered",
        file.display(),
        if n == 1 { "" } else { "s" }
    ));
}
