"""The AWS CLI against Virga's DynamoDB: create-table/describe-table/list-tables,
put-item/get-item/update-item, query with --key-condition-expression, scan (with the
CLI's automatic pagination) and an error for a missing table."""
import json

from test_dynamodb_util import ddb, make_table, table_arn, table_name, wait_active  # noqa: F401  (fixtures)


def cli_json(aws, *args):
    out = aws("dynamodb", *args, "--output", "json").stdout
    return json.loads(out) if out.strip() else {}


def cli_table(aws, ddb, make_table, range_key=True):
    name = table_name("cli")
    make_table.created.append((ddb, name))
    attrs = ["AttributeName=pk,AttributeType=S"] + (["AttributeName=sk,AttributeType=N"] if range_key else [])
    keys = ["AttributeName=pk,KeyType=HASH"] + (["AttributeName=sk,KeyType=RANGE"] if range_key else [])
    desc = cli_json(aws, "create-table", "--table-name", name, "--billing-mode", "PAY_PER_REQUEST",
                    "--attribute-definitions", *attrs, "--key-schema", *keys)["TableDescription"]
    assert desc["TableName"] == name
    wait_active(ddb, name)
    return name, desc


def test_cli_create_describe_list_delete(aws, ddb, make_table):
    name, desc = cli_table(aws, ddb, make_table)
    assert desc["TableArn"] == table_arn(name)
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    table = cli_json(aws, "describe-table", "--table-name", name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["ItemCount"] == 0
    listed = cli_json(aws, "list-tables")["TableNames"]
    assert name in listed
    assert cli_json(aws, "delete-table", "--table-name", name)["TableDescription"]["TableName"] == name


def test_cli_put_get_update_query_scan(aws, ddb, make_table):
    name, _ = cli_table(aws, ddb, make_table)
    for i in range(5):
        item = {"pk": {"S": "user#1"}, "sk": {"N": str(i)}, "title": {"S": f"post {i}"},
                "tags": {"SS": ["a", f"t{i}"]}}
        aws("dynamodb", "put-item", "--table-name", name, "--item", json.dumps(item))
    aws("dynamodb", "put-item", "--table-name", name, "--item", json.dumps({"pk": {"S": "user#2"}, "sk": {"N": "1"}}))

    got = cli_json(aws, "get-item", "--table-name", name, "--consistent-read",
                   "--key", json.dumps({"pk": {"S": "user#1"}, "sk": {"N": "3"}}))
    assert got["Item"]["title"] == {"S": "post 3"}
    assert sorted(got["Item"]["tags"]["SS"]) == ["a", "t3"]

    updated = cli_json(aws, "update-item", "--table-name", name,
                       "--key", json.dumps({"pk": {"S": "user#1"}, "sk": {"N": "3"}}),
                       "--update-expression", "SET likes = if_not_exists(likes, :z) + :one",
                       "--expression-attribute-values", json.dumps({":z": {"N": "0"}, ":one": {"N": "1"}}),
                       "--return-values", "UPDATED_NEW")
    assert updated["Attributes"] == {"likes": {"N": "1"}}

    result = cli_json(aws, "query", "--table-name", name,
                      "--key-condition-expression", "pk = :p AND sk BETWEEN :lo AND :hi",
                      "--expression-attribute-values",
                      json.dumps({":p": {"S": "user#1"}, ":lo": {"N": "1"}, ":hi": {"N": "3"}}),
                      "--no-scan-index-forward")
    assert [it["sk"]["N"] for it in result["Items"]] == ["3", "2", "1"]
    assert result["Count"] == 3

    result = cli_json(aws, "query", "--table-name", name, "--key-condition-expression", "pk = :p",
                      "--expression-attribute-values", json.dumps({":p": {"S": "user#1"}}),
                      "--projection-expression", "sk, likes", "--select", "SPECIFIC_ATTRIBUTES")
    assert result["Items"][3] == {"sk": {"N": "3"}, "likes": {"N": "1"}}
    assert result["Items"][0] == {"sk": {"N": "0"}}

    # The CLI follows LastEvaluatedKey itself: --page-size 2 still yields all six items.
    scanned = cli_json(aws, "scan", "--table-name", name, "--page-size", "2")
    assert scanned["Count"] == 6
    assert sorted((it["pk"]["S"], it["sk"]["N"]) for it in scanned["Items"]) == sorted(
        [("user#1", str(i)) for i in range(5)] + [("user#2", "1")])
    filtered = cli_json(aws, "scan", "--table-name", name, "--filter-expression", "contains(tags, :t)",
                        "--expression-attribute-values", json.dumps({":t": {"S": "t4"}}))
    assert [it["sk"]["N"] for it in filtered["Items"]] == ["4"]
    assert filtered["ScannedCount"] == 6


def test_cli_missing_table_error(aws):
    proc = aws("dynamodb", "describe-table", "--table-name", table_name("missing"), check=False)
    assert proc.returncode != 0
    assert "ResourceNotFoundException" in proc.stderr
    assert "Requested resource not found" in proc.stderr


def test_cli_conditional_put_failure(aws, ddb, make_table):
    name, _ = cli_table(aws, ddb, make_table, range_key=False)
    item = json.dumps({"pk": {"S": "once"}})
    aws("dynamodb", "put-item", "--table-name", name, "--item", item,
        "--condition-expression", "attribute_not_exists(pk)")
    proc = aws("dynamodb", "put-item", "--table-name", name, "--item", item,
               "--condition-expression", "attribute_not_exists(pk)", check=False)
    assert proc.returncode != 0
    assert "ConditionalCheckFailedException" in proc.stderr
