//! The expression language: tokenizer, recursive-descent parsers and evaluators
//! for condition/filter, update, projection and key condition expressions.
//!
//! Each parser first checks syntax (reporting the offending token and its
//! neighbours as AWS does), then runs the semantic checks in AWS's order of
//! precedence, resolving `#name`/`:value` substitutions into a tree that is
//! evaluated without further lookups or parsing.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

use crate::value::{AttrValue, Item};

pub mod condition;
pub mod key;
mod lexer;
pub mod projection;
pub mod update;

pub(crate) use lexer::{Tok, Token};

/// The most operators or functions one expression may hold.
const MAX_OPERATORS: u32 = 300;
/// The longest expression string, in bytes.
const MAX_EXPRESSION_BYTES: usize = 4096;
/// The deepest a document path may nest.
const MAX_PATH_DEPTH: usize = 32;

/// A ValidationException raised by an expression; `message` is the full message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
}

impl ExprError {
    pub fn new(message: impl Into<String>) -> ExprError {
        ExprError {
            message: message.into(),
        }
    }

    /// `Invalid <kind>: <message>`.
    pub(crate) fn invalid(kind: &str, message: impl fmt::Display) -> ExprError {
        ExprError {
            message: format!("Invalid {kind}: {message}"),
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExprError {}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// One step of a document path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElem {
    Attr(String),
    Index(usize),
}

/// A document path with names substituted: `a.b[1]` is `[Attr(a), Attr(b), Index(1)]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// A one-element path naming a top-level attribute.
    pub fn attr(name: impl Into<String>) -> Path {
        Path(vec![PathElem::Attr(name.into())])
    }

    /// The top-level attribute the path starts at.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(n)) => n,
            _ => "",
        }
    }

    /// AWS's rendering in overlap messages: `[a, b, [1]]`.
    pub fn bracketed(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| match e {
                PathElem::Attr(n) => n.clone(),
                PathElem::Index(i) => format!("[{i}]"),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }

    /// The value at this path in `item`, if any.
    pub fn resolve<'a>(&self, item: &'a Item) -> Option<&'a AttrValue> {
        let mut elems = self.0.iter();
        let mut cur = match elems.next()? {
            PathElem::Attr(n) => item.get(n)?,
            PathElem::Index(_) => return None,
        };
        for e in elems {
            cur = match (e, cur) {
                (PathElem::Attr(n), AttrValue::M(m)) => m.get(n)?,
                (PathElem::Index(i), AttrValue::L(l)) => l.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            match e {
                PathElem::Attr(n) if i == 0 => f.write_str(n)?,
                PathElem::Attr(n) => write!(f, ".{n}")?,
                PathElem::Index(x) => write!(f, "[{x}]")?,
            }
        }
        Ok(())
    }
}

/// How two paths of one expression relate: AWS rejects overlapping ones (one is
/// a prefix of the other) and conflicting ones (a map step where the other has a
/// list index).
pub(crate) fn path_clash(a: &Path, b: &Path) -> Option<bool /* overlap, else conflict */> {
    for (x, y) in a.0.iter().zip(b.0.iter()) {
        match (x, y) {
            (PathElem::Attr(p), PathElem::Attr(q)) if p != q => return None,
            (PathElem::Index(p), PathElem::Index(q)) if p != q => return None,
            (PathElem::Attr(_), PathElem::Index(_)) | (PathElem::Index(_), PathElem::Attr(_)) => {
                return Some(false)
            }
            _ => {}
        }
    }
    Some(true)
}

/// The first overlap, else the first conflict, among `paths` in AWS's wording.
pub(crate) fn check_path_clashes(paths: &[&Path]) -> Result<(), String> {
    let mut conflict: Option<String> = None;
    for (j, later) in paths.iter().enumerate() {
        for earlier in &paths[..j] {
            match path_clash(earlier, later) {
                Some(true) => {
                    return Err(format!(
                        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                        earlier.bracketed(),
                        later.bracketed()
                    ))
                }
                Some(false) if conflict.is_none() => {
                    conflict = Some(format!(
                        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                        earlier.bracketed(),
                        later.bracketed()
                    ))
                }
                _ => {}
            }
        }
    }
    conflict.map_or(Ok(()), Err)
}

