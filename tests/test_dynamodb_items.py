"""DynamoDB items: PutItem/GetItem/UpdateItem/DeleteItem with every attribute type,
number precision and normalisation, condition expressions, update expressions,
ReturnValues, projections, consumed capacity, size limits, key and expression
validation, the legacy (pre-expression) parameters and the boto3 resource API."""
import decimal

import pytest
from boto3.dynamodb.conditions import Attr, Key

from test_dynamodb_util import (  # noqa: F401  (fixtures)
    CCF, MAX_ITEM_BYTES, VALIDATION, B, N, S, ddb, ddb_resource, expect_ddb_error, gsi,
    make_table, plain, table, table_hr,
)

D = decimal.Decimal

ALL_TYPES = {
    "s": {"S": "héllo wörld ✓"},
    "empty_s": {"S": ""},
    "n": {"N": "-123.456"},
    "b": {"B": b"\x00\x01\xfe\xff"},
    "empty_b": {"B": b""},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "null": {"NULL": True},
    "m": {"M": {"inner": {"S": "x"}, "deep": {"M": {"n": {"N": "1"}}}, "empty": {"M": {}}}},
    "l": {"L": [{"S": "a"}, {"N": "2"}, {"L": []}, {"NULL": True}, {"B": b"\x07"}]},
    "ss": {"SS": ["b", "a", "c"]},
    "ns": {"NS": ["1", "-2.5", "300"]},
    "bs": {"BS": [b"\x01", b"\x02\x03"]},
}


def get(ddb, table, key, **kwargs):
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True, **kwargs).get("Item")


def update(ddb, table, key, expr, values=None, names=None, **kwargs):
    params = {"TableName": table, "Key": key, "UpdateExpression": expr}
    if values:
        params["ExpressionAttributeValues"] = values
    if names:
        params["ExpressionAttributeNames"] = names
    params.update(kwargs)
    return ddb.update_item(**params)


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------
def test_all_types_round_trip(ddb, table):
    item = {"pk": S("types"), **ALL_TYPES}
    ddb.put_item(TableName=table, Item=item)
    got = get(ddb, table, {"pk": S("types")})
    assert plain(got) == plain(item)
    # Scalar types come back exactly as sent.
    for name in ("s", "empty_s", "n", "t", "f", "null", "m", "l"):
        assert got[name] == item[name], name
    assert got["b"] == {"B": b"\x00\x01\xfe\xff"}
    assert got["empty_b"] == {"B": b""}


@pytest.mark.parametrize("hash_type,value", [("S", S("k")), ("N", N("-7.5")), ("B", B(b"\x00\xff"))])
def test_key_types_round_trip(ddb, make_table, hash_type, value):
    name = make_table(("pk", hash_type))
    ddb.put_item(TableName=name, Item={"pk": value, "v": S("x")})
    assert get(ddb, name, {"pk": value}) == {"pk": value, "v": S("x")}


def test_get_missing_item_has_no_item_key(ddb, table):
    resp = ddb.get_item(TableName=table, Key={"pk": S("nothing")})
    assert "Item" not in resp


def test_put_replaces_whole_item(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("r"), "a": S("1"), "b": S("2")})
    ddb.put_item(TableName=table, Item={"pk": S("r"), "c": S("3")})
    assert get(ddb, table, {"pk": S("r")}) == {"pk": S("r"), "c": S("3")}


def test_delete_item(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("d"), "a": N(1)})
    resp = ddb.delete_item(TableName=table, Key={"pk": S("d")}, ReturnValues="ALL_OLD")
    assert resp["Attributes"] == {"pk": S("d"), "a": N(1)}
    assert get(ddb, table, {"pk": S("d")}) is None
    # Deleting a missing item succeeds and returns nothing.
    resp = ddb.delete_item(TableName=table, Key={"pk": S("d")}, ReturnValues="ALL_OLD")
    assert "Attributes" not in resp


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("sent,stored", [
    ("0012.3400", "12.34"),
    ("1.0", "1"),
    ("1E+2", "100"),
    ("1.5e-3", "0.0015"),
    ("-00.010", "-0.01"),
])
def test_numbers_are_normalised(ddb, table, sent, stored):
    ddb.put_item(TableName=table, Item={"pk": S("n"), "v": N(sent)})
    assert get(ddb, table, {"pk": S("n")})["v"] == {"N": stored}


@pytest.mark.parametrize("value", [
    "12345678901234567890123456789012345678",
    "-0.12345678901234567890123456789012345678",
    "9.9999999999999999999999999999999999999E+125",
    "1E-130",
])
def test_38_significant_digits_and_range_are_exact(ddb, table, value):
    ddb.put_item(TableName=table, Item={"pk": S("big"), "v": N(value)})
    got = get(ddb, table, {"pk": S("big")})["v"]["N"]
    assert D(got) == D(value)


def test_more_than_38_digits_is_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "Attempting to store more than 38 significant digits in a Number"):
        ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N("123456789012345678901234567890123456789")})


@pytest.mark.parametrize("value", ["1E+126", "-1E+126"])
def test_number_overflow_is_rejected(ddb, table, value):
    with expect_ddb_error(VALIDATION, "Number overflow. Attempting to store a number with magnitude larger than "
                                      "supported range"):
        ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N(value)})


