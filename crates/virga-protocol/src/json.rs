//! The JSON protocols (awsJson 1.0 and 1.1: DynamoDB, SQS, Logs, EventBridge, ...) and
//! the JSON document parts of rest-json: the operation comes from `X-Amz-Target`, the
//! body is the input structure; outputs are written by shape and errors carry `__type`.

use crate::model::{Model, Shape, ShapeKind};
use crate::time_fmt;
use base64::Engine;
use serde_json::{Map, Value};
use virga_core::AwsError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The operation an `X-Amz-Target` names (`DynamoDB_20120810.PutItem`), if the model has it.
pub fn operation_from_target<'m>(model: &'m Model, target: &str) -> Option<&'m str> {
    let (prefix, op) = target.rsplit_once('.')?;
    if model.metadata.target_prefix.as_deref() != Some(prefix) {
        return None;
    }
    model.operations.get_key_value(op).map(|(k, _)| k.as_str())
}

pub fn content_type(model: &Model) -> String {
    format!(
        "application/x-amz-json-{}",
        model.metadata.json_version.as_deref().unwrap_or("1.0")
    )
}

fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "SerializationException", message)
}

/// Checks a JSON value against `shape` and normalizes it: timestamps become epoch
/// seconds, unknown members are dropped; a value of the wrong type is an error.
pub fn coerce(model: &Model, shape: &Shape, v: &Value, path: &str) -> Result<Value, AwsError> {
    let wrong = |expected: &str| {
        serialization(format!(
            "Unexpected value at '{}': expected {expected}, found {}",
            if path.is_empty() { "<root>" } else { path },
            match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            }
        ))
    };
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match shape.kind {
        ShapeKind::Structure | ShapeKind::Union => {
            let Value::Object(obj) = v else {
                return Err(wrong("an object"));
            };
            let mut out = Map::new();
            for (name, m) in shape.members.iter() {
                let key = m.wire_name(name);
                if let (Some(val), Some(ms)) = (obj.get(key), model.shape(&m.shape)) {
                    let p = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    out.insert(name.clone(), coerce(model, ms, val, &p)?);
                }
            }
            Value::Object(out)
        }
        ShapeKind::List => {
            let Value::Array(items) = v else {
                return Err(wrong("a list"));
            };
            let Some(ms) = shape.member.as_ref().and_then(|m| model.shape(&m.shape)) else {
                return Ok(v.clone());
            };
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| coerce(model, ms, it, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        ShapeKind::Map => {
            let Value::Object(obj) = v else {
                return Err(wrong("an object"));
            };
            let Some(vs) = shape.value.as_ref().and_then(|m| model.shape(&m.shape)) else {
                return Ok(v.clone());
            };
            let mut out = Map::new();
            for (k, val) in obj {
                out.insert(k.clone(), coerce(model, vs, val, &format!("{path}.{k}"))?);
            }
            Value::Object(out)
        }
        ShapeKind::String => match v {
            Value::String(_) => v.clone(),
            _ => return Err(wrong("a string")),
        },
        ShapeKind::Integer | ShapeKind::Long | ShapeKind::Short | ShapeKind::Byte => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
            _ => return Err(wrong("an integer")),
        },
        ShapeKind::Float | ShapeKind::Double | ShapeKind::Bigdecimal | ShapeKind::Biginteger => {
            match v {
                Value::Number(_) => v.clone(),
                _ => return Err(wrong("a number")),
            }
        }
        ShapeKind::Boolean => match v {
            Value::Bool(_) => v.clone(),
            _ => return Err(wrong("a boolean")),
        },
        ShapeKind::Timestamp => match v {
            Value::Number(_) => v.clone(),
            Value::String(s) => time_fmt::parse_timestamp(s)
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| wrong("a timestamp"))?,
            _ => return Err(wrong("a timestamp")),
        },
        ShapeKind::Blob => match v {
            Value::String(s) => {
                if B64.decode(s).is_err() {
                    return Err(serialization(format!(
                        "Base64 encoded length is expected a multiple of 4 bytes but found: {} at '{path}'",
                        s.len()
                    )));
                }
                v.clone()
            }
            _ => return Err(wrong("a base64 string")),
        },
        ShapeKind::Document => v.clone(),
    })
}

/// Parses and validates a JSON request body as the input of `operation`.
pub fn parse_input(
    model: &Model,
    operation: &str,
    body: &[u8],
) -> Result<Map<String, Value>, AwsError> {
    parse_input_with(model, operation, body, true)
}

