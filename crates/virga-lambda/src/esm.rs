//! Event source mappings and their pollers. A poller reads its source through the
//! source service's own API (SQS ReceiveMessage/DeleteMessageBatch, DynamoDB Streams
//! GetRecords), invokes the function synchronously with a batch, and deletes or
//! checkpoints only what the function processed.

use crate::functions::{self, qualified_arn};
use crate::invoke;
use crate::state::{self, dec, enc, Mapping};
use crate::{invalid, not_found, s, Input, Lambda, Output};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use virga_core::filter_policy::FilterPolicy;
use virga_core::{AwsError, AwsResult, RequestContext, DEFAULT_ACCOUNT};

/// Stops a poller when dropped or signalled.
pub struct PollerHandle {
    stop: watch::Sender<bool>,
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Source {
    Sqs,
    DynamoDb,
}

fn source_of(arn: &str) -> AwsResult<Source> {
    match arn.split(':').nth(2) {
        Some("sqs") => Ok(Source::Sqs),
        Some("dynamodb") if arn.contains("/stream/") => Ok(Source::DynamoDb),
        _ => Err(invalid(format!(
            "Virga supports event source mappings from SQS queues and DynamoDB streams; {arn} is neither."
        ))),
    }
}

fn mapping_not_found() -> AwsError {
    not_found("The resource you requested does not exist.")
}

fn load(l: &Lambda, uuid: &str) -> AwsResult<Mapping> {
    l.store
        .read(|r| r.get(state::MAPPINGS, uuid.as_bytes()))?
        .map(|b| dec(&b))
        .transpose()?
        .ok_or_else(mapping_not_found)
}

fn save(l: &Lambda, uuid: &str, m: &Mapping) -> AwsResult<()> {
    l.store
        .transact(|t| t.put(state::MAPPINGS, uuid.as_bytes(), &enc(m)?))
}

fn system_ctx(l: &Lambda, region: &str) -> RequestContext {
    let mut ctx = RequestContext::system(l.clock.clone(), "lambda.amazonaws.com");
    ctx.region = region.to_string();
    ctx
}

/// The function ARN a mapping invokes (must exist).
fn function_target(l: &Lambda, region: &str, raw: &str) -> AwsResult<String> {
    let (name, q) = functions::parse_name(raw, None)?;
    let exists = l
        .store
        .read(|r| r.get(state::FUNCTIONS, &state::fn_key(region, &name)))?
        .is_some();
    if !exists {
        return Err(invalid(format!(
            "Function does not exist: {}",
            qualified_arn(region, &name, q.as_deref())
        )));
    }
    Ok(qualified_arn(region, &name, q.as_deref()))
}

fn check_batch(source: Source, c: &Map<String, Value>) -> AwsResult<()> {
    let batch = c["BatchSize"].as_i64().unwrap_or(10);
    let window = c
        .get("MaximumBatchingWindowInSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    match source {
        Source::Sqs if batch > 10 && window < 1 => Err(invalid(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        )),
        Source::Sqs if !(1..=10_000).contains(&batch) => Err(invalid(format!(
            "BatchSize {batch} is out of range: it must be between 1 and 10000 for SQS."
        ))),
        Source::DynamoDb if !(1..=10_000).contains(&batch) => Err(invalid(format!(
            "BatchSize {batch} is out of range: it must be between 1 and 10000 for DynamoDB Streams."
        ))),
        _ => Ok(()),
    }
}

/// Parameters of stream sources that an SQS mapping refuses, as AWS does.
const STREAM_ONLY: &[&str] = &[
    "StartingPosition",
    "StartingPositionTimestamp",
    "ParallelizationFactor",
    "DestinationConfig",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
];

fn check_source_params(source: Source, i: &Input) -> AwsResult<()> {
    if source != Source::Sqs {
        return Ok(());
    }
    match STREAM_ONLY.iter().find(|k| i.contains_key(**k)) {
        Some(k) => Err(invalid(format!("{k} is not valid for SQS event sources."))),
        None => Ok(()),
    }
}

/// The mapping's FilterCriteria patterns (EventBridge-style, over the event record
/// as the function would see it; an SQS body that is JSON is matched as a document).
fn filters(c: &Map<String, Value>) -> AwsResult<Vec<FilterPolicy>> {
    let Some(list) = c
        .get("FilterCriteria")
        .and_then(|f| f.get("Filters"))
        .and_then(Value::as_array)
    else {
        return Ok(Vec::new());
    };
    if list.len() > 5 {
        return Err(invalid("Invalid filter pattern definition. Lambda allows at most 5 filters per event source mapping."));
    }
    list.iter()
        .map(|f| {
            let text = f.get("Pattern").and_then(Value::as_str).unwrap_or("");
            FilterPolicy::parse(text, true)
                .map_err(|e| invalid(format!("Invalid filter pattern definition. {e}")))
        })
        .collect()
}

/// Whether a record passes the mapping's filters (any one of them; none = all pass).
fn passes(filters: &[FilterPolicy], record: &Value) -> bool {
    if filters.is_empty() {
        return true;
    }
    let mut doc = record.clone();
    if let Some(body) = record.get("body").and_then(Value::as_str) {
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(body) {
            doc["body"] = v;
        }
    }
    filters.iter().any(|f| f.matches(&doc))
}

const TUNABLES: &[&str] = &[
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "FunctionResponseTypes",
    "FilterCriteria",
    "ScalingConfig",
    "DestinationConfig",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "ParallelizationFactor",
    "TumblingWindowInSeconds",
];

pub async fn create(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "EventSourceArn")
        .ok_or_else(|| {
            invalid("Unrecognized event source, must be kafka or specify EventSourceArn")
        })?
        .to_string();
    let source = source_of(&arn)?;
    check_source_params(source, i)?;
    let function_arn = function_target(l, region, s(i, "FunctionName").unwrap_or(""))?;
    let ctx = system_ctx(l, region);
    let mut iterators = HashMap::new();
    match source {
        Source::Sqs => {
            queue_url(l, &ctx, &arn).await.map_err(|e| {
                invalid(format!(
                    "Error occurred while ReceiveMessage. SQS Error Code: {}. SQS Error Message: {}",
                    e.code, e.message
                ))
            })?;
        }
        Source::DynamoDb => {
            if s(i, "StartingPosition").is_none() {
                return Err(invalid("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null"));
            }
            let shards = stream_shards(l, &ctx, &arn)
                .await
                .map_err(|e| invalid(format!("Stream not found: {arn} ({})", e.message)))?;
            if s(i, "StartingPosition") == Some("LATEST") {
                // LATEST is where the stream is now, not when the poller first looks.
                for shard in shards {
                    let req =
                        json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "LATEST"});
                    if let Ok(o) = streams_call(l, &ctx, "GetShardIterator", req).await {
                        if let Some(it) = o["ShardIterator"].as_str() {
                            iterators.insert(shard, it.to_string());
                        }
                    }
                }
            }
        }
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut c = Map::new();
    c.insert("UUID".into(), json!(uuid));
    c.insert(
        "BatchSize".into(),
        json!(if source == Source::Sqs { 10 } else { 100 }),
    );
    c.insert("MaximumBatchingWindowInSeconds".into(), json!(0));
    c.insert("EventSourceArn".into(), json!(arn));
    c.insert("FunctionArn".into(), json!(function_arn));
    c.insert("LastModified".into(), json!(crate::now_secs(&l.clock)));
    c.insert("StateTransitionReason".into(), json!("USER_INITIATED"));
    c.insert("FunctionResponseTypes".into(), json!([]));
    c.insert(
        "EventSourceMappingArn".into(),
        json!(format!(
            "arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:event-source-mapping:{uuid}"
        )),
    );
    if source == Source::DynamoDb {
        c.insert("StartingPosition".into(), json!(s(i, "StartingPosition")));
        if let Some(ts) = i.get("StartingPositionTimestamp") {
            c.insert("StartingPositionTimestamp".into(), ts.clone());
        }
        c.insert("ParallelizationFactor".into(), json!(1));
        c.insert("DestinationConfig".into(), json!({"OnFailure": {}}));
        c.insert("MaximumRecordAgeInSeconds".into(), json!(-1));
        c.insert("BisectBatchOnFunctionError".into(), json!(false));
        c.insert("MaximumRetryAttempts".into(), json!(-1));
        c.insert("TumblingWindowInSeconds".into(), json!(0));
        c.insert("LastProcessingResult".into(), json!("No records processed"));
    }
    for k in TUNABLES {
        if let Some(v) = i.get(*k) {
            c.insert((*k).into(), v.clone());
        }
    }
    check_batch(source, &c)?;
    filters(&c)?;
    let duplicate = l
        .store
        .read(|r| state::scan_prefix(r, state::MAPPINGS, &[], None, usize::MAX))?
        .into_iter()
        .filter_map(|(_, v)| dec::<Mapping>(&v).ok())
        .find(|x| {
            x.config["EventSourceArn"] == arn.as_str()
                && x.config["FunctionArn"] == function_arn.as_str()
        });
    if let Some(d) = duplicate {
        return Err(crate::conflict(format!(
            "An event source mapping with {} arn (\" {arn} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
            if source == Source::Sqs { "SQS" } else { "DynamoDB" },
            function_arn.rsplit(':').next().unwrap_or(""),
            d.config["UUID"].as_str().unwrap_or("")
        )));
    }
    let enabled = i.get("Enabled").and_then(Value::as_bool).unwrap_or(true);
    c.insert(
        "State".into(),
        json!(if enabled { "Enabled" } else { "Disabled" }),
    );
    let m = Mapping {
        region: region.to_string(),
        config: c.clone(),
        positions: Default::default(),
    };
    save(l, &uuid, &m)?;
    if enabled {
        start_poller(l, &uuid, iterators);
    }
    c.insert("State".into(), json!("Creating"));
    Ok(c)
}

