//! SQS operations. Adding one is a function here and a line in [`call`].

use crate::md5s::{md5_hex, md5_of_attributes};
use crate::state::{self, Dedup, Message, Queue};
use crate::{sqs_error, Output, Sqs};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_store::{KvRead, KvTxn};

type Input = Map<String, Value>;

pub async fn call(s: &Sqs, ctx: &RequestContext, op: &str, input: Input) -> AwsResult<Output> {
    match op {
        "CreateQueue" => create_queue(s, ctx, &input),
        "GetQueueUrl" => get_queue_url(s, ctx, &input),
        "ListQueues" => list_queues(s, ctx, &input),
        "DeleteQueue" => delete_queue(s, ctx, &input),
        "GetQueueAttributes" => get_queue_attributes(s, ctx, &input),
        "SetQueueAttributes" => set_queue_attributes(s, ctx, &input),
        "PurgeQueue" => purge_queue(s, ctx, &input),
        "TagQueue" => tag_queue(s, ctx, &input),
        "UntagQueue" => untag_queue(s, ctx, &input),
        "ListQueueTags" => list_queue_tags(s, ctx, &input),
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues(s, ctx, &input),
        "SendMessage" => send_message(s, ctx, &input),
        "SendMessageBatch" => send_message_batch(s, ctx, &input),
        // Boxed: a long poll parks in it, and a future holds the one it awaits
        // inline, so every caller up the chain would otherwise be sized for it.
        "ReceiveMessage" => Box::pin(receive_message(s, ctx, input)).await,
        "DeleteMessage" => delete_message(s, ctx, &input),
        "DeleteMessageBatch" => delete_message_batch(s, ctx, &input),
        "ChangeMessageVisibility" => change_visibility(s, ctx, &input),
        "ChangeMessageVisibilityBatch" => change_visibility_batch(s, ctx, &input),
        "StartMessageMoveTask" => start_move_task(s, &input),
        "ListMessageMoveTasks" => list_move_tasks(s, &input),
        "CancelMessageMoveTask" => cancel_move_task(s, &input),
        _ => Err(sqs_error(
            "UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
            format!("Virga does not implement the SQS operation {op} yet"),
        )),
    }
}

fn str_of<'a>(i: &'a Input, name: &str) -> Option<&'a str> {
    i.get(name).and_then(|v| v.as_str())
}

fn missing(name: &str) -> AwsError {
    sqs_error(
        "MissingRequiredParameterException",
        "MissingParameter",
        format!("The request must contain the parameter {name}."),
    )
}

fn invalid_param(msg: impl Into<String>) -> AwsError {
    sqs_error(
        "InvalidParameterValueException",
        "InvalidParameterValue",
        msg,
    )
}

fn required<'a>(i: &'a Input, name: &str) -> AwsResult<&'a str> {
    str_of(i, name).ok_or_else(|| missing(name))
}

pub fn no_such_queue() -> AwsError {
    sqs_error(
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
    )
}

fn queue_url(ctx: &RequestContext, q: &Queue) -> String {
    let host = if ctx.host.is_empty() {
        &ctx.listen_addr
    } else {
        &ctx.host
    };
    format!("http://{host}/{}/{}", q.account, q.name)
}

/// The (account, name) a queue URL names: its last two path segments.
fn parse_queue_url(url: &str) -> Option<(String, String)> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => url,
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [.., account, name] => Some(((*account).to_string(), (*name).to_string())),
        _ => None,
    }
}

fn load_queue(r: &dyn KvRead, ctx: &RequestContext, url: &str) -> AwsResult<Queue> {
    let (account, name) = parse_queue_url(url).ok_or_else(no_such_queue)?;
    r.get(
        state::QUEUES,
        &state::queue_key(&ctx.region, &account, &name),
    )?
    .map(|v| state::decode(&v))
    .transpose()?
    .ok_or_else(no_such_queue)
}

fn queue_from(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Queue> {
    let url = required(i, "QueueUrl")?;
    s.store.read(|r| load_queue(r, ctx, url))
}

// ------------------------------------------------------------------ attributes

/// Numeric attributes: (name, min, max, default).
const NUMERIC: &[(&str, i64, i64, i64)] = &[
    ("VisibilityTimeout", 0, 43_200, 30),
    ("DelaySeconds", 0, 900, 0),
    // 1 MiB since August 2025 (it was 256 KiB).
    ("MaximumMessageSize", 1024, 1_048_576, 1_048_576),
    ("MessageRetentionPeriod", 60, 1_209_600, 345_600),
    ("ReceiveMessageWaitTimeSeconds", 0, 20, 0),
    ("KmsDataKeyReusePeriodSeconds", 60, 86_400, 300),
];

const OTHER_SETTABLE: &[&str] = &[
    "Policy",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

const COMPUTED: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

fn invalid_value(name: &str) -> AwsError {
    sqs_error(
        "InvalidAttributeValue",
        "InvalidAttributeValue",
        format!("Invalid value for the parameter {name}."),
    )
}

fn unknown_attribute(name: &str) -> AwsError {
    sqs_error(
        "InvalidAttributeName",
        "InvalidAttributeName",
        format!("Unknown Attribute {name}."),
    )
}

/// Checks settable attributes; `fifo` says what kind of queue they are for.
fn check_attributes(attrs: &BTreeMap<String, String>, fifo: bool, creating: bool) -> AwsResult<()> {
    for (k, v) in attrs {
        if let Some((_, min, max, _)) = NUMERIC.iter().find(|(n, ..)| n == k) {
            match v.trim().parse::<i64>() {
                Ok(n) if n >= *min && n <= *max => {}
                _ => return Err(invalid_value(k)),
            }
            continue;
        }
        match k.as_str() {
            "FifoQueue" => {
                // The queue type is fixed at creation: restating it is fine.
                if !creating && !fifo {
                    return Err(unknown_attribute(k));
                }
                if !creating && v != "true" {
                    return Err(invalid_value(k));
                }
                if v != "true" && v != "false" {
                    return Err(invalid_value(k));
                }
            }
            "ContentBasedDeduplication" | "DeduplicationScope" | "FifoThroughputLimit" if !fifo => {
                return Err(invalid_value(k));
            }
            "ContentBasedDeduplication" | "SqsManagedSseEnabled" if v != "true" && v != "false" => {
                return Err(invalid_value(k));
            }
            "DeduplicationScope" if v != "messageGroup" && v != "queue" => {
                return Err(invalid_value(k))
            }
            "FifoThroughputLimit" if v != "perQueue" && v != "perMessageGroupId" => {
                return Err(invalid_value(k))
            }
            "RedrivePolicy" => {
                let p: Value = serde_json::from_str(v).map_err(|_| invalid_value(k))?;
                let arn = p.get("deadLetterTargetArn").and_then(|a| a.as_str());
                let count = p.get("maxReceiveCount").and_then(|c| {
                    c.as_i64()
                        .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                });
                if arn.is_none_or(|a| !a.starts_with("arn:aws:sqs:"))
                    || count.is_none_or(|c| !(1..=1000).contains(&c))
                {
                    return Err(sqs_error(
                        "InvalidParameterValueException",
                        "InvalidParameterValue",
                        format!("Value {v} for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map or deadLetterTargetArn and maxReceiveCount are missing."),
                    ));
                }
            }
            "RedriveAllowPolicy" if !v.is_empty() => {
                let p: Value = serde_json::from_str(v).map_err(|_| invalid_value(k))?;
                let permission = p.get("redrivePermission").and_then(Value::as_str);
                let sources = p
                    .get("sourceQueueArns")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let ok = match permission {
                    Some("allowAll") | Some("denyAll") => sources == 0,
                    Some("byQueue") => (1..=10).contains(&sources),
                    _ => false,
                };
                if !ok {
                    return Err(sqs_error(
                        "InvalidParameterValueException",
                        "InvalidParameterValue",
                        format!("Value {v} for parameter RedriveAllowPolicy is invalid. Reason: Amazon SQS can't create the redrive allow policy, as it's in an unsupported format."),
                    ));
                }
            }
            "Policy" if !v.is_empty() => {
                serde_json::from_str::<Value>(v).map_err(|_| invalid_value(k))?;
            }
            _ if OTHER_SETTABLE.contains(&k.as_str()) => {}
            _ => return Err(unknown_attribute(k)),
        }
    }
    Ok(())
}

/// A RedrivePolicy is refused when its dead-letter queue's RedriveAllowPolicy does
/// not let `source_arn` use it.
fn check_redrive_allowed(
    r: &dyn KvRead,
    source_arn: &str,
    attrs: &BTreeMap<String, String>,
) -> AwsResult<()> {
    let Some(v) = attrs.get("RedrivePolicy").filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let Some(dlq_arn) = serde_json::from_str::<Value>(v)
        .ok()
        .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_string))
    else {
        return Ok(());
    };
    let Some(dlq) = queue_by_arn(r, &dlq_arn)? else {
        return Ok(());
    };
    let Some(allow) = dlq
        .attributes
        .get("RedriveAllowPolicy")
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
    else {
        return Ok(());
    };
    let allowed = match allow.get("redrivePermission").and_then(Value::as_str) {
        Some("denyAll") => false,
        Some("byQueue") => allow
            .get("sourceQueueArns")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(source_arn))),
        _ => true,
    };
    if allowed {
        return Ok(());
    }
    Err(sqs_error(
        "InvalidParameterValueException",
        "InvalidParameterValue",
        format!("Value {v} for parameter RedrivePolicy is invalid. Reason: Dead-letter target owner does not allow this source queue to redrive messages."),
    ))
}

