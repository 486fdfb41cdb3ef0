"""DynamoDB control plane: CreateTable (keys, indexes, billing, streams, SSE, table
class, deletion protection), DescribeTable, ListTables pagination, UpdateTable (GSI
create/backfill/delete, streams, billing), DeleteTable, tags, TTL settings,
DescribeLimits/DescribeEndpoints, CreateTable validation and the boto3 waiters."""
import datetime
import random
import re
import string
import uuid

import pytest

from test_dynamodb_util import (  # noqa: F401  (fixtures)
    ACCOUNT, NOT_FOUND, VALIDATION, N, S, create_table_request, ddb, ddb_streams, expect_ddb_error,
    gsi, key_schema, lsi, make_table, put_all, query_all, table, table_arn, table_hr, table_name,
    wait_active, wait_until,
)

STREAM_LABEL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def describe(ddb, name):
    return ddb.describe_table(TableName=name)["Table"]


def table_gone(ddb, name):
    try:
        ddb.describe_table(TableName=name)
        return False
    except ddb.exceptions.ResourceNotFoundException:
        return True


# ---------------------------------------------------------------------------
# CreateTable / DescribeTable
# ---------------------------------------------------------------------------
def test_create_table_returns_description(ddb, make_table):
    name = table_name()
    before = datetime.datetime.now(datetime.timezone.utc)
    desc = ddb.create_table(**create_table_request(name, ("pk", "S"), ("sk", "N")))["TableDescription"]
    assert desc["TableName"] == name
    assert desc["TableStatus"] in ("CREATING", "ACTIVE")
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                 {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert sorted(desc["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]
    assert desc["TableArn"] == f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}"
    assert UUID.match(desc["TableId"]), desc.get("TableId")
    assert abs((desc["CreationDateTime"] - before).total_seconds()) < 60
    assert desc["ItemCount"] == 0 and desc["TableSizeBytes"] == 0
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 0


def test_describe_table_active_with_arn_and_counts(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "S"))
    t = describe(ddb, name)
    assert t["TableStatus"] == "ACTIVE"
    assert t["TableName"] == name
    assert t["TableArn"] == table_arn(name)
    assert t["ItemCount"] == 0
    assert t["TableSizeBytes"] == 0
    assert t.get("DeletionProtectionEnabled") is False
    assert "StreamSpecification" not in t and "LatestStreamArn" not in t
    assert not t.get("GlobalSecondaryIndexes") and not t.get("LocalSecondaryIndexes")
    # ItemCount/TableSizeBytes are refreshed lazily on AWS (about every six hours):
    # after writes they are either still 0 or exact.
    ddb.put_item(TableName=name, Item={"pk": S("a"), "sk": S("1"), "v": S("x" * 100)})
    ddb.put_item(TableName=name, Item={"pk": S("a"), "sk": S("2")})
    t = describe(ddb, name)
    assert t["ItemCount"] in (0, 2)
    assert t["TableSizeBytes"] == 0 or 100 < t["TableSizeBytes"] < 200


def test_describe_table_by_arn(ddb, table):
    # TableName also accepts the table ARN.
    t = ddb.describe_table(TableName=table_arn(table))["Table"]
    assert t["TableName"] == table


@pytest.mark.parametrize("hash_type,range_type", [("S", None), ("N", "B"), ("B", "S"), ("N", "N")])
def test_key_types_round_trip(ddb, make_table, hash_type, range_type):
    rk = ("rk", range_type) if range_type else None
    name = make_table(("hk", hash_type), rk)
    t = describe(ddb, name)
    assert t["KeySchema"] == key_schema(("hk", hash_type), rk)
    defs = {d["AttributeName"]: d["AttributeType"] for d in t["AttributeDefinitions"]}
    assert defs == ({"hk": hash_type, "rk": range_type} if range_type else {"hk": hash_type})


def test_provisioned_billing(ddb, make_table):
    name = make_table(billing="PROVISIONED", throughput=(7, 3))
    t = describe(ddb, name)
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert t["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    assert t["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 0
    assert t.get("BillingModeSummary", {"BillingMode": "PROVISIONED"})["BillingMode"] == "PROVISIONED"


def test_provisioned_is_the_default_and_needs_throughput(ddb):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: ReadCapacityUnits and "
                                      "WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"):
        ddb.create_table(TableName=table_name(), KeySchema=key_schema(("pk", "S")),
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def test_pay_per_request_rejects_throughput(ddb):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Neither ReadCapacityUnits "
                                      "nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"):
        ddb.create_table(**create_table_request(
            table_name(), ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}))


