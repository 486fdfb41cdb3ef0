"""The gateway itself: the /_virga control endpoints, and how requests that are
not an S3 operation, or carry a malformed body, are answered."""
import json
import urllib.request

from virga_testlib import (
    expect_error,
    key_path,
    md5_b64,
    parse_error,
    raw_request,
    unique_name,
)


# ---------------------------------------------------------------------------
# /_virga/health, /_virga/reset, /_virga/clock
# ---------------------------------------------------------------------------
def test_health_reports_version_uptime_and_services(endpoint):
    with urllib.request.urlopen(endpoint + "/_virga/health", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        first = json.loads(resp.read())
    assert isinstance(first["version"], str) and first["version"]
    assert isinstance(first["uptime"], (int, float)) and not isinstance(first["uptime"], bool)
    assert first["uptime"] >= 0
    assert "s3" in first["services"]
    with urllib.request.urlopen(endpoint + "/_virga/health", timeout=5) as resp:
        second = json.loads(resp.read())
    assert second["uptime"] >= first["uptime"]
    assert second["version"] == first["version"]


def test_health_needs_no_credentials(virga_server):
    # Plain unsigned GET, like a readiness probe.
    resp = raw_request(virga_server.endpoint, "GET", "/_virga/health", sign=False)
    assert resp.status == 200
    assert "s3" in json.loads(resp.body)["services"]


def test_reset_empties_all_state(s3, endpoint, empty_world):
    names = [unique_name() for _ in range(2)]
    for name in names:
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == set(names)

    resp = raw_request(endpoint, "POST", "/_virga/reset", sign=False)
    assert 200 <= resp.status < 300

    assert s3.list_buckets()["Buckets"] == []
    with expect_error("404", 404):
        s3.head_bucket(Bucket=names[0])
    with expect_error("NoSuchBucket", 404):
        s3.get_object(Bucket=names[0], Key="k")
    # The world works normally afterwards, and the name is free again.
    s3.create_bucket(Bucket=names[0])
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [names[0]]


def test_clock_advance_moves_last_modified(clock_server, time_machine):
    s3 = clock_server.client()
    name = unique_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="before", Body=b"1")
    before = s3.head_object(Bucket=name, Key="before")["LastModified"]

    time_machine.advance(clock_server, 3 * 3600)

    s3.put_object(Bucket=name, Key="after", Body=b"2")
    after = s3.head_object(Bucket=name, Key="after")["LastModified"]
    delta = (after - before).total_seconds()
    assert 3 * 3600 - 5 <= delta <= 3 * 3600 + 120, delta
    # The object written before keeps its own timestamp.
    assert s3.head_object(Bucket=name, Key="before")["LastModified"] == before


def test_clock_rejects_malformed_body(clock_server):
    resp = raw_request(clock_server.endpoint, "POST", "/_virga/clock",
                       headers={"Content-Type": "application/json"}, body=b"{not json", sign=False)
    assert resp.status == 400


# ---------------------------------------------------------------------------
# Requests that are not an S3 operation
# ---------------------------------------------------------------------------
def test_unsupported_method_on_bucket_is_method_not_allowed(endpoint, bucket):
    resp = raw_request(endpoint, "PATCH", key_path(bucket))
    assert resp.status == 405
    err = resp.error()
    assert err["Code"] == "MethodNotAllowed"
    assert err["Message"] == "The specified method is not allowed against this resource."
    assert err["Method"] == "PATCH"


def test_unsupported_method_on_object_is_method_not_allowed(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"data")
    resp = raw_request(endpoint, "PATCH", key_path(bucket, "obj"), body=b"x")
    assert resp.status == 405
    assert resp.error()["Code"] == "MethodNotAllowed"
    # The object is untouched.
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"data"


def test_options_without_origin_is_bad_request(endpoint, bucket):
    resp = raw_request(endpoint, "OPTIONS", key_path(bucket, "k"), sign=False)
    assert resp.status == 400
    err = resp.error()
    assert err["Code"] == "BadRequest"
    assert err["Message"] == "Insufficient information. Origin request header needed."


def test_error_document_shape(endpoint):
    name = unique_name()
    resp = raw_request(endpoint, "GET", key_path(name, "some/key"))
    assert resp.status == 404
    assert resp.header("Content-Type", "").startswith("application/xml")
    assert resp.header("x-amz-request-id")
    err = parse_error(resp.body)
    assert err["Code"] == "NoSuchBucket"
    assert err["Message"] == "The specified bucket does not exist"
    assert err["BucketName"] == name
    assert err["RequestId"] == resp.header("x-amz-request-id")


def test_every_response_has_a_request_id(endpoint, bucket, s3):
    resp = s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    assert resp["ResponseMetadata"]["RequestId"]
    ids = {s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["RequestId"] for _ in range(3)}
    assert len(ids) == 3, "request ids must be unique per request"


# ---------------------------------------------------------------------------
# Malformed XML bodies
# ---------------------------------------------------------------------------
MALFORMED = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag>"  # never closed


def test_malformed_xml_in_put_bucket_tagging(endpoint, bucket, s3):
    resp = raw_request(endpoint, "PUT", key_path(bucket), query="tagging", body=MALFORMED,
                       headers={"Content-MD5": md5_b64(MALFORMED), "Content-Type": "application/xml"})
    assert resp.status == 400
    err = resp.error()
    assert err["Code"] == "MalformedXML"
    assert err["Message"] == ("The XML you provided was not well-formed or did not validate "
                              "against our published schema")
    with expect_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)


def test_malformed_xml_in_delete_objects(endpoint, bucket, s3):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"1")
    body = b"<Delete><Object><Key>keep</Key></Object>"
    resp = raw_request(endpoint, "POST", key_path(bucket), query="delete", body=body,
                       headers={"Content-MD5": md5_b64(body), "Content-Type": "application/xml"})
    assert resp.status == 400
    assert resp.error()["Code"] == "MalformedXML"
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"1"


def test_malformed_xml_in_create_bucket(endpoint, s3):
    name = unique_name()
    body = b"<CreateBucketConfiguration><LocationConstraint>eu-west-1"
    resp = raw_request(endpoint, "PUT", key_path(name), body=body,
                       headers={"Content-Type": "application/xml"})
    assert resp.status == 400
    assert resp.error()["Code"] == "MalformedXML"
    with expect_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_xml_with_wrong_root_element_is_malformed(endpoint, bucket):
    body = b"<NotTagging><TagSet/></NotTagging>"
    resp = raw_request(endpoint, "PUT", key_path(bucket), query="tagging", body=body,
                       headers={"Content-MD5": md5_b64(body), "Content-Type": "application/xml"})
    assert resp.status == 400
    assert resp.error()["Code"] == "MalformedXML"
