"""Durability: state survives a restart on the same data dir, and every write
acknowledged with a 2xx survives `kill -9` (with no torn objects)."""
import hashlib
import json
import os
import random
import threading
import time

from virga_testlib import expect_error, make_client, multipart_etag, quoted_etag, unique_name

MiB = 1024 * 1024


def test_restart_keeps_buckets_objects_and_configuration(start_server, tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir=data_dir)
    s3 = server.client()

    plain, versioned = unique_name(), unique_name()
    s3.create_bucket(Bucket=plain)
    s3.create_bucket(Bucket=versioned, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    created = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}

    objects = {f"obj/{i:03d}": os.urandom(random.Random(i).randint(0, 200_000)) for i in range(25)}
    for key, body in objects.items():
        s3.put_object(Bucket=plain, Key=key, Body=body)
    s3.put_object(Bucket=plain, Key="meta", Body=b"m", ContentType="text/x-meta",
                  Metadata={"owner": "durability"}, Tagging="tier=gold")
    s3.put_bucket_tagging(Bucket=plain, Tagging={"TagSet": [{"Key": "team", "Value": "storage"}]})
    cors = [{"AllowedOrigins": ["http://example.com"], "AllowedMethods": ["GET"]}]
    s3.put_bucket_cors(Bucket=plain, CORSConfiguration={"CORSRules": cors})
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{plain}/locked/*"}]}
    s3.put_bucket_policy(Bucket=plain, Policy=json.dumps(policy))

    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    upload_id = s3.create_multipart_upload(Bucket=plain, Key="multi")["UploadId"]
    done = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=plain, Key="multi", UploadId=upload_id,
                                                      PartNumber=n, Body=p)["ETag"]}
            for n, p in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket=plain, Key="multi", UploadId=upload_id,
                                 MultipartUpload={"Parts": done})
    pending = s3.create_multipart_upload(Bucket=plain, Key="pending")["UploadId"]
    s3.upload_part(Bucket=plain, Key="pending", UploadId=pending, PartNumber=1, Body=b"half done")

    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=versioned, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=versioned, Key="doc", Body=b"two")["VersionId"]
    marker = s3.delete_object(Bucket=versioned, Key="doc")["VersionId"]

    s3.delete_object(Bucket=plain, Key="obj/000")
    del objects["obj/000"]

    server.restart()  # graceful stop, same data dir, new port
    s3 = server.client()

    assert {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]} == created
    assert s3.get_bucket_location(Bucket=versioned)["LocationConstraint"] == "eu-west-1"
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=plain, Prefix="obj/")["Contents"]]
    assert listed == sorted(objects)
    for key, body in objects.items():
        got = s3.get_object(Bucket=plain, Key=key)
        assert got["Body"].read() == body, key
        assert got["ETag"] == quoted_etag(body)
    meta = s3.get_object(Bucket=plain, Key="meta")
    assert meta["ContentType"] == "text/x-meta"
    assert meta["Metadata"] == {"owner": "durability"}
    assert s3.get_object_tagging(Bucket=plain, Key="meta")["TagSet"] == [{"Key": "tier", "Value": "gold"}]
    assert s3.get_bucket_tagging(Bucket=plain)["TagSet"] == [{"Key": "team", "Value": "storage"}]
    assert s3.get_bucket_cors(Bucket=plain)["CORSRules"] == cors
    assert json.loads(s3.get_bucket_policy(Bucket=plain)["Policy"]) == policy

    multi = s3.get_object(Bucket=plain, Key="multi")
    assert multi["ETag"] == multipart_etag(parts)
    assert multi["Body"].read() == b"".join(parts)
    uploads = s3.list_multipart_uploads(Bucket=plain)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("pending", pending)]
    assert [p["Size"] for p in s3.list_parts(Bucket=plain, Key="pending", UploadId=pending)["Parts"]] == [9]

    assert s3.get_bucket_versioning(Bucket=versioned)["Status"] == "Enabled"
    listing = s3.list_object_versions(Bucket=versioned)
    assert [v["VersionId"] for v in listing["Versions"]] == [v2, v1]
    assert [m["VersionId"] for m in listing["DeleteMarkers"]] == [marker]
    assert s3.get_object(Bucket=versioned, Key="doc", VersionId=v1)["Body"].read() == b"one"
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=versioned, Key="doc")
    with expect_error("NoSuchKey", 404):
        s3.get_object(Bucket=plain, Key="obj/000")

    # And it keeps working normally.
    s3.put_object(Bucket=plain, Key="after-restart", Body=b"new")
    assert s3.get_object(Bucket=plain, Key="after-restart")["Body"].read() == b"new"


def test_ephemeral_server_forgets_on_restart(start_server):
    server = start_server(ephemeral=True)
    s3 = server.client()
    s3.create_bucket(Bucket=unique_name())
    assert len(s3.list_buckets()["Buckets"]) == 1
    server.restart()
    assert server.client().list_buckets()["Buckets"] == []


def test_two_data_dirs_are_independent(start_server, tmp_path):
    a = start_server(data_dir=tmp_path / "a")
    b = start_server(data_dir=tmp_path / "b")
    name = unique_name()
    a.client().create_bucket(Bucket=name)
    assert b.client().list_buckets()["Buckets"] == []
    with expect_error("404", 404):
        b.client().head_bucket(Bucket=name)


def test_kill_9_under_load_loses_no_acknowledged_write(start_server, tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir=data_dir)
    bucket = unique_name()
    server.client().create_bucket(Bucket=bucket)

    lock = threading.Lock()
    attempted = {}      # key -> sha256 of the body a PUT tried to store
    acknowledged = {}   # key -> sha256, PUT answered 200 with the right ETag
    deleted = set()     # keys whose DELETE was answered 204
    in_doubt = set()    # keys whose DELETE was in flight at the crash
    stop = threading.Event()
    errors = []

    killed = threading.Event()

    def call(fn, **kwargs):
        """Runs one request; None if it failed because of the crash."""
        try:
            return fn(**kwargs)
        except Exception as exc:
            if not killed.is_set():
                errors.append(f"{fn.__name__} failed before the crash: {exc!r}")
            return None

    def worker(n):
        rnd = random.Random(n)
        client = make_client(server.endpoint, connect_timeout=2, read_timeout=10)
        i = 0
        while not stop.is_set() and not errors and i < 3000:
            key = f"w{n}/obj-{i:05d}"
            i += 1
            size = rnd.choice([0, 1, 100, 4096, 65_536, 300_000, 1_100_000])
            body = rnd.randbytes(size)
            digest = hashlib.sha256(body).hexdigest()
            with lock:
                attempted[key] = digest
            resp = call(client.put_object, Bucket=bucket, Key=key, Body=body)
            if resp is None:
                return
            if resp.get("ETag") != quoted_etag(body):
                errors.append(f"{key}: PUT answered ETag {resp.get('ETag')!r}")
                return
            with lock:
                acknowledged[key] = digest
            if i % 7 == 0:  # delete some of what was written
                with lock:
                    acknowledged.pop(key)
                    in_doubt.add(key)
                if call(client.delete_object, Bucket=bucket, Key=key) is None:
                    return
                with lock:
                    in_doubt.discard(key)
                    deleted.add(key)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= 300:
                break
        time.sleep(0.02)
    killed.set()
    server.kill()  # SIGKILL while the writers are mid-request
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    with lock:
        acked = dict(acknowledged)
        gone = set(deleted)
        tried = dict(attempted)
    assert len(acked) >= 100, f"only {len(acked)} writes were acknowledged before the crash"

    server.start()  # same data dir
    s3 = server.client()
    for key, digest in acked.items():
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # pragma: no cover - reported below
            raise AssertionError(f"acknowledged object {key} lost after kill -9: {exc}")
        assert hashlib.sha256(body).hexdigest() == digest, f"{key} differs after kill -9"
    for key in gone:
        with expect_error("NoSuchKey", 404):
            s3.get_object(Bucket=bucket, Key=key)

    # Whatever else is listed must be a complete copy of a body that was
    # sent: a PUT in flight at the crash may or may not have landed, but
    # never half of it.
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert set(acked) <= set(listed)
    assert not (set(listed) & gone)
    for key in set(listed) - set(acked):
        assert key in tried, key
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == tried[key], f"torn object {key}"

    # The store is healthy after recovery.
    s3.put_object(Bucket=bucket, Key="after-crash", Body=b"alive")
    assert s3.get_object(Bucket=bucket, Key="after-crash")["Body"].read() == b"alive"


def test_kill_9_right_after_writes(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "data")
    s3 = server.client()
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"first")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"second")["VersionId"]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    server.kill()
    server.start()
    s3 = server.client()
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="k")["Versions"]] == [v2, v1]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part"


def test_sync_full_concurrent_writes_survive_kill_9(start_server, tmp_path):
    # --sync full group-commits the WAL; concurrent writers must all be acknowledged
    # and every acknowledged object must be there after kill -9.
    data_dir = tmp_path / "full"
    server = start_server(data_dir=data_dir, extra_args=["--sync", "full"])
    bucket = unique_name()
    server.client().create_bucket(Bucket=bucket)
    bodies = {f"k{i:03d}": os.urandom(100 + i * 997) for i in range(60)}

    def writer(keys):
        s3 = server.client()
        for k in keys:
            assert s3.put_object(Bucket=bucket, Key=k, Body=bodies[k])["ETag"] == quoted_etag(bodies[k])

    keys = sorted(bodies)
    threads = [threading.Thread(target=writer, args=(keys[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.kill()
    server.restart()
    s3 = server.client()
    for k, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == body


def test_second_server_on_the_same_data_dir_is_refused(start_server, tmp_path):
    import subprocess

    from virga_testlib import free_port, virga_binary

    data_dir = tmp_path / "shared"
    start_server(data_dir=data_dir)
    proc = subprocess.run(
        [str(virga_binary()), "serve", "--port", str(free_port()), "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0
    assert "another Virga" in proc.stderr
