//! UpdateExpression: parse, validate in AWS's order, apply.
//!
//! ```text
//! update  := clause+          (each of SET, REMOVE, ADD, DELETE at most once)
//! clause  := SET path '=' value (',' ...)* | REMOVE path (',' ...)*
//!          | ADD path :value (',' ...)*    | DELETE path :value (',' ...)*
//! value   := operand [('+' | '-') operand] | '(' operand [('+' | '-') operand] ')'
//! operand := '(' operand ')' | if_not_exists(path, operand) | list_append(operand, operand)
//!          | :value | path
//! ```

use std::collections::HashSet;
use std::hash::Hash;

use super::{
    check_path_clashes, check_text, first_reserved, resolve_path, resolve_value, ExprError, Fail,
    PResult, Parser, Path, PathElem, ROp, RPath, Substitutions, Tok,
};
use crate::value::{AttrValue, Item};

const KIND: &str = "UpdateExpression";
const SECTIONS: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];

pub(crate) const MSG_MISSING_ATTRIBUTE: &str =
    "The provided expression refers to an attribute that does not exist in the item";
pub(crate) const MSG_BAD_PATH: &str =
    "The document path provided in the update expression is invalid for update";
pub(crate) const MSG_BAD_TYPE: &str =
    "An operand in the update expression has an incorrect data type";
pub(crate) const MSG_LEGACY_BAD_TYPE: &str = "Type mismatch for attribute to update";

/// An operand of a SET value.
#[derive(Clone, Debug)]
pub(crate) enum UOp {
    Path(Path),
    Value(AttrValue),
    IfNotExists(Path, Box<UOp>),
    ListAppend(Box<UOp>, Box<UOp>),
}

/// The right-hand side of a SET action.
#[derive(Clone, Debug)]
pub(crate) enum SetValue {
    Op(UOp),
    Plus(UOp, UOp),
    Minus(UOp, UOp),
}

#[derive(Clone, Debug)]
pub(crate) enum Action {
    Set(Path, SetValue),
    Remove(Path),
    Add(Path, AttrValue),
    Delete(Path, AttrValue),
}

impl Action {
    fn path(&self) -> &Path {
        match self {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        }
    }
}

/// A parsed UpdateExpression (or legacy AttributeUpdates), ready to apply.
#[derive(Clone, Debug)]
pub struct Update {
    pub(crate) actions: Vec<Action>,
    /// AttributeUpdates semantics: ADD appends lists; other messages.
    pub(crate) legacy: bool,
}

// ---------------------------------------------------------------------------
// Syntax
// ---------------------------------------------------------------------------

enum RSetValue<'a> {
    Op(ROp<'a>),
    Plus(ROp<'a>, ROp<'a>),
    Minus(ROp<'a>, ROp<'a>),
}

impl<'a> RSetValue<'a> {
    fn operands(&self) -> Vec<&ROp<'a>> {
        match self {
            RSetValue::Op(a) => vec![a],
            RSetValue::Plus(a, b) | RSetValue::Minus(a, b) => vec![a, b],
        }
    }
}

enum RAction<'a> {
    Set(RPath<'a>, RSetValue<'a>),
    Remove(RPath<'a>),
    Add(RPath<'a>, &'a str),
    Delete(RPath<'a>, &'a str),
}

impl<'a> RAction<'a> {
    fn target(&self) -> &RPath<'a> {
        match self {
            RAction::Set(p, _)
            | RAction::Remove(p)
            | RAction::Add(p, _)
            | RAction::Delete(p, _) => p,
        }
    }
}

fn arithmetic_tail<'a>(p: &mut Parser<'a>, first: ROp<'a>) -> PResult<RSetValue<'a>> {
    match p.peek() {
        Tok::Plus | Tok::Minus => {
            let plus = p.peek() == Tok::Plus;
            p.bump();
            p.count_operator()?;
            let second = p.parse_operand()?;
            Ok(if plus {
                RSetValue::Plus(first, second)
            } else {
                RSetValue::Minus(first, second)
            })
        }
        _ => Ok(RSetValue::Op(first)),
    }
}

fn parse_set_value<'a>(p: &mut Parser<'a>) -> PResult<RSetValue<'a>> {
    if p.peek() != Tok::LParen {
        let first = p.parse_operand()?;
        return arithmetic_tail(p, first);
    }
    // `(a + b)`, `(a) + b` or `(a)`.
    p.enter()?;
    p.bump();
    let first = p.parse_operand()?;
    if matches!(p.peek(), Tok::Plus | Tok::Minus) {
        let value = arithmetic_tail(p, first)?;
        p.expect(Tok::RParen)?;
        p.leave();
        return Ok(value);
    }
    p.expect(Tok::RParen)?;
    p.leave();
    arithmetic_tail(p, first)
}

/// The actions, and the first section used twice.
fn parse_raw<'a>(p: &mut Parser<'a>) -> PResult<(Vec<RAction<'a>>, Option<&'static str>)> {
    let mut actions = Vec::new();
    let mut seen = [false; 4];
    let mut repeated = None;
    loop {
        let section = if p.peek() == Tok::Ident {
            SECTIONS
                .iter()
                .position(|s| s.eq_ignore_ascii_case(p.text(p.pos)))
        } else {
            None
        };
        let Some(si) = section else {
            return Err(Fail::At(p.pos));
        };
        p.bump();
        if seen[si] && repeated.is_none() {
            repeated = Some(SECTIONS[si]);
        }
        seen[si] = true;
        loop {
            let path = p.parse_path()?;
            actions.push(match si {
                0 => {
                    p.expect(Tok::Eq)?;
                    RAction::Set(path, parse_set_value(p)?)
                }
                1 => RAction::Remove(path),
                _ => {
                    let at = p.expect(Tok::Value)?;
                    if si == 2 {
                        RAction::Add(path, p.text(at))
                    } else {
                        RAction::Delete(path, p.text(at))
                    }
                }
            });
            if p.peek() != Tok::Comma {
                break;
            }
            p.bump();
        }
        if p.peek() == Tok::Eof {
            return Ok((actions, repeated));
        }
    }
}

