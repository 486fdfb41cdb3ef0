"""SNS message signatures (verified with the certificate Virga serves at
SigningCertURL), https:// subscriptions, S3 event notifications published to
topics, and FIFO topic deduplication."""
import base64
import datetime
import json
import ssl
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from test_sns_util import drain
from test_sqs_util import queue_arn
from virga_testlib import make_client, unique_name

NOTIFICATION_FIELDS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION_FIELDS = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]


def verify_sns_signature(doc: dict) -> None:
    """Verifies an SNS document as AWS documents it: fetch SigningCertURL, rebuild
    the string to sign, check the RSA signature (SHA1 for version 1, SHA256 for 2).
    Raises cryptography's InvalidSignature on a mismatch."""
    with urllib.request.urlopen(doc["SigningCertURL"], timeout=5) as r:
        cert = x509.load_pem_x509_certificate(r.read())
    fields = NOTIFICATION_FIELDS if doc["Type"] == "Notification" else CONFIRMATION_FIELDS
    to_sign = "".join(f"{k}\n{doc[k]}\n" for k in fields if k in doc)
    algorithm = hashes.SHA1() if doc["SignatureVersion"] == "1" else hashes.SHA256()
    cert.public_key().verify(base64.b64decode(doc["Signature"]), to_sign.encode(),
                             padding.PKCS1v15(), algorithm)


@pytest.fixture
def clients(endpoint):
    return make_client(endpoint, "sns"), make_client(endpoint, "sqs")


def _topic_to_queue(sns, sqs, **topic_attrs):
    topic = sns.create_topic(Name=unique_name(), Attributes=topic_attrs)["TopicArn"]
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(name))
    return topic, url


@pytest.mark.parametrize("version", ["1", "2"])
def test_sqs_envelope_signature_verifies_with_served_certificate(clients, version):
    sns, sqs = clients
    topic, url = _topic_to_queue(sns, sqs, SignatureVersion=version)
    sns.publish(TopicArn=topic, Message="signed ünïcode message", Subject="Subj")
    sns.publish(TopicArn=topic, Message="no subject")
    envs = [json.loads(m["Body"]) for m in drain(sqs, url, 2)]
    assert {e["SignatureVersion"] for e in envs} == {version}
    for env in envs:
        verify_sns_signature(env)


def test_tampered_envelope_fails_verification(clients):
    from cryptography.exceptions import InvalidSignature
    sns, sqs = clients
    topic, url = _topic_to_queue(sns, sqs)
    sns.publish(TopicArn=topic, Message="original")
    env = json.loads(drain(sqs, url, 1)[0]["Body"])
    env["Message"] = "forged"
    with pytest.raises(InvalidSignature):
        verify_sns_signature(env)


def test_signing_certificate_is_served_as_pem(endpoint):
    with urllib.request.urlopen(f"{endpoint}/_virga/sns/SimpleNotificationService.pem", timeout=5) as r:
        assert r.status == 200
        pem = r.read()
    cert = x509.load_pem_x509_certificate(pem)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 1024


def test_signature_version_attribute_round_trips(clients):
    sns, _ = clients
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SignatureVersion"] == "2"