pub fn get(l: &Lambda, i: &Input) -> AwsResult<Output> {
    Ok(load(l, s(i, "UUID").unwrap_or(""))?.config)
}

pub fn update(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let uuid = s(i, "UUID").unwrap_or("").to_string();
    let mut m = load(l, &uuid)?;
    let source = source_of(m.config["EventSourceArn"].as_str().unwrap_or(""))?;
    check_source_params(source, i)?;
    if let Some(f) = s(i, "FunctionName") {
        let arn = function_target(l, region, f)?;
        m.config.insert("FunctionArn".into(), json!(arn));
    }
    for k in TUNABLES {
        if let Some(v) = i.get(*k) {
            m.config.insert((*k).into(), v.clone());
        }
    }
    check_batch(source, &m.config)?;
    filters(&m.config)?;
    let was = m.config["State"].clone();
    if let Some(e) = i.get("Enabled").and_then(Value::as_bool) {
        m.config.insert(
            "State".into(),
            json!(if e { "Enabled" } else { "Disabled" }),
        );
    }
    // The answer shows the transition under way, as AWS's does.
    let answer_state = match (was.as_str(), m.config["State"].as_str()) {
        (Some("Disabled"), Some("Enabled")) => "Enabling",
        (Some("Enabled"), Some("Disabled")) => "Disabling",
        _ => "Updating",
    };
    m.config
        .insert("LastModified".into(), json!(crate::now_secs(&l.clock)));
    save(l, &uuid, &m)?;
    // A running poller re-reads the mapping every round, so it only needs starting
    // or stopping (two pollers of one mapping would process its records twice).
    if m.config["State"] == "Enabled" {
        let running = l.pollers.lock().is_ok_and(|p| p.contains_key(&uuid));
        if !running {
            start_poller(l, &uuid, Default::default());
        }
    } else {
        stop_poller(l, &uuid);
    }
    let mut out = m.config;
    out.insert("State".into(), json!(answer_state));
    Ok(out)
}

