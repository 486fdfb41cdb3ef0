//! PartiQL for DynamoDB (ExecuteStatement, BatchExecuteStatement): SELECT, INSERT,
//! UPDATE and DELETE. Statements are tokenized here and their WHERE clauses, SET
//! and REMOVE parts rewritten into DynamoDB expressions (names as `#pN`, literals
//! and `?` parameters as `:pN`), which the expression engine then parses and
//! evaluates — one evaluator for both languages.

use crate::control::{require_table, s};
use crate::data::{self, load_item};
use crate::errors::{expr, validation};
use crate::keys::{key_of_item, write_item, Actor};
use crate::state::TableMeta;
use crate::{DynamoDb, Input, Output};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_dynamodb_expr::{
    item_size, item_to_json, key_bytes, parse_condition, parse_projection, parse_update, project,
    AttrValue, Condition, Item, Number, Substitutions,
};
use virga_store::prefix_end;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare or "double-quoted" identifier (quoted ones are never keywords).
    Ident(String, bool),
    Str(String),
    Num(String),
    Param,
    Punct(&'static str),
}

fn syntax(near: &str) -> AwsError {
    validation(format!(
        "Statement wasn't well formed, can't be processed: unexpected token: {near}"
    ))
}

fn tokenize(text: &str) -> AwsResult<Vec<Tok>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    const PUNCT: [&str; 22] = [
        "<<", ">>", "<>", "!=", "<=", ">=", "=", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".",
        ":", "?", "*", "+", "-",
    ];
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut sv = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(syntax("end of statement")),
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            sv.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&ch) => {
                        sv.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(if c == '\'' {
                Tok::Str(sv)
            } else {
                Tok::Ident(sv, true)
            });
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || chars[i] == 'E'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect(), false));
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match PUNCT.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                out.push(if *p == "?" { Tok::Param } else { Tok::Punct(p) });
                i += p.len();
            }
            None => return Err(syntax(&c.to_string())),
        }
    }
    Ok(out)
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Ident(s, false)) if s.eq_ignore_ascii_case(kw))
}

/// Rewrites PartiQL tokens into DynamoDB expression text, collecting the names and
/// values it introduces.
struct Rewriter<'a> {
    params: &'a [AttrValue],
    next_param: usize,
    names: Map<String, Value>,
    values: Map<String, Value>,
}

