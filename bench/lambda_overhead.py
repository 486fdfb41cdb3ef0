#!/usr/bin/env python3
"""Lambda on Virga: cold start, warm invoke overhead and throughput under a
concurrency limit, measured with a raw keep-alive HTTP client (boto3 alone costs more
per call than Virga does).

Usage: bench/lambda_overhead.py [VIRGA_BINARY]   (default target/release/virga)

- cold: N new Python functions, the first invoke of each (process start, runtime
  init, handler, response), client-side latency.
- warm: invokes of a no-op Python handler on a warm environment; Virga's part is the
  server's own CPU per invoke (/proc of the Virga process; the runtime process is
  not counted) and the round trip minus the handler's Duration from the REPORT line.
  GetFunctionConfiguration, which runs no code, is the baseline of a plain request.
- throughput: 8 client threads against a function with ReservedConcurrentExecutions=4
  whose handler sleeps 20 ms: invokes/s and how many were throttled (429).
"""
import http.client
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import boto3

from benchlib import cpu_seconds, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "release", "virga")
# An access key Virga does not verify (not in --credentials): the signature is ignored,
# the credential scope still routes the request to Lambda.
AMZ_DATE = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
AUTH = (f"AWS4-HMAC-SHA256 Credential=bench/{AMZ_DATE[:8]}/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64)


class Raw:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=b""):
        self.c.request(method, path, body=body, headers={
            "Authorization": AUTH, "X-Amz-Date": AMZ_DATE,
            "Content-Type": "application/json"})
        r = self.c.getresponse()
        return r.status, r.read(), r.getheader("X-Amz-Function-Error")


def pct(lat, p):
    lat = sorted(lat)
    return lat[min(len(lat) - 1, int(len(lat) * p))]


def zip_of(code):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("lambda_function.py", code)
    return b.getvalue()


def main():
    port = free_port()
    data = tempfile.mkdtemp()
    proc = subprocess.Popen([BIN, "serve", "--port", str(port), "--data-dir", data,
                             "--log", "warn"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port}"
        lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        role = "arn:aws:iam::000000000000:role/bench"
        noop = zip_of("def handler(event, context):\n    return event\n")
        raw = Raw(port)

        # Cold starts.
        cold = []
        for i in range(30):
            name = f"cold{i}"
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                Handler="lambda_function.handler", Code={"ZipFile": noop})
            t = time.perf_counter()
            st, body, err = raw.call("POST", f"/2015-03-31/functions/{name}/invocations", b'{"i": 1}')
            cold.append((time.perf_counter() - t) * 1000)
            assert st == 200 and not err, (st, body)
        print(f"cold start (first invoke, client-side): p50 {statistics.median(cold):.1f} ms, "
              f"p99 {pct(cold, 0.99):.1f} ms over {len(cold)} functions")

        # Warm invokes vs a plain request.
        n = 3000
        lam.create_function(FunctionName="warm", Runtime="python3.12", Role=role,
                            Handler="lambda_function.handler", Code={"ZipFile": noop})
        raw.call("POST", "/2015-03-31/functions/warm/invocations", b"{}")
        for label, method, path, body in [
            ("GetFunctionConfiguration", "GET", "/2015-03-31/functions/warm/configuration", b""),
            ("Invoke (warm, no-op handler)", "POST", "/2015-03-31/functions/warm/invocations", b'{"k": "v"}'),
        ]:
            lat = []
            c0 = cpu_seconds(proc.pid)
            for _ in range(n):
                t = time.perf_counter()
                st, out, err = raw.call(method, path, body)
                lat.append((time.perf_counter() - t) * 1000)
                assert st == 200 and not err, (st, out)
            cpu = (cpu_seconds(proc.pid) - c0) / n * 1000
            print(f"{label}: p50 {statistics.median(lat):.3f} ms, p99 {pct(lat, 0.99):.3f} ms, "
                  f"Virga CPU {cpu:.3f} ms/op")
        logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")
        durations = []
        kw = {"logGroupName": "/aws/lambda/warm", "filterPattern": "REPORT"}
        while True:
            page = logs.filter_log_events(**kw)
            for e in page["events"]:
                m = re.search(r"Duration: ([0-9.]+) ms", e["message"])
                if m:
                    durations.append(float(m.group(1)))
            if not page.get("nextToken"):
                break
            kw["nextToken"] = page["nextToken"]
        print(f"handler Duration (REPORT, runtime side): p50 {statistics.median(durations):.3f} ms "
              f"over {len(durations)} invokes")

        # Throughput under a concurrency limit.
        sleepy = zip_of("import time\ndef handler(event, context):\n    time.sleep(0.02)\n    return 1\n")
        lam.create_function(FunctionName="limited", Runtime="python3.12", Role=role,
                            Handler="lambda_function.handler", Code={"ZipFile": sleepy})
        lam.put_function_concurrency(FunctionName="limited", ReservedConcurrentExecutions=4)
        counts = {"ok": 0, "throttled": 0}
        lock = threading.Lock()
        stop = time.time() + 8

        def worker():
            c = Raw(port)
            while time.time() < stop:
                st, _, _ = c.call("POST", "/2015-03-31/functions/limited/invocations", b"{}")
                with lock:
                    counts["ok" if st == 200 else "throttled"] += 1
                if st == 429:
                    time.sleep(0.005)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.time() - t0
        print(f"limited to 4 concurrent, 8 clients, 20 ms handler: {counts['ok'] / secs:.0f} invokes/s "
              f"(ceiling 200/s), {counts['throttled']} throttled (429) in {secs:.1f} s")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
