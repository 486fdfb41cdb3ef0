//! The filter-policy language of SNS subscriptions (and EventBridge patterns): a policy
//! is a JSON object whose keys name attributes (or, with message-body scope, nested
//! keys of a JSON message) and whose values list the accepted conditions. Keys are
//! ANDed, the conditions of one key ORed, `$or` ORs whole sub-policies.
//!
//! Conditions: exact strings, numbers and `null`; `{"prefix": s}`, `{"suffix": s}`,
//! `{"equals-ignore-case": s}`, `{"anything-but": value | [values] | {"prefix": s} |
//! {"suffix": s}}`, `{"numeric": [op, n, (op, n)]}`, `{"exists": bool}`,
//! `{"cidr": "10.0.0.0/24"}`. An attribute holding an array matches when any element does.

use serde_json::{Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct FilterPolicy {
    root: Map<String, Value>,
}

fn err(msg: impl Into<String>) -> String {
    format!("Invalid parameter: FilterPolicy: {}", msg.into())
}

impl FilterPolicy {
    /// Parses and validates a policy; errors read as AWS's (`Invalid parameter: FilterPolicy: ...`).
    pub fn parse(text: &str, body_scope: bool) -> Result<FilterPolicy, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| err(format!("failed to parse JSON: {e}")))?;
        let Value::Object(root) = v else {
            return Err(err("Filter policy must be a JSON object"));
        };
        validate_object(&root, body_scope, 0)?;
        Ok(FilterPolicy { root })
    }

    /// Whether `doc` (attribute name -> value, or the message body) passes.
    pub fn matches(&self, doc: &Value) -> bool {
        match_object(&self.root, Some(doc))
    }
}

fn validate_object(obj: &Map<String, Value>, body_scope: bool, depth: usize) -> Result<(), String> {
    if obj.is_empty() && depth == 0 {
        return Ok(());
    }
    for (k, v) in obj {
        if k == "$or" {
            let Value::Array(alts) = v else {
                return Err(err("$or must be an array of objects"));
            };
            if alts.len() < 2 {
                return Err(err("$or must contain at least two objects"));
            }
            for a in alts {
                let Value::Object(o) = a else {
                    return Err(err("$or must be an array of objects"));
                };
                validate_object(o, body_scope, depth + 1)?;
            }
            continue;
        }
        match v {
            Value::Array(conds) => {
                if conds.is_empty() {
                    return Err(err(format!("Empty arrays are not allowed (key {k})")));
                }
                for c in conds {
                    validate_condition(c)?;
                }
            }
            Value::Object(nested) if body_scope => validate_object(nested, body_scope, depth + 1)?,
            _ => return Err(err(format!("\"{k}\" must be an object or an array"))),
        }
    }
    Ok(())
}

fn validate_condition(c: &Value) -> Result<(), String> {
    match c {
        Value::String(_) | Value::Number(_) | Value::Null => Ok(()),
        Value::Bool(_) => Err(err(
            "Match value must be String, number, true, false, or null",
        )),
        Value::Array(_) => Err(err(
            "Match value must be String, number, true, false, or null",
        )),
        Value::Object(o) => {
            let Some((op, arg)) = o.iter().next().filter(|_| o.len() == 1) else {
                return Err(err("Only one key allowed in match expression"));
            };
            match (op.as_str(), arg) {
                ("prefix" | "suffix" | "equals-ignore-case", Value::String(_)) => Ok(()),
                ("exists", Value::Bool(_)) => Ok(()),
                ("anything-but", Value::String(_) | Value::Number(_)) => Ok(()),
                ("anything-but", Value::Array(items))
                    if items.iter().all(|i| i.is_string() || i.is_number()) =>
                {
                    Ok(())
                }
                ("anything-but", Value::Object(inner)) => match inner.iter().next() {
                    Some((k, Value::String(_)))
                        if inner.len() == 1 && (k == "prefix" || k == "suffix") =>
                    {
                        Ok(())
                    }
                    _ => Err(err("Unsupported anything-but pattern")),
                },
                ("numeric", Value::Array(parts)) => parse_numeric(parts).map(|_| ()),
                ("cidr", Value::String(s)) => parse_cidr(s)
                    .map(|_| ())
                    .ok_or_else(|| err(format!("Malformed CIDR, one '/' required: {s}"))),
                (
                    "prefix" | "suffix" | "equals-ignore-case" | "exists" | "anything-but"
                    | "numeric" | "cidr",
                    _,
                ) => Err(err(format!("Value of {op} must be of the correct type"))),
                (other, _) => Err(err(format!("Unrecognized match type {other}"))),
            }
        }
    }
}

