//! Listings: objects (v1 and v2), object versions, multipart uploads. Each is a range
//! scan of an ordered table starting at the prefix (and marker), so its cost depends
//! on the page size, not on how many keys the bucket holds; a delimiter skips a whole
//! common prefix with one seek.

use super::buckets::owner;
use crate::state::{self, ObjectVersion, Upload};
use crate::{Call, Out, S3};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult};
use virga_store::{prefix_end, KeyBuf};

const PAGE: usize = 1000;

/// What `EncodingType=url` leaves unencoded.
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn enc(s: &str, url: bool) -> Value {
    if url {
        json!(utf8_percent_encode(s, URL_SAFE).to_string())
    } else {
        json!(s)
    }
}

fn max_keys(c: &Call) -> AwsResult<usize> {
    match c.i64("MaxKeys").or(c.i64("MaxUploads")) {
        None => Ok(1000),
        Some(n) if n < 0 => Err(AwsError::new(
            400,
            "InvalidArgument",
            "Provided max-keys not an integer or within integer range",
        )
        .with("ArgumentName", "max-keys")
        .with("ArgumentValue", n.to_string())),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

fn check_encoding(c: &Call) -> AwsResult<bool> {
    match c.str("EncodingType") {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(other) => Err(AwsError::new(
            400,
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
        )
        .with("ArgumentName", "encoding-type")
        .with("ArgumentValue", other)),
    }
}

/// One entry of a listing: an object (or version) or a common prefix.
enum Entry<T> {
    Item(T),
    Prefix(String),
}

/// Walks `table` under `bucket`+`prefix` from `start`, grouping by `delimiter`;
/// `keep` turns a row into an item (or skips it). Returns up to `max` entries and
/// whether more remain.
#[allow(clippy::too_many_arguments)]
fn walk<T>(
    s3: &S3,
    table: &str,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    start: Bound<Vec<u8>>,
    max: usize,
    after: Option<&str>,
    mut keep: impl FnMut(&[u8], &[u8]) -> AwsResult<Option<(String, T)>>,
) -> AwsResult<(Vec<Entry<T>>, bool)> {
    let bucket_prefix = KeyBuf::new().str(bucket).into_vec();
    let lower = KeyBuf::new()
        .str(bucket)
        .partial(prefix.as_bytes())
        .into_vec();
    let upper = prefix_end(&lower);
    let mut cursor: Bound<Vec<u8>> = match start {
        Bound::Excluded(k) if k >= lower => Bound::Excluded(k),
        Bound::Included(k) if k >= lower => Bound::Included(k),
        _ => Bound::Included(lower.clone()),
    };
    let mut out: Vec<Entry<T>> = Vec::new();
    if max == 0 {
        return Ok((out, false));
    }
    loop {
        let rows = s3.store.read(|r| {
            r.scan(
                table,
                match &cursor {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                },
                upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                PAGE,
                false,
            )
        })?;
        let full_page = rows.len() == PAGE;
        let mut jumped = false;
        for (k, v) in rows {
            cursor = Bound::Excluded(k.clone());
            let Some((key, item)) = keep(&k, &v)? else {
                continue;
            };
            if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
                if let Some(i) = key[prefix.len().min(key.len())..].find(d) {
                    let cp = key[..prefix.len() + i + d.len()].to_string();
                    if after.is_some_and(|a| cp.as_str() <= a) {
                        // Already returned on an earlier page: skip the whole prefix.
                    } else {
                        if out.len() == max {
                            return Ok((out, true));
                        }
                        out.push(Entry::Prefix(cp.clone()));
                    }
                    let skip = KeyBuf::new().str(bucket).partial(cp.as_bytes()).into_vec();
                    match prefix_end(&skip) {
                        Some(e) => cursor = Bound::Included(e),
                        None => return Ok((out, false)),
                    }
                    jumped = true;
                    break;
                }
            }
            if out.len() == max {
                return Ok((out, true));
            }
            out.push(Entry::Item(item));
        }
        let _ = &bucket_prefix;
        if !full_page && !jumped {
            return Ok((out, false));
        }
    }
}

fn object_entry(v: &ObjectVersion, url: bool, with_owner: bool, account: &str) -> Value {
    let mut e = json!({
        "Key": enc(&v.key, url),
        "LastModified": v.last_modified,
        "ETag": v.etag,
        "Size": v.size,
        "StorageClass": v.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
    });
    if !v.checksums.is_empty() {
        e["ChecksumAlgorithm"] = json!(v
            .checksums
            .iter()
            .map(|(a, _)| a.clone())
            .collect::<Vec<_>>());
        e["ChecksumType"] = json!(v
            .checksum_type
            .clone()
            .unwrap_or_else(|| "FULL_OBJECT".into()));
    }
    if with_owner {
        e["Owner"] = owner(account);
    }
    e
}

pub fn list_objects(s3: &S3, c: Call, v2: bool) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let b = s3.store.read(|r| state::must_bucket(r, &bucket))?;
    let url = check_encoding(&c)?;
    let prefix = c.str("Prefix").unwrap_or("").to_string();
    let delimiter = c
        .str("Delimiter")
        .filter(|d| !d.is_empty())
        .map(|s| s.to_string());
    let max = max_keys(&c)?;
    let token = if v2 {
        match c.str("ContinuationToken") {
            Some(t) => Some(
                crate::body::B64
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        AwsError::new(
                            400,
                            "InvalidArgument",
                            "The continuation token provided is incorrect",
                        )
                        .with("ArgumentName", "continuation-token")
                    })?,
            ),
            None => None,
        }
    } else {
        None
    };
    let after: Option<String> = if v2 {
        token
            .clone()
            .or_else(|| c.str("StartAfter").map(|s| s.to_string()))
    } else {
        c.str("Marker").map(|s| s.to_string())
    }
    .filter(|s| !s.is_empty());
    let start = match &after {
        Some(a) => Bound::Excluded(state::object_key(&bucket, a)),
        None => Bound::Unbounded,
    };
    let (entries, truncated) = walk(
        s3,
        state::OBJECTS,
        &bucket,
        &prefix,
        delimiter.as_deref(),
        start,
        max,
        after.as_deref(),
        |_, v| {
            let o: ObjectVersion = state::decode(v)?;
            if o.delete_marker {
                return Ok(None);
            }
            Ok(Some((o.key.clone(), o)))
        },
    )?;
    let with_owner = !v2 || c.input.get("FetchOwner") == Some(&Value::Bool(true));
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    let mut last = None;
    for e in &entries {
        match e {
            Entry::Item(o) => {
                contents.push(object_entry(o, url, with_owner, &b.account));
                last = Some(o.key.clone());
            }
            Entry::Prefix(p) => {
                prefixes.push(json!({"Prefix": enc(p, url)}));
                last = Some(p.clone());
            }
        }
    }
    let mut out = Map::new();
    out.insert("IsTruncated".into(), json!(truncated));
    out.insert("Name".into(), json!(bucket));
    out.insert("Prefix".into(), enc(&prefix, url));
    if let Some(d) = &delimiter {
        out.insert("Delimiter".into(), enc(d, url));
    }
    out.insert("MaxKeys".into(), json!(c.i64("MaxKeys").unwrap_or(1000)));
    if url {
        out.insert("EncodingType".into(), json!("url"));
    }
    if !contents.is_empty() {
        out.insert("Contents".into(), Value::Array(contents));
    }
    if !prefixes.is_empty() {
        out.insert("CommonPrefixes".into(), Value::Array(prefixes));
    }
    if v2 {
        out.insert("KeyCount".into(), json!(entries.len()));
        if let Some(t) = c.str("ContinuationToken") {
            out.insert("ContinuationToken".into(), json!(t));
        }
        if let Some(sa) = c.str("StartAfter") {
            out.insert("StartAfter".into(), enc(sa, url));
        }
        if truncated {
            if let Some(l) = &last {
                out.insert(
                    "NextContinuationToken".into(),
                    json!(crate::body::B64.encode(l)),
                );
            }
        }
    } else {
        out.insert("Marker".into(), enc(c.str("Marker").unwrap_or(""), url));
        if truncated && delimiter.is_some() {
            if let Some(l) = &last {
                out.insert("NextMarker".into(), enc(l, url));
            }
        }
    }
    Ok(Out::value(Value::Object(out)))
}