/// [`parse_input`], optionally without the model's constraint checks (for services
/// whose own errors for bad values differ from `ValidationException`, like SQS).
pub fn parse_input_with(
    model: &Model,
    operation: &str,
    body: &[u8],
    check_constraints: bool,
) -> Result<Map<String, Value>, AwsError> {
    let op = model.operation(operation).ok_or_else(|| {
        AwsError::new(
            400,
            "UnknownOperationException",
            format!("Unknown operation {operation}"),
        )
    })?;
    let v: Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| serialization(format!("The request body is not valid JSON: {e}")))?
    };
    let Some(shape) = op.input.as_ref().and_then(|i| model.shape(&i.shape)) else {
        return Ok(Map::new());
    };
    let v = coerce(model, shape, &v, "")?;
    if check_constraints {
        crate::validate::validate_input(model, shape, &v)?;
    }
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// Writes a value of `shape` for the wire: timestamps as epoch seconds, nulls dropped,
/// members not in the shape dropped.
pub fn to_wire(model: &Model, shape: &Shape, v: &Value) -> Value {
    match (shape.kind, v) {
        (ShapeKind::Structure | ShapeKind::Union, Value::Object(obj)) => {
            let mut out = Map::new();
            for (name, m) in shape.members.iter() {
                if m.location.is_some() {
                    continue;
                }
                if let (Some(val), Some(ms)) = (obj.get(name), model.shape(&m.shape)) {
                    if !val.is_null() {
                        out.insert(m.wire_name(name).to_string(), to_wire(model, ms, val));
                    }
                }
            }
            Value::Object(out)
        }
        (ShapeKind::List, Value::Array(items)) => {
            match shape.member.as_ref().and_then(|m| model.shape(&m.shape)) {
                Some(ms) => Value::Array(items.iter().map(|i| to_wire(model, ms, i)).collect()),
                None => v.clone(),
            }
        }
        (ShapeKind::Map, Value::Object(obj)) => {
            match shape.value.as_ref().and_then(|m| model.shape(&m.shape)) {
                Some(vs) => Value::Object(
                    obj.iter()
                        .map(|(k, x)| (k.clone(), to_wire(model, vs, x)))
                        .collect(),
                ),
                None => v.clone(),
            }
        }
        (ShapeKind::Timestamp, Value::String(s)) => time_fmt::parse_timestamp(s)
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        _ => v.clone(),
    }
}

/// The JSON body of `operation`'s output.
pub fn serialize_output(model: &Model, operation: &str, value: &Map<String, Value>) -> Vec<u8> {
    let shape = model
        .operation(operation)
        .and_then(|op| op.output.as_ref())
        .and_then(|o| model.shape(&o.shape));
    let v = match shape {
        Some(s) => to_wire(model, s, &Value::Object(value.clone())),
        None => Value::Object(Map::new()),
    };
    serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec())
}

/// The JSON error document: `{"__type": "Code", "message": "..."}`.
pub fn error_body(err: &AwsError) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("__type".into(), Value::String(err.code.clone()));
    m.insert("message".into(), Value::String(err.message.clone()));
    for (k, v) in &err.extra {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    for (k, v) in err.json_fields.iter().flat_map(|f| f.iter()) {
        m.insert(k.clone(), v.clone());
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqs() -> Model {
        Model::parse(include_str!("../../../models/sqs.json")).unwrap()
    }

    fn ddb() -> Model {
        Model::parse(include_str!("../../../models/dynamodb.json")).unwrap()
    }

    #[test]
    fn target_names_operation() {
        let m = sqs();
        assert_eq!(
            operation_from_target(&m, "AmazonSQS.SendMessage"),
            Some("SendMessage")
        );
        assert_eq!(operation_from_target(&m, "AmazonSQS.Nope"), None);
        assert_eq!(operation_from_target(&m, "DynamoDB_20120810.PutItem"), None);
        assert_eq!(content_type(&m), "application/x-amz-json-1.0");
    }

    #[test]
    fn parses_and_validates() {
        let m = sqs();
        let input = parse_input(
            &m,
            "SendMessage",
            br#"{"QueueUrl":"u","MessageBody":"b","DelaySeconds":3,"Extra":1}"#,
        )
        .unwrap();
        assert_eq!(input["DelaySeconds"], 3);
        assert!(!input.contains_key("Extra"));
        let e = parse_input(&m, "SendMessage", br#"{"QueueUrl":"u"}"#).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(
            e.message
                .starts_with("1 validation error detected: Value null at 'messageBody'"),
            "{}",
            e.message
        );
        let e = parse_input(&m, "SendMessage", br#"{"QueueUrl":"u","MessageBody":5}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = parse_input(&m, "SendMessage", b"{not json").unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn constraint_messages() {
        let m = ddb();
        let e =
            parse_input(&m, "Scan", br#"{"TableName":"","Limit":0,"Select":"SOME"}"#).unwrap_err();
        assert!(
            e.message.starts_with("3 validation errors detected: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{}", e.message);
        assert!(e.message.contains("Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"), "{}", e.message);
        assert!(e.message.contains("Member must satisfy enum value set: [ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES, SPECIFIC_ATTRIBUTES, COUNT]"), "{}", e.message);
    }

    #[test]
    fn serializes_by_shape() {
        let m = ddb();
        let mut v = Map::new();
        v.insert(
            "TableDescription".into(),
            serde_json::json!({"TableName": "t", "CreationDateTime": 1700000000.5, "NotAMember": 1}),
        );
        let out: Value = serde_json::from_slice(&serialize_output(&m, "CreateTable", &v)).unwrap();
        assert_eq!(out["TableDescription"]["TableName"], "t");
        assert_eq!(out["TableDescription"]["CreationDateTime"], 1700000000.5);
        assert!(out["TableDescription"].get("NotAMember").is_none());
        let body: Value = serde_json::from_slice(&error_body(&AwsError::new(
            400,
            "ResourceNotFoundException",
            "nope",
        )))
        .unwrap();
        assert_eq!(body["__type"], "ResourceNotFoundException");
    }
}
