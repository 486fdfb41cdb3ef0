"""Bucket sub-resources: tagging, policy, CORS (configuration and real
preflight/response headers), lifecycle (configuration and expiration after
moving the clock), notifications, and static website hosting."""
import datetime
import hashlib
import json
import time

import pytest

from virga_testlib import (
    expect_error,
    headers_of,
    key_path,
    raw_request,
    unique_name,
)


def sorted_tags(tagset):
    return sorted((t["Key"], t["Value"]) for t in tagset)


# ---------------------------------------------------------------------------
# Bucket tagging
# ---------------------------------------------------------------------------
def test_bucket_tagging(s3, bucket):
    with expect_error("NoSuchTagSet", 404) as info:
        s3.get_bucket_tagging(Bucket=bucket)
    assert info.value.response["Error"]["Message"] == "The TagSet does not exist"

    tags = [{"Key": "project", "Value": "virga"}, {"Key": "env", "Value": "test run"}]
    resp = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert sorted_tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == sorted_tags(tags)

    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
    assert sorted_tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == [("only", "one")]

    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)


def test_bucket_tagging_errors(s3, bucket):
    with expect_error("InvalidTag", 400):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
            {"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]})
    with expect_error("InvalidTag", 400):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "k" * 129, "Value": "v"}]})
    with expect_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)
    with expect_error("NoSuchBucket", 404):
        s3.get_bucket_tagging(Bucket=unique_name())


# ---------------------------------------------------------------------------
# Bucket policy
# ---------------------------------------------------------------------------
def deny_policy(bucket):
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyDeleteProtected",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{bucket}/protected/*",
        }],
    }


def test_bucket_policy_round_trip(s3, bucket):
    with expect_error("NoSuchBucketPolicy", 404) as info:
        s3.get_bucket_policy(Bucket=bucket)
    assert info.value.response["Error"]["Message"] == "The bucket policy does not exist"

    policy = deny_policy(bucket)
    resp = s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy

    assert s3.delete_bucket_policy(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=bucket)


def test_bucket_policy_malformed(s3, bucket):
    with expect_error("MalformedPolicy", 400):
        s3.put_bucket_policy(Bucket=bucket, Policy="this is not json")
    with expect_error("MalformedPolicy", 400):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17"}))
    # A resource outside this bucket.
    with expect_error("MalformedPolicy", 400) as info:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_policy(unique_name())))
    assert info.value.response["Error"]["Message"] == "Policy has invalid resource"
    with expect_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=bucket)


