#!/usr/bin/env bash
# Memory benchmark: peak RSS (VmHWM of the function process) and time of the release
# metrics-writer and metrics-forwarder binaries on hostile objects, each announced by one SQS
# event and served from a moto S3 server, run as Lambda runs them through the shared Runtime
# API harness:
#   valid-300mb  300 MB (uncompressed) of valid records
#   tiny-1m      1,000,000 tiny records
#   invalid-1m   1,000,000 invalid lines (a 2 KB gzip)
#   events-5mb   5 MB of ordinary events
# Targets: each function <= 128 MiB on the first three, <= 64 MiB on the 5 MB object.
#
# Usage (from the repository root): bench/memory.sh [--functions "writer forwarder"] [--objects a,b] [--label text]
# SHARED_BENCH points at the shared bench kit (default: ../shared/bench next to the repo);
# VENV at a Python virtual environment with moto[server] and boto3 (default: .venv, made by
# scripts/setup-venv). The writer uses the embedded store; the forwarder sends to
# metrics-vendorsim. Objects are made once into target/bench/memory (about 40 MB of gzip);
# results are printed and appended to target/bench/memory-results.jsonl.
set -euo pipefail

cd "$(dirname "$0")/.."
SHARED_BENCH="${SHARED_BENCH:-../shared/bench}"
VENV="${VENV:-.venv}"
FUNCTIONS="writer forwarder"
OBJECTS="valid-300mb,tiny-1m,invalid-1m,events-5mb"
LABEL="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --functions) FUNCTIONS="$2"; shift 2 ;;
    --objects) OBJECTS="$2"; shift 2 ;;
    --label) LABEL="$2"; shift 2 ;;
    *) echo "usage: bench/memory.sh [--functions \"writer forwarder\"] [--objects a,b] [--label text]" >&2; exit 1 ;;
  esac
done

TARGET="${CARGO_TARGET_DIR:-target}"
ARGS=()
PACKAGES=()
for f in $FUNCTIONS; do
  case "$f" in
    writer) PACKAGES+=(-p metrics-writer --bin metrics-writer); ARGS+=(--writer "$TARGET/release/metrics-writer") ;;
    forwarder)
      PACKAGES+=(-p metrics-forwarder --bin metrics-forwarder -p metrics-vendorsim --bin metrics-vendorsim)
      ARGS+=(--forwarder "$TARGET/release/metrics-forwarder" --vendorsim "$TARGET/release/metrics-vendorsim") ;;
    *) echo "unknown function $f" >&2; exit 1 ;;
  esac
done

echo "== building (release)"
cargo build --release "${PACKAGES[@]}"

mkdir -p target/bench
"$VENV/bin/python" bench/memory.py --data target/bench/memory --harness "$SHARED_BENCH/lambda_harness.py" \
  --moto "$VENV/bin/moto_server" --objects "$OBJECTS" --label "$LABEL" \
  --out target/bench/memory-results.jsonl "${ARGS[@]}"
echo "== results appended to target/bench/memory-results.jsonl"
