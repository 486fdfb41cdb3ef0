//! Objects: put, get, head, delete (single and batch), copy, tagging, ACL; and the
//! version bookkeeping every write goes through.

use super::config::{push_tag, tag_set, tags_value};
use crate::body::{self, blob_body, Stored};
use crate::state::{self, Bucket, ObjectVersion};
use crate::{Call, Out, S3};
use rand::Rng;
use serde_json::{json, Map, Value};
use virga_core::{AwsError, AwsResult};
use virga_store::KvTxn;

/// Maximum size of a single PUT (5 GiB).
pub const MAX_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// Request members copied onto the object and returned as headers by Get/Head.
pub const CONTENT_MEMBERS: [&str; 7] = [
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
    "Expires",
    "WebsiteRedirectLocation",
];

pub fn validate_key(key: &str) -> AwsResult<()> {
    if key.len() > 1024 {
        return Err(
            AwsError::new(400, "KeyTooLongError", "Your key is too long")
                .with("Size", key.len().to_string())
                .with("MaxSizeAllowed", "1024"),
        );
    }
    if key.is_empty() {
        return Err(AwsError::new(
            400,
            "InvalidArgument",
            "Key must not be empty",
        ));
    }
    Ok(())
}

pub fn content_headers(input: &Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    for name in CONTENT_MEMBERS {
        if let Some(v) = input.get(name) {
            if name == "ContentEncoding" {
                // aws-chunked is transfer framing, not the object's encoding.
                let kept: Vec<&str> = v
                    .as_str()
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty() && *s != "aws-chunked")
                    .collect();
                if !kept.is_empty() {
                    m.insert(name.into(), json!(kept.join(",")));
                }
                continue;
            }
            m.insert(name.into(), v.clone());
        }
    }
    m
}

