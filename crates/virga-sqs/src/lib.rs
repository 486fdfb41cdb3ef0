//! Amazon SQS on Virga: the JSON protocol (what current SDKs send) and the legacy
//! query protocol over one set of handlers, messages kept durably in the store,
//! long polling woken by sends.

mod md5s;
mod ops;
pub mod state;

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use virga_core::service::full_body;
use virga_core::{AwsError, AwsResult, Body, BoxFuture, Clock, RequestContext};
use virga_protocol::{json, query, ServiceModel};
use virga_store::KvStore;

static MODEL: ServiceModel = ServiceModel::new(include_str!("../../../models/sqs.json"));

/// The model with the legacy query protocol's names: the current SQS model is JSON
/// and no longer says that a map is sent as `Attribute.1.Name`/`Attribute.1.Value` or
/// a batch entry as `SendMessageBatchRequestEntry.1.Id`; these are the 2012-11-05
/// query model's `locationName`/`flattened` hints.
fn query_model() -> AwsResult<&'static virga_protocol::Model> {
    static QUERY: std::sync::OnceLock<Result<virga_protocol::Model, String>> =
        std::sync::OnceLock::new();
    QUERY
        .get_or_init(|| {
            let mut m = virga_protocol::Model::parse(include_str!("../../../models/sqs.json"))?;
            m.metadata.xml_namespace = Some("http://queue.amazonaws.com/doc/2012-11-05/".into());
            let members: &[(&str, &str, &str)] = &[
                ("CreateQueueRequest", "Attributes", "Attribute"),
                ("CreateQueueRequest", "tags", "Tag"),
                (
                    "GetQueueAttributesRequest",
                    "AttributeNames",
                    "AttributeName",
                ),
                ("GetQueueAttributesResult", "Attributes", "Attribute"),
                ("SetQueueAttributesRequest", "Attributes", "Attribute"),
                ("ListQueuesResult", "QueueUrls", "QueueUrl"),
                ("ListDeadLetterSourceQueuesResult", "queueUrls", "QueueUrl"),
                (
                    "SendMessageRequest",
                    "MessageAttributes",
                    "MessageAttribute",
                ),
                (
                    "SendMessageRequest",
                    "MessageSystemAttributes",
                    "MessageSystemAttribute",
                ),
                (
                    "SendMessageBatchRequestEntry",
                    "MessageAttributes",
                    "MessageAttribute",
                ),
                (
                    "SendMessageBatchRequestEntry",
                    "MessageSystemAttributes",
                    "MessageSystemAttribute",
                ),
                (
                    "SendMessageBatchRequest",
                    "Entries",
                    "SendMessageBatchRequestEntry",
                ),
                (
                    "SendMessageBatchResult",
                    "Successful",
                    "SendMessageBatchResultEntry",
                ),
                ("SendMessageBatchResult", "Failed", "BatchResultErrorEntry"),
                (
                    "DeleteMessageBatchRequest",
                    "Entries",
                    "DeleteMessageBatchRequestEntry",
                ),
                (
                    "DeleteMessageBatchResult",
                    "Successful",
                    "DeleteMessageBatchResultEntry",
                ),
                (
                    "DeleteMessageBatchResult",
                    "Failed",
                    "BatchResultErrorEntry",
                ),
                (
                    "ChangeMessageVisibilityBatchRequest",
                    "Entries",
                    "ChangeMessageVisibilityBatchRequestEntry",
                ),
                (
                    "ChangeMessageVisibilityBatchResult",
                    "Successful",
                    "ChangeMessageVisibilityBatchResultEntry",
                ),
                (
                    "ChangeMessageVisibilityBatchResult",
                    "Failed",
                    "BatchResultErrorEntry",
                ),
                ("ReceiveMessageRequest", "AttributeNames", "AttributeName"),
                (
                    "ReceiveMessageRequest",
                    "MessageSystemAttributeNames",
                    "AttributeName",
                ),
                (
                    "ReceiveMessageRequest",
                    "MessageAttributeNames",
                    "MessageAttributeName",
                ),
                ("ReceiveMessageResult", "Messages", "Message"),
                ("Message", "Attributes", "Attribute"),
                ("Message", "MessageAttributes", "MessageAttribute"),
                ("ListQueueTagsResult", "Tags", "Tag"),
                ("TagQueueRequest", "Tags", "Tag"),
                ("UntagQueueRequest", "TagKeys", "TagKey"),
                (
                    "MessageAttributeValue",
                    "StringListValues",
                    "StringListValue",
                ),
                (
                    "MessageAttributeValue",
                    "BinaryListValues",
                    "BinaryListValue",
                ),
            ];
            for (shape, member, name) in members {
                let Some(s) = m.shapes.get_mut(*shape) else {
                    continue;
                };
                let Some(entry) = s.members.0.iter_mut().find(|(n, _)| n == member) else {
                    continue;
                };
                entry.1.location_name = Some((*name).to_string());
                entry.1.flattened = true;
            }
            // Maps are Name/Value pairs (Key/Value for tags); lists are flattened.
            let names: Vec<String> = m.shapes.keys().cloned().collect();
            for n in names {
                let Some(s) = m.shapes.get_mut(&n) else {
                    continue;
                };
                if s.kind == virga_protocol::model::ShapeKind::Map {
                    let (k, v) = if n == "TagMap" {
                        ("Key", "Value")
                    } else {
                        ("Name", "Value")
                    };
                    if let Some(key) = s.key.as_mut() {
                        key.location_name = Some(k.into());
                    }
                    if let Some(value) = s.value.as_mut() {
                        value.location_name = Some(v.into());
                    }
                }
            }
            Ok(m)
        })
        .as_ref()
        .map_err(|e| AwsError::internal(e.clone()))
}