# ---------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------
CORS_RULES = [
    {
        "ID": "app",
        "AllowedOrigins": ["http://app.example.com"],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["content-type", "x-amz-meta-*"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 600,
    },
    {
        "AllowedOrigins": ["http://*.example.org"],
        "AllowedMethods": ["GET", "HEAD"],
    },
    {
        "AllowedOrigins": ["*"],
        "AllowedMethods": ["GET"],
    },
]


def method_set(value):
    return {m.strip() for m in (value or "").split(",") if m.strip()}


@pytest.fixture
def cors_bucket(s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": CORS_RULES})
    s3.put_object(Bucket=bucket, Key="asset.js", Body=b"console.log(1)", ContentType="text/javascript")
    return bucket


def preflight(endpoint, bucket, key, origin=None, method=None, headers=None):
    hdrs = {}
    if origin is not None:
        hdrs["Origin"] = origin
    if method is not None:
        hdrs["Access-Control-Request-Method"] = method
    if headers is not None:
        hdrs["Access-Control-Request-Headers"] = headers
    # Browsers send preflights without credentials.
    return raw_request(endpoint, "OPTIONS", key_path(bucket, key), headers=hdrs, sign=False)


def test_cors_configuration_round_trip(s3, bucket):
    with expect_error("NoSuchCORSConfiguration", 404) as info:
        s3.get_bucket_cors(Bucket=bucket)
    assert info.value.response["Error"]["Message"] == "The CORS configuration does not exist"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": CORS_RULES})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == CORS_RULES
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)


def test_cors_configuration_invalid_method(s3, bucket):
    with expect_error("InvalidRequest", 400) as info:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
    assert info.value.response["Error"]["Message"] == (
        "Found unsupported HTTP method in CORS config. Unsupported method is PATCH")


def test_cors_preflight_allowed(endpoint, cors_bucket):
    resp = preflight(endpoint, cors_bucket, "asset.js", origin="http://app.example.com",
                     method="PUT", headers="content-type, x-amz-meta-color")
    assert resp.status == 200, resp.body
    assert resp.header("Access-Control-Allow-Origin") == "http://app.example.com"
    assert method_set(resp.header("Access-Control-Allow-Methods")) == {"GET", "PUT"}
    allowed_headers = {h.strip().lower() for h in resp.header("Access-Control-Allow-Headers").split(",")}
    assert allowed_headers == {"content-type", "x-amz-meta-color"}
    assert resp.header("Access-Control-Max-Age") == "600"


def test_cors_preflight_for_missing_object_and_bucket_level(endpoint, cors_bucket):
    # A preflight concerns the bucket's rules, not the object's existence.
    for key in ("not/uploaded/yet.bin", ""):
        resp = preflight(endpoint, cors_bucket, key, origin="http://app.example.com", method="GET")
        assert resp.status == 200, (key, resp.body)
        assert resp.header("Access-Control-Allow-Origin") == "http://app.example.com"


def test_cors_preflight_wildcard_rules(endpoint, cors_bucket):
    resp = preflight(endpoint, cors_bucket, "asset.js", origin="http://cdn.example.org", method="HEAD")
    assert resp.status == 200
    assert resp.header("Access-Control-Allow-Origin") == "http://cdn.example.org"
    assert method_set(resp.header("Access-Control-Allow-Methods")) == {"GET", "HEAD"}

    resp = preflight(endpoint, cors_bucket, "asset.js", origin="https://anyone.test", method="GET")
    assert resp.status == 200
    assert resp.header("Access-Control-Allow-Origin") == "*"
    assert method_set(resp.header("Access-Control-Allow-Methods")) == {"GET"}


@pytest.mark.parametrize("origin,method,headers", [
    ("https://evil.example.net", "PUT", None),           # origin matches only the GET rule
    ("http://app.example.com", "DELETE", None),          # method not allowed anywhere
    ("http://app.example.com", "PUT", "x-custom-header"),  # header not allowed
])
def test_cors_preflight_rejected(endpoint, cors_bucket, origin, method, headers):
    resp = preflight(endpoint, cors_bucket, "asset.js", origin=origin, method=method, headers=headers)
    assert resp.status == 403
    err = resp.error()
    assert err["Code"] == "AccessForbidden"
    assert err["Message"].startswith("CORSResponse: This CORS request is not allowed.")
    assert resp.header("Access-Control-Allow-Origin") is None


def test_cors_preflight_without_configuration(endpoint, bucket):
    resp = preflight(endpoint, bucket, "k", origin="http://app.example.com", method="GET")
    assert resp.status == 403
    err = resp.error()
    assert err["Code"] == "AccessForbidden"
    assert err["Message"] == "CORSResponse: CORS is not enabled for this bucket."


def test_cors_headers_on_actual_get(s3, cors_bucket):
    origin = {"value": None}

    def add_origin(request, **kwargs):
        if origin["value"]:
            request.headers["Origin"] = origin["value"]

    s3.meta.events.register("before-sign.s3.GetObject", add_origin)

    origin["value"] = "http://app.example.com"
    got = s3.get_object(Bucket=cors_bucket, Key="asset.js")
    hdrs = headers_of(got)
    assert hdrs["access-control-allow-origin"] == "http://app.example.com"
    assert {h.strip().lower() for h in hdrs["access-control-expose-headers"].split(",")} == {
        "etag", "x-amz-request-id"}
    assert got["Body"].read() == b"console.log(1)"

    origin["value"] = "https://somewhere.else"
    hdrs = headers_of(s3.get_object(Bucket=cors_bucket, Key="asset.js"))
    assert hdrs["access-control-allow-origin"] == "*"

    origin["value"] = None
    hdrs = headers_of(s3.get_object(Bucket=cors_bucket, Key="asset.js"))
    assert "access-control-allow-origin" not in hdrs


def test_no_cors_headers_when_no_rule_matches(s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [CORS_RULES[0]]})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")

    def add_origin(request, **kwargs):
        request.headers["Origin"] = "https://not-allowed.example"

    s3.meta.events.register("before-sign.s3.GetObject", add_origin)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200  # the request itself still works
    assert "access-control-allow-origin" not in headers_of(got)


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------
LIFECYCLE_RULES = [
    {
        "ID": "expire-logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
    },
    {
        "ID": "abort-uploads",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    },
    {
        "ID": "tagged-temp",
        "Filter": {"And": {"Prefix": "data/", "Tags": [{"Key": "temp", "Value": "yes"}]}},
        "Status": "Disabled",
        "Expiration": {"Days": 3},
    },
]


