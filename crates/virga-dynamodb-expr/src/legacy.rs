//! The pre-expression parameters (Expected, QueryFilter/ScanFilter,
//! AttributeUpdates, KeyConditions, AttributesToGet), converted to the same
//! conditions, updates and key conditions the expressions produce.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::expr::condition::{CmpOp, Cond, Condition, Operand};
use crate::expr::key::{reduce, KeyCondition, RangeCondition};
use crate::expr::update::{Action, SetValue, UOp, Update};
use crate::expr::{ExprError, Path};
use crate::value::{compare, AttrValue};

pub use crate::expr::projection::projection_from_attributes_to_get;

const INVALID: &str = "One or more parameter values were invalid: ";
const OPERATORS: [&str; 13] = [
    "IN",
    "NULL",
    "BETWEEN",
    "LT",
    "NOT_CONTAINS",
    "EQ",
    "GT",
    "NOT_NULL",
    "NE",
    "LE",
    "BEGINS_WITH",
    "GE",
    "CONTAINS",
];

fn invalid(m: impl std::fmt::Display) -> ExprError {
    ExprError::new(format!("{INVALID}{m}"))
}

fn object<'a>(v: &'a Value, attr: &str) -> Result<&'a Map<String, Value>, ExprError> {
    v.as_object()
        .ok_or_else(|| invalid(format!("Expected a structure for Attribute: {attr}")))
}

fn present<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn parse_values(list: &Value) -> Result<Vec<AttrValue>, ExprError> {
    let Value::Array(items) = list else {
        return Err(ExprError::new(
            "Start of structure or map found where not expected.",
        ));
    };
    items
        .iter()
        .map(|v| AttrValue::from_json(v).map_err(ExprError::new))
        .collect()
}

