"""SQS messages on standard queues: send/receive/delete, message and system
attributes with their MD5s, batches, visibility, receipt handles, size limits,
long polling, delays and retention (time moved with the clock endpoint)."""
import threading
import time

import pytest

from test_sqs_util import (  # noqa: F401  (fixtures)
    counts, make_queue, md5_hex, md5_of_attributes, queue, queue_name, receive,
    receive_until, sqs,
)
from virga_testlib import expect_error, make_client

INVALID_HANDLE = ("ReceiptHandleIsInvalid", 400)

ATTRS = {
    "color": {"DataType": "String", "StringValue": "blue"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "ratio": {"DataType": "Number.float", "StringValue": "3.14"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff binary"},
    "note": {"DataType": "String.custom", "StringValue": "h\u00e9llo \u2713"},
}


def test_send_receive_delete(sqs, queue):
    _, url = queue
    body = "hello \u00e9\u2713 \U0001d11e <xml/> {\"json\": 1}"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert sent["MessageId"]
    assert "MD5OfMessageAttributes" not in sent
    msgs = receive_until(sqs, url, 1)
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg["Body"] == body
    assert msg["MessageId"] == sent["MessageId"]
    assert msg["MD5OfBody"] == md5_hex(body)
    assert msg["ReceiptHandle"]
    assert "MessageAttributes" not in msg
    assert counts(sqs, url) == (0, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    assert counts(sqs, url) == (0, 0, 0)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []


def test_message_ids_are_unique(sqs, queue):
    _, url = queue
    ids = {sqs.send_message(QueueUrl=url, MessageBody="same")["MessageId"] for _ in range(5)}
    assert len(ids) == 5
    assert counts(sqs, url)[0] == 5


def test_message_attributes_and_md5(sqs, queue):
    _, url = queue
    sent = sqs.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes=ATTRS)
    assert sent["MD5OfMessageBody"] == md5_hex("with attributes")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)

    msg = receive_until(sqs, url, 1, MessageAttributeNames=["All"], VisibilityTimeout=0)[0]
    assert msg["MessageAttributes"] == ATTRS
    assert msg["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)

    msg = receive_until(sqs, url, 1, MessageAttributeNames=["color", "blob", "absent"],
                        VisibilityTimeout=0)[0]
    subset = {k: ATTRS[k] for k in ("color", "blob")}
    assert msg["MessageAttributes"] == subset
    assert msg["MD5OfMessageAttributes"] == md5_of_attributes(subset)

    msg = receive_until(sqs, url, 1, VisibilityTimeout=0)[0]
    assert "MessageAttributes" not in msg


def test_message_attribute_name_prefix_wildcard(sqs, queue):
    _, url = queue
    attrs = {
        "order.id": {"DataType": "String", "StringValue": "1"},
        "order.total": {"DataType": "Number", "StringValue": "9.5"},
        "other": {"DataType": "String", "StringValue": "x"},
    }
    sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)
    msg = receive_until(sqs, url, 1, MessageAttributeNames=["order.*"])[0]
    assert msg["MessageAttributes"] == {k: attrs[k] for k in ("order.id", "order.total")}


def test_too_many_message_attributes(sqs, queue):
    _, url = queue
    attrs = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)
    attrs.pop("a10")
    sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)


def test_system_attributes(sqs, queue):
    _, url = queue
    t0 = time.time()
    sent = sqs.send_message(QueueUrl=url, MessageBody="sys")
    msg = receive_until(sqs, url, 1, MessageSystemAttributeNames=["All"], VisibilityTimeout=0)[0]
    a = msg["Attributes"]
    assert msg["MessageId"] == sent["MessageId"]
    for key in ("SentTimestamp", "ApproximateFirstReceiveTimestamp"):
        assert a[key].isdigit(), (key, a[key])  # epoch milliseconds
        assert abs(int(a[key]) / 1000 - t0) < 60, (key, a[key])
    assert int(a["ApproximateFirstReceiveTimestamp"]) >= int(a["SentTimestamp"])
    assert a["ApproximateReceiveCount"] == "1"
    assert a["SenderId"]
    assert "MessageGroupId" not in a and "SequenceNumber" not in a

    # The deprecated AttributeNames parameter works as well; the count goes up,
    # the first receive time does not move.
    again = receive_until(sqs, url, 1, AttributeNames=["All"], VisibilityTimeout=0)[0]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["Attributes"]["ApproximateFirstReceiveTimestamp"] == a["ApproximateFirstReceiveTimestamp"]
    assert again["Attributes"]["SentTimestamp"] == a["SentTimestamp"]

    only = receive_until(sqs, url, 1, MessageSystemAttributeNames=["ApproximateReceiveCount"])[0]
    assert only["Attributes"] == {"ApproximateReceiveCount": "3"}

    assert counts(sqs, url) == (0, 1, 0)


