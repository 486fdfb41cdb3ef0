"""Lambda's JSON log format (LoggingConfig LogFormat JSON, "advanced logging
controls"): the Python (python3.12) and Node (nodejs20.x) runtimes write one
JSON object per logging call, as AWS's runtime interface clients do, and drop
calls below ApplicationLogLevel; print() stays plain text; an unhandled error
is logged as a JSON record too. The Text format keeps the tab-separated lines
and Python's default root level (WARNING). Checked through CloudWatch Logs
(FilterLogEvents on /aws/lambda/<name>).

AWS's documented behaviour is the spec: Python records are
{"timestamp", "level", "message", "logger", "requestId"} with Python's level
names (WARNING), Node records are {"timestamp", "level", "requestId",
"message"} with WARN, and requestId is the invocation's x-amzn-RequestId."""
from __future__ import annotations

import json
import re

from test_lambda_util import (  # noqa: F401  (fixtures)
    NODE_RUNTIME, deploy, invoke, lam, lambda_session_client, logs, node_zip, python_zip,
    request_id, wait_log_lines,
)

JSON_LOGS = {"LogFormat": "JSON", "ApplicationLogLevel": "INFO"}
# 2024-01-01T00:00:00.123Z: Python's JSON records and Node's console records.
ISO_MS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# 2024-01-01T00:00:00: awslambdaric's record of an unhandled error (no fraction, no Z).
ISO_SECONDS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")

PY_LOGGER = """
import logging
logger = logging.getLogger()

def lambda_handler(event, context):
    tag = event["tag"]
    logger.debug("debug %s", tag)
    logger.info("info %s", tag)
    logger.warning("warning %s", tag)
    logger.error("error %s", tag)
    logging.getLogger("orders").info("extra %s", tag, extra={"orderId": 42})
    print("print " + tag)
    if event.get("fail"):
        raise ValueError("failed " + tag)
    return {"requestId": context.aws_request_id}
"""

NODE_LOGGER = """
exports.handler = async (event, context) => {
  const tag = event.tag;
  console.debug(`debug ${tag}`);
  console.info(`info ${tag}`);
  console.log(`log ${tag}`);
  console.warn(`warn ${tag}`);
  console.error(`error ${tag}`);
  if (event.fail) throw new TypeError(`failed ${tag}`);
  return { requestId: context.awsRequestId };
};
"""


def json_records(messages) -> list:
    """The log events that are JSON objects with a "level" (function records;
    platform lines, whatever their format, are left out)."""
    out = []
    for m in messages:
        try:
            value = json.loads(m)
        except ValueError:
            continue
        if isinstance(value, dict) and "level" in value:
            out.append(value)
    return out


def by_message(records, text: str) -> list:
    return [r for r in records if r.get("message") == text]


# ---------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------
def test_python_json_log_format(lam, deploy, logs):
    name = deploy(zip_bytes=python_zip(PY_LOGGER), LoggingConfig=JSON_LOGS)
    resp, out = invoke(lam, name, {"tag": "py1"})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp
    rid = request_id(resp)
    assert out == {"requestId": rid}

    group = f"/aws/lambda/{name}"
    # print() is the handler's last output: once it is in, so is everything logged before it.
    msgs = wait_log_lines(logs, group, lambda m: any(x.strip() == "print py1" for x in m))
    records = json_records(msgs)

    for level, text in (("INFO", "info py1"), ("WARNING", "warning py1"), ("ERROR", "error py1")):
        found = by_message(records, text)
        assert len(found) == 1, (text, msgs)
        rec = found[0]
        assert rec["level"] == level, rec
        assert rec["requestId"] == rid, rec
        assert rec["logger"] == "root", rec
        assert ISO_MS_RE.match(rec["timestamp"]), rec
        assert set(rec) == {"timestamp", "level", "message", "logger", "requestId"}, rec

    # Fields given with extra= are part of the record; the logger's name is kept.
    extra = by_message(records, "extra py1")
    assert len(extra) == 1, msgs
    assert extra[0]["orderId"] == 42 and extra[0]["logger"] == "orders", extra
    assert extra[0]["level"] == "INFO" and extra[0]["requestId"] == rid, extra

    # Below ApplicationLogLevel INFO: not logged at all.
    assert not any("debug py1" in m for m in msgs), msgs
    # print() output is not a logging record: a plain text line.
    assert not by_message(records, "print py1")


def test_python_json_unhandled_error_record(lam, deploy, logs):
    name = deploy(zip_bytes=python_zip(PY_LOGGER), LoggingConfig=JSON_LOGS)
    resp, out = invoke(lam, name, {"tag": "py2", "fail": True})
    assert resp.get("FunctionError") == "Unhandled", resp
    assert out["errorType"] == "ValueError" and out["errorMessage"] == "failed py2", out
    rid = request_id(resp)

    group = f"/aws/lambda/{name}"

    def error_records(m):
        return [r for r in json_records(m) if r.get("errorType") == "ValueError"]

    msgs = wait_log_lines(logs, group, error_records)
    found = error_records(msgs)
    assert len(found) == 1, msgs
    rec = found[0]
    # awslambdaric's shape: timestamp, level, then the /error body's fields.
    assert list(rec) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"], rec
    assert rec["level"] == "ERROR", rec
    assert rec["errorMessage"] == "failed py2", rec
    assert rec["requestId"] == rid, rec
    assert ISO_SECONDS_RE.match(rec["timestamp"]), rec
    assert isinstance(rec["stackTrace"], list) and rec["stackTrace"], rec
    assert any("lambda_function.py" in frame for frame in rec["stackTrace"]), rec
    # Nothing of the text format's "[ERROR] ValueError: ..." line.
    assert not any(m.startswith("[ERROR]") for m in msgs), msgs


