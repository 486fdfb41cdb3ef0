"""Shared helpers and fixtures for the DynamoDB end-to-end tests (no tests here).

The other test_dynamodb_*.py modules import the fixtures they use from this
module. Tables are uniquely named per test (`make_table`) and deleted at
teardown, so tests are independent on the shared server.

Error messages are asserted exactly as us-east-1 words them. Some AWS regions
have started to prefix the same validation messages with
"1 validation error detected: "; `expect_ddb_error` accepts that variant too.
"""
from __future__ import annotations

import base64
import contextlib
import decimal
import time
from typing import Any, Iterable, Optional, Sequence

import boto3
import pytest
from boto3.dynamodb.types import Binary
from botocore.config import Config
from botocore.exceptions import ClientError

from virga_testlib import ACCESS_KEY, REGION, SECRET_KEY, make_client, unique_name

ACCOUNT = "000000000000"
VALIDATION = "ValidationException"
NOT_FOUND = "ResourceNotFoundException"
CCF = "ConditionalCheckFailedException"
VALIDATION_PREFIX = "1 validation error detected: "
# AWS's documented limits.
MAX_ITEM_BYTES = 400 * 1024
PAGE_BYTES = 1024 * 1024


def table_name(prefix: str = "t") -> str:
    """A valid, unique table name ([a-zA-Z0-9_.-]{3,255})."""
    return unique_name(prefix)


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------
def make_resource(endpoint: str):
    """boto3 DynamoDB service resource with the same settings as make_client."""
    return boto3.session.Session().resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120),
    )


class TrackingClient:
    """A DynamoDB client that remembers every table it was asked to create (even by
    requests expected to fail) so that teardown can delete them all."""

    def __init__(self, client):
        self._client = client
        self._created: list = []

    def create_table(self, **kwargs):
        if "TableName" in kwargs:
            self._created.append(kwargs["TableName"])
        return self._client.create_table(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)

    def delete_created_tables(self):
        for name in self._created:
            delete_table_quietly(self._client, name)


def delete_table_quietly(client, name: str) -> None:
    try:
        client.update_table(TableName=name, DeletionProtectionEnabled=False)
    except Exception:
        pass
    try:
        client.delete_table(TableName=name)
    except Exception:
        pass


@pytest.fixture
def ddb(endpoint):
    """Low-level boto3 DynamoDB client on the shared server. Client-side parameter
    validation is off: invalid requests must reach the server, which validates them.
    Tables created through it are deleted at teardown."""
    client = TrackingClient(make_client(endpoint, "dynamodb", parameter_validation=False))
    yield client
    client.delete_created_tables()


@pytest.fixture
def ddb_streams(endpoint):
    """boto3 DynamoDB Streams client on the shared server."""
    return make_client(endpoint, "dynamodbstreams")


@pytest.fixture
def ddb_resource(endpoint):
    """boto3 DynamoDB resource (Table objects, Decimal numbers) on the shared server."""
    return make_resource(endpoint)


# ---------------------------------------------------------------------------
# Table factory
# ---------------------------------------------------------------------------
def gsi(name: str, hash_key: tuple, range_key: Optional[tuple] = None, projection: str = "ALL",
        include: Sequence[str] = ()) -> dict:
    """Spec of a global secondary index for make_table: keys are (name, type)."""
    return {"name": name, "hash": hash_key, "range": range_key, "projection": projection,
            "include": list(include)}


def lsi(name: str, range_key: tuple, projection: str = "ALL", include: Sequence[str] = ()) -> dict:
    """Spec of a local secondary index for make_table (the hash key is the table's)."""
    return {"name": name, "range": range_key, "projection": projection, "include": list(include)}


def key_schema(hash_key: tuple, range_key: Optional[tuple] = None) -> list:
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
    return schema


def projection(spec: dict) -> dict:
    proj = {"ProjectionType": spec["projection"]}
    if spec["projection"] == "INCLUDE":
        proj["NonKeyAttributes"] = list(spec["include"])
    return proj