/// AWS's checks on a ComparisonOperator and its AttributeValueList.
fn check_comparison(op: &str, values: &[AttrValue]) -> Result<(), ExprError> {
    if !OPERATORS.contains(&op) {
        return Err(ExprError::new(format!(
            "1 validation error detected: Value '{op}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            OPERATORS.join(", ")
        )));
    }
    let count_ok = match op {
        "NULL" | "NOT_NULL" => values.is_empty(),
        "IN" => !values.is_empty(),
        "BETWEEN" => values.len() == 2,
        _ => values.len() == 1,
    };
    if !count_ok {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    if let Some(first) = values.first() {
        if values.iter().any(|v| v.type_name() != first.type_name()) {
            return Err(invalid(
                "AttributeValues inside AttributeValueList must be of same type",
            ));
        }
    }
    let allowed: &[&str] = match op {
        "EQ" | "NE" => &[],
        "BEGINS_WITH" => &["S", "B"],
        _ => &["S", "N", "B"],
    };
    if !allowed.is_empty() {
        if let Some(v) = values.iter().find(|v| !allowed.contains(&v.type_name())) {
            return Err(invalid(format!(
                "ComparisonOperator {op} is not valid for {} AttributeValue type",
                v.type_name()
            )));
        }
    }
    if op == "BETWEEN" && compare(&values[0], &values[1]) == Some(Ordering::Greater) {
        return Err(ExprError::new(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

/// The condition a checked ComparisonOperator stands for.
fn comparison(attr: &str, op: &str, values: Vec<AttrValue>) -> Cond {
    let path = Path::attr(attr);
    let target = || Operand::Path(Path::attr(attr));
    let mut vals = values.into_iter().map(Operand::Value);
    let next =
        |v: &mut dyn Iterator<Item = Operand>| v.next().unwrap_or(Operand::Value(AttrValue::Null));
    match op {
        "NULL" => Cond::NotExists(path),
        "NOT_NULL" => Cond::Exists(path),
        "CONTAINS" => Cond::Contains(target(), next(&mut vals)),
        "NOT_CONTAINS" => Cond::Not(Box::new(Cond::Contains(target(), next(&mut vals)))),
        "BEGINS_WITH" => Cond::BeginsWith(target(), next(&mut vals)),
        "BETWEEN" => {
            let lo = next(&mut vals);
            Cond::Between(target(), lo, next(&mut vals))
        }
        "IN" => Cond::In(target(), vals.collect()),
        other => {
            let op = match other {
                "NE" => CmpOp::Ne,
                "LT" => CmpOp::Lt,
                "LE" => CmpOp::Le,
                "GT" => CmpOp::Gt,
                "GE" => CmpOp::Ge,
                _ => CmpOp::Eq,
            };
            Cond::Cmp(op, target(), next(&mut vals))
        }
    }
}

fn combine(conds: Vec<Cond>, conditional_operator: Option<&str>) -> Result<Condition, ExprError> {
    let or = match conditional_operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(ExprError::new(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )))
        }
    };
    let root = conds
        .into_iter()
        .reduce(|a, b| {
            if or {
                Cond::Or(Box::new(a), Box::new(b))
            } else {
                Cond::And(Box::new(a), Box::new(b))
            }
        })
        .unwrap_or(Cond::Const(true));
    Ok(Condition { root })
}

/// The legacy `Expected` map: `{attr: {Value, Exists}}` or
/// `{attr: {ComparisonOperator, AttributeValueList}}`, AND'ed (or OR'ed).
pub fn condition_from_expected(
    expected: &Map<String, Value>,
    conditional_operator: Option<&str>,
) -> Result<Condition, ExprError> {
    let mut conds = Vec::with_capacity(expected.len());
    for (attr, spec) in expected {
        let spec = object(spec, attr)?;
        let op = present(spec, "ComparisonOperator");
        let list = present(spec, "AttributeValueList");
        let value = present(spec, "Value");
        let exists = present(spec, "Exists");
        if list.is_some() && value.is_some() {
            return Err(invalid(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {attr}"
            )));
        }
        if let Some(op) = op {
            let op = op.as_str().unwrap_or("");
            if exists.is_some() {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {attr}"
                )));
            }
            if op != "NULL" && op != "NOT_NULL" && list.is_none() && value.is_none() {
                return Err(invalid(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {op} for Attribute: {attr}"
                )));
            }
            let values = match (list, value) {
                (Some(l), _) => parse_values(l)?,
                (None, Some(v)) => vec![AttrValue::from_json(v).map_err(ExprError::new)?],
                (None, None) => Vec::new(),
            };
            check_comparison(op, &values)?;
            conds.push(comparison(attr, op, values));
        } else if list.is_some() {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {attr}"
            )));
        } else {
            let exists_flag = exists.and_then(Value::as_bool).unwrap_or(true);
            if exists_flag && value.is_none() {
                let shown = if exists.is_none() { "null" } else { "true" };
                return Err(invalid(format!(
                    "Value must be provided when Exists is {shown} for Attribute: {attr}"
                )));
            }
            if !exists_flag && value.is_some() {
                return Err(invalid(format!(
                    "Value cannot be used when Exists is false for Attribute: {attr}"
                )));
            }
            match value {
                Some(v) => {
                    let v = AttrValue::from_json(v).map_err(ExprError::new)?;
                    conds.push(Cond::Cmp(
                        CmpOp::Eq,
                        Operand::Path(Path::attr(attr.clone())),
                        Operand::Value(v),
                    ));
                }
                None => conds.push(Cond::NotExists(Path::attr(attr.clone()))),
            }
        }
    }
    combine(conds, conditional_operator)
}

/// Parses one `{ComparisonOperator, AttributeValueList}` entry.
fn filter_entry(attr: &str, spec: &Value) -> Result<(String, Vec<AttrValue>), ExprError> {
    let spec = object(spec, attr)?;
    let values = match present(spec, "AttributeValueList") {
        Some(l) => parse_values(l)?,
        None => Vec::new(),
    };
    let op = present(spec, "ComparisonOperator").and_then(Value::as_str).ok_or_else(|| {
        ExprError::new(format!(
            "1 validation error detected: Value null at '{attr}.member.comparisonOperator' failed to satisfy constraint: Member must not be null"
        ))
    })?;
    check_comparison(op, &values)?;
    Ok((op.to_string(), values))
}

