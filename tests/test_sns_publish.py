"""SNS Publish and PublishBatch delivered to SQS: the JSON envelope, raw message
delivery, message attributes, MessageStructure=json, fan-out, FIFO topics
(ordering, deduplication) and the publish validation errors."""
import json
import time

import pytest

from test_sns_util import (  # noqa: F401  (fixtures)
    INVALID, NOT_FOUND, UUID_RE, assert_all_stay_empty, assert_stays_empty, check_envelope, drain, envelope_attributes,
    make_queue, make_topic, md5_of_attributes, queue, receive_envelopes, sns, sqs, subscribe, topic,
    topic_arn, topic_name,
)
from virga_testlib import expect_error

ATTRS = {
    "color": {"DataType": "String", "StringValue": "blue"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff binary"},
    "note": {"DataType": "String", "StringValue": "h\u00e9llo \u2713"},
}


# ---------------------------------------------------------------------------
# Envelope delivery
# ---------------------------------------------------------------------------
def test_publish_delivers_envelope_quickly(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    sub = subscribe(topic, qarn)
    body = "hello \u00e9\u2713 <xml/> {\"json\": 1}"
    started = time.monotonic()
    resp = sns.publish(TopicArn=topic, Message=body)
    assert UUID_RE.match(resp["MessageId"])
    assert "SequenceNumber" not in resp
    msgs = drain(sqs, url, 1, timeout=5)
    elapsed = time.monotonic() - started
    assert len(msgs) == 1
    assert elapsed < 2.0, f"delivery took {elapsed:.2f}s"
    check_envelope(json.loads(msgs[0]["Body"]), topic=topic, message=body, message_id=resp["MessageId"],
                   subscription=sub)
    assert_stays_empty(sqs, url, wait=0)


def test_envelope_with_subject_and_attributes(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    sub = subscribe(topic, qarn)
    resp = sns.publish(TopicArn=topic, Message="with extras", Subject="Order shipped",
                       MessageAttributes=ATTRS)
    msgs = drain(sqs, url, 1, MessageAttributeNames=["All"])
    assert len(msgs) == 1
    env = json.loads(msgs[0]["Body"])
    check_envelope(env, topic=topic, message="with extras", message_id=resp["MessageId"],
                   subscription=sub, subject="Order shipped", attributes=envelope_attributes(ATTRS))
    assert env["MessageAttributes"]["blob"] == {"Type": "Binary", "Value": "AAH+/yBiaW5hcnk="}
    # Without raw delivery the attributes live only in the envelope.
    assert "MessageAttributes" not in msgs[0]


def test_envelope_message_is_a_string_even_for_json(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn)
    payload = json.dumps({"order": 7, "items": ["a", "b"]})
    sns.publish(TopicArn=topic, Message=payload)
    env = receive_envelopes(sqs, url, 1)[0]
    assert env["Message"] == payload


# ---------------------------------------------------------------------------
# Raw message delivery
# ---------------------------------------------------------------------------
def test_raw_message_delivery(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn, RawMessageDelivery="true")
    sns.publish(TopicArn=topic, Message="raw body \u2713", Subject="ignored in raw mode",
                MessageAttributes=ATTRS)
    msgs = drain(sqs, url, 1, MessageAttributeNames=["All"])
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg["Body"] == "raw body \u2713"
    assert msg["MessageAttributes"] == ATTRS
    assert msg["MD5OfMessageAttributes"] == md5_of_attributes(ATTRS)


def test_raw_delivery_without_attributes(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn, RawMessageDelivery="true")
    sns.publish(TopicArn=topic, Message="{\"plain\": true}")
    msgs = drain(sqs, url, 1, MessageAttributeNames=["All"])
    assert [m["Body"] for m in msgs] == ["{\"plain\": true}"]
    assert "MessageAttributes" not in msgs[0]


def test_switching_raw_delivery_on_and_off(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    sub = subscribe(topic, qarn)
    sns.publish(TopicArn=topic, Message="one")
    assert json.loads(drain(sqs, url, 1)[0]["Body"])["Message"] == "one"
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    sns.publish(TopicArn=topic, Message="two")
    assert [m["Body"] for m in drain(sqs, url, 1)] == ["two"]
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery",
                                    AttributeValue="false")
    sns.publish(TopicArn=topic, Message="three")
    assert json.loads(drain(sqs, url, 1)[0]["Body"])["Message"] == "three"


# ---------------------------------------------------------------------------
# MessageStructure=json
# ---------------------------------------------------------------------------
def test_message_structure_json_uses_sqs_key(sns, sqs, topic, make_queue, subscribe):
    env_url, env_arn = make_queue()
    raw_url, raw_arn = make_queue()
    subscribe(topic, env_arn)
    subscribe(topic, raw_arn, RawMessageDelivery="true")
    message = json.dumps({"default": "for everyone", "sqs": "for queues", "email": "for mail"})
    sns.publish(TopicArn=topic, Message=message, MessageStructure="json")
    assert receive_envelopes(sqs, env_url, 1)[0]["Message"] == "for queues"
    assert [m["Body"] for m in drain(sqs, raw_url, 1)] == ["for queues"]


def test_message_structure_json_falls_back_to_default(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn)
    sns.publish(TopicArn=topic, Message=json.dumps({"default": "the default", "email": "mail"}),
                MessageStructure="json")
    env = receive_envelopes(sqs, url, 1)[0]
    assert env["Message"] == "the default"


@pytest.mark.parametrize("message", [
    json.dumps({"sqs": "no default here"}),
    "this is not json",
], ids=["no-default-key", "not-json"])
def test_message_structure_json_errors(sns, sqs, topic, queue, subscribe, message):
    url, qarn = queue
    subscribe(topic, qarn)
    with expect_error(*INVALID):
        sns.publish(TopicArn=topic, Message=message, MessageStructure="json")


# ---------------------------------------------------------------------------
# Fan-out
# ---------------------------------------------------------------------------
def test_fan_out_to_three_queues(endpoint, sns, sqs, topic, make_queue, subscribe):
    queues = [make_queue() for _ in range(3)]
    subs = [subscribe(topic, arn) for _, arn in queues]
    resp = sns.publish(TopicArn=topic, Message="to everyone", Subject="Fan-out")
    for (url, _), sub in zip(queues, subs):
        msgs = drain(sqs, url, 1)
        assert len(msgs) == 1, url
        check_envelope(json.loads(msgs[0]["Body"]), topic=topic, message="to everyone",
                       message_id=resp["MessageId"], subscription=sub, subject="Fan-out")
    # Exactly one copy each.
    assert_all_stay_empty(endpoint, [url for url, _ in queues])


def test_publish_without_subscribers(sns, topic):
    resp = sns.publish(TopicArn=topic, Message="into the void")
    assert UUID_RE.match(resp["MessageId"])


def test_many_publishes_all_arrive(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn, RawMessageDelivery="true")
    sent = [f"m{i:02d}" for i in range(30)]
    ids = {sns.publish(TopicArn=topic, Message=body)["MessageId"] for body in sent}
    assert len(ids) == 30
    got = [m["Body"] for m in drain(sqs, url, 30, timeout=10)]
    assert sorted(got) == sent


# ---------------------------------------------------------------------------
# Publish errors
# ---------------------------------------------------------------------------
def test_publish_to_missing_topic(sns):
    with expect_error(*NOT_FOUND) as info:
        sns.publish(TopicArn=topic_arn(topic_name()), Message="hello")
    assert info.value.response["Error"]["Message"] == "Topic does not exist"


def test_publish_empty_message(sns, topic):
    with expect_error(*INVALID):
        sns.publish(TopicArn=topic, Message="")


def test_publish_message_size_limit(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn, RawMessageDelivery="true")
    biggest = "x" * 262144
    sns.publish(TopicArn=topic, Message=biggest)
    assert [len(m["Body"]) for m in drain(sqs, url, 1)] == [262144]
    with expect_error(*INVALID):
        sns.publish(TopicArn=topic, Message="x" * 262145)
    assert_stays_empty(sqs, url, wait=0)


# The API reference says "less than 100 characters", but AWS accepts exactly 100
# and rejects 101 (getmoto/moto#1503, verified against AWS).
@pytest.mark.parametrize("subject", ["line\nbreak", "s" * 101, ""], ids=["newline", "101-chars", "empty"])
def test_publish_invalid_subject(sns, topic, subject):
    with expect_error(*INVALID):
        sns.publish(TopicArn=topic, Message="hello", Subject=subject)


def test_publish_longest_subject(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn)
    sns.publish(TopicArn=topic, Message="hello", Subject="s" * 100)
    assert receive_envelopes(sqs, url, 1)[0]["Subject"] == "s" * 100



# ---------------------------------------------------------------------------
# PublishBatch
# ---------------------------------------------------------------------------
def test_publish_batch(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    sub = subscribe(topic, qarn)
    entries = [{"Id": f"e{i}", "Message": f"batch message {i}", "Subject": f"subject {i}",
                "MessageAttributes": {"index": {"DataType": "Number", "StringValue": str(i)}}}
               for i in range(10)]
    resp = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
    assert resp.get("Failed", []) == []
    successful = {e["Id"]: e["MessageId"] for e in resp["Successful"]}
    assert set(successful) == {f"e{i}" for i in range(10)}
    assert len(set(successful.values())) == 10
    assert all(UUID_RE.match(mid) for mid in successful.values())
    envs = receive_envelopes(sqs, url, 10)
    assert len(envs) == 10
    by_message = {e["Message"]: e for e in envs}
    for i in range(10):
        env = by_message[f"batch message {i}"]
        check_envelope(env, topic=topic, message=f"batch message {i}", message_id=successful[f"e{i}"],
                       subscription=sub, subject=f"subject {i}",
                       attributes={"index": {"Type": "Number", "Value": str(i)}})


def test_publish_batch_errors(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn)
    eleven = [{"Id": f"e{i}", "Message": "m"} for i in range(11)]
    with expect_error("TooManyEntriesInBatchRequest", 400):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=eleven)
    with expect_error("BatchEntryIdsNotDistinct", 400):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
            {"Id": "same", "Message": "a"}, {"Id": "same", "Message": "b"}])
    with expect_error("EmptyBatchRequest", 400):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[])
    with expect_error(*NOT_FOUND):
        sns.publish_batch(TopicArn=topic_arn(topic_name()),
                          PublishBatchRequestEntries=[{"Id": "a", "Message": "m"}])
    # None of the rejected batches delivered anything.
    assert_stays_empty(sqs, url)


