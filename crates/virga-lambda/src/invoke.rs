//! Invocations: the Invoke operation (RequestResponse, Event, DryRun), the durable
//! queue of asynchronous invocations with AWS's retries (two, after 1 and 2 minutes
//! by Virga's clock), maximum event age, destinations and dead-letter queues, and
//! events other services address to functions (S3 notifications, SNS).

use crate::code;
use crate::engine::{Outcome, Request, Spec};
use crate::functions::{self, Resolved, ACCOUNT_CONCURRENCY};
use crate::state::{self, dec, enc, AsyncInvocation};
use crate::{err, s, Input, Lambda, Output};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;
use virga_core::events::Event;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_store::KeyBuf;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// AWS's defaults for asynchronous invocations.
const DEFAULT_RETRIES: u64 = 2;
const DEFAULT_MAX_AGE_SECS: i64 = 6 * 3600;
/// While an attempt runs, its queue entry is leased for this long (a crash mid-attempt
/// makes it due again).
const LEASE_MS: i64 = 16 * 60 * 1000;
/// How many asynchronous invocations run at once.
const ASYNC_WORKERS: usize = 32;

/// Checks that a function at a qualifier may be invoked.
fn check_runnable(r: &Resolved) -> AwsResult<()> {
    match r.config.get("State").and_then(Value::as_str) {
        Some("Failed") => Err(err(
            409,
            "ResourceConflictException",
            format!(
                "The operation cannot be performed at this time. The function is currently in the following state: Failed. {}",
                r.config.get("StateReason").and_then(Value::as_str).unwrap_or("")
            ),
        )),
        _ => Ok(()),
    }
}

/// Runs a function synchronously.
pub async fn run(
    l: &Lambda,
    region: &str,
    r: &Resolved,
    payload: Bytes,
    request_id: String,
    client_context: Option<String>,
    log_tail: bool,
) -> AwsResult<Outcome> {
    check_runnable(r)?;
    let mut layers = Vec::new();
    if let Some(ls) = r.config.get("Layers").and_then(Value::as_array) {
        for x in ls {
            layers.push(code::load_layer(l, x["Arn"].as_str().unwrap_or(""))?.code);
        }
    }
    let (task_root, opt) = match code::unpacked(l, &r.code, &layers) {
        Some(paths) => paths,
        None => {
            // Unzipping up to 250 MB must not stall the thread's other requests.
            let me = l
                .arc()
                .ok_or_else(|| AwsError::internal("lambda service gone"))?;
            let code = r.code.clone();
            tokio::task::spawn_blocking(move || code::unpack(&me, &code, &layers))
                .await
                .map_err(|e| AwsError::internal(format!("unpack: {e}")))??
        }
    };
    let credentials = l
        .credentials
        .lock()
        .map(|c| c.clone())
        .unwrap_or_else(|_| ("test".into(), "test".into()));
    let spec = Arc::new(Spec::from_resolved(r, region, task_root, opt, credentials));
    l.engine
        .invoke(
            spec,
            Request {
                request_id,
                invoked_arn: r.invoked_arn(region),
                payload,
                client_context,
                limit: r.function.reserved.unwrap_or(ACCOUNT_CONCURRENCY),
                log_tail,
            },
        )
        .await
}

fn check_json(payload: &[u8]) -> AwsResult<()> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(payload) {
        return Err(err(
            400,
            "InvalidRequestContentException",
            format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        ));
    }
    Ok(())
}

