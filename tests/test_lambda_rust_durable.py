"""Lambda: a Rust function on the official `lambda_runtime` crate (provided.al2023),
functions and queued invocations surviving a restart, and functions that misbehave
(fork many processes, print without end, leave children behind) without harming
Virga."""
import io
import json
import os
import time
import zipfile

import pytest

from virga_testlib import unique_name, virga_binary

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def zip_files(files, modes=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def python_function(lam, code, **kwargs):
    name = unique_name("fn")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                        Handler="lambda_function.handler",
                        Code={"ZipFile": zip_files({"lambda_function.py": code})}, **kwargs)
    return name


def invoke(lam, name, payload=None, **kwargs):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kwargs)
    return r, json.loads(r["Payload"].read() or b"null")


@pytest.fixture
def lam(virga_server):
    return virga_server.client("lambda")


# ---------------------------------------------------------------------------
# Rust (provided.al2023)
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rust_zip():
    path = virga_binary().parent / "bootstrap"
    if not path.exists():
        pytest.fail(f"{path} missing: `cargo build` builds crates/lambda-example-rust")
    return zip_files({"bootstrap": path.read_bytes()}, modes={"bootstrap": 0o755})


@pytest.mark.virga_only
def test_rust_lambda_runtime_function(lam, rust_zip, virga_server):
    name = unique_name("rust")
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                        Handler="bootstrap", Code={"ZipFile": rust_zip},
                        Architectures=["x86_64"])
    for who in ["ferris", "crab"]:
        r, out = invoke(lam, name, {"name": who})
        assert r["StatusCode"] == 200 and "FunctionError" not in r
        assert out["hello"] == who
        assert out["function"] == name
        assert out["request_id"] == r["ResponseMetadata"]["RequestId"]
    r, out = invoke(lam, name, {"fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert out["errorMessage"] == "asked to fail"
    logs = virga_server.client("logs")
    text = "\n".join(e["message"] for e in logs.filter_log_events(
        logGroupName=f"/aws/lambda/{name}")["events"])
    assert 'rust function got {"name":"ferris"}' in text
    assert "REPORT RequestId:" in text


def test_provided_without_bootstrap_fails_the_invoke(lam):
    name = unique_name("noboot")
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                        Handler="bootstrap", Code={"ZipFile": zip_files({"README": b"no bootstrap"})})
    r, out = invoke(lam, name)
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in out["errorMessage"]


def test_runtime_this_machine_lacks_is_failed(lam):
    name = unique_name("java")
    resp = lam.create_function(FunctionName=name, Runtime="java21", Role=ROLE,
                               Handler="example.Handler::handleRequest",
                               Code={"ZipFile": zip_files({"x.class": b"\xca\xfe"})})
    assert resp["FunctionName"] == name
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["State"] == "Failed"
    assert "java21" in cfg["StateReason"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        invoke(lam, name)


# ---------------------------------------------------------------------------
# Durability
# ---------------------------------------------------------------------------
@pytest.mark.virga_only
def test_functions_versions_and_code_survive_restart(start_server, tmp_path):
    srv = start_server(data_dir=tmp_path / "lambda-data")
    lam = srv.client("lambda")
    name = python_function(lam, "def handler(e, c):\n    return {'v': 1, 'e': e}\n")
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert invoke(lam, name, {"a": 1})[1] == {"v": 1, "e": {"a": 1}}
    srv.kill()
    srv.restart()
    lam = srv.client("lambda")
    r, out = invoke(lam, name, {"a": 2}, Qualifier="live")
    assert out == {"v": 1, "e": {"a": 2}}
    assert r["ExecutedVersion"] == "1"
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST", "1"]


@pytest.mark.virga_only
def test_queued_event_invocation_survives_kill(start_server, tmp_path):
    """An Event invoke acknowledged with 202 runs after a kill -9 and restart, even
    when the process died while the attempt was running."""
    srv = start_server(data_dir=tmp_path / "lambda-queue")
    lam = srv.client("lambda")
    s3 = srv.client("s3")
    bucket = unique_name("marks")
    s3.create_bucket(Bucket=bucket)
    # The handler is slow, so the kill lands mid-attempt; it records each run.
    name = python_function(lam, (
        "import boto3, os, time, uuid\n"
        "def handler(e, c):\n"
        "    time.sleep(e['sleep'])\n"
        "    boto3.client('s3').put_object(Bucket=os.environ['BUCKET'], Key=str(uuid.uuid4()), Body=b'x')\n"
    ), Environment={"Variables": {"BUCKET": bucket}}, Timeout=30)
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"sleep": 2}))
    assert r["StatusCode"] == 202
    time.sleep(0.5)
    srv.kill()
    srv.restart()
    s3 = srv.client("s3")
    deadline = time.time() + 20
    while time.time() < deadline:
        if s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) >= 1:
            break
        time.sleep(0.2)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] >= 1