pub fn new_version_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn version_id_ok(v: &str) -> bool {
    v == "null"
        || (v.len() == 32
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'))
}

pub fn precondition_failed(cond: &str) -> AwsError {
    AwsError::new(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
    .with("Condition", cond)
}

pub fn no_such_key(key: &str) -> AwsError {
    AwsError::new(404, "NoSuchKey", "The specified key does not exist.").with("Key", key)
}

/// Conditions on a write (`If-None-Match: *`, `If-Match: etag`).
#[derive(Default, Clone)]
pub struct WriteCondition {
    pub if_none_match: Option<String>,
    pub if_match: Option<String>,
}

impl WriteCondition {
    pub fn from_call(c: &Call) -> WriteCondition {
        WriteCondition {
            if_none_match: c.str("IfNoneMatch").map(|s| s.to_string()),
            if_match: c.str("IfMatch").map(|s| s.to_string()),
        }
    }

    fn check(&self, key: &str, cur: Option<&ObjectVersion>) -> AwsResult<()> {
        let live = cur.filter(|c| !c.delete_marker);
        if let Some(inm) = &self.if_none_match {
            if inm.trim() == "*" && live.is_some() {
                return Err(precondition_failed("If-None-Match"));
            }
        }
        if let Some(im) = &self.if_match {
            match live {
                None => return Err(no_such_key(key)),
                Some(c) if !etag_matches(im, &c.etag) => {
                    return Err(precondition_failed("If-Match"))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub fn etag_matches(header: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    header
        .split(',')
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|h| h == "*" || h == bare)
}

/// Stores `v` as the newest version of its key and returns it with its version id.
/// Blobs of a replaced `null` version are deleted after the commit.
pub fn write_version(
    s3: &S3,
    bucket: &str,
    v: ObjectVersion,
    cond: &WriteCondition,
    event: &str,
    ctx: &virga_core::RequestContext,
) -> AwsResult<(ObjectVersion, Bucket)> {
    write_version_with(s3, bucket, v, cond, event, ctx, |_| Ok(Vec::new()))
}

/// [`write_version`] that also runs `extra` in the same transaction (completing a
/// multipart upload removes the upload); `extra` returns blobs to delete after commit.
pub fn write_version_with(
    s3: &S3,
    bucket: &str,
    mut v: ObjectVersion,
    cond: &WriteCondition,
    event: &str,
    ctx: &virga_core::RequestContext,
    extra: impl FnOnce(&mut dyn KvTxn) -> AwsResult<Vec<String>>,
) -> AwsResult<(ObjectVersion, Bucket)> {
    let seq = s3.next_seq();
    let (stored, b, garbage) = s3.store.transact(|t| {
        let b = state::must_bucket(t, bucket)?;
        let cur = state::current(t, bucket, &v.key)?;
        cond.check(&v.key, cur.as_ref())?;
        v.seq = seq;
        v.version_id = if b.versioning.as_deref() == Some("Enabled") {
            new_version_id()
        } else {
            "null".to_string()
        };
        let mut garbage = Vec::new();
        if v.version_id == "null" {
            garbage = remove_null_version(t, bucket, &v.key)?;
        }
        t.put(
            state::VERSIONS,
            &state::version_key(bucket, &v.key, seq),
            &state::encode(&v)?,
        )?;
        t.put(
            state::OBJECTS,
            &state::object_key(bucket, &v.key),
            &state::encode(&v)?,
        )?;
        garbage.extend(extra(t)?);
        crate::events::record(t, s3, &b, event, &v, ctx)?;
        Ok((v.clone(), b, garbage))
    })?;
    for g in garbage {
        let _ = s3.blobs.delete(&g);
    }
    s3.outbox_ready.notify_one();
    Ok((stored, b))
}

/// Drops the `null` version of a key (it is replaced); returns its blobs.
fn remove_null_version(t: &mut dyn KvTxn, bucket: &str, key: &str) -> AwsResult<Vec<String>> {
    let mut garbage = Vec::new();
    for old in state::versions_of(t, bucket, key)? {
        if old.version_id == "null" {
            t.delete(state::VERSIONS, &state::version_key(bucket, key, old.seq))?;
            garbage.extend(old.parts.iter().map(|p| p.blob.clone()));
        }
    }
    Ok(garbage)
}

/// The object tags a `x-amz-tagging` header carries (`k1=v1&k2=v2`).
pub fn tags_from_header(h: Option<&str>) -> AwsResult<Vec<(String, String)>> {
    let mut tags = Vec::new();
    if let Some(h) = h {
        for (k, v) in crate::form_query(h) {
            push_tag(&mut tags, &k, &v, 10)?;
        }
    }
    Ok(tags)
}

/// User metadata of a request (`x-amz-meta-*`), within S3's 2 KB limit.
pub fn metadata(c: &Call) -> AwsResult<Map<String, Value>> {
    let m = c
        .input
        .get("Metadata")
        .and_then(|m| m.as_object())
        .cloned()
        .unwrap_or_default();
    let size: usize = m
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, |s| s.len()))
        .sum();
    if size > 2048 {
        return Err(AwsError::new(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size",
        )
        .with("Size", size.to_string())
        .with("MaxSizeAllowed", "2048"));
    }
    Ok(m)
}

pub async fn put_object(s3: &S3, mut c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let key = c.req("Key")?.to_string();
    validate_key(&key)?;
    s3.store.read(|r| state::must_bucket(r, &bucket))?;
    let tags = tags_from_header(c.str("Tagging"))?;
    let meta = metadata(&c)?;
    let body = c
        .body
        .take()
        .ok_or_else(|| AwsError::internal("missing body stream"))?;
    let stored = body::store_body(body, &c.headers, &s3.blobs, None, MAX_PUT).await?;
    let v = object_from_stored(&c, &key, &stored, tags, meta);
    let cond = WriteCondition::from_call(&c);
    let result = write_version_with(s3, &bucket, v, &cond, "ObjectCreated:Put", &c.ctx, |t| {
        stored.blob.write_in(t)?;
        Ok(Vec::new())
    });
    let (v, b) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = s3.blobs.delete(&stored.blob.id);
            return Err(e);
        }
    };
    let mut out = json!({"ETag": v.etag});
    if b.versioning.is_some() {
        out["VersionId"] = json!(v.version_id);
    }
    for (alg, val) in &v.checksums {
        out[format!("Checksum{alg}")] = json!(val);
    }
    if !v.checksums.is_empty() {
        out["ChecksumType"] = json!("FULL_OBJECT");
    }
    out["ServerSideEncryption"] = json!("AES256");
    if let Some(exp) = crate::lifecycle::expiration_header(&b, &v) {
        out["Expiration"] = json!(exp);
    }
    Ok(Out::value(out))
}

fn object_from_stored(
    c: &Call,
    key: &str,
    stored: &Stored,
    tags: Vec<(String, String)>,
    metadata: Map<String, Value>,
) -> ObjectVersion {
    ObjectVersion {
        key: key.to_string(),
        size: stored.size,
        etag: stored.etag(),
        last_modified: c.ctx.clock.now_secs_f64().floor(),
        headers: content_headers(&c.input),
        metadata,
        checksums: stored.checksums.clone(),
        checksum_type: (!stored.checksums.is_empty()).then(|| "FULL_OBJECT".to_string()),
        tags,
        parts: vec![state::BlobPart {
            blob: stored.blob.id.clone(),
            size: stored.size,
        }],
        storage_class: c
            .str("StorageClass")
            .filter(|s| *s != "STANDARD")
            .map(|s| s.to_string()),
        ..Default::default()
    }
}

/// Finds the version a request names (or the current one), and the bucket.
pub fn find_version(
    s3: &S3,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> AwsResult<(Bucket, Option<ObjectVersion>)> {
    if let Some(v) = version_id {
        if !version_id_ok(v) {
            return Err(
                AwsError::new(400, "InvalidArgument", "Invalid version id specified")
                    .with("ArgumentName", "versionId")
                    .with("ArgumentValue", v),
            );
        }
    }
    s3.store.read(|r| {
        let b = state::must_bucket(r, bucket)?;
        let v = match version_id {
            None => state::current(r, bucket, key)?,
            Some(id) => state::versions_of(r, bucket, key)?
                .into_iter()
                .find(|v| v.version_id == id),
        };
        Ok((b, v))
    })
}

fn no_such_version(key: &str, id: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchVersion",
        "The specified version does not exist.",
    )
    .with("Key", key)
    .with("VersionId", id)
}

/// Parses a Range header against an object of `size` bytes: Ok(None) = whole object.
fn parse_range(range: &str, size: u64) -> AwsResult<Option<(u64, u64)>> {
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let unsatisfiable = || {
        AwsError::new(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
        )
        .with("RangeRequested", range)
        .with("ActualObjectSize", size.to_string())
    };
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 {
            return Err(unsatisfiable());
        }
        let n = n.min(size);
        if size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(Some((size - n, size - 1)));
    }
    let Ok(start) = a.parse::<u64>() else {
        return Ok(None);
    };
    let end = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end)))
}

