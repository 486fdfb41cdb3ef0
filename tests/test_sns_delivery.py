"""SNS deliveries beyond SQS: HTTP endpoints (confirmation, notifications, retries into
a dead-letter queue), email/email-json/SMS captured at /_virga/sns/messages."""
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from virga_testlib import make_client, unique_name


@pytest.fixture
def http_endpoint():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _wait_for(received, n, timeout=5):
    deadline = time.time() + timeout
    while len(received) < n and time.time() < deadline:
        time.sleep(0.02)
    return received


def _captured(endpoint, protocol):
    with urllib.request.urlopen(f"{endpoint}/_virga/sns/messages?protocol={protocol}", timeout=5) as r:
        return json.loads(r.read())["messages"]


def test_http_subscription_confirmation_and_notification(endpoint, http_endpoint):
    url, received = http_endpoint
    sns = make_client(endpoint, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)["SubscriptionArn"] == "pending confirmation"
    headers, confirmation = _wait_for(received, 1)[0]
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert confirmation["Type"] == "SubscriptionConfirmation"
    assert confirmation["TopicArn"] == topic
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed[0]["SubscriptionArn"] == "PendingConfirmation"
    # Pending subscriptions get nothing.
    sns.publish(TopicArn=topic, Message="too early")
    # Visiting the SubscribeURL confirms, as a real endpoint does.
    urllib.request.urlopen(confirmation["SubscribeURL"], timeout=5).read()
    sub_arn = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
    assert sub_arn.startswith(topic + ":")
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
    assert attrs["PendingConfirmation"] == "false"
    sns.publish(TopicArn=topic, Message="hello http", Subject="Greeting",
                MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    headers, note = _wait_for(received, 2)[1]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-subscription-arn"] == sub_arn
    assert note["Type"] == "Notification"
    assert note["Message"] == "hello http"
    assert note["Subject"] == "Greeting"
    assert note["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    assert len(received) == 2  # "too early" was never sent


def test_confirm_subscription_with_token(endpoint, http_endpoint):
    url, received = http_endpoint
    sns = make_client(endpoint, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
    token = _wait_for(received, 1)[0][1]["Token"]
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.confirm_subscription(TopicArn=topic, Token="not-the-token")
    arn = sns.confirm_subscription(TopicArn=topic, Token=token)["SubscriptionArn"]
    assert arn.startswith(topic + ":")


def test_email_and_sms_are_captured(endpoint):
    sns = make_client(endpoint, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    mail = f"{unique_name()}@example.com"
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=mail)
    sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint="json-" + mail)
    sns.publish(TopicArn=topic, Message="server down", Subject="Alarm")
    plain = [m for m in _captured(endpoint, "email") if m["endpoint"] == mail]
    assert [(m["subject"], m["message"]) for m in plain] == [("Alarm", "server down")]
    as_json = [m for m in _captured(endpoint, "email-json") if m["endpoint"] == "json-" + mail]
    assert json.loads(as_json[0]["message"])["Message"] == "server down"
    phone = "+1555" + str(int(time.time() * 1000))[-7:]
    sns.publish(PhoneNumber=phone, Message="your code is 1234")
    assert [m["message"] for m in _captured(endpoint, "sms") if m["endpoint"] == phone] == ["your code is 1234"]


def test_failed_delivery_goes_to_the_subscription_dead_letter_queue(endpoint):
    sns, sqs = make_client(endpoint, "sns"), make_client(endpoint, "sqs")
    dlq = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    # The subscribed queue does not exist, so every delivery fails.
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:us-east-1:000000000000:{unique_name()}",
                  Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn}),
                              "RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message="undeliverable")
    msgs = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=3).get("Messages", [])
    assert [m["Body"] for m in msgs] == ["undeliverable"]


class _Recorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.virga_only
def test_http_delivery_pending_at_a_crash_is_resumed_after_restart(start_server):
    # An acknowledged publish to an HTTP subscriber whose endpoint is down is kept
    # in Virga's outbox: kill -9 during the retries, restart, and it still arrives.
    class Recorder(_Recorder):
        received = []

    endpoint_server = HTTPServer(("127.0.0.1", 0), Recorder)
    port = endpoint_server.server_address[1]
    threading.Thread(target=endpoint_server.serve_forever, daemon=True).start()
    server = start_server()
    sns = make_client(server.endpoint, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"http://127.0.0.1:{port}/hook")
    token = _wait_for(Recorder.received, 1)[0]["Token"]
    sns.confirm_subscription(TopicArn=topic, Token=token)
    endpoint_server.shutdown()
    endpoint_server.server_close()  # now the endpoint refuses connections

    sns.publish(TopicArn=topic, Message="survives the crash")
    server.kill()
    endpoint_server = HTTPServer(("127.0.0.1", port), Recorder)
    threading.Thread(target=endpoint_server.serve_forever, daemon=True).start()
    try:
        server.start()
        notes = _wait_for(Recorder.received, 2, timeout=10)
        assert [n["Message"] for n in notes[1:]] == ["survives the crash"]
    finally:
        endpoint_server.shutdown()
        endpoint_server.server_close()
