//! Amazon S3 on Virga.
//!
//! Requests are routed and parsed by the model-driven rest-xml codec
//! (`virga-protocol`) from the vendored `models/s3.json`; handlers in `ops/` work on
//! model-shaped values and the store (`state.rs`); bodies stream through `body.rs`.
//! S3-only wire behaviour that the model does not describe (virtual-host addressing,
//! CORS preflight, website endpoints, XML root element names) lives here.

pub mod body;
mod cors;
mod events;
mod lifecycle;
mod ops;
mod post_object;
pub mod state;
mod website;

use http::{HeaderMap, HeaderValue, Method, Response};
use serde_json::{Map, Value};
use std::sync::Arc;
use virga_core::service::{empty_body, full_body};
use virga_core::{AwsError, AwsResult, Body, BoxFuture, RequestContext};
use virga_protocol::rest_xml;
use virga_protocol::{RestRequest, ServiceModel};
use virga_store::{BlobStore, KvStore};

static MODEL: ServiceModel = ServiceModel::new(include_str!("../../../models/s3.json"));

pub const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// What an operation handler returns.
#[derive(Default)]
pub struct Out {
    pub value: Map<String, Value>,
    /// The streaming payload (GetObject's body).
    pub body: Option<Body>,
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
}

impl Out {
    pub fn value(value: Value) -> Out {
        Out {
            value: match value {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            ..Default::default()
        }
    }
    pub fn empty() -> Out {
        Out::default()
    }
}

/// One parsed S3 request, as handlers see it.
pub struct Call {
    pub ctx: RequestContext,
    pub input: Map<String, Value>,
    pub headers: HeaderMap,
    /// The raw body, for operations whose payload streams (PutObject, UploadPart).
    pub body: Option<Body>,
}

impl Call {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.input.get(name).and_then(|v| v.as_str())
    }
    pub fn req(&self, name: &str) -> AwsResult<&str> {
        self.str(name).ok_or_else(|| {
            AwsError::new(
                400,
                "InvalidRequest",
                format!("Missing required parameter {name}"),
            )
        })
    }
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.input.get(name).and_then(|v| v.as_i64())
    }
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.input.get(name).and_then(|v| v.as_f64())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct S3 {
    pub(crate) store: Arc<dyn KvStore>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) bus: Arc<virga_core::events::EventBus>,
    pub(crate) clock: Arc<virga_core::Clock>,
    pub(crate) seq: std::sync::atomic::AtomicU64,
    /// Woken after writes, so recorded events are delivered without waiting.
    pub(crate) outbox_ready: tokio::sync::Notify,
    /// Known keys and `--strict-auth`, for signatures inside POST forms.
    pub(crate) auth: std::sync::OnceLock<(std::collections::HashMap<String, String>, bool)>,
}

impl S3 {
    pub fn new(
        store: Arc<dyn KvStore>,
        blobs: Arc<dyn BlobStore>,
        bus: Arc<virga_core::events::EventBus>,
        clock: Arc<virga_core::Clock>,
    ) -> Arc<S3> {
        let start = clock.now_millis().max(0) as u64 * 1000;
        Arc::new(S3 {
            store,
            blobs,
            bus,
            clock,
            seq: std::sync::atomic::AtomicU64::new(start),
            outbox_ready: tokio::sync::Notify::new(),
            auth: std::sync::OnceLock::new(),
        })
    }

    /// The credentials the gateway verifies, for browser-upload (POST) policies.
    pub fn set_auth(&self, credentials: std::collections::HashMap<String, String>, strict: bool) {
        let _ = self.auth.set((credentials, strict));
    }

