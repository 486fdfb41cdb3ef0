"""Lambda's control plane: CreateFunction (zip upload, S3 code, python and node,
the response fields and their defaults), the validation errors, GetFunction /
GetFunctionConfiguration / ListFunctions (paging) / DeleteFunction, code and
configuration updates, tags, versions, aliases, the resource policy, reserved
concurrency, event invoke configs, layers, SQS event source mappings and the
AWS CLI. No function code runs here.

AWS's documented (and recorded) behaviour is the spec: codes, statuses and
messages are asserted exactly where AWS's are known."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from test_lambda_util import (  # noqa: F401  (fixtures)
    ACCOUNT, LAMBDA_TIME_RE, NODE_HANDLER, NODE_RUNTIME, PY_HANDLER, PY_RUNTIME, ROLE, UUID_RE,
    code_sha256, create_function, error_message, fn, function_arn, function_name, lam,
    lam_unchecked, lambda_error, lambda_session_client, layer_arn, layer_zip, list_all_functions,
    make_function, make_queue, node_zip, not_found_message, python_zip, sqs, status_of, strip_meta,
    versions_of, wait_active, wait_esm_gone, wait_esm_state, wait_updated,
)
from virga_testlib import REGION, unique_name, url_fetch


# ---------------------------------------------------------------------------
# CreateFunction
# ---------------------------------------------------------------------------
def test_create_python_function_response_fields(lam):
    name = function_name()
    zip_bytes = python_zip()
    resp = lam.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE,
                               Handler=PY_HANDLER, Code={"ZipFile": zip_bytes})
    assert status_of(resp) == 201
    assert resp["FunctionName"] == name
    assert resp["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert resp["Runtime"] == "python3.12"
    assert resp["Role"] == ROLE
    assert resp["Handler"] == PY_HANDLER
    assert resp["CodeSize"] == len(zip_bytes)
    assert resp["CodeSha256"] == code_sha256(zip_bytes)
    assert resp["Version"] == "$LATEST"
    assert resp["PackageType"] == "Zip"
    assert resp["Timeout"] == 3
    assert resp["MemorySize"] == 128
    assert resp["Architectures"] == ["x86_64"]
    assert resp["EphemeralStorage"] == {"Size": 512}
    assert resp["Description"] == ""
    assert resp["TracingConfig"] == {"Mode": "PassThrough"}
    assert resp["State"] in ("Pending", "Active")
    assert "Environment" not in resp
    assert not resp.get("Layers")

    wait_active(lam, name)
    cfg = lam.get_function(FunctionName=name)["Configuration"]
    assert cfg["State"] == "Active"
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["CodeSha256"] == code_sha256(zip_bytes)
    assert cfg["FunctionArn"] == function_arn(name)


def test_create_returns_revision_id_and_aws_timestamp(lam):
    """RevisionId is a UUID from the start; LastModified is Lambda's
    2019-08-14T22:26:11.234+0000 form (milliseconds, +0000)."""
    name, resp, _ = create_function(lam)
    assert UUID_RE.match(resp["RevisionId"]), resp.get("RevisionId")
    assert LAMBDA_TIME_RE.match(resp["LastModified"]), resp["LastModified"]
    cfg = lam.get_function_configuration(FunctionName=name)
    assert UUID_RE.match(cfg["RevisionId"]), cfg.get("RevisionId")
    assert LAMBDA_TIME_RE.match(cfg["LastModified"]), cfg["LastModified"]


def test_create_nodejs_function(lam):
    zip_bytes = node_zip()
    name, resp, _ = create_function(lam, runtime=NODE_RUNTIME, zip_bytes=zip_bytes)
    assert resp["Runtime"] == "nodejs20.x"
    assert resp["Handler"] == NODE_HANDLER
    assert resp["CodeSha256"] == code_sha256(zip_bytes)
    assert resp["CodeSize"] == len(zip_bytes)
    cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["Runtime"], cfg["Handler"], cfg["State"]) == ("nodejs20.x", NODE_HANDLER, "Active")


def test_create_from_s3_object(lam, s3, bucket):
    zip_bytes = python_zip("def lambda_handler(event, context):\n    return 's3'\n")
    s3.put_object(Bucket=bucket, Key="code/fn.zip", Body=zip_bytes)
    name, resp, _ = create_function(lam, code={"S3Bucket": bucket, "S3Key": "code/fn.zip"})
    assert resp["CodeSha256"] == code_sha256(zip_bytes)
    assert resp["CodeSize"] == len(zip_bytes)
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["CodeSha256"] == code_sha256(zip_bytes)
    assert got["Code"]["RepositoryType"] == "S3"


def test_create_with_configuration(lam):
    name, resp, _ = create_function(
        lam, Description="configured", Timeout=30, MemorySize=256,
        Environment={"Variables": {"STAGE": "test", "EMPTY": ""}},
        EphemeralStorage={"Size": 1024}, Architectures=["arm64"])
    for cfg in (resp, lam.get_function_configuration(FunctionName=name)):
        assert cfg["Description"] == "configured"
        assert cfg["Timeout"] == 30
        assert cfg["MemorySize"] == 256
        assert cfg["Environment"]["Variables"] == {"STAGE": "test", "EMPTY": ""}
        assert cfg["EphemeralStorage"] == {"Size": 1024}
        assert cfg["Architectures"] == ["arm64"]


def test_create_and_publish_returns_version_1(lam):
    """CreateFunction with Publish=True answers Version "1" (with the
    unqualified FunctionArn, as AWS does) and version 1 exists."""
    name, resp, zip_bytes = create_function(lam, Publish=True)
    assert resp["Version"] == "1"
    assert resp["FunctionArn"] == function_arn(name)
    assert versions_of(lam, name) == ["$LATEST", "1"]
    v1 = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert (v1["Version"], v1["FunctionArn"]) == ("1", function_arn(name, "1"))
    assert v1["CodeSha256"] == code_sha256(zip_bytes)
    # ListFunctions lists the function once, unqualified (versions only with FunctionVersion=ALL).
    listed = [f for f in list_all_functions(lam) if f["FunctionName"] == name]
    assert [(f["FunctionArn"], f["Version"]) for f in listed] == [(function_arn(name), "$LATEST")]


# ---------------------------------------------------------------------------
# CreateFunction errors
# ---------------------------------------------------------------------------
def test_create_duplicate_name_conflicts(lam, fn):
    name, _, zip_bytes = fn
    with lambda_error("ResourceConflictException", 409, f"Function already exist: {name}"):
        lam.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE,
                            Handler=PY_HANDLER, Code={"ZipFile": zip_bytes})


def test_missing_function_is_404_with_function_arn(lam):
    name = function_name("missing")
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        lam.get_function(FunctionName=name)
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        lam.get_function_configuration(FunctionName=name)
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        lam.delete_function(FunctionName=name)


def test_missing_version_is_404_with_qualified_arn(lam, fn):
    name = fn[0]
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name, "1221")):
        lam.get_function(FunctionName=name, Qualifier="1221")
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name, "1221")):
        lam.get_function_configuration(FunctionName=name, Qualifier="1221")


def test_create_invalid_runtime(lam):
    with lambda_error("InvalidParameterValueException", 400) as info:
        create_function(lam, runtime="python0.1", wait=False)
    msg = error_message(info.value)
    assert msg.startswith("Value python0.1 at 'runtime' failed to satisfy constraint: "
                          "Member must satisfy enum value set: ["), msg


@pytest.mark.parametrize("field,value,message", [
    ("Timeout", 0, "1 validation error detected: Value '0' at 'timeout' failed to satisfy "
                   "constraint: Member must have value greater than or equal to 1"),
    ("Timeout", 901, "1 validation error detected: Value '901' at 'timeout' failed to satisfy "
                     "constraint: Member must have value less than or equal to 900"),
    ("MemorySize", 127, "1 validation error detected: Value '127' at 'memorySize' failed to "
                        "satisfy constraint: Member must have value greater than or equal to 128"),
    ("MemorySize", 10241, "1 validation error detected: Value '10241' at 'memorySize' failed to "
                          "satisfy constraint: Member must have value less than or equal to 10240"),
])
def test_create_out_of_range_timeout_and_memory(lam_unchecked, lam, field, value, message):
    """Lambda's model constraints (Timeout 1..900, MemorySize 128..10240) are
    checked by the service's validation layer: ValidationException, 400."""
    name = function_name()
    with lambda_error("ValidationException", 400, message):
        lam_unchecked.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE,
                                      Handler=PY_HANDLER, Code={"ZipFile": python_zip()},
                                      **{field: value})
    with lambda_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


