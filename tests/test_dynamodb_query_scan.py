"""DynamoDB Query and Scan: key condition operators, sort order per key type,
ScanIndexForward, Limit and LastEvaluatedKey pagination, the 1 MB page limit,
FilterExpression (Count vs ScannedCount), Select, local and global secondary
indexes (projections, sparse and non-unique keys), parallel Scan segments, the
legacy KeyConditions/QueryFilter/ScanFilter parameters, and a seeded property
test against a naive model."""
import decimal
import random

import pytest

from test_dynamodb_util import (  # noqa: F401  (fixtures)
    PAGE_BYTES, VALIDATION, B, N, S, ddb, expect_ddb_error, from_av, gsi, item_size, lsi,
    make_table, put_all, query_all, scan_all, table, table_hr,
)

D = decimal.Decimal


def q(ddb, table, cond, values, names=None, **kwargs):
    params = {"TableName": table, "KeyConditionExpression": cond, "ExpressionAttributeValues": values}
    if names:
        params["ExpressionAttributeNames"] = names
    params.update(kwargs)
    return ddb.query(**params)


@pytest.fixture
def ten_items(ddb, table_hr):
    """pk "p" with sk "s00".."s09" (n = index), plus noise under other partitions."""
    items = [{"pk": S("p"), "sk": S(f"s{i:02d}"), "n": N(i), "even": {"BOOL": i % 2 == 0}} for i in range(10)]
    items += [{"pk": S("other"), "sk": S(f"s{i:02d}"), "n": N(i)} for i in range(3)]
    items += [{"pk": S("p0"), "sk": S("s00")}]
    put_all(ddb, table_hr, items)
    return table_hr


# ---------------------------------------------------------------------------
# Key conditions
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cond,values,expected", [
    ("pk = :p", {}, list(range(10))),
    ("pk = :p AND sk = :a", {":a": S("s03")}, [3]),
    ("pk = :p AND sk < :a", {":a": S("s03")}, [0, 1, 2]),
    ("pk = :p AND sk <= :a", {":a": S("s03")}, [0, 1, 2, 3]),
    ("pk = :p AND sk > :a", {":a": S("s07")}, [8, 9]),
    ("pk = :p AND sk >= :a", {":a": S("s07")}, [7, 8, 9]),
    ("pk = :p AND sk BETWEEN :a AND :b", {":a": S("s02"), ":b": S("s05")}, [2, 3, 4, 5]),
    ("pk = :p AND begins_with(sk, :a)", {":a": S("s0")}, list(range(10))),
    ("pk = :p AND begins_with(sk, :a)", {":a": S("s05")}, [5]),
    ("pk = :p AND sk > :a", {":a": S("s")}, list(range(10))),
    ("pk = :p AND sk < :a", {":a": S("s")}, []),
    ("sk >= :a AND pk = :p", {":a": S("s08")}, [8, 9]),  # either order
    ("(pk = :p) AND (sk = :a)", {":a": S("s01")}, [1]),
])
def test_key_condition_operators_string_sort_key(ddb, ten_items, cond, values, expected):
    resp = q(ddb, ten_items, cond, {":p": S("p"), **values})
    assert [int(it["n"]["N"]) for it in resp["Items"]] == expected
    assert resp["Count"] == len(expected) == resp["ScannedCount"]


@pytest.mark.parametrize("cond,values,expected", [
    ("pk = :p AND sk = :a", {":a": N("2.50")}, [D("2.5")]),
    ("pk = :p AND sk < :a", {":a": N(0)}, [D(-100), D("-2.5"), D("-0.001")]),
    ("pk = :p AND sk <= :a", {":a": N(0)}, [D(-100), D("-2.5"), D("-0.001"), D(0)]),
    ("pk = :p AND sk > :a", {":a": N(2.5)}, [D(10), D("1E+3")]),
    ("pk = :p AND sk >= :a", {":a": N(2.5)}, [D("2.5"), D(10), D("1E+3")]),
    ("pk = :p AND sk BETWEEN :a AND :b", {":a": N(-3), ":b": N(3)}, [D("-2.5"), D("-0.001"), D(0), D("2.5")]),
])
def test_key_condition_operators_number_sort_key(ddb, make_table, cond, values, expected):
    name = make_table(("pk", "S"), ("sk", "N"))
    put_all(ddb, name, [{"pk": S("p"), "sk": N(v)} for v in ["10", "-2.5", "0", "1000", "-100", "2.5", "-0.001"]])
    resp = q(ddb, name, cond, {":p": S("p"), **values})
    assert [D(it["sk"]["N"]) for it in resp["Items"]] == expected