# ---------------------------------------------------------------------------
# HTTPS subscriptions: a local TLS endpoint whose CA Virga trusts via SSL_CERT_FILE.
# ---------------------------------------------------------------------------
def _local_ca_and_server_cert(tmp_path):
    """A throwaway CA (ca.pem) and a localhost server certificate it issued."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, public_key, signing_key, ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Virga test CA")])
    ca_cert = build(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = build(name, ca_name, key.public_key(), ca_key, ca=False)
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


@pytest.fixture
def https_endpoint(tmp_path):
    ca_path, cert_path, key_path = _local_ca_and_server_cert(tmp_path)
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
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}/hook", received, ca_path
    server.shutdown()


def _wait_for(received, n, timeout=10):
    deadline = time.time() + timeout
    while len(received) < n and time.time() < deadline:
        time.sleep(0.02)
    assert len(received) >= n, f"got {len(received)} deliveries, expected {n}"
    return received


@pytest.mark.virga_only
def test_https_subscription_confirms_and_receives_signed_notifications(start_server, https_endpoint):
    url, received, ca = https_endpoint
    server = start_server(ephemeral=True, env={"SSL_CERT_FILE": str(ca)})
    sns = make_client(server.endpoint, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=url)["SubscriptionArn"] == \
        "pending confirmation"
    headers, confirmation = _wait_for(received, 1)[0]
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    verify_sns_signature(confirmation)
    sub = sns.confirm_subscription(TopicArn=topic, Token=confirmation["Token"])["SubscriptionArn"]
    sns.publish(TopicArn=topic, Message="over tls", Subject="TLS")
    headers, note = _wait_for(received, 2)[1]
    assert headers["x-amz-sns-subscription-arn"] == sub
    assert note["Message"] == "over tls"
    verify_sns_signature(note)


@pytest.mark.virga_only
def test_https_endpoint_with_untrusted_certificate_gets_nothing(start_server, https_endpoint):
    # Without SSL_CERT_FILE Virga does not trust the self-signed endpoint, as AWS
    # would not: the TLS handshake fails, and the subscription stays pending.
    url, received, _ca = https_endpoint
    server = start_server(ephemeral=True)
    sns = make_client(server.endpoint, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=url,
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    time.sleep(1.0)
    assert received == []
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "true"


# ---------------------------------------------------------------------------
# S3 event notifications to SNS topics
# ---------------------------------------------------------------------------
def test_s3_notification_reaches_queue_through_topic(endpoint, clients):
    sns, sqs = clients
    s3 = make_client(endpoint, "s3")
    topic, url = _topic_to_queue(sns, sqs)
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "TopicConfigurations": [{
            "TopicArn": topic, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}},
        }]})
    # The configuration's s3:TestEvent comes first.
    test_env = json.loads(drain(sqs, url, 1)[0]["Body"])
    assert test_env["Subject"] == "Amazon S3 Notification"
    assert json.loads(test_env["Message"])["Event"] == "s3:TestEvent"
    s3.put_object(Bucket=bucket, Key="skip.txt", Body=b"no")
    s3.put_object(Bucket=bucket, Key="photos/cat.jpg", Body=b"meow")
    env = json.loads(drain(sqs, url, 1)[0]["Body"])
    assert env["Type"] == "Notification"
    assert env["TopicArn"] == topic
    assert env["Subject"] == "Amazon S3 Notification"
    verify_sns_signature(env)
    record = json.loads(env["Message"])["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"] == "photos/cat.jpg"
    assert record["s3"]["object"]["size"] == 4
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages") is None


# ---------------------------------------------------------------------------
# FIFO topics: deduplication within five minutes
# ---------------------------------------------------------------------------
def test_fifo_topic_deduplicates_repeated_publishes(clients):
    sns, sqs = clients
    topic = sns.create_topic(Name=unique_name() + ".fifo",
                             Attributes={"FifoTopic": "true"})["TopicArn"]
    qname = unique_name() + ".fifo"
    url = sqs.create_queue(QueueName=qname, Attributes={"FifoQueue": "true"})["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(qname),
                  Attributes={"RawMessageDelivery": "true"})
    first = sns.publish(TopicArn=topic, Message="once", MessageGroupId="g",
                        MessageDeduplicationId="d-1")
    again = sns.publish(TopicArn=topic, Message="once", MessageGroupId="g",
                        MessageDeduplicationId="d-1")
    other = sns.publish(TopicArn=topic, Message="twice", MessageGroupId="g",
                        MessageDeduplicationId="d-2")
    assert again["MessageId"] == first["MessageId"]
    assert again["SequenceNumber"] == first["SequenceNumber"]
    assert other["MessageId"] != first["MessageId"]
    bodies = []
    deadline = time.time() + 5
    while len(bodies) < 3 and time.time() < deadline:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1).get("Messages", [])
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if len(bodies) == 2:
            break
    assert bodies == ["once", "twice"]


def test_fifo_topic_content_based_dedup(clients):
    sns, _ = clients
    topic = sns.create_topic(Name=unique_name() + ".fifo",
                             Attributes={"FifoTopic": "true",
                                         "ContentBasedDeduplication": "true"})["TopicArn"]
    a = sns.publish(TopicArn=topic, Message="same body", MessageGroupId="g")
    b = sns.publish(TopicArn=topic, Message="same body", MessageGroupId="g")
    c = sns.publish(TopicArn=topic, Message="other body", MessageGroupId="g")
    assert a["MessageId"] == b["MessageId"]
    assert c["MessageId"] != a["MessageId"]