def test_publish_batch_raw_delivery_and_structure(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    subscribe(topic, qarn, RawMessageDelivery="true")
    resp = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "plain", "Message": "plain body",
         "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "structured", "Message": json.dumps({"default": "d", "sqs": "for sqs"}),
         "MessageStructure": "json"},
    ])
    assert len(resp["Successful"]) == 2
    msgs = drain(sqs, url, 2, MessageAttributeNames=["All"])
    by_body = {m["Body"]: m for m in msgs}
    assert set(by_body) == {"plain body", "for sqs"}
    assert by_body["plain body"]["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}


# ---------------------------------------------------------------------------
# FIFO topics
# ---------------------------------------------------------------------------
def test_fifo_topic_to_fifo_queue_keeps_order(sns, sqs, make_topic, make_queue, subscribe):
    t = make_topic(fifo=True)
    url, qarn = make_queue(fifo=True)
    subscribe(t, qarn)
    bodies = [f"step-{i:02d}" for i in range(10)]
    seqs = []
    for i, body in enumerate(bodies):
        resp = sns.publish(TopicArn=t, Message=body, MessageGroupId="order-1", MessageDeduplicationId=f"d{i}")
        assert UUID_RE.match(resp["MessageId"])
        assert resp["SequenceNumber"].isdigit()
        seqs.append(int(resp["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    msgs = drain(sqs, url, 10, AttributeNames=["All"])
    assert [json.loads(m["Body"])["Message"] for m in msgs] == bodies
    assert {m["Attributes"]["MessageGroupId"] for m in msgs} == {"order-1"}


def test_fifo_raw_delivery_per_group_order(sns, sqs, make_topic, make_queue, subscribe):
    t = make_topic(fifo=True)
    url, qarn = make_queue(fifo=True)
    subscribe(t, qarn, RawMessageDelivery="true")
    sent = []
    for i in range(9):
        group = "abc"[i % 3]
        sns.publish(TopicArn=t, Message=f"{group}{i}", MessageGroupId=group, MessageDeduplicationId=f"d{i}")
        sent.append((group, f"{group}{i}"))
    msgs = drain(sqs, url, 9, AttributeNames=["All"])
    got = [m["Body"] for m in msgs]
    assert sorted(got) == sorted(b for _, b in sent)
    for group in "abc":
        assert [b for b in got if b[0] == group] == [b for g, b in sent if g == group]
    for m in msgs:
        assert m["Attributes"]["MessageGroupId"] == m["Body"][0]


def test_fifo_deduplication_id(sns, sqs, make_topic, make_queue, subscribe):
    t = make_topic(fifo=True)
    url, qarn = make_queue(fifo=True)
    subscribe(t, qarn, RawMessageDelivery="true")
    sns.publish(TopicArn=t, Message="first", MessageGroupId="g", MessageDeduplicationId="same")
    sns.publish(TopicArn=t, Message="second", MessageGroupId="g", MessageDeduplicationId="same")
    sns.publish(TopicArn=t, Message="third", MessageGroupId="g", MessageDeduplicationId="other")
    assert [m["Body"] for m in drain(sqs, url, 2)] == ["first", "third"]
    assert_stays_empty(sqs, url)


def test_fifo_content_based_deduplication(sns, sqs, make_topic, make_queue, subscribe):
    t = make_topic(fifo=True, attributes={"ContentBasedDeduplication": "true"})
    url, qarn = make_queue(fifo=True)
    subscribe(t, qarn, RawMessageDelivery="true")
    sns.publish(TopicArn=t, Message="same body", MessageGroupId="g")
    sns.publish(TopicArn=t, Message="same body", MessageGroupId="g")
    sns.publish(TopicArn=t, Message="other body", MessageGroupId="g")
    assert [m["Body"] for m in drain(sqs, url, 2)] == ["same body", "other body"]
    assert_stays_empty(sqs, url)


def test_fifo_publish_requirements(sns, make_topic):
    t = make_topic(fifo=True)
    with expect_error(*INVALID):
        sns.publish(TopicArn=t, Message="no group", MessageDeduplicationId="d1")
    with expect_error(*INVALID):
        sns.publish(TopicArn=t, Message="no dedup id", MessageGroupId="g")


def test_fifo_publish_batch(sns, sqs, make_topic, make_queue, subscribe):
    t = make_topic(fifo=True)
    url, qarn = make_queue(fifo=True)
    subscribe(t, qarn, RawMessageDelivery="true")
    entries = [{"Id": f"e{i}", "Message": f"b{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"d{i}"}
               for i in range(10)]
    resp = sns.publish_batch(TopicArn=t, PublishBatchRequestEntries=entries)
    assert resp.get("Failed", []) == []
    assert [e["Id"] for e in sorted(resp["Successful"], key=lambda e: int(e["SequenceNumber"]))] == \
        [f"e{i}" for i in range(10)]
    assert [m["Body"] for m in drain(sqs, url, 10)] == [f"b{i}" for i in range(10)]
