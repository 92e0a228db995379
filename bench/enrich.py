#!/usr/bin/env python3
"""Benchmark of metrics-enrich against the shared kit (../shared/bench): the in-process floor
(`limit`), the release binary run as Lambda runs it (`lambda_harness.py`, validated), and the
Python peer, on the generated 1 MB and 3 MB Firehose events.

    python3 bench/enrich.py                 # build, generate what is missing, run, print a table
    python3 bench/enrich.py --runs 7        # more rounds (medians are reported)
    python3 bench/enrich.py --no-python     # skip the Python peer (needs PyPI for its venv)

Each round measures the floor, then our binary, then the peer, one right after the other, and
the ratios are taken within the round: on a shared machine the speed drifts over minutes, and
a floor measured once at the start would carry that drift into every ratio. The table reports
the medians over the rounds, and the range of the ratio to the floor.

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


def harness(kit, size, command, extra, log):
    """One fresh process: 2 warm-up + 10 timed invocations, the response validated."""
    done = run(
        [sys.executable, os.path.join(kit, "lambda_harness.py"),
         "--event", os.path.join(DATA, f"firehose_{size}.json"), "-w", "2", "-n", "10",
         "--validate", "firehose", "--env", f"TENANTS_FILE={DATA}/tenants.json", "--env", "ENVIRONMENT=bench",
         "--log", log, *extra, "--", command],
        capture_output=True, text=True)
    result = json.loads(done.stdout)
    if not result["validation"]["ok"]:
        sys.exit(f"{command} {size}: validation failed: {result['validation']['problems']}")
    return result


def floor(limit, round_no):
    """`limit`'s in-process CPU median (ms) per event size, 20 iterations each."""
    out = os.path.join(OUT, f"limit_{round_no}.json")
    run([limit, "transform", "--data", DATA, "--iters", "20", "--variants", "serde_raw", "--json", out],
        stdout=subprocess.DEVNULL)
    with open(out) as f:
        rows = json.load(f)["transform"]
    return {row["event"]: row["cpu_median_ms"] for row in rows if row["variant"] == "serde_raw"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", default=os.path.join(ROOT, "..", "shared", "bench"), help="the shared bench kit")
    ap.add_argument("--runs", type=int, default=5, help="rounds (floor, ours, peer) per size")
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
    limit = os.path.join(limit_dir, "release", "limit")

    python = None
    if not args.no_python:
        venv = os.path.join(OUT, "venv")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            run([sys.executable, "-m", "venv", venv])
            run([python, "-m", "pip", "install", "-q", "-r", os.path.join(kit, "peer_python", "requirements.txt")])
    peer_command = f"{python} -m awslambdaric app.handler"
    peer_extra = ["--task-root", os.path.join(kit, "peer_python"), "--handler", "app.handler"]

    rounds = {size: [] for size in SIZES}
    for i in range(args.runs):
        floors = floor(limit, i)
        for size in SIZES:
            ours = harness(kit, size, binary, [], os.path.join(OUT, f"enrich_{size}_{i}.log"))
            peer = None
            if python:
                peer = harness(kit, size, peer_command, peer_extra, os.path.join(OUT, f"python_{size}_{i}.log"))
            rounds[size].append({"floor": floors[size], "ours": ours, "peer": peer})
    with open(os.path.join(OUT, "enrich_rounds.json"), "w") as f:
        json.dump(rounds, f, indent=1)

    lines = [
        "| event | records | limit `serde_raw` CPU ms | metrics-enrich CPU ms/invoke | ÷ limit (range) "
        "| Python CPU ms/invoke | Python ÷ ours (range) | peak RSS MiB | init ms | response bytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    med = statistics.median
    for size in SIZES:
        rs = rounds[size]
        ours_cpu = [r["ours"]["cpu_ms_per_invoke"] for r in rs]
        to_floor = [r["ours"]["cpu_ms_per_invoke"] / r["floor"] for r in rs]
        if python:
            peer_cpu = [r["peer"]["cpu_ms_per_invoke"] for r in rs]
            vs_peer = [r["peer"]["cpu_ms_per_invoke"] / r["ours"]["cpu_ms_per_invoke"] for r in rs]
            peer_cells = f"{med(peer_cpu):.1f} | {med(vs_peer):.1f} ({min(vs_peer):.1f}–{max(vs_peer):.1f})"
        else:
            peer_cells = "- | -"
        last = rs[-1]["ours"]
        lines.append(
            f"| {size} | {last['validation']['records_in']} | {med(r['floor'] for r in rs):.2f} "
            f"| {med(ours_cpu):.1f} | {med(to_floor):.2f} ({min(to_floor):.2f}–{max(to_floor):.2f}) "
            f"| {peer_cells} | {med(r['ours']['peak_rss_mib'] for r in rs):.1f} "
            f"| {med(r['ours']['init_ms'] for r in rs):.1f} | {last['response_bytes']:,} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(OUT, "enrich.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