// ---------------------------------------------------------------------------
// Semantic checks and lowering
// ---------------------------------------------------------------------------

enum LOp<'a> {
    Path(Path),
    Value(AttrValue),
    Func(&'a str, Vec<LOp<'a>>),
}

fn lower_op<'a>(op: &ROp<'a>, subs: &Substitutions) -> Result<LOp<'a>, String> {
    Ok(match op {
        ROp::Path(p) => LOp::Path(resolve_path(p, subs)?),
        ROp::Value(v) => LOp::Value(resolve_value(v, subs)?),
        ROp::Func(f) => {
            let mut args = Vec::with_capacity(f.args.len());
            for a in &f.args {
                args.push(lower_op(a, subs)?);
            }
            LOp::Func(f.name, args)
        }
    })
}

fn operand_type_error(op: &str, t: &str) -> String {
    format!("Incorrect operand type for operator or function; operator or function: {op}, operand type: {t}")
}

/// Checks a function call (inner calls first) as AWS does.
fn check_func(name: &str, args: &[LOp<'_>]) -> Result<(), String> {
    for a in args {
        if let LOp::Func(n, inner) = a {
            check_func(n, inner)?;
        }
    }
    if args.len() != 2 {
        return Err(format!(
            "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
            args.len()
        ));
    }
    if name == "if_not_exists" {
        if !matches!(args[0], LOp::Path(_)) {
            return Err(format!(
                "Operator or function requires a document path; operator or function: {name}"
            ));
        }
    } else {
        for a in args {
            if let LOp::Value(v) = a {
                if !matches!(v, AttrValue::L(_)) {
                    return Err(operand_type_error(name, v.type_name()));
                }
            }
        }
    }
    Ok(())
}

fn check_operand(op: &LOp<'_>) -> Result<(), String> {
    match op {
        LOp::Func(n, args) => check_func(n, args),
        _ => Ok(()),
    }
}

fn to_uop(op: LOp<'_>) -> UOp {
    match op {
        LOp::Path(p) => UOp::Path(p),
        LOp::Value(v) => UOp::Value(v),
        LOp::Func(name, args) => {
            let mut it = args.into_iter().map(to_uop);
            let a = it.next().unwrap_or(UOp::Value(AttrValue::Null));
            let b = it.next().unwrap_or(UOp::Value(AttrValue::Null));
            if name == "if_not_exists" {
                match a {
                    UOp::Path(p) => UOp::IfNotExists(p, Box::new(b)),
                    other => other,
                }
            } else {
                UOp::ListAppend(Box::new(a), Box::new(b))
            }
        }
    }
}

/// Long type names, as AWS words ADD/DELETE operand errors.
fn long_type_name(v: &AttrValue) -> &'static str {
    match v {
        AttrValue::S(_) => "STRING",
        AttrValue::N(_) => "NUMBER",
        AttrValue::B(_) => "BINARY",
        AttrValue::Bool(_) => "BOOLEAN",
        AttrValue::Null => "NULL",
        AttrValue::L(_) => "LIST",
        AttrValue::M(_) => "MAP",
        other => other.type_name(),
    }
}

fn lower_set_value(v: &RSetValue<'_>, subs: &Substitutions) -> Result<SetValue, String> {
    let ops: Vec<LOp<'_>> = {
        let mut out = Vec::new();
        for op in v.operands() {
            out.push(lower_op(op, subs)?);
        }
        out
    };
    for op in &ops {
        check_operand(op)?;
    }
    let symbol = match v {
        RSetValue::Op(_) => None,
        RSetValue::Plus(..) => Some("+"),
        RSetValue::Minus(..) => Some("-"),
    };
    if let Some(symbol) = symbol {
        for op in &ops {
            if let LOp::Value(v) = op {
                if !matches!(v, AttrValue::N(_)) {
                    return Err(operand_type_error(symbol, v.type_name()));
                }
            }
        }
    }
    let mut it = ops.into_iter().map(to_uop);
    let a = it.next().unwrap_or(UOp::Value(AttrValue::Null));
    Ok(match v {
        RSetValue::Op(_) => SetValue::Op(a),
        RSetValue::Plus(..) => SetValue::Plus(a, it.next().unwrap_or(UOp::Value(AttrValue::Null))),
        RSetValue::Minus(..) => {
            SetValue::Minus(a, it.next().unwrap_or(UOp::Value(AttrValue::Null)))
        }
    })
}