def create_table_request(name: str, hash_key=("pk", "S"), range_key=None, *, gsis=(), lsis=(),
                         stream: Optional[str] = None, billing: str = "PAY_PER_REQUEST",
                         throughput=(5, 5), **extra) -> dict:
    """The CreateTable parameters make_table sends (exposed for tests that tweak them)."""
    defs = {}

    def define(key):
        if key:
            defs[key[0]] = key[1]

    define(hash_key)
    define(range_key)
    for g in gsis:
        define(g["hash"])
        define(g["range"])
    for l in lsis:
        define(l["range"])
    req = {
        "TableName": name,
        "KeySchema": key_schema(hash_key, range_key),
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": t} for k, t in defs.items()],
        "BillingMode": billing,
    }
    pt = {"ReadCapacityUnits": throughput[0], "WriteCapacityUnits": throughput[1]}
    if billing == "PROVISIONED":
        req["ProvisionedThroughput"] = pt
    if gsis:
        req["GlobalSecondaryIndexes"] = []
        for g in gsis:
            entry = {"IndexName": g["name"], "KeySchema": key_schema(g["hash"], g["range"]),
                     "Projection": projection(g)}
            if billing == "PROVISIONED":
                entry["ProvisionedThroughput"] = dict(pt)
            req["GlobalSecondaryIndexes"].append(entry)
    if lsis:
        req["LocalSecondaryIndexes"] = [
            {"IndexName": l["name"], "KeySchema": key_schema(hash_key, l["range"]),
             "Projection": projection(l)} for l in lsis]
    if stream:
        req["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    req.update(extra)
    return req


def wait_active(client, name: str, timeout: float = 15.0) -> dict:
    """Polls DescribeTable until the table and all its GSIs are ACTIVE; returns the Table."""
    deadline = time.monotonic() + timeout
    while True:
        table = client.describe_table(TableName=name)["Table"]
        gsis_ok = all(g.get("IndexStatus") == "ACTIVE" for g in table.get("GlobalSecondaryIndexes", []))
        if table["TableStatus"] == "ACTIVE" and gsis_ok:
            return table
        if time.monotonic() > deadline:
            raise AssertionError(f"table {name} not ACTIVE after {timeout}s: {table}")
        time.sleep(0.05)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Polls predicate() until it returns something truthy (returned) or the timeout passes
    (then the last falsy value is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class TableFactory:
    """make_table(hash_key=("pk", "S"), range_key=None, gsis=(), lsis=(), stream=None,
    billing="PAY_PER_REQUEST", name=None, client=None, **extra CreateTable params) -> name.
    Waits until the table is ACTIVE; every table is deleted at teardown."""

    def __init__(self, client):
        self.client = client
        self.created: list = []

    def __call__(self, hash_key=("pk", "S"), range_key=None, *, name: Optional[str] = None,
                 client=None, wait: bool = True, **kwargs) -> str:
        client = client or self.client
        name = name or table_name()
        client.create_table(**create_table_request(name, hash_key, range_key, **kwargs))
        self.created.append((client, name))
        if wait:
            wait_active(client, name)
        return name

    def cleanup(self):
        for client, name in self.created:
            delete_table_quietly(client, name)


@pytest.fixture
def make_table(ddb):
    factory = TableFactory(ddb)
    yield factory
    factory.cleanup()


@pytest.fixture
def table(make_table):
    """A fresh table with a string hash key `pk` only."""
    return make_table()


@pytest.fixture
def table_hr(make_table):
    """A fresh table with a string hash key `pk` and a string range key `sk`."""
    return make_table(("pk", "S"), ("sk", "S"))


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def error_message(exc: ClientError) -> str:
    return exc.response["Error"].get("Message", "")


def message_matches(got: str, expected: str) -> bool:
    return got == expected or got == VALIDATION_PREFIX + expected


@contextlib.contextmanager
def expect_ddb_error(code: str, message: Optional[str] = None, *, contains: Iterable[str] = (),
                     status: int = 400):
    """Asserts the block raises a ClientError with this code and HTTP status, and (if
    given) exactly this message (optionally with the "1 validation error detected: "
    prefix some regions add) and/or messages containing every `contains` string.
    Yields the pytest ExceptionInfo (info.value.response is the parsed error)."""
    with pytest.raises(ClientError) as info:
        yield info
    resp = info.value.response
    got = (resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"])
    assert got == (code, status), f"expected {code}/{status}, got {got}: {resp['Error']}"
    msg = error_message(info.value)
    if message is not None:
        assert message_matches(msg, message), f"message {msg!r} != {message!r}"
    for part in contains:
        assert part in msg, f"{part!r} not in message {msg!r}"


# ---------------------------------------------------------------------------
# Attribute values
# ---------------------------------------------------------------------------
def S(v: str) -> dict:
    return {"S": v}


def N(v) -> dict:
    return {"N": str(v)}


def B(v: bytes) -> dict:
    return {"B": v}


def from_av(av: dict) -> Any:
    """Low-level attribute value -> plain Python (Decimal numbers, bytes, sets)."""
    (kind, value), = av.items()
    if kind == "S":
        return value
    if kind == "N":
        return decimal.Decimal(value)
    if kind == "B":
        return bytes(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {decimal.Decimal(v) for v in value}
    if kind == "BS":
        return {bytes(v) for v in value}
    if kind == "L":
        return [from_av(v) for v in value]
    if kind == "M":
        return {k: from_av(v) for k, v in value.items()}
    raise AssertionError(f"unknown attribute value {av!r}")


def plain(item: Optional[dict]) -> Optional[dict]:
    """A low-level item as plain Python values (sets compare unordered)."""
    if item is None:
        return None
    return {k: from_av(v) for k, v in item.items()}


def av_size(av: dict) -> int:
    """Approximate stored size of an attribute value as AWS documents it."""
    (kind, value), = av.items()
    if kind == "S":
        return len(value.encode())
    if kind == "B":
        return len(value)
    if kind == "N":
        digits = len(value.lstrip("-").replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in value)
    if kind == "BS":
        return sum(len(v) for v in value)
    if kind == "NS":
        return sum(av_size({"N": v}) for v in value)
    if kind == "L":
        return 3 + sum(1 + av_size(v) for v in value)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + av_size(v) for k, v in value.items())
    raise AssertionError(kind)


def item_size(item: dict) -> int:
    return sum(len(k.encode()) + av_size(v) for k, v in item.items())


# ---------------------------------------------------------------------------
# Bulk reads and writes
# ---------------------------------------------------------------------------
def put_all(client, table: str, items: Sequence[dict]) -> None:
    """Writes items with BatchWriteItem (25 per call), resending unprocessed ones."""
    for i in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]}
        for _ in range(50):
            unprocessed = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not unprocessed:
                break
            request = unprocessed
        else:
            raise AssertionError(f"batch write never completed: {request}")


def query_all(client, **kwargs) -> tuple:
    """Follows LastEvaluatedKey to the end: returns (items, pages) where pages are
    the raw responses."""
    items, pages = [], []
    for _ in range(10000):
        resp = client.query(**kwargs)
        pages.append(resp)
        items += resp.get("Items", [])
        if "LastEvaluatedKey" not in resp:
            return items, pages
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    raise AssertionError("query pagination did not end")


def scan_all(client, **kwargs) -> tuple:
    items, pages = [], []
    for _ in range(10000):
        resp = client.scan(**kwargs)
        pages.append(resp)
        items += resp.get("Items", [])
        if "LastEvaluatedKey" not in resp:
            return items, pages
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    raise AssertionError("scan pagination did not end")


def keys_of(items: Iterable[dict], *names: str) -> list:
    """[(plain value of name1, name2, ...)] for each item, in order."""
    return [tuple(from_av(it[n]) for n in names) if len(names) > 1 else from_av(it[names[0]])
            for it in items]


# ---------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------
def latest_stream_arn(client, table: str) -> str:
    arn = client.describe_table(TableName=table)["Table"].get("LatestStreamArn")
    assert arn, f"table {table} has no stream"
    return arn


def shards_of(streams, stream_arn: str) -> list:
    shards, start = [], None
    while True:
        kwargs = {"StreamArn": stream_arn}
        if start:
            kwargs["ExclusiveStartShardId"] = start
        desc = streams.describe_stream(**kwargs)["StreamDescription"]
        shards += desc.get("Shards", [])
        start = desc.get("LastEvaluatedShardId")
        if not start:
            return shards


def drain_iterator(streams, iterator: Optional[str], max_calls: int = 100) -> list:
    """GetRecords from an iterator until a call returns no records (or the shard ends)."""
    records = []
    for _ in range(max_calls):
        if not iterator:
            break
        resp = streams.get_records(ShardIterator=iterator)
        records += resp.get("Records", [])
        if not resp.get("Records"):
            break
        iterator = resp.get("NextShardIterator")
    return records


def read_stream(streams, stream_arn: str) -> list:
    """All records currently in the stream (every shard from TRIM_HORIZON), ordered by
    sequence number."""
    records = []
    for shard in shards_of(streams, stream_arn):
        it = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records += drain_iterator(streams, it)
    return sorted(records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


__all__ = [
    "ACCOUNT", "VALIDATION", "NOT_FOUND", "CCF", "MAX_ITEM_BYTES", "PAGE_BYTES", "Binary",
    "table_name", "table_arn", "make_resource", "TrackingClient", "delete_table_quietly", "ddb", "ddb_streams", "ddb_resource", "gsi", "lsi",
    "key_schema", "create_table_request", "wait_active", "wait_until", "TableFactory", "make_table",
    "table", "table_hr", "error_code", "error_message", "expect_ddb_error", "S", "N", "B", "from_av",
    "plain", "item_size", "put_all", "query_all", "scan_all", "keys_of", "latest_stream_arn",
    "shards_of", "drain_iterator", "read_stream", "b64",
]
