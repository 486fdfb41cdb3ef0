"""CloudWatch Logs: log groups (tags, retention, DescribeLogGroups prefix and paging),
log streams (DescribeLogStreams ordering and event timestamps), PutLogEvents (order,
too old / too new events), GetLogEvents (head/tail, tokens, time range),
FilterLogEvents (streams, time range, text and JSON filter patterns, paging), the
tagging APIs and the AWS CLI (create-log-group, put-log-events, tail,
filter-log-events).

AWS's documented behaviour is the spec; every error comes back as HTTP 400 with the
awsJson1_1 error type as its code."""
from __future__ import annotations

import contextlib
import datetime
import json
import time

import pytest

from virga_testlib import REGION, expect_error, make_client, unique_name

ACCOUNT = "000000000000"
DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000

GROUP_MISSING = "The specified log group does not exist."
STREAM_MISSING = "The specified log stream does not exist."


# ---------------------------------------------------------------------------
# Helpers and fixtures
# ---------------------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def group_arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def stream_arn(group: str, stream: str) -> str:
    return f"{group_arn(group)}:log-stream:{stream}"


@contextlib.contextmanager
def logs_error(code: str, message: str | None = None):
    """The block fails with this CloudWatch Logs error code, HTTP 400 and, if
    given, exactly this message."""
    with expect_error(code, 400) as info:
        yield info
    if message is not None:
        got = info.value.response["Error"].get("Message")
        assert got == message, f"expected message {message!r}, got {got!r}"


@pytest.fixture(scope="module")
def logs_client(virga_server):
    return make_client(virga_server.endpoint, "logs")


@pytest.fixture
def logs(logs_client):
    """boto3 CloudWatch Logs client on the shared server."""
    return logs_client


@pytest.fixture
def group(logs):
    """A fresh, uniquely named log group."""
    name = unique_name("lg")
    logs.create_log_group(logGroupName=name)
    return name


def make_stream(logs, group: str, name: str | None = None) -> str:
    name = name or unique_name("ls")
    logs.create_log_stream(logGroupName=group, logStreamName=name)
    return name


@pytest.fixture
def stream(logs, group):
    """A fresh log stream in `group`."""
    return make_stream(logs, group)


def put(logs, group, stream, messages, start=None, step=1000):
    """Puts one event per message, `step` ms apart from `start` (default: a
    minute ago). Returns the timestamps."""
    start = now_ms() - 60_000 if start is None else start
    stamps = [start + i * step for i in range(len(messages))]
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in zip(stamps, messages)])
    return stamps


def describe_group(logs, name):
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    matches = [g for g in groups if g["logGroupName"] == name]
    assert len(matches) == 1, groups
    return matches[0]


def describe_stream(logs, group, name):
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=name)["logStreams"]
    matches = [s for s in streams if s["logStreamName"] == name]
    assert len(matches) == 1, streams
    return matches[0]


def messages_of(events):
    return [e["message"] for e in events]


def all_stream_messages(logs, group, stream):
    return messages_of(logs.get_log_events(logGroupName=group, logStreamName=stream,
                                           startFromHead=True)["events"])


def filter_all(logs, group, max_pages=50, **kwargs):
    """Every event FilterLogEvents returns, following nextToken."""
    events, token = [], None
    for _ in range(max_pages):
        args = dict(kwargs, logGroupName=group)
        if token:
            args["nextToken"] = token
        resp = logs.filter_log_events(**args)
        events += resp["events"]
        token = resp.get("nextToken")
        if not token:
            return events
    raise AssertionError(f"FilterLogEvents still had a nextToken after {max_pages} pages")


# ---------------------------------------------------------------------------
# Log groups
# ---------------------------------------------------------------------------
def test_create_log_group_is_described(logs):
    name = unique_name("lg")
    before = now_ms()
    logs.create_log_group(logGroupName=name)
    g = describe_group(logs, name)
    assert g["logGroupName"] == name
    assert g["arn"] == group_arn(name) + ":*"
    assert g["logGroupArn"] == group_arn(name)
    assert before - 5_000 <= g["creationTime"] <= now_ms() + 5_000
    assert g["storedBytes"] == 0
    assert g["metricFilterCount"] == 0
    assert "retentionInDays" not in g


