#!/usr/bin/env python3
"""Memory cost of idle SQS long-polling receivers: opens N connections that each wait
in ReceiveMessage (WaitTimeSeconds=20) on an empty queue, then reports the server's
RSS before and while they wait, and how fast one send wakes one of them.

    bench/longpoll.py --pid PID http://127.0.0.1:4566 [--receivers 10000] [--first-send BYTES]

--first-send makes each connection send one message of that size (to a queue that does
not exist, so nothing is stored) before it waits, as a pooled SDK connection would: what a connection keeps from an
earlier, larger request shows up here.
"""
import argparse
import json
import resource
import socket
import time
import urllib.parse

from benchlib import rss_mb


def request(host, target, body):
    data = json.dumps(body).encode()
    return (f"POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: AmazonSQS.{target}\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def call(addr, host, target, body):
    with socket.create_connection(addr) as s:
        s.sendall(request(host, target, body))
        return s.recv(65536).decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--receivers", type=int, default=10000)
    ap.add_argument("--first-send", type=int, default=0, metavar="BYTES")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.receivers + 1000), hard))
    u = urllib.parse.urlparse(a.endpoint)
    addr, host = (u.hostname, u.port), u.netloc
    resp = call(addr, host, "CreateQueue", {"QueueName": f"idle-{int(time.time())}"})
    url = json.loads(resp.split("\r\n\r\n", 1)[1])["QueueUrl"]
    if a.first_send:
        # To a queue that does not exist: the body is read whole, nothing is stored.
        first = request(host, "SendMessage", {"QueueUrl": url + "-absent", "MessageBody": "x" * a.first_send})
    before = rss_mb(a.pid)
    socks = []
    t0 = time.time()
    for _ in range(a.receivers):
        s = socket.create_connection(addr)
        if a.first_send:
            s.sendall(first)
            got = b""
            while b"QueueDoesNotExist" not in got:
                got += s.recv(65536)
        s.sendall(request(host, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 20}))
        socks.append(s)
    opened = time.time() - t0
    time.sleep(2)
    during = rss_mb(a.pid)
    t1 = time.time()
    call(addr, host, "SendMessage", {"QueueUrl": url, "MessageBody": "wake"})
    for s in socks:
        s.setblocking(False)
    woke = None
    while woke is None and time.time() - t1 < 5:
        for s in socks:
            try:
                if b"wake" in s.recv(65536):
                    woke = time.time() - t1
                    break
            except BlockingIOError:
                pass
    print(f"{a.receivers} idle receivers opened in {opened:.1f} s; server RSS {before:.1f} MiB -> "
          f"{during:.1f} MiB (+{during - before:.1f} MiB); a send woke a receiver after "
          f"{(woke or float('nan')) * 1000:.1f} ms")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