/// The members describing an object, as Get/Head return them.
pub fn object_output(v: &ObjectVersion, b: &Bucket, checksum_mode: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("ETag".into(), json!(v.etag));
    out.insert("LastModified".into(), json!(v.last_modified));
    out.insert("AcceptRanges".into(), json!("bytes"));
    for (k, val) in &v.headers {
        out.insert(k.clone(), val.clone());
    }
    if !out.contains_key("ContentType") {
        out.insert("ContentType".into(), json!("binary/octet-stream"));
    }
    if !v.metadata.is_empty() {
        out.insert("Metadata".into(), Value::Object(v.metadata.clone()));
    }
    if b.versioning.is_some() {
        out.insert("VersionId".into(), json!(v.version_id));
    }
    if !v.tags.is_empty() {
        out.insert("TagCount".into(), json!(v.tags.len()));
    }
    if let Some(sc) = &v.storage_class {
        out.insert("StorageClass".into(), json!(sc));
    }
    out.insert("ServerSideEncryption".into(), json!("AES256"));
    if checksum_mode {
        for (alg, val) in &v.checksums {
            out.insert(format!("Checksum{alg}"), json!(val));
        }
        if let Some(t) = &v.checksum_type {
            out.insert("ChecksumType".into(), json!(t));
        }
    }
    if let Some(exp) = crate::lifecycle::expiration_header(b, v) {
        out.insert("Expiration".into(), json!(exp));
    }
    http_date_expires(&mut out);
    out
}

