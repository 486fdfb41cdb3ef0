//! SNS operations and their state.
//!
//! | table     | key                      | value |
//! |-----------|--------------------------|-------|
//! | sns.topic | (region, account, name)  | [`Topic`] |
//! | sns.sub   | (topic arn, id)          | [`Subscription`] |

use crate::Sns;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use virga_core::events::Event;
use virga_core::filter_policy::FilterPolicy;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_store::{KeyBuf, KvRead};

const TOPICS: &str = "sns.topic";
const SUBS: &str = "sns.sub";
/// Email, email-json and SMS deliveries, kept for `/_virga/sns/messages`.
pub const CAPTURED: &str = "sns.captured";
/// FIFO topics' deduplication records: (topic ARN, deduplication id) -> [`DedupRecord`].
const DEDUP: &str = "sns.dedup";
/// How long a FIFO topic remembers a deduplication id (AWS: 5 minutes).
const DEDUP_WINDOW_SECS: f64 = 300.0;
/// SNS's message size limit (256 KiB).
const MAX_MESSAGE: usize = 262_144;

type Input = Map<String, Value>;
type Output = Map<String, Value>;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Topic {
    name: String,
    region: String,
    account: String,
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl Topic {
    fn arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}", self.region, self.account, self.name)
    }
    fn fifo(&self) -> bool {
        self.attributes
            .get("FifoTopic")
            .is_some_and(|v| v == "true")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Subscription {
    arn: String,
    topic_arn: String,
    protocol: String,
    endpoint: String,
    owner: String,
    attributes: BTreeMap<String, String>,
}

fn encode<T: Serialize>(v: &T) -> AwsResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| AwsError::internal(format!("encode: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> AwsResult<T> {
    serde_json::from_slice(b).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

fn invalid(msg: impl std::fmt::Display) -> AwsError {
    AwsError::new(400, "InvalidParameter", format!("Invalid parameter: {msg}"))
}

fn not_found(what: &str) -> AwsError {
    AwsError::new(404, "NotFound", format!("{what} does not exist"))
}

fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn s<'a>(i: &'a Input, name: &str) -> Option<&'a str> {
    i.get(name).and_then(|v| v.as_str())
}

fn string_map(i: &Input, name: &str) -> BTreeMap<String, String> {
    virga_protocol::string_map(i, name)
}

pub async fn call(sns: &Sns, ctx: &RequestContext, op: &str, i: Input) -> AwsResult<Output> {
    match op {
        "CreateTopic" => create_topic(sns, ctx, &i),
        "DeleteTopic" => delete_topic(sns, &i),
        "ListTopics" => list_topics(sns, ctx, &i),
        "GetTopicAttributes" => get_topic_attributes(sns, &i),
        "SetTopicAttributes" => set_topic_attributes(sns, &i),
        "Subscribe" => subscribe(sns, ctx, &i),
        "ConfirmSubscription" => confirm_subscription(sns, &i),
        "Unsubscribe" => unsubscribe(sns, &i),
        "ListSubscriptions" => list_subscriptions(sns, ctx, None, &i),
        "ListSubscriptionsByTopic" => {
            let arn = s(&i, "TopicArn").unwrap_or("").to_string();
            load_topic(sns, &arn)?;
            list_subscriptions(sns, ctx, Some(&arn), &i)
        }
        "GetSubscriptionAttributes" => get_subscription_attributes(sns, &i),
        "SetSubscriptionAttributes" => set_subscription_attributes(sns, &i),
        "Publish" => publish(sns, ctx, &i).await,
        "PublishBatch" => publish_batch(sns, ctx, &i).await,
        "TagResource" => tag_resource(sns, &i),
        "UntagResource" => untag_resource(sns, &i),
        "ListTagsForResource" => list_tags(sns, &i),
        _ => Err(AwsError::new(
            400,
            "InvalidAction",
            format!("Virga does not implement the SNS operation {op} yet"),
        )),
    }
}

// ------------------------------------------------------------------ topics

fn topic_key(region: &str, account: &str, name: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(account).str(name).into_vec()
}

/// (region, account, name) of a topic ARN.
fn parse_topic_arn(arn: &str) -> Option<(String, String, String)> {
    let p: Vec<&str> = arn.split(':').collect();
    match p.as_slice() {
        ["arn", _, "sns", region, account, name] => {
            Some(((*region).into(), (*account).into(), (*name).into()))
        }
        _ => None,
    }
}

fn load_topic_in(r: &dyn KvRead, arn: &str) -> AwsResult<Topic> {
    let (region, account, name) = parse_topic_arn(arn).ok_or_else(|| invalid("TopicArn"))?;
    r.get(TOPICS, &topic_key(&region, &account, &name))?
        .map(|v| decode(&v))
        .transpose()?
        .ok_or_else(|| not_found("Topic"))
}

fn load_topic(sns: &Sns, arn: &str) -> AwsResult<Topic> {
    sns.store.read(|r| load_topic_in(r, arn))
}

fn valid_topic_name(name: &str, fifo: bool) -> bool {
    virga_core::valid_resource_name(name, fifo, 256)
}

fn check_topic_attributes(attrs: &BTreeMap<String, String>) -> AwsResult<()> {
    for (k, v) in attrs {
        match k.as_str() {
            "Policy" | "DeliveryPolicy" | "DataProtectionPolicy" if !v.is_empty() => {
                serde_json::from_str::<Value>(v).map_err(|_| {
                    invalid(format!("Attributes Reason: {k}: failed to parse JSON"))
                })?;
            }
            "FifoTopic" | "ContentBasedDeduplication" if v != "true" && v != "false" => {
                return Err(invalid(format!(
                    "Attributes Reason: {k} must be true or false"
                )))
            }
            "DisplayName"
            | "Policy"
            | "DeliveryPolicy"
            | "KmsMasterKeyId"
            | "SignatureVersion"
            | "TracingConfig"
            | "FifoTopic"
            | "ContentBasedDeduplication"
            | "ArchivePolicy"
            | "FifoThroughputScope"
            | "DataProtectionPolicy" => {}
            _ if k.ends_with("FeedbackRoleArn")
                || k.ends_with("FeedbackSampleRate")
                || k.ends_with("SuccessFeedbackRoleArn") => {}
            _ => return Err(invalid(format!("Attributes Reason: Unknown attribute {k}"))),
        }
    }
    Ok(())
}

fn tag_list(i: &Input) -> AwsResult<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for t in i
        .get("Tags")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
    {
        let k = t.get("Key").and_then(|k| k.as_str()).unwrap_or("");
        let v = t.get("Value").and_then(|k| k.as_str()).unwrap_or("");
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(invalid("Tags"));
        }
        tags.insert(k.to_string(), v.to_string());
    }
    Ok(tags)
}

