//! Virga's core: what every service shares — the AWS error type, the clock,
//! request authentication (SigV4/SigV2), the request context, the service interface
//! and the internal event bus.

pub mod auth;
pub mod chunked;
pub mod clock;
pub mod error;
pub mod events;
pub mod filter_policy;
pub mod hosts;
pub mod service;

pub use clock::Clock;
pub use error::{AwsError, AwsResult};
pub use service::{Body, BoxFuture, OperationName, RequestContext, Service};

/// The account every request belongs to unless credentials say otherwise.
pub const DEFAULT_ACCOUNT: &str = "000000000000";
/// The region of unsigned requests.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A fresh AWS-style request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The AWS regions (commercial, China, GovCloud) a request or configuration may name.
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// SQS queue and SNS topic names: letters, digits, `-` and `_`, at most `max_len`
/// characters, and for FIFO resources the `.fifo` suffix.
pub fn valid_resource_name(name: &str, fifo: bool, max_len: usize) -> bool {
    let base = if fifo {
        name.strip_suffix(".fifo")
    } else {
        Some(name)
    };
    base.is_some_and(|b| {
        !b.is_empty()
            && name.len() <= max_len
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    })
}
