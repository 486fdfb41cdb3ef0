//! S3 event notifications. A write that matches a bucket's notification configuration
//! records the event in the `s3.outbox` table in the same transaction as the write, so
//! no acknowledged change loses its event; a background task hands outbox events to the
//! internal bus and removes them once a consumer (SQS, SNS, Lambda) has taken them.
//! Until those services exist, events wait in the outbox.

use crate::state::{self, Bucket, ObjectVersion};
use crate::S3;
use serde_json::{json, Value};
use std::ops::Bound;
use std::sync::Arc;
use virga_core::events::Event;
use virga_core::{AwsResult, RequestContext};
use virga_store::{KeyBuf, KvTxn};

const EVENT_NAMES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
];

pub fn valid_event_name(e: &str) -> bool {
    EVENT_NAMES.contains(&e)
}

fn event_matches(pattern: &str, event: &str) -> bool {
    let p = pattern.strip_prefix("s3:").unwrap_or(pattern);
    match p.strip_suffix('*') {
        Some(prefix) => event.starts_with(prefix),
        None => p == event,
    }
}

fn filter_matches(cfg: &Value, key: &str) -> bool {
    let rules = cfg
        .pointer("/Filter/Key/FilterRules")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    rules.iter().all(|r| {
        let name = r
            .get("Name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let value = r.get("Value").and_then(|n| n.as_str()).unwrap_or("");
        match name.as_str() {
            "prefix" => key.starts_with(value),
            "suffix" => key.ends_with(value),
            _ => true,
        }
    })
}

/// The key as S3 writes it in event records: URL-encoded with spaces as `+` and `/`
/// kept (what `urllib.parse.unquote_plus` in a handler undoes).
fn event_key(key: &str) -> String {
    key.split('/')
        .map(|seg| form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// Records the notifications `event` (e.g. `ObjectCreated:Put`) triggers on `bucket`.
pub fn record(
    t: &mut dyn KvTxn,
    s3: &S3,
    bucket: &Bucket,
    event: &str,
    v: &ObjectVersion,
    ctx: &RequestContext,
) -> AwsResult<()> {
    let Some(cfg) = &bucket.notification else {
        return Ok(());
    };
    for (list, arn_field) in [
        ("QueueConfigurations", "QueueArn"),
        ("TopicConfigurations", "TopicArn"),
        ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
    ] {
        for c in cfg
            .get(list)
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            let events = c
                .get("Events")
                .and_then(|e| e.as_array())
                .cloned()
                .unwrap_or_default();
            if !events
                .iter()
                .any(|e| event_matches(e.as_str().unwrap_or(""), event))
            {
                continue;
            }
            if !filter_matches(c, &v.key) {
                continue;
            }
            let target = c
                .get(arn_field)
                .and_then(|a| a.as_str())
                .unwrap_or("")
                .to_string();
            let mut object = json!({
                "key": event_key(&v.key),
                "sequencer": format!("{:016X}", v.seq),
            });
            if event.starts_with("ObjectCreated") {
                object["size"] = json!(v.size);
                object["eTag"] = json!(v.etag.trim_matches('"'));
            }
            if bucket.versioning.is_some() {
                object["versionId"] = json!(v.version_id);
            }
            let principal = format!(
                "AWS:{}",
                ctx.access_key
                    .clone()
                    .unwrap_or_else(|| bucket.account.clone())
            );
            let record = json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": bucket.region,
                "eventTime": virga_protocol::time_fmt::iso8601(s3.clock.now_secs_f64()),
                "eventName": event,
                "userIdentity": {"principalId": principal},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": ctx.request_id, "x-amz-id-2": ctx.request_id},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": c.get("Id").cloned().unwrap_or(json!("")),
                    "bucket": {
                        "name": bucket.name,
                        "ownerIdentity": {"principalId": bucket.account},
                        "arn": format!("arn:aws:s3:::{}", bucket.name),
                    },
                    "object": object,
                }
            });
            let ev = Event {
                source: "s3".into(),
                target_arn: target,
                payload: json!({ "Records": [record] }),
            };
            let key = KeyBuf::new().u64(s3.next_seq()).into_vec();
            t.put(state::OUTBOX, &key, &state::encode(&ev)?)?;
        }
    }
    Ok(())
}