fn attribute_map(i: &Input, name: &str) -> BTreeMap<String, String> {
    virga_protocol::string_map(i, name)
}

fn valid_queue_name(name: &str, fifo: bool) -> bool {
    virga_core::valid_resource_name(name, fifo, 80)
}

fn create_queue(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = required(i, "QueueName")?.to_string();
    let attrs = attribute_map(i, "Attributes");
    let fifo = attrs.get("FifoQueue").is_some_and(|v| v == "true");
    if !valid_queue_name(&name, fifo) {
        return Err(invalid_param(if name.ends_with(".fifo") && !fifo {
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".to_string()
        } else {
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
                .to_string()
        }));
    }
    check_attributes(&attrs, fifo, true)?;
    let tags: BTreeMap<String, String> = attribute_map(i, "tags");
    let now = s.clock.now_secs_f64() as i64;
    let key = state::queue_key(&ctx.region, &ctx.account, &name);
    let q = s.store.transact(|t| {
        if let Some(existing) = t.get(state::QUEUES, &key)? {
            let existing: Queue = state::decode(&existing)?;
            for (k, v) in &attrs {
                let current = existing
                    .attributes
                    .get(k)
                    .cloned()
                    .or_else(|| NUMERIC.iter().find(|(n, ..)| n == k).map(|(.., d)| d.to_string()));
                if current.as_deref() != Some(v.as_str()) {
                    return Err(sqs_error(
                        "QueueNameExists",
                        "QueueAlreadyExists",
                        format!("A queue already exists with the same name and a different value for attribute {k}"),
                    ));
                }
            }
            return Ok(existing);
        }
        let arn = format!("arn:aws:sqs:{}:{}:{name}", ctx.region, ctx.account);
        check_redrive_allowed(t, &arn, &attrs)?;
        let q = Queue {
            name: name.clone(),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            created: now,
            modified: now,
            attributes: attrs.clone(),
            tags: tags.clone(),
            last_purge_ms: 0,
        };
        t.put(state::QUEUES, &key, &state::encode(&q)?)?;
        Ok(q)
    })?;
    Ok(obj(json!({"QueueUrl": queue_url(ctx, &q)})))
}

fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn get_queue_url(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = required(i, "QueueName")?;
    let account = str_of(i, "QueueOwnerAWSAccountId").unwrap_or(&ctx.account);
    let q: Queue = s
        .store
        .read(|r| r.get(state::QUEUES, &state::queue_key(&ctx.region, account, name)))?
        .map(|v| state::decode(&v))
        .transpose()?
        .ok_or_else(no_such_queue)?;
    Ok(obj(json!({"QueueUrl": queue_url(ctx, &q)})))
}

fn all_queues(s: &Sqs, ctx: &RequestContext) -> AwsResult<Vec<Queue>> {
    let prefix = virga_store::KeyBuf::new()
        .str(&ctx.region)
        .str(&ctx.account)
        .into_vec();
    let end = virga_store::prefix_end(&prefix);
    let rows = s.store.read(|r| {
        r.scan(
            state::QUEUES,
            Bound::Included(&prefix),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            usize::MAX,
            false,
        )
    })?;
    rows.iter().map(|(_, v)| state::decode(v)).collect()
}

fn list_queues(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let prefix = str_of(i, "QueueNamePrefix").unwrap_or("");
    let max = i.get("MaxResults").and_then(|m| m.as_i64());
    if max.is_some_and(|m| !(1..=1000).contains(&m)) {
        return Err(invalid_param("Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000."));
    }
    let after = match str_of(i, "NextToken") {
        Some(t) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid_param("Invalid NextToken value."))?,
        ),
        None => None,
    };
    let queues: Vec<Queue> = all_queues(s, ctx)?
        .into_iter()
        .filter(|q| {
            q.name.starts_with(prefix)
                && after.as_ref().is_none_or(|a| q.name.as_str() > a.as_str())
        })
        .collect();
    let limit = max.unwrap_or(1000) as usize;
    let truncated = queues.len() > limit;
    let page = &queues[..queues.len().min(limit)];
    let mut out = Map::new();
    if !page.is_empty() {
        out.insert(
            "QueueUrls".into(),
            Value::Array(page.iter().map(|q| json!(queue_url(ctx, q))).collect()),
        );
    }
    if truncated && max.is_some() {
        if let Some(last) = page.last() {
            out.insert(
                "NextToken".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(&last.name)),
            );
        }
    }
    Ok(out)
}

/// Deletes every message of a queue (and its index rows) inside `t`.
fn drop_messages(t: &mut dyn KvTxn, qid: &str) -> AwsResult<()> {
    let prefix = state::qid_prefix(qid);
    let end = virga_store::prefix_end(&prefix).unwrap_or_default();
    for table in [
        state::MESSAGES,
        state::VISIBLE,
        state::VISIBLE_SEEN,
        state::GROUPS,
        state::DEDUP,
    ] {
        t.delete_range(table, &prefix, &end)?;
    }
    t.delete(state::COUNTS, &prefix)
}

fn delete_queue(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    s.store.transact(|t| {
        drop_messages(t, &q.id())?;
        t.delete(
            state::QUEUES,
            &state::queue_key(&q.region, &q.account, &q.name),
        )
    })?;
    s.wake(&q.id());
    Ok(Map::new())
}

struct Counts {
    visible: u64,
    in_flight: u64,
    delayed: u64,
}

