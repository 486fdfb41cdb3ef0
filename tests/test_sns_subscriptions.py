"""SNS subscriptions with the sqs protocol: Subscribe (confirmation, idempotency,
attributes, validation), Get/SetSubscriptionAttributes, ListSubscriptions(ByTopic)
with pagination, and Unsubscribe."""
import json

import pytest

from test_sns_util import (  # noqa: F401  (fixtures)
    ACCOUNT, INVALID, NOT_FOUND, UUID_RE, all_pages, assert_stays_empty, create_queue, make_queue,
    make_topic, queue, receive_envelopes, sns, sqs, subscribe, topic, topic_arn, topic_name,
)
from virga_testlib import expect_error

POLICY = {"color": ["red", "blue"], "size": [{"numeric": [">=", 10]}]}


def sub_attrs(sns, arn):
    return sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]


def list_all_subscriptions(sns):
    return [s for page in all_pages(sns.list_subscriptions, "Subscriptions") for s in page]


def test_subscribe_sqs_is_confirmed_at_once(sns, topic, queue):
    url, qarn = queue
    resp = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    arn = resp["SubscriptionArn"]
    assert arn.startswith(topic + ":"), arn
    assert UUID_RE.match(arn[len(topic) + 1:]), arn
    attrs = sub_attrs(sns, arn)
    assert attrs["SubscriptionArn"] == arn
    assert attrs["TopicArn"] == topic
    assert attrs["Protocol"] == "sqs"
    assert attrs["Endpoint"] == qarn
    assert attrs["Owner"] == ACCOUNT
    assert attrs["RawMessageDelivery"] == "false"
    assert attrs["PendingConfirmation"] == "false"
    assert attrs["ConfirmationWasAuthenticated"] == "true"
    assert "FilterPolicy" not in attrs
    topic_attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert topic_attrs["SubscriptionsConfirmed"] == "1"
    assert topic_attrs["SubscriptionsPending"] == "0"


def test_subscribe_return_subscription_arn(sns, topic, queue):
    resp = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1], ReturnSubscriptionArn=True)
    assert resp["SubscriptionArn"].startswith(topic + ":")
    assert sub_attrs(sns, resp["SubscriptionArn"])["Endpoint"] == queue[1]


def test_subscribe_is_idempotent(sns, topic, queue):
    first = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1])["SubscriptionArn"]
    second = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1])["SubscriptionArn"]
    assert first == second
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in subs] == [first]
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "1"


def test_subscribe_with_attributes(sns, topic, queue):
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1], ReturnSubscriptionArn=True,
                        Attributes={"RawMessageDelivery": "true",
                                    "FilterPolicy": json.dumps(POLICY),
                                    "FilterPolicyScope": "MessageBody"})["SubscriptionArn"]
    attrs = sub_attrs(sns, arn)
    assert attrs["RawMessageDelivery"] == "true"
    assert json.loads(attrs["FilterPolicy"]) == POLICY
    assert attrs["FilterPolicyScope"] == "MessageBody"


def test_filter_policy_scope_defaults_to_message_attributes(sns, topic, queue, subscribe):
    arn = subscribe(topic, queue[1], FilterPolicy=json.dumps(POLICY))
    attrs = sub_attrs(sns, arn)
    assert json.loads(attrs["FilterPolicy"]) == POLICY
    assert attrs["FilterPolicyScope"] == "MessageAttributes"


def test_subscribe_again_with_different_attributes_fails(sns, topic, queue, subscribe):
    arn = subscribe(topic, queue[1], RawMessageDelivery="true")
    # Same attributes: the same subscription.
    assert subscribe(topic, queue[1], RawMessageDelivery="true") == arn
    with expect_error(*INVALID):
        subscribe(topic, queue[1], RawMessageDelivery="false")
    assert sub_attrs(sns, arn)["RawMessageDelivery"] == "true"


def test_subscribe_to_missing_topic(sns, queue):
    with expect_error(*NOT_FOUND):
        sns.subscribe(TopicArn=topic_arn(topic_name()), Protocol="sqs", Endpoint=queue[1])


@pytest.mark.parametrize("endpoint_value", ["not-an-arn", "https://example.com/queue"],
                         ids=["word", "url"])
