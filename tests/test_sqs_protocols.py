"""SQS wire protocols: the legacy query protocol (form POST, XML responses) next to
the JSON protocol boto3 speaks, raw JSON-protocol responses and errors, and the AWS CLI."""
import base64
import json

from test_sqs_util import (  # noqa: F401  (fixtures)
    ACCOUNT, QUERY_NS, attributes, counts, find, find_all, json_call, make_queue, md5_hex,
    md5_of_attributes, queue, queue_arn, queue_name, query_call, receive_until, sqs, text, xml_root,
)


def query_ok(endpoint, params, path="/", action=None):
    resp = query_call(endpoint, params, path=path)
    assert resp.status == 200, (resp.status, resp.body)
    root = xml_root(resp.body)
    action = action or params["Action"]
    assert root.tag == f"{QUERY_NS}{action}Response", resp.body
    assert text(root, "ResponseMetadata", "RequestId"), resp.body
    return root


def query_error(endpoint, params, path="/"):
    resp = query_call(endpoint, params, path=path)
    root = xml_root(resp.body)
    assert root.tag == f"{QUERY_NS}ErrorResponse", resp.body
    assert text(root, "RequestId"), resp.body
    err = find(root, "Error")
    assert err is not None, resp.body
    return resp.status, text(err, "Type"), text(err, "Code"), text(err, "Message")


def query_attributes(elem, tag="Attribute"):
    return {text(a, "Name"): text(a, "Value") for a in find_all(elem, tag)}


# ---------------------------------------------------------------------------
# Query protocol
# ---------------------------------------------------------------------------
def test_query_create_queue_with_attributes_and_get_url(endpoint, sqs):
    name = queue_name()
    root = query_ok(endpoint, {
        "Action": "CreateQueue", "QueueName": name,
        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "45",
        "Attribute.2.Name": "DelaySeconds", "Attribute.2.Value": "3",
    })
    url = text(root, "CreateQueueResult", "QueueUrl")
    assert url == f"{endpoint}/{ACCOUNT}/{name}"

    root = query_ok(endpoint, {"Action": "GetQueueUrl", "QueueName": name})
    assert text(root, "GetQueueUrlResult", "QueueUrl") == url

    # Same attributes again: same URL; different: QueueAlreadyExists.
    root = query_ok(endpoint, {
        "Action": "CreateQueue", "QueueName": name,
        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "45",
        "Attribute.2.Name": "DelaySeconds", "Attribute.2.Value": "3",
    })
    assert text(root, "CreateQueueResult", "QueueUrl") == url
    status, typ, code, _ = query_error(endpoint, {
        "Action": "CreateQueue", "QueueName": name,
        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "46"})
    assert (status, typ, code) == (400, "Sender", "QueueAlreadyExists")

    root = query_ok(endpoint, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "All"})
    got = query_attributes(find(root, "GetQueueAttributesResult"))
    assert got["VisibilityTimeout"] == "45"
    assert got["DelaySeconds"] == "3"
    assert got["QueueArn"] == queue_arn(name)
    # The JSON protocol sees the same queue.
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert attributes(sqs, url, "VisibilityTimeout") == {"VisibilityTimeout": "45"}


