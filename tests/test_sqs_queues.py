"""SQS queues: create (idempotency, attributes, tags, names), GetQueueUrl, ListQueues,
Get/SetQueueAttributes, tagging, PurgeQueue, DeleteQueue and the queue URL forms."""
import json
import time

import pytest
from botocore.exceptions import ClientError

from test_sqs_util import (  # noqa: F401  (fixtures)
    ACCOUNT, attributes, counts, make_queue, queue, queue_arn, queue_name, receive, receive_until, sqs,
)
from virga_testlib import expect_error, make_client, unique_name

NON_EXISTENT = ("AWS.SimpleQueueService.NonExistentQueue", 400)


def test_create_queue_url_and_get_queue_url(sqs, endpoint):
    name = queue_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url == f"{endpoint}/{ACCOUNT}/{name}"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    # The owner account may be given explicitly.
    assert sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT)["QueueUrl"] == url


def test_queue_url_uses_the_host_the_client_used(port):
    client = make_client(f"http://localhost:{port}", "sqs")
    name = queue_name()
    url = client.create_queue(QueueName=name)["QueueUrl"]
    assert url == f"http://localhost:{port}/{ACCOUNT}/{name}"
    assert client.get_queue_url(QueueName=name)["QueueUrl"] == url
    # The same queue seen through 127.0.0.1 gets a 127.0.0.1 URL.
    other = make_client(f"http://127.0.0.1:{port}", "sqs")
    assert other.get_queue_url(QueueName=name)["QueueUrl"] == f"http://127.0.0.1:{port}/{ACCOUNT}/{name}"
    assert client.list_queues(QueueNamePrefix=name)["QueueUrls"] == [url]


def test_sqs_localhost_queue_url_is_accepted(sqs, queue, port):
    name, url = queue
    other = f"http://sqs.us-east-1.localhost:{port}/{ACCOUNT}/{name}"
    sqs.send_message(QueueUrl=other, MessageBody="via sqs.us-east-1.localhost")
    assert attributes(sqs, other, "QueueArn")["QueueArn"] == queue_arn(name)
    msgs = receive_until(sqs, url, 1)
    assert [m["Body"] for m in msgs] == ["via sqs.us-east-1.localhost"]


def test_client_on_sqs_localhost_endpoint(port):
    client = make_client(f"http://sqs.us-east-1.localhost:{port}", "sqs")
    name = queue_name()
    url = client.create_queue(QueueName=name)["QueueUrl"]
    assert url == f"http://sqs.us-east-1.localhost:{port}/{ACCOUNT}/{name}"
    client.send_message(QueueUrl=url, MessageBody="hello")
    assert [m["Body"] for m in receive_until(client, url, 1)] == ["hello"]


def test_create_same_name_same_attributes_returns_same_url(sqs):
    name = queue_name()
    attrs = {"VisibilityTimeout": "45", "DelaySeconds": "2"}
    first = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    second = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    assert first == second
    plain = queue_name()
    assert sqs.create_queue(QueueName=plain)["QueueUrl"] == sqs.create_queue(QueueName=plain)["QueueUrl"]


def test_create_same_name_different_attributes_fails(sqs):
    name = queue_name()
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    with expect_error("QueueAlreadyExists", 400):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})
    # The existing queue is untouched.
    assert attributes(sqs, url, "VisibilityTimeout")["VisibilityTimeout"] == "45"


def test_get_queue_url_unknown_queue(sqs):
    with expect_error(*NON_EXISTENT):
        sqs.get_queue_url(QueueName=queue_name())
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        sqs.get_queue_url(QueueName=queue_name())
    assert info.value.response["Error"]["Type"] == "Sender"


def test_operations_on_unknown_queue_url(sqs, endpoint):
    url = f"{endpoint}/{ACCOUNT}/{queue_name()}"
    with expect_error(*NON_EXISTENT):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    with expect_error(*NON_EXISTENT):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    with expect_error(*NON_EXISTENT):
        sqs.receive_message(QueueUrl=url)
    with expect_error(*NON_EXISTENT):
        sqs.purge_queue(QueueUrl=url)
    with expect_error(*NON_EXISTENT):
        sqs.delete_queue(QueueUrl=url)


@pytest.mark.parametrize("name", [
    "has space", "dot.in.name", "slash/name", "x" * 81,
])
def test_invalid_queue_names(sqs, name):
    with expect_error("InvalidParameterValue", 400):
        sqs.create_queue(QueueName=name)