def test_update_out_of_range_timeout_is_rejected_and_nothing_changes(lam_unchecked, lam, fn):
    name = fn[0]
    with lambda_error("ValidationException", 400):
        lam_unchecked.update_function_configuration(FunctionName=name, Timeout=901)
    assert lam.get_function_configuration(FunctionName=name)["Timeout"] == 3


def test_create_with_corrupt_zip(lam):
    name = function_name()
    with lambda_error("InvalidParameterValueException", 400,
                      "Could not unzip uploaded file. Please check your file, then try to upload again."):
        lam.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler=PY_HANDLER,
                            Code={"ZipFile": b"this is not a zip archive at all"})
    with lambda_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name)


def test_create_image_package_is_rejected(lam):
    """AWS rejects an image whose ECR repository does not exist; Virga rejects
    image functions altogether. Either way: an error that talks about the image."""
    name = function_name()
    with pytest.raises(ClientError) as info:
        lam.create_function(
            FunctionName=name, Role=ROLE, PackageType="Image",
            Code={"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{unique_name('repo')}:latest"})
    msg = error_message(info.value).lower()
    assert "image" in msg or "not supported" in msg, info.value.response


# ---------------------------------------------------------------------------
# GetFunction / GetFunctionConfiguration / ListFunctions / DeleteFunction
# ---------------------------------------------------------------------------
def test_get_function_code_location(lam, fn):
    name, _, zip_bytes = fn
    got = lam.get_function(FunctionName=name)
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Code"]["Location"].startswith(("http://", "https://")), got["Code"]
    cfg = got["Configuration"]
    assert cfg["FunctionName"] == name
    assert cfg["CodeSize"] == len(zip_bytes)