def test_create_with_lsi(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "S"), lsis=[
        lsi("by_date", ("date", "S")),
        lsi("by_score", ("score", "N"), projection="INCLUDE", include=["title"]),
    ])
    t = describe(ddb, name)
    lsis = {i["IndexName"]: i for i in t["LocalSecondaryIndexes"]}
    assert set(lsis) == {"by_date", "by_score"}
    assert lsis["by_date"]["KeySchema"] == key_schema(("pk", "S"), ("date", "S"))
    assert lsis["by_date"]["Projection"] == {"ProjectionType": "ALL"}
    assert lsis["by_score"]["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]}
    assert lsis["by_score"]["IndexArn"] == f"{table_arn(name)}/index/by_score"
    assert lsis["by_date"]["ItemCount"] == 0 and lsis["by_date"]["IndexSizeBytes"] == 0
    defs = {d["AttributeName"]: d["AttributeType"] for d in t["AttributeDefinitions"]}
    assert defs == {"pk": "S", "sk": "S", "date": "S", "score": "N"}


def test_create_with_gsis_and_projections(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[
        gsi("keys", ("a", "S"), projection="KEYS_ONLY"),
        gsi("incl", ("b", "N"), ("c", "S"), projection="INCLUDE", include=["x", "y"]),
        gsi("all", ("a", "S"), ("b", "N"), projection="ALL"),
    ])
    t = describe(ddb, name)
    gsis = {g["IndexName"]: g for g in t["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"keys", "incl", "all"}
    for g in gsis.values():
        assert g["IndexStatus"] == "ACTIVE"
        assert g["IndexArn"] == f"{table_arn(name)}/index/{g['IndexName']}"
        assert g["ItemCount"] == 0 and g["IndexSizeBytes"] == 0
    assert gsis["keys"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert gsis["keys"]["KeySchema"] == key_schema(("a", "S"))
    assert gsis["incl"]["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(gsis["incl"]["Projection"]["NonKeyAttributes"]) == ["x", "y"]
    assert gsis["incl"]["KeySchema"] == key_schema(("b", "N"), ("c", "S"))
    assert gsis["all"]["Projection"] == {"ProjectionType": "ALL"}
    defs = {d["AttributeName"]: d["AttributeType"] for d in t["AttributeDefinitions"]}
    assert defs == {"pk": "S", "a": "S", "b": "N", "c": "S"}


def test_create_with_stream(ddb, make_table):
    name = make_table(stream="NEW_AND_OLD_IMAGES")
    t = describe(ddb, name)
    assert t["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    label = t["LatestStreamLabel"]
    assert STREAM_LABEL.match(label), label
    assert t["LatestStreamArn"] == f"{table_arn(name)}/stream/{label}"


def test_create_with_sse(ddb, make_table):
    name = make_table(SSESpecification={"Enabled": True, "SSEType": "KMS"})
    sse = describe(ddb, name)["SSEDescription"]
    assert sse["Status"] == "ENABLED"
    assert sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyArn"].startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/")
    # Without SSESpecification the table uses an AWS owned key: no SSEDescription.
    plain_name = make_table()
    assert "SSEDescription" not in describe(ddb, plain_name)


def test_create_with_table_class(ddb, make_table):
    name = make_table(TableClass="STANDARD_INFREQUENT_ACCESS")
    assert describe(ddb, name)["TableClassSummary"]["TableClass"] == "STANDARD_INFREQUENT_ACCESS"


def test_deletion_protection(ddb, make_table):
    name = make_table(DeletionProtectionEnabled=True)
    assert describe(ddb, name)["DeletionProtectionEnabled"] is True
    with expect_ddb_error(VALIDATION, "Resource cannot be deleted as it is currently protected against deletion. "
                                      "Disable deletion protection first."):
        ddb.delete_table(TableName=name)
    assert describe(ddb, name)["TableStatus"] == "ACTIVE"
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    assert wait_active(ddb, name)["DeletionProtectionEnabled"] is False
    ddb.delete_table(TableName=name)
    assert wait_until(lambda: table_gone(ddb, name))


# ---------------------------------------------------------------------------
# Duplicates, missing tables, DeleteTable
# ---------------------------------------------------------------------------
def test_duplicate_table_is_resource_in_use(ddb, table):
    with expect_ddb_error("ResourceInUseException", f"Table already exists: {table}"):
        ddb.create_table(**create_table_request(table))


def test_describe_missing_table(ddb):
    name = table_name("missing")
    with expect_ddb_error(NOT_FOUND, f"Requested resource not found: Table: {name} not found"):
        ddb.describe_table(TableName=name)


def test_delete_missing_table(ddb):
    name = table_name("missing")
    with expect_ddb_error(NOT_FOUND, contains=["Requested resource not found"]):
        ddb.delete_table(TableName=name)


@pytest.mark.parametrize("operation,kwargs", [
    ("get_item", {"Key": {"pk": S("a")}}),
    ("put_item", {"Item": {"pk": S("a")}}),
    ("update_item", {"Key": {"pk": S("a")}, "UpdateExpression": "SET v = :v",
                     "ExpressionAttributeValues": {":v": S("x")}}),
    ("delete_item", {"Key": {"pk": S("a")}}),
    ("query", {"KeyConditionExpression": "pk = :v", "ExpressionAttributeValues": {":v": S("a")}}),
    ("scan", {}),
])
def test_data_plane_on_missing_table(ddb, operation, kwargs):
    with expect_ddb_error(NOT_FOUND, "Requested resource not found"):
        getattr(ddb, operation)(TableName=table_name("missing"), **kwargs)


def test_delete_table(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "N"))
    ddb.put_item(TableName=name, Item={"pk": S("a"), "sk": N(1)})
    desc = ddb.delete_table(TableName=name)["TableDescription"]
    assert desc["TableName"] == name
    assert desc["TableStatus"] in ("DELETING", "ACTIVE")
    assert desc["TableArn"] == table_arn(name)

    assert wait_until(lambda: table_gone(ddb, name))
    assert name not in ddb.list_tables(ExclusiveStartTableName=name[:-1], Limit=100)["TableNames"]
    # The name can be reused at once, for a fresh, empty table.
    make_table(("pk", "S"), ("sk", "N"), name=name)
    assert ddb.scan(TableName=name)["Count"] == 0


# ---------------------------------------------------------------------------
# ListTables
# ---------------------------------------------------------------------------
def test_list_tables_pagination(ddb, make_table):
    prefix = f"lt-{uuid.uuid4().hex[:16]}"
    names = [make_table(name=f"{prefix}-{c}", wait=False) for c in "abcd"]
    for n in names:
        wait_active(ddb, n)
    page = ddb.list_tables(ExclusiveStartTableName=names[0], Limit=2)
    assert page["TableNames"] == names[1:3]
    assert page["LastEvaluatedTableName"] == names[2]
    page = ddb.list_tables(ExclusiveStartTableName=page["LastEvaluatedTableName"], Limit=1)
    assert page["TableNames"] == [names[3]]
    assert page["LastEvaluatedTableName"] == names[3]
    # The start name need not exist: listing starts after it.
    assert ddb.list_tables(ExclusiveStartTableName=prefix, Limit=1)["TableNames"] == [names[0]]


def test_list_tables_full_walk_is_sorted_and_complete(ddb, make_table):
    prefix = f"lw-{uuid.uuid4().hex[:16]}"
    mine = {make_table(name=f"{prefix}-{c}") for c in "cabed"}  # created out of order
    seen, start = [], None
    for _ in range(1000):
        kwargs = {"Limit": 2}
        if start:
            kwargs["ExclusiveStartTableName"] = start
        page = ddb.list_tables(**kwargs)
        assert len(page["TableNames"]) <= 2
        seen += page["TableNames"]
        start = page.get("LastEvaluatedTableName")
        if not start:
            break
        assert start == page["TableNames"][-1]
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert mine <= set(seen)
    # The boto3 paginator agrees.
    paged = [n for p in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 3})
             for n in p["TableNames"]]
    assert mine <= set(paged)


@pytest.mark.parametrize("limit", [0, 101])
def test_list_tables_limit_bounds(ddb, limit):
    with expect_ddb_error(VALIDATION):
        ddb.list_tables(Limit=limit)


# ---------------------------------------------------------------------------
# UpdateTable
# ---------------------------------------------------------------------------
def test_update_table_adds_gsi_with_backfill(ddb, make_table):
    name = make_table(("pk", "S"))
    put_all(ddb, name, [{"pk": S(f"p{i}"), "color": S("red" if i % 3 else "blue"), "n": N(i)} for i in range(12)]
            + [{"pk": S("nocolor")}])
    resp = ddb.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"},
                              {"AttributeName": "n", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by_color", "KeySchema": key_schema(("color", "S"), ("n", "N")),
            "Projection": {"ProjectionType": "ALL"}}}])
    created = {g["IndexName"]: g for g in resp["TableDescription"]["GlobalSecondaryIndexes"]}
    assert created["by_color"]["IndexStatus"] in ("CREATING", "ACTIVE")
    wait_active(ddb, name)
    items, _ = query_all(ddb, TableName=name, IndexName="by_color", KeyConditionExpression="color = :c",
                         ExpressionAttributeValues={":c": S("blue")})
    assert [it["n"]["N"] for it in items] == ["0", "3", "6", "9"]
    # New writes are indexed too.
    ddb.put_item(TableName=name, Item={"pk": S("late"), "color": S("blue"), "n": N(100)})
    items, _ = query_all(ddb, TableName=name, IndexName="by_color", KeyConditionExpression="color = :c",
                         ExpressionAttributeValues={":c": S("blue")})
    assert [it["pk"]["S"] for it in items][-1] == "late"
    assert len(items) == 5


