//! The rest-xml protocol (S3): request payloads and bodies parsed from XML by shape,
//! outputs written to XML by shape, errors as `<Error><Code>..</Code>..</Error>`.

use crate::model::{Member, Model, Shape, ShapeKind};
use crate::rest::{self, RestRequest};
use crate::time_fmt;
use crate::xml::{self, Element};
use base64::Engine;
use serde_json::{Map, Value};
use virga_core::AwsError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn malformed(_detail: &str) -> AwsError {
    AwsError::new(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// Parses a request into the operation's input. `body` is the whole body, or `None`
/// when the input's payload is a stream the handler reads itself.
pub fn parse_input(
    model: &Model,
    input_shape: &str,
    req: &RestRequest,
    labels: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<Map<String, Value>, AwsError> {
    let Some(input) = model.shape(input_shape) else {
        return Ok(Map::new());
    };
    let mut out = rest::bind_http_input(model, input, req, labels)?;
    let body = body.unwrap_or(&[]);
    if let Some(payload) = &input.payload {
        if let Some(m) = input.members.get(payload) {
            if let Some(ps) = model.shape(&m.shape) {
                match ps.kind {
                    ShapeKind::Structure if !body.iter().all(|b| b.is_ascii_whitespace()) => {
                        let root = xml::parse(body).map_err(|e| malformed(&e))?;
                        if let Some(expected) = &m.location_name {
                            if root.name != *expected {
                                return Err(malformed(&format!(
                                    "expected <{expected}>, found <{}>",
                                    root.name
                                )));
                            }
                        }
                        out.insert(payload.clone(), element_value(model, ps, &root)?);
                    }
                    ShapeKind::Blob if !ps.streaming && !body.is_empty() => {
                        out.insert(payload.clone(), Value::String(B64.encode(body)));
                    }
                    ShapeKind::String if !body.is_empty() => {
                        out.insert(
                            payload.clone(),
                            Value::String(String::from_utf8_lossy(body).into_owned()),
                        );
                    }
                    _ => {}
                }
            }
        }
    } else if input.members.iter().any(|(_, m)| m.location.is_none())
        && !body.iter().all(|b| b.is_ascii_whitespace())
    {
        let root = xml::parse(body).map_err(|e| malformed(&e))?;
        if let Value::Object(members) = element_value(model, input, &root)? {
            for (k, v) in members {
                out.insert(k, v);
            }
        }
    }
    for r in &input.required {
        if !out.contains_key(r) {
            let m = input.members.get(r);
            let is_payload = input.payload.as_deref() == Some(r.as_str());
            let streaming = m
                .and_then(|m| model.shape(&m.shape))
                .is_some_and(|s| s.streaming);
            if streaming {
                continue;
            }
            if is_payload {
                return Err(AwsError::new(
                    400,
                    "MissingRequestBodyError",
                    "Request Body is empty",
                ));
            }
            let wire = m.map(|m| m.wire_name(r)).unwrap_or(r);
            return Err(AwsError::new(
                400,
                "InvalidRequest",
                format!("Missing required parameter: {wire}"),
            ));
        }
    }
    Ok(out)
}

fn scalar(shape: &Shape, text: &str, name: &str) -> Result<Value, AwsError> {
    shape
        .parse_text(text)
        .map_err(|what| malformed(&format!("'{}' is not {what} ({name})", text.trim())))
}

/// Reads an element as a value of `shape`.
pub fn element_value(model: &Model, shape: &Shape, el: &Element) -> Result<Value, AwsError> {
    match shape.kind {
        ShapeKind::Structure | ShapeKind::Union => {
            let mut obj = Map::new();
            for (name, m) in shape.members.iter() {
                let Some(ms) = model.shape(&m.shape) else {
                    continue;
                };
                let wire = m.wire_name(name);
                if m.xml_attribute {
                    if let Some(v) = el.attr(wire) {
                        obj.insert(name.clone(), scalar(ms, v, name)?);
                    }
                    continue;
                }
                let flattened = m.flattened || ms.flattened;
                if ms.kind == ShapeKind::List && flattened {
                    let item_name = ms
                        .member
                        .as_ref()
                        .and_then(|x| x.location_name.as_deref())
                        .unwrap_or(wire);
                    let Some(item_shape) = ms.member.as_ref().and_then(|x| model.shape(&x.shape))
                    else {
                        continue;
                    };
                    let items = el
                        .children_named(item_name)
                        .map(|c| element_value(model, item_shape, c))
                        .collect::<Result<Vec<_>, _>>()?;
                    if !items.is_empty() {
                        obj.insert(name.clone(), Value::Array(items));
                    }
                } else if ms.kind == ShapeKind::Map && flattened {
                    let entries: Vec<&Element> = el.children_named(wire).collect();
                    if !entries.is_empty() {
                        obj.insert(name.clone(), map_entries(model, ms, &entries)?);
                    }
                } else if let Some(c) = el.child(wire) {
                    obj.insert(name.clone(), element_value(model, ms, c)?);
                }
            }
            Ok(Value::Object(obj))
        }
        ShapeKind::List => {
            let Some(item_shape) = shape.member.as_ref().and_then(|x| model.shape(&x.shape)) else {
                return Ok(Value::Array(vec![]));
            };
            let items = el
                .children
                .iter()
                .map(|c| element_value(model, item_shape, c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Array(items))
        }
        ShapeKind::Map => {
            let entries: Vec<&Element> = el.children.iter().collect();
            map_entries(model, shape, &entries)
        }
        _ => scalar(shape, &el.text, &el.name),
    }
}

fn map_entries(model: &Model, shape: &Shape, entries: &[&Element]) -> Result<Value, AwsError> {
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
    let value_shape = shape.value.as_ref().and_then(|v| model.shape(&v.shape));
    let mut obj = Map::new();
    for e in entries {
        let k = e
            .child(key_name)
            .map(|k| k.text.clone())
            .unwrap_or_default();
        let v = match (e.child(value_name), value_shape) {
            (Some(v), Some(vs)) => element_value(model, vs, v)?,
            _ => Value::Null,
        };
        obj.insert(k, v);
    }
    Ok(Value::Object(obj))
}

/// The serialized response of an operation.
#[derive(Debug, Default)]
pub struct HttpOutput {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The payload is a stream the handler supplies (GetObject's body).
    pub streaming_payload: bool,
}

/// Writes an output. `root_name` names the document element when the output shape
/// has body members (the botocore model does not carry it; Smithy's `@xmlName` does);
/// `namespace` is the service's XML namespace.
pub fn serialize_output(
    model: &Model,
    output_shape: Option<&str>,
    value: &Map<String, Value>,
    root_name: &str,
    namespace: Option<&str>,
) -> HttpOutput {
    let mut out = HttpOutput {
        status: 200,
        ..Default::default()
    };
    let Some(shape) = output_shape.and_then(|s| model.shape(s)) else {
        return out;
    };
    rest::bind_http_output(model, shape, value, &mut out.headers, &mut out.status);
    let mut doc = String::new();
    if let Some(payload) = &shape.payload {
        let Some(m) = shape.members.get(payload) else {
            return out;
        };
        let Some(ps) = model.shape(&m.shape) else {
            return out;
        };
        match ps.kind {
            ShapeKind::Structure => {
                if let Some(v) = value.get(payload) {
                    doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                    let name = m.location_name.as_deref().unwrap_or(root_name);
                    write_value(&mut doc, model, name, ps, Some(m), v, namespace);
                }
            }
            ShapeKind::Blob if ps.streaming => out.streaming_payload = true,
            ShapeKind::Blob => {
                if let Some(Value::String(s)) = value.get(payload) {
                    out.body = B64.decode(s).unwrap_or_default();
                }
            }
            _ => {
                if let Some(Value::String(s)) = value.get(payload) {
                    out.body = s.clone().into_bytes();
                }
            }
        }
    } else if shape.members.iter().any(|(_, m)| m.location.is_none()) {
        doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        write_value(
            &mut doc,
            model,
            root_name,
            shape,
            None,
            &Value::Object(value.clone()),
            namespace,
        );
    }
    if !doc.is_empty() {
        out.body = doc.into_bytes();
    }
    out
}

pub(crate) fn write_value(
    out: &mut String,
    model: &Model,
    name: &str,
    shape: &Shape,
    member: Option<&Member>,
    v: &Value,
    namespace: Option<&str>,
) {
    match (shape.kind, v) {
        (_, Value::Null) => {}
        (ShapeKind::Structure | ShapeKind::Union, Value::Object(obj)) => {
            out.push('<');
            out.push_str(name);
            if let Some(ns) = namespace {
                out.push_str(" xmlns=\"");
                xml::escape(ns, out);
                out.push('"');
            }
            // Attributes (e.g. Grantee's xsi:type) belong in the start tag.
            for (mname, m) in shape.members.iter() {
                if !m.xml_attribute {
                    continue;
                }
                if let Some(Value::String(s)) = obj.get(mname) {
                    let wire = m.wire_name(mname);
                    if let (Some(ns), Some((prefix, _))) = (&m.xml_namespace, wire.split_once(':'))
                    {
                        out.push_str(&format!(" xmlns:{prefix}=\"{}\"", ns.uri()));
                    }
                    out.push(' ');
                    out.push_str(wire);
                    out.push_str("=\"");
                    xml::escape(s, out);
                    out.push('"');
                }
            }
            out.push('>');
            for (mname, m) in shape.members.iter() {
                if m.xml_attribute || m.location.is_some() {
                    continue;
                }
                let (Some(mv), Some(ms)) = (obj.get(mname), model.shape(&m.shape)) else {
                    continue;
                };
                write_value(out, model, m.wire_name(mname), ms, Some(m), mv, None);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        (ShapeKind::List, Value::Array(items)) => {
            let Some(item_ref) = shape.member.as_ref() else {
                return;
            };
            let Some(item_shape) = model.shape(&item_ref.shape) else {
                return;
            };
            let flattened = shape.flattened || member.is_some_and(|m| m.flattened);
            if flattened {
                let item_name = item_ref.location_name.as_deref().unwrap_or(name);
                for it in items {
                    write_value(out, model, item_name, item_shape, Some(item_ref), it, None);
                }
            } else {
                let item_name = item_ref.location_name.as_deref().unwrap_or("member");
                out.push('<');
                out.push_str(name);
                out.push('>');
                for it in items {
                    write_value(out, model, item_name, item_shape, Some(item_ref), it, None);
                }
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
        (ShapeKind::Map, Value::Object(obj)) => {
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
                return;
            };
            let flattened = shape.flattened || member.is_some_and(|m| m.flattened);
            if !flattened {
                out.push('<');
                out.push_str(name);
                out.push('>');
            }
            for (k, val) in obj {
                out.push_str(if flattened { "<" } else { "<entry" });
                if flattened {
                    out.push_str(name);
                }
                out.push('>');
                xml::leaf(out, key_name, k);
                write_value(out, model, value_name, vs, None, val, None);
                out.push_str(if flattened { "</" } else { "</entry" });
                if flattened {
                    out.push_str(name);
                }
                out.push('>');
            }
            if !flattened {
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
        (ShapeKind::Timestamp, Value::Number(n)) => {
            let fmt = member
                .and_then(|m| m.timestamp_format.as_deref())
                .or(shape.timestamp_format.as_deref())
                .unwrap_or("iso8601");
            xml::leaf(
                out,
                name,
                &time_fmt::format_timestamp(n.as_f64().unwrap_or(0.0), fmt),
            );
        }
        (_, Value::String(s)) => xml::leaf(out, name, s),
        (_, Value::Bool(b)) => xml::leaf(out, name, if *b { "true" } else { "false" }),
        (_, Value::Number(n)) => xml::leaf(out, name, &n.to_string()),
        _ => {}
    }
}

/// The S3-style error document.
pub fn error_body(err: &AwsError, request_id: &str) -> Vec<u8> {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    xml::leaf(&mut s, "Code", &err.code);
    xml::leaf(&mut s, "Message", &err.message);
    for (k, v) in &err.extra {
        xml::leaf(&mut s, k, v);
    }
    xml::leaf(&mut s, "RequestId", request_id);
    xml::leaf(&mut s, "HostId", request_id);
    s.push_str("</Error>");
    s.into_bytes()
}