// ---------------------------------------------------------------------------
// Substitutions
// ---------------------------------------------------------------------------

/// ExpressionAttributeNames and ExpressionAttributeValues of one request. Parsing
/// records which were used, so that unused ones can be reported once all of the
/// request's expressions are parsed ([`Substitutions::check_unused`]).
#[derive(Debug, Default)]
pub struct Substitutions {
    names: Vec<(String, String)>,
    name_index: HashMap<String, usize>,
    names_used: Vec<AtomicBool>,
    values: Vec<(String, AttrValue)>,
    value_index: HashMap<String, usize>,
    values_used: Vec<AtomicBool>,
}

fn valid_placeholder(key: &str, sigil: char) -> bool {
    let mut chars = key.chars();
    chars.next() == Some(sigil)
        && key.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Substitutions {
    /// No substitutions (for requests without them).
    pub fn empty() -> Substitutions {
        Substitutions::default()
    }

    /// Validates and holds the request's maps, as AWS validates them.
    pub fn new(
        names: Option<&Map<String, Value>>,
        values: Option<&Map<String, Value>>,
    ) -> Result<Substitutions, ExprError> {
        let mut subs = Substitutions::default();
        if let Some(names) = names {
            if names.is_empty() {
                return Err(ExprError::new("ExpressionAttributeNames must not be empty"));
            }
            for (k, v) in names {
                if !valid_placeholder(k, '#') {
                    return Err(ExprError::new(format!(
                        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                    )));
                }
                let Some(v) = v.as_str() else {
                    return Err(ExprError::new(format!(
                        "ExpressionAttributeNames contains invalid value: Expected string for key {k}"
                    )));
                };
                subs.name_index.insert(k.clone(), subs.names.len());
                subs.names.push((k.clone(), v.to_string()));
                subs.names_used.push(AtomicBool::new(false));
            }
        }
        if let Some(values) = values {
            if values.is_empty() {
                return Err(ExprError::new(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
            for k in values.keys() {
                if !valid_placeholder(k, ':') {
                    return Err(ExprError::new(format!(
                        "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                    )));
                }
            }
            for (k, v) in values {
                let av = AttrValue::from_json(v).map_err(|m| {
                    ExprError::new(format!(
                        "ExpressionAttributeValues contains invalid value: {m} for key {k}"
                    ))
                })?;
                subs.value_index.insert(k.clone(), subs.values.len());
                subs.values.push((k.clone(), av));
                subs.values_used.push(AtomicBool::new(false));
            }
        }
        Ok(subs)
    }

    /// Looks up `#name`, marking it used.
    pub(crate) fn name(&self, key: &str) -> Option<&str> {
        let i = *self.name_index.get(key)?;
        self.names_used[i].store(true, Ordering::Relaxed);
        Some(&self.names[i].1)
    }

    /// Looks up `:value`, marking it used.
    pub(crate) fn value(&self, key: &str) -> Option<&AttrValue> {
        let i = *self.value_index.get(key)?;
        self.values_used[i].store(true, Ordering::Relaxed);
        Some(&self.values[i].1)
    }

    /// AWS's error for names or values no expression of the request used.
    pub fn check_unused(&self) -> Result<(), ExprError> {
        let unused = |keys: &mut dyn Iterator<Item = &String>| -> Option<String> {
            let list: Vec<&str> = keys.map(String::as_str).collect();
            (!list.is_empty()).then(|| list.join(", "))
        };
        let mut names = self
            .names
            .iter()
            .zip(&self.names_used)
            .filter(|(_, u)| !u.load(Ordering::Relaxed))
            .map(|(n, _)| &n.0);
        if let Some(keys) = unused(&mut names) {
            return Err(ExprError::new(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{keys}}}"
            )));
        }
        let mut values = self
            .values
            .iter()
            .zip(&self.values_used)
            .filter(|(_, u)| !u.load(Ordering::Relaxed))
            .map(|(n, _)| &n.0);
        if let Some(keys) = unused(&mut values) {
            return Err(ExprError::new(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{keys}}}"
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Shared parsing
// ---------------------------------------------------------------------------

/// Why parsing stopped.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A syntax error at this token index.
    At(usize),
    TooManyOperators,
    TooDeep,
}

pub(crate) type PResult<T> = Result<T, Fail>;

/// One step of a path as written.
#[derive(Debug)]
pub(crate) enum RElem<'a> {
    Ident(&'a str),
    Name(&'a str),
    Index(usize),
}

/// A path as written, before substitution.
#[derive(Debug)]
pub(crate) struct RPath<'a>(pub Vec<RElem<'a>>);

/// A function call as written.
#[derive(Debug)]
pub(crate) struct RFunc<'a> {
    pub name: &'a str,
    pub args: Vec<ROp<'a>>,
}

/// An operand as written.
#[derive(Debug)]
pub(crate) enum ROp<'a> {
    Path(RPath<'a>),
    Value(&'a str),
    Func(RFunc<'a>),
}

impl<'a> ROp<'a> {
    /// Visits every path in the operand, depth first.
    pub(crate) fn paths<'r>(&'r self, f: &mut dyn FnMut(&'r RPath<'a>)) {
        match self {
            ROp::Path(p) => f(p),
            ROp::Value(_) => {}
            ROp::Func(func) => {
                for a in &func.args {
                    a.paths(f);
                }
            }
        }
    }

    /// Visits every value placeholder in the operand.
    pub(crate) fn values(&self, f: &mut dyn FnMut(&'a str)) {
        match self {
            ROp::Path(_) => {}
            ROp::Value(v) => f(v),
            ROp::Func(func) => {
                for a in &func.args {
                    a.values(f);
                }
            }
        }
    }

    /// Visits every function call, inner ones first.
    pub(crate) fn funcs<'r>(&'r self, f: &mut dyn FnMut(&'r RFunc<'a>)) {
        if let ROp::Func(func) = self {
            for a in &func.args {
                a.funcs(f);
            }
            f(func);
        }
    }
}

/// The tokens of one expression and a cursor over them.
pub(crate) struct Parser<'a> {
    pub src: &'a str,
    pub toks: Vec<Token>,
    pub pos: usize,
    /// Words that end a path (AND/OR/... or SET/REMOVE/...), matched case-insensitively.
    keywords: &'static [&'static str],
    ops: u32,
    depth: u32,
    pub redundant_parens: bool,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str, keywords: &'static [&'static str]) -> Parser<'a> {
        Parser {
            src,
            toks: lexer::lex(src),
            pos: 0,
            keywords,
            ops: 0,
            depth: 0,
            redundant_parens: false,
        }
    }

    pub(crate) fn peek(&self) -> Tok {
        self.toks[self.pos].kind
    }

    pub(crate) fn peek_at(&self, k: usize) -> Tok {
        self.toks[(self.pos + k).min(self.toks.len() - 1)].kind
    }

    pub(crate) fn text(&self, idx: usize) -> &'a str {
        let t = self.toks[idx];
        &self.src[t.start..t.end]
    }

    pub(crate) fn bump(&mut self) -> usize {
        let p = self.pos;
        if self.toks[p].kind != Tok::Eof {
            self.pos += 1;
        }
        p
    }

    pub(crate) fn expect(&mut self, k: Tok) -> PResult<usize> {
        if self.peek() == k {
            Ok(self.bump())
        } else {
            Err(Fail::At(self.pos))
        }
    }

    /// Whether the current token is the word `kw` (case-insensitive).
    pub(crate) fn at_word(&self, kw: &str) -> bool {
        self.peek() == Tok::Ident && self.text(self.pos).eq_ignore_ascii_case(kw)
    }

    fn is_keyword(&self, idx: usize) -> bool {
        let t = self.text(idx);
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(t))
    }

    pub(crate) fn count_operator(&mut self) -> PResult<()> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            Err(Fail::TooManyOperators)
        } else {
            Ok(())
        }
    }

    pub(crate) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_OPERATORS {
            Err(Fail::TooDeep)
        } else {
            Ok(())
        }
    }

    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `name` / `#name` followed by `.name`, `.#name` and `[n]` steps.
    pub(crate) fn parse_path(&mut self) -> PResult<RPath<'a>> {
        let mut elems = Vec::with_capacity(2);
        elems.push(self.path_name()?);
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    elems.push(self.path_name()?);
                }
                Tok::LBracket => {
                    self.bump();
                    let at = self.expect(Tok::Number)?;
                    let index: usize = self.text(at).parse().map_err(|_| Fail::At(at))?;
                    self.expect(Tok::RBracket)?;
                    elems.push(RElem::Index(index));
                }
                _ => return Ok(RPath(elems)),
            }
        }
    }

    fn path_name(&mut self) -> PResult<RElem<'a>> {
        match self.peek() {
            Tok::Ident if !self.is_keyword(self.pos) => {
                let at = self.bump();
                Ok(RElem::Ident(self.text(at)))
            }
            Tok::Name => {
                let at = self.bump();
                Ok(RElem::Name(self.text(at)))
            }
            _ => Err(Fail::At(self.pos)),
        }
    }

    /// `( operand )`, `function(args)`, `:value` or a path.
    pub(crate) fn parse_operand(&mut self) -> PResult<ROp<'a>> {
        match self.peek() {
            Tok::LParen => {
                self.enter()?;
                self.bump();
                if self.peek() == Tok::LParen {
                    // The inner operand is itself wholly parenthesised.
                    self.redundant_parens = true;
                }
                let op = self.parse_operand()?;
                self.expect(Tok::RParen)?;
                self.leave();
                Ok(op)
            }
            Tok::Ident if self.peek_at(1) == Tok::LParen && !self.is_keyword(self.pos) => {
                Ok(ROp::Func(self.parse_function()?))
            }
            Tok::Value => {
                let at = self.bump();
                Ok(ROp::Value(self.text(at)))
            }
            Tok::Ident | Tok::Name => Ok(ROp::Path(self.parse_path()?)),
            _ => Err(Fail::At(self.pos)),
        }
    }

    /// `name ( operand, ... )`, at the name.
    pub(crate) fn parse_function(&mut self) -> PResult<RFunc<'a>> {
        let at = self.bump();
        let name = self.text(at);
        self.expect(Tok::LParen)?;
        self.count_operator()?;
        self.enter()?;
        let mut args = vec![self.parse_operand()?];
        while self.peek() == Tok::Comma {
            self.bump();
            args.push(self.parse_operand()?);
        }
        self.expect(Tok::RParen)?;
        self.leave();
        Ok(RFunc { name, args })
    }

    /// AWS's message for a syntax error at token `at`: the token, and the text
    /// from the token before it to the token after it.
    pub(crate) fn syntax_error(&self, at: usize) -> String {
        let t = self.toks[at];
        let token = if t.kind == Tok::Eof {
            "<EOF>"
        } else {
            &self.src[t.start..t.end]
        };
        let start = if at > 0 {
            self.toks[at - 1].start
        } else {
            t.start
        };
        let end = if t.kind == Tok::Eof {
            self.src.len()
        } else {
            let next = self.toks[at + 1];
            if next.kind == Tok::Eof {
                t.end
            } else {
                next.end
            }
        };
        format!(
            "Syntax error; token: \"{token}\", near: \"{}\"",
            &self.src[start..end]
        )
    }

    /// A parse failure as AWS words it.
    pub(crate) fn failure(&self, f: Fail) -> String {
        match f {
            Fail::At(at) => self.syntax_error(at),
            Fail::TooManyOperators => format!(
                "The expression contains too many operators; operator count: {}",
                MAX_OPERATORS + 1
            ),
            Fail::TooDeep => "The expression has redundant parentheses;".to_string(),
        }
    }
}

