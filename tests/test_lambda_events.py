"""Lambda's running side, asynchronous and event-driven: InvocationType=Event
with OnSuccess / OnFailure destinations, retries (two, after 1 and 2 minutes,
driven by moving Virga's clock), the dead-letter queue, SQS event source
mappings (with ReportBatchItemFailures and a redrive policy), DynamoDB stream
mappings (and their OnFailure destination), S3 notifications to a function, and
the photo pipeline: an S3 upload resized by a Pillow function into a second
bucket.

Work that happens in the background is awaited by polling with short sleeps
under a deadline of at most 15 seconds."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from test_lambda_util import (  # noqa: F401  (fixtures)
    ACCOUNT, count_lines, create_function, ddb, deploy, function_arn, invoke, lam,
    lambda_session_client, log_events, make_mapping, make_table, python_zip, queue_arn_of,
    queue_depth, receive_one, request_id, s3_keys, sqs, wait_for, wait_log_lines,
)
from virga_testlib import REGION, unique_name

PY_DOUBLER = """
def lambda_handler(event, context):
    return {"doubled": event["n"] * 2}
"""

PY_FAILING = """
def lambda_handler(event, context):
    print("failing on", event)
    raise RuntimeError("always fails")
"""


@pytest.fixture
def new_queue(sqs):
    """Factory: new_queue(**attributes) -> (url, arn)."""
    def _make(**attributes):
        url = sqs.create_queue(QueueName=unique_name("q"),
                               Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]
        return url, queue_arn_of(sqs, url)
    return _make


def record_of(msg) -> dict:
    return json.loads(msg["Body"])


# ---------------------------------------------------------------------------
# Asynchronous invocation and destinations
# ---------------------------------------------------------------------------
def test_event_invoke_on_success_destination(lam, deploy, sqs, new_queue):
    url, arn = new_queue()
    name = deploy(zip_bytes=python_zip(PY_DOUBLER))
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}})
    resp, out = invoke(lam, name, {"n": 21}, InvocationType="Event")
    assert resp["StatusCode"] == 202
    assert out is None
    rec = record_of(receive_one(sqs, url))
    assert rec["version"] == "1.0"
    assert rec["timestamp"]
    ctx = rec["requestContext"]
    assert ctx["condition"] == "Success"
    assert ctx["requestId"] == request_id(resp)
    assert ctx["functionArn"] == function_arn(name, "$LATEST")
    assert ctx["approximateInvokeCount"] == 1
    assert rec["requestPayload"] == {"n": 21}
    assert rec["responseContext"]["statusCode"] == 200
    assert rec["responseContext"]["executedVersion"] == "$LATEST"
    assert "functionError" not in rec["responseContext"]
    assert rec["responsePayload"] == {"doubled": 42}


def test_event_invoke_on_failure_destination_without_retries(lam, deploy, sqs, new_queue):
    url, arn = new_queue()
    name = deploy(zip_bytes=python_zip(PY_FAILING))
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}})
    resp, _ = invoke(lam, name, {"order": 1}, InvocationType="Event")
    assert resp["StatusCode"] == 202
    rec = record_of(receive_one(sqs, url))
    assert rec["version"] == "1.0"
    ctx = rec["requestContext"]
    assert ctx["condition"] == "RetriesExhausted"
    assert ctx["requestId"] == request_id(resp)
    assert ctx["functionArn"] == function_arn(name, "$LATEST")
    assert ctx["approximateInvokeCount"] == 1
    assert rec["requestPayload"] == {"order": 1}
    assert rec["responseContext"]["statusCode"] == 200
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert rec["responsePayload"]["errorMessage"] == "always fails"
    assert rec["responsePayload"]["errorType"] == "RuntimeError"


def test_event_invoke_on_success_destination_of_an_alias(lam, deploy, sqs, new_queue):
    url, arn = new_queue()
    name = deploy(zip_bytes=python_zip(PY_DOUBLER))
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="prod",
        DestinationConfig={"OnSuccess": {"Destination": arn}})
    resp, _ = invoke(lam, name, {"n": 5}, InvocationType="Event", Qualifier="prod")
    assert resp["StatusCode"] == 202
    rec = record_of(receive_one(sqs, url))
    assert rec["requestContext"]["functionArn"] == function_arn(name, "prod")
    assert rec["responseContext"]["executedVersion"] == "1"
    assert rec["responsePayload"] == {"doubled": 10}


@pytest.mark.virga_only
def test_event_retries_follow_the_clock(clock_server, time_machine):
    """Two retries by default, the first about a minute after the first attempt,
    the second two minutes after that; then the OnFailure destination records
    three attempts. Virga's clock is moved instead of waiting."""
    srv = clock_server
    lam, sqs, logs = srv.client("lambda"), srv.client("sqs"), srv.client("logs")
    url = sqs.create_queue(QueueName=unique_name("fail"))["QueueUrl"]
    arn = queue_arn_of(sqs, url)
    name, _, _ = create_function(lam, zip_bytes=python_zip(PY_FAILING))
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}})
    group = f"/aws/lambda/{name}"
    resp, _ = invoke(lam, name, {"try": "me"}, InvocationType="Event")
    assert resp["StatusCode"] == 202

    def attempts_done(n):
        return wait_log_lines(logs, group, lambda m: count_lines(m, "REPORT RequestId:") >= n)

    def assert_attempts(n):
        # A due attempt runs (and logs) well within this pause.
        time.sleep(0.5)
        msgs = [e["message"] for e in log_events(logs, group)]
        assert count_lines(msgs, "START RequestId:") == n, msgs
        assert queue_depth(sqs, url) == 0, "no destination record before the last attempt"

    attempts_done(1)
    assert_attempts(1)          # no retry without the clock moving
    time_machine.advance(srv, 50)
    assert_attempts(1)          # nor before a minute has passed
    time_machine.advance(srv, 11)
    attempts_done(2)
    assert_attempts(2)
    time_machine.advance(srv, 100)
    assert_attempts(2)          # the second retry waits two minutes
    time_machine.advance(srv, 21)
    msgs = attempts_done(3)
    rec = record_of(receive_one(sqs, url))
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 3
    assert rec["requestContext"]["requestId"] == request_id(resp)
    assert rec["requestPayload"] == {"try": "me"}
    # Every attempt ran under the invocation's request id.
    starts = [m for m in msgs if m.startswith("START RequestId:")]
    assert len(starts) == 3
    assert all(m.startswith(f"START RequestId: {request_id(resp)}") for m in starts), starts