fn create_topic(sns: &Sns, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = s(i, "Name").unwrap_or("").to_string();
    let attrs = string_map(i, "Attributes");
    let fifo = attrs.get("FifoTopic").is_some_and(|v| v == "true");
    if !valid_topic_name(&name, fifo) {
        return Err(invalid(if name.ends_with(".fifo") && !fifo {
            "Topic Name: Fifo Topic names must end with .fifo and they must have the FifoTopic attribute set to true"
        } else {
            "Topic Name"
        }));
    }
    check_topic_attributes(&attrs)?;
    let tags = tag_list(i)?;
    let key = topic_key(&ctx.region, &ctx.account, &name);
    let topic = sns.store.transact(|t| {
        if let Some(raw) = t.get(TOPICS, &key)? {
            let existing: Topic = decode(&raw)?;
            for (k, v) in &attrs {
                if existing.attributes.get(k) != Some(v) {
                    return Err(invalid("Topic already exists with different attributes"));
                }
            }
            return Ok(existing);
        }
        let topic = Topic {
            name: name.clone(),
            region: ctx.region.clone(),
            account: ctx.account.clone(),
            attributes: attrs.clone(),
            tags: tags.clone(),
        };
        t.put(TOPICS, &key, &encode(&topic)?)?;
        Ok(topic)
    })?;
    Ok(obj(json!({"TopicArn": topic.arn()})))
}

fn subs_of(r: &dyn KvRead, topic_arn: &str) -> AwsResult<Vec<Subscription>> {
    let prefix = KeyBuf::new().str(topic_arn).into_vec();
    let end = virga_store::prefix_end(&prefix);
    r.scan(
        SUBS,
        Bound::Included(&prefix),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        usize::MAX,
        false,
    )?
    .iter()
    .map(|(_, v)| decode(v))
    .collect()
}

fn delete_topic(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "TopicArn").unwrap_or("").to_string();
    let Some((region, account, name)) = parse_topic_arn(&arn) else {
        return Err(invalid("TopicArn"));
    };
    sns.store.transact(|t| {
        for sub in subs_of(t, &arn)? {
            t.delete(SUBS, &sub_key(&sub.arn)?)?;
        }
        t.delete(TOPICS, &topic_key(&region, &account, &name))
    })?;
    Ok(Map::new())
}

fn all_topics(sns: &Sns, ctx: &RequestContext) -> AwsResult<Vec<Topic>> {
    let prefix = KeyBuf::new().str(&ctx.region).str(&ctx.account).into_vec();
    let end = virga_store::prefix_end(&prefix);
    sns.store
        .read(|r| {
            r.scan(
                TOPICS,
                Bound::Included(&prefix),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                usize::MAX,
                false,
            )
        })?
        .iter()
        .map(|(_, v)| decode(v))
        .collect()
}

/// One page of 100 after the token, and the next token.
fn page<T: Clone>(
    items: &[T],
    token: Option<&str>,
    key: impl Fn(&T) -> String,
) -> AwsResult<(Vec<T>, Option<String>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let after = match token {
        Some(t) => Some(
            b64.decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("NextToken"))?,
        ),
        None => None,
    };
    let rest: Vec<T> = items
        .iter()
        .filter(|x| after.as_ref().is_none_or(|a| key(x) > *a))
        .cloned()
        .collect();
    let next = (rest.len() > 100).then(|| b64.encode(key(&rest[99])));
    Ok((rest.into_iter().take(100).collect(), next))
}

fn list_topics(sns: &Sns, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let topics = all_topics(sns, ctx)?;
    let (page, next) = page(&topics, s(i, "NextToken"), |t| t.arn())?;
    let mut out =
        json!({"Topics": page.iter().map(|t| json!({"TopicArn": t.arn()})).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(obj(out))
}

fn default_policy(t: &Topic) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                       "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": t.arn(),
            "Condition": {"StringEquals": {"AWS:SourceOwner": t.account}}
        }]
    })
    .to_string()
}

fn get_topic_attributes(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "TopicArn").unwrap_or("").to_string();
    let (topic, subs) = sns
        .store
        .read(|r| Ok((load_topic_in(r, &arn)?, subs_of(r, &arn)?)))?;
    let mut a: BTreeMap<String, String> = BTreeMap::new();
    a.insert("TopicArn".into(), topic.arn());
    a.insert("Owner".into(), topic.account.clone());
    a.insert("Policy".into(), default_policy(&topic));
    a.insert("DisplayName".into(), String::new());
    a.insert("SubscriptionsPending".into(), "0".into());
    a.insert("SubscriptionsConfirmed".into(), subs.len().to_string());
    a.insert("SubscriptionsDeleted".into(), "0".into());
    a.insert(
        "EffectiveDeliveryPolicy".into(),
        json!({"http": {"defaultHealthyRetryPolicy": {"minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
            "numMaxDelayRetries": 0, "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear"},
            "disableSubscriptionOverrides": false, "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"}}})
        .to_string(),
    );
    if topic.fifo() {
        a.insert("FifoTopic".into(), "true".into());
        a.insert("ContentBasedDeduplication".into(), "false".into());
    }
    for (k, v) in &topic.attributes {
        a.insert(k.clone(), v.clone());
    }
    Ok(obj(json!({ "Attributes": a })))
}

fn set_topic_attributes(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "TopicArn").unwrap_or("").to_string();
    let name = s(i, "AttributeName").unwrap_or("").to_string();
    let value = s(i, "AttributeValue").unwrap_or("").to_string();
    if name == "FifoTopic" {
        return Err(invalid("AttributeName: FifoTopic cannot be changed"));
    }
    let mut one = BTreeMap::new();
    one.insert(name.clone(), value.clone());
    check_topic_attributes(&one)?;
    sns.store.transact(|t| {
        let mut topic = load_topic_in(t, &arn)?;
        topic.attributes.insert(name.clone(), value.clone());
        t.put(
            TOPICS,
            &topic_key(&topic.region, &topic.account, &topic.name),
            &encode(&topic)?,
        )
    })?;
    Ok(Map::new())
}

