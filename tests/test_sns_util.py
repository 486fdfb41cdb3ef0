"""Shared helpers and fixtures for the SNS end-to-end tests (no tests here).

The other test_sns_*.py modules import the fixtures they use from this module.
SNS speaks the query protocol (form POST, XML responses); deliveries go to SQS
queues of the same Virga server, read back with the SQS JSON protocol.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Optional

import pytest

from virga_testlib import REGION, make_client, unique_name

ACCOUNT = "000000000000"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NOT_FOUND = ("NotFound", 404)
INVALID = ("InvalidParameter", 400)

# Keys of the JSON envelope SNS wraps around a notification for an SQS
# subscription without raw message delivery (standard topics).
ENVELOPE_KEYS = {"Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion",
                 "Signature", "SigningCertURL", "UnsubscribeURL"}


def topic_name(prefix: str = "t", fifo: bool = False) -> str:
    return unique_name(prefix) + (".fifo" if fifo else "")


def topic_arn(name: str) -> str:
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------
@pytest.fixture
def sns(endpoint):
    """boto3 SNS client (query protocol) on the shared server."""
    return make_client(endpoint, "sns")


@pytest.fixture
def sqs(endpoint):
    """boto3 SQS client (JSON protocol) on the shared server."""
    return make_client(endpoint, "sqs")


@pytest.fixture
def make_topic(sns):
    """Factory: make_topic(fifo=False, attributes=None, tags=None, name=None) -> topic ARN."""
    def _make(fifo: bool = False, attributes: Optional[dict] = None, tags: Optional[dict] = None,
              name: Optional[str] = None):
        name = name or topic_name(fifo=fifo)
        attrs = dict(attributes or {})
        if fifo:
            attrs.setdefault("FifoTopic", "true")
        kwargs = {"Name": name}
        if attrs:
            kwargs["Attributes"] = attrs
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return sns.create_topic(**kwargs)["TopicArn"]
    return _make


@pytest.fixture
def topic(make_topic):
    """A fresh standard topic's ARN."""
    return make_topic()


@pytest.fixture
def make_queue(sqs):
    """Factory: make_queue(fifo=False, attributes=None) -> (queue URL, queue ARN)."""
    def _make(fifo: bool = False, attributes: Optional[dict] = None):
        return create_queue(sqs, fifo=fifo, attributes=attributes)
    return _make


@pytest.fixture
def queue(make_queue):
    """A fresh standard queue: (url, arn)."""
    return make_queue()


@pytest.fixture
def subscribe(sns):
    """Factory: subscribe(topic_arn, queue_arn, **attributes) -> subscription ARN (SQS protocol)."""
    def _subscribe(topic_arn_: str, queue_arn_: str, **attributes):
        kwargs = {"TopicArn": topic_arn_, "Protocol": "sqs", "Endpoint": queue_arn_,
                  "ReturnSubscriptionArn": True}
        if attributes:
            kwargs["Attributes"] = {k: v for k, v in attributes.items()}
        return sns.subscribe(**kwargs)["SubscriptionArn"]
    return _subscribe


