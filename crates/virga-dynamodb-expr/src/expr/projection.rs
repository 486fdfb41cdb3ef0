//! ProjectionExpression: `path (',' path)*`, and projecting items through it.

use std::collections::BTreeMap;

use super::{
    check_path_clashes, check_text, first_reserved, resolve_path, ExprError, Parser, Path,
    PathElem, RPath, Substitutions, Tok,
};
use crate::value::{AttrValue, Item};

const KIND: &str = "ProjectionExpression";

/// Parses a ProjectionExpression into its document paths.
pub fn parse_projection(text: &str, subs: &Substitutions) -> Result<Vec<Path>, ExprError> {
    check_text(text, KIND)?;
    let mut p = Parser::new(text, &[]);
    let raw = (|| {
        let mut raw: Vec<RPath<'_>> = vec![p.parse_path()?];
        while p.peek() == Tok::Comma {
            p.bump();
            raw.push(p.parse_path()?);
        }
        if p.peek() != Tok::Eof {
            return Err(super::Fail::At(p.pos));
        }
        Ok(raw)
    })();
    let raw = raw.map_err(|f| ExprError::invalid(KIND, p.failure(f)))?;
    let fail = |m: String| ExprError::invalid(KIND, m);
    if let Some(m) = first_reserved(raw.iter()) {
        return Err(fail(m));
    }
    let mut paths = Vec::with_capacity(raw.len());
    for r in &raw {
        paths.push(resolve_path(r, subs).map_err(fail)?);
    }
    check_path_clashes(&paths.iter().collect::<Vec<_>>()).map_err(fail)?;
    Ok(paths)
}

/// A projection under construction: lists are keyed by their original index so
/// that selected elements come out in order, compacted.
enum Node {
    Leaf(AttrValue),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

impl Node {
    fn into_value(self) -> AttrValue {
        match self {
            Node::Leaf(v) => v,
            Node::Map(m) => AttrValue::M(m.into_iter().map(|(k, v)| (k, v.into_value())).collect()),
            Node::List(l) => AttrValue::L(l.into_values().map(Node::into_value).collect()),
        }
    }
}

fn insert(slot: &mut Node, rest: &[PathElem], value: &AttrValue) {
    let Some((step, tail)) = rest.split_first() else {
        *slot = Node::Leaf(value.clone());
        return;
    };
    match step {
        PathElem::Attr(name) => {
            if !matches!(slot, Node::Map(_)) {
                if matches!(slot, Node::Leaf(_)) {
                    return; // already projected whole
                }
                *slot = Node::Map(BTreeMap::new());
            }
            if let Node::Map(m) = slot {
                let child = m
                    .entry(name.clone())
                    .or_insert_with(|| Node::Map(BTreeMap::new()));
                insert(child, tail, value);
            }
        }
        PathElem::Index(i) => {
            if !matches!(slot, Node::List(_)) {
                if matches!(slot, Node::Leaf(_)) {
                    return;
                }
                *slot = Node::List(BTreeMap::new());
            }
            if let Node::List(l) = slot {
                let child = l.entry(*i).or_insert_with(|| Node::Map(BTreeMap::new()));
                insert(child, tail, value);
            }
        }
    }
}

/// The parts of `item` the paths select: missing paths are left out, and list
/// elements selected by index are compacted in index order, as AWS returns them.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    let mut nested: BTreeMap<String, Node> = BTreeMap::new();
    for path in paths {
        let Some(value) = path.resolve(item) else {
            continue;
        };
        if path.0.len() == 1 {
            out.insert(path.top().to_string(), value.clone());
            continue;
        }
        if out.contains_key(path.top()) {
            continue;
        }
        let slot = nested
            .entry(path.top().to_string())
            .or_insert_with(|| Node::Map(BTreeMap::new()));
        insert(slot, &path.0[1..], value);
    }
    for (name, node) in nested {
        out.entry(name).or_insert_with(|| node.into_value());
    }
    out
}

