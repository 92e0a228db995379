#!/usr/bin/env bash
# The local bucket (`crates/local/src/bucket.rs`) at the size of a long run: N objects of ~4 KB
# keyed like Firehose's `Data/YYYY/MM/DD/HH/…gz` over a year of minutes, stored with deferred
# puts; prints objects/s for each successive tenth, the bytes on disk per object, then times a
# `list("Data/2026/03/")` and a `get` of a random key from a fresh handle.
#
# Usage (from the repository root):
#   bench/bucket.sh [--objects N] [--files] [--profile P] [--dir DIR]
#   (default: 2,000,000 objects, the `cli` profile; `--files` stores one file per object, as
#   the bucket did before its database, for comparison; `--profile dev` builds nothing the
#   tests have not built already)
# The bucket goes to target/bench/bucket (~5 KB of disk per object: ~10 GB at the default N)
# and is removed afterwards; the output is saved to target/bench/bucket-results.txt.
set -euo pipefail

cd "$(dirname "$0")/.."
OBJECTS=2000000
PROFILE=cli
DIR=target/bench/bucket
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --objects) OBJECTS="$2"; shift 2 ;;
    --profile) PROFILE="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --files) EXTRA+=(--files); shift ;;
    *) echo "usage: bench/bucket.sh [--objects N] [--files] [--profile P] [--dir DIR]" >&2; exit 1 ;;
  esac
done

OUT=target/bench/bucket-results.txt
mkdir -p target/bench
echo "== building (profile $PROFILE)"
cargo build --profile "$PROFILE" -p metrics-local --example bucket_fill
# The dev profile's directory is target/debug; every other profile's is its own name.
BIN_DIR=$([[ "$PROFILE" == dev ]] && echo debug || echo "$PROFILE")

echo "== $(nproc) CPUs, $(df -h --output=fstype,avail "$(dirname "$DIR")" | tail -1 | xargs) free"
"target/$BIN_DIR/examples/bucket_fill" --objects "$OBJECTS" --dir "$DIR" "${EXTRA[@]}" | tee "$OUT"
