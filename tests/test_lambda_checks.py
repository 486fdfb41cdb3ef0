"""Lambda: filter criteria on event source mappings, and the input checks AWS makes
(client context, regions in ARNs, duplicate mappings, EventSourceToken, tags,
architectures, the JSON log format's environment)."""
from __future__ import annotations

import base64
import json

import pytest

from test_lambda_util import (  # noqa: F401  (fixtures)
    create_function, deploy, function_arn, invoke, lam, lam_unchecked, lambda_error,
    lambda_session_client,
    make_queue, python_zip, queue_depth, sqs, wait_for,
)
from virga_testlib import unique_name

RECORDER = """
import boto3, json, os
def lambda_handler(event, context):
    for r in event["Records"]:
        boto3.client("sqs").send_message(QueueUrl=os.environ["OUT"], MessageBody=r["body"])
"""


def test_sqs_filter_criteria_invoke_only_for_matching_messages(lam, sqs, make_queue, deploy):
    out_url, _ = make_queue()
    in_url, in_arn = make_queue()
    name = deploy(zip_bytes=python_zip(RECORDER), Environment={"Variables": {"OUT": out_url}})
    lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=in_arn, BatchSize=1,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"k": ["yes"]}})}]})
    for body in [json.dumps({"k": "no"}), "plain text", json.dumps({"k": "yes"})]:
        sqs.send_message(QueueUrl=in_url, MessageBody=body)
    got = wait_for(lambda: sqs.receive_message(QueueUrl=out_url, WaitTimeSeconds=1).get("Messages"),
                   what="the matching message")
    assert [json.loads(m["Body"]) for m in got] == [{"k": "yes"}]
    # Filtered-out messages are deleted from the source queue, not redelivered.
    wait_for(lambda: queue_depth(sqs, in_url) == 0, what="source queue empty")
    assert sqs.receive_message(QueueUrl=out_url, WaitTimeSeconds=1).get("Messages") is None


def test_invalid_filter_pattern_is_rejected(lam, make_queue, deploy):
    _, arn = make_queue()
    name = deploy()
    with lambda_error("InvalidParameterValueException", 400):
        lam.create_event_source_mapping(
            FunctionName=name, EventSourceArn=arn,
            FilterCriteria={"Filters": [{"Pattern": "{not json"}]})


def test_duplicate_mapping_is_a_conflict(lam, make_queue, deploy):
    _, arn = make_queue()
    name = deploy()
    first = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn)
    with lambda_error("ResourceConflictException", 409):
        lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn)
    lam.delete_event_source_mapping(UUID=first["UUID"])


@pytest.mark.parametrize("param", [
    {"StartingPosition": "LATEST"},
    {"MaximumRetryAttempts": 2},
    {"BisectBatchOnFunctionError": True},
    {"MaximumRecordAgeInSeconds": 60},
    {"ParallelizationFactor": 2},
    {"TumblingWindowInSeconds": 30},
    {"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:x"}}},
])
def test_sqs_mapping_refuses_stream_only_parameters(lam, make_queue, deploy, param):
    _, arn = make_queue()
    name = deploy()
    (key,) = param
    with lambda_error("InvalidParameterValueException", 400,
                      f"{key} is not valid for SQS event sources."):
        lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, **param)
    # Nor can an existing SQS mapping take them on.
    uuid = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn)["UUID"]
    try:
        if key != "StartingPosition":  # not an UpdateEventSourceMapping parameter
            with lambda_error("InvalidParameterValueException", 400,
                              f"{key} is not valid for SQS event sources."):
                lam.update_event_source_mapping(UUID=uuid, **param)
        assert key not in lam.get_event_source_mapping(UUID=uuid)
    finally:
        lam.delete_event_source_mapping(UUID=uuid)


@pytest.mark.parametrize("context", [
    "!!!not base64",
    base64.b64encode(b"not json").decode(),
    base64.b64encode(json.dumps({"custom": {"k": "v" * 4000}}).encode()).decode(),
])
def test_bad_client_context_is_rejected(lam, deploy, context):
    name = deploy()
    with lambda_error("InvalidRequestContentException", 400,
                      "Client context must be a valid Base64-encoded JSON object."):
        lam.invoke(FunctionName=name, ClientContext=context, Payload=b"{}")


