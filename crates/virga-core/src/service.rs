//! What a service is to the gateway: something that answers authenticated HTTP requests
//! addressed to it, and can forget its state.

use crate::{AwsResult, Clock};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Request and response bodies: streams of bytes, so large objects are never held whole.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who is asking, where, and when — filled in by the gateway.
#[derive(Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub account: String,
    pub region: String,
    /// The access key that signed the request, if it was signed.
    pub access_key: Option<String>,
    /// The Host header (virtual-host S3 addressing and website endpoints need it).
    pub host: String,
    /// `host:port` Virga listens on, for URLs it hands out.
    pub listen_addr: String,
    pub clock: Arc<Clock>,
    pub started: Instant,
    /// The operation name, once a codec knows it (for the request log line).
    pub operation: OperationName,
}

/// The operation a request turned out to be: set by the service's codec once it knows
/// it, read by the gateway's log line after the answer. Clones share the name.
#[derive(Clone, Default)]
pub struct OperationName(Arc<std::sync::Mutex<Option<String>>>);

impl OperationName {
    pub fn set(&self, op: &str) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(op.to_string());
        }
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

impl RequestContext {
    /// The context of work Virga does on its own behalf (deliveries, sweeps), acting
    /// as `principal` (e.g. `s3.amazonaws.com`) in the default account and region.
    pub fn system(clock: Arc<Clock>, principal: &str) -> RequestContext {
        RequestContext {
            request_id: crate::request_id(),
            account: crate::DEFAULT_ACCOUNT.into(),
            region: crate::DEFAULT_REGION.into(),
            access_key: Some(principal.to_string()),
            host: String::new(),
            listen_addr: listen_addr(),
            clock,
            started: Instant::now(),
            operation: Default::default(),
        }
    }

    pub fn set_operation(&self, op: &str) {
        self.operation.set(op);
    }

    pub fn operation(&self) -> Option<String> {
        self.operation.get()
    }
}

pub trait Service: Send + Sync {
    /// The signing name / endpoint prefix, e.g. `s3`.
    fn name(&self) -> &'static str;
    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, http::Response<Body>>;
    /// Empties all state (`POST /_virga/reset`).
    fn reset(&self) -> AwsResult<()>;
    /// Starts background work (expiry sweeps, deliveries); called once at start-up.
    fn start_background(self: Arc<Self>) {}
}

/// A body holding `data`.
pub fn full_body(data: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A complete response of a non-S3 service: status, content type, the request id
/// header and any extra headers.
pub fn aws_response(
    status: u16,
    content_type: &str,
    request_id: &str,
    extra_headers: &[(&str, String)],
    body: Vec<u8>,
) -> http::Response<Body> {
    let mut b = http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", request_id);
    for (k, v) in extra_headers {
        b = b.header(*k, v.as_str());
    }
    b.body(full_body(body))
        .unwrap_or_else(|_| http::Response::new(full_body("")))
}

pub fn empty_body() -> Body {
    full_body(Bytes::new())
}

static LISTEN_ADDR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records the `host:port` this process serves on (once, at start-up), for URLs
/// handed out by work that no request started (SNS envelopes of S3 events, Lambda's
/// AWS_ENDPOINT_URL).
pub fn set_listen_addr(addr: String) {
    let _ = LISTEN_ADDR.set(addr);
}

/// The `host:port` recorded by [`set_listen_addr`], or AWS's local default.
pub fn listen_addr() -> String {
    LISTEN_ADDR
        .get()
        .cloned()
        .unwrap_or_else(|| "localhost:4566".into())
}

/// The services of this process, for calls one service makes to another's public API
/// (as AWS services do: Lambda polling an SQS queue or reading a DynamoDB stream). A
/// call is a request in the target's own wire protocol, answered by its
/// [`Service::handle`] under a system principal; it skips only the gateway's
/// signature check.
#[derive(Default)]
pub struct Directory {
    services: std::sync::OnceLock<Vec<Arc<dyn Service>>>,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// Records the services (once, after all are built).
    pub fn install(&self, services: Vec<Arc<dyn Service>>) {
        let _ = self.services.set(services);
    }

    fn find(&self, name: &str) -> crate::AwsResult<&Arc<dyn Service>> {
        self.services
            .get()
            .and_then(|s| s.iter().find(|s| s.name() == name))
            .ok_or_else(|| crate::AwsError::internal(format!("no {name} service in this process")))
    }

    /// Sends `req` to `service` and returns its response.
    pub async fn call(
        &self,
        service: &str,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> crate::AwsResult<http::Response<Body>> {
        Ok(self.find(service)?.handle(ctx, req).await)
    }

    /// A call in the JSON protocol (`X-Amz-Target: target`, JSON 1.0): the output
    /// document, or the service's error with its code and message.
    pub async fn call_json(
        &self,
        service: &str,
        target: &str,
        ctx: RequestContext,
        input: &serde_json::Value,
    ) -> crate::AwsResult<serde_json::Value> {
        use http_body_util::BodyExt;
        let req = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.0")
            .body(full_body(input.to_string()))
            .map_err(|e| crate::AwsError::internal(e.to_string()))?;
        let resp = self.call(service, ctx, req).await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| crate::AwsError::internal(e.to_string()))?
            .to_bytes();
        let doc: serde_json::Value = if body.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| crate::AwsError::internal(format!("{service} answered: {e}")))?
        };
        if status >= 300 {
            let code = doc["__type"].as_str().unwrap_or("InternalFailure");
            let code = code.rsplit('#').next().unwrap_or(code);
            let message = doc["message"]
                .as_str()
                .or(doc["Message"].as_str())
                .unwrap_or("");
            return Err(crate::AwsError::new(status, code, message));
        }
        Ok(doc)
    }
}
