#!/usr/bin/env bash
# Instructions of a whole `metrics-lake run --sample-events N`, counted by cachegrind: a
# deterministic figure for telling apart two builds whose run times differ by less than this
# host's timing noise (on a shared 2-core VM the same binary's sample run varies by a third).
#
# Usage (from the repository root):
#   bench/run-instructions.sh [BINARY] [EVENTS]   (defaults: target/cli/metrics-lake, 20000)
# Prints the total, memset's share and the top functions. Under valgrind a `rep stosb` counts
# once per byte, so memset's share of instructions is far above its share of time (perf puts it
# at 2-5 %): compare builds on the total without memset. Needs valgrind
# (`apt-get install valgrind`); about a minute per 20,000 events.
set -euo pipefail

cd "$(dirname "$0")/.."
BINARY="$(realpath "${1:-target/cli/metrics-lake}")"
EVENTS="${2:-20000}"
OUT=target/bench/run-instructions
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[[ -x "$BINARY" ]] || { echo "no binary at $BINARY: cargo build --profile cli -p metrics-lake" >&2; exit 1; }
mkdir -p "$OUT"
rm -rf "$OUT/state"

valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$OUT/cachegrind.out" \
  "$BINARY" run --sample-events "$EVENTS" --state-dir "$OUT/state" --quiet >/dev/null 2>"$OUT/valgrind.log"
cg_annotate "$OUT/cachegrind.out" >"$OUT/annotate.txt"
python3 - "$OUT/annotate.txt" "$EVENTS" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
total = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
memset = sum(int(m.group(1).replace(",", ""))
             for m in re.finditer(r"^\s*([\d,]+) \([\d. ]+%\)\s+\S*memset\S*", text, re.M))
print(f"events {sys.argv[2]}: {total / 1e9:.3f} G instructions, memset {memset / 1e9:.3f} G, "
      f"without memset {(total - memset) / 1e9:.3f} G")
PY
grep -m 25 -E '^\s*[0-9,]+ \(' "$OUT/annotate.txt" | tail -n +2