def test_number_underflow_is_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "Number underflow. Attempting to store a number with magnitude smaller than "
                                      "supported range"):
        ddb.put_item(TableName=table, Item={"pk": S("x"), "v": N("1E-131")})


def test_add_decimal_tenths_is_exact(ddb, table):
    for _ in range(10):
        update(ddb, table, {"pk": S("acc")}, "ADD tally :d", {":d": N("0.1")})
    assert get(ddb, table, {"pk": S("acc")})["tally"] == {"N": "1"}


def test_big_integer_arithmetic_is_exact(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("c"), "v": N("12345678901234567890123456789012345677")})
    resp = update(ddb, table, {"pk": S("c")}, "SET v = v + :one", {":one": N(1)}, ReturnValues="UPDATED_NEW")
    assert resp["Attributes"]["v"] == {"N": "12345678901234567890123456789012345678"}
    resp = update(ddb, table, {"pk": S("c")}, "SET v = v - :big", {":big": N("12345678901234567890123456789012345677")},
                  ReturnValues="UPDATED_NEW")
    assert resp["Attributes"]["v"] == {"N": "1"}


def test_arithmetic_overflowing_38_digits_is_rejected(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("c"), "v": N("99999999999999999999999999999999999999")})
    with expect_ddb_error(VALIDATION):
        update(ddb, table, {"pk": S("c")}, "SET v = v + :tiny", {":tiny": N("0.1")})
    assert get(ddb, table, {"pk": S("c")})["v"] == {"N": "99999999999999999999999999999999999999"}


# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------
def test_put_if_absent(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("once"), "v": S("first")},
                 ConditionExpression="attribute_not_exists(pk)")
    with expect_ddb_error(CCF, "The conditional request failed") as info:
        ddb.put_item(TableName=table, Item={"pk": S("once"), "v": S("second")},
                     ConditionExpression="attribute_not_exists(pk)")
    assert "Item" not in info.value.response
    assert get(ddb, table, {"pk": S("once")})["v"] == S("first")