impl Rewriter<'_> {
    fn name(&mut self, n: &str) -> String {
        let key = format!("#p{}", self.names.len());
        self.names.insert(key.clone(), json!(n));
        key
    }

    fn value(&mut self, v: AttrValue) -> String {
        let key = format!(":p{}", self.values.len());
        self.values.insert(key.clone(), v.to_json());
        key
    }

    /// A literal (or `?`) starting at `toks[*i]`.
    fn literal(&mut self, toks: &[Tok], i: &mut usize) -> AwsResult<AttrValue> {
        self.literal_at(toks, i, 0)
    }

    /// A literal nested `depth` levels deep (bounded: the input is the client's).
    fn literal_at(&mut self, toks: &[Tok], i: &mut usize, depth: usize) -> AwsResult<AttrValue> {
        if depth > 32 {
            return Err(data::nesting_error());
        }
        let t = toks.get(*i).ok_or_else(|| syntax("end of statement"))?;
        *i += 1;
        Ok(match t {
            Tok::Str(s) => AttrValue::S(s.clone()),
            Tok::Num(n) => AttrValue::N(Number::parse(n).map_err(validation)?),
            Tok::Param => {
                let v = self.params.get(self.next_param).cloned().ok_or_else(|| {
                    validation("Number of parameters in request and statement don't match.")
                })?;
                self.next_param += 1;
                v
            }
            Tok::Ident(k, false) if k.eq_ignore_ascii_case("true") => AttrValue::Bool(true),
            Tok::Ident(k, false) if k.eq_ignore_ascii_case("false") => AttrValue::Bool(false),
            Tok::Ident(k, false) if k.eq_ignore_ascii_case("null") => AttrValue::Null,
            Tok::Punct("{") => {
                let mut m = std::collections::BTreeMap::new();
                while toks.get(*i) != Some(&Tok::Punct("}")) {
                    let key = match toks.get(*i) {
                        Some(Tok::Str(k)) | Some(Tok::Ident(k, _)) => k.clone(),
                        _ => return Err(syntax("{")),
                    };
                    *i += 1;
                    if toks.get(*i) != Some(&Tok::Punct(":")) {
                        return Err(syntax(":"));
                    }
                    *i += 1;
                    let v = self.literal_at(toks, i, depth + 1)?;
                    m.insert(key, v);
                    if toks.get(*i) == Some(&Tok::Punct(",")) {
                        *i += 1;
                    }
                }
                *i += 1;
                AttrValue::M(m)
            }
            Tok::Punct("[") => {
                let mut l = Vec::new();
                while toks.get(*i) != Some(&Tok::Punct("]")) {
                    l.push(self.literal_at(toks, i, depth + 1)?);
                    if toks.get(*i) == Some(&Tok::Punct(",")) {
                        *i += 1;
                    } else if toks.get(*i) != Some(&Tok::Punct("]")) {
                        return Err(syntax("["));
                    }
                }
                *i += 1;
                AttrValue::L(l)
            }
            Tok::Punct("<<") => {
                let mut items = Vec::new();
                while toks.get(*i) != Some(&Tok::Punct(">>")) {
                    items.push(self.literal_at(toks, i, depth + 1)?);
                    if toks.get(*i) == Some(&Tok::Punct(",")) {
                        *i += 1;
                    }
                }
                *i += 1;
                set_of(items)?
            }
            other => return Err(syntax(&describe(other))),
        })
    }

    /// Rewrites a condition or SET/REMOVE clause (tokens up to `end`).
    fn rewrite(&mut self, toks: &[Tok]) -> AwsResult<String> {
        let mut out = String::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            let piece = match t {
                Tok::Ident(k, false)
                    if ["AND", "OR", "NOT", "BETWEEN", "SET", "REMOVE"]
                        .iter()
                        .any(|w| k.eq_ignore_ascii_case(w)) =>
                {
                    i += 1;
                    k.to_ascii_uppercase()
                }
                Tok::Ident(k, false) if k.eq_ignore_ascii_case("IS") => {
                    // `path IS [NOT] MISSING` -> attribute_[not_]exists(path)
                    let not = is_kw(toks.get(i + 1), "NOT");
                    let missing_at = i + 1 + usize::from(not);
                    if !is_kw(toks.get(missing_at), "MISSING") {
                        return Err(syntax("IS"));
                    }
                    let (path, start) = last_path(&out);
                    out.truncate(start);
                    i = missing_at + 1;
                    format!(
                        "{}({path})",
                        if not {
                            "attribute_exists"
                        } else {
                            "attribute_not_exists"
                        }
                    )
                }
                Tok::Ident(k, false) if k.eq_ignore_ascii_case("IN") => {
                    i += 1;
                    if toks.get(i) != Some(&Tok::Punct("["))
                        && toks.get(i) != Some(&Tok::Punct("("))
                    {
                        return Err(syntax("IN"));
                    }
                    let close = if toks[i] == Tok::Punct("[") { "]" } else { ")" };
                    i += 1;
                    let mut vals = Vec::new();
                    while toks.get(i) != Some(&Tok::Punct(close)) {
                        let v = self.literal(toks, &mut i)?;
                        vals.push(self.value(v));
                        if toks.get(i) == Some(&Tok::Punct(",")) {
                            i += 1;
                        }
                        if i >= toks.len() {
                            return Err(syntax("IN"));
                        }
                    }
                    i += 1;
                    format!("IN ({})", vals.join(", "))
                }
                Tok::Ident(k, false)
                    if toks.get(i + 1) == Some(&Tok::Punct("("))
                        && [
                            "begins_with",
                            "contains",
                            "attribute_type",
                            "size",
                            "attribute_exists",
                            "attribute_not_exists",
                            "if_not_exists",
                            "list_append",
                        ]
                        .iter()
                        .any(|f| k.eq_ignore_ascii_case(f)) =>
                {
                    i += 1;
                    k.to_ascii_lowercase()
                }
                Tok::Ident(k, false)
                    if ["true", "false", "null"]
                        .iter()
                        .any(|w| k.eq_ignore_ascii_case(w)) =>
                {
                    let v = self.literal(toks, &mut i)?;
                    self.value(v)
                }
                Tok::Ident(n, _) => {
                    i += 1;
                    self.name(n)
                }
                Tok::Str(_) | Tok::Num(_) | Tok::Param | Tok::Punct("{") | Tok::Punct("<<") => {
                    let v = self.literal(toks, &mut i)?;
                    self.value(v)
                }
                Tok::Punct("[")
                    if i > 0 && matches!(toks[i - 1], Tok::Ident(..) | Tok::Punct("]")) =>
                {
                    // A list index: [N]
                    let Some(Tok::Num(n)) = toks.get(i + 1) else {
                        return Err(syntax("["));
                    };
                    i += 3;
                    out.push_str(&format!("[{n}]"));
                    continue;
                }
                Tok::Punct("[") => {
                    let v = self.literal(toks, &mut i)?;
                    self.value(v)
                }
                Tok::Punct("!=") => {
                    i += 1;
                    "<>".to_string()
                }
                Tok::Punct(".") => {
                    i += 1;
                    out.push('.');
                    continue;
                }
                Tok::Punct(p) => {
                    i += 1;
                    (*p).to_string()
                }
            };
            // Spaces between tokens, none inside calls and document paths.
            if !out.is_empty()
                && !out.ends_with('(')
                && !out.ends_with('.')
                && !matches!(piece.as_str(), ")" | "," | "(")
            {
                out.push(' ');
            }
            out.push_str(&piece);
        }
        Ok(out)
    }
}

