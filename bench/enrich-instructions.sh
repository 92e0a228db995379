#!/usr/bin/env bash
# Instructions per invocation of a metrics-enrich binary on the 3 MB event, counted by
# cachegrind while the binary serves the shared kit's harness: a deterministic figure for
# telling apart two builds whose CPU times differ by less than this host's timing noise.
#
# Usage (from the repository root, after `python3 bench/enrich.py` generated the events):
#   bench/enrich-instructions.sh [BINARY]     (default: target/release/metrics-enrich)
# Needs valgrind (`apt-get install valgrind`). SHARED_BENCH points at the shared bench kit
# (default: ../shared/bench next to the repo).
set -euo pipefail

cd "$(dirname "$0")/.."
SHARED_BENCH="${SHARED_BENCH:-../shared/bench}"
BINARY="$(realpath "${1:-target/release/metrics-enrich}")"
DATA="${DATA:-target/bench/data}"
OUT=target/bench/instructions
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[[ -f "$DATA/firehose_3mb.json" ]] || { echo "run python3 bench/enrich.py first: it generates $DATA" >&2; exit 1; }
mkdir -p "$OUT"

# Total instructions of the process serving N invocations (start-up included).
instructions() {
  local n="$1" wrapper="$OUT/wrapper-$1.sh" log="$OUT/run-$1.log"
  printf '#!/bin/sh\nexec valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null %s\n' \
    "$BINARY" >"$wrapper"
  chmod +x "$wrapper"
  rm -f "$log"
  python3 "$SHARED_BENCH/lambda_harness.py" --event "$DATA/firehose_3mb.json" -w 0 -n "$n" --timeout 120 \
    --env "TENANTS_FILE=$DATA/tenants.json" --env ENVIRONMENT=bench --log "$log" -- "$wrapper" >/dev/null
  # valgrind prints its summary when the harness stops the process.
  sleep 1
  grep -E 'I\s+refs:' "$log" | tail -1 | sed -E 's/.*refs:\s+//; s/,//g'
}

four=$(instructions 4)
eight=$(instructions 8)
echo "$BINARY: $(( (eight - four) / 4 )) instructions per 3 MB invocation"
