#!/usr/bin/env python3
"""Does DynamoDB cost stay flat as a table grows? Loads a table (partition key `user`,
sort key `ts`, a GSI on `tag`) with 10 and then N items (unsigned keep-alive JSON
requests, BatchWriteItem of 25), and at each size measures PutItem, GetItem, a Query
returning 100 items of one partition, and a GSI Query returning 100 items.

    bench/ddb_scale.py http://127.0.0.1:4566 [--big 1000000]
"""
import argparse
import time

from benchlib import JsonClient, timed


def Client(endpoint):
    return JsonClient(endpoint, "DynamoDB_20120810")


PER_USER = 200  # items per partition


def item(n):
    return {"user": {"S": f"u{n // PER_USER:07d}"}, "ts": {"N": str(n % PER_USER)},
            "tag": {"S": f"t{n % 997}"}, "body": {"S": "x" * 100}}


def fill(c, table, start, end):
    for s in range(start, end, 25):
        c.call("BatchWriteItem", {"RequestItems": {table: [
            {"PutRequest": {"Item": item(n)}} for n in range(s, min(end, s + 25))]}})


def measure(c, table, size, rounds):
    users = max(1, size // PER_USER)
    res = {}
    res["PutItem"] = timed(rounds, lambda i: c.call("PutItem", {"TableName": table, "Item": item(size + i)}))
    res["GetItem"] = timed(rounds, lambda i: c.call("GetItem", {"TableName": table, "Key": {
        "user": {"S": f"u{(i * 7919) % users:07d}"}, "ts": {"N": str(i % PER_USER)}}}))

    def q(i):
        out = c.call("Query", {"TableName": table, "Limit": 100,
                               "KeyConditionExpression": "#u = :u",
                               "ExpressionAttributeNames": {"#u": "user"},
                               "ExpressionAttributeValues": {":u": {"S": f"u{(i * 7919) % users:07d}"}}})
        assert out["Count"] == min(100, size), out["Count"]
    res["Query 100 items"] = timed(rounds, q)

    def gq(i):
        c.call("Query", {"TableName": table, "IndexName": "by_tag", "Limit": 100,
                         "KeyConditionExpression": "tag = :t",
                         "ExpressionAttributeValues": {":t": {"S": f"t{i % 997}"}}})
    res["GSI Query (up to 100)"] = timed(rounds, gq)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=500)
    a = ap.parse_args()
    c = Client(a.endpoint)
    table = f"scale{int(time.time())}"
    c.call("CreateTable", {
        "TableName": table, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "user", "AttributeType": "S"},
                                 {"AttributeName": "ts", "AttributeType": "N"},
                                 {"AttributeName": "tag", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [{"IndexName": "by_tag", "KeySchema": [
            {"AttributeName": "tag", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}]})
    fill(c, table, 0, PER_USER)
    small = measure(c, table, PER_USER, a.rounds)
    t0 = time.time()
    fill(c, table, PER_USER, a.big)
    load = time.time() - t0
    big = measure(c, table, a.big, a.rounds)
    print(f"loaded {a.big:,} items in {load:.0f} s ({a.big / load:,.0f} items/s via BatchWriteItem)")
    print(f"| op | {PER_USER} items p50 / p99 ms | {a.big:,} items p50 / p99 ms |")
    print("|---|---|---|")
    for op in small:
        print(f"| {op} | {small[op][0]:.2f} / {small[op][1]:.2f} | {big[op][0]:.2f} / {big[op][1]:.2f} |")


if __name__ == "__main__":
    main()