def create_queue(sqs, fifo: bool = False, attributes: Optional[dict] = None):
    name = unique_name("q") + (".fifo" if fifo else "")
    attrs = dict(attributes or {})
    if fifo:
        attrs.setdefault("FifoQueue", "true")
    kwargs = {"QueueName": name}
    if attrs:
        kwargs["Attributes"] = attrs
    url = sqs.create_queue(**kwargs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


# ---------------------------------------------------------------------------
# Receiving deliveries
# ---------------------------------------------------------------------------
def drain(sqs, url: str, count: int, timeout: float = 5.0, **kwargs) -> list:
    """Receives (and deletes) SQS messages until `count` arrived or `timeout`
    passed; returns the raw SQS messages in receive order."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, max(1, count - len(got))),
                                   WaitTimeSeconds=1, **kwargs)
        msgs = resp.get("Messages", [])
        got += msgs
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def receive_envelopes(sqs, url: str, count: int, timeout: float = 5.0) -> list:
    """The parsed JSON envelopes of `count` deliveries (see drain)."""
    return [json.loads(m["Body"]) for m in drain(sqs, url, count, timeout)]


def assert_stays_empty(sqs, url: str, wait: int = 1) -> None:
    """A long poll of `wait` seconds finds nothing in the queue."""
    resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    bodies = [m["Body"] for m in resp.get("Messages", [])]
    assert bodies == [], f"expected no delivery, got {bodies}"


def assert_all_stay_empty(endpoint: str, urls, wait: int = 1) -> None:
    """assert_stays_empty for many queues at once (in parallel, so it costs
    `wait` seconds in total)."""
    def check(url):
        client = make_client(endpoint, "sqs")
        resp = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        return url, [m["Body"] for m in resp.get("Messages", [])]

    urls = list(urls)
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        results = list(pool.map(check, urls))
    leftovers = {url: bodies for url, bodies in results if bodies}
    assert leftovers == {}, f"unexpected deliveries: {leftovers}"


def check_envelope(env: Mapping, *, topic: str, message: str, message_id: Optional[str] = None,
                   subscription: Optional[str] = None, subject: Optional[str] = None,
                   attributes: Optional[Mapping] = None) -> None:
    """Asserts the SNS notification envelope of a standard topic."""
    expected_keys = set(ENVELOPE_KEYS)
    if subject is not None:
        expected_keys.add("Subject")
    if attributes:
        expected_keys.add("MessageAttributes")
    assert set(env) == expected_keys, f"envelope keys {sorted(env)}"
    assert env["Type"] == "Notification"
    assert env["TopicArn"] == topic
    assert env["Message"] == message
    assert UUID_RE.match(env["MessageId"]), env["MessageId"]
    if message_id is not None:
        assert env["MessageId"] == message_id
    if subject is not None:
        assert env["Subject"] == subject
    assert TIMESTAMP_RE.match(env["Timestamp"]), env["Timestamp"]
    stamp = _dt.datetime.strptime(env["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
    assert abs((_dt.datetime.now(_dt.timezone.utc) - stamp).total_seconds()) < 60
    assert env["SignatureVersion"] in ("1", "2")
    assert isinstance(env["Signature"], str) and env["Signature"]
    assert isinstance(env["SigningCertURL"], str) and env["SigningCertURL"]
    unsubscribe = env["UnsubscribeURL"]
    assert isinstance(unsubscribe, str) and "Action=Unsubscribe" in unsubscribe
    if subscription is not None:
        assert "SubscriptionArn=" + subscription in unsubscribe, unsubscribe
    if attributes:
        assert env["MessageAttributes"] == attributes


# ---------------------------------------------------------------------------
# Message attributes
# ---------------------------------------------------------------------------
def envelope_attributes(attrs: Mapping[str, Mapping]) -> dict:
    """The envelope form ({"Type", "Value"}) of Publish MessageAttributes."""
    out = {}
    for name, a in attrs.items():
        if "BinaryValue" in a:
            out[name] = {"Type": a["DataType"], "Value": base64.b64encode(a["BinaryValue"]).decode()}
        else:
            out[name] = {"Type": a["DataType"], "Value": a["StringValue"]}
    return out


def md5_of_attributes(attrs: Mapping[str, Mapping]) -> str:
    """SQS MD5OfMessageAttributes (attributes sorted by name; 4-byte big-endian
    lengths; transport byte 1 for string/number, 2 for binary)."""
    def enc(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    buf = b""
    for name in sorted(attrs):
        a = attrs[name]
        buf += enc(name.encode()) + enc(a["DataType"].encode())
        if a.get("StringValue") is not None:
            buf += b"\x01" + enc(a["StringValue"].encode())
        else:
            buf += b"\x02" + enc(a["BinaryValue"])
    return hashlib.md5(buf).hexdigest()


def tags_of(sns, arn: str) -> dict:
    return {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}


def all_pages(call, key: str, **kwargs) -> list:
    """Follows NextToken; returns the list of pages (each the `key` list)."""
    pages = []
    token = None
    for _ in range(10000):
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        resp = call(**args)
        pages.append(resp.get(key, []))
        token = resp.get("NextToken")
        if not token:
            return pages
    raise AssertionError("pagination did not end")