/// QueryFilter / ScanFilter: `{attr: {ComparisonOperator, AttributeValueList}}`.
pub fn condition_from_filter(
    filter: &Map<String, Value>,
    conditional_operator: Option<&str>,
) -> Result<Condition, ExprError> {
    let mut conds = Vec::with_capacity(filter.len());
    for (attr, spec) in filter {
        let (op, values) = filter_entry(attr, spec)?;
        conds.push(comparison(attr, &op, values));
    }
    combine(conds, conditional_operator)
}

/// AttributeUpdates: `{attr: {Action: PUT|DELETE|ADD, Value}}` (Action defaults to PUT).
pub fn update_from_attribute_updates(updates: &Map<String, Value>) -> Result<Update, ExprError> {
    let mut actions = Vec::with_capacity(updates.len());
    for (attr, spec) in updates {
        let spec = object(spec, attr)?;
        let value = match present(spec, "Value") {
            Some(v) => Some(AttrValue::from_json(v).map_err(ExprError::new)?),
            None => None,
        };
        let action = present(spec, "Action")
            .and_then(Value::as_str)
            .unwrap_or("PUT");
        let path = Path::attr(attr.clone());
        actions.push(match (action, value) {
            ("DELETE", None) => Action::Remove(path),
            (_, None) => {
                return Err(invalid("Only DELETE action is allowed when no attribute value is specified"))
            }
            ("DELETE", Some(v)) => {
                if !v.is_set() {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                Action::Delete(path, v)
            }
            ("ADD", Some(v)) => {
                if !matches!(v, AttrValue::N(_) | AttrValue::L(_)) && !v.is_set() {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {}",
                        v.type_name()
                    )));
                }
                Action::Add(path, v)
            }
            ("PUT", Some(v)) => Action::Set(path, SetValue::Op(UOp::Value(v))),
            (other, Some(_)) => {
                return Err(ExprError::new(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{attr}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )))
            }
        });
    }
    Ok(Update {
        actions,
        legacy: true,
    })
}

