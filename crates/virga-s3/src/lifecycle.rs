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
    }
    Ok(expired)
}

fn system_context(s3: &S3) -> virga_core::RequestContext {
    virga_core::RequestContext {
        request_id: virga_core::request_id(),
        account: virga_core::DEFAULT_ACCOUNT.into(),
        region: virga_core::DEFAULT_REGION.into(),
        access_key: Some("s3.amazonaws.com".into()),
        host: String::new(),
        listen_addr: String::new(),
        clock: s3.clock.clone(),
        started: std::time::Instant::now(),
        operation: Default::default(),
    }
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