# ---------------------------------------------------------------------------
# Misbehaving functions
# ---------------------------------------------------------------------------
def test_many_child_processes_are_killed_with_the_timeout(lam, virga_server):
    name = python_function(lam, (
        "import subprocess, sys\n"
        "def handler(e, c):\n"
        "    procs = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) for _ in range(40)]\n"
        "    print('children', ' '.join(str(p.pid) for p in procs), flush=True)\n"
        "    import time; time.sleep(60)\n"
    ), Timeout=2)
    r, out = invoke(lam, name, LogType="Tail")
    assert out["errorType"] == "Sandbox.Timedout"
    logs = virga_server.client("logs")
    line = next(e["message"] for e in logs.filter_log_events(
        logGroupName=f"/aws/lambda/{name}")["events"] if e["message"].startswith("children"))
    pids = [int(p) for p in line.split()[1:]]
    assert len(pids) == 40
    deadline = time.time() + 5
    alive = pids
    while alive and time.time() < deadline:
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
                 open(f"/proc/{p}/stat").read().split(")")[1].split()[0] != "Z"]
        time.sleep(0.1)
    assert alive == []
    # Virga itself is fine and the function runs again in a fresh environment.
    assert virga_server.client("s3").list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_endless_output_is_capped_and_the_function_still_answers(lam, virga_server):
    name = python_function(lam, (
        "import sys\n"
        "def handler(e, c):\n"
        "    line = 'x' * 1000 + '\\n'\n"
        "    for _ in range(20000):\n"
        "        sys.stdout.write(line)\n"
        "    return 'done'\n"
    ), Timeout=30)
    r, out = invoke(lam, name)
    assert out == "done"
    logs = virga_server.client("logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}",
                                    filterPattern="dropped")["events"]
    assert any("bytes of output were dropped" in e["message"] for e in events)


def test_memory_hog_is_reported_out_of_memory(lam):
    name = python_function(lam, (
        "def handler(e, c):\n"
        "    hog = []\n"
        "    while True:\n"
        "        hog.append(b'x' * (16 * 1024 * 1024))\n"
    ), MemorySize=128, Timeout=20)
    r, out = invoke(lam, name)
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.OutOfMemory"
    # The next invoke gets a fresh process (and runs out again, the same way).
    r, out = invoke(lam, name)
    assert out["errorType"] == "Runtime.OutOfMemory"


# ---------------------------------------------------------------------------
# Paths as on AWS
# ---------------------------------------------------------------------------
def test_code_at_var_task_and_layers_at_opt(lam):
    """Where Virga may give runtimes their own mount namespace (it runs as root on
    Linux), functions find their code at /var/task and their layers at /opt, as on
    AWS; elsewhere both are directories of Virga's, named by LAMBDA_TASK_ROOT and
    $VIRGA_LAMBDA_OPT."""
    layer = lam.publish_layer_version(
        LayerName=unique_name("paths"),
        Content={"ZipFile": zip_files({"python/pathlib_probe.py": b"WHERE = __file__\n",
                                       "bin/tool": b"#!/bin/sh\necho tool ran\n"},
                                      modes={"bin/tool": 0o755})})["LayerVersionArn"]
    name = python_function(lam, (
        "import os, subprocess, traceback, pathlib_probe\n"
        "def handler(e, c):\n"
        "    try:\n"
        "        raise ValueError('where')\n"
        "    except ValueError:\n"
        "        frame = traceback.extract_tb(__import__('sys').exc_info()[2])[0].filename\n"
        "    return {'root': os.environ['LAMBDA_TASK_ROOT'], 'cwd': os.getcwd(), 'frame': frame,\n"
        "            'layer_module': pathlib_probe.WHERE,\n"
        "            'tool': subprocess.run(['tool'], capture_output=True, text=True).stdout.strip()}\n"
    ), Layers=[layer])
    _, out = invoke(lam, name)
    assert out["tool"] == "tool ran"
    if os.geteuid() == 0:
        assert out["root"] == "/var/task"
        assert out["cwd"] == "/var/task"
        assert out["frame"] == "/var/task/lambda_function.py"
        assert out["layer_module"] == "/opt/python/pathlib_probe.py"
    else:
        assert out["cwd"] == out["root"]
        assert out["frame"] == os.path.join(out["root"], "lambda_function.py")
        assert out["layer_module"].endswith("/python/pathlib_probe.py")