/// The checks every expression string gets before parsing.
pub(crate) fn check_text(text: &str, kind: &str) -> Result<(), ExprError> {
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(ExprError::invalid(
            kind,
            format!(
                "Expression size has exceeded the maximum allowed size; expression size: {}",
                text.len()
            ),
        ));
    }
    if text.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
        return Err(ExprError::invalid(kind, "The expression can not be empty;"));
    }
    Ok(())
}

/// The first reserved word used as a plain name in `paths`.
pub(crate) fn first_reserved<'a, 'b>(
    paths: impl IntoIterator<Item = &'b RPath<'a>>,
) -> Option<String>
where
    'a: 'b,
{
    for p in paths {
        for e in &p.0 {
            if let RElem::Ident(n) = e {
                if crate::reserved::is_reserved_word(n) {
                    return Some(format!(
                        "Attribute name is a reserved keyword; reserved keyword: {n}"
                    ));
                }
            }
        }
    }
    None
}

/// Substitutes a path's `#names`.
pub(crate) fn resolve_path(raw: &RPath<'_>, subs: &Substitutions) -> Result<Path, String> {
    let mut out = Vec::with_capacity(raw.0.len());
    for e in &raw.0 {
        out.push(match e {
            RElem::Ident(n) => PathElem::Attr((*n).to_string()),
            RElem::Name(n) => match subs.name(n) {
                Some(v) => PathElem::Attr(v.to_string()),
                None => {
                    return Err(format!(
                        "An expression attribute name used in the document path is not defined; attribute name: {n}"
                    ))
                }
            },
            RElem::Index(i) => PathElem::Index(*i),
        });
    }
    if out.len() > MAX_PATH_DEPTH {
        return Err(format!(
            "The document path has too many nesting levels; nesting levels: {}",
            out.len()
        ));
    }
    Ok(Path(out))
}

