//! `metrics-lake sample`: the sample data set as NDJSON, at any size, for load runs and for
//! feeding other tools (`metrics-lake sample --events 1000000 | metrics-lake run -`).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use metrics_local::sample::{SampleConfig, SampleEvents};

use crate::output::err;

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// How many events (redelivered duplicates come on top, about 1%).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// The generator's seed: the same seed always gives the same events.
    #[arg(long, default_value_t = SampleConfig::default().seed)]
    seed: u64,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: SampleArgs) -> ExitCode {
    let config = SampleConfig {
        events: args.events,
        seed: args.seed,
        ..SampleConfig::default()
    };
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                err(format!("error: {}: {e}", path.display()));
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::with_capacity(1 << 20, sink);
    for e in SampleEvents::new(config) {
        let written = sink.write_all(e.json.as_bytes()).is_ok() && sink.write_all(b"\n").is_ok();
        if !written {
            // A closed pipe (`| head`) ends the output; that is not an error.
            return ExitCode::SUCCESS;
        }
    }
    if sink.flush().is_err() && args.out.is_some() {
        err("error: writing the output failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