    /// A sequence number that increases across restarts (microsecond clock based).
    pub(crate) fn next_seq(&self) -> u64 {
        let now = self.clock.now_millis().max(0) as u64 * 1000;
        let mut cur = self.seq.load(std::sync::atomic::Ordering::Relaxed);
        loop {
            let next = cur.max(now) + 1;
            match self.seq.compare_exchange(
                cur,
                next,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    async fn serve(&self, ctx: RequestContext, req: http::Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let is_head = parts.method == Method::HEAD;
        let origin = parts
            .headers
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_string());
        let host = virga_core::hosts::s3_host(&ctx.host);
        let raw_path = parts.uri.path().to_string();
        let path = match &host.bucket {
            Some(b) => format!("/{b}{raw_path}"),
            None => raw_path,
        };
        let query: Vec<(String, String)> = form_query(parts.uri.query().unwrap_or(""));
        let bucket_of_path = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .map(|b| {
                percent_encoding::percent_decode_str(b)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .filter(|b| !b.is_empty());

        let result = if host.website {
            website::serve(self, &ctx, &parts, host.bucket.as_deref().unwrap_or("")).await
        } else if post_object::is_post_object(&parts.method, &path, &parts.headers) {
            match &bucket_of_path {
                Some(b) => post_object::serve(self, &ctx, &parts, b, body).await,
                None => Err(AwsError::new(
                    405,
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                )),
            }
        } else if parts.method == Method::OPTIONS {
            cors::preflight(self, &ctx, &parts.headers, bucket_of_path.as_deref())
        } else {
            self.dispatch(&ctx, &parts, &path, &query, body).await
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => error_response(&e, &ctx.request_id, is_head),
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            h.insert("x-amz-request-id", v.clone());
            h.insert("x-amz-id-2", v);
        }
        h.insert("server", HeaderValue::from_static("AmazonS3"));
        if let (Some(origin), Some(bucket)) = (origin, bucket_of_path) {
            if parts.method != Method::OPTIONS {
                cors::decorate(
                    self,
                    &bucket,
                    &origin,
                    parts.method.as_str(),
                    resp.headers_mut(),
                );
            }
        }
        resp
    }

    async fn dispatch(
        &self,
        ctx: &RequestContext,
        parts: &http::request::Parts,
        path: &str,
        query: &[(String, String)],
        body: Body,
    ) -> AwsResult<Response<Body>> {
        let model = MODEL.model()?;
        let router = MODEL.router()?;
        let rreq = RestRequest {
            method: parts.method.as_str(),
            raw_path: path,
            query,
            headers: &parts.headers,
        };
        let Some(routed) = router.route(&rreq) else {
            return Err(AwsError::new(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
            .with("Method", parts.method.as_str())
            .with(
                "ResourceType",
                if path.trim_matches('/').contains('/') {
                    "OBJECT"
                } else {
                    "BUCKET"
                },
            ));
        };
        let op_name = routed.operation;
        ctx.set_operation(op_name);
        let op = model
            .operation(op_name)
            .ok_or_else(|| AwsError::internal("routed to an unknown operation"))?;
        let streaming = matches!(op_name, "PutObject" | "UploadPart");
        let (input, body) = if streaming {
            let input = match &op.input {
                Some(i) => rest_xml::parse_input(model, &i.shape, &rreq, &routed.labels, None)?,
                None => Map::new(),
            };
            (input, Some(body))
        } else {
            let bytes = body::read_small_body(body, &parts.headers, 20 * 1024 * 1024).await?;
            let input = match &op.input {
                Some(i) => {
                    rest_xml::parse_input(model, &i.shape, &rreq, &routed.labels, Some(&bytes))?
                }
                None => Map::new(),
            };
            (input, None)
        };
        let call = Call {
            ctx: ctx.clone(),
            input,
            headers: parts.headers.clone(),
            body,
        };
        let out = ops::call(self, op_name, call).await?;
        let root = root_element(op_name);
        let output_shape = op.output.as_ref().map(|o| o.shape.as_str());
        let ser = rest_xml::serialize_output(model, output_shape, &out.value, root, Some(XMLNS));
        let mut b = Response::builder().status(out.status.unwrap_or(ser.status));
        for (k, v) in ser.headers.iter().chain(out.headers.iter()) {
            if let Ok(v) = HeaderValue::from_str(v) {
                b = b.header(k.as_str(), v);
            } else if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                b = b.header(k.as_str(), v);
            }
        }
        let body = match out.body {
            Some(stream) => stream,
            None if ser.body.is_empty() => empty_body(),
            None => {
                b = b.header("content-type", "application/xml");
                full_body(ser.body)
            }
        };
        b.body(body)
            .map_err(|e| AwsError::internal(format!("response: {e}")))
    }
}

/// The document element of each output (Smithy's `@xmlName`; botocore's model omits it).
fn root_element(op: &str) -> &'static str {
    match op {
        "ListBuckets" => "ListAllMyBucketsResult",
        "ListObjects" | "ListObjectsV2" => "ListBucketResult",
        "ListObjectVersions" => "ListVersionsResult",
        "CreateMultipartUpload" => "InitiateMultipartUploadResult",
        "CompleteMultipartUpload" => "CompleteMultipartUploadResult",
        "ListMultipartUploads" => "ListMultipartUploadsResult",
        "ListParts" => "ListPartsResult",
        "DeleteObjects" => "DeleteResult",
        "GetBucketTagging" | "GetObjectTagging" => "Tagging",
        "GetBucketVersioning" => "VersioningConfiguration",
        "GetBucketCors" => "CORSConfiguration",
        "GetBucketLifecycleConfiguration" | "GetBucketLifecycle" => "LifecycleConfiguration",
        "GetBucketNotificationConfiguration" => "NotificationConfiguration",
        "GetBucketWebsite" => "WebsiteConfiguration",
        "GetBucketAcl" | "GetObjectAcl" => "AccessControlPolicy",
        "GetBucketLocation" => "LocationConstraint",
        "GetObjectAttributes" => "GetObjectAttributesResponse",
        "GetBucketOwnershipControls" => "OwnershipControls",
        "GetBucketEncryption" => "ServerSideEncryptionConfiguration",
        "GetPublicAccessBlock" => "PublicAccessBlockConfiguration",
        "GetBucketPolicyStatus" => "PolicyStatus",
        "GetBucketAccelerateConfiguration" => "AccelerateConfiguration",
        "GetBucketRequestPayment" => "RequestPaymentConfiguration",
        "GetBucketLogging" => "BucketLoggingStatus",
        "GetBucketReplication" => "ReplicationConfiguration",
        "GetObjectLockConfiguration" => "ObjectLockConfiguration",
        "CopyObject" => "CopyObjectResult",
        "UploadPartCopy" => "CopyPartResult",
        _ => "Result",
    }
}

pub use virga_protocol::rest::form_query;

pub fn error_response(e: &AwsError, request_id: &str, is_head: bool) -> Response<Body> {
    let mut b = Response::builder().status(e.status);
    let body = if is_head {
        empty_body()
    } else {
        b = b.header("content-type", "application/xml");
        full_body(rest_xml::error_body(e, request_id))
    };
    for (k, v) in &e.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(body).unwrap_or_else(|_| Response::new(empty_body()))
}

impl virga_core::Service for S3 {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, Response<Body>> {
        Box::pin(self.serve(ctx, req))
    }

    fn reset(&self) -> AwsResult<()> {
        self.store.clear("s3.")?;
        self.blobs.clear()
    }

    fn start_background(self: Arc<Self>) {
        lifecycle::start(self.clone());
        events::start(self);
    }
}

/// Event notifications recorded and not yet delivered (shown at `/_virga/events`).
pub fn pending_events(s3: &S3, limit: usize) -> AwsResult<Vec<virga_core::events::Event>> {
    Ok(events::pending(s3, limit)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}