/// KeyConditions: `{attr: {ComparisonOperator, AttributeValueList}}`, the hash key's
/// an EQ and at most one other on the range key.
pub fn key_condition_from_key_conditions(
    kc: &Map<String, Value>,
    hash_key_name: &str,
) -> Result<KeyCondition, ExprError> {
    let mut entries = Vec::with_capacity(kc.len());
    for (attr, spec) in kc {
        let (op, values) = filter_entry(attr, spec)?;
        entries.push((attr.clone(), op, values));
    }
    if entries.is_empty() || entries.len() > 2 {
        return Err(ExprError::new("Conditions can be of length 1 or 2 only"));
    }
    if !entries.iter().any(|(a, _, _)| a == hash_key_name) {
        return Err(ExprError::new(format!(
            "Query condition missed key schema element: {hash_key_name}"
        )));
    }
    let mut conds = Vec::with_capacity(2);
    // The hash key first, so that it is the equality `reduce` picks.
    entries.sort_by_key(|(a, _, _)| a != hash_key_name);
    for (attr, op, values) in entries {
        let is_hash = attr == hash_key_name;
        let mut vals = values.into_iter();
        let mut next = || vals.next().unwrap_or(AttrValue::Null);
        let rc = match op.as_str() {
            "EQ" => RangeCondition::Eq(next()),
            _ if is_hash => return Err(ExprError::new("Query key condition not supported")),
            "LT" => RangeCondition::Lt(next()),
            "LE" => RangeCondition::Le(next()),
            "GT" => RangeCondition::Gt(next()),
            "GE" => RangeCondition::Ge(next()),
            "BEGINS_WITH" => RangeCondition::BeginsWith(next()),
            "BETWEEN" => {
                let lo = next();
                RangeCondition::Between(lo, next())
            }
            _ => return Err(ExprError::new("Query key condition not supported")),
        };
        conds.push((attr, rc));
    }
    reduce(conds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{item_from_json, item_to_json, Item};
    use serde_json::json;

    fn item() -> Item {
        item_from_json(
            json!({"pk": {"S": "lg"}, "v": {"N": "3"}, "s": {"S": "hello"}, "ss": {"SS": ["a", "b"]},
                   "l": {"L": [{"S": "x"}]}, "even": {"BOOL": true}})
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    fn expected(spec: Value, op: Option<&str>) -> Result<bool, String> {
        let c = condition_from_expected(spec.as_object().unwrap(), op).map_err(|e| e.message)?;
        Ok(c.eval(&item()).unwrap())
    }

    fn filter(spec: Value, op: Option<&str>) -> Result<bool, String> {
        let c = condition_from_filter(spec.as_object().unwrap(), op).map_err(|e| e.message)?;
        Ok(c.eval(&item()).unwrap())
    }

    #[test]
    fn expected_semantics() {
        let n = |x: &str| json!({"N": x});
        let cases: Vec<(Value, Option<&str>, bool)> = vec![
            (json!({"pk": {"Exists": false}}), None, false),
            (json!({"nope": {"Exists": false}}), None, true),
            (json!({"v": {"Value": n("3")}}), None, true),
            (json!({"v": {"Value": n("3"), "Exists": true}}), None, true),
            (json!({"v": {"Value": n("4")}}), None, false),
            (
                json!({"v": {"ComparisonOperator": "GT", "AttributeValueList": [n("5")]}}),
                None,
                false,
            ),
            (
                json!({"v": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [n("3"), n("5")]}}),
                None,
                true,
            ),
            (
                json!({"v": {"ComparisonOperator": "EQ", "Value": n("3")}}),
                None,
                true,
            ),
            (json!({"v": {"ComparisonOperator": "NOT_NULL"}}), None, true),
            (json!({"v": {"ComparisonOperator": "NULL"}}), None, false),
            (
                json!({"v": {"Value": n("4")}, "s": {"Value": {"S": "hello"}}}),
                Some("OR"),
                true,
            ),
            (
                json!({"v": {"Value": n("4")}, "s": {"Value": {"S": "hello"}}}),
                Some("AND"),
                false,
            ),
            (json!({}), None, true),
        ];
        for (spec, op, want) in cases {
            assert_eq!(expected(spec.clone(), op), Ok(want), "{spec}");
        }
    }

    #[test]
    fn expected_errors() {
        let inv = "One or more parameter values were invalid: ";
        let n = |x: &str| json!({"N": x});
        let cases: Vec<(Value, String)> = vec![
            (json!({"a": {}}), format!("{inv}Value must be provided when Exists is null for Attribute: a")),
            (json!({"a": {"Exists": true}}), format!("{inv}Value must be provided when Exists is true for Attribute: a")),
            (json!({"a": {"Exists": false, "Value": n("1")}}), format!("{inv}Value cannot be used when Exists is false for Attribute: a")),
            (json!({"a": {"Value": n("1"), "AttributeValueList": [n("1")]}}), format!("{inv}Value and AttributeValueList cannot be used together for Attribute: a")),
            (json!({"a": {"ComparisonOperator": "EQ", "Exists": true}}), format!("{inv}Exists and ComparisonOperator cannot be used together for Attribute: a")),
            (json!({"a": {"AttributeValueList": [n("1")]}}), format!("{inv}AttributeValueList can only be used with a ComparisonOperator for Attribute: a")),
            (json!({"a": {"ComparisonOperator": "EQ"}}), format!("{inv}Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a")),
            (json!({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [n("1"), n("2")]}}), format!("{inv}Invalid number of argument(s) for the EQ ComparisonOperator")),
            (json!({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [n("5"), n("3")]}}), "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound".to_string()),
            (json!({"a": {"Value": {"N": "x"}}}), "The parameter cannot be converted to a numeric value: x".to_string()),
        ];
        for (spec, want) in cases {
            assert_eq!(expected(spec.clone(), None), Err(want.clone()), "{spec}");
        }
    }

    #[test]
    fn filter_semantics() {
        let n = |x: &str| json!({"N": x});
        let s = |x: &str| json!({"S": x});
        let cases: Vec<(Value, Option<&str>, bool)> = vec![
            (
                json!({"v": {"ComparisonOperator": "IN", "AttributeValueList": [n("1"), n("3")]}}),
                None,
                true,
            ),
            (
                json!({"v": {"ComparisonOperator": "IN", "AttributeValueList": [n("1"), n("2")]}}),
                None,
                false,
            ),
            (
                json!({"even": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": true}]}}),
                None,
                true,
            ),
            (
                json!({"v": {"ComparisonOperator": "NE", "AttributeValueList": [n("3")]}}),
                None,
                false,
            ),
            (
                json!({"nope": {"ComparisonOperator": "NE", "AttributeValueList": [n("3")]}}),
                None,
                true,
            ),
            (
                json!({"v": {"ComparisonOperator": "LE", "AttributeValueList": [n("3")]}}),
                None,
                true,
            ),
            (
                json!({"v": {"ComparisonOperator": "LT", "AttributeValueList": [n("3")]}}),
                None,
                false,
            ),
            (
                json!({"v": {"ComparisonOperator": "GE", "AttributeValueList": [n("3")]}}),
                None,
                true,
            ),
            (
                json!({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [s("he")]}}),
                None,
                true,
            ),
            (
                json!({"s": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [s("ell")]}}),
                None,
                true,
            ),
            (
                json!({"ss": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [s("a")]}}),
                None,
                true,
            ),
            (
                json!({"l": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [s("x")]}}),
                None,
                true,
            ),
            (
                json!({"ss": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [s("z")]}}),
                None,
                true,
            ),
            (
                json!({"nope": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [s("z")]}}),
                None,
                true,
            ),
            (json!({"nope": {"ComparisonOperator": "NULL"}}), None, true),
            (
                json!({"v": {"ComparisonOperator": "GT", "AttributeValueList": [n("8")]}, "even": {"ComparisonOperator": "NULL"}}),
                Some("OR"),
                false,
            ),
            (
                json!({"v": {"ComparisonOperator": "GT", "AttributeValueList": [n("1")]}, "even": {"ComparisonOperator": "NULL"}}),
                Some("OR"),
                true,
            ),
        ];
        for (spec, op, want) in cases {
            assert_eq!(filter(spec.clone(), op), Ok(want), "{spec}");
        }
        let inv = "One or more parameter values were invalid: ";
        let errs: Vec<(Value, String)> = vec![
            (
                json!({"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"SS": ["a"]}]}}),
                format!("{inv}ComparisonOperator LT is not valid for SS AttributeValue type"),
            ),
            (
                json!({"a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [n("1")]}}),
                format!(
                    "{inv}ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"
                ),
            ),
            (
                json!({"a": {"ComparisonOperator": "IN", "AttributeValueList": [n("1"), s("1")]}}),
                format!("{inv}AttributeValues inside AttributeValueList must be of same type"),
            ),
            (
                json!({"a": {"ComparisonOperator": "NULL", "AttributeValueList": [n("1")]}}),
                format!("{inv}Invalid number of argument(s) for the NULL ComparisonOperator"),
            ),
            (
                json!({"a": {"ComparisonOperator": "IN"}}),
                format!("{inv}Invalid number of argument(s) for the IN ComparisonOperator"),
            ),
        ];
        for (spec, want) in errs {
            assert_eq!(filter(spec.clone(), None), Err(want.clone()), "{spec}");
        }
        assert!(filter(json!({"a": {"ComparisonOperator": "LIKE"}}), None).is_err());
        assert!(filter(json!({"a": {"ComparisonOperator": "NULL"}}), Some("XOR")).is_err());
    }

    #[test]
    fn attribute_updates() {
        let spec = json!({
            "s": {"Action": "PUT", "Value": {"S": "new"}},
            "gone": {"Action": "DELETE"},
            "n": {"Action": "ADD", "Value": {"N": "41"}},
            "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
            "fresh": {"Action": "ADD", "Value": {"NS": ["7"]}},
            "l": {"Action": "ADD", "Value": {"L": [{"S": "b"}]}},
            "dflt": {"Value": {"S": "put"}}
        });
        let u = update_from_attribute_updates(spec.as_object().unwrap()).unwrap();
        let mut it = item_from_json(
            json!({"pk": {"S": "au"}, "gone": {"S": "x"}, "n": {"N": "1"}, "ss": {"SS": ["a", "b"]},
                   "l": {"L": [{"S": "a"}]}})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        u.apply(&mut it).unwrap();
        assert_eq!(
            Value::Object(item_to_json(&it)),
            json!({"pk": {"S": "au"}, "s": {"S": "new"}, "n": {"N": "42"}, "ss": {"SS": ["b"]},
                   "fresh": {"NS": ["7"]}, "l": {"L": [{"S": "a"}, {"S": "b"}]}, "dflt": {"S": "put"}})
        );
        assert_eq!(u.top_level_attributes().len(), 7);

        let inv = "One or more parameter values were invalid: ";
        let errs: Vec<(Value, String)> = vec![
            (
                json!({"a": {"Action": "PUT"}}),
                format!("{inv}Only DELETE action is allowed when no attribute value is specified"),
            ),
            (
                json!({"a": {"Action": "ADD"}}),
                format!("{inv}Only DELETE action is allowed when no attribute value is specified"),
            ),
            (
                json!({"a": {"Action": "DELETE", "Value": {"S": "x"}}}),
                format!("{inv}DELETE action with value is not supported for the type S"),
            ),
            (
                json!({"a": {"Action": "ADD", "Value": {"S": "x"}}}),
                format!("{inv}ADD action is not supported for the type S"),
            ),
            (
                json!({"a": {"Action": "ADD", "Value": {"SS": []}}}),
                format!("{inv}An string set  may not be empty"),
            ),
        ];
        for (spec, want) in errs {
            assert_eq!(
                update_from_attribute_updates(spec.as_object().unwrap())
                    .unwrap_err()
                    .message,
                want
            );
        }
        // Runtime type mismatches use the legacy wording.
        let u = update_from_attribute_updates(
            json!({"s": {"Action": "ADD", "Value": {"N": "1"}}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let mut it = item_from_json(json!({"s": {"S": "x"}}).as_object().unwrap()).unwrap();
        assert_eq!(
            u.apply(&mut it).unwrap_err().message,
            "Type mismatch for attribute to update"
        );
    }

    #[test]
    fn key_conditions() {
        let spec = json!({
            "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "s0"}]},
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}
        });
        let kc = key_condition_from_key_conditions(spec.as_object().unwrap(), "pk").unwrap();
        assert_eq!(kc.hash_name, "pk");
        assert_eq!(kc.hash, AttrValue::S("p".into()));
        assert_eq!(
            kc.range,
            Some((
                "sk".to_string(),
                RangeCondition::BeginsWith(AttrValue::S("s0".into()))
            ))
        );

        let spec = json!({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                          "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "s01"}, {"S": "s03"}]}});
        let kc = key_condition_from_key_conditions(spec.as_object().unwrap(), "pk").unwrap();
        assert!(matches!(kc.range, Some((_, RangeCondition::Between(..)))));

        let errs: Vec<(Value, &str)> = vec![
            (
                json!({"pk": {"ComparisonOperator": "GT", "AttributeValueList": [{"S": "p"}]}}),
                "Query key condition not supported",
            ),
            (
                json!({"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}}),
                "Query condition missed key schema element: pk",
            ),
            (
                json!({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "sk": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "p"}]}}),
                "Query key condition not supported",
            ),
            (json!({}), "Conditions can be of length 1 or 2 only"),
            (
                json!({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}, "a": {"ComparisonOperator": "NULL"}, "b": {"ComparisonOperator": "NULL"}}),
                "Conditions can be of length 1 or 2 only",
            ),
        ];
        for (spec, want) in errs {
            assert_eq!(
                key_condition_from_key_conditions(spec.as_object().unwrap(), "pk")
                    .unwrap_err()
                    .message,
                want,
                "{spec}"
            );
        }
    }
}
