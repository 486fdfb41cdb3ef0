"""Object operations: Put/Get/Head/Delete, metadata and content headers,
ranges, conditional requests, CopyObject, DeleteObjects, ListObjects v1/v2,
flexible checksums, object tagging and awkward keys."""
import datetime
import gzip
import os
from urllib.parse import unquote_plus

import pytest

from virga_testlib import (
    crc32_b64,
    crc32c_b64,
    expect_error,
    headers_of,
    key_path,
    make_client,
    md5_b64,
    quoted_etag,
    raw_request,
    sha1_b64,
    sha256_b64,
    sha256_hex,
    unique_name,
)

UTC = datetime.timezone.utc


def now():
    return datetime.datetime.now(UTC)


# ---------------------------------------------------------------------------
# Put / Get / Head / Delete
# ---------------------------------------------------------------------------
def test_put_get_head_delete(s3, bucket):
    body = b"hello virga"
    put = s3.put_object(Bucket=bucket, Key="greeting.txt", Body=body)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert put["ETag"] == quoted_etag(body)
    assert "VersionId" not in put  # versioning was never enabled

    get = s3.get_object(Bucket=bucket, Key="greeting.txt")
    assert get["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert get["Body"].read() == body
    assert get["ContentLength"] == len(body)
    assert get["ETag"] == quoted_etag(body)
    assert get["ContentType"] == "binary/octet-stream"  # S3's default
    assert get["AcceptRanges"] == "bytes"
    assert abs((get["LastModified"] - now()).total_seconds()) < 300

    head = s3.head_object(Bucket=bucket, Key="greeting.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == get["ETag"]
    assert head["LastModified"] == get["LastModified"]
    assert head["ContentType"] == "binary/octet-stream"

    delete = s3.delete_object(Bucket=bucket, Key="greeting.txt")
    assert delete["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchKey", 404) as info:
        s3.get_object(Bucket=bucket, Key="greeting.txt")
    assert info.value.response["Error"]["Message"] == "The specified key does not exist."
    assert info.value.response["Error"]["Key"] == "greeting.txt"


def test_get_missing_key_raw_error(endpoint, bucket):
    resp = raw_request(endpoint, "GET", key_path(bucket, "nope/missing.bin"))
    assert resp.status == 404
    assert resp.header("Content-Type", "").startswith("application/xml")
    err = resp.error()
    assert err["Code"] == "NoSuchKey"
    assert err["Key"] == "nope/missing.bin"
    assert err["RequestId"]


def test_head_missing_key_is_404_without_body(s3, bucket, endpoint):
    with expect_error("404", 404) as info:
        s3.head_object(Bucket=bucket, Key="missing")
    assert info.value.response["Error"]["Message"] == "Not Found"
    raw = raw_request(endpoint, "HEAD", key_path(bucket, "missing"))
    assert raw.status == 404
    assert raw.body == b""


def test_delete_missing_key_is_204(s3, bucket):
    resp = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_object_operations_on_missing_bucket(s3):
    name = unique_name()
    with expect_error("NoSuchBucket", 404):
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    with expect_error("NoSuchBucket", 404):
        s3.get_object(Bucket=name, Key="k")
    with expect_error("NoSuchBucket", 404):
        s3.delete_object(Bucket=name, Key="k")
    with expect_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=name)
    with expect_error("404", 404):
        s3.head_object(Bucket=name, Key="k")


def test_overwrite_replaces_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version", Metadata={"gen": "1"})
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    assert second["ETag"] == quoted_etag(b"second")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second"
    assert got["Metadata"] == {}
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


@pytest.mark.parametrize("size", [0, 1, 1000, 1024 * 1024 + 7, 6 * 1024 * 1024])
def test_etag_is_quoted_md5_and_body_round_trips(s3, bucket, size):
    body = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=body)
    assert put["ETag"] == quoted_etag(body)
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    data = got["Body"].read()
    assert len(data) == size and sha256_hex(data) == sha256_hex(body)
    assert got["ContentLength"] == size
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"obj-{size}")["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"], o["StorageClass"]) for o in listed] == [
        (f"obj-{size}", size, quoted_etag(body), "STANDARD")]