@pytest.mark.virga_only
def test_get_function_code_location_serves_the_zip(lam, fn):
    name, _, zip_bytes = fn
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    resp = url_fetch(location)
    assert resp.status == 200, (resp.status, resp.body[:200])
    assert resp.body == zip_bytes


def test_get_function_configuration_matches_get_function(lam, fn):
    name = fn[0]
    cfg = strip_meta(lam.get_function_configuration(FunctionName=name))
    from_get = lam.get_function(FunctionName=name)["Configuration"]
    assert cfg == from_get


def test_get_function_by_arn_and_partial_arn(lam, fn):
    name = fn[0]
    for ref in (function_arn(name), f"{ACCOUNT}:function:{name}"):
        assert lam.get_function(FunctionName=ref)["Configuration"]["FunctionName"] == name


def test_list_functions_pages_with_max_items_and_marker(lam):
    prefix = unique_name("page")
    names = {create_function(lam, name=f"{prefix}-{i}", wait=False)[0] for i in range(5)}
    seen, marker, pages = [], None, 0
    while True:
        kwargs = {"MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        resp = lam.list_functions(**kwargs)
        pages += 1
        assert len(resp["Functions"]) <= 2
        seen += [f["FunctionName"] for f in resp["Functions"]]
        marker = resp.get("NextMarker")
        if not marker:
            break
        assert pages < 1000
    assert len(seen) == len(set(seen)), "a function came back on two pages"
    assert names <= set(seen)
    assert pages >= 3
    ours = [f for f in list_all_functions(lam) if f["FunctionName"] in names]
    assert sorted(f["FunctionArn"] for f in ours) == sorted(function_arn(n) for n in names)
    assert {f["Version"] for f in ours} == {"$LATEST"}


def test_delete_function_then_404(lam, fn):
    name = fn[0]
    resp = lam.delete_function(FunctionName=name)
    assert status_of(resp) == 204
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        lam.get_function(FunctionName=name)
    assert name not in {f["FunctionName"] for f in list_all_functions(lam)}
    # The name is free again.
    create_function(lam, name=name)
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active"


# ---------------------------------------------------------------------------
# UpdateFunctionCode / UpdateFunctionConfiguration
# ---------------------------------------------------------------------------
def test_update_function_code(lam, fn):
    name, _, old_zip = fn
    before = lam.get_function_configuration(FunctionName=name)
    new_zip = python_zip("def lambda_handler(event, context):\n    return 'v2'\n")
    assert code_sha256(new_zip) != code_sha256(old_zip)
    resp = lam.update_function_code(FunctionName=name, ZipFile=new_zip)
    assert status_of(resp) == 200
    assert resp["CodeSha256"] == code_sha256(new_zip)
    assert resp["CodeSize"] == len(new_zip)
    assert resp["Version"] == "$LATEST"
    assert resp["RevisionId"] != before["RevisionId"]
    wait_updated(lam, name)
    cfg = lam.get_function(FunctionName=name)["Configuration"]
    assert cfg["CodeSha256"] == code_sha256(new_zip)
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["RevisionId"] != before["RevisionId"]


def test_update_function_code_from_s3(lam, fn, s3, bucket):
    name = fn[0]
    new_zip = python_zip("def lambda_handler(event, context):\n    return 'from s3'\n")
    s3.put_object(Bucket=bucket, Key="v2.zip", Body=new_zip)
    resp = lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="v2.zip")
    assert resp["CodeSha256"] == code_sha256(new_zip)
    wait_updated(lam, name)
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == code_sha256(new_zip)


def test_update_function_code_with_publish(lam, fn):
    name = fn[0]
    new_zip = python_zip("def lambda_handler(event, context):\n    return 'published'\n")
    resp = lam.update_function_code(FunctionName=name, ZipFile=new_zip, Publish=True)
    assert resp["Version"] == "1"
    assert resp["FunctionArn"] == function_arn(name, "1")
    assert resp["CodeSha256"] == code_sha256(new_zip)
    wait_updated(lam, name)
    v1 = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert v1["CodeSha256"] == code_sha256(new_zip)
    assert versions_of(lam, name) == ["$LATEST", "1"]