def test_receive_without_attribute_names_has_no_attributes(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="x")
    msg = receive_until(sqs, url, 1)[0]
    assert msg.get("Attributes", {}) == {}


def test_receive_max_number_of_messages(sqs, queue):
    _, url = queue
    for i in range(15):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i:02d}")
    one = receive(sqs, url)  # default MaxNumberOfMessages is 1
    assert len(one) == 1
    batch = receive(sqs, url, MaxNumberOfMessages=10)
    assert 1 <= len(batch) <= 10
    rest = receive_until(sqs, url, 15 - 1 - len(batch))
    bodies = [m["Body"] for m in one + batch + rest]
    assert sorted(bodies) == [f"m{i:02d}" for i in range(15)]
    assert counts(sqs, url) == (0, 15, 0)


@pytest.mark.parametrize("kwargs", [
    {"MaxNumberOfMessages": 0},
    {"MaxNumberOfMessages": 11},
    {"WaitTimeSeconds": 21},
    {"WaitTimeSeconds": -1},
    {"VisibilityTimeout": 43201},
    {"VisibilityTimeout": -1},
])
def test_receive_invalid_parameters(sqs, queue, kwargs):
    _, url = queue
    with expect_error("InvalidParameterValue", 400):
        sqs.receive_message(QueueUrl=url, **kwargs)


def test_received_message_is_invisible(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="once")
    assert len(receive_until(sqs, url, 1, VisibilityTimeout=30)) == 1
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    assert counts(sqs, url) == (0, 1, 0)