def test_longest_valid_name_and_allowed_characters(sqs):
    name = ("Ab-_9" + unique_name("")).ljust(80, "z")[:80]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url.endswith("/" + name)


def test_fifo_queue_names_must_end_in_fifo(sqs):
    with expect_error("InvalidParameterValue", 400):
        sqs.create_queue(QueueName=queue_name(), Attributes={"FifoQueue": "true"})
    name = queue_name(fifo=True)
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert url.endswith(f"/{ACCOUNT}/{name}")
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url


def test_default_attributes(sqs, queue):
    name, url = queue
    before = time.time()
    got = attributes(sqs, url)
    expected = {
        "QueueArn": queue_arn(name),
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "VisibilityTimeout": "30",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
    }
    assert {k: got.get(k) for k in expected} == expected
    for key in ("CreatedTimestamp", "LastModifiedTimestamp"):
        assert got[key].isdigit(), (key, got[key])  # whole seconds since the epoch
        assert abs(int(got[key]) - before) < 60, (key, got[key])
    assert "FifoQueue" not in got and "ContentBasedDeduplication" not in got
    assert "RedrivePolicy" not in got


def test_fifo_queue_attributes(sqs, make_queue):
    name, url = make_queue(fifo=True)
    got = attributes(sqs, url)
    assert got["FifoQueue"] == "true"
    assert got["ContentBasedDeduplication"] == "false"
    assert got["QueueArn"] == queue_arn(name)
    _, url2 = make_queue(fifo=True, attributes={"ContentBasedDeduplication": "true"})
    assert attributes(sqs, url2, "ContentBasedDeduplication") == {"ContentBasedDeduplication": "true"}


def test_create_with_attributes(sqs, make_queue):
    attrs = {
        "VisibilityTimeout": "45",
        "DelaySeconds": "5",
        "MessageRetentionPeriod": "3600",
        "MaximumMessageSize": "2048",
        "ReceiveMessageWaitTimeSeconds": "2",
    }
    _, url = make_queue(attributes=attrs)
    got = attributes(sqs, url)
    assert {k: got[k] for k in attrs} == attrs


def test_get_only_requested_attributes(sqs, queue):
    _, url = queue
    got = attributes(sqs, url, "VisibilityTimeout", "DelaySeconds")
    assert got == {"VisibilityTimeout": "30", "DelaySeconds": "0"}
    # No AttributeNames at all: no attributes.
    resp = sqs.get_queue_attributes(QueueUrl=url)
    assert resp.get("Attributes", {}) == {}


def test_set_queue_attributes(sqs, queue):
    _, url = queue
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": "120", "DelaySeconds": "3", "MessageRetentionPeriod": "86400",
        "MaximumMessageSize": "4096", "ReceiveMessageWaitTimeSeconds": "1",
    })
    got = attributes(sqs, url)
    assert got["VisibilityTimeout"] == "120"
    assert got["DelaySeconds"] == "3"
    assert got["MessageRetentionPeriod"] == "86400"
    assert got["MaximumMessageSize"] == "4096"
    assert got["ReceiveMessageWaitTimeSeconds"] == "1"


def test_set_attributes_moves_last_modified_timestamp(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name())["QueueUrl"]
    before = attributes(sqs, url, "CreatedTimestamp", "LastModifiedTimestamp")
    assert abs(int(before["CreatedTimestamp"]) - int(before["LastModifiedTimestamp"])) <= 1
    time_machine.advance(clock_server, 1000)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "10"})
    after = attributes(sqs, url, "CreatedTimestamp", "LastModifiedTimestamp")
    assert after["CreatedTimestamp"] == before["CreatedTimestamp"]
    assert int(after["LastModifiedTimestamp"]) - int(before["LastModifiedTimestamp"]) >= 999


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "43201"),
    ("VisibilityTimeout", "-1"),
    ("VisibilityTimeout", "abc"),
    ("DelaySeconds", "901"),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", "1048577"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
    ("RedrivePolicy", "not json"),
])
def test_invalid_attribute_values(sqs, queue, attr, value):
    with expect_error("InvalidAttributeValue", 400):
        sqs.create_queue(QueueName=queue_name(), Attributes={attr: value})
    _, url = queue
    with expect_error("InvalidAttributeValue", 400):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={attr: value})


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "43200"), ("VisibilityTimeout", "0"), ("DelaySeconds", "900"),
    ("MessageRetentionPeriod", "60"), ("MessageRetentionPeriod", "1209600"),
    ("MaximumMessageSize", "1024"), ("MaximumMessageSize", "1048576"),
    ("ReceiveMessageWaitTimeSeconds", "20"),
])
def test_boundary_attribute_values_accepted(sqs, make_queue, attr, value):
    _, url = make_queue(attributes={attr: value})
    assert attributes(sqs, url, attr) == {attr: value}


