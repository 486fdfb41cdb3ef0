"""SQS FIFO queues (ordering, message groups, deduplication, sequence numbers,
FIFO-only parameters) and dead-letter queues (RedrivePolicy)."""
import hashlib
import json

from test_sqs_util import (  # noqa: F401  (fixtures)
    counts, make_queue, queue, queue_arn, queue_name, receive, receive_until, sqs,
)
from virga_testlib import expect_error


def send_fifo(sqs, url, body, group="g", dedup=None, **kwargs):
    kwargs = dict(kwargs)
    if dedup is not None:
        kwargs["MessageDeduplicationId"] = dedup
    return sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, **kwargs)


def drain_in_order(sqs, url, expected, **kwargs):
    """Receives (deleting as it goes) until `expected` messages arrived; returns bodies in
    delivery order."""
    bodies = []
    for _ in range(50):
        if len(bodies) >= expected:
            break
        msgs = receive(sqs, url, MaxNumberOfMessages=10, **kwargs)
        bodies += [m["Body"] for m in msgs]
        if msgs:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    return bodies


def test_fifo_order_within_group(sqs, make_queue):
    _, url = make_queue(fifo=True)
    bodies = [f"msg-{i:02d}" for i in range(12)]
    for i, body in enumerate(bodies):
        send_fifo(sqs, url, body, dedup=f"d{i}")
    assert drain_in_order(sqs, url, 12) == bodies
    assert counts(sqs, url) == (0, 0, 0)


def test_fifo_order_per_group_with_interleaved_groups(sqs, make_queue):
    _, url = make_queue(fifo=True)
    sent = []
    for i in range(9):
        group = "abc"[i % 3]
        send_fifo(sqs, url, f"{group}{i}", group=group, dedup=f"d{i}")
        sent.append((group, f"{group}{i}"))
    got = drain_in_order(sqs, url, 9)
    assert sorted(got) == sorted(b for _, b in sent)
    for group in "abc":
        assert [b for b in got if b[0] == group] == [b for g, b in sent if g == group]


def test_fifo_batch_keeps_order(sqs, make_queue):
    _, url = make_queue(fifo=True)
    entries = [{"Id": f"e{i}", "MessageBody": f"b{i}", "MessageGroupId": "g",
                "MessageDeduplicationId": f"d{i}"} for i in range(10)]
    resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert resp.get("Failed", []) == []
    seqs = {e["Id"]: int(e["SequenceNumber"]) for e in resp["Successful"]}
    assert [seqs[f"e{i}"] for i in range(10)] == sorted(seqs.values())
    assert drain_in_order(sqs, url, 10) == [f"b{i}" for i in range(10)]


def test_message_group_in_flight_blocks_only_its_group(sqs, make_queue):
    _, url = make_queue(fifo=True)
    send_fifo(sqs, url, "A1", group="A", dedup="1")
    send_fifo(sqs, url, "A2", group="A", dedup="2")
    send_fifo(sqs, url, "B1", group="B", dedup="3")

    a1 = receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    assert [m["Body"] for m in a1] == ["A1"]
    b1 = receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    assert [m["Body"] for m in b1] == ["B1"]
    # Both groups have a message in flight: nothing is receivable.
    assert receive(sqs, url, MaxNumberOfMessages=10) == []

    # A1 becomes visible again: it comes back before A2.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=a1[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=300,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert [m["Body"] for m in again] == ["A1"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert receive(sqs, url, MaxNumberOfMessages=10) == []

    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=10)] == ["A2"]


def test_deduplication_by_id(sqs, make_queue):
    _, url = make_queue(fifo=True)
    first = send_fifo(sqs, url, "payload", dedup="same-id")
    dup = send_fifo(sqs, url, "different body, same id", dedup="same-id")
    assert dup["MessageId"] == first["MessageId"]
    other = send_fifo(sqs, url, "payload", dedup="other-id")
    assert other["MessageId"] != first["MessageId"]
    assert counts(sqs, url) == (2, 0, 0)
    assert drain_in_order(sqs, url, 2) == ["payload", "payload"]
    # Still deduplicated after the message was received and deleted.
    send_fifo(sqs, url, "again", dedup="same-id")
    assert counts(sqs, url) == (0, 0, 0)


