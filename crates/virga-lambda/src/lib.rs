//! AWS Lambda on Virga (rest-json): functions, versions, aliases, layers, permissions,
//! concurrency, event invoke configs and event source mappings, with real function
//! code run by runtime processes that speak the Lambda Runtime API to Virga.
//!
//! Modules:
//! - [`functions`]: the control plane of functions, versions, aliases and policies.
//! - [`code`]: deployment packages and layers (zips kept as blobs, unpacked on disk).
//! - [`engine`]: runtime environments (processes), the Runtime API each one talks to,
//!   and one invocation from start to REPORT line.
//! - [`invoke`]: the Invoke operation, the durable queue of asynchronous invocations
//!   with retries and destinations, and events from S3 and SNS.
//! - [`esm`]: event source mappings and their pollers (SQS, DynamoDB Streams).
//!
//! Store tables (under `lambda.`):
//! - `lambda.fn`    (region, name) -> [`state::Function`] (`$LATEST` and what is per function)
//! - `lambda.ver`   (region, name, version) -> [`state::Version`]
//! - `lambda.alias` (region, name, alias) -> alias configuration
//! - `lambda.layer` (region, layer, version) -> [`state::Layer`]
//! - `lambda.esm`   (uuid) -> [`state::Mapping`]
//! - `lambda.async` (seq) -> [`state::AsyncInvocation`], `lambda.due` (due ms, seq) -> ()

pub mod code;
pub mod engine;
pub mod esm;
pub mod functions;
pub mod invoke;
pub mod state;

use http::Response;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use virga_core::service::{aws_response, Directory};
use virga_core::{AwsError, AwsResult, Body, BoxFuture, Clock, RequestContext};
use virga_protocol::{rest_json, RestRequest, ServiceModel};
use virga_store::{BlobStore, KvStore};

static MODEL: ServiceModel =
    ServiceModel::with_patterns(include_str!("../../../models/lambda.json"));

pub type Input = Map<String, Value>;
pub type Output = Map<String, Value>;

/// Synchronous invocation payload limit (request and response).
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// Event invocation payload limit (raised from 256 KB to 1 MB in 2025).
pub const EVENT_PAYLOAD_LIMIT: usize = 1024 * 1024;
/// The deprecated InvokeAsync operation keeps the old 256 KB limit.
pub const ASYNC_PAYLOAD_LIMIT: usize = 256 * 1024;

pub struct Lambda {
    pub(crate) store: Arc<dyn KvStore>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) clock: Arc<Clock>,
    pub(crate) bus: Arc<virga_core::events::EventBus>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) engine: engine::Engine,
    /// Where code, layers and runtime bootstraps are unpacked.
    pub(crate) work_dir: PathBuf,
    /// Credentials handed to functions (AWS_ACCESS_KEY_ID, ...).
    pub(crate) credentials: Mutex<(String, String)>,
    /// Wakes the asynchronous-invocation worker when work is queued.
    pub(crate) async_wake: tokio::sync::Notify,
    /// Running event source mapping pollers by UUID.
    pub(crate) pollers: Mutex<std::collections::HashMap<String, esm::PollerHandle>>,
    me: OnceLock<std::sync::Weak<Lambda>>,
}

pub(crate) fn err(status: u16, code: &str, msg: impl Into<String>) -> AwsError {
    AwsError::new(status, code, msg)
}

pub(crate) fn invalid(msg: impl Into<String>) -> AwsError {
    err(400, "InvalidParameterValueException", msg)
}

pub(crate) fn not_found(msg: impl Into<String>) -> AwsError {
    err(404, "ResourceNotFoundException", msg)
}

pub(crate) fn conflict(msg: impl Into<String>) -> AwsError {
    err(409, "ResourceConflictException", msg)
}

pub(crate) fn s<'a>(i: &'a Input, k: &str) -> Option<&'a str> {
    i.get(k).and_then(Value::as_str)
}

