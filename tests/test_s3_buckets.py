"""Bucket operations: CreateBucket, HeadBucket, ListBuckets, DeleteBucket,
GetBucketLocation, and path- vs virtual-host-style addressing."""
import datetime

import pytest

from virga_testlib import (
    expect_error,
    headers_of,
    key_path,
    raw_request,
    unique_name,
)


# ---------------------------------------------------------------------------
# CreateBucket
# ---------------------------------------------------------------------------
def test_create_bucket_us_east_1(s3):
    name = unique_name()
    resp = s3.create_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Location"] == "/" + name
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert headers_of(head)["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None


def test_create_bucket_with_location_constraint(s3):
    name = unique_name()
    resp = s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    listed = {b["Name"]: b for b in s3.list_buckets()["Buckets"]}
    assert name in listed


def test_create_bucket_us_east_1_location_constraint_is_invalid(s3):
    # us-east-1 is the default; naming it explicitly is rejected by S3.
    name = unique_name()
    with expect_error("InvalidLocationConstraint", 400):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    with expect_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_create_bucket_unknown_location_constraint_is_invalid(s3):
    with expect_error("InvalidLocationConstraint", 400):
        s3.create_bucket(Bucket=unique_name(),
                         CreateBucketConfiguration={"LocationConstraint": "mars-north-1"})


def test_create_existing_bucket_outside_us_east_1_is_already_owned_by_you(s3):
    name = unique_name()
    config = {"LocationConstraint": "eu-west-1"}
    s3.create_bucket(Bucket=name, CreateBucketConfiguration=config)
    s3.put_object(Bucket=name, Key="k", Body=b"still here")
    with expect_error("BucketAlreadyOwnedByYou", 409) as info:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration=config)
    assert info.value.response["Error"]["BucketName"] == name
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"still here"