def test_create_duplicate_log_group_fails(logs, group):
    with logs_error("ResourceAlreadyExistsException", "The specified log group already exists"):
        logs.create_log_group(logGroupName=group)


def test_create_log_group_with_tags(logs):
    name = unique_name("lg")
    logs.create_log_group(logGroupName=name, tags={"team": "core", "env": "test"})
    assert logs.list_tags_for_resource(resourceArn=group_arn(name))["tags"] == {"team": "core", "env": "test"}
    assert logs.list_tags_log_group(logGroupName=name)["tags"] == {"team": "core", "env": "test"}


def test_delete_log_group_removes_it_and_its_streams(logs, group, stream):
    put(logs, group, stream, ["before delete"])
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.describe_log_streams(logGroupName=group)
    # The name is free again, and the new group starts empty.
    logs.create_log_group(logGroupName=group)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []


def test_delete_missing_log_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.delete_log_group(logGroupName=unique_name("lg"))


def test_describe_log_groups_prefix_sorted_by_name(logs):
    base = unique_name("lgp")
    for suffix in ("b", "c", "a"):
        logs.create_log_group(logGroupName=f"{base}/{suffix}")
    logs.create_log_group(logGroupName=f"{base}x")  # not under base/
    groups = logs.describe_log_groups(logGroupNamePrefix=f"{base}/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"{base}/a", f"{base}/b", f"{base}/c"]
    assert "nextToken" not in logs.describe_log_groups(logGroupNamePrefix=f"{base}/")


def test_describe_log_groups_pagination(logs):
    base = unique_name("lgp")
    names = [f"{base}-{i}" for i in range(5)]
    for n in reversed(names):
        logs.create_log_group(logGroupName=n)
    pages, token = [], None
    for _ in range(10):
        kwargs = {"logGroupNamePrefix": base, "limit": 2}
        if token:
            kwargs["nextToken"] = token
        resp = logs.describe_log_groups(**kwargs)
        pages.append([g["logGroupName"] for g in resp["logGroups"]])
        token = resp.get("nextToken")
        if not token:
            break
    assert pages == [names[0:2], names[2:4], names[4:5]]


@pytest.mark.parametrize("days", [1, 7, 30, 3653])
def test_put_retention_policy_valid_values(logs, group, days):
    logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    assert describe_group(logs, group)["retentionInDays"] == days


@pytest.mark.parametrize("days", [2, 0, 4000])
def test_put_retention_policy_invalid_value_fails(logs, group, days):
    logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    with logs_error("InvalidParameterException"):
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    assert describe_group(logs, group)["retentionInDays"] == 7


def test_delete_retention_policy(logs, group):
    logs.put_retention_policy(logGroupName=group, retentionInDays=14)
    assert describe_group(logs, group)["retentionInDays"] == 14
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in describe_group(logs, group)


def test_put_retention_policy_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.put_retention_policy(logGroupName=unique_name("lg"), retentionInDays=7)


# ---------------------------------------------------------------------------
# Log streams
# ---------------------------------------------------------------------------
def test_create_log_stream_is_described(logs, group):
    before = now_ms()
    name = make_stream(logs, group)
    s = describe_stream(logs, group, name)
    assert s["logStreamName"] == name
    assert s["arn"] == stream_arn(group, name)
    assert before - 5_000 <= s["creationTime"] <= now_ms() + 5_000
    assert s["storedBytes"] == 0
    # No events yet: no event timestamps.
    assert "firstEventTimestamp" not in s
    assert "lastEventTimestamp" not in s


def test_create_duplicate_log_stream_fails(logs, group, stream):
    with logs_error("ResourceAlreadyExistsException", "The specified log stream already exists"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)


def test_create_log_stream_in_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.create_log_stream(logGroupName=unique_name("lg"), logStreamName="s")


def test_delete_log_stream(logs, group, stream):
    put(logs, group, stream, ["gone soon"])
    logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    with logs_error("ResourceNotFoundException", STREAM_MISSING):
        logs.get_log_events(logGroupName=group, logStreamName=stream)
    assert filter_all(logs, group) == []


def test_delete_missing_log_stream_fails(logs, group):
    with logs_error("ResourceNotFoundException", STREAM_MISSING):
        logs.delete_log_stream(logGroupName=group, logStreamName="never-created")


def test_describe_log_streams_prefix_and_name_order(logs, group):
    for n in ("app-b", "app-c", "app-a", "web-1"):
        make_stream(logs, group, n)
    asc = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="app-")["logStreams"]
    assert [s["logStreamName"] for s in asc] == ["app-a", "app-b", "app-c"]
    every = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in every] == ["app-a", "app-b", "app-c", "web-1"]
    desc = logs.describe_log_streams(logGroupName=group, descending=True)["logStreams"]
    assert [s["logStreamName"] for s in desc] == ["web-1", "app-c", "app-b", "app-a"]


