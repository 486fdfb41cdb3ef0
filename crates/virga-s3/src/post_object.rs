//! Browser uploads: `POST /bucket` with a `multipart/form-data` body carrying the key,
//! a base64 policy document and its signature (what boto3's `generate_presigned_post`
//! produces). The policy's expiration and conditions are checked as S3 does, the
//! signature for keys Virga knows, and the file part streams into a blob.

use crate::body;
use crate::ops::objects::{write_version, WriteCondition};
use crate::state::{self, BlobPart, ObjectVersion};
use crate::S3;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http::Response;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use virga_core::service::{empty_body, full_body};
use virga_core::{AwsError, AwsResult, Body, RequestContext};

fn denied(msg: impl Into<String>) -> AwsError {
    AwsError::new(403, "AccessDenied", msg)
}

fn invalid_policy(detail: &str) -> AwsError {
    denied(format!("Invalid according to Policy: {detail}"))
}

/// Whether a request is a browser upload.
pub fn is_post_object(method: &http::Method, path: &str, headers: &http::HeaderMap) -> bool {
    method == http::Method::POST
        && !path.trim_matches('/').contains('/')
        && headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Checks the policy document against the form fields (names lowercased).
fn check_policy(
    policy: &Value,
    fields: &BTreeMap<String, String>,
    bucket: &str,
    now: f64,
) -> AwsResult<Option<(u64, u64)>> {
    let expiration = policy
        .get("expiration")
        .and_then(|e| e.as_str())
        .and_then(virga_protocol::time_fmt::parse_timestamp)
        .ok_or_else(|| invalid_policy("Policy could not be parsed as a valid JSON string."))?;
    if now > expiration {
        return Err(invalid_policy("Policy expired."));
    }
    let mut length_range = None;
    let field = |name: &str| -> String {
        let n = name.trim_start_matches('$').to_ascii_lowercase();
        if n == "bucket" {
            return bucket.to_string();
        }
        fields.get(&n).cloned().unwrap_or_default()
    };
    for cond in policy
        .get("conditions")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        let fail = || invalid_policy(&format!("Policy Condition failed: {cond}"));
        match cond {
            Value::Object(o) => {
                for (k, v) in o {
                    if field(k) != v.as_str().unwrap_or("") {
                        return Err(fail());
                    }
                }
            }
            Value::Array(a) => match (a.first().and_then(|x| x.as_str()), a.get(1), a.get(2)) {
                (Some(op), Some(Value::String(name)), Some(Value::String(v)))
                    if op.eq_ignore_ascii_case("eq") =>
                {
                    if field(name) != *v {
                        return Err(fail());
                    }
                }
                (Some(op), Some(Value::String(name)), Some(Value::String(v)))
                    if op.eq_ignore_ascii_case("starts-with") =>
                {
                    if !field(name).starts_with(v.as_str()) {
                        return Err(fail());
                    }
                }
                (Some("content-length-range"), Some(min), Some(max)) => {
                    let (Some(min), Some(max)) = (min.as_u64(), max.as_u64()) else {
                        return Err(fail());
                    };
                    length_range = Some((min, max));
                }
                _ => return Err(fail()),
            },
            _ => return Err(fail()),
        }
    }
    Ok(length_range)
}

/// Verifies the form's policy signature for a known access key.
/// Computes the signature a form should carry, given the secret key.
type ExpectedSignature = Box<dyn Fn(&str) -> String>;

