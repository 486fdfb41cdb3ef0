"""Shared helpers and fixtures for the SQS end-to-end tests (no tests here).

The other test_sqs_*.py modules import the fixtures they use from this module.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import time
import xml.etree.ElementTree as ET
from typing import Mapping, Optional
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from virga_testlib import ACCESS_KEY, REGION, SECRET_KEY, RawResponse, make_client, strip_ns, unique_name

ACCOUNT = "000000000000"
QUERY_NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


def queue_name(prefix: str = "q", fifo: bool = False) -> str:
    return unique_name(prefix) + (".fifo" if fifo else "")


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------
@pytest.fixture
def sqs(endpoint):
    """boto3 SQS client (JSON protocol) on the shared server."""
    return make_client(endpoint, "sqs")


@pytest.fixture
def make_queue(sqs):
    """Factory: make_queue(fifo=False, attributes=None, tags=None, name=None) -> (name, url)."""
    def _make(fifo: bool = False, attributes: Optional[dict] = None, tags: Optional[dict] = None,
              name: Optional[str] = None, client=None):
        client = client or sqs
        name = name or queue_name(fifo=fifo)
        attrs = dict(attributes or {})
        if fifo:
            attrs.setdefault("FifoQueue", "true")
        kwargs = {"QueueName": name}
        if attrs:
            kwargs["Attributes"] = attrs
        if tags:
            kwargs["tags"] = tags
        url = client.create_queue(**kwargs)["QueueUrl"]
        return name, url
    return _make


@pytest.fixture
def queue(make_queue):
    """A fresh standard queue: (name, url)."""
    return make_queue()


# ---------------------------------------------------------------------------
# Message helpers
# ---------------------------------------------------------------------------
def md5_hex(data) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def md5_of_attributes(attrs: Mapping[str, Mapping]) -> str:
    """MD5OfMessageAttributes as AWS documents it: for each attribute sorted by
    name: len+name, len+data type, transport byte (1 string/number, 2 binary),
    len+value; lengths are 4-byte big-endian."""
    def enc(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    buf = b""
    for name in sorted(attrs):
        a = attrs[name]
        buf += enc(name.encode()) + enc(a["DataType"].encode())
        if a.get("StringValue") is not None:
            buf += b"\x01" + enc(a["StringValue"].encode())
        else:
            value = a["BinaryValue"]
            if isinstance(value, str):
                value = value.encode()
            buf += b"\x02" + enc(value)
    return hashlib.md5(buf).hexdigest()


def receive(sqs, url: str, **kwargs) -> list:
    return sqs.receive_message(QueueUrl=url, **kwargs).get("Messages", [])


def receive_until(sqs, url: str, count: int, timeout: float = 10.0, **kwargs) -> list:
    """Receives until `count` messages arrived (short polls may return fewer than
    available, as on AWS) or the timeout passes; returns what was received."""
    limit = kwargs.pop("MaxNumberOfMessages", 10)
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += receive(sqs, url, MaxNumberOfMessages=max(1, min(limit, count - len(got))), **kwargs)
    return got


def attributes(sqs, url: str, *names: str) -> dict:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"])["Attributes"]


def counts(sqs, url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed)."""
    a = attributes(sqs, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                   "ApproximateNumberOfMessagesDelayed")
    return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
            int(a["ApproximateNumberOfMessagesDelayed"]))


# ---------------------------------------------------------------------------
# Raw protocol requests
# ---------------------------------------------------------------------------
def _send(url: str, body: bytes, headers: dict, timeout: float) -> RawResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        resp = conn.getresponse()
        return RawResponse(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def signed_post(url: str, body: bytes, headers: dict, timeout: float = 30) -> RawResponse:
    req = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "sqs", REGION).add_auth(req)
    return _send(url, body, dict(req.headers.items()), timeout)


def query_call(endpoint: str, params: Mapping[str, str], path: str = "/", timeout: float = 30) -> RawResponse:
    """One legacy query-protocol request (form POST, SigV4 for service sqs)."""
    params = dict(params)
    params.setdefault("Version", "2012-11-05")
    body = urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    return signed_post(endpoint.rstrip("/") + path, body, headers, timeout)


def json_call(endpoint: str, operation: str, payload: dict, path: str = "/", timeout: float = 30) -> RawResponse:
    """One JSON-protocol request, as current SDKs send it."""
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{operation}"}
    return signed_post(endpoint.rstrip("/") + path, json.dumps(payload).encode(), headers, timeout)


def xml_root(body: bytes) -> ET.Element:
    assert body, "expected an XML body"
    return ET.fromstring(body)


def find(elem: ET.Element, *path: str) -> Optional[ET.Element]:
    """Namespace-agnostic child lookup by local names."""
    cur = elem
    for name in path:
        nxt = None
        for child in cur:
            if strip_ns(child.tag) == name:
                nxt = child
                break
        if nxt is None:
            return None
        cur = nxt
    return cur


def find_all(elem: ET.Element, name: str) -> list:
    return [c for c in elem if strip_ns(c.tag) == name]


def text(elem: ET.Element, *path: str) -> Optional[str]:
    found = find(elem, *path)
    return None if found is None else (found.text or "")