/// The `s3:TestEvent` S3 sends to each queue and topic of a new notification
/// configuration (consumers are expected to skip it).
pub fn record_test_events(
    t: &mut dyn KvTxn,
    s3: &S3,
    bucket: &Bucket,
    ctx: &RequestContext,
) -> AwsResult<()> {
    let Some(cfg) = &bucket.notification else {
        return Ok(());
    };
    for (list, arn_field) in [
        ("QueueConfigurations", "QueueArn"),
        ("TopicConfigurations", "TopicArn"),
    ] {
        for c in cfg
            .get(list)
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            let target = c
                .get(arn_field)
                .and_then(|a| a.as_str())
                .unwrap_or("")
                .to_string();
            let ev = Event {
                source: "s3".into(),
                target_arn: target,
                payload: json!({
                    "Service": "Amazon S3",
                    "Event": "s3:TestEvent",
                    "Time": virga_protocol::time_fmt::iso8601(s3.clock.now_secs_f64()),
                    "Bucket": bucket.name,
                    "RequestId": ctx.request_id,
                    "HostId": ctx.request_id,
                }),
            };
            let key = KeyBuf::new().u64(s3.next_seq()).into_vec();
            t.put(state::OUTBOX, &key, &state::encode(&ev)?)?;
        }
    }
    Ok(())
}

/// Events recorded but not yet taken by a consumer, oldest first.
pub fn pending(s3: &S3, limit: usize) -> AwsResult<Vec<(Vec<u8>, Event)>> {
    let rows = s3.store.read(|r| {
        r.scan(
            state::OUTBOX,
            Bound::Unbounded,
            Bound::Unbounded,
            limit,
            false,
        )
    })?;
    rows.into_iter()
        .map(|(k, v)| Ok((k, state::decode(&v)?)))
        .collect()
}

/// Delivers outbox events to the bus as consumers appear.
/// Delivers outbox events to their consumers, soon after each write that recorded one
/// (and every 100 ms, for consumers that appear later). An event leaves the outbox once
/// its consumer has stored it; one its consumer refuses (its queue no longer exists) is
/// logged and dropped, as S3 drops events for a deleted destination.
pub fn start(s3: Arc<S3>) {
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(100),
                s3.outbox_ready.notified(),
            )
            .await;
            let Ok(events) = pending(&s3, 256) else {
                continue;
            };
            for (k, ev) in events {
                if !s3.bus.has_consumer(&ev.target_arn) {
                    continue;
                }
                let target = ev.target_arn.clone();
                let Ok(answer) = s3.bus.publish(ev) else {
                    continue;
                };
                match answer.await {
                    Ok(Ok(())) => {}
                    Ok(Err(reason)) => {
                        tracing::warn!("S3 event notification to {target} dropped: {reason}")
                    }
                    // The consumer went away before answering: try again later.
                    Err(_) => continue,
                }
                let _ = s3.store.transact(|t| t.delete(state::OUTBOX, &k));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_patterns() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(event_matches("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectCreated:Copy", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectRemoved:*", "ObjectCreated:Put"));
    }

    #[test]
    fn key_filters() {
        let cfg = json!({"Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "img/"}, {"Name": "Suffix", "Value": ".jpg"}]}}});
        assert!(filter_matches(&cfg, "img/a.jpg"));
        assert!(!filter_matches(&cfg, "img/a.png"));
        assert!(!filter_matches(&cfg, "doc/a.jpg"));
        assert!(filter_matches(&json!({}), "anything"));
        assert_eq!(event_key("a b/c+d"), "a+b/c%2Bd");
    }
}