def test_visibility_timeout_expiry(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name())["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="comes back")
    first = receive(sqs, url, VisibilityTimeout=30, MessageSystemAttributeNames=["All"])
    assert [m["MessageId"] for m in first] == [sent["MessageId"]]
    time_machine.advance(clock_server, 20)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    assert counts(sqs, url) == (0, 1, 0)
    time_machine.advance(clock_server, 11)
    assert counts(sqs, url) == (1, 0, 0)
    second = receive(sqs, url, MessageSystemAttributeNames=["All"])
    assert [m["MessageId"] for m in second] == [sent["MessageId"]]
    assert second[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second[0]["Attributes"]["ApproximateFirstReceiveTimestamp"] == \
        first[0]["Attributes"]["ApproximateFirstReceiveTimestamp"]
    assert second[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second[0]["ReceiptHandle"])
    assert counts(sqs, url) == (0, 0, 0)


def test_queue_visibility_timeout_is_the_default(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name(), Attributes={"VisibilityTimeout": "100"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert len(receive(sqs, url)) == 1
    time_machine.advance(clock_server, 90)
    assert receive(sqs, url) == []
    time_machine.advance(clock_server, 11)
    assert len(receive(sqs, url)) == 1


def test_change_message_visibility(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name())["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    msg = receive(sqs, url, VisibilityTimeout=10)[0]
    # Extend: 100 s from now, not from the receive.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=100)
    time_machine.advance(clock_server, 50)
    assert receive(sqs, url) == []
    time_machine.advance(clock_server, 51)
    again = receive(sqs, url, VisibilityTimeout=300)
    assert len(again) == 1
    # 0 makes it visible at once.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"], VisibilityTimeout=0)
    assert len(receive(sqs, url)) == 1


def test_change_visibility_to_zero_makes_message_visible(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="m")
    msg = receive_until(sqs, url, 1, VisibilityTimeout=600)[0]
    assert receive(sqs, url) == []
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    back = receive_until(sqs, url, 1, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert [m["MessageId"] for m in back] == [msg["MessageId"]]
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_invalid_value(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="m")
    msg = receive_until(sqs, url, 1)[0]
    with expect_error("InvalidParameterValue", 400):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"],
                                      VisibilityTimeout=43201)


def test_invalid_receipt_handle(sqs, queue):
    _, url = queue
    with expect_error(*INVALID_HANDLE):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    with expect_error(*INVALID_HANDLE):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="garbage", VisibilityTimeout=0)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="also-garbage")


def test_send_message_batch(sqs, queue):
    _, url = queue
    entries = [{"Id": f"e{i}", "MessageBody": f"body {i}"} for i in range(9)]
    entries.append({"Id": "with-attrs_1", "MessageBody": "attrs", "MessageAttributes": ATTRS})
    resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert resp.get("Failed", []) == []
    ok = {e["Id"]: e for e in resp["Successful"]}
    assert set(ok) == {e["Id"] for e in entries}
    for e in entries:
        assert ok[e["Id"]]["MD5OfMessageBody"] == md5_hex(e["MessageBody"])
        assert ok[e["Id"]]["MessageId"]
    assert ok["with-attrs_1"]["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)
    assert len({e["MessageId"] for e in ok.values()}) == 10

    msgs = receive_until(sqs, url, 10, MessageAttributeNames=["All"])
    by_id = {m["MessageId"]: m for m in msgs}
    assert len(by_id) == 10
    for e in entries:
        m = by_id[ok[e["Id"]]["MessageId"]]
        assert m["Body"] == e["MessageBody"]
        if "MessageAttributes" in e:
            assert m["MessageAttributes"] == ATTRS


def test_send_message_batch_errors(sqs, queue):
    _, url = queue
    with expect_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
    with expect_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"},
                                                      {"Id": "a", "MessageBody": "y"}])
    with expect_error("AWS.SimpleQueueService.EmptyBatchRequest", 400):
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    with expect_error("AWS.SimpleQueueService.InvalidBatchEntryId", 400):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "bad:id", "MessageBody": "x"}])
    # Nothing was enqueued by the rejected requests.
    assert counts(sqs, url) == (0, 0, 0)


def test_send_message_batch_partial_failure(sqs, queue):
    _, url = queue
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "good", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "dedup id on a standard queue", "MessageDeduplicationId": "d1"},
        {"Id": "good2", "MessageBody": "fine too"},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["good", "good2"]
    assert len(resp["Failed"]) == 1
    failed = resp["Failed"][0]
    assert failed["Id"] == "bad"
    assert failed["Code"] == "InvalidParameterValue"
    assert failed["SenderFault"] is True
    assert sorted(m["Body"] for m in receive_until(sqs, url, 2)) == ["fine", "fine too"]


def test_delete_message_batch(sqs, queue):
    _, url = queue
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
    msgs = receive_until(sqs, url, 3)
    assert len(msgs) == 3
    entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
    entries.append({"Id": "bogus", "ReceiptHandle": "garbage"})
    resp = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(e["Id"] for e in resp["Successful"]) == ["d0", "d1", "d2"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]] == \
        [("bogus", "ReceiptHandleIsInvalid", True)]
    assert counts(sqs, url) == (0, 0, 0)


def test_delete_and_change_visibility_batch_errors(sqs, queue):
    _, url = queue
    for op, extra in ((sqs.delete_message_batch, {}),
                      (sqs.change_message_visibility_batch, {"VisibilityTimeout": 0})):
        with expect_error("AWS.SimpleQueueService.EmptyBatchRequest", 400):
            op(QueueUrl=url, Entries=[])
        with expect_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400):
            op(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": "h", **extra} for i in range(11)])
        with expect_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400):
            op(QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": "h", **extra},
                                      {"Id": "x", "ReceiptHandle": "h2", **extra}])


def test_change_message_visibility_batch(sqs, queue):
    _, url = queue
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a"},
                                                  {"Id": "b", "MessageBody": "b"}])
    msgs = {m["Body"]: m for m in receive_until(sqs, url, 2, VisibilityTimeout=600)}
    assert sorted(msgs) == ["a", "b"]
    resp = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "ea", "ReceiptHandle": msgs["a"]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "eb", "ReceiptHandle": msgs["b"]["ReceiptHandle"], "VisibilityTimeout": 900},
        {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["ea", "eb"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]] == \
        [("bad", "ReceiptHandleIsInvalid", True)]
    back = receive_until(sqs, url, 1, MaxNumberOfMessages=10)
    assert [m["Body"] for m in back] == ["a"]
    assert receive(sqs, url, MaxNumberOfMessages=10) == []