def test_describe_log_streams_pagination(logs, group):
    names = [f"s-{i}" for i in range(5)]
    for n in names:
        make_stream(logs, group, n)
    pages, token = [], None
    for _ in range(10):
        kwargs = {"logGroupName": group, "limit": 2}
        if token:
            kwargs["nextToken"] = token
        resp = logs.describe_log_streams(**kwargs)
        pages.append([s["logStreamName"] for s in resp["logStreams"]])
        token = resp.get("nextToken")
        if not token:
            break
    assert pages == [names[0:2], names[2:4], names[4:5]]


def test_describe_log_streams_order_by_last_event_time_descending(logs, group):
    base = now_ms() - 10 * 60_000
    # Stream names in one order, last event times in another.
    for name, offset in (("a-middle", 2 * 60_000), ("b-newest", 3 * 60_000), ("c-oldest", 60_000)):
        make_stream(logs, group, name)
        put(logs, group, name, ["first", "last"], start=base + offset - 1000)
    desc = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in desc["logStreams"]] == ["b-newest", "a-middle", "c-oldest"]
    asc = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime")
    assert [s["logStreamName"] for s in asc["logStreams"]] == ["c-oldest", "a-middle", "b-newest"]


def test_describe_log_streams_event_timestamps(logs, group, stream):
    start = now_ms() - 5 * 60_000
    first = put(logs, group, stream, ["one", "two"], start=start)
    second = put(logs, group, stream, ["three"], start=start + 60_000)
    s = describe_stream(logs, group, stream)
    assert s["firstEventTimestamp"] == first[0]
    assert s["lastEventTimestamp"] == second[-1]
    assert abs(s["lastIngestionTime"] - now_ms()) < 60_000


def test_describe_log_streams_last_event_time_with_prefix_fails(logs, group, stream):
    with logs_error("InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix."):
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="x")


def test_describe_log_streams_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.describe_log_streams(logGroupName=unique_name("lg"))


# ---------------------------------------------------------------------------
# PutLogEvents
# ---------------------------------------------------------------------------
def test_put_log_events_returns_sequence_token(logs, group, stream):
    resp = logs.put_log_events(logGroupName=group, logStreamName=stream,
                               logEvents=[{"timestamp": now_ms(), "message": "hello"}])
    assert isinstance(resp["nextSequenceToken"], str) and resp["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in resp
    assert all_stream_messages(logs, group, stream) == ["hello"]


def test_put_log_events_equal_timestamps_accepted(logs, group, stream):
    t = now_ms() - 1000
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": "same-1"}, {"timestamp": t, "message": "same-2"}])
    assert sorted(all_stream_messages(logs, group, stream)) == ["same-1", "same-2"]


def test_put_log_events_out_of_order_fails(logs, group, stream):
    t = now_ms()
    with logs_error("InvalidParameterException",
                    "Log events in a single PutLogEvents request must be in chronological order."):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t, "message": "later"},
                                       {"timestamp": t - 5000, "message": "earlier"}])
    assert all_stream_messages(logs, group, stream) == []


def test_put_log_events_missing_stream_fails(logs, group):
    with logs_error("ResourceNotFoundException", STREAM_MISSING):
        logs.put_log_events(logGroupName=group, logStreamName="no-such-stream",
                            logEvents=[{"timestamp": now_ms(), "message": "x"}])