/// Substitutes a `:value`.
pub(crate) fn resolve_value(name: &str, subs: &Substitutions) -> Result<AttrValue, String> {
    subs.value(name).cloned().ok_or_else(|| {
        format!("An expression attribute value used in expression is not defined; attribute value: {name}")
    })
}

/// `AttributeValue: {N:5}` as AWS prints constants in messages.
pub(crate) fn describe_value(v: &AttrValue) -> String {
    use base64::Engine as _;
    let inner = match v {
        AttrValue::S(s) => s.clone(),
        AttrValue::N(n) => n.to_string(),
        AttrValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        other => other.to_json().to_string(),
    };
    format!("AttributeValue: {{{}:{inner}}}", v.type_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn substitution_errors() {
        let cases = [
            (Some(json!({})), None, "ExpressionAttributeNames must not be empty"),
            (None, Some(json!({})), "ExpressionAttributeValues must not be empty"),
            (Some(json!({"a": "x"})), None, "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""),
            (None, Some(json!({"b": {"S": "a"}})), "ExpressionAttributeValues contains invalid key: Syntax error; key: \"b\""),
            (None, Some(json!({":b": {}})), "ExpressionAttributeValues contains invalid value: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes for key :b"),
            (None, Some(json!({":b": {"SS": ["a", "a"]}})), "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: Input collection [a, a] contains duplicates. for key :b"),
            (None, Some(json!({":b": {"N": "b"}})), "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: b for key :b"),
            (None, Some(json!({":b": {"NULL": false}})), "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: Null attribute value types must have the value of true for key :b"),
        ];
        for (names, values, want) in cases {
            let (n, v) = (names.map(obj), values.map(obj));
            let err = Substitutions::new(n.as_ref(), v.as_ref()).unwrap_err();
            assert_eq!(err.message, want);
        }
    }

    #[test]
    fn unused_substitutions() {
        let names = obj(json!({"#a": "a", "#b": "b"}));
        let values = obj(json!({":a": {"S": "x"}, ":b": {"S": "y"}}));
        let subs = Substitutions::new(Some(&names), Some(&values)).unwrap();
        assert_eq!(
            subs.check_unused().unwrap_err().message,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
        );
        subs.name("#a");
        subs.name("#b");
        assert_eq!(
            subs.check_unused().unwrap_err().message,
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :b}"
        );
        subs.value(":a");
        subs.value(":b");
        assert!(subs.check_unused().is_ok());
        assert!(Substitutions::empty().check_unused().is_ok());
    }

    #[test]
    fn path_rendering() {
        let p = Path(vec![
            PathElem::Attr("a".into()),
            PathElem::Attr("b".into()),
            PathElem::Index(1),
        ]);
        assert_eq!(p.to_string(), "a.b[1]");
        assert_eq!(p.bracketed(), "[a, b, [1]]");
        assert_eq!(p.top(), "a");
    }
}
