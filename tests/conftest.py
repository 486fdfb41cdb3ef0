"""pytest fixtures for Virga's end-to-end suite.

One Virga server (temp data dir, free port) serves the whole session; tests
that need their own process (restart, crash, --strict-auth, clock moves) start
one with `start_server`. Set VIRGA_BIN to test a binary other than
<repo>/target/debug/virga.

Set VIRGA_ENDPOINT (e.g. http://127.0.0.1:5055) to run the suite against an
already running server instead (another emulator, for comparison): no binary is
started for the shared server, and tests marked `virga_only` (they need Virga's
own /_virga/* endpoints or extra Virga processes) are skipped.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
from urllib.parse import urlsplit

import botocore.auth

import pytest

from virga_testlib import (
    VirgaServer,
    advance_clock,
    make_client,
    reset,
    run_aws,
    unique_name,
)


def pytest_addoption(parser):
    # `-n0` is accepted even without pytest-xdist, so the documented command
    # line works with nothing but pytest installed.
    if importlib.util.find_spec("xdist") is None:
        group = parser.getgroup("virga")
        # pytest reserves lowercase short options for itself and plugins;
        # _addoption is how plugins (xdist included) register them.
        group._addoption("-n", dest="virga_numprocesses", default=None,
                         help="ignored (pytest-xdist is not installed)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "virga_only: needs Virga itself (/_virga/* endpoints, extra processes); "
        "skipped when VIRGA_ENDPOINT points the suite at another server")


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("VIRGA_ENDPOINT"):
        return  # against Virga nothing is ever skipped
    skip = pytest.mark.skip(reason="virga_only: VIRGA_ENDPOINT points at an external server")
    for item in items:
        if "virga_only" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------------------
# The shared server
# ---------------------------------------------------------------------------
class ExternalServer:
    """A server started by someone else (VIRGA_ENDPOINT): only its address."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    def client(self, service: str = "s3", **kwargs):
        return make_client(self.endpoint, service, **kwargs)


@pytest.fixture(scope="session")
def virga_server(tmp_path_factory):
    external = os.environ.get("VIRGA_ENDPOINT")
    if external:
        yield ExternalServer(external)
        return
    server = VirgaServer(
        data_dir=tmp_path_factory.mktemp("virga-data"),
        log_dir=tmp_path_factory.mktemp("virga-logs"),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def endpoint(virga_server):
    """http://127.0.0.1:PORT of the session's Virga server."""
    return virga_server.endpoint


@pytest.fixture(scope="session")
def port(virga_server):
    return virga_server.port


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------
@pytest.fixture
def s3(endpoint):
    """Path-style S3 client: http://127.0.0.1:PORT/bucket/key."""
    return make_client(endpoint)


@pytest.fixture
def s3v(port):
    """Virtual-host style S3 client: http://bucket.localhost:PORT/key."""
    return make_client(f"http://localhost:{port}", addressing_style="virtual")


@pytest.fixture
def s3v_s3(port):
    """Virtual-host style through the s3.localhost name: http://bucket.s3.localhost:PORT/key."""
    return make_client(f"http://s3.localhost:{port}", addressing_style="virtual")


@pytest.fixture
def bucket(s3):
    """A fresh, uniquely named, empty bucket in us-east-1."""
    name = unique_name()
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def make_bucket(s3):
    """Factory for more uniquely named buckets in one test."""
    def _make(**kwargs):
        name = unique_name()
        s3.create_bucket(Bucket=name, **kwargs)
        return name
    return _make


@pytest.fixture
def empty_world(endpoint):
    """Empties every bucket of the shared server (POST /_virga/reset). Only for
    tests that count things server-wide, such as ListBuckets."""
    reset(endpoint)


@pytest.fixture
def aws(endpoint):
    """Runs the AWS CLI against the shared server: aws("s3", "ls", ...)."""
    def _aws(*args, **kwargs):
        return run_aws(endpoint, *args, **kwargs)
    return _aws


# ---------------------------------------------------------------------------
# Extra servers
# ---------------------------------------------------------------------------
@pytest.fixture
def start_server(tmp_path):
    """Factory that starts another Virga process; all are stopped at teardown.

        srv = start_server()                       # fresh data dir
        srv = start_server(data_dir=some_dir)      # reuse a data dir
        srv = start_server(ephemeral=True)         # --ephemeral
        srv = start_server(extra_args=["--strict-auth"])
        srv = start_server(env={"SSL_CERT_FILE": ca})  # extra environment
    """
    servers = []

    def _start(data_dir=None, ephemeral=False, extra_args=(), env=None):
        if data_dir is None and not ephemeral:
            data_dir = tmp_path / f"data-{len(servers)}"
        server = VirgaServer(data_dir=data_dir, ephemeral=ephemeral, extra_args=extra_args,
                             log_dir=tmp_path / f"logs-{len(servers)}", env=env)
        servers.append(server)
        return server.start()

    yield _start
    for server in servers:
        server.stop()


class TimeMachine:
    """Moves a server's clock (POST /_virga/clock) and, with it, botocore's
    signing clock, so signed requests stay within the allowed clock skew, as
    if real time had passed on both sides."""

    def __init__(self):
        self.offset = 0.0
        self._original = botocore.auth.get_current_datetime

    def advance(self, server, seconds: float):
        advance_clock(server.endpoint, seconds)
        self.offset += seconds
        delta = datetime.timedelta(seconds=self.offset)
        original = self._original

        def shifted(remove_tzinfo=True):
            return original(remove_tzinfo) + delta

        botocore.auth.get_current_datetime = shifted

    def advance_server_only(self, server, seconds: float):
        """Moves only Virga's clock (e.g. to expire a presigned URL)."""
        advance_clock(server.endpoint, seconds)

    def close(self):
        botocore.auth.get_current_datetime = self._original


@pytest.fixture
def time_machine():
    tm = TimeMachine()
    yield tm
    tm.close()


@pytest.fixture
def clock_server(start_server):
    """A private in-memory server whose clock a test may move freely without
    disturbing the shared server."""
    return start_server(ephemeral=True)
