#!/usr/bin/env bash
# Writer benchmark: the conversion core on 1, 5 and 20 MB (uncompressed) gzip batches, the
# floor that the shared `limit writer` tool measures on the same machine, and whole objects
# written through the Timestream adapter to a local endpoint that answers each WriteRecords
# after a fixed latency.
#
# Usage (from the repository root): bench/writer.sh [--iters N] [--concurrency "4 16"] [--latency-ms 20]
# SHARED_BENCH points at the shared bench kit (default: ../shared/bench next to the repo).
# Inputs are generated into target/bench/data (the kit itself is read-only); results are
# printed and saved to target/bench/writer-results.jsonl.
set -euo pipefail

cd "$(dirname "$0")/.."
SHARED_BENCH="${SHARED_BENCH:-../shared/bench}"
ITERS=20
CONCURRENCY="4 16 32"
LATENCY_MS=20
while [[ $# -gt 0 ]]; do
  case "$1" in
    --iters) ITERS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --latency-ms) LATENCY_MS="$2"; shift 2 ;;
    *) echo "usage: bench/writer.sh [--iters N] [--concurrency \"C...\"] [--latency-ms L]" >&2; exit 1 ;;
  esac
done

OUT=target/bench/writer-results.jsonl
source bench/inputs.sh
DATA="$BENCH_DATA"
bench_inputs "$DATA/s3batch_20mb.ndjson.gz"
BATCHES=("$DATA/s3batch_1mb.ndjson.gz" "$DATA/s3batch_5mb.ndjson.gz" "$DATA/s3batch_20mb.ndjson.gz")

echo "== building (release)"
cargo build --release -p metrics-writer --example writer-bench
# The kit's crate is built into our target directory: the kit is read-only.
cargo build --release --manifest-path "$SHARED_BENCH/limit/Cargo.toml" --target-dir target/bench/limit-target

: > "$OUT"
echo "== conversion core (median of $ITERS runs, thread CPU time)"
target/release/examples/writer-bench convert --iters "$ITERS" "${BATCHES[@]}" | tee -a "$OUT"

echo "== floor: limit writer"
target/bench/limit-target/release/limit writer --data "$DATA" --iters "$ITERS" --json target/bench/limit-writer.json
python3 - "$OUT" target/bench/limit-writer.json <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if '"convert"' in l]
floor = json.load(open(sys.argv[2]))["writer"]
rows = {r["file"].rsplit("s3batch_", 1)[-1].split(".")[0]: r for r in ours}
print(f"{'batch':>6} {'ours CPU ms':>12} {'ours MB/s':>10} {'floor CPU ms':>13} {'floor MB/s':>11} {'ours/floor':>10}")
for f in floor:
    name, fcpu, fmbs = f["batch"], f["cpu_median_ms"], f["mb_per_s"]
    r = rows.get(name)
    if not r:
        continue
    ratio = r["mb_per_cpu_s"] / fmbs
    print(f"{name:>6} {r['cpu_ms']:>12} {r['mb_per_cpu_s']:>10} {round(fcpu, 2):>13} {round(fmbs):>11} {ratio:>10.2f}")
    with open(sys.argv[1], "a") as out:
        out.write(json.dumps({"mode": "floor", "batch": name, "floor_cpu_ms": fcpu, "floor_mb_per_s": fmbs,
                              "ours_over_floor": round(ratio, 3)}) + "\n")
PY

echo "== whole objects against a local endpoint answering WriteRecords after ${LATENCY_MS} ms"
for c in $CONCURRENCY; do
  target/release/examples/writer-bench store --concurrency "$c" --latency-ms "$LATENCY_MS" \
    "$DATA/s3batch_5mb.ndjson.gz" "$DATA/s3batch_20mb.ndjson.gz" | tee -a "$OUT"
done
echo "== results in $OUT"