def test_deduplication_window_is_five_minutes(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name(fifo=True), Attributes={"FifoQueue": "true"})["QueueUrl"]
    first = send_fifo(sqs, url, "one", dedup="d")
    time_machine.advance(clock_server, 200)
    assert send_fifo(sqs, url, "two", dedup="d")["MessageId"] == first["MessageId"]
    assert drain_in_order(sqs, url, 1) == ["one"]
    time_machine.advance(clock_server, 101)  # 301 s after the first send
    later = send_fifo(sqs, url, "three", dedup="d")
    assert later["MessageId"] != first["MessageId"]
    assert drain_in_order(sqs, url, 1) == ["three"]


def test_content_based_deduplication(sqs, make_queue):
    _, url = make_queue(fifo=True, attributes={"ContentBasedDeduplication": "true"})
    first = send_fifo(sqs, url, "same body")
    dup = send_fifo(sqs, url, "same body", MessageAttributes={
        "x": {"DataType": "String", "StringValue": "attributes do not count"}})
    assert dup["MessageId"] == first["MessageId"]
    send_fifo(sqs, url, "other body")
    # An explicit deduplication id overrides the content hash.
    send_fifo(sqs, url, "same body", dedup="explicit")
    assert counts(sqs, url) == (3, 0, 0)
    msgs = receive_until(sqs, url, 3, MessageSystemAttributeNames=["All"])
    assert [m["Body"] for m in msgs] == ["same body", "other body", "same body"]
    dedup_ids = [m["Attributes"]["MessageDeduplicationId"] for m in msgs]
    assert dedup_ids == [hashlib.sha256(b"same body").hexdigest(),
                         hashlib.sha256(b"other body").hexdigest(), "explicit"]


def test_fifo_requires_message_group_id(sqs, make_queue):
    _, url = make_queue(fifo=True, attributes={"ContentBasedDeduplication": "true"})
    with expect_error("MissingParameter", 400):
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    # In a batch AWS rejects the whole request (with InvalidParameterValue).
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "ok", "MessageBody": "grouped", "MessageGroupId": "g"},
            {"Id": "nogroup", "MessageBody": "no group"},
        ])
    assert counts(sqs, url) == (0, 0, 0)


def test_fifo_requires_deduplication_id_or_content_based(sqs, make_queue):
    _, url = make_queue(fifo=True)
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert counts(sqs, url) == (0, 0, 0)


def test_standard_queue_rejects_deduplication_id(sqs, queue):
    _, url = queue
    with expect_error("InvalidParameterValue", 400):
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert counts(sqs, url) == (0, 0, 0)


def test_fifo_rejects_per_message_delay(sqs, make_queue):
    _, url = make_queue(fifo=True)
    with expect_error("InvalidParameterValue", 400):
        send_fifo(sqs, url, "x", dedup="d", DelaySeconds=5)


