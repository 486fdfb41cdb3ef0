//! Amazon DynamoDB and DynamoDB Streams on Virga (JSON 1.0 protocol).
//!
//! Items live in one ordered store table keyed by (table id, partition key, sort
//! key), so a Query is a range read; secondary indexes, stream records, the TTL
//! index and item counters are written in the same transaction as the item. The
//! expression language and attribute values are in `virga-dynamodb-expr`.

mod control;
mod data;
mod errors;
mod keys;
mod partiql;
mod query;
mod state;
mod streams;
mod transact;
mod ttl;

use http::Response;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::sync::Arc;
use virga_core::service::aws_response;
use virga_core::{AwsError, AwsResult, Body, BoxFuture, Clock, RequestContext};
use virga_protocol::{json, ServiceModel};
use virga_store::KvStore;

static MODEL: ServiceModel = ServiceModel::new(include_str!("../../../models/dynamodb.json"));
static STREAMS_MODEL: ServiceModel =
    ServiceModel::new(include_str!("../../../models/dynamodbstreams.json"));

/// DynamoDB's request size limit (16 MB for BatchWriteItem and friends).
const MAX_REQUEST: usize = 16 * 1024 * 1024;

type Input = Map<String, Value>;
type Output = Map<String, Value>;

pub struct DynamoDb {
    pub(crate) store: Arc<dyn KvStore>,
    pub(crate) clock: Arc<Clock>,
    /// Serialises DynamoDB's read-check-write transactions against each other (the
    /// store has one writer anyway; this keeps a condition check and its write atomic
    /// across the per-core runtimes).
    pub(crate) write_lock: std::sync::Mutex<()>,
    /// Stream sequence numbers: increasing across restarts.
    pub(crate) stream_seq: std::sync::atomic::AtomicU64,
    /// Wakes the TTL sweeper when the clock moves.
    pub(crate) ttl_wake: tokio::sync::Notify,
    /// Table descriptions by (region, name), so that an item operation does not read
    /// and decode its table's record. Control-plane writes, which hold `write_lock`,
    /// drop entries; item writes look their table up again under the lock.
    pub(crate) tables:
        std::sync::Mutex<std::collections::HashMap<(String, String), Arc<state::TableMeta>>>,
}

impl DynamoDb {
    pub fn new(store: Arc<dyn KvStore>, clock: Arc<Clock>) -> Arc<DynamoDb> {
        let start = (clock.now_millis().max(0) as u64) * 1000;
        Arc::new(DynamoDb {
            store,
            clock,
            write_lock: std::sync::Mutex::new(()),
            stream_seq: std::sync::atomic::AtomicU64::new(start),
            ttl_wake: tokio::sync::Notify::new(),
            tables: Default::default(),
        })
    }