pub fn delete(l: &Lambda, i: &Input) -> AwsResult<Output> {
    let uuid = s(i, "UUID").unwrap_or("").to_string();
    let m = load(l, &uuid)?;
    stop_poller(l, &uuid);
    l.store
        .transact(|t| t.delete(state::MAPPINGS, uuid.as_bytes()))?;
    let mut out = m.config;
    out.insert("State".into(), json!("Deleting"));
    Ok(out)
}

pub fn list(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let function = match s(i, "FunctionName") {
        Some(f) => {
            let (name, q) = functions::parse_name(f, None)?;
            Some(qualified_arn(region, &name, q.as_deref()))
        }
        None => None,
    };
    let rows = l
        .store
        .read(|r| state::scan_prefix(r, state::MAPPINGS, &[], None, usize::MAX))?;
    let mut all = Vec::new();
    for (_, v) in rows {
        let m: Mapping = dec(&v)?;
        if m.region != region {
            continue;
        }
        if s(i, "EventSourceArn").is_some_and(|a| m.config["EventSourceArn"] != a) {
            continue;
        }
        if let Some(f) = &function {
            let fa = m.config["FunctionArn"].as_str().unwrap_or("");
            // An unqualified name matches the function at any qualifier.
            if fa != f && !fa.starts_with(&format!("{f}:")) {
                continue;
            }
        }
        all.push(m.config);
    }
    Ok(crate::page(all, "UUID", "EventSourceMappings", i, 100))
}

