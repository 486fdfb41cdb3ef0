"""Lambda's running side, synchronous: Python (python3.12, the host's python3
standing in) and Node (nodejs20.x) functions invoked with boto3, the context
object and environment they see, boto3 inside a function talking back to the
emulator, errors as AWS reports them (handler exceptions, import errors, missing
handlers, timeouts, crashes), LogType=Tail and CloudWatch Logs, payload limits,
versions, aliases and weighted routing, reserved concurrency, configuration and
code updates, layers, a provided.al2023 custom runtime in bash, and the AWS CLI.

AWS's documented behaviour is the spec. The only timing assumptions: a 3-second
sleep (or an endless loop) exceeds a 1-second Timeout, and two invokes started
together overlap while the first sleeps 1.5 seconds."""
from __future__ import annotations

import base64
import json
import threading

import pytest
from botocore.exceptions import ClientError

from test_lambda_util import (  # noqa: F401  (fixtures)
    LOG_STREAM_RE, NODE_RUNTIME, PY_HANDLER, UUID_RE, count_lines, create_function, ddb, deploy,
    function_arn, invoke, lam, lambda_error, lambda_session_client, logs, make_table, make_zip,
    node_zip, not_found_message, provided_zip, python_zip, request_id,
    wait_log_lines, wait_updated,
)
from virga_testlib import make_client, run_aws, unique_name

ENV_KEYS = [
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_REGION", "AWS_DEFAULT_REGION", "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API",
    "STAGE", "GREETING", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
]

PY_CONTEXT = """
import os
KEYS = %r
def lambda_handler(event, context):
    root = os.environ.get("LAMBDA_TASK_ROOT", "")
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "env": {k: os.environ.get(k) for k in KEYS},
        "cwd_is_task_root": os.path.realpath(os.getcwd()) == os.path.realpath(root),
        "handler_in_task_root": os.path.isfile(os.path.join(root, "lambda_function.py")),
    }
""" % (ENV_KEYS,)

NODE_CONTEXT = """
const fs = require('fs');
const path = require('path');
const KEYS = %s;
exports.handler = async (event, context) => {
  const root = process.env.LAMBDA_TASK_ROOT || '';
  return {
    event,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitInMB: context.memoryLimitInMB,
    awsRequestId: context.awsRequestId,
    invokedFunctionArn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    env: Object.fromEntries(KEYS.map((k) => [k, process.env[k] ?? null])),
    cwdIsTaskRoot: fs.realpathSync(process.cwd()) === fs.realpathSync(root),
    handlerInTaskRoot: fs.existsSync(path.join(root, 'index.js')),
  };
};
""" % (json.dumps(ENV_KEYS),)

# Versions of a handler: returns its marker and what it was invoked as.
PY_MARKED = """
def lambda_handler(event, context):
    return {"marker": %r, "version": context.function_version,
            "arn": context.invoked_function_arn}
"""

# A handler whose module-level TOKEN changes whenever the runtime re-initialises.
PY_MISBEHAVING = """
import os, time, uuid
TOKEN = uuid.uuid4().hex
def lambda_handler(event, context):
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "crash":
        print("about to crash", flush=True)
        os._exit(3)
    elif action == "spin":
        while True:
            pass
    return {"token": TOKEN}
"""


def py(source: str) -> bytes:
    return python_zip(source)


def assert_ok(resp):
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp, resp


def assert_unhandled(resp):
    assert resp["StatusCode"] == 200
    assert resp.get("FunctionError") == "Unhandled", resp


# ---------------------------------------------------------------------------
# Invoke, context and environment
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def context_fn(lambda_session_client):
    lam = lambda_session_client
    name, _, _ = create_function(lam, zip_bytes=py(PY_CONTEXT), Timeout=7, MemorySize=256,
                                 Environment={"Variables": {"STAGE": "test", "GREETING": "hi there"}})
    yield name
    lam.delete_function(FunctionName=name)


def test_python_invoke_returns_result(lam, context_fn):
    event = {"a": 1, "nested": {"list": [1, 2.5, None, True], "text": "h\u00e9llo"}}
    resp, out = invoke(lam, context_fn, event)
    assert_ok(resp)
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["event"] == event


