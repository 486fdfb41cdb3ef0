//! Multipart uploads. Parts are stored as blobs and a completed object is the list of
//! its parts' blobs, so completing an upload of several GiB copies nothing.

use super::objects::{
    self, content_headers, copy_bytes, copy_source, tags_from_header, validate_key,
    write_version_with, WriteCondition,
};
use crate::body::{self, B64};
use crate::state::{self, BlobPart, ObjectVersion, Part, Upload};
use crate::{Call, Out, S3};
use base64::Engine;
use md5::Digest;
use serde_json::{json, Value};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult};
use virga_store::{KeyBuf, KvRead, KvTxn};

const MIN_PART: u64 = 5 * 1024 * 1024;

fn no_such_upload(id: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
    .with("UploadId", id)
}

fn get_upload(r: &dyn KvRead, bucket: &str, id: &str) -> AwsResult<Upload> {
    state::must_bucket(r, bucket)?;
    r.get(state::UPLOADS, &state::upload_key(bucket, id))?
        .map(|v| state::decode(&v))
        .transpose()?
        .ok_or_else(|| no_such_upload(id))
}

/// The upload `id` of `key`: an upload id is bound to the key it was created for.
fn upload_of(r: &dyn KvRead, bucket: &str, key: &str, id: &str) -> AwsResult<Upload> {
    let u = get_upload(r, bucket, id)?;
    if u.key != key {
        return Err(no_such_upload(id));
    }
    Ok(u)
}

fn parts_of(r: &dyn KvRead, upload_id: &str) -> AwsResult<Vec<Part>> {
    let p = KeyBuf::new().str(upload_id).into_vec();
    let end = virga_store::prefix_end(&p);
    r.scan(
        state::PARTS,
        Bound::Included(&p),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        usize::MAX,
        false,
    )?
    .iter()
    .map(|(_, v)| state::decode(v))
    .collect()
}

/// Deletes the part records of an upload; returns their blobs.
pub fn remove_parts(t: &mut dyn KvTxn, upload_id: &str) -> AwsResult<Vec<String>> {
    let parts = parts_of(t, upload_id)?;
    for p in &parts {
        t.delete(state::PARTS, &state::part_key(upload_id, p.number))?;
    }
    Ok(parts.into_iter().map(|p| p.blob).collect())
}

pub async fn create(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let key = c.req("Key")?.to_string();
    validate_key(&key)?;
    let tags = tags_from_header(c.str("Tagging"))?;
    let algorithm = c.str("ChecksumAlgorithm").map(|s| s.to_ascii_uppercase());
    if let Some(a) = &algorithm {
        if !body::ALGORITHMS.contains(&a.as_str()) {
            return Err(AwsError::new(
                400,
                "InvalidRequest",
                format!("Checksum algorithm {a} is not supported"),
            ));
        }
    }
    let u = Upload {
        upload_id: objects::new_version_id().replace(['.', '_'], "x")
            + &uuid::Uuid::new_v4().simple().to_string(),
        key: key.clone(),
        initiated: s3.clock.now_secs_f64().floor(),
        headers: content_headers(&c.input),
        metadata: objects::metadata(&c)?,
        tags,
        checksum_algorithm: algorithm.clone(),
        checksum_type: c.str("ChecksumType").map(|s| s.to_string()),
        storage_class: c
            .str("StorageClass")
            .filter(|s| *s != "STANDARD")
            .map(|s| s.to_string()),
    };
    s3.store.transact(|t| {
        state::must_bucket(t, &bucket)?;
        t.put(
            state::UPLOADS,
            &state::upload_key(&bucket, &u.upload_id),
            &state::encode(&u)?,
        )
    })?;
    let mut out = json!({"Bucket": bucket, "Key": key, "UploadId": u.upload_id});
    if let Some(a) = algorithm {
        out["ChecksumType"] = json!(checksum_type_of(&a));
        out["ChecksumAlgorithm"] = json!(a);
    }
    Ok(Out::value(out))
}