def test_update_function_configuration(lam, fn):
    name = fn[0]
    before = lam.get_function_configuration(FunctionName=name)
    resp = lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"VAR_A": "1", "VAR_B": "two"}}, Timeout=42,
        MemorySize=512, Handler="lambda_function.other_handler", Description="updated")
    assert status_of(resp) == 200
    assert resp["Environment"]["Variables"] == {"VAR_A": "1", "VAR_B": "two"}
    assert (resp["Timeout"], resp["MemorySize"]) == (42, 512)
    assert resp["Handler"] == "lambda_function.other_handler"
    assert resp["Description"] == "updated"
    assert resp["RevisionId"] != before["RevisionId"]
    assert resp["CodeSha256"] == before["CodeSha256"]
    wait_updated(lam, name)
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["Environment"]["Variables"] == {"VAR_A": "1", "VAR_B": "two"}
    assert (cfg["Timeout"], cfg["MemorySize"], cfg["Description"]) == (42, 512, "updated")
    assert cfg["Handler"] == "lambda_function.other_handler"
    # Fields left out keep their values.
    lam.update_function_configuration(FunctionName=name, Timeout=7)
    wait_updated(lam, name)
    cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["Timeout"], cfg["MemorySize"], cfg["Description"]) == (7, 512, "updated")
    assert cfg["Environment"]["Variables"] == {"VAR_A": "1", "VAR_B": "two"}


def test_update_missing_function_is_404(lam):
    name = function_name("missing")
    with lambda_error("ResourceNotFoundException", 404):
        lam.update_function_code(FunctionName=name, ZipFile=python_zip())
    with lambda_error("ResourceNotFoundException", 404):
        lam.update_function_configuration(FunctionName=name, Timeout=10)


# ---------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------
def test_tags_at_create(lam):
    tags = {"team": "virga", "env": "test"}
    name = create_function(lam, Tags=tags)[0]
    assert lam.list_tags(Resource=function_arn(name))["Tags"] == tags
    assert lam.get_function(FunctionName=name)["Tags"] == tags


def test_tag_untag_list(lam, fn):
    arn = function_arn(fn[0])
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    resp = lam.tag_resource(Resource=arn, Tags={"a": "1", "b": "2", "c": "3"})
    assert status_of(resp) == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2", "c": "3"}
    lam.tag_resource(Resource=arn, Tags={"c": "33", "d": "4"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2", "c": "33", "d": "4"}
    resp = lam.untag_resource(Resource=arn, TagKeys=["a", "nope"])
    assert status_of(resp) == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "2", "c": "33", "d": "4"}
    lam.untag_resource(Resource=arn, TagKeys=["b", "c", "d"])
    assert lam.list_tags(Resource=arn)["Tags"] == {}


def test_tags_on_missing_function(lam):
    arn = function_arn(function_name("missing"))
    with lambda_error("ResourceNotFoundException", 404, f"Function not found: {arn}"):
        lam.tag_resource(Resource=arn, Tags={"a": "1"})
    with lambda_error("ResourceNotFoundException", 404):
        lam.list_tags(Resource=arn)


# ---------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------
def test_publish_versions(lam, fn):
    name, _, zip_bytes = fn
    v1 = lam.publish_version(FunctionName=name, Description="first")
    assert status_of(v1) == 201
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == function_arn(name, "1")
    assert v1["Description"] == "first"
    assert v1["CodeSha256"] == code_sha256(zip_bytes)

    # Nothing changed since version 1: AWS hands back version 1 again.
    again = lam.publish_version(FunctionName=name)
    assert again["Version"] == "1"
    assert again["FunctionArn"] == function_arn(name, "1")

    lam.update_function_configuration(FunctionName=name, Description="second", Timeout=9)
    wait_updated(lam, name)
    v2 = lam.publish_version(FunctionName=name)
    assert v2["Version"] == "2"
    assert v2["FunctionArn"] == function_arn(name, "2")
    assert v2["Description"] == "second"
    assert v2["Timeout"] == 9

    assert versions_of(lam, name) == ["$LATEST", "1", "2"]
    listed = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["FunctionArn"] for v in listed] == [
        function_arn(name, "$LATEST"), function_arn(name, "1"), function_arn(name, "2")]

    # A published version keeps the configuration it was published with.
    got1 = lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]
    assert (got1["Version"], got1["FunctionArn"]) == ("1", function_arn(name, "1"))
    assert (got1["Description"], got1["Timeout"]) == ("first", 3)
    got2 = lam.get_function_configuration(FunctionName=name, Qualifier="2")
    assert (got2["Description"], got2["Timeout"]) == ("second", 9)
    latest = lam.get_function(FunctionName=name, Qualifier="$LATEST")["Configuration"]
    assert latest["FunctionArn"] == function_arn(name, "$LATEST")
    assert latest["Version"] == "$LATEST"


def test_publish_after_code_change_makes_a_new_version(lam, fn):
    name = fn[0]
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    new_zip = python_zip("def lambda_handler(event, context):\n    return 2\n")
    lam.update_function_code(FunctionName=name, ZipFile=new_zip)
    wait_updated(lam, name)
    v2 = lam.publish_version(FunctionName=name)
    assert v2["Version"] == "2"
    assert v2["CodeSha256"] == code_sha256(new_zip)
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1")["CodeSha256"] != \
        code_sha256(new_zip)