def test_client_context_reaches_the_function(lam, deploy):
    name = deploy(zip_bytes=python_zip(
        "def lambda_handler(event, context):\n    return context.client_context.custom\n"))
    ctx = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
    _, out = invoke(lam, name, ClientContext=ctx)
    assert out == {"tenant": "t1"}


def test_function_arn_of_another_region_is_not_reachable(lam, deploy):
    name = deploy()
    other = function_arn(name).replace(":us-east-1:", ":us-west-2:")
    with lambda_error("ResourceNotFoundException", 404,
                      "Functions from 'us-west-2' are not reachable in this region ('us-east-1')"):
        lam.invoke(FunctionName=other, Payload=b"{}")


def test_event_source_token_becomes_a_condition(lam, deploy):
    name = deploy()
    resp = lam.add_permission(FunctionName=name, StatementId="alexa", Action="lambda:InvokeFunction",
                              Principal="alexa-appkit.amazon.com", EventSourceToken="amzn1.ask.skill.x")
    st = json.loads(resp["Statement"])
    assert st["Condition"] == {"StringEquals": {"lambda:EventSourceToken": "amzn1.ask.skill.x"}}


def test_more_than_50_tags_at_create_are_refused(lam):
    with lambda_error("InvalidParameterValueException", 400):
        create_function(lam, Tags={f"k{i}": "v" for i in range(51)}, wait=False)


def test_update_function_code_sets_architectures(lam, deploy):
    name = deploy()
    resp = lam.update_function_code(FunctionName=name, ZipFile=python_zip(), Architectures=["arm64"])
    assert resp["Architectures"] == ["arm64"]
    assert lam.get_function_configuration(FunctionName=name)["Architectures"] == ["arm64"]


def test_json_log_format_sets_the_runtime_environment(lam, deploy):
    name = deploy(zip_bytes=python_zip(
        "import os\ndef lambda_handler(event, context):\n"
        "    return [os.environ.get('AWS_LAMBDA_LOG_FORMAT'), os.environ.get('AWS_LAMBDA_LOG_LEVEL')]\n"),
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})
    _, out = invoke(lam, name)
    assert out == ["JSON", "DEBUG"]
    cfg = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert cfg["LogFormat"] == "JSON" and cfg["ApplicationLogLevel"] == "DEBUG"
    assert cfg["SystemLogLevel"] == "INFO"


def test_cold_start_logs_init_start_and_runtime_version(lam, deploy, virga_server):
    name = deploy()
    invoke(lam, name)
    logs = virga_server.client("logs")
    lines = wait_for(lambda: [e["message"] for e in logs.filter_log_events(
        logGroupName=f"/aws/lambda/{name}")["events"]], what="log lines")
    assert lines[0].startswith("INIT_START Runtime Version: python:3.12.")
    arn = lam.get_function_configuration(FunctionName=name)["RuntimeVersionConfig"]["RuntimeVersionArn"]
    assert lines[0].endswith(f"Runtime Version ARN: {arn}")


def test_timeout_report_shows_memory_used(lam, deploy, virga_server):
    name = deploy(zip_bytes=python_zip(
        "import time\ndef lambda_handler(event, context):\n    time.sleep(5)\n"), Timeout=1)
    resp, out = invoke(lam, name, LogType="Tail")
    assert out["errorType"] == "Sandbox.Timedout"
    tail = base64.b64decode(resp["LogResult"]).decode()
    report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
    used = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
    assert used > 0
    assert "Status: timeout" in report


