"""Multipart uploads: create, upload parts, list parts/uploads, complete,
abort, the errors of CompleteMultipartUpload, UploadPartCopy, and a large
transfer through boto3's managed upload/download."""
import hashlib
import os

import pytest
from boto3.s3.transfer import TransferConfig

from virga_testlib import (
    expect_error,
    multipart_etag,
    quoted_etag,
    sha256_hex,
    unique_name,
)

MiB = 1024 * 1024
PART = 5 * MiB  # the minimum size of every part but the last


def upload_parts(s3, bucket, key, upload_id, parts):
    done = []
    for number, data in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        assert resp["ETag"] == quoted_etag(data)
        done.append({"PartNumber": number, "ETag": resp["ETag"]})
    return done


def test_multipart_happy_path(s3, bucket):
    key = "big/object.bin"
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    create = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-test",
                                        Metadata={"origin": "multipart"})
    upload_id = create["UploadId"]
    assert create["Bucket"] == bucket and create["Key"] == key and upload_id

    done = upload_parts(s3, bucket, key, upload_id, parts)

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (i + 1, quoted_etag(d), len(d)) for i, d in enumerate(parts)]
    assert listed["IsTruncated"] is False
    assert listed["UploadId"] == upload_id

    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]

    # Not visible as an object until completed.
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key=key)

    complete = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                            MultipartUpload={"Parts": done})
    expected_etag = multipart_etag(parts)
    assert complete["ETag"] == expected_etag
    assert complete["Bucket"] == bucket and complete["Key"] == key

    got = s3.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    assert sha256_hex(body) == sha256_hex(b"".join(parts))
    assert got["ETag"] == expected_etag
    assert got["ContentLength"] == sum(map(len, parts))
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"origin": "multipart"}
    listed_obj = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["ETag"], o["Size"]) for o in listed_obj] == [
        (key, expected_etag, sum(map(len, parts)))]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with expect_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)


def test_multipart_etag_formula(s3, bucket):
    # The ETag is md5(md5(part1) || md5(part2) || ...) followed by -N; compute
    # it here independently of the helper.
    parts = [b"a" * PART, b"b" * 10]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    done = upload_parts(s3, bucket, "k", upload_id, parts)
    etag = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                        MultipartUpload={"Parts": done})["ETag"]
    concatenated = hashlib.md5(parts[0]).digest() + hashlib.md5(parts[1]).digest()
    assert etag == '"' + hashlib.md5(concatenated).hexdigest() + '-2"'


def test_single_part_upload_is_allowed_to_be_small(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="tiny")["UploadId"]
    done = upload_parts(s3, bucket, "tiny", upload_id, [b"tiny"])
    etag = s3.complete_multipart_upload(Bucket=bucket, Key="tiny", UploadId=upload_id,
                                        MultipartUpload={"Parts": done})["ETag"]
    assert etag == multipart_etag([b"tiny"])
    assert s3.get_object(Bucket=bucket, Key="tiny")["Body"].read() == b"tiny"


def test_reuploading_a_part_replaces_it(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"old" * 10)
    new = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"new")
    parts = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, quoted_etag(b"new"), 3)]
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": new["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"new"


def test_complete_with_a_subset_of_parts(s3, bucket):
    # Parts that were uploaded but not listed in the completion are dropped;
    # part numbers need not be contiguous.
    p1, p3, p5 = os.urandom(PART), b"unused" * 100, b"last"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=p1)["ETag"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=3, Body=p3)
    e5 = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=5, Body=p5)["ETag"]
    etag = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 5, "ETag": e5}]})["ETag"]
    assert etag == multipart_etag([p1, p5])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == p1 + p5


def test_list_parts_pagination(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for n in (1, 2, 3):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, Body=b"p%d" % n)
    page = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] is True
    assert page["NextPartNumberMarker"] == 2
    rest = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, PartNumberMarker=2)
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]
    assert rest["IsTruncated"] is False


def test_list_multipart_uploads(s3, bucket):
    ids = {}
    for key in ("logs/a", "logs/b", "other"):
        ids[key] = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    second_a = s3.create_multipart_upload(Bucket=bucket, Key="logs/a")["UploadId"]
    assert second_a != ids["logs/a"]
    resp = s3.list_multipart_uploads(Bucket=bucket)
    assert sorted((u["Key"], u["UploadId"]) for u in resp["Uploads"]) == sorted(
        list(ids.items()) + [("logs/a", second_a)])
    assert [u["Key"] for u in resp["Uploads"]] == ["logs/a", "logs/a", "logs/b", "other"]
    resp = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in resp["Uploads"]] == ["other"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["logs/"]
    resp = s3.list_multipart_uploads(Bucket=bucket, Prefix="logs/b")
    assert [(u["Key"], u["UploadId"]) for u in resp["Uploads"]] == [("logs/b", ids["logs/b"])]


def test_abort_multipart_upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"data")
    resp = s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with expect_error("NoSuchUpload", 404) as info:
        s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)
    assert info.value.response["Error"]["Message"] == (
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.")
    with expect_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"x")
    with expect_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": quoted_etag(b"data")}]})
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


def test_unknown_upload_id(s3, bucket):
    with expect_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="k", UploadId="does-not-exist", PartNumber=1, Body=b"x")
    with expect_error("NoSuchUpload", 404):
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="does-not-exist")