def test_requests_after_empty_put_on_same_connection(endpoint, bucket):
    # boto3 sends every PutObject with "Expect: 100-continue", also for an
    # empty body; the kept-alive connection must stay usable afterwards.
    client = make_client(endpoint, read_timeout=10)
    bodies = [b"", b"1", b"", b"", b"22", b"x" * 70_000, b""]
    for i, body in enumerate(bodies):
        assert client.put_object(Bucket=bucket, Key=f"k{i}", Body=body)["ETag"] == quoted_etag(body)
    for i, body in enumerate(bodies):
        assert client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == body


def test_user_metadata_over_2_kb_is_rejected(s3, bucket):
    with expect_error("MetadataTooLarge", 400):
        s3.put_object(Bucket=bucket, Key="big-meta", Body=b"x", Metadata={"m": "v" * 2100})
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="big-meta")
    # Just under the limit is fine.
    s3.put_object(Bucket=bucket, Key="ok-meta", Body=b"x", Metadata={"m": "v" * 2000})


def test_empty_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["ContentLength"] == 0
    assert got["Body"].read() == b""


# ---------------------------------------------------------------------------
# Metadata and content headers
# ---------------------------------------------------------------------------
def test_user_metadata_round_trip(s3, bucket):
    meta = {"Color": "Blue", "multi-word-key": "a value with spaces", "num": "42"}
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata=meta)
    expected = {"color": "Blue", "multi-word-key": "a value with spaces", "num": "42"}
    assert s3.get_object(Bucket=bucket, Key="m")["Metadata"] == expected
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["Metadata"] == expected
    assert headers_of(head)["x-amz-meta-color"] == "Blue"


def test_content_headers_round_trip(s3, bucket):
    payload = gzip.compress(b"some text " * 100)
    expires = datetime.datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC)
    s3.put_object(
        Bucket=bucket, Key="report.txt", Body=payload,
        ContentType="text/plain; charset=utf-8",
        ContentDisposition='attachment; filename="report.txt"',
        CacheControl="max-age=3600, must-revalidate",
        ContentEncoding="gzip",
        ContentLanguage="en-US",
        Expires=expires,
    )
    for resp in (s3.get_object(Bucket=bucket, Key="report.txt"),
                 s3.head_object(Bucket=bucket, Key="report.txt")):
        assert resp["ContentType"] == "text/plain; charset=utf-8"
        assert resp["ContentDisposition"] == 'attachment; filename="report.txt"'
        assert resp["CacheControl"] == "max-age=3600, must-revalidate"
        assert resp["ContentEncoding"] == "gzip"
        assert resp["ContentLanguage"] == "en-US"
        assert headers_of(resp)["expires"] == "Tue, 01 Jan 2030 00:00:00 GMT"
        assert resp["ContentLength"] == len(payload)
    # Content-Encoding is metadata: the stored bytes are returned untouched.
    assert s3.get_object(Bucket=bucket, Key="report.txt")["Body"].read() == payload


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"{}", ContentType="application/json")
    got = s3.get_object(
        Bucket=bucket, Key="doc",
        ResponseContentType="text/plain",
        ResponseContentDisposition='attachment; filename="x.json"',
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="de",
        ResponseContentEncoding="identity",
        ResponseExpires=datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    assert got["ContentType"] == "text/plain"
    assert got["ContentDisposition"] == 'attachment; filename="x.json"'
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "de"
    assert got["ContentEncoding"] == "identity"
    assert headers_of(got)["expires"] == "Mon, 03 Feb 2031 04:05:06 GMT"
    # The stored object is unchanged.
    assert s3.head_object(Bucket=bucket, Key="doc")["ContentType"] == "application/json"


# ---------------------------------------------------------------------------
# Ranged GET
# ---------------------------------------------------------------------------
DATA_1K = bytes(range(256)) * 4


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=100-199", 100, 199),
    ("bytes=-5", 1019, 1023),
    ("bytes=1000-", 1000, 1023),
    ("bytes=1000-5000", 1000, 1023),  # end past the object: clipped
    ("bytes=0-0", 0, 0),
    ("bytes=-2000", 0, 1023),  # suffix longer than the object: whole object
])
def test_ranged_get(s3, bucket, header, start, end):
    s3.put_object(Bucket=bucket, Key="r", Body=DATA_1K)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/1024"
    assert got["ContentLength"] == end - start + 1
    assert got["Body"].read() == DATA_1K[start:end + 1]
    assert got["ETag"] == quoted_etag(DATA_1K)


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=2000-3000"])
def test_unsatisfiable_range(s3, bucket, header):
    s3.put_object(Bucket=bucket, Key="r", Body=DATA_1K)
    with expect_error("InvalidRange", 416) as info:
        s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert info.value.response["Error"]["Message"] == "The requested range is not satisfiable"
    assert info.value.response["Error"]["ActualObjectSize"] == "1024"