pub fn list_object_versions(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let b = s3.store.read(|r| state::must_bucket(r, &bucket))?;
    let url = check_encoding(&c)?;
    let prefix = c.str("Prefix").unwrap_or("").to_string();
    let delimiter = c
        .str("Delimiter")
        .filter(|d| !d.is_empty())
        .map(|s| s.to_string());
    let max = max_keys(&c)?;
    let key_marker = c
        .str("KeyMarker")
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string());
    let vid_marker = c
        .str("VersionIdMarker")
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string());
    let start = match (&key_marker, &vid_marker) {
        (Some(k), Some(v)) => {
            let versions = s3.store.read(|r| state::versions_of(r, &bucket, k))?;
            match versions.iter().find(|x| &x.version_id == v) {
                Some(x) => Bound::Excluded(state::version_key(&bucket, k, x.seq)),
                None => {
                    return Err(AwsError::new(
                        400,
                        "InvalidArgument",
                        "Invalid version id specified",
                    )
                    .with("ArgumentName", "version-id-marker")
                    .with("ArgumentValue", v.as_str()))
                }
            }
        }
        (Some(k), None) => match prefix_end(&state::object_key(&bucket, k)) {
            Some(e) => Bound::Included(e),
            None => Bound::Unbounded,
        },
        _ => Bound::Unbounded,
    };
    // IsLatest: the newest version of each key, looked up once per key.
    let mut current_of: Option<(String, u64)> = None;
    let (entries, truncated) = walk(
        s3,
        state::VERSIONS,
        &bucket,
        &prefix,
        delimiter.as_deref(),
        start,
        max,
        key_marker.as_deref().filter(|_| vid_marker.is_none()),
        |_, v| {
            let o: ObjectVersion = state::decode(v)?;
            if current_of.as_ref().is_none_or(|(k, _)| *k != o.key) {
                let cur = s3.store.read(|r| state::current(r, &bucket, &o.key))?;
                current_of = Some((o.key.clone(), cur.map(|c| c.seq).unwrap_or(0)));
            }
            let latest = current_of.as_ref().is_some_and(|(_, s)| *s == o.seq);
            Ok(Some((o.key.clone(), (o, latest))))
        },
    )?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    let mut prefixes = Vec::new();
    let mut last: Option<(String, Option<String>)> = None;
    for e in &entries {
        match e {
            Entry::Item((o, latest)) => {
                if o.delete_marker {
                    markers.push(json!({
                        "Key": enc(&o.key, url), "VersionId": o.version_id, "IsLatest": latest,
                        "LastModified": o.last_modified, "Owner": owner(&b.account)
                    }));
                } else {
                    let mut e = object_entry(o, url, true, &b.account);
                    e["VersionId"] = json!(o.version_id);
                    e["IsLatest"] = json!(latest);
                    versions.push(e);
                }
                last = Some((o.key.clone(), Some(o.version_id.clone())));
            }
            Entry::Prefix(p) => {
                prefixes.push(json!({"Prefix": enc(p, url)}));
                last = Some((p.clone(), None));
            }
        }
    }
    let mut out = Map::new();
    out.insert("IsTruncated".into(), json!(truncated));
    out.insert(
        "KeyMarker".into(),
        enc(key_marker.as_deref().unwrap_or(""), url),
    );
    out.insert(
        "VersionIdMarker".into(),
        json!(vid_marker.clone().unwrap_or_default()),
    );
    if truncated {
        if let Some((k, v)) = last {
            out.insert("NextKeyMarker".into(), enc(&k, url));
            if let Some(v) = v {
                out.insert("NextVersionIdMarker".into(), json!(v));
            }
        }
    }
    if !versions.is_empty() {
        out.insert("Versions".into(), Value::Array(versions));
    }
    if !markers.is_empty() {
        out.insert("DeleteMarkers".into(), Value::Array(markers));
    }
    out.insert("Name".into(), json!(bucket));
    out.insert("Prefix".into(), enc(&prefix, url));
    if let Some(d) = &delimiter {
        out.insert("Delimiter".into(), enc(d, url));
    }
    out.insert("MaxKeys".into(), json!(c.i64("MaxKeys").unwrap_or(1000)));
    if !prefixes.is_empty() {
        out.insert("CommonPrefixes".into(), Value::Array(prefixes));
    }
    if url {
        out.insert("EncodingType".into(), json!("url"));
    }
    Ok(Out::value(Value::Object(out)))
}

