//! ConditionExpression / FilterExpression (and the grammar KeyConditionExpression
//! shares): parse, validate in AWS's order, evaluate.
//!
//! Grammar (precedence NOT > AND > OR; keywords case-insensitive, function
//! names not):
//! ```text
//! cond    := and (OR and)*
//! and     := not (AND not)*
//! not     := NOT not | primary
//! primary := '(' cond ')' | operand [cmp operand | BETWEEN operand AND operand | IN '(' operand, ... ')']
//! operand := '(' operand ')' | function '(' operand, ... ')' | :value | path
//! ```

use std::cmp::Ordering;

use super::{
    check_text, describe_value, first_reserved, resolve_path, resolve_value, ExprError, Fail,
    PResult, Parser, Path, RFunc, ROp, RPath, Substitutions, Tok,
};
use crate::value::{compare, AttrValue, Item, Number};

const KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];
const MAX_IN_OPERANDS: usize = 100;
const TYPE_NAMES: [&str; 10] = ["B", "NULL", "SS", "BOOL", "L", "BS", "N", "NS", "S", "M"];

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub(crate) fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// An operand of a parsed condition.
#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Path(Path),
    Value(AttrValue),
    Size(Box<Operand>),
}

/// A parsed condition.
#[derive(Clone, Debug)]
pub(crate) enum Cond {
    Cmp(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    AttrType(Operand, &'static str),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// Always this result (an empty legacy condition map).
    Const(bool),
}

/// A parsed ConditionExpression or FilterExpression (or a legacy
/// Expected/QueryFilter/ScanFilter), ready to evaluate against items.
#[derive(Clone, Debug)]
pub struct Condition {
    pub(crate) root: Cond,
}

// ---------------------------------------------------------------------------
// Syntax
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum RCond<'a> {
    Cmp(CmpOp, ROp<'a>, ROp<'a>),
    Between(ROp<'a>, ROp<'a>, ROp<'a>),
    In(ROp<'a>, Vec<ROp<'a>>),
    Func(RFunc<'a>),
    And(Box<RCond<'a>>, Box<RCond<'a>>),
    Or(Box<RCond<'a>>, Box<RCond<'a>>),
    Not(Box<RCond<'a>>),
}

/// What a sub-expression turned out to be: a condition, or an operand that a
/// comparison after a closing parenthesis may still use. Boxed, as are the
/// other values the recursive functions pass, to keep their stack frames small
/// (nesting is bounded only by the operator limit).
enum Node<'a> {
    Cond(Box<RCond<'a>>),
    Op(Box<ROp<'a>>),
}

struct Parsed<'a> {
    node: Node<'a>,
    /// Wholly enclosed in one pair of parentheses.
    paren: bool,
}

fn to_cond<'a>(p: &Parser<'a>, node: Node<'a>) -> PResult<Box<RCond<'a>>> {
    match node {
        Node::Cond(c) => Ok(c),
        Node::Op(op) => match *op {
            ROp::Func(f) => Ok(Box::new(RCond::Func(f))),
            _ => Err(Fail::At(p.pos)),
        },
    }
}

fn parse_or<'a>(p: &mut Parser<'a>) -> PResult<Parsed<'a>> {
    let first = parse_and(p)?;
    if !p.at_word("OR") {
        return Ok(first);
    }
    let mut acc = to_cond(p, first.node)?;
    while p.at_word("OR") {
        p.bump();
        p.count_operator()?;
        let rhs = parse_and(p)?;
        acc = Box::new(RCond::Or(acc, to_cond(p, rhs.node)?));
    }
    Ok(Parsed {
        node: Node::Cond(acc),
        paren: false,
    })
}

fn parse_and<'a>(p: &mut Parser<'a>) -> PResult<Parsed<'a>> {
    let first = parse_not(p)?;
    if !p.at_word("AND") {
        return Ok(first);
    }
    let mut acc = to_cond(p, first.node)?;
    while p.at_word("AND") {
        p.bump();
        p.count_operator()?;
        let rhs = parse_not(p)?;
        acc = Box::new(RCond::And(acc, to_cond(p, rhs.node)?));
    }
    Ok(Parsed {
        node: Node::Cond(acc),
        paren: false,
    })
}

fn parse_not<'a>(p: &mut Parser<'a>) -> PResult<Parsed<'a>> {
    if !p.at_word("NOT") {
        return parse_primary(p);
    }
    p.bump();
    p.count_operator()?;
    p.enter()?;
    let inner = parse_not(p)?;
    let inner = to_cond(p, inner.node)?;
    p.leave();
    Ok(Parsed {
        node: Node::Cond(Box::new(RCond::Not(inner))),
        paren: false,
    })
}

fn parse_primary<'a>(p: &mut Parser<'a>) -> PResult<Parsed<'a>> {
    if p.peek() != Tok::LParen {
        let op = Box::new(p.parse_operand()?);
        return comparison_tail(p, op, false);
    }
    p.enter()?;
    p.bump();
    let inner = parse_or(p)?;
    p.expect(Tok::RParen)?;
    p.leave();
    if inner.paren {
        p.redundant_parens = true;
    }
    match inner.node {
        Node::Cond(c) => Ok(Parsed {
            node: Node::Cond(c),
            paren: true,
        }),
        Node::Op(op) => comparison_tail(p, op, true),
    }
}