def test_range_on_raw_request(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=DATA_1K)
    resp = raw_request(endpoint, "GET", key_path(bucket, "r"), headers={"Range": "bytes=10-19"})
    assert resp.status == 206
    assert resp.header("Content-Range") == "bytes 10-19/1024"
    assert resp.header("Content-Length") == "10"
    assert resp.body == DATA_1K[10:20]


# ---------------------------------------------------------------------------
# Conditional GET / HEAD
# ---------------------------------------------------------------------------
@pytest.fixture
def cond_obj(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    head = s3.head_object(Bucket=bucket, Key="c")
    return bucket, "c", head["ETag"], head["LastModified"]


def test_if_match(s3, cond_obj):
    bucket, key, etag, _ = cond_obj
    assert s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read() == b"conditional"
    with expect_error("PreconditionFailed", 412) as info:
        s3.get_object(Bucket=bucket, Key=key, IfMatch='"0123456789abcdef0123456789abcdef"')
    assert info.value.response["Error"]["Condition"] == "If-Match"
    assert info.value.response["Error"]["Message"] == (
        "At least one of the pre-conditions you specified did not hold")


def test_if_none_match(s3, cond_obj):
    bucket, key, etag, _ = cond_obj
    with expect_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    got = s3.get_object(Bucket=bucket, Key=key, IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    assert got["Body"].read() == b"conditional"


def test_if_modified_since(s3, cond_obj):
    bucket, key, _, last_modified = cond_obj
    with expect_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=last_modified)
    earlier = last_modified - datetime.timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=earlier)["Body"].read() == b"conditional"


def test_if_modified_since_in_the_future_is_ignored(s3, cond_obj):
    # A date later than the server's current time is invalid (RFC 7232
    # section 3.3) and S3 ignores it: the object is returned, not a 304.
    bucket, key, _, _ = cond_obj
    future = now() + datetime.timedelta(days=1)
    got = s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=future)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == b"conditional"


def test_if_unmodified_since(s3, cond_obj):
    bucket, key, _, last_modified = cond_obj
    assert s3.get_object(Bucket=bucket, Key=key, IfUnmodifiedSince=last_modified)["Body"].read()
    with expect_error("PreconditionFailed", 412) as info:
        s3.get_object(Bucket=bucket, Key=key,
                      IfUnmodifiedSince=last_modified - datetime.timedelta(days=1))
    assert info.value.response["Error"]["Condition"] == "If-Unmodified-Since"


def test_if_match_wins_over_if_unmodified_since(s3, cond_obj):
    # S3 (as RFC 7232): If-Match true and If-Unmodified-Since false -> 200.
    bucket, key, etag, last_modified = cond_obj
    got = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag,
                        IfUnmodifiedSince=last_modified - datetime.timedelta(days=1))
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_if_none_match_wins_over_if_modified_since(s3, cond_obj):
    # If-None-Match false and If-Modified-Since true -> 304.
    bucket, key, etag, last_modified = cond_obj
    with expect_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag,
                      IfModifiedSince=last_modified - datetime.timedelta(days=1))