/// The document path at the end of rewritten text, and where it starts.
fn last_path(out: &str) -> (String, usize) {
    let trimmed = out.trim_end();
    let start = trimmed.rfind(' ').map_or(0, |p| p + 1);
    (trimmed[start..].to_string(), start)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s, _) | Tok::Str(s) | Tok::Num(s) => s.clone(),
        Tok::Param => "?".into(),
        Tok::Punct(p) => (*p).to_string(),
    }
}

fn set_of(items: Vec<AttrValue>) -> AwsResult<AttrValue> {
    if items.iter().all(|v| matches!(v, AttrValue::S(_))) {
        Ok(AttrValue::Ss(
            items
                .into_iter()
                .filter_map(|v| match v {
                    AttrValue::S(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ))
    } else if items.iter().all(|v| matches!(v, AttrValue::N(_))) {
        Ok(AttrValue::Ns(
            items
                .into_iter()
                .filter_map(|v| match v {
                    AttrValue::N(n) => Some(n),
                    _ => None,
                })
                .collect(),
        ))
    } else if items.iter().all(|v| matches!(v, AttrValue::B(_))) {
        Ok(AttrValue::Bs(
            items
                .into_iter()
                .filter_map(|v| match v {
                    AttrValue::B(b) => Some(b),
                    _ => None,
                })
                .collect(),
        ))
    } else {
        Err(validation("Unsupported set type"))
    }
}

/// Splits tokens at a top-level keyword (outside brackets).
fn split_kw<'t>(toks: &'t [Tok], kw: &str) -> Option<(&'t [Tok], &'t [Tok])> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct("(" | "[" | "{" | "<<") => depth += 1,
            Tok::Punct(")" | "]" | "}" | ">>") => depth -= 1,
            _ if depth == 0 && is_kw(Some(t), kw) => return Some((&toks[..i], &toks[i + 1..])),
            _ => {}
        }
    }
    None
}

/// `name = value` pairs joined by top-level AND in a WHERE clause.
fn equalities(toks: &[Tok], rw: &mut Rewriter) -> AwsResult<Vec<(String, AttrValue)>> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut has_or = false;
    for t in toks {
        match t {
            Tok::Punct("(" | "[" | "{" | "<<") => depth += 1,
            Tok::Punct(")" | "]" | "}" | ">>") => depth -= 1,
            _ if depth == 0 && is_kw(Some(t), "OR") => has_or = true,
            _ => {}
        }
    }
    if has_or {
        return Ok(out);
    }
    let mut probe = Rewriter {
        params: rw.params,
        next_param: rw.next_param,
        names: Map::new(),
        values: Map::new(),
    };
    let mut i = 0;
    let mut depth = 0i32;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct("(" | "[" | "{" | "<<") => depth += 1,
            Tok::Punct(")" | "]" | "}" | ">>") => depth -= 1,
            Tok::Param => probe.next_param += 1,
            Tok::Ident(n, _)
                if depth == 0
                    && toks.get(i + 1) == Some(&Tok::Punct("="))
                    && (i == 0 || is_kw(toks.get(i - 1), "AND")) =>
            {
                let mut j = i + 2;
                let v = probe.literal(toks, &mut j)?;
                out.push((n.clone(), v));
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(out)
}

fn table_ref(toks: &[Tok]) -> AwsResult<(String, Option<String>, usize)> {
    let Some(Tok::Ident(t, _)) = toks.first() else {
        return Err(syntax(&toks.first().map(describe).unwrap_or_default()));
    };
    if toks.get(1) == Some(&Tok::Punct(".")) {
        if let Some(Tok::Ident(ix, _)) = toks.get(2) {
            return Ok((t.clone(), Some(ix.clone()), 3));
        }
    }
    Ok((t.clone(), None, 1))
}

fn params_of(i: &Input) -> AwsResult<Vec<AttrValue>> {
    i.get("Parameters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| AttrValue::from_json(v).map_err(validation))
                .collect()
        })
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn subs(rw: &Rewriter) -> AwsResult<Substitutions> {
    let names = (!rw.names.is_empty()).then_some(&rw.names);
    let values = (!rw.values.is_empty()).then_some(&rw.values);
    Substitutions::new(names, values).map_err(expr)
}

fn key_from(meta: &TableMeta, eqs: &[(String, AttrValue)]) -> AwsResult<Item> {
    let mut key = Item::new();
    for name in meta.key_names() {
        let v = eqs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                validation(
                    "Where clause does not contain a mandatory equality on all key attributes",
                )
            })?;
        key.insert(name.to_string(), v);
    }
    Ok(key)
}