/// `Expires` is a timestamp on input but a plain header string on output.
fn http_date_expires(out: &mut Map<String, Value>) {
    if let Some(t) = out.get("Expires").and_then(|e| e.as_f64()) {
        out.insert("Expires".into(), json!(virga_protocol::time_fmt::rfc822(t)));
    }
}

/// Evaluates If-Match / If-Unmodified-Since (412) and If-None-Match /
/// If-Modified-Since (304) as S3 does.
fn check_read_conditions(c: &Call, v: &ObjectVersion, prefix: &str) -> AwsResult<Option<u16>> {
    let get = |n: &str| c.str(&format!("{prefix}{n}"));
    let getf = |n: &str| c.f64(&format!("{prefix}{n}"));
    let if_match = get("IfMatch");
    if let Some(im) = if_match {
        if !etag_matches(im, &v.etag) {
            return Err(precondition_failed("If-Match"));
        }
    } else if let Some(t) = getf("IfUnmodifiedSince") {
        if v.last_modified > t {
            return Err(precondition_failed("If-Unmodified-Since"));
        }
    }
    if let Some(inm) = get("IfNoneMatch") {
        if etag_matches(inm, &v.etag) {
            return Ok(Some(304));
        }
    } else if let Some(t) = getf("IfModifiedSince") {
        if v.last_modified <= t && t <= c.ctx.clock.now_secs_f64() + 1.0 {
            return Ok(Some(304));
        }
    }
    Ok(None)
}

pub fn get_object(s3: &S3, c: Call, head: bool) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?;
    let key = c.req("Key")?;
    let version_id = c.str("VersionId");
    let (b, v) = find_version(s3, bucket, key, version_id)?;
    let v = match (v, version_id) {
        (Some(v), _) => v,
        (None, Some(id)) => return Err(no_such_version(key, id)),
        (None, None) => return Err(no_such_key(key)),
    };
    if v.delete_marker {
        let e = if version_id.is_some() {
            AwsError::new(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
            .with("Method", if head { "HEAD" } else { "GET" })
            .with("ResourceType", "DeleteMarker")
        } else {
            no_such_key(key)
        };
        return Err(e
            .header("x-amz-delete-marker", "true")
            .header("x-amz-version-id", v.version_id.as_str()));
    }
    let checksum_mode = c.str("ChecksumMode") == Some("ENABLED");
    let mut out = object_output(&v, &b, checksum_mode);
    if let Some(status) = check_read_conditions(&c, &v, "")? {
        let mut o = Map::new();
        for k in ["ETag", "LastModified", "VersionId"] {
            if let Some(x) = out.get(k) {
                o.insert(k.into(), x.clone());
            }
        }
        return Ok(Out {
            value: o,
            status: Some(status),
            ..Default::default()
        });
    }
    // Response header overrides (presigned downloads use them).
    for (param, member) in [
        ("ResponseContentType", "ContentType"),
        ("ResponseContentDisposition", "ContentDisposition"),
        ("ResponseContentEncoding", "ContentEncoding"),
        ("ResponseContentLanguage", "ContentLanguage"),
        ("ResponseCacheControl", "CacheControl"),
        ("ResponseExpires", "Expires"),
    ] {
        if let Some(val) = c.input.get(param) {
            out.insert(member.into(), val.clone());
        }
    }
    http_date_expires(&mut out);
    let mut range = match c.str("Range") {
        Some(r) => parse_range(r, v.size)?,
        None => None,
    };
    if let Some(pn) = c.i64("PartNumber") {
        let count = v.part_sizes.len().max(1) as i64;
        if pn < 1 || pn > count {
            return Err(AwsError::new(
                416,
                "InvalidPartNumber",
                "The requested partnumber is not satisfiable",
            )
            .with("PartNumberRequested", pn.to_string())
            .with("ActualPartCount", count.to_string()));
        }
        if !v.part_sizes.is_empty() {
            let start: u64 = v.part_sizes[..(pn - 1) as usize].iter().sum();
            let len = v.part_sizes[(pn - 1) as usize];
            range = Some((start, start + len.max(1) - 1));
            out.insert("PartsCount".into(), json!(count));
        }
    }
    let mut status = None;
    if range.is_some() {
        // Checksums describe the whole object; a part of it is sent without them.
        for alg in crate::body::ALGORITHMS {
            out.remove(&format!("Checksum{alg}"));
        }
        out.remove("ChecksumType");
    }
    let (start, len) = match range {
        Some((s, e)) => {
            status = Some(206);
            out.insert(
                "ContentRange".into(),
                json!(format!("bytes {s}-{e}/{}", v.size)),
            );
            (s, e - s + 1)
        }
        None => (0, v.size),
    };
    out.insert("ContentLength".into(), json!(len));
    let body = if head {
        None
    } else {
        Some(blob_body(s3.blobs.clone(), &v.parts, start, len))
    };
    Ok(Out {
        value: out,
        body,
        status,
        headers: Vec::new(),
    })
}