fn validate(
    raw: &[RAction<'_>],
    repeated: Option<&str>,
    subs: &Substitutions,
) -> Result<Vec<Action>, String> {
    // Reserved words, in order of appearance.
    let mut paths: Vec<&RPath<'_>> = Vec::new();
    for a in raw {
        paths.push(a.target());
        if let RAction::Set(_, v) = a {
            for op in v.operands() {
                op.paths(&mut |p| paths.push(p));
            }
        }
    }
    if let Some(m) = first_reserved(paths.iter().copied()) {
        return Err(m);
    }
    // Function names.
    for a in raw {
        if let RAction::Set(_, v) = a {
            let mut bad = None;
            for op in v.operands() {
                op.funcs(&mut |f| {
                    if bad.is_none() && f.name != "if_not_exists" && f.name != "list_append" {
                        bad = Some(match f.name {
                            "attribute_exists"
                            | "attribute_not_exists"
                            | "attribute_type"
                            | "begins_with"
                            | "contains"
                            | "size" => format!(
                                "The function is not allowed in an update expression; function: {}",
                                f.name
                            ),
                            other => format!("Invalid function name; function: {other}"),
                        });
                    }
                });
            }
            if let Some(m) = bad {
                return Err(m);
            }
        }
    }
    if let Some(section) = repeated {
        return Err(format!(
            "The \"{section}\" section can only be used once in an update expression;"
        ));
    }
    // Names, then values.
    for p in &paths {
        resolve_path(p, subs)?;
    }
    for a in raw {
        match a {
            RAction::Set(_, v) => {
                let mut missing = None;
                for op in v.operands() {
                    op.values(&mut |name| {
                        if missing.is_none() {
                            missing = resolve_value(name, subs).err();
                        }
                    });
                }
                if let Some(m) = missing {
                    return Err(m);
                }
            }
            RAction::Add(_, name) | RAction::Delete(_, name) => {
                resolve_value(name, subs)?;
            }
            RAction::Remove(_) => {}
        }
    }
    // Overlapping and conflicting targets.
    let mut targets = Vec::with_capacity(raw.len());
    for a in raw {
        targets.push(resolve_path(a.target(), subs)?);
    }
    check_path_clashes(&targets.iter().collect::<Vec<_>>())?;
    // ADD and DELETE operand types.
    for a in raw {
        match a {
            RAction::Add(_, name) => {
                let v = resolve_value(name, subs)?;
                if !matches!(v, AttrValue::N(_)) && !v.is_set() {
                    return Err(format!(
                        "Incorrect operand type for operator or function; operator: ADD, operand type: {}",
                        long_type_name(&v)
                    ));
                }
            }
            RAction::Delete(_, name) => {
                let v = resolve_value(name, subs)?;
                if !v.is_set() {
                    return Err(format!(
                        "Incorrect operand type for operator or function; operator: DELETE, operand type: {}",
                        long_type_name(&v)
                    ));
                }
            }
            _ => {}
        }
    }
    // SET values: functions and arithmetic.
    let mut actions = Vec::with_capacity(raw.len());
    for (a, target) in raw.iter().zip(targets) {
        actions.push(match a {
            RAction::Set(_, v) => Action::Set(target, lower_set_value(v, subs)?),
            RAction::Remove(_) => Action::Remove(target),
            RAction::Add(_, name) => Action::Add(target, resolve_value(name, subs)?),
            RAction::Delete(_, name) => Action::Delete(target, resolve_value(name, subs)?),
        });
    }
    Ok(actions)
}

/// Parses an UpdateExpression.
pub fn parse_update(text: &str, subs: &Substitutions) -> Result<Update, ExprError> {
    check_text(text, KIND)?;
    let mut p = Parser::new(text, &SECTIONS);
    let (raw, repeated) = parse_raw(&mut p).map_err(|f| ExprError::invalid(KIND, p.failure(f)))?;
    let actions = validate(&raw, repeated, subs).map_err(|m| ExprError::invalid(KIND, m))?;
    Ok(Update {
        actions,
        legacy: false,
    })
}

// ---------------------------------------------------------------------------
// Application
// ---------------------------------------------------------------------------

fn eval_uop(op: &UOp, item: &Item, legacy: bool) -> Result<AttrValue, ExprError> {
    match op {
        UOp::Path(p) => p
            .resolve(item)
            .cloned()
            .ok_or_else(|| ExprError::new(MSG_MISSING_ATTRIBUTE)),
        UOp::Value(v) => Ok(v.clone()),
        UOp::IfNotExists(p, fallback) => match p.resolve(item) {
            Some(v) => Ok(v.clone()),
            None => eval_uop(fallback, item, legacy),
        },
        UOp::ListAppend(a, b) => match (eval_uop(a, item, legacy)?, eval_uop(b, item, legacy)?) {
            (AttrValue::L(mut x), AttrValue::L(y)) => {
                x.extend(y);
                Ok(AttrValue::L(x))
            }
            _ => Err(type_error(legacy)),
        },
    }
}

fn type_error(legacy: bool) -> ExprError {
    ExprError::new(if legacy {
        MSG_LEGACY_BAD_TYPE
    } else {
        MSG_BAD_TYPE
    })
}

fn bad_path() -> ExprError {
    ExprError::new(MSG_BAD_PATH)
}

fn eval_set_value(v: &SetValue, item: &Item, legacy: bool) -> Result<AttrValue, ExprError> {
    match v {
        SetValue::Op(op) => eval_uop(op, item, legacy),
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            match (eval_uop(a, item, legacy)?, eval_uop(b, item, legacy)?) {
                (AttrValue::N(x), AttrValue::N(y)) => {
                    let r = if matches!(v, SetValue::Plus(..)) {
                        x.add(&y)
                    } else {
                        x.sub(&y)
                    };
                    Ok(AttrValue::N(r.map_err(ExprError::new)?))
                }
                _ => Err(type_error(legacy)),
            }
        }
    }
}