def test_conditional_head(s3, cond_obj):
    bucket, key, etag, _ = cond_obj
    with expect_error("412", 412):
        s3.head_object(Bucket=bucket, Key=key, IfMatch='"0123456789abcdef0123456789abcdef"')
    with expect_error("304", 304):
        s3.head_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    assert s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)["ETag"] == etag


def test_raw_304_has_etag_and_no_body(endpoint, cond_obj):
    bucket, key, etag, _ = cond_obj
    resp = raw_request(endpoint, "GET", key_path(bucket, key), headers={"If-None-Match": etag})
    assert resp.status == 304
    assert resp.body == b""
    assert resp.header("ETag") == etag


# ---------------------------------------------------------------------------
# Conditional PUT
# ---------------------------------------------------------------------------
def test_put_if_none_match_star(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    assert first["ETag"] == quoted_etag(b"first")
    with expect_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_put_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)
    with expect_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag)  # stale ETag
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v2"
    with expect_error("NoSuchKey", 404):
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=etag)


# ---------------------------------------------------------------------------
# CopyObject
# ---------------------------------------------------------------------------
def test_copy_object_copies_metadata_by_default(s3, bucket, make_bucket):
    dest_bucket = make_bucket()
    body = b"copy me"
    s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="text/x-src",
                  Metadata={"origin": "source"}, CacheControl="no-store")
    resp = s3.copy_object(Bucket=dest_bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert resp["CopyObjectResult"]["ETag"] == quoted_etag(body)
    assert abs((resp["CopyObjectResult"]["LastModified"] - now()).total_seconds()) < 300
    got = s3.get_object(Bucket=dest_bucket, Key="dst")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/x-src"
    assert got["CacheControl"] == "no-store"
    assert got["Metadata"] == {"origin": "source"}
    # The source is untouched.
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == body


def test_copy_object_copy_directive_ignores_new_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="COPY", Metadata={"b": "2"})
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"a": "1"}


def test_copy_object_replace_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"{}", ContentType="text/plain",
                  Metadata={"a": "1", "b": "2"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"}, ContentType="application/json")
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"c": "3"}
    assert head["ContentType"] == "application/json"
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"a": "1", "b": "2"}


def test_copy_to_itself_without_replace_is_invalid(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"x", Metadata={"a": "1"})
    with expect_error("InvalidRequest", 400) as info:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert info.value.response["Error"]["Message"] == (
        "This copy request is illegal because it is trying to copy an object to itself without "
        "changing the object's metadata, storage class, website redirect location or encryption "
        "attributes.")


def test_copy_to_itself_with_replace_updates_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same bytes", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"a": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"a": "2"}
    assert got["Body"].read() == b"same bytes"


def test_copy_missing_source(s3, bucket):
    with expect_error("NoSuchKey", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"})
    with expect_error("NoSuchBucket", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": unique_name(), "Key": "k"})


def test_copy_to_missing_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    with expect_error("NoSuchBucket", 404):
        s3.copy_object(Bucket=unique_name(), Key="dst", CopySource={"Bucket": bucket, "Key": "src"})


def test_copy_source_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x")["ETag"]
    src = {"Bucket": bucket, "Key": "src"}
    with expect_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="d1", CopySource=src,
                       CopySourceIfMatch='"0123456789abcdef0123456789abcdef"')
    with expect_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="d2", CopySource=src, CopySourceIfNoneMatch=etag)
    s3.copy_object(Bucket=bucket, Key="d3", CopySource=src, CopySourceIfMatch=etag)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["d3", "src"]


def test_copy_object_special_character_keys(s3, bucket):
    src_key = "dir with space/ünïcode+plus%percent?.txt"
    s3.put_object(Bucket=bucket, Key=src_key, Body=b"odd")
    s3.copy_object(Bucket=bucket, Key="copy/" + src_key, CopySource={"Bucket": bucket, "Key": src_key})
    assert s3.get_object(Bucket=bucket, Key="copy/" + src_key)["Body"].read() == b"odd"