def test_lifecycle_configuration_round_trip(s3, bucket):
    with expect_error("NoSuchLifecycleConfiguration", 404) as info:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert info.value.response["Error"]["Message"] == "The lifecycle configuration does not exist"

    s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                          LifecycleConfiguration={"Rules": LIFECYCLE_RULES})
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == LIFECYCLE_RULES

    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def test_lifecycle_configuration_invalid(s3, bucket):
    with expect_error("InvalidArgument", 400) as info:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
            {"ID": "zero", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 0}}]})
    assert info.value.response["Error"]["Message"] == (
        "'Days' for Expiration action must be a positive integer")
    with expect_error("InvalidArgument", 400):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
            {"ID": "same", "Filter": {"Prefix": "a/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
            {"ID": "same", "Filter": {"Prefix": "b/"}, "Status": "Enabled", "Expiration": {"Days": 1}}]})
    with expect_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def expected_expiry(last_modified, days):
    """S3 adds the days to the object's creation time and rounds up to the
    next midnight UTC."""
    moment = last_modified.astimezone(datetime.timezone.utc) + datetime.timedelta(days=days)
    midnight = datetime.datetime.combine(moment.date(), datetime.time(0), datetime.timezone.utc)
    if midnight < moment:
        midnight += datetime.timedelta(days=1)
    return midnight


def test_lifecycle_expiration_after_clock_advance(clock_server, time_machine):
    s3 = clock_server.client()
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "expire-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "disabled", "Filter": {"Prefix": "off/"}, "Status": "Disabled",
         "Expiration": {"Days": 1}},
    ]})
    for key in ("tmp/a", "tmp/b", "keep/c", "off/d"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    head = s3.head_object(Bucket=bucket, Key="tmp/a")
    expiry = expected_expiry(head["LastModified"], 1)
    assert head["Expiration"] == (
        f'expiry-date="{expiry.strftime("%a, %d %b %Y %H:%M:%S GMT")}", rule-id="expire-tmp"')
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="keep/c")
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="off/d")

    # An hour later (before the rounded-up expiry date) nothing is gone.
    time_machine.advance(clock_server, 3600)
    assert s3.get_object(Bucket=bucket, Key="tmp/a")["Body"].read() == b"tmp/a"

    time_machine.advance(clock_server, 2 * 86400)
    deadline = time.monotonic() + 10
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        if keys == ["keep/c", "off/d"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert keys == ["keep/c", "off/d"]
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="tmp/a")
    with expect_error("404", 404):
        s3.head_object(Bucket=bucket, Key="tmp/b")
    assert s3.get_object(Bucket=bucket, Key="keep/c")["Body"].read() == b"keep/c"
    assert s3.get_object(Bucket=bucket, Key="off/d")["Body"].read() == b"off/d"

    # Objects written after the move are judged from their own creation time.
    s3.put_object(Bucket=bucket, Key="tmp/new", Body=b"fresh")
    assert s3.get_object(Bucket=bucket, Key="tmp/new")["Body"].read() == b"fresh"


# ---------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------
NOTIFICATION = {
    "QueueConfigurations": [{
        "Id": "images-to-queue",
        "QueueArn": "arn:aws:sqs:us-east-1:000000000000:image-queue",
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [
            {"Name": "Prefix", "Value": "images/"},
            {"Name": "Suffix", "Value": ".jpg"},
        ]}},
    }],
    "TopicConfigurations": [{
        "Id": "deletes-to-topic",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:deletes",
        "Events": ["s3:ObjectRemoved:Delete"],
    }],
    "LambdaFunctionConfigurations": [{
        "Id": "puts-to-lambda",
        "LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:thumbnailer",
        "Events": ["s3:ObjectCreated:Put", "s3:ObjectCreated:Post"],
    }],
    "EventBridgeConfiguration": {},
}


