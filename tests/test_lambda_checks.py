"""Lambda: filter criteria on event source mappings, and the input checks AWS makes
(client context, regions in ARNs, duplicate mappings, EventSourceToken, tags,
architectures, the JSON log format's environment)."""
from __future__ import annotations

import base64
import json

import pytest

from test_lambda_util import (  # noqa: F401  (fixtures)
    create_function, deploy, function_arn, invoke, lam, lambda_error, lambda_session_client,
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