def test_update_table_deletes_gsi(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("gsi1", ("a", "S")), gsi("gsi2", ("b", "S"))])
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "gsi1"}}])

    def only_g2():
        t = describe(ddb, name)
        return [g["IndexName"] for g in t.get("GlobalSecondaryIndexes", [])] == ["gsi2"]

    assert wait_until(only_g2)
    with expect_ddb_error(VALIDATION, "The table does not have the specified index: gsi1"):
        ddb.query(TableName=name, IndexName="gsi1", KeyConditionExpression="a = :a",
                  ExpressionAttributeValues={":a": S("x")})


def test_update_table_enable_and_disable_stream(ddb, ddb_streams, make_table):
    name = make_table()
    assert "LatestStreamArn" not in describe(ddb, name)
    desc = ddb.update_table(TableName=name, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})["TableDescription"]
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    arn = desc["LatestStreamArn"]
    assert arn.startswith(table_arn(name) + "/stream/")
    wait_active(ddb, name)
    with expect_ddb_error(VALIDATION, f"Table already has an enabled stream: TableName: {name}"):
        ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})

    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    t = wait_active(ddb, name)
    assert t.get("StreamSpecification", {"StreamEnabled": False})["StreamEnabled"] is False
    assert t["LatestStreamArn"] == arn  # the old stream stays readable for 24 hours
    status = ddb_streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"]
    assert status in ("DISABLING", "DISABLED")


