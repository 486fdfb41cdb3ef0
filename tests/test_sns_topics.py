"""SNS topics: CreateTopic (names, idempotency, attributes, FIFO, tags), ListTopics
pagination, Get/SetTopicAttributes, DeleteTopic and the tagging API."""
import json

import pytest

from test_sns_util import (  # noqa: F401  (fixtures)
    ACCOUNT, INVALID, NOT_FOUND, all_pages, make_queue, make_topic, queue, sns, sqs, subscribe,
    tags_of, topic, topic_arn, topic_name,
)
from virga_testlib import expect_error

RESOURCE_NOT_FOUND = ("ResourceNotFound", 404)

DELIVERY_POLICY = {"http": {"defaultHealthyRetryPolicy": {
    "minDelayTarget": 5, "maxDelayTarget": 30, "numRetries": 7, "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear"},
    "disableSubscriptionOverrides": False}}


def custom_policy(arn):
    return {"Version": "2012-10-17", "Id": "custom", "Statement": [{
        "Sid": "publishers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "SNS:Publish", "Resource": arn}]}


def attrs_of(sns, arn):
    return sns.get_topic_attributes(TopicArn=arn)["Attributes"]


def test_create_topic_returns_arn_and_lists_it(sns):
    name = topic_name()
    arn = sns.create_topic(Name=name)["TopicArn"]
    assert arn == topic_arn(name)
    listed = [t["TopicArn"] for page in all_pages(sns.list_topics, "Topics") for t in page]
    assert listed.count(arn) == 1


def test_create_topic_is_idempotent(sns):
    name = topic_name()
    first = sns.create_topic(Name=name)["TopicArn"]
    second = sns.create_topic(Name=name)["TopicArn"]
    assert first == second == topic_arn(name)
    # Same attributes and tags again: still the same topic.
    name2 = topic_name()
    kwargs = dict(Name=name2, Attributes={"DisplayName": "Alerts"}, Tags=[{"Key": "team", "Value": "ops"}])
    assert sns.create_topic(**kwargs)["TopicArn"] == sns.create_topic(**kwargs)["TopicArn"]
    listed = [t["TopicArn"] for page in all_pages(sns.list_topics, "Topics") for t in page]
    assert listed.count(first) == 1
    assert listed.count(topic_arn(name2)) == 1


def test_create_existing_topic_with_different_attributes_fails(sns):
    name = topic_name()
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "first"})["TopicArn"]
    with expect_error(*INVALID):
        sns.create_topic(Name=name, Attributes={"DisplayName": "second"})
    assert attrs_of(sns, arn)["DisplayName"] == "first"


def test_default_topic_attributes(sns, topic):
    attrs = attrs_of(sns, topic)
    assert attrs["TopicArn"] == topic
    assert attrs["Owner"] == ACCOUNT
    assert attrs["DisplayName"] == ""
    assert attrs["SubscriptionsConfirmed"] == "0"
    assert attrs["SubscriptionsPending"] == "0"
    assert attrs["SubscriptionsDeleted"] == "0"
    assert attrs.get("FifoTopic", "false") == "false"


def test_default_topic_policy(sns, topic):
    policy = json.loads(attrs_of(sns, topic)["Policy"])
    statements = policy["Statement"]
    assert statements, policy
    assert all(s["Resource"] == topic for s in statements), policy
    assert all(s["Effect"] == "Allow" for s in statements), policy


def test_create_topic_with_attributes(sns):
    name = topic_name()
    arn = topic_arn(name)
    policy = custom_policy(arn)
    created = sns.create_topic(Name=name, Attributes={
        "DisplayName": "Order events",
        "Policy": json.dumps(policy),
        "DeliveryPolicy": json.dumps(DELIVERY_POLICY),
    })["TopicArn"]
    assert created == arn
    attrs = attrs_of(sns, arn)
    assert attrs["DisplayName"] == "Order events"
    assert json.loads(attrs["Policy"]) == policy
    assert json.loads(attrs["DeliveryPolicy"]) == DELIVERY_POLICY
    if "EffectiveDeliveryPolicy" in attrs:
        json.loads(attrs["EffectiveDeliveryPolicy"])


def test_create_topic_with_unknown_attribute_fails(sns):
    name = topic_name()
    with expect_error(*INVALID):
        sns.create_topic(Name=name, Attributes={"NoSuchAttribute": "x"})
    with expect_error(*NOT_FOUND):
        sns.get_topic_attributes(TopicArn=topic_arn(name))


def test_set_topic_attributes(sns, topic):
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="Renamed")
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DeliveryPolicy",
                             AttributeValue=json.dumps(DELIVERY_POLICY))
    policy = custom_policy(topic)
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))
    attrs = attrs_of(sns, topic)
    assert attrs["DisplayName"] == "Renamed"
    assert json.loads(attrs["DeliveryPolicy"]) == DELIVERY_POLICY
    assert json.loads(attrs["Policy"]) == policy
    # The read-only and identity attributes are unchanged.
    assert attrs["TopicArn"] == topic
    assert attrs["Owner"] == ACCOUNT


def test_set_topic_attributes_errors(sns, topic):
    with expect_error(*INVALID):
        sns.set_topic_attributes(TopicArn=topic, AttributeName="NoSuchAttribute", AttributeValue="x")
    with expect_error(*NOT_FOUND):
        sns.set_topic_attributes(TopicArn=topic_arn(topic_name()), AttributeName="DisplayName",
                                 AttributeValue="x")