    /// The next stream sequence number (microsecond clock based, so increasing
    /// across restarts).
    pub(crate) fn next_stream_seq(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = (self.clock.now_millis().max(0) as u64) * 1000;
        let mut cur = self.stream_seq.load(Ordering::Relaxed);
        loop {
            let next = cur.max(now) + 1;
            match self
                .stream_seq
                .compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    async fn serve(&self, ctx: RequestContext, req: http::Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        drop(parts);
        let result = async {
            let bytes = http_body_util::Limited::new(body, MAX_REQUEST)
                .collect()
                .await
                .map_err(|_| {
                    AwsError::new(413, "RequestEntityTooLarge", "Request entity too large")
                })?
                .to_bytes();
            let streams = target.starts_with("DynamoDBStreams");
            let model = if streams {
                STREAMS_MODEL.model()?
            } else {
                MODEL.model()?
            };
            let op = json::operation_from_target(model, &target).ok_or_else(|| {
                AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!("Unknown operation {target}"),
                )
            })?;
            ctx.set_operation(op);
            if op == "BatchWriteItem" {
                check_batch_write_sizes(&bytes)?;
            }
            let input = json::parse_input(model, op, &bytes).map_err(|e| {
                // serde_json's recursion limit: AWS rejects such depth as too nested.
                if e.message.contains("recursion limit") {
                    data::nesting_error()
                } else {
                    e
                }
            })?;
            let out = if streams {
                streams::call(self, &ctx, op, input)?
            } else {
                self.call(&ctx, op, input)?
            };
            Ok::<_, AwsError>(json::serialize_output(model, op, &out))
        }
        .await;
        let (status, body) = match result {
            Ok(body) => (200, body),
            Err(mut e) => {
                if !e.code.contains('#') && e.status < 500 {
                    e.code = format!("com.amazonaws.dynamodb.v20120810#{}", e.code);
                }
                (e.status, json::error_body(&e))
            }
        };
        let crc = crc32(&body).to_string();
        aws_response(
            status,
            "application/x-amz-json-1.0",
            &ctx.request_id,
            &[("x-amz-crc32", crc)],
            body,
        )
    }

    fn call(&self, ctx: &RequestContext, op: &str, i: Input) -> AwsResult<Output> {
        match op {
            "CreateTable" => control::create_table(self, ctx, &i),
            "DescribeTable" => control::describe_table(self, ctx, &i),
            "ListTables" => control::list_tables(self, ctx, &i),
            "UpdateTable" => control::update_table(self, ctx, &i),
            "DeleteTable" => control::delete_table(self, ctx, &i),
            "TagResource" => control::tag_resource(self, ctx, &i),
            "UntagResource" => control::untag_resource(self, ctx, &i),
            "ListTagsOfResource" => control::list_tags(self, ctx, &i),
            "UpdateTimeToLive" => control::update_ttl(self, ctx, &i),
            "DescribeTimeToLive" => control::describe_ttl(self, ctx, &i),
            "DescribeLimits" => Ok(control::describe_limits()),
            "DescribeEndpoints" => Ok(control::describe_endpoints(ctx)),
            "DescribeContinuousBackups" => control::describe_continuous_backups(self, ctx, &i),
            "PutItem" => data::put_item(self, ctx, &i),
            "GetItem" => data::get_item(self, ctx, &i),
            "UpdateItem" => data::update_item(self, ctx, &i),
            "DeleteItem" => data::delete_item(self, ctx, &i),
            "BatchGetItem" => data::batch_get_item(self, ctx, &i),
            "BatchWriteItem" => data::batch_write_item(self, ctx, &i),
            "Query" => query::query(self, ctx, &i),
            "Scan" => query::scan(self, ctx, &i),
            "TransactWriteItems" => transact::transact_write(self, ctx, &i),
            "TransactGetItems" => transact::transact_get(self, ctx, &i),
            "ExecuteStatement" => partiql::execute_statement(self, ctx, &i),
            "BatchExecuteStatement" => partiql::batch_execute_statement(self, ctx, &i),
            "ExecuteTransaction" => partiql::execute_transaction(self, ctx, &i),
            _ => Err(AwsError::new(
                400,
                "UnknownOperationException",
                format!("Virga does not implement DynamoDB {op} yet"),
            )),
        }
    }
}

/// BatchWriteItem's per-table limit, checked before the model's validation because AWS
/// reports it on the whole map ("Map value must satisfy constraint"), with the map
/// rendered the Java way.
fn check_batch_write_sizes(body: &[u8]) -> AwsResult<()> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let Some(items) = v.get("RequestItems").and_then(Value::as_object) else {
        return Ok(());
    };
    for (table, writes) in items {
        let n = writes.as_array().map_or(0, Vec::len);
        if n > 25 || n == 0 {
            let rendered: Vec<String> = (0..n)
                .map(|i| format!("com.amazonaws.dynamodb.v20120810.WriteRequest@{i:x}"))
                .collect();
            return Err(AwsError::new(
                400,
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{{{table}=[{}]}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
                    rendered.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The `x-amz-crc32` header boto3 checks on DynamoDB responses.
fn crc32(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

impl virga_core::Service for DynamoDb {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, Response<Body>> {
        Box::pin(self.serve(ctx, req))
    }

    fn reset(&self) -> AwsResult<()> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.store.clear("ddb.")
    }

    fn start_background(self: Arc<Self>) {
        ttl::start(self);
    }
}