def test_message_size_limit_of_queue(sqs, make_queue):
    _, url = make_queue(attributes={"MaximumMessageSize": "262144"})
    sqs.send_message(QueueUrl=url, MessageBody="x" * 262144)
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="x" * 262145)
    # Multi-byte characters count as their UTF-8 bytes.
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="\u00e9" * 131073)
    msgs = receive_until(sqs, url, 1)
    assert [len(m["Body"]) for m in msgs] == [262144]
    assert counts(sqs, url) == (0, 1, 0)


def test_message_attributes_count_toward_size(sqs, make_queue):
    _, url = make_queue(attributes={"MaximumMessageSize": "1024"})
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1000,
                         MessageAttributes={"attribute": {"DataType": "String", "StringValue": "y" * 100}})


def test_default_message_size_limit_is_1_mib(sqs, queue):
    """Since 2025 SQS accepts up to 1 MiB (1,048,576 bytes) by default."""
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="x" * 262145)
    sqs.send_message(QueueUrl=url, MessageBody="y" * 1048576)
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="z" * 1048577)
    assert counts(sqs, url)[0] == 2


def test_delay_seconds_per_message(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name())["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody="now")
    assert counts(sqs, url) == (1, 0, 1)
    now = receive(sqs, url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in now] == ["now"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=now[0]["ReceiptHandle"])
    time_machine.advance(clock_server, 30)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    time_machine.advance(clock_server, 31)
    assert counts(sqs, url) == (1, 0, 0)
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=10)] == ["later"]


def test_delay_queue(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name(), Attributes={"DelaySeconds": "120"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="delayed by queue")
    sqs.send_message(QueueUrl=url, MessageBody="not delayed", DelaySeconds=0)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "b", "MessageBody": "batch delayed"}])
    assert counts(sqs, url) == (1, 0, 2)
    first = receive(sqs, url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in first] == ["not delayed"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    time_machine.advance(clock_server, 121)
    got = receive_until(sqs, url, 2)
    assert sorted(m["Body"] for m in got) == ["batch delayed", "delayed by queue"]


def test_invalid_delay_seconds(sqs, queue):
    _, url = queue
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)


def test_retention_expiry(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name(), Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    time_machine.advance(clock_server, 40)
    sqs.send_message(QueueUrl=url, MessageBody="young")
    time_machine.advance(clock_server, 25)  # "old" is 65 s old, "young" 25 s
    assert counts(sqs, url) == (1, 0, 0)
    assert [m["Body"] for m in receive_until(sqs, url, 1, VisibilityTimeout=0)] == ["young"]
    time_machine.advance(clock_server, 40)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    assert counts(sqs, url) == (0, 0, 0)


def test_long_poll_returns_when_a_message_arrives(sqs, queue, endpoint):
    _, url = queue
    sender = make_client(endpoint, "sqs")

    def send_later():
        time.sleep(1.0)
        sender.send_message(QueueUrl=url, MessageBody="arrived")

    t = threading.Thread(target=send_later)
    start = time.monotonic()
    t.start()
    try:
        msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
    finally:
        t.join()
    elapsed = time.monotonic() - start
    assert [m["Body"] for m in msgs] == ["arrived"]
    assert 0.8 <= elapsed < 5, elapsed


def test_concurrent_long_polls_one_message_one_receiver(endpoint, queue):
    _, url = queue
    results, lock = [], threading.Lock()

    def poll():
        client = make_client(endpoint, "sqs")
        start = time.monotonic()
        msgs = client.receive_message(QueueUrl=url, WaitTimeSeconds=3, VisibilityTimeout=60).get("Messages", [])
        with lock:
            results.append((len(msgs), time.monotonic() - start))

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    make_client(endpoint, "sqs").send_message(QueueUrl=url, MessageBody="only one")
    for t in threads:
        t.join()
    got = sorted(results, reverse=True)
    assert [n for n, _ in got] == [1, 0, 0], results
    assert got[0][1] < 2.5, results  # the winner returned as soon as the message arrived
    assert all(elapsed >= 2.5 for _, elapsed in got[1:]), results


def test_long_poll_is_not_woken_by_other_queues(sqs, make_queue):
    _, url = make_queue()
    _, other = make_queue()

    def send_elsewhere():
        time.sleep(0.3)
        sqs.send_message(QueueUrl=other, MessageBody="elsewhere")

    t = threading.Thread(target=send_elsewhere)
    start = time.monotonic()
    t.start()
    assert receive(sqs, url, WaitTimeSeconds=1) == []
    t.join()
    assert time.monotonic() - start >= 0.9


def test_long_poll_times_out_empty(sqs, queue):
    _, url = queue
    start = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=1) == []
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 4, elapsed