def test_begins_with_on_number_key_is_rejected(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "N"))
    with expect_ddb_error(VALIDATION, "Invalid KeyConditionExpression: Incorrect operand type for operator or "
                                      "function; operator or function: begins_with, operand type: N"):
        q(ddb, name, "pk = :p AND begins_with(sk, :a)", {":p": S("p"), ":a": N(1)})


def test_begins_with_on_binary_key(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "B"))
    put_all(ddb, name, [{"pk": S("p"), "sk": B(v)} for v in [b"\x01\x02", b"\x01\x03", b"\x02", b"\x01"]])
    resp = q(ddb, name, "pk = :p AND begins_with(sk, :a)", {":p": S("p"), ":a": B(b"\x01")})
    assert [bytes(it["sk"]["B"]) for it in resp["Items"]] == [b"\x01", b"\x01\x02", b"\x01\x03"]


@pytest.mark.parametrize("cond,values,message", [
    ("sk = :a", {":a": S("x")}, "Query condition missed key schema element: pk"),
    ("pk > :p", {":p": S("p")}, "Query key condition not supported"),
    ("pk = :p OR sk = :a", {":p": S("p"), ":a": S("x")},
     "Invalid operator used in KeyConditionExpression: OR"),
    ("pk = :p AND sk <> :a", {":p": S("p"), ":a": S("x")}, "Invalid operator used in KeyConditionExpression: <>"),
])
def test_invalid_key_conditions(ddb, table_hr, cond, values, message):
    with expect_ddb_error(VALIDATION, message):
        q(ddb, table_hr, cond, values)


def test_key_condition_on_non_key_attribute(ddb, table_hr):
    with expect_ddb_error(VALIDATION, contains=["Query condition missed key schema element"]):
        q(ddb, table_hr, "pk = :p AND n = :a", {":p": S("p"), ":a": N(1)})


def test_key_condition_type_mismatch(ddb, table_hr):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Condition parameter type does not "
                                      "match schema type"):
        q(ddb, table_hr, "pk = :p", {":p": N(1)})


def test_query_with_attribute_names(ddb, make_table):
    name = make_table(("status", "S"), ("date", "S"))
    put_all(ddb, name, [{"status": S("open"), "date": S(d)} for d in ["2024-01", "2024-02", "2025-01"]])
    resp = q(ddb, name, "#s = :s AND begins_with(#d, :y)", {":s": S("open"), ":y": S("2024")},
             names={"#s": "status", "#d": "date"})
    assert [it["date"]["S"] for it in resp["Items"]] == ["2024-01", "2024-02"]


# ---------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------
def test_scan_index_forward(ddb, ten_items):
    resp = q(ddb, ten_items, "pk = :p", {":p": S("p")}, ScanIndexForward=False)
    assert [int(it["n"]["N"]) for it in resp["Items"]] == list(range(9, -1, -1))
    resp = q(ddb, ten_items, "pk = :p AND sk < :a", {":p": S("p"), ":a": S("s05")}, ScanIndexForward=False, Limit=2)
    assert [int(it["n"]["N"]) for it in resp["Items"]] == [4, 3]
    assert resp["LastEvaluatedKey"] == {"pk": S("p"), "sk": S("s03")}
    resp = q(ddb, ten_items, "pk = :p AND sk < :a", {":p": S("p"), ":a": S("s05")}, ScanIndexForward=False,
             ExclusiveStartKey=resp["LastEvaluatedKey"])
    assert [int(it["n"]["N"]) for it in resp["Items"]] == [2, 1, 0]