pub async fn invoke(l: &Lambda, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let region = ctx.region.as_str();
    let kind = s(i, "InvocationType").unwrap_or("RequestResponse");
    let mut payload = match s(i, "Payload") {
        Some(p) => B64.decode(p).map_err(|_| {
            err(
                400,
                "InvalidRequestContentException",
                "Could not decode payload",
            )
        })?,
        None => Vec::new(),
    };
    if payload.iter().all(|b| b.is_ascii_whitespace()) {
        payload = b"{}".to_vec();
    }
    check_json(&payload)?;
    let r = functions::resolve(
        l,
        region,
        s(i, "FunctionName").unwrap_or(""),
        s(i, "Qualifier"),
        true,
    )?;
    check_runnable(&r)?;
    let mut out = Map::new();
    match kind {
        "DryRun" => {
            out.insert("StatusCode".into(), json!(204));
        }
        "Event" => {
            if payload.len() > crate::EVENT_PAYLOAD_LIMIT {
                return Err(err(
                    413,
                    "RequestEntityTooLargeException",
                    format!(
                        "{} byte payload is too large for the Event invocation type (limit {} bytes)",
                        payload.len(),
                        crate::EVENT_PAYLOAD_LIMIT
                    ),
                ));
            }
            enqueue(
                l,
                region,
                &r.name,
                r.qualifier.as_deref(),
                String::from_utf8_lossy(&payload).into_owned(),
                ctx.request_id.clone(),
            )?;
            out.insert("StatusCode".into(), json!(202));
        }
        _ => {
            let client_context = match s(i, "ClientContext") {
                None => None,
                Some(c) => {
                    let bad = || {
                        err(
                            400,
                            "InvalidRequestContentException",
                            "Client context must be a valid Base64-encoded JSON object.",
                        )
                    };
                    let raw = B64.decode(c).map_err(|_| bad())?;
                    if raw.len() > 3583 {
                        return Err(bad());
                    }
                    match serde_json::from_slice::<Value>(&raw) {
                        Ok(Value::Object(_)) => Some(String::from_utf8_lossy(&raw).into_owned()),
                        _ => return Err(bad()),
                    }
                }
            };
            let o = run(
                l,
                region,
                &r,
                Bytes::from(payload),
                ctx.request_id.clone(),
                client_context,
                s(i, "LogType") == Some("Tail"),
            )
            .await?;
            out.insert("StatusCode".into(), json!(200));
            out.insert("Payload".into(), json!(B64.encode(&o.payload)));
            out.insert("ExecutedVersion".into(), json!(r.version));
            if o.error.is_some() {
                out.insert("FunctionError".into(), json!("Unhandled"));
            }
            if let Some(t) = o.log_tail {
                out.insert("LogResult".into(), json!(t));
            }
        }
    }
    Ok(out)
}

/// The deprecated InvokeAsync: an Event invocation answered with status 202.
pub async fn invoke_async_legacy(l: &Lambda, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let mut input = i.clone();
    input.insert(
        "Payload".into(),
        i.get("InvokeArgs").cloned().unwrap_or(json!("")),
    );
    input.insert("InvocationType".into(), json!("Event"));
    invoke(l, ctx, &input).await?;
    let mut out = Map::new();
    out.insert("Status".into(), json!(202));
    Ok(out)
}

fn due_key(due_ms: i64, seq: u64) -> Vec<u8> {
    KeyBuf::new().u64(due_ms.max(0) as u64).u64(seq).into_vec()
}

/// Queues an asynchronous invocation durably and wakes the worker.
pub fn enqueue(
    l: &Lambda,
    region: &str,
    function: &str,
    qualifier: Option<&str>,
    payload: String,
    request_id: String,
) -> AwsResult<()> {
    let now = l.clock.now_millis();
    let seq = virga_store::write_order();
    let job = AsyncInvocation {
        region: region.to_string(),
        function: function.to_string(),
        qualifier: qualifier.map(str::to_string),
        payload,
        request_id,
        attempts: 0,
        queued_ms: now,
        due_ms: now,
        leased: false,
    };
    l.store.transact(|t| {
        t.put(state::ASYNC, &seq.to_be_bytes(), &enc(&job)?)?;
        t.put(state::DUE, &due_key(now, seq), &[])
    })?;
    l.async_wake.notify_one();
    Ok(())
}

