//! Bucket lifecycle: create, head, list, delete, location, ACL.

use crate::state::{self, Bucket};
use crate::{Call, Out, S3};
use serde_json::{json, Value};
use virga_core::service::full_body;
use virga_core::{AwsError, AwsResult, DEFAULT_ACCOUNT};

fn invalid_name(name: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidBucketName",
        "The specified bucket is not valid.",
    )
    .with("BucketName", name)
}

/// AWS's general-purpose bucket naming rules.
pub fn validate_bucket_name(name: &str) -> AwsResult<()> {
    let b = name.as_bytes();
    let ok_chars = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-');
    let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let looks_like_ip = name.split('.').count() == 4
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    if !(3..=63).contains(&b.len())
        || !ok_chars
        || !edge(b.first())
        || !edge(b.last())
        || name.contains("..")
        || name.contains(".-")
        || name.contains("-.")
        || looks_like_ip
        || name.starts_with("xn--")
        || name.starts_with("sthree-")
        || name.ends_with("-s3alias")
        || name.ends_with("--ol-s3")
    {
        return Err(invalid_name(name));
    }
    Ok(())
}

pub fn owner(account: &str) -> Value {
    json!({"DisplayName": "virga", "ID": format!("{:0>64}", account)})
}

pub fn create_bucket(s3: &S3, c: Call) -> AwsResult<Out> {
    let name = c.req("Bucket")?.to_string();
    validate_bucket_name(&name)?;
    let constraint = c
        .input
        .get("CreateBucketConfiguration")
        .and_then(|v| v.get("LocationConstraint"))
        .and_then(|v| v.as_str())
        .map(|s| s.to_string());
    let region = match &constraint {
        Some(r) if r == "us-east-1" => {
            return Err(AwsError::new(
                400,
                "InvalidLocationConstraint",
                "The specified location-constraint is not valid",
            )
            .with("LocationConstraint", r.as_str()))
        }
        Some(r) if r.is_empty() => "us-east-1".to_string(),
        Some(r) if !virga_core::REGIONS.contains(&r.as_str()) && r != "EU" => {
            return Err(AwsError::new(
                400,
                "InvalidLocationConstraint",
                "The specified location-constraint is not valid",
            )
            .with("LocationConstraint", r.as_str()))
        }
        Some(r) if c.ctx.region != "us-east-1" && *r != c.ctx.region => {
            return Err(AwsError::new(
                400,
                "IllegalLocationConstraintException",
                format!(
                    "The {r} location constraint is incompatible for the region specific endpoint this request was sent to."
                ),
            ))
        }
        Some(r) => r.clone(),
        None if c.ctx.region != "us-east-1" => {
            return Err(AwsError::new(
                400,
                "IllegalLocationConstraintException",
                "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.",
            ))
        }
        None => "us-east-1".to_string(),
    };
    let account = c.ctx.account.clone();
    let now = s3.clock.now_secs_f64();
    let versioning_locked = c.input.get("ObjectLockEnabledForBucket") == Some(&Value::Bool(true));
    let acl = c.str("ACL").map(|s| s.to_string());
    let ownership = c
        .str("ObjectOwnership")
        .map(|o| json!({"Rules": [{"ObjectOwnership": o}]}));
    s3.store.transact(|t| {
        if let Some(existing) = state::get_bucket(t, &name)? {
            if existing.account == account {
                // For legacy compatibility, us-east-1 answers 200 to re-creating your own bucket.
                if existing.region == "us-east-1" && region == "us-east-1" {
                    return Ok(());
                }
                return Err(AwsError::new(
                    409,
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                )
                .with("BucketName", name.as_str()));
            }
            return Err(AwsError::new(
                409,
                "BucketAlreadyExists",
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            )
            .with("BucketName", name.as_str()));
        }
        let b = Bucket {
            name: name.clone(),
            region: region.clone(),
            account: account.clone(),
            created: now,
            versioning: versioning_locked.then(|| "Enabled".to_string()),
            acl: acl.clone(),
            ownership: ownership.clone(),
            object_lock_enabled: versioning_locked,
            ..Default::default()
        };
        state::put_bucket(t, &b)
    })?;
    Ok(Out::value(json!({"Location": format!("/{name}")})))
}

pub fn head_bucket(s3: &S3, c: Call) -> AwsResult<Out> {
    let name = c.req("Bucket")?;
    let b = s3.store.read(|r| state::must_bucket(r, name))?;
    Ok(Out::value(
        json!({"BucketRegion": b.region, "AccessPointAlias": false}),
    ))
}