/// Deletes the messages past the retention period. Messages are kept in send order,
/// so this reads only the expired ones and the first one that is not.
fn purge_expired(s: &Sqs, q: &Queue) -> AwsResult<()> {
    let qid = q.id();
    let now = s.clock.now_millis();
    let retention = q.attr_i64("MessageRetentionPeriod", 345_600) * 1000;
    let prefix = state::qid_prefix(&qid);
    let end = virga_store::prefix_end(&prefix);
    loop {
        let done = s.store.transact(|t| {
            let rows = t.scan(
                state::MESSAGES,
                Bound::Included(&prefix),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                100,
                false,
            )?;
            let full = rows.len() == 100;
            for (k, raw) in rows {
                let m: Message = state::decode(&raw)?;
                if m.sent_ms + retention > now {
                    return Ok(true);
                }
                t.delete(state::MESSAGES, &k)?;
                state::remove_indexes(t, &qid, &m)?;
            }
            Ok(!full)
        })?;
        if done {
            return Ok(());
        }
    }
}

/// Visible, in-flight and delayed counts. In-flight and delayed messages are range
/// counts of the visibility indexes' future part (short: what is in flight or
/// delayed); visible is the rest of the stored count, so a long backlog costs nothing.
fn count_messages(s: &Sqs, q: &Queue) -> AwsResult<Counts> {
    purge_expired(s, q)?;
    let qid = q.id();
    let start = state::vis_key(&qid, 0, 0);
    let split = state::vis_key(&qid, s.clock.now_millis() + 1, 0);
    let end = virga_store::prefix_end(&state::qid_prefix(&qid));
    let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    s.store.read(|r| {
        let delayed = r.count(state::VISIBLE, Bound::Included(&split), end)?;
        let in_flight = r.count(state::VISIBLE_SEEN, Bound::Included(&split), end)?;
        let visible = match state::stored_count(r, &qid)? {
            Some(total) => total.saturating_sub(delayed + in_flight),
            // A queue stored before the counter existed: count the index.
            None => {
                r.count(
                    state::VISIBLE,
                    Bound::Included(&start),
                    Bound::Excluded(&split),
                )? + r.count(
                    state::VISIBLE_SEEN,
                    Bound::Included(&start),
                    Bound::Excluded(&split),
                )?
            }
        };
        Ok(Counts {
            visible,
            in_flight,
            delayed,
        })
    })
}

fn get_queue_attributes(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    let names: Vec<String> = virga_protocol::string_list(i, "AttributeNames");
    let all = names.iter().any(|n| n == "All");
    for n in &names {
        if n != "All"
            && !COMPUTED.contains(&n.as_str())
            && !NUMERIC.iter().any(|(x, ..)| x == n)
            && !OTHER_SETTABLE.contains(&n.as_str())
        {
            return Err(unknown_attribute(n));
        }
    }
    let wanted = |n: &str| all || names.iter().any(|x| x == n);
    let mut attrs = Map::new();
    let counts = if wanted("ApproximateNumberOfMessages")
        || wanted("ApproximateNumberOfMessagesNotVisible")
        || wanted("ApproximateNumberOfMessagesDelayed")
    {
        Some(count_messages(s, &q)?)
    } else {
        None
    };
    let mut put = |k: &str, v: String| {
        if wanted(k) {
            attrs.insert(k.to_string(), json!(v));
        }
    };
    put("QueueArn", q.arn());
    if let Some(c) = &counts {
        put("ApproximateNumberOfMessages", c.visible.to_string());
        put(
            "ApproximateNumberOfMessagesNotVisible",
            c.in_flight.to_string(),
        );
        put("ApproximateNumberOfMessagesDelayed", c.delayed.to_string());
    }
    put("CreatedTimestamp", q.created.to_string());
    put("LastModifiedTimestamp", q.modified.to_string());
    for (n, _, _, d) in NUMERIC {
        if *n == "KmsDataKeyReusePeriodSeconds" && !q.attributes.contains_key(*n) {
            continue;
        }
        put(
            n,
            q.attributes
                .get(*n)
                .cloned()
                .unwrap_or_else(|| d.to_string()),
        );
    }
    put(
        "SqsManagedSseEnabled",
        q.attributes
            .get("SqsManagedSseEnabled")
            .cloned()
            .unwrap_or_else(|| "true".into()),
    );
    if q.fifo() {
        put("FifoQueue", "true".into());
        put(
            "ContentBasedDeduplication",
            q.attributes
                .get("ContentBasedDeduplication")
                .cloned()
                .unwrap_or_else(|| "false".into()),
        );
        put(
            "DeduplicationScope",
            q.attributes
                .get("DeduplicationScope")
                .cloned()
                .unwrap_or_else(|| "queue".into()),
        );
        put(
            "FifoThroughputLimit",
            q.attributes
                .get("FifoThroughputLimit")
                .cloned()
                .unwrap_or_else(|| "perQueue".into()),
        );
    }
    for n in [
        "Policy",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "KmsMasterKeyId",
    ] {
        if let Some(v) = q.attributes.get(n) {
            put(n, v.clone());
        }
    }
    let mut out = Map::new();
    if !attrs.is_empty() {
        out.insert("Attributes".into(), Value::Object(attrs));
    }
    Ok(out)
}

fn update_queue(
    s: &Sqs,
    ctx: &RequestContext,
    i: &Input,
    f: impl FnOnce(&mut Queue) -> AwsResult<()>,
) -> AwsResult<Queue> {
    let url = required(i, "QueueUrl")?.to_string();
    let now = s.clock.now_secs_f64() as i64;
    s.store.transact(|t| {
        let mut q = load_queue(t, ctx, &url)?;
        f(&mut q)?;
        q.modified = now;
        t.put(
            state::QUEUES,
            &state::queue_key(&q.region, &q.account, &q.name),
            &state::encode(&q)?,
        )?;
        Ok(q)
    })
}

fn set_queue_attributes(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let attrs = attribute_map(i, "Attributes");
    let q = queue_from(s, ctx, i)?;
    s.store
        .read(|r| check_redrive_allowed(r, &q.arn(), &attrs))?;
    update_queue(s, ctx, i, |q| {
        check_attributes(&attrs, q.fifo(), false)?;
        for (k, v) in attrs {
            if v.is_empty()
                && matches!(
                    k.as_str(),
                    "Policy" | "RedrivePolicy" | "RedriveAllowPolicy"
                )
            {
                q.attributes.remove(&k);
            } else {
                q.attributes.insert(k, v);
            }
        }
        Ok(())
    })?;
    Ok(Map::new())
}

fn purge_queue(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let now = s.clock.now_millis();
    let q = update_queue(s, ctx, i, |q| {
        if q.last_purge_ms > 0 && now - q.last_purge_ms < 60_000 {
            return Err(AwsError::new(
                403,
                "PurgeQueueInProgress",
                format!(
                    "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
                    q.name
                ),
            )
            .header(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.PurgeQueueInProgress;Sender",
            ));
        }
        q.last_purge_ms = now;
        Ok(())
    })?;
    s.store.transact(|t| drop_messages(t, &q.id()))?;
    Ok(Map::new())
}

fn tag_queue(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let tags = attribute_map(i, "Tags");
    if tags.is_empty() {
        return Err(missing("Tags"));
    }
    update_queue(s, ctx, i, |q| {
        q.tags.extend(tags);
        if q.tags.len() > 50 {
            return Err(invalid_param(
                "Too many tags added for queue. The maximum number of tags is 50.",
            ));
        }
        Ok(())
    })?;
    Ok(Map::new())
}

