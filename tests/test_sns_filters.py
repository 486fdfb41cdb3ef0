"""SNS subscription filter policies, on message attributes and on the message body:
a matrix of operators (one subscription per case, matching and non-matching
messages, non-matching ones must not arrive), policy changes at runtime and
policy validation."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from test_sns_util import (  # noqa: F401  (fixtures)
    INVALID, assert_stays_empty, create_queue, drain, make_queue, make_topic, queue, sns, sqs,
    subscribe, topic,
)
from virga_testlib import expect_error, make_client, unique_name


def S(value):
    return {"DataType": "String", "StringValue": value}


def N(value):
    return {"DataType": "Number", "StringValue": value}


@dataclass
class Msg:
    label: str
    match: bool
    attrs: dict = field(default_factory=dict)
    body: object = None          # dict -> JSON body; str -> used as is; None -> the label


@dataclass
class Case:
    id: str
    policy: dict
    messages: list
    scope: str = "MessageAttributes"


CASES = [
    Case("exact-string", {"color": ["red", "blue"]}, [
        Msg("red", True, {"color": S("red")}),
        Msg("blue", True, {"color": S("blue"), "other": S("x")}),
        Msg("green", False, {"color": S("green")}),
        Msg("case-differs", False, {"color": S("Red")}),
        Msg("key-missing", False, {"other": S("red")}),
        Msg("only-in-body", False, body={"color": "red"}),
    ]),
    Case("plain-number", {"count": [5]}, [
        Msg("five", True, {"count": N("5")}),
        Msg("six", False, {"count": N("6")}),
        Msg("missing", False, {"other": N("5")}),
    ]),
    Case("numeric-equals", {"price": [{"numeric": ["=", 301.5]}]}, [
        Msg("decimal", True, {"price": N("301.5")}),
        Msg("exponent", True, {"price": N("3.015e2")}),
        Msg("other", False, {"price": N("301.6")}),
    ]),
    Case("prefix", {"event": [{"prefix": "order-"}]}, [
        Msg("created", True, {"event": S("order-created")}),
        Msg("inside", False, {"event": S("reorder-1")}),
        Msg("case", False, {"event": S("Order-x")}),
    ]),
    Case("suffix", {"file": [{"suffix": ".png"}]}, [
        Msg("png", True, {"file": S("cat.png")}),
        Msg("upper", False, {"file": S("cat.PNG")}),
        Msg("jpg", False, {"file": S("png.jpg")}),
    ]),
    Case("anything-but-list", {"store": [{"anything-but": ["a", "b"]}]}, [
        Msg("c", True, {"store": S("c")}),
        Msg("a", False, {"store": S("a")}),
        Msg("b", False, {"store": S("b")}),
        Msg("missing", False, {"other": S("c")}),
    ]),
    Case("anything-but-numbers", {"price": [{"anything-but": [100, 500]}]}, [
        Msg("101", True, {"price": N("101")}),
        Msg("100.1", True, {"price": N("100.1")}),
        Msg("100", False, {"price": N("100")}),
        Msg("500", False, {"price": N("500")}),
    ]),
    Case("anything-but-prefix", {"event": [{"anything-but": {"prefix": "order-"}}]}, [
        Msg("invoice", True, {"event": S("invoice-1")}),
        Msg("order", False, {"event": S("order-1")}),
    ]),
    Case("numeric-range", {"price": [{"numeric": [">", 0, "<=", 100]}]}, [
        Msg("zero", False, {"price": N("0")}),
        Msg("half", True, {"price": N("0.5")}),
        Msg("hundred", True, {"price": N("100")}),
        Msg("above", False, {"price": N("100.01")}),
        Msg("negative", False, {"price": N("-5")}),
    ]),
    Case("exists-true", {"flag": [{"exists": True}]}, [
        Msg("present", True, {"flag": S("x")}),
        Msg("absent", False, {"other": S("x")}),
        Msg("no-attributes", False),
    ]),
    Case("exists-false", {"flag": [{"exists": False}]}, [
        Msg("absent", True, {"other": S("x")}),
        Msg("present", False, {"flag": S("x")}),
        # AWS: "exists": false only matches if at least one attribute is present.
        Msg("no-attributes", False),
    ]),
    Case("equals-ignore-case", {"color": [{"equals-ignore-case": "red"}]}, [
        Msg("upper", True, {"color": S("RED")}),
        Msg("mixed", True, {"color": S("rEd")}),
        Msg("other", False, {"color": S("reed")}),
    ]),
    Case("cidr", {"ip": [{"cidr": "10.0.0.0/24"}]}, [
        Msg("first", True, {"ip": S("10.0.0.1")}),
        Msg("last", True, {"ip": S("10.0.0.255")}),
        Msg("next-block", False, {"ip": S("10.0.1.1")}),
        Msg("elsewhere", False, {"ip": S("192.168.0.1")}),
    ]),
    Case("or", {"source": ["aws.cloudwatch"],
                "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}, [
        Msg("source+metric", True, {"source": S("aws.cloudwatch"), "metricName": S("CPUUtilization")}),
        Msg("source+namespace", True, {"source": S("aws.cloudwatch"), "namespace": S("AWS/EC2")}),
        Msg("source+other-metric", False, {"source": S("aws.cloudwatch"), "metricName": S("Disk")}),
        Msg("no-source", False, {"metricName": S("CPUUtilization"), "namespace": S("AWS/EC2")}),
    ]),
    Case("and", {"color": ["red"], "size": ["L"]}, [
        Msg("both", True, {"color": S("red"), "size": S("L")}),
        Msg("color-only", False, {"color": S("red")}),
        Msg("size-only", False, {"size": S("L")}),
        Msg("wrong-size", False, {"color": S("red"), "size": S("M")}),
    ]),
    Case("body-nested", {"order": {"status": ["paid"], "total": [{"numeric": [">=", 50]}]}}, [
        Msg("paid-75", True, body={"order": {"status": "paid", "total": 75, "id": 1}}),
        Msg("paid-50", True, body={"order": {"status": "paid", "total": 50}}),
        Msg("paid-10", False, body={"order": {"status": "paid", "total": 10}}),
        Msg("new-75", False, body={"order": {"status": "new", "total": 75}}),
        Msg("flat", False, body={"status": "paid", "total": 75}),
        Msg("not-json", False, body="status paid total 75"),
    ], scope="MessageBody"),
    Case("body-array", {"tags": ["urgent"]}, [
        Msg("contains", True, body={"tags": ["low", "urgent"]}),
        Msg("lacks", False, body={"tags": ["low"]}),
    ], scope="MessageBody"),
    Case("body-ignores-attributes", {"color": ["red"]}, [
        Msg("body-red", True, body={"color": "red"}),
        Msg("attribute-red", False, {"color": S("red")}, body={"color": "blue"}),
    ], scope="MessageBody"),
    Case("body-suffix-and-exists", {"customer": {"email": [{"suffix": "@example.com"}]},
                                    "coupon": [{"exists": False}]}, [
        Msg("plain", True, body={"customer": {"email": "ann@example.com"}}),
        Msg("with-coupon", False, body={"customer": {"email": "bob@example.com"}, "coupon": "X1"}),
        Msg("other-domain", False, body={"customer": {"email": "cy@example.org"}}),
    ], scope="MessageBody"),
]


def _message_text(msg: Msg) -> str:
    if msg.body is None:
        return f"label:{msg.label}"
    if isinstance(msg.body, str):
        return msg.body
    return json.dumps(msg.body)


@pytest.fixture(scope="module")
def filter_outcomes(endpoint):
    """Runs the whole matrix once: one topic + queue + filtered subscription per
    case, publishes every case's messages, then collects what each queue got
    (waiting for the expected deliveries, then one more second for strays, all
    cases in parallel). Returns {case id: (error or None, [labels received])}."""
    sns = make_client(endpoint, "sns")
    sqs = make_client(endpoint, "sqs")
    setup = {}
    for case in CASES:
        try:
            t = sns.create_topic(Name=unique_name(f"filter-{case.id}"))["TopicArn"]
            url, qarn = create_queue(sqs)
            attributes = {"FilterPolicy": json.dumps(case.policy)}
            if case.scope != "MessageAttributes":
                attributes["FilterPolicyScope"] = case.scope
            sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=qarn, Attributes=attributes,
                          ReturnSubscriptionArn=True)
            for msg in case.messages:
                kwargs = {"TopicArn": t, "Message": _message_text(msg)}
                if msg.attrs:
                    kwargs["MessageAttributes"] = msg.attrs
                sns.publish(**kwargs)
            setup[case.id] = (None, url)
        except Exception as exc:  # reported per case by the test
            setup[case.id] = (f"{type(exc).__name__}: {exc}", None)

    def collect(case):
        try:
            return _collect(case)
        except Exception as exc:  # reported per case by the test
            return case.id, (f"while receiving: {type(exc).__name__}: {exc}", [])

    def _collect(case):
        error, url = setup[case.id]
        if error:
            return case.id, (error, [])
        client = make_client(endpoint, "sqs")
        by_text = {_message_text(m): m.label for m in case.messages}
        expected = sum(1 for m in case.messages if m.match)
        labels = []

        def take(wait):
            resp = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                          VisibilityTimeout=300)
            for m in resp.get("Messages", []):
                text = json.loads(m["Body"])["Message"]
                labels.append(by_text.get(text, f"unknown:{text}"))
            return resp.get("Messages", [])

        deadline = time.monotonic() + 5
        while len(labels) < expected and time.monotonic() < deadline:
            take(1)
        while take(1):  # strays: anything else that arrives within a second
            pass
        return case.id, (None, labels)

    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        return dict(pool.map(collect, CASES))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_filter_policy_matrix(filter_outcomes, case):
    error, labels = filter_outcomes[case.id]
    assert error is None, error
    expected = sorted(m.label for m in case.messages if m.match)
    assert sorted(labels) == expected, (
        f"policy {json.dumps(case.policy)} ({case.scope}): delivered {sorted(labels)}, expected {expected}")


# ---------------------------------------------------------------------------
# Changing the policy at runtime
# ---------------------------------------------------------------------------
def test_set_filter_policy_applies_to_later_messages(sns, sqs, topic, queue, subscribe):
    url, qarn = queue
    sub = subscribe(topic, qarn, RawMessageDelivery="true")
    sns.publish(TopicArn=topic, Message="unfiltered", MessageAttributes={"color": S("green")})
    assert [m["Body"] for m in drain(sqs, url, 1)] == ["unfiltered"]

    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"color": ["red"]}))
    sns.publish(TopicArn=topic, Message="green", MessageAttributes={"color": S("green")})
    sns.publish(TopicArn=topic, Message="red", MessageAttributes={"color": S("red")})
    assert [m["Body"] for m in drain(sqs, url, 1)] == ["red"]
    assert_stays_empty(sqs, url)

    # Switching the scope to the body: the same policy now looks at the JSON body.
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicyScope",
                                    AttributeValue="MessageBody")
    sns.publish(TopicArn=topic, Message=json.dumps({"color": "blue"}), MessageAttributes={"color": S("red")})
    sns.publish(TopicArn=topic, Message=json.dumps({"color": "red"}))
    assert [m["Body"] for m in drain(sqs, url, 1)] == [json.dumps({"color": "red"})]
    assert_stays_empty(sqs, url)


@pytest.mark.parametrize("scope", ["MessageAttributes", "MessageBody"])
def test_empty_filter_policy_removes_filtering(sns, sqs, topic, queue, subscribe, scope):
    # AWS documents `set-subscription-attributes --attribute-name FilterPolicy
    # --attribute-value "{}"` as removing the filter policy.
    url, qarn = queue
    sub = subscribe(topic, qarn, RawMessageDelivery="true", FilterPolicy=json.dumps({"color": ["red"]}),
                    FilterPolicyScope=scope)
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue="{}")
    sent = ["plain text, not JSON", json.dumps({"color": "blue"})]
    for body in sent:
        sns.publish(TopicArn=topic, Message=body, MessageAttributes={"color": S("green")})
    assert sorted(m["Body"] for m in drain(sqs, url, 2)) == sorted(sent)


def test_filtered_and_unfiltered_subscriptions_on_one_topic(endpoint, sns, sqs, topic, make_queue, subscribe):
    (all_url, all_arn), (red_url, red_arn) = make_queue(), make_queue()
    subscribe(topic, all_arn, RawMessageDelivery="true")
    subscribe(topic, red_arn, RawMessageDelivery="true", FilterPolicy=json.dumps({"color": ["red"]}))
    for color in ["red", "blue", "red", "green"]:
        sns.publish(TopicArn=topic, Message=color, MessageAttributes={"color": S(color)})
    assert sorted(m["Body"] for m in drain(sqs, all_url, 4)) == ["blue", "green", "red", "red"]
    assert [m["Body"] for m in drain(sqs, red_url, 2)] == ["red", "red"]
    assert_stays_empty(sqs, red_url)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
BAD_POLICIES = [
    pytest.param("{not json", id="invalid-json"),
    pytest.param(json.dumps({"color": [{"no-such-operator": "x"}]}), id="unknown-operator"),
    pytest.param(json.dumps({"price": [{"numeric": ["<>", 1]}]}), id="bad-numeric-operator"),
    pytest.param(json.dumps({"price": [{"numeric": [">", "one"]}]}), id="numeric-not-a-number"),
    pytest.param(json.dumps({"ip": [{"cidr": "not-a-cidr"}]}), id="bad-cidr"),
    pytest.param(json.dumps({"color": "red"}), id="value-not-a-list"),
    pytest.param(json.dumps(["red"]), id="policy-not-an-object"),
]


@pytest.mark.parametrize("policy", BAD_POLICIES)
def test_subscribe_with_invalid_filter_policy(sns, topic, queue, policy):
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1],
                      Attributes={"FilterPolicy": policy})
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


@pytest.mark.parametrize("policy", BAD_POLICIES)
def test_set_invalid_filter_policy_keeps_the_old_one(sns, topic, queue, subscribe, policy):
    good = {"color": ["red"]}
    sub = subscribe(topic, queue[1], FilterPolicy=json.dumps(good))
    with expect_error(*INVALID):
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                        AttributeValue=policy)
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert json.loads(attrs["FilterPolicy"]) == good


def test_invalid_filter_policy_scope(sns, topic, queue):
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1],
                      Attributes={"FilterPolicy": json.dumps({"a": ["b"]}), "FilterPolicyScope": "Everything"})
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_nested_policy_needs_message_body_scope(sns, topic, queue):
    nested = json.dumps({"order": {"status": ["paid"]}})
    with expect_error(*INVALID):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1],
                      Attributes={"FilterPolicy": nested})
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue[1], ReturnSubscriptionArn=True,
                        Attributes={"FilterPolicy": nested, "FilterPolicyScope": "MessageBody"})["SubscriptionArn"]
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["FilterPolicyScope"] == "MessageBody"