/// A comparison, BETWEEN or IN after `left`, else `left` itself (`paren` says
/// whether it was parenthesised).
fn comparison_tail<'a>(p: &mut Parser<'a>, left: Box<ROp<'a>>, paren: bool) -> PResult<Parsed<'a>> {
    let op = match p.peek() {
        Tok::Eq => Some(CmpOp::Eq),
        Tok::Ne => Some(CmpOp::Ne),
        Tok::Lt => Some(CmpOp::Lt),
        Tok::Le => Some(CmpOp::Le),
        Tok::Gt => Some(CmpOp::Gt),
        Tok::Ge => Some(CmpOp::Ge),
        _ => None,
    };
    let cond = if let Some(op) = op {
        p.bump();
        p.count_operator()?;
        let right = p.parse_operand()?;
        RCond::Cmp(op, *left, right)
    } else if p.at_word("BETWEEN") {
        p.bump();
        p.count_operator()?;
        let lo = p.parse_operand()?;
        if !p.at_word("AND") {
            return Err(Fail::At(p.pos));
        }
        p.bump();
        let hi = p.parse_operand()?;
        RCond::Between(*left, lo, hi)
    } else if p.at_word("IN") {
        p.bump();
        p.count_operator()?;
        p.expect(Tok::LParen)?;
        let mut list = vec![p.parse_operand()?];
        while p.peek() == Tok::Comma {
            p.bump();
            list.push(p.parse_operand()?);
        }
        p.expect(Tok::RParen)?;
        RCond::In(*left, list)
    } else {
        return Ok(Parsed {
            node: Node::Op(left),
            paren,
        });
    };
    Ok(Parsed {
        node: Node::Cond(Box::new(cond)),
        paren: false,
    })
}

fn parse_raw<'a>(p: &mut Parser<'a>) -> PResult<Box<RCond<'a>>> {
    let top = parse_or(p)?;
    let c = to_cond(p, top.node)?;
    if p.peek() != Tok::Eof {
        return Err(Fail::At(p.pos));
    }
    Ok(c)
}

// ---------------------------------------------------------------------------
// Semantic checks and lowering
// ---------------------------------------------------------------------------

impl<'a> RCond<'a> {
    /// The operands of every leaf, in order.
    fn leaf_operands<'r>(&'r self, f: &mut dyn FnMut(&'r ROp<'a>)) {
        match self {
            RCond::Cmp(_, a, b) => {
                f(a);
                f(b);
            }
            RCond::Between(a, b, c) => {
                f(a);
                f(b);
                f(c);
            }
            RCond::In(a, list) => {
                f(a);
                for x in list {
                    f(x);
                }
            }
            RCond::Func(func) => {
                for x in &func.args {
                    f(x);
                }
            }
            RCond::And(a, b) | RCond::Or(a, b) => {
                a.leaf_operands(f);
                b.leaf_operands(f);
            }
            RCond::Not(a) => a.leaf_operands(f),
        }
    }

    /// Every function call, inner ones first, in order.
    fn funcs<'r>(&'r self, f: &mut dyn FnMut(&'r RFunc<'a>)) {
        match self {
            RCond::Func(func) => {
                for a in &func.args {
                    a.funcs(f);
                }
                f(func);
            }
            RCond::And(a, b) | RCond::Or(a, b) => {
                a.funcs(f);
                b.funcs(f);
            }
            RCond::Not(a) => a.funcs(f),
            leaf => leaf.leaf_operands(&mut |op| op.funcs(f)),
        }
    }
}

const CONDITION_FUNCTIONS: [(&str, usize); 6] = [
    ("attribute_exists", 1),
    ("attribute_not_exists", 1),
    ("attribute_type", 2),
    ("begins_with", 2),
    ("contains", 2),
    ("size", 1),
];

fn function_arity(name: &str) -> Option<usize> {
    CONDITION_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| *a)
}

/// A function used as an operand must be `size`.
fn misused_in_operand(op: &ROp<'_>) -> Option<String> {
    if let ROp::Func(f) = op {
        if f.name != "size" {
            return Some(f.name.to_string());
        }
        return f.args.iter().find_map(misused_in_operand);
    }
    None
}

fn misused(c: &RCond<'_>) -> Option<String> {
    match c {
        RCond::Func(f) if f.name == "size" => Some("size".to_string()),
        RCond::Func(f) => f.args.iter().find_map(misused_in_operand),
        RCond::And(a, b) | RCond::Or(a, b) => misused(a).or_else(|| misused(b)),
        RCond::Not(a) => misused(a),
        leaf => {
            let mut found = None;
            leaf.leaf_operands(&mut |op| {
                if found.is_none() {
                    found = misused_in_operand(op);
                }
            });
            found
        }
    }
}

/// An operand with substitutions made, before its checks.
enum LOp<'a> {
    Path(Path),
    Value(AttrValue),
    Func(&'a str, Vec<LOp<'a>>),
}

impl LOp<'_> {
    /// The type known without reading the item.
    fn static_type(&self) -> Option<&'static str> {
        match self {
            LOp::Value(v) => Some(v.type_name()),
            LOp::Func("size", _) => Some("N"),
            _ => None,
        }
    }
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

fn distinct_error(op: &str, p: &Path) -> String {
    format!(
        "The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {}",
        p.bracketed()
    )
}