/// Starts the asynchronous-invocation worker and the consumer of events addressed to
/// functions.
pub fn start(l: Arc<Lambda>) {
    let worker = l.clone();
    l.engine.spawn(async move { run_queue(worker).await });
    let mut deliveries = l.bus.subscribe("lambda");
    let consumer = l.clone();
    l.engine.spawn(async move {
        while let Some(d) = deliveries.recv().await {
            let result = accept_event(&consumer, &d.event);
            let _ = d.ack.send(result.map_err(|e| e.message));
        }
    });
    let reaper = l.clone();
    l.engine.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            reaper.engine.reap_idle();
        }
    });
}

/// Queues an event (S3 notification, SNS message) for the function its ARN names.
fn accept_event(l: &Lambda, event: &Event) -> AwsResult<()> {
    let p: Vec<&str> = event.target_arn.split(':').collect();
    let (region, name, q) = match p.as_slice() {
        ["arn", _, "lambda", region, _, "function", name] => (*region, *name, None),
        ["arn", _, "lambda", region, _, "function", name, q] => (*region, *name, Some(*q)),
        _ => return Ok(()),
    };
    let exists = l
        .store
        .read(|r| r.get(state::FUNCTIONS, &state::fn_key(region, name)))?
        .is_some();
    if !exists {
        // AWS drops events for functions that no longer exist.
        tracing::warn!(
            "{} event for missing function {}",
            event.source,
            event.target_arn
        );
        return Ok(());
    }
    enqueue(
        l,
        region,
        name,
        q,
        event.payload.to_string(),
        virga_core::request_id(),
    )
}

/// Attempts a previous process left running are due again at once.
fn release_leases(l: &Lambda) -> AwsResult<()> {
    let now = l.clock.now_millis();
    let rows = l
        .store
        .read(|r| state::scan_prefix(r, state::ASYNC, &[], None, usize::MAX))?;
    for (k, v) in rows {
        let mut job: AsyncInvocation = dec(&v)?;
        if !job.leased {
            continue;
        }
        let old_due = job.due_ms;
        job.leased = false;
        job.due_ms = now;
        let seq = u64::from_be_bytes(k.as_slice().try_into().unwrap_or([0; 8]));
        l.store.transact(|t| {
            t.delete(state::DUE, &due_key(old_due, seq))?;
            t.put(state::ASYNC, &k, &enc(&job)?)?;
            t.put(state::DUE, &due_key(now, seq), &[])
        })?;
    }
    Ok(())
}

async fn run_queue(l: Arc<Lambda>) {
    if let Err(e) = release_leases(&l) {
        tracing::warn!("lambda async queue: {}", e.message);
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(ASYNC_WORKERS));
    // Attempts running now: their lease is on Virga's clock, which tests can move
    // past it, so the lease alone must not start a second attempt.
    let running: Arc<std::sync::Mutex<std::collections::HashSet<u64>>> = Default::default();
    loop {
        let now = l.clock.now_millis();
        let end = due_key(now + 1, 0);
        let due = l
            .store
            .read(|r| {
                r.scan(
                    state::DUE,
                    Bound::Unbounded,
                    Bound::Excluded(&end),
                    64,
                    false,
                )
            })
            .unwrap_or_default();
        let mut started = 0;
        for (k, _) in due {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().unwrap_or([0; 8]));
            if running.lock().is_ok_and(|r| r.contains(&seq)) {
                drop(permit);
                continue;
            }
            // Lease the entry: due again later if this attempt never finishes.
            let job = l.store.transact(|t| {
                t.delete(state::DUE, &k)?;
                let Some(b) = t.get(state::ASYNC, &seq.to_be_bytes())? else {
                    return Ok(None);
                };
                let mut job: AsyncInvocation = dec(&b)?;
                job.due_ms = now + LEASE_MS;
                job.leased = true;
                t.put(state::ASYNC, &seq.to_be_bytes(), &enc(&job)?)?;
                t.put(state::DUE, &due_key(job.due_ms, seq), &[])?;
                Ok(Some(job))
            });
            let Ok(Some(job)) = job else {
                continue;
            };
            started += 1;
            if let Ok(mut r) = running.lock() {
                r.insert(seq);
            }
            let l2 = l.clone();
            let running = running.clone();
            tokio::spawn(async move {
                attempt(&l2, seq, job).await;
                if let Ok(mut r) = running.lock() {
                    r.remove(&seq);
                }
                drop(permit);
                l2.async_wake.notify_one();
            });
        }
        if started == 0 {
            // Virga's clock can jump (tests advance it), so due times are re-read
            // at least every 200 ms.
            let _ = tokio::time::timeout(Duration::from_millis(200), l.async_wake.notified()).await;
        }
    }
}

