"""HTTP/1.1 on the wire, below the SDKs: requests that arrive in pieces, pipelined
requests, keep-alive connections that idle between requests, and bodies larger than
one read. Virga's HTTP layer reads a new request into a buffer sized to what arrived
and lets go of it while a connection waits, so these are the cases that exercise it.
"""
import json
import socket
import time
from urllib.parse import urlsplit

from virga_testlib import unique_name


def connect(endpoint):
    u = urlsplit(endpoint)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    return s, u.netloc


def sqs_request(host, target, body, extra_headers=""):
    data = json.dumps(body).encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: AmazonSQS.{target}\r\n"
        f"Content-Type: application/x-amz-json-1.0\r\n{extra_headers}"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    return head, data


class Reader:
    """Reads whole responses (status, headers, Content-Length body) off a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        assert chunk, "connection closed before a whole response arrived"
        self.buf += chunk

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def assert_sent_then_received(s, host, url, message):
    """Reads the answer to a SendMessage already written to `s`, then receives the
    message on the same connection and checks it arrived whole."""
    r = Reader(s)
    status, _, body = r.response()
    assert status == 200, body
    head, data = sqs_request(host, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 1})
    s.sendall(head + data)
    status, _, body = r.response()
    assert status == 200, body
    assert json.loads(body)["Messages"][0]["Body"] == message


def create_queue(endpoint):
    s, host = connect(endpoint)
    with s:
        head, data = sqs_request(host, "CreateQueue", {"QueueName": unique_name("wire")})
        s.sendall(head + data)
        status, _, body = Reader(s).response()
    assert status == 200, body
    return json.loads(body)["QueueUrl"]


def test_request_head_arriving_a_byte_at_a_time_is_answered(endpoint):
    url = create_queue(endpoint)
    s, host = connect(endpoint)
    with s:
        head, data = sqs_request(host, "GetQueueAttributes",
                                 {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
        for i in range(len(head)):
            s.sendall(head[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.001)
        time.sleep(0.05)
        s.sendall(data)
        status, _, body = Reader(s).response()
    assert status == 200, body
    assert json.loads(body)["Attributes"]["QueueArn"].endswith(url.rsplit("/", 1)[1])


def test_body_arriving_in_pieces_after_the_head_is_read_whole(endpoint):
    url = create_queue(endpoint)
    message = "piecewise " * 500  # 5,000 bytes
    s, host = connect(endpoint)
    with s:
        head, data = sqs_request(host, "SendMessage", {"QueueUrl": url, "MessageBody": message})
        s.sendall(head)
        time.sleep(0.05)
        for i in range(0, len(data), 700):
            s.sendall(data[i:i + 700])
            time.sleep(0.01)
        assert_sent_then_received(s, host, url, message)


def test_pipelined_requests_in_one_write_are_answered_in_order(endpoint):
    url = create_queue(endpoint)
    s, host = connect(endpoint)
    with s:
        payload = b""
        for i in range(5):
            head, data = sqs_request(host, "SendMessage",
                                     {"QueueUrl": url, "MessageBody": f"m{i}"})
            payload += head + data
        head, data = sqs_request(host, "GetQueueAttributes",
                                 {"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]})
        payload += head + data
        s.sendall(payload)
        r = Reader(s)
        ids = []
        for _ in range(5):
            status, _, body = r.response()
            assert status == 200, body
            ids.append(json.loads(body)["MessageId"])
        status, _, body = r.response()
    assert len(set(ids)) == 5
    assert status == 200, body
    assert json.loads(body)["Attributes"]["ApproximateNumberOfMessages"] == "5"


def test_keep_alive_connection_serves_requests_after_idling(endpoint):
    url = create_queue(endpoint)
    s, host = connect(endpoint)
    with s:
        r = Reader(s)
        for i in range(3):
            head, data = sqs_request(host, "SendMessage",
                                     {"QueueUrl": url, "MessageBody": f"after idle {i}"})
            s.sendall(head + data)
            status, _, body = r.response()
            assert status == 200, body
            time.sleep(0.3)
        head, data = sqs_request(host, "ReceiveMessage",
                                 {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1})
        s.sendall(head + data)
        status, _, body = r.response()
    assert status == 200, body
    got = {m["Body"] for m in json.loads(body)["Messages"]}
    assert got <= {f"after idle {i}" for i in range(3)} and got


def test_body_larger_than_one_read_is_received_intact(endpoint):
    url = create_queue(endpoint)
    # 200 KiB of varied text: many reads, and the read size grows as it goes.
    message = "".join(f"{i:07d}," for i in range(25_600))
    s, host = connect(endpoint)
    with s:
        head, data = sqs_request(host, "SendMessage", {"QueueUrl": url, "MessageBody": message})
        s.sendall(head + data)
        assert_sent_then_received(s, host, url, message)


def test_long_poll_answers_on_a_connection_that_then_carries_on(endpoint):
    # The waiting receive holds no read buffer; the next request on the same
    # connection must still be read correctly.
    url = create_queue(endpoint)
    s, host = connect(endpoint)
    sender, _ = connect(endpoint)
    with s, sender:
        r = Reader(s)
        head, data = sqs_request(host, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 10})
        s.sendall(head + data)
        time.sleep(0.3)
        head, data = sqs_request(host, "SendMessage", {"QueueUrl": url, "MessageBody": "wake"})
        sender.sendall(head + data)
        assert Reader(sender).response()[0] == 200
        status, _, body = r.response()
        assert status == 200, body
        assert json.loads(body)["Messages"][0]["Body"] == "wake"
        head, data = sqs_request(host, "GetQueueAttributes",
                                 {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
        s.sendall(head + data)
        status, _, body = r.response()
    assert status == 200, body
    assert "QueueArn" in json.loads(body)["Attributes"]