def without_metadata(resp):
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def test_notification_configuration_round_trip(s3, bucket):
    assert without_metadata(s3.get_bucket_notification_configuration(Bucket=bucket)) == {}
    resp = s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=NOTIFICATION, SkipDestinationValidation=True)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert without_metadata(s3.get_bucket_notification_configuration(Bucket=bucket)) == NOTIFICATION
    # An empty configuration turns notifications off.
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert without_metadata(s3.get_bucket_notification_configuration(Bucket=bucket)) == {}


def test_notification_configuration_invalid_event(s3, bucket):
    with expect_error("InvalidArgument", 400):
        s3.put_bucket_notification_configuration(Bucket=bucket, SkipDestinationValidation=True,
                                                 NotificationConfiguration={"QueueConfigurations": [{
                                                     "QueueArn": NOTIFICATION["QueueConfigurations"][0]["QueueArn"],
                                                     "Events": ["s3:NoSuchEvent:*"]}]})
    assert without_metadata(s3.get_bucket_notification_configuration(Bucket=bucket)) == {}


def test_notification_configuration_missing_bucket(s3):
    with expect_error("NoSuchBucket", 404):
        s3.get_bucket_notification_configuration(Bucket=unique_name())


# ---------------------------------------------------------------------------
# Static website hosting
# ---------------------------------------------------------------------------
def website_get(endpoint, port, bucket, path, method="GET"):
    """GET through the website endpoint http://BUCKET.s3-website.localhost:PORT
    (connects to 127.0.0.1 with that Host header: no DNS needed)."""
    return raw_request(endpoint, method, path, host=f"{bucket}.s3-website.localhost:{port}", sign=False)


def make_public(s3, bucket):
    # New AWS buckets block public policies by default; lift that first.
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }))


@pytest.fixture
def site(s3, bucket):
    make_public(s3, bucket)
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"},
        "ErrorDocument": {"Key": "error.html"},
    })
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>home</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="docs/index.html", Body=b"<h1>docs</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="error.html", Body=b"<h1>oops</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="style.css", Body=b"body{}", ContentType="text/css")
    return bucket


def test_website_configuration_round_trip(s3, bucket):
    with expect_error("NoSuchWebsiteConfiguration", 404) as info:
        s3.get_bucket_website(Bucket=bucket)
    assert info.value.response["Error"]["Message"] == "The specified bucket does not have a website configuration"
    config = {"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "404.html"}}
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=config)
    assert without_metadata(s3.get_bucket_website(Bucket=bucket)) == config
    assert s3.delete_bucket_website(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchWebsiteConfiguration", 404):
        s3.get_bucket_website(Bucket=bucket)


def test_website_serves_index_document(endpoint, port, site):
    resp = website_get(endpoint, port, site, "/")
    assert resp.status == 200, resp.body
    assert resp.body == b"<h1>home</h1>"
    assert resp.header("Content-Type") == "text/html"
    resp = website_get(endpoint, port, site, "/docs/")
    assert resp.status == 200
    assert resp.body == b"<h1>docs</h1>"
    resp = website_get(endpoint, port, site, "/style.css")
    assert resp.status == 200
    assert resp.body == b"body{}"
    assert resp.header("Content-Type") == "text/css"


def test_website_redirects_folder_without_slash(endpoint, port, site):
    resp = website_get(endpoint, port, site, "/docs")
    assert resp.status == 302
    assert resp.header("Location").endswith("/docs/")


def test_website_error_document(endpoint, port, site):
    resp = website_get(endpoint, port, site, "/no/such/page.html")
    assert resp.status == 404
    assert resp.body == b"<h1>oops</h1>"
    assert resp.header("Content-Type") == "text/html"


def test_website_head(endpoint, port, site):
    resp = website_get(endpoint, port, site, "/", method="HEAD")
    assert resp.status == 200
    assert resp.header("Content-Length") == str(len(b"<h1>home</h1>"))


def test_website_without_error_document_returns_html_404(s3, endpoint, port, bucket):
    make_public(s3, bucket)
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    resp = website_get(endpoint, port, bucket, "/missing")
    assert resp.status == 404
    assert resp.header("Content-Type", "").startswith("text/html")
    assert b"NoSuchKey" in resp.body


def test_website_bucket_without_website_configuration(s3, endpoint, port, bucket):
    make_public(s3, bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"hi", ContentType="text/html")
    resp = website_get(endpoint, port, bucket, "/")
    assert resp.status == 404
    assert b"NoSuchWebsiteConfiguration" in resp.body


def test_website_missing_bucket(endpoint, port):
    resp = website_get(endpoint, port, unique_name(), "/")
    assert resp.status == 404
    assert b"NoSuchBucket" in resp.body


def test_website_redirect_all_requests(s3, endpoint, port, bucket):
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "RedirectAllRequestsTo": {"HostName": "www.example.com", "Protocol": "https"}})
    resp = website_get(endpoint, port, bucket, "/some/page.html")
    assert resp.status == 301
    assert resp.header("Location") == "https://www.example.com/some/page.html"