// ------------------------------------------------------------------ subscriptions

fn sub_key(sub_arn: &str) -> AwsResult<Vec<u8>> {
    let (topic, id) = sub_arn
        .rsplit_once(':')
        .ok_or_else(|| invalid("SubscriptionArn"))?;
    Ok(KeyBuf::new().str(topic).str(id).into_vec())
}

fn load_sub_in(r: &dyn KvRead, arn: &str) -> AwsResult<Subscription> {
    r.get(SUBS, &sub_key(arn)?)?
        .map(|v| decode(&v))
        .transpose()?
        .ok_or_else(|| not_found("Subscription"))
}

/// Checks subscription attributes (filter policies parse, booleans are booleans).
fn check_sub_attributes(
    attrs: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> AwsResult<()> {
    for (k, v) in attrs {
        match k.as_str() {
            "RawMessageDelivery" if v != "true" && v != "false" => {
                return Err(invalid("Attributes Reason: RawMessageDelivery: Invalid value [{v}]. Must be true or false."))
            }
            "FilterPolicyScope" if v != "MessageAttributes" && v != "MessageBody" => {
                return Err(invalid(format!("Attributes Reason: FilterPolicyScope: Invalid value [{v}]. Please use either MessageBody or MessageAttributes")))
            }
            "FilterPolicy" if !v.is_empty() => {
                let scope = attrs
                    .get("FilterPolicyScope")
                    .or(current.get("FilterPolicyScope"))
                    .map(|s| s.as_str())
                    .unwrap_or("MessageAttributes");
                FilterPolicy::parse(v, scope == "MessageBody").map_err(|e| AwsError::new(400, "InvalidParameter", e))?;
            }
            "RedrivePolicy" | "DeliveryPolicy" | "ReplayPolicy" if !v.is_empty() => {
                serde_json::from_str::<Value>(v).map_err(|_| invalid(format!("Attributes Reason: {k}: failed to parse JSON")))?;
            }
            "RawMessageDelivery" | "FilterPolicyScope" | "FilterPolicy" | "RedrivePolicy" | "DeliveryPolicy"
            | "SubscriptionRoleArn" | "ReplayPolicy" => {}
            "PendingConfirmation" | "Token" => return Err(invalid(format!("Attributes Reason: {k} cannot be set"))),
            _ => return Err(invalid(format!("Attributes Reason: Unknown attribute {k}"))),
        }
    }
    Ok(())
}

fn subscribe(sns: &Sns, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let topic_arn = s(i, "TopicArn").unwrap_or("").to_string();
    let protocol = s(i, "Protocol").unwrap_or("").to_ascii_lowercase();
    let endpoint = s(i, "Endpoint").unwrap_or("").to_string();
    let attrs = string_map(i, "Attributes");
    let topic = load_topic(sns, &topic_arn)?;
    match protocol.as_str() {
        "sqs" => {
            let p: Vec<&str> = endpoint.split(':').collect();
            if !matches!(p.as_slice(), ["arn", _, "sqs", _, _, _]) {
                return Err(invalid("SQS endpoint ARN"));
            }
            if topic.fifo() && !endpoint.ends_with(".fifo") {
                return Err(invalid("Invalid parameter: Endpoint Reason: FIFO SNS Topics currently only support FIFO SQS Queues as endpoints"));
            }
            if !topic.fifo() && endpoint.ends_with(".fifo") {
                return Err(invalid("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics"));
            }
        }
        "http" | "https" => {
            if !endpoint.starts_with(&format!("{protocol}://")) {
                return Err(invalid(
                    "Invalid parameter: Endpoint must match the specified protocol",
                ));
            }
        }
        "email" | "email-json" => {
            if !endpoint.contains('@') {
                return Err(invalid("Invalid parameter: Email address"));
            }
        }
        "sms" => {
            let digits = endpoint.trim_start_matches('+');
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(invalid("Invalid parameter: Endpoint"));
            }
        }
        "lambda" => {
            let p: Vec<&str> = endpoint.split(':').collect();
            if !matches!(
                p.as_slice(),
                ["arn", _, "lambda", _, _, "function", _]
                    | ["arn", _, "lambda", _, _, "function", _, _]
            ) {
                return Err(invalid("Invalid parameter: Lambda endpoint ARN"));
            }
        }
        "application" | "firehose" => {
            return Err(invalid(format!(
                "Protocol: Virga does not deliver to {protocol} subscriptions yet"
            )))
        }
        _ => return Err(invalid(format!("Invalid protocol type: {protocol}"))),
    }
    check_sub_attributes(&attrs, &BTreeMap::new())?;
    let sub = sns.store.transact(|t| {
        if let Some(existing) = subs_of(t, &topic_arn)?
            .into_iter()
            .find(|x| x.protocol == protocol && x.endpoint == endpoint)
        {
            for (k, v) in &attrs {
                if existing.attributes.get(k) != Some(v) {
                    return Err(invalid(
                        "Attributes Reason: Subscription already exists with different attributes",
                    ));
                }
            }
            return Ok(existing);
        }
        let mut sub = Subscription {
            arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
            topic_arn: topic_arn.clone(),
            protocol: protocol.clone(),
            endpoint: endpoint.clone(),
            owner: ctx.account.clone(),
            attributes: attrs.clone(),
        };
        // HTTP endpoints confirm by answering the SubscriptionConfirmation message;
        // emails and phone numbers are confirmed at once (there is nobody to click).
        if protocol == "http" || protocol == "https" {
            sub.attributes
                .insert("PendingConfirmation".into(), "true".into());
            sub.attributes.insert(
                "Token".into(),
                hex::encode(uuid::Uuid::new_v4().as_bytes()).repeat(2),
            );
        }
        t.put(SUBS, &sub_key(&sub.arn)?, &encode(&sub)?)?;
        Ok(sub)
    })?;
    let pending = is_pending(&sub);
    if pending {
        send_confirmation(sns, ctx, &topic, &sub);
    }
    let shown = if pending && i.get("ReturnSubscriptionArn") != Some(&Value::Bool(true)) {
        "pending confirmation".to_string()
    } else {
        sub.arn.clone()
    };
    Ok(obj(json!({ "SubscriptionArn": shown })))
}