def test_number_sort_order(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "N"))
    values = ["-1E+10", "-100", "-9.99", "-1", "-0.5", "0", "0.001", "0.01", "1", "1.5", "2", "9", "10", "99.9",
              "100", "1E+20", "12345678901234567890123456789012345678"]
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    put_all(ddb, name, [{"pk": S("p"), "sk": N(v)} for v in shuffled])
    items, _ = query_all(ddb, TableName=name, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": S("p")})
    assert [D(it["sk"]["N"]) for it in items] == [D(v) for v in values]


def test_binary_sort_order_is_unsigned_bytewise(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "B"))
    values = [b"\x00", b"\x00\x00", b"\x01", b"\x7f", b"\x7f\xff", b"\x80", b"\xfe", b"\xff", b"\xff\x00"]
    shuffled = values[:]
    random.Random(3).shuffle(shuffled)
    put_all(ddb, name, [{"pk": S("p"), "sk": B(v)} for v in shuffled])
    items, _ = query_all(ddb, TableName=name, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": S("p")})
    assert [bytes(it["sk"]["B"]) for it in items] == values


def test_string_sort_order_is_utf8_bytewise(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "S"))
    # UTF-8 byte order: U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80), though
    # UTF-16 code units would order them the other way round.
    values = ["A", "Z", "_", "a", "aa", "b", "z", "~", "\u00e9", "\u4e2d", "\uff5e", "\U0001f600"]
    shuffled = values[:]
    random.Random(5).shuffle(shuffled)
    put_all(ddb, name, [{"pk": S("p"), "sk": S(v)} for v in shuffled])
    items, _ = query_all(ddb, TableName=name, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": S("p")})
    assert [it["sk"]["S"] for it in items] == sorted(values, key=lambda v: v.encode())
    assert [it["sk"]["S"] for it in items][-2:] == ["\uff5e", "\U0001f600"]


# ---------------------------------------------------------------------------
# Pagination
# ---------------------------------------------------------------------------
def test_query_limit_pagination(ddb, ten_items):
    pages = []
    start = None
    for _ in range(10):
        kwargs = {"Limit": 3}
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = q(ddb, ten_items, "pk = :p", {":p": S("p")}, **kwargs)
        pages.append([int(it["n"]["N"]) for it in resp["Items"]])
        start = resp.get("LastEvaluatedKey")
        if start:
            assert start == {"pk": S("p"), "sk": resp["Items"][-1]["sk"]}
        else:
            break
    assert pages == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_query_limit_equal_to_remaining_returns_last_evaluated_key(ddb, ten_items):
    # A page that stops at the limit has a LastEvaluatedKey even when nothing is
    # left; the next page is then empty.
    resp = q(ddb, ten_items, "pk = :p AND sk >= :a", {":p": S("p"), ":a": S("s07")}, Limit=3)
    assert resp["Count"] == 3
    assert resp["LastEvaluatedKey"] == {"pk": S("p"), "sk": S("s09")}
    resp = q(ddb, ten_items, "pk = :p AND sk >= :a", {":p": S("p"), ":a": S("s07")}, Limit=3,
             ExclusiveStartKey=resp["LastEvaluatedKey"])
    assert resp["Count"] == 0 and resp["Items"] == []
    assert "LastEvaluatedKey" not in resp


def test_query_limit_zero_is_rejected(ddb, ten_items):
    with expect_ddb_error(VALIDATION, "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
                                      "Member must have value greater than or equal to 1"):
        q(ddb, ten_items, "pk = :p", {":p": S("p")}, Limit=0)


def test_exclusive_start_key_from_another_partition_is_rejected(ddb, ten_items):
    with expect_ddb_error(VALIDATION, "The provided starting key is invalid: The provided key element does not "
                                      "match the schema"):
        q(ddb, ten_items, "pk = :p", {":p": S("p")}, ExclusiveStartKey={"pk": S("p")})


def test_query_page_is_capped_at_one_megabyte(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "N"))
    blob = "x" * 100_000
    items = [{"pk": S("big"), "sk": N(i), "blob": S(blob)} for i in range(30)]  # ~3 MB
    put_all(ddb, name, items)
    all_items, pages = query_all(ddb, TableName=name, KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": S("big")})
    assert [int(it["sk"]["N"]) for it in all_items] == list(range(30))
    assert len(pages) >= 3
    for page in pages[:-1]:
        assert "LastEvaluatedKey" in page
        size = sum(item_size(it) for it in page["Items"])
        # A page stops when about 1 MB has been read.
        assert PAGE_BYTES - 2 * 100_100 <= size <= PAGE_BYTES + 100_100, size
    # Count and Select=COUNT are paginated by size too.
    resp = ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("big")},
                     Select="COUNT")
    assert resp["Count"] == len(pages[0]["Items"])
    assert "LastEvaluatedKey" in resp