fn check_signature(s3: &S3, fields: &BTreeMap<String, String>, policy_b64: &str) -> AwsResult<()> {
    let (credentials, strict) = s3.auth.get().cloned().unwrap_or_default();
    let mismatch = || {
        AwsError::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
    };
    // (access key, signature sent, signature expected for a secret)
    let (key, sent, expected): (String, Option<String>, ExpectedSignature) =
        if let Some(credential) = fields.get("x-amz-credential") {
            let parts: Vec<String> = credential.split('/').map(|p| p.to_string()).collect();
            let [key, date, region, service, _] = parts.as_slice() else {
                return Err(AwsError::new(
                    400,
                    "InvalidArgument",
                    "Invalid credential in the form",
                )
                .with("ArgumentName", "x-amz-credential"));
            };
            let (date, region, service) = (date.clone(), region.clone(), service.clone());
            let policy = policy_b64.to_string();
            (
                key.clone(),
                fields
                    .get("x-amz-signature")
                    .map(|s| s.to_ascii_lowercase()),
                Box::new(move |secret: &str| {
                    virga_core::auth::policy_signature_v4(secret, &date, &region, &service, &policy)
                }),
            )
        } else if let Some(key) = fields.get("awsaccesskeyid") {
            let policy = policy_b64.to_string();
            (
                key.clone(),
                fields.get("signature").cloned(),
                Box::new(move |secret: &str| {
                    virga_core::auth::policy_signature_v2(secret, &policy)
                }),
            )
        } else if strict {
            return Err(denied("Access Denied"));
        } else {
            return Ok(());
        };
    match credentials.get(&key) {
        Some(secret) if sent.as_deref() != Some(expected(secret).as_str()) => Err(mismatch()),
        None if strict => Err(AwsError::new(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )),
        _ => Ok(()),
    }
}

pub async fn serve(
    s3: &S3,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    bucket: &str,
    body: Body,
) -> AwsResult<Response<Body>> {
    ctx.set_operation("PostObject");
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        AwsError::new(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    })?;
    s3.store.read(|r| state::must_bucket(r, bucket))?;
    let stream = http_body_util::BodyStream::new(body).filter_map(|frame| async move {
        match frame {
            Ok(f) => f.into_data().ok().map(Ok::<Bytes, std::io::Error>),
            Err(e) => Some(Err(e)),
        }
    });
    let malformed = |_| {
        AwsError::new(
            400,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    };
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut meta = Map::new();
    let mut stored = None;
    let mut filename = String::new();
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name == "file" {
            filename = field.file_name().unwrap_or("").to_string();
            if !fields.contains_key("content-type") {
                if let Some(ct) = field.content_type() {
                    fields.insert("content-type".into(), ct.to_string());
                }
            }
            // The file is the last field; everything after it is ignored, as on S3.
            let data = field.map(|c| c.map(http_body::Frame::data).map_err(std::io::Error::other));
            let file_body: Body = http_body_util::StreamBody::new(data).boxed_unsync();
            stored = Some(
                body::store_body(
                    file_body,
                    &http::HeaderMap::new(),
                    &s3.blobs,
                    None,
                    crate::ops::objects::MAX_PUT,
                )
                .await?,
            );
            break;
        }
        let value = field.text().await.map_err(malformed)?;
        if let Some(m) = name.strip_prefix("x-amz-meta-") {
            meta.insert(m.to_string(), Value::String(value.clone()));
        }
        fields.insert(name, value);
    }
    let Some(stored) = stored else {
        return Err(AwsError::new(
            400,
            "InvalidArgument",
            "POST requires exactly one file upload per request.",
        )
        .with("ArgumentName", "file"));
    };
    let result = finish(s3, ctx, bucket, &fields, meta, &filename, &stored).await;
    if result.is_err() {
        let _ = s3.blobs.delete(&stored.blob.id);
    }
    result
}