/// The container holding the path's last step (None if a step is missing or of
/// the wrong type).
fn parent_mut<'a>(item: &'a mut Item, path: &Path) -> Option<&'a mut AttrValue> {
    let (first, rest) = path.0.split_first()?;
    let PathElem::Attr(name) = first else {
        return None;
    };
    let mut cur = item.get_mut(name)?;
    let inner = rest.len().checked_sub(1)?;
    for e in &rest[..inner] {
        cur = match (e, cur) {
            (PathElem::Attr(n), AttrValue::M(m)) => m.get_mut(n)?,
            (PathElem::Index(i), AttrValue::L(l)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The value at `path`: `Ok(None)` when only the last step is missing, an error
/// when the path cannot exist in this item.
fn lookup_mut<'a>(item: &'a mut Item, path: &Path) -> Result<Option<&'a mut AttrValue>, ExprError> {
    match path.0.as_slice() {
        [PathElem::Attr(n)] => Ok(item.get_mut(n)),
        [.., last] => match (last, parent_mut(item, path).ok_or_else(bad_path)?) {
            (PathElem::Attr(n), AttrValue::M(m)) => Ok(m.get_mut(n)),
            (PathElem::Index(i), AttrValue::L(l)) => Ok(l.get_mut(*i)),
            _ => Err(bad_path()),
        },
        [] => Err(bad_path()),
    }
}

/// SET: a list index past the end appends.
fn set_path(item: &mut Item, path: &Path, v: AttrValue) -> Result<(), ExprError> {
    match path.0.as_slice() {
        [PathElem::Attr(n)] => {
            item.insert(n.clone(), v);
            Ok(())
        }
        [.., last] => match (last, parent_mut(item, path).ok_or_else(bad_path)?) {
            (PathElem::Attr(n), AttrValue::M(m)) => {
                m.insert(n.clone(), v);
                Ok(())
            }
            (PathElem::Index(i), AttrValue::L(l)) => {
                match l.get_mut(*i) {
                    Some(slot) => *slot = v,
                    None => l.push(v),
                }
                Ok(())
            }
            _ => Err(bad_path()),
        },
        [] => Err(bad_path()),
    }
}

/// REMOVE: a missing last step is no error; an impossible parent is.
fn remove_path(item: &mut Item, path: &Path) -> Result<(), ExprError> {
    match path.0.as_slice() {
        [PathElem::Attr(n)] => {
            item.remove(n);
            Ok(())
        }
        [.., last] => match (last, parent_mut(item, path).ok_or_else(bad_path)?) {
            (PathElem::Attr(n), AttrValue::M(m)) => {
                m.remove(n);
                Ok(())
            }
            (PathElem::Index(i), AttrValue::L(l)) => {
                if *i < l.len() {
                    l.remove(*i);
                }
                Ok(())
            }
            _ => Err(bad_path()),
        },
        [] => Err(bad_path()),
    }
}

fn union<T: Eq + Hash + Clone>(a: &mut Vec<T>, b: &[T]) {
    let extra: Vec<T> = {
        let present: HashSet<&T> = a.iter().collect();
        b.iter().filter(|x| !present.contains(x)).cloned().collect()
    };
    a.extend(extra);
}

fn difference<T: Eq + Hash>(a: &mut Vec<T>, b: &[T]) {
    let gone: HashSet<&T> = b.iter().collect();
    a.retain(|x| !gone.contains(x));
}

fn add_into(cur: &mut AttrValue, v: &AttrValue, legacy: bool) -> Result<(), ExprError> {
    match (cur, v) {
        (AttrValue::N(a), AttrValue::N(b)) => *a = a.add(b).map_err(ExprError::new)?,
        (AttrValue::Ss(a), AttrValue::Ss(b)) => union(a, b),
        (AttrValue::Ns(a), AttrValue::Ns(b)) => union(a, b),
        (AttrValue::Bs(a), AttrValue::Bs(b)) => union(a, b),
        (AttrValue::L(a), AttrValue::L(b)) if legacy => a.extend(b.iter().cloned()),
        _ => return Err(type_error(legacy)),
    }
    Ok(())
}

/// Returns whether the set is now empty.
fn delete_from(cur: &mut AttrValue, v: &AttrValue, legacy: bool) -> Result<bool, ExprError> {
    Ok(match (cur, v) {
        (AttrValue::Ss(a), AttrValue::Ss(b)) => {
            difference(a, b);
            a.is_empty()
        }
        (AttrValue::Ns(a), AttrValue::Ns(b)) => {
            difference(a, b);
            a.is_empty()
        }
        (AttrValue::Bs(a), AttrValue::Bs(b)) => {
            difference(a, b);
            a.is_empty()
        }
        _ => return Err(type_error(legacy)),
    })
}

impl Update {
    /// Applies the update to `item` (an empty item for a missing one). All SET
    /// values are computed from the item as it was before the update; list
    /// indexes refer to the original positions (REMOVE runs last, highest index
    /// first). On error the item is left unchanged.
    pub fn apply(&self, item: &mut Item) -> Result<(), ExprError> {
        let mut values = Vec::new();
        for a in &self.actions {
            if let Action::Set(_, v) = a {
                values.push(eval_set_value(v, item, self.legacy)?);
            }
        }
        let mut work = item.clone();
        let mut values = values.into_iter();
        for a in &self.actions {
            if let Action::Set(p, _) = a {
                let v = values.next().ok_or_else(bad_path)?;
                set_path(&mut work, p, v)?;
            }
        }
        for a in &self.actions {
            match a {
                Action::Add(p, v) => match lookup_mut(&mut work, p)? {
                    Some(cur) => add_into(cur, v, self.legacy)?,
                    None => set_path(&mut work, p, v.clone())?,
                },
                Action::Delete(p, v) => {
                    let now_empty = match lookup_mut(&mut work, p)? {
                        Some(cur) => delete_from(cur, v, self.legacy)?,
                        None => false,
                    };
                    if now_empty {
                        remove_path(&mut work, p)?;
                    }
                }
                _ => {}
            }
        }
        let mut removes: Vec<&Path> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove(p) => Some(p),
                _ => None,
            })
            .collect();
        removes.sort_by(|a, b| b.0.cmp(&a.0));
        for p in removes {
            remove_path(&mut work, p)?;
        }
        *item = work;
        Ok(())
    }

    /// The top-level attributes the update writes or removes, in order, without
    /// repeats (for UPDATED_OLD/UPDATED_NEW and key-attribute checks).
    pub fn top_level_attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.actions {
            let top = a.path().top();
            if !out.iter().any(|x| x == top) {
                out.push(top.to_string());
            }
        }
        out
    }

    /// The document paths the update writes or removes, in order.
    pub fn target_paths(&self) -> Vec<&Path> {
        self.actions.iter().map(Action::path).collect()
    }

    /// Whether the update does nothing (legacy AttributeUpdates may be empty).
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{item_from_json, item_to_json};
    use serde_json::{json, Map, Value};

    fn subs(values: &Value, names: &Value) -> Substitutions {
        let v: Option<Map<String, Value>> = values.as_object().cloned();
        let n: Option<Map<String, Value>> = names.as_object().cloned();
        Substitutions::new(n.as_ref(), v.as_ref()).unwrap()
    }

    fn run(item: Value, expr: &str, values: Value, names: Value) -> Result<Value, String> {
        let s = subs(&values, &names);
        let u = parse_update(expr, &s).map_err(|e| e.message)?;
        let mut it = item_from_json(item.as_object().unwrap()).unwrap();
        let before = it.clone();
        match u.apply(&mut it) {
            Ok(()) => Ok(Value::Object(item_to_json(&it))),
            Err(e) => {
                assert_eq!(it, before, "item changed by a failed update");
                Err(e.message)
            }
        }
    }

    #[test]
    fn apply_table() {
        let base = json!({
            "pk": {"S": "k"}, "a": {"S": "1"}, "n": {"N": "5"}, "f": {"N": "0.1"},
            "l": {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}, {"N": "3"}]},
            "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}, "nest": {"M": {}}}},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AQ==", "Ag=="]},
            "s": {"S": "text"}
        });
        let n = |x: &str| json!({"N": x});
        let s = |x: &str| json!({"S": x});
        // (expression, values, names, attribute to check, expected value or null for absent)
        let cases: Vec<(&str, Value, Value, &str, Value)> = vec![
            (
                "SET a = :v",
                json!({":v": s("x")}),
                json!(null),
                "a",
                s("x"),
            ),
            (
                "SET fresh = :v",
                json!({":v": n("1")}),
                json!(null),
                "fresh",
                n("1"),
            ),
            (
                "set n = n + :v",
                json!({":v": n("1")}),
                json!(null),
                "n",
                n("6"),
            ),
            (
                "SET n = n - :v",
                json!({":v": n("7.5")}),
                json!(null),
                "n",
                n("-2.5"),
            ),
            (
                "SET n = :v - n",
                json!({":v": n("7")}),
                json!(null),
                "n",
                n("2"),
            ),
            (
                "SET f = f + :v",
                json!({":v": n("0.2")}),
                json!(null),
                "f",
                n("0.3"),
            ),
            (
                "SET n=n+:v",
                json!({":v": n("1")}),
                json!(null),
                "n",
                n("6"),
            ),
            (
                "SET n = (n + :v)",
                json!({":v": n("1")}),
                json!(null),
                "n",
                n("6"),
            ),
            (
                "SET n = (n) + :v",
                json!({":v": n("1")}),
                json!(null),
                "n",
                n("6"),
            ),
            ("SET x = n", json!(null), json!(null), "x", n("5")),
            ("SET x = m.y", json!(null), json!(null), "x", n("2")),
            ("SET x = l[2]", json!(null), json!(null), "x", n("2")),
            (
                "SET n = if_not_exists(n, :v)",
                json!({":v": n("0")}),
                json!(null),
                "n",
                n("5"),
            ),
            (
                "SET z = if_not_exists(z, :v)",
                json!({":v": n("0")}),
                json!(null),
                "z",
                n("0"),
            ),
            (
                "SET z = if_not_exists(z, :z) + :one",
                json!({":z": n("0"), ":one": n("1")}),
                json!(null),
                "z",
                n("1"),
            ),
            (
                "SET z = if_not_exists(z, n)",
                json!(null),
                json!(null),
                "z",
                n("5"),
            ),
            (
                "SET l = list_append(l, :t)",
                json!({":t": {"L": [n("4")]}}),
                json!(null),
                "l",
                json!({"L": [n("0"), n("1"), n("2"), n("3"), n("4")]}),
            ),
            (
                "SET l = list_append(:h, l)",
                json!({":h": {"L": [n("9")]}}),
                json!(null),
                "l",
                json!({"L": [n("9"), n("0"), n("1"), n("2"), n("3")]}),
            ),
            (
                "SET z = list_append(if_not_exists(z, :e), :t)",
                json!({":e": {"L": []}, ":t": {"L": [s("x")]}}),
                json!(null),
                "z",
                json!({"L": [s("x")]}),
            ),
            (
                "SET l[1] = :v",
                json!({":v": s("one")}),
                json!(null),
                "l",
                json!({"L": [n("0"), s("one"), n("2"), n("3")]}),
            ),
            (
                "SET l[10] = :v",
                json!({":v": s("end")}),
                json!(null),
                "l",
                json!({"L": [n("0"), n("1"), n("2"), n("3"), s("end")]}),
            ),
            (
                "SET m.z = :v",
                json!({":v": n("9")}),
                json!(null),
                "m",
                json!({"M": {"x": n("1"), "y": n("2"), "z": n("9"), "nest": {"M": {}}}}),
            ),
            (
                "SET m.nest.q = :v",
                json!({":v": n("9")}),
                json!(null),
                "m",
                json!({"M": {"x": n("1"), "y": n("2"), "nest": {"M": {"q": n("9")}}}}),
            ),
            (
                "SET #a = :v",
                json!({":v": n("1")}),
                json!({"#a": "a.b"}),
                "a.b",
                n("1"),
            ),
            ("SET a = n, n = a", json!(null), json!(null), "n", s("1")),
            ("SET a = n, n = a", json!(null), json!(null), "a", n("5")),
            ("REMOVE a", json!(null), json!(null), "a", json!(null)),
            (
                "REMOVE not_there",
                json!(null),
                json!(null),
                "not_there",
                json!(null),
            ),
            (
                "REMOVE l[1], l[2]",
                json!(null),
                json!(null),
                "l",
                json!({"L": [n("0"), n("3")]}),
            ),
            (
                "REMOVE l[2], l[1]",
                json!(null),
                json!(null),
                "l",
                json!({"L": [n("0"), n("3")]}),
            ),
            (
                "REMOVE l[0], l[3]",
                json!(null),
                json!(null),
                "l",
                json!({"L": [n("1"), n("2")]}),
            ),
            (
                "REMOVE l[10]",
                json!(null),
                json!(null),
                "l",
                json!({"L": [n("0"), n("1"), n("2"), n("3")]}),
            ),
            (
                "REMOVE m.x, m.nope",
                json!(null),
                json!(null),
                "m",
                json!({"M": {"y": n("2"), "nest": {"M": {}}}}),
            ),
            (
                "SET l[1] = :v REMOVE l[0]",
                json!({":v": s("one")}),
                json!(null),
                "l",
                json!({"L": [s("one"), n("2"), n("3")]}),
            ),
            ("ADD n :v", json!({":v": n("2")}), json!(null), "n", n("7")),
            (
                "ADD fresh :v",
                json!({":v": n("2")}),
                json!(null),
                "fresh",
                n("2"),
            ),
            (
                "ADD ss :v",
                json!({":v": {"SS": ["b", "c"]}}),
                json!(null),
                "ss",
                json!({"SS": ["a", "b", "c"]}),
            ),
            (
                "ADD ns :v",
                json!({":v": {"NS": ["2.0", "3"]}}),
                json!(null),
                "ns",
                json!({"NS": ["1", "2", "3"]}),
            ),
            (
                "ADD bs :v",
                json!({":v": {"BS": ["Aw=="]}}),
                json!(null),
                "bs",
                json!({"BS": ["AQ==", "Ag==", "Aw=="]}),
            ),
            (
                "ADD nset :v",
                json!({":v": {"SS": ["hello"]}}),
                json!(null),
                "nset",
                json!({"SS": ["hello"]}),
            ),
            (
                "ADD m.cnt :v",
                json!({":v": n("1")}),
                json!(null),
                "m",
                json!({"M": {"x": n("1"), "y": n("2"), "cnt": n("1"), "nest": {"M": {}}}}),
            ),
            (
                "ADD m.x :v",
                json!({":v": n("-1")}),
                json!(null),
                "m",
                json!({"M": {"x": n("0"), "y": n("2"), "nest": {"M": {}}}}),
            ),
            (
                "DELETE ss :v",
                json!({":v": {"SS": ["a", "z"]}}),
                json!(null),
                "ss",
                json!({"SS": ["b"]}),
            ),
            (
                "DELETE ss :v",
                json!({":v": {"SS": ["a", "b"]}}),
                json!(null),
                "ss",
                json!(null),
            ),
            (
                "DELETE ns :v",
                json!({":v": {"NS": ["1.00"]}}),
                json!(null),
                "ns",
                json!({"NS": ["2"]}),
            ),
            (
                "DELETE bs :v",
                json!({":v": {"BS": ["AQ=="]}}),
                json!(null),
                "bs",
                json!({"BS": ["Ag=="]}),
            ),
            (
                "DELETE gone :v",
                json!({":v": {"SS": ["a"]}}),
                json!(null),
                "gone",
                json!(null),
            ),
            (
                "SET a = :v REMOVE s ADD n :one DELETE ss :d",
                json!({":v": n("1"), ":one": n("1"), ":d": {"SS": ["a"]}}),
                json!(null),
                "s",
                json!(null),
            ),
            (
                "REMOVE s SET a = :v",
                json!({":v": n("1")}),
                json!(null),
                "a",
                n("1"),
            ),
            (
                "set a = :v remove s",
                json!({":v": n("1")}),
                json!(null),
                "s",
                json!(null),
            ),
            (
                "ADD #e :e,#d :d DELETE #c :c REMOVE #b SET #f = :f",
                json!({":c": {"SS": ["a"]}, ":d": n("5"), ":e": {"SS": ["a", "b"]}, ":f": {"L": [s("a")]}}),
                json!({"#b": "b", "#c": "c", "#d": "d", "#e": "e", "#f": "f"}),
                "e",
                json!({"SS": ["a", "b"]}),
            ),
        ];
        for (expr, values, names, attr, want) in cases {
            let got =
                run(base.clone(), expr, values, names).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let got = got.get(attr).cloned().unwrap_or(Value::Null);
            // Sets compare as sets.
            let norm = |v: Value| -> Value {
                match v.as_object().and_then(|o| o.iter().next()) {
                    Some((k, Value::Array(a))) if k.ends_with('S') && k.len() == 2 => {
                        let mut a: Vec<String> = a
                            .iter()
                            .map(|x| x.as_str().unwrap_or("").to_string())
                            .collect();
                        a.sort();
                        json!({k.as_str(): a})
                    }
                    _ => v,
                }
            };
            assert_eq!(norm(got), norm(want), "{expr}");
        }
    }

    #[test]
    fn tenths_add_up_exactly() {
        let s = subs(&json!({":d": {"N": "0.1"}}), &json!(null));
        let u = parse_update("ADD tally :d", &s).unwrap();
        let mut item = Item::new();
        for _ in 0..10 {
            u.apply(&mut item).unwrap();
        }
        assert_eq!(item["tally"].to_json(), json!({"N": "1"}));
    }

    #[test]
    fn runtime_errors() {
        let base = json!({
            "pk": {"S": "k"}, "s": {"S": "text"}, "ss": {"SS": ["a"]}, "n": {"N": "1"},
            "big": {"N": "99999999999999999999999999999999999999"},
            "m": {"M": {"1": {"S": "a"}}}, "l": {"L": [{"S": "a"}, {"S": "b"}]}
        });
        let n = |x: &str| json!({"N": x});
        let cases: Vec<(&str, Value, &str)> = vec![
            ("SET s = s + :one", json!({":one": n("1")}), MSG_BAD_TYPE),
            (
                "SET x = absent + :one",
                json!({":one": n("1")}),
                MSG_MISSING_ATTRIBUTE,
            ),
            ("SET x = absent", json!(null), MSG_MISSING_ATTRIBUTE),
            (
                "SET x = list_append(absent, l)",
                json!(null),
                MSG_MISSING_ATTRIBUTE,
            ),
            ("SET x = list_append(s, l)", json!(null), MSG_BAD_TYPE),
            (
                "SET big = big + :tiny",
                json!({":tiny": n("0.1")}),
                crate::number::MSG_OVERFLOW,
            ),
            (
                "ADD big :tiny",
                json!({":tiny": n("0.1")}),
                crate::number::MSG_OVERFLOW,
            ),
            ("ADD s :one", json!({":one": n("1")}), MSG_BAD_TYPE),
            ("ADD ss :n", json!({":n": {"NS": ["1"]}}), MSG_BAD_TYPE),
            ("ADD n :n", json!({":n": {"NS": ["1"]}}), MSG_BAD_TYPE),
            ("ADD l :n", json!({":n": {"SS": ["1"]}}), MSG_BAD_TYPE),
            ("DELETE n :n", json!({":n": {"NS": ["1"]}}), MSG_BAD_TYPE),
            ("DELETE ss :n", json!({":n": {"NS": ["1"]}}), MSG_BAD_TYPE),
            ("SET m.a.b = :v", json!({":v": n("1")}), MSG_BAD_PATH),
            ("SET nope[0] = :v", json!({":v": n("1")}), MSG_BAD_PATH),
            ("SET nope.x = :v", json!({":v": n("1")}), MSG_BAD_PATH),
            ("SET s[1] = :v", json!({":v": n("1")}), MSG_BAD_PATH),
            ("SET m[1] = :v", json!({":v": n("1")}), MSG_BAD_PATH),
            ("SET l.#1 = :v", json!({":v": n("1")}), MSG_BAD_PATH),
            ("REMOVE y.a", json!(null), MSG_BAD_PATH),
            ("REMOVE s[1]", json!(null), MSG_BAD_PATH),
            ("REMOVE m[1]", json!(null), MSG_BAD_PATH),
            ("REMOVE l.#1", json!(null), MSG_BAD_PATH),
            ("ADD y.a :n", json!({":n": n("1")}), MSG_BAD_PATH),
            ("DELETE y.a :n", json!({":n": {"SS": ["a"]}}), MSG_BAD_PATH),
            ("ADD l.#1 :n", json!({":n": n("1")}), MSG_BAD_PATH),
        ];
        for (expr, values, want) in cases {
            let names = if expr.contains("#1") {
                json!({"#1": "1"})
            } else {
                json!(null)
            };
            assert_eq!(
                run(base.clone(), expr, values, names),
                Err(want.to_string()),
                "{expr}"
            );
        }
    }

    #[test]
    fn parse_errors() {
        let n = |x: &str| json!({"N": x});
        let ue = "Invalid UpdateExpression: ";
        let vals = json!({":a": {"S": "a"}, ":b": n("1"), ":c": {"B": "YQ=="}, ":d": {"BOOL": false},
                          ":e": {"NULL": true}, ":f": {"SS": ["a"]}, ":g": {"NS": ["1"]}, ":h": {"BS": ["YQ=="]},
                          ":i": {"M": {}}, ":j": {"L": []}, ":v": n("1")});
        let names = json!({"#c": "c", "#d": "[3]", "#1": "1"});
        let cases: Vec<(&str, String)> = vec![
            ("INVALID SYNTAX", format!("{ue}Syntax error; token: \"INVALID\", near: \"INVALID SYNTAX\"")),
            ("SET a = ", format!("{ue}Syntax error; token: \"<EOF>\", near: \"= \"")),
            ("SET a = :v,", format!("{ue}Syntax error; token: \"<EOF>\", near: \",\"")),
            ("SET = :v", format!("{ue}Syntax error; token: \"=\", near: \"SET = :v\"")),
            ("REMOVE", format!("{ue}Syntax error; token: \"<EOF>\", near: \"REMOVE\"")),
            ("ADD a", format!("{ue}Syntax error; token: \"<EOF>\", near: \"a\"")),
            ("SET a = :v WHERE b", format!("{ue}Syntax error; token: \"WHERE\", near: \":v WHERE b\"")),
            ("SET MyStr = myNum + 1", format!("{ue}Syntax error; token: \"1\", near: \"+ 1\"")),
            ("SET MyStr = myNum Mystr2 myNum2", format!("{ue}Syntax error; token: \"Mystr2\", near: \"myNum Mystr2 myNum2\"")),
            ("SET path = VALUE 1", format!("{ue}Syntax error; token: \"1\", near: \"VALUE 1\"")),
            ("SET MyStr = my Num", format!("{ue}Syntax error; token: \"Num\", near: \"my Num\"")),
            ("set a = b + c + d", format!("{ue}Syntax error; token: \"+\", near: \"c + d\"")),
            ("set a = b / c", format!("{ue}Syntax error; token: \"/\", near: \"b / c\"")),
            ("set a[1] = \"eight\"", format!("{ue}Syntax error; token: \"\"\", near: \"= \"eight\"")),
            ("remove a = b", format!("{ue}Syntax error; token: \"=\", near: \"a = b\"")),
            ("delete a b", format!("{ue}Syntax error; token: \"b\", near: \"a b\"")),
            ("set :a = b", format!("{ue}Syntax error; token: \":a\", near: \"set :a =\"")),
            ("SET a = :v SET b = :v", format!("{ue}The \"SET\" section can only be used once in an update expression;")),
            ("remove #d set a = :v remove e", format!("{ue}The \"REMOVE\" section can only be used once in an update expression;")),
            ("SET status = :v", format!("{ue}Attribute name is a reserved keyword; reserved keyword: status")),
            (" remove Absolute ", format!("{ue}Attribute name is a reserved keyword; reserved keyword: Absolute")),
            ("SET a = :x", format!("{ue}An expression attribute value used in expression is not defined; attribute value: :x")),
            ("SET #n = :v", format!("{ue}An expression attribute name used in the document path is not defined; attribute name: #n")),
            ("SET #n = :x", format!("{ue}An expression attribute name used in the document path is not defined; attribute name: #n")),
            ("set #c = if_not_exist(:c) set c = d", format!("{ue}Invalid function name; function: if_not_exist")),
            ("SET a = size(b)", format!("{ue}The function is not allowed in an update expression; function: size")),
            ("SET a = :v, a.b = :v", format!("{ue}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]")),
            ("SET a = :v REMOVE a", format!("{ue}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]")),
            ("set c.b.#c = a, c = a, #1 = a", format!("{ue}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, b, c], path two: [c]")),
            ("set #c[3].#d = a, #c[3] = a", format!("{ue}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3]]")),
            ("set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)", format!("{ue}Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path two: [c]")),
            ("set #c[3].#d = a, #c.#d[3] = a", format!("{ue}Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3], [3]]")),
            ("remove a.#c set a[1] = #1", format!("{ue}Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1]]")),
            ("ADD a :a", format!("{ue}Incorrect operand type for operator or function; operator: ADD, operand type: STRING")),
            ("DELETE a :a", format!("{ue}Incorrect operand type for operator or function; operator: DELETE, operand type: STRING")),
            ("ADD a :e", format!("{ue}Incorrect operand type for operator or function; operator: ADD, operand type: NULL")),
            ("ADD a :d", format!("{ue}Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN")),
            ("ADD a :c", format!("{ue}Incorrect operand type for operator or function; operator: ADD, operand type: BINARY")),
            ("ADD a :i", format!("{ue}Incorrect operand type for operator or function; operator: ADD, operand type: MAP")),
            ("ADD a :j", format!("{ue}Incorrect operand type for operator or function; operator: ADD, operand type: LIST")),
            ("DELETE a :b", format!("{ue}Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER")),
            ("set a = if_not_exists(c)", format!("{ue}Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1")),
            ("set a = list_append(c)", format!("{ue}Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1")),
            ("set a = if_not_exists(:a, c)", format!("{ue}Operator or function requires a document path; operator or function: if_not_exists")),
            ("set a = if_not_exists(if_not_exists(a, b), c)", format!("{ue}Operator or function requires a document path; operator or function: if_not_exists")),
            ("set a = list_append(:a, a)", format!("{ue}Incorrect operand type for operator or function; operator or function: list_append, operand type: S")),
            ("set a = list_append(a, :b)", format!("{ue}Incorrect operand type for operator or function; operator or function: list_append, operand type: N")),
            ("set a = list_append(:i, a)", format!("{ue}Incorrect operand type for operator or function; operator or function: list_append, operand type: M")),
            ("set a = a + :a", format!("{ue}Incorrect operand type for operator or function; operator or function: +, operand type: S")),
            ("set a = :c - a", format!("{ue}Incorrect operand type for operator or function; operator or function: -, operand type: B")),
            ("set a = a + :f", format!("{ue}Incorrect operand type for operator or function; operator or function: +, operand type: SS")),
            ("set a = a - :j", format!("{ue}Incorrect operand type for operator or function; operator or function: -, operand type: L")),
            ("", format!("{ue}The expression can not be empty;")),
        ];
        for (expr, want) in cases {
            let s = subs(&vals, &names);
            let got = parse_update(expr, &s).map(|_| ()).map_err(|e| e.message);
            assert_eq!(got, Err(want.clone()), "{expr}");
        }
    }

    /// Nested functions up to the operator limit parse and apply within a small
    /// stack, even in debug builds.
    #[test]
    fn deep_nesting_fits_a_small_stack() {
        let run = || {
            let s = subs(&json!({":t": {"L": [{"N": "1"}]}}), &json!(null));
            // As deep as 4 KB allows.
            let expr = format!(
                "SET a = {}:t{}",
                "list_append(".repeat(240),
                ",:t)".repeat(240)
            );
            let u = parse_update(&expr, &s).unwrap();
            let mut item = Item::new();
            u.apply(&mut item).unwrap();
            assert!(matches!(&item["a"], AttrValue::L(l) if l.len() == 241));
            let expr = format!("SET a = {}:t{}", "(".repeat(400), ")".repeat(400));
            assert!(parse_update(&expr, &s).is_err());
        };
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn touched_attributes() {
        let s = subs(
            &json!({":v": {"N": "1"}, ":s": {"SS": ["x"]}}),
            &json!({"#k": "key"}),
        );
        let u = parse_update(
            "SET a.b = :v, c = :v REMOVE #k, a2[0] ADD d :v DELETE e :s",
            &s,
        )
        .unwrap();
        assert_eq!(
            u.top_level_attributes(),
            vec!["a", "c", "key", "a2", "d", "e"]
        );
        assert_eq!(u.target_paths()[0].to_string(), "a.b");
        assert!(s.check_unused().is_ok());
        assert!(!u.is_empty());
    }
}