/// Deleting a function deletes its mappings.
pub fn function_deleted(l: &Lambda, region: &str, name: &str) -> AwsResult<()> {
    let prefix = functions::function_arn(region, name);
    let rows = l
        .store
        .read(|r| state::scan_prefix(r, state::MAPPINGS, &[], None, usize::MAX))?;
    for (k, v) in rows {
        let m: Mapping = dec(&v)?;
        let fa = m.config["FunctionArn"].as_str().unwrap_or("");
        if fa == prefix || fa.starts_with(&format!("{prefix}:")) {
            let uuid = String::from_utf8_lossy(&k).into_owned();
            stop_poller(l, &uuid);
            l.store.transact(|t| t.delete(state::MAPPINGS, &k))?;
        }
    }
    Ok(())
}

pub fn stop_all(l: &Lambda) {
    if let Ok(mut p) = l.pollers.lock() {
        p.clear();
    }
}

/// Starts the pollers of enabled mappings (at start-up).
pub fn start_all(l: &Lambda) {
    let rows = l
        .store
        .read(|r| state::scan_prefix(r, state::MAPPINGS, &[], None, usize::MAX))
        .unwrap_or_default();
    for (k, v) in rows {
        if let Ok(m) = dec::<Mapping>(&v) {
            if m.config["State"] == "Enabled" {
                start_poller(l, &String::from_utf8_lossy(&k), Default::default());
            }
        }
    }
}

fn stop_poller(l: &Lambda, uuid: &str) {
    if let Ok(mut p) = l.pollers.lock() {
        p.remove(uuid);
    }
}

/// Starts a mapping's poller; `iterators` are stream positions taken when the
/// mapping was created (LATEST means records written after CreateEventSourceMapping).
fn start_poller(l: &Lambda, uuid: &str, iterators: HashMap<String, String>) {
    let Some(me) = l.arc() else {
        return;
    };
    let (tx, rx) = watch::channel(false);
    if let Ok(mut p) = l.pollers.lock() {
        p.insert(uuid.to_string(), PollerHandle { stop: tx });
    }
    let uuid = uuid.to_string();
    l.engine.spawn(async move {
        let source = match load(&me, &uuid) {
            Ok(m) => source_of(m.config["EventSourceArn"].as_str().unwrap_or("")),
            Err(e) => Err(e),
        };
        match source {
            Ok(Source::Sqs) => poll_sqs(&me, &uuid, rx).await,
            Ok(Source::DynamoDb) => poll_stream(&me, &uuid, rx, iterators).await,
            Err(_) => {}
        }
    });
}

/// The mapping as stored now, with a context for calls on its behalf and its source
/// ARN; None once the poller should stop (told to, or the mapping is gone).
fn current(
    l: &Lambda,
    uuid: &str,
    stop: &watch::Receiver<bool>,
) -> Option<(Mapping, RequestContext, String)> {
    if *stop.borrow() {
        return None;
    }
    let m = load(l, uuid).ok()?;
    let ctx = system_ctx(l, &m.region);
    let arn = m.config["EventSourceArn"]
        .as_str()
        .unwrap_or("")
        .to_string();
    Some((m, ctx, arn))
}

/// Sleeps, or returns true early when the poller is told to stop.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

async fn queue_url(l: &Lambda, ctx: &RequestContext, arn: &str) -> AwsResult<String> {
    let p: Vec<&str> = arn.split(':').collect();
    let (account, name) = match p.as_slice() {
        ["arn", _, "sqs", _, account, name] => (*account, *name),
        _ => return Err(invalid(format!("Invalid SQS queue ARN {arn}"))),
    };
    let out = l
        .directory
        .call_json(
            "sqs",
            "AmazonSQS.GetQueueUrl",
            ctx.clone(),
            &json!({"QueueName": name, "QueueOwnerAWSAccountId": account}),
        )
        .await?;
    Ok(out["QueueUrl"].as_str().unwrap_or("").to_string())
}