def test_fifo_system_attributes_and_sequence_numbers(sqs, make_queue):
    _, url = make_queue(fifo=True)
    sent = [send_fifo(sqs, url, f"m{i}", group="grp-1", dedup=f"dd-{i}") for i in range(5)]
    seqs = [s["SequenceNumber"] for s in sent]
    assert all(s.isdigit() for s in seqs), seqs
    ints = [int(s) for s in seqs]
    assert ints == sorted(ints) and len(set(ints)) == 5
    msgs = receive(sqs, url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    assert msgs, "nothing received"
    for m in msgs:
        i = int(m["Body"][1:])
        a = m["Attributes"]
        assert a["MessageGroupId"] == "grp-1"
        assert a["MessageDeduplicationId"] == f"dd-{i}"
        assert a["SequenceNumber"] == seqs[i]
        assert a["ApproximateReceiveCount"] == "1"
        assert a["SentTimestamp"].isdigit() and a["ApproximateFirstReceiveTimestamp"].isdigit()
        assert a["SenderId"]
        assert m["MessageId"] == sent[i]["MessageId"]
    assert [m["Body"] for m in msgs] == [f"m{i}" for i in range(len(msgs))]


def test_dead_letter_queue(sqs, make_queue):
    dlq_name, dlq_url = make_queue()
    policy = {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": "2"}
    _, url = make_queue(attributes={"RedrivePolicy": json.dumps(policy)})
    attrs = {"k": {"DataType": "String", "StringValue": "v"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="poison", MessageAttributes=attrs)

    for n in (1, 2):
        got = receive_until(sqs, url, 1, VisibilityTimeout=0, MessageSystemAttributeNames=["All"])
        assert [m["Body"] for m in got] == ["poison"]
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == str(n)
    # The third receive exceeds maxReceiveCount: the message moves to the DLQ.
    assert receive(sqs, url, MaxNumberOfMessages=10, VisibilityTimeout=0) == []
    assert counts(sqs, url) == (0, 0, 0)
    assert counts(sqs, dlq_url)[0] == 1
    moved = receive_until(sqs, dlq_url, 1, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
    assert [m["Body"] for m in moved] == ["poison"]
    # A standard queue's message keeps its enqueue time in the DLQ.
    assert moved[0]["Attributes"]["SentTimestamp"] == got[0]["Attributes"]["SentTimestamp"]
    assert moved[0]["MessageId"] == sent["MessageId"]
    assert moved[0]["MessageAttributes"] == attrs
    assert moved[0]["MD5OfBody"] == sent["MD5OfMessageBody"]


def test_dead_letter_queue_after_visibility_timeouts(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    dlq_name = queue_name()
    dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    policy = {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": 1}
    url = sqs.create_queue(QueueName=queue_name(), Attributes={
        "RedrivePolicy": json.dumps(policy), "VisibilityTimeout": "30"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="fails once")
    sqs.send_message(QueueUrl=url, MessageBody="handled")
    got = {m["Body"]: m for m in receive_until(sqs, url, 2)}
    assert sorted(got) == ["fails once", "handled"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["handled"]["ReceiptHandle"])
    time_machine.advance(clock_server, 31)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    assert [m["Body"] for m in receive(sqs, dlq_url, MaxNumberOfMessages=10)] == ["fails once"]
    assert counts(sqs, url) == (0, 0, 0)


def test_fifo_create_again_with_different_content_based_deduplication(sqs, make_queue):
    name, url = make_queue(fifo=True, attributes={"ContentBasedDeduplication": "true"})
    same = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    assert same["QueueUrl"] == url
    with expect_error("QueueAlreadyExists", 400):
        sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})


def test_queue_type_cannot_be_changed(sqs, make_queue, queue):
    _, std_url = queue
    with expect_error("InvalidAttributeName", 400):
        sqs.set_queue_attributes(QueueUrl=std_url, Attributes={"FifoQueue": "true"})
    _, fifo_url = make_queue(fifo=True)
    sqs.set_queue_attributes(QueueUrl=fifo_url, Attributes={"FifoQueue": "true"})  # unchanged: fine
    with expect_error("InvalidAttributeValue", 400):
        sqs.set_queue_attributes(QueueUrl=fifo_url, Attributes={"FifoQueue": "false"})
    # ContentBasedDeduplication can be switched on a FIFO queue.
    sqs.set_queue_attributes(QueueUrl=fifo_url, Attributes={"ContentBasedDeduplication": "true"})
    got = sqs.get_queue_attributes(QueueUrl=fifo_url, AttributeNames=["All"])["Attributes"]
    assert got["ContentBasedDeduplication"] == "true" and got["FifoQueue"] == "true"


def test_fifo_expired_receipt_handle(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name(fifo=True), Attributes={"FifoQueue": "true"})["QueueUrl"]
    send_fifo(sqs, url, "m", dedup="d")
    old = receive(sqs, url, VisibilityTimeout=30)
    assert len(old) == 1
    time_machine.advance(clock_server, 31)
    new = receive(sqs, url, VisibilityTimeout=30)
    assert [m["MessageId"] for m in new] == [old[0]["MessageId"]]
    # On a FIFO queue a receipt handle from an earlier receive has expired.
    with expect_error("InvalidParameterValue", 400):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=old[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=new[0]["ReceiptHandle"])
    assert counts(sqs, url) == (0, 0, 0)


def test_redrive_policy_with_invalid_target_arn(sqs):
    policy = json.dumps({"deadLetterTargetArn": "dummy", "maxReceiveCount": 42})
    with expect_error("InvalidParameterValue", 400):
        sqs.create_queue(QueueName=queue_name(), Attributes={"RedrivePolicy": policy})


def test_fifo_dead_letter_queue(sqs, make_queue):
    dlq_name, dlq_url = make_queue(fifo=True)
    policy = {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": 1}
    _, url = make_queue(fifo=True, attributes={"RedrivePolicy": json.dumps(policy)})
    send_fifo(sqs, url, "first", group="g1", dedup="a")
    send_fifo(sqs, url, "second", group="g1", dedup="b")
    got = receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=0)
    assert [m["Body"] for m in got] == ["first"]
    # "first" has been received maxReceiveCount times: it moves on the next receive,
    # and "second" is next in its group.
    got = receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    assert [m["Body"] for m in got] == ["second"]
    moved = receive(sqs, dlq_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    assert [m["Body"] for m in moved] == ["first"]
    assert moved[0]["Attributes"]["MessageGroupId"] == "g1"
