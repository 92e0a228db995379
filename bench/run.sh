#!/usr/bin/env bash
# Local pipeline benchmark: `metrics-lake run` on the sample data set at several sizes, on the
# `cli` profile (what scripts/demo builds). Reports events per second (wall clock), peak memory
# (max RSS), to show that memory stays bounded as the input grows (events are streamed), and the
# state directory's size on disk (bucket, store, outbox) per million events read.
#
# Usage (from the repository root): bench/run.sh [SIZES...]   (default: 100000 1000000)
# Each size runs in a fresh state directory under target/bench/run-<size>; results are printed
# and saved to target/bench/run-results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(100000 1000000)
OUT=target/bench/run-results.jsonl
mkdir -p target/bench

echo "== building (the cli profile: what scripts/demo builds)"
cargo build --profile cli --locked -p metrics-lake
BIN="${CARGO_TARGET_DIR:-target}/cli/metrics-lake"

printf '%-10s %10s %10s %12s %12s %10s %10s %14s\n' events read wall_s events_per_s peak_rss_mib objects stored disk_mib_per_1m
for size in "${SIZES[@]}"; do
  state="target/bench/run-$size"
  rm -rf "$state"
  summary="target/bench/run-$size.json"
  /usr/bin/time -f '%e %M' -o "target/bench/run-$size.time" \
    "$BIN" run --sample-events "$size" --json --quiet --state-dir "$state" > "$summary"
  read -r wall rss_kib < "target/bench/run-$size.time"
  disk_bytes=$(du -sb "$state" | cut -f1)
  python3 - "$size" "$wall" "$rss_kib" "$summary" "$OUT" "$disk_bytes" <<'PY'
import json, sys
size, wall, rss_kib, summary_path, out, disk_bytes = sys.argv[1:]
s = json.load(open(summary_path))
read = s["events_read"]
row = {
    "events": int(size), "events_read": read, "wall_s": float(wall),
    "events_per_s": round(read / float(wall)), "peak_rss_mib": round(int(rss_kib) / 1024, 1),
    "data_objects": s["objects"]["data"], "stored": s["outcomes"].get("stored", 0),
    "balanced": s["accounting"]["balanced"],
    "disk_mib": round(int(disk_bytes) / 2**20, 1),
    "disk_mib_per_million_events": round(int(disk_bytes) / 2**20 / (read / 1e6), 1),
}
print(f'{row["events"]:<10} {read:>10} {row["wall_s"]:>10.1f} {row["events_per_s"]:>12} {row["peak_rss_mib"]:>12} {row["data_objects"]:>10} {row["stored"]:>10} {row["disk_mib_per_million_events"]:>14}')
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
PY
done