def test_condition_failure_returns_old_item_when_asked(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("o"), "v": S("first"), "n": N(3)})
    with expect_ddb_error(CCF, "The conditional request failed") as info:
        ddb.put_item(TableName=table, Item={"pk": S("o"), "v": S("second")},
                     ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert info.value.response["Item"] == {"pk": S("o"), "v": S("first"), "n": N(3)}
    with expect_ddb_error(CCF) as info:
        update(ddb, table, {"pk": S("o")}, "SET v = :v", {":v": S("x"), ":n": N(100)},
               ConditionExpression="n > :n", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert info.value.response["Item"]["n"] == N(3)
    with expect_ddb_error(CCF) as info:
        ddb.delete_item(TableName=table, Key={"pk": S("o")}, ConditionExpression="attribute_not_exists(v)",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert info.value.response["Item"]["v"] == S("first")


CONDITION_ITEM = {
    "pk": S("cond"), "s": S("apple pie"), "n": N(10), "b": B(b"\x01\x02"), "t": {"BOOL": True},
    "ss": {"SS": ["red", "green"]}, "ns": {"NS": ["1", "2"]}, "l": {"L": [S("x"), N(5)]},
    "m": {"M": {"k": S("v"), "num": N(7)}}, "nul": {"NULL": True}, "mixed": N(5),
}


@pytest.mark.parametrize("expr,values,expected", [
    ("n = :v", {":v": N(10)}, True),
    ("n = :v", {":v": N("10.0")}, True),
    ("n = :v", {":v": S("10")}, False),  # different types are never equal
    ("n <> :v", {":v": N(11)}, True),
    ("n < :v", {":v": N(10)}, False),
    ("n <= :v", {":v": N(10)}, True),
    ("n > :v", {":v": N(9.5)}, True),
    ("n >= :v", {":v": N(11)}, False),
    ("s < :v", {":v": S("apple")}, False),
    ("s > :v", {":v": S("apple")}, True),
    ("b < :v", {":v": B(b"\x01\x03")}, True),
    ("n BETWEEN :lo AND :hi", {":lo": N(10), ":hi": N(20)}, True),
    ("n BETWEEN :lo AND :hi", {":lo": N(11), ":hi": N(20)}, False),
    ("n IN (:a, :b, :c)", {":a": N(1), ":b": N(10), ":c": N(100)}, True),
    ("s IN (:a, :b)", {":a": S("apple"), ":b": S("pie")}, False),
    ("begins_with(s, :v)", {":v": S("apple")}, True),
    ("begins_with(s, :v)", {":v": S("pie")}, False),
    ("contains(s, :v)", {":v": S("e p")}, True),
    ("contains(ss, :v)", {":v": S("red")}, True),
    ("contains(ss, :v)", {":v": S("re")}, False),
    ("contains(l, :v)", {":v": N(5)}, True),
    ("contains(ns, :v)", {":v": N(3)}, False),
    ("size(s) = :v", {":v": N(9)}, True),
    ("size(ss) = :v", {":v": N(2)}, True),
    ("size(l) > :v", {":v": N(1)}, True),
    ("size(m) = :v", {":v": N(2)}, True),
    ("size(b) = :v", {":v": N(2)}, True),
    ("attribute_type(n, :v)", {":v": S("N")}, True),
    ("attribute_type(ss, :v)", {":v": S("SS")}, True),
    ("attribute_type(nul, :v)", {":v": S("NULL")}, True),
    ("attribute_type(m, :v)", {":v": S("L")}, False),
    ("attribute_exists(m.k)", None, True),
    ("attribute_exists(m.nope)", None, False),
    ("attribute_not_exists(nope)", None, True),
    ("attribute_exists(l[1])", None, True),
    ("attribute_exists(l[2])", None, False),
    ("m.num = :v AND l[0] = :x", {":v": N(7), ":x": S("x")}, True),
    ("n = :a OR n = :b", {":a": N(1), ":b": N(2)}, False),
    ("NOT n = :a", {":a": N(1)}, True),
    ("NOT (n = :a OR t = :t) AND s = :s", {":a": N(1), ":t": {"BOOL": False}, ":s": S("apple pie")}, True),
    ("n > mixed", None, True),  # path on both sides
    ("absent = :v", {":v": N(1)}, False),
    ("absent <> :v", {":v": N(1)}, True),  # a missing attribute is not equal to anything
    ("absent < :v", {":v": N(1)}, False),
])
def test_condition_expression_operators(ddb, table, expr, values, expected):
    ddb.put_item(TableName=table, Item=CONDITION_ITEM)
    params = {"ConditionExpression": expr}
    if values:
        params["ExpressionAttributeValues"] = {**values, ":touched": {"BOOL": True}}
    else:
        params["ExpressionAttributeValues"] = {":touched": {"BOOL": True}}
    if expected:
        update(ddb, table, {"pk": S("cond")}, "SET touched = :touched", **params)
        assert get(ddb, table, {"pk": S("cond")})["touched"] == {"BOOL": True}
    else:
        with expect_ddb_error(CCF, "The conditional request failed"):
            update(ddb, table, {"pk": S("cond")}, "SET touched = :touched", **params)
        assert "touched" not in get(ddb, table, {"pk": S("cond")})


def test_condition_on_missing_item(ddb, table):
    # The condition is evaluated against an empty item.
    with expect_ddb_error(CCF):
        ddb.delete_item(TableName=table, Key={"pk": S("ghost")}, ConditionExpression="attribute_exists(pk)")
    update(ddb, table, {"pk": S("ghost")}, "SET v = :v", {":v": N(1)}, ConditionExpression="attribute_not_exists(v)")
    assert get(ddb, table, {"pk": S("ghost")}) == {"pk": S("ghost"), "v": N(1)}


def test_condition_with_attribute_names(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("n"), "status": S("open"), "a.b": S("dotted")})
    update(ddb, table, {"pk": S("n")}, "SET #s = :c", {":c": S("closed"), ":o": S("open"), ":d": S("dotted")},
           names={"#s": "status", "#dot": "a.b"}, ConditionExpression="#s = :o AND #dot = :d")
    assert get(ddb, table, {"pk": S("n")})["status"] == S("closed")


def test_redundant_parentheses_are_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "Invalid ConditionExpression: The expression has redundant parentheses;"):
        ddb.put_item(TableName=table, Item={"pk": S("p")}, ConditionExpression="((attribute_not_exists(pk)))")


# ---------------------------------------------------------------------------
# Update expressions
# ---------------------------------------------------------------------------
def test_update_creates_item(ddb, table):
    resp = update(ddb, table, {"pk": S("new")}, "SET a = :a, b = :b", {":a": S("x"), ":b": N(2)},
                  ReturnValues="ALL_NEW")
    assert resp["Attributes"] == {"pk": S("new"), "a": S("x"), "b": N(2)}
    assert get(ddb, table, {"pk": S("new")}) == resp["Attributes"]


def test_update_set_arithmetic_and_if_not_exists(ddb, table):
    key = {"pk": S("calc")}
    update(ddb, table, key, "SET hits = if_not_exists(hits, :zero) + :one", {":zero": N(0), ":one": N(1)})
    update(ddb, table, key, "SET hits = if_not_exists(hits, :zero) + :one", {":zero": N(0), ":one": N(1)})
    update(ddb, table, key, "SET created = if_not_exists(created, :now)", {":now": S("t1")})
    update(ddb, table, key, "SET created = if_not_exists(created, :now)", {":now": S("t2")})
    update(ddb, table, key, "SET diff = hits - :ten, dup = hits", {":ten": N(10)})
    item = get(ddb, table, key)
    assert item["hits"] == N(2)
    assert item["created"] == S("t1")
    assert item["diff"] == N(-8)
    assert item["dup"] == N(2)


def test_update_arithmetic_on_wrong_type(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("w"), "s": S("text")})
    with expect_ddb_error(VALIDATION) as info:
        update(ddb, table, {"pk": S("w")}, "SET s = s + :one", {":one": N(1)})
    assert info.value.response["Error"]["Message"] in (
        "An operand in the update expression has an incorrect data type",
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, "
        "operand type: S")
    with expect_ddb_error(VALIDATION, "The provided expression refers to an attribute that does not exist in "
                                      "the item"):
        update(ddb, table, {"pk": S("w")}, "SET x = absent + :one", {":one": N(1)})


