"""Dead-letter queue redrive back to the source queue (StartMessageMoveTask)."""
import json

import pytest
from botocore.exceptions import ClientError

from test_sqs_util import make_queue, queue_arn, sqs  # noqa: F401 (fixtures)
from virga_testlib import make_client, unique_name


def _arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _drain(sqs, url):
    bodies = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_dead_letters_move_back_to_their_source(endpoint):
    sqs = make_client(endpoint, "sqs")
    dlq = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = _arn(sqs, dlq)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    sources = [sqs.create_queue(QueueName=unique_name("src"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
               for _ in range(2)]
    for n, src in enumerate(sources):
        for i in range(3):
            sqs.send_message(QueueUrl=src, MessageBody=f"q{n}-m{i}")
        # Received once without delete: the next receive dead-letters them.
        assert len(sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]) == 3
        assert "Messages" not in sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10)
    assert sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "6"
    sources_listed = sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]
    assert sorted(sources_listed) == sorted(sources)

    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle
    task = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
    assert task["Status"] == "COMPLETED"
    assert task["ApproximateNumberOfMessagesMoved"] == 6
    assert task["ApproximateNumberOfMessagesToMove"] == 6
    for n, src in enumerate(sources):
        assert sorted(_drain(sqs, src)) == [f"q{n}-m{i}" for i in range(3)]
    assert _drain(sqs, dlq) == []


def test_move_task_to_explicit_destination_and_errors(endpoint):
    sqs = make_client(endpoint, "sqs")
    dlq = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dest = sqs.create_queue(QueueName=unique_name("dest"))["QueueUrl"]
    for i in range(4):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m{i}")
    sqs.start_message_move_task(SourceArn=_arn(sqs, dlq), DestinationArn=_arn(sqs, dest))
    assert sorted(_drain(sqs, dest)) == [f"m{i}" for i in range(4)]
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:000000000000:" + unique_name("none"))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle="bm90LWEtdGFzaw")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ---------------------------------------------------------------------------
# RedriveAllowPolicy: which source queues may use a dead-letter queue
# ---------------------------------------------------------------------------
def _redrive(dlq_arn):
    return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})


def test_redrive_allow_policy_deny_all_refuses_sources(sqs, make_queue):
    dlq_name, dlq_url = make_queue(attributes={
        "RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})})
    _, src_url = make_queue()
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=src_url, Attributes={"RedrivePolicy": _redrive(queue_arn(dlq_name))})
    err = info.value.response["Error"]
    assert err["Code"] == "InvalidParameterValue"
    assert "Dead-letter target owner does not allow this source queue to redrive messages" in err["Message"]
    with pytest.raises(ClientError):
        make_queue(attributes={"RedrivePolicy": _redrive(queue_arn(dlq_name))})


def test_redrive_allow_policy_by_queue_lists_allowed_sources(sqs, make_queue):
    allowed_name, allowed_url = make_queue()
    _, other_url = make_queue()
    dlq_name, _ = make_queue(attributes={"RedriveAllowPolicy": json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn(allowed_name)]})})
    sqs.set_queue_attributes(QueueUrl=allowed_url, Attributes={"RedrivePolicy": _redrive(queue_arn(dlq_name))})
    assert "RedrivePolicy" in sqs.get_queue_attributes(QueueUrl=allowed_url, AttributeNames=["All"])["Attributes"]
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=other_url, Attributes={"RedrivePolicy": _redrive(queue_arn(dlq_name))})
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"


@pytest.mark.parametrize("policy", [
    {"redrivePermission": "sometimes"},
    {"redrivePermission": "byQueue"},
    {"redrivePermission": "allowAll", "sourceQueueArns": ["arn:aws:sqs:us-east-1:000000000000:x"]},
])
def test_malformed_redrive_allow_policy_is_rejected(sqs, make_queue, policy):
    _, url = make_queue()
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": json.dumps(policy)})
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