def test_put_log_events_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.put_log_events(logGroupName=unique_name("lg"), logStreamName="s",
                            logEvents=[{"timestamp": now_ms(), "message": "x"}])


def test_put_log_events_too_old_events_rejected(logs, group, stream):
    """Events older than 14 days are rejected; tooOldLogEventEndIndex is exclusive
    (the index just past the last too-old event) and the rest are stored."""
    now = now_ms()
    old = now - 14 * DAY_MS - HOUR_MS
    ok = now - 14 * DAY_MS + HOUR_MS
    resp = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": old, "message": "old-1"},
        {"timestamp": old + 1, "message": "old-2"},
        {"timestamp": ok, "message": "kept"},
    ])
    assert resp["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    assert all_stream_messages(logs, group, stream) == ["kept"]


def test_put_log_events_single_too_old_event(logs, group, stream):
    resp = logs.put_log_events(logGroupName=group, logStreamName=stream,
                               logEvents=[{"timestamp": now_ms() - 30 * DAY_MS, "message": "ancient"}])
    assert resp["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    assert all_stream_messages(logs, group, stream) == []
    assert "firstEventTimestamp" not in describe_stream(logs, group, stream)


def test_put_log_events_too_new_events_rejected(logs, group, stream):
    """Events more than 2 hours in the future are rejected; tooNewLogEventStartIndex
    is the index of the first too-new event."""
    now = now_ms()
    resp = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now - 1000, "message": "kept"},
        {"timestamp": now + 3 * HOUR_MS, "message": "future-1"},
        {"timestamp": now + 3 * HOUR_MS + 1, "message": "future-2"},
    ])
    assert resp["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert all_stream_messages(logs, group, stream) == ["kept"]


# ---------------------------------------------------------------------------
# GetLogEvents
# ---------------------------------------------------------------------------
FIVE = ["e0", "e1", "e2", "e3", "e4"]


def test_get_log_events_returns_all_in_order_with_fields(logs, group, stream):
    stamps = put(logs, group, stream, FIVE)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream)
    assert messages_of(resp["events"]) == FIVE
    assert [e["timestamp"] for e in resp["events"]] == stamps
    for e in resp["events"]:
        assert abs(e["ingestionTime"] - now_ms()) < 60_000
    assert resp["nextForwardToken"] and resp["nextBackwardToken"]


def test_get_log_events_default_returns_latest(logs, group, stream):
    put(logs, group, stream, FIVE)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert messages_of(resp["events"]) == ["e3", "e4"]


def test_get_log_events_start_from_head(logs, group, stream):
    put(logs, group, stream, FIVE)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2, startFromHead=True)
    assert messages_of(resp["events"]) == ["e0", "e1"]


def test_get_log_events_forward_paging_repeats_token_at_end(logs, group, stream):
    put(logs, group, stream, FIVE)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2, startFromHead=True)
    seen, pages = messages_of(resp["events"]), 1
    token = resp["nextForwardToken"]
    while True:
        resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2,
                                   startFromHead=True, nextToken=token)
        pages += 1
        assert pages <= 10, "forward paging did not end"
        if not resp["events"]:
            # The end of the stream: the same token comes back.
            assert resp["nextForwardToken"] == token
            break
        assert len(resp["events"]) <= 2
        seen += messages_of(resp["events"])
        token = resp["nextForwardToken"]
    assert seen == FIVE
    # Events put later are found with the token that had reached the end.
    put(logs, group, stream, ["e5"], start=now_ms() - 1000)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, nextToken=token)
    assert messages_of(resp["events"]) == ["e5"]


def test_get_log_events_backward_paging(logs, group, stream):
    put(logs, group, stream, FIVE)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert messages_of(resp["events"]) == ["e3", "e4"]
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2,
                               nextToken=resp["nextBackwardToken"])
    assert messages_of(resp["events"]) == ["e1", "e2"]
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2,
                               nextToken=resp["nextBackwardToken"])
    assert messages_of(resp["events"]) == ["e0"]


