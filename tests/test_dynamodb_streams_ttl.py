"""DynamoDB Streams (ListStreams, DescribeStream, shard iterators, GetRecords with
each StreamViewType) and Time to Live: expired items are deleted by the service
once Virga's clock passes their expiry, and the stream reports those deletions
as service REMOVE records. Ends with a micro-blog scenario combining a timeline
GSI, expiring posts, TTL and the stream."""
import datetime
import time

import pytest

from test_dynamodb_util import (  # noqa: F401  (fixtures)
    NOT_FOUND, VALIDATION, N, S, TableFactory, ddb, ddb_streams, drain_iterator, expect_ddb_error, gsi,
    latest_stream_arn, make_table, plain, query_all, read_stream, shards_of, table_arn, wait_until,
)

SERVICE_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
DAY = 86400


def seqs(records):
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records]


def write_insert_modify_remove(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("a"), "sk": N(1), "v": S("one")})
    ddb.update_item(TableName=table, Key={"pk": S("a"), "sk": N(1)}, UpdateExpression="SET v = :v, w = :w",
                    ExpressionAttributeValues={":v": S("two"), ":w": N(2)})
    ddb.delete_item(TableName=table, Key={"pk": S("a"), "sk": N(1)})


# ---------------------------------------------------------------------------
# Stream metadata
# ---------------------------------------------------------------------------
def test_list_and_describe_stream(ddb, ddb_streams, make_table):
    name = make_table(("pk", "S"), ("sk", "N"), stream="NEW_AND_OLD_IMAGES")
    other = make_table(stream="KEYS_ONLY")
    arn = latest_stream_arn(ddb, name)
    label = arn.rsplit("/", 1)[1]
    streams = ddb_streams.list_streams(TableName=name)["Streams"]
    assert streams == [{"StreamArn": arn, "TableName": name, "StreamLabel": label}]
    all_arns = set()
    start = None
    for _ in range(1000):
        kwargs = {"Limit": 100}
        if start:
            kwargs["ExclusiveStartStreamArn"] = start
        page = ddb_streams.list_streams(**kwargs)
        all_arns |= {s["StreamArn"] for s in page["Streams"]}
        start = page.get("LastEvaluatedStreamArn")
        if not start:
            break
    assert {arn, latest_stream_arn(ddb, other)} <= all_arns

    desc = ddb_streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert desc["StreamArn"] == arn
    assert desc["StreamLabel"] == label
    assert desc["StreamStatus"] == "ENABLED"
    assert desc["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert desc["TableName"] == name
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                 {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert isinstance(desc["CreationRequestDateTime"], datetime.datetime)
    assert len(desc["Shards"]) >= 1
    for shard in desc["Shards"]:
        assert shard["ShardId"].startswith("shardId-")
        assert int(shard["SequenceNumberRange"]["StartingSequenceNumber"]) >= 0


def test_describe_missing_stream(ddb_streams):
    arn = table_arn("gone-table-xyz") + "/stream/2020-01-01T00:00:00.000"
    with expect_ddb_error(NOT_FOUND):
        ddb_streams.describe_stream(StreamArn=arn)


# ---------------------------------------------------------------------------
# Records per view type
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("view_type,images", [
    ("KEYS_ONLY", {"INSERT": set(), "MODIFY": set(), "REMOVE": set()}),
    ("NEW_IMAGE", {"INSERT": {"NewImage"}, "MODIFY": {"NewImage"}, "REMOVE": set()}),
    ("OLD_IMAGE", {"INSERT": set(), "MODIFY": {"OldImage"}, "REMOVE": {"OldImage"}}),
    ("NEW_AND_OLD_IMAGES", {"INSERT": {"NewImage"}, "MODIFY": {"NewImage", "OldImage"}, "REMOVE": {"OldImage"}}),
])
def test_records_for_each_view_type(ddb, ddb_streams, make_table, view_type, images):
    name = make_table(("pk", "S"), ("sk", "N"), stream=view_type)
    before = datetime.datetime.now(datetime.timezone.utc)
    write_insert_modify_remove(ddb, name)
    records = read_stream(ddb_streams, latest_stream_arn(ddb, name))
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert seqs(records) == sorted(seqs(records)) and len(set(seqs(records))) == 3
    assert len({r["eventID"] for r in records}) == 3
    first = {"pk": S("a"), "sk": N(1), "v": S("one")}
    second = {"pk": S("a"), "sk": N(1), "v": S("two"), "w": N(2)}
    expected_new = {"INSERT": first, "MODIFY": second}
    expected_old = {"MODIFY": first, "REMOVE": second}
    for r in records:
        assert r["eventSource"] == "aws:dynamodb"
        assert r["eventVersion"] == "1.1"
        assert r["awsRegion"] == "us-east-1"
        assert "userIdentity" not in r
        d = r["dynamodb"]
        assert d["Keys"] == {"pk": S("a"), "sk": N(1)}
        assert d["StreamViewType"] == view_type
        assert d["SizeBytes"] > 0
        assert abs((d["ApproximateCreationDateTime"] - before).total_seconds()) < 120
        assert {k for k in ("NewImage", "OldImage") if k in d} == images[r["eventName"]]
        if "NewImage" in d:
            assert d["NewImage"] == expected_new[r["eventName"]]
        if "OldImage" in d:
            assert d["OldImage"] == expected_old[r["eventName"]]


def test_unchanged_and_failed_writes_produce_no_records(ddb, ddb_streams, make_table):
    name = make_table(stream="NEW_AND_OLD_IMAGES")
    ddb.put_item(TableName=name, Item={"pk": S("x"), "v": N(1)})
    ddb.put_item(TableName=name, Item={"pk": S("x"), "v": N(1)})  # identical: no record
    ddb.update_item(TableName=name, Key={"pk": S("x")}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": N(1)})  # no change: no record
    with expect_ddb_error("ConditionalCheckFailedException"):
        ddb.put_item(TableName=name, Item={"pk": S("x"), "v": N(9)}, ConditionExpression="attribute_not_exists(pk)")
    ddb.delete_item(TableName=name, Key={"pk": S("nothing")})  # nothing deleted: no record
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": {"pk": S("t"), "v": N(1)}}}])
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": S("b")}}}]})
    records = read_stream(ddb_streams, latest_stream_arn(ddb, name))
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records] == [
        ("INSERT", "x"), ("INSERT", "t"), ("INSERT", "b")]


# ---------------------------------------------------------------------------
# Shard iterators
# ---------------------------------------------------------------------------
def single_shard(ddb_streams, arn):
    shards = shards_of(ddb_streams, arn)
    assert len(shards) == 1, shards
    return shards[0]["ShardId"]


def test_shard_iterator_types(ddb, ddb_streams, make_table):
    name = make_table(stream="KEYS_ONLY")
    for i in range(4):
        ddb.put_item(TableName=name, Item={"pk": S(f"k{i}")})
    arn = latest_stream_arn(ddb, name)
    shard = single_shard(ddb_streams, arn)

    def iterator(kind, **kwargs):
        return ddb_streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind,
                                              **kwargs)["ShardIterator"]

    all_records = drain_iterator(ddb_streams, iterator("TRIM_HORIZON"))
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in all_records]
    assert keys == ["k0", "k1", "k2", "k3"]
    second = all_records[1]["dynamodb"]["SequenceNumber"]
    at = drain_iterator(ddb_streams, iterator("AT_SEQUENCE_NUMBER", SequenceNumber=second))
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in at] == ["k1", "k2", "k3"]
    after = drain_iterator(ddb_streams, iterator("AFTER_SEQUENCE_NUMBER", SequenceNumber=second))
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in after] == ["k2", "k3"]

    latest = iterator("LATEST")
    resp = ddb_streams.get_records(ShardIterator=latest)
    assert resp["Records"] == []
    ddb.put_item(TableName=name, Item={"pk": S("k4")})
    got = drain_iterator(ddb_streams, resp["NextShardIterator"])
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in got] == ["k4"]
    assert int(got[0]["dynamodb"]["SequenceNumber"]) > int(all_records[-1]["dynamodb"]["SequenceNumber"])