/// One attempt of a queued invocation, and what follows it.
async fn attempt(l: &Lambda, seq: u64, mut job: AsyncInvocation) {
    let region = job.region.clone();
    let resolved = functions::resolve(l, &region, &job.function, job.qualifier.as_deref(), true);
    let r = match resolved {
        Ok(r) => r,
        Err(_) => {
            let _ = finish_job(l, seq, &job);
            return;
        }
    };
    let config = functions::invoke_config(&r).unwrap_or_default();
    let max_retries = config
        .get("MaximumRetryAttempts")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_RETRIES);
    let max_age_ms = config
        .get("MaximumEventAgeInSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_MAX_AGE_SECS)
        * 1000;
    let now = l.clock.now_millis();
    if now - job.queued_ms > max_age_ms {
        failed(l, &r, &job, &config, "EventAgeExceeded", None).await;
        let _ = finish_job(l, seq, &job);
        return;
    }
    let outcome = run(
        l,
        &region,
        &r,
        Bytes::from(job.payload.clone()),
        job.request_id.clone(),
        None,
        false,
    )
    .await;
    match outcome {
        Err(e) if e.status == 429 => {
            // Throttled: tried again shortly, without counting an attempt.
            let _ = reschedule(l, seq, &job, l.clock.now_millis() + 1000);
        }
        Ok(o) if o.error.is_none() => {
            job.attempts += 1;
            if let Some(dest) = destination(&config, "OnSuccess") {
                let record = record(l, &r, &job, "Success", Some(&o));
                deliver(l, &region, &dest, record, None).await;
            }
            let _ = finish_job(l, seq, &job);
        }
        result => {
            job.attempts += 1;
            let o = result.ok();
            if (job.attempts as u64) <= max_retries {
                // AWS waits at least a minute before the first retry, two before the second.
                let delay = 60_000 * job.attempts as i64;
                let _ = reschedule(l, seq, &job, l.clock.now_millis() + delay);
            } else {
                failed(l, &r, &job, &config, "RetriesExhausted", o.as_ref()).await;
                let _ = finish_job(l, seq, &job);
            }
        }
    }
}

fn reschedule(l: &Lambda, seq: u64, job: &AsyncInvocation, due_ms: i64) -> AwsResult<()> {
    let mut job = job.clone();
    let old_due = job.due_ms;
    job.due_ms = due_ms;
    job.leased = false;
    l.store.transact(|t| {
        // Gone (a reset): nothing to retry.
        if t.get(state::ASYNC, &seq.to_be_bytes())?.is_none() {
            return Ok(());
        }
        t.delete(state::DUE, &due_key(old_due, seq))?;
        t.put(state::ASYNC, &seq.to_be_bytes(), &enc(&job)?)?;
        t.put(state::DUE, &due_key(due_ms, seq), &[])
    })
}

fn finish_job(l: &Lambda, seq: u64, job: &AsyncInvocation) -> AwsResult<()> {
    l.store.transact(|t| {
        t.delete(state::DUE, &due_key(job.due_ms, seq))?;
        t.delete(state::ASYNC, &seq.to_be_bytes())
    })
}

