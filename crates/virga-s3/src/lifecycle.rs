//! Lifecycle rules applied: objects whose expiration (creation time plus the rule's
//! days, rounded up to the next midnight UTC, as S3 computes it; or the rule's date)
//! has passed by Virga's clock are expired by a background sweep. The sweep runs soon
//! after the clock is moved (`POST /_virga/clock`) and otherwise every minute.

use crate::state::{self, Bucket, ObjectVersion};
use crate::S3;
use serde_json::Value;
use std::ops::Bound;
use std::sync::Arc;
use virga_core::AwsResult;
use virga_store::KeyBuf;

const DAY: f64 = 86400.0;

fn rule_prefix(rule: &Value) -> String {
    rule.pointer("/Filter/Prefix")
        .or_else(|| rule.pointer("/Filter/And/Prefix"))
        .or_else(|| rule.get("Prefix"))
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string()
}

fn rule_tags(rule: &Value) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    if let Some(t) = rule.pointer("/Filter/Tag") {
        tags.push(t.clone());
    }
    if let Some(ts) = rule.pointer("/Filter/And/Tags").and_then(|t| t.as_array()) {
        tags.extend(ts.iter().cloned());
    }
    tags.iter()
        .map(|t| {
            (
                t.get("Key")
                    .and_then(|k| k.as_str())
                    .unwrap_or("")
                    .to_string(),
                t.get("Value")
                    .and_then(|k| k.as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

fn applies(rule: &Value, v: &ObjectVersion) -> bool {
    rule.get("Status").and_then(|s| s.as_str()) == Some("Enabled")
        && v.key.starts_with(&rule_prefix(rule))
        && rule_tags(rule).iter().all(|t| v.tags.contains(t))
}

/// When `rule` expires `v`, in epoch seconds.
fn expiry(rule: &Value, v: &ObjectVersion) -> Option<f64> {
    let exp = rule.get("Expiration")?;
    if let Some(days) = exp.get("Days").and_then(|d| d.as_i64()) {
        let t = v.last_modified + days as f64 * DAY;
        return Some((t / DAY).ceil() * DAY);
    }
    exp.get("Date").and_then(|d| d.as_f64())
}

fn rules(b: &Bucket) -> Vec<Value> {
    b.lifecycle
        .as_ref()
        .and_then(|l| l.get("Rules"))
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default()
}

/// The `x-amz-expiration` header for an object a rule will expire.
pub fn expiration_header(b: &Bucket, v: &ObjectVersion) -> Option<String> {
    rules(b).iter().filter(|r| applies(r, v)).find_map(|r| {
        let t = expiry(r, v)?;
        let id = r.get("ID").and_then(|i| i.as_str()).unwrap_or("");
        Some(format!(
            "expiry-date=\"{}\", rule-id=\"{}\"",
            virga_protocol::time_fmt::rfc822(t),
            id
        ))
    })
}

/// Expires what is due in every bucket with lifecycle rules.
pub fn sweep(s3: &S3) -> AwsResult<usize> {
    let now = s3.clock.now_secs_f64();
    let buckets = s3.store.read(|r| {
        r.scan(
            state::BUCKETS,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            false,
        )
    })?;
    let mut expired = 0;
    for (_, raw) in buckets {
        let b: Bucket = state::decode(&raw)?;
        let rules = rules(&b);
        if rules.is_empty() {
            continue;
        }
        for rule in rules.iter().filter(|r| r.get("Expiration").is_some()) {
            let lower = KeyBuf::new()
                .str(&b.name)
                .partial(rule_prefix(rule).as_bytes())
                .into_vec();
            let upper = virga_store::prefix_end(&lower);
            let mut cursor = lower.clone();
            let mut first = true;
            loop {
                let rows = s3.store.read(|r| {
                    r.scan(
                        state::OBJECTS,
                        if first {
                            Bound::Included(&cursor)
                        } else {
                            Bound::Excluded(&cursor)
                        },
                        upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                        1000,
                        false,
                    )
                })?;
                first = false;
                let n = rows.len();
                for (k, raw) in rows {
                    cursor = k;
                    let v: ObjectVersion = state::decode(&raw)?;
                    if v.delete_marker || !applies(rule, &v) {
                        continue;
                    }
                    if expiry(rule, &v).is_some_and(|t| t <= now) {
                        let ctx = system_context(s3);
                        crate::ops::objects::delete_one(s3, &b.name, &v.key, None, &ctx)?;
                        expired += 1;
                    }
                }
                if n < 1000 {
                    break;
                }
            }
        }
        for rule in rules
            .iter()
            .filter(|r| r.get("Status").and_then(|s| s.as_str()) == Some("Enabled"))
        {
            expired += expire_versions(s3, &b, rule, now)?;
            expired += abort_uploads(s3, &b, rule, now)?;
        }
    }
    Ok(expired)
}

/// Midnight UTC after `t + days`, as S3 rounds lifecycle times.
fn after_days(t: f64, days: i64) -> f64 {
    ((t + days as f64 * DAY) / DAY).ceil() * DAY
}

/// NoncurrentVersionExpiration (a version becomes noncurrent when a newer one is
/// written) and ExpiredObjectDeleteMarker (a delete marker with nothing behind it).
fn expire_versions(s3: &S3, b: &Bucket, rule: &Value, now: f64) -> AwsResult<usize> {
    let noncurrent_days = rule
        .pointer("/NoncurrentVersionExpiration/NoncurrentDays")
        .and_then(|d| d.as_i64());
    let keep_newer = rule
        .pointer("/NoncurrentVersionExpiration/NewerNoncurrentVersions")
        .and_then(|d| d.as_u64())
        .unwrap_or(0) as usize;
    let lone_markers = rule
        .pointer("/Expiration/ExpiredObjectDeleteMarker")
        .and_then(|d| d.as_bool())
        == Some(true);
    if noncurrent_days.is_none() && !lone_markers {
        return Ok(0);
    }
    let lower = KeyBuf::new()
        .str(&b.name)
        .partial(rule_prefix(rule).as_bytes())
        .into_vec();
    let upper = virga_store::prefix_end(&lower);
    let rows = s3.store.read(|r| {
        r.scan(
            state::VERSIONS,
            Bound::Included(&lower),
            upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            usize::MAX,
            false,
        )
    })?;
    // Versions come grouped by key, newest first.
    let mut by_key: Vec<Vec<ObjectVersion>> = Vec::new();
    for (_, raw) in rows {
        let v: ObjectVersion = state::decode(&raw)?;
        match by_key.last_mut() {
            Some(group) if group[0].key == v.key => group.push(v),
            _ => by_key.push(vec![v]),
        }
    }
    let ctx = system_context(s3);
    let mut done = 0;
    for versions in by_key {
        let mut removed = 0;
        if let Some(days) = noncurrent_days {
            for (i, v) in versions.iter().enumerate().skip(1) {
                // Noncurrent since the next newer version was written.
                let since = versions[i - 1].last_modified;
                if i > keep_newer && after_days(since, days) <= now {
                    crate::ops::objects::delete_one(
                        s3,
                        &b.name,
                        &v.key,
                        Some(&v.version_id),
                        &ctx,
                    )?;
                    done += 1;
                    removed += 1;
                }
            }
        }
        // A marker left alone (also by the expirations just above) goes too.
        if lone_markers && versions.len() - removed == 1 && versions[0].delete_marker {
            crate::ops::objects::delete_one(
                s3,
                &b.name,
                &versions[0].key,
                Some(&versions[0].version_id),
                &ctx,
            )?;
            done += 1;
        }
    }
    Ok(done)
}

/// AbortIncompleteMultipartUpload: uploads started more than the rule's days ago.
fn abort_uploads(s3: &S3, b: &Bucket, rule: &Value, now: f64) -> AwsResult<usize> {
    let Some(days) = rule
        .pointer("/AbortIncompleteMultipartUpload/DaysAfterInitiation")
        .and_then(|d| d.as_i64())
    else {
        return Ok(0);
    };
    let prefix = rule_prefix(rule);
    let lower = KeyBuf::new().str(&b.name).into_vec();
    let upper = virga_store::prefix_end(&lower);
    let rows = s3.store.read(|r| {
        r.scan(
            state::UPLOADS,
            Bound::Included(&lower),
            upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            usize::MAX,
            false,
        )
    })?;
    let mut done = 0;
    for (k, raw) in rows {
        let u: state::Upload = state::decode(&raw)?;
        if !u.key.starts_with(&prefix) || after_days(u.initiated, days) > now {
            continue;
        }
        let blobs = s3.store.transact(|t| {
            t.delete(state::UPLOADS, &k)?;
            crate::ops::multipart::remove_parts(t, &u.upload_id)
        })?;
        for blob in blobs {
            let _ = s3.blobs.delete(&blob);
        }
        done += 1;
    }
    Ok(done)
}

fn system_context(s3: &S3) -> virga_core::RequestContext {
    virga_core::RequestContext::system(s3.clock.clone(), "s3.amazonaws.com")
}

pub fn start(s3: Arc<S3>) {
    tokio::spawn(async move {
        let mut last_offset = s3.clock.offset_secs();
        let mut last_sweep = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let offset = s3.clock.offset_secs();
            if offset != last_offset || last_sweep.elapsed().as_secs() >= 60 {
                last_offset = offset;
                last_sweep = std::time::Instant::now();
                if let Err(e) = sweep(&s3) {
                    tracing::warn!("lifecycle sweep failed: {e}");
                }
            }
        }
    });
}
