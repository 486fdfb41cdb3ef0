//! Amazon SNS on Virga (query protocol): topics, subscriptions, publishing with filter
//! policies, delivery to SQS queues through the internal event bus. A publish returns
//! once every matching SQS subscription's queue has stored its copy.

mod deliver;
mod ops;
pub mod signing;

pub use ops::captured;

use http::Response;
use http_body_util::BodyExt;
use std::sync::Arc;
use virga_core::service::aws_response;
use virga_core::{AwsError, AwsResult, Body, BoxFuture, Clock, RequestContext};
use virga_protocol::{query, ServiceModel};
use virga_store::KvStore;

static MODEL: ServiceModel = ServiceModel::new(include_str!("../../../models/sns.json"));

pub struct Sns {
    pub(crate) store: Arc<dyn KvStore>,
    pub(crate) clock: Arc<Clock>,
    pub(crate) bus: Arc<virga_core::events::EventBus>,
}

impl Sns {
    pub fn new(
        store: Arc<dyn KvStore>,
        clock: Arc<Clock>,
        bus: Arc<virga_core::events::EventBus>,
    ) -> Arc<Sns> {
        Arc::new(Sns { store, clock, bus })
    }

    async fn serve(&self, ctx: RequestContext, req: http::Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let result = async {
            let bytes = http_body_util::Limited::new(body, 4 * 1024 * 1024)
                .collect()
                .await
                .map_err(|_| AwsError::new(400, "InvalidParameter", "Invalid parameter: Request too large"))?
                .to_bytes();
            let mut params = query::parse_form(parts.uri.query().unwrap_or("").as_bytes());
            params.extend(query::parse_form(&bytes));
            let model = MODEL.model()?;
            let op = query::operation(model, &params)
                .ok_or_else(|| {
                    AwsError::new(
                        400,
                        "InvalidAction",
                        "The action or operation requested is invalid. Verify that the action is typed correctly.",
                    )
                })?
                .to_string();
            ctx.set_operation(&op);
            let input = query::parse_input(model, &op, &params).map_err(|mut e| {
                if e.code == "MissingParameter" {
                    e.code = "InvalidParameter".into();
                    e.message = format!("Invalid parameter: {}", e.message);
                }
                e
            })?;
            let out = ops::call(self, &ctx, &op, input).await?;
            Ok::<_, AwsError>(query::serialize_output(model, &op, &out, &ctx.request_id))
        }
        .await;
        let (status, body) = match result {
            Ok(body) => (200, body),
            Err(e) => (
                e.status,
                query::error_body(MODEL.model().ok(), &e, &ctx.request_id),
            ),
        };
        aws_response(status, "text/xml", &ctx.request_id, &[], body)
    }
}

impl virga_core::Service for Sns {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, Response<Body>> {
        Box::pin(self.serve(ctx, req))
    }

    fn reset(&self) -> AwsResult<()> {
        self.store.clear("sns.")
    }

    /// Consumes events addressed to topics (S3 notifications).
    fn start_background(self: Arc<Self>) {
        let mut deliveries = self.bus.subscribe("sns");
        ops::resume_http_deliveries(&self);
        tokio::spawn(async move {
            while let Some(d) = deliveries.recv().await {
                let result = ops::publish_event(&self, &d.event).await;
                let _ = d.ack.send(result);
            }
        });
    }
}