@pytest.mark.virga_only
def test_stream_records_older_than_maximum_record_age_go_to_on_failure(start_server):
    """A failing function keeps being retried (MaximumRetryAttempts -1) until its
    records are older than MaximumRecordAgeInSeconds; then their metadata goes to
    the OnFailure destination with condition RecordAgeExceeded."""
    srv = start_server()
    lam, ddb, sqs = srv.client("lambda"), srv.client("dynamodb"), srv.client("sqs")
    table = unique_name("t")
    stream = ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )["TableDescription"]["LatestStreamArn"]
    url = sqs.create_queue(QueueName=unique_name("failed"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name, _, _ = create_function(lam, zip_bytes=python_zip(
        "def lambda_handler(event, context):\n    raise RuntimeError('no')\n"))
    lam.create_event_source_mapping(
        FunctionName=name, EventSourceArn=stream, StartingPosition="TRIM_HORIZON",
        MaximumRecordAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": arn}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "old"}})
    # Retried while young: nothing in the destination yet.
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages") is None
    srv.advance_clock(120)
    got = wait_for(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
                   what="the failure record")
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert record["DDBStreamBatchInfo"]["streamArn"] == stream


def test_logged_traceback_is_one_event_and_the_next_print_another(lam, deploy, virga_server):
    name = deploy(zip_bytes=python_zip(
        "import logging\n"
        "def lambda_handler(event, context):\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError:\n"
        "        logging.getLogger().exception('it failed')\n"
        "    print('after the traceback')\n"))
    invoke(lam, name)
    logs = virga_server.client("logs")
    lines = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
    failed = [m for m in lines if "it failed" in m]
    assert len(failed) == 1
    assert "Traceback (most recent call last):" in failed[0]
    assert failed[0].rstrip().endswith("ZeroDivisionError: division by zero")
    assert "after the traceback" in lines


@pytest.mark.parametrize("field,kwargs", [
    ("handler", {"handler": "a b.c"}),
    ("environment.variables", {"Environment": {"Variables": {"X": "single-letter name"}}}),
    ("environment.variables", {"Environment": {"Variables": {"BAD-NAME": "v"}}}),
])
def test_model_patterns_are_checked(lam_unchecked, field, kwargs):
    with lambda_error("ValidationException", 400) as e:
        create_function(lam_unchecked, wait=False, **kwargs)
    assert f"at '{field}' failed to satisfy constraint" in e.value.response["Error"]["Message"]
    assert "regular expression pattern" in e.value.response["Error"]["Message"]


def test_all_digit_alias_name_is_refused(lam, deploy):
    name = deploy()
    with lambda_error("ValidationException", 400):
        lam.create_alias(FunctionName=name, Name="123", FunctionVersion="$LATEST")


def test_statement_id_pattern(lam, deploy):
    name = deploy()
    with lambda_error("ValidationException", 400):
        lam.add_permission(FunctionName=name, StatementId="bad sid!", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com")


@pytest.mark.parametrize("tags", [
    {"": "empty key"},
    {"k" * 129: "long key"},
    {"aws:reserved": "x"},
    {"key": "v" * 257},
])
def test_tag_rules(lam, lam_unchecked, deploy, tags):
    name = deploy()
    # (Newer botocore checks some of these itself: the server's answer is the point.)
    with lambda_error("InvalidParameterValueException", 400):
        lam_unchecked.tag_resource(Resource=function_arn(name), Tags=tags)
    assert lam.list_tags(Resource=function_arn(name))["Tags"] == {}


def test_master_region_lists_edge_replicas_only(lam, deploy):
    deploy()
    assert lam.list_functions(MasterRegion="us-east-1", FunctionVersion="ALL")["Functions"] == []
    with lambda_error("InvalidParameterValueException", 400):
        lam.list_functions(MasterRegion="us-east-1")


def test_code_from_a_missing_s3_object(lam, virga_server):
    s3 = virga_server.client("s3")
    bucket = unique_name("code")
    s3.create_bucket(Bucket=bucket)
    with lambda_error("InvalidParameterValueException", 400,
                      "Error occurred while GetObject. S3 Error Code: NoSuchKey. "
                      "S3 Error Message: The specified key does not exist."):
        create_function(lam, code={"S3Bucket": bucket, "S3Key": "missing.zip"}, wait=False)