/// Largest request body accepted (ten 256 KiB messages and their framing).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

pub struct Sqs {
    pub(crate) store: Arc<dyn KvStore>,
    pub(crate) clock: Arc<Clock>,
    bus: Arc<virga_core::events::EventBus>,
    /// Receivers waiting on a queue (long polling), woken by sends.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    seq: AtomicU64,
}

/// An SQS error: `code` is the JSON protocol's `__type`, `query_code` the legacy code
/// (sent in `x-amzn-query-error`, which SDKs report as the error code).
pub fn sqs_error(code: &str, query_code: &str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, code, message).header("x-amzn-query-error", format!("{query_code};Sender"))
}

impl Sqs {
    pub fn new(
        store: Arc<dyn KvStore>,
        clock: Arc<Clock>,
        bus: Arc<virga_core::events::EventBus>,
    ) -> Arc<Sqs> {
        let start = (clock.now_millis().max(0) as u64) * 1000;
        Arc::new(Sqs {
            store,
            clock,
            bus,
            waiters: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(start),
        })
    }

    /// Increasing across restarts (microsecond clock based).
    pub(crate) fn next_seq(&self) -> u64 {
        let now = (self.clock.now_millis().max(0) as u64) * 1000;
        let mut cur = self.seq.load(Ordering::Relaxed);
        loop {
            let next = cur.max(now) + 1;
            match self
                .seq
                .compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn waiter(&self, qid: &str) -> Arc<Notify> {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(qid.to_string()).or_default().clone()
    }

    pub(crate) fn wake(&self, qid: &str) {
        let w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = w.get(qid) {
            n.notify_waiters();
        }
    }

    /// Serves one request. A long poll parks in here for up to 20 s, so what it holds
    /// is kept small: no headers, no request bytes once parsed, and the protocol
    /// stages boxed, since a future holds the one it awaits inline and so is sized
    /// for the largest of them.
    async fn serve(
        &self,
        ctx: RequestContext,
        target: Option<String>,
        uri: http::Uri,
        body: Body,
    ) -> Response<Body> {
        let bytes = match http_body_util::Limited::new(body, MAX_REQUEST)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return self.error(
                    target.is_some(),
                    &sqs_error(
                        "BatchRequestTooLong",
                        "AWS.SimpleQueueService.BatchRequestTooLong",
                        "Batch requests cannot be longer than 1048576 bytes.",
                    ),
                    &ctx,
                )
            }
        };
        match target {
            Some(t) => Box::pin(self.serve_json(&ctx, &t, bytes)).await,
            None => {
                let mut params = query::parse_form(uri.query().unwrap_or("").as_bytes());
                params.extend(query::parse_form(&bytes));
                drop(bytes);
                Box::pin(self.serve_query(&ctx, &uri, params)).await
            }
        }
    }

