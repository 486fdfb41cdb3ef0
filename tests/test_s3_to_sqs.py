"""S3 event notifications delivered to SQS queues (the photo/worker pipeline)."""
import json
import threading
import time

from virga_testlib import make_client, unique_name


def _queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _receive_all(sqs, url, want, timeout=10):
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in resp.get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def test_object_created_events_reach_the_queue(endpoint):
    s3, sqs = make_client(endpoint, "s3"), make_client(endpoint, "sqs")
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    url, arn = _queue(sqs, unique_name())
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}}}]})
    # S3 first sends a test event to the new destination.
    test_event = _receive_all(sqs, url, 1)
    assert test_event[0]["Event"] == "s3:TestEvent"
    assert test_event[0]["Bucket"] == bucket
    s3.put_object(Bucket=bucket, Key="photos/cat 1.jpg", Body=b"meow")
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"skip me")
    s3.copy_object(Bucket=bucket, Key="photos/copy.jpg", CopySource={"Bucket": bucket, "Key": "photos/cat 1.jpg"})
    events = _receive_all(sqs, url, 2)
    records = [e["Records"][0] for e in events]
    assert sorted(r["eventName"] for r in records) == ["ObjectCreated:Copy", "ObjectCreated:Put"]
    put = next(r for r in records if r["eventName"] == "ObjectCreated:Put")
    assert put["eventSource"] == "aws:s3"
    assert put["s3"]["bucket"]["name"] == bucket
    assert put["s3"]["object"]["key"] == "photos/cat+1.jpg"
    assert put["s3"]["object"]["size"] == 4
    assert _receive_all(sqs, url, 1, timeout=1.5) == []


def test_worker_fleet_processes_each_upload_once(endpoint):
    s3, sqs = make_client(endpoint, "s3"), make_client(endpoint, "sqs")
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    url, arn = _queue(sqs, unique_name())
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:Put"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}}]})
    keys = [f"in/{i:03d}" for i in range(60)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    seen, lock = [], threading.Lock()

    def worker():
        c = make_client(endpoint, "sqs")
        idle = 0
        while idle < 3:
            resp = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     VisibilityTimeout=60)
            msgs = resp.get("Messages", [])
            idle = 0 if msgs else idle + 1
            for m in msgs:
                body = json.loads(m["Body"])
                if "Records" in body:
                    key = body["Records"][0]["s3"]["object"]["key"]
                    # Processing: read the object the event names.
                    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
                    with lock:
                        seen.append(key)
                c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == keys
