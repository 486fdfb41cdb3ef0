"""CRC64NVME flexible checksums (what S3 now computes by default; boto3 needs awscrt
for it, so these requests carry the header themselves)."""
import base64
import os

from virga_testlib import key_path, make_client, raw_request, unique_name

_POLY = 0x9A6C9329AC4BC9B5  # CRC-64/NVME, reflected


def _table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _table()


def crc64nvme_b64(data: bytes) -> str:
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return base64.b64encode((c ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")).decode()


def test_reference_implementation_check_value():
    assert base64.b64decode(crc64nvme_b64(b"123456789")).hex() == "ae8b14860a799888"


def test_put_with_crc64nvme_is_verified_stored_and_returned(endpoint):
    s3 = make_client(endpoint, "s3")
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(3000)
    good = crc64nvme_b64(body)
    resp = raw_request(endpoint, "PUT", key_path(bucket, "ok"), body=body,
                       headers={"x-amz-checksum-crc64nvme": good, "x-amz-sdk-checksum-algorithm": "CRC64NVME"})
    assert resp.status == 200, resp.body
    assert resp.header("x-amz-checksum-crc64nvme") == good
    head = s3.head_object(Bucket=bucket, Key="ok", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == good
    bad = raw_request(endpoint, "PUT", key_path(bucket, "bad"), body=body,
                      headers={"x-amz-checksum-crc64nvme": crc64nvme_b64(b"other")})
    assert bad.status == 400
    assert bad.error()["Code"] == "BadDigest"


def test_multipart_crc64nvme_is_a_full_object_checksum(endpoint):
    s3 = make_client(endpoint, "s3")
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC64NVME")
    assert up["ChecksumType"] == "FULL_OBJECT"
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    done = []
    for n, data in enumerate(parts, 1):
        r = raw_request(endpoint, "PUT", key_path(bucket, "mp"), body=data,
                        query=f"partNumber={n}&uploadId={up['UploadId']}",
                        headers={"x-amz-checksum-crc64nvme": crc64nvme_b64(data)})
        assert r.status == 200, r.body
        done.append({"PartNumber": n, "ETag": r.header("ETag")})
    out = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": done})
    assert out["ChecksumCRC64NVME"] == crc64nvme_b64(b"".join(parts))
    assert out["ChecksumType"] == "FULL_OBJECT"
