//! The REST protocols (rest-xml, rest-json): routing a request to an operation by its
//! HTTP binding (method, URI pattern, literal query keys, required headers) and binding
//! URI labels, query parameters and headers to input members, and output members back
//! to headers and status.

use crate::model::{Location, Member, Model, Shape, ShapeKind};
use crate::time_fmt;
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use virga_core::AwsError;

/// The decoded `(key, value)` pairs of a query string, in order (`+` is a space).
pub fn form_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// One request as the REST codecs see it.
pub struct RestRequest<'a> {
    pub method: &'a str,
    /// Path as received (percent-encoded), without the query.
    pub raw_path: &'a str,
    /// Decoded query parameters in order.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Label(String),
    Greedy(String),
}

#[derive(Debug)]
struct Route {
    operation: String,
    method: String,
    segments: Vec<Segment>,
    /// Query keys the URI pattern names (`?uploads`, `?list-type=2`).
    literals: Vec<(String, Option<String>)>,
    required_query: Vec<String>,
    required_headers: Vec<String>,
    deprecated: bool,
}

/// Operations of one REST service, compiled from its model for matching.
#[derive(Debug)]
pub struct RestRouter {
    routes: Vec<Route>,
}

/// The operation a request is for, with its URI labels (decoded).
#[derive(Debug)]
pub struct Routed<'m> {
    pub operation: &'m str,
    pub labels: Vec<(String, String)>,
}

impl RestRouter {
    pub fn new(model: &Model) -> RestRouter {
        let mut routes = Vec::new();
        for (name, op) in &model.operations {
            let uri = op.http.request_uri.as_str();
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            let segments = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if let Some(l) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        match l.strip_suffix('+') {
                            Some(g) => Segment::Greedy(g.to_string()),
                            None => Segment::Label(l.to_string()),
                        }
                    } else {
                        Segment::Literal(s.to_string())
                    }
                })
                .collect();
            let literals = query
                .split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (kv.to_string(), None),
                })
                .collect();
            let mut required_query = Vec::new();
            let mut required_headers = Vec::new();
            if let Some(input) = op.input.as_ref().and_then(|i| model.shape(&i.shape)) {
                for req in &input.required {
                    if let Some(m) = input.members.get(req) {
                        match m.location {
                            Some(Location::Querystring) => {
                                required_query.push(m.wire_name(req).to_string())
                            }
                            Some(Location::Header) => {
                                required_headers.push(m.wire_name(req).to_ascii_lowercase())
                            }
                            _ => {}
                        }
                    }
                }
            }
            routes.push(Route {
                operation: name.clone(),
                method: op.http.method.clone(),
                segments,
                literals,
                required_query,
                required_headers,
                deprecated: op.deprecated,
            });
        }
        // Ties go to the first route: current operations before deprecated ones with
        // the same binding (PutBucketLifecycleConfiguration over PutBucketLifecycle),
        // then by name, whatever the HashMap order.
        routes.sort_by(|a, b| {
            a.deprecated
                .cmp(&b.deprecated)
                .then_with(|| a.operation.cmp(&b.operation))
        });
        RestRouter { routes }
    }

    /// Finds the operation whose binding fits the request best: method and path must
    /// match, literal query keys and required query/header members must be present;
    /// among those, the one that names the most of them wins (so `PUT ?partNumber&uploadId`
    /// with `x-amz-copy-source` is UploadPartCopy, not PutObject).
    pub fn route<'m>(&'m self, req: &RestRequest) -> Option<Routed<'m>> {
        type Candidate<'r> = (i32, &'r Route, Vec<(String, String)>);
        let mut best: Option<Candidate> = None;
        for r in &self.routes {
            if !r.method.eq_ignore_ascii_case(req.method) {
                continue;
            }
            let Some(labels) = match_path(&r.segments, req.raw_path) else {
                continue;
            };
            let mut score = 0;
            let mut ok = true;
            for (k, v) in &r.literals {
                match req.query.iter().find(|(qk, _)| qk == k) {
                    Some((_, qv)) if v.as_ref().is_none_or(|v| v == qv) => score += 2,
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            for q in &r.required_query {
                if req.query.iter().any(|(k, _)| k == q) {
                    score += 1;
                } else {
                    ok = false;
                }
            }
            for h in &r.required_headers {
                if req.headers.contains_key(h.as_str()) {
                    score += 1;
                } else {
                    ok = false;
                }
            }
            if !ok {
                continue;
            }
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, r, labels));
            }
        }
        best.map(|(_, r, labels)| Routed {
            operation: r.operation.as_str(),
            labels,
        })
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn match_path(segments: &[Segment], raw_path: &str) -> Option<Vec<(String, String)>> {
    let mut rest = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let mut labels = Vec::new();
    for seg in segments {
        match seg {
            Segment::Literal(l) => {
                let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
                if head != l {
                    return None;
                }
                rest = tail;
            }
            Segment::Label(name) => {
                let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
                if head.is_empty() {
                    return None;
                }
                labels.push((name.clone(), decode(head)));
                rest = tail;
            }
            Segment::Greedy(name) => {
                if rest.is_empty() {
                    return None;
                }
                labels.push((name.clone(), decode(rest)));
                rest = "";
            }
        }
    }
    // `/bucket/` addresses the bucket, like `/bucket`.
    if rest.is_empty() {
        Some(labels)
    } else {
        None
    }
}

