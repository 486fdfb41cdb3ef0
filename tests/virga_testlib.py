"""Shared helpers for Virga's end-to-end tests.

Everything here talks to a real `virga serve` process over HTTP on 127.0.0.1:
boto3 clients, raw (optionally SigV4-signed) HTTP requests, the AWS CLI, and
the `/_virga/*` control endpoints.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional
from urllib.parse import quote, urlsplit

import boto3
import botocore.auth
import botocore.compat
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"
HEALTH_TIMEOUT = 10.0
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

# ---------------------------------------------------------------------------
# Name resolution: `*.localhost` is loopback (RFC 6761), but glibc without
# systemd-resolved does not resolve `bucket.localhost`. Virtual-host style
# clients need it, so map every *.localhost name to 127.0.0.1 in this process.
# ---------------------------------------------------------------------------
_orig_getaddrinfo = socket.getaddrinfo


def _loopback_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str):
        lowered = name.lower().rstrip(".")
        if lowered == "localhost" or lowered.endswith(".localhost"):
            host = "127.0.0.1"
    return _orig_getaddrinfo(host, *args, **kwargs)


if getattr(socket.getaddrinfo, "__name__", "") != "_loopback_getaddrinfo":
    socket.getaddrinfo = _loopback_getaddrinfo


# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------
def unique_name(prefix: str = "vt") -> str:
    """A bucket name that is valid, DNS compatible and unique per call."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def quoted_etag(data: bytes) -> str:
    return '"' + md5_hex(data) + '"'


