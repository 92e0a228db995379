//! Fills a local bucket the way a long `metrics-lake run` does, and times it (`bench/bucket.sh`).
//!
//! ```text
//! bucket_fill [--objects N] [--bytes B] [--dir DIR] [--files] [--keep]
//! ```
//! N objects (default 2,000,000) of B bytes (default 4096), keyed like Firehose's `Data/`
//! objects and spread evenly over the minutes of 2026, stored with `put_deferred`; then a
//! `list("Data/2026/03/")` and a `get` of a random key. `--files` stores them as the bucket did
//! before its database, one file per object (temporary file, then rename), for comparison.
//! Prints the objects per second of each successive tenth, and the bytes on disk per object.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: fail loudly

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use metrics_local::bucket::LocalBucket;
use metrics_schema::time::EventTime;

const YEAR_START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const YEAR_MINUTES: u64 = 365 * 24 * 60;

struct Args {
    objects: u64,
    bytes: usize,
    dir: PathBuf,
    files: bool,
    keep: bool,
}

fn args() -> Args {
    let mut args = Args {
        objects: 2_000_000,
        bytes: 4096,
        dir: std::env::temp_dir().join(format!("metrics-lake-bucket-bench-{}", std::process::id())),
        files: false,
        keep: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--objects" => args.objects = given.next().and_then(|n| n.parse().ok()).expect("--objects N"),
            "--bytes" => args.bytes = given.next().and_then(|n| n.parse().ok()).expect("--bytes B"),
            "--dir" => args.dir = given.next().map(PathBuf::from).expect("--dir DIR"),
            "--files" => args.files = true,
            "--keep" => args.keep = true,
            other => panic!("unknown argument {other:?}; see the example's comment"),
        }
    }
    args
}

/// The `i`th of `n` keys: `Data/YYYY/MM/DD/HH/metrics-lake-1-YYYY-MM-DD-HH-MM-SS-<id>.gz`.
fn key(i: u64, n: u64) -> String {
    let minute = i * YEAR_MINUTES / n.max(1);
    let ms = YEAR_START_MS + i64::try_from(minute * 60_000).unwrap() + i64::try_from(i % 60_000).unwrap();
    let c = EventTime::from_millis(ms).civil().unwrap();
    let (y, mo, d, h, mi, s) = (c.year, c.month, c.day, c.hour, c.minute, c.second);
    format!(
        "Data/{y:04}/{mo:02}/{d:02}/{h:02}/metrics-lake-1-{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}-{:032x}.gz",
        u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

/// Where objects go: the bucket, or one file per object as before the database.
enum Store {
    Packed(LocalBucket),
    Files { root: PathBuf, made: HashSet<PathBuf> },
}

impl Store {
    fn put(&mut self, key: &str, bytes: &[u8]) {
        match self {
            Store::Packed(bucket) => bucket.put_deferred(key, bytes).unwrap(),
            Store::Files { root, made } => {
                let path = root.join(key);
                let dir = path.parent().unwrap();
                if !made.contains(dir) {
                    std::fs::create_dir_all(dir).unwrap();
                    made.insert(dir.to_owned());
                }
                let partial = path.with_extension("partial");
                std::fs::write(&partial, bytes).unwrap();
                std::fs::rename(&partial, &path).unwrap();
            }
        }
    }
}

fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += disk_bytes(&entry.path());
        }
    }
    total
}

fn main() {
    let args = args();
    let _ = std::fs::remove_dir_all(&args.dir);
    let bucket = LocalBucket::open(&args.dir).unwrap();
    let mut store = if args.files {
        Store::Files {
            root: args.dir.clone(),
            made: HashSet::new(),
        }
    } else {
        Store::Packed(bucket.clone())
    };
    let layout = if args.files {
        "one file per object"
    } else {
        "packed (put_deferred)"
    };
    println!(
        "{} objects of {} bytes, {layout}, in {}",
        args.objects,
        args.bytes,
        args.dir.display()
    );

    let mut bytes = vec![0u8; args.bytes];
    let tenth = (args.objects / 10).max(1);
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut lap_from = 0;
    for i in 0..args.objects {
        // Objects differ (the store compresses nothing, so their bytes matter little).
        let stamp = i.to_le_bytes();
        let n = stamp.len().min(bytes.len());
        bytes[..n].copy_from_slice(&stamp[..n]);
        store.put(&key(i, args.objects), &bytes);
        if (i + 1) % tenth == 0 || i + 1 == args.objects {
            if let Store::Packed(bucket) = &store {
                bucket.sync().unwrap();
            }
            let done = i + 1;
            let since = lap.elapsed().as_secs_f64();
            let in_lap = done - lap_from;
            lap_from = done;
            println!(
                "  {:>3}%  {done:>9} objects  {:>9.0} objects/s",
                done * 100 / args.objects,
                in_lap as f64 / since
            );
            lap = Instant::now();
        }
    }
    let total = started.elapsed().as_secs_f64();
    println!(
        "filled in {total:.1} s: {:.0} objects/s overall",
        args.objects as f64 / total
    );
    drop(store);
    let on_disk = disk_bytes(&args.dir);
    println!(
        "on disk: {} bytes, {:.0} bytes per object ({} of data each)",
        on_disk,
        on_disk as f64 / args.objects as f64,
        args.bytes
    );

    // A fresh handle, as `metrics-lake errors` or `bucket ls` has in another process.
    let reader = LocalBucket::open(&args.dir).unwrap();
    let started = Instant::now();
    let march = reader.list("Data/2026/03/").unwrap();
    println!(
        "list(\"Data/2026/03/\"): {} keys in {:.1} ms",
        march.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let pick = (u64::from(std::process::id()) * 2_654_435_761) % args.objects;
    let wanted = key(pick, args.objects);
    let started = Instant::now();
    let got = reader.get(&wanted).unwrap();
    println!(
        "get(random key): {} bytes in {:.3} ms",
        got.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop((reader, bucket));
    if !args.keep {
        std::fs::remove_dir_all(&args.dir).unwrap();
    }
}