def test_long_poll_returns_at_once_when_messages_are_waiting(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="ready")
    start = time.monotonic()
    assert [m["Body"] for m in receive(sqs, url, WaitTimeSeconds=10)] == ["ready"]
    assert time.monotonic() - start < 2


def test_queue_receive_wait_time_is_the_default(sqs, make_queue):
    _, url = make_queue(attributes={"ReceiveMessageWaitTimeSeconds": "1"})
    start = time.monotonic()
    assert receive(sqs, url) == []
    assert time.monotonic() - start >= 0.9
    start = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=0) == []
    assert time.monotonic() - start < 0.8


def test_approximate_counts(sqs, queue):
    _, url = queue
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    assert counts(sqs, url) == (3, 0, 1)
    msgs = receive_until(sqs, url, 2, MaxNumberOfMessages=2)
    assert len(msgs) == 2
    assert counts(sqs, url) == (1, 2, 1)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"])
    assert counts(sqs, url) == (1, 1, 1)


def test_empty_string_attribute_rejected(sqs, queue):
    _, url = queue
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="b",
                         MessageAttributes={"empty": {"DataType": "String", "StringValue": ""}})
    assert counts(sqs, url) == (0, 0, 0)


def test_batch_request_too_long(sqs, queue):
    _, url = queue
    # 2 x 600,000 bytes is over the batch limit whether that is 256 KiB or 1 MiB.
    with expect_error("AWS.SimpleQueueService.BatchRequestTooLong", 400):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "a" * 600_000}, {"Id": "b", "MessageBody": "b" * 600_000}])
    assert counts(sqs, url) == (0, 0, 0)


def test_long_poll_sees_a_delayed_message_become_visible(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="delayed 1 s", DelaySeconds=1)
    start = time.monotonic()
    msgs = receive(sqs, url, WaitTimeSeconds=5)
    elapsed = time.monotonic() - start
    assert [m["Body"] for m in msgs] == ["delayed 1 s"]
    assert 0.5 <= elapsed < 3.5, elapsed


def test_long_poll_sees_visibility_timeout_expire(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="back soon")
    assert len(receive_until(sqs, url, 1, VisibilityTimeout=1)) == 1
    start = time.monotonic()
    msgs = receive(sqs, url, WaitTimeSeconds=5, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    elapsed = time.monotonic() - start
    assert [m["Body"] for m in msgs] == ["back soon"]
    assert msgs[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert elapsed < 3.5, elapsed


def test_specific_system_attribute_names(sqs, queue):
    _, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="x")
    msg = receive_until(sqs, url, 1, MessageSystemAttributeNames=["SentTimestamp", "SenderId"])[0]
    assert sorted(msg["Attributes"]) == ["SenderId", "SentTimestamp"]


def test_changed_queue_visibility_timeout_applies_to_later_receives(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name())["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "200"})
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert len(receive(sqs, url)) == 1
    time_machine.advance(clock_server, 100)
    assert receive(sqs, url) == []
    time_machine.advance(clock_server, 101)
    assert len(receive(sqs, url)) == 1


def test_retention_applies_to_messages_in_flight(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name(), Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    assert len(receive(sqs, url, VisibilityTimeout=300)) == 1
    time_machine.advance(clock_server, 400)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    assert counts(sqs, url) == (0, 0, 0)