def test_subscribe_sqs_endpoint_must_be_an_arn(sns, topic, endpoint_value):
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=endpoint_value)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_subscribe_unsupported_protocol(sns, topic, queue):
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="carrier-pigeon", Endpoint=queue[1])
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_subscribe_unknown_attribute(sns, topic, queue):
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1],
                      Attributes={"NoSuchAttribute": "x"})
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_fifo_queue_cannot_subscribe_to_standard_topic(sns, topic, make_queue):
    _, fifo_arn = make_queue(fifo=True)
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=fifo_arn)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_list_subscriptions_by_topic(sns, make_topic, make_queue, subscribe):
    t1, t2 = make_topic(), make_topic()
    (_, q1), (_, q2), (_, q3) = make_queue(), make_queue(), make_queue()
    s1, s2 = subscribe(t1, q1), subscribe(t1, q2)
    s3 = subscribe(t2, q3)
    subs = sns.list_subscriptions_by_topic(TopicArn=t1)["Subscriptions"]
    assert "NextToken" not in sns.list_subscriptions_by_topic(TopicArn=t1)
    by_arn = {s["SubscriptionArn"]: s for s in subs}
    assert set(by_arn) == {s1, s2}
    assert by_arn[s1] == {"SubscriptionArn": s1, "Owner": ACCOUNT, "Protocol": "sqs",
                          "Endpoint": q1, "TopicArn": t1}
    assert by_arn[s2]["Endpoint"] == q2
    assert [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=t2)["Subscriptions"]] == [s3]
    everything = {s["SubscriptionArn"]: s for s in list_all_subscriptions(sns)}
    assert {s1, s2, s3} <= set(everything)
    assert everything[s3] == {"SubscriptionArn": s3, "Owner": ACCOUNT, "Protocol": "sqs",
                              "Endpoint": q3, "TopicArn": t2}


def test_list_subscriptions_by_missing_topic(sns):
    with expect_error(*NOT_FOUND):
        sns.list_subscriptions_by_topic(TopicArn=topic_arn(topic_name()))


def test_subscription_lists_paginate_by_100(sns, sqs, topic, subscribe):
    queue_arns = [create_queue(sqs)[1] for _ in range(103)]
    created = {subscribe(topic, arn) for arn in queue_arns}
    assert len(created) == 103

    pages = all_pages(sns.list_subscriptions_by_topic, "Subscriptions", TopicArn=topic)
    assert [len(p) for p in pages] == [100, 3]
    listed = [s["SubscriptionArn"] for p in pages for s in p]
    assert len(listed) == len(set(listed))
    assert set(listed) == created

    pages = all_pages(sns.list_subscriptions, "Subscriptions")
    assert len(pages[0]) == 100
    assert all(len(p) <= 100 for p in pages)
    listed = [s["SubscriptionArn"] for p in pages for s in p]
    assert len(listed) == len(set(listed)), "a subscription was listed twice"
    assert created <= set(listed)


def test_unsubscribe(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    arn = subscribe(topic, qarn)
    sns.unsubscribe(SubscriptionArn=arn)
    with expect_error(*NOT_FOUND) as info:
        sns.get_subscription_attributes(SubscriptionArn=arn)
    assert info.value.response["Error"]["Message"] == "Subscription does not exist"
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert arn not in [s["SubscriptionArn"] for s in list_all_subscriptions(sns)]
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "0"
    sns.publish(TopicArn=topic, Message="nobody is listening")
    assert_stays_empty(sqs, url)
    # Unsubscribing again is harmless.
    sns.unsubscribe(SubscriptionArn=arn)


def test_resubscribe_after_unsubscribe_gets_a_new_arn(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    old = subscribe(topic, qarn)
    sns.unsubscribe(SubscriptionArn=old)
    new = subscribe(topic, qarn)
    assert new != old
    sns.publish(TopicArn=topic, Message="back again")
    envs = receive_envelopes(sqs, url, 1)
    assert [e["Message"] for e in envs] == ["back again"]
    assert "SubscriptionArn=" + new in envs[0]["UnsubscribeURL"]


def test_set_subscription_attributes(sns, topic, queue, subscribe):
    arn = subscribe(topic, queue[1])
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps(POLICY))
    attrs = sub_attrs(sns, arn)
    assert attrs["RawMessageDelivery"] == "true"
    assert json.loads(attrs["FilterPolicy"]) == POLICY
    assert attrs["FilterPolicyScope"] == "MessageAttributes"
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="FilterPolicyScope",
                                    AttributeValue="MessageBody")
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery",
                                    AttributeValue="false")
    attrs = sub_attrs(sns, arn)
    assert attrs["FilterPolicyScope"] == "MessageBody"
    assert attrs["RawMessageDelivery"] == "false"
    # Identity attributes are untouched.
    assert attrs["SubscriptionArn"] == arn
    assert attrs["TopicArn"] == topic
    assert attrs["Endpoint"] == queue[1]


def test_set_subscription_attributes_errors(sns, topic, queue, subscribe):
    arn = subscribe(topic, queue[1])
    with expect_error(*INVALID):
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="NoSuchAttribute",
                                        AttributeValue="x")
    with expect_error(*INVALID):
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="FilterPolicyScope",
                                        AttributeValue="Everything")
    missing = f"{topic}:00000000-0000-0000-0000-000000000000"
    with expect_error(*NOT_FOUND):
        sns.set_subscription_attributes(SubscriptionArn=missing, AttributeName="RawMessageDelivery",
                                        AttributeValue="true")
    with expect_error(*NOT_FOUND):
        sns.get_subscription_attributes(SubscriptionArn=missing)
    assert sub_attrs(sns, arn)["RawMessageDelivery"] == "false"