def test_update_table_billing_mode(ddb, make_table):
    name = make_table(billing="PROVISIONED", throughput=(2, 2))
    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    t = wait_active(ddb, name)
    assert t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ddb.update_table(TableName=name, BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 4, "WriteCapacityUnits": 6})
    t = wait_active(ddb, name)
    assert t["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert (t["ProvisionedThroughput"]["ReadCapacityUnits"], t["ProvisionedThroughput"]["WriteCapacityUnits"]) == (4, 6)


def test_update_missing_table(ddb):
    with expect_ddb_error(NOT_FOUND):
        ddb.update_table(TableName=table_name("missing"), BillingMode="PAY_PER_REQUEST")


# ---------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------
def tags_of(ddb, arn):
    out, token = {}, None
    while True:
        kwargs = {"ResourceArn": arn}
        if token:
            kwargs["NextToken"] = token
        resp = ddb.list_tags_of_resource(**kwargs)
        out.update({t["Key"]: t["Value"] for t in resp.get("Tags", [])})
        token = resp.get("NextToken")
        if not token:
            return out


def test_tags_lifecycle(ddb, make_table):
    name = make_table(Tags=[{"Key": "team", "Value": "core"}])
    arn = table_arn(name)
    assert tags_of(ddb, arn) == {"team": "core"}
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "infra"}])
    assert tags_of(ddb, arn) == {"team": "infra", "env": "test"}
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert tags_of(ddb, arn) == {"env": "test"}
    ddb.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", []) == []