def test_python_context_fields(lam, context_fn):
    resp, out = invoke(lam, context_fn, {})
    assert_ok(resp)
    assert out["function_name"] == context_fn
    assert out["function_version"] == "$LATEST"
    assert int(out["memory_limit_in_mb"]) == 256
    # The request id the function sees is the one the Invoke response carries.
    assert UUID_RE.match(out["aws_request_id"]), out["aws_request_id"]
    assert out["aws_request_id"] == request_id(resp)
    # Invoked unqualified: the unqualified ARN.
    assert out["invoked_function_arn"] == function_arn(context_fn)
    assert 0 < out["remaining"] <= 7000
    assert out["log_group_name"] == f"/aws/lambda/{context_fn}"
    assert LOG_STREAM_RE.match(out["log_stream_name"]), out["log_stream_name"]
    assert "[$LATEST]" in out["log_stream_name"]


def test_python_invoked_function_arn_is_qualified_as_invoked(lam, context_fn):
    resp, out = invoke(lam, context_fn, {}, Qualifier="$LATEST")
    assert_ok(resp)
    assert out["invoked_function_arn"] == function_arn(context_fn, "$LATEST")
    resp, out = invoke(lam, function_arn(context_fn), {})
    assert out["invoked_function_arn"] == function_arn(context_fn)


def test_python_standard_environment(lam, context_fn):
    resp, out = invoke(lam, context_fn, {})
    env = out["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == context_fn
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["_HANDLER"] == PY_HANDLER
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{context_fn}"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == out["log_stream_name"]
    assert env["AWS_LAMBDA_RUNTIME_API"], "AWS_LAMBDA_RUNTIME_API must be set"
    assert env["LAMBDA_TASK_ROOT"]
    # The execution role's temporary credentials, as AWS hands them over (Virga's
    # first configured key; the token is not checked).
    assert env["AWS_ACCESS_KEY_ID"] == "test" and env["AWS_SECRET_ACCESS_KEY"] == "test"
    assert env["AWS_SESSION_TOKEN"]
    assert out["handler_in_task_root"] is True
    assert out["cwd_is_task_root"] is True
    # The function's own Environment.
    assert env["STAGE"] == "test"
    assert env["GREETING"] == "hi there"


def test_node_invoke_context_and_environment(lam, deploy):
    name = deploy(runtime=NODE_RUNTIME, zip_bytes=node_zip(NODE_CONTEXT), Timeout=5,
                  Environment={"Variables": {"STAGE": "node"}})
    event = {"x": [1, 2, {"y": "z"}]}
    resp, out = invoke(lam, name, event)
    assert_ok(resp)
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["event"] == event
    assert out["functionName"] == name
    assert out["functionVersion"] == "$LATEST"
    assert int(out["memoryLimitInMB"]) == 128
    assert out["awsRequestId"] == request_id(resp)
    assert out["invokedFunctionArn"] == function_arn(name)
    assert 0 < out["remaining"] <= 5000
    assert out["logGroupName"] == f"/aws/lambda/{name}"
    assert LOG_STREAM_RE.match(out["logStreamName"]), out["logStreamName"]
    env = out["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "index.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == out["logStreamName"]
    assert env["STAGE"] == "node"
    assert env["GREETING"] is None
    assert out["handlerInTaskRoot"] is True
    assert out["cwdIsTaskRoot"] is True
    # Invoked with a qualifier: the qualified ARN.
    resp, out = invoke(lam, name, {}, Qualifier="$LATEST")
    assert out["invokedFunctionArn"] == function_arn(name, "$LATEST")


def test_python_function_uses_boto3_against_the_endpoint(lam, deploy, make_table, ddb, s3, bucket):
    """AWS_ENDPOINT_URL and credentials reach the function: its boto3 calls land
    in the same DynamoDB and S3 the test reads."""
    table, _ = make_table()
    name = deploy(zip_bytes=py(
        "import boto3\n"
        "def lambda_handler(event, context):\n"
        "    boto3.client('dynamodb').put_item(TableName=event['table'], Item={\n"
        "        'pk': {'S': event['id']}, 'by': {'S': context.function_name}})\n"
        "    boto3.client('s3').put_object(Bucket=event['bucket'], Key=event['id'],\n"
        "                                  Body=b'written by ' + context.function_name.encode())\n"
        "    return {'ok': True}\n"), Timeout=30)
    resp, out = invoke(lam, name, {"table": table, "bucket": bucket, "id": "item-1"})
    assert_ok(resp)
    assert out == {"ok": True}
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "item-1"}})["Item"]
    assert item["by"] == {"S": name}
    body = s3.get_object(Bucket=bucket, Key="item-1")["Body"].read()
    assert body == f"written by {name}".encode()


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def test_python_handler_exception(lam, deploy):
    name = deploy(zip_bytes=py(
        "def helper(n):\n"
        "    raise ValueError(f'bad input {n}')\n"
        "def lambda_handler(event, context):\n"
        "    helper(event['n'])\n"))
    resp, out = invoke(lam, name, {"n": 42})
    assert_unhandled(resp)
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["errorMessage"] == "bad input 42"
    assert out["errorType"] == "ValueError"
    assert out["requestId"] == request_id(resp)
    trace = "".join(out["stackTrace"])
    assert "lambda_function.py" in trace
    assert "helper" in trace and "raise ValueError" in trace
    # The environment survives a handled-by-runtime error.
    resp, out = invoke(lam, name, {"n": 7})
    assert out["errorMessage"] == "bad input 7"