def test_dead_letter_queue_receives_the_original_event(lam, deploy, sqs, new_queue):
    dlq_url, dlq_arn = new_queue()
    name = deploy(zip_bytes=python_zip(PY_FAILING), DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    event = {"order": 7, "items": ["a", "b"]}
    resp, _ = invoke(lam, name, event, InvocationType="Event")
    assert resp["StatusCode"] == 202
    msg = receive_one(sqs, dlq_url)
    assert json.loads(msg["Body"]) == event
    attrs = msg.get("MessageAttributes", {})
    assert attrs["RequestID"]["StringValue"] == request_id(resp)
    assert "ErrorCode" in attrs and "ErrorMessage" in attrs, attrs


# ---------------------------------------------------------------------------
# SQS event source mappings
# ---------------------------------------------------------------------------
PY_SQS_RECORDER = """
import json, os, uuid, boto3
s3 = boto3.client("s3")
def lambda_handler(event, context):
    failures = []
    for r in event["Records"]:
        if r["body"] == "bad":
            s3.put_object(Bucket=os.environ["BUCKET"], Key="bad/" + uuid.uuid4().hex, Body=b"")
            failures.append({"itemIdentifier": r["messageId"]})
            continue
        meta = {k: r[k] for k in ("messageId", "eventSource", "eventSourceARN", "awsRegion", "body")}
        meta["receiveCount"] = r["attributes"].get("ApproximateReceiveCount")
        s3.put_object(Bucket=os.environ["BUCKET"],
                      Key="good/" + r["body"] + "/" + uuid.uuid4().hex,
                      Body=json.dumps(meta).encode())
    return {"batchItemFailures": failures}
"""


def test_sqs_mapping_processes_every_message(lam, deploy, make_mapping, sqs, new_queue, s3, bucket):
    url, arn = new_queue()
    name = deploy(zip_bytes=python_zip(PY_SQS_RECORDER), Timeout=30,
                  Environment={"Variables": {"BUCKET": bucket}})
    make_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    sent = {}
    for i in range(5):
        sent[f"m{i}"] = sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"]
    keys = wait_for(lambda: (lambda k: k if len(k) >= 5 else None)(s3_keys(s3, bucket, "good/")),
                    what="5 processed messages")
    assert sorted(k.split("/")[1] for k in keys) == sorted(sent)
    for key in keys:
        meta = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert meta["messageId"] == sent[meta["body"]]
        assert meta["eventSource"] == "aws:sqs"
        assert meta["eventSourceARN"] == arn
        assert meta["awsRegion"] == REGION
    # Processed messages are deleted from the queue.
    wait_for(lambda: queue_depth(sqs, url) == 0, what="an empty queue")


def test_sqs_mapping_report_batch_item_failures_and_redrive(
        lam, deploy, make_mapping, sqs, new_queue, s3, bucket):
    """The message the function reports as failed comes back (VisibilityTimeout=1)
    until the redrive policy moves it to the dead-letter queue; the others are
    deleted after one successful processing."""
    dlq_url, dlq_arn = new_queue()
    url, arn = new_queue(VisibilityTimeout=1, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    name = deploy(zip_bytes=python_zip(PY_SQS_RECORDER), Timeout=30,
                  Environment={"Variables": {"BUCKET": bucket}})
    make_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10,
                 FunctionResponseTypes=["ReportBatchItemFailures"])
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "good1"}, {"Id": "2", "MessageBody": "bad"},
        {"Id": "3", "MessageBody": "good2"}])
    dead = receive_one(sqs, dlq_url)
    assert dead["Body"] == "bad"
    # It was handed to the function (and reported failed) once per receive.
    assert len(s3_keys(s3, bucket, "bad/")) >= 2
    wait_for(lambda: queue_depth(sqs, url) == 0, what="an empty source queue")
    good = s3_keys(s3, bucket, "good/")
    assert sorted(k.split("/")[1] for k in good) == ["good1", "good2"], good
    assert queue_depth(sqs, dlq_url) == 0, "only the failed message goes to the DLQ"