pub(crate) fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Now, in epoch seconds with millisecond precision (the API's timestamp members: a
/// value with more digits parses differently depending on its path through clients).
pub(crate) fn now_secs(clock: &Clock) -> f64 {
    clock.now_millis() as f64 / 1000.0
}

/// AWS's timestamp form for LastModified: `2024-01-02T03:04:05.678+0000`.
pub(crate) fn last_modified(millis: i64) -> String {
    // From whole seconds: milliseconds through an f64 can come out one short.
    let iso = virga_protocol::time_fmt::iso8601(millis.div_euclid(1000) as f64);
    format!(
        "{}.{:03}+0000",
        iso.get(..19).unwrap_or(&iso),
        millis.rem_euclid(1000)
    )
}

impl Lambda {
    /// `work_dir` holds unpacked code (a temporary directory for in-memory servers).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn KvStore>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<Clock>,
        logs: Arc<virga_logs::Logs>,
        bus: Arc<virga_core::events::EventBus>,
        directory: Arc<Directory>,
        work_dir: PathBuf,
    ) -> AwsResult<Arc<Lambda>> {
        std::fs::create_dir_all(&work_dir)
            .map_err(|e| AwsError::internal(format!("{}: {e}", work_dir.display())))?;
        code::clear_unpacked(&work_dir);
        let engine = engine::Engine::new(&work_dir, clock.clone(), logs)?;
        let l = Arc::new(Lambda {
            store,
            blobs,
            clock,
            bus,
            directory,
            engine,
            work_dir,
            credentials: Mutex::new(("test".into(), "test".into())),
            async_wake: tokio::sync::Notify::new(),
            pollers: Mutex::new(Default::default()),
            me: OnceLock::new(),
        });
        let _ = l.me.set(Arc::downgrade(&l));
        Ok(l)
    }

    /// The credentials functions receive (one of Virga's configured keys, so their
    /// calls pass `--strict-auth`).
    pub fn set_credentials(&self, key: &str, secret: &str) {
        if let Ok(mut c) = self.credentials.lock() {
            *c = (key.to_string(), secret.to_string());
        }
    }

    pub(crate) fn arc(&self) -> Option<Arc<Lambda>> {
        self.me.get().and_then(|w| w.upgrade())
    }

    /// The deployment package behind a GetFunction `Code.Location` URL
    /// (`/_virga/lambda/code/<blob>`).
    pub fn code_zip(&self, blob: &str) -> AwsResult<Vec<u8>> {
        code::read_blob(self, blob)
    }

    async fn serve(&self, ctx: RequestContext, req: http::Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(virga_protocol::rest::form_query)
            .unwrap_or_default();
        let result = async {
            let model = MODEL.model()?;
            let router = MODEL.router()?;
            let rreq = RestRequest {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                query: &query,
                headers: &parts.headers,
            };
            let routed = router.route(&rreq).ok_or_else(|| {
                err(
                    404,
                    "UnknownOperationException",
                    format!("Unknown operation {} {}", parts.method, parts.uri.path()),
                )
            })?;
            let op = routed.operation.to_string();
            ctx.set_operation(&op);
            // CreateFunction carries a zip of up to 50 MB as base64 (70 MB of JSON).
            let (limit, api_name) = match op.as_str() {
                "Invoke" => (SYNC_PAYLOAD_LIMIT, "InvokeFunction"),
                "InvokeAsync" => (ASYNC_PAYLOAD_LIMIT, "InvokeAsync"),
                other => (70_167_211, other),
            };
            let bytes = http_body_util::Limited::new(body, limit)
                .collect()
                .await
                .map_err(|_| {
                    err(
                        413,
                        "RequestEntityTooLargeException",
                        format!(
                            "Request must be smaller than {limit} bytes for the {api_name} operation"
                        ),
                    )
                })?
                .to_bytes();
            let input = rest_json::parse_input(model, &op, &rreq, &routed.labels, &bytes)
                .map_err(runtime_enum_error)?;
            let out = self.call(&ctx, &op, input).await?;
            let (mut status, headers, body) = rest_json::serialize_output(model, &op, &out);
            if op == "DeleteFunction" {
                // The model says 200; Lambda answers 204.
                status = 204;
            }
            Ok::<_, AwsError>((op.clone(), (status, headers, body)))
        }
        .await;
        match result {
            Ok((_, (status, headers, body))) => {
                let hs: Vec<(&str, String)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                aws_response(status, "application/json", &ctx.request_id, &hs, body)
            }
            Err(e) => error_response(&e, &ctx.request_id),
        }
    }

    async fn call(&self, ctx: &RequestContext, op: &str, i: Input) -> AwsResult<Output> {
        let region = ctx.region.as_str();
        match op {
            "CreateFunction" => functions::create(self, region, &i).await,
            "GetFunction" => functions::get(self, ctx, &i),
            "GetFunctionConfiguration" => functions::get_configuration(self, region, &i),
            "UpdateFunctionCode" => functions::update_code(self, region, &i).await,
            "UpdateFunctionConfiguration" => functions::update_configuration(self, region, &i),
            "DeleteFunction" => functions::delete(self, region, &i),
            "ListFunctions" => functions::list(self, region, &i),
            "PublishVersion" => functions::publish_version(self, region, &i),
            "ListVersionsByFunction" => functions::list_versions(self, region, &i),
            "CreateAlias" => functions::create_alias(self, region, &i),
            "GetAlias" => functions::get_alias(self, region, &i),
            "UpdateAlias" => functions::update_alias(self, region, &i),
            "DeleteAlias" => functions::delete_alias(self, region, &i),
            "ListAliases" => functions::list_aliases(self, region, &i),
            "AddPermission" => functions::add_permission(self, region, &i),
            "RemovePermission" => functions::remove_permission(self, region, &i),
            "GetPolicy" => functions::get_policy(self, region, &i),
            "PutFunctionConcurrency" => functions::put_concurrency(self, region, &i),
            "GetFunctionConcurrency" => functions::get_concurrency(self, region, &i),
            "DeleteFunctionConcurrency" => functions::delete_concurrency(self, region, &i),
            "PutFunctionEventInvokeConfig" | "UpdateFunctionEventInvokeConfig" => {
                functions::put_event_invoke_config(self, region, &i, op.starts_with("Update"))
            }
            "GetFunctionEventInvokeConfig" => functions::get_event_invoke_config(self, region, &i),
            "DeleteFunctionEventInvokeConfig" => {
                functions::delete_event_invoke_config(self, region, &i)
            }
            "ListFunctionEventInvokeConfigs" => {
                functions::list_event_invoke_configs(self, region, &i)
            }
            "TagResource" => functions::tag(self, region, &i),
            "UntagResource" => functions::untag(self, region, &i),
            "ListTags" => functions::list_tags(self, region, &i),
            "GetAccountSettings" => functions::account_settings(self, region),
            "PublishLayerVersion" => code::publish_layer(self, region, &i).await,
            "ListLayers" => code::list_layers(self, region, &i),
            "ListLayerVersions" => code::list_layer_versions(self, region, &i),
            "GetLayerVersion" => code::get_layer_version(self, ctx, &i),
            "GetLayerVersionByArn" => code::get_layer_version(self, ctx, &i),
            "DeleteLayerVersion" => code::delete_layer_version(self, region, &i),
            "Invoke" => invoke::invoke(self, ctx, &i).await,
            "InvokeAsync" => invoke::invoke_async_legacy(self, ctx, &i).await,
            "CreateEventSourceMapping" => esm::create(self, region, &i).await,
            "GetEventSourceMapping" => esm::get(self, &i),
            "UpdateEventSourceMapping" => esm::update(self, region, &i),
            "DeleteEventSourceMapping" => esm::delete(self, &i),
            "ListEventSourceMappings" => esm::list(self, region, &i),
            _ => Err(err(
                400,
                "InvalidParameterValueException",
                format!("Virga does not implement Lambda {op} yet"),
            )),
        }
    }
}

