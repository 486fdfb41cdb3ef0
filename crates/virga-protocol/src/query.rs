//! The query protocol (SNS, IAM, STS, SES, and SQS's legacy form): the input is a form
//! of `Action`, `Version` and parameters flattened by shape (`Attributes.entry.1.key`,
//! `Tags.member.1.Key`, `Attribute.1.Name`), the output is XML wrapped in
//! `<ActionResponse><ActionResult>`, errors are `<ErrorResponse><Error>`.

use crate::model::{Member, Model, Shape, ShapeKind};
use crate::{rest_xml, xml};
use serde_json::{Map, Value};
use std::collections::HashMap;
use virga_core::AwsError;

/// Decodes an `application/x-www-form-urlencoded` body or query string.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The `Action` of a form, if the model has that operation.
pub fn operation<'m>(model: &'m Model, params: &[(String, String)]) -> Option<&'m str> {
    let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v)?;
    model
        .operations
        .get_key_value(action.as_str())
        .map(|(k, _)| k.as_str())
}

struct Params<'a> {
    map: HashMap<&'a str, &'a str>,
    keys: Vec<&'a str>,
}

impl Params<'_> {
    fn has_prefix(&self, p: &str) -> bool {
        self.map.contains_key(p)
            || self
                .keys
                .iter()
                .any(|k| k.len() > p.len() && k.starts_with(p) && k.as_bytes()[p.len()] == b'.')
    }
}

fn invalid(name: &str, value: &str, what: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("Value ({value}) for parameter {name} is invalid. Expected {what}."),
    )
}

fn read(
    model: &Model,
    shape: &Shape,
    member: Option<&Member>,
    prefix: &str,
    p: &Params,
) -> Result<Option<Value>, AwsError> {
    match shape.kind {
        ShapeKind::Structure | ShapeKind::Union => {
            let mut obj = Map::new();
            for (name, m) in shape.members.iter() {
                let Some(ms) = model.shape(&m.shape) else {
                    continue;
                };
                let wire = m.query_name.as_deref().unwrap_or(m.wire_name(name));
                let key = if prefix.is_empty() {
                    wire.to_string()
                } else {
                    format!("{prefix}.{wire}")
                };
                if let Some(v) = read(model, ms, Some(m), &key, p)? {
                    obj.insert(name.clone(), v);
                }
            }
            if obj.is_empty() && !prefix.is_empty() && !p.has_prefix(prefix) {
                return Ok(None);
            }
            Ok(Some(Value::Object(obj)))
        }
        ShapeKind::List => {
            let Some(item_ref) = shape.member.as_ref() else {
                return Ok(None);
            };
            let Some(item_shape) = model.shape(&item_ref.shape) else {
                return Ok(None);
            };
            let flattened = shape.flattened || member.is_some_and(|m| m.flattened);
            let list_prefix = if flattened {
                match &item_ref.location_name {
                    Some(n) => match prefix.rsplit_once('.') {
                        Some((head, _)) => format!("{head}.{n}"),
                        None => n.clone(),
                    },
                    None => prefix.to_string(),
                }
            } else {
                format!(
                    "{prefix}.{}",
                    item_ref.location_name.as_deref().unwrap_or("member")
                )
            };
            let mut items = Vec::new();
            for i in 1.. {
                let k = format!("{list_prefix}.{i}");
                if !p.has_prefix(&k) {
                    break;
                }
                if let Some(v) = read(model, item_shape, Some(item_ref), &k, p)? {
                    items.push(v);
                }
            }
            // `Name=` (present, empty) is an empty list.
            if items.is_empty() && !p.map.contains_key(prefix) {
                return Ok(None);
            }
            Ok(Some(Value::Array(items)))
        }
        ShapeKind::Map => {
            let flattened = shape.flattened || member.is_some_and(|m| m.flattened);
            let full = if flattened {
                prefix.to_string()
            } else {
                format!("{prefix}.entry")
            };
            let key_name = shape
                .key
                .as_ref()
                .and_then(|k| k.location_name.as_deref())
                .unwrap_or("key");
            let value_name = shape
                .value
                .as_ref()
                .and_then(|k| k.location_name.as_deref())
                .unwrap_or("value");
            let Some(vs) = shape.value.as_ref().and_then(|v| model.shape(&v.shape)) else {
                return Ok(None);
            };
            let mut obj = Map::new();
            for i in 1.. {
                let entry = format!("{full}.{i}");
                if !p.has_prefix(&entry) {
                    break;
                }
                let Some(k) = p.map.get(format!("{entry}.{key_name}").as_str()) else {
                    continue;
                };
                let v = read(
                    model,
                    vs,
                    shape.value.as_deref(),
                    &format!("{entry}.{value_name}"),
                    p,
                )?;
                obj.insert((*k).to_string(), v.unwrap_or(Value::Null));
            }
            if obj.is_empty() {
                return Ok(None);
            }
            Ok(Some(Value::Object(obj)))
        }
        _ => {
            let Some(raw) = p.map.get(prefix) else {
                return Ok(None);
            };
            shape
                .parse_text(raw)
                .map(Some)
                .map_err(|what| invalid(prefix, raw, what))
        }
    }
}