def test_get_records_limit_and_next_iterator(ddb, ddb_streams, make_table):
    name = make_table(stream="NEW_IMAGE")
    for i in range(5):
        ddb.put_item(TableName=name, Item={"pk": S(f"k{i}"), "n": N(i)})
    arn = latest_stream_arn(ddb, name)
    it = ddb_streams.get_shard_iterator(StreamArn=arn, ShardId=single_shard(ddb_streams, arn),
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    resp = ddb_streams.get_records(ShardIterator=it, Limit=2)
    assert [r["dynamodb"]["NewImage"]["n"]["N"] for r in resp["Records"]] == ["0", "1"]
    resp = ddb_streams.get_records(ShardIterator=resp["NextShardIterator"], Limit=2)
    assert [r["dynamodb"]["NewImage"]["n"]["N"] for r in resp["Records"]] == ["2", "3"]
    rest = drain_iterator(ddb_streams, resp["NextShardIterator"])
    assert [r["dynamodb"]["NewImage"]["n"]["N"] for r in rest] == ["4"]


def test_get_shard_iterator_validation(ddb, ddb_streams, make_table):
    name = make_table(stream="KEYS_ONLY")
    arn = latest_stream_arn(ddb, name)
    shard = single_shard(ddb_streams, arn)
    with expect_ddb_error(VALIDATION):
        ddb_streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER")
    with expect_ddb_error(NOT_FOUND):
        ddb_streams.get_shard_iterator(StreamArn=arn, ShardId="shardId-00000000000000000000-00000000",
                                       ShardIteratorType="TRIM_HORIZON")


# ---------------------------------------------------------------------------
# TTL (needs Virga's clock)
# ---------------------------------------------------------------------------
def ttl_clients(clock_server):
    ddb = clock_server.client("dynamodb", parameter_validation=False)
    streams = clock_server.client("dynamodbstreams")
    return ddb, streams


@pytest.mark.virga_only
def test_ttl_deletes_expired_items_with_service_stream_records(clock_server, time_machine):
    ddb, streams = ttl_clients(clock_server)
    make = TableFactory(ddb)
    name = make(("pk", "S"), stream="NEW_AND_OLD_IMAGES")
    untimed = make(("pk", "S"))  # same data, TTL never enabled
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    now = int(time.time())
    items = {
        "past": {"expires_at": N(now - 60)},
        "soon": {"expires_at": N(now + 3600)},
        "later": {"expires_at": N(now + 10 * DAY)},
        "no_attr": {},
        "string": {"expires_at": S(str(now - 60))},
        "nested": {"meta": {"M": {"expires_at": N(now - 60)}}},
        "ancient": {"expires_at": N(now - 6 * 365 * DAY)},  # more than five years ago: ignored
        "manual": {"expires_at": N(now + 10 * DAY)},
    }
    for key, extra in items.items():
        for t in (name, untimed):
            ddb.put_item(TableName=t, Item={"pk": S(key), **extra})
    assert ddb.get_item(TableName=name, Key={"pk": S("soon")}).get("Item")
    ddb.delete_item(TableName=name, Key={"pk": S("manual")})  # a user delete, for comparison

    def remaining(t):
        return sorted(it["pk"]["S"] for it in ddb.scan(TableName=t, ConsistentRead=True)["Items"])

    time_machine.advance(clock_server, 2 * 3600)
    survivors = ["ancient", "later", "nested", "no_attr", "string"]
    assert wait_until(lambda: remaining(name) == survivors, timeout=10), remaining(name)
    assert remaining(untimed) == sorted(items)

    records = read_stream(streams, latest_stream_arn(ddb, name))
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    by_key = {r["dynamodb"]["Keys"]["pk"]["S"]: r for r in removes}
    assert set(by_key) == {"past", "soon", "manual"}
    for key in ("past", "soon"):
        assert by_key[key]["userIdentity"] == SERVICE_IDENTITY
        assert by_key[key]["dynamodb"]["OldImage"] == {"pk": S(key), **items[key]}
        assert "NewImage" not in by_key[key]["dynamodb"]
    assert "userIdentity" not in by_key["manual"]
    assert seqs(records) == sorted(seqs(records))


@pytest.mark.virga_only
def test_ttl_respects_the_clock_and_later_updates(clock_server, time_machine):
    ddb, _ = ttl_clients(clock_server)
    name = TableFactory(ddb)(("pk", "S"))
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    now = int(time.time())
    ddb.put_item(TableName=name, Item={"pk": S("a"), "ttl": N(now + DAY)})
    ddb.put_item(TableName=name, Item={"pk": S("b"), "ttl": N(now + DAY)})
    ddb.put_item(TableName=name, Item={"pk": S("c"), "ttl": N(now + 3 * DAY)})
    # Extend b's lifetime before it expires; remove c's expiry altogether.
    ddb.update_item(TableName=name, Key={"pk": S("b")}, UpdateExpression="SET #t = :t",
                    ExpressionAttributeNames={"#t": "ttl"}, ExpressionAttributeValues={":t": N(now + 5 * DAY)})
    ddb.update_item(TableName=name, Key={"pk": S("c")}, UpdateExpression="REMOVE #t",
                    ExpressionAttributeNames={"#t": "ttl"})

    def keys():
        return sorted(it["pk"]["S"] for it in ddb.scan(TableName=name, ConsistentRead=True)["Items"])

    time_machine.advance(clock_server, 2 * DAY)
    assert wait_until(lambda: keys() == ["b", "c"], timeout=10), keys()
    time_machine.advance(clock_server, 4 * DAY)
    assert wait_until(lambda: keys() == ["c"], timeout=10), keys()


@pytest.mark.virga_only
def test_micro_blog_timeline_with_expiring_stories(clock_server, time_machine):
    ddb, streams = ttl_clients(clock_server)
    posts = TableFactory(ddb)(("post_id", "S"), gsis=[gsi("timeline", ("author", "S"), ("created_at", "N"))],
                              stream="NEW_AND_OLD_IMAGES")
    ddb.update_time_to_live(TableName=posts, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    now = int(time.time())
    plan = [
        # (post id, author, seconds before now, is a story that expires after an hour;
        # the clock then moves two hours, within the stream's 24-hour retention)
        ("p1", "alice", 500, False),
        ("p2", "bob", 400, False),
        ("p3", "alice", 300, True),
        ("p4", "alice", 200, False),
        ("p5", "bob", 100, True),
        ("p6", "alice", 50, True),
    ]
    for post_id, author, ago, story in plan:
        item = {"post_id": S(post_id), "author": S(author), "created_at": N(now - ago),
                "body": S(f"{author} says {post_id}")}
        if story:
            item["expires_at"] = N(now - ago + 3600)
        ddb.put_item(TableName=posts, Item=item)
    ddb.update_item(TableName=posts, Key={"post_id": S("p4")}, UpdateExpression="ADD likes :one",
                    ExpressionAttributeValues={":one": N(1)})

    def timeline(author):
        items, _ = query_all(ddb, TableName=posts, IndexName="timeline", KeyConditionExpression="author = :a",
                             ExpressionAttributeValues={":a": S(author)}, ScanIndexForward=False)
        return [it["post_id"]["S"] for it in items]

    assert timeline("alice") == ["p6", "p4", "p3", "p1"]
    assert timeline("bob") == ["p5", "p2"]

    time_machine.advance(clock_server, 2 * 3600)
    assert wait_until(lambda: timeline("alice") == ["p4", "p1"] and timeline("bob") == ["p2"], timeout=10), (
        timeline("alice"), timeline("bob"))
    assert ddb.get_item(TableName=posts, Key={"post_id": S("p4")}, ConsistentRead=True)["Item"]["likes"] == N(1)

    records = read_stream(streams, latest_stream_arn(ddb, posts))
    assert [r["eventName"] for r in records[:7]] == ["INSERT"] * 6 + ["MODIFY"]
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    assert sorted(r["dynamodb"]["Keys"]["post_id"]["S"] for r in removes) == ["p3", "p5", "p6"]
    for r in removes:
        assert r["userIdentity"] == SERVICE_IDENTITY
        assert plain(r["dynamodb"]["OldImage"])["author"] in ("alice", "bob")
        assert "expires_at" in r["dynamodb"]["OldImage"]