def test_publish_version_with_stale_code_sha256(lam, fn):
    name, _, zip_bytes = fn
    with lambda_error("InvalidParameterValueException", 400,
                      f"CodeSHA256 (bogus) is different from current CodeSHA256 in $LATEST "
                      f"({code_sha256(zip_bytes)}). Please try again with the CodeSHA256 in $LATEST."):
        lam.publish_version(FunctionName=name, CodeSha256="bogus")
    assert versions_of(lam, name) == ["$LATEST"]
    assert lam.publish_version(FunctionName=name, CodeSha256=code_sha256(zip_bytes))["Version"] == "1"


def test_qualified_arn_addresses_a_version(lam, fn):
    name = fn[0]
    lam.publish_version(FunctionName=name)
    got = lam.get_function(FunctionName=function_arn(name, "1"))["Configuration"]
    assert (got["Version"], got["FunctionArn"]) == ("1", function_arn(name, "1"))
    got = lam.get_function_configuration(FunctionName=f"{name}:1")
    assert got["Version"] == "1"
    with lambda_error("InvalidParameterValueException", 400,
                      "The derived qualifier from the function name does not match the specified qualifier."):
        lam.get_function(FunctionName=function_arn(name, "1"), Qualifier="$LATEST")


def test_delete_version(lam, fn):
    name = fn[0]
    lam.publish_version(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, Description="v2")
    wait_updated(lam, name)
    lam.publish_version(FunctionName=name)
    resp = lam.delete_function(FunctionName=name, Qualifier="1")
    assert status_of(resp) == 204
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name, "1")):
        lam.get_function(FunctionName=name, Qualifier="1")
    assert versions_of(lam, name) == ["$LATEST", "2"]
    assert lam.get_function(FunctionName=name)["Configuration"]["Version"] == "$LATEST"
    # Version numbers are never reused.
    lam.update_function_configuration(FunctionName=name, Description="v3")
    wait_updated(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "3"


def test_delete_latest_qualifier_is_rejected(lam, fn):
    name = fn[0]
    with lambda_error("InvalidParameterValueException", 400,
                      "$LATEST version cannot be deleted without deleting the function."):
        lam.delete_function(FunctionName=name, Qualifier="$LATEST")
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active"


def test_delete_function_removes_its_versions(lam, fn):
    name = fn[0]
    lam.publish_version(FunctionName=name)
    lam.delete_function(FunctionName=name)
    with lambda_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=name, Qualifier="1")
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        lam.list_versions_by_function(FunctionName=name)


# ---------------------------------------------------------------------------
# Aliases
# ---------------------------------------------------------------------------
def publish_two_versions(lam, name):
    lam.publish_version(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, Description="two")
    wait_updated(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"


def test_alias_lifecycle(lam, fn):
    name = fn[0]
    publish_two_versions(lam, name)
    created = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                               Description="primary",
                               RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    assert status_of(created) == 201
    assert created["AliasArn"] == function_arn(name, "live")
    assert created["Name"] == "live"
    assert created["FunctionVersion"] == "1"
    assert created["Description"] == "primary"
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    assert UUID_RE.match(created["RevisionId"])
    assert strip_meta(lam.get_alias(FunctionName=name, Name="live")) == strip_meta(created)

    # GetFunction through the alias: version 1's configuration, the alias ARN.
    via_alias = lam.get_function(FunctionName=name, Qualifier="live")["Configuration"]
    assert via_alias["Version"] == "1"
    assert via_alias["FunctionArn"] == function_arn(name, "live")

    lam.create_alias(FunctionName=name, Name="beta", FunctionVersion="2")
    updated = lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                               Description="moved",
                               RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    assert status_of(updated) == 200
    assert (updated["FunctionVersion"], updated["Description"]) == ("2", "moved")
    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.5}}
    assert updated["RevisionId"] != created["RevisionId"]

    aliases = {a["Name"]: a for a in lam.list_aliases(FunctionName=name)["Aliases"]}
    assert set(aliases) == {"live", "beta"}
    assert aliases["live"]["FunctionVersion"] == "2"
    assert aliases["beta"]["AliasArn"] == function_arn(name, "beta")
    on_2 = {a["Name"] for a in lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]}
    assert on_2 == {"live", "beta"}

    resp = lam.delete_alias(FunctionName=name, Name="live")
    assert status_of(resp) == 204
    with lambda_error("ResourceNotFoundException", 404,
                      f"Cannot find alias arn: {function_arn(name, 'live')}"):
        lam.get_alias(FunctionName=name, Name="live")
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["beta"]


