"""Bucket versioning: version ids, ListObjectVersions, delete markers, the
"null" version of unversioned and suspended buckets, and version errors."""
import pytest

from virga_testlib import expect_error, headers_of, quoted_etag, unique_name


@pytest.fixture
def vbucket(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def test_versioning_status(s3, bucket):
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in resp  # never enabled
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_versioning_invalid_status(s3, bucket):
    with expect_error("MalformedXML", 400):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "On"})
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_versioning_missing_bucket(s3):
    with expect_error("NoSuchBucket", 404):
        s3.get_bucket_versioning(Bucket=unique_name())
    with expect_error("NoSuchBucket", 404):
        s3.put_bucket_versioning(Bucket=unique_name(), VersioningConfiguration={"Status": "Enabled"})


def test_two_puts_two_versions(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="doc", Body=b"version one")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="doc", Body=b"version two")["VersionId"]
    assert v1 and v2 and v1 != v2 and "null" not in (v1, v2)

    latest = s3.get_object(Bucket=vbucket, Key="doc")
    assert latest["Body"].read() == b"version two"
    assert latest["VersionId"] == v2
    old = s3.get_object(Bucket=vbucket, Key="doc", VersionId=v1)
    assert old["Body"].read() == b"version one"
    assert old["VersionId"] == v1
    assert old["ETag"] == quoted_etag(b"version one")
    head = s3.head_object(Bucket=vbucket, Key="doc", VersionId=v1)
    assert head["ContentLength"] == len(b"version one") and head["VersionId"] == v1

    versions = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [
        ("doc", v2, True), ("doc", v1, False)]  # newest first
    assert versions[0]["ETag"] == quoted_etag(b"version two")
    assert versions[1]["Size"] == len(b"version one")
    # Only the latest version is an object in plain listings.
    listed = s3.list_objects_v2(Bucket=vbucket)["Contents"]
    assert [(o["Key"], o["ETag"]) for o in listed] == [("doc", quoted_etag(b"version two"))]


def test_delete_creates_delete_marker(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"data")["VersionId"]
    resp = s3.delete_object(Bucket=vbucket, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp["DeleteMarker"] is True
    marker = resp["VersionId"]
    assert marker and marker != v1

    with expect_error("NoSuchKey", 404) as info:
        s3.get_object(Bucket=vbucket, Key="k")
    hdrs = headers_of(info.value.response)
    assert hdrs["x-amz-delete-marker"] == "true"
    assert hdrs["x-amz-version-id"] == marker
    with expect_error("404", 404) as info:
        s3.head_object(Bucket=vbucket, Key="k")
    assert headers_of(info.value.response)["x-amz-delete-marker"] == "true"

    # The data is still there under its version id.
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)["Body"].read() == b"data"
    assert "Contents" not in s3.list_objects_v2(Bucket=vbucket)

    listing = s3.list_object_versions(Bucket=vbucket)
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [
        ("k", marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in listing["Versions"]] == [(v1, False)]


def test_get_delete_marker_by_version_is_method_not_allowed(s3, vbucket):
    s3.put_object(Bucket=vbucket, Key="k", Body=b"data")
    marker = s3.delete_object(Bucket=vbucket, Key="k")["VersionId"]
    with expect_error("MethodNotAllowed", 405) as info:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert headers_of(info.value.response)["x-amz-delete-marker"] == "true"


def test_removing_delete_marker_restores_object(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"restore me")["VersionId"]
    marker = s3.delete_object(Bucket=vbucket, Key="k")["VersionId"]
    resp = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert resp["DeleteMarker"] is True
    assert resp["VersionId"] == marker
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"restore me"
    assert got["VersionId"] == v1
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=vbucket)


def test_delete_specific_version_is_permanent(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="k", Body=b"two")["VersionId"]
    resp = s3.delete_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert resp["VersionId"] == v2
    assert "DeleteMarker" not in resp
    # The previous version becomes the current one.
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"one", v1)
    versions = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]
    with expect_error("NoSuchVersion", 404) as info:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert info.value.response["Error"]["Message"] == (
        "The specified version does not exist.")
    assert info.value.response["Error"]["VersionId"] == v2


