//! A Rust function for `provided.al2023`, built on the official `lambda_runtime`
//! crate: it answers `{"hello": <name>, "function": <function name>}` and fails with
//! a handled error when the event asks it to.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if payload.get("fail").and_then(Value::as_bool) == Some(true) {
        return Err("asked to fail".into());
    }
    println!("rust function got {payload}");
    Ok(json!({
        "hello": payload.get("name").cloned().unwrap_or(Value::Null),
        "function": context.env_config.function_name,
        "request_id": context.request_id,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