/// The legacy AttributesToGet as projection paths (names taken literally).
pub fn projection_from_attributes_to_get(names: &[String]) -> Vec<Path> {
    names.iter().map(|n| Path::attr(n.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{item_from_json, item_to_json};
    use serde_json::{json, Map, Value};

    fn item() -> Item {
        item_from_json(
            json!({
                "pk": {"S": "proj"}, "top": {"S": "t"}, "oth": {"S": "o"}, "#weird": {"S": "w"},
                "m": {"M": {"a": {"M": {"b": {"N": "1"}, "c": {"N": "2"}}}, "z": {"S": "z"}}},
                "l": {"L": [{"S": "l0"}, {"M": {"x": {"S": "deep"}, "y": {"S": "skip"}}}, {"S": "l2"}]}
            })
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    fn proj(expr: &str, names: Value) -> Result<Value, String> {
        let n: Option<Map<String, Value>> = names.as_object().cloned();
        let s = Substitutions::new(n.as_ref(), None).unwrap();
        let paths = parse_projection(expr, &s).map_err(|e| e.message)?;
        Ok(Value::Object(item_to_json(&project(&item(), &paths))))
    }

    #[test]
    fn projections() {
        let cases: Vec<(&str, Value, Value)> = vec![
            ("top", json!(null), json!({"top": {"S": "t"}})),
            (
                "top, oth, absent",
                json!(null),
                json!({"top": {"S": "t"}, "oth": {"S": "o"}}),
            ),
            (
                "top, m.a.b, l[1].x, l[2], #w, absent, m.nope",
                json!({"#w": "#weird"}),
                json!({
                    "top": {"S": "t"}, "#weird": {"S": "w"},
                    "m": {"M": {"a": {"M": {"b": {"N": "1"}}}}},
                    "l": {"L": [{"M": {"x": {"S": "deep"}}}, {"S": "l2"}]}
                }),
            ),
            (
                "l[2], l[0]",
                json!(null),
                json!({"l": {"L": [{"S": "l0"}, {"S": "l2"}]}}),
            ),
            ("l[5]", json!(null), json!({})),
            ("l[1].nope", json!(null), json!({})),
            (
                "m.a",
                json!(null),
                json!({"m": {"M": {"a": {"M": {"b": {"N": "1"}, "c": {"N": "2"}}}}}}),
            ),
            (
                "m.a.b, m.z",
                json!(null),
                json!({"m": {"M": {"a": {"M": {"b": {"N": "1"}}}, "z": {"S": "z"}}}}),
            ),
            ("top[0], m[0], l.x", json!(null), json!({})),
            (
                "#m . #a . b",
                json!({"#m": "m", "#a": "a"}),
                json!({"m": {"M": {"a": {"M": {"b": {"N": "1"}}}}}}),
            ),
        ];
        for (expr, names, want) in cases {
            assert_eq!(proj(expr, names), Ok(want), "{expr}");
        }
    }

    #[test]
    fn projection_errors() {
        let pe = "Invalid ProjectionExpression: ";
        let cases: Vec<(&str, Value, String)> = vec![
            ("a, a.b", json!(null), format!("{pe}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]")),
            ("a, a", json!(null), format!("{pe}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]")),
            ("a[0], a.b", json!(null), format!("{pe}Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [0]], path two: [a, b]")),
            ("!!! INVALID !!!", json!(null), format!("{pe}Syntax error; token: \"!\", near: \"!!\"")),
            ("a b", json!(null), format!("{pe}Syntax error; token: \"b\", near: \"a b\"")),
            ("a,", json!(null), format!("{pe}Syntax error; token: \"<EOF>\", near: \",\"")),
            ("a[-1]", json!(null), format!("{pe}Syntax error; token: \"-\", near: \"[-1\"")),
            ("name", json!(null), format!("{pe}Attribute name is a reserved keyword; reserved keyword: name")),
            ("#x", json!(null), format!("{pe}An expression attribute name used in the document path is not defined; attribute name: #x")),
            ("", json!(null), format!("{pe}The expression can not be empty;")),
        ];
        for (expr, names, want) in cases {
            assert_eq!(proj(expr, names), Err(want.clone()), "{expr}");
        }
        let deep = format!("a{}", ".b".repeat(32));
        assert_eq!(
            proj(&deep, json!(null)),
            Err(format!(
                "{pe}The document path has too many nesting levels; nesting levels: 33"
            ))
        );
    }

    #[test]
    fn attributes_to_get() {
        let paths = projection_from_attributes_to_get(&["a.b".to_string(), "top".to_string()]);
        let got = project(&item(), &paths);
        assert_eq!(got.len(), 1);
        assert!(got.contains_key("top"));
    }
}