# ---------------------------------------------------------------------------
# DynamoDB stream mappings
# ---------------------------------------------------------------------------
PY_STREAM_COPIER = """
import os, boto3
ddb = boto3.client("dynamodb")
def lambda_handler(event, context):
    for r in event["Records"]:
        item = {"pk": r["dynamodb"]["Keys"]["pk"], "eventName": {"S": r["eventName"]},
                "eventSource": {"S": r["eventSource"]}}
        if "NewImage" in r["dynamodb"]:
            item["color"] = r["dynamodb"]["NewImage"]["color"]
        ddb.put_item(TableName=os.environ["TARGET"], Item=item)
"""


def test_dynamodb_stream_mapping_copies_inserts(lam, deploy, make_mapping, make_table, ddb):
    source, stream_arn = make_table(stream="NEW_AND_OLD_IMAGES")
    assert stream_arn
    target, _ = make_table()
    name = deploy(zip_bytes=python_zip(PY_STREAM_COPIER), Timeout=30,
                  Environment={"Variables": {"TARGET": target}})
    make_mapping(EventSourceArn=stream_arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                 BatchSize=10)
    colors = {"k1": "red", "k2": "green", "k3": "blue"}
    for k, c in colors.items():
        ddb.put_item(TableName=source, Item={"pk": {"S": k}, "color": {"S": c}})

    def copied():
        items = ddb.scan(TableName=target)["Items"]
        return items if len(items) >= 3 else None
    items = wait_for(copied, what="3 copied stream records")
    got = {i["pk"]["S"]: (i["eventName"]["S"], i["eventSource"]["S"], i["color"]["S"]) for i in items}
    assert got == {k: ("INSERT", "aws:dynamodb", c) for k, c in colors.items()}


def test_dynamodb_stream_failure_goes_to_on_failure_destination(
        lam, deploy, make_mapping, make_table, ddb, sqs, new_queue):
    source, stream_arn = make_table(stream="NEW_AND_OLD_IMAGES")
    url, queue_arn = new_queue()
    name = deploy(zip_bytes=python_zip(PY_FAILING))
    make_mapping(EventSourceArn=stream_arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                 BatchSize=10, MaximumRetryAttempts=1,
                 DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    ddb.put_item(TableName=source, Item={"pk": {"S": "doomed"}})
    rec = record_of(receive_one(sqs, url))
    info = rec["DDBStreamBatchInfo"]
    assert info["streamArn"] == stream_arn
    assert info["batchSize"] == 1
    assert info["shardId"]
    assert info["startSequenceNumber"] and info["endSequenceNumber"]
    ctx = rec["requestContext"]
    assert ctx["condition"] == "RetryAttemptsExhausted"
    # The first attempt and one retry.
    assert ctx["approximateInvokeCount"] == 2
    assert ctx["functionArn"].startswith(function_arn(name))


# ---------------------------------------------------------------------------
# S3 notifications to a function
# ---------------------------------------------------------------------------
PY_UPPERCASER = """
import os, urllib.parse, boto3
s3 = boto3.client("s3")
def lambda_handler(event, context):
    for r in event["Records"]:
        bucket = r["s3"]["bucket"]["name"]
        raw_key = r["s3"]["object"]["key"]
        key = urllib.parse.unquote_plus(raw_key)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=os.environ["DEST"], Key=key, Body=body.upper(),
                      Metadata={"event-name": r["eventName"], "event-source": r["eventSource"],
                                "raw-key": raw_key, "size": str(r["s3"]["object"]["size"])})
"""


def allow_s3(lam, name, bucket):
    lam.add_permission(FunctionName=name, StatementId="s3-invoke", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}",
                       SourceAccount=ACCOUNT)


