"""Presigned URLs (SigV2 query auth and SigV4) fetched with urllib, their
expiry, and request authentication against a --strict-auth server."""
import datetime
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from virga_testlib import (
    VirgaServer,
    expect_error,
    key_path,
    make_client,
    quoted_etag,
    raw_request,
    shifted_client_clock,
    unique_name,
    url_fetch,
)

SIGNERS = {
    "sigv2": None,     # botocore's default for presigning S3 URLs: SigV2 query auth
    "sigv4": "s3v4",
}


def presigner(endpoint, kind, **kwargs):
    return make_client(endpoint, signature_version=SIGNERS[kind], **kwargs)


def assert_signature_style(url, kind):
    query = parse_qs(urlsplit(url).query)
    if kind == "sigv2":
        assert {"AWSAccessKeyId", "Signature", "Expires"} <= set(query), url
    else:
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"], url
        assert {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                "X-Amz-Signature"} <= set(query), url


def with_query(url, **changes):
    """The URL with some query parameters replaced (order kept)."""
    parts = urlsplit(url)
    pairs = [(k, v[0]) for k, v in parse_qs(parts.query, keep_blank_values=True).items()]
    pairs = [(k, changes.get(k, v)) for k, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


# ---------------------------------------------------------------------------
# Presigned URLs on the default (any credentials) server
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(SIGNERS))
def test_presigned_get(endpoint, s3, bucket, kind):
    body = b"presigned content"
    s3.put_object(Bucket=bucket, Key="dir/file name.txt", Body=body, ContentType="text/plain")
    url = presigner(endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/file name.txt"}, ExpiresIn=300)
    assert_signature_style(url, kind)
    resp = url_fetch(url)
    assert resp.status == 200, resp.body
    assert resp.body == body
    assert resp.header("ETag") == quoted_etag(body)
    assert resp.header("Content-Type") == "text/plain"


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_presigned_put(endpoint, s3, bucket, kind):
    body = b"uploaded through a presigned URL"
    url = presigner(endpoint, kind).generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up.txt", "ContentType": "text/plain"},
        ExpiresIn=300)
    assert_signature_style(url, kind)
    resp = url_fetch(url, method="PUT", data=body, headers={"Content-Type": "text/plain"})
    assert resp.status == 200, resp.body
    assert resp.header("ETag") == quoted_etag(body)
    got = s3.get_object(Bucket=bucket, Key="up.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_presigned_get_missing_key(endpoint, bucket, kind):
    url = presigner(endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "absent"}, ExpiresIn=300)
    resp = url_fetch(url)
    assert resp.status == 404
    err = resp.error()
    assert err["Code"] == "NoSuchKey"
    assert err["Key"] == "absent"


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_presigned_get_with_response_overrides(endpoint, s3, bucket, kind):
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n")
    url = presigner(endpoint, kind).generate_presigned_url("get_object", Params={
        "Bucket": bucket, "Key": "report.csv",
        "ResponseContentDisposition": 'attachment; filename="r.csv"',
        "ResponseContentType": "text/csv"}, ExpiresIn=300)
    resp = url_fetch(url)
    assert resp.status == 200
    assert resp.header("Content-Disposition") == 'attachment; filename="r.csv"'
    assert resp.header("Content-Type") == "text/csv"