/// Checks a function call (inner calls first) as AWS does.
fn check_func(name: &str, args: &[LOp<'_>]) -> Result<(), String> {
    for a in args {
        if let LOp::Func(n, inner) = a {
            check_func(n, inner)?;
        }
    }
    let arity = function_arity(name).unwrap_or(args.len());
    if args.len() != arity {
        return Err(format!(
            "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
            args.len()
        ));
    }
    if let [LOp::Path(a), LOp::Path(b)] = args {
        if a == b {
            return Err(distinct_error(name, a));
        }
    }
    match name {
        "attribute_exists" | "attribute_not_exists" | "attribute_type" => {
            if !matches!(args[0], LOp::Path(_)) {
                return Err(format!(
                    "Operator or function requires a document path; operator or function: {name}"
                ));
            }
            if name == "attribute_type" {
                match &args[1] {
                    LOp::Value(AttrValue::S(t)) => {
                        if !TYPE_NAMES.contains(&t.as_str()) {
                            return Err(format!(
                                "Invalid attribute type name found; type: {t}, valid types: {{{}}}",
                                TYPE_NAMES.join(",")
                            ));
                        }
                    }
                    other => {
                        let t = other
                            .static_type()
                            .unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
                        return Err(operand_type_error(name, t));
                    }
                }
            }
        }
        "begins_with" => {
            for a in args {
                if let Some(t) = a.static_type() {
                    if t != "S" && t != "B" {
                        return Err(operand_type_error(name, t));
                    }
                }
            }
        }
        "size" => {
            if let Some(t @ ("N" | "BOOL" | "NULL")) = args[0].static_type() {
                return Err(operand_type_error(name, t));
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_operand_funcs(op: &LOp<'_>) -> Result<(), String> {
    match op {
        LOp::Func(n, args) => check_func(n, args),
        _ => Ok(()),
    }
}

/// The long type names AWS uses for operands that cannot be ordered.
fn long_type_name(t: &str) -> &str {
    match t {
        "S" => "STRING",
        "N" => "NUMBER",
        "B" => "BINARY",
        "BOOL" => "BOOLEAN",
        "L" => "LIST",
        "M" => "MAP",
        other => other,
    }
}

/// Ordering comparisons and BETWEEN take only S, N and B constants.
fn check_orderable(op: &str, operands: &[&LOp<'_>]) -> Result<(), String> {
    for o in operands {
        if let LOp::Value(v) = o {
            if !matches!(v, AttrValue::S(_) | AttrValue::N(_) | AttrValue::B(_)) {
                return Err(operand_type_error(op, long_type_name(v.type_name())));
            }
        }
    }
    Ok(())
}

fn to_operand(op: LOp<'_>) -> Operand {
    match op {
        LOp::Path(p) => Operand::Path(p),
        LOp::Value(v) => Operand::Value(v),
        // Validation left only size() in operand position.
        LOp::Func(_, args) => Operand::Size(Box::new(
            args.into_iter()
                .next()
                .map_or(Operand::Value(AttrValue::Null), to_operand),
        )),
    }
}

/// Recursion over AND/OR/NOT only; leaves are lowered in their own (larger)
/// frame, keeping deep nesting cheap on the stack.
fn lower_cond(c: &RCond<'_>, subs: &Substitutions) -> Result<Box<Cond>, String> {
    Ok(Box::new(match c {
        RCond::And(a, b) => Cond::And(lower_cond(a, subs)?, lower_cond(b, subs)?),
        RCond::Or(a, b) => Cond::Or(lower_cond(a, subs)?, lower_cond(b, subs)?),
        RCond::Not(a) => Cond::Not(lower_cond(a, subs)?),
        leaf => return lower_leaf(leaf, subs),
    }))
}

#[inline(never)]
fn lower_leaf(c: &RCond<'_>, subs: &Substitutions) -> Result<Box<Cond>, String> {
    Ok(Box::new(match c {
        RCond::And(..) | RCond::Or(..) | RCond::Not(..) => return lower_cond(c, subs),
        RCond::Cmp(op, a, b) => {
            let (a, b) = (lower_op(a, subs)?, lower_op(b, subs)?);
            check_operand_funcs(&a)?;
            check_operand_funcs(&b)?;
            if let (LOp::Path(x), LOp::Path(y)) = (&a, &b) {
                if x == y {
                    return Err(distinct_error(op.symbol(), x));
                }
            }
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                check_orderable(op.symbol(), &[&a, &b])?;
            }
            Cond::Cmp(*op, to_operand(a), to_operand(b))
        }
        RCond::Between(a, lo, hi) => {
            let (a, lo, hi) = (lower_op(a, subs)?, lower_op(lo, subs)?, lower_op(hi, subs)?);
            for o in [&a, &lo, &hi] {
                check_operand_funcs(o)?;
            }
            if let (LOp::Value(x), LOp::Value(y)) = (&lo, &hi) {
                if x.type_name() != y.type_name() {
                    return Err(format!(
                        "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}",
                        describe_value(x),
                        describe_value(y)
                    ));
                }
                if compare(x, y) == Some(Ordering::Greater) {
                    return Err(format!(
                        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}",
                        describe_value(x),
                        describe_value(y)
                    ));
                }
            }
            check_orderable("BETWEEN", &[&a, &lo, &hi])?;
            Cond::Between(to_operand(a), to_operand(lo), to_operand(hi))
        }
        RCond::In(a, list) => {
            let a = lower_op(a, subs)?;
            let mut items = Vec::with_capacity(list.len());
            for x in list {
                items.push(lower_op(x, subs)?);
            }
            check_operand_funcs(&a)?;
            for x in &items {
                check_operand_funcs(x)?;
            }
            if items.len() > MAX_IN_OPERANDS {
                return Err(format!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    items.len()
                ));
            }
            Cond::In(to_operand(a), items.into_iter().map(to_operand).collect())
        }
        RCond::Func(f) => {
            let mut args = Vec::with_capacity(f.args.len());
            for a in &f.args {
                args.push(lower_op(a, subs)?);
            }
            check_func(f.name, &args)?;
            let mut it = args.into_iter();
            let mut next = || {
                it.next()
                    .map_or(Operand::Value(AttrValue::Null), to_operand)
            };
            let path = |o: Operand| match o {
                Operand::Path(p) => p,
                _ => Path(Vec::new()),
            };
            match f.name {
                "attribute_exists" => Cond::Exists(path(next())),
                "attribute_not_exists" => Cond::NotExists(path(next())),
                "attribute_type" => {
                    let target = next();
                    let t = match next() {
                        Operand::Value(AttrValue::S(t)) => {
                            TYPE_NAMES.iter().copied().find(|n| *n == t).unwrap_or("S")
                        }
                        _ => "S",
                    };
                    Cond::AttrType(target, t)
                }
                "begins_with" => Cond::BeginsWith(next(), next()),
                _ => Cond::Contains(next(), next()),
            }
        }
    }))
}

/// Syntax, then AWS's checks in its order: redundant parentheses, function
/// names, function placement, reserved words, then each condition in turn
/// (substitutions, operand counts, distinct operands, operand types).
pub(crate) fn parse_cond(text: &str, kind: &str, subs: &Substitutions) -> Result<Cond, ExprError> {
    check_text(text, kind)?;
    let mut p = Parser::new(text, KEYWORDS);
    let raw = parse_raw(&mut p).map_err(|f| ExprError::invalid(kind, p.failure(f)))?;
    let fail = |m: String| ExprError::invalid(kind, m);
    if p.redundant_parens {
        return Err(fail(
            "The expression has redundant parentheses;".to_string(),
        ));
    }
    let mut bad_function = None;
    raw.funcs(&mut |f| {
        if bad_function.is_none() && function_arity(f.name).is_none() {
            bad_function = Some(if f.name == "if_not_exists" || f.name == "list_append" {
                format!(
                    "The function is not allowed in a condition expression; function: {}",
                    f.name
                )
            } else {
                format!("Invalid function name; function: {}", f.name)
            });
        }
    });
    if let Some(m) = bad_function {
        return Err(fail(m));
    }
    if let Some(name) = misused(&raw) {
        return Err(fail(format!(
            "The function is not allowed to be used this way in an expression; function: {name}"
        )));
    }
    let mut paths: Vec<&RPath<'_>> = Vec::new();
    raw.leaf_operands(&mut |op| op.paths(&mut |p| paths.push(p)));
    if let Some(m) = first_reserved(paths) {
        return Err(fail(m));
    }
    lower_cond(&raw, subs).map(|c| *c).map_err(fail)
}

/// Parses a ConditionExpression or FilterExpression (`kind` names it in errors:
/// "ConditionExpression", "FilterExpression").
pub fn parse_condition(
    text: &str,
    kind: &str,
    subs: &Substitutions,
) -> Result<Condition, ExprError> {
    Ok(Condition {
        root: parse_cond(text, kind, subs)?,
    })
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// A resolved operand: borrowed from the item or expression, or computed.
enum Val<'a> {
    Ref(&'a AttrValue),
    Owned(AttrValue),
}

impl Val<'_> {
    fn get(&self) -> &AttrValue {
        match self {
            Val::Ref(v) => v,
            Val::Owned(v) => v,
        }
    }
}

/// `size()`: string length (UTF-16 units, as DynamoDB counts), bytes of a
/// binary, elements of a set, list or map.
fn size_of(v: &AttrValue) -> Option<u64> {
    let n = match v {
        AttrValue::S(s) => s.encode_utf16().count(),
        AttrValue::B(b) => b.len(),
        AttrValue::Ss(s) => s.len(),
        AttrValue::Ns(s) => s.len(),
        AttrValue::Bs(s) => s.len(),
        AttrValue::L(l) => l.len(),
        AttrValue::M(m) => m.len(),
        _ => return None,
    };
    Some(n as u64)
}

fn resolve<'a>(op: &'a Operand, item: &'a Item) -> Option<Val<'a>> {
    match op {
        Operand::Path(p) => p.resolve(item).map(Val::Ref),
        Operand::Value(v) => Some(Val::Ref(v)),
        Operand::Size(inner) => {
            let v = resolve(inner, item)?;
            let n = size_of(v.get())?;
            Some(Val::Owned(AttrValue::N(Number::from_u64(n))))
        }
    }
}

fn cmp_holds(op: CmpOp, a: &AttrValue, b: &AttrValue) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => compare(a, b) == Some(Ordering::Less),
        CmpOp::Le => matches!(compare(a, b), Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => compare(a, b) == Some(Ordering::Greater),
        CmpOp::Ge => matches!(compare(a, b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// `contains`: substring of a string or binary, member of a set, element of a list.
pub(crate) fn contains(hay: &AttrValue, needle: &AttrValue) -> bool {
    match (hay, needle) {
        (AttrValue::S(h), AttrValue::S(n)) => h.contains(n.as_str()),
        (AttrValue::B(h), AttrValue::B(n)) => {
            n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
        }
        (AttrValue::Ss(s), AttrValue::S(n)) => s.contains(n),
        (AttrValue::Ns(s), AttrValue::N(n)) => s.contains(n),
        (AttrValue::Bs(s), AttrValue::B(n)) => s.contains(n),
        (AttrValue::L(l), n) => l.iter().any(|e| e == n),
        _ => false,
    }
}

pub(crate) fn begins_with(a: &AttrValue, b: &AttrValue) -> bool {
    match (a, b) {
        (AttrValue::S(x), AttrValue::S(y)) => x.as_bytes().starts_with(y.as_bytes()),
        (AttrValue::B(x), AttrValue::B(y)) => x.starts_with(y),
        _ => false,
    }
}

fn between(x: &AttrValue, lo: &AttrValue, hi: &AttrValue) -> bool {
    matches!(compare(x, lo), Some(Ordering::Greater | Ordering::Equal))
        && matches!(compare(x, hi), Some(Ordering::Less | Ordering::Equal))
}

/// Recursion over AND/OR/NOT only, in a small frame; leaves are evaluated in
/// their own.
pub(crate) fn eval_cond(c: &Cond, item: &Item) -> bool {
    match c {
        Cond::And(a, b) => eval_cond(a, item) && eval_cond(b, item),
        Cond::Or(a, b) => eval_cond(a, item) || eval_cond(b, item),
        Cond::Not(a) => !eval_cond(a, item),
        leaf => eval_leaf(leaf, item),
    }
}

#[inline(never)]
fn eval_leaf(c: &Cond, item: &Item) -> bool {
    match c {
        Cond::And(..) | Cond::Or(..) | Cond::Not(..) => eval_cond(c, item),
        Cond::Cmp(op, a, b) => match (resolve(a, item), resolve(b, item)) {
            (Some(x), Some(y)) => cmp_holds(*op, x.get(), y.get()),
            // A missing attribute equals nothing.
            _ => *op == CmpOp::Ne,
        },
        Cond::Between(a, lo, hi) => {
            match (resolve(a, item), resolve(lo, item), resolve(hi, item)) {
                (Some(x), Some(l), Some(h)) => between(x.get(), l.get(), h.get()),
                _ => false,
            }
        }
        Cond::In(a, list) => match resolve(a, item) {
            Some(x) => list
                .iter()
                .any(|o| resolve(o, item).is_some_and(|y| x.get() == y.get())),
            None => false,
        },
        Cond::Exists(p) => p.resolve(item).is_some(),
        Cond::NotExists(p) => p.resolve(item).is_none(),
        Cond::AttrType(a, t) => resolve(a, item).is_some_and(|v| v.get().type_name() == *t),
        Cond::BeginsWith(a, b) => match (resolve(a, item), resolve(b, item)) {
            (Some(x), Some(y)) => begins_with(x.get(), y.get()),
            _ => false,
        },
        Cond::Contains(a, b) => match (resolve(a, item), resolve(b, item)) {
            (Some(x), Some(y)) => contains(x.get(), y.get()),
            _ => false,
        },
        Cond::Const(b) => *b,
    }
}

fn operand_paths<'c>(op: &'c Operand, out: &mut Vec<&'c Path>) {
    match op {
        Operand::Path(p) => out.push(p),
        Operand::Value(_) => {}
        Operand::Size(inner) => operand_paths(inner, out),
    }
}

fn cond_paths<'c>(c: &'c Cond, out: &mut Vec<&'c Path>) {
    match c {
        Cond::Cmp(_, a, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
            operand_paths(a, out);
            operand_paths(b, out);
        }
        Cond::Between(a, b, d) => {
            operand_paths(a, out);
            operand_paths(b, out);
            operand_paths(d, out);
        }
        Cond::In(a, list) => {
            operand_paths(a, out);
            list.iter().for_each(|x| operand_paths(x, out));
        }
        Cond::Exists(p) | Cond::NotExists(p) => out.push(p),
        Cond::AttrType(a, _) => operand_paths(a, out),
        Cond::And(a, b) | Cond::Or(a, b) => {
            cond_paths(a, out);
            cond_paths(b, out);
        }
        Cond::Not(a) => cond_paths(a, out),
        Cond::Const(_) => {}
    }
}

impl Condition {
    /// Whether the item satisfies the condition (use an empty item for a missing
    /// one). Comparisons of different types are false, never errors.
    pub fn eval(&self, item: &Item) -> Result<bool, ExprError> {
        Ok(eval_cond(&self.root, item))
    }

    /// [`Condition::eval`] without the `Result`.
    pub fn matches(&self, item: &Item) -> bool {
        eval_cond(&self.root, item)
    }

    /// The document paths the condition reads, in order of appearance.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        cond_paths(&self.root, &mut out);
        out
    }

    /// The distinct top-level attributes the condition reads (e.g. to reject a
    /// FilterExpression on key attributes).
    pub fn top_level_attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in self.paths() {
            if !out.iter().any(|x| x == p.top()) {
                out.push(p.top().to_string());
            }
        }
        out
    }

    /// Both conditions must hold (for combining legacy and key filters).
    pub fn and(self, other: Condition) -> Condition {
        Condition {
            root: Cond::And(Box::new(self.root), Box::new(other.root)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use serde_json::{json, Map, Value};

    fn item() -> Item {
        item_from_json(
            json!({
                "pk": {"S": "cond"}, "s": {"S": "apple pie"}, "n": {"N": "10"}, "b": {"B": "AQI="},
                "t": {"BOOL": true}, "ss": {"SS": ["red", "green"]}, "ns": {"NS": ["1", "2"]},
                "l": {"L": [{"S": "x"}, {"N": "5"}]}, "m": {"M": {"k": {"S": "v"}, "num": {"N": "7"}}},
                "nul": {"NULL": true}, "mixed": {"N": "5"}, "status": {"S": "open"}, "a.b": {"S": "dotted"},
                "bs": {"BS": ["AQ==", "Ag=="]}, "uni": {"S": "\u{1F600}"}, "e": {"S": ""},
                "deep": {"M": {"arr": {"L": [{"M": {"v": {"N": "1"}}}, {"M": {"v": {"N": "2"}}}]}}}
            })
            .as_object()
            .unwrap(),
        )
        .unwrap()
    }

    fn subs(values: Value, names: Value) -> Substitutions {
        let v: Option<Map<String, Value>> = values.as_object().cloned();
        let n: Option<Map<String, Value>> = names.as_object().cloned();
        Substitutions::new(n.as_ref(), v.as_ref()).unwrap()
    }

    fn eval(expr: &str, values: Value, names: Value) -> Result<bool, String> {
        let s = subs(values, names);
        let c = parse_condition(expr, "ConditionExpression", &s).map_err(|e| e.message)?;
        Ok(c.eval(&item()).unwrap())
    }

    #[test]
    fn evaluation_table() {
        let n = |x: &str| json!({"N": x});
        let s = |x: &str| json!({"S": x});
        let cases: Vec<(&str, Value, Value, bool)> = vec![
            ("n = :v", json!({":v": n("10")}), json!(null), true),
            ("n = :v", json!({":v": n("10.0")}), json!(null), true),
            ("n = :v", json!({":v": s("10")}), json!(null), false),
            ("n <> :v", json!({":v": n("11")}), json!(null), true),
            ("n <> :v", json!({":v": n("10")}), json!(null), false),
            ("n < :v", json!({":v": n("10")}), json!(null), false),
            ("n <= :v", json!({":v": n("10")}), json!(null), true),
            ("n > :v", json!({":v": n("9.5")}), json!(null), true),
            ("n >= :v", json!({":v": n("11")}), json!(null), false),
            ("n > :v", json!({":v": n("-100")}), json!(null), true),
            ("s < :v", json!({":v": s("apple")}), json!(null), false),
            ("s > :v", json!({":v": s("apple")}), json!(null), true),
            ("s > :v", json!({":v": n("1")}), json!(null), false),
            ("s <> :v", json!({":v": n("1")}), json!(null), true),
            ("b < :v", json!({":v": {"B": "AQM="}}), json!(null), true),
            ("uni > :v", json!({":v": s("\u{FFFD}")}), json!(null), true),
            (
                "n BETWEEN :lo AND :hi",
                json!({":lo": n("10"), ":hi": n("20")}),
                json!(null),
                true,
            ),
            (
                "n BETWEEN :lo AND :hi",
                json!({":lo": n("11"), ":hi": n("20")}),
                json!(null),
                false,
            ),
            (
                "n between :lo and :hi",
                json!({":lo": n("1"), ":hi": n("10")}),
                json!(null),
                true,
            ),
            (
                "s BETWEEN :lo AND :hi",
                json!({":lo": s("a"), ":hi": s("b")}),
                json!(null),
                true,
            ),
            (
                "n BETWEEN :lo AND :hi",
                json!({":lo": s("a"), ":hi": s("b")}),
                json!(null),
                false,
            ),
            (
                "absent BETWEEN :lo AND :hi",
                json!({":lo": n("1"), ":hi": n("2")}),
                json!(null),
                false,
            ),
            (
                "n IN (:a, :b, :c)",
                json!({":a": n("1"), ":b": n("10"), ":c": n("100")}),
                json!(null),
                true,
            ),
            (
                "s IN (:a, :b)",
                json!({":a": s("apple"), ":b": s("pie")}),
                json!(null),
                false,
            ),
            (
                "s in (:a)",
                json!({":a": s("apple pie")}),
                json!(null),
                true,
            ),
            (
                "ss IN (:a)",
                json!({":a": {"SS": ["green", "red"]}}),
                json!(null),
                true,
            ),
            ("absent IN (:a)", json!({":a": n("1")}), json!(null), false),
            (
                "begins_with(s, :v)",
                json!({":v": s("apple")}),
                json!(null),
                true,
            ),
            (
                "begins_with(s, :v)",
                json!({":v": s("pie")}),
                json!(null),
                false,
            ),
            (
                "begins_with(s, :v)",
                json!({":v": s("")}),
                json!(null),
                true,
            ),
            (
                "begins_with(b, :v)",
                json!({":v": {"B": "AQ=="}}),
                json!(null),
                true,
            ),
            (
                "begins_with(n, :v)",
                json!({":v": s("1")}),
                json!(null),
                false,
            ),
            (
                "begins_with(absent, :v)",
                json!({":v": s("1")}),
                json!(null),
                false,
            ),
            (
                "contains(s, :v)",
                json!({":v": s("e p")}),
                json!(null),
                true,
            ),
            (
                "contains(s, :v)",
                json!({":v": s("pear")}),
                json!(null),
                false,
            ),
            (
                "contains(ss, :v)",
                json!({":v": s("red")}),
                json!(null),
                true,
            ),
            (
                "contains(ss, :v)",
                json!({":v": s("re")}),
                json!(null),
                false,
            ),
            ("contains(l, :v)", json!({":v": n("5")}), json!(null), true),
            ("contains(l, :v)", json!({":v": s("5")}), json!(null), false),
            (
                "contains(ns, :v)",
                json!({":v": n("3")}),
                json!(null),
                false,
            ),
            (
                "contains(ns, :v)",
                json!({":v": n("2.0")}),
                json!(null),
                true,
            ),
            (
                "contains(bs, :v)",
                json!({":v": {"B": "Ag=="}}),
                json!(null),
                true,
            ),
            (
                "contains(b, :v)",
                json!({":v": {"B": "Ag=="}}),
                json!(null),
                true,
            ),
            ("contains(n, :v)", json!({":v": n("1")}), json!(null), false),
            (
                "NOT contains(absent, :v)",
                json!({":v": n("1")}),
                json!(null),
                true,
            ),
            ("size(s) = :v", json!({":v": n("9")}), json!(null), true),
            ("size(ss) = :v", json!({":v": n("2")}), json!(null), true),
            ("size(l) > :v", json!({":v": n("1")}), json!(null), true),
            ("size(m) = :v", json!({":v": n("2")}), json!(null), true),
            ("size(b) = :v", json!({":v": n("2")}), json!(null), true),
            ("size(uni) = :v", json!({":v": n("2")}), json!(null), true),
            ("size(e) = :v", json!({":v": n("0")}), json!(null), true),
            ("size(n) = :v", json!({":v": n("2")}), json!(null), false),
            (
                "size(absent) < :v",
                json!({":v": n("2")}),
                json!(null),
                false,
            ),
            (":v = size(ns)", json!({":v": n("2")}), json!(null), true),
            (
                "size(s) BETWEEN :lo AND :hi",
                json!({":lo": n("1"), ":hi": n("9")}),
                json!(null),
                true,
            ),
            (
                "attribute_type(n, :v)",
                json!({":v": s("N")}),
                json!(null),
                true,
            ),
            (
                "attribute_type(ss, :v)",
                json!({":v": s("SS")}),
                json!(null),
                true,
            ),
            (
                "attribute_type(nul, :v)",
                json!({":v": s("NULL")}),
                json!(null),
                true,
            ),
            (
                "attribute_type(m, :v)",
                json!({":v": s("L")}),
                json!(null),
                false,
            ),
            (
                "attribute_type(absent, :v)",
                json!({":v": s("S")}),
                json!(null),
                false,
            ),
            ("attribute_exists(m.k)", json!(null), json!(null), true),
            ("attribute_exists(m.nope)", json!(null), json!(null), false),
            ("attribute_not_exists(nope)", json!(null), json!(null), true),
            ("attribute_not_exists(pk)", json!(null), json!(null), false),
            ("attribute_exists(l[1])", json!(null), json!(null), true),
            ("attribute_exists(l[2])", json!(null), json!(null), false),
            ("attribute_exists(s[0])", json!(null), json!(null), false),
            ("attribute_exists(l.x)", json!(null), json!(null), false),
            ("attribute_exists(nul)", json!(null), json!(null), true),
            (
                "m.num = :v AND l[0] = :x",
                json!({":v": n("7"), ":x": s("x")}),
                json!(null),
                true,
            ),
            (
                "deep.arr[1].v = :v",
                json!({":v": n("2")}),
                json!(null),
                true,
            ),
            (
                "n = :a OR n = :b",
                json!({":a": n("1"), ":b": n("2")}),
                json!(null),
                false,
            ),
            (
                "n = :a OR n = :b",
                json!({":a": n("1"), ":b": n("10")}),
                json!(null),
                true,
            ),
            ("NOT n = :a", json!({":a": n("1")}), json!(null), true),
            ("not (n = :a)", json!({":a": n("10")}), json!(null), false),
            ("NOT NOT n = :a", json!({":a": n("10")}), json!(null), true),
            (
                "NOT (n = :a OR t = :t) AND s = :s",
                json!({":a": n("1"), ":t": {"BOOL": false}, ":s": s("apple pie")}),
                json!(null),
                true,
            ),
            (
                "n = :y OR n = :y AND n = :no",
                json!({":y": n("10"), ":no": n("11")}),
                json!(null),
                true,
            ),
            (
                "(n = :y OR n = :y) AND n = :no",
                json!({":y": n("10"), ":no": n("11")}),
                json!(null),
                false,
            ),
            (
                "NOT n = :no AND n = :y",
                json!({":y": n("10"), ":no": n("11")}),
                json!(null),
                true,
            ),
            ("n > mixed", json!(null), json!(null), true),
            ("mixed < n", json!(null), json!(null), true),
            ("absent = :v", json!({":v": n("1")}), json!(null), false),
            ("absent <> :v", json!({":v": n("1")}), json!(null), true),
            ("absent < :v", json!({":v": n("1")}), json!(null), false),
            ("t = :t", json!({":t": {"BOOL": true}}), json!(null), true),
            ("nul = :z", json!({":z": {"NULL": true}}), json!(null), true),
            (
                "m = :m",
                json!({":m": {"M": {"num": n("7"), "k": s("v")}}}),
                json!(null),
                true,
            ),
            (
                "l = :l",
                json!({":l": {"L": [s("x"), n("5")]}}),
                json!(null),
                true,
            ),
            (
                "ss = :v",
                json!({":v": {"SS": ["green", "red"]}}),
                json!(null),
                true,
            ),
            (
                "#s = :v",
                json!({":v": s("open")}),
                json!({"#s": "status"}),
                true,
            ),
            (
                "#d = :v",
                json!({":v": s("dotted")}),
                json!({"#d": "a.b"}),
                true,
            ),
            (
                "#m.#k = :v",
                json!({":v": s("v")}),
                json!({"#m": "m", "#k": "k"}),
                true,
            ),
            ("(n) = (:v)", json!({":v": n("10")}), json!(null), true),
            ("(size(s)) = :v", json!({":v": n("9")}), json!(null), true),
            ("(attribute_exists(n))", json!(null), json!(null), true),
            (
                "(pk = :p) AND (n = :v)",
                json!({":p": s("cond"), ":v": n("10")}),
                json!(null),
                true,
            ),
            (
                "n between :lo and :hi Or s in (:a)",
                json!({":lo": n("1"), ":hi": n("20"), ":a": s("x")}),
                json!(null),
                true,
            ),
            ("n=:v", json!({":v": n("10")}), json!(null), true),
            (" n = :v\n", json!({":v": n("10")}), json!(null), true),
            (
                ":a = :b",
                json!({":a": n("1"), ":b": n("1.0")}),
                json!(null),
                true,
            ),
        ];
        for (expr, values, names, want) in cases {
            assert_eq!(eval(expr, values, names.clone()), Ok(want), "{expr}");
        }
    }

    #[test]
    fn error_table() {
        let n = |x: &str| json!({"N": x});
        let s = |x: &str| json!({"S": x});
        let ce = "Invalid ConditionExpression: ";
        let cases: Vec<(&str, Value, Value, String)> = vec![
            ("a = :x", json!({":y": n("1")}), json!(null), format!("{ce}An expression attribute value used in expression is not defined; attribute value: :x")),
            ("#n = :y", json!({":y": n("1")}), json!(null), format!("{ce}An expression attribute name used in the document path is not defined; attribute name: #n")),
            ("status = :v", json!({":v": n("1")}), json!(null), format!("{ce}Attribute name is a reserved keyword; reserved keyword: status")),
            ("a.Name = :v", json!({":v": n("1")}), json!(null), format!("{ce}Attribute name is a reserved keyword; reserved keyword: Name")),
            ("((attribute_not_exists(pk)))", json!(null), json!(null), format!("{ce}The expression has redundant parentheses;")),
            ("((a = :v))", json!({":v": n("1")}), json!(null), format!("{ce}The expression has redundant parentheses;")),
            ("((a)) = :v", json!({":v": n("1")}), json!(null), format!("{ce}The expression has redundant parentheses;")),
            ("a = ((:v))", json!({":v": n("1")}), json!(null), format!("{ce}The expression has redundant parentheses;")),
            ("foo(s)", json!(null), json!(null), format!("{ce}Invalid function name; function: foo")),
            ("ATTRIBUTE_EXISTS(a)", json!(null), json!(null), format!("{ce}Invalid function name; function: ATTRIBUTE_EXISTS")),
            ("a < if_not_exists(b, :v)", json!({":v": n("1")}), json!(null), format!("{ce}The function is not allowed in a condition expression; function: if_not_exists")),
            ("attribute_exists(s, n)", json!(null), json!(null), format!("{ce}Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2")),
            ("begins_with(a)", json!(null), json!(null), format!("{ce}Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1")),
            ("begins_with(a, :v) = :t", json!({":v": s("x"), ":t": {"BOOL": true}}), json!(null), format!("{ce}The function is not allowed to be used this way in an expression; function: begins_with")),
            ("size(a)", json!(null), json!(null), format!("{ce}The function is not allowed to be used this way in an expression; function: size")),
            ("size(attribute_exists(a)) = :v", json!({":v": n("1")}), json!(null), format!("{ce}The function is not allowed to be used this way in an expression; function: attribute_exists")),
            ("attribute_exists(:v)", json!({":v": n("1")}), json!(null), format!("{ce}Operator or function requires a document path; operator or function: attribute_exists")),
            ("begins_with(a, :v)", json!({":v": n("1")}), json!(null), format!("{ce}Incorrect operand type for operator or function; operator or function: begins_with, operand type: N")),
            ("size(:v) = :v", json!({":v": n("1")}), json!(null), format!("{ce}Incorrect operand type for operator or function; operator or function: size, operand type: N")),
            ("attribute_type(a, :v)", json!({":v": n("1")}), json!(null), format!("{ce}Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N")),
            ("attribute_type(a, :t)", json!({":t": s("STRING")}), json!(null), format!("{ce}Invalid attribute type name found; type: STRING, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}")),
            ("a = a", json!(null), json!(null), format!("{ce}The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]")),
            ("contains(a.b, a.b)", json!(null), json!(null), format!("{ce}The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a, b]")),
            ("a BETWEEN :hi AND :lo", json!({":hi": n("5"), ":lo": n("1")}), json!(null), format!("{ce}The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{N:5}}, upper bound operand: AttributeValue: {{N:1}}")),
            ("a BETWEEN :lo AND :hi", json!({":lo": n("1"), ":hi": s("a")}), json!(null), format!("{ce}The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {{N:1}}, upper bound operand: AttributeValue: {{S:a}}")),
            ("a < :l", json!({":l": {"L": [n("1")]}}), json!(null), format!("{ce}Incorrect operand type for operator or function; operator or function: <, operand type: LIST")),
            ("a = = :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"=\", near: \"= = :v\"")),
            ("_hidden = :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"_\", near: \"_hidden\"")),
            ("foo", json!(null), json!(null), format!("{ce}Syntax error; token: \"<EOF>\", near: \"foo\"")),
            ("a = ", json!(null), json!(null), format!("{ce}Syntax error; token: \"<EOF>\", near: \"= \"")),
            ("a + b = :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"+\", near: \"a + b\"")),
            ("a = :v OR", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"<EOF>\", near: \"OR\"")),
            ("a AND b", json!(null), json!(null), format!("{ce}Syntax error; token: \"AND\", near: \"a AND b\"")),
            ("a BETWEEN :v OR :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"OR\", near: \":v OR :v\"")),
            ("a IN ()", json!(null), json!(null), format!("{ce}Syntax error; token: \")\", near: \"()\"")),
            ("(a = :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"<EOF>\", near: \":v\"")),
            ("a = :v)", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \")\", near: \":v)\"")),
            ("AND = :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"AND\", near: \"AND =\"")),
            ("a[x] = :v", json!({":v": n("1")}), json!(null), format!("{ce}Syntax error; token: \"x\", near: \"[x]\"")),
            ("a = \"x\"", json!(null), json!(null), format!("{ce}Syntax error; token: \"\"\", near: \"= \"x\"")),
            ("", json!(null), json!(null), format!("{ce}The expression can not be empty;")),
            ("   ", json!(null), json!(null), format!("{ce}The expression can not be empty;")),
        ];
        for (expr, values, names, want) in cases {
            assert_eq!(eval(expr, values, names), Err(want.clone()), "{expr}");
        }
    }

    #[test]
    fn limits() {
        let s = Substitutions::empty();
        let long = format!("a = b{}", " ".repeat(4096));
        assert_eq!(
            parse_condition(&long, "FilterExpression", &s).unwrap_err().message,
            format!("Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: {}", long.len())
        );
        let many = vec!["a < b"; 151].join(" AND ");
        assert_eq!(
            parse_condition(&many, "ConditionExpression", &s).unwrap_err().message,
            "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
        );
        let values: Map<String, Value> = (0..101)
            .map(|i| (format!(":v{i}"), json!({"N": "1"})))
            .collect();
        let s = Substitutions::new(None, Some(&values)).unwrap();
        let list: Vec<String> = (0..101).map(|i| format!(":v{i}")).collect();
        assert_eq!(
            parse_condition(&format!("a IN ({})", list.join(", ")), "ConditionExpression", &s).unwrap_err().message,
            "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
        );
    }

    /// Generated filters nest deeply (`((a AND b) AND c) ...`); they must parse,
    /// evaluate and drop within a small stack even in debug builds, and deeper
    /// nesting must be refused rather than overflow.
    #[test]
    fn deep_nesting_fits_a_small_stack() {
        let run = || {
            let values: Map<String, Value> = [(":v".to_string(), json!({"N": "1"}))]
                .into_iter()
                .collect();
            let s = Substitutions::new(None, Some(&values)).unwrap();
            let mut expr = "a0 = :v".to_string();
            for i in 1..149 {
                expr = format!("({expr} AND a{i} = :v)");
            }
            let c = parse_condition(&expr, "FilterExpression", &s).unwrap();
            assert!(!c.matches(&Item::new()));
            let nots = format!("{}a = :v", "NOT ".repeat(290));
            assert!(!parse_condition(&nots, "FilterExpression", &s)
                .unwrap()
                .matches(&Item::new()));
            let operand = format!("a = {}:v{}", "(".repeat(290), ")".repeat(290));
            assert!(parse_condition(&operand, "FilterExpression", &s).is_err());
            let parens = format!("{}a = :v{}", "(".repeat(1000), ")".repeat(1000));
            assert!(parse_condition(&parens, "FilterExpression", &s).is_err());
            let sizes = format!("{}a{} = :v", "size(".repeat(250), ")".repeat(250));
            assert!(parse_condition(&sizes, "FilterExpression", &s).is_err());
        };
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn substitutions_are_marked_used() {
        let s = subs(
            json!({":a": {"N": "1"}, ":b": {"N": "2"}}),
            json!({"#x": "x", "#y": "y"}),
        );
        parse_condition("#x = :a", "ConditionExpression", &s).unwrap();
        assert_eq!(
            s.check_unused().unwrap_err().message,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#y}"
        );
        parse_condition("#y = :b", "FilterExpression", &s).unwrap();
        assert!(s.check_unused().is_ok());
    }

    #[test]
    fn attribute_listing() {
        let s = subs(json!({":a": {"N": "1"}}), json!({"#x": "x"}));
        let c = parse_condition(
            "#x.y = :a AND size(z) > :a OR attribute_exists(x)",
            "FilterExpression",
            &s,
        )
        .unwrap();
        assert_eq!(
            c.top_level_attributes(),
            vec!["x".to_string(), "z".to_string()]
        );
        assert_eq!(c.paths().len(), 3);
    }
}