def notify_function(s3, bucket, name, **filters):
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "LambdaFunctionArn": function_arn(name), "Events": ["s3:ObjectCreated:*"], **filters}]})


def wait_object(s3, bucket, key, timeout=15.0):
    def fetch():
        try:
            return s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            return None
    return wait_for(fetch, timeout, what=f"s3://{bucket}/{key}")


def test_s3_notification_invokes_function(lam, deploy, s3, make_bucket):
    src, dst = make_bucket(), make_bucket()
    name = deploy(zip_bytes=python_zip(PY_UPPERCASER), Timeout=30,
                  Environment={"Variables": {"DEST": dst}})
    allow_s3(lam, name, src)
    notify_function(s3, src, name)
    s3.put_object(Bucket=src, Key="notes/hello world.txt", Body=b"hello world")
    got = wait_object(s3, dst, "notes/hello world.txt")
    assert got["Body"].read() == b"HELLO WORLD"
    meta = got["Metadata"]
    assert meta["event-name"] == "ObjectCreated:Put"
    assert meta["event-source"] == "aws:s3"
    # Keys in S3 event notifications are URL-encoded (a space becomes "+").
    assert meta["raw-key"] == "notes/hello+world.txt"
    assert meta["size"] == "11"


# ---------------------------------------------------------------------------
# The photo pipeline: upload -> Pillow thumbnail in a second bucket
# ---------------------------------------------------------------------------
PY_THUMBNAILER = """
import io, os, urllib.parse
import boto3
from PIL import Image
s3 = boto3.client("s3")
def lambda_handler(event, context):
    for r in event["Records"]:
        bucket = r["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(r["s3"]["object"]["key"])
        image = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        thumb = image.convert("RGB").resize((64, 64))
        out = io.BytesIO()
        thumb.save(out, format="PNG")
        s3.put_object(Bucket=os.environ["THUMBS"], Key="thumbs/" + key, Body=out.getvalue(),
                      ContentType="image/png")
    return {"done": len(event["Records"])}
"""

PY_PROBE = """
import platform, sys
def lambda_handler(event, context):
    return {"python": "%d.%d" % sys.version_info[:2], "machine": platform.machine()}
"""


@pytest.fixture(scope="module")
def thumbnailer_zip(lambda_session_client, tmp_path_factory):
    """The thumbnailer's package with Pillow installed for the interpreter and
    machine the functions run on (asked of a probe function), as one builds a
    package for Lambda: pip --target with --platform/--python-version."""
    lam = lambda_session_client
    name, _, _ = create_function(lam, zip_bytes=python_zip(PY_PROBE))
    try:
        _, probe = invoke(lam, name, {})
    finally:
        lam.delete_function(FunctionName=name)
    machine = {"arm64": "aarch64"}.get(probe["machine"], probe["machine"])
    target = tmp_path_factory.mktemp("pillow")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(target), "--only-binary=:all:", "--implementation", "cp",
           "--python-version", probe["python"],
           "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
           "Pillow"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"pip install Pillow failed:\n{proc.stdout}\n{proc.stderr}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lambda_function.py", PY_THUMBNAILER)
        for path in sorted(Path(target).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(target).as_posix())
    return buf.getvalue()


def png(width: int, height: int) -> bytes:
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (width, height), (30, 120, 200))
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4),
                                  fill=(250, 200, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_photo_pipeline_makes_a_thumbnail(lam, deploy, s3, make_bucket, thumbnailer_zip):
    from PIL import Image
    photos, thumbs = make_bucket(), make_bucket()
    name = deploy(zip_bytes=thumbnailer_zip, Timeout=30, MemorySize=512,
                  Environment={"Variables": {"THUMBS": thumbs}})
    allow_s3(lam, name, photos)
    notify_function(s3, photos, name)
    s3.put_object(Bucket=photos, Key="holiday/beach.png", Body=png(640, 480),
                  ContentType="image/png")
    got = wait_object(s3, thumbs, "thumbs/holiday/beach.png")
    assert got["ContentType"] == "image/png"
    thumb = Image.open(io.BytesIO(got["Body"].read()))
    assert thumb.format == "PNG"
    assert thumb.size == (64, 64)
    # The centre of the picture (the yellow disc) survives the resize.
    r, g, b = thumb.getpixel((32, 32))[:3]
    assert r > 200 and g > 150 and b < 100, (r, g, b)