def test_tag_missing_table(ddb):
    with expect_ddb_error(NOT_FOUND):
        ddb.tag_resource(ResourceArn=table_arn(table_name("missing")), Tags=[{"Key": "a", "Value": "b"}])


# ---------------------------------------------------------------------------
# TTL settings
# ---------------------------------------------------------------------------
def test_time_to_live_settings(ddb, table):
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    resp = ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})
    assert resp["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "expires_at"}
    d = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert d["TimeToLiveStatus"] in ("ENABLING", "ENABLED")
    assert d["AttributeName"] == "expires_at"
    with expect_ddb_error(VALIDATION, "TimeToLive is already enabled"):
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})
    with expect_ddb_error(VALIDATION, "TimeToLive is active on a different AttributeName: current AttributeName "
                                      "is expires_at"):
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "other"})
    # (Disabling right away would fail on AWS too: TTL settings may change only once
    # per hour or so, "Time to live has been modified multiple times within a fixed interval".)


def test_time_to_live_on_missing_table(ddb):
    with expect_ddb_error(NOT_FOUND):
        ddb.describe_time_to_live(TableName=table_name("missing"))


# ---------------------------------------------------------------------------
# Account-level
# ---------------------------------------------------------------------------
def test_describe_limits(ddb):
    limits = ddb.describe_limits()
    # AWS's default quotas.
    assert limits["AccountMaxReadCapacityUnits"] == 80000
    assert limits["AccountMaxWriteCapacityUnits"] == 80000
    assert limits["TableMaxReadCapacityUnits"] == 40000
    assert limits["TableMaxWriteCapacityUnits"] == 40000


def test_describe_endpoints(ddb):
    endpoints = ddb.describe_endpoints()["Endpoints"]
    assert len(endpoints) == 1
    assert endpoints[0]["Address"]
    assert endpoints[0]["CachePeriodInMinutes"] == 1440


# ---------------------------------------------------------------------------
# CreateTable validation
# ---------------------------------------------------------------------------
def test_attribute_defined_but_not_used(ddb):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Number of attributes in KeySchema "
                                      "does not exactly match number of attributes defined in AttributeDefinitions"):
        ddb.create_table(TableName=table_name(), KeySchema=key_schema(("pk", "S")), BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "extra", "AttributeType": "S"}])


def test_key_attribute_not_defined(ddb):
    with expect_ddb_error(VALIDATION, "Invalid KeySchema: Some index key attribute have no definition"):
        ddb.create_table(TableName=table_name(), KeySchema=key_schema(("pk", "S"), ("sk", "S")),
                         BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def test_index_key_attribute_not_defined(ddb):
    req = create_table_request(table_name(), gsis=[gsi("gsi", ("gk", "S"))])
    req["AttributeDefinitions"] = [{"AttributeName": "pk", "AttributeType": "S"}]
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Some index key attributes are not "
                                      "defined in AttributeDefinitions. Keys: [gk], AttributeDefinitions: [pk]"):
        ddb.create_table(**req)