/// `[">", 0, "<=", 5]` as (lower, upper) bounds with inclusiveness.
type Bound = Option<(f64, bool)>;

fn parse_numeric(parts: &[Value]) -> Result<(Bound, Bound, Option<f64>), String> {
    let bad = || err("Value of numeric must be an array of operators and numbers");
    if parts.is_empty() || !parts.len().is_multiple_of(2) || parts.len() > 4 {
        return Err(bad());
    }
    let (mut lo, mut hi, mut eq) = (None, None, None);
    for pair in parts.chunks(2) {
        let op = pair[0].as_str().ok_or_else(bad)?;
        let n = pair[1].as_f64().ok_or_else(bad)?;
        match op {
            "=" => eq = Some(n),
            ">" => lo = Some((n, false)),
            ">=" => lo = Some((n, true)),
            "<" => hi = Some((n, false)),
            "<=" => hi = Some((n, true)),
            _ => return Err(err(format!("Unrecognized numeric range operator: {op}"))),
        }
    }
    if eq.is_some() && parts.len() > 2 {
        return Err(bad());
    }
    if let (Some((l, _)), Some((h, _))) = (lo, hi) {
        if l >= h {
            return Err(err("Bottom must be less than top"));
        }
    }
    Ok((lo, hi, eq))
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(addr: &str, cidr: &str) -> bool {
    let (Some((net, bits)), Ok(ip)) = (parse_cidr(cidr), addr.parse::<IpAddr>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn match_object(policy: &Map<String, Value>, doc: Option<&Value>) -> bool {
    policy.iter().all(|(k, cond)| {
        if k == "$or" {
            return cond.as_array().is_some_and(|alts| {
                alts.iter()
                    .any(|a| a.as_object().is_some_and(|o| match_object(o, doc)))
            });
        }
        let v = doc.and_then(|d| d.get(k));
        match cond {
            Value::Object(nested) => match_object(nested, v),
            Value::Array(conds) => conds.iter().any(|c| match_condition(c, v)),
            _ => false,
        }
    })
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Whether one value (not an array) satisfies an exact-value condition.
fn equals(c: &Value, v: &Value) -> bool {
    match (c, v) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(_), _) => as_number(c).zip(as_number(v)).is_some_and(|(a, b)| a == b),
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

fn match_condition(c: &Value, v: Option<&Value>) -> bool {
    // `exists` looks at presence; everything else at the value(s).
    if let Some(want) = c.get("exists").and_then(|e| e.as_bool()) {
        return v.is_some() == want;
    }
    let Some(v) = v else {
        return false;
    };
    if let Value::Array(items) = v {
        if let Some(ab) = c.get("anything-but") {
            // Every element must avoid the excluded values.
            return !items.is_empty() && items.iter().all(|i| !excluded(ab, i));
        }
        return items.iter().any(|i| match_scalar(c, i));
    }
    match_scalar(c, v)
}

fn excluded(ab: &Value, v: &Value) -> bool {
    match ab {
        Value::Array(list) => list.iter().any(|x| equals(x, v)),
        Value::Object(o) => {
            let s = v.as_str().unwrap_or("");
            match o.iter().next() {
                Some((k, Value::String(p))) if k == "prefix" => {
                    v.is_string() && s.starts_with(p.as_str())
                }
                Some((k, Value::String(p))) if k == "suffix" => {
                    v.is_string() && s.ends_with(p.as_str())
                }
                _ => false,
            }
        }
        other => equals(other, v),
    }
}

fn match_scalar(c: &Value, v: &Value) -> bool {
    let Value::Object(o) = c else {
        return equals(c, v);
    };
    let Some((op, arg)) = o.iter().next() else {
        return false;
    };
    let s = v.as_str();
    match op.as_str() {
        "prefix" => s.zip(arg.as_str()).is_some_and(|(s, p)| s.starts_with(p)),
        "suffix" => s.zip(arg.as_str()).is_some_and(|(s, p)| s.ends_with(p)),
        "equals-ignore-case" => s
            .zip(arg.as_str())
            .is_some_and(|(s, p)| s.eq_ignore_ascii_case(p)),
        "anything-but" => !excluded(arg, v),
        "numeric" => {
            let (Some(n), Some(parts)) = (as_number(v), arg.as_array()) else {
                return false;
            };
            let Ok((lo, hi, eq)) = parse_numeric(parts) else {
                return false;
            };
            eq.is_none_or(|e| n == e)
                && lo.is_none_or(|(l, inc)| if inc { n >= l } else { n > l })
                && hi.is_none_or(|(h, inc)| if inc { n <= h } else { n < h })
        }
        "cidr" => s.zip(arg.as_str()).is_some_and(|(s, c)| in_cidr(s, c)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (policy, body scope, document, expected)
    fn cases() -> Vec<(Value, bool, Value, bool)> {
        vec![
            (
                json!({"color": ["red"]}),
                false,
                json!({"color": "red"}),
                true,
            ),
            (
                json!({"color": ["red"]}),
                false,
                json!({"color": "blue"}),
                false,
            ),
            (
                json!({"color": ["red", "blue"]}),
                false,
                json!({"color": "blue"}),
                true,
            ),
            (json!({"color": ["red"]}), false, json!({}), false),
            (
                json!({"price": [100]}),
                false,
                json!({"price": 100.0}),
                true,
            ),
            (
                json!({"price": [100]}),
                false,
                json!({"price": "100"}),
                false,
            ),
            (
                json!({"color": ["red"], "size": ["L"]}),
                false,
                json!({"color": "red", "size": "M"}),
                false,
            ),
            (
                json!({"color": ["red"], "size": ["L"]}),
                false,
                json!({"color": "red", "size": "L"}),
                true,
            ),
            (
                json!({"name": [{"prefix": "ab"}]}),
                false,
                json!({"name": "abc"}),
                true,
            ),
            (
                json!({"name": [{"prefix": "ab"}]}),
                false,
                json!({"name": "cab"}),
                false,
            ),
            (
                json!({"name": [{"suffix": ".jpg"}]}),
                false,
                json!({"name": "a.jpg"}),
                true,
            ),
            (
                json!({"name": [{"suffix": ".jpg"}]}),
                false,
                json!({"name": "a.png"}),
                false,
            ),
            (
                json!({"name": [{"equals-ignore-case": "RED"}]}),
                false,
                json!({"name": "rEd"}),
                true,
            ),
            (
                json!({"c": [{"anything-but": "red"}]}),
                false,
                json!({"c": "blue"}),
                true,
            ),
            (
                json!({"c": [{"anything-but": "red"}]}),
                false,
                json!({"c": "red"}),
                false,
            ),
            (
                json!({"c": [{"anything-but": "red"}]}),
                false,
                json!({}),
                false,
            ),
            (
                json!({"c": [{"anything-but": ["red", "green"]}]}),
                false,
                json!({"c": "green"}),
                false,
            ),
            (
                json!({"c": [{"anything-but": [1, 2]}]}),
                false,
                json!({"c": 3}),
                true,
            ),
            (
                json!({"c": [{"anything-but": {"prefix": "re"}}]}),
                false,
                json!({"c": "red"}),
                false,
            ),
            (
                json!({"c": [{"anything-but": {"prefix": "re"}}]}),
                false,
                json!({"c": "blue"}),
                true,
            ),
            (
                json!({"n": [{"numeric": [">", 0, "<=", 100]}]}),
                false,
                json!({"n": 100}),
                true,
            ),
            (
                json!({"n": [{"numeric": [">", 0, "<=", 100]}]}),
                false,
                json!({"n": 0}),
                false,
            ),
            (
                json!({"n": [{"numeric": [">", 0, "<=", 100]}]}),
                false,
                json!({"n": 101}),
                false,
            ),
            (
                json!({"n": [{"numeric": ["=", 5]}]}),
                false,
                json!({"n": 5.0}),
                true,
            ),
            (
                json!({"n": [{"numeric": ["<", 5]}]}),
                false,
                json!({"n": "4"}),
                false,
            ),
            (
                json!({"k": [{"exists": true}]}),
                false,
                json!({"k": "x"}),
                true,
            ),
            (json!({"k": [{"exists": true}]}), false, json!({}), false),
            (json!({"k": [{"exists": false}]}), false, json!({}), true),
            (
                json!({"k": [{"exists": false}]}),
                false,
                json!({"k": 1}),
                false,
            ),
            (
                json!({"ip": [{"cidr": "10.0.0.0/24"}]}),
                false,
                json!({"ip": "10.0.0.255"}),
                true,
            ),
            (
                json!({"ip": [{"cidr": "10.0.0.0/24"}]}),
                false,
                json!({"ip": "10.0.1.1"}),
                false,
            ),
            (
                json!({"ip": [{"cidr": "2001:db8::/32"}]}),
                false,
                json!({"ip": "2001:db8::1"}),
                true,
            ),
            (
                json!({"tags": ["b"]}),
                false,
                json!({"tags": ["a", "b"]}),
                true,
            ),
            (
                json!({"tags": ["c"]}),
                false,
                json!({"tags": ["a", "b"]}),
                false,
            ),
            (
                json!({"$or": [{"a": ["1"]}, {"b": ["2"]}]}),
                false,
                json!({"b": "2"}),
                true,
            ),
            (
                json!({"$or": [{"a": ["1"]}, {"b": ["2"]}]}),
                false,
                json!({"b": "3"}),
                false,
            ),
            (
                json!({"x": ["y"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}),
                false,
                json!({"x": "y", "a": "1"}),
                true,
            ),
            (
                json!({"order": {"shipping": {"country": ["NZ"]}}}),
                true,
                json!({"order": {"shipping": {"country": "NZ"}}}),
                true,
            ),
            (
                json!({"order": {"shipping": {"country": ["NZ"]}}}),
                true,
                json!({"order": {"shipping": {"country": "AU"}}}),
                false,
            ),
            (
                json!({"order": {"total": [{"numeric": [">=", 10]}]}}),
                true,
                json!({"order": {"total": 12.5}}),
                true,
            ),
            (json!({"v": [null]}), true, json!({"v": null}), true),
            (json!({}), false, json!({"anything": 1}), true),
        ]
    }

    #[test]
    fn matrix() {
        for (i, (policy, body, doc, want)) in cases().into_iter().enumerate() {
            let p = FilterPolicy::parse(&policy.to_string(), body)
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(p.matches(&doc), want, "case {i}: {policy} on {doc}");
        }
    }

    #[test]
    fn invalid_policies() {
        for (text, body) in [
            ("not json", false),
            ("[1]", false),
            (r#"{"a": "red"}"#, false),
            (r#"{"a": []}"#, false),
            (r#"{"a": [{"bogus": 1}]}"#, false),
            (r#"{"a": [{"numeric": [">", "x"]}]}"#, false),
            (r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, false),
            (r#"{"a": [{"prefix": 1}]}"#, false),
            (r#"{"a": [{"cidr": "10.0.0.0"}]}"#, false),
            (r#"{"a": {"b": ["c"]}}"#, false),
            (r#"{"$or": [{"a": ["1"]}]}"#, false),
            (r#"{"a": [true]}"#, false),
        ] {
            let e = FilterPolicy::parse(text, body).unwrap_err();
            assert!(
                e.starts_with("Invalid parameter: FilterPolicy: "),
                "{text}: {e}"
            );
        }
    }
}