def multipart_etag(parts: Iterable[bytes]) -> str:
    """S3's ETag of a completed multipart upload: md5 of the concatenated
    binary md5 digests of the parts, hex, followed by -<number of parts>."""
    parts = list(parts)
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(digests).hexdigest(), len(parts))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def crc32_b64(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def _crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c_b64(data: bytes) -> str:
    return b64(crc32c(data).to_bytes(4, "big"))


def sha1_b64(data: bytes) -> str:
    return b64(hashlib.sha1(data).digest())


def sha256_b64(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def virga_binary() -> Path:
    env = os.environ.get("VIRGA_BIN")
    if env:
        return Path(env)
    return REPO_ROOT / "target" / "debug" / "virga"


def error_of(exc: ClientError) -> tuple[str, int]:
    return (exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])


@contextlib.contextmanager
def expect_error(code: str, status: int):
    """Asserts that the block raises a botocore ClientError with exactly this
    AWS error code and HTTP status. Yields the pytest ExceptionInfo."""
    with pytest.raises(ClientError) as info:
        yield info
    got = error_of(info.value)
    assert got == (code, status), f"expected {code}/{status}, got {got[0]}/{got[1]}: {info.value.response}"


def headers_of(response: Mapping) -> Mapping[str, str]:
    """Lower-cased raw HTTP headers of a boto3 response (or error response)."""
    return response["ResponseMetadata"]["HTTPHeaders"]


# ---------------------------------------------------------------------------
# boto3 clients
# ---------------------------------------------------------------------------
_SESSION = boto3.session.Session()


def make_client(
    endpoint: str,
    service: str = "s3",
    addressing_style: str = "path",
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = REGION,
    signature_version: Optional[str] = None,
    **config_kwargs,
):
    cfg = dict(
        s3={"addressing_style": addressing_style},
        # No retries at all: a retry would hide a failed first attempt.
        # (botocore's "max_attempts" counts retries in legacy mode; this is
        # the total including the first attempt.)
        retries={"total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=120,
    )
    if signature_version is not None:
        cfg["signature_version"] = signature_version
    cfg.update(config_kwargs)
    return _SESSION.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(**cfg),
    )


@contextlib.contextmanager
def shifted_client_clock(seconds: float):
    """Moves botocore's signing clock by `seconds`, as if the client's wall
    clock had moved together with Virga's (so that SigV4 X-Amz-Date stays
    consistent with a server whose clock was advanced)."""
    original = botocore.auth.get_current_datetime
    delta = _dt.timedelta(seconds=seconds)

    def shifted(remove_tzinfo=True):
        return original(remove_tzinfo) + delta

    botocore.auth.get_current_datetime = shifted
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


# ---------------------------------------------------------------------------
# Raw HTTP
# ---------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str, default=None):
        return self.headers.get(name, default)

    def error(self) -> dict:
        return parse_error(self.body)


def parse_error(body: bytes) -> dict:
    """Parses an S3 `<Error>` document into {child tag: text}."""
    assert body, "expected an XML error body, got an empty body"
    root = ET.fromstring(body)
    assert strip_ns(root.tag) == "Error", f"root element is {root.tag}, body={body!r}"
    return {strip_ns(child.tag): (child.text or "") for child in root}


def strip_ns(tag: str) -> str:
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def raw_request(
    endpoint: str,
    method: str,
    path: str = "/",
    *,
    query: str = "",
    headers: Optional[Mapping[str, str]] = None,
    body: Optional[bytes] = None,
    host: Optional[str] = None,
    sign: bool = True,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = REGION,
    timeout: float = 30,
    send_body: Optional[bytes] = None,
) -> RawResponse:
    """Sends one HTTP request with http.client (no redirects followed, no
    exceptions for 4xx/5xx). `path` must already be percent-encoded. With
    sign=True it is signed with SigV4 for service s3; `host` overrides the
    Host header (and the signed host) while connecting to the endpoint.
    `send_body`, if given, is sent instead of the signed `body` (tampering)."""
    url = endpoint.rstrip("/") + path + (("?" + query) if query else "")
    hdrs = dict(headers or {})
    if host is not None:
        hdrs["Host"] = host
    if sign:
        req = AWSRequest(method=method, url=url, data=body or b"", headers=hdrs)
        S3SigV4Auth(Credentials(access_key, secret_key), "s3", region).add_auth(req)
        hdrs = dict(req.headers.items())
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (("?" + parts.query) if parts.query else "")
        payload = send_body if send_body is not None else body
        conn.request(method, target, body=payload if payload else None, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.headers, data)
    finally:
        conn.close()


def url_fetch(url: str, method: str = "GET", data: Optional[bytes] = None,
              headers: Optional[Mapping[str, str]] = None, timeout: float = 30) -> RawResponse:
    """Fetches a URL with urllib (as a browser or curl would fetch a
    presigned URL); 4xx/5xx are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return RawResponse(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return RawResponse(e.code, e.headers, body)


def key_path(bucket: str, key: str = "") -> str:
    """Path-style request path with the key percent-encoded like the SDKs do."""
    return "/" + bucket + ("/" + quote(key, safe="/~") if key else "")


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------
class VirgaServer:
    """One `virga serve` process. `start()` picks a free port, launches the
    binary and waits until /_virga/health answers; stderr and stdout go to
    files so a dying server can be diagnosed."""

    def __init__(self, data_dir=None, ephemeral: bool = False, extra_args: Iterable[str] = (),
                 log_dir=None, env: Optional[Mapping[str, str]] = None):
        if data_dir is None and not ephemeral:
            raise ValueError("need a data_dir unless ephemeral")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.ephemeral = ephemeral
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="virga-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.host = "127.0.0.1"
        self._starts = 0
        self.stderr_path: Optional[Path] = None
        self.stdout_path: Optional[Path] = None

    # -- lifecycle ---------------------------------------------------------
    def command(self, port: int) -> list[str]:
        cmd = [str(virga_binary()), "serve", "--host", self.host, "--port", str(port)]
        if self.ephemeral:
            cmd.append("--ephemeral")
        else:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd + self.extra_args

    def start(self, timeout: float = HEALTH_TIMEOUT) -> "VirgaServer":
        binary = virga_binary()
        if not binary.exists():
            pytest.fail(f"virga binary not found at {binary}: build it (cargo build) or set VIRGA_BIN")
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _attempt in range(3):
            self._starts += 1
            port = free_port()
            self.stdout_path = self.log_dir / f"virga-{port}-{self._starts}.stdout"
            self.stderr_path = self.log_dir / f"virga-{port}-{self._starts}.stderr"
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            env.update(self.extra_env)
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(self.command(port), stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL, env=env)
            self.port = port
            ok, last_error = self._wait_healthy(timeout)
            if ok:
                return self
            # Lost the race for the port to another process: try another one.
            if "in use" not in last_error.lower():
                break
        pytest.fail(last_error)

    def _wait_healthy(self, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return False, (f"virga exited with status {rc} before becoming healthy\n"
                               f"command: {' '.join(self.command(self.port))}\n"
                               f"stderr:\n{self.stderr()}\nstdout:\n{self.stdout()}")
            try:
                with urllib.request.urlopen(self.url("/_virga/health"), timeout=1) as resp:
                    if resp.status == 200:
                        return True, ""
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        self.kill()
        return False, (f"virga did not become healthy within {timeout}s\n"
                       f"stderr:\n{self.stderr()}\nstdout:\n{self.stdout()}")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """Crash the server: SIGKILL, no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, timeout: float = HEALTH_TIMEOUT) -> "VirgaServer":
        self.stop()
        return self.start(timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        if self.stderr_path and self.stderr_path.exists():
            return self.stderr_path.read_text(errors="replace")[-20000:]
        return ""

    def stdout(self) -> str:
        if self.stdout_path and self.stdout_path.exists():
            return self.stdout_path.read_text(errors="replace")[-5000:]
        return ""

    # -- addressing --------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.endpoint + path

    def client(self, service: str = "s3", **kwargs):
        return make_client(self.endpoint, service, **kwargs)

    # -- control plane -----------------------------------------------------
    def health(self) -> dict:
        with urllib.request.urlopen(self.url("/_virga/health"), timeout=5) as resp:
            assert resp.status == 200
            return json.loads(resp.read())

    def reset(self) -> None:
        reset(self.endpoint)

    def advance_clock(self, seconds: float) -> RawResponse:
        return advance_clock(self.endpoint, seconds)


def control_post(endpoint: str, path: str, payload: Optional[dict] = None) -> RawResponse:
    body = json.dumps(payload).encode() if payload is not None else b""
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    return raw_request(endpoint, "POST", path, headers=headers, body=body, sign=False)


def reset(endpoint: str) -> None:
    resp = control_post(endpoint, "/_virga/reset")
    assert 200 <= resp.status < 300, (resp.status, resp.body)


def advance_clock(endpoint: str, seconds: float) -> RawResponse:
    resp = control_post(endpoint, "/_virga/clock", {"advance": seconds})
    assert 200 <= resp.status < 300, (resp.status, resp.body)
    return resp


# ---------------------------------------------------------------------------
# AWS CLI
# ---------------------------------------------------------------------------
def aws_cli_command() -> list[str]:
    exe = shutil.which("aws")
    return [exe] if exe else [sys.executable, "-m", "awscli"]


def run_aws(endpoint: str, *args: str, check: bool = True, cwd=None, timeout: float = 300,
            env_extra: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
    cfg_dir = Path(tempfile.gettempdir()) / "virga-tests-aws-config"
    cfg_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(cfg_dir / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(cfg_dir / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    if env_extra:
        env.update(env_extra)
    cmd = aws_cli_command() + ["--endpoint-url", endpoint, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"aws {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
