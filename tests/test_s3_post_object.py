"""Browser uploads: boto3's generate_presigned_post, posted as multipart/form-data
(the per-user upload pattern of the mobile to-do reference app)."""
import uuid
import urllib.error
import urllib.request

from virga_testlib import advance_clock, make_client, unique_name


def _multipart(fields, filename, content, file_type="application/octet-stream"):
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {file_type}\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _post(url, fields, filename="photo.jpg", content=b"jpeg bytes", file_type="image/jpeg"):
    body, ctype = _multipart(fields, filename, content, file_type)
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_presigned_post_uploads_into_the_users_folder(endpoint):
    for sig in (None, "s3v4"):
        s3 = make_client(endpoint, "s3", signature_version=sig)
        bucket = unique_name()
        s3.create_bucket(Bucket=bucket)
        post = s3.generate_presigned_post(
            bucket, "users/alice/${filename}",
            Fields={"success_action_status": "201"},
            Conditions=[["starts-with", "$key", "users/alice/"], ["content-length-range", 1, 1024],
                        {"success_action_status": "201"}],
            ExpiresIn=300)
        status, headers, body = _post(post["url"], post["fields"])
        assert status == 201, body
        assert b"<Key>users/alice/photo.jpg</Key>" in body
        got = s3.get_object(Bucket=bucket, Key="users/alice/photo.jpg")
        assert got["Body"].read() == b"jpeg bytes"
        assert got["ContentType"] == "image/jpeg"


def test_presigned_post_conditions_and_tampering_are_refused(endpoint):
    s3 = make_client(endpoint, "s3", signature_version="s3v4")
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    post = s3.generate_presigned_post(bucket, "users/alice/avatar.png",
                                      Conditions=[["content-length-range", 1, 10]], ExpiresIn=300)
    status, _, body = _post(post["url"], post["fields"], content=b"x" * 11)
    assert status == 400 and b"EntityTooLarge" in body
    fields = dict(post["fields"], key="users/bob/avatar.png")  # not what was signed
    status, _, body = _post(post["url"], fields, content=b"x")
    assert status == 403 and b"AccessDenied" in body
    fields = dict(post["fields"], **{"x-amz-signature": "0" * 64})
    status, _, body = _post(post["url"], fields, content=b"x")
    assert status == 403 and b"SignatureDoesNotMatch" in body
    status, _, _ = _post(post["url"], post["fields"], content=b"ok")
    assert status == 204
    assert s3.get_object(Bucket=bucket, Key="users/alice/avatar.png")["Body"].read() == b"ok"


def test_expired_presigned_post_is_refused(start_server):
    server = start_server(ephemeral=True)
    s3 = server.client()
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    post = s3.generate_presigned_post(bucket, "k", ExpiresIn=60)
    advance_clock(server.endpoint, 120)
    status, _, body = _post(post["url"], post["fields"])
    assert status == 403 and b"Policy expired" in body
