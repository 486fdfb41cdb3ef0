"""Helpers shared by the bench/ scripts: a keep-alive client for the JSON protocols
(unsigned requests; Virga routes them by X-Amz-Target), a latency timer, a free port,
and a server process's CPU time and resident memory from /proc."""
import http.client
import json
import os
import socket
import statistics
import time
import urllib.parse


class JsonClient:
    """POSTs `{prefix}.{op}` JSON requests over one keep-alive connection."""

    def __init__(self, endpoint, target_prefix, timeout=600):
        u = urllib.parse.urlparse(endpoint)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.prefix = target_prefix

    def call(self, op, body):
        self.c.request("POST", "/", body=json.dumps(body), headers={
            "X-Amz-Target": f"{self.prefix}.{op}", "Content-Type": "application/x-amz-json-1.0"})
        r = self.c.getresponse()
        out = r.read()
        if r.status != 200:
            raise RuntimeError(f"{op}: {r.status} {out[:300]!r}")
        return json.loads(out or b"{}")


def timed(n, fn):
    """Runs fn(i) n times; returns (p50, p99) in milliseconds."""
    lat = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
