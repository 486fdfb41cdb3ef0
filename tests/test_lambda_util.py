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


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    """A zip archive (deflated) of `files` {path: content}, built in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
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
