#!/usr/bin/env python3
"""Time from process start to the first answered HTTP request, without boto3 overhead.

Starts `virga serve` on a free port with a fresh data dir, connects in a tight loop and
sends `GET /_virga/health` until it answers; repeats and prints p50/min/max in ms, plus
the idle RSS. Usage: bench/startup.py path/to/virga [runs]
"""
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port


def once(binary):
    port = free_port()
    data = tempfile.mkdtemp()
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", data, "--log", "warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"GET /_virga/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    if c.recv(12).startswith(b"HTTP/1.1 200"):
                        ready = (time.perf_counter() - t0) * 1000
                        break
            except OSError:
                time.sleep(0.0005)
        time.sleep(0.5)
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
        return ready, rss
    finally:
        proc.kill()
        proc.wait()


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    results = [once(binary) for _ in range(runs)]
    ready = sorted(r for r, _ in results)
    rss = [m for _, m in results]
    print(f"startup_ms p50={statistics.median(ready):.1f} min={ready[0]:.1f} max={ready[-1]:.1f} "
          f"(n={runs}); idle_rss_mb p50={statistics.median(rss):.1f}")


if __name__ == "__main__":
    main()
