#!/usr/bin/env python3
"""Does S3 cost stay flat as a bucket grows? Fills one bucket with 10 and then
100,000 small objects (unsigned keep-alive HTTP, so the client is not the limit) and
measures GET, HEAD, PUT and a 100-key ListObjectsV2 page at each size.

    bench/scale.py http://127.0.0.1:4566 [--big 100000]
"""
import argparse
import http.client
from benchlib import timed as benchlib_timed
import time
import urllib.parse


def conn(endpoint):
    u = urllib.parse.urlparse(endpoint)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def req(c, method, path, body=None):
    c.request(method, path, body=body, headers={"Content-Length": str(len(body or b""))})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return data


def fill(c, bucket, start, end):
    body = b"x" * 1024
    for i in range(start, end):
        req(c, "PUT", f"/{bucket}/obj/{i:08d}", body)


def timed(c, n, fn):
    return benchlib_timed(n, fn)


def measure(c, bucket, size):
    out = {}
    out["get"] = timed(c, 500, lambda i: req(c, "GET", f"/{bucket}/obj/{(i * 7919) % size:08d}"))
    out["head"] = timed(c, 500, lambda i: req(c, "HEAD", f"/{bucket}/obj/{(i * 7919) % size:08d}"))
    out["put"] = timed(c, 500, lambda i: req(c, "PUT", f"/{bucket}/new/{size}-{i}", b"y" * 1024))
    mid = f"obj/{size // 2:08d}"
    out["list100"] = timed(c, 200, lambda i: req(
        c, "GET", f"/{bucket}?list-type=2&max-keys=100&start-after={urllib.parse.quote(mid)}"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--big", type=int, default=100_000)
    a = ap.parse_args()
    c = conn(a.endpoint)
    bucket = f"scale-{int(time.time())}"
    req(c, "PUT", f"/{bucket}")
    fill(c, bucket, 0, 10)
    small = measure(c, bucket, 10)
    t = time.perf_counter()
    fill(c, bucket, 10, a.big)
    fill_s = time.perf_counter() - t
    big = measure(c, bucket, a.big)
    print(f"filled {a.big - 10} objects in {fill_s:.1f} s ({(a.big - 10) / fill_s:.0f} PUT/s, one connection)")
    print(f"{'op':8} | {'10 objects p50/p99 ms':>24} | {a.big:,} objects p50/p99 ms")
    for k in small:
        print(f"{k:8} | {small[k][0]:10.3f} / {small[k][1]:8.3f}   | {big[k][0]:10.3f} / {big[k][1]:8.3f}")


if __name__ == "__main__":
    main()
