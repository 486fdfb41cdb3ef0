//! Virga's core: what every service shares — the AWS error type, the clock,
//! request authentication (SigV4/SigV2), the request context, the service interface
//! and the internal event bus.

pub mod auth;
pub mod chunked;
pub mod clock;
pub mod error;
pub mod events;
pub mod hosts;
pub mod service;

pub use clock::Clock;
pub use error::{AwsError, AwsResult};
pub use service::{Body, BoxFuture, RequestContext, Service};

/// The account every request belongs to unless credentials say otherwise.
pub const DEFAULT_ACCOUNT: &str = "000000000000";
/// The region of unsigned requests.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A fresh AWS-style request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