/// Result of deleting one key (or version).
pub struct Deleted {
    pub delete_marker: bool,
    pub version_id: Option<String>,
}

pub fn delete_one(
    s3: &S3,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    ctx: &virga_core::RequestContext,
) -> AwsResult<Deleted> {
    if let Some(v) = version_id {
        if !version_id_ok(v) {
            return Err(
                AwsError::new(400, "InvalidArgument", "Invalid version id specified")
                    .with("ArgumentName", "versionId")
                    .with("ArgumentValue", v),
            );
        }
    }
    let seq = s3.next_seq();
    let (result, garbage) = s3.store.transact(|t| {
        let b = state::must_bucket(t, bucket)?;
        let mut garbage = Vec::new();
        let result = match version_id {
            Some(id) => {
                let versions = state::versions_of(t, bucket, key)?;
                let Some(pos) = versions.iter().position(|v| v.version_id == id) else {
                    // Deleting a version that does not exist succeeds, as on AWS.
                    return Ok((
                        Deleted {
                            delete_marker: false,
                            version_id: Some(id.to_string()),
                        },
                        garbage,
                    ));
                };
                let victim = &versions[pos];
                t.delete(
                    state::VERSIONS,
                    &state::version_key(bucket, key, victim.seq),
                )?;
                garbage.extend(victim.parts.iter().map(|p| p.blob.clone()));
                if pos == 0 {
                    match versions.get(1) {
                        Some(next) => t.put(
                            state::OBJECTS,
                            &state::object_key(bucket, key),
                            &state::encode(next)?,
                        )?,
                        None => t.delete(state::OBJECTS, &state::object_key(bucket, key))?,
                    }
                }
                if !victim.delete_marker {
                    crate::events::record(t, s3, &b, "ObjectRemoved:Delete", victim, ctx)?;
                }
                Deleted {
                    delete_marker: victim.delete_marker,
                    version_id: Some(id.to_string()),
                }
            }
            None if b.versioning.is_none() => {
                if let Some(cur) = state::current(t, bucket, key)? {
                    garbage.extend(remove_null_version(t, bucket, key)?);
                    t.delete(state::OBJECTS, &state::object_key(bucket, key))?;
                    crate::events::record(t, s3, &b, "ObjectRemoved:Delete", &cur, ctx)?;
                }
                Deleted {
                    delete_marker: false,
                    version_id: None,
                }
            }
            None => {
                let vid = if b.versioning.as_deref() == Some("Enabled") {
                    new_version_id()
                } else {
                    garbage.extend(remove_null_version(t, bucket, key)?);
                    "null".to_string()
                };
                let marker = ObjectVersion {
                    key: key.to_string(),
                    version_id: vid.clone(),
                    seq,
                    delete_marker: true,
                    last_modified: s3.clock.now_secs_f64().floor(),
                    ..Default::default()
                };
                t.put(
                    state::VERSIONS,
                    &state::version_key(bucket, key, seq),
                    &state::encode(&marker)?,
                )?;
                t.put(
                    state::OBJECTS,
                    &state::object_key(bucket, key),
                    &state::encode(&marker)?,
                )?;
                crate::events::record(
                    t,
                    s3,
                    &b,
                    "ObjectRemoved:DeleteMarkerCreated",
                    &marker,
                    ctx,
                )?;
                Deleted {
                    delete_marker: true,
                    version_id: Some(vid),
                }
            }
        };
        Ok((result, garbage))
    })?;
    for g in garbage {
        let _ = s3.blobs.delete(&g);
    }
    s3.outbox_ready.notify_one();
    Ok(result)
}