async fn finish(
    s3: &S3,
    ctx: &RequestContext,
    bucket: &str,
    fields: &BTreeMap<String, String>,
    metadata: Map<String, Value>,
    filename: &str,
    stored: &body::Stored,
) -> AwsResult<Response<Body>> {
    let key = fields
        .get("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| AwsError::new(400, "InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.").with("ArgumentName", "key"))?
        .replace("${filename}", filename);
    crate::ops::objects::validate_key(&key)?;
    let mut with_key = fields.clone();
    with_key.insert("key".into(), key.clone());
    if let Some(policy_b64) = fields.get("policy") {
        let policy: Value = base64::engine::general_purpose::STANDARD
            .decode(policy_b64.trim())
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or_else(|| invalid_policy("Policy could not be parsed as a valid JSON string."))?;
        check_signature(s3, fields, policy_b64)?;
        if let Some((min, max)) = check_policy(&policy, &with_key, bucket, s3.clock.now_secs_f64())?
        {
            if stored.size < min {
                return Err(AwsError::new(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                ));
            }
            if stored.size > max {
                return Err(AwsError::new(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                ));
            }
        }
    } else if s3.auth.get().is_some_and(|(_, strict)| *strict) {
        return Err(denied("Access Denied"));
    }
    let mut headers = Map::new();
    for (field, member) in [
        ("content-type", "ContentType"),
        ("cache-control", "CacheControl"),
        ("content-disposition", "ContentDisposition"),
        ("content-encoding", "ContentEncoding"),
    ] {
        if let Some(v) = fields.get(field) {
            headers.insert(member.into(), Value::String(v.clone()));
        }
    }
    let v = ObjectVersion {
        key: key.clone(),
        size: stored.size,
        etag: stored.etag(),
        last_modified: s3.clock.now_secs_f64().floor(),
        headers,
        metadata,
        tags: crate::ops::objects::tags_from_header(fields.get("tagging").map(|s| s.as_str()))?,
        parts: vec![BlobPart {
            blob: stored.blob.id.clone(),
            size: stored.size,
        }],
        ..Default::default()
    };
    let (v, b) = crate::ops::objects::write_version_with(
        s3,
        bucket,
        v,
        &WriteCondition::default(),
        "ObjectCreated:Post",
        ctx,
        |t| {
            stored.blob.write_in(t)?;
            Ok(Vec::new())
        },
    )?;
    let _ = write_version;
    let location = format!(
        "http://{}/{}/{}",
        if ctx.host.is_empty() {
            &ctx.listen_addr
        } else {
            &ctx.host
        },
        bucket,
        key
    );
    let mut resp = Response::builder()
        .header("etag", v.etag.as_str())
        .header("location", location.as_str());
    if b.versioning.is_some() {
        resp = resp.header("x-amz-version-id", v.version_id.as_str());
    }
    if let Some(redirect) = fields
        .get("success_action_redirect")
        .filter(|r| !r.is_empty())
    {
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let target = format!(
            "{redirect}{sep}bucket={}&key={}&etag={}",
            enc(bucket),
            enc(&key),
            enc(&v.etag)
        );
        return resp
            .status(303)
            .header("location", target)
            .body(empty_body())
            .map_err(|e| AwsError::internal(e.to_string()));
    }
    match fields.get("success_action_status").map(|s| s.as_str()) {
        Some("201") => {
            let mut xml =
                String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse>");
            for (k, val) in [
                ("Location", location.as_str()),
                ("Bucket", bucket),
                ("Key", key.as_str()),
                ("ETag", v.etag.as_str()),
            ] {
                virga_protocol::xml::leaf(&mut xml, k, val);
            }
            xml.push_str("</PostResponse>");
            resp.status(201)
                .header("content-type", "application/xml")
                .body(full_body(xml))
        }
        Some("200") => resp.status(200).body(empty_body()),
        _ => resp.status(204).body(empty_body()),
    }
    .map_err(|e| AwsError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_conditions() {
        let mut f = BTreeMap::new();
        f.insert("key".to_string(), "user1/photo.jpg".to_string());
        f.insert("content-type".to_string(), "image/jpeg".to_string());
        let policy = json!({"expiration": "2100-01-01T00:00:00Z", "conditions": [
            {"bucket": "b"}, ["starts-with", "$key", "user1/"], ["eq", "$Content-Type", "image/jpeg"],
            ["content-length-range", 1, 100]]});
        assert_eq!(check_policy(&policy, &f, "b", 0.0).unwrap(), Some((1, 100)));
        assert!(check_policy(&policy, &f, "other", 0.0).is_err());
        f.insert("key".to_string(), "user2/photo.jpg".to_string());
        assert!(check_policy(&policy, &f, "b", 0.0).is_err());
        let expired = json!({"expiration": "2000-01-01T00:00:00Z", "conditions": []});
        assert_eq!(
            check_policy(&expired, &f, "b", 1e9 * 2.0)
                .unwrap_err()
                .message,
            "Invalid according to Policy: Policy expired."
        );
    }
}
