"""Shared helpers and fixtures for the Lambda end-to-end tests (no tests here).

Deployment packages are built in memory with zipfile: a Python handler in
`lambda_function.py` (handler `lambda_function.lambda_handler`) or a Node.js
handler in `index.js` (handler `index.handler`). Functions run as the role
ROLE; `create_function` waits with the `function_active_v2` waiter, as AWS's
own docs recommend, before handing the function to a test.

Against another emulator (VIRGA_ENDPOINT set) the role is also created in that
server's IAM, since some emulators (moto) refuse a role they do not know; Virga
has no IAM and never sees that call.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import time
import zipfile
from typing import Iterable, Mapping, Optional

import pytest
from botocore.exceptions import ClientError

from virga_testlib import REGION, expect_error, make_client, unique_name

ACCOUNT = "000000000000"
ROLE_NAME = "lambda-role"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
PY_RUNTIME = "python3.12"
PY_HANDLER = "lambda_function.lambda_handler"
NODE_RUNTIME = "nodejs20.x"
NODE_HANDLER = "index.handler"

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Lambda's timestamps (LastModified, CreatedDate): 2019-08-14T22:26:11.234+0000
LAMBDA_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")

WAIT = {"Delay": 1, "MaxAttempts": 30}


# ---------------------------------------------------------------------------
# Names and ARNs
# ---------------------------------------------------------------------------
def function_name(prefix: str = "fn") -> str:
    return unique_name(prefix)


def function_arn(name: str, qualifier: Optional[str] = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier is not None else arn


def layer_arn(name: str, version: Optional[int] = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


def not_found_message(name: str, qualifier: Optional[str] = None) -> str:
    return f"Function not found: {function_arn(name, qualifier)}"


# ---------------------------------------------------------------------------
# Deployment packages
# ---------------------------------------------------------------------------
PY_SOURCE = "def lambda_handler(event, context):\n    return {'echo': event}\n"
NODE_SOURCE = "exports.handler = async (event) => ({ echo: event });\n"


def make_zip(files: Mapping[str, str | bytes], modes: Optional[Mapping[str, int]] = None) -> bytes:
    """A zip archive (deflated) of `files` {path: content}, built in memory.
    Files are mode 0644 unless `modes` says otherwise ({"bootstrap": 0o755})."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (modes or {}).get(path, 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


def python_zip(source: str = PY_SOURCE, extra: Optional[Mapping[str, str | bytes]] = None) -> bytes:
    return make_zip({"lambda_function.py": source, **(extra or {})})


def node_zip(source: str = NODE_SOURCE, extra: Optional[Mapping[str, str | bytes]] = None) -> bytes:
    return make_zip({"index.js": source, **(extra or {})})


def layer_zip(marker: str = "v1") -> bytes:
    """A Python layer: python/helper.py (importable from /opt/python)."""
    return make_zip({"python/helper.py": f"MARKER = {marker!r}\n"})


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: base64 of the SHA-256 digest of the package."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def lambda_error(code: str, status: int, message: Optional[str] = None):
    """The block fails with this Lambda error code and HTTP status and, if
    given, exactly this message."""
    with expect_error(code, status) as info:
        yield info
    if message is not None:
        got = error_message(info.value)
        assert got == message, f"expected message {message!r}, got {got!r}"


def error_message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message") or exc.response.get("Message") or ""


def status_of(response: Mapping) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def strip_meta(response: Mapping) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------
def ensure_role(endpoint: str) -> None:
    """Creates ROLE in the IAM of an external server (VIRGA_ENDPOINT) so that
    emulators which check the execution role accept it. Not used for Virga."""
    if not os.environ.get("VIRGA_ENDPOINT"):
        return
    iam = make_client(endpoint, "iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    try:
        iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise


@pytest.fixture(scope="session")
def lambda_session_client(virga_server):
    ensure_role(virga_server.endpoint)
    return make_client(virga_server.endpoint, "lambda")


@pytest.fixture
def lam(lambda_session_client):
    """boto3 Lambda client on the shared server (execution role in place)."""
    return lambda_session_client


@pytest.fixture
def lam_unchecked(virga_server, lambda_session_client):
    """Lambda client without botocore's client-side parameter validation, to
    send values (Timeout=0, MemorySize=127) that only the server should judge."""
    return make_client(virga_server.endpoint, "lambda", parameter_validation=False)


@pytest.fixture
def sqs(endpoint):
    return make_client(endpoint, "sqs")


@pytest.fixture
def make_queue(sqs):
    """Factory: make_queue() -> (queue URL, queue ARN)."""
    def _make():
        url = sqs.create_queue(QueueName=unique_name("q"))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn
    return _make


@pytest.fixture
def make_function(lam):
    """Factory: make_function(**create_function kwargs) -> (name, create response, zip bytes)."""
    def _make(**kwargs):
        return create_function(lam, **kwargs)
    return _make


@pytest.fixture
def fn(make_function):
    """A fresh, Active python3.12 function: (name, create response, zip bytes)."""
    return make_function()


# ---------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------
def create_function(lam, name: Optional[str] = None, runtime: str = PY_RUNTIME,
                    handler: Optional[str] = None, zip_bytes: Optional[bytes] = None,
                    code: Optional[dict] = None, wait: bool = True, **kwargs):
    """CreateFunction from an in-memory zip (python by default, node for a
    nodejs runtime) and, with wait=True, waits for State Active.
    Returns (name, CreateFunction response, zip bytes)."""
    name = name or function_name()
    node = runtime.startswith("nodejs")
    if zip_bytes is None and code is None:
        zip_bytes = node_zip() if node else python_zip()
    if handler is None:
        handler = NODE_HANDLER if node else PY_HANDLER
    resp = lam.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
        Code=code if code is not None else {"ZipFile": zip_bytes}, **kwargs)
    if wait:
        wait_active(lam, name)
    return name, resp, zip_bytes