fn part_number(c: &Call) -> AwsResult<u64> {
    match c.i64("PartNumber") {
        Some(n) if (1..=10000).contains(&n) => Ok(n as u64),
        _ => Err(AwsError::new(
            400,
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .with("ArgumentName", "partNumber")),
    }
}

/// Records a part, replacing (and freeing) an earlier part with the same number.
fn save_part(
    s3: &S3,
    bucket: &str,
    upload_id: &str,
    part: &Part,
    blob: Option<&virga_store::FinishedBlob>,
) -> AwsResult<()> {
    let old = s3.store.transact(|t| {
        get_upload(t, bucket, upload_id)?;
        if let Some(b) = blob {
            b.write_in(t)?;
        }
        let k = state::part_key(upload_id, part.number);
        let old: Option<Part> = t
            .get(state::PARTS, &k)?
            .map(|v| state::decode(&v))
            .transpose()?;
        t.put(state::PARTS, &k, &state::encode(part)?)?;
        Ok(old)
    });
    match old {
        Ok(Some(o)) => {
            let _ = s3.blobs.delete(&o.blob);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            let _ = s3.blobs.delete(&part.blob);
            Err(e)
        }
    }
}

pub async fn upload_part(s3: &S3, mut c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let upload_id = c.req("UploadId")?.to_string();
    let number = part_number(&c)?;
    let key = c.req("Key")?.to_string();
    let upload = s3.store.read(|r| upload_of(r, &bucket, &key, &upload_id))?;
    let body = c
        .body
        .take()
        .ok_or_else(|| AwsError::internal("missing body stream"))?;
    let stored = body::store_body(
        body,
        &c.headers,
        &s3.blobs,
        upload.checksum_algorithm.as_deref(),
        objects::MAX_PUT,
    )
    .await?;
    let part = Part {
        number,
        etag: stored.etag(),
        size: stored.size,
        last_modified: s3.clock.now_secs_f64().floor(),
        blob: stored.blob.id.clone(),
        checksums: stored.checksums.clone(),
    };
    save_part(s3, &bucket, &upload_id, &part, Some(&stored.blob))?;
    let mut out = json!({"ETag": part.etag, "ServerSideEncryption": "AES256"});
    for (alg, v) in &part.checksums {
        out[format!("Checksum{alg}")] = json!(v);
    }
    Ok(Out::value(out))
}

pub async fn upload_part_copy(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let upload_id = c.req("UploadId")?.to_string();
    let number = part_number(&c)?;
    let key = c.req("Key")?.to_string();
    s3.store.read(|r| upload_of(r, &bucket, &key, &upload_id))?;
    let (src, src_bucket) = copy_source(s3, &c)?;
    let (start, len) = match c.str("CopySourceRange") {
        Some(r) => {
            let bad = || {
                AwsError::new(400, "InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
                    .with("ArgumentName", "x-amz-copy-source-range")
                    .with("ArgumentValue", r)
            };
            let spec = r.strip_prefix("bytes=").ok_or_else(bad)?;
            let (a, b) = spec.split_once('-').ok_or_else(bad)?;
            let a: u64 = a.parse().map_err(|_| bad())?;
            let b: u64 = b.parse().map_err(|_| bad())?;
            if b < a || b >= src.size {
                return Err(AwsError::new(
                    400,
                    "InvalidArgument",
                    format!(
                        "Range specified is not valid for source object of size: {}",
                        src.size
                    ),
                )
                .with("ArgumentName", "x-amz-copy-source-range")
                .with("ArgumentValue", r));
            }
            (a, b - a + 1)
        }
        None => (0, src.size),
    };
    let (blob, md5) = copy_bytes(s3, &src, start, len).await?;
    let part = Part {
        number,
        etag: format!("\"{}\"", hex::encode(md5)),
        size: len,
        last_modified: s3.clock.now_secs_f64().floor(),
        blob,
        checksums: Vec::new(),
    };
    save_part(s3, &bucket, &upload_id, &part, None)?;
    let mut out =
        json!({"CopyPartResult": {"ETag": part.etag, "LastModified": part.last_modified}});
    if src_bucket.versioning.is_some() {
        out["CopySourceVersionId"] = json!(src.version_id);
    }
    Ok(Out::value(out))
}

pub fn list_parts(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let upload_id = c.req("UploadId")?.to_string();
    let key = c.req("Key")?.to_string();
    let (upload, parts) = s3.store.read(|r| {
        let u = upload_of(r, &bucket, &key, &upload_id)?;
        Ok((u, parts_of(r, &upload_id)?))
    })?;
    let marker = c.i64("PartNumberMarker").unwrap_or(0).max(0) as u64;
    let max = c.i64("MaxParts").unwrap_or(1000).clamp(0, 1000) as usize;
    let mut selected: Vec<&Part> = parts.iter().filter(|p| p.number > marker).collect();
    let truncated = selected.len() > max;
    selected.truncate(max);
    let account = s3.store.read(|r| state::must_bucket(r, &bucket))?.account;
    let items: Vec<Value> = selected
        .iter()
        .map(|p| {
            let mut e = json!({"PartNumber": p.number, "LastModified": p.last_modified, "ETag": p.etag, "Size": p.size});
            for (alg, v) in &p.checksums {
                e[format!("Checksum{alg}")] = json!(v);
            }
            e
        })
        .collect();
    let mut out = json!({
        "Bucket": bucket, "Key": upload.key, "UploadId": upload_id,
        "PartNumberMarker": marker, "MaxParts": max, "IsTruncated": truncated,
        "Initiator": super::buckets::owner(&account), "Owner": super::buckets::owner(&account),
        "StorageClass": upload.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
    });
    if let Some(last) = selected.last() {
        out["NextPartNumberMarker"] = json!(last.number);
    }
    if !items.is_empty() {
        out["Parts"] = Value::Array(items);
    }
    if let Some(a) = &upload.checksum_algorithm {
        out["ChecksumAlgorithm"] = json!(a);
        out["ChecksumType"] = json!(checksum_type_of(a));
    }
    Ok(Out::value(out))
}

fn invalid_part(number: i64, etag: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidPart",
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    )
    .with("PartNumber", number.to_string())
    .with("ETag", etag)
}

pub async fn complete(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let key = c.req("Key")?.to_string();
    let upload_id = c.req("UploadId")?.to_string();
    let requested: Vec<Value> = c
        .input
        .get("MultipartUpload")
        .and_then(|m| m.get("Parts"))
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    if requested.is_empty() {
        return Err(AwsError::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    let (upload, stored) = s3.store.read(|r| {
        let u = get_upload(r, &bucket, &upload_id)?;
        Ok((u, parts_of(r, &upload_id)?))
    })?;
    if upload.key != key {
        return Err(no_such_upload(&upload_id));
    }
    let mut chosen: Vec<&Part> = Vec::new();
    let mut last_number = 0i64;
    for rp in &requested {
        let n = rp.get("PartNumber").and_then(|n| n.as_i64()).unwrap_or(0);
        let etag = rp.get("ETag").and_then(|e| e.as_str()).unwrap_or("");
        if n <= last_number {
            return Err(AwsError::new(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number."));
        }
        last_number = n;
        let Some(p) = stored.iter().find(|p| p.number as i64 == n) else {
            return Err(invalid_part(n, etag));
        };
        if !objects::etag_matches(etag, &p.etag) || etag.trim().is_empty() {
            return Err(invalid_part(n, etag));
        }
        chosen.push(p);
    }
    for (i, p) in chosen.iter().enumerate() {
        if i + 1 < chosen.len() && p.size < MIN_PART {
            return Err(AwsError::new(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
            )
            .with("ProposedSize", p.size.to_string())
            .with("MinSizeAllowed", MIN_PART.to_string())
            .with("PartNumber", p.number.to_string())
            .with("ETag", p.etag.as_str()));
        }
    }
    let mut md5 = md5::Md5::new();
    for p in &chosen {
        let raw = hex::decode(p.etag.trim_matches('"')).unwrap_or_default();
        md5.update(&raw);
    }
    let etag = format!("\"{}-{}\"", hex::encode(md5.finalize()), chosen.len());
    let mut checksums = Vec::new();
    if let Some(alg) = &upload.checksum_algorithm {
        let mut concat = Vec::new();
        for p in &chosen {
            if let Some((_, v)) = p.checksums.iter().find(|(a, _)| a == alg) {
                concat.extend(B64.decode(v).unwrap_or_default());
            }
        }
        if alg == "CRC64NVME" {
            // CRC64NVME is a full-object checksum on S3, even for multipart objects.
            let parts: Vec<BlobPart> = chosen
                .iter()
                .map(|p| BlobPart {
                    blob: p.blob.clone(),
                    size: p.size,
                })
                .collect();
            checksums.push((alg.clone(), full_object_crc64(s3, parts).await?));
        } else {
            let digest = match alg.as_str() {
                "CRC32" => crc32fast::hash(&concat).to_be_bytes().to_vec(),
                "CRC32C" => crc32c::crc32c(&concat).to_be_bytes().to_vec(),
                "SHA1" => sha1::Sha1::digest(&concat).to_vec(),
                _ => sha2::Sha256::digest(&concat).to_vec(),
            };
            checksums.push((
                alg.clone(),
                format!("{}-{}", B64.encode(digest), chosen.len()),
            ));
        }
    }
    let used: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
    let v = ObjectVersion {
        key: key.clone(),
        size: chosen.iter().map(|p| p.size).sum(),
        etag,
        last_modified: s3.clock.now_secs_f64().floor(),
        headers: upload.headers.clone(),
        metadata: upload.metadata.clone(),
        checksum_type: checksums
            .first()
            .map(|(a, _)| checksum_type_of(a).to_string()),
        checksums,
        tags: upload.tags.clone(),
        parts: chosen
            .iter()
            .map(|p| BlobPart {
                blob: p.blob.clone(),
                size: p.size,
            })
            .collect(),
        part_sizes: chosen.iter().map(|p| p.size).collect(),
        storage_class: upload.storage_class.clone(),
        ..Default::default()
    };
    let uid = upload_id.clone();
    let b2 = bucket.clone();
    let (v, b) = write_version_with(
        s3,
        &bucket,
        v,
        &WriteCondition::from_call(&c),
        "ObjectCreated:CompleteMultipartUpload",
        &c.ctx,
        move |t| {
            // The upload must still exist: a concurrent abort or complete wins once.
            get_upload(t, &b2, &uid)?;
            t.delete(state::UPLOADS, &state::upload_key(&b2, &uid))?;
            let all = remove_parts(t, &uid)?;
            Ok(all.into_iter().filter(|b| !used.contains(b)).collect())
        },
    )?;
    let mut out = json!({
        "Location": format!("http://{}/{}/{}", c.ctx.listen_addr, bucket, key),
        "Bucket": bucket, "Key": key, "ETag": v.etag, "ServerSideEncryption": "AES256",
    });
    if b.versioning.is_some() {
        out["VersionId"] = json!(v.version_id);
    }
    for (alg, val) in &v.checksums {
        out[format!("Checksum{alg}")] = json!(val);
    }
    if let Some(t) = &v.checksum_type {
        out["ChecksumType"] = json!(t);
    }
    Ok(Out::value(out))
}

/// How a multipart object's checksum is formed: CRC64NVME only as a full-object
/// checksum, the others as a checksum of the parts' checksums.
fn checksum_type_of(algorithm: &str) -> &'static str {
    if algorithm == "CRC64NVME" {
        "FULL_OBJECT"
    } else {
        "COMPOSITE"
    }
}

/// CRC64NVME of the whole object made of `parts`, read back from the blobs.
async fn full_object_crc64(s3: &S3, parts: Vec<BlobPart>) -> AwsResult<String> {
    let blobs = s3.blobs.clone();
    tokio::task::spawn_blocking(move || -> AwsResult<String> {
        let mut digest = crate::body::CRC64NVME.digest();
        let mut buf = vec![0u8; 1 << 20];
        for p in &parts {
            let mut r = blobs.open(&p.blob, 0, p.size)?;
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)
                    .map_err(|e| AwsError::internal(format!("read: {e}")))?;
                if n == 0 {
                    break;
                }
                digest.update(&buf[..n]);
            }
        }
        Ok(B64.encode(digest.finalize().to_be_bytes()))
    })
    .await
    .map_err(|e| AwsError::internal(format!("checksum task: {e}")))?
}

pub async fn abort(s3: &S3, c: Call) -> AwsResult<Out> {
    let bucket = c.req("Bucket")?.to_string();
    let upload_id = c.req("UploadId")?.to_string();
    let key = c.req("Key")?.to_string();
    let blobs = s3.store.transact(|t| {
        upload_of(t, &bucket, &key, &upload_id)?;
        t.delete(state::UPLOADS, &state::upload_key(&bucket, &upload_id))?;
        remove_parts(t, &upload_id)
    })?;
    for b in blobs {
        let _ = s3.blobs.delete(&b);
    }
    Ok(Out {
        status: Some(204),
        ..Default::default()
    })
}