def test_node_thrown_error(lam, deploy):
    name = deploy(runtime=NODE_RUNTIME, zip_bytes=node_zip(
        "class OrderError extends Error {\n"
        "  constructor(m) { super(m); this.name = 'OrderError'; }\n"
        "}\n"
        "exports.handler = async (event) => {\n"
        "  if (event.custom) throw new OrderError('order ' + event.id + ' rejected');\n"
        "  throw new Error('node boom ' + event.id);\n"
        "};\n"))
    resp, out = invoke(lam, name, {"id": 5})
    assert_unhandled(resp)
    assert out["errorType"] == "Error"
    assert out["errorMessage"] == "node boom 5"
    assert isinstance(out["trace"], list)
    assert out["trace"][0] == "Error: node boom 5"
    assert any("index.js" in line for line in out["trace"])
    resp, out = invoke(lam, name, {"id": 6, "custom": True})
    assert_unhandled(resp)
    assert out["errorType"] == "OrderError"
    assert out["errorMessage"] == "order 6 rejected"


def test_python_import_error(lam, deploy):
    name = deploy(zip_bytes=py("import module_that_does_not_exist\n"
                               "def lambda_handler(event, context):\n    return 1\n"))
    resp, out = invoke(lam, name, {})
    assert_unhandled(resp)
    assert out["errorType"] == "Runtime.ImportModuleError"
    assert out["errorMessage"] == (
        "Unable to import module 'lambda_function': No module named 'module_that_does_not_exist'")


def test_python_missing_handler_module(lam, deploy):
    name = deploy(handler="nope.lambda_handler")
    resp, out = invoke(lam, name, {})
    assert_unhandled(resp)
    assert out["errorType"] == "Runtime.ImportModuleError"
    assert out["errorMessage"] == "Unable to import module 'nope': No module named 'nope'"


def test_python_missing_handler_function(lam, deploy):
    name = deploy(handler="lambda_function.missing")
    resp, out = invoke(lam, name, {})
    assert_unhandled(resp)
    assert out["errorType"] == "Runtime.HandlerNotFound"
    assert out["errorMessage"] == "Handler 'missing' missing on module 'lambda_function'"


def test_node_missing_handler_function(lam, deploy):
    name = deploy(runtime=NODE_RUNTIME, handler="index.missing")
    resp, out = invoke(lam, name, {})
    assert_unhandled(resp)
    assert out["errorType"] == "Runtime.HandlerNotFound"
    assert "index.missing" in out["errorMessage"]