def test_get_log_events_time_range(logs, group, stream):
    """startTime is inclusive, endTime exclusive."""
    stamps = put(logs, group, stream, FIVE)
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True,
                               startTime=stamps[1], endTime=stamps[3])
    assert messages_of(resp["events"]) == ["e1", "e2"]
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=stamps[3])
    assert messages_of(resp["events"]) == ["e3", "e4"]


def test_get_log_events_missing_stream_fails(logs, group):
    with logs_error("ResourceNotFoundException", STREAM_MISSING):
        logs.get_log_events(logGroupName=group, logStreamName="no-such-stream")


def test_get_log_events_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.get_log_events(logGroupName=unique_name("lg"), logStreamName="s")


def test_get_log_events_invalid_token_fails(logs, group, stream):
    with logs_error("InvalidParameterException", "The specified nextToken is invalid."):
        logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken="invalid-token")


# ---------------------------------------------------------------------------
# FilterLogEvents: streams, time range, paging
# ---------------------------------------------------------------------------
@pytest.fixture
def two_streams(logs, group):
    """Group with streams api-1 (events a0, a2) and web-1 (events b1, b3),
    interleaved in time. Returns (group, timestamps by message)."""
    base = now_ms() - 5 * 60_000
    make_stream(logs, group, "api-1")
    make_stream(logs, group, "web-1")
    logs.put_log_events(logGroupName=group, logStreamName="api-1", logEvents=[
        {"timestamp": base, "message": "a0"}, {"timestamp": base + 2000, "message": "a2"}])
    logs.put_log_events(logGroupName=group, logStreamName="web-1", logEvents=[
        {"timestamp": base + 1000, "message": "b1"}, {"timestamp": base + 3000, "message": "b3"}])
    return group, {"a0": base, "b1": base + 1000, "a2": base + 2000, "b3": base + 3000}


def test_filter_log_events_across_streams_sorted_by_time(logs, two_streams):
    group, stamps = two_streams
    events = filter_all(logs, group)
    assert messages_of(events) == ["a0", "b1", "a2", "b3"]
    assert [e["logStreamName"] for e in events] == ["api-1", "web-1", "api-1", "web-1"]
    assert [e["timestamp"] for e in events] == [stamps[m] for m in ("a0", "b1", "a2", "b3")]
    for e in events:
        assert abs(e["ingestionTime"] - now_ms()) < 60_000
        assert isinstance(e["eventId"], str) and e["eventId"]
    assert len({e["eventId"] for e in events}) == 4


def test_filter_log_events_log_stream_names(logs, two_streams):
    group, _ = two_streams
    assert messages_of(filter_all(logs, group, logStreamNames=["web-1"])) == ["b1", "b3"]
    assert messages_of(filter_all(logs, group, logStreamNames=["api-1", "web-1"])) == ["a0", "b1", "a2", "b3"]


def test_filter_log_events_log_stream_name_prefix(logs, two_streams):
    group, _ = two_streams
    assert messages_of(filter_all(logs, group, logStreamNamePrefix="api")) == ["a0", "a2"]
    assert filter_all(logs, group, logStreamNamePrefix="nothing") == []


def test_filter_log_events_names_and_prefix_together_fails(logs, two_streams):
    group, _ = two_streams
    with logs_error("InvalidParameterException"):
        logs.filter_log_events(logGroupName=group, logStreamNames=["api-1"], logStreamNamePrefix="api")


def test_filter_log_events_time_range(logs, two_streams):
    group, stamps = two_streams
    events = filter_all(logs, group, startTime=stamps["b1"], endTime=stamps["b3"] - 500)
    assert messages_of(events) == ["b1", "a2"]
    assert messages_of(filter_all(logs, group, startTime=stamps["a2"])) == ["a2", "b3"]
    assert messages_of(filter_all(logs, group, endTime=stamps["b1"] + 500)) == ["a0", "b1"]


def test_filter_log_events_pagination(logs, group, stream):
    msgs = [f"m{i}" for i in range(5)]
    put(logs, group, stream, msgs)
    first = logs.filter_log_events(logGroupName=group, limit=2)
    assert 0 < len(first["events"]) <= 2
    assert first.get("nextToken"), "more events remain: expected a nextToken"
    events, token, pages = list(first["events"]), first["nextToken"], 1
    while token:
        resp = logs.filter_log_events(logGroupName=group, limit=2, nextToken=token)
        assert len(resp["events"]) <= 2
        events += resp["events"]
        token = resp.get("nextToken")
        pages += 1
        assert pages <= 20, "pagination did not end"
    assert messages_of(events) == msgs
    assert len({e["eventId"] for e in events}) == 5