def test_alias_errors(lam, fn):
    name = fn[0]
    lam.publish_version(FunctionName=name)
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name, "10")):
        lam.create_alias(FunctionName=name, Name="ghost", FunctionVersion="10")
    with lambda_error("InvalidParameterValueException", 400,
                      "Invalid function version 1. Function version 1 is already included in "
                      "routing configuration."):
        lam.create_alias(FunctionName=name, Name="self", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with lambda_error("ResourceConflictException", 409,
                      f"Alias already exists: {function_arn(name, 'live')}"):
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with lambda_error("ResourceNotFoundException", 404):
        lam.create_alias(FunctionName=function_name("missing"), Name="live", FunctionVersion="1")
    with lambda_error("ResourceNotFoundException", 404):
        lam.update_alias(FunctionName=name, Name="nope", FunctionVersion="1")


# ---------------------------------------------------------------------------
# Resource policy
# ---------------------------------------------------------------------------
def s3_statement(name, sid="s3", bucket="arn:aws:s3:::some-bucket"):
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": function_arn(name),
        "Condition": {"ArnLike": {"AWS:SourceArn": bucket}},
    }


def test_add_permission_and_get_policy(lam, fn):
    name = fn[0]
    resp = lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                              Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::some-bucket")
    assert status_of(resp) == 201
    assert json.loads(resp["Statement"]) == s3_statement(name)

    got = lam.get_policy(FunctionName=name)
    policy = json.loads(got["Policy"])
    assert policy == {"Version": "2012-10-17", "Id": "default", "Statement": [s3_statement(name)]}
    assert UUID_RE.match(got["RevisionId"])