pub async fn delete_object(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?;
    let key = c.req("Key")?;
    if let Some(im) = c.str("IfMatch") {
        let (_, cur) = find_version(s3, bucket, key, None)?;
        match cur.filter(|v| !v.delete_marker) {
            Some(v) if etag_matches(im, &v.etag) => {}
            Some(_) => return Err(precondition_failed("If-Match")),
            None => return Err(no_such_key(key)),
        }
    }
    let d = delete_one(s3, bucket, key, c.str("VersionId"), &c.ctx)?;
    let mut out = Map::new();
    if d.delete_marker {
        out.insert("DeleteMarker".into(), json!(true));
    }
    if let Some(v) = d.version_id {
        out.insert("VersionId".into(), json!(v));
    }
    Ok(Out {
        value: out,
        status: Some(204),
        ..Default::default()
    })
}

pub async fn delete_objects(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?;
    s3.store.read(|r| state::must_bucket(r, bucket))?;
    let del = c.input.get("Delete").cloned().unwrap_or(Value::Null);
    let objects = del
        .get("Objects")
        .and_then(|o| o.as_array())
        .cloned()
        .unwrap_or_default();
    if objects.is_empty() || objects.len() > 1000 {
        return Err(AwsError::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    let quiet = del.get("Quiet").and_then(|q| q.as_bool()).unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in objects {
        let key = o.get("Key").and_then(|k| k.as_str()).unwrap_or("");
        let vid = o.get("VersionId").and_then(|k| k.as_str());
        match delete_one(s3, bucket, key, vid, &c.ctx) {
            Ok(d) => {
                if quiet {
                    continue;
                }
                let mut e = json!({"Key": key});
                if let Some(v) = vid {
                    e["VersionId"] = json!(v);
                    if d.delete_marker {
                        e["DeleteMarker"] = json!(true);
                        e["DeleteMarkerVersionId"] = json!(v);
                    }
                } else if d.delete_marker {
                    e["DeleteMarker"] = json!(true);
                    e["DeleteMarkerVersionId"] = json!(d.version_id);
                }
                deleted.push(e);
            }
            Err(err) => {
                let mut e = json!({"Key": key, "Code": err.code, "Message": err.message});
                if let Some(v) = vid {
                    e["VersionId"] = json!(v);
                }
                errors.push(e);
            }
        }
    }
    let mut out = Map::new();
    if !deleted.is_empty() {
        out.insert("Deleted".into(), Value::Array(deleted));
    }
    if !errors.is_empty() {
        out.insert("Errors".into(), Value::Array(errors));
    }
    Ok(Out {
        value: out,
        ..Default::default()
    })
}

/// `bucket/key?versionId=x` from an `x-amz-copy-source` header.
pub fn parse_copy_source(src: &str) -> AwsResult<(String, String, Option<String>)> {
    let (path, version) = match src.split_once("?versionId=") {
        Some((p, v)) => (p, Some(v.to_string())),
        None => (src, None),
    };
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let decoded = decoded.trim_start_matches('/');
    match decoded.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => {
            Ok((b.to_string(), k.to_string(), version))
        }
        _ => Err(
            AwsError::new(400, "InvalidArgument", "Invalid copy source object key")
                .with("ArgumentName", "x-amz-copy-source")
                .with("ArgumentValue", src),
        ),
    }
}

/// Reads the source of a copy, checking the copy-source conditions.
pub fn copy_source(s3: &S3, c: &Call) -> AwsResult<(ObjectVersion, Bucket)> {
    let (sb, sk, sv) = parse_copy_source(c.req("CopySource")?)?;
    let (b, v) = find_version(s3, &sb, &sk, sv.as_deref())?;
    let v = match (v, &sv) {
        (Some(v), _) if !v.delete_marker => v,
        (Some(_), Some(_)) => {
            return Err(AwsError::new(400, "InvalidRequest", "The source of a copy request may not specifically refer to a delete marker by version id."))
        }
        (_, Some(id)) => return Err(no_such_version(&sk, id)),
        (_, None) => return Err(no_such_key(&sk)),
    };
    if let Some(status) = check_read_conditions(c, &v, "CopySource")? {
        let _ = status;
        return Err(precondition_failed("x-amz-copy-source-If-None-Match"));
    }
    Ok((v, b))
}

/// Copies bytes `start..start+len` of `src` into a new blob; returns (blob, md5).
pub async fn copy_bytes(
    s3: &S3,
    src: &ObjectVersion,
    start: u64,
    len: u64,
) -> AwsResult<(String, [u8; 16])> {
    use md5::Digest;
    let blobs = s3.blobs.clone();
    let parts = src.parts.clone();
    tokio::task::spawn_blocking(move || -> AwsResult<(String, [u8; 16])> {
        let mut w = blobs.writer()?;
        let mut md5 = md5::Md5::new();
        for (blob, from, n) in crate::body::slices(&parts, start, len) {
            let mut r = blobs.open(&blob, from, n)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)
                    .map_err(|e| AwsError::internal(format!("copy read: {e}")))?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
                w.write(&buf[..n])?;
            }
        }
        let id = w.commit()?;
        Ok((id, md5.finalize().into()))
    })
    .await
    .map_err(|e| AwsError::internal(format!("copy task: {e}")))?
}