    async fn serve_json(&self, ctx: &RequestContext, target: &str, body: Bytes) -> Response<Body> {
        let result = async {
            let model = MODEL.model()?;
            let op = json::operation_from_target(model, target).ok_or_else(|| {
                AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!("Unknown operation {target}"),
                )
            })?;
            ctx.set_operation(op);
            let input = json::parse_input_with(model, op, &body, false)?;
            // The body's bytes share their allocation with the request's headers.
            drop(body);
            let out = ops::call(self, ctx, op, input).await?;
            Ok::<_, AwsError>(json::serialize_output(model, op, &out))
        }
        .await;
        match result {
            Ok(body) => Response::builder()
                .status(200)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-requestid", ctx.request_id.as_str())
                .body(full_body(body))
                .unwrap_or_else(|_| Response::new(full_body(""))),
            Err(e) => self.error(true, &e, ctx),
        }
    }

    async fn serve_query(
        &self,
        ctx: &RequestContext,
        uri: &http::Uri,
        mut params: Vec<(String, String)>,
    ) -> Response<Body> {
        let result = async {
            let model = query_model()?;
            let op = query::operation(model, &params)
                .ok_or_else(|| {
                    AwsError::new(
                        400,
                        "InvalidAction",
                        format!(
                            "The action {} is not valid for this endpoint.",
                            params
                                .iter()
                                .find(|(k, _)| k == "Action")
                                .map(|(_, v)| v.as_str())
                                .unwrap_or("")
                        ),
                    )
                })?
                .to_string();
            ctx.set_operation(&op);
            // The legacy form addresses the queue by the request path.
            if !params.iter().any(|(k, _)| k == "QueueUrl") && uri.path().len() > 1 {
                params.push(("QueueUrl".into(), uri.path().to_string()));
            }
            let input = query::parse_input(model, &op, &params)?;
            let out = ops::call(self, ctx, &op, input).await?;
            Ok::<_, AwsError>(query::serialize_output(model, &op, &out, &ctx.request_id))
        }
        .await;
        match result {
            Ok(body) => Response::builder()
                .status(200)
                .header("content-type", "text/xml")
                .body(full_body(body))
                .unwrap_or_else(|_| Response::new(full_body(""))),
            Err(e) => self.error(false, &e, ctx),
        }
    }

    fn error(&self, json_protocol: bool, e: &AwsError, ctx: &RequestContext) -> Response<Body> {
        if json_protocol {
            let mut b = Response::builder()
                .status(e.status)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-requestid", ctx.request_id.as_str());
            for (k, v) in &e.headers {
                if let Ok(v) = HeaderValue::from_str(v) {
                    b = b.header(k.as_str(), v);
                }
            }
            let mut shown = e.clone();
            shown.code = format!("com.amazonaws.sqs#{}", e.code);
            return b
                .body(full_body(json::error_body(&shown)))
                .unwrap_or_else(|_| Response::new(full_body("")));
        }
        // The query protocol reports the legacy code.
        let mut legacy = e.clone();
        if let Some((_, v)) = e.headers.iter().find(|(k, _)| k == "x-amzn-query-error") {
            legacy.code = v.split(';').next().unwrap_or(&e.code).to_string();
        }
        Response::builder()
            .status(e.status)
            .header("content-type", "text/xml")
            .body(full_body(query::error_body(
                query_model().ok(),
                &legacy,
                &ctx.request_id,
            )))
            .unwrap_or_else(|_| Response::new(full_body("")))
    }
}

/// What an operation returns: the output members.
pub type Output = Map<String, Value>;

impl virga_core::Service for Sqs {
    fn name(&self) -> &'static str {
        "sqs"
    }

    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, Response<Body>> {
        let (parts, body) = req.into_parts();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_string());
        // Only the query protocol reads the URI. hyper's shares the allocation of the
        // whole request as read (headers, body); a copy lets that go while a receive
        // waits.
        let uri = match target {
            Some(_) => http::Uri::default(),
            None => http::Uri::try_from(parts.uri.to_string()).unwrap_or_default(),
        };
        Box::pin(self.serve(ctx, target, uri, body))
    }

    fn reset(&self) -> AwsResult<()> {
        self.store.clear("sqs.")
    }

    /// Consumes events addressed to queues (S3 notifications; SNS later).
    fn start_background(self: Arc<Self>) {
        let mut deliveries = self.bus.subscribe("sqs");
        tokio::spawn(async move {
            while let Some(d) = deliveries.recv().await {
                let result = ops::send_event(&self, &d.event);
                let _ = d.ack.send(result.map(|_| ()).map_err(|e| e.message));
            }
        });
    }
}