def test_recreate_own_bucket_in_us_east_1_is_legacy_200(s3, bucket):
    # AWS: "For legacy compatibility, if you re-create an existing bucket that
    # you already own in the North Virginia Region, Amazon S3 returns 200 OK"
    # (everywhere else: BucketAlreadyOwnedByYou, tested above). Contents stay.
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    resp = s3.create_bucket(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names.count(bucket) == 1


@pytest.mark.parametrize("name", [
    "UPPER",
    "ab",
    "bad..name",
    "a" * 64,
    "-leading-dash",
    "trailing-dash-",
    "under_score",
    "192.168.5.4",
    "xn--punycode-prefix",
    "ends-with-s3alias",
])
def test_create_bucket_invalid_name(s3, name):
    with expect_error("InvalidBucketName", 400) as info:
        s3.create_bucket(Bucket=name)
    assert info.value.response["Error"]["Message"] == "The specified bucket is not valid."
    assert info.value.response["Error"]["BucketName"] == name


def test_create_bucket_name_length_limits(s3):
    shortest = unique_name()[-3:]          # 3 hex characters
    longest = (unique_name() + "-" + "x" * 63)[:63]
    for name in (shortest, longest):
        s3.create_bucket(Bucket=name)
        s3.head_bucket(Bucket=name)
        s3.delete_bucket(Bucket=name)


def test_create_bucket_with_dots(s3):
    name = "dotted." + unique_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"


# ---------------------------------------------------------------------------
# HeadBucket
# ---------------------------------------------------------------------------
def test_head_bucket_missing_is_404_without_body(s3, endpoint):
    name = unique_name()
    with expect_error("404", 404) as info:
        s3.head_bucket(Bucket=name)
    # botocore fills code/message from the status line when there is no body.
    assert info.value.response["Error"]["Message"] == "Not Found"
    raw = raw_request(endpoint, "HEAD", key_path(name))
    assert raw.status == 404
    assert raw.body == b""


def test_head_bucket_existing(s3, bucket):
    resp = s3.head_bucket(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["BucketRegion"] == "us-east-1"


# ---------------------------------------------------------------------------
# ListBuckets
# ---------------------------------------------------------------------------
def test_list_buckets_exact(s3, empty_world):
    assert s3.list_buckets()["Buckets"] == []
    names = sorted(unique_name() for _ in range(3))
    before = datetime.datetime.now(datetime.timezone.utc)
    for name in reversed(names):
        s3.create_bucket(Bucket=name)
    resp = s3.list_buckets()
    assert [b["Name"] for b in resp["Buckets"]] == names  # sorted by name
    for b in resp["Buckets"]:
        assert abs((b["CreationDate"] - before).total_seconds()) < 120
    assert resp["Owner"]["ID"]


def test_list_buckets_pagination_and_prefix(s3, empty_world):
    names = sorted(["pa-" + unique_name(), "pa-" + unique_name(), "pb-" + unique_name()])
    for name in names:
        s3.create_bucket(Bucket=name)
    first = s3.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == names[:2]
    assert first["ContinuationToken"]
    second = s3.list_buckets(MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in second["Buckets"]] == names[2:]
    assert "ContinuationToken" not in second

    prefixed = s3.list_buckets(Prefix="pa-")
    assert [b["Name"] for b in prefixed["Buckets"]] == [n for n in names if n.startswith("pa-")]
    assert prefixed["Prefix"] == "pa-"


def test_list_buckets_reports_region(s3, empty_world):
    east, west = unique_name(), unique_name()
    s3.create_bucket(Bucket=east)
    s3.create_bucket(Bucket=west, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    # BucketRegion is part of the answer once the request carries any of the
    # ListBuckets parameters.
    regions = {b["Name"]: b["BucketRegion"] for b in s3.list_buckets(MaxBuckets=100)["Buckets"]}
    assert regions == {east: "us-east-1", west: "eu-west-1"}
    only_west = s3.list_buckets(BucketRegion="eu-west-1")["Buckets"]
    assert [b["Name"] for b in only_west] == [west]


# ---------------------------------------------------------------------------
# DeleteBucket
# ---------------------------------------------------------------------------
def test_delete_empty_bucket(s3, bucket):
    resp = s3.delete_bucket(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("404", 404):
        s3.head_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_delete_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    with expect_error("BucketNotEmpty", 409) as info:
        s3.delete_bucket(Bucket=bucket)
    assert info.value.response["Error"]["Message"] == "The bucket you tried to delete is not empty"
    s3.delete_object(Bucket=bucket, Key="x")
    assert s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_missing_bucket(s3):
    with expect_error("NoSuchBucket", 404) as info:
        s3.delete_bucket(Bucket=unique_name())
    assert info.value.response["Error"]["Message"] == "The specified bucket does not exist"


def test_bucket_name_reusable_after_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"old")
    s3.delete_object(Bucket=bucket, Key="old")
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# ---------------------------------------------------------------------------
# GetBucketLocation
# ---------------------------------------------------------------------------
def test_get_bucket_location_missing_bucket(s3):
    with expect_error("NoSuchBucket", 404):
        s3.get_bucket_location(Bucket=unique_name())


def test_get_bucket_location_raw_xml(endpoint, s3):
    name = unique_name()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"})
    resp = raw_request(endpoint, "GET", key_path(name), query="location")
    assert resp.status == 200
    assert b"<LocationConstraint" in resp.body and b"ap-southeast-2</LocationConstraint>" in resp.body


# ---------------------------------------------------------------------------
# Virtual-host style addressing
# ---------------------------------------------------------------------------
def test_virtual_host_bucket_localhost(s3, s3v):
    name = unique_name()
    s3v.create_bucket(Bucket=name)  # PUT http://NAME.localhost:PORT/
    s3.head_bucket(Bucket=name)
    s3v.put_object(Bucket=name, Key="dir/file.txt", Body=b"via vhost")
    assert s3.get_object(Bucket=name, Key="dir/file.txt")["Body"].read() == b"via vhost"
    s3.put_object(Bucket=name, Key="other", Body=b"via path")
    assert s3v.get_object(Bucket=name, Key="other")["Body"].read() == b"via path"
    keys = [o["Key"] for o in s3v.list_objects_v2(Bucket=name)["Contents"]]
    assert keys == ["dir/file.txt", "other"]
    assert name in [b["Name"] for b in s3v.list_buckets()["Buckets"]]
    s3v.delete_object(Bucket=name, Key="dir/file.txt")
    s3v.delete_object(Bucket=name, Key="other")
    s3v.delete_bucket(Bucket=name)
    with expect_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_virtual_host_bucket_s3_localhost(s3, s3v_s3, bucket):
    # http://BUCKET.s3.localhost:PORT/key
    s3v_s3.put_object(Bucket=bucket, Key="a b/c", Body=b"s3.localhost")
    assert s3.get_object(Bucket=bucket, Key="a b/c")["Body"].read() == b"s3.localhost"
    assert s3v_s3.head_object(Bucket=bucket, Key="a b/c")["ContentLength"] == len(b"s3.localhost")
    assert [o["Key"] for o in s3v_s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a b/c"]


def test_virtual_host_missing_bucket(s3v):
    with expect_error("NoSuchBucket", 404):
        s3v.list_objects_v2(Bucket=unique_name())


def test_virtual_host_raw_host_header(endpoint, port, s3, bucket):
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hi")
    for host in (f"{bucket}.localhost:{port}", f"{bucket}.s3.localhost:{port}"):
        resp = raw_request(endpoint, "GET", "/hello.txt", host=host)
        assert resp.status == 200, (host, resp.status, resp.body)
        assert resp.body == b"hi"