def test_matching_writes_record_s3_event_notifications(s3, bucket, virga_server):
    """S3 invokes a function for matching writes only; the function forwards each
    event it gets to a queue, where the test reads them."""
    import io
    import zipfile

    sqs = virga_server.client("sqs")
    lam = virga_server.client("lambda")
    queue_url = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("lambda_function.py", (
            "import boto3, json, os\n"
            "def handler(event, context):\n"
            "    boto3.client('sqs').send_message(QueueUrl=os.environ['QUEUE_URL'], MessageBody=json.dumps(event))\n"))
    function_arn = lam.create_function(
        FunctionName=f"{bucket}-f", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/r",
        Handler="lambda_function.handler", Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"QUEUE_URL": queue_url}})["FunctionArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "uploads", "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"},
                                               {"Name": "suffix", "Value": ".jpg"}]}},
        }]})
    s3.put_object(Bucket=bucket, Key="in/skip.png", Body=b"png")    # suffix does not match
    s3.put_object(Bucket=bucket, Key="out/dog.jpg", Body=b"woof")   # prefix does not match
    s3.put_object(Bucket=bucket, Key="in/cat photo.jpg", Body=b"meow")
    s3.delete_object(Bucket=bucket, Key="in/cat photo.jpg")         # not an ObjectCreated event
    mine = []
    deadline = time.monotonic() + 10
    while not mine and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1,
                                     MaxNumberOfMessages=10).get("Messages", []):
            mine.append(json.loads(m["Body"]))
    # Give a wrongly matched write the time to arrive too.
    mine += [json.loads(m["Body"]) for m in sqs.receive_message(
        QueueUrl=queue_url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])]
    # S3 sends its s3:TestEvent to queues and topics only, not to functions.
    assert [e.get("Event") for e in mine if "Records" not in e] == []
    assert len(mine) == 1, mine
    record = mine[0]["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["configurationId"] == "uploads"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    obj = record["s3"]["object"]
    assert obj["key"] == "in/cat+photo.jpg"
    assert obj["size"] == 4
    assert obj["eTag"] == hashlib.md5(b"meow").hexdigest()
    assert len(obj["sequencer"]) >= 16


def _wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def test_lifecycle_noncurrent_versions_delete_markers_and_incomplete_uploads(clock_server, time_machine):
    s3 = clock_server.client()
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "old-versions", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 5}},
    ]})
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")  # a delete marker over one version
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]

    def versions():
        resp = s3.list_object_versions(Bucket=bucket)
        return ([(v["Key"], v["VersionId"]) for v in resp.get("Versions", [])],
                [m["Key"] for m in resp.get("DeleteMarkers", [])])

    time_machine.advance(clock_server, 3600)
    assert (("doc", v1) in versions()[0]) and len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1

    # Three days on (one day, rounded up to midnight UTC, has surely passed): the
    # noncurrent versions go (v1, and "gone"'s object), then the delete marker, now
    # alone, goes too. The upload is not five days old yet.
    time_machine.advance(clock_server, 3 * 86400)
    ok = _wait_until(lambda: versions() == ([("doc", v2)], []))
    assert ok, (versions(), v1, v2)
    assert len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1

    time_machine.advance(clock_server, 3 * 86400)
    assert _wait_until(lambda: "Uploads" not in s3.list_multipart_uploads(Bucket=bucket))
    with expect_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"v2"
