#!/usr/bin/env python3
"""Does SQS cost stay flat as a queue grows? Fills a standard queue with 10 and then
100,000 messages (unsigned keep-alive JSON requests) and measures SendMessage,
ReceiveMessage+DeleteMessage and GetQueueAttributes at each size; then the same
receive+delete on a FIFO queue of 400 and of 100,000 messages in 100 groups.

    bench/sqs_scale.py http://127.0.0.1:4566 [--big 100000]
"""
import argparse
import time

from benchlib import JsonClient, timed


def Client(endpoint):
    return JsonClient(endpoint, "AmazonSQS")


def fill(c, url, n):
    for start in range(0, n, 10):
        c.call("SendMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(min(10, n - start))]})


def fill_fifo(c, url, n, groups=100):
    for start in range(0, n, 10):
        c.call("SendMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(i), "MessageBody": f"m{start + i}", "MessageGroupId": f"g{(start + i) % groups}",
             "MessageDeduplicationId": f"d{start + i}"} for i in range(min(10, n - start))]})


def measure_fifo(c, url):
    def recv_delete(_):
        m = c.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 1})["Messages"][0]
        c.call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})

    return {"fifo receive+delete": timed(300, recv_delete)}


def measure(c, url):
    out = {"send": timed(300, lambda i: c.call("SendMessage", {"QueueUrl": url, "MessageBody": "x"}))}

    def recv_delete(_):
        m = c.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 1})["Messages"][0]
        c.call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})

    out["receive+delete"] = timed(300, recv_delete)
    out["attributes"] = timed(50, lambda i: c.call("GetQueueAttributes", {
        "QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--big", type=int, default=100_000)
    a = ap.parse_args()
    c = Client(a.endpoint)
    small_url = c.call("CreateQueue", {"QueueName": f"scale-small-{int(time.time())}"})["QueueUrl"]
    big_url = c.call("CreateQueue", {"QueueName": f"scale-big-{int(time.time())}"})["QueueUrl"]
    fill(c, small_url, 10)
    small = measure(c, small_url)
    t = time.perf_counter()
    fill(c, big_url, a.big)
    fill_s = time.perf_counter() - t
    big = measure(c, big_url)
    stamp = int(time.time())
    fifo_small = c.call("CreateQueue", {"QueueName": f"scale-s-{stamp}.fifo", "Attributes": {"FifoQueue": "true"}})["QueueUrl"]
    fifo_big = c.call("CreateQueue", {"QueueName": f"scale-b-{stamp}.fifo", "Attributes": {"FifoQueue": "true"}})["QueueUrl"]
    fill_fifo(c, fifo_small, 400)
    fill_fifo(c, fifo_big, a.big)
    small.update(measure_fifo(c, fifo_small))
    big.update(measure_fifo(c, fifo_big))
    print(f"filled {a.big} messages in {fill_s:.1f} s ({a.big / fill_s:.0f} msg/s in batches of 10, one connection)")
    print(f"{'op':20} | {'10 messages p50/p99 ms':>24} | {a.big:,} messages p50/p99 ms")
    for k in small:
        print(f"{k:20} | {small[k][0]:10.3f} / {small[k][1]:8.3f}   | {big[k][0]:10.3f} / {big[k][1]:8.3f}")


if __name__ == "__main__":
    main()