fn host_of(ctx: &RequestContext) -> String {
    if ctx.host.is_empty() {
        ctx.listen_addr.clone()
    } else {
        ctx.host.clone()
    }
}

/// Posts the SubscriptionConfirmation document to a new HTTP subscriber.
fn send_confirmation(sns: &Sns, ctx: &RequestContext, topic: &Topic, sub: &Subscription) {
    let token = sub.attributes.get("Token").cloned().unwrap_or_default();
    let host = host_of(ctx);
    let id = uuid::Uuid::new_v4().to_string();
    let mut doc = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": id,
        "Token": token,
        "TopicArn": topic.arn(),
        "Message": format!("You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.", topic.arn()),
        "SubscribeURL": format!("http://{host}/?Action=ConfirmSubscription&TopicArn={}&Token={token}", topic.arn()),
        "Timestamp": virga_protocol::time_fmt::iso8601(sns.clock.now_secs_f64()),
    });
    if let Some(doc) = doc.as_object_mut() {
        let version = topic
            .attributes
            .get("SignatureVersion")
            .map_or("1", String::as_str);
        crate::signing::sign_document(doc, version, &host);
    }
    let doc = doc.to_string();
    let headers = vec![
        (
            "x-amz-sns-message-type".to_string(),
            "SubscriptionConfirmation".to_string(),
        ),
        ("x-amz-sns-message-id".to_string(), id),
        ("x-amz-sns-topic-arn".to_string(), topic.arn()),
    ];
    let url = sub.endpoint.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::deliver::post_with_retries(&url, &headers, &doc).await {
            tracing::warn!("SNS subscription confirmation to {url} failed: {e}");
        }
    });
}

fn confirm_subscription(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let topic_arn = s(i, "TopicArn").unwrap_or("").to_string();
    let token = s(i, "Token").unwrap_or("").to_string();
    let arn = sns.store.transact(|t| {
        load_topic_in(t, &topic_arn)?;
        let mut sub = subs_of(t, &topic_arn)?
            .into_iter()
            .find(|x| x.attributes.get("Token") == Some(&token))
            .ok_or_else(|| invalid("Invalid token"))?;
        sub.attributes
            .insert("PendingConfirmation".into(), "false".into());
        t.put(SUBS, &sub_key(&sub.arn)?, &encode(&sub)?)?;
        Ok(sub.arn)
    })?;
    Ok(obj(json!({ "SubscriptionArn": arn })))
}

fn unsubscribe(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "SubscriptionArn").unwrap_or("").to_string();
    let key = sub_key(&arn)?;
    // Unsubscribing twice succeeds, as on AWS.
    sns.store.transact(|t| t.delete(SUBS, &key))?;
    Ok(Map::new())
}

fn is_pending(sub: &Subscription) -> bool {
    sub.attributes
        .get("PendingConfirmation")
        .is_some_and(|v| v == "true")
}

fn sub_summary(sub: &Subscription) -> Value {
    let shown_arn = if is_pending(sub) {
        "PendingConfirmation".to_string()
    } else {
        sub.arn.clone()
    };
    json!({"SubscriptionArn": shown_arn, "Owner": sub.owner, "Protocol": sub.protocol, "Endpoint": sub.endpoint, "TopicArn": sub.topic_arn})
}

fn list_subscriptions(
    sns: &Sns,
    ctx: &RequestContext,
    topic: Option<&str>,
    i: &Input,
) -> AwsResult<Output> {
    let mut subs = Vec::new();
    match topic {
        Some(arn) => subs = sns.store.read(|r| subs_of(r, arn))?,
        None => {
            for t in all_topics(sns, ctx)? {
                subs.extend(sns.store.read(|r| subs_of(r, &t.arn()))?);
            }
        }
    }
    let (page, next) = page(&subs, s(i, "NextToken"), |x| x.arn.clone())?;
    let mut out = json!({"Subscriptions": page.iter().map(sub_summary).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(obj(out))
}

fn get_subscription_attributes(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "SubscriptionArn").unwrap_or("").to_string();
    let sub = sns.store.read(|r| load_sub_in(r, &arn))?;
    let mut a: BTreeMap<String, String> = BTreeMap::new();
    a.insert("SubscriptionArn".into(), sub.arn.clone());
    a.insert("TopicArn".into(), sub.topic_arn.clone());
    a.insert("Protocol".into(), sub.protocol.clone());
    a.insert("Endpoint".into(), sub.endpoint.clone());
    a.insert("Owner".into(), sub.owner.clone());
    a.insert("PendingConfirmation".into(), "false".into());
    a.insert("ConfirmationWasAuthenticated".into(), "true".into());
    a.insert("RawMessageDelivery".into(), "false".into());
    a.insert(
        "SubscriptionPrincipal".into(),
        format!("arn:aws:iam::{}:root", sub.owner),
    );
    for (k, v) in &sub.attributes {
        if k != "Token" {
            a.insert(k.clone(), v.clone());
        }
    }
    if a.contains_key("FilterPolicy") && !a.contains_key("FilterPolicyScope") {
        a.insert("FilterPolicyScope".into(), "MessageAttributes".into());
    }
    Ok(obj(json!({ "Attributes": a })))
}

fn set_subscription_attributes(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "SubscriptionArn").unwrap_or("").to_string();
    let name = s(i, "AttributeName").unwrap_or("").to_string();
    let value = s(i, "AttributeValue").unwrap_or("").to_string();
    let key = sub_key(&arn)?;
    sns.store.transact(|t| {
        let mut sub = load_sub_in(t, &arn)?;
        let mut one = BTreeMap::new();
        one.insert(name.clone(), value.clone());
        check_sub_attributes(&one, &sub.attributes)?;
        if name == "FilterPolicy" && is_empty_policy(&value) {
            sub.attributes.remove(&name);
        } else {
            sub.attributes.insert(name.clone(), value.clone());
        }
        t.put(SUBS, &key, &encode(&sub)?)
    })?;
    Ok(Map::new())
}

// ------------------------------------------------------------------ tags