def test_add_permission_duplicate_sid_conflicts(lam, fn):
    name = fn[0]
    lam.add_permission(FunctionName=name, StatementId="dup", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com")
    with lambda_error("ResourceConflictException", 409,
                      "The statement id (dup) provided already exists. Please provide a new "
                      "statement id, or remove the existing statement."):
        lam.add_permission(FunctionName=name, StatementId="dup", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com")


def test_remove_permission(lam, fn):
    name = fn[0]
    lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::some-bucket")
    lam.add_permission(FunctionName=name, StatementId="sns", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com")
    sids = [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]]
    assert sids == ["s3", "sns"]

    resp = lam.remove_permission(FunctionName=name, StatementId="sns")
    assert status_of(resp) == 204
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert policy["Statement"] == [s3_statement(name)]

    with lambda_error("ResourceNotFoundException", 404,
                      "Statement nope is not found in resource policy."):
        lam.remove_permission(FunctionName=name, StatementId="nope")

    lam.remove_permission(FunctionName=name, StatementId="s3")
    with lambda_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=name)


def test_get_policy_without_policy(lam, fn):
    with lambda_error("ResourceNotFoundException", 404):
        lam.get_policy(FunctionName=fn[0])


def test_permission_on_missing_function(lam):
    name = function_name("missing")
    with lambda_error("ResourceNotFoundException", 404):
        lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com")


# ---------------------------------------------------------------------------
# Reserved concurrency
# ---------------------------------------------------------------------------
def test_function_concurrency(lam, fn):
    name = fn[0]
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    resp = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    assert status_of(resp) == 200
    assert resp["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 5}

    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0

    resp = lam.delete_function_concurrency(FunctionName=name)
    assert status_of(resp) == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    got = lam.get_function(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in got.get("Concurrency", {})


def test_function_concurrency_on_missing_function(lam):
    name = function_name("missing")
    with lambda_error("ResourceNotFoundException", 404):
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with lambda_error("ResourceNotFoundException", 404, not_found_message(name)):
        lam.get_function_concurrency(FunctionName=name)


# ---------------------------------------------------------------------------
# Event invoke config
# ---------------------------------------------------------------------------
def test_event_invoke_config_lifecycle(lam, fn, make_queue):
    name = fn[0]
    _, ok_queue = make_queue()
    _, failed_queue = make_queue()
    destinations = {"OnSuccess": {"Destination": ok_queue},
                    "OnFailure": {"Destination": failed_queue}}
    put = lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=3600,
        DestinationConfig=destinations)
    assert status_of(put) == 200
    assert put["FunctionArn"] == function_arn(name, "$LATEST")
    assert put["MaximumRetryAttempts"] == 1
    assert put["MaximumEventAgeInSeconds"] == 3600
    assert put["DestinationConfig"] == destinations
    assert hasattr(put["LastModified"], "year")

    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert strip_meta(got) == strip_meta(put)

    # Update changes only what it is given.
    upd = lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert upd["MaximumRetryAttempts"] == 0
    assert upd["MaximumEventAgeInSeconds"] == 3600
    assert upd["DestinationConfig"] == destinations

    # Put replaces the whole configuration: what is left out is gone.
    put2 = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2)
    assert put2["MaximumRetryAttempts"] == 2
    assert "MaximumEventAgeInSeconds" not in put2
    dest = put2.get("DestinationConfig", {})
    assert "Destination" not in dest.get("OnSuccess", {})
    assert "Destination" not in dest.get("OnFailure", {})

    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [function_arn(name, "$LATEST")]

    resp = lam.delete_function_event_invoke_config(FunctionName=name)
    assert status_of(resp) == 204
    with lambda_error("ResourceNotFoundException", 404,
                      f"The function {function_arn(name, '$LATEST')} doesn't have an EventInvokeConfig"):
        lam.get_function_event_invoke_config(FunctionName=name)


def test_event_invoke_config_on_missing_function(lam):
    name = function_name("missing")
    with lambda_error("ResourceNotFoundException", 404, "The function doesn't exist."):
        lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    with lambda_error("ResourceNotFoundException", 404,
                      f"The function {function_arn(name, '$LATEST')} doesn't have an EventInvokeConfig"):
        lam.get_function_event_invoke_config(FunctionName=name)


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------
def test_layer_versions_lifecycle(lam):
    name = unique_name("layer")
    z1 = layer_zip("v1")
    pub = lam.publish_layer_version(LayerName=name, Description="helpers",
                                    Content={"ZipFile": z1}, CompatibleRuntimes=[PY_RUNTIME])
    assert status_of(pub) == 201
    assert pub["LayerArn"] == layer_arn(name)
    assert pub["LayerVersionArn"] == layer_arn(name, 1)
    assert pub["Version"] == 1
    assert pub["Description"] == "helpers"
    assert pub["CompatibleRuntimes"] == [PY_RUNTIME]
    assert pub["Content"]["CodeSha256"] == code_sha256(z1)
    assert pub["Content"]["CodeSize"] == len(z1)
    assert pub["Content"]["Location"].startswith(("http://", "https://"))
    assert LAMBDA_TIME_RE.match(pub["CreatedDate"]), pub["CreatedDate"]

    got = lam.get_layer_version(LayerName=name, VersionNumber=1)
    assert got["LayerVersionArn"] == layer_arn(name, 1)
    assert got["Content"]["CodeSha256"] == code_sha256(z1)
    assert got["CompatibleRuntimes"] == [PY_RUNTIME]
    by_arn = lam.get_layer_version_by_arn(Arn=layer_arn(name, 1))
    assert by_arn["LayerVersionArn"] == layer_arn(name, 1)
    assert by_arn["Version"] == 1
    assert by_arn["Content"]["CodeSize"] == len(z1)

    z2 = layer_zip("v2")
    pub2 = lam.publish_layer_version(LayerName=name, Content={"ZipFile": z2},
                                     CompatibleRuntimes=[PY_RUNTIME])
    assert (pub2["Version"], pub2["LayerVersionArn"]) == (2, layer_arn(name, 2))

    versions = lam.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [v["Version"] for v in versions] == [2, 1]
    assert [v["LayerVersionArn"] for v in versions] == [layer_arn(name, 2), layer_arn(name, 1)]

    layers = {l["LayerName"]: l for l in lam.list_layers()["Layers"]}
    assert name in layers
    assert layers[name]["LayerArn"] == layer_arn(name)
    assert layers[name]["LatestMatchingVersion"]["Version"] == 2
    assert layers[name]["LatestMatchingVersion"]["LayerVersionArn"] == layer_arn(name, 2)
    py = {l["LayerName"] for l in lam.list_layers(CompatibleRuntime=PY_RUNTIME)["Layers"]}
    assert name in py
    node = {l["LayerName"] for l in lam.list_layers(CompatibleRuntime=NODE_RUNTIME)["Layers"]}
    assert name not in node

    resp = lam.delete_layer_version(LayerName=name, VersionNumber=1)
    assert status_of(resp) == 204
    with lambda_error("ResourceNotFoundException", 404, "The resource you requested does not exist."):
        lam.get_layer_version(LayerName=name, VersionNumber=1)
    with lambda_error("ResourceNotFoundException", 404):
        lam.get_layer_version_by_arn(Arn=layer_arn(name, 1))
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=name)["LayerVersions"]] == [2]
    # Deleting a version that is already gone is not an error.
    assert status_of(lam.delete_layer_version(LayerName=name, VersionNumber=1)) == 204


def test_function_with_layers(lam):
    name = unique_name("layer")
    z = layer_zip()
    lv = lam.publish_layer_version(LayerName=name, Content={"ZipFile": z},
                                   CompatibleRuntimes=[PY_RUNTIME])["LayerVersionArn"]
    fname, resp, _ = create_function(lam, Layers=[lv])
    assert resp["Layers"] == [{"Arn": lv, "CodeSize": len(z)}]
    cfg = lam.get_function(FunctionName=fname)["Configuration"]
    assert cfg["Layers"] == [{"Arn": lv, "CodeSize": len(z)}]

    lam.update_function_configuration(FunctionName=fname, Layers=[])
    wait_updated(lam, fname)
    assert not lam.get_function_configuration(FunctionName=fname).get("Layers")


def test_missing_layer_version(lam):
    name = unique_name("layer")
    with lambda_error("ResourceNotFoundException", 404, "The resource you requested does not exist."):
        lam.get_layer_version(LayerName=name, VersionNumber=1)
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []


# ---------------------------------------------------------------------------
# Event source mappings (SQS)
# ---------------------------------------------------------------------------
def test_event_source_mapping_sqs_lifecycle(lam, fn, make_queue):
    name = fn[0]
    _, queue_arn = make_queue()
    created = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name,
                                              BatchSize=5, Enabled=False)
    assert status_of(created) == 202
    uuid = created["UUID"]
    assert UUID_RE.match(uuid), uuid
    assert created["BatchSize"] == 5
    assert created["EventSourceArn"] == queue_arn
    assert created["FunctionArn"] == function_arn(name)
    assert created["State"] == "Creating"
    assert created["EventSourceMappingArn"] == \
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"
    assert hasattr(created["LastModified"], "year")

    got = wait_esm_state(lam, uuid, {"Disabled", "Enabled"})
    assert got["State"] == "Disabled"
    assert (got["UUID"], got["BatchSize"], got["EventSourceArn"]) == (uuid, 5, queue_arn)

    by_fn = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert [m["UUID"] for m in by_fn] == [uuid]
    by_src = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert [m["UUID"] for m in by_src] == [uuid]
    assert by_src[0]["FunctionArn"] == function_arn(name)

    upd = lam.update_event_source_mapping(UUID=uuid, BatchSize=7, Enabled=True)
    assert status_of(upd) == 202
    assert upd["BatchSize"] == 7
    assert upd["State"] in ("Updating", "Enabling", "Enabled")
    got = wait_esm_state(lam, uuid, {"Enabled", "Disabled"})
    assert got["State"] == "Enabled"
    assert got["BatchSize"] == 7

    # The answer shows the transition under way (Disabling), the mapping then settles.
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] in ("Disabling", "Disabled")
    assert wait_esm_state(lam, uuid, {"Disabled", "Enabled"})["State"] == "Disabled"

    deleted = lam.delete_event_source_mapping(UUID=uuid)
    assert status_of(deleted) == 202
    assert deleted["UUID"] == uuid
    assert deleted["State"] == "Deleting"
    wait_esm_gone(lam, uuid)
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []


def test_event_source_mapping_enabled_by_default(lam, fn, make_queue):
    name = fn[0]
    _, queue_arn = make_queue()
    created = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name)
    assert created["BatchSize"] == 10
    assert wait_esm_state(lam, created["UUID"], {"Enabled", "Disabled"})["State"] == "Enabled"
    lam.delete_event_source_mapping(UUID=created["UUID"])
    wait_esm_gone(lam, created["UUID"])


def test_event_source_mapping_for_missing_function(lam, make_queue):
    """AWS answers a mapping to a function that does not exist with
    InvalidParameterValueException ("Function does not exist"), not 404."""
    _, queue_arn = make_queue()
    with lambda_error("InvalidParameterValueException", 400) as info:
        lam.create_event_source_mapping(EventSourceArn=queue_arn,
                                        FunctionName=function_name("missing"))
    assert "function" in error_message(info.value).lower()
    assert lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"] == []


def test_event_source_mapping_unknown_uuid(lam):
    uuid = "a1b2c3d4-5678-90ab-cdef-000000000000"
    with lambda_error("ResourceNotFoundException", 404, "The resource you requested does not exist."):
        lam.get_event_source_mapping(UUID=uuid)
    with lambda_error("ResourceNotFoundException", 404):
        lam.delete_event_source_mapping(UUID=uuid)
    with lambda_error("ResourceNotFoundException", 404):
        lam.update_event_source_mapping(UUID=uuid, BatchSize=1)


# ---------------------------------------------------------------------------
# AWS CLI
# ---------------------------------------------------------------------------
def cli_json(aws, *args):
    return json.loads(aws("lambda", *args, "--output", "json").stdout)


def test_cli_create_list_get_delete(aws, lam, tmp_path):
    name = function_name("cli")
    zip_bytes = python_zip()
    path = tmp_path / "function.zip"
    path.write_bytes(zip_bytes)
    created = cli_json(aws, "create-function", "--function-name", name, "--runtime", PY_RUNTIME,
                       "--role", ROLE, "--handler", PY_HANDLER, "--zip-file", f"fileb://{path}",
                       "--environment", "Variables={MODE=cli}")
    assert created["FunctionArn"] == function_arn(name)
    assert created["CodeSha256"] == code_sha256(zip_bytes)
    aws("lambda", "wait", "function-active-v2", "--function-name", name)

    listed = cli_json(aws, "list-functions")["Functions"]
    assert name in {f["FunctionName"] for f in listed}

    got = cli_json(aws, "get-function", "--function-name", name)
    assert got["Configuration"]["CodeSha256"] == code_sha256(zip_bytes)
    assert got["Configuration"]["Environment"]["Variables"] == {"MODE": "cli"}
    assert got["Configuration"]["State"] == "Active"
    assert got["Code"]["RepositoryType"] == "S3"

    aws("lambda", "delete-function", "--function-name", name)
    proc = aws("lambda", "get-function", "--function-name", name, check=False)
    assert proc.returncode != 0
    assert "ResourceNotFoundException" in proc.stderr, proc.stderr