def test_presigned_sigv4_expires_over_a_week_is_rejected(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = presigner(endpoint, "sigv4").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=604801)
    resp = url_fetch(url)
    assert resp.status == 400
    err = resp.error()
    assert err["Code"] == "AuthorizationQueryParametersError"
    assert err["Message"] == ("X-Amz-Expires must be less than a week (in seconds); that is, "
                              "the given X-Amz-Expires must be less than 604800 seconds")


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_presigned_url_expires(clock_server, time_machine, kind):
    s3 = clock_server.client()
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"short-lived")
    url = presigner(clock_server.endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    assert url_fetch(url).status == 200  # valid now

    time_machine.advance_server_only(clock_server, 120)

    resp = url_fetch(url)
    assert resp.status == 403
    err = resp.error()
    assert err["Code"] == "AccessDenied"
    assert err["Message"] == "Request has expired"


@pytest.mark.parametrize("kind,param", [("sigv2", "Signature"), ("sigv4", "X-Amz-Signature"),
                                        ("sigv2", "Expires"), ("sigv4", "X-Amz-Expires")])
def test_presigned_tampered_query(endpoint, s3, bucket, kind, param):
    # Signed with the configured key test/test, whose secret Virga knows.
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = presigner(endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    value = parse_qs(urlsplit(url).query)[param][0]
    if "Expires" in param:
        tampered = str(int(value) + 1)
    elif kind == "sigv4":
        tampered = ("0" if value[0] != "0" else "1") + value[1:]
    else:
        tampered = ("A" if value[0] != "A" else "B") + value[1:]
    resp = url_fetch(with_query(url, **{param: tampered}))
    assert resp.status == 403, resp.body
    err = resp.error()
    assert err["Code"] == "SignatureDoesNotMatch"
    assert err["Message"] == ("The request signature we calculated does not match the signature "
                              "you provided. Check your key and signing method.")


def test_any_credentials_are_accepted_by_default(endpoint):
    client = make_client(endpoint, access_key="AKIAANYTHINGATALL000", secret_key="whatever/secret")
    name = unique_name()
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="k", Body=b"v")
    assert client.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    # Other credentials see the same account's buckets.
    other = make_client(endpoint, access_key="test", secret_key="test")
    assert other.get_object(Bucket=name, Key="k")["Body"].read() == b"v"


# ---------------------------------------------------------------------------
# --strict-auth
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    server = VirgaServer(ephemeral=True, extra_args=["--strict-auth"],
                         log_dir=tmp_path_factory.mktemp("strict-logs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def strict_bucket(strict_server):
    s3 = strict_server.client()
    name = unique_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="secret.txt", Body=b"top secret")
    return name


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_strict_auth_accepts_configured_key(strict_server, strict_bucket, signature_version):
    s3 = strict_server.client(signature_version=signature_version)
    assert s3.get_object(Bucket=strict_bucket, Key="secret.txt")["Body"].read() == b"top secret"
    s3.put_object(Bucket=strict_bucket, Key="new", Body=b"n")


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_strict_auth_wrong_secret(strict_server, strict_bucket, signature_version):
    s3 = strict_server.client(secret_key="not-the-secret", signature_version=signature_version)
    with expect_error("SignatureDoesNotMatch", 403) as info:
        s3.get_object(Bucket=strict_bucket, Key="secret.txt")
    assert info.value.response["Error"]["Message"] == (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.")
    with expect_error("SignatureDoesNotMatch", 403):
        s3.put_object(Bucket=strict_bucket, Key="intruder", Body=b"x")
    with expect_error("NoSuchKey", 404):
        strict_server.client().get_object(Bucket=strict_bucket, Key="intruder")


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_strict_auth_unknown_access_key(strict_server, strict_bucket, signature_version):
    s3 = strict_server.client(access_key="AKIAUNKNOWNKEY000000", secret_key="test",
                              signature_version=signature_version)
    with expect_error("InvalidAccessKeyId", 403) as info:
        s3.get_object(Bucket=strict_bucket, Key="secret.txt")
    assert info.value.response["Error"]["Message"] == (
        "The AWS Access Key Id you provided does not exist in our records.")
    assert info.value.response["Error"]["AWSAccessKeyId"] == "AKIAUNKNOWNKEY000000"


def test_strict_auth_anonymous_request_denied(strict_server, strict_bucket):
    resp = url_fetch(strict_server.url(key_path(strict_bucket, "secret.txt")))
    assert resp.status == 403
    assert resp.error()["Code"] == "AccessDenied"
    resp = raw_request(strict_server.endpoint, "PUT", key_path(strict_bucket, "anon"), body=b"x",
                       sign=False)
    assert resp.status == 403
    assert resp.error()["Code"] == "AccessDenied"


def test_strict_auth_request_time_too_skewed(strict_server, strict_bucket):
    s3 = strict_server.client()
    with shifted_client_clock(-20 * 60):  # X-Amz-Date 20 minutes in the past
        with expect_error("RequestTimeTooSkewed", 403) as info:
            s3.get_object(Bucket=strict_bucket, Key="secret.txt")
    assert info.value.response["Error"]["Message"] == (
        "The difference between the request time and the current time is too large.")


def test_strict_auth_tampered_payload(strict_server, strict_bucket):
    # The signed x-amz-content-sha256 does not match the bytes sent.
    resp = raw_request(strict_server.endpoint, "PUT", key_path(strict_bucket, "tampered"),
                       body=b"signed body", send_body=b"other body!")
    assert resp.status == 400
    assert resp.error()["Code"] == "XAmzContentSHA256Mismatch"
    with expect_error("NoSuchKey", 404):
        strict_server.client().get_object(Bucket=strict_bucket, Key="tampered")


def test_strict_auth_tampered_header(strict_server, strict_bucket):
    s3 = strict_server.client()

    def tamper(request, **kwargs):  # after signing: change a signed header
        del request.headers["x-amz-meta-owner"]
        request.headers["x-amz-meta-owner"] = "mallory"

    s3.meta.events.register("before-send.s3.PutObject", tamper)
    with expect_error("SignatureDoesNotMatch", 403):
        s3.put_object(Bucket=strict_bucket, Key="meta", Body=b"x", Metadata={"owner": "alice"})


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_strict_presigned_urls_work(strict_server, strict_bucket, kind):
    url = presigner(strict_server.endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": strict_bucket, "Key": "secret.txt"}, ExpiresIn=300)
    resp = url_fetch(url)
    assert resp.status == 200
    assert resp.body == b"top secret"
    put_url = presigner(strict_server.endpoint, kind).generate_presigned_url(
        "put_object", Params={"Bucket": strict_bucket, "Key": "via-url"}, ExpiresIn=300)
    # No Content-Type was signed, so send none (urllib would add a form type).
    resp = raw_request(strict_server.endpoint, "PUT", put_url[len(strict_server.endpoint):],
                       body=b"v", sign=False)
    assert resp.status == 200, resp.body


@pytest.mark.parametrize("kind,param", [
    ("sigv2", "Expires"),
    ("sigv2", "Signature"),
    ("sigv4", "X-Amz-Expires"),
    ("sigv4", "X-Amz-Signature"),
    ("sigv4", "X-Amz-Date"),
])
def test_strict_tampered_presigned_query(strict_server, strict_bucket, kind, param):
    url = presigner(strict_server.endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": strict_bucket, "Key": "secret.txt"}, ExpiresIn=300)
    value = parse_qs(urlsplit(url).query)[param][0]
    if param in ("Expires", "X-Amz-Expires"):
        tampered = str(int(value) + 1)
    elif param == "X-Amz-Date":
        tampered = (datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ")
                    - datetime.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    else:
        tampered = ("A" if value[0] != "A" else "B") + value[1:]
        if kind == "sigv4":
            tampered = ("0" if value[0] != "0" else "1") + value[1:]
    resp = url_fetch(with_query(url, **{param: tampered}))
    assert resp.status == 403, resp.body
    assert resp.error()["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_strict_presigned_url_for_other_key(strict_server, strict_bucket, kind):
    strict_server.client().put_object(Bucket=strict_bucket, Key="other.txt", Body=b"other")
    url = presigner(strict_server.endpoint, kind).generate_presigned_url(
        "get_object", Params={"Bucket": strict_bucket, "Key": "secret.txt"}, ExpiresIn=300)
    resp = url_fetch(url.replace("/secret.txt?", "/other.txt?"))
    assert resp.status == 403
    assert resp.error()["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("kind", list(SIGNERS))
def test_strict_presigned_wrong_secret_and_unknown_key(strict_server, strict_bucket, kind):
    wrong = presigner(strict_server.endpoint, kind, secret_key="wrong-secret").generate_presigned_url(
        "get_object", Params={"Bucket": strict_bucket, "Key": "secret.txt"}, ExpiresIn=300)
    resp = url_fetch(wrong)
    assert resp.status == 403
    assert resp.error()["Code"] == "SignatureDoesNotMatch"
    unknown = presigner(strict_server.endpoint, kind, access_key="AKIAUNKNOWNKEY000000"
                        ).generate_presigned_url(
        "get_object", Params={"Bucket": strict_bucket, "Key": "secret.txt"}, ExpiresIn=300)
    resp = url_fetch(unknown)
    assert resp.status == 403
    assert resp.error()["Code"] == "InvalidAccessKeyId"