fn tag_target(arn: &str) -> AwsResult<(String, String, String)> {
    parse_topic_arn(arn)
        .ok_or_else(|| AwsError::new(404, "ResourceNotFound", "Resource does not exist"))
}

fn update_tags(
    sns: &Sns,
    i: &Input,
    f: impl FnOnce(&mut BTreeMap<String, String>),
) -> AwsResult<Output> {
    let arn = s(i, "ResourceArn").unwrap_or("").to_string();
    let (region, account, name) = tag_target(&arn)?;
    sns.store.transact(|t| {
        let key = topic_key(&region, &account, &name);
        let mut topic: Topic = t
            .get(TOPICS, &key)?
            .map(|v| decode(&v))
            .transpose()?
            .ok_or_else(|| AwsError::new(404, "ResourceNotFound", "Resource does not exist"))?;
        f(&mut topic.tags);
        if topic.tags.len() > 50 {
            return Err(AwsError::new(
                400,
                "TagLimitExceeded",
                "Could not complete request: tag quota of per resource exceeded",
            ));
        }
        t.put(TOPICS, &key, &encode(&topic)?)
    })?;
    Ok(Map::new())
}

fn tag_resource(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let tags = tag_list(i)?;
    update_tags(sns, i, |t| t.extend(tags))
}

fn untag_resource(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let keys: Vec<String> = virga_protocol::string_list(i, "TagKeys");
    update_tags(sns, i, |t| {
        for k in &keys {
            t.remove(k);
        }
    })
}

fn list_tags(sns: &Sns, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "ResourceArn").unwrap_or("").to_string();
    tag_target(&arn)?;
    let topic = load_topic(sns, &arn)
        .map_err(|_| AwsError::new(404, "ResourceNotFound", "Resource does not exist"))?;
    Ok(obj(
        json!({"Tags": topic.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}),
    ))
}

// ------------------------------------------------------------------ publish

/// One message to publish (from Publish or a batch entry).
struct Outgoing {
    message: String,
    subject: Option<String>,
    structure_json: bool,
    attributes: Map<String, Value>,
    group: Option<String>,
    dedup: Option<String>,
}

impl Outgoing {
    fn from(i: &Input) -> Outgoing {
        Outgoing {
            message: s(i, "Message").unwrap_or("").to_string(),
            subject: s(i, "Subject").map(|x| x.to_string()),
            structure_json: s(i, "MessageStructure") == Some("json"),
            attributes: i
                .get("MessageAttributes")
                .and_then(|a| a.as_object())
                .cloned()
                .unwrap_or_default(),
            group: s(i, "MessageGroupId").map(|x| x.to_string()),
            dedup: s(i, "MessageDeduplicationId").map(|x| x.to_string()),
        }
    }
}

/// The document a MessageAttributes-scoped filter policy is matched against.
fn attribute_document(attrs: &Map<String, Value>) -> Value {
    let mut doc = Map::new();
    for (k, v) in attrs {
        let dt = v
            .get("DataType")
            .and_then(|d| d.as_str())
            .unwrap_or("String");
        let sv = v.get("StringValue").and_then(|d| d.as_str());
        let val = match (dt.split('.').next().unwrap_or(""), sv) {
            ("Number", Some(n)) => n
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            ("String", Some(text)) if dt == "String.Array" => {
                serde_json::from_str::<Value>(text).ok()
            }
            ("String", Some(text)) => Some(json!(text)),
            _ => Some(Value::Null),
        };
        if let Some(val) = val {
            doc.insert(k.clone(), val);
        }
    }
    Value::Object(doc)
}