/// ConditionalCheckFailed carrying the item, for ReturnValuesOnConditionCheckFailure.
fn failed_with(old: &Item) -> AwsError {
    crate::errors::condition_failed().with_json("Item", Value::Object(item_to_json(old)))
}

pub fn execute_statement(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let statement = s(i, "Statement").unwrap_or("");
    let params = params_of(i)?;
    run(ddb, ctx, statement, &params, i).map_err(|mut e| {
        if s(i, "ReturnValuesOnConditionCheckFailure") != Some("ALL_OLD") {
            e.json_fields = None;
        }
        e
    })
}

fn run(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    statement: &str,
    params: &[AttrValue],
    i: &Input,
) -> AwsResult<Output> {
    let toks = tokenize(statement)?;
    let mut rw = Rewriter {
        params,
        next_param: 0,
        names: Map::new(),
        values: Map::new(),
    };
    let first = toks
        .first()
        .map(describe)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let out = match first.as_str() {
        "SELECT" => select(ddb, ctx, &toks[1..], &mut rw, i)?,
        "INSERT" => insert(ddb, ctx, &toks[1..], &mut rw)?,
        "UPDATE" => update(ddb, ctx, &toks[1..], &mut rw)?,
        "DELETE" => delete(ddb, ctx, &toks[1..], &mut rw)?,
        _ => return Err(syntax(&first)),
    };
    if rw.next_param != params.len() {
        return Err(validation(
            "Number of parameters in request and statement don't match.",
        ));
    }
    Ok(out)
}

fn select(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    toks: &[Tok],
    rw: &mut Rewriter,
    i: &Input,
) -> AwsResult<Output> {
    let (proj, rest) = split_kw(toks, "FROM").ok_or_else(|| syntax("SELECT"))?;
    let (table, index, used) = table_ref(rest)?;
    let mut rest = &rest[used..];
    // ORDER BY <sort key> [ASC|DESC]: results already come in sort-key order.
    let mut descending = false;
    if let Some((before, after)) = split_kw(rest, "ORDER") {
        if !is_kw(after.first(), "BY") || after.len() < 2 || after.len() > 3 {
            return Err(syntax("ORDER"));
        }
        descending = is_kw(after.get(2), "DESC");
        if after.len() == 3 && !descending && !is_kw(after.get(2), "ASC") {
            return Err(syntax(&describe(&after[2])));
        }
        rest = before;
    }
    let where_toks = if rest.is_empty() {
        None
    } else if is_kw(rest.first(), "WHERE") {
        Some(&rest[1..])
    } else {
        return Err(syntax(&describe(&rest[0])));
    };
    let meta = require_table(ddb, ctx, &table)?;
    let projection_text = if proj == [Tok::Punct("*")] {
        None
    } else {
        Some(rw.rewrite(proj)?)
    };
    let (cond_text, eqs) = match where_toks {
        Some(w) => {
            let eqs = equalities(w, rw)?;
            (Some(rw.rewrite(w)?), eqs)
        }
        None => (None, Vec::new()),
    };
    let subs = subs(rw)?;
    let cond = cond_text
        .map(|t| parse_condition(&t, "ConditionExpression", &subs))
        .transpose()
        .map_err(expr)?;
    let projection = projection_text
        .map(|t| parse_projection(&t, &subs))
        .transpose()
        .map_err(expr)?;
    let index_meta = match &index {
        Some(n) => Some(meta.index(n).ok_or_else(|| {
            validation(format!("The table does not have the specified index: {n}"))
        })?),
        None => None,
    };
    // A partition-key equality narrows the read to that partition.
    let hash_name = index_meta.map_or(&meta.hash.name, |(ix, _)| &ix.hash.name);
    let mut prefix = match index_meta {
        Some((ix, _)) => crate::keys::index_bounds(&meta, &ix.name).0,
        None => virga_store::KeyBuf::new().u64(meta.uid).into_vec(),
    };
    if let Some((_, v)) = eqs.iter().find(|(n, _)| n == hash_name) {
        prefix.extend_from_slice(&key_bytes(v));
    }
    let store_table = if index_meta.is_some() {
        crate::state::INDEX
    } else {
        crate::state::ITEMS
    };
    let limit = i.get("Limit").and_then(Value::as_u64).map(|l| l as usize);
    let token = match s(i, "NextToken") {
        Some(tok) => Some(
            hex::decode(tok)
                .ok()
                .filter(|k| k.starts_with(&prefix))
                .ok_or_else(|| validation("Invalid NextToken"))?,
        ),
        None => None,
    };
    let end = prefix_end(&prefix).unwrap_or_default();
    // ORDER BY ... DESC reads the range backwards; the token moves whichever end
    // the reading started from.
    let (mut lo, mut hi) = match (token, descending) {
        (Some(k), false) => (Bound::Excluded(k), Bound::Excluded(end)),
        (Some(k), true) => (Bound::Included(prefix.clone()), Bound::Excluded(k)),
        (None, _) => (Bound::Included(prefix.clone()), Bound::Excluded(end)),
    };
    let mut items = Vec::new();
    let mut next = None;
    let mut bytes = 0usize;
    ddb.store.read(|r| loop {
        let rows = r.scan(
            store_table,
            crate::query::as_ref(&lo),
            crate::query::as_ref(&hi),
            256,
            descending,
        )?;
        let done = rows.len() < 256;
        for (k, v) in &rows {
            if descending {
                hi = Bound::Excluded(k.clone());
            } else {
                lo = Bound::Excluded(k.clone());
            }
            let item = crate::keys::decode_item(v)?;
            bytes += item_size(&item);
            let keep = match &cond {
                Some(c) => c.eval(&item).map_err(expr)?,
                None => true,
            };
            if keep {
                let shown = match &projection {
                    Some(p) => project(&item, p),
                    None => item,
                };
                items.push(Value::Object(item_to_json(&shown)));
            }
            if limit.is_some_and(|l| items.len() >= l) || bytes >= 1024 * 1024 {
                next = Some(hex::encode(k));
                return Ok(());
            }
        }
        if done {
            return Ok(());
        }
    })?;
    let mut out = Map::new();
    out.insert("Items".into(), Value::Array(items));
    if let Some(n) = next {
        out.insert("NextToken".into(), json!(n));
    }
    Ok(out)
}