def test_update_list_append(ddb, table):
    key = {"pk": S("list")}
    ddb.put_item(TableName=table, Item={**key, "l": {"L": [S("b")]}})
    update(ddb, table, key, "SET l = list_append(l, :tail)", {":tail": {"L": [S("c"), S("d")]}})
    update(ddb, table, key, "SET l = list_append(:head, l)", {":head": {"L": [S("a")]}})
    update(ddb, table, key, "SET fresh = list_append(if_not_exists(fresh, :empty), :x)",
           {":empty": {"L": []}, ":x": {"L": [N(1)]}})
    item = get(ddb, table, key)
    assert item["l"] == {"L": [S("a"), S("b"), S("c"), S("d")]}
    assert item["fresh"] == {"L": [N(1)]}


def test_update_nested_paths_and_list_indexes(ddb, table):
    key = {"pk": S("doc")}
    ddb.put_item(TableName=table, Item={**key, "m": {"M": {"a": {"M": {"b": N(1)}}, "tags": {"L": [S("x"), S("y")]}}},
                                        "l": {"L": [N(0), N(1), N(2)]}})
    update(ddb, table, key, "SET m.a.b = m.a.b + :one, m.a.c = :c, m.tags[1] = :z, l[0] = :neg, l[10] = :end",
           {":one": N(1), ":c": S("new"), ":z": S("z"), ":neg": N(-1), ":end": N(99)})
    item = get(ddb, table, key)
    assert item["m"] == {"M": {"a": {"M": {"b": N(2), "c": S("new")}}, "tags": {"L": [S("x"), S("z")]}}}
    # Setting an index past the end appends.
    assert item["l"] == {"L": [N(-1), N(1), N(2), N(99)]}


def test_update_nested_path_with_missing_parent(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("p"), "m": {"M": {}}})
    with expect_ddb_error(VALIDATION, "The document path provided in the update expression is invalid for update"):
        update(ddb, table, {"pk": S("p")}, "SET m.a.b = :v", {":v": N(1)})
    with expect_ddb_error(VALIDATION, "The document path provided in the update expression is invalid for update"):
        update(ddb, table, {"pk": S("p")}, "SET nope[0] = :v", {":v": N(1)})


def test_update_remove(ddb, table):
    key = {"pk": S("rm")}
    ddb.put_item(TableName=table, Item={**key, "a": S("1"), "b": S("2"), "l": {"L": [N(0), N(1), N(2), N(3)]},
                                        "m": {"M": {"x": N(1), "y": N(2)}}})
    update(ddb, table, key, "REMOVE a, l[1], l[2], m.x, not_there")
    item = get(ddb, table, key)
    assert item == {**key, "b": S("2"), "l": {"L": [N(0), N(3)]}, "m": {"M": {"y": N(2)}}}


def test_update_add_numbers_and_sets(ddb, table):
    key = {"pk": S("add")}
    update(ddb, table, key, "ADD cnt :five, tags :t, nums :n",
           {":five": N(5), ":t": {"SS": ["a", "b"]}, ":n": {"NS": ["1"]}})
    update(ddb, table, key, "ADD cnt :neg, tags :t, nums :n",
           {":neg": N(-7), ":t": {"SS": ["b", "c"]}, ":n": {"NS": ["2", "1"]}})
    item = plain(get(ddb, table, key))
    assert item["cnt"] == -2
    assert item["tags"] == {"a", "b", "c"}
    assert item["nums"] == {1, 2}


def test_update_add_to_wrong_type(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("w"), "s": S("x"), "ss": {"SS": ["a"]}})
    with expect_ddb_error(VALIDATION):
        update(ddb, table, {"pk": S("w")}, "ADD s :one", {":one": N(1)})
    with expect_ddb_error(VALIDATION):
        update(ddb, table, {"pk": S("w")}, "ADD ss :n", {":n": {"NS": ["1"]}})


def test_update_delete_from_sets(ddb, table):
    key = {"pk": S("del")}
    ddb.put_item(TableName=table, Item={**key, "ss": {"SS": ["a", "b", "c"]}, "bs": {"BS": [b"\x01", b"\x02"]},
                                        "ns": {"NS": ["1"]}})
    update(ddb, table, key, "DELETE ss :x, bs :b, ns :n",
           {":x": {"SS": ["a", "zzz"]}, ":b": {"BS": [b"\x01"]}, ":n": {"NS": ["1"]}})
    item = get(ddb, table, key)
    assert plain(item)["ss"] == {"b", "c"}
    assert item["bs"] == {"BS": [b"\x02"]}
    assert "ns" not in item  # a set emptied by DELETE disappears


def test_update_combined_clauses(ddb, table):
    key = {"pk": S("all")}
    ddb.put_item(TableName=table, Item={**key, "gone": S("x"), "n": N(1), "ss": {"SS": ["a", "b"]}})
    update(ddb, table, key, "SET s = :s REMOVE gone ADD n :one DELETE ss :a",
           {":s": S("set"), ":one": N(1), ":a": {"SS": ["a"]}})
    assert get(ddb, table, key) == {**key, "s": S("set"), "n": N(2), "ss": {"SS": ["b"]}}