def test_query_send_receive_delete(endpoint, sqs, queue):
    _, url = queue
    binary = b"\x00\xffbin"
    attrs = {
        "color": {"DataType": "String", "StringValue": "blue"},
        "size": {"DataType": "Number", "StringValue": "12"},
        "raw": {"DataType": "Binary", "BinaryValue": binary},
    }
    body = "query body & <xml> \u00e9"
    root = query_ok(endpoint, {
        "Action": "SendMessage", "QueueUrl": url, "MessageBody": body,
        "MessageAttribute.1.Name": "color", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "blue",
        "MessageAttribute.2.Name": "size", "MessageAttribute.2.Value.DataType": "Number",
        "MessageAttribute.2.Value.StringValue": "12",
        "MessageAttribute.3.Name": "raw", "MessageAttribute.3.Value.DataType": "Binary",
        "MessageAttribute.3.Value.BinaryValue": base64.b64encode(binary).decode(),
    })
    result = find(root, "SendMessageResult")
    message_id = text(result, "MessageId")
    assert message_id
    assert text(result, "MD5OfMessageBody") == md5_hex(body)
    assert text(result, "MD5OfMessageAttributes") == md5_of_attributes(attrs)

    root = query_ok(endpoint, {
        "Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "10",
        "AttributeName.1": "All", "MessageAttributeName.1": "All", "VisibilityTimeout": "0",
    })
    msgs = find_all(find(root, "ReceiveMessageResult"), "Message")
    assert len(msgs) == 1
    msg = msgs[0]
    assert text(msg, "MessageId") == message_id
    assert text(msg, "Body") == body
    assert text(msg, "MD5OfBody") == md5_hex(body)
    assert text(msg, "MD5OfMessageAttributes") == md5_of_attributes(attrs)
    sys_attrs = query_attributes(msg)
    assert sys_attrs["ApproximateReceiveCount"] == "1"
    assert sys_attrs["SentTimestamp"].isdigit()
    assert sys_attrs["SenderId"]
    user = {}
    for a in find_all(msg, "MessageAttribute"):
        value = find(a, "Value")
        user[text(a, "Name")] = {child: text(value, child) for child in
                                 ("DataType", "StringValue", "BinaryValue") if find(value, child) is not None}
    assert user == {
        "color": {"DataType": "String", "StringValue": "blue"},
        "size": {"DataType": "Number", "StringValue": "12"},
        "raw": {"DataType": "Binary", "BinaryValue": base64.b64encode(binary).decode()},
    }

    # boto3 (JSON) sees the same message; the query protocol deletes it.
    got = receive_until(sqs, url, 1, MessageAttributeNames=["All"])
    assert got[0]["MessageAttributes"] == attrs
    query_ok(endpoint, {"Action": "DeleteMessage", "QueueUrl": url, "ReceiptHandle": got[0]["ReceiptHandle"]})
    assert counts(sqs, url) == (0, 0, 0)


def test_query_empty_receive(endpoint, queue):
    _, url = queue
    root = query_ok(endpoint, {"Action": "ReceiveMessage", "QueueUrl": url})
    result = find(root, "ReceiveMessageResult")
    assert result is not None
    assert find_all(result, "Message") == []


def test_query_posted_to_the_queue_url(endpoint, sqs, queue):
    """Older SDKs POST to the queue URL itself and leave QueueUrl out."""
    name, url = queue
    path = f"/{ACCOUNT}/{name}"
    query_ok(endpoint, {"Action": "SendMessage", "MessageBody": "to the queue path"}, path=path)
    root = query_ok(endpoint, {"Action": "ReceiveMessage", "MaxNumberOfMessages": "10"}, path=path)
    bodies = [text(m, "Body") for m in find_all(find(root, "ReceiveMessageResult"), "Message")]
    assert bodies == ["to the queue path"]