def test_scan_page_is_capped_at_one_megabyte(ddb, make_table):
    name = make_table(("pk", "S"))
    put_all(ddb, name, [{"pk": S(f"k{i}"), "blob": S("y" * 100_000)} for i in range(25)])
    all_items, pages = scan_all(ddb, TableName=name)
    assert sorted(it["pk"]["S"] for it in all_items) == sorted(f"k{i}" for i in range(25))
    assert len(pages) >= 3
    assert all(len(p["Items"]) <= 11 for p in pages)


# ---------------------------------------------------------------------------
# Filters and Select
# ---------------------------------------------------------------------------
def test_filter_expression_count_vs_scanned_count(ddb, ten_items):
    resp = q(ddb, ten_items, "pk = :p", {":p": S("p"), ":t": {"BOOL": True}, ":three": N(3)},
             FilterExpression="even = :t AND n > :three")
    assert [int(it["n"]["N"]) for it in resp["Items"]] == [4, 6, 8]
    assert resp["Count"] == 3
    assert resp["ScannedCount"] == 10


def test_limit_applies_before_filter(ddb, ten_items):
    resp = q(ddb, ten_items, "pk = :p", {":p": S("p"), ":t": {"BOOL": True}}, FilterExpression="even = :t", Limit=5)
    assert [int(it["n"]["N"]) for it in resp["Items"]] == [0, 2, 4]
    assert resp["ScannedCount"] == 5
    assert resp["LastEvaluatedKey"] == {"pk": S("p"), "sk": S("s04")}


def test_filter_on_key_attribute_is_rejected(ddb, ten_items):
    with expect_ddb_error(VALIDATION, "Filter Expression can only contain non-primary key attributes: Primary key "
                                      "attribute: sk"):
        q(ddb, ten_items, "pk = :p", {":p": S("p"), ":s": S("s01")}, FilterExpression="sk = :s")


def test_select_count(ddb, ten_items):
    resp = q(ddb, ten_items, "pk = :p", {":p": S("p"), ":t": {"BOOL": True}}, Select="COUNT",
             FilterExpression="even = :t")
    assert "Items" not in resp
    assert resp["Count"] == 5 and resp["ScannedCount"] == 10


def test_select_specific_attributes(ddb, ten_items):
    resp = q(ddb, ten_items, "pk = :p AND sk = :s", {":p": S("p"), ":s": S("s02")}, Select="SPECIFIC_ATTRIBUTES",
             ProjectionExpression="n")
    assert resp["Items"] == [{"n": N(2)}]
    resp = q(ddb, ten_items, "pk = :p AND sk = :s", {":p": S("p"), ":s": S("s02")}, ProjectionExpression="sk, even")
    assert resp["Items"] == [{"sk": S("s02"), "even": {"BOOL": True}}]


def test_select_all_attributes_with_projection_is_rejected(ddb, ten_items):
    with expect_ddb_error(VALIDATION, "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"):
        q(ddb, ten_items, "pk = :p", {":p": S("p")}, Select="ALL_ATTRIBUTES", ProjectionExpression="n")


def test_select_all_projected_attributes_needs_an_index(ddb, ten_items):
    with expect_ddb_error(VALIDATION, "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"):
        q(ddb, ten_items, "pk = :p", {":p": S("p")}, Select="ALL_PROJECTED_ATTRIBUTES")