def test_timeout_then_next_invoke_gets_a_fresh_runtime(lam, deploy):
    name = deploy(zip_bytes=py(PY_MISBEHAVING), Timeout=1)
    resp, first = invoke(lam, name, {})
    assert_ok(resp)
    resp, out = invoke(lam, name, {"action": "sleep", "seconds": 3})
    assert_unhandled(resp)
    assert out["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in out["errorMessage"]
    resp, after = invoke(lam, name, {})
    assert_ok(resp)
    # The timed-out runtime was replaced: the module was imported again.
    assert after["token"] != first["token"]


def test_infinite_loop_is_stopped_by_the_timeout(lam, deploy):
    name = deploy(zip_bytes=py(PY_MISBEHAVING), Timeout=1)
    resp, out = invoke(lam, name, {"action": "spin"})
    assert_unhandled(resp)
    assert out["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in out["errorMessage"]
    resp, out = invoke(lam, name, {})
    assert_ok(resp)
    assert "token" in out


def test_process_crash_is_runtime_exit_error_and_next_invoke_works(lam, deploy):
    name = deploy(zip_bytes=py(PY_MISBEHAVING))
    resp, first = invoke(lam, name, {})
    assert_ok(resp)
    resp, out = invoke(lam, name, {"action": "crash"})
    assert_unhandled(resp)
    assert out["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in out["errorMessage"]
    resp, after = invoke(lam, name, {})
    assert_ok(resp)
    assert after["token"] != first["token"]


def test_lots_of_output_still_answers(lam, deploy):
    """5 MB printed in one invocation: the function still answers."""
    name = deploy(zip_bytes=py(
        "import sys\n"
        "def lambda_handler(event, context):\n"
        "    line = 'y' * 999 + '\\n'\n"
        "    for _ in range(5 * 1024):\n"
        "        sys.stdout.write(line)\n"
        "    return {'printed': 5 * 1024 * 1000}\n"), Timeout=30)
    resp, out = invoke(lam, name, {})
    assert_ok(resp)
    assert out == {"printed": 5 * 1024 * 1000}


# ---------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------
PY_PRINTER = """
def lambda_handler(event, context):
    print("hello from", event["who"], "call", event["n"])
    return event["n"]
"""


def test_log_type_tail(lam, deploy):
    name = deploy(zip_bytes=py(PY_PRINTER))
    resp, out = invoke(lam, name, {"who": "tail", "n": 1}, LogType="Tail")
    assert_ok(resp)
    assert out == 1
    rid = request_id(resp)
    text = base64.b64decode(resp["LogResult"]).decode()
    assert f"START RequestId: {rid}" in text
    assert "hello from tail call 1" in text
    assert f"END RequestId: {rid}" in text
    assert f"REPORT RequestId: {rid}" in text
    # Without LogType=Tail there is no LogResult.
    resp, _ = invoke(lam, name, {"who": "tail", "n": 2})
    assert "LogResult" not in resp


def test_cloudwatch_logs_of_invocations(lam, deploy, logs):
    name = deploy(zip_bytes=py(PY_PRINTER))
    group = f"/aws/lambda/{name}"
    r1, _ = invoke(lam, name, {"who": "cw", "n": 1})
    r2, _ = invoke(lam, name, {"who": "cw", "n": 2})
    id1, id2 = request_id(r1), request_id(r2)
    msgs = wait_log_lines(logs, group, lambda m: count_lines(m, "REPORT RequestId:") >= 2)
    assert any(m.startswith(f"START RequestId: {id1}") for m in msgs), msgs
    assert any(m.startswith(f"START RequestId: {id2}") for m in msgs), msgs
    assert any("hello from cw call 1" in m for m in msgs), msgs
    assert any("hello from cw call 2" in m for m in msgs), msgs
    assert any(m.startswith(f"END RequestId: {id1}") for m in msgs), msgs
    report1 = [m for m in msgs if m.startswith(f"REPORT RequestId: {id1}")]
    report2 = [m for m in msgs if m.startswith(f"REPORT RequestId: {id2}")]
    assert len(report1) == 1 and len(report2) == 1, msgs
    for field in ("Duration:", "Billed Duration:", "Memory Size: 128 MB", "Max Memory Used:"):
        assert field in report1[0] and field in report2[0], (field, report1, report2)
    # Only the cold start reports an init duration.
    assert "Init Duration:" in report1[0]
    assert "Init Duration:" not in report2[0]
    # Order within the invocation: START, output, END, REPORT.
    mine = [m for m in msgs if id1 in m or "call 1" in m]
    assert [m.split()[0] for m in mine] == ["START", "hello", "END", "REPORT"], mine

    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams, "no log stream"
    for s in streams:
        assert LOG_STREAM_RE.match(s["logStreamName"]), s["logStreamName"]
        assert "[$LATEST]" in s["logStreamName"]


# ---------------------------------------------------------------------------
# Payloads and invocation types
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def echo_fn(lambda_session_client):
    lam = lambda_session_client
    name, _, _ = create_function(lam)
    yield name
    lam.delete_function(FunctionName=name)


def test_sync_payload_over_6mb_is_rejected(lam, echo_fn):
    big = '{"d":"' + "x" * (6 * 1024 * 1024) + '"}'
    with lambda_error("RequestEntityTooLargeException", 413):
        invoke(lam, echo_fn, raw=big)


def test_sync_payload_just_under_6mb_is_accepted(lam, deploy):
    name = deploy(zip_bytes=py("def lambda_handler(event, context):\n    return len(event['d'])\n"))
    n = 6 * 1024 * 1024 - 100
    resp, out = invoke(lam, name, raw='{"d":"' + "x" * n + '"}')
    assert_ok(resp)
    assert out == n


def test_event_payload_over_1mb_is_rejected(lam, echo_fn):
    """Asynchronous invocations take up to 1 MB (raised from 256 KB in 2025)."""
    big = '{"d":"' + "x" * (1024 * 1024 + 10) + '"}'
    with lambda_error("RequestEntityTooLargeException", 413):
        invoke(lam, echo_fn, raw=big, InvocationType="Event")


def test_event_payload_over_256kb_is_accepted(lam, echo_fn):
    """AWS's documented limit for InvocationType=Event is 1 MB today (the Invoke
    API reference: "For asynchronous invocations, the maximum payload size is
    1 MB"); 256 KB is only InvokeAsync's."""
    payload = '{"d":"' + "x" * (300 * 1024) + '"}'
    resp, _ = invoke(lam, echo_fn, raw=payload, InvocationType="Event")
    assert resp["StatusCode"] == 202


def test_invalid_json_payload(lam, echo_fn):
    with lambda_error("InvalidRequestContentException", 400) as info:
        invoke(lam, echo_fn, raw=b"{not json")
    assert info.value.response["Error"]["Message"].startswith("Could not parse request body into json")


def test_unknown_qualifier(lam, echo_fn):
    with lambda_error("ResourceNotFoundException", 404, not_found_message(echo_fn, "99")):
        invoke(lam, echo_fn, {}, Qualifier="99")
    with lambda_error("ResourceNotFoundException", 404):
        invoke(lam, echo_fn, {}, Qualifier="no-such-alias")


def test_unknown_function(lam):
    name = unique_name("missing")
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        invoke(lam, name, {})


def test_dry_run(lam, echo_fn):
    resp, out = invoke(lam, echo_fn, {"a": 1}, InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    assert out is None


def test_empty_payload_is_an_empty_object(lam, deploy):
    name = deploy(zip_bytes=py("def lambda_handler(event, context):\n    return {'event': event}\n"))
    resp = lam.invoke(FunctionName=name)
    assert json.loads(resp["Payload"].read()) == {"event": {}}


# ---------------------------------------------------------------------------
# Versions, aliases, routing
# ---------------------------------------------------------------------------
def test_versions_and_latest_run_their_own_code(lam, deploy):
    name = deploy(zip_bytes=py(PY_MARKED % "v1"))
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=py(PY_MARKED % "v2"))
    wait_updated(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    lam.update_function_code(FunctionName=name, ZipFile=py(PY_MARKED % "v3"))
    wait_updated(lam, name)

    for qualifier, marker, executed in [("1", "v1", "1"), ("2", "v2", "2"),
                                        ("$LATEST", "v3", "$LATEST"), (None, "v3", "$LATEST")]:
        kwargs = {"Qualifier": qualifier} if qualifier else {}
        resp, out = invoke(lam, name, {}, **kwargs)
        assert_ok(resp)
        assert resp["ExecutedVersion"] == executed, qualifier
        assert out["marker"] == marker, qualifier
        assert out["version"] == executed, qualifier
        assert out["arn"] == function_arn(name, qualifier), qualifier

    # A qualified ARN as FunctionName works like Qualifier.
    resp, out = invoke(lam, function_arn(name, "1"), {})
    assert (resp["ExecutedVersion"], out["marker"]) == ("1", "v1")

    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    resp, out = invoke(lam, name, {}, Qualifier="live")
    assert resp["ExecutedVersion"] == "1"
    assert out["marker"] == "v1"
    assert out["version"] == "1"
    assert out["arn"] == function_arn(name, "live")


def test_alias_weighted_routing_reaches_both_versions(lam, deploy):
    name = deploy(zip_bytes=py(PY_MARKED % "v1"))
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=py(PY_MARKED % "v2"))
    wait_updated(lam, name)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    seen = {}
    for _ in range(60):
        resp, out = invoke(lam, name, {}, Qualifier="canary")
        assert_ok(resp)
        v = resp["ExecutedVersion"]
        assert out["marker"] == {"1": "v1", "2": "v2"}[v], (v, out)
        assert out["arn"] == function_arn(name, "canary")
        seen[v] = seen.get(v, 0) + 1
    assert set(seen) == {"1", "2"}, seen


# ---------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------
def test_reserved_concurrency_zero_throttles(lam, deploy):
    name = deploy()
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with lambda_error("TooManyRequestsException", 429) as info:
        invoke(lam, name, {})
    assert info.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName=name)
    resp, out = invoke(lam, name, {"again": True})
    assert_ok(resp)
    assert out == {"echo": {"again": True}}


def test_reserved_concurrency_one_throttles_the_second_concurrent_invoke(lam, deploy, endpoint):
    name = deploy(zip_bytes=py(
        "import time\n"
        "def lambda_handler(event, context):\n"
        "    time.sleep(1.5)\n"
        "    return 'slept'\n"), Timeout=10)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    barrier = threading.Barrier(2)
    results = []

    def call():
        client = make_client(endpoint, "lambda")
        barrier.wait()
        try:
            resp, out = invoke(client, name, {})
            results.append(("ok", resp["StatusCode"], out))
        except ClientError as e:
            results.append(("error", e.response["ResponseMetadata"]["HTTPStatusCode"],
                            e.response["Error"]["Code"]))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [("error", 429, "TooManyRequestsException"), ("ok", 200, "slept")], results


# ---------------------------------------------------------------------------
# Updates
# ---------------------------------------------------------------------------
PY_ENV_READER = """
import os
def lambda_handler(event, context):
    return {"color": os.environ.get("COLOR"), "memory": context.memory_limit_in_mb,
            "marker": %r}
"""


def test_update_configuration_takes_effect_on_next_invoke(lam, deploy):
    name = deploy(zip_bytes=py(PY_ENV_READER % "a"), Environment={"Variables": {"COLOR": "red"}})
    resp, out = invoke(lam, name, {})
    assert (out["color"], int(out["memory"])) == ("red", 128)
    lam.update_function_configuration(FunctionName=name, MemorySize=256,
                                      Environment={"Variables": {"COLOR": "blue"}})
    wait_updated(lam, name)
    resp, out = invoke(lam, name, {})
    assert_ok(resp)
    assert (out["color"], int(out["memory"])) == ("blue", 256)


def test_update_code_takes_effect_on_next_invoke(lam, deploy):
    name = deploy(zip_bytes=py(PY_ENV_READER % "old"))
    assert invoke(lam, name, {})[1]["marker"] == "old"
    lam.update_function_code(FunctionName=name, ZipFile=py(PY_ENV_READER % "new"))
    wait_updated(lam, name)
    assert invoke(lam, name, {})[1]["marker"] == "new"


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------
def test_python_layer_is_importable(lam, deploy):
    layer = lam.publish_layer_version(
        LayerName=unique_name("pylayer"), CompatibleRuntimes=["python3.12"],
        Content={"ZipFile": make_zip({"python/mylib.py": "VALUE = 'from the layer'\n"
                                      "def shout(s):\n    return s.upper() + '!'\n"})})
    name = deploy(zip_bytes=py(
        "import mylib\n"
        "def lambda_handler(event, context):\n"
        "    return {'value': mylib.VALUE, 'shout': mylib.shout(event['s'])}\n"),
        Layers=[layer["LayerVersionArn"]])
    resp, out = invoke(lam, name, {"s": "hey"})
    assert_ok(resp)
    assert out == {"value": "from the layer", "shout": "HEY!"}


def test_node_layer_module_is_requirable(lam, deploy):
    layer = lam.publish_layer_version(
        LayerName=unique_name("nodelayer"), CompatibleRuntimes=["nodejs20.x"],
        Content={"ZipFile": make_zip({
            "nodejs/node_modules/mylib/index.js":
                "module.exports = { value: 'node layer', twice: (n) => n * 2 };\n"})})
    name = deploy(runtime=NODE_RUNTIME, zip_bytes=node_zip(
        "const mylib = require('mylib');\n"
        "exports.handler = async (event) => ({ value: mylib.value, twice: mylib.twice(event.n) });\n"),
        Layers=[layer["LayerVersionArn"]])
    resp, out = invoke(lam, name, {"n": 21})
    assert_ok(resp)
    assert out == {"value": "node layer", "twice": 42}


# ---------------------------------------------------------------------------
# provided.al2023
# ---------------------------------------------------------------------------
def test_provided_runtime_with_bash_bootstrap(lam, deploy, logs):
    name = deploy(runtime="provided.al2023", handler="function.handler", zip_bytes=provided_zip())
    for n in (1, 2):
        resp, out = invoke(lam, name, {"n": n, "text": "hi"})
        assert_ok(resp)
        assert resp["ExecutedVersion"] == "$LATEST"
        assert out == {"handler": "function.handler", "function": name,
                       "requestId": request_id(resp), "event": {"n": n, "text": "hi"}}
    msgs = wait_log_lines(logs, f"/aws/lambda/{name}",
                          lambda m: count_lines(m, "REPORT RequestId:") >= 2)
    assert any(m.startswith("bash runtime handling ") for m in msgs), msgs


def test_provided_without_bootstrap_fails_the_invoke(lam, deploy):
    """AWS answers 200 with FunctionError and Runtime.InvalidEntrypoint
    ("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")."""
    name = deploy(runtime="provided.al2023", handler="function.handler",
                  zip_bytes=make_zip({"README.txt": "no bootstrap here\n"}))
    resp, out = invoke(lam, name, {})
    assert_unhandled(resp)
    assert out["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in out["errorMessage"]


# ---------------------------------------------------------------------------
# AWS CLI
# ---------------------------------------------------------------------------
def cli_major_version(endpoint) -> int:
    out = run_aws(endpoint, "--version")
    text = (out.stdout + out.stderr).strip()  # "aws-cli/2.15.0 Python/..." (v1 wrote to stderr)
    return int(text.split("/", 1)[1].split(".", 1)[0])


def test_cli_invoke_writes_the_result_file(echo_fn, endpoint, tmp_path):
    # CLI v2 reads blobs as base64 unless told otherwise; v1 (no such option)
    # always passes the payload as is.
    binary_format = (["--cli-binary-format", "raw-in-base64-out"]
                     if cli_major_version(endpoint) >= 2 else [])
    proc = run_aws(endpoint, "lambda", "invoke", "--function-name", echo_fn,
                   "--payload", '{"a":1}', *binary_format, "out.json", cwd=tmp_path)
    meta = json.loads(proc.stdout)
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    assert json.loads((tmp_path / "out.json").read_text()) == {"echo": {"a": 1}}