def test_python_text_log_format(lam, deploy, logs):
    name = deploy(zip_bytes=python_zip(PY_LOGGER), LoggingConfig={"LogFormat": "Text"})
    resp, _ = invoke(lam, name, {"tag": "py3"})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp
    rid = request_id(resp)

    group = f"/aws/lambda/{name}"
    msgs = wait_log_lines(logs, group, lambda m: any(x.strip() == "print py3" for x in m))
    # The root logger stays at Python's default, WARNING: no debug or info records.
    assert not any("debug py3" in m or "info py3" in m or "extra py3" in m for m in msgs), msgs
    warning = re.compile(
        r"^\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + re.escape(rid) + r"\twarning py3$")
    assert sum(1 for m in msgs if warning.match(m.rstrip("\n"))) == 1, msgs
    error = re.compile(
        r"^\[ERROR\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + re.escape(rid) + r"\terror py3$")
    assert sum(1 for m in msgs if error.match(m.rstrip("\n"))) == 1, msgs
    assert not json_records(msgs), msgs


# ---------------------------------------------------------------------------
# Node.js
# ---------------------------------------------------------------------------
def test_node_json_log_format(lam, deploy, logs):
    name = deploy(runtime=NODE_RUNTIME, zip_bytes=node_zip(NODE_LOGGER), LoggingConfig=JSON_LOGS)
    resp, out = invoke(lam, name, {"tag": "n1"})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp
    rid = request_id(resp)
    assert out == {"requestId": rid}

    group = f"/aws/lambda/{name}"
    # console.error is the handler's last output.
    msgs = wait_log_lines(logs, group, lambda m: by_message(json_records(m), "error n1"))
    records = json_records(msgs)

    for level, text in (("INFO", "info n1"), ("INFO", "log n1"), ("WARN", "warn n1"),
                        ("ERROR", "error n1")):
        found = by_message(records, text)
        assert len(found) == 1, (text, msgs)
        rec = found[0]
        # Exactly these keys, in this order (AWS's LogPatch.js).
        assert list(rec) == ["timestamp", "level", "requestId", "message"], rec
        assert rec["level"] == level, rec
        assert rec["requestId"] == rid, rec
        assert ISO_MS_RE.match(rec["timestamp"]), rec

    # console.debug is below ApplicationLogLevel INFO: dropped.
    assert not any("debug n1" in m for m in msgs), msgs
    # No text-format lines ("<time>\t<request id>\tINFO\t...") from the function.
    assert not any(f"\t{rid}\t" in m for m in msgs), msgs


def test_node_json_unhandled_error_record(lam, deploy, logs):
    name = deploy(runtime=NODE_RUNTIME, zip_bytes=node_zip(NODE_LOGGER), LoggingConfig=JSON_LOGS)
    resp, out = invoke(lam, name, {"tag": "n2", "fail": True})
    assert resp.get("FunctionError") == "Unhandled", resp
    assert out["errorType"] == "TypeError" and out["errorMessage"] == "failed n2", out
    rid = request_id(resp)

    group = f"/aws/lambda/{name}"

    def error_records(m):
        return [r for r in json_records(m)
                if isinstance(r.get("message"), dict) and r["message"].get("errorType") == "TypeError"]

    msgs = wait_log_lines(logs, group, error_records)
    found = error_records(msgs)
    assert len(found) == 1, msgs
    rec = found[0]
    # The runtime logs the error itself (no "Invoke Error" text) as the message.
    assert list(rec) == ["timestamp", "level", "requestId", "message"], rec
    assert rec["level"] == "ERROR" and rec["requestId"] == rid, rec
    assert ISO_MS_RE.match(rec["timestamp"]), rec
    err = rec["message"]
    assert err["errorMessage"] == "failed n2", err
    assert isinstance(err["stackTrace"], list), err
    assert err["stackTrace"][0] == "TypeError: failed n2", err
    assert not any("Invoke Error" in m for m in msgs), msgs


# ---------------------------------------------------------------------------
# Platform records
# ---------------------------------------------------------------------------
def test_json_format_platform_records(lam, deploy, logs):
    """With LogFormat JSON the platform lines are AWS's platform.* records too:
    initStart on a cold start, start, runtimeDone and report with its metrics."""
    name = deploy(zip_bytes=python_zip(PY_LOGGER), LoggingConfig=JSON_LOGS)
    resp, _ = invoke(lam, name, {"tag": "p1"})
    rid = request_id(resp)

    def platform(m):
        recs = []
        for line in m:
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and str(v.get("type", "")).startswith("platform."):
                recs.append(v)
        return recs if any(r["type"] == "platform.report" for r in recs) else []

    recs = platform(wait_log_lines(logs, f"/aws/lambda/{name}", platform))
    assert [r["type"] for r in recs] == [
        "platform.initStart", "platform.start", "platform.runtimeDone", "platform.report"]
    init, start, done, report = recs
    assert init["record"]["functionName"] == name and init["record"]["phase"] == "init"
    assert start["record"] == {"requestId": rid, "version": "$LATEST"}
    assert done["record"] == {"requestId": rid, "status": "success"}
    metrics = report["record"]["metrics"]
    assert report["record"]["requestId"] == rid and report["record"]["status"] == "success"
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1
    assert metrics["maxMemoryUsedMB"] > 0 and "initDurationMs" in metrics
    assert all(ISO_MS_RE.match(r["time"]) for r in recs), recs
    # No text platform lines alongside.
    assert not any(line.startswith(("START RequestId", "REPORT RequestId"))
                   for line in wait_log_lines(logs, f"/aws/lambda/{name}", lambda m: m))