/// `""` and `{}` mean "no filter policy".
fn is_empty_policy(p: &str) -> bool {
    p.trim().is_empty()
        || serde_json::from_str::<Value>(p)
            .is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

fn passes_filter(sub: &Subscription, m: &Outgoing, message_for_sub: &str) -> bool {
    let Some(policy) = sub
        .attributes
        .get("FilterPolicy")
        .filter(|p| !is_empty_policy(p))
    else {
        return true;
    };
    let body_scope = sub
        .attributes
        .get("FilterPolicyScope")
        .is_some_and(|s| s == "MessageBody");
    let Ok(p) = FilterPolicy::parse(policy, body_scope) else {
        return false;
    };
    if body_scope {
        serde_json::from_str::<Value>(message_for_sub).is_ok_and(|doc| p.matches(&doc))
    } else {
        // A message without attributes matches no attribute policy (not even
        // `"exists": false`).
        !m.attributes.is_empty() && p.matches(&attribute_document(&m.attributes))
    }
}

fn check_outgoing(topic: &Topic, m: &Outgoing) -> AwsResult<Option<Map<String, Value>>> {
    if m.message.is_empty() {
        return Err(invalid("Empty message"));
    }
    if m.message.len() > MAX_MESSAGE {
        return Err(invalid("Message too long"));
    }
    if m.subject
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 100 || s.chars().any(|c| c.is_control()))
    {
        return Err(invalid("Subject"));
    }
    for (k, v) in &m.attributes {
        let dt = v.get("DataType").and_then(|d| d.as_str()).unwrap_or("");
        if !matches!(dt.split('.').next(), Some("String" | "Number" | "Binary")) {
            return Err(invalid(format!(
                "The message attribute '{k}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        if v.get("StringValue").is_none() && v.get("BinaryValue").is_none() {
            return Err(invalid(format!("The message attribute '{k}' must contain non-empty message attribute value for message attribute type '{dt}'.")));
        }
    }
    if topic.fifo() {
        if m.group.is_none() {
            return Err(invalid(
                "The MessageGroupId parameter is required for FIFO topics",
            ));
        }
        let content_dedup = topic
            .attributes
            .get("ContentBasedDeduplication")
            .is_some_and(|v| v == "true");
        if m.dedup.is_none() && !content_dedup {
            return Err(invalid(
                "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
            ));
        }
    } else if m.group.is_some() && m.dedup.is_some() {
        return Err(invalid("MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type"));
    }
    if m.structure_json {
        let v: Value = serde_json::from_str(&m.message)
            .map_err(|_| invalid("Message Structure - JSON message body failed to parse"))?;
        let Value::Object(o) = v else {
            return Err(invalid(
                "Message Structure - JSON message body failed to parse",
            ));
        };
        if !o.contains_key("default") {
            return Err(invalid(
                "Message Structure - No default entry in JSON message body",
            ));
        }
        return Ok(Some(o));
    }
    Ok(None)
}

/// What every envelope of one publish shares: one timestamp, and the signatures
/// already computed (keyed by message text; with MessageStructure=json protocols
/// may get different texts). The signed fields do not include the subscription,
/// so N subscribers cost one RSA signature, not N.
struct EnvelopeSigner {
    host: String,
    timestamp: String,
    version: String,
    signatures: Vec<(String, Value, Value)>,
}

impl EnvelopeSigner {
    fn new(sns: &Sns, ctx: &RequestContext, topic: &Topic) -> EnvelopeSigner {
        EnvelopeSigner {
            host: host_of(ctx),
            timestamp: virga_protocol::time_fmt::iso8601(sns.clock.now_secs_f64()),
            version: topic
                .attributes
                .get("SignatureVersion")
                .cloned()
                .unwrap_or_else(|| "1".into()),
            signatures: Vec::new(),
        }
    }

    /// The SNS JSON envelope a subscriber receives without raw delivery.
    fn envelope(
        &mut self,
        topic: &Topic,
        sub: &Subscription,
        id: &str,
        message: &str,
        m: &Outgoing,
    ) -> String {
        let mut e = Map::new();
        e.insert("Type".into(), json!("Notification"));
        e.insert("MessageId".into(), json!(id));
        e.insert("TopicArn".into(), json!(topic.arn()));
        if let Some(subject) = &m.subject {
            e.insert("Subject".into(), json!(subject));
        }
        e.insert("Message".into(), json!(message));
        e.insert("Timestamp".into(), json!(self.timestamp));
        match self.signatures.iter().find(|(text, _, _)| text == message) {
            Some((_, version, signature)) => {
                e.insert("SignatureVersion".into(), version.clone());
                e.insert("Signature".into(), signature.clone());
                e.insert(
                    "SigningCertURL".into(),
                    json!(format!("http://{}{}", self.host, crate::signing::CERT_PATH)),
                );
            }
            None => {
                crate::signing::sign_document(&mut e, &self.version, &self.host);
                self.signatures.push((
                    message.to_string(),
                    e["SignatureVersion"].clone(),
                    e["Signature"].clone(),
                ));
            }
        }
        e.insert(
            "UnsubscribeURL".into(),
            json!(format!(
                "http://{}/?Action=Unsubscribe&SubscriptionArn={}",
                self.host, sub.arn
            )),
        );
        if !m.attributes.is_empty() {
            let attrs: Map<String, Value> = m
                .attributes
                .iter()
                .map(|(k, v)| {
                    let dt = v
                        .get("DataType")
                        .and_then(|d| d.as_str())
                        .unwrap_or("String");
                    let value = v
                        .get("StringValue")
                        .or(v.get("BinaryValue"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    (k.clone(), json!({"Type": dt, "Value": value}))
                })
                .collect();
            e.insert("MessageAttributes".into(), Value::Object(attrs));
        }
        Value::Object(e).to_string()
    }
}

/// Publishes one message to every matching subscription; returns (MessageId, SequenceNumber).
async fn publish_one(
    sns: &Sns,
    ctx: &RequestContext,
    topic: &Topic,
    m: Outgoing,
) -> AwsResult<(String, Option<String>)> {
    let structure = check_outgoing(topic, &m)?;
    let id = uuid::Uuid::new_v4().to_string();
    let subs = sns.store.read(|r| subs_of(r, &topic.arn()))?;
    let dedup = if topic.fifo() {
        Some(m.dedup.clone().unwrap_or_else(|| {
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(m.message.as_bytes()))
        }))
    } else {
        None
    };
    let seq = topic
        .fifo()
        .then(|| format!("{:020}", sns.clock.now_millis().max(0) as u64 * 1000));
    if let (Some(d), Some(seq)) = (&dedup, &seq) {
        // A repeat within the window is accepted and answered with the first
        // publish's ids, but not delivered again.
        let key = KeyBuf::new().str(&topic.arn()).str(d).into_vec();
        let now = sns.clock.now_secs_f64();
        let first = sns.store.transact(|t| {
            if let Some(v) = t.get(DEDUP, &key)? {
                let rec: DedupRecord = decode(&v)?;
                if rec.at + DEDUP_WINDOW_SECS > now {
                    return Ok(Some(rec));
                }
            }
            let rec = DedupRecord {
                id: id.clone(),
                seq: seq.clone(),
                at: now,
            };
            t.put(DEDUP, &key, &encode(&rec)?)?;
            Ok(None)
        })?;
        if let Some(rec) = first {
            return Ok((rec.id, Some(rec.seq)));
        }
    }
    let mut answers = Vec::new();
    let mut http_deliveries = Vec::new();
    let mut signer = EnvelopeSigner::new(sns, ctx, topic);
    for sub in subs.iter().filter(|x| !is_pending(x)) {
        let text = match &structure {
            Some(o) => o
                .get(sub.protocol.as_str())
                .or(o.get("default"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            None => m.message.clone(),
        };
        if !passes_filter(sub, &m, &text) {
            continue;
        }
        let raw = sub
            .attributes
            .get("RawMessageDelivery")
            .is_some_and(|v| v == "true");
        match sub.protocol.as_str() {
            "sqs" => {
                let body = if raw {
                    text.clone()
                } else {
                    signer.envelope(topic, sub, &id, &text, &m)
                };
                let mut payload = json!({"Body": body});
                if raw && !m.attributes.is_empty() {
                    payload["MessageAttributes"] = Value::Object(m.attributes.clone());
                }
                if let Some(g) = &m.group {
                    payload["MessageGroupId"] = json!(g);
                }
                if let Some(d) = &dedup {
                    payload["MessageDeduplicationId"] = json!(d);
                }
                hand_over(sns, sub, payload, &mut answers, "no SQS service");
            }
            "lambda" => {
                // Lambda gets the envelope as an `aws:sns` event record, with
                // Lambda's spelling of the URL keys.
                let envelope = signer.envelope(topic, sub, &id, &text, &m);
                let mut sns_doc: Map<String, Value> =
                    serde_json::from_str(&envelope).unwrap_or_default();
                for (from, to) in [
                    ("SigningCertURL", "SigningCertUrl"),
                    ("UnsubscribeURL", "UnsubscribeUrl"),
                ] {
                    if let Some(v) = sns_doc.remove(from) {
                        sns_doc.insert(to.into(), v);
                    }
                }
                sns_doc.entry("Subject").or_insert(Value::Null);
                sns_doc
                    .entry("MessageAttributes")
                    .or_insert_with(|| json!({}));
                let payload = json!({"Records": [{
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": sub.arn,
                    "Sns": sns_doc,
                }]});
                hand_over(sns, sub, payload, &mut answers, "no Lambda service");
            }
            "http" | "https" => {
                let body = if raw {
                    text.clone()
                } else {
                    signer.envelope(topic, sub, &id, &text, &m)
                };
                let headers = vec![
                    (
                        "x-amz-sns-message-type".to_string(),
                        "Notification".to_string(),
                    ),
                    ("x-amz-sns-message-id".to_string(), id.clone()),
                    ("x-amz-sns-topic-arn".to_string(), topic.arn()),
                    ("x-amz-sns-subscription-arn".to_string(), sub.arn.clone()),
                ];
                http_deliveries.push(HttpDelivery {
                    subscription: sub.clone(),
                    headers,
                    body,
                });
            }
            "email" | "email-json" | "sms" => {
                let content = if sub.protocol == "email-json" {
                    signer.envelope(topic, sub, &id, &text, &m)
                } else {
                    text.clone()
                };
                capture(
                    sns,
                    &sub.protocol,
                    &sub.endpoint,
                    m.subject.as_deref(),
                    &content,
                    &topic.arn(),
                    &id,
                )?;
            }
            _ => {}
        }
    }
    if !http_deliveries.is_empty() {
        queue_http_deliveries(sns, http_deliveries)?;
    }
    for (sub, payload, answer) in answers {
        if let Ok(Err(reason)) = answer.await {
            dead_letter(sns, &sub, payload, &reason);
        }
    }
    Ok((id, seq))
}

/// A delivery's answer to come from the consuming service.
type Answer = (
    Subscription,
    Value,
    tokio::sync::oneshot::Receiver<Result<(), String>>,
);

/// Hands a delivery to the service behind the subscription's endpoint (through the
/// bus); without one it goes to the subscription's dead-letter queue.
fn hand_over(
    sns: &Sns,
    sub: &Subscription,
    payload: Value,
    answers: &mut Vec<Answer>,
    missing: &str,
) {
    let event = Event {
        source: "sns".into(),
        target_arn: sub.endpoint.clone(),
        payload: payload.clone(),
    };
    match sns.bus.publish(event) {
        Ok(answer) => answers.push((sub.clone(), payload, answer)),
        Err(_) => dead_letter(sns, sub, payload, missing),
    }
}

/// HTTP(S) notifications not yet delivered: (sequence) -> [`HttpDelivery`]. A
/// publish stores them before it answers, so a restart resumes them.
const HTTP_OUTBOX: &str = "sns.http_outbox";

#[derive(Serialize, Deserialize)]
struct HttpDelivery {
    subscription: Subscription,
    headers: Vec<(String, String)>,
    body: String,
}

/// A key that sorts outbox records in the order they were written, across restarts.
fn outbox_key() -> Vec<u8> {
    KeyBuf::new().u64(virga_store::write_order()).into_vec()
}

fn queue_http_deliveries(sns: &Sns, deliveries: Vec<HttpDelivery>) -> AwsResult<()> {
    let keyed: Vec<(Vec<u8>, HttpDelivery)> =
        deliveries.into_iter().map(|d| (outbox_key(), d)).collect();
    sns.store.transact(|t| {
        for (key, d) in &keyed {
            t.put(HTTP_OUTBOX, key, &encode(d)?)?;
        }
        Ok(())
    })?;
    for (key, d) in keyed {
        spawn_http_delivery(sns, key, d);
    }
    Ok(())
}

/// Delivers one outbox record with retries; a delivery that never succeeds goes to
/// the subscription's dead-letter queue. The record is removed either way.
fn spawn_http_delivery(sns: &Sns, key: Vec<u8>, d: HttpDelivery) {
    let store = sns.store.clone();
    let bus = sns.bus.clone();
    tokio::spawn(async move {
        let sub = &d.subscription;
        if let Err(e) = crate::deliver::post_with_retries(&sub.endpoint, &d.headers, &d.body).await
        {
            tracing::warn!("SNS delivery to {} failed: {e}", sub.endpoint);
            send_to_dlq(&bus, sub, json!({"Body": d.body}));
        }
        if let Err(e) = store.transact(|t| t.delete(HTTP_OUTBOX, &key)) {
            tracing::warn!("SNS outbox: {}", e.message);
        }
    });
}

/// Resumes the HTTP(S) deliveries a previous run had not finished.
pub(crate) fn resume_http_deliveries(sns: &Sns) {
    let rows = match sns.store.read(|r| {
        r.scan(
            HTTP_OUTBOX,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            false,
        )
    }) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!("SNS outbox unreadable: {}", e.message);
            return;
        }
    };
    for (key, value) in rows {
        match decode::<HttpDelivery>(&value) {
            Ok(d) => spawn_http_delivery(sns, key, d),
            Err(e) => tracing::warn!("SNS outbox record skipped: {}", e.message),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct DedupRecord {
    id: String,
    seq: String,
    at: f64,
}

/// Sends a failed delivery to the subscription's dead-letter queue, if it has one.
fn send_to_dlq(bus: &virga_core::events::EventBus, sub: &Subscription, payload: Value) {
    let Some(dlq) = sub
        .attributes
        .get("RedrivePolicy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| {
            p.get("deadLetterTargetArn")
                .and_then(|a| a.as_str())
                .map(|a| a.to_string())
        })
    else {
        tracing::warn!("SNS message for {} dropped: no dead-letter queue", sub.arn);
        return;
    };
    if bus
        .publish(Event {
            source: "sns".into(),
            target_arn: dlq.clone(),
            payload,
        })
        .is_err()
    {
        tracing::warn!("SNS dead-letter queue {dlq} unavailable");
    }
}

fn dead_letter(sns: &Sns, sub: &Subscription, payload: Value, reason: &str) {
    tracing::warn!("SNS delivery to {} failed ({reason})", sub.endpoint);
    send_to_dlq(&sns.bus, sub, payload);
}

/// Keeps an email/SMS delivery for `/_virga/sns/messages`.
fn capture(
    sns: &Sns,
    protocol: &str,
    endpoint: &str,
    subject: Option<&str>,
    message: &str,
    topic_arn: &str,
    id: &str,
) -> AwsResult<()> {
    let seq = (sns.clock.now_millis().max(0) as u64) * 1000
        + (uuid::Uuid::new_v4().as_u128() % 1000) as u64;
    let record = json!({
        "protocol": protocol, "endpoint": endpoint, "subject": subject, "message": message,
        "topic_arn": topic_arn, "message_id": id,
        "timestamp": virga_protocol::time_fmt::iso8601(sns.clock.now_secs_f64()),
    });
    sns.store.transact(|t| {
        t.put(
            CAPTURED,
            &KeyBuf::new().u64(seq).into_vec(),
            &encode(&record)?,
        )
    })
}

/// Captured email/SMS deliveries, oldest first, optionally of one protocol.
pub fn captured(sns: &Sns, protocol: Option<&str>) -> AwsResult<Vec<Value>> {
    let rows = sns.store.read(|r| {
        r.scan(
            CAPTURED,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            false,
        )
    })?;
    let mut out = Vec::new();
    for (_, v) in rows {
        let rec: Value = decode(&v)?;
        if protocol.is_none_or(|p| rec.get("protocol").and_then(|x| x.as_str()) == Some(p)) {
            out.push(rec);
        }
    }
    Ok(out)
}

/// Publishes an event another service addressed to a topic (an S3 notification):
/// the message is the event document, as AWS sends it.
pub(crate) async fn publish_event(sns: &Sns, event: &Event) -> Result<(), String> {
    let topic = load_topic(sns, &event.target_arn).map_err(|e| e.message)?;
    let (message, subject) = match event.payload.get("Message").and_then(Value::as_str) {
        Some(m) => (
            m.to_string(),
            event
                .payload
                .get("Subject")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        None => (
            event.payload.to_string(),
            (event.source == "s3").then(|| "Amazon S3 Notification".to_string()),
        ),
    };
    let m = Outgoing {
        message,
        subject,
        structure_json: false,
        attributes: Map::new(),
        group: None,
        dedup: None,
    };
    let ctx = RequestContext::system(
        sns.clock.clone(),
        &format!("{}.amazonaws.com", event.source),
    );
    publish_one(sns, &ctx, &topic, m)
        .await
        .map(|_| ())
        .map_err(|e| e.message)
}

async fn publish(sns: &Sns, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    if let Some(phone) = s(i, "PhoneNumber") {
        // A direct SMS: nothing to fan out; Virga keeps it for inspection.
        let message = s(i, "Message").unwrap_or("");
        if message.is_empty() {
            return Err(invalid("Empty message"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        capture(sns, "sms", phone, None, message, "", &id)?;
        return Ok(obj(json!({ "MessageId": id })));
    }
    let arn = s(i, "TopicArn")
        .or(s(i, "TargetArn"))
        .ok_or_else(|| invalid("TopicArn or TargetArn Reason: no value for required parameter"))?;
    let topic = load_topic(sns, arn)?;
    let (id, seq) = publish_one(sns, ctx, &topic, Outgoing::from(i)).await?;
    let mut out = json!({"MessageId": id});
    if let Some(s) = seq {
        out["SequenceNumber"] = json!(s);
    }
    Ok(obj(out))
}

async fn publish_batch(sns: &Sns, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "TopicArn").unwrap_or("").to_string();
    let topic = load_topic(sns, &arn)?;
    let entries: Vec<Map<String, Value>> = i
        .get("PublishBatchRequestEntries")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_object().cloned()).collect())
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(AwsError::new(
            400,
            "EmptyBatchRequest",
            "The batch request doesn't contain any entries.",
        ));
    }
    if entries.len() > 10 {
        return Err(AwsError::new(
            400,
            "TooManyEntriesInBatchRequest",
            "The batch request contains more entries than permissible.",
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
            return Err(AwsError::new(
                400,
                "InvalidBatchEntryId",
                "The Id of a batch entry in a batch request doesn't abide by the specification.",
            ));
        }
        if !seen.insert(id.to_string()) {
            return Err(AwsError::new(
                400,
                "BatchEntryIdsNotDistinct",
                "Two or more batch entries in the request have the same Id.",
            ));
        }
    }
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for e in &entries {
        let id = e
            .get("Id")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        match publish_one(sns, ctx, &topic, Outgoing::from(e)).await {
            Ok((mid, seq)) => {
                let mut r = json!({"Id": id, "MessageId": mid});
                if let Some(s) = seq {
                    r["SequenceNumber"] = json!(s);
                }
                ok.push(r);
            }
            Err(err) => failed.push(
                json!({"Id": id, "Code": err.code, "Message": err.message, "SenderFault": true}),
            ),
        }
    }
    Ok(obj(json!({"Successful": ok, "Failed": failed})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_names() {
        assert_eq!(
            parse_topic_arn("arn:aws:sns:us-east-1:000000000000:t1"),
            Some(("us-east-1".into(), "000000000000".into(), "t1".into()))
        );
        assert_eq!(
            parse_topic_arn("arn:aws:sqs:us-east-1:000000000000:q"),
            None
        );
        assert!(valid_topic_name("orders-v2_x", false));
        assert!(valid_topic_name("orders.fifo", true));
        assert!(!valid_topic_name("orders.fifo", false));
        assert!(!valid_topic_name("bad name", false));
    }

    #[test]
    fn attribute_documents_type_values() {
        let attrs = json!({
            "n": {"DataType": "Number", "StringValue": "12.5"},
            "s": {"DataType": "String", "StringValue": "x"},
            "a": {"DataType": "String.Array", "StringValue": "[\"p\", 1]"}
        });
        let doc = attribute_document(attrs.as_object().unwrap());
        assert_eq!(doc["n"], json!(12.5));
        assert_eq!(doc["s"], json!("x"));
        assert_eq!(doc["a"], json!(["p", 1]));
    }
}
