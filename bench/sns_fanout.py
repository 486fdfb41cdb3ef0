#!/usr/bin/env python3
"""SNS -> SQS delivery latency without boto3 in the measurement: a raw HTTP
ReceiveMessage (WaitTimeSeconds=20) is already waiting on one connection when a raw
Publish goes out on another; the time from sending the Publish to the receive's
answer is the delivery latency (loopback, unsigned requests).

    bench/sns_fanout.py http://127.0.0.1:4566 [--n 1000]
"""
import argparse
import json
import socket
import statistics
import time
import urllib.parse


def http(sock, host, headers, body):
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((f"POST / HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n")
                 .encode() + body)


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest


def sqs(sock, host, target, body):
    http(sock, host, {"X-Amz-Target": f"AmazonSQS.{target}", "Content-Type": "application/x-amz-json-1.0"},
         json.dumps(body).encode())


def sns(sock, host, params):
    # Unsigned, so the Host names the service (sns.localhost routes to SNS).
    http(sock, "sns." + host.replace("127.0.0.1", "localhost"), {"Content-Type": "application/x-www-form-urlencoded"},
         urllib.parse.urlencode(params).encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--envelope", action="store_true",
                    help="deliver the signed JSON envelope instead of the raw message")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.endpoint)
    addr, host = (u.hostname, u.port), u.netloc
    recv_sock, pub_sock = socket.create_connection(addr), socket.create_connection(addr)
    for s in (recv_sock, pub_sock):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    name = f"fanout-{int(time.time())}"
    sqs(pub_sock, host, "CreateQueue", {"QueueName": name})
    url = json.loads(read_response(pub_sock))["QueueUrl"]
    sns(pub_sock, host, {"Action": "CreateTopic", "Name": name})
    topic = read_response(pub_sock).decode().split("<TopicArn>")[1].split("<")[0]
    sns(pub_sock, host, {"Action": "Subscribe", "TopicArn": topic, "Protocol": "sqs",
                         "Endpoint": f"arn:aws:sqs:us-east-1:000000000000:{name}",
                         "Attributes.entry.1.key": "RawMessageDelivery",
                         "Attributes.entry.1.value": "false" if a.envelope else "true"})
    read_response(pub_sock)
    lat = []
    for i in range(a.n):
        sqs(recv_sock, host, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 20})
        time.sleep(0.002)  # let the receive park
        t0 = time.perf_counter()
        sns(pub_sock, host, {"Action": "Publish", "TopicArn": topic, "Message": f"m{i}"})
        body = json.loads(read_response(recv_sock))
        lat.append((time.perf_counter() - t0) * 1000)
        read_response(pub_sock)
        sqs(recv_sock, host, "DeleteMessage", {"QueueUrl": url,
                                               "ReceiptHandle": body["Messages"][0]["ReceiptHandle"]})
        read_response(recv_sock)
    lat.sort()
    kind = "signed envelope" if a.envelope else "raw"
    print(f"SNS->SQS delivery ({kind}) over {a.n} publishes: p50 {statistics.median(lat):.2f} ms, "
          f"p99 {lat[int(len(lat) * 0.99) - 1]:.2f} ms, max {lat[-1]:.2f} ms")


if __name__ == "__main__":
    main()