def test_unknown_attribute_names(sqs, queue):
    with expect_error("InvalidAttributeName", 400):
        sqs.create_queue(QueueName=queue_name(), Attributes={"NoSuchAttribute": "1"})
    _, url = queue
    with expect_error("InvalidAttributeName", 400):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"NoSuchAttribute": "1"})
    with expect_error("InvalidAttributeName", 400):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])


def test_redrive_policy_roundtrip(sqs, make_queue):
    dlq_name, _ = make_queue()
    policy = {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": "3"}
    _, url = make_queue(attributes={"RedrivePolicy": json.dumps(policy)})
    got = json.loads(attributes(sqs, url, "RedrivePolicy")["RedrivePolicy"])
    assert got["deadLetterTargetArn"] == queue_arn(dlq_name)
    assert int(got["maxReceiveCount"]) == 3
    policy["maxReceiveCount"] = 5
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})
    got = json.loads(attributes(sqs, url, "RedrivePolicy")["RedrivePolicy"])
    assert int(got["maxReceiveCount"]) == 5


def test_list_queues_prefix(sqs):
    prefix = unique_name("lq")
    urls = sorted(sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3))
    other = sqs.create_queue(QueueName=unique_name("lq"))["QueueUrl"]
    listed = sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]
    assert sorted(listed) == urls
    assert other not in listed
    assert sqs.list_queues(QueueNamePrefix=unique_name("none")).get("QueueUrls", []) == []
    assert set(urls) <= set(sqs.list_queues()["QueueUrls"])


def test_list_queues_pagination(sqs):
    prefix = unique_name("pg")
    urls = {sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)}
    seen, pages = [], []
    kwargs = {"QueueNamePrefix": prefix, "MaxResults": 2}
    while True:
        resp = sqs.list_queues(**kwargs)
        page = resp.get("QueueUrls", [])
        assert len(page) <= 2
        pages.append(page)
        seen += page
        if "NextToken" not in resp:
            break
        kwargs["NextToken"] = resp["NextToken"]
        assert len(pages) < 10, pages
    assert len(pages) >= 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == urls
    # The paginator follows the same tokens.
    paginated = [u for p in sqs.get_paginator("list_queues").paginate(
        QueueNamePrefix=prefix, PaginationConfig={"PageSize": 3}) for u in p.get("QueueUrls", [])]
    assert sorted(paginated) == sorted(urls)


def test_tags(sqs, make_queue):
    _, url = make_queue(tags={"team": "queues", "env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "queues", "env": "test"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "prod", "cost": "42"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "queues", "env": "prod", "cost": "42"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team", "absent"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod", "cost": "42"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["env", "cost"])
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}


def test_untagged_queue_has_no_tags(sqs, queue):
    _, url = queue
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}


def test_purge_queue(sqs, queue):
    _, url = queue
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    assert counts(sqs, url)[0] == 5
    # One in flight as well: purge removes it too.
    assert len(receive(sqs, url)) == 1
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    # The queue itself remains usable.
    sqs.send_message(QueueUrl=url, MessageBody="after purge")
    assert [m["Body"] for m in receive_until(sqs, url, 1)] == ["after purge"]


def test_delete_queue(sqs, queue):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="doomed")
    sqs.delete_queue(QueueUrl=url)
    with expect_error(*NON_EXISTENT):
        sqs.get_queue_url(QueueName=name)
    with expect_error(*NON_EXISTENT):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    with expect_error(*NON_EXISTENT):
        sqs.delete_queue(QueueUrl=url)
    assert url not in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


def test_error_response_metadata(sqs):
    try:
        sqs.get_queue_url(QueueName=queue_name())
    except ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
        assert err["Message"]
        assert e.response["ResponseMetadata"]["RequestId"]
    else:
        pytest.fail("GetQueueUrl of an unknown queue succeeded")


def test_purge_queue_once_per_minute(clock_server, time_machine):
    sqs = clock_server.client("sqs")
    url = sqs.create_queue(QueueName=queue_name())["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    with expect_error("AWS.SimpleQueueService.PurgeQueueInProgress", 403):
        sqs.purge_queue(QueueUrl=url)
    time_machine.advance(clock_server, 61)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0)
