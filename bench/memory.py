"""Peak memory of the writer and forwarder binaries on hostile objects (see bench/memory.sh).

Makes the objects (once, cached), serves them from a moto S3 server, runs each release binary
under the shared Lambda Runtime API harness with one SQS event announcing the object, and
prints the peak RSS of the function process (VmHWM) and the time of the invocation.
"""
import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

BUCKET = "bench-memory"
MIB = 1024 * 1024


def event_line(i, tenant, pad=""):
    return (
        '{"metric_name":"scan_completed","metadata":{"tenant_id":"%s","event_id":"e-%d",'
        '"repo":"api-%d","tenant_name":"Tenant %s","environment":"bench"%s},'
        '"data":{"event_time":"2026-11-23T10:%02d:%02dZ","findings":%d,"duration_ms":%d.5,"ok":true}}\n'
        % (tenant, i, i % 50, tenant, pad, (i // 60) % 60, i % 60, i % 1000, i % 9973)
    )


def write_gzip(path, lines_iter):
    with gzip.open(path + ".tmp", "wb", compresslevel=1) as out:
        buf = []
        size = 0
        for line in lines_iter:
            buf.append(line)
            size += len(line)
            if size > 4 * MIB:
                out.write("".join(buf).encode())
                buf, size = [], 0
        out.write("".join(buf).encode())
    os.replace(path + ".tmp", path)


def valid_records(total_bytes):
    tenants = ["tenant-%02d" % t for t in range(20)]
    size, i = 0, 0
    while size < total_bytes:
        line = event_line(i, tenants[i % 20])
        size += len(line)
        i += 1
        yield line


def tiny_records(n):
    for i in range(n):
        yield '{"metric_name":"m","metadata":{"tenant_id":"t%02d","event_id":"%d"},"data":{"event_time":%d,"n":1}}\n' % (
            i % 10, i, 1795000000000 + i)


def invalid_lines(n):
    for _ in range(n):
        yield "not json\n"


OBJECTS = {
    # name: (maker, description)
    "valid-300mb": (lambda: valid_records(300 * 1000 * 1000), "300 MB of valid records"),
    "tiny-1m": (lambda: tiny_records(1_000_000), "1,000,000 tiny records"),
    "invalid-1m": (lambda: invalid_lines(1_000_000), "1,000,000 invalid lines"),
    "events-5mb": (lambda: valid_records(5 * 1000 * 1000), "5 MB of ordinary events"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def sqs_event(key):
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
              "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}}}
    return {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": json.dumps({"Records": [record]}),
                         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench", "awsRegion": "us-east-1"}]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--moto", required=True, help="moto_server executable")
    ap.add_argument("--writer", help="metrics-writer binary")
    ap.add_argument("--forwarder", help="metrics-forwarder binary")
    ap.add_argument("--vendorsim", help="metrics-vendorsim binary (for the forwarder)")
    ap.add_argument("--objects", default=",".join(OBJECTS))
    ap.add_argument("--label", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    os.makedirs(args.data, exist_ok=True)
    names = [n for n in args.objects.split(",") if n]
    for name in names:
        path = os.path.join(args.data, name + ".ndjson.gz")
        if not os.path.exists(path):
            print(f"== making {name} ({OBJECTS[name][1]})", file=sys.stderr)
            write_gzip(path, OBJECTS[name][0]())

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    procs = [subprocess.Popen([args.moto, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    sim_endpoint = None
    try:
        wait_http(endpoint + "/moto-api/data.json")
        if args.forwarder and args.vendorsim:
            sim_port = free_port()
            sim_endpoint = f"http://127.0.0.1:{sim_port}"
            procs.append(subprocess.Popen([args.vendorsim, "--addr", f"127.0.0.1:{sim_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_http(sim_endpoint + "/_sim/state")
        aws_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket=BUCKET)
        for name in names:
            s3.upload_file(os.path.join(args.data, name + ".ndjson.gz"), BUCKET, f"Data/{name}.gz")

        runs = []
        if args.writer:
            runs.append(("writer", args.writer))
        if args.forwarder:
            runs.append(("forwarder", args.forwarder))
        with open(args.out, "a") as out, tempfile.TemporaryDirectory() as tmp:
            for function, binary in runs:
                for name in names:
                    event_path = os.path.join(tmp, f"{name}.json")
                    with open(event_path, "w") as f:
                        json.dump(sqs_event(f"Data/{name}.gz"), f)
                    env = dict(aws_env)
                    if function == "writer":
                        env.update({"METRICS_STORE": "embedded",
                                    "EMBEDDED_STORE_PATH": os.path.join(tmp, f"{name}.sqlite")})
                    else:
                        env.update({"SEGMENT_WRITE_KEY": "test-write-key", "SEGMENT_ENDPOINT": sim_endpoint or "",
                                    "MIXPANEL_PROJECT_ID": "424242",
                                    "MIXPANEL_SERVICE_ACCOUNT": "sa-test.mp-service-account",
                                    "MIXPANEL_SERVICE_SECRET": "test-service-secret",
                                    "MIXPANEL_ENDPOINT": sim_endpoint or ""})
                    cmd = [sys.executable, args.harness, "--event", event_path, "-w", "0", "-n", "1",
                           "--timeout", "900", "--memory", "512", "--log", os.path.join(tmp, f"{function}-{name}.log")]
                    for k, v in env.items():
                        cmd += ["--env", f"{k}={v}"]
                    cmd += ["--", os.path.abspath(binary)]
                    done = subprocess.run(cmd, capture_output=True, text=True)
                    try:
                        result = json.loads(done.stdout)
                    except ValueError:
                        result = {"completed": False, "errors": [done.stderr[-500:]]}
                    size = os.path.getsize(os.path.join(args.data, name + ".ndjson.gz"))
                    row = {"label": args.label, "function": function, "object": name,
                           "object_gzip_bytes": size, "completed": result.get("completed"),
                           "peak_rss_mib": result.get("peak_rss_mib"), "invoke_ms": result.get("median_ms"),
                           "cpu_ms": result.get("cpu_ms_per_invoke"), "errors": result.get("errors"),
                           "response_bytes": result.get("response_bytes")}
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print(json.dumps(row))
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