def test_filter_log_events_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException", GROUP_MISSING):
        logs.filter_log_events(logGroupName=unique_name("lg"))


# ---------------------------------------------------------------------------
# FilterLogEvents: filter patterns
# ---------------------------------------------------------------------------
TEXT_EVENTS = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[WARN 503] SLOW RESPONSE",
    "[INFO 200] ALL GOOD",
]


@pytest.fixture(scope="module")
def text_group(logs_client):
    group = unique_name("lgt")
    logs_client.create_log_group(logGroupName=group)
    make_stream(logs_client, group, "text")
    put(logs_client, group, "text", TEXT_EVENTS)
    return group


@pytest.mark.parametrize("pattern,expected", [
    ("ERROR", TEXT_EVENTS[0:4]),
    ("ERROR ARGUMENTS", TEXT_EVENTS[2:4]),                  # all terms must match
    ("ARGUMENTS ERROR", TEXT_EVENTS[2:4]),                  # in any order
    ('"INVALID ARGUMENTS"', [TEXT_EVENTS[3]]),              # exact phrase
    ('"ARGUMENTS INVALID"', []),                            # a phrase keeps its word order
    ("?WARN ?MISSING", [TEXT_EVENTS[2], TEXT_EVENTS[4]]),   # any term
    ("ERROR -ARGUMENTS", TEXT_EVENTS[0:2]),                 # exclusion with a positive term
    ("error", []),                                          # case sensitive
    ("", TEXT_EVENTS),                                      # empty pattern matches everything
])
def test_filter_log_events_text_patterns(logs, text_group, pattern, expected):
    assert messages_of(filter_all(logs, text_group, filterPattern=pattern)) == expected


JSON_EVENTS = [
    {"level": "error", "latency": 50, "a": "x", "b": 1, "user": {"name": "bob"}, "name": "alice"},
    {"level": "info", "latency": 150, "a": "x", "b": 2, "user": {"name": "carol"}, "name": "bob"},
    {"level": "error", "latency": 250, "a": "y", "b": 1, "user": {"name": "bob"}, "name": "alfred"},
    {"level": "warn", "latency": 100, "a": "x", "b": 3, "user": {"name": "dave"}, "name": "sal"},
]
PLAIN_EVENT = 'level=error latency=999 not json: a = "x" name = "alice"'


@pytest.fixture(scope="module")
def json_group(logs_client):
    group = unique_name("lgj")
    logs_client.create_log_group(logGroupName=group)
    make_stream(logs_client, group, "json")
    put(logs_client, group, "json", [json.dumps(e) for e in JSON_EVENTS] + [PLAIN_EVENT])
    return group


@pytest.mark.parametrize("pattern,expected", [
    ('{ $.level = "error" }', [0, 2]),
    ('{$.level="error"}', [0, 2]),
    ("{ $.latency > 100 }", [1, 2]),
    ("{ $.latency >= 100 }", [1, 2, 3]),
    ('{ $.a = "x" && $.b = 1 }', [0]),
    ('{ $.level = "warn" || $.latency > 200 }', [2, 3]),
    ('{ $.user.name = "bob" }', [0, 2]),
    ('{ $.name = "al*" }', [0, 2]),
    ('{ $.level != "error" }', [1, 3]),
])
def test_filter_log_events_json_patterns(logs, json_group, pattern, expected):
    got = messages_of(filter_all(logs, json_group, filterPattern=pattern))
    assert got == [json.dumps(JSON_EVENTS[i]) for i in expected]


# ---------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------
def test_tag_untag_list_tags_for_resource(logs, group):
    arn = group_arn(group)
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    logs.tag_resource(resourceArn=arn, tags={"team": "core", "env": "dev"})
    logs.tag_resource(resourceArn=arn, tags={"env": "prod", "cost": "42"})  # overwrite + add
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "core", "env": "prod", "cost": "42"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team", "absent"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod", "cost": "42"}
    # The legacy API sees the same tags.
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"env": "prod", "cost": "42"}


