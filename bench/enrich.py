#!/usr/bin/env python3
"""Benchmark of metrics-enrich against the shared kit (../shared/bench): the in-process floor
(`limit`), the release binary run as Lambda runs it (`lambda_harness.py`, validated), and the
Python peer, on the generated 1 MB and 3 MB Firehose events; then metrics-enrich and the floor
on 1 MB and 3 MB of wrapped EventBridge events (`{"metric":…,"event":…}`, what the rules
deliver), which this script generates (the shared generator makes unified events only).

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
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
DATA = os.path.join(OUT, "data")
WRAPPED = os.path.join(OUT, "wrapped")
SIZES = ["1mb", "3mb"]
# `limit` reads all three sizes from its data directory.
WRAPPED_BYTES = {"1mb": 1 << 20, "3mb": 3 << 20, "6mb": 5_900_000}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def wrapped_event(rng, tenant, at):
    """One realistic EventBridge event of a shipped metric (see infra/metrics.toml), with the
    fields producers send: ids, free text with quotes, numbers, booleans, nested objects, and
    now and then an optional field left out."""
    repo = rng.choice(["payments-api", "web-frontend", "auth-service", "infra-live", "mobile-app"])
    severity = rng.choice(["critical", "high", "medium", "low"])
    kinds = {
        "findings_upload_completed": ("findings", "findings-uploaded", "created_at", {
            "upload_id": f"upl_{rng.getrandbits(40):010x}", "scanner": rng.choice(["semgrep", "trivy", "gitleaks"]),
            "repo_name": repo, "new_findings_count": rng.randrange(12), "existing_findings_count": rng.randrange(100)}),
        "scan_completed": ("scanner", "scan-completed", "finished_at", {
            "scan_id": f"scn_{rng.getrandbits(24):06x}", "repo_name": repo,
            "branch": rng.choice(["main", "release/2026.11", "feat/\"quoted\"-name"]),
            "is_default_branch": rng.random() < 0.7, "scan_type": rng.choice(["sast", "sca", "iac"]),
            "status": rng.choice(["succeeded", "failed", "timed_out"]),
            "duration_ms": 5000 + rng.randrange(240000), "findings_count": rng.randrange(40)}),
        "finding_fixed": ("findings", "finding-fixed", "fixed_at", {
            "finding_id": f"fnd_{rng.getrandbits(32):08x}", "title": "SQL injection in \"orders\" query (C:\\legacy)",
            "severity": severity, "control": rng.choice(["sast", "sca", "iac"]), "repo_name": repo,
            "fix_method": rng.choice(["auto_pr", "manual"]), "time_to_fix_hours": rng.randrange(2000) / 10}),
        "pr_check_completed": ("pull-requests", "pr-check-completed", "completed_at", {
            "check_id": f"chk_{rng.getrandbits(24):06x}", "repo_name": repo, "pr_number": 1 + rng.randrange(3000),
            "pr_title": "Bump lodash to 4.17.21 — “security” fix", "author": {"login": "dana", "type": "User"},
            "conclusion": rng.choice(["success", "failure", "neutral"]), "blocking": rng.random() < 0.1,
            "new_findings_count": rng.randrange(5), "duration_ms": 10000 + rng.randrange(110000)}),
        "policy_violation_detected": ("policies", "policy-violation-detected", "detected_at", {
            "violation_id": f"vio_{rng.getrandbits(24):06x}", "policy_id": "s3-bucket-public-read",
            "severity": severity, "message": "Bucket \"acme-logs\" allows public read",
            "risk_score": rng.randrange(101) / 10,
            "resource": {"type": "aws_s3_bucket", "cloud": "aws", "region": "eu-west-1"}}),
        "vulnerable_dependency_found": ("sca", "vulnerable-dependency-found", "found_at", {
            "repo_name": repo, "ecosystem": rng.choice(["npm", "pypi", "cargo"]), "package_name": "lodash",
            "cve_id": f"CVE-2026-{10000 + rng.randrange(40000)}", "severity": severity,
            "cvss_score": rng.randrange(101) / 10, "fix_available": rng.random() < 0.8, "reachable": rng.random() < 0.25}),
        "secret_detected": ("secrets", "secret-detected", "detected_at", {
            "detection_id": f"sec_{rng.getrandbits(16):04x}", "repo_name": repo,
            "secret_type": rng.choice(["aws-access-key", "github-token"]),
            "verified": rng.random() < 0.3, "in_history": rng.random() < 0.6}),
    }
    metric = rng.choice(sorted(kinds))
    source, detail_type, time_field, detail = kinds[metric]
    detail = {"tenant_id": tenant, **detail, time_field: at}
    if rng.random() < 0.05:
        detail.pop("repo_name", None)  # an optional dimension left out
    event = {"version": "0", "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "detail-type": detail_type,
             "source": source, "account": "123456789012", "time": at, "region": "us-east-1", "resources": [],
             "detail": detail}
    return {"metric": metric, "event": event}


def gen_wrapped():
    """Firehose events of wrapped events, every one valid, in WRAPPED/ with the kit's file names
    (and its tenants), so `limit` and the harness read them as they read the kit's events."""
    os.makedirs(WRAPPED, exist_ok=True)
    with open(os.path.join(DATA, "tenants.json")) as f:
        tenants = json.load(f)
    with open(os.path.join(WRAPPED, "tenants.json"), "w") as f:
        json.dump(tenants, f)
    rng = random.Random(20261203)
    for size, target in WRAPPED_BYTES.items():
        records, total = [], 200
        while True:
            at = f"2026-11-2{rng.randrange(3)}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
            data = json.dumps(wrapped_event(rng, rng.choice(sorted(tenants)), at), separators=(",", ":"),
                              ensure_ascii=False).encode()
            record = {"recordId": f"{rng.getrandbits(186):056d}"[:56], "approximateArrivalTimestamp": 1795651200000,
                      "data": base64.b64encode(data).decode()}
            size_of = len(json.dumps(record)) + 2
            if total + size_of > target:
                break
            records.append(record)
            total += size_of
        body = {"invocationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/events-enrich",
                "region": "us-east-1", "records": records}
        with open(os.path.join(WRAPPED, f"firehose_{size}.json"), "w") as f:
            json.dump(body, f)
        with open(os.path.join(WRAPPED, f"firehose_{size}.expect.json"), "w") as f:
            json.dump({"records": len(records), "Ok": len(records), "ProcessingFailed": 0, "environment": "bench"}, f)