pub fn list_multipart_uploads(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let b = s3.store.read(|r| state::must_bucket(r, &bucket))?;
    let url = check_encoding(&c)?;
    let prefix = c.str("Prefix").unwrap_or("").to_string();
    let max = max_keys(&c)?;
    let key_marker = c.str("KeyMarker").unwrap_or("").to_string();
    let id_marker = c.str("UploadIdMarker").unwrap_or("").to_string();
    let bp = KeyBuf::new().str(&bucket).into_vec();
    let end = prefix_end(&bp);
    let rows = s3.store.read(|r| {
        r.scan(
            state::UPLOADS,
            Bound::Included(&bp),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            usize::MAX,
            false,
        )
    })?;
    let mut uploads: Vec<Upload> = rows
        .iter()
        .map(|(_, v)| state::decode::<Upload>(v))
        .collect::<AwsResult<_>>()?;
    uploads.retain(|u| u.key.starts_with(&prefix));
    uploads.sort_by(|a, b| {
        a.key
            .cmp(&b.key)
            .then(a.initiated.total_cmp(&b.initiated))
            .then(a.upload_id.cmp(&b.upload_id))
    });
    if !key_marker.is_empty() {
        uploads.retain(|u| {
            u.key > key_marker
                || (u.key == key_marker && !id_marker.is_empty() && u.upload_id > id_marker)
        });
    }
    // With a delimiter, keys below the prefix that contain it roll up into common prefixes.
    let delimiter = c
        .str("Delimiter")
        .filter(|d| !d.is_empty())
        .map(|s| s.to_string());
    let mut prefixes: Vec<String> = Vec::new();
    if let Some(d) = &delimiter {
        uploads.retain(|u| match u.key[prefix.len()..].find(d.as_str()) {
            Some(i) => {
                let cp = u.key[..prefix.len() + i + d.len()].to_string();
                if !prefixes.contains(&cp) {
                    prefixes.push(cp);
                }
                false
            }
            None => true,
        });
    }
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let items: Vec<Value> = uploads
        .iter()
        .map(|u| {
            json!({
                "UploadId": u.upload_id, "Key": enc(&u.key, url), "Initiated": u.initiated,
                "StorageClass": u.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
                "Owner": owner(&b.account), "Initiator": owner(&b.account),
            })
        })
        .collect();
    let mut out = json!({
        "Bucket": bucket, "KeyMarker": key_marker, "UploadIdMarker": id_marker,
        "MaxUploads": c.i64("MaxUploads").unwrap_or(1000), "IsTruncated": truncated,
        "Prefix": enc(&prefix, url),
    });
    if truncated {
        if let Some(u) = uploads.last() {
            out["NextKeyMarker"] = enc(&u.key, url);
            out["NextUploadIdMarker"] = json!(u.upload_id);
        }
    }
    if !items.is_empty() {
        out["Uploads"] = Value::Array(items);
    }
    if let Some(d) = &delimiter {
        out["Delimiter"] = enc(d, url);
    }
    if !prefixes.is_empty() {
        out["CommonPrefixes"] = Value::Array(
            prefixes
                .iter()
                .map(|p| json!({"Prefix": enc(p, url)}))
                .collect(),
        );
    }
    Ok(Out::value(out))
}