def test_legacy_tag_log_group(logs, group):
    logs.tag_log_group(logGroupName=group, tags={"a": "1", "b": "2"})
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"a": "1", "b": "2"}
    logs.untag_log_group(logGroupName=group, tags=["a"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"b": "2"}
    assert logs.list_tags_for_resource(resourceArn=group_arn(group))["tags"] == {"b": "2"}


def test_tag_resource_missing_group_fails(logs):
    with logs_error("ResourceNotFoundException"):
        logs.tag_resource(resourceArn=group_arn(unique_name("lg")), tags={"a": "1"})


# ---------------------------------------------------------------------------
# AWS CLI
# ---------------------------------------------------------------------------
def cli_json(aws, *args):
    out = aws("logs", *args, "--output", "json").stdout
    return json.loads(out) if out.strip() else {}


def cli_group_with_events(aws, messages):
    group, stream = unique_name("cli"), "cli-stream"
    aws("logs", "create-log-group", "--log-group-name", group)
    aws("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", stream)
    start = now_ms() - 60_000
    events = [{"timestamp": start + i * 1000, "message": m} for i, m in enumerate(messages)]
    out = cli_json(aws, "put-log-events", "--log-group-name", group, "--log-stream-name", stream,
                   "--log-events", json.dumps(events))
    assert out["nextSequenceToken"]
    return group, stream, events


def test_cli_create_put_and_describe(aws, logs):
    group, stream, events = cli_group_with_events(aws, ["hello from the CLI", "second line"])
    groups = cli_json(aws, "describe-log-groups", "--log-group-name-prefix", group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    got = cli_json(aws, "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                   "--start-from-head")["events"]
    assert [(e["timestamp"], e["message"]) for e in got] == [(e["timestamp"], e["message"]) for e in events]
    assert all_stream_messages(logs, group, stream) == ["hello from the CLI", "second line"]


def test_cli_filter_log_events_with_pattern(aws):
    group, stream, _ = cli_group_with_events(aws, ["ERROR disk full", "INFO all good", "ERROR net down"])
    out = cli_json(aws, "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR")
    assert [(e["logStreamName"], e["message"]) for e in out["events"]] == [
        (stream, "ERROR disk full"), (stream, "ERROR net down")]


def test_cli_create_existing_group_fails(aws, group):
    proc = aws("logs", "create-log-group", "--log-group-name", group, check=False)
    assert proc.returncode != 0
    assert "ResourceAlreadyExistsException" in proc.stderr




# ---------------------------------------------------------------------------
# Hardening found by code review
# ---------------------------------------------------------------------------
def test_many_ellipses_in_a_space_delimited_pattern_finish_quickly(logs, group, stream):
    put(logs, group, stream, [" ".join(f"w{i}" for i in range(100))] * 20)
    pattern = "[" + ", ".join(["..."] * 12) + ", x=1]"
    # An exponential matcher would not answer before boto3's read timeout.
    resp = logs.filter_log_events(logGroupName=group, filterPattern=pattern)
    assert resp["events"] == []


def test_non_ascii_next_token_is_invalid_not_a_crash(logs, group, stream):
    bad = "f/" + "a" * 19 + "\u00e9" + "a" * 19
    with logs_error("InvalidParameterException"):
        logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=bad)


def test_forward_token_of_an_empty_stream_finds_later_events(logs, group, stream):
    first = logs.get_log_events(logGroupName=group, logStreamName=stream)
    assert first["events"] == []
    put(logs, group, stream, ["arrived later"])
    later = logs.get_log_events(logGroupName=group, logStreamName=stream,
                                nextToken=first["nextForwardToken"])
    assert [e["message"] for e in later["events"]] == ["arrived later"]


def test_huge_end_time_is_accepted(logs, group, stream):
    put(logs, group, stream, ["x"])
    resp = logs.filter_log_events(logGroupName=group, endTime=2**63 - 1)
    assert [e["message"] for e in resp["events"]] == ["x"]
