//! The rest-json protocol (Lambda, API Gateway, SES v2): REST routing and HTTP binding
//! shared with rest-xml, JSON documents for bodies, errors as JSON with
//! `x-amzn-ErrorType`.

use crate::json;
use crate::model::{Model, ShapeKind};
use crate::rest::{self, RestRequest};
use base64::Engine;
use serde_json::{Map, Value};
use virga_core::AwsError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Parses a request into `operation`'s input (labels from the router).
pub fn parse_input(
    model: &Model,
    operation: &str,
    req: &RestRequest,
    labels: &[(String, String)],
    body: &[u8],
) -> Result<Map<String, Value>, AwsError> {
    let Some(shape) = model
        .operation(operation)
        .and_then(|op| op.input.as_ref())
        .and_then(|i| model.shape(&i.shape))
    else {
        return Ok(Map::new());
    };
    let mut out = rest::bind_http_input(model, shape, req, labels)?;
    let blank = body.iter().all(|b| b.is_ascii_whitespace());
    match shape
        .payload
        .as_ref()
        .and_then(|p| shape.members.get(p).map(|m| (p, m)))
    {
        Some((name, m)) => {
            if let Some(ps) = model.shape(&m.shape) {
                match ps.kind {
                    ShapeKind::Blob if !body.is_empty() => {
                        out.insert(name.clone(), Value::String(B64.encode(body)));
                    }
                    ShapeKind::String if !body.is_empty() => {
                        out.insert(
                            name.clone(),
                            Value::String(String::from_utf8_lossy(body).into_owned()),
                        );
                    }
                    ShapeKind::Structure | ShapeKind::Document | ShapeKind::Map if !blank => {
                        let v: Value = serde_json::from_slice(body).map_err(|e| {
                            AwsError::new(
                                400,
                                "SerializationException",
                                format!("The request body is not valid JSON: {e}"),
                            )
                        })?;
                        out.insert(name.clone(), json::coerce(model, ps, &v, name)?);
                    }
                    _ => {}
                }
            }
        }
        None if !blank => {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                AwsError::new(
                    400,
                    "SerializationException",
                    format!("The request body is not valid JSON: {e}"),
                )
            })?;
            if let Value::Object(members) = json::coerce(model, shape, &v, "")? {
                for (k, v) in members {
                    // Bound members come from the HTTP binding, not the body.
                    if shape.members.get(&k).is_some_and(|m| m.location.is_none()) {
                        out.insert(k, v);
                    }
                }
            }
        }
        None => {}
    }
    crate::validate::validate_input(model, shape, &Value::Object(out.clone()))?;
    Ok(out)
}

/// Status, headers and body of `operation`'s output.
pub fn serialize_output(
    model: &Model,
    operation: &str,
    value: &Map<String, Value>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let op = model.operation(operation);
    let mut status = op.and_then(|o| o.http.response_code).unwrap_or(200);
    let mut headers = Vec::new();
    let Some(shape) = op
        .and_then(|o| o.output.as_ref())
        .and_then(|o| model.shape(&o.shape))
    else {
        return (status, headers, Vec::new());
    };
    rest::bind_http_output(model, shape, value, &mut headers, &mut status);
    let body = match shape
        .payload
        .as_ref()
        .and_then(|p| shape.members.get(p).map(|m| (p, m)))
    {
        Some((name, m)) => match (model.shape(&m.shape).map(|s| s.kind), value.get(name)) {
            (Some(ShapeKind::Blob), Some(Value::String(s))) => B64.decode(s).unwrap_or_default(),
            (Some(ShapeKind::String), Some(Value::String(s))) => s.clone().into_bytes(),
            (Some(_), Some(v)) => match model.shape(&m.shape) {
                Some(ps) => serde_json::to_vec(&json::to_wire(model, ps, v)).unwrap_or_default(),
                None => Vec::new(),
            },
            _ => Vec::new(),
        },
        None => serde_json::to_vec(&json::to_wire(model, shape, &Value::Object(value.clone())))
            .unwrap_or_default(),
    };
    (status, headers, body)
}

/// The error document and its `x-amzn-ErrorType` header value.
pub fn error_body(err: &AwsError) -> (String, Vec<u8>) {
    let mut m = Map::new();
    m.insert(
        "Type".into(),
        Value::String(if err.sender_fault { "User" } else { "Service" }.into()),
    );
    m.insert("message".into(), Value::String(err.message.clone()));
    for (k, v) in &err.extra {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    (
        err.code.clone(),
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RestRouter;
    use http::HeaderMap;

    fn lambda() -> Model {
        Model::parse(include_str!("../../../models/lambda.json")).unwrap()
    }

    #[test]
    fn routes_binds_and_parses() {
        let m = lambda();
        let r = RestRouter::new(&m);
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-invocation-type", "Event".parse().unwrap());
        let query = vec![("Qualifier".to_string(), "live".to_string())];
        let req = RestRequest {
            method: "POST",
            raw_path: "/2015-03-31/functions/my-fn/invocations",
            query: &query,
            headers: &headers,
        };
        let routed = r.route(&req).unwrap();
        assert_eq!(routed.operation, "Invoke");
        let input = parse_input(&m, "Invoke", &req, &routed.labels, br#"{"a":1}"#).unwrap();
        assert_eq!(input["FunctionName"], "my-fn");
        assert_eq!(input["InvocationType"], "Event");
        assert_eq!(input["Qualifier"], "live");
        assert_eq!(
            B64.decode(input["Payload"].as_str().unwrap()).unwrap(),
            br#"{"a":1}"#
        );
    }

    #[test]
    fn body_members_and_validation() {
        let m = lambda();
        let r = RestRouter::new(&m);
        let headers = HeaderMap::new();
        let req = RestRequest {
            method: "POST",
            raw_path: "/2015-03-31/functions",
            query: &[],
            headers: &headers,
        };
        let routed = r.route(&req).unwrap();
        assert_eq!(routed.operation, "CreateFunction");
        let e = parse_input(
            &m,
            "CreateFunction",
            &req,
            &routed.labels,
            br#"{"FunctionName":"f","Code":{}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("'role'"), "{}", e.message);
        let input = parse_input(&m, "CreateFunction", &req, &routed.labels, br#"{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r","Code":{"ZipFile":"UEsFBg=="},"Timeout":3}"#).unwrap();
        assert_eq!(input["Timeout"], 3);
        let (status, _, body) = serialize_output(
            &m,
            "CreateFunction",
            &serde_json::json!({"FunctionName": "f", "Timeout": 3})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(status, 201);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["FunctionName"], "f");
    }
}