/// Converts a string from a URI, query or header into the member's type.
pub fn scalar_from_str(
    model: &Model,
    shape: &Shape,
    s: &str,
    name: &str,
) -> Result<Value, AwsError> {
    let bad = |what: &str| {
        AwsError::new(
            400,
            "InvalidArgument",
            format!("Invalid value for {name}: '{s}' is not {what}"),
        )
    };
    Ok(match shape.kind {
        ShapeKind::List => {
            let Some(m) = shape.member.as_ref() else {
                return Ok(Value::Null);
            };
            let Some(ms) = model.shape(&m.shape) else {
                return Ok(Value::Null);
            };
            let mut items = Vec::new();
            for part in s.split(',') {
                items.push(scalar_from_str(model, ms, part.trim(), name)?);
            }
            Value::Array(items)
        }
        _ => shape.parse_text(s).map_err(bad)?,
    })
}

/// Binds URI labels, query parameters and headers to the input members; returns the
/// partial input. The body (payload or body members) is left to the protocol codec.
pub fn bind_http_input(
    model: &Model,
    input: &Shape,
    req: &RestRequest,
    labels: &[(String, String)],
) -> Result<Map<String, Value>, AwsError> {
    let mut out = Map::new();
    for (name, m) in input.members.iter() {
        let Some(loc) = m.location else { continue };
        let Some(shape) = model.shape(&m.shape) else {
            continue;
        };
        let wire = m.wire_name(name);
        match loc {
            Location::Uri => {
                if let Some((_, v)) = labels.iter().find(|(k, _)| k == wire) {
                    out.insert(name.clone(), scalar_from_str(model, shape, v, name)?);
                }
            }
            Location::Querystring => match shape.kind {
                ShapeKind::List => {
                    let mut items = Vec::new();
                    let item_shape = shape.member.as_ref().and_then(|m| model.shape(&m.shape));
                    for (_, v) in req.query.iter().filter(|(k, _)| k == wire) {
                        match item_shape {
                            Some(s) => items.push(scalar_from_str(model, s, v, name)?),
                            None => items.push(Value::String(v.clone())),
                        }
                    }
                    if !items.is_empty() {
                        out.insert(name.clone(), Value::Array(items));
                    }
                }
                ShapeKind::Map => {}
                _ => {
                    if let Some((_, v)) = req.query.iter().find(|(k, _)| k == wire) {
                        out.insert(name.clone(), scalar_from_str(model, shape, v, name)?);
                    }
                }
            },
            Location::Header => {
                let values: Vec<&str> = req
                    .headers
                    .get_all(wire)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if !values.is_empty() {
                    let joined = values.join(",");
                    out.insert(name.clone(), scalar_from_str(model, shape, &joined, name)?);
                }
            }
            Location::Headers => {
                let prefix = wire.to_ascii_lowercase();
                let mut map = Map::new();
                for (k, v) in req.headers.iter() {
                    if let Some(rest) = k.as_str().strip_prefix(&prefix) {
                        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                        map.insert(rest.to_string(), Value::String(v));
                    }
                }
                if !map.is_empty() {
                    out.insert(name.clone(), Value::Object(map));
                }
            }
            Location::StatusCode => {}
        }
    }
    Ok(out)
}

