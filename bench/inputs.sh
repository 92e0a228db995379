# Sourced by the benchmarks that read the shared kit's generated batches: makes them once into
# target/bench/data (the kit itself is read-only). Needs SHARED_BENCH.
BENCH_DATA=target/bench/data

# Generates the kit's inputs unless `$1` (one of them) is there already.
bench_inputs() {
  mkdir -p "$BENCH_DATA"
  if [[ ! -f "$1" ]]; then
    echo "== generating inputs into $BENCH_DATA"
    python3 "$SHARED_BENCH/gen_events.py" --out "$BENCH_DATA"
  fi
}