fn untag_queue(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let keys: Vec<String> = virga_protocol::string_list(i, "TagKeys");
    update_queue(s, ctx, i, |q| {
        for k in &keys {
            q.tags.remove(k);
        }
        Ok(())
    })?;
    Ok(Map::new())
}

fn list_queue_tags(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    let mut out = Map::new();
    if !q.tags.is_empty() {
        out.insert("Tags".into(), json!(q.tags));
    }
    Ok(out)
}

fn list_dead_letter_source_queues(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    let arn = q.arn();
    let urls: Vec<Value> = all_queues(s, ctx)?
        .iter()
        .filter(|src| {
            src.attributes
                .get("RedrivePolicy")
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
                .and_then(|p| {
                    p.get("deadLetterTargetArn")
                        .and_then(|a| a.as_str())
                        .map(|a| a == arn)
                })
                .unwrap_or(false)
        })
        .map(|src| json!(queue_url(ctx, src)))
        .collect();
    Ok(obj(json!({ "queueUrls": urls })))
}

// ------------------------------------------------------------------ messages

/// Characters SQS accepts in a message body.
fn valid_body(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
}

fn attributes_size(attrs: &Map<String, Value>) -> usize {
    attrs
        .iter()
        .map(|(k, v)| {
            k.len()
                + v.get("DataType")
                    .and_then(|d| d.as_str())
                    .map_or(0, |d| d.len())
                + v.get("StringValue")
                    .and_then(|d| d.as_str())
                    .map_or(0, |d| d.len())
                + v.get("BinaryValue")
                    .and_then(|d| d.as_str())
                    .map_or(0, |d| d.len() * 3 / 4)
        })
        .sum()
}

fn check_message_attributes(attrs: &Map<String, Value>) -> AwsResult<()> {
    if attrs.len() > 10 {
        return Err(invalid_param(
            "Number of message attributes [11] exceeds the allowed maximum [10].",
        ));
    }
    for (name, v) in attrs {
        let dt = v.get("DataType").and_then(|d| d.as_str()).unwrap_or("");
        let base = dt.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(invalid_param(format!(
                "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
        let has_value = v
            .get("StringValue")
            .and_then(|s| s.as_str())
            .is_some_and(|s| !s.is_empty())
            || v.get("BinaryValue")
                .and_then(|s| s.as_str())
                .is_some_and(|s| !s.is_empty());
        if !has_value {
            return Err(invalid_param(format!(
                "The message (user) attribute '{name}' must contain a non-empty message attribute value for message attribute type '{base}'."
            )));
        }
        if base == "Number" {
            let s = v.get("StringValue").and_then(|s| s.as_str()).unwrap_or("");
            if s.trim().parse::<f64>().is_err() {
                return Err(invalid_param(format!(
                    "Can't cast the value of message (user) attribute '{name}' to a number."
                )));
            }
        }
    }
    Ok(())
}

/// One message to send (from SendMessage or a batch entry).
struct Outgoing<'a> {
    body: &'a str,
    delay: Option<i64>,
    attributes: Map<String, Value>,
    system_attributes: Map<String, Value>,
    group: Option<&'a str>,
    dedup: Option<&'a str>,
}

impl<'a> Outgoing<'a> {
    fn from(i: &'a Map<String, Value>) -> AwsResult<Outgoing<'a>> {
        let body = str_of(i, "MessageBody").ok_or_else(|| missing("MessageBody"))?;
        Ok(Outgoing {
            body,
            delay: i.get("DelaySeconds").and_then(|d| d.as_i64()),
            attributes: i
                .get("MessageAttributes")
                .and_then(|a| a.as_object())
                .cloned()
                .unwrap_or_default(),
            system_attributes: i
                .get("MessageSystemAttributes")
                .and_then(|a| a.as_object())
                .cloned()
                .unwrap_or_default(),
            group: str_of(i, "MessageGroupId"),
            dedup: str_of(i, "MessageDeduplicationId"),
        })
    }
}

/// Stores one message; returns the SendMessage result members.
fn send_one(s: &Sqs, ctx: &RequestContext, q: &Queue, m: Outgoing) -> AwsResult<Output> {
    if m.body.is_empty() {
        return Err(missing("MessageBody"));
    }
    if !valid_body(m.body) {
        return Err(sqs_error(
            "InvalidMessageContents",
            "InvalidMessageContents",
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        ));
    }
    check_message_attributes(&m.attributes)?;
    let max = q.attr_i64("MaximumMessageSize", 1_048_576) as usize;
    if m.body.len() + attributes_size(&m.attributes) > max {
        return Err(invalid_param(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    let fifo = q.fifo();
    if let Some(d) = m.delay {
        if fifo {
            return Err(invalid_param(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
            )));
        }
        if !(0..=900).contains(&d) {
            return Err(invalid_param(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )));
        }
    }
    let dedup = if fifo {
        if m.group.is_none() {
            return Err(missing("MessageGroupId"));
        }
        match m.dedup {
            Some(d) => Some(d.to_string()),
            None if q.attributes.get("ContentBasedDeduplication").is_some_and(|v| v == "true") => {
                Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(m.body.as_bytes())))
            }
            None => {
                return Err(invalid_param(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ))
            }
        }
    } else {
        if m.dedup.is_some() {
            return Err(invalid_param(
                "The request include parameter MessageDeduplicationId which is not valid for this queue type",
            ));
        }
        None
    };
    let now = s.clock.now_millis();
    let delay = m.delay.unwrap_or_else(|| q.attr_i64("DelaySeconds", 0));
    let seq = s.next_seq();
    let qid = q.id();
    let md5_attrs = md5_of_attributes(&m.attributes);
    let md5_system = md5_of_attributes(&m.system_attributes);
    let msg = Message {
        id: uuid::Uuid::new_v4().to_string(),
        seq,
        body: m.body.to_string(),
        attributes: m.attributes.clone(),
        system_attributes: m.system_attributes.clone(),
        md5_body: md5_hex(m.body.as_bytes()),
        md5_attributes: md5_attrs.clone(),
        sent_ms: now,
        first_receive_ms: None,
        receive_count: 0,
        visible_at_ms: now + delay * 1000,
        receipt: None,
        group: m.group.map(|g| g.to_string()),
        dedup: dedup.clone(),
        sender: ctx
            .access_key
            .clone()
            .unwrap_or_else(|| ctx.account.clone()),
        origin: None,
    };
    let (message_id, sequence) = s.store.transact(|t| {
        if let Some(d) = &dedup {
            let scope_key = match (
                q.attributes.get("DeduplicationScope").map(|s| s.as_str()),
                &msg.group,
            ) {
                (Some("messageGroup"), Some(g)) => format!("{g}\u{0}{d}"),
                _ => d.clone(),
            };
            let k = state::dedup_key(&qid, &scope_key);
            if let Some(existing) = t.get(state::DEDUP, &k)? {
                let existing: Dedup = state::decode(&existing)?;
                if existing.expires_ms > now {
                    return Ok((existing.message_id, existing.sequence));
                }
            }
            t.put(
                state::DEDUP,
                &k,
                &state::encode(&Dedup {
                    message_id: msg.id.clone(),
                    sequence: seq,
                    expires_ms: now + 300_000,
                })?,
            )?;
        }
        t.put(
            state::MESSAGES,
            &state::msg_key(&qid, seq),
            &state::encode(&msg)?,
        )?;
        state::insert_indexes(t, &qid, &msg)?;
        Ok((msg.id.clone(), seq))
    })?;
    s.wake(&qid);
    let mut out = json!({"MessageId": message_id, "MD5OfMessageBody": msg.md5_body});
    if let Some(a) = md5_attrs {
        out["MD5OfMessageAttributes"] = json!(a);
    }
    if let Some(a) = md5_system {
        out["MD5OfMessageSystemAttributes"] = json!(a);
    }
    if fifo {
        out["SequenceNumber"] = json!(format!("{sequence:020}"));
    }
    Ok(obj(out))
}

/// Stores an event from another service as a message: SNS hands over the message it
/// built (`Body`, `MessageAttributes`, FIFO ids); other sources (S3) send the event
/// document itself as the body.
pub fn send_event(s: &Sqs, event: &virga_core::events::Event) -> AwsResult<Output> {
    // SNS deliveries and Lambda destinations come as a body with message attributes.
    if event.source == "sns" || event.source == "lambda" {
        let p = &event.payload;
        let body = p.get("Body").and_then(|b| b.as_str()).unwrap_or("");
        let attributes = p
            .get("MessageAttributes")
            .and_then(|a| a.as_object())
            .cloned()
            .unwrap_or_default();
        return send_to_arn(
            s,
            &event.target_arn,
            body,
            &event.source,
            attributes,
            p.get("MessageGroupId").and_then(|g| g.as_str()),
            p.get("MessageDeduplicationId").and_then(|g| g.as_str()),
        );
    }
    send_to_arn(
        s,
        &event.target_arn,
        &event.payload.to_string(),
        &event.source,
        Map::new(),
        None,
        None,
    )
}

/// Sends `body` to the queue an ARN names, on behalf of another service (`source`).
fn send_to_arn(
    s: &Sqs,
    arn: &str,
    body: &str,
    source: &str,
    attributes: Map<String, Value>,
    group: Option<&str>,
    dedup: Option<&str>,
) -> AwsResult<Output> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, "sqs", region, account, name] = parts.as_slice() else {
        return Err(no_such_queue());
    };
    let q: Queue = s
        .store
        .read(|r| r.get(state::QUEUES, &state::queue_key(region, account, name)))?
        .map(|v| state::decode(&v))
        .transpose()?
        .ok_or_else(no_such_queue)?;
    let mut ctx = RequestContext::system(s.clock.clone(), &format!("{source}.amazonaws.com"));
    ctx.account = (*account).to_string();
    ctx.region = (*region).to_string();
    let fresh_dedup = uuid::Uuid::new_v4().to_string();
    let msg = Outgoing {
        body,
        delay: None,
        attributes,
        system_attributes: Map::new(),
        group: if q.fifo() {
            Some(group.unwrap_or("default"))
        } else {
            None
        },
        dedup: if q.fifo() {
            Some(dedup.unwrap_or(&fresh_dedup))
        } else {
            None
        },
    };
    send_one(s, &ctx, &q, msg)
}