def test_query_batch_and_list(endpoint, sqs):
    prefix = queue_name("qb")
    url = sqs.create_queue(QueueName=prefix + "-a")["QueueUrl"]
    root = query_ok(endpoint, {
        "Action": "SendMessageBatch", "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "one", "SendMessageBatchRequestEntry.1.MessageBody": "b1",
        "SendMessageBatchRequestEntry.2.Id": "two", "SendMessageBatchRequestEntry.2.MessageBody": "b2",
        "SendMessageBatchRequestEntry.2.DelaySeconds": "0",
    })
    entries = find_all(find(root, "SendMessageBatchResult"), "SendMessageBatchResultEntry")
    assert sorted(text(e, "Id") for e in entries) == ["one", "two"]
    for e in entries:
        assert text(e, "MD5OfMessageBody") == md5_hex({"one": "b1", "two": "b2"}[text(e, "Id")])
    assert sorted(m["Body"] for m in receive_until(sqs, url, 2)) == ["b1", "b2"]

    status, typ, code, _ = query_error(endpoint, {
        "Action": "SendMessageBatch", "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "x", "SendMessageBatchRequestEntry.1.MessageBody": "b1",
        "SendMessageBatchRequestEntry.2.Id": "x", "SendMessageBatchRequestEntry.2.MessageBody": "b2",
    })
    assert (status, typ, code) == (400, "Sender", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")

    root = query_ok(endpoint, {"Action": "ListQueues", "QueueNamePrefix": prefix})
    assert [u.text for u in find_all(find(root, "ListQueuesResult"), "QueueUrl")] == [url]


def test_query_errors(endpoint, queue):
    _, url = queue
    status, typ, code, message = query_error(endpoint, {"Action": "GetQueueUrl", "QueueName": queue_name()})
    assert (status, typ, code) == (400, "Sender", "AWS.SimpleQueueService.NonExistentQueue")
    assert message
    status, typ, code, _ = query_error(endpoint, {
        "Action": "SendMessage", "QueueUrl": url.rsplit("/", 1)[0] + "/" + queue_name(), "MessageBody": "x"})
    assert (status, typ, code) == (400, "Sender", "AWS.SimpleQueueService.NonExistentQueue")
    status, typ, code, _ = query_error(endpoint, {
        "Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "11"})
    assert (status, typ, code) == (400, "Sender", "InvalidParameterValue")
    status, typ, code, _ = query_error(endpoint, {
        "Action": "DeleteMessage", "QueueUrl": url, "ReceiptHandle": "garbage"})
    assert (status, typ, code) == (400, "Sender", "ReceiptHandleIsInvalid")
    status, typ, code, _ = query_error(endpoint, {
        "Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "NoSuchAttribute"})
    assert (status, typ, code) == (400, "Sender", "InvalidAttributeName")


def test_query_attributes_tags_visibility_and_batches(endpoint, sqs, queue):
    _, url = queue
    query_ok(endpoint, {"Action": "SetQueueAttributes", "QueueUrl": url,
                        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "99",
                        "Attribute.2.Name": "DelaySeconds", "Attribute.2.Value": "0"})
    root = query_ok(endpoint, {"Action": "GetQueueAttributes", "QueueUrl": url,
                               "AttributeName.1": "VisibilityTimeout", "AttributeName.2": "DelaySeconds"})
    assert query_attributes(find(root, "GetQueueAttributesResult")) == {"VisibilityTimeout": "99", "DelaySeconds": "0"}

    query_ok(endpoint, {"Action": "TagQueue", "QueueUrl": url, "Tag.1.Key": "team", "Tag.1.Value": "q",
                        "Tag.2.Key": "env", "Tag.2.Value": "dev"})
    root = query_ok(endpoint, {"Action": "ListQueueTags", "QueueUrl": url})
    tags = {text(t, "Key"): text(t, "Value") for t in find_all(find(root, "ListQueueTagsResult"), "Tag")}
    assert tags == {"team": "q", "env": "dev"}
    query_ok(endpoint, {"Action": "UntagQueue", "QueueUrl": url, "TagKey.1": "env"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "q"}

    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}])
    msgs = {m["Body"]: m for m in receive_until(sqs, url, 2)}
    root = query_ok(endpoint, {"Action": "ChangeMessageVisibility", "QueueUrl": url,
                               "ReceiptHandle": msgs["a"]["ReceiptHandle"], "VisibilityTimeout": "0"})
    root = query_ok(endpoint, {
        "Action": "ChangeMessageVisibilityBatch", "QueueUrl": url,
        "ChangeMessageVisibilityBatchRequestEntry.1.Id": "b",
        "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle": msgs["b"]["ReceiptHandle"],
        "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout": "0"})
    ok = find_all(find(root, "ChangeMessageVisibilityBatchResult"), "ChangeMessageVisibilityBatchResultEntry")
    assert [text(e, "Id") for e in ok] == ["b"]
    again = receive_until(sqs, url, 2)
    assert sorted(m["Body"] for m in again) == ["a", "b"]
    root = query_ok(endpoint, {
        "Action": "DeleteMessageBatch", "QueueUrl": url,
        "DeleteMessageBatchRequestEntry.1.Id": "one",
        "DeleteMessageBatchRequestEntry.1.ReceiptHandle": again[0]["ReceiptHandle"],
        "DeleteMessageBatchRequestEntry.2.Id": "two",
        "DeleteMessageBatchRequestEntry.2.ReceiptHandle": again[1]["ReceiptHandle"],
        "DeleteMessageBatchRequestEntry.3.Id": "bad",
        "DeleteMessageBatchRequestEntry.3.ReceiptHandle": "garbage"})
    result = find(root, "DeleteMessageBatchResult")
    assert sorted(text(e, "Id") for e in find_all(result, "DeleteMessageBatchResultEntry")) == ["one", "two"]
    failed = find_all(result, "BatchResultErrorEntry")
    assert [(text(f, "Id"), text(f, "Code"), text(f, "SenderFault")) for f in failed] == \
        [("bad", "ReceiptHandleIsInvalid", "true")]
    assert counts(sqs, url) == (0, 0, 0)

    query_ok(endpoint, {"Action": "PurgeQueue", "QueueUrl": url})
    query_ok(endpoint, {"Action": "DeleteQueue", "QueueUrl": url})
    status, _, code, _ = query_error(endpoint, {"Action": "GetQueueAttributes", "QueueUrl": url,
                                                "AttributeName.1": "All"})
    assert (status, code) == (400, "AWS.SimpleQueueService.NonExistentQueue")


# ---------------------------------------------------------------------------
# JSON protocol, raw
# ---------------------------------------------------------------------------
def test_json_protocol_raw_success(endpoint):
    name = queue_name()
    resp = json_call(endpoint, "CreateQueue", {"QueueName": name})
    assert resp.status == 200, resp.body
    assert resp.header("Content-Type", "").startswith("application/x-amz-json-1.0")
    assert json.loads(resp.body) == {"QueueUrl": f"{endpoint}/{ACCOUNT}/{name}"}


def test_json_protocol_posted_to_the_queue_url(endpoint, sqs, queue):
    name, url = queue
    resp = json_call(endpoint, "SendMessage", {"QueueUrl": url, "MessageBody": "json at queue path"},
                     path=f"/{ACCOUNT}/{name}")
    assert resp.status == 200, resp.body
    assert json.loads(resp.body)["MD5OfMessageBody"] == md5_hex("json at queue path")
    assert [m["Body"] for m in receive_until(sqs, url, 1)] == ["json at queue path"]


def test_json_protocol_raw_error(endpoint):
    resp = json_call(endpoint, "GetQueueUrl", {"QueueName": queue_name()})
    assert resp.status == 400, resp.body
    assert resp.header("Content-Type", "").startswith("application/x-amz-json-1.0")
    assert resp.header("x-amzn-query-error") == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    body = json.loads(resp.body)
    assert body["__type"].rsplit("#", 1)[-1] == "QueueDoesNotExist"
    assert body.get("message") or body.get("Message")


# ---------------------------------------------------------------------------
# AWS CLI
# ---------------------------------------------------------------------------
def test_aws_cli_round_trip(aws, sqs):
    name = queue_name()
    out = json.loads(aws("sqs", "create-queue", "--queue-name", name,
                         "--attributes", "VisibilityTimeout=40,DelaySeconds=0", "--output", "json").stdout)
    url = out["QueueUrl"]
    assert url.endswith(f"/{ACCOUNT}/{name}")

    sent = json.loads(aws("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
                          "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}',
                          "--output", "json").stdout)
    assert sent["MD5OfMessageBody"] == md5_hex("from the cli")
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes({"k": {"DataType": "String", "StringValue": "v"}})

    got = json.loads(aws("sqs", "receive-message", "--queue-url", url, "--attribute-names", "All",
                         "--message-attribute-names", "All", "--max-number-of-messages", "10",
                         "--output", "json").stdout)
    assert [m["Body"] for m in got["Messages"]] == ["from the cli"]
    msg = got["Messages"][0]
    assert msg["MessageId"] == sent["MessageId"]
    assert msg["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"

    attrs = json.loads(aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All",
                           "--output", "json").stdout)["Attributes"]
    assert attrs["VisibilityTimeout"] == "40"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attrs["QueueArn"] == queue_arn(name)

    listed = json.loads(aws("sqs", "list-queues", "--queue-name-prefix", name, "--output", "json").stdout)
    assert listed["QueueUrls"] == [url]

    aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle", msg["ReceiptHandle"])
    assert counts(sqs, url) == (0, 0, 0)
    aws("sqs", "delete-queue", "--queue-url", url)
    failed = aws("sqs", "get-queue-url", "--queue-name", name, check=False)
    assert failed.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in failed.stderr, failed.stderr
