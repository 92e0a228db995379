#!/usr/bin/env python3
"""Benchmark of metrics-enrich against the shared kit (../shared/bench): the in-process floor
(`limit`), the release binary run as Lambda runs it (`lambda_harness.py`, validated), and the
Python peer, on the generated 1 MB and 3 MB Firehose events.

    python3 bench/enrich.py                 # build, generate what is missing, run, print a table
    python3 bench/enrich.py --runs 5        # more harness runs per size (medians are reported)
    python3 bench/enrich.py --no-python     # skip the Python peer (needs PyPI for its venv)

The shared kit is only read. Generated events, builds, the Python virtual environment and raw
results go under target/bench/; the table is also written to target/bench/enrich.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
DATA = os.path.join(OUT, "data")
SIZES = ["1mb", "3mb"]


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def harness(kit, size, command, runs, extra, name):
    """Median figures over `runs` fresh processes, each 2 warm-up + 10 timed invocations."""
    results = []
    for i in range(runs):
        done = run(
            [sys.executable, os.path.join(kit, "lambda_harness.py"),
             "--event", os.path.join(DATA, f"firehose_{size}.json"), "-w", "2", "-n", "10",
             "--validate", "firehose", "--env", f"TENANTS_FILE={DATA}/tenants.json", "--env", "ENVIRONMENT=bench",
             "--log", os.path.join(OUT, f"{name}_{size}_{i}.log"), *extra, "--", command],
            capture_output=True, text=True)
        result = json.loads(done.stdout)
        if not result["validation"]["ok"]:
            sys.exit(f"{name} {size}: validation failed: {result['validation']['problems']}")
        results.append(result)
    with open(os.path.join(OUT, f"{name}_{size}.json"), "w") as f:
        json.dump(results, f, indent=1)
    med = lambda key: statistics.median(r[key] for r in results)
    return {"cpu": med("cpu_ms_per_invoke"), "rss": med("peak_rss_mib"), "init": med("init_ms"),
            "response": results[-1]["response_bytes"], "records": results[-1]["validation"]["records_in"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", default=os.path.join(ROOT, "..", "shared", "bench"), help="the shared bench kit")
    ap.add_argument("--runs", type=int, default=3, help="harness runs per size and function")
    ap.add_argument("--no-python", action="store_true", help="skip the Python peer")
    args = ap.parse_args()
    kit = os.path.abspath(args.kit)
    os.makedirs(OUT, exist_ok=True)

    run(["cargo", "build", "--release", "-p", "metrics-enrich"], cwd=ROOT)
    binary = os.path.join(ROOT, "target", "release", "metrics-enrich")
    if not os.path.exists(os.path.join(DATA, "firehose_3mb.json")):
        run([sys.executable, os.path.join(kit, "gen_events.py"), "--out", DATA])
    limit_dir = os.path.join(OUT, "limit-target")
    run(["cargo", "build", "--release", "--locked", "--manifest-path", os.path.join(kit, "limit", "Cargo.toml"),
         "--target-dir", limit_dir])

    limit_json = os.path.join(OUT, "limit.json")
    run([os.path.join(limit_dir, "release", "limit"), "transform", "--data", DATA, "--iters", "20",
         "--variants", "serde_raw", "--json", limit_json], stdout=subprocess.DEVNULL)
    with open(limit_json) as f:
        limit = {row["event"]: row["cpu_median_ms"] for row in json.load(f)["transform"] if row["variant"] == "serde_raw"}

    python = None
    if not args.no_python:
        venv = os.path.join(OUT, "venv")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            run([sys.executable, "-m", "venv", venv])
            run([python, "-m", "pip", "install", "-q", "-r", os.path.join(kit, "peer_python", "requirements.txt")])

    rows = []
    for size in SIZES:
        ours = harness(kit, size, binary, args.runs, [], "enrich")
        peer = None
        if python:
            peer = harness(kit, size, f"{python} -m awslambdaric app.handler", args.runs,
                           ["--task-root", os.path.join(kit, "peer_python"), "--handler", "app.handler"], "python")
        rows.append((size, limit.get(size), ours, peer))

    lines = [
        "| event | records | limit `serde_raw` CPU ms | metrics-enrich CPU ms/invoke | ÷ limit | Python CPU ms/invoke "
        "| Python ÷ ours | peak RSS MiB | init ms | response bytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, floor, ours, peer in rows:
        ratio = f"{ours['cpu'] / floor:.2f}" if floor else "-"
        peer_cpu = f"{peer['cpu']:.1f}" if peer else "-"
        peer_ratio = f"{peer['cpu'] / ours['cpu']:.1f}" if peer else "-"
        lines.append(
            f"| {size} | {ours['records']} | {floor:.2f} | {ours['cpu']:.1f} | {ratio} | {peer_cpu} | {peer_ratio} "
            f"| {ours['rss']:.1f} | {ours['init']:.1f} | {ours['response']:,} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(OUT, "enrich.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