def test_copy_object_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="team=blue")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object_tagging(Bucket=bucket, Key="copied")["TagSet"] == [
        {"Key": "team", "Value": "blue"}]
    s3.copy_object(Bucket=bucket, Key="retagged", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="team=red")
    assert s3.get_object_tagging(Bucket=bucket, Key="retagged")["TagSet"] == [
        {"Key": "team", "Value": "red"}]


# ---------------------------------------------------------------------------
# DeleteObjects
# ---------------------------------------------------------------------------
def test_delete_objects_batch(s3, bucket):
    for key in ("a", "b", "keep"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a"}, {"Key": "b"}, {"Key": "never-existed"}]})
    # Keys that did not exist are reported as deleted too.
    assert sorted(d["Key"] for d in resp["Deleted"]) == ["a", "b", "never-existed"]
    assert "Errors" not in resp
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep"]


def test_delete_objects_quiet(s3, bucket):
    for key in ("q1", "q2"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}],
                                                    "Quiet": True})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Deleted" not in resp
    assert "Errors" not in resp
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_more_than_1000_is_malformed(s3, bucket):
    with expect_error("MalformedXML", 400):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})


def test_delete_objects_special_keys(s3, bucket):
    keys = ["a&b", "<tag>", "quote\"d", "sp ace", "ünï"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in resp["Deleted"]) == sorted(keys)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_missing_bucket(s3):
    with expect_error("NoSuchBucket", 404):
        s3.delete_objects(Bucket=unique_name(), Delete={"Objects": [{"Key": "a"}]})


# ---------------------------------------------------------------------------
# ListObjects (v1) and ListObjectsV2
# ---------------------------------------------------------------------------
LIST_KEYS = ["a.txt", "dir1/a", "dir1/b", "dir1/sub/c", "dir2/d", "z"]


@pytest.fixture
def listing(s3, bucket):
    for key in LIST_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_list_objects_v1_basic(s3, listing):
    resp = s3.list_objects(Bucket=listing)
    assert [o["Key"] for o in resp["Contents"]] == LIST_KEYS
    assert resp["IsTruncated"] is False
    assert resp["Name"] == listing
    assert resp["MaxKeys"] == 1000
    first = resp["Contents"][0]
    assert first["Size"] == len(b"a.txt")
    assert first["ETag"] == quoted_etag(b"a.txt")
    assert first["StorageClass"] == "STANDARD"
    assert first["Owner"]["ID"]