/// Parses a query-protocol form into the input of `operation`, checking required members.
pub fn parse_input(
    model: &Model,
    operation: &str,
    params: &[(String, String)],
) -> Result<Map<String, Value>, AwsError> {
    let Some(shape) = model
        .operation(operation)
        .and_then(|op| op.input.as_ref())
        .and_then(|i| model.shape(&i.shape))
    else {
        return Ok(Map::new());
    };
    let p = Params {
        map: params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        keys: params.iter().map(|(k, _)| k.as_str()).collect(),
    };
    let v = read(model, shape, None, "", &p)?.unwrap_or(Value::Object(Map::new()));
    if let Value::Object(obj) = &v {
        for r in &shape.required {
            if obj.get(r).is_none_or(|x| x.is_null()) {
                return Err(AwsError::new(
                    400,
                    "MissingParameter",
                    format!("The request must contain the parameter {r}"),
                ));
            }
        }
    }
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// `<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>…` for `operation`.
pub fn serialize_output(
    model: &Model,
    operation: &str,
    value: &Map<String, Value>,
    request_id: &str,
) -> Vec<u8> {
    let ns = model.metadata.xml_namespace.as_deref().unwrap_or("");
    let mut out = String::from("<?xml version=\"1.0\"?>\n");
    out.push_str(&format!("<{operation}Response xmlns=\"{ns}\">"));
    let op = model.operation(operation);
    let shape = op
        .and_then(|o| o.output.as_ref())
        .and_then(|o| model.shape(&o.shape));
    let wrapper = op
        .and_then(|o| o.output.as_ref())
        .and_then(|o| o.result_wrapper.clone())
        .unwrap_or_else(|| format!("{operation}Result"));
    if let Some(shape) = shape {
        let mut inner = String::new();
        rest_xml::write_value(
            &mut inner,
            model,
            &wrapper,
            shape,
            None,
            &Value::Object(value.clone()),
            None,
        );
        out.push_str(&inner);
    }
    out.push_str("<ResponseMetadata>");
    xml::leaf(&mut out, "RequestId", request_id);
    out.push_str("</ResponseMetadata>");
    out.push_str(&format!("</{operation}Response>"));
    out.into_bytes()
}

/// `<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error>…`.
pub fn error_body(model: Option<&Model>, err: &AwsError, request_id: &str) -> Vec<u8> {
    let ns = model
        .and_then(|m| m.metadata.xml_namespace.as_deref())
        .unwrap_or("");
    let mut s = format!("<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{ns}\"><Error>");
    xml::leaf(
        &mut s,
        "Type",
        if err.sender_fault {
            "Sender"
        } else {
            "Receiver"
        },
    );
    xml::leaf(&mut s, "Code", &err.code);
    xml::leaf(&mut s, "Message", &err.message);
    for (k, v) in &err.extra {
        xml::leaf(&mut s, k, v);
    }
    s.push_str("</Error>");
    xml::leaf(&mut s, "RequestId", request_id);
    s.push_str("</ErrorResponse>");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sns() -> Model {
        Model::parse(include_str!("../../../models/sns.json")).unwrap()
    }

    #[test]
    fn parses_maps_lists_and_scalars() {
        let m = sns();
        let form = parse_form(b"Action=CreateTopic&Version=2010-03-31&Name=t1&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Attributes.entry.2.key=DisplayName&Attributes.entry.2.value=hi%20there&Tags.member.1.Key=env&Tags.member.1.Value=dev");
        assert_eq!(operation(&m, &form), Some("CreateTopic"));
        let input = parse_input(&m, "CreateTopic", &form).unwrap();
        assert_eq!(input["Name"], "t1");
        assert_eq!(input["Attributes"]["FifoTopic"], "true");
        assert_eq!(input["Attributes"]["DisplayName"], "hi there");
        assert_eq!(input["Tags"][0]["Key"], "env");
        let e = parse_input(&m, "CreateTopic", &parse_form(b"Action=CreateTopic")).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
    }

    #[test]
    fn parses_flattened_forms() {
        // The legacy SQS query shapes: flattened map and list with their own names.
        let m = Model::parse(
            r#"{"metadata":{"protocol":"query","endpointPrefix":"sqs"},
            "operations":{"CreateQueue":{"name":"CreateQueue","input":{"shape":"Req"}}},
            "shapes":{
              "S":{"type":"string"},"I":{"type":"integer"},
              "Req":{"type":"structure","required":["QueueName"],"members":{
                "QueueName":{"shape":"S"},
                "Attributes":{"shape":"Attrs","locationName":"Attribute"},
                "Ids":{"shape":"IdList"},
                "Entries":{"shape":"Entries"}}},
              "Attrs":{"type":"map","key":{"shape":"S","locationName":"Name"},"value":{"shape":"S","locationName":"Value"},"flattened":true},
              "IdList":{"type":"list","member":{"shape":"S","locationName":"Id"},"flattened":true},
              "Entries":{"type":"list","member":{"shape":"Entry","locationName":"Entry"},"flattened":true},
              "Entry":{"type":"structure","members":{"Id":{"shape":"S"},"Delay":{"shape":"I"}}}
            }}"#,
        )
        .unwrap();
        let form = parse_form(b"Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5&Attribute.2.Name=X&Attribute.2.Value=y&Id.1=a&Id.2=b&Entry.1.Id=e1&Entry.1.Delay=3");
        let input = parse_input(&m, "CreateQueue", &form).unwrap();
        assert_eq!(input["QueueName"], "q");
        assert_eq!(input["Attributes"]["DelaySeconds"], "5");
        assert_eq!(input["Attributes"]["X"], "y");
        assert_eq!(input["Ids"], serde_json::json!(["a", "b"]));
        assert_eq!(input["Entries"][0]["Delay"], 3);
        let e = parse_input(
            &m,
            "CreateQueue",
            &parse_form(b"Action=CreateQueue&QueueName=q&Entry.1.Delay=x"),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn serializes_wrapped_results_and_errors() {
        let m = sns();
        let mut v = Map::new();
        v.insert(
            "TopicArn".into(),
            Value::String("arn:aws:sns:us-east-1:000000000000:t".into()),
        );
        let body = String::from_utf8(serialize_output(&m, "CreateTopic", &v, "rid")).unwrap();
        assert!(body.contains("<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:000000000000:t</TopicArn></CreateTopicResult><ResponseMetadata><RequestId>rid</RequestId>"), "{body}");
        let mut v = Map::new();
        v.insert("Attributes".into(), serde_json::json!({"A": "1"}));
        let body =
            String::from_utf8(serialize_output(&m, "GetTopicAttributes", &v, "rid")).unwrap();
        assert!(
            body.contains("<Attributes><entry><key>A</key><value>1</value></entry></Attributes>"),
            "{body}"
        );
        let e = String::from_utf8(error_body(
            Some(&m),
            &AwsError::new(404, "NotFound", "Topic does not exist"),
            "r",
        ))
        .unwrap();
        assert!(e.contains("<Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error><RequestId>r</RequestId>"), "{e}");
    }
}
