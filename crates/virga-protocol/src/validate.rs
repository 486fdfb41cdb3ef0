//! Model constraints checked on a parsed input, with AWS's messages:
//! `1 validation error detected: Value null at 'tableName' failed to satisfy constraint:
//! Member must not be null`. Paths name members in lowerCamelCase and list items as
//! `name.N.member`, as AWS's JSON services do.

use crate::model::{Model, Shape, ShapeKind};
use serde_json::Value;
use virga_core::AwsError;

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn num(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Collects constraint violations of `value` (a value of `shape`) under `path`.
pub fn check(model: &Model, shape: &Shape, value: &Value, path: &str, errors: &mut Vec<String>) {
    match (shape.kind, value) {
        (ShapeKind::Structure, Value::Object(obj)) => {
            for req in &shape.required {
                if obj.get(req).is_none_or(|v| v.is_null()) {
                    errors.push(format!(
                        "Value null at '{}' failed to satisfy constraint: Member must not be null",
                        join(path, &lower_first(req))
                    ));
                }
            }
            for (name, m) in shape.members.iter() {
                if let (Some(v), Some(ms)) = (obj.get(name), model.shape(&m.shape)) {
                    if !v.is_null() {
                        check(model, ms, v, &join(path, &lower_first(name)), errors);
                    }
                }
            }
        }
        (ShapeKind::String, Value::String(s)) => {
            let len = s.chars().count() as f64;
            length(shape, len, value, path, errors);
            if !shape.enum_values.is_empty() && !shape.enum_values.iter().any(|e| e == s) {
                errors.push(format!(
                    "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    shape.enum_values.join(", ")
                ));
            }
            if model.check_patterns && !shape.pattern_matches(s) {
                errors.push(format!(
                    "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {}",
                    shape.pattern.as_deref().unwrap_or("")
                ));
            }
        }
        (ShapeKind::List, Value::Array(items)) => {
            length(shape, items.len() as f64, value, path, errors);
            if let Some(ms) = shape.member.as_ref().and_then(|m| model.shape(&m.shape)) {
                for (i, it) in items.iter().enumerate() {
                    check(model, ms, it, &format!("{path}.{}.member", i + 1), errors);
                }
            }
        }
        (ShapeKind::Map, Value::Object(obj)) => {
            length(shape, obj.len() as f64, value, path, errors);
            let key_shape = shape.key.as_ref().and_then(|m| model.shape(&m.shape));
            if let Some(ks) = key_shape.filter(|_| model.check_patterns) {
                // AWS names no key (environment variables may be secret), once per map.
                if obj.keys().any(|k| !ks.pattern_matches(k)) {
                    errors.push(format!(
                        "Value at '{path}' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: {}]",
                        ks.pattern.as_deref().unwrap_or("")
                    ));
                }
            }
            if let Some(vs) = shape.value.as_ref().and_then(|m| model.shape(&m.shape)) {
                for (k, v) in obj {
                    check(model, vs, v, &format!("{path}.{k}"), errors);
                }
            }
        }
        (
            ShapeKind::Integer | ShapeKind::Long | ShapeKind::Float | ShapeKind::Double,
            Value::Number(n),
        ) => {
            let f = n.as_f64().unwrap_or(0.0);
            if let Some(min) = shape.min {
                if f < min {
                    errors.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {}",
                        shown(value),
                        num(min)
                    ));
                }
            }
            if let Some(max) = shape.max {
                if f > max {
                    errors.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {}",
                        shown(value),
                        num(max)
                    ));
                }
            }
        }
        _ => {}
    }
}

fn length(shape: &Shape, len: f64, value: &Value, path: &str, errors: &mut Vec<String>) {
    let shown_value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(min) = shape.min {
        if len < min {
            errors.push(format!(
                "Value '{shown_value}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {}",
                num(min)
            ));
        }
    }
    if let Some(max) = shape.max {
        if len > max {
            errors.push(format!(
                "Value '{shown_value}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {}",
                num(max)
            ));
        }
    }
}

/// Validates an input against its shape; the error AWS's JSON services answer.
pub fn validate_input(model: &Model, shape: &Shape, value: &Value) -> Result<(), AwsError> {
    let mut errors = Vec::new();
    check(model, shape, value, "", &mut errors);
    if errors.is_empty() {
        return Ok(());
    }
    let n = errors.len();
    Err(AwsError::new(
        400,
        "ValidationException",
        format!(
            "{n} validation error{} detected: {}",
            if n == 1 { "" } else { "s" },
            errors.join("; ")
        ),
    ))
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    fn model(patterns: bool) -> Model {
        let mut m = Model::parse(
            r#"{"metadata": {"protocol": "rest-json", "apiVersion": "1", "endpointPrefix": "x"},
                "operations": {},
                "shapes": {
                  "In": {"type": "structure", "members": {
                    "Handler": {"shape": "Handler"}, "Vars": {"shape": "Vars"}, "Alias": {"shape": "Alias"}}},
                  "Handler": {"type": "string", "pattern": "[^\\s]+"},
                  "Alias": {"type": "string", "pattern": "(?!^[0-9]+$)([a-zA-Z0-9-_]+)"},
                  "Vars": {"type": "map", "key": {"shape": "Key"}, "value": {"shape": "Handler"}},
                  "Key": {"type": "string", "pattern": "[a-zA-Z]([a-zA-Z0-9_])+"}
                }}"#,
        )
        .unwrap();
        m.check_patterns = patterns;
        m
    }

    fn errors(m: &Model, v: serde_json::Value) -> Vec<String> {
        let mut out = Vec::new();
        check(m, m.shape("In").unwrap(), &v, "", &mut out);
        out
    }

    #[test]
    fn whole_values_must_match() {
        let m = model(true);
        assert!(errors(&m, serde_json::json!({"Handler": "index.handler"})).is_empty());
        let e = errors(&m, serde_json::json!({"Handler": "a b"}));
        assert_eq!(e, vec!["Value 'a b' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+"]);
    }

    #[test]
    fn map_keys_are_checked_without_naming_them() {
        let m = model(true);
        assert!(errors(&m, serde_json::json!({"Vars": {"GOOD_1": "x"}})).is_empty());
        let e = errors(&m, serde_json::json!({"Vars": {"A": "x", "B-C": "y"}}));
        assert_eq!(e, vec!["Value at 'vars' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"]);
    }

    #[test]
    fn uncompilable_patterns_and_models_without_opt_in_are_not_checked() {
        // The regex crate has no look-ahead: that pattern is skipped.
        assert!(errors(&model(true), serde_json::json!({"Alias": "123"})).is_empty());
        assert!(errors(&model(false), serde_json::json!({"Handler": "a b"})).is_empty());
    }
}