def test_upload_id_is_bound_to_its_key(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="right")["UploadId"]
    with expect_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="wrong", UploadId=upload_id, PartNumber=1, Body=b"x")


def test_part_too_small(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    done = upload_parts(s3, bucket, "k", upload_id, [b"x" * 1024, b"y" * 1024])
    with expect_error("EntityTooSmall", 400) as info:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                     MultipartUpload={"Parts": done})
    assert info.value.response["Error"]["Message"] == (
        "Your proposed upload is smaller than the minimum allowed size")
    # The upload is still there and can be fixed up and completed.
    assert len(s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]) == 2


def test_invalid_part_order(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    done = upload_parts(s3, bucket, "k", upload_id, [os.urandom(PART), b"tail"])
    with expect_error("InvalidPartOrder", 400) as info:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                     MultipartUpload={"Parts": list(reversed(done))})
    assert info.value.response["Error"]["Message"] == (
        "The list of parts was not in ascending order. The parts list must be specified in "
        "order by part number.")
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


def test_invalid_part_wrong_etag(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    done = upload_parts(s3, bucket, "k", upload_id, [os.urandom(PART), b"tail"])
    done[1]["ETag"] = '"0123456789abcdef0123456789abcdef"'
    with expect_error("InvalidPart", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                     MultipartUpload={"Parts": done})


def test_invalid_part_never_uploaded(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    done = upload_parts(s3, bucket, "k", upload_id, [b"only part"])
    with expect_error("InvalidPart", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={
            "Parts": done + [{"PartNumber": 2, "ETag": quoted_etag(b"never")}]})


@pytest.mark.parametrize("number", [0, 10001])
def test_part_number_out_of_range(s3, bucket, number):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with expect_error("InvalidArgument", 400) as info:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=b"x")
    assert info.value.response["Error"]["Message"] == (
        "Part number must be an integer between 1 and 10000, inclusive")


def test_upload_part_copy_with_ranges(s3, bucket, make_bucket):
    src_bucket = make_bucket()
    source = os.urandom(PART + 1000)
    s3.put_object(Bucket=src_bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    copy1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": src_bucket, "Key": "source"},
                                CopySourceRange=f"bytes=0-{PART - 1}")
    assert copy1["CopyPartResult"]["ETag"] == quoted_etag(source[:PART])
    copy2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=2,
                                CopySource={"Bucket": src_bucket, "Key": "source"},
                                CopySourceRange=f"bytes={PART}-{PART + 999}")
    assert copy2["CopyPartResult"]["ETag"] == quoted_etag(source[PART:])
    parts = s3.list_parts(Bucket=bucket, Key="assembled", UploadId=upload_id)["Parts"]
    assert [p["Size"] for p in parts] == [PART, 1000]
    complete = s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": copy1["CopyPartResult"]["ETag"]},
            {"PartNumber": 2, "ETag": copy2["CopyPartResult"]["ETag"]}]})
    assert complete["ETag"] == multipart_etag([source[:PART], source[PART:]])
    body = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert body == source


def test_upload_part_copy_whole_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"whole source")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    resp = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "src"})
    assert resp["CopyPartResult"]["ETag"] == quoted_etag(b"whole source")
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": resp["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"whole source"


def test_upload_part_copy_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with expect_error("InvalidArgument", 400) as info:
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=5-20")
    assert info.value.response["Error"]["Message"] == (
        "Range specified is not valid for source object of size: 10")
    with expect_error("NoSuchKey", 404):
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "missing"})


def test_get_object_part_number(s3, bucket):
    parts = [os.urandom(PART), b"second part"]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    done = upload_parts(s3, bucket, "k", upload_id, parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": done})
    head = s3.head_object(Bucket=bucket, Key="k", PartNumber=2)
    assert head["PartsCount"] == 2
    assert head["ContentLength"] == len(parts[1])
    got = s3.get_object(Bucket=bucket, Key="k", PartNumber=2)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {PART}-{PART + len(parts[1]) - 1}/{PART + len(parts[1])}"
    assert got["Body"].read() == parts[1]


def test_large_managed_transfer(s3, bucket, tmp_path):
    """64 MiB through upload_file with an 8 MiB threshold (8 parts uploaded
    concurrently), then download_file; compared by SHA-256."""
    size = 64 * MiB
    src = tmp_path / "src.bin"
    block = os.urandom(MiB)
    with open(src, "wb") as f:
        for i in range(size // MiB):
            f.write(block[i:] + block[:i])  # distinct content per MiB
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "large.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="large.bin")
    assert head["ContentLength"] == size
    assert head["ETag"].endswith('-8"')
    with open(src, "rb") as f:
        chunks = [f.read(8 * MiB) for _ in range(8)]
    assert head["ETag"] == multipart_etag(chunks)

    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "large.bin", str(dst), Config=config)
    assert dst.stat().st_size == size
    with open(src, "rb") as a, open(dst, "rb") as b:
        assert hashlib.sha256(a.read()).hexdigest() == hashlib.sha256(b.read()).hexdigest()


def test_multipart_on_missing_bucket(s3):
    with expect_error("NoSuchBucket", 404):
        s3.create_multipart_upload(Bucket=unique_name(), Key="k")