def test_list_objects_v1_prefix_and_delimiter(s3, listing):
    resp = s3.list_objects(Bucket=listing, Prefix="dir1/")
    assert [o["Key"] for o in resp["Contents"]] == ["dir1/a", "dir1/b", "dir1/sub/c"]
    resp = s3.list_objects(Bucket=listing, Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["a.txt", "z"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir1/", "dir2/"]
    resp = s3.list_objects(Bucket=listing, Prefix="dir1/", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["dir1/a", "dir1/b"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir1/sub/"]
    assert resp["Prefix"] == "dir1/" and resp["Delimiter"] == "/"


def test_list_objects_v1_max_keys_and_marker(s3, listing):
    page1 = s3.list_objects(Bucket=listing, MaxKeys=2)
    assert [o["Key"] for o in page1["Contents"]] == LIST_KEYS[:2]
    assert page1["IsTruncated"] is True
    assert "NextMarker" not in page1  # only returned when a delimiter is given
    page2 = s3.list_objects(Bucket=listing, MaxKeys=2, Marker=page1["Contents"][-1]["Key"])
    assert [o["Key"] for o in page2["Contents"]] == LIST_KEYS[2:4]
    assert page2["Marker"] == LIST_KEYS[1]
    page3 = s3.list_objects(Bucket=listing, MaxKeys=2, Marker="dir1/sub/c")
    assert [o["Key"] for o in page3["Contents"]] == LIST_KEYS[4:]
    assert page3["IsTruncated"] is False


def test_list_objects_v1_next_marker_with_delimiter(s3, listing):
    page = s3.list_objects(Bucket=listing, Delimiter="/", MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["a.txt"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir1/"]
    assert page["IsTruncated"] is True
    assert page["NextMarker"] == "dir1/"


@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2"])
def test_paginate_with_delimiter_has_no_duplicates(s3, listing, operation):
    keys, prefixes = [], []
    for page in s3.get_paginator(operation).paginate(
            Bucket=listing, Delimiter="/", PaginationConfig={"PageSize": 1}):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == ["a.txt", "z"]
    assert prefixes == ["dir1/", "dir2/"]


def test_list_objects_v2_basic(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing)
    assert [o["Key"] for o in resp["Contents"]] == LIST_KEYS
    assert resp["KeyCount"] == len(LIST_KEYS)
    assert resp["IsTruncated"] is False
    assert resp["MaxKeys"] == 1000
    assert "Owner" not in resp["Contents"][0]  # only with FetchOwner
    owned = s3.list_objects_v2(Bucket=listing, FetchOwner=True)
    assert owned["Contents"][0]["Owner"]["ID"]


def test_list_objects_v2_delimiter_counts_prefixes(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing, Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["a.txt", "z"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir1/", "dir2/"]
    assert resp["KeyCount"] == 4
    resp = s3.list_objects_v2(Bucket=listing, Prefix="dir1/", Delimiter="/")
    assert [o["Key"] for o in resp["Contents"]] == ["dir1/a", "dir1/b"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir1/sub/"]


def test_list_objects_v2_continuation(s3, listing):
    page1 = s3.list_objects_v2(Bucket=listing, MaxKeys=4)
    assert [o["Key"] for o in page1["Contents"]] == LIST_KEYS[:4]
    assert page1["IsTruncated"] is True
    assert page1["KeyCount"] == 4
    token = page1["NextContinuationToken"]
    page2 = s3.list_objects_v2(Bucket=listing, MaxKeys=4, ContinuationToken=token)
    assert [o["Key"] for o in page2["Contents"]] == LIST_KEYS[4:]
    assert page2["IsTruncated"] is False
    assert page2["ContinuationToken"] == token
    assert "NextContinuationToken" not in page2


def test_list_objects_v2_paginator(s3, listing):
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=listing, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [[o["Key"] for o in p["Contents"]] for p in pages] == [
        LIST_KEYS[0:2], LIST_KEYS[2:4], LIST_KEYS[4:6]]


def test_list_objects_v2_start_after(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing, StartAfter="dir1/b")
    assert [o["Key"] for o in resp["Contents"]] == ["dir1/sub/c", "dir2/d", "z"]
    assert resp["StartAfter"] == "dir1/b"
    resp = s3.list_objects_v2(Bucket=listing, StartAfter="zzz")
    assert resp["KeyCount"] == 0 and "Contents" not in resp


def test_list_objects_v2_empty_and_no_match(s3, bucket):
    resp = s3.list_objects_v2(Bucket=bucket)
    assert resp["KeyCount"] == 0
    assert "Contents" not in resp
    s3.put_object(Bucket=bucket, Key="x", Body=b"")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="nomatch")["KeyCount"] == 0


ODD_LIST_KEYS = ["plain", "with space", "plus+sign", "ünïcödé", "a/b c/d", "amp&lt"]


def test_list_keys_round_trip_with_sdk_url_encoding(s3, bucket):
    # boto3 asks for EncodingType=url by itself and decodes the answer with
    # unquote_plus, so this only round-trips if the server really encodes.
    for key in ODD_LIST_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    expected = sorted(ODD_LIST_KEYS, key=lambda k: k.encode())  # UTF-8 byte order
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == expected
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == expected


@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2"])
def test_list_explicit_encoding_type_url(s3, bucket, operation):
    for key in ODD_LIST_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    resp = getattr(s3, operation)(Bucket=bucket, EncodingType="url")
    assert resp["EncodingType"] == "url"
    raw_keys = [o["Key"] for o in resp["Contents"]]  # left encoded by botocore
    for raw in raw_keys:
        assert raw.isascii() and " " not in raw, raw
    lowered = [k.lower() for k in raw_keys]
    assert "with+space" in raw_keys or "with%20space" in raw_keys
    assert "plus%2bsign" in lowered          # a literal '+' must be escaped
    assert "%c3%bcn%c3%afc%c3%b6d%c3%a9" in lowered
    assert sorted(unquote_plus(k) for k in raw_keys) == sorted(ODD_LIST_KEYS)


def test_list_encoding_type_url_in_prefixes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="top dir/ü/file", Body=b"x")
    resp = s3.list_objects_v2(Bucket=bucket, Prefix="top dir/", Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["top dir/ü/"]
    assert resp["Prefix"] == "top dir/"


def test_list_objects_invalid_max_keys(endpoint, bucket):
    resp = raw_request(endpoint, "GET", key_path(bucket), query="list-type=2&max-keys=-1")
    assert resp.status == 400
    assert resp.error()["Code"] == "InvalidArgument"


# ---------------------------------------------------------------------------
# Flexible checksums and Content-MD5
# ---------------------------------------------------------------------------
CHECKSUM_BODY = b"The quick brown fox jumps over the lazy dog" * 10
CHECKSUMS = {
    "CRC32": crc32_b64,
    "CRC32C": crc32c_b64,
    "SHA1": sha1_b64,
    "SHA256": sha256_b64,
}


@pytest.mark.parametrize("algorithm", list(CHECKSUMS))
def test_put_with_checksum_and_read_it_back(s3, bucket, algorithm):
    expected = CHECKSUMS[algorithm](CHECKSUM_BODY)
    field = "Checksum" + algorithm
    if algorithm == "CRC32C":
        # botocore needs awscrt to compute CRC32C; send the value ourselves.
        put = s3.put_object(Bucket=bucket, Key="c", Body=CHECKSUM_BODY, **{field: expected})
    else:
        put = s3.put_object(Bucket=bucket, Key="c", Body=CHECKSUM_BODY, ChecksumAlgorithm=algorithm)
    assert put[field] == expected
    assert put["ETag"] == quoted_etag(CHECKSUM_BODY)

    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got[field] == expected
    assert got["Body"].read() == CHECKSUM_BODY
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head[field] == expected
    assert headers_of(head)["x-amz-checksum-" + algorithm.lower()] == expected


def test_sdk_default_crc32_is_stored(s3, bucket):
    # botocore sends x-amz-checksum-crc32 on every PutObject by default.
    s3.put_object(Bucket=bucket, Key="d", Body=b"default checksum")
    got = s3.get_object(Bucket=bucket, Key="d", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32_b64(b"default checksum")


@pytest.mark.parametrize("algorithm", list(CHECKSUMS))
def test_put_with_wrong_checksum_is_bad_digest(s3, bucket, algorithm):
    wrong = CHECKSUMS[algorithm](b"something else entirely")
    with expect_error("BadDigest", 400) as info:
        s3.put_object(Bucket=bucket, Key="bad", Body=CHECKSUM_BODY, **{"Checksum" + algorithm: wrong})
    assert info.value.response["Error"]["Message"].lower() == (
        f"the {algorithm.lower()} you specified did not match the calculated checksum.")
    with expect_error("404", 404):
        s3.head_object(Bucket=bucket, Key="bad")


def test_put_with_malformed_checksum_is_invalid_request(s3, bucket):
    with expect_error("InvalidRequest", 400) as info:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"abc", ChecksumSHA256="bm90LWEtc2hhMjU2")
    assert info.value.response["Error"]["Message"] == "Value for x-amz-checksum-sha256 header is invalid."


def test_content_md5(s3, bucket):
    body = b"md5 protected"
    s3.put_object(Bucket=bucket, Key="ok", Body=body, ContentMD5=md5_b64(body))
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == body
    with expect_error("BadDigest", 400) as info:
        s3.put_object(Bucket=bucket, Key="bad", Body=body, ContentMD5=md5_b64(b"other"))
    assert info.value.response["Error"]["Message"] == (
        "The Content-MD5 you specified did not match what we received.")
    with expect_error("InvalidDigest", 400):
        s3.put_object(Bucket=bucket, Key="bad", Body=body, ContentMD5="not-base64-md5")
    with expect_error("404", 404):
        s3.head_object(Bucket=bucket, Key="bad")


# ---------------------------------------------------------------------------
# Object tagging
# ---------------------------------------------------------------------------
def sorted_tags(tagset):
    return sorted((t["Key"], t["Value"]) for t in tagset)


def test_object_tagging_put_get_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
        {"Key": "env", "Value": "dev"}, {"Key": "owner", "Value": "team a"}]})
    assert sorted_tags(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == [
        ("env", "dev"), ("owner", "team a")]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    # PutObjectTagging replaces the whole set.
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "only", "Value": "1"}]})
    assert sorted_tags(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == [("only", "1")]
    resp = s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="t")


def test_tagging_on_put_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two%20words&empty=")
    assert sorted_tags(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == [
        ("a", "1"), ("b", "two words"), ("empty", "")]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 3


def test_object_tagging_limits(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    with expect_error("BadRequest", 400) as info:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": eleven})
    assert info.value.response["Error"]["Message"] == "Object tags cannot be greater than 10"
    with expect_error("InvalidTag", 400):
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
            {"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]})
    with expect_error("InvalidTag", 400):
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
            {"Key": "k" * 129, "Value": "v"}]})
    with expect_error("InvalidTag", 400):
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
            {"Key": "k", "Value": "v" * 257}]})
    ten = [{"Key": f"k{i}", "Value": "v"} for i in range(10)]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": ten})
    assert len(s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == 10


def test_object_tagging_missing_key(s3, bucket):
    with expect_error("NoSuchKey", 404):
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    with expect_error("NoSuchKey", 404):
        s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging={"TagSet": []})


