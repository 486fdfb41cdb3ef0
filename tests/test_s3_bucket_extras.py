"""The bucket configurations infrastructure tools read on every plan (Terraform's
aws_s3_bucket, CDK): accelerate, request payment, logging, replication, object lock,
policy status. Virga stores them; their defaults are S3's."""
import json

import pytest
from botocore.exceptions import ClientError

from virga_testlib import make_client, unique_name


def _code(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_defaults_of_a_new_bucket(endpoint):
    s3 = make_client(endpoint, "s3")
    b = unique_name()
    s3.create_bucket(Bucket=b)
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=b)
    assert s3.get_bucket_request_payment(Bucket=b)["Payer"] == "BucketOwner"
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=b)
    assert _code(lambda: s3.get_bucket_replication(Bucket=b)) == ("ReplicationConfigurationNotFoundError", 404)
    assert _code(lambda: s3.get_object_lock_configuration(Bucket=b)) == ("ObjectLockConfigurationNotFoundError", 404)
    assert _code(lambda: s3.get_bucket_policy_status(Bucket=b)) == ("NoSuchBucketPolicy", 404)
    assert _code(lambda: s3.get_bucket_request_payment(Bucket=unique_name())) == ("NoSuchBucket", 404)


def test_configurations_round_trip(endpoint):
    s3 = make_client(endpoint, "s3")
    b, target = unique_name(), unique_name()
    s3.create_bucket(Bucket=b)
    s3.create_bucket(Bucket=target)
    s3.put_bucket_accelerate_configuration(Bucket=b, AccelerateConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_accelerate_configuration(Bucket=b)["Status"] == "Enabled"
    s3.put_bucket_request_payment(Bucket=b, RequestPaymentConfiguration={"Payer": "Requester"})
    assert s3.get_bucket_request_payment(Bucket=b)["Payer"] == "Requester"
    s3.put_bucket_logging(Bucket=b, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": target, "TargetPrefix": "logs/"}})
    assert s3.get_bucket_logging(Bucket=b)["LoggingEnabled"] == {"TargetBucket": target, "TargetPrefix": "logs/"}
    rule = {"ID": "all", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{target}"}}
    replication = {"Role": "arn:aws:iam::000000000000:role/replication", "Rules": [rule]}
    assert _code(lambda: s3.put_bucket_replication(Bucket=b, ReplicationConfiguration=replication)) == (
        "InvalidRequest", 400)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=b, ReplicationConfiguration=replication)
    got = s3.get_bucket_replication(Bucket=b)["ReplicationConfiguration"]
    assert got["Role"] == replication["Role"] and got["Rules"][0]["ID"] == "all"
    s3.delete_bucket_replication(Bucket=b)
    assert _code(lambda: s3.get_bucket_replication(Bucket=b))[0] == "ReplicationConfigurationNotFoundError"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
              "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]}
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps(policy))
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"] == {"IsPublic": False}


def test_object_lock_bucket(endpoint):
    s3 = make_client(endpoint, "s3")
    b = unique_name()
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    got = s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
    assert got["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