def harness(kit, size, command, extra, log, data=DATA):
    """One fresh process: 2 warm-up + 10 timed invocations, the response validated."""
    done = run(
        [sys.executable, os.path.join(kit, "lambda_harness.py"),
         "--event", os.path.join(data, f"firehose_{size}.json"), "-w", "2", "-n", "10",
         "--validate", "firehose", "--env", f"TENANTS_FILE={data}/tenants.json", "--env", "ENVIRONMENT=bench",
         "--log", log, *extra, "--", command],
        capture_output=True, text=True)
    result = json.loads(done.stdout)
    if not result["validation"]["ok"]:
        sys.exit(f"{command} {size}: validation failed: {result['validation']['problems']}")
    return result


def floor(limit, round_no, data=DATA, tag=""):
    """`limit`'s in-process CPU median (ms) per event size, 20 iterations each."""
    out = os.path.join(OUT, f"limit{tag}_{round_no}.json")
    run([limit, "transform", "--data", data, "--iters", "20", "--variants", "serde_raw", "--json", out],
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
    binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "metrics-enrich")
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

    if not os.path.exists(os.path.join(WRAPPED, "firehose_3mb.json")):
        gen_wrapped()

    rounds = {size: [] for size in SIZES + [f"wrapped {s}" for s in SIZES]}
    for i in range(args.runs):
        floors = floor(limit, i)
        wrapped_floors = floor(limit, i, WRAPPED, "_wrapped")
        for size in SIZES:
            ours = harness(kit, size, binary, [], os.path.join(OUT, f"enrich_{size}_{i}.log"))
            peer = None
            if python:
                peer = harness(kit, size, peer_command, peer_extra, os.path.join(OUT, f"python_{size}_{i}.log"))
            rounds[size].append({"floor": floors[size], "ours": ours, "peer": peer})
            ours = harness(kit, size, binary, [], os.path.join(OUT, f"enrich_wrapped_{size}_{i}.log"), WRAPPED)
            rounds[f"wrapped {size}"].append({"floor": wrapped_floors[size], "ours": ours, "peer": None})
    with open(os.path.join(OUT, "enrich_rounds.json"), "w") as f:
        json.dump(rounds, f, indent=1)

    lines = [
        "| event | records | limit `serde_raw` CPU ms | metrics-enrich CPU ms/invoke | ÷ limit (range) "
        "| Python CPU ms/invoke | Python ÷ ours (range) | peak RSS MiB | init ms | response bytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    med = statistics.median
    for size in rounds:
        rs = rounds[size]
        ours_cpu = [r["ours"]["cpu_ms_per_invoke"] for r in rs]
        to_floor = [r["ours"]["cpu_ms_per_invoke"] / r["floor"] for r in rs]
        if rs[0]["peer"]:
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