def test_too_many_gsis(ddb):
    gsis = [gsi(f"gsi{i}", (f"a{i}", "S")) for i in range(21)]
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: GlobalSecondaryIndex count "
                                      "exceeds the per-table limit of 20"):
        ddb.create_table(**create_table_request(table_name(), gsis=gsis))


def test_twenty_gsis_is_fine(ddb, make_table):
    name = make_table(gsis=[gsi(f"gsi{i}", ("a", "S")) for i in range(20)])
    assert len(describe(ddb, name)["GlobalSecondaryIndexes"]) == 20


def test_lsi_without_range_key(ddb):
    req = create_table_request(table_name(), ("pk", "S"))
    req["AttributeDefinitions"].append({"AttributeName": "x", "AttributeType": "S"})
    req["LocalSecondaryIndexes"] = [{"IndexName": "lsi1", "KeySchema": key_schema(("pk", "S"), ("x", "S")),
                                     "Projection": {"ProjectionType": "ALL"}}]
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Table KeySchema does not have a "
                                      "range key, which is required when specifying a LocalSecondaryIndex"):
        ddb.create_table(**req)


def test_duplicate_index_name(ddb):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Duplicate index name: same"):
        ddb.create_table(**create_table_request(table_name(), gsis=[gsi("same", ("a", "S")), gsi("same", ("b", "S"))]))


def test_include_projection_needs_non_key_attributes(ddb):
    req = create_table_request(table_name(), gsis=[gsi("gsi", ("a", "S"))])
    req["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "INCLUDE"}
    with expect_ddb_error(VALIDATION):
        ddb.create_table(**req)


def test_duplicate_key_attribute(ddb):
    with expect_ddb_error(VALIDATION, "Invalid KeySchema: Some index key attribute have no definition"):
        ddb.create_table(TableName=table_name(), BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "pk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


@pytest.mark.parametrize("name,message", [
    ("ab", "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
           "Member must have length greater than or equal to 3"),
    ("a" * 256, f"1 validation error detected: Value '{'a' * 256}' at 'tableName' failed to satisfy constraint: "
                "Member must have length less than or equal to 255"),
    ("bad table!@#", "1 validation error detected: Value 'bad table!@#' at 'tableName' failed to satisfy "
                     "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
])
def test_invalid_table_names(ddb, name, message):
    with expect_ddb_error(VALIDATION, message):
        ddb.create_table(**create_table_request(name))


@pytest.mark.parametrize("kind", ["three_chars", "all_allowed_chars", "255_chars"])
def test_valid_edge_table_names(ddb, make_table, kind):
    tag = uuid.uuid4().hex
    name = {"three_chars": "".join(random.choice(string.ascii_letters + string.digits) for _ in range(3)),
            "all_allowed_chars": f"Az09_.-{tag[:12]}",
            "255_chars": tag + "x" * (255 - len(tag))}[kind]
    made = make_table(name=name)
    assert describe(ddb, made)["TableName"] == name
    ddb.put_item(TableName=name, Item={"pk": S("k")})
    assert ddb.get_item(TableName=name, Key={"pk": S("k")})["Item"] == {"pk": S("k")}


def test_invalid_key_type_enum(ddb):
    with expect_ddb_error(VALIDATION, contains=["Member must satisfy enum value set: [HASH, RANGE]"]):
        ddb.create_table(TableName=table_name(), BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "PRIMARY"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


# ---------------------------------------------------------------------------
# Waiters
# ---------------------------------------------------------------------------
def test_waiters(ddb, make_table):
    name = table_name()
    ddb.create_table(**create_table_request(name))
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})
    assert describe(ddb, name)["TableStatus"] == "ACTIVE"
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})
    with expect_ddb_error(NOT_FOUND):
        ddb.describe_table(TableName=name)