/// A value as it goes into a header.
fn header_text(shape: &Shape, member: &Member, v: &Value) -> Option<String> {
    match (shape.kind, v) {
        (_, Value::Null) => None,
        (ShapeKind::Timestamp, Value::Number(n)) => {
            let fmt = member
                .timestamp_format
                .as_deref()
                .or(shape.timestamp_format.as_deref())
                .unwrap_or("rfc822");
            Some(time_fmt::format_timestamp(n.as_f64().unwrap_or(0.0), fmt))
        }
        (_, Value::String(s)) => Some(s.clone()),
        (_, Value::Bool(b)) => Some(b.to_string()),
        (_, Value::Number(n)) => Some(n.to_string()),
        (_, Value::Array(a)) => Some(
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// Writes the output members bound to headers and the status code.
pub fn bind_http_output(
    model: &Model,
    output: &Shape,
    value: &Map<String, Value>,
    headers: &mut Vec<(String, String)>,
    status: &mut u16,
) {
    for (name, m) in output.members.iter() {
        let Some(loc) = m.location else { continue };
        let Some(v) = value.get(name) else { continue };
        let Some(shape) = model.shape(&m.shape) else {
            continue;
        };
        let wire = m.wire_name(name);
        match loc {
            Location::Header => {
                if let Some(t) = header_text(shape, m, v) {
                    headers.push((wire.to_string(), t));
                }
            }
            Location::Headers => {
                if let Value::Object(map) = v {
                    for (k, v) in map {
                        if let Value::String(s) = v {
                            headers.push((format!("{wire}{k}"), s.clone()));
                        }
                    }
                }
            }
            Location::StatusCode => {
                if let Some(n) = v.as_u64() {
                    *status = n as u16;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::parse(
            r#"{"metadata":{"protocol":"rest-xml","endpointPrefix":"s3"},
            "operations":{
              "PutObject":{"name":"PutObject","http":{"method":"PUT","requestUri":"/{Bucket}/{Key+}"},"input":{"shape":"PutReq"}},
              "UploadPart":{"name":"UploadPart","http":{"method":"PUT","requestUri":"/{Bucket}/{Key+}"},"input":{"shape":"PartReq"}},
              "PutObjectTagging":{"name":"PutObjectTagging","http":{"method":"PUT","requestUri":"/{Bucket}/{Key+}?tagging"},"input":{"shape":"PutReq"}},
              "ListObjects":{"name":"ListObjects","http":{"method":"GET","requestUri":"/{Bucket}"}},
              "ListObjectsV2":{"name":"ListObjectsV2","http":{"method":"GET","requestUri":"/{Bucket}?list-type=2"}},
              "ListBuckets":{"name":"ListBuckets","http":{"method":"GET","requestUri":"/"}}
            },
            "shapes":{
              "S":{"type":"string"},"I":{"type":"integer"},
              "PutReq":{"type":"structure","required":["Bucket","Key"],"members":{"Bucket":{"shape":"S","location":"uri","locationName":"Bucket"},"Key":{"shape":"S","location":"uri","locationName":"Key"}}},
              "PartReq":{"type":"structure","required":["Bucket","Key","PartNumber","UploadId"],"members":{"Bucket":{"shape":"S","location":"uri","locationName":"Bucket"},"Key":{"shape":"S","location":"uri","locationName":"Key"},"PartNumber":{"shape":"I","location":"querystring","locationName":"partNumber"},"UploadId":{"shape":"S","location":"querystring","locationName":"uploadId"}}}
            }}"#,
        )
        .unwrap()
    }

    fn route(r: &RestRouter, method: &str, path: &str, q: &[(&str, &str)]) -> Option<String> {
        let query: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let headers = HeaderMap::new();
        r.route(&RestRequest {
            method,
            raw_path: path,
            query: &query,
            headers: &headers,
        })
        .map(|x| format!("{} {:?}", x.operation, x.labels))
    }

    #[test]
    fn routes_by_binding() {
        let m = model();
        let r = RestRouter::new(&m);
        assert_eq!(
            route(&r, "PUT", "/b/a%20b/c", &[]).unwrap(),
            r#"PutObject [("Bucket", "b"), ("Key", "a b/c")]"#
        );
        assert!(
            route(&r, "PUT", "/b/k", &[("partNumber", "1"), ("uploadId", "x")])
                .unwrap()
                .starts_with("UploadPart ")
        );
        assert!(route(&r, "PUT", "/b/k", &[("tagging", "")])
            .unwrap()
            .starts_with("PutObjectTagging"));
        assert!(route(&r, "GET", "/b", &[])
            .unwrap()
            .starts_with("ListObjects "));
        assert!(route(&r, "GET", "/b/", &[("list-type", "2")])
            .unwrap()
            .starts_with("ListObjectsV2"));
        assert!(route(&r, "GET", "/", &[])
            .unwrap()
            .starts_with("ListBuckets"));
        assert!(route(&r, "DELETE", "/", &[]).is_none());
        assert!(route(&r, "PUT", "/b/", &[]).is_none());
    }
}

#[cfg(test)]
mod query_tests {
    use super::form_query;

    #[test]
    fn decodes_query_strings() {
        assert_eq!(
            form_query("Marker=a%2Fb&MaxItems=2&flag&x=a+b"),
            vec![
                ("Marker".to_string(), "a/b".to_string()),
                ("MaxItems".to_string(), "2".to_string()),
                ("flag".to_string(), String::new()),
                ("x".to_string(), "a b".to_string()),
            ]
        );
        assert!(form_query("").is_empty());
    }
}
