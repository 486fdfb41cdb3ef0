//! The one error type every service returns. Codecs turn it into the protocol's
//! AWS error shape (XML `<Error>`, JSON `__type`, query `<ErrorResponse>`).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    /// The AWS error code, e.g. `NoSuchKey`, `ValidationException`.
    pub code: String,
    pub message: String,
    /// HTTP status of the response.
    pub status: u16,
    /// Whether the fault is the caller's (`Sender`) or ours (`Receiver`); query protocol reports it.
    pub sender_fault: bool,
    /// Extra fields some errors carry (S3 `<Key>`, `<BucketName>`, ...), serialized in order.
    pub extra: Vec<(String, String)>,
    /// Response headers the error carries (S3's `x-amz-delete-marker`, ...).
    pub headers: Vec<(String, String)>,
    /// Structured fields of JSON-protocol errors (DynamoDB's `CancellationReasons`,
    /// the `Item` of a failed condition), serialized after `extra`.
    /// (Boxed: most errors have none, and every `AwsResult` carries this type.)
    pub json_fields: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl AwsError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError {
            code: code.into(),
            message: message.into(),
            status,
            sender_fault: status < 500,
            extra: Vec::new(),
            headers: Vec::new(),
            json_fields: None,
        }
    }

    /// Adds a field that the error carries besides code and message.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Adds a structured field (JSON protocols only).
    pub fn with_json(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.json_fields
            .get_or_insert_with(Default::default)
            .insert(name.into(), value);
        self
    }

    /// Adds a response header to the error.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AwsError::new(500, "InternalError", message)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

pub type AwsResult<T> = Result<T, AwsError>;
