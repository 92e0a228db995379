#!/usr/bin/env bash
# Forwarder benchmark on one 20 MB (uncompressed) gzip batch of enriched events:
# - payload building per destination (JSON, dedup ids, packing to the vendor limits, gzip for
#   Mixpanel), in events/s, best of N in-process runs;
# - delivery of the whole object to both destinations at once, to the vendor simulator on
#   127.0.0.1 answering every request after a fixed latency, at several request concurrencies
#   (FORWARD_CONCURRENCY), in wall time.
#
# Usage (from the repository root): bench/forwarder.sh [--iters N] [--concurrency "1 4 16"] [--latency-ms 50] [--object FILE]
# SHARED_BENCH points at the shared bench kit (default: ../shared/bench next to the repo).
# Inputs are generated into target/bench/data (the kit itself is read-only); the output is
# printed and saved to target/bench/forwarder-results.txt.
set -euo pipefail

cd "$(dirname "$0")/.."
SHARED_BENCH="${SHARED_BENCH:-../shared/bench}"
ITERS=5
CONCURRENCY="1 4 16"
LATENCY_MS=50
OBJECT=target/bench/data/s3batch_20mb.ndjson.gz
while [[ $# -gt 0 ]]; do
  case "$1" in
    --iters) ITERS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --latency-ms) LATENCY_MS="$2"; shift 2 ;;
    --object) OBJECT="$2"; shift 2 ;;
    *) echo "usage: bench/forwarder.sh [--iters N] [--concurrency \"C...\"] [--latency-ms L] [--object FILE]" >&2; exit 1 ;;
  esac
done

OUT=target/bench/forwarder-results.txt
source bench/inputs.sh
bench_inputs "$OBJECT"

echo "== building (release)"
cargo build --release -p metrics-forwarder --example forwarder_bench

echo "== $(nproc) CPUs; best of $ITERS for reading and building; latency ${LATENCY_MS} ms per request"
target/release/examples/forwarder_bench --object "$OBJECT" --iterations "$ITERS" \
  --latency-ms "$LATENCY_MS" --concurrency "$(echo "$CONCURRENCY" | tr ' ' ',')" | tee "$OUT"
echo "== results in $OUT"
