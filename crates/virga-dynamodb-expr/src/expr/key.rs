//! KeyConditionExpression: a condition in the shared grammar, reduced to one
//! equality on the hash key and at most one condition on the range key.

use std::cmp::Ordering;

use super::condition::{begins_with, parse_cond, CmpOp, Cond, Operand};
use super::{ExprError, Path, PathElem, Substitutions};
use crate::value::{compare, AttrValue};

const KIND: &str = "KeyConditionExpression";

/// The condition on a range (sort) key.
#[derive(Clone, Debug, PartialEq)]
pub enum RangeCondition {
    Eq(AttrValue),
    Lt(AttrValue),
    Le(AttrValue),
    Gt(AttrValue),
    Ge(AttrValue),
    Between(AttrValue, AttrValue),
    BeginsWith(AttrValue),
}

impl RangeCondition {
    /// Whether a range key value satisfies the condition.
    pub fn matches(&self, v: &AttrValue) -> bool {
        let c = |x: &AttrValue| compare(v, x);
        match self {
            RangeCondition::Eq(x) => c(x) == Some(Ordering::Equal),
            RangeCondition::Lt(x) => c(x) == Some(Ordering::Less),
            RangeCondition::Le(x) => matches!(c(x), Some(Ordering::Less | Ordering::Equal)),
            RangeCondition::Gt(x) => c(x) == Some(Ordering::Greater),
            RangeCondition::Ge(x) => matches!(c(x), Some(Ordering::Greater | Ordering::Equal)),
            RangeCondition::Between(lo, hi) => {
                matches!(c(lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(c(hi), Some(Ordering::Less | Ordering::Equal))
            }
            RangeCondition::BeginsWith(x) => begins_with(v, x),
        }
    }

    /// The values the condition compares with.
    pub fn values(&self) -> Vec<&AttrValue> {
        match self {
            RangeCondition::Eq(x)
            | RangeCondition::Lt(x)
            | RangeCondition::Le(x)
            | RangeCondition::Gt(x)
            | RangeCondition::Ge(x)
            | RangeCondition::BeginsWith(x) => vec![x],
            RangeCondition::Between(a, b) => vec![a, b],
        }
    }

    fn is_eq(&self) -> bool {
        matches!(self, RangeCondition::Eq(_))
    }
}

/// A parsed key condition. Attribute names are not checked against the table's
/// schema here; see [`KeyCondition::check_schema`].
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCondition {
    pub hash_name: String,
    pub hash: AttrValue,
    pub range: Option<(String, RangeCondition)>,
}

impl KeyCondition {
    /// When both conditions are equalities, the first written is taken as the
    /// hash key; this swaps them if `hash_key` is the other one.
    pub fn orient(&mut self, hash_key: &str) {
        if self.hash_name == hash_key {
            return;
        }
        if let Some((name, RangeCondition::Eq(v))) = &mut self.range {
            if name == hash_key {
                std::mem::swap(&mut self.hash_name, name);
                std::mem::swap(&mut self.hash, v);
            }
        }
    }

    /// Orients the condition and checks its attributes against the key schema
    /// with AWS's messages (types are left to the caller).
    pub fn check_schema(
        &mut self,
        hash_key: &str,
        range_key: Option<&str>,
    ) -> Result<(), ExprError> {
        self.orient(hash_key);
        if self.hash_name != hash_key {
            let on_hash = self.range.as_ref().is_some_and(|(n, _)| n == hash_key);
            return Err(ExprError::new(if on_hash {
                "Query key condition not supported".to_string()
            } else {
                format!("Query condition missed key schema element: {hash_key}")
            }));
        }
        if let Some((name, _)) = &self.range {
            match range_key {
                Some(r) if r == name => {}
                Some(r) => {
                    return Err(ExprError::new(format!(
                        "Query condition missed key schema element: {r}"
                    )))
                }
                None => return Err(ExprError::new("Query key condition not supported")),
            }
        }
        Ok(())
    }
}

fn key_name(p: &Path) -> Result<String, ExprError> {
    match p.0.as_slice() {
        [PathElem::Attr(n)] => Ok(n.clone()),
        _ => Err(ExprError::new(
            "KeyConditionExpressions cannot have conditions on nested attributes",
        )),
    }
}

fn nested_operation() -> ExprError {
    ExprError::new("KeyConditionExpressions cannot contain nested operations")
}

fn invalid_operator(op: &str) -> ExprError {
    ExprError::new(format!(
        "Invalid operator used in KeyConditionExpression: {op}"
    ))
}

fn invalid_condition(m: &str) -> ExprError {
    ExprError::new(format!("Invalid condition in KeyConditionExpression: {m}"))
}

/// One leaf condition's key attribute and its value operands.
fn leaf(operands: &[&Operand]) -> Result<(String, usize), ExprError> {
    let mut found: Option<(String, usize)> = None;
    for (i, op) in operands.iter().enumerate() {
        match op {
            Operand::Size(_) => return Err(nested_operation()),
            Operand::Path(p) => {
                if found.is_some() {
                    return Err(invalid_condition(
                        "Multiple attribute names used in one condition",
                    ));
                }
                found = Some((key_name(p)?, i));
            }
            Operand::Value(_) => {}
        }
    }
    found.ok_or_else(|| invalid_condition("No key attribute specified"))
}

fn value_of(op: &Operand) -> AttrValue {
    match op {
        Operand::Value(v) => v.clone(),
        _ => AttrValue::Null,
    }
}

fn collect(c: &Cond, out: &mut Vec<(String, RangeCondition)>) -> Result<(), ExprError> {
    let (name, cond) = match c {
        Cond::And(a, b) => {
            collect(a, out)?;
            return collect(b, out);
        }
        Cond::Or(..) => return Err(invalid_operator("OR")),
        Cond::Not(_) => return Err(invalid_operator("NOT")),
        Cond::In(..) => return Err(invalid_operator("IN")),
        Cond::Cmp(CmpOp::Ne, ..) => return Err(invalid_operator("<>")),
        Cond::Exists(_) => return Err(invalid_operator("attribute_exists")),
        Cond::NotExists(_) => return Err(invalid_operator("attribute_not_exists")),
        Cond::AttrType(..) => return Err(invalid_operator("attribute_type")),
        Cond::Contains(..) => return Err(invalid_operator("contains")),
        Cond::Const(_) => return Err(invalid_condition("No key attribute specified")),
        Cond::Cmp(op, a, b) => {
            let (name, at) = leaf(&[a, b])?;
            let (op, v) = if at == 0 {
                (*op, value_of(b))
            } else {
                (op.flipped(), value_of(a))
            };
            let rc = match op {
                CmpOp::Eq => RangeCondition::Eq(v),
                CmpOp::Lt => RangeCondition::Lt(v),
                CmpOp::Le => RangeCondition::Le(v),
                CmpOp::Gt => RangeCondition::Gt(v),
                _ => RangeCondition::Ge(v),
            };
            (name, rc)
        }
        Cond::Between(a, lo, hi) => {
            if !matches!(a, Operand::Path(_)) {
                return Err(invalid_condition(
                    "BETWEEN operator must have the key attribute as its first operand",
                ));
            }
            let (name, _) = leaf(&[a, lo, hi])?;
            (name, RangeCondition::Between(value_of(lo), value_of(hi)))
        }
        Cond::BeginsWith(a, b) => {
            if !matches!(a, Operand::Path(_)) {
                return Err(invalid_condition(
                    "begins_with operator must have the key attribute as its first operand",
                ));
            }
            let (name, _) = leaf(&[a, b])?;
            (name, RangeCondition::BeginsWith(value_of(b)))
        }
    };
    if out.iter().any(|(n, _)| *n == name) {
        return Err(ExprError::new(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    out.push((name, cond));
    Ok(())
}

/// Reduces a parsed key condition (an expression's or a legacy one's) to hash and
/// range parts.
pub(crate) fn reduce(conds: Vec<(String, RangeCondition)>) -> Result<KeyCondition, ExprError> {
    if conds.len() > 2 {
        return Err(ExprError::new("Conditions can be of length 1 or 2 only"));
    }
    let hash_at = conds
        .iter()
        .position(|(_, c)| c.is_eq())
        .ok_or_else(|| ExprError::new("Query key condition not supported"))?;
    let mut conds = conds;
    let (hash_name, hash) = match conds.remove(hash_at) {
        (n, RangeCondition::Eq(v)) => (n, v),
        _ => return Err(ExprError::new("Query key condition not supported")),
    };
    Ok(KeyCondition {
        hash_name,
        hash,
        range: conds.pop(),
    })
}

/// Parses a KeyConditionExpression: one equality (the hash key) AND'ed with at
/// most one range condition, in either order. When both are equalities the
/// first is taken as the hash key ([`KeyCondition::orient`] fixes that up).
pub fn parse_key_condition(text: &str, subs: &Substitutions) -> Result<KeyCondition, ExprError> {
    let cond = parse_cond(text, KIND, subs)?;
    let mut conds = Vec::with_capacity(2);
    collect(&cond, &mut conds)?;
    reduce(conds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Number;
    use serde_json::{json, Map, Value};

    fn parse(text: &str, values: Value, names: Value) -> Result<KeyCondition, String> {
        let v: Option<Map<String, Value>> = values.as_object().cloned();
        let n: Option<Map<String, Value>> = names.as_object().cloned();
        let s = Substitutions::new(n.as_ref(), v.as_ref()).unwrap();
        parse_key_condition(text, &s).map_err(|e| e.message)
    }

    fn s(x: &str) -> AttrValue {
        AttrValue::S(x.into())
    }

    fn n(x: &str) -> AttrValue {
        AttrValue::N(Number::parse(x).unwrap())
    }

    #[test]
    fn shapes() {
        let vals =
            json!({":p": {"S": "p"}, ":a": {"S": "s03"}, ":b": {"S": "s05"}, ":n": {"N": "2.50"}});
        let cases: Vec<(&str, Option<(&str, RangeCondition)>)> = vec![
            ("pk = :p", None),
            (
                "pk = :p AND sk = :a",
                Some(("sk", RangeCondition::Eq(s("s03")))),
            ),
            (
                "pk = :p AND sk < :a",
                Some(("sk", RangeCondition::Lt(s("s03")))),
            ),
            (
                "pk = :p AND sk <= :a",
                Some(("sk", RangeCondition::Le(s("s03")))),
            ),
            (
                "pk = :p AND sk > :a",
                Some(("sk", RangeCondition::Gt(s("s03")))),
            ),
            (
                "pk = :p AND sk >= :a",
                Some(("sk", RangeCondition::Ge(s("s03")))),
            ),
            (
                "pk = :p AND :a < sk",
                Some(("sk", RangeCondition::Gt(s("s03")))),
            ),
            (
                "pk = :p AND :a >= sk",
                Some(("sk", RangeCondition::Le(s("s03")))),
            ),
            (
                "pk = :p AND sk BETWEEN :a AND :b",
                Some(("sk", RangeCondition::Between(s("s03"), s("s05")))),
            ),
            (
                "pk = :p AND begins_with(sk, :a)",
                Some(("sk", RangeCondition::BeginsWith(s("s03")))),
            ),
            (
                "sk >= :a AND pk = :p",
                Some(("sk", RangeCondition::Ge(s("s03")))),
            ),
            (
                "(pk = :p) AND (sk = :a)",
                Some(("sk", RangeCondition::Eq(s("s03")))),
            ),
            (
                "(begins_with(sk, :a)) AND (pk = :p)",
                Some(("sk", RangeCondition::BeginsWith(s("s03")))),
            ),
            (
                ":p = pk and sk = :n",
                Some(("sk", RangeCondition::Eq(n("2.5")))),
            ),
        ];
        for (text, range) in cases {
            let used: Vec<&str> = [":p", ":a", ":b", ":n"]
                .into_iter()
                .filter(|k| text.contains(k))
                .collect();
            let values: Map<String, Value> = used
                .iter()
                .map(|k| (k.to_string(), vals[*k].clone()))
                .collect();
            let kc = parse(text, Value::Object(values), json!(null))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(kc.hash_name, "pk", "{text}");
            assert_eq!(kc.hash, s("p"), "{text}");
            assert_eq!(kc.range, range.map(|(a, b)| (a.to_string(), b)), "{text}");
        }
        let kc = parse(
            "#s = :s AND begins_with(#d, :y)",
            json!({":s": {"S": "open"}, ":y": {"S": "2024"}}),
            json!({"#s": "status", "#d": "date"}),
        )
        .unwrap();
        assert_eq!(kc.hash_name, "status");
        assert_eq!(
            kc.range,
            Some(("date".to_string(), RangeCondition::BeginsWith(s("2024"))))
        );
    }

    #[test]
    fn shape_errors() {
        let v = json!({":p": {"S": "p"}, ":a": {"S": "x"}});
        let cases: Vec<(&str, Value, &str)> = vec![
            ("pk > :p", json!({":p": {"S": "p"}}), "Query key condition not supported"),
            ("pk = :p OR sk = :a", v.clone(), "Invalid operator used in KeyConditionExpression: OR"),
            ("pk = :p AND sk <> :a", v.clone(), "Invalid operator used in KeyConditionExpression: <>"),
            ("pk = :p AND NOT sk = :a", v.clone(), "Invalid operator used in KeyConditionExpression: NOT"),
            ("pk = :p AND sk IN (:a)", v.clone(), "Invalid operator used in KeyConditionExpression: IN"),
            ("pk = :p AND attribute_exists(sk)", json!({":p": {"S": "p"}}), "Invalid operator used in KeyConditionExpression: attribute_exists"),
            ("pk = :p AND contains(sk, :a)", v.clone(), "Invalid operator used in KeyConditionExpression: contains"),
            ("pk = :p AND size(sk) = :a", json!({":p": {"S": "p"}, ":a": {"N": "1"}}), "KeyConditionExpressions cannot contain nested operations"),
            ("pk = :p AND sk = pk2", json!({":p": {"S": "p"}}), "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
            ("pk = :p AND :a = :a", v.clone(), "Invalid condition in KeyConditionExpression: No key attribute specified"),
            ("pk = :p AND m.sk = :a", v.clone(), "KeyConditionExpressions cannot have conditions on nested attributes"),
            ("pk = :p AND :a BETWEEN sk AND :a", v.clone(), "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"),
            ("pk = :p AND begins_with(:a, sk)", v.clone(), "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand"),
            ("pk = :p AND pk = :a", v.clone(), "KeyConditionExpressions must only contain one condition per key"),
            ("pk = :p AND a = :a AND b = :a", v.clone(), "Conditions can be of length 1 or 2 only"),
            ("pk = :p AND begins_with(sk, :n)", json!({":p": {"S": "p"}, ":n": {"N": "1"}}), "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
            ("pk = :a :b", v.clone(), "Invalid KeyConditionExpression: Syntax error; token: \":b\", near: \":a :b\""),
        ];
        for (text, values, want) in cases {
            let values = if text.contains(":b") {
                json!({":a": {"S": "x"}})
            } else {
                values
            };
            assert_eq!(
                parse(text, values, json!(null)),
                Err(want.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn schema_checks() {
        let vals = json!({":p": {"S": "p"}, ":a": {"S": "x"}});
        let mut kc = parse("sk = :a AND pk = :p", vals.clone(), json!(null)).unwrap();
        assert_eq!(kc.hash_name, "sk");
        kc.check_schema("pk", Some("sk")).unwrap();
        assert_eq!((kc.hash_name.as_str(), &kc.hash), ("pk", &s("p")));
        assert_eq!(
            kc.range,
            Some(("sk".to_string(), RangeCondition::Eq(s("x"))))
        );

        let mut kc = parse("sk = :a", json!({":a": {"S": "x"}}), json!(null)).unwrap();
        assert_eq!(
            kc.check_schema("pk", Some("sk")).unwrap_err().message,
            "Query condition missed key schema element: pk"
        );
        let mut kc = parse("pk = :p AND n = :a", vals.clone(), json!(null)).unwrap();
        assert_eq!(
            kc.check_schema("pk", Some("sk")).unwrap_err().message,
            "Query condition missed key schema element: sk"
        );
        let mut kc = parse("pk > :p AND sk = :a", vals.clone(), json!(null)).unwrap();
        assert_eq!(
            kc.check_schema("pk", Some("sk")).unwrap_err().message,
            "Query key condition not supported"
        );
        let mut kc = parse("pk = :p AND sk = :a", vals, json!(null)).unwrap();
        assert_eq!(
            kc.check_schema("pk", None).unwrap_err().message,
            "Query key condition not supported"
        );
    }

    #[test]
    fn range_matching() {
        let cases: Vec<(RangeCondition, AttrValue, bool)> = vec![
            (RangeCondition::Eq(n("2.5")), n("2.50"), true),
            (RangeCondition::Lt(n("0")), n("-0.001"), true),
            (RangeCondition::Le(n("0")), n("0"), true),
            (RangeCondition::Gt(n("2.5")), n("2.5"), false),
            (RangeCondition::Ge(n("2.5")), n("1000"), true),
            (RangeCondition::Between(n("-3"), n("3")), n("-2.5"), true),
            (RangeCondition::Between(n("-3"), n("3")), n("10"), false),
            (RangeCondition::BeginsWith(s("s0")), s("s05"), true),
            (
                RangeCondition::BeginsWith(AttrValue::B(vec![1])),
                AttrValue::B(vec![1, 2]),
                true,
            ),
            (
                RangeCondition::BeginsWith(AttrValue::B(vec![1])),
                AttrValue::B(vec![2]),
                false,
            ),
            (RangeCondition::Lt(s("s")), s("s01"), false),
            (RangeCondition::Gt(s("s")), s("s01"), true),
            (RangeCondition::Eq(s("1")), n("1"), false),
        ];
        for (rc, v, want) in cases {
            assert_eq!(rc.matches(&v), want, "{rc:?} {v:?}");
        }
        assert_eq!(RangeCondition::Between(n("1"), n("2")).values().len(), 2);
    }
}