/// One page of a listing: `MaxItems` items (default `default_max`) starting at the one
/// whose `key` member the `Marker` names, as `{list_name: [...], "NextMarker": ...}`.
pub(crate) fn page(
    mut items: Vec<Map<String, Value>>,
    key: &str,
    list_name: &str,
    i: &Input,
    default_max: u64,
) -> Output {
    let id = |m: &Map<String, Value>| match m.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let max = i
        .get("MaxItems")
        .and_then(Value::as_u64)
        .unwrap_or(default_max)
        .clamp(1, 10_000) as usize;
    if let Some(marker) = s(i, "Marker") {
        let start = items
            .iter()
            .position(|m| id(m) == marker)
            .unwrap_or(items.len());
        items.drain(..start);
    }
    let next = items.get(max).map(id);
    items.truncate(max);
    let mut out = Map::new();
    out.insert(
        list_name.into(),
        Value::Array(items.into_iter().map(Value::Object).collect()),
    );
    if let Some(n) = next {
        out.insert("NextMarker".into(), Value::String(n));
    }
    out
}

/// Lambda reports an unknown runtime as InvalidParameterValueException, not as the
/// model's enum ValidationException.
fn runtime_enum_error(e: AwsError) -> AwsError {
    const MARK: &str =
        " at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: ";
    match e.message.find(MARK) {
        Some(at) if e.code == "ValidationException" => {
            let value = e.message[..at]
                .rsplit("Value ")
                .next()
                .unwrap_or("")
                .trim_matches('\'');
            let set = &e.message[at + MARK.len()..];
            invalid(format!(
                "Value {value} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: {set} or be a valid ARN"
            ))
        }
        _ => e,
    }
}