fn send_message(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    send_one(s, ctx, &q, Outgoing::from(i)?)
}

/// Checks a batch's entries: 1 to 10, distinct and well-formed ids.
fn batch_entries(i: &Input) -> AwsResult<Vec<Map<String, Value>>> {
    let entries: Vec<Map<String, Value>> = i
        .get("Entries")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_object().cloned()).collect())
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(sqs_error(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > 10 {
        return Err(sqs_error(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are 10. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for e in &entries {
        let id = e.get("Id").and_then(|v| v.as_str()).unwrap_or("");
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(sqs_error(
                "InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id.to_string()) {
            return Err(sqs_error(
                "BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

fn failure(id: &str, e: &AwsError) -> Value {
    let code = e
        .headers
        .iter()
        .find(|(k, _)| k == "x-amzn-query-error")
        .and_then(|(_, v)| v.split(';').next())
        .unwrap_or(&e.code);
    json!({"Id": id, "SenderFault": e.sender_fault, "Code": code, "Message": e.message})
}

fn batch_output(ok: Vec<Value>, failed: Vec<Value>) -> Output {
    obj(json!({"Successful": ok, "Failed": failed}))
}

fn send_message_batch(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    let entries = batch_entries(i)?;
    let total: usize = entries
        .iter()
        .map(|e| {
            e.get("MessageBody")
                .and_then(|b| b.as_str())
                .map_or(0, |b| b.len())
                + e.get("MessageAttributes")
                    .and_then(|a| a.as_object())
                    .map_or(0, attributes_size)
        })
        .sum();
    let max = q.attr_i64("MaximumMessageSize", 1_048_576) as usize;
    if total > max {
        return Err(sqs_error(
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            format!(
                "Batch requests cannot be longer than {max} bytes. You have sent {total} bytes."
            ),
        ));
    }
    if q.fifo() && entries.iter().any(|e| e.get("MessageGroupId").is_none()) {
        // AWS refuses the whole batch rather than failing the entry.
        return Err(invalid_param(
            "The request must contain the parameter MessageGroupId.",
        ));
    }
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for e in &entries {
        let id = e.get("Id").and_then(|v| v.as_str()).unwrap_or("");
        match Outgoing::from(e).and_then(|m| send_one(s, ctx, &q, m)) {
            Ok(mut r) => {
                r.insert("Id".into(), json!(id));
                ok.push(Value::Object(r));
            }
            Err(err) => failed.push(failure(id, &err)),
        }
    }
    Ok(batch_output(ok, failed))
}

// ------------------------------------------------------------------ receive

fn receipt_handle(qid: &str, seq: u64) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{qid}\n{seq}\n{nonce}"))
}

fn parse_receipt(handle: &str) -> AwsResult<(String, u64)> {
    let invalid = || {
        sqs_error(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.split('\n');
    let (Some(qid), Some(seq), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    Ok((qid.to_string(), seq.parse().map_err(|_| invalid())?))
}

fn names_of(i: &Input, field: &str) -> Vec<String> {
    virga_protocol::string_list(i, field)
}

/// The system attributes of a delivered message that the request asked for.
fn system_attributes(m: &Message, wanted: &[String]) -> Map<String, Value> {
    let all = wanted.iter().any(|w| w == "All");
    let want = |n: &str| all || wanted.iter().any(|w| w == n);
    let mut out = Map::new();
    let mut put = |k: &str, v: String| {
        if want(k) {
            out.insert(k.into(), json!(v));
        }
    };
    put("SenderId", m.sender.clone());
    put("SentTimestamp", m.sent_ms.to_string());
    put("ApproximateReceiveCount", m.receive_count.to_string());
    put(
        "ApproximateFirstReceiveTimestamp",
        m.first_receive_ms.unwrap_or(m.sent_ms).to_string(),
    );
    if let Some(g) = &m.group {
        put("MessageGroupId", g.clone());
    }
    if let Some(d) = &m.dedup {
        put("MessageDeduplicationId", d.clone());
        put("SequenceNumber", format!("{:020}", m.seq));
    }
    if let Some(t) = m
        .system_attributes
        .get("AWSTraceHeader")
        .and_then(|v| v.get("StringValue"))
        .and_then(|v| v.as_str())
    {
        put("AWSTraceHeader", t.to_string());
    }
    out
}

fn message_attributes(m: &Message, wanted: &[String]) -> Map<String, Value> {
    m.attributes
        .iter()
        .filter(|(k, _)| {
            wanted.iter().any(|w| {
                w == "All"
                    || w == ".*"
                    || w == *k
                    || w.strip_suffix(".*")
                        .is_some_and(|p| k.starts_with(&format!("{p}.")))
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn redrive_target(q: &Queue) -> Option<(String, u32)> {
    let p: Value = serde_json::from_str(q.attributes.get("RedrivePolicy")?).ok()?;
    let arn = p.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = p.get("maxReceiveCount").and_then(|c| {
        c.as_u64()
            .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
    })? as u32;
    Some((arn, count))
}

/// The queue an ARN names, read inside a transaction.
fn queue_by_arn(t: &dyn KvRead, arn: &str) -> AwsResult<Option<Queue>> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, "sqs", region, account, name] = parts.as_slice() else {
        return Ok(None);
    };
    t.get(state::QUEUES, &state::queue_key(region, account, name))?
        .map(|raw| state::decode(&raw))
        .transpose()
}

/// Appends `m` to `dest` as a fresh, visible message (its id and body kept).
fn append_message(s: &Sqs, t: &mut dyn KvTxn, dest: &Queue, mut m: Message) -> AwsResult<()> {
    let seq = s.next_seq();
    let now = s.clock.now_millis();
    m.seq = seq;
    m.visible_at_ms = now;
    m.receipt = None;
    let qid = dest.id();
    t.put(
        state::MESSAGES,
        &state::msg_key(&qid, seq),
        &state::encode(&m)?,
    )?;
    state::insert_indexes(t, &qid, &m)?;
    Ok(())
}

/// Moves `m` from `source` to the dead-letter queue `arn`, inside `t`; false if that
/// queue does not exist.
fn move_to_dlq(
    s: &Sqs,
    t: &mut dyn KvTxn,
    arn: &str,
    source: &Queue,
    mut m: Message,
) -> AwsResult<bool> {
    let Some(dlq) = queue_by_arn(t, arn)? else {
        return Ok(false);
    };
    m.origin = Some(source.arn());
    append_message(s, t, &dlq, m)?;
    s.wake(&dlq.id());
    Ok(true)
}

/// Candidate messages for a receive: visible ones in order (standard: by visibility
/// time; FIFO: by sequence, skipping groups with a message in flight).
fn candidates(
    s: &Sqs,
    t: &dyn KvRead,
    q: &Queue,
    now: i64,
    limit: usize,
) -> AwsResult<Vec<Message>> {
    let qid = q.id();
    let prefix = state::qid_prefix(&qid);
    let mut out = Vec::new();
    if !q.fifo() {
        let start = state::vis_key(&qid, 0, 0);
        let end = state::vis_key(&qid, now + 1, 0);
        // Visible messages from both indexes, earliest first.
        let mut rows = Vec::new();
        for table in [state::VISIBLE, state::VISIBLE_SEEN] {
            rows.extend(t.scan(
                table,
                Bound::Included(&start),
                Bound::Excluded(&end),
                limit * 4 + 10,
                false,
            )?);
        }
        rows.sort();
        rows.truncate(limit * 4 + 10);
        for (k, _) in rows {
            let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().unwrap_or([0; 8]));
            if let Some(raw) = t.get(state::MESSAGES, &state::msg_key(&qid, seq))? {
                out.push(state::decode::<Message>(&raw)?);
            }
        }
        return Ok(out);
    }
    let _ = s;
    // FIFO: visit each message group's head in turn; a group whose head is in flight
    // (or delayed) is skipped whole with one seek.
    let end = virga_store::prefix_end(&prefix);
    let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let mut cursor = prefix.clone();
    let want = limit * 4 + 10;
    while out.len() < want {
        let Some((head_key, _)) = t
            .scan(state::GROUPS, Bound::Included(&cursor), end, 1, false)?
            .into_iter()
            .next()
        else {
            break;
        };
        let parts = virga_store::key::decode_parts(&head_key[..head_key.len() - 8]);
        let group = parts
            .get(1)
            .map(|g| String::from_utf8_lossy(g).into_owned())
            .unwrap_or_default();
        let gp = state::group_prefix(&qid, &group);
        let gend = virga_store::prefix_end(&gp);
        let rows = t.scan(
            state::GROUPS,
            Bound::Included(&gp),
            gend.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            want - out.len(),
            false,
        )?;
        for (k, _) in rows {
            let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().unwrap_or([0; 8]));
            let Some(raw) = t.get(state::MESSAGES, &state::msg_key(&qid, seq))? else {
                continue;
            };
            let m: Message = state::decode(&raw)?;
            if m.visible_at_ms > now {
                // In flight or delayed: the rest of its group waits.
                break;
            }
            out.push(m);
        }
        match gend {
            Some(e) => cursor = e,
            None => break,
        }
    }
    Ok(out)
}

fn try_receive(
    s: &Sqs,
    q: &Queue,
    max: usize,
    vt: i64,
    sys_names: &[String],
    attr_names: &[String],
) -> AwsResult<Vec<Value>> {
    let now = s.clock.now_millis();
    let retention = q.attr_i64("MessageRetentionPeriod", 345_600) * 1000;
    let redrive = redrive_target(q);
    let qid = q.id();
    s.store.transact(|t| {
        let mut delivered = Vec::new();
        let mut groups_taken: HashSet<String> = HashSet::new();
        for mut m in candidates(s, t, q, now, max)? {
            if delivered.len() >= max {
                break;
            }
            if m.sent_ms + retention <= now {
                t.delete(state::MESSAGES, &state::msg_key(&qid, m.seq))?;
                state::remove_indexes(t, &qid, &m)?;
                continue;
            }
            if let Some((arn, max_count)) = &redrive {
                if m.receive_count >= *max_count && move_to_dlq(s, t, arn, q, m.clone())? {
                    t.delete(state::MESSAGES, &state::msg_key(&qid, m.seq))?;
                    state::remove_indexes(t, &qid, &m)?;
                    continue;
                }
            }
            if q.fifo() {
                let g = m.group.clone().unwrap_or_default();
                if !groups_taken.is_empty() && !groups_taken.contains(&g) && delivered.len() >= max
                {
                    break;
                }
                groups_taken.insert(g);
            }
            state::unindex(t, &qid, &m)?;
            m.receive_count += 1;
            m.first_receive_ms.get_or_insert(now);
            m.visible_at_ms = now + vt * 1000;
            let handle = receipt_handle(&qid, m.seq);
            m.receipt = Some(handle.clone());
            t.put(
                state::MESSAGES,
                &state::msg_key(&qid, m.seq),
                &state::encode(&m)?,
            )?;
            state::index(t, &qid, &m)?;
            let mut out = json!({
                "MessageId": m.id, "ReceiptHandle": handle, "MD5OfBody": m.md5_body, "Body": m.body,
            });
            let sys = system_attributes(&m, sys_names);
            if !sys.is_empty() {
                out["Attributes"] = Value::Object(sys);
            }
            let attrs = message_attributes(&m, attr_names);
            if !attrs.is_empty() {
                out["MD5OfMessageAttributes"] = json!(md5_of_attributes(&attrs));
                out["MessageAttributes"] = Value::Object(attrs);
            }
            delivered.push(out);
        }
        Ok(delivered)
    })
}

/// When the next message that is not visible yet (delayed or in flight) becomes
/// visible, in ms; what is visible already but not deliverable (a blocked FIFO group)
/// wakes receivers when it is deleted.
fn next_visible(s: &Sqs, q: &Queue) -> Option<i64> {
    let qid = q.id();
    let start = state::vis_key(&qid, s.clock.now_millis() + 1, 0);
    let end = virga_store::prefix_end(&state::qid_prefix(&qid));
    let mut first: Option<Vec<u8>> = None;
    for table in [state::VISIBLE, state::VISIBLE_SEEN] {
        let rows = s
            .store
            .read(|r| {
                r.scan(
                    table,
                    Bound::Included(&start),
                    end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                    1,
                    false,
                )
            })
            .ok()?;
        if let Some((k, _)) = rows.into_iter().next() {
            if first.as_ref().is_none_or(|f| k < *f) {
                first = Some(k);
            }
        }
    }
    let k = first?;
    let n = k.len();
    if n < 16 {
        return None;
    }
    Some(u64::from_be_bytes(k[n - 16..n - 8].try_into().ok()?) as i64)
}

/// An integer parameter within `min..=max`, or `default` when absent.
fn ranged(i: &Input, name: &str, default: i64, min: i64, max: i64) -> AwsResult<i64> {
    let v = i.get(name).and_then(|v| v.as_i64()).unwrap_or(default);
    if !(min..=max).contains(&v) {
        let reason = if min == 1 && max == 10 {
            "Must be between 1 and 10, if provided.".to_string()
        } else {
            format!("Must be >= {min} and <= {max}, if provided.")
        };
        return Err(invalid_param(format!(
            "Value {v} for parameter {name} is invalid. Reason: {reason}"
        )));
    }
    Ok(v)
}

async fn receive_message(s: &Sqs, ctx: &RequestContext, input: Input) -> AwsResult<Output> {
    let i = &input;
    let q = queue_from(s, ctx, i)?;
    let max = ranged(i, "MaxNumberOfMessages", 1, 1, 10)?;
    let wait = ranged(
        i,
        "WaitTimeSeconds",
        q.attr_i64("ReceiveMessageWaitTimeSeconds", 0),
        0,
        20,
    )?;
    let vt = ranged(
        i,
        "VisibilityTimeout",
        q.attr_i64("VisibilityTimeout", 30),
        0,
        43_200,
    )?;
    let mut sys_names = names_of(i, "AttributeNames");
    sys_names.extend(names_of(i, "MessageSystemAttributeNames"));
    let attr_names = names_of(i, "MessageAttributeNames");
    let queue_url = required(i, "QueueUrl")?.to_string();
    // Not kept while the receive waits.
    drop(input);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait as u64);
    let notify = s.waiter(&q.id());
    loop {
        // Register for wake-ups before looking, so a send in between is not missed.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let got = try_receive(s, &q, max as usize, vt, &sys_names, &attr_names)?;
        let now = std::time::Instant::now();
        if !got.is_empty() || now >= deadline {
            let mut out = Map::new();
            if !got.is_empty() {
                out.insert("Messages".into(), Value::Array(got));
            }
            return Ok(out);
        }
        let mut sleep_for = deadline - now;
        if let Some(at) = next_visible(s, &q) {
            let ms = (at - s.clock.now_millis()).max(1) as u64;
            sleep_for = sleep_for.min(std::time::Duration::from_millis(ms));
        }
        // A queue deleted meanwhile answers as AWS does.
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(sleep_for) => {}
        }
        if s.store.read(|r| load_queue(r, ctx, &queue_url)).is_err() {
            return Err(no_such_queue());
        }
    }
}

// ------------------------------------------------------------------ delete / visibility

/// The message a receipt handle names in `q`, if it still exists.
fn message_of(t: &dyn KvRead, q: &Queue, handle: &str) -> AwsResult<Option<Message>> {
    let (qid, seq) = parse_receipt(handle)?;
    if qid != q.id() {
        return Err(sqs_error(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        ));
    }
    t.get(state::MESSAGES, &state::msg_key(&qid, seq))?
        .map(|v| state::decode(&v))
        .transpose()
}

fn delete_one(s: &Sqs, q: &Queue, handle: &str) -> AwsResult<()> {
    let qid = q.id();
    s.store.transact(|t| {
        let Some(m) = message_of(t, q, handle)? else {
            return Ok(());
        };
        // A handle from an earlier receive no longer deletes the message; FIFO queues
        // say so.
        if m.receipt.as_deref() != Some(handle) {
            if q.fifo() {
                return Err(invalid_param(format!(
                    "Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
                )));
            }
            return Ok(());
        }
                        t.delete(state::MESSAGES, &state::msg_key(&qid, m.seq))?;
        state::remove_indexes(t, &qid, &m)
    })?;
    // A FIFO group may be unblocked.
    s.wake(&qid);
    Ok(())
}

fn delete_message(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    delete_one(s, &q, required(i, "ReceiptHandle")?)?;
    Ok(Map::new())
}

/// Runs `each` on every entry of a batch request, collecting successes and failures.
fn run_batch(
    i: &Input,
    mut each: impl FnMut(&Map<String, Value>) -> AwsResult<()>,
) -> AwsResult<Output> {
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for e in &batch_entries(i)? {
        let id = e.get("Id").and_then(|v| v.as_str()).unwrap_or("");
        match each(e) {
            Ok(()) => ok.push(json!({ "Id": id })),
            Err(err) => failed.push(failure(id, &err)),
        }
    }
    Ok(batch_output(ok, failed))
}

fn receipt_of(e: &Map<String, Value>) -> &str {
    e.get("ReceiptHandle")
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

fn delete_message_batch(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    run_batch(i, |e| delete_one(s, &q, receipt_of(e)))
}

fn change_one(s: &Sqs, q: &Queue, handle: &str, vt: Option<i64>) -> AwsResult<()> {
    let vt = vt.ok_or_else(|| missing("VisibilityTimeout"))?;
    if !(0..=43_200).contains(&vt) {
        return Err(invalid_param(format!(
            "Value {vt} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided."
        )));
    }
    let now = s.clock.now_millis();
    let qid = q.id();
    s.store.transact(|t| {
        let m = message_of(t, q, handle)?;
        let Some(mut m) =
            m.filter(|m| m.receipt.as_deref() == Some(handle) && m.visible_at_ms > now)
        else {
            return Err(sqs_error(
                "MessageNotInflight",
                "AWS.SimpleQueueService.MessageNotInflight",
                "Message does not exist or is not available for visibility timeout change.",
            ));
        };
        state::unindex(t, &qid, &m)?;
        m.visible_at_ms = now + vt * 1000;
        t.put(
            state::MESSAGES,
            &state::msg_key(&qid, m.seq),
            &state::encode(&m)?,
        )?;
        state::index(t, &qid, &m)
    })?;
    if vt == 0 {
        s.wake(&qid);
    }
    Ok(())
}

fn change_visibility(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    change_one(
        s,
        &q,
        required(i, "ReceiptHandle")?,
        i.get("VisibilityTimeout").and_then(|v| v.as_i64()),
    )?;
    Ok(Map::new())
}

fn change_visibility_batch(s: &Sqs, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let q = queue_from(s, ctx, i)?;
    run_batch(i, |e| {
        change_one(
            s,
            &q,
            receipt_of(e),
            e.get("VisibilityTimeout").and_then(|v| v.as_i64()),
        )
    })
}

// ------------------------------------------------------------------ move tasks

fn resource_not_found(msg: &str) -> AwsError {
    sqs_error(
        "ResourceNotFoundException",
        "ResourceNotFoundException",
        msg,
    )
}

fn task_key(source_arn: &str, started: u64) -> Vec<u8> {
    virga_store::KeyBuf::new()
        .str(source_arn)
        .u64(u64::MAX - started)
        .into_vec()
}

fn tasks_of(r: &dyn KvRead, source_arn: &str) -> AwsResult<Vec<state::MoveTask>> {
    let prefix = virga_store::KeyBuf::new().str(source_arn).into_vec();
    let end = virga_store::prefix_end(&prefix);
    r.scan(
        state::TASKS,
        Bound::Included(&prefix),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        usize::MAX,
        false,
    )?
    .iter()
    .map(|(_, v)| state::decode(v))
    .collect()
}

/// Moves the messages of a dead-letter queue back to their source queues (or to a
/// given destination). The move completes before the call returns; the task is
/// then listed as COMPLETED, which is what clients poll ListMessageMoveTasks for.
fn start_move_task(s: &Sqs, i: &Input) -> AwsResult<Output> {
    let source_arn = required(i, "SourceArn")?.to_string();
    let destination_arn = str_of(i, "DestinationArn").map(|d| d.to_string());
    let max_per_second = i
        .get("MaxNumberOfMessagesPerSecond")
        .and_then(|v| v.as_i64());
    if max_per_second.is_some_and(|m| !(1..=500).contains(&m)) {
        return Err(invalid_param("Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between 1 and 500."));
    }
    let now = s.clock.now_millis();
    let started = s.next_seq();
    let handle =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{source_arn}\n{started}"));
    let task = s.store.transact(|t| {
        let source = queue_by_arn(t, &source_arn)?.ok_or_else(|| resource_not_found("The resource that you specified for the SourceArn parameter doesn't exist."))?;
        if tasks_of(t, &source_arn)?.iter().any(|x| x.status == "RUNNING") {
            return Err(sqs_error("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "There is already a task running. Only one active task is allowed for a source queue arn at a given time."));
        }
        let destination = match &destination_arn {
            Some(d) => Some(queue_by_arn(t, d)?.ok_or_else(|| resource_not_found("The resource that you specified for the DestinationArn parameter doesn't exist."))?),
            None => None,
        };
        let qid = source.id();
        let prefix = state::qid_prefix(&qid);
        let end = virga_store::prefix_end(&prefix);
        let rows = t.scan(state::MESSAGES, Bound::Included(&prefix), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded), usize::MAX, false)?;
        let to_move = rows.len() as u64;
        let mut moved = 0u64;
        let mut failure = None;
        for (_, raw) in rows {
            let mut m: Message = state::decode(&raw)?;
            let target = match (&destination, &m.origin) {
                (Some(d), _) => Some(d.clone()),
                (None, Some(origin)) => queue_by_arn(t, origin)?,
                (None, None) => None,
            };
            let Some(target) = target else {
                failure = Some("The message's source queue no longer exists".to_string());
                continue;
            };
                                    t.delete(state::MESSAGES, &state::msg_key(&qid, m.seq))?;
            state::remove_indexes(t, &qid, &m)?;
            m.origin = None;
            m.receive_count = 0;
            append_message(s, t, &target, m)?;
            s.wake(&target.id());
            moved += 1;
        }
        let task = state::MoveTask {
            handle: handle.clone(),
            status: if failure.is_some() && moved < to_move { "FAILED".into() } else { "COMPLETED".into() },
            source_arn: source_arn.clone(),
            destination_arn: destination_arn.clone(),
            max_per_second,
            moved,
            to_move,
            started_ms: now,
            failure,
        };
        t.put(state::TASKS, &task_key(&source_arn, started), &state::encode(&task)?)?;
        Ok(task)
    })?;
    Ok(obj(json!({"TaskHandle": task.handle})))
}

fn list_move_tasks(s: &Sqs, i: &Input) -> AwsResult<Output> {
    let source_arn = required(i, "SourceArn")?.to_string();
    let max = i.get("MaxResults").and_then(|v| v.as_i64()).unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(invalid_param(
            "Value for parameter MaxResults is invalid. Reason: Must be between 1 and 10.",
        ));
    }
    let tasks = s.store.read(|r| {
        if queue_by_arn(r, &source_arn)?.is_none() {
            return Err(resource_not_found(
                "The resource that you specified for the SourceArn parameter doesn't exist.",
            ));
        }
        tasks_of(r, &source_arn)
    })?;
    let results: Vec<Value> = tasks
        .iter()
        .take(max as usize)
        .map(|t| {
            let mut e = json!({
                "Status": t.status, "SourceArn": t.source_arn,
                "ApproximateNumberOfMessagesMoved": t.moved,
                "ApproximateNumberOfMessagesToMove": t.to_move,
                "StartedTimestamp": t.started_ms,
            });
            if t.status == "RUNNING" {
                e["TaskHandle"] = json!(t.handle);
            }
            if let Some(d) = &t.destination_arn {
                e["DestinationArn"] = json!(d);
            }
            if let Some(m) = t.max_per_second {
                e["MaxNumberOfMessagesPerSecond"] = json!(m);
            }
            if let Some(f) = &t.failure {
                e["FailureReason"] = json!(f);
            }
            e
        })
        .collect();
    Ok(obj(json!({ "Results": results })))
}

fn cancel_move_task(s: &Sqs, i: &Input) -> AwsResult<Output> {
    let handle = required(i, "TaskHandle")?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| resource_not_found("Task does not exist."))?;
    let (source, _) = decoded
        .split_once('\n')
        .ok_or_else(|| resource_not_found("Task does not exist."))?;
    let tasks = s.store.read(|r| tasks_of(r, source))?;
    match tasks.iter().find(|t| t.handle == handle) {
        Some(t) if t.status == "RUNNING" => {
            Ok(obj(json!({"ApproximateNumberOfMessagesMoved": t.moved})))
        }
        Some(_) => Err(sqs_error(
            "UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
            "Only active tasks can be cancelled.",
        )),
        None => Err(resource_not_found("Task does not exist.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls() {
        assert_eq!(
            parse_queue_url("http://localhost:4566/000000000000/q1"),
            Some(("000000000000".into(), "q1".into()))
        );
        assert_eq!(
            parse_queue_url("http://sqs.us-east-1.localhost:4566/000000000000/q.fifo"),
            Some(("000000000000".into(), "q.fifo".into()))
        );
        assert_eq!(
            parse_queue_url("/000000000000/q"),
            Some(("000000000000".into(), "q".into()))
        );
        assert_eq!(parse_queue_url("http://localhost:4566/"), None);
    }

    #[test]
    fn receipts_round_trip_and_reject_garbage() {
        let h = receipt_handle("us-east-1/000000000000/q", 42);
        assert_eq!(
            parse_receipt(&h).unwrap(),
            ("us-east-1/000000000000/q".into(), 42)
        );
        assert_eq!(
            parse_receipt("garbage!").unwrap_err().code,
            "ReceiptHandleIsInvalid"
        );
    }

    #[test]
    fn names_and_bodies() {
        assert!(valid_queue_name("my-queue_1", false));
        assert!(valid_queue_name("q.fifo", true));
        assert!(!valid_queue_name("q", true));
        assert!(!valid_queue_name("bad.name", false));
        assert!(!valid_queue_name(&"a".repeat(81), false));
        assert!(valid_body("hello\tworld\n"));
        assert!(!valid_body("bell\u{7}"));
    }

    #[test]
    fn attribute_checks() {
        let mut a = BTreeMap::new();
        a.insert("VisibilityTimeout".to_string(), "50000".to_string());
        assert_eq!(
            check_attributes(&a, false, true).unwrap_err().code,
            "InvalidAttributeValue"
        );
        a.clear();
        a.insert("Bogus".to_string(), "1".to_string());
        assert_eq!(
            check_attributes(&a, false, true).unwrap_err().code,
            "InvalidAttributeName"
        );
        a.clear();
        a.insert("ContentBasedDeduplication".to_string(), "true".to_string());
        assert!(check_attributes(&a, false, true).is_err());
        assert!(check_attributes(&a, true, true).is_ok());
    }
}
