"""The AWS CLI against Virga's SNS: create-topic, subscribe, publish,
list-subscriptions-by-topic, and a CLI error for a missing topic."""
import json

from test_sns_util import (  # noqa: F401  (fixtures)
    ACCOUNT, drain, make_queue, sns, sqs, topic_arn, topic_name,
)


def cli_json(aws, *args):
    return json.loads(aws("sns", *args, "--output", "json").stdout)


def test_cli_topic_subscribe_publish_list(aws, sns, sqs, make_queue):
    name = topic_name("cli")
    arn = cli_json(aws, "create-topic", "--name", name)["TopicArn"]
    assert arn == topic_arn(name)

    env_url, env_queue = make_queue()
    raw_url, raw_queue = make_queue()
    sub = cli_json(aws, "subscribe", "--topic-arn", arn, "--protocol", "sqs",
                   "--notification-endpoint", env_queue, "--return-subscription-arn")["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    raw_sub = cli_json(aws, "subscribe", "--topic-arn", arn, "--protocol", "sqs",
                       "--notification-endpoint", raw_queue,
                       "--attributes", "RawMessageDelivery=true")["SubscriptionArn"]
    assert sns.get_subscription_attributes(SubscriptionArn=raw_sub)["Attributes"]["RawMessageDelivery"] == "true"

    listed = cli_json(aws, "list-subscriptions-by-topic", "--topic-arn", arn)["Subscriptions"]
    by_arn = {s["SubscriptionArn"]: s for s in listed}
    assert set(by_arn) == {sub, raw_sub}
    assert by_arn[sub] == {"SubscriptionArn": sub, "Owner": ACCOUNT, "Protocol": "sqs",
                           "Endpoint": env_queue, "TopicArn": arn}

    published = cli_json(aws, "publish", "--topic-arn", arn, "--message", "hello from the CLI",
                         "--subject", "CLI", "--message-attributes",
                         json.dumps({"color": {"DataType": "String", "StringValue": "red"}}))
    msgs = drain(sqs, env_url, 1)
    assert len(msgs) == 1
    env = json.loads(msgs[0]["Body"])
    assert env["Message"] == "hello from the CLI"
    assert env["Subject"] == "CLI"
    assert env["MessageId"] == published["MessageId"]
    assert env["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"}}
    raw = drain(sqs, raw_url, 1, MessageAttributeNames=["All"])
    assert [m["Body"] for m in raw] == ["hello from the CLI"]
    assert raw[0]["MessageAttributes"] == {"color": {"DataType": "String", "StringValue": "red"}}


def test_cli_publish_to_missing_topic_fails(aws):
    proc = aws("sns", "publish", "--topic-arn", topic_arn(topic_name("cli")), "--message", "x", check=False)
    assert proc.returncode != 0
    assert "NotFound" in proc.stderr, proc.stderr