/// Invokes a mapping's function with `event`; Ok(response) when it succeeded.
async fn invoke_batch(l: &Lambda, m: &Mapping, event: &Value) -> Result<Value, ()> {
    let arn = m.config["FunctionArn"].as_str().unwrap_or("");
    let r = match functions::resolve(l, &m.region, arn, None, true) {
        Ok(r) => r,
        Err(_) => return Err(()),
    };
    match invoke::run(
        l,
        &m.region,
        &r,
        Bytes::from(event.to_string()),
        virga_core::request_id(),
        None,
        false,
    )
    .await
    {
        Ok(o) if o.error.is_none() => Ok(serde_json::from_slice(&o.payload).unwrap_or(Value::Null)),
        _ => Err(()),
    }
}

fn reports_item_failures(m: &Mapping) -> bool {
    m.config["FunctionResponseTypes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == "ReportBatchItemFailures"))
}

/// The item identifiers a function reported as failed; None when the response is
/// malformed (the whole batch then counts as failed, as on AWS).
fn failed_items(resp: &Value, ids: &[String]) -> Option<Vec<String>> {
    let Some(list) = resp.get("batchItemFailures") else {
        return Some(Vec::new());
    };
    if list.is_null() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for f in list.as_array()? {
        let id = f.get("itemIdentifier")?.as_str()?;
        if id.is_empty() || !ids.iter().any(|x| x == id) {
            return None;
        }
        out.push(id.to_string());
    }
    Some(out)
}

/// The Lambda event record of an SQS message.
fn sqs_record(msg: &Value, arn: &str, region: &str) -> Value {
    let mut attrs = Map::new();
    if let Some(a) = msg["MessageAttributes"].as_object() {
        for (k, v) in a {
            let mut x = Map::new();
            if let Some(sv) = v.get("StringValue") {
                x.insert("stringValue".into(), sv.clone());
            }
            if let Some(bv) = v.get("BinaryValue") {
                x.insert("binaryValue".into(), bv.clone());
            }
            x.insert("stringListValues".into(), json!([]));
            x.insert("binaryListValues".into(), json!([]));
            x.insert(
                "dataType".into(),
                v.get("DataType").cloned().unwrap_or(json!("String")),
            );
            attrs.insert(k.clone(), Value::Object(x));
        }
    }
    let mut rec = json!({
        "messageId": msg["MessageId"],
        "receiptHandle": msg["ReceiptHandle"],
        "body": msg["Body"],
        "attributes": msg.get("Attributes").cloned().unwrap_or(json!({})),
        "messageAttributes": attrs,
        "md5OfBody": msg["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    });
    if let Some(md5) = msg.get("MD5OfMessageAttributes") {
        rec["md5OfMessageAttributes"] = md5.clone();
    }
    rec
}

async fn poll_sqs(l: &Arc<Lambda>, uuid: &str, mut stop: watch::Receiver<bool>) {
    let mut url: Option<String> = None;
    loop {
        let Some((m, ctx, arn)) = current(l, uuid, &stop) else {
            return;
        };
        let queue = match &url {
            Some(u) => u.clone(),
            None => match queue_url(l, &ctx, &arn).await {
                Ok(u) => {
                    url = Some(u.clone());
                    u
                }
                Err(_) => {
                    if pause(&mut stop, Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let batch = m.config["BatchSize"].as_u64().unwrap_or(10).max(1) as usize;
        let window = m.config["MaximumBatchingWindowInSeconds"]
            .as_u64()
            .unwrap_or(0);
        // The batching window runs from the first message of the batch.
        let mut first: Option<tokio::time::Instant> = None;
        let mut messages: Vec<Value> = Vec::new();
        loop {
            let wait = match first {
                None => 20,
                Some(t) => window.saturating_sub(t.elapsed().as_secs()).min(20),
            };
            let req = json!({
                "QueueUrl": queue,
                "MaxNumberOfMessages": (batch - messages.len()).min(10),
                "WaitTimeSeconds": wait,
                "AttributeNames": ["All"],
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            });
            let got = tokio::select! {
                r = l.directory.call_json("sqs", "AmazonSQS.ReceiveMessage", ctx.clone(), &req) => r,
                _ = stop.changed() => return,
            };
            match got {
                Ok(out) => {
                    if let Some(a) = out["Messages"].as_array() {
                        messages.extend(a.iter().cloned());
                    }
                    if messages.is_empty() {
                        continue;
                    }
                    let since = *first.get_or_insert_with(tokio::time::Instant::now);
                    if messages.len() >= batch || since.elapsed().as_secs() >= window {
                        break;
                    }
                }
                Err(e) if e.code.contains("NonExistentQueue") || e.code == "QueueDoesNotExist" => {
                    url = None;
                    if pause(&mut stop, Duration::from_secs(5)).await {
                        return;
                    }
                    break;
                }
                Err(_) => {
                    if pause(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                    break;
                }
            }
        }
        if messages.is_empty() {
            continue;
        }
        // Messages no filter accepts are deleted without invoking, as on AWS.
        let criteria = filters(&m.config).unwrap_or_default();
        let (messages, dropped): (Vec<Value>, Vec<Value>) = messages
            .into_iter()
            .partition(|msg| passes(&criteria, &sqs_record(msg, &arn, &m.region)));
        delete_messages(l, &ctx, &queue, dropped.iter().collect()).await;
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|msg| sqs_record(msg, &arn, &m.region))
            .collect();
        let ids: Vec<String> = messages
            .iter()
            .map(|msg| msg["MessageId"].as_str().unwrap_or("").to_string())
            .collect();
        let event = json!({ "Records": records });
        let done: Vec<&Value> = match invoke_batch(l, &m, &event).await {
            Ok(resp) if reports_item_failures(&m) => match failed_items(&resp, &ids) {
                Some(failed) => messages
                    .iter()
                    .filter(|msg| !failed.iter().any(|f| msg["MessageId"] == f.as_str()))
                    .collect(),
                None => Vec::new(),
            },
            Ok(_) => messages.iter().collect(),
            // Left on the queue: visible again after the visibility timeout, and
            // moved to the queue's dead-letter queue by its redrive policy.
            Err(()) => Vec::new(),
        };
        delete_messages(l, &ctx, &queue, done).await;
    }
}

async fn delete_messages(l: &Lambda, ctx: &RequestContext, queue: &str, messages: Vec<&Value>) {
    for chunk in messages.chunks(10) {
        let entries: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(n, msg)| json!({"Id": n.to_string(), "ReceiptHandle": msg["ReceiptHandle"]}))
            .collect();
        let _ = l
            .directory
            .call_json(
                "sqs",
                "AmazonSQS.DeleteMessageBatch",
                ctx.clone(),
                &json!({"QueueUrl": queue, "Entries": entries}),
            )
            .await;
    }
}

async fn streams_call(
    l: &Lambda,
    ctx: &RequestContext,
    op: &str,
    input: Value,
) -> AwsResult<Value> {
    l.directory
        .call_json(
            "dynamodb",
            &format!("DynamoDBStreams_20120810.{op}"),
            ctx.clone(),
            &input,
        )
        .await
}

async fn stream_shards(l: &Lambda, ctx: &RequestContext, arn: &str) -> AwsResult<Vec<String>> {
    let d = streams_call(l, ctx, "DescribeStream", json!({"StreamArn": arn})).await?;
    Ok(d["StreamDescription"]["Shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

async fn poll_stream(
    l: &Arc<Lambda>,
    uuid: &str,
    mut stop: watch::Receiver<bool>,
    mut iterators: HashMap<String, String>,
) {
    loop {
        let Some((m, ctx, arn)) = current(l, uuid, &stop) else {
            return;
        };
        let shards = stream_shards(l, &ctx, &arn).await.unwrap_or_default();
        let mut any = false;
        for shard in shards {
            let it = match iterators.get(&shard) {
                Some(i) => i.clone(),
                None => {
                    let req = match m.positions.get(&shard) {
                        Some(seq) => {
                            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq})
                        }
                        None => {
                            let start = match m.config["StartingPosition"].as_str() {
                                Some("LATEST") => "LATEST",
                                _ => "TRIM_HORIZON",
                            };
                            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": start})
                        }
                    };
                    match streams_call(l, &ctx, "GetShardIterator", req).await {
                        Ok(o) => o["ShardIterator"].as_str().unwrap_or("").to_string(),
                        Err(_) => continue,
                    }
                }
            };
            let batch = m.config["BatchSize"].as_u64().unwrap_or(100).clamp(1, 1000);
            let out = match streams_call(
                l,
                &ctx,
                "GetRecords",
                json!({"ShardIterator": it, "Limit": batch}),
            )
            .await
            {
                Ok(o) => o,
                Err(_) => {
                    iterators.remove(&shard);
                    continue;
                }
            };
            match out["NextShardIterator"].as_str() {
                Some(n) => iterators.insert(shard.clone(), n.to_string()),
                None => iterators.remove(&shard),
            };
            let records: Vec<Value> = out["Records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut r| {
                    r["eventSourceARN"] = json!(arn);
                    r
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            any = true;
            let criteria = filters(&m.config).unwrap_or_default();
            let last_seq = records
                .last()
                .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
                .map(str::to_string);
            let records: Vec<Value> = records
                .into_iter()
                .filter(|r| passes(&criteria, r))
                .collect();
            if records.is_empty() {
                // Nothing passed the filters: the batch is done.
                checkpoint(l, uuid, &shard, last_seq.as_ref(), "OK");
                continue;
            }
            if !process_stream_batch(l, uuid, &shard, &arn, records, &mut stop).await {
                return;
            }
        }
        if !any && pause(&mut stop, Duration::from_millis(250)).await {
            return;
        }
    }
}

/// Runs one stream batch to completion (success, or retries exhausted and the
/// failure sent on); checkpoints after it. False when told to stop.
async fn process_stream_batch(
    l: &Lambda,
    uuid: &str,
    shard: &str,
    arn: &str,
    records: Vec<Value>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut pending = vec![records];
    while let Some(mut batch) = pending.pop() {
        let mut attempts: i64 = 0;
        loop {
            if *stop.borrow() {
                return false;
            }
            let Ok(m) = load(l, uuid) else {
                return false;
            };
            // Records older than MaximumRecordAgeInSeconds are not sent to the
            // function (records are in order: the old ones come first).
            let max_age = m.config["MaximumRecordAgeInSeconds"].as_i64().unwrap_or(-1);
            if max_age >= 0 {
                let now = l.clock.now_secs_f64();
                let expired = batch
                    .iter()
                    .take_while(|r| {
                        r["dynamodb"]["ApproximateCreationDateTime"]
                            .as_f64()
                            .is_some_and(|t| now - t > max_age as f64)
                    })
                    .count();
                if expired > 0 {
                    let old: Vec<Value> = batch.drain(..expired).collect();
                    on_stream_failure(l, &m, shard, arn, &old, attempts, "RecordAgeExceeded").await;
                    let last = old
                        .last()
                        .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
                        .map(str::to_string);
                    checkpoint(
                        l,
                        uuid,
                        shard,
                        last.as_ref(),
                        "PROBLEM: Record age exceeded",
                    );
                    if batch.is_empty() {
                        break;
                    }
                }
            }
            let max_retries = m.config["MaximumRetryAttempts"].as_i64().unwrap_or(-1);
            let bisect = m.config["BisectBatchOnFunctionError"]
                .as_bool()
                .unwrap_or(false);
            let event = json!({ "Records": batch });
            let result = invoke_batch(l, &m, &event).await;
            let seqs: Vec<String> = batch
                .iter()
                .map(|r| {
                    r["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            let failed_from = match &result {
                Ok(resp) if reports_item_failures(&m) => match failed_items(resp, &seqs) {
                    Some(f) if f.is_empty() => None,
                    Some(f) => seqs.iter().position(|s| f.contains(s)),
                    None => Some(0),
                },
                Ok(_) => None,
                Err(()) => Some(0),
            };
            match failed_from {
                None => {
                    checkpoint(l, uuid, shard, seqs.last(), "OK");
                    break;
                }
                Some(pos) => {
                    if pos > 0 {
                        checkpoint(l, uuid, shard, seqs.get(pos - 1), "OK");
                    }
                    attempts += 1;
                    let rest: Vec<Value> = batch[pos..].to_vec();
                    if max_retries >= 0 && attempts > max_retries {
                        on_stream_failure(
                            l,
                            &m,
                            shard,
                            arn,
                            &rest,
                            attempts,
                            "RetryAttemptsExhausted",
                        )
                        .await;
                        checkpoint(l, uuid, shard, seqs.last(), "PROBLEM: Function call failed");
                        break;
                    }
                    if bisect && rest.len() > 1 {
                        let half = rest.len() / 2;
                        pending.push(rest[half..].to_vec());
                        pending.push(rest[..half].to_vec());
                        break;
                    }
                    let backoff = Duration::from_millis(100u64 << attempts.min(6));
                    if pause(stop, backoff).await {
                        return false;
                    }
                    if pos > 0 {
                        pending.push(rest);
                        break;
                    }
                }
            }
        }
    }
    true
}

fn checkpoint(l: &Lambda, uuid: &str, shard: &str, seq: Option<&String>, result: &str) {
    let Some(seq) = seq else {
        return;
    };
    let r = l.store.transact(|t| {
        let Some(b) = t.get(state::MAPPINGS, uuid.as_bytes())? else {
            return Ok(());
        };
        let mut m: Mapping = dec(&b)?;
        // Positions only move forward (sequence numbers are decimal strings).
        let newer = |old: &String| (old.len(), old.as_str()) < (seq.len(), seq.as_str());
        if !m.positions.get(shard).is_none_or(newer) {
            return Ok(());
        }
        m.positions.insert(shard.to_string(), seq.clone());
        m.config
            .insert("LastProcessingResult".into(), json!(result));
        t.put(state::MAPPINGS, uuid.as_bytes(), &enc(&m)?)
    });
    if let Err(e) = r {
        tracing::warn!("event source mapping {uuid} checkpoint: {}", e.message);
    }
}

/// Sends a stream batch that could not be processed to the mapping's OnFailure
/// destination (metadata only, as on AWS).
async fn on_stream_failure(
    l: &Lambda,
    m: &Mapping,
    shard: &str,
    arn: &str,
    batch: &[Value],
    attempts: i64,
    condition: &str,
) {
    let Some(dest) = m.config["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .filter(|d| !d.is_empty())
    else {
        return;
    };
    let seq = |r: &Value| r["dynamodb"]["SequenceNumber"].clone();
    let when = |r: &Value| {
        r["dynamodb"]["ApproximateCreationDateTime"]
            .as_f64()
            .map(virga_protocol::time_fmt::iso8601)
    };
    let (first, last) = (batch.first(), batch.last());
    let doc = json!({
        "requestContext": {
            "requestId": virga_core::request_id(),
            "functionArn": m.config["FunctionArn"],
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": virga_protocol::time_fmt::iso8601(l.clock.now_secs_f64()),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first.map(seq),
            "endSequenceNumber": last.map(seq),
            "approximateArrivalOfFirstRecord": first.and_then(when),
            "approximateArrivalOfLastRecord": last.and_then(when),
            "batchSize": batch.len(),
            "streamArn": arn,
        },
    });
    invoke::deliver(l, &m.region, dest, doc, None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_item_failures() {
        let ids = vec!["a".to_string(), "b".to_string()];
        assert_eq!(failed_items(&json!({}), &ids), Some(vec![]));
        assert_eq!(
            failed_items(&json!({"batchItemFailures": []}), &ids),
            Some(vec![])
        );
        assert_eq!(
            failed_items(
                &json!({"batchItemFailures": [{"itemIdentifier": "b"}]}),
                &ids
            ),
            Some(vec!["b".to_string()])
        );
        // Unknown or empty identifiers fail the whole batch.
        assert_eq!(
            failed_items(
                &json!({"batchItemFailures": [{"itemIdentifier": "z"}]}),
                &ids
            ),
            None
        );
        assert_eq!(
            failed_items(
                &json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
                &ids
            ),
            None
        );
        assert_eq!(
            failed_items(&json!({"batchItemFailures": [{}]}), &ids),
            None
        );
    }

    #[test]
    fn sources() {
        assert_eq!(
            source_of("arn:aws:sqs:us-east-1:000000000000:q").unwrap(),
            Source::Sqs
        );
        assert_eq!(
            source_of(
                "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2024-01-01T00:00:00.000"
            )
            .unwrap(),
            Source::DynamoDb
        );
        assert!(source_of("arn:aws:kinesis:us-east-1:000000000000:stream/s").is_err());
    }
}