# ---------------------------------------------------------------------------
# Secondary indexes
# ---------------------------------------------------------------------------
def test_query_local_secondary_index(ddb, make_table):
    name = make_table(("user", "S"), ("id", "S"), lsis=[lsi("by_score", ("score", "N"))])
    put_all(ddb, name, [
        {"user": S("u"), "id": S("a"), "score": N(30)},
        {"user": S("u"), "id": S("b"), "score": N(10)},
        {"user": S("u"), "id": S("c"), "score": N(20)},
        {"user": S("u"), "id": S("d")},  # sparse: not in the index
        {"user": S("v"), "id": S("e"), "score": N(5)},
    ])
    resp = q(ddb, name, "#u = :u AND score >= :s", {":u": S("u"), ":s": N(15)}, names={"#u": "user"},
             IndexName="by_score")
    assert [it["id"]["S"] for it in resp["Items"]] == ["c", "a"]
    items, _ = query_all(ddb, TableName=name, IndexName="by_score", KeyConditionExpression="#u = :u",
                         ExpressionAttributeNames={"#u": "user"}, ExpressionAttributeValues={":u": S("u")},
                         Limit=1, ConsistentRead=True)
    assert [it["id"]["S"] for it in items] == ["b", "c", "a"]
    # LSI pagination keys carry table and index keys.
    resp = q(ddb, name, "#u = :u", {":u": S("u")}, names={"#u": "user"}, IndexName="by_score", Limit=1)
    assert resp["LastEvaluatedKey"] == {"user": S("u"), "id": S("b"), "score": N(10)}


def test_query_gsi_with_non_unique_keys(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("by_color", ("color", "S"), ("size", "N"))])
    items = [{"pk": S(f"k{i:02d}"), "color": S("red" if i % 2 else "blue"), "size": N(i % 3)} for i in range(20)]
    items.append({"pk": S("nocolor"), "size": N(1)})
    put_all(ddb, name, items)
    red, pages = query_all(ddb, TableName=name, IndexName="by_color", KeyConditionExpression="color = :c",
                           ExpressionAttributeValues={":c": S("red")}, Limit=3)
    expected = sorted([it for it in items if it.get("color") == S("red")], key=lambda it: int(it["size"]["N"]))
    assert len(red) == 10
    assert sorted(it["pk"]["S"] for it in red) == sorted(it["pk"]["S"] for it in expected)
    assert [int(it["size"]["N"]) for it in red] == sorted(int(it["size"]["N"]) for it in expected)
    assert set(pages[0]["LastEvaluatedKey"]) == {"pk", "color", "size"}
    resp = q(ddb, name, "color = :c AND #s = :z", {":c": S("blue"), ":z": N(0)}, IndexName="by_color",
           ExpressionAttributeNames={"#s": "size"})
    assert sorted(it["pk"]["S"] for it in resp["Items"]) == ["k00", "k06", "k12", "k18"]


def test_gsi_projections(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "S"), gsis=[
        gsi("keys", ("g", "S"), projection="KEYS_ONLY"),
        gsi("incl", ("g", "S"), ("r", "N"), projection="INCLUDE", include=["a"]),
        gsi("all", ("g", "S"), projection="ALL"),
    ])
    item = {"pk": S("p"), "sk": S("s"), "g": S("G"), "r": N(1), "a": S("A"), "b": S("B")}
    ddb.put_item(TableName=name, Item=item)
    values = {":g": S("G")}
    assert q(ddb, name, "g = :g", values, IndexName="keys")["Items"] == [{"pk": S("p"), "sk": S("s"), "g": S("G")}]
    assert q(ddb, name, "g = :g", values, IndexName="incl")["Items"] == [
        {"pk": S("p"), "sk": S("s"), "g": S("G"), "r": N(1), "a": S("A")}]
    assert q(ddb, name, "g = :g", values, IndexName="all")["Items"] == [item]
    resp = q(ddb, name, "g = :g", values, IndexName="incl", Select="ALL_PROJECTED_ATTRIBUTES")
    assert set(resp["Items"][0]) == {"pk", "sk", "g", "r", "a"}
    with expect_ddb_error(VALIDATION):
        q(ddb, name, "g = :g", values, IndexName="keys", Select="ALL_ATTRIBUTES")


def test_gsi_follows_updates_and_deletes(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("gsi", ("gk", "S"))])
    ddb.put_item(TableName=name, Item={"pk": S("a"), "gk": S("one"), "v": N(1)})
    ddb.update_item(TableName=name, Key={"pk": S("a")}, UpdateExpression="SET gk = :g, v = :v",
                    ExpressionAttributeValues={":g": S("two"), ":v": N(2)})
    assert q(ddb, name, "gk = :g", {":g": S("one")}, IndexName="gsi")["Items"] == []
    assert q(ddb, name, "gk = :g", {":g": S("two")}, IndexName="gsi")["Items"] == [
        {"pk": S("a"), "gk": S("two"), "v": N(2)}]
    ddb.update_item(TableName=name, Key={"pk": S("a")}, UpdateExpression="REMOVE gk")
    assert q(ddb, name, "gk = :g", {":g": S("two")}, IndexName="gsi")["Count"] == 0
    ddb.put_item(TableName=name, Item={"pk": S("b"), "gk": S("two")})
    ddb.delete_item(TableName=name, Key={"pk": S("b")})
    assert q(ddb, name, "gk = :g", {":g": S("two")}, IndexName="gsi")["Count"] == 0


