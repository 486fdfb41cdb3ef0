"""The AWS CLI against Virga: `aws s3` (mb, cp, ls, sync, rm, rb, presign)
and a few `aws s3api` calls."""
import hashlib
import json
import os
import time

from virga_testlib import multipart_etag, unique_name, url_fetch

MiB = 1024 * 1024


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    # Back-date the file so `aws s3 sync` (size + mtime comparison) never
    # mistakes it for newer than its uploaded copy within the same second.
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


def tree(root):
    """{relative posix path: sha256} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def keys(s3, bucket, prefix=""):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_mb_ls_rb(aws, s3):
    name = unique_name()
    out = aws("s3", "mb", f"s3://{name}").stdout
    assert out.strip() == f"make_bucket: {name}"
    s3.head_bucket(Bucket=name)
    listed = aws("s3", "ls").stdout.splitlines()
    assert any(line.split()[-1] == name for line in listed), listed
    out = aws("s3", "rb", f"s3://{name}").stdout
    assert out.strip() == f"remove_bucket: {name}"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_cp_up_and_down(aws, s3, bucket, tmp_path):
    data = os.urandom(100_000)
    src = write(tmp_path / "in" / "file one.bin", data)
    out = aws("s3", "cp", str(src), f"s3://{bucket}/dir/file one.bin").stdout
    assert "upload: " in out and f"s3://{bucket}/dir/file one.bin" in out
    assert s3.get_object(Bucket=bucket, Key="dir/file one.bin")["Body"].read() == data

    dst = tmp_path / "out" / "copy.bin"
    out = aws("s3", "cp", f"s3://{bucket}/dir/file one.bin", str(dst)).stdout
    assert "download: " in out
    assert dst.read_bytes() == data


def test_cp_large_file_uses_multipart(aws, s3, bucket, tmp_path):
    # The CLI's default multipart threshold and chunk size are 8 MiB.
    data = os.urandom(20 * MiB)
    src = write(tmp_path / "big.bin", data)
    aws("s3", "cp", str(src), f"s3://{bucket}/big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag([data[:8 * MiB], data[8 * MiB:16 * MiB], data[16 * MiB:]])
    dst = tmp_path / "big.out"
    aws("s3", "cp", f"s3://{bucket}/big.bin", str(dst))
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_cp_with_metadata_and_content_type(aws, s3, bucket, tmp_path):
    src = write(tmp_path / "page.html", b"<p>hi</p>")
    aws("s3", "cp", str(src), f"s3://{bucket}/page.html",
        "--content-type", "text/html", "--metadata", "author=cli,kind=page",
        "--cache-control", "max-age=60")
    head = s3.head_object(Bucket=bucket, Key="page.html")
    assert head["ContentType"] == "text/html"
    assert head["Metadata"] == {"author": "cli", "kind": "page"}
    assert head["CacheControl"] == "max-age=60"


def test_cp_between_buckets_and_stdin_stdout(aws, s3, bucket, make_bucket, tmp_path):
    other = make_bucket()
    s3.put_object(Bucket=bucket, Key="src.txt", Body=b"server side copy")
    aws("s3", "cp", f"s3://{bucket}/src.txt", f"s3://{other}/copied.txt")
    assert s3.get_object(Bucket=other, Key="copied.txt")["Body"].read() == b"server side copy"
    out = aws("s3", "cp", f"s3://{other}/copied.txt", "-").stdout
    assert out == "server side copy"


def test_cp_missing_object_fails(aws, bucket, tmp_path):
    proc = aws("s3", "cp", f"s3://{bucket}/missing.txt", str(tmp_path / "x"), check=False)
    assert proc.returncode == 1
    assert "404" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_ls_prefixes_and_recursive(aws, s3, bucket):
    for key, body in {"a.txt": b"1", "dir/b.txt": b"22", "dir/sub/c.txt": b"333"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    lines = aws("s3", "ls", f"s3://{bucket}/").stdout.splitlines()
    assert any(line.split() == ["PRE", "dir/"] for line in lines), lines
    files = [line.split() for line in lines if not line.strip().startswith("PRE")]
    assert [(f[-2], f[-1]) for f in files] == [("1", "a.txt")]

    lines = aws("s3", "ls", f"s3://{bucket}/", "--recursive").stdout.splitlines()
    assert [(line.split()[-2], line.split()[-1]) for line in lines] == [
        ("1", "a.txt"), ("2", "dir/b.txt"), ("3", "dir/sub/c.txt")]

    proc = aws("s3", "ls", f"s3://{bucket}/nothing-here/", check=False)
    assert proc.returncode == 1 and proc.stdout == ""


def test_sync_up_down_and_delete(aws, s3, bucket, tmp_path):
    local = tmp_path / "site"
    write(local / "index.html", b"<h1>index</h1>")
    write(local / "css" / "site.css", b"body { color: red }")
    write(local / "img" / "logo.bin", os.urandom(50_000))
    write(local / "docs" / "deep" / "read me.txt", "ünïcode\n".encode())

    out = aws("s3", "sync", str(local), f"s3://{bucket}/site").stdout
    assert out.count("upload: ") == 4, out
    assert sorted(keys(s3, bucket)) == sorted(f"site/{p}" for p in tree(local))

    # Nothing changed: nothing to do.
    assert aws("s3", "sync", str(local), f"s3://{bucket}/site").stdout.strip() == ""

    # One file changes size: only it is uploaded.
    write(local / "css" / "site.css", b"body { color: blue; margin: 0 }")
    out = aws("s3", "sync", str(local), f"s3://{bucket}/site").stdout
    assert out.count("upload: ") == 1 and "site.css" in out, out
    assert s3.get_object(Bucket=bucket, Key="site/css/site.css")["Body"].read() == (
        b"body { color: blue; margin: 0 }")

    # --delete removes what is gone locally.
    (local / "img" / "logo.bin").unlink()
    out = aws("s3", "sync", str(local), f"s3://{bucket}/site", "--delete").stdout
    assert out.count("delete: ") == 1 and "logo.bin" in out, out
    assert "site/img/logo.bin" not in keys(s3, bucket)

    # And back down into an empty directory.
    down = tmp_path / "down"
    out = aws("s3", "sync", f"s3://{bucket}/site", str(down)).stdout
    assert out.count("download: ") == 3, out
    assert tree(down) == tree(local)


def test_rm_recursive(aws, s3, bucket):
    for i in range(12):
        s3.put_object(Bucket=bucket, Key=f"logs/2024/{i:02d}.log", Body=b"x")
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"keep")
    out = aws("s3", "rm", f"s3://{bucket}/logs/", "--recursive").stdout
    assert out.count("delete: ") == 12, out
    assert keys(s3, bucket) == ["keep.txt"]


def test_rb_force(aws, s3):
    name = unique_name()
    s3.create_bucket(Bucket=name)
    for i in range(3):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=b"x")
    proc = aws("s3", "rb", f"s3://{name}", check=False)
    assert proc.returncode != 0 and "BucketNotEmpty" in proc.stderr
    aws("s3", "rb", f"s3://{name}", "--force")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_presign(aws, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"via aws s3 presign")
    url = aws("s3", "presign", f"s3://{bucket}/shared.txt", "--expires-in", "300").stdout.strip()
    resp = url_fetch(url)
    assert resp.status == 200
    assert resp.body == b"via aws s3 presign"


def test_s3api_round_trip(aws, bucket, tmp_path):
    src = write(tmp_path / "doc.json", b'{"hello": "world"}')
    put = json.loads(aws("s3api", "put-object", "--bucket", bucket, "--key", "docs/doc.json",
                         "--body", str(src), "--content-type", "application/json",
                         "--metadata", "origin=s3api").stdout)
    assert put["ETag"] == '"' + hashlib.md5(src.read_bytes()).hexdigest() + '"'

    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "docs/doc.json").stdout)
    assert head["ContentLength"] == len(src.read_bytes())
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"origin": "s3api"}

    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket,
                            "--query", "Contents[].Key", "--output", "json").stdout)
    assert listed == ["docs/doc.json"]

    out_file = tmp_path / "got.json"
    got = json.loads(aws("s3api", "get-object", "--bucket", bucket, "--key", "docs/doc.json",
                         str(out_file)).stdout)
    assert got["ContentLength"] == len(src.read_bytes())
    assert out_file.read_bytes() == src.read_bytes()

    tagging = json.dumps({"TagSet": [{"Key": "stage", "Value": "cli"}]})
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "docs/doc.json", "--tagging", tagging)
    tags = json.loads(aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "docs/doc.json").stdout)
    assert tags["TagSet"] == [{"Key": "stage", "Value": "cli"}]


def test_s3api_errors(aws, bucket):
    proc = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing", check=False)
    assert proc.returncode != 0
    assert "An error occurred (404) when calling the HeadObject operation: Not Found" in proc.stderr
    proc = aws("s3api", "get-object", "--bucket", bucket, "--key", "missing", "/dev/null", check=False)
    assert proc.returncode != 0
    assert "(NoSuchKey)" in proc.stderr
    proc = aws("s3api", "create-bucket", "--bucket", "Invalid_Name", check=False)
    assert proc.returncode != 0
    assert "(InvalidBucketName)" in proc.stderr


def test_s3api_versioning_and_multipart(aws, s3, bucket, tmp_path):
    aws("s3api", "put-bucket-versioning", "--bucket", bucket,
        "--versioning-configuration", "Status=Enabled")
    status = json.loads(aws("s3api", "get-bucket-versioning", "--bucket", bucket).stdout)
    assert status == {"Status": "Enabled"}

    upload = json.loads(aws("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "mp").stdout)
    part = write(tmp_path / "part1", b"single small part")
    etag = json.loads(aws("s3api", "upload-part", "--bucket", bucket, "--key", "mp", "--part-number", "1",
                          "--upload-id", upload["UploadId"], "--body", str(part)).stdout)["ETag"]
    parts = json.dumps({"Parts": [{"PartNumber": 1, "ETag": etag}]})
    done = json.loads(aws("s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "mp",
                          "--upload-id", upload["UploadId"], "--multipart-upload", parts).stdout)
    assert done["ETag"] == multipart_etag([b"single small part"])
    assert done["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"single small part"