# ---------------------------------------------------------------------------
# Awkward keys
# ---------------------------------------------------------------------------
SPECIAL_KEYS = [
    "with space.txt",
    "ünïcödé/日本語/файл.txt",
    "plus+sign",
    "percent%20literal%",
    "question?mark",
    "hash#tag",
    "amp&eq=semi;colon:comma,",
    "tilde~star*quote'paren()",
    "dir//double/slash",
    "trailing/",
    "emoji-🚀-key",
    "brackets[]{}",
    "caret^pipe|backtick`",
    "dollar$at@bang!",
    "<angle>&amp;",
    '"double-quoted"',
    "back\\slash",
    " leading-space",
    "trailing-space ",
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_character_keys(s3, bucket, key):
    body = ("body of " + key).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [key]
    listed_v1 = s3.list_objects(Bucket=bucket, Prefix=key)["Contents"]
    assert [o["Key"] for o in listed_v1] == [key]
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + ".copy")["Body"].read() == body
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_object(Bucket=bucket, Key=key + ".copy")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_similar_keys_are_distinct(s3, bucket):
    keys = ["a b", "a+b", "a%20b", "a%2Bb", "A b"]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())
    for i, key in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == str(i).encode()
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == len(keys)


@pytest.mark.parametrize("key", ["k" * 1024, "é" * 512, "d/" * 511 + "xy"])
def test_key_of_1024_bytes_is_allowed(s3, bucket, key):
    assert len(key.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=key, Body=b"long")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"long"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 512 + "a"])
def test_key_over_1024_bytes_is_too_long(s3, bucket, key):
    assert len(key.encode()) == 1025
    with expect_error("KeyTooLongError", 400) as info:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert info.value.response["Error"]["Message"] == "Your key is too long"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