fn destination(config: &Map<String, Value>, which: &str) -> Option<String> {
    config
        .get("DestinationConfig")
        .and_then(|d| d.get(which))
        .and_then(|d| d.get("Destination"))
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

/// The invocation record sent to destinations.
fn record(
    l: &Lambda,
    r: &Resolved,
    job: &AsyncInvocation,
    condition: &str,
    o: Option<&Outcome>,
) -> Value {
    let parse = |b: &[u8]| {
        serde_json::from_slice::<Value>(b).unwrap_or_else(|_| json!(String::from_utf8_lossy(b)))
    };
    let mut response_context = json!({"statusCode": 200, "executedVersion": r.version});
    if o.is_some_and(|o| o.error.is_some()) {
        response_context["functionError"] = json!("Unhandled");
    }
    let mut doc = json!({
        "version": "1.0",
        "timestamp": virga_protocol::time_fmt::iso8601(l.clock.now_secs_f64()),
        "requestContext": {
            "requestId": job.request_id,
            "functionArn": functions::qualified_arn(&job.region, &r.name, Some(job.qualifier.as_deref().unwrap_or("$LATEST"))),
            "condition": condition,
            "approximateInvokeCount": job.attempts,
        },
        "requestPayload": parse(job.payload.as_bytes()),
    });
    if let Some(o) = o {
        doc["responseContext"] = response_context;
        doc["responsePayload"] = parse(&o.payload);
    }
    doc
}

/// After the last attempt failed (or the event got too old): the OnFailure
/// destination, else the function's dead-letter queue.
async fn failed(
    l: &Lambda,
    r: &Resolved,
    job: &AsyncInvocation,
    config: &Map<String, Value>,
    condition: &str,
    o: Option<&Outcome>,
) {
    if let Some(dest) = destination(config, "OnFailure") {
        let rec = record(l, r, job, condition, o);
        deliver(l, &job.region, &dest, rec, None).await;
        return;
    }
    if let Some(dlq) = r
        .config
        .get("DeadLetterConfig")
        .and_then(|d| d.get("TargetArn"))
        .and_then(Value::as_str)
    {
        let (code, message) = match o.map(|o| serde_json::from_slice::<Value>(&o.payload)) {
            Some(Ok(v)) => (
                "200".to_string(),
                v["errorMessage"].as_str().unwrap_or("").to_string(),
            ),
            _ => ("200".to_string(), condition.to_string()),
        };
        let attrs = json!({
            "RequestID": {"DataType": "String", "StringValue": job.request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": code},
            "ErrorMessage": {"DataType": "String", "StringValue": message},
        });
        let payload = serde_json::from_str::<Value>(&job.payload).unwrap_or(json!(job.payload));
        deliver(l, &job.region, dlq, payload, Some(attrs)).await;
    }
}

/// Sends a document to an SQS queue, SNS topic or Lambda function by ARN.
pub async fn deliver(l: &Lambda, region: &str, arn: &str, doc: Value, attributes: Option<Value>) {
    let service = arn.split(':').nth(2).unwrap_or("");
    let body = doc
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| doc.to_string());
    let result: AwsResult<()> = match service {
        "lambda" => {
            let p: Vec<&str> = arn.split(':').collect();
            match p.as_slice() {
                [.., "function", name] => {
                    enqueue(l, region, name, None, body, virga_core::request_id())
                }
                [.., "function", name, q] => {
                    enqueue(l, region, name, Some(q), body, virga_core::request_id())
                }
                _ => Err(AwsError::internal(format!("bad function ARN {arn}"))),
            }
        }
        "sqs" | "sns" => {
            let mut payload = if service == "sqs" {
                json!({"Body": body})
            } else {
                json!({"Message": body})
            };
            if let Some(a) = attributes {
                payload["MessageAttributes"] = a;
            }
            let event = Event {
                source: "lambda".into(),
                target_arn: arn.to_string(),
                payload,
            };
            match l.bus.publish(event) {
                Ok(answer) => match answer.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(AwsError::internal(e)),
                    Err(_) => Err(AwsError::internal("no answer")),
                },
                Err(_) => Err(AwsError::internal(format!("no {service} service"))),
            }
        }
        _ => Err(AwsError::internal(format!(
            "Virga cannot deliver to {arn} yet"
        ))),
    };
    if let Err(e) = result {
        tracing::warn!("lambda destination {arn}: {}", e.message);
    }
}