def test_gsi_key_type_mismatch_on_write(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("gsi", ("gk", "S"))])
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Type mismatch for Index Key gk "
                                      "Expected: S Actual: N IndexName: gsi"):
        ddb.put_item(TableName=name, Item={"pk": S("a"), "gk": N(1)})


def test_gsi_consistent_read_is_rejected(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("gsi", ("gk", "S"))])
    with expect_ddb_error(VALIDATION, "Consistent reads are not supported on global secondary indexes"):
        q(ddb, name, "gk = :g", {":g": S("x")}, IndexName="gsi", ConsistentRead=True)


def test_query_unknown_index(ddb, table_hr):
    with expect_ddb_error(VALIDATION, "The table does not have the specified index: nope"):
        q(ddb, table_hr, "pk = :p", {":p": S("p")}, IndexName="nope")


def test_scan_gsi(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("gsi", ("gk", "S"), projection="KEYS_ONLY")])
    put_all(ddb, name, [{"pk": S(f"k{i}"), "gk": S("x"), "v": N(i)} for i in range(4)] + [{"pk": S("none")}])
    items, _ = scan_all(ddb, TableName=name, IndexName="gsi", Limit=2)
    assert sorted(it["pk"]["S"] for it in items) == ["k0", "k1", "k2", "k3"]
    assert all(set(it) == {"pk", "gk"} for it in items)


# ---------------------------------------------------------------------------
# Scan
# ---------------------------------------------------------------------------
def test_scan_with_filter_and_pagination(ddb, make_table):
    name = make_table(("pk", "S"))
    items = [{"pk": S(f"k{i:03d}"), "n": N(i), "tags": {"SS": ["t", f"t{i % 4}"]}, "m": {"M": {"x": N(i % 5)}}}
             for i in range(50)]
    put_all(ddb, name, items)
    found, pages = scan_all(ddb, TableName=name, Limit=7, FilterExpression="contains(tags, :t) AND m.x = :x",
                            ExpressionAttributeValues={":t": S("t1"), ":x": N(0)})
    assert sorted(int(it["n"]["N"]) for it in found) == [i for i in range(50) if i % 4 == 1 and i % 5 == 0]
    assert sum(p["ScannedCount"] for p in pages) == 50
    assert all(p["ScannedCount"] <= 7 for p in pages)


def test_parallel_scan_segments(ddb, make_table):
    name = make_table(("pk", "S"), ("sk", "N"))
    items = [{"pk": S(f"p{i % 37}"), "sk": N(i)} for i in range(300)]
    put_all(ddb, name, items)
    everything = {(it["pk"]["S"], it["sk"]["N"]) for it in scan_all(ddb, TableName=name)[0]}
    assert len(everything) == 300
    segments = []
    for seg in range(4):
        got, _ = scan_all(ddb, TableName=name, Segment=seg, TotalSegments=4, Limit=25)
        segments.append({(it["pk"]["S"], it["sk"]["N"]) for it in got})
    assert set().union(*segments) == everything
    assert sum(len(s) for s in segments) == 300  # disjoint
    # Items of one partition stay in one segment.
    for seg in segments:
        for pk in {p for p, _ in seg}:
            assert {k for k in everything if k[0] == pk} <= seg


@pytest.mark.parametrize("segment,total", [(4, 4), (-1, 4), (0, 0), (0, 1000001)])
def test_scan_segment_validation(ddb, table, segment, total):
    with expect_ddb_error(VALIDATION):
        ddb.scan(TableName=table, Segment=segment, TotalSegments=total)


def test_scan_segment_without_total_is_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "The TotalSegments parameter is required but was not present in the request "
                                      "when Segment parameter is present"):
        ddb.scan(TableName=table, Segment=0)


