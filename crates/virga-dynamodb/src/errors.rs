//! DynamoDB's error codes, with the messages AWS sends.

use virga_core::AwsError;
use virga_dynamodb_expr::ExprError;

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message)
}

pub fn expr(e: ExprError) -> AwsError {
    validation(e.message)
}

/// ResourceNotFoundException for a table that does not exist (data plane).
pub fn no_table() -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        "Requested resource not found",
    )
}

/// What the control plane (DescribeTable, DeleteTable, ...) answers for a missing table.
pub fn no_table_named(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Requested resource not found: Table: {name} not found"),
    )
}

pub fn in_use(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceInUseException", message)
}

pub fn condition_failed() -> AwsError {
    AwsError::new(
        400,
        "ConditionalCheckFailedException",
        "The conditional request failed",
    )
}