def test_unknown_version_ids(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"x")["VersionId"]
    gone = s3.put_object(Bucket=vbucket, Key="k", Body=b"y")["VersionId"]
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=gone)
    # Well-formed (it was real) but unknown now.
    with expect_error("NoSuchVersion", 404):
        s3.get_object(Bucket=vbucket, Key="k", VersionId=gone)
    with expect_error("404", 404):
        s3.head_object(Bucket=vbucket, Key="k", VersionId=gone)
    # A version id of another key is unknown for this key.
    s3.put_object(Bucket=vbucket, Key="other", Body=b"o")
    with expect_error("NoSuchVersion", 404):
        s3.get_object(Bucket=vbucket, Key="other", VersionId=v1)
    # Not a version id at all.
    with expect_error("InvalidArgument", 400) as info:
        s3.get_object(Bucket=vbucket, Key="k", VersionId="not-a-version-id")
    assert info.value.response["Error"]["Message"] == "Invalid version id specified"


def test_deleting_unknown_version_is_a_no_op(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"x")["VersionId"]
    gone = s3.put_object(Bucket=vbucket, Key="k", Body=b"y")["VersionId"]
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=gone)
    resp = s3.delete_object(Bucket=vbucket, Key="k", VersionId=gone)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object(Bucket=vbucket, Key="k")["VersionId"] == v1


def test_unversioned_bucket_has_null_version(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    assert "VersionId" not in put
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [("k", "null", True)]
    got = s3.get_object(Bucket=bucket, Key="k", VersionId="null")
    assert got["Body"].read() == b"two"


def test_null_version_survives_enabling_versioning(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"before versioning")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"after")["VersionId"]
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v2, True), ("null", False)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before versioning"


def test_suspended_versioning_writes_null_version(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"versioned")["VersionId"]
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=vbucket, Key="k", Body=b"null one")
    assert s3.head_object(Bucket=vbucket, Key="k")["VersionId"] == "null"
    # A second write while suspended replaces the null version.
    s3.put_object(Bucket=vbucket, Key="k", Body=b"null two")
    versions = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [("null", True), (v1, False)]
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"null two"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)["Body"].read() == b"versioned"

    # A delete while suspended puts a delete marker with the null version id.
    resp = s3.delete_object(Bucket=vbucket, Key="k")
    assert resp["DeleteMarker"] is True
    assert resp["VersionId"] == "null"
    listing = s3.list_object_versions(Bucket=vbucket)
    assert [(m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [("null", True)]
    assert [v["VersionId"] for v in listing["Versions"]] == [v1]


def test_list_object_versions_pagination_and_prefix(s3, vbucket):
    expected = []
    for key in ("a", "b", "c"):
        ids = [s3.put_object(Bucket=vbucket, Key=key, Body=f"{key}{i}".encode())["VersionId"]
               for i in range(2)]
        expected += [(key, ids[1]), (key, ids[0])]
    seen = []
    pages = 0
    for page in s3.get_paginator("list_object_versions").paginate(
            Bucket=vbucket, PaginationConfig={"PageSize": 2}):
        pages += 1
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    assert seen == expected
    assert pages == 3

    first = s3.list_object_versions(Bucket=vbucket, MaxKeys=3)
    assert first["IsTruncated"] is True
    assert (first["NextKeyMarker"], first["NextVersionIdMarker"]) == expected[2]

    only_b = s3.list_object_versions(Bucket=vbucket, Prefix="b")
    assert [(v["Key"], v["VersionId"]) for v in only_b["Versions"]] == expected[2:4]


def test_copy_object_from_a_version(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"new")
    resp = s3.copy_object(Bucket=vbucket, Key="dst",
                          CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1})
    assert resp["CopySourceVersionId"] == v1
    assert resp["VersionId"]
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"old"


def test_delete_objects_in_versioned_bucket(s3, vbucket):
    v1 = s3.put_object(Bucket=vbucket, Key="a", Body=b"1")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="b", Body=b"2")
    resp = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [
        {"Key": "a", "VersionId": v1}, {"Key": "b"}]})
    deleted = {d["Key"]: d for d in resp["Deleted"]}
    assert deleted["a"]["VersionId"] == v1
    assert "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True
    assert deleted["b"]["DeleteMarkerVersionId"]
    listing = s3.list_object_versions(Bucket=vbucket)
    assert [v["Key"] for v in listing["Versions"]] == ["b"]
    assert [(m["Key"], m["VersionId"]) for m in listing["DeleteMarkers"]] == [
        ("b", deleted["b"]["DeleteMarkerVersionId"])]


def test_versioned_bucket_with_only_versions_is_not_empty(s3, vbucket):
    s3.put_object(Bucket=vbucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=vbucket, Key="k")  # only a marker is current
    assert "Contents" not in s3.list_objects_v2(Bucket=vbucket)
    with expect_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=vbucket)
    listing = s3.list_object_versions(Bucket=vbucket)
    for item in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        s3.delete_object(Bucket=vbucket, Key=item["Key"], VersionId=item["VersionId"])
    assert s3.delete_bucket(Bucket=vbucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
