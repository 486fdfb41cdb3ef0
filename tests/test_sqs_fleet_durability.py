"""SQS under concurrent producers and consumers (every message processed exactly
once), and durability: queues and messages survive a restart and `kill -9`."""
import collections
import threading
import time

from test_sqs_util import (  # noqa: F401  (fixtures)
    ACCOUNT, attributes, counts, make_queue, md5_hex, md5_of_attributes, queue_name, receive,
    receive_until, sqs,
)
from virga_testlib import make_client

ATTRS = {
    "kind": {"DataType": "String", "StringValue": "durable"},
    "n": {"DataType": "Number", "StringValue": "7"},
    "bin": {"DataType": "Binary", "BinaryValue": b"\x01\x02\x03"},
}


def test_worker_fleet_processes_every_message_exactly_once(endpoint, sqs, make_queue):
    _, url = make_queue(attributes={"VisibilityTimeout": "120"})
    total = 200
    bodies = [f"job-{i:03d}" for i in range(total)]
    processed = collections.Counter()
    lock = threading.Lock()
    errors = []
    sent = threading.Event()

    def producer(part):
        try:
            client = make_client(endpoint, "sqs")
            for start in range(part * 100, part * 100 + 100, 10):
                resp = client.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": f"m{i}", "MessageBody": bodies[i]} for i in range(start, start + 10)])
                if resp.get("Failed"):
                    errors.append(resp["Failed"])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def consumer(deadline):
        try:
            client = make_client(endpoint, "sqs")
            while time.monotonic() < deadline:
                msgs = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1).get("Messages", [])
                if not msgs:
                    with lock:
                        if sent.is_set() and sum(processed.values()) >= total:
                            return
                    continue
                with lock:
                    processed.update(m["Body"] for m in msgs)
                resp = client.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
                if resp.get("Failed"):
                    errors.append(resp["Failed"])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    deadline = time.monotonic() + 30
    consumers = [threading.Thread(target=consumer, args=(deadline,)) for _ in range(4)]
    producers = [threading.Thread(target=producer, args=(p,)) for p in range(2)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join()
    sent.set()
    for t in consumers:
        t.join(timeout=40)
    assert not any(t.is_alive() for t in consumers)
    assert errors == []
    duplicates = {b: n for b, n in processed.items() if n > 1}
    assert duplicates == {}
    assert sorted(processed) == bodies
    assert counts(sqs, url) == (0, 0, 0)


def test_queues_and_messages_survive_restart(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "data")
    sqs = server.client("sqs")
    name = queue_name()
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "77"},
                           tags={"team": "durable"})["QueueUrl"]
    fifo_name = queue_name(fifo=True)
    fifo_url = sqs.create_queue(QueueName=fifo_name, Attributes={"FifoQueue": "true"})["QueueUrl"]

    bodies = [f"msg-{i:02d}" for i in range(30)]
    for i, body in enumerate(bodies[:20]):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRS)
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": b, "MessageAttributes": ATTRS} for i, b in enumerate(bodies[20:])])
    gone = receive_until(sqs, url, 5, MaxNumberOfMessages=5)
    assert len(gone) == 5
    sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(gone)])
    remaining = sorted(set(bodies) - {m["Body"] for m in gone})

    fifo_ids = [sqs.send_message(QueueUrl=fifo_url, MessageBody=f"f{i}", MessageGroupId="g",
                                 MessageDeduplicationId=f"d{i}")["MessageId"] for i in range(5)]

    server.restart()
    sqs = server.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/{name}"
    fifo_url = sqs.get_queue_url(QueueName=fifo_name)["QueueUrl"]
    assert attributes(sqs, url, "VisibilityTimeout") == {"VisibilityTimeout": "77"}
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "durable"}
    assert counts(sqs, url) == (25, 0, 0)

    got = receive_until(sqs, url, 25, MessageAttributeNames=["All"])
    assert sorted(m["Body"] for m in got) == remaining
    for m in got:
        assert m["MD5OfBody"] == md5_hex(m["Body"])
        assert m["MessageAttributes"] == ATTRS
        assert m["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)

    # FIFO order and the deduplication window survive too.
    dup = sqs.send_message(QueueUrl=fifo_url, MessageBody="dup", MessageGroupId="g", MessageDeduplicationId="d0")
    assert dup["MessageId"] == fifo_ids[0]
    order = []
    for _ in range(20):
        msgs = receive(sqs, fifo_url, MaxNumberOfMessages=10)
        order += [m["Body"] for m in msgs]
        for m in msgs:
            sqs.delete_message(QueueUrl=fifo_url, ReceiptHandle=m["ReceiptHandle"])
        if len(order) >= 5:
            break
    assert order == [f"f{i}" for i in range(5)]


def test_acknowledged_sends_survive_kill_9(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "data")
    sqs = server.client("sqs")
    name = queue_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    ids = {}
    for i in range(40):
        ids[sqs.send_message(QueueUrl=url, MessageBody=f"k{i:02d}")["MessageId"]] = f"k{i:02d}"
    deleted = receive_until(sqs, url, 10, MaxNumberOfMessages=10)
    assert len(deleted) == 10
    for m in deleted:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        del ids[m["MessageId"]]

    server.kill()
    server.start()
    sqs = server.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    got = receive_until(sqs, url, 30)
    assert {m["MessageId"]: m["Body"] for m in got} == ids
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