def test_get_attributes_of_missing_topic(sns):
    with expect_error(*NOT_FOUND) as info:
        sns.get_topic_attributes(TopicArn=topic_arn(topic_name()))
    assert info.value.response["Error"]["Message"] == "Topic does not exist"


@pytest.mark.parametrize("name", [
    "has space", "bad!char", "slash/name", "dot.name", "a" * 257, "", "caf\u00e9",
], ids=["space", "bang", "slash", "dot", "257-chars", "empty", "non-ascii"])
def test_invalid_topic_names(sns, name):
    with expect_error(*INVALID):
        sns.create_topic(Name=name)


def test_longest_and_odd_valid_names(sns):
    for name in ["a" * 256, "A_b-9", "x"]:
        assert sns.create_topic(Name=name)["TopicArn"] == topic_arn(name)
        sns.delete_topic(TopicArn=topic_arn(name))


def test_fifo_topic(sns):
    name = topic_name(fifo=True)
    arn = sns.create_topic(Name=name, Attributes={"FifoTopic": "true"})["TopicArn"]
    assert arn == topic_arn(name)
    assert arn.endswith(".fifo")
    attrs = attrs_of(sns, arn)
    assert attrs["FifoTopic"] == "true"
    assert attrs["ContentBasedDeduplication"] == "false"

    name2 = topic_name(fifo=True)
    arn2 = sns.create_topic(Name=name2, Attributes={"FifoTopic": "true",
                                                     "ContentBasedDeduplication": "true"})["TopicArn"]
    assert attrs_of(sns, arn2)["ContentBasedDeduplication"] == "true"
    sns.set_topic_attributes(TopicArn=arn2, AttributeName="ContentBasedDeduplication", AttributeValue="false")
    assert attrs_of(sns, arn2)["ContentBasedDeduplication"] == "false"


def test_fifo_topic_name_must_end_with_fifo(sns):
    name = topic_name()
    with expect_error(*INVALID):
        sns.create_topic(Name=name, Attributes={"FifoTopic": "true"})
    with expect_error(*NOT_FOUND):
        sns.get_topic_attributes(TopicArn=topic_arn(name))


def test_delete_topic(sns, topic):
    sns.delete_topic(TopicArn=topic)
    with expect_error(*NOT_FOUND):
        sns.get_topic_attributes(TopicArn=topic)
    listed = [t["TopicArn"] for page in all_pages(sns.list_topics, "Topics") for t in page]
    assert topic not in listed
    # Deleting it again, or a topic that never existed, succeeds (as on AWS).
    sns.delete_topic(TopicArn=topic)
    sns.delete_topic(TopicArn=topic_arn(topic_name()))
    # The name can be used again.
    assert sns.create_topic(Name=topic.rsplit(":", 1)[1])["TopicArn"] == topic
    assert attrs_of(sns, topic)["SubscriptionsConfirmed"] == "0"


def test_delete_topic_removes_its_subscriptions(sns, topic, queue, subscribe):
    sub = subscribe(topic, queue[1])
    listed = [s["SubscriptionArn"] for page in all_pages(sns.list_subscriptions, "Subscriptions")
              for s in page]
    assert sub in listed
    sns.delete_topic(TopicArn=topic)
    listed = [s["SubscriptionArn"] for page in all_pages(sns.list_subscriptions, "Subscriptions")
              for s in page]
    assert sub not in listed
    with expect_error(*NOT_FOUND):
        sns.publish(TopicArn=topic, Message="to a deleted topic")
    with expect_error(*NOT_FOUND):
        sns.list_subscriptions_by_topic(TopicArn=topic)


def test_list_topics_pagination(sns):
    prefix = topic_name("page")
    created = [sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(105)]
    pages = all_pages(sns.list_topics, "Topics")
    assert len(pages) >= 2
    assert len(pages[0]) == 100
    assert all(len(p) <= 100 for p in pages)
    for page in pages:
        for entry in page:
            assert set(entry) == {"TopicArn"}
    listed = [t["TopicArn"] for page in pages for t in page]
    assert len(listed) == len(set(listed)), "a topic was listed twice"
    assert set(created) <= set(listed)


def test_tags_at_create_and_tag_untag(sns):
    arn = sns.create_topic(Name=topic_name(), Tags=[{"Key": "team", "Value": "ops"},
                                                    {"Key": "env", "Value": "dev"}])["TopicArn"]
    assert tags_of(sns, arn) == {"team": "ops", "env": "dev"}
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "cost", "Value": "42"}])
    assert tags_of(sns, arn) == {"team": "ops", "env": "prod", "cost": "42"}
    sns.untag_resource(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert tags_of(sns, arn) == {"env": "prod", "cost": "42"}
    sns.untag_resource(ResourceArn=arn, TagKeys=["env", "cost"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == []


def test_topic_without_tags_lists_none(sns, topic):
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == []


def test_tagging_missing_topic(sns):
    missing = topic_arn(topic_name())
    with expect_error(*RESOURCE_NOT_FOUND):
        sns.list_tags_for_resource(ResourceArn=missing)
    with expect_error(*RESOURCE_NOT_FOUND):
        sns.tag_resource(ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}])
    with expect_error(*RESOURCE_NOT_FOUND):
        sns.untag_resource(ResourceArn=missing, TagKeys=["k"])


def test_deleted_topic_loses_its_tags(sns):
    name = topic_name()
    arn = sns.create_topic(Name=name, Tags=[{"Key": "k", "Value": "v"}])["TopicArn"]
    sns.delete_topic(TopicArn=arn)
    assert sns.create_topic(Name=name)["TopicArn"] == arn
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