def wait_active(lam, name: str) -> None:
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=WAIT)


def wait_updated(lam, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)


def list_all_functions(lam, page_size: Optional[int] = None, max_pages: int = 1000) -> list:
    """Every function of ListFunctions, following NextMarker."""
    out, marker = [], None
    for _ in range(max_pages):
        kwargs = {}
        if page_size:
            kwargs["MaxItems"] = page_size
        if marker:
            kwargs["Marker"] = marker
        resp = lam.list_functions(**kwargs)
        out += resp["Functions"]
        marker = resp.get("NextMarker")
        if not marker:
            return out
    raise AssertionError("ListFunctions never stopped returning NextMarker")


def versions_of(lam, name: str) -> list:
    """Version numbers from ListVersionsByFunction (all pages), in order."""
    out, marker = [], None
    while True:
        kwargs = {"FunctionName": name}
        if marker:
            kwargs["Marker"] = marker
        resp = lam.list_versions_by_function(**kwargs)
        out += [v["Version"] for v in resp["Versions"]]
        marker = resp.get("NextMarker")
        if not marker:
            return out


# ---------------------------------------------------------------------------
# Event source mappings
# ---------------------------------------------------------------------------
def wait_esm_state(lam, uuid: str, states: Iterable[str], timeout: float = 15.0) -> dict:
    """Polls GetEventSourceMapping until State is one of `states`; returns it."""
    wanted = set(states)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = lam.get_event_source_mapping(UUID=uuid)
        if last["State"] in wanted:
            return last
        time.sleep(0.2)
    raise AssertionError(f"mapping {uuid} never reached {sorted(wanted)}; last state: "
                         f"{last and last.get('State')}")


def wait_esm_gone(lam, uuid: str, timeout: float = 15.0) -> None:
    """Polls GetEventSourceMapping until it answers ResourceNotFoundException."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        try:
            state = lam.get_event_source_mapping(UUID=uuid)["State"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException", e.response
            return
        assert state == "Deleting", f"a deleted mapping must stay Deleting until gone, got {state}"
        time.sleep(0.2)
    raise AssertionError(f"mapping {uuid} still exists (state {state}) {timeout}s after delete")


# ---------------------------------------------------------------------------
# Running functions (test_lambda_run.py, test_lambda_events.py)
# ---------------------------------------------------------------------------
# AWS's log stream names: 2024/01/31/[$LATEST]0123456789abcdef0123456789abcdef
LOG_STREAM_RE = re.compile(r"^\d{4}/\d\d/\d\d/\[(\$LATEST|\d+)\][0-9a-f]{32}$")
POLL = 0.1


def invoke(lam, name: str, payload=None, *, raw=None, **kwargs):
    """Invoke; returns (response, Payload parsed as JSON, or None when empty).
    `raw` sends those bytes instead of json.dumps(payload)."""
    body = raw if raw is not None else json.dumps(payload if payload is not None else {})
    resp = lam.invoke(FunctionName=name, Payload=body, **kwargs)
    data = resp["Payload"].read() if "Payload" in resp else b""
    return resp, (json.loads(data) if data else None)


def request_id(response: Mapping) -> str:
    """The x-amzn-RequestId of a boto3 response."""
    return response["ResponseMetadata"]["RequestId"]


def wait_for(fetch, timeout: float = 15.0, interval: float = POLL, what: str = "condition"):
    """Calls fetch() until it returns something truthy and returns that; fails
    after `timeout` seconds showing the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fetch()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")
        time.sleep(interval)


def log_events(logs, group: str, **kwargs) -> list:
    """Every event of FilterLogEvents on `group` (all pages); [] while the group
    does not exist yet."""
    out, token = [], None
    while True:
        args = dict(logGroupName=group, **kwargs)
        if token:
            args["nextToken"] = token
        try:
            resp = logs.filter_log_events(**args)
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        out += resp["events"]
        token = resp.get("nextToken")
        if not token:
            return out


def wait_log_lines(logs, group: str, predicate, timeout: float = 15.0) -> list:
    """Polls the group's log messages until predicate(messages) holds; returns them."""
    return wait_for(lambda: (lambda m: m if predicate(m) else None)(
        [e["message"] for e in log_events(logs, group)]), timeout, what=f"log lines in {group}")