# ---------------------------------------------------------------------------
# Legacy parameters
# ---------------------------------------------------------------------------
def test_legacy_key_conditions_and_query_filter(ddb, ten_items):
    resp = ddb.query(TableName=ten_items, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]},
        "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("s0")]},
    }, QueryFilter={"n": {"ComparisonOperator": "GE", "AttributeValueList": [N(7)]}})
    assert [int(it["n"]["N"]) for it in resp["Items"]] == [7, 8, 9]
    assert resp["ScannedCount"] == 10
    resp = ddb.query(TableName=ten_items, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]},
        "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [S("s01"), S("s03")]},
    }, AttributesToGet=["n"], ScanIndexForward=False)
    assert resp["Items"] == [{"n": N(3)}, {"n": N(2)}, {"n": N(1)}]


def test_legacy_scan_filter(ddb, ten_items):
    resp = ddb.scan(TableName=ten_items, ScanFilter={
        "n": {"ComparisonOperator": "IN", "AttributeValueList": [N(1), N(2), N(8)]},
        "even": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": True}]},
    })
    assert sorted(int(it["n"]["N"]) for it in resp["Items"]) == [2, 8]
    resp = ddb.scan(TableName=ten_items, ConditionalOperator="OR", ScanFilter={
        "n": {"ComparisonOperator": "GT", "AttributeValueList": [N(8)]},
        "even": {"ComparisonOperator": "NULL"},
    })
    # n > 8 (two partitions have no n > 8 except p/s09) or no `even` attribute (other, p0).
    got = sorted((it["pk"]["S"], it["sk"]["S"]) for it in resp["Items"])
    assert got == [("other", "s00"), ("other", "s01"), ("other", "s02"), ("p", "s09"), ("p0", "s00")]


# ---------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------
def test_random_queries_match_a_naive_model(ddb, make_table):
    rnd = random.Random(20240611)
    name = make_table(("pk", "S"), ("sk", "N"))
    items = {}
    for _ in range(400):
        pk = f"p{rnd.randrange(6)}"
        sk = D(format(D(rnd.randrange(-500, 500)) / D(rnd.choice([1, 10, 100])), "f"))
        items[(pk, sk)] = {"pk": S(pk), "sk": N(str(sk)), "v": N(rnd.randrange(100)),
                           "tag": S(rnd.choice(["a", "b", "c"]))}
    put_all(ddb, name, list(items.values()))

    ops = ["=", "<", "<=", ">", ">=", "BETWEEN"]
    for round_no in range(60):
        pk = f"p{rnd.randrange(7)}"  # p6 has no items
        op = rnd.choice(ops + [None])
        a = D(format(D(rnd.randrange(-600, 600)) / D(10), "f"))
        b = D(format(a + D(rnd.randrange(0, 400)) / D(10), "f"))
        forward = rnd.random() < 0.5
        use_filter = rnd.random() < 0.4
        limit = rnd.choice([None, 1, 7, 50])
        values = {":p": S(pk)}
        cond = "pk = :p"
        if op == "BETWEEN":
            cond += " AND sk BETWEEN :a AND :b"
            values.update({":a": N(str(a)), ":b": N(str(b))})
        elif op:
            cond += f" AND sk {op} :a"
            values[":a"] = N(str(a))
        kwargs = {"TableName": name, "KeyConditionExpression": cond, "ExpressionAttributeValues": values,
                  "ScanIndexForward": forward}
        if use_filter:
            kwargs["FilterExpression"] = "tag = :t AND v >= :v"
            values.update({":t": S("a"), ":v": N(30)})
        if limit:
            kwargs["Limit"] = limit
        got, _ = query_all(ddb, **kwargs)

        def key_ok(sk):
            return {None: True, "=": sk == a, "<": sk < a, "<=": sk <= a, ">": sk > a, ">=": sk >= a,
                    "BETWEEN": a <= sk <= b}[op]

        expected = sorted((it for (p, sk), it in items.items() if p == pk and key_ok(sk)),
                          key=lambda it: D(it["sk"]["N"]), reverse=not forward)
        if use_filter:
            expected = [it for it in expected if it["tag"] == S("a") and int(it["v"]["N"]) >= 30]
        assert [from_av(it["sk"]) for it in got] == [from_av(it["sk"]) for it in expected], (round_no, kwargs)
        assert got == expected, (round_no, kwargs)