def test_update_key_attribute_is_rejected(ddb, table_hr):
    key = {"pk": S("k"), "sk": S("s")}
    ddb.put_item(TableName=table_hr, Item=key)
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Cannot update attribute pk. "
                                      "This attribute is part of the key"):
        update(ddb, table_hr, key, "SET pk = :v", {":v": S("other")})
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Cannot update attribute sk. "
                                      "This attribute is part of the key"):
        update(ddb, table_hr, key, "REMOVE sk")


def test_update_overlapping_paths_are_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "Invalid UpdateExpression: Two document paths overlap with each other; must "
                                      "remove or rewrite one of these paths; path one: [a], path two: [a, b]"):
        update(ddb, table, {"pk": S("o")}, "SET a = :v, a.b = :v", {":v": N(1)})
    with expect_ddb_error(VALIDATION, contains=["Two document paths overlap with each other"]):
        update(ddb, table, {"pk": S("o")}, "SET a = :v REMOVE a", {":v": N(1)})


def test_update_reserved_word_needs_a_name(ddb, table):
    with expect_ddb_error(VALIDATION, "Invalid UpdateExpression: Attribute name is a reserved keyword; "
                                      "reserved keyword: status"):
        update(ddb, table, {"pk": S("r")}, "SET status = :v", {":v": S("x")})


# ---------------------------------------------------------------------------
# ReturnValues
# ---------------------------------------------------------------------------
def test_update_return_values(ddb, table):
    key = {"pk": S("rv")}
    ddb.put_item(TableName=table, Item={**key, "a": N(1), "b": S("keep")})
    resp = update(ddb, table, key, "SET a = a + :one", {":one": N(1)}, ReturnValues="NONE")
    assert "Attributes" not in resp
    resp = update(ddb, table, key, "SET a = a + :one, c = :c", {":one": N(1), ":c": S("new")}, ReturnValues="ALL_OLD")
    assert resp["Attributes"] == {**key, "a": N(2), "b": S("keep")}
    resp = update(ddb, table, key, "SET a = a + :one, d = :d", {":one": N(1), ":d": S("d")}, ReturnValues="UPDATED_OLD")
    assert resp["Attributes"] == {"a": N(3)}  # d did not exist before
    resp = update(ddb, table, key, "SET a = a + :one REMOVE c", {":one": N(1)}, ReturnValues="ALL_NEW")
    assert resp["Attributes"] == {**key, "a": N(5), "b": S("keep"), "d": S("d")}
    resp = update(ddb, table, key, "SET a = a + :one, e = :e", {":one": N(1), ":e": S("e")}, ReturnValues="UPDATED_NEW")
    assert resp["Attributes"] == {"a": N(6), "e": S("e")}


def test_update_return_values_nested(ddb, table):
    key = {"pk": S("rvn")}
    ddb.put_item(TableName=table, Item={**key, "m": {"M": {"x": N(1), "y": N(2)}}})
    resp = update(ddb, table, key, "SET m.x = :v", {":v": N(10)}, ReturnValues="UPDATED_NEW")
    assert resp["Attributes"] == {"m": {"M": {"x": N(10)}}}
    resp = update(ddb, table, key, "SET m.x = :v", {":v": N(20)}, ReturnValues="UPDATED_OLD")
    assert resp["Attributes"] == {"m": {"M": {"x": N(10)}}}


def test_put_return_values(ddb, table):
    resp = ddb.put_item(TableName=table, Item={"pk": S("p"), "v": N(1)}, ReturnValues="ALL_OLD")
    assert "Attributes" not in resp
    resp = ddb.put_item(TableName=table, Item={"pk": S("p"), "v": N(2)}, ReturnValues="ALL_OLD")
    assert resp["Attributes"] == {"pk": S("p"), "v": N(1)}
    with expect_ddb_error(VALIDATION, "ReturnValues can only be ALL_OLD or NONE"):
        ddb.put_item(TableName=table, Item={"pk": S("p")}, ReturnValues="ALL_NEW")


# ---------------------------------------------------------------------------
# Projections
# ---------------------------------------------------------------------------
def test_projection_expression_nested_paths(ddb, table):
    key = {"pk": S("proj")}
    ddb.put_item(TableName=table, Item={
        **key, "top": S("t"), "other": S("o"), "#weird": S("w"),
        "m": {"M": {"a": {"M": {"b": N(1), "c": N(2)}}, "z": S("z")}},
        "l": {"L": [S("l0"), {"M": {"x": S("deep"), "y": S("skip")}}, S("l2")]},
    })
    item = get(ddb, table, key, ProjectionExpression="top, m.a.b, l[1].x, l[2], #w, absent, m.nope",
               ExpressionAttributeNames={"#w": "#weird"})
    assert item == {
        "top": S("t"), "#weird": S("w"),
        "m": {"M": {"a": {"M": {"b": N(1)}}}},
        "l": {"L": [{"M": {"x": S("deep")}}, S("l2")]},
    }


def test_projection_overlapping_paths_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "Invalid ProjectionExpression: Two document paths overlap with each other; "
                                      "must remove or rewrite one of these paths; path one: [a], path two: [a, b]"):
        get(ddb, table, {"pk": S("x")}, ProjectionExpression="a, a.b")