def count_lines(messages: Iterable[str], prefix: str) -> int:
    return sum(1 for m in messages if m.startswith(prefix))


def receive_one(sqs, url: str, timeout: float = 15.0, delete: bool = True) -> dict:
    """Polls `url` until a message arrives (short long-polls); returns it with
    all its attributes, deleting it unless delete=False."""
    def fetch():
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"], AttributeNames=["All"]
                                   ).get("Messages", [])
        return msgs[0] if msgs else None
    msg = wait_for(fetch, timeout, interval=0, what=f"a message on {url}")
    if delete:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return msg


def queue_depth(sqs, url: str) -> int:
    """Visible + in-flight + delayed messages of a queue."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attrs.values())


def queue_arn_of(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def s3_keys(s3, bucket: str, prefix: str = "") -> list:
    keys, token = [], None
    while True:
        args = {"Bucket": bucket, "Prefix": prefix}
        if token:
            args["ContinuationToken"] = token
        resp = s3.list_objects_v2(**args)
        keys += [o["Key"] for o in resp.get("Contents", [])]
        token = resp.get("NextContinuationToken")
        if not token:
            return keys


# A custom runtime in plain bash (no curl, no python: bash's /dev/tcp), looping on
# the Runtime API: GET .../invocation/next, then POST .../<id>/response with
# {"handler", "function", "requestId", "event"}. LC_ALL=C makes lengths bytes.
BASH_BOOTSTRAP = r'''#!/bin/bash
set -eu
export LC_ALL=C
API="$AWS_LAMBDA_RUNTIME_API"
HOST="${API%:*}"
PORT="${API##*:}"
echo "bash runtime starting for $_HANDLER"
while true; do
  exec 3<>"/dev/tcp/$HOST/$PORT"
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$API" >&3
  REQUEST_ID=""
  LEN=0
  IFS= read -r STATUS <&3
  while IFS= read -r LINE <&3; do
    LINE="${LINE%$'\r'}"
    [ -z "$LINE" ] && break
    VALUE="${LINE#*:}"
    VALUE="${VALUE# }"
    case "${LINE,,}" in
      lambda-runtime-aws-request-id:*) REQUEST_ID="$VALUE" ;;
      content-length:*) LEN="$VALUE" ;;
    esac
  done
  EVENT=""
  if [ "$LEN" -gt 0 ]; then IFS= read -r -N "$LEN" EVENT <&3 || true; fi
  exec 3<&-
  echo "bash runtime handling $REQUEST_ID"
  BODY="{\"handler\":\"$_HANDLER\",\"function\":\"$AWS_LAMBDA_FUNCTION_NAME\",\"requestId\":\"$REQUEST_ID\",\"event\":$EVENT}"
  exec 3<>"/dev/tcp/$HOST/$PORT"
  printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$REQUEST_ID" "$API" "${#BODY}" "$BODY" >&3
  cat <&3 >/dev/null
  exec 3<&-
done
'''


def provided_zip(bootstrap: str = BASH_BOOTSTRAP) -> bytes:
    """A provided.al2023 package: an executable `bootstrap` at the root."""
    return make_zip({"bootstrap": bootstrap}, modes={"bootstrap": 0o755})


@pytest.fixture
def deploy(lam):
    """Factory like create_function (waits for Active) whose functions are
    deleted at teardown, so their warm runtime processes stop too."""
    names = []

    def _deploy(**kwargs):
        name, resp, zip_bytes = create_function(lam, **kwargs)
        names.append(name)
        return name
    yield _deploy
    for name in names:
        with contextlib.suppress(ClientError):
            lam.delete_function(FunctionName=name)


@pytest.fixture
def logs(endpoint):
    return make_client(endpoint, "logs")


@pytest.fixture
def ddb(endpoint):
    return make_client(endpoint, "dynamodb")


@pytest.fixture
def make_table(ddb):
    """Factory: make_table(stream=None|"NEW_AND_OLD_IMAGES"...) -> (name, stream ARN
    or None), a PAY_PER_REQUEST table keyed by the string `pk`."""
    names = []

    def _make(stream: Optional[str] = None):
        name = unique_name("t")
        args = dict(TableName=name, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        if stream:
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
        desc = ddb.create_table(**args)["TableDescription"]
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        names.append(name)
        return name, desc.get("LatestStreamArn")
    yield _make
    for name in names:
        with contextlib.suppress(ClientError):
            ddb.delete_table(TableName=name)


@pytest.fixture
def make_mapping(lam):
    """Factory: make_mapping(**CreateEventSourceMapping kwargs) -> the mapping once
    Enabled; mappings are deleted at teardown (their pollers stop)."""
    uuids = []

    def _make(**kwargs):
        uuid = lam.create_event_source_mapping(**kwargs)["UUID"]
        uuids.append(uuid)
        return wait_esm_state(lam, uuid, ["Enabled"])
    yield _make
    for uuid in uuids:
        with contextlib.suppress(ClientError):
            lam.delete_event_source_mapping(UUID=uuid)