/// A rest-json error response (`x-amzn-ErrorType`, `{"Type","message"}`).
pub(crate) fn error_response(e: &AwsError, request_id: &str) -> Response<Body> {
    let (code, body) = rest_json::error_body(e);
    let mut headers = vec![("x-amzn-errortype", code)];
    for (k, v) in &e.headers {
        headers.push((k.as_str(), v.clone()));
    }
    aws_response(e.status, "application/json", request_id, &headers, body)
}

impl virga_core::Service for Lambda {
    fn name(&self) -> &'static str {
        "lambda"
    }

    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, Response<Body>> {
        Box::pin(self.serve(ctx, req))
    }

    fn reset(&self) -> AwsResult<()> {
        esm::stop_all(self);
        self.engine.shutdown_all();
        code::clear_unpacked(&self.work_dir);
        let ids = state::all_blob_ids(self)?;
        self.store.clear("lambda.")?;
        for id in ids {
            let _ = self.blobs.delete(&id);
        }
        Ok(())
    }

    fn start_background(self: Arc<Self>) {
        invoke::start(self.clone());
        esm::start_all(&self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> Vec<Map<String, Value>> {
        (0..n)
            .map(|i| obj(json!({"Name": format!("a{i}"), "Version": i})))
            .collect()
    }

    #[test]
    fn pages_by_marker() {
        let i = obj(json!({"MaxItems": 2}));
        let p = page(items(5), "Name", "Aliases", &i, 50);
        assert_eq!(p["Aliases"].as_array().unwrap().len(), 2);
        assert_eq!(p["NextMarker"], "a2");
        let i = obj(json!({"MaxItems": 2, "Marker": "a4"}));
        let p = page(items(5), "Name", "Aliases", &i, 50);
        assert_eq!(p["Aliases"][0]["Name"], "a4");
        assert!(p.get("NextMarker").is_none());
        // Numbers are markers by their text.
        let i = obj(json!({"Marker": "3"}));
        let p = page(items(5), "Version", "Versions", &i, 50);
        assert_eq!(p["Versions"][0]["Version"], 3);
        // A marker naming nothing gives an empty page.
        let i = obj(json!({"Marker": "zz"}));
        assert_eq!(
            page(items(5), "Name", "Aliases", &i, 50)["Aliases"],
            json!([])
        );
    }

    #[test]
    fn unknown_runtime_is_an_invalid_parameter() {
        let e = AwsError::new(
            400,
            "ValidationException",
            "1 validation error detected: Value 'python0.1' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [python3.12, nodejs20.x]",
        );
        let e = runtime_enum_error(e);
        assert_eq!(e.code, "InvalidParameterValueException");
        assert_eq!(e.message, "Value python0.1 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [python3.12, nodejs20.x] or be a valid ARN");
        let other = AwsError::new(400, "ValidationException", "Value 'x' at 'timeout' ...");
        assert_eq!(runtime_enum_error(other.clone()), other);
    }

    #[test]
    fn last_modified_format() {
        assert_eq!(
            last_modified(1_700_000_000_123),
            "2023-11-14T22:13:20.123+0000"
        );
    }
}