def test_projection_syntax_error(ddb, table):
    with expect_ddb_error(VALIDATION, 'Invalid ProjectionExpression: Syntax error; token: "!", near: "!!"'):
        get(ddb, table, {"pk": S("x")}, ProjectionExpression="!!! INVALID !!!")


# ---------------------------------------------------------------------------
# Consumed capacity
# ---------------------------------------------------------------------------
def test_consumed_capacity_total(ddb, table):
    small = {"pk": S("cap"), "v": S("x")}
    resp = ddb.put_item(TableName=table, Item=small, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["TableName"] == table
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    # Writes are billed per started KB: 2.5 KB -> 3 units.
    resp = ddb.put_item(TableName=table, Item={"pk": S("big"), "v": S("x" * 2500)}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 3.0
    # Strongly consistent reads cost one unit per started 4 KB, eventually consistent half.
    resp = ddb.get_item(TableName=table, Key={"pk": S("cap")}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    resp = ddb.get_item(TableName=table, Key={"pk": S("cap")}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 0.5
    resp = update(ddb, table, {"pk": S("cap")}, "SET w = :w", {":w": N(1)}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    resp = ddb.delete_item(TableName=table, Key={"pk": S("cap")}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    resp = ddb.get_item(TableName=table, Key={"pk": S("cap")}, ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in resp


def test_consumed_capacity_indexes(ddb, make_table):
    name = make_table(("pk", "S"), gsis=[gsi("gsi", ("gk", "S"))])
    resp = ddb.put_item(TableName=name, Item={"pk": S("a"), "gk": S("x")}, ReturnConsumedCapacity="INDEXES")
    cap = resp["ConsumedCapacity"]
    assert cap["TableName"] == name
    assert cap["CapacityUnits"] == 2.0
    assert cap["Table"]["CapacityUnits"] == 1.0
    assert cap["GlobalSecondaryIndexes"] == {"gsi": {"CapacityUnits": 1.0}}
    # An item without the index key costs nothing on the index.
    resp = ddb.put_item(TableName=name, Item={"pk": S("b")}, ReturnConsumedCapacity="INDEXES")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert resp["ConsumedCapacity"]["Table"]["CapacityUnits"] == 1.0


# ---------------------------------------------------------------------------
# Limits and validation
# ---------------------------------------------------------------------------
def test_item_size_limit(ddb, table):
    # 400 KB (409,600 bytes) including attribute names.
    ok = {"pk": S("big"), "d": S("x" * (MAX_ITEM_BYTES - 2000))}
    ddb.put_item(TableName=table, Item=ok)
    assert len(get(ddb, table, {"pk": S("big")})["d"]["S"]) == MAX_ITEM_BYTES - 2000
    with expect_ddb_error(VALIDATION, "Item size has exceeded the maximum allowed size"):
        ddb.put_item(TableName=table, Item={"pk": S("huge"), "d": S("x" * (MAX_ITEM_BYTES + 1))})
    # Counting attribute names too: the value fits alone, not with a long name.
    with expect_ddb_error(VALIDATION, "Item size has exceeded the maximum allowed size"):
        ddb.put_item(TableName=table, Item={"pk": S("huge"), "n" * 2000: S("x" * (MAX_ITEM_BYTES - 1000))})
    assert get(ddb, table, {"pk": S("huge")}) is None


def test_update_beyond_size_limit(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("grow"), "a": S("x" * 300_000)})
    with expect_ddb_error(VALIDATION, "Item size to update has exceeded the maximum allowed size"):
        update(ddb, table, {"pk": S("grow")}, "SET b = :b", {":b": S("y" * 150_000)})
    assert set(get(ddb, table, {"pk": S("grow")})) == {"pk", "a"}


@pytest.mark.parametrize("key", [
    {"pk": S("k")},                                   # missing range key
    {"pk": S("k"), "sk": N(1)},                       # wrong type
    {"pk": S("k"), "sk": S("s"), "extra": S("x")},    # extra attribute
    {"sk": S("s")},                                   # missing hash key
])
def test_key_does_not_match_schema(ddb, table_hr, key):
    with expect_ddb_error(VALIDATION, "The provided key element does not match the schema"):
        ddb.get_item(TableName=table_hr, Key=key)
    with expect_ddb_error(VALIDATION, "The provided key element does not match the schema"):
        ddb.delete_item(TableName=table_hr, Key=key)
    with expect_ddb_error(VALIDATION, "The provided key element does not match the schema"):
        update(ddb, table_hr, key, "SET v = :v", {":v": N(1)})


def test_put_missing_key_attribute(ddb, table_hr):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Missing the key sk in the item"):
        ddb.put_item(TableName=table_hr, Item={"pk": S("k"), "v": S("x")})


def test_put_wrong_key_type(ddb, table_hr):
    with expect_ddb_error(VALIDATION, "One or more parameter values were invalid: Type mismatch for key sk "
                                      "expected: S actual: N"):
        ddb.put_item(TableName=table_hr, Item={"pk": S("k"), "sk": N(1)})


def test_empty_string_key(ddb, table):
    with expect_ddb_error(VALIDATION, "One or more parameter values are not valid. The AttributeValue for a key "
                                      "attribute cannot contain an empty string value. Key: pk"):
        ddb.put_item(TableName=table, Item={"pk": S("")})
    with expect_ddb_error(VALIDATION, "One or more parameter values are not valid. The AttributeValue for a key "
                                      "attribute cannot contain an empty string value. Key: pk"):
        ddb.get_item(TableName=table, Key={"pk": S("")})


def test_empty_binary_key(ddb, make_table):
    name = make_table(("pk", "B"))
    with expect_ddb_error(VALIDATION, "One or more parameter values are not valid. The AttributeValue for a key "
                                      "attribute cannot contain an empty binary value. Key: pk"):
        ddb.put_item(TableName=name, Item={"pk": B(b"")})


@pytest.mark.parametrize("kind,word", [("SS", "string"), ("NS", "number"), ("BS", "binary")])
def test_empty_sets_are_rejected(ddb, table, kind, word):
    with expect_ddb_error(VALIDATION, f"One or more parameter values were invalid: An {word} set  may not be empty"):
        ddb.put_item(TableName=table, Item={"pk": S("e"), "s": {kind: []}})


@pytest.mark.parametrize("value", [{"SS": ["a", "a"]}, {"NS": ["1", "1"]}, {"BS": [b"\x01", b"\x01"]}])
def test_duplicate_set_values_are_rejected(ddb, table, value):
    with expect_ddb_error(VALIDATION, contains=["One or more parameter values were invalid: Input collection",
                                                "contains duplicates"]):
        ddb.put_item(TableName=table, Item={"pk": S("d"), "s": value})


def test_set_may_hold_an_empty_string(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("es"), "s": {"SS": ["", "a"]}})
    assert plain(get(ddb, table, {"pk": S("es")}))["s"] == {"", "a"}


# ---------------------------------------------------------------------------
# Expression attribute names and values
# ---------------------------------------------------------------------------
def test_unused_expression_attribute_values(ddb, table):
    with expect_ddb_error(VALIDATION, "Value provided in ExpressionAttributeValues unused in expressions: "
                                      "keys: {:x}"):
        update(ddb, table, {"pk": S("u")}, "SET a = :a", {":a": N(1), ":x": N(2)})


def test_unused_expression_attribute_names(ddb, table):
    with expect_ddb_error(VALIDATION, "Value provided in ExpressionAttributeNames unused in expressions: "
                                      "keys: {#unused}"):
        update(ddb, table, {"pk": S("u")}, "SET #a = :a", {":a": N(1)}, names={"#a": "a", "#unused": "b"})


def test_missing_expression_attribute_value(ddb, table):
    with expect_ddb_error(VALIDATION, "Invalid UpdateExpression: An expression attribute value used in expression "
                                      "is not defined; attribute value: :x"):
        update(ddb, table, {"pk": S("m")}, "SET a = :x")
    with expect_ddb_error(VALIDATION, "Invalid ConditionExpression: An expression attribute value used in "
                                      "expression is not defined; attribute value: :x"):
        ddb.put_item(TableName=table, Item={"pk": S("m")}, ConditionExpression="a = :x")


def test_missing_expression_attribute_name(ddb, table):
    with expect_ddb_error(VALIDATION, "Invalid UpdateExpression: An expression attribute name used in the document "
                                      "path is not defined; attribute name: #n"):
        update(ddb, table, {"pk": S("m")}, "SET #n = :v", {":v": N(1)})


def test_values_without_expression(ddb, table):
    with expect_ddb_error(VALIDATION, "ExpressionAttributeValues can only be specified when using expressions"):
        ddb.put_item(TableName=table, Item={"pk": S("v")}, ExpressionAttributeValues={":v": S("x")})


@pytest.mark.parametrize("expr,message", [
    ("INVALID SYNTAX", 'Invalid UpdateExpression: Syntax error; token: "INVALID", near: "INVALID SYNTAX"'),
    ("", "Invalid UpdateExpression: The expression can not be empty;"),
])
def test_update_expression_syntax_errors(ddb, table, expr, message):
    with expect_ddb_error(VALIDATION, message):
        ddb.update_item(TableName=table, Key={"pk": S("s")}, UpdateExpression=expr)


@pytest.mark.parametrize("expr", ["SET a = ", "SET a = :v,", "SET = :v", "REMOVE", "ADD a", "SET a = :v WHERE b"])
def test_update_expression_syntax_error_prefix(ddb, table, expr):
    with expect_ddb_error(VALIDATION, contains=["Invalid UpdateExpression: Syntax error; token: "]):
        update(ddb, table, {"pk": S("s")}, expr, {":v": N(1)} if ":v" in expr else None)


def test_repeated_clause_is_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, 'Invalid UpdateExpression: The "SET" section can only be used once in an '
                                      'update expression;'):
        update(ddb, table, {"pk": S("s")}, "SET a = :v SET b = :v", {":v": N(1)})


# ---------------------------------------------------------------------------
# Legacy parameters
# ---------------------------------------------------------------------------
def test_legacy_expected(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("lg"), "v": N(1)}, Expected={"pk": {"Exists": False}})
    with expect_ddb_error(CCF):
        ddb.put_item(TableName=table, Item={"pk": S("lg"), "v": N(2)}, Expected={"pk": {"Exists": False}})
    ddb.put_item(TableName=table, Item={"pk": S("lg"), "v": N(3)}, Expected={"v": {"Value": N(1)}})
    with expect_ddb_error(CCF):
        ddb.put_item(TableName=table, Item={"pk": S("lg"), "v": N(4)},
                     Expected={"v": {"ComparisonOperator": "GT", "AttributeValueList": [N(5)]}})
    ddb.delete_item(TableName=table, Key={"pk": S("lg")},
                    Expected={"v": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(3), N(5)]}})
    assert get(ddb, table, {"pk": S("lg")}) is None


def test_legacy_attribute_updates(ddb, table):
    key = {"pk": S("au")}
    ddb.put_item(TableName=table, Item={**key, "gone": S("x"), "n": N(1), "ss": {"SS": ["a", "b"]}})
    resp = ddb.update_item(TableName=table, Key=key, ReturnValues="ALL_NEW", AttributeUpdates={
        "s": {"Action": "PUT", "Value": S("new")},
        "gone": {"Action": "DELETE"},
        "n": {"Action": "ADD", "Value": N(41)},
        "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
        "fresh": {"Action": "ADD", "Value": {"NS": ["7"]}},
    })
    assert plain(resp["Attributes"]) == {"pk": "au", "s": "new", "n": 42, "ss": {"b"}, "fresh": {7}}


def test_legacy_attributes_to_get(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": S("atg"), "a": N(1), "b": N(2), "c": N(3)})
    item = get(ddb, table, {"pk": S("atg")}, AttributesToGet=["a", "c", "zzz"])
    assert item == {"a": N(1), "c": N(3)}


def test_mixing_legacy_and_expressions_is_rejected(ddb, table):
    with expect_ddb_error(VALIDATION, "Can not use both expression and non-expression parameters in the same "
                                      "request: Non-expression parameters: {Expected} Expression parameters: "
                                      "{ConditionExpression}"):
        ddb.put_item(TableName=table, Item={"pk": S("x")}, Expected={"pk": {"Exists": False}},
                     ConditionExpression="attribute_not_exists(pk)")
    with expect_ddb_error(VALIDATION, "Can not use both expression and non-expression parameters in the same "
                                      "request: Non-expression parameters: {AttributesToGet} Expression parameters: "
                                      "{ProjectionExpression}"):
        get(ddb, table, {"pk": S("x")}, AttributesToGet=["a"], ProjectionExpression="a")


# ---------------------------------------------------------------------------
# boto3 resource API
# ---------------------------------------------------------------------------
def test_resource_api_round_trip_and_conditions(ddb_resource, make_table):
    name = make_table(("user", "S"), ("ts", "N"))
    t = ddb_resource.Table(name)
    t.put_item(Item={"user": "ann", "ts": 1, "text": "hello", "tags": {"a", "b"}, "score": D("1.5"),
                     "meta": {"likes": 3, "flags": [True, None]}, "raw": b"\x00\x01"})
    t.put_item(Item={"user": "ann", "ts": 2, "text": "world", "score": D("-2")})
    t.put_item(Item={"user": "bob", "ts": 1, "text": "other"})
    item = t.get_item(Key={"user": "ann", "ts": 1}, ConsistentRead=True)["Item"]
    assert item["text"] == "hello" and item["tags"] == {"a", "b"} and item["score"] == D("1.5")
    assert item["meta"] == {"likes": D(3), "flags": [True, None]}
    assert item["raw"].value == b"\x00\x01"

    t.update_item(Key={"user": "ann", "ts": 1}, UpdateExpression="SET meta.likes = meta.likes + :one",
                  ConditionExpression=Attr("text").begins_with("hel") & Attr("score").gt(1),
                  ExpressionAttributeValues={":one": 1})
    assert t.get_item(Key={"user": "ann", "ts": 1})["Item"]["meta"]["likes"] == D(4)
    with pytest.raises(t.meta.client.exceptions.ConditionalCheckFailedException):
        t.delete_item(Key={"user": "ann", "ts": 2}, ConditionExpression=Attr("score").gte(0))

    resp = t.query(KeyConditionExpression=Key("user").eq("ann") & Key("ts").between(1, 5),
                   FilterExpression=Attr("score").lt(0), ConsistentRead=True)
    assert [(i["user"], i["ts"]) for i in resp["Items"]] == [("ann", D(2))]
    assert resp["ScannedCount"] == 2
    resp = t.scan(FilterExpression=Attr("text").contains("o") & Attr("tags").not_exists())
    assert sorted((i["user"], int(i["ts"])) for i in resp["Items"]) == [("ann", 2), ("bob", 1)]


def test_resource_batch_writer(ddb_resource, make_table):
    name = make_table(("pk", "S"))
    t = ddb_resource.Table(name)
    with t.batch_writer() as bw:
        for i in range(60):
            bw.put_item(Item={"pk": f"k{i:02d}", "n": i})
        bw.delete_item(Key={"pk": "k00"})
    items = []
    resp = t.scan()
    items += resp["Items"]
    while "LastEvaluatedKey" in resp:
        resp = t.scan(ExclusiveStartKey=resp["LastEvaluatedKey"])
        items += resp["Items"]
    assert sorted(i["pk"] for i in items) == [f"k{i:02d}" for i in range(1, 60)]
    assert t.item_count in (0, 59)
