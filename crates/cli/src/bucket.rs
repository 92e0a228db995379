//! `metrics-lake bucket ls|cat`: the local bucket's objects by key. Most of them are rows of
//! the bucket's database, not files (see `metrics_local::bucket`), so this is how to browse
//! them: `ls [PREFIX] [--long]` lists keys, `cat KEY [--gunzip]` writes one object to stdout.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use metrics_local::bucket::{BucketError, LocalBucket};
use metrics_schema::EventTime;

use crate::output::err;
use crate::state::StateArgs;

#[derive(Debug, Args)]
pub struct BucketArgs {
    #[command(subcommand)]
    command: BucketCommand,
}

#[derive(Debug, Subcommand)]
enum BucketCommand {
    /// List the objects' keys under a prefix, one per line, sorted.
    Ls(LsArgs),
    /// Write one object's bytes to stdout.
    Cat(CatArgs),
}

#[derive(Debug, Args)]
struct LsArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Only keys that start with this (e.g. `Data/2026/03/`, `Error/`).
    #[arg(default_value = "")]
    prefix: String,
    /// Each key's size in bytes and when it was written (RFC 3339) before it.
    #[arg(long)]
    long: bool,
}

#[derive(Debug, Args)]
struct CatArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The object's key, e.g. `Data/2026/03/01/00/metrics-lake-1-….gz`.
    key: String,
    /// Decompress a gzip object (Firehose's `Data/` objects) instead of writing it as stored.
    #[arg(long)]
    gunzip: bool,
}

pub fn run(args: BucketArgs) -> ExitCode {
    let done = match &args.command {
        BucketCommand::Ls(args) => ls(args),
        BucketCommand::Cat(args) => cat(args),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            err(format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

/// The state directory's bucket; nothing is created when there is none.
fn open(state: &StateArgs) -> Result<LocalBucket, String> {
    let root = state.state_dir.join("bucket");
    if !root.is_dir() {
        return Err(format!(
            "no local bucket at {}: run `metrics-lake run` first (or pass --state-dir)",
            root.display()
        ));
    }
    LocalBucket::open(root).map_err(|e| e.to_string())
}

fn ls(args: &LsArgs) -> Result<(), String> {
    let bucket = open(&args.state)?;
    let objects = bucket.list_objects(&args.prefix).map_err(|e| e.to_string())?;
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let written = objects.iter().try_for_each(|object| {
        if args.long {
            let modified = object
                .modified_ms
                .map_or_else(|| "-".to_owned(), |ms| EventTime::from_millis(ms).to_rfc3339());
            writeln!(stdout, "{:>12}  {modified:<24}  {}", object.size, object.key)
        } else {
            writeln!(stdout, "{}", object.key)
        }
    });
    stdout_done(written.and_then(|()| stdout.flush()))
}

fn cat(args: &CatArgs) -> Result<(), String> {
    let bucket = open(&args.state)?;
    let bytes = bucket.get(&args.key).map_err(|e| match e {
        BucketError::NotFound(key) => format!("no object {key:?} in {}", bucket.root().display()),
        e => e.to_string(),
    })?;
    let mut stdout = io::stdout().lock();
    if !args.gunzip {
        return stdout_done(stdout.write_all(&bytes).and_then(|()| stdout.flush()));
    }
    // Firehose objects may be several gzip members end to end.
    let mut gzip = flate2::read::MultiGzDecoder::new(bytes.as_slice());
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let n = gzip
            .read(&mut chunk)
            .map_err(|e| format!("{}: not a gzip object: {e}", args.key))?;
        if n == 0 {
            return stdout_done(stdout.flush());
        }
        if let Err(e) = stdout.write_all(&chunk[..n]) {
            return stdout_done(Err(e));
        }
    }
}

/// A closed pipe (`| head`) ends the output without an error; anything else is one.
fn stdout_done(written: io::Result<()>) -> Result<(), String> {
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}