fn insert(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    toks: &[Tok],
    rw: &mut Rewriter,
) -> AwsResult<Output> {
    if !is_kw(toks.first(), "INTO") {
        return Err(syntax("INSERT"));
    }
    let (table, _, used) = table_ref(&toks[1..])?;
    let rest = &toks[1 + used..];
    if !is_kw(rest.first(), "VALUE") {
        return Err(syntax(&rest.first().map(describe).unwrap_or_default()));
    }
    let mut j = 1;
    let AttrValue::M(item) = rw.literal(rest, &mut j)? else {
        return Err(syntax("VALUE"));
    };
    // Validate as a PutItem would: sets, names, nesting, size.
    let item = data::parse_item(&item_to_json(&item))?;
    if item_size(&item) > crate::keys::MAX_ITEM {
        return Err(validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    if j != rest.len() {
        return Err(syntax(&describe(&rest[j])));
    }
    let meta = require_table(ddb, ctx, &table)?;
    let key = key_of_item(&meta, &item)?;
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let meta = crate::control::relock_table(ddb, ctx, &meta)?;
    ddb.store.transact(|t| {
        if load_item(t, &key)?.is_some() {
            return Err(AwsError::new(
                400,
                "DuplicateItemException",
                "Duplicate primary key exists in table",
            ));
        }
        write_item(ddb, t, &meta, &key, None, Some(&item), Actor::User)
    })?;
    Ok(Map::new())
}

/// The item a WHERE clause names by its full primary key, with the whole clause as
/// the write's condition.
fn targeted(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    table: &str,
    where_toks: &[Tok],
    rw: &mut Rewriter,
) -> AwsResult<(TableMeta, Item, String)> {
    let meta = require_table(ddb, ctx, table)?;
    let eqs = equalities(where_toks, rw)?;
    let key = key_from(&meta, &eqs)?;
    let cond = rw.rewrite(where_toks)?;
    Ok((meta, key, cond))
}

/// An UPDATE statement as DynamoDB expressions.
struct PlannedUpdate {
    meta: TableMeta,
    key_item: Item,
    update: String,
    condition: String,
    returning: Returning,
}

fn plan_update(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    toks: &[Tok],
    rw: &mut Rewriter,
) -> AwsResult<PlannedUpdate> {
    let (table, _, used) = table_ref(toks)?;
    let rest = &toks[used..];
    let (clauses, where_toks) = split_kw(rest, "WHERE").ok_or_else(|| {
        validation("Where clause does not contain a mandatory equality on all key attributes")
    })?;
    let (where_toks, returning) = returning_clause(where_toks)?;
    // SET a = 1 SET b = 2 REMOVE c  ->  SET a = 1, b = 2 REMOVE c
    let mut sets: Vec<&[Tok]> = Vec::new();
    let mut removes: Vec<&[Tok]> = Vec::new();
    let mut start = 0;
    let mut kind = "";
    for idx in 0..=clauses.len() {
        let boundary = idx == clauses.len()
            || is_kw(clauses.get(idx), "SET")
            || is_kw(clauses.get(idx), "REMOVE");
        if boundary {
            if idx > start {
                match kind {
                    "SET" => sets.push(&clauses[start..idx]),
                    "REMOVE" => removes.push(&clauses[start..idx]),
                    _ => return Err(syntax(&describe(&clauses[start]))),
                }
            }
            if idx < clauses.len() {
                kind = if is_kw(clauses.get(idx), "SET") {
                    "SET"
                } else {
                    "REMOVE"
                };
                start = idx + 1;
            }
        }
    }
    let mut text = String::new();
    // `a = set_add(a, <<...>>)` / `set_delete` are ADD / DELETE of set elements.
    let mut set_ops = Vec::new();
    let mut plain_sets = Vec::new();
    for c in &sets {
        let func = match c.get(2) {
            Some(Tok::Ident(f, false)) if f.eq_ignore_ascii_case("set_add") => Some("ADD"),
            Some(Tok::Ident(f, false)) if f.eq_ignore_ascii_case("set_delete") => Some("DELETE"),
            _ => None,
        };
        match (func, c.first()) {
            (Some(op), Some(Tok::Ident(name, _))) if c.get(3) == Some(&Tok::Punct("(")) => {
                let comma = c
                    .iter()
                    .position(|t| *t == Tok::Punct(","))
                    .ok_or_else(|| syntax(op))?;
                let mut j = comma + 1;
                let v = rw.literal(c, &mut j)?;
                let n = rw.name(name);
                let v = rw.value(v);
                set_ops.push(format!("{op} {n} {v}"));
            }
            // Rewritten in statement order, so `?` parameters bind in order.
            _ => plain_sets.push(rw.rewrite(c)?),
        }
    }
    if !plain_sets.is_empty() {
        text.push_str(&format!("SET {}", plain_sets.join(", ")));
    }
    for op in set_ops {
        text.push(' ');
        text.push_str(&op);
    }
    if !removes.is_empty() {
        let parts: Vec<String> = removes
            .iter()
            .map(|c| rw.rewrite(c))
            .collect::<AwsResult<_>>()?;
        text.push_str(&format!(" REMOVE {}", parts.join(", ")));
    }
    let (meta, key_item, condition) = targeted(ddb, ctx, &table, where_toks, rw)?;
    Ok(PlannedUpdate {
        meta,
        key_item,
        update: text.trim().to_string(),
        condition,
        returning,
    })
}

fn update(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    toks: &[Tok],
    rw: &mut Rewriter,
) -> AwsResult<Output> {
    let PlannedUpdate {
        meta,
        key_item,
        update: text,
        condition: cond_text,
        returning,
    } = plan_update(ddb, ctx, toks, rw)?;
    let subs = subs(rw)?;
    let upd = parse_update(&text, &subs).map_err(expr)?;
    let cond = parse_condition(&cond_text, "ConditionExpression", &subs).map_err(expr)?;
    let (_, key) = crate::keys::parse_key(&meta, Some(&Value::Object(item_to_json(&key_item))))?;
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let meta = crate::control::relock_table(ddb, ctx, &meta)?;
    ddb.store
        .transact(|t| {
            let old = load_item(t, &key)?;
            let Some(old) = old else {
                return Err(crate::errors::condition_failed());
            };
            if !cond.eval(&old).map_err(expr)? {
                return Err(failed_with(&old));
            }
            let new = data::apply_update(&meta, &key_item, Some(&old), Some(&upd))?;
            write_item(ddb, t, &meta, &key, Some(&old), Some(&new), Actor::User)?;
            Ok((old, new))
        })
        .map(|(old, new)| {
            let touched = upd.top_level_attributes();
            returned(returning, Some(&old), Some(&new), &touched)
        })
}

/// What `RETURNING (ALL|MODIFIED) (OLD|NEW) *` asks for: (all attributes, new image).
type Returning = Option<(bool, bool)>;

/// Splits `... RETURNING ALL NEW *` off a WHERE clause.
fn returning_clause(toks: &[Tok]) -> AwsResult<(&[Tok], Returning)> {
    let Some((before, after)) = split_kw(toks, "RETURNING") else {
        return Ok((toks, None));
    };
    let all = is_kw(after.first(), "ALL");
    let modified = is_kw(after.first(), "MODIFIED");
    let new = is_kw(after.get(1), "NEW");
    let old = is_kw(after.get(1), "OLD");
    if !(all || modified)
        || !(new || old)
        || after.get(2) != Some(&Tok::Punct("*"))
        || after.len() != 3
    {
        return Err(syntax("RETURNING"));
    }
    Ok((before, Some((all, new))))
}

/// The Items of a statement with a RETURNING clause.
fn returned(
    returning: Returning,
    old: Option<&Item>,
    new: Option<&Item>,
    touched: &[String],
) -> Output {
    let mut out = Map::new();
    let Some((all, want_new)) = returning else {
        return out;
    };
    let image = if want_new { new } else { old };
    if let Some(item) = image {
        let shown: Item = if all {
            item.clone()
        } else {
            item.iter()
                .filter(|(k, _)| touched.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        out.insert("Items".into(), json!([item_to_json(&shown)]));
    }
    out
}

fn delete(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    toks: &[Tok],
    rw: &mut Rewriter,
) -> AwsResult<Output> {
    let (meta, key_item, cond_text, returning) = plan_delete(ddb, ctx, toks, rw)?;
    let subs = subs(rw)?;
    let cond: Condition =
        parse_condition(&cond_text, "ConditionExpression", &subs).map_err(expr)?;
    let (_, key) = crate::keys::parse_key(&meta, Some(&Value::Object(item_to_json(&key_item))))?;
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let meta = crate::control::relock_table(ddb, ctx, &meta)?;
    let old = ddb.store.transact(|t| {
        let Some(old) = load_item(t, &key)? else {
            return Ok(None);
        };
        if !cond.eval(&old).map_err(expr)? {
            return Err(failed_with(&old));
        }
        write_item(ddb, t, &meta, &key, Some(&old), None, Actor::User)?;
        Ok(Some(old))
    })?;
    let touched: Vec<String> = old
        .as_ref()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    Ok(returned(returning, old.as_ref(), None, &touched))
}

/// A DELETE statement: the table, the key, the WHERE clause as a condition.
fn plan_delete(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    toks: &[Tok],
    rw: &mut Rewriter,
) -> AwsResult<(TableMeta, Item, String, Returning)> {
    if !is_kw(toks.first(), "FROM") {
        return Err(syntax("DELETE"));
    }
    let (table, _, used) = table_ref(&toks[1..])?;
    let rest = &toks[1 + used..];
    if !is_kw(rest.first(), "WHERE") {
        return Err(validation(
            "Where clause does not contain a mandatory equality on all key attributes",
        ));
    }
    let (where_toks, returning) = returning_clause(&rest[1..])?;
    let (meta, key_item, cond_text) = targeted(ddb, ctx, &table, where_toks, rw)?;
    Ok((meta, key_item, cond_text, returning))
}

/// ExecuteTransaction: every statement becomes one TransactWriteItems (or, when all
/// are SELECTs, TransactGetItems) entry, so PartiQL transactions get exactly the
/// all-or-nothing behaviour and cancellation reasons of the item API.
pub fn execute_transaction(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let statements = i
        .get("TransactStatements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for st in &statements {
        let st = st.as_object().cloned().unwrap_or_default();
        let text = s(&st, "Statement").unwrap_or("");
        let params = params_of(&st)?;
        let toks = tokenize(text)?;
        let mut rw = Rewriter {
            params: &params,
            next_param: 0,
            names: Map::new(),
            values: Map::new(),
        };
        let first = toks
            .first()
            .map(describe)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let with_subs = |mut body: Map<String, Value>, rw: &Rewriter| {
            if !rw.names.is_empty() {
                body.insert(
                    "ExpressionAttributeNames".into(),
                    Value::Object(rw.names.clone()),
                );
            }
            if !rw.values.is_empty() {
                body.insert(
                    "ExpressionAttributeValues".into(),
                    Value::Object(rw.values.clone()),
                );
            }
            body
        };
        match first.as_str() {
            "SELECT" => {
                select_names_full_key(ddb, ctx, text, &params)?;
                let (_, rest) = split_kw(&toks, "FROM").ok_or_else(|| syntax("SELECT"))?;
                let (table, _, used) = table_ref(rest)?;
                let meta = require_table(ddb, ctx, &table)?;
                let where_toks = split_kw(&rest[used..], "WHERE").map_or(&[][..], |(_, w)| w);
                let eqs = equalities(where_toks, &mut rw)?;
                let key = key_from(&meta, &eqs)?;
                reads.push(json!({"Get": {"TableName": meta.name, "Key": item_to_json(&key)}}));
            }
            "INSERT" => {
                if !is_kw(toks.get(1), "INTO") {
                    return Err(syntax("INSERT"));
                }
                let (table, _, used) = table_ref(&toks[2..])?;
                let rest = &toks[2 + used..];
                if !is_kw(rest.first(), "VALUE") {
                    return Err(syntax("INSERT"));
                }
                let mut j = 1;
                let AttrValue::M(item) = rw.literal(rest, &mut j)? else {
                    return Err(syntax("VALUE"));
                };
                let meta = require_table(ddb, ctx, &table)?;
                let mut body = Map::new();
                body.insert("TableName".into(), json!(meta.name));
                body.insert("Item".into(), Value::Object(item_to_json(&item)));
                body.insert(
                    "ConditionExpression".into(),
                    json!("attribute_not_exists(#insert_key)"),
                );
                body.insert(
                    "ExpressionAttributeNames".into(),
                    json!({"#insert_key": meta.hash.name}),
                );
                writes.push(json!({ "Put": body }));
            }
            "UPDATE" => {
                let p = plan_update(ddb, ctx, &toks[1..], &mut rw)?;
                let mut body = Map::new();
                body.insert("TableName".into(), json!(p.meta.name));
                body.insert("Key".into(), Value::Object(item_to_json(&p.key_item)));
                body.insert("UpdateExpression".into(), json!(p.update));
                body.insert("ConditionExpression".into(), json!(p.condition));
                writes.push(json!({ "Update": with_subs(body, &rw) }));
            }
            "DELETE" => {
                let (meta, key_item, condition, _) = plan_delete(ddb, ctx, &toks[1..], &mut rw)?;
                let mut body = Map::new();
                body.insert("TableName".into(), json!(meta.name));
                body.insert("Key".into(), Value::Object(item_to_json(&key_item)));
                body.insert("ConditionExpression".into(), json!(condition));
                writes.push(json!({ "Delete": with_subs(body, &rw) }));
            }
            other => return Err(syntax(other)),
        }
    }
    if !reads.is_empty() && !writes.is_empty() {
        return Err(validation(
            "Transaction must contain either all reads or all writes",
        ));
    }
    let mut input = Map::new();
    if let Some(tok) = i.get("ClientRequestToken") {
        input.insert("ClientRequestToken".into(), tok.clone());
    }
    if reads.is_empty() {
        input.insert("TransactItems".into(), Value::Array(writes));
        crate::transact::transact_write(ddb, ctx, &input)?;
        Ok(Map::new())
    } else {
        input.insert("TransactItems".into(), Value::Array(reads));
        crate::transact::transact_get(ddb, ctx, &input)
    }
}

/// BatchExecuteStatement reads single items: a SELECT must name the full key.
fn select_names_full_key(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    text: &str,
    params: &[AttrValue],
) -> AwsResult<()> {
    let toks = tokenize(text)?;
    let (_, rest) = split_kw(&toks, "FROM").ok_or_else(|| syntax("SELECT"))?;
    let (table, _, used) = table_ref(rest)?;
    let meta = require_table(ddb, ctx, &table)?;
    let where_toks = split_kw(&rest[used..], "WHERE").map_or(&[][..], |(_, w)| w);
    let mut rw = Rewriter {
        params,
        next_param: 0,
        names: Map::new(),
        values: Map::new(),
    };
    let eqs = equalities(where_toks, &mut rw)?;
    key_from(&meta, &eqs).map(|_| ())
}

pub fn batch_execute_statement(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    i: &Input,
) -> AwsResult<Output> {
    let statements = i
        .get("Statements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if statements.len() > 25 {
        return Err(validation(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have length less than or equal to 25",
        ));
    }
    let mut responses = Vec::new();
    for st in &statements {
        let st = st.as_object().cloned().unwrap_or_default();
        let text = s(&st, "Statement").unwrap_or("");
        let result = params_of(&st).and_then(|p| {
            if text.trim_start().to_ascii_uppercase().starts_with("SELECT") {
                select_names_full_key(ddb, ctx, text, &p)?;
            }
            run(ddb, ctx, text, &p, &st)
        });
        let table = tokenize(text)
            .ok()
            .and_then(|t| {
                t.iter()
                    .position(|x| {
                        is_kw(Some(x), "FROM") || is_kw(Some(x), "INTO") || is_kw(Some(x), "UPDATE")
                    })
                    .and_then(|p| t.get(p + 1).cloned())
            })
            .map(|t| describe(&t));
        let mut r = Map::new();
        if let Some(t) = table {
            r.insert("TableName".into(), json!(t));
        }
        match result {
            Ok(out) => {
                if let Some(Value::Array(items)) = out.get("Items") {
                    if let Some(first) = items.first() {
                        r.insert("Item".into(), first.clone());
                    }
                }
            }
            Err(e) => {
                let code = match e.code.rsplit('#').next().unwrap_or(&e.code) {
                    "ConditionalCheckFailedException" => "ConditionalCheckFailed",
                    "ResourceNotFoundException" => "ResourceNotFound",
                    "DuplicateItemException" => "DuplicateItem",
                    "ValidationException" => "ValidationError",
                    _ => "InternalServerError",
                };
                let mut err = json!({"Code": code, "Message": e.message});
                if s(&st, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD") {
                    if let Some(item) = e.json_fields.as_ref().and_then(|f| f.get("Item")) {
                        err["Item"] = item.clone();
                    }
                }
                r.insert("Error".into(), err);
            }
        }
        responses.push(Value::Object(r));
    }
    Ok(data_obj(json!({ "Responses": responses })))
}

fn data_obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