pub async fn copy_object(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let key = c.req("Key")?.to_string();
    validate_key(&key)?;
    let (src, src_bucket) = copy_source(s3, &c)?;
    let (sb, sk, _) = parse_copy_source(c.req("CopySource")?)?;
    let replace_meta = c.str("MetadataDirective") == Some("REPLACE");
    let replace_tags = c.str("TaggingDirective") == Some("REPLACE");
    if sb == bucket
        && sk == key
        && !replace_meta
        && c.str("StorageClass").is_none()
        && c.str("WebsiteRedirectLocation").is_none()
        && c.str("ServerSideEncryption").is_none()
    {
        return Err(AwsError::new(
            400,
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    s3.store.read(|r| state::must_bucket(r, &bucket))?;
    let (blob, md5) = copy_bytes(s3, &src, 0, src.size).await?;
    let mut v = ObjectVersion {
        key: key.clone(),
        size: src.size,
        etag: src.etag.clone(),
        last_modified: s3.clock.now_secs_f64().floor(),
        headers: if replace_meta {
            content_headers(&c.input)
        } else {
            src.headers.clone()
        },
        metadata: if replace_meta {
            metadata(&c)?
        } else {
            src.metadata.clone()
        },
        checksums: src.checksums.clone(),
        checksum_type: src.checksum_type.clone(),
        tags: if replace_tags {
            tags_from_header(c.str("Tagging"))?
        } else {
            src.tags.clone()
        },
        parts: vec![state::BlobPart {
            blob: blob.clone(),
            size: src.size,
        }],
        part_sizes: Vec::new(),
        storage_class: c
            .str("StorageClass")
            .filter(|s| *s != "STANDARD")
            .map(|s| s.to_string()),
        ..Default::default()
    };
    if !src.part_sizes.is_empty() {
        // The copy of a multipart object is one part: its ETag is a plain MD5.
        v.etag = format!("\"{}\"", hex::encode(md5));
    }
    let (v, b) = match write_version(
        s3,
        &bucket,
        v,
        &WriteCondition::from_call(&c),
        "ObjectCreated:Copy",
        &c.ctx,
    ) {
        Ok(x) => x,
        Err(e) => {
            let _ = s3.blobs.delete(&blob);
            return Err(e);
        }
    };
    let mut result = json!({"ETag": v.etag, "LastModified": v.last_modified});
    for (alg, val) in &v.checksums {
        result[format!("Checksum{alg}")] = json!(val);
    }
    let mut out = json!({"CopyObjectResult": result});
    if b.versioning.is_some() {
        out["VersionId"] = json!(v.version_id);
    }
    if src_bucket.versioning.is_some() {
        out["CopySourceVersionId"] = json!(src.version_id);
    }
    Ok(Out::value(out))
}

/// Rewrites one version in place (tags), keeping its version id.
fn update_version(
    s3: &S3,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    f: impl FnOnce(&mut ObjectVersion) -> AwsResult<()>,
) -> AwsResult<ObjectVersion> {
    s3.store.transact(|t| {
        state::must_bucket(t, bucket)?;
        let versions = state::versions_of(t, bucket, key)?;
        let pos = match version_id {
            Some(id) => versions
                .iter()
                .position(|v| v.version_id == id)
                .ok_or_else(|| no_such_version(key, id))?,
            None => {
                if versions.first().is_none_or(|v| v.delete_marker) {
                    return Err(no_such_key(key));
                }
                0
            }
        };
        let mut v = versions[pos].clone();
        if v.delete_marker {
            return Err(AwsError::new(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            ));
        }
        f(&mut v)?;
        t.put(
            state::VERSIONS,
            &state::version_key(bucket, key, v.seq),
            &state::encode(&v)?,
        )?;
        if pos == 0 {
            t.put(
                state::OBJECTS,
                &state::object_key(bucket, key),
                &state::encode(&v)?,
            )?;
        }
        Ok(v)
    })
}

pub async fn put_object_tagging(s3: &S3, c: Call) -> AwsResult<Out> {
    let tags = tag_set(c.input.get("Tagging"), 10)?;
    let v = update_version(
        s3,
        c.req("Bucket")?,
        c.req("Key")?,
        c.str("VersionId"),
        |v| {
            v.tags = tags;
            Ok(())
        },
    )?;
    Ok(Out::value(json!({"VersionId": v.version_id})))
}

pub fn get_object_tagging(s3: &S3, c: Call) -> AwsResult<Out> {
    let key = c.req("Key")?;
    let (_, v) = find_version(s3, c.req("Bucket")?, key, c.str("VersionId"))?;
    let v = v
        .filter(|v| !v.delete_marker)
        .ok_or_else(|| match c.str("VersionId") {
            Some(id) => no_such_version(key, id),
            None => no_such_key(key),
        })?;
    Ok(Out::value(
        json!({"TagSet": tags_value(&v.tags), "VersionId": v.version_id}),
    ))
}

pub async fn delete_object_tagging(s3: &S3, c: Call) -> AwsResult<Out> {
    let v = update_version(
        s3,
        c.req("Bucket")?,
        c.req("Key")?,
        c.str("VersionId"),
        |v| {
            v.tags.clear();
            Ok(())
        },
    )?;
    Ok(Out {
        value: json!({"VersionId": v.version_id})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        status: Some(204),
        ..Default::default()
    })
}

pub fn get_object_acl(s3: &S3, c: Call) -> AwsResult<Out> {
    let key = c.req("Key")?;
    let (b, v) = find_version(s3, c.req("Bucket")?, key, c.str("VersionId"))?;
    if v.is_none_or(|v| v.delete_marker) {
        return Err(no_such_key(key));
    }
    Ok(Out::value(super::buckets::full_control_acl(&b.account)))
}

pub fn put_object_acl(s3: &S3, c: Call) -> AwsResult<Out> {
    let key = c.req("Key")?;
    let (_, v) = find_version(s3, c.req("Bucket")?, key, c.str("VersionId"))?;
    if v.is_none_or(|v| v.delete_marker) {
        return Err(no_such_key(key));
    }
    Ok(Out::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-4", 10).unwrap(), Some((0, 4)));
        assert_eq!(parse_range("bytes=5-", 10).unwrap(), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10).unwrap(), Some((7, 9)));
        assert_eq!(parse_range("bytes=-30", 10).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=0-100", 10).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=5-2", 10).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 10).unwrap(), None);
        assert_eq!(parse_range("bytes=10-", 10).unwrap_err().status, 416);
    }

    #[test]
    fn copy_sources() {
        assert_eq!(
            parse_copy_source("/b/a%20b/c?versionId=xyz").unwrap(),
            ("b".into(), "a b/c".into(), Some("xyz".into()))
        );
        assert!(parse_copy_source("justbucket").is_err());
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("abc", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