pub fn list_buckets(s3: &S3, c: Call) -> AwsResult<Out> {
    let account = c.ctx.account.clone();
    let prefix = c.str("Prefix").unwrap_or("").to_string();
    let region = c.str("BucketRegion").map(|s| s.to_string());
    let max = c.i64("MaxBuckets").unwrap_or(10_000).clamp(1, 10_000) as usize;
    let after = c.str("ContinuationToken").unwrap_or("").to_string();
    let rows = s3.store.read(|r| {
        r.scan(
            state::BUCKETS,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            usize::MAX,
            false,
        )
    })?;
    let mut buckets = Vec::new();
    let mut token = None;
    for (_, v) in rows {
        let b: Bucket = state::decode(&v)?;
        if b.account != account
            || !b.name.starts_with(&prefix)
            || region.as_ref().is_some_and(|r| *r != b.region)
            || (!after.is_empty() && b.name.as_str() <= after.as_str())
        {
            continue;
        }
        if buckets.len() == max {
            token = buckets
                .last()
                .and_then(|x: &Value| x.get("Name"))
                .and_then(|n| n.as_str())
                .map(|s| s.to_string());
            break;
        }
        buckets.push(json!({"Name": b.name, "CreationDate": b.created, "BucketRegion": b.region}));
    }
    let mut out = json!({"Buckets": buckets, "Owner": owner(&account)});
    if let Some(t) = token {
        out["ContinuationToken"] = json!(t);
    }
    if !prefix.is_empty() {
        out["Prefix"] = json!(prefix);
    }
    Ok(Out::value(out))
}

pub fn delete_bucket(s3: &S3, c: Call) -> AwsResult<Out> {
    let name = c.req("Bucket")?.to_string();
    let upload_blobs = s3.store.transact(|t| {
        state::must_bucket(t, &name)?;
        let prefix = virga_store::KeyBuf::new().str(&name).into_vec();
        if state::any_with_prefix(t, state::VERSIONS, &prefix)? {
            return Err(AwsError::new(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            )
            .with("BucketName", name.as_str()));
        }
        // Incomplete multipart uploads go with the bucket.
        let end = virga_store::prefix_end(&prefix);
        let uploads = t.scan(
            state::UPLOADS,
            std::ops::Bound::Included(&prefix),
            end.as_deref()
                .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            usize::MAX,
            false,
        )?;
        let mut blobs = Vec::new();
        for (k, v) in uploads {
            let u: state::Upload = state::decode(&v)?;
            blobs.extend(crate::ops::multipart::remove_parts(t, &u.upload_id)?);
            t.delete(state::UPLOADS, &k)?;
        }
        t.delete(state::BUCKETS, &state::bucket_key(&name))?;
        Ok(blobs)
    })?;
    for b in upload_blobs {
        let _ = s3.blobs.delete(&b);
    }
    Ok(Out {
        status: Some(204),
        ..Default::default()
    })
}

pub fn get_bucket_location(s3: &S3, c: Call) -> AwsResult<Out> {
    let name = c.req("Bucket")?;
    let b = s3.store.read(|r| state::must_bucket(r, name))?;
    // The document element itself carries the value; us-east-1 is an empty element.
    let body = if b.region == "us-east-1" {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\"/>",
            crate::XMLNS
        )
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
            crate::XMLNS,
            b.region
        )
    };
    Ok(Out {
        body: Some(full_body(body)),
        headers: vec![("content-type".into(), "application/xml".into())],
        ..Default::default()
    })
}

/// The owner-full-control policy every bucket and object has (ACLs are recorded, not enforced).
pub fn full_control_acl(account: &str) -> Value {
    json!({
        "Owner": owner(account),
        "Grants": [{
            "Grantee": {"ID": owner(account)["ID"], "DisplayName": "virga", "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL"
        }]
    })
}

pub fn get_bucket_acl(s3: &S3, c: Call) -> AwsResult<Out> {
    let name = c.req("Bucket")?;
    let b = s3.store.read(|r| state::must_bucket(r, name))?;
    let account = if b.account.is_empty() {
        DEFAULT_ACCOUNT
    } else {
        &b.account
    };
    Ok(Out::value(full_control_acl(account)))
}

pub fn put_bucket_acl(s3: &S3, c: Call) -> AwsResult<Out> {
    let name = c.req("Bucket")?.to_string();
    let acl = c.str("ACL").map(|s| s.to_string());
    s3.store.transact(|t| {
        let mut b = state::must_bucket(t, &name)?;
        b.acl = acl.clone();
        state::put_bucket(t, &b)
    })?;
    Ok(Out::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.1", "a1b", &"a".repeat(63)] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "UPPER",
            "bad..name",
            "-abc",
            "abc-",
            "192.168.1.1",
            "a_b",
            "xn--abc",
            &"a".repeat(64),
            "a.-b",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
