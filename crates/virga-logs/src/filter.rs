//! CloudWatch Logs filter patterns: terms (`ERROR`, `"exact phrase"`, `?a ?b`,
//! `-term`), JSON patterns (`{ $.level = "error" && $.latency > 100 }`) and
//! space-delimited patterns (`[ip, user, ..., status = 404, size]`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    All,
    Terms {
        all: Vec<String>,
        any: Vec<String>,
        none: Vec<String>,
    },
    Json(JsonExpr),
    Fields(Vec<Field>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpr {
    And(Box<JsonExpr>, Box<JsonExpr>),
    Or(Box<JsonExpr>, Box<JsonExpr>),
    Cmp(Vec<PathStep>, String, Literal),
    Exists(Vec<PathStep>, bool),
    Is(Vec<PathStep>, Literal),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `...`: any number of fields.
    Rest,
    /// A named field with an optional condition (`status = 404`).
    Named(Option<(String, Literal)>),
}

pub fn parse(pattern: &str) -> Result<Pattern, String> {
    let p = pattern.trim();
    if p.is_empty() {
        return Ok(Pattern::All);
    }
    if p.starts_with('{') {
        let inner = p
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .ok_or("Invalid character(s) in term")?;
        let toks = tokenize(inner)?;
        let mut pos = 0;
        let e = parse_or(&toks, &mut pos)?;
        if pos != toks.len() {
            return Err("Invalid character(s) in term".into());
        }
        return Ok(Pattern::Json(e));
    }
    if p.starts_with('[') {
        let inner = p
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .ok_or("Invalid character(s) in term")?;
        let mut fields = Vec::new();
        for f in inner.split(',') {
            let f = f.trim();
            if f == "..." {
                fields.push(Field::Rest);
            } else if let Some(at) = f.find(['=', '<', '>', '!']) {
                let (_, cond) = f.split_at(at);
                let op_len =
                    if cond.starts_with("!=") || cond.starts_with(">=") || cond.starts_with("<=") {
                        2
                    } else {
                        1
                    };
                let op = &cond[..op_len];
                let lit = literal(cond[op_len..].trim());
                fields.push(Field::Named(Some((op.to_string(), lit))));
            } else {
                fields.push(Field::Named(None));
            }
        }
        return Ok(Pattern::Fields(fields));
    }
    let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
    let mut rest = p;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let (prefix, body) = match rest.chars().next() {
            Some('?') => (Some('?'), &rest[1..]),
            Some('-') => (Some('-'), &rest[1..]),
            _ => (None, rest),
        };
        let (term, after) = if let Some(q) = body.strip_prefix('"') {
            let end = q.find('"').ok_or("Invalid character(s) in term")?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            (body[..end].to_string(), &body[end..])
        };
        rest = after;
        if term.is_empty() {
            continue;
        }
        match prefix {
            Some('?') => any.push(term),
            Some('-') => none.push(term),
            _ => all.push(term),
        }
    }
    Ok(Pattern::Terms { all, any, none })
}

fn literal(s: &str) -> Literal {
    if let Some(q) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        return Literal::Str(q.to_string());
    }
    match s {
        "true" | "TRUE" => Literal::Bool(true),
        "false" | "FALSE" => Literal::Bool(false),
        "null" | "NULL" => Literal::Null,
        _ => s
            .parse::<f64>()
            .map(Literal::Num)
            .unwrap_or_else(|_| Literal::Str(s.to_string())),
    }
}

fn tokenize(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(chars[start..i.min(chars.len())].iter().collect());
        } else if c == '(' || c == ')' {
            out.push(c.to_string());
            i += 1;
        } else if "=!<>&|".contains(c) {
            let start = i;
            while i < chars.len() && "=!<>&|".contains(chars[i]) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"=!<>&|()".contains(chars[i]) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn parse_or(t: &[String], pos: &mut usize) -> Result<JsonExpr, String> {
    let mut left = parse_and(t, pos)?;
    while t.get(*pos).map(String::as_str) == Some("||") {
        *pos += 1;
        left = JsonExpr::Or(Box::new(left), Box::new(parse_and(t, pos)?));
    }
    Ok(left)
}

fn parse_and(t: &[String], pos: &mut usize) -> Result<JsonExpr, String> {
    let mut left = parse_atom(t, pos)?;
    while t.get(*pos).map(String::as_str) == Some("&&") {
        *pos += 1;
        left = JsonExpr::And(Box::new(left), Box::new(parse_atom(t, pos)?));
    }
    Ok(left)
}

fn parse_atom(t: &[String], pos: &mut usize) -> Result<JsonExpr, String> {
    let tok = t.get(*pos).ok_or("Invalid character(s) in term")?;
    if tok == "(" {
        *pos += 1;
        let e = parse_or(t, pos)?;
        if t.get(*pos).map(String::as_str) != Some(")") {
            return Err("Invalid character(s) in term".into());
        }
        *pos += 1;
        return Ok(e);
    }
    let path = parse_path(tok)?;
    *pos += 1;
    let op = t.get(*pos).ok_or("Invalid character(s) in term")?.clone();
    *pos += 1;
    if op.eq_ignore_ascii_case("IS") {
        let v = t.get(*pos).ok_or("Invalid character(s) in term")?;
        *pos += 1;
        return Ok(JsonExpr::Is(path, literal(&v.to_ascii_lowercase())));
    }
    if op.eq_ignore_ascii_case("NOT") {
        if t.get(*pos)
            .is_some_and(|x| x.eq_ignore_ascii_case("EXISTS"))
        {
            *pos += 1;
            return Ok(JsonExpr::Exists(path, false));
        }
        return Err("Invalid character(s) in term".into());
    }
    if op.eq_ignore_ascii_case("EXISTS") {
        return Ok(JsonExpr::Exists(path, true));
    }
    if !["=", "!=", "<", ">", "<=", ">="].contains(&op.as_str()) {
        return Err("Invalid character(s) in term".into());
    }
    let v = t.get(*pos).ok_or("Invalid character(s) in term")?;
    *pos += 1;
    Ok(JsonExpr::Cmp(path, op, literal(v)))
}

fn parse_path(s: &str) -> Result<Vec<PathStep>, String> {
    let rest = s.strip_prefix('$').ok_or("Invalid character(s) in term")?;
    let mut steps = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    steps.push(PathStep::Key(std::mem::take(&mut cur)));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    steps.push(PathStep::Key(std::mem::take(&mut cur)));
                }
                let mut n = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    n.push(d);
                }
                steps.push(PathStep::Index(
                    n.parse().map_err(|_| "Invalid character(s) in term")?,
                ));
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        steps.push(PathStep::Key(cur));
    }
    Ok(steps)
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, s: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == s;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn lookup<'a>(v: &'a Value, path: &[PathStep]) -> Option<&'a Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            PathStep::Key(k) => cur.get(k)?,
            PathStep::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

fn compare(v: &Value, op: &str, lit: &Literal) -> bool {
    match lit {
        Literal::Num(n) => {
            let Some(x) = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            else {
                return false;
            };
            match op {
                "=" => x == *n,
                "!=" => x != *n,
                "<" => x < *n,
                ">" => x > *n,
                "<=" => x <= *n,
                ">=" => x >= *n,
                _ => false,
            }
        }
        Literal::Str(s) => {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return op == "!=",
            };
            match op {
                "=" => wildcard(s, &text),
                "!=" => !wildcard(s, &text),
                _ => false,
            }
        }
        Literal::Bool(b) => match op {
            "=" => v.as_bool() == Some(*b),
            "!=" => v.as_bool() != Some(*b),
            _ => false,
        },
        Literal::Null => match op {
            "=" => v.is_null(),
            "!=" => !v.is_null(),
            _ => false,
        },
    }
}

fn eval_json(e: &JsonExpr, doc: &Value) -> bool {
    match e {
        JsonExpr::And(a, b) => eval_json(a, doc) && eval_json(b, doc),
        JsonExpr::Or(a, b) => eval_json(a, doc) || eval_json(b, doc),
        JsonExpr::Cmp(path, op, lit) => lookup(doc, path).is_some_and(|v| compare(v, op, lit)),
        JsonExpr::Exists(path, should) => lookup(doc, path).is_some() == *should,
        JsonExpr::Is(path, lit) => lookup(doc, path).is_some_and(|v| match lit {
            Literal::Bool(b) => v.as_bool() == Some(*b),
            Literal::Null => v.is_null(),
            _ => false,
        }),
    }
}

/// Splits a log line into space-delimited fields ("quoted" and [bracketed] fields
/// count as one).
fn fields(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let close = match chars[i] {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        let start = i;
        if let Some(c) = close {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            out.push(chars[start + 1..i.min(chars.len())].iter().collect());
            i += 1;
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    out
}

/// Whether the fields match the pattern. `...` matches any run of fields; a table of
/// sub-results keeps this O(pattern x fields) instead of exponential in the `...`s.
fn match_fields(pattern: &[Field], values: &[String]) -> bool {
    let (p, v) = (pattern.len(), values.len());
    // ok[i][j]: pattern[i..] matches values[j..]
    let mut ok = vec![vec![false; v + 1]; p + 1];
    ok[p][v] = true;
    for i in (0..p).rev() {
        for j in (0..=v).rev() {
            ok[i][j] = match &pattern[i] {
                Field::Rest => ok[i + 1][j] || (j < v && ok[i][j + 1]),
                Field::Named(cond) => {
                    j < v
                        && ok[i + 1][j + 1]
                        && cond.as_ref().is_none_or(|(op, lit)| {
                            compare(&Value::String(values[j].clone()), op, lit)
                        })
                }
            };
        }
    }
    ok[0][0]
}

impl Pattern {
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms { all, any, none } => {
                if none.iter().any(|t| message.contains(t.as_str())) {
                    return false;
                }
                if !any.is_empty() {
                    return any.iter().any(|t| message.contains(t.as_str()))
                        && all.iter().all(|t| message.contains(t.as_str()));
                }
                all.iter().all(|t| message.contains(t.as_str()))
            }
            Pattern::Json(e) => serde_json::from_str::<Value>(message)
                .map(|doc| eval_json(e, &doc))
                .unwrap_or(false),
            Pattern::Fields(f) => match_fields(f, &fields(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "anything", true),
            ("ERROR", "an ERROR happened", true),
            ("ERROR", "an error happened", false),
            ("ERROR timeout", "ERROR: timeout", true),
            ("ERROR timeout", "ERROR: refused", false),
            ("\"disk full\"", "warning: disk full now", true),
            ("\"disk full\"", "full disk", false),
            ("?ERROR ?WARN", "WARN low memory", true),
            ("?ERROR ?WARN", "INFO ok", false),
            ("ERROR -timeout", "ERROR refused", true),
            ("ERROR -timeout", "ERROR timeout", false),
            ("{ $.level = \"error\" }", r#"{"level":"error"}"#, true),
            ("{ $.level = \"error\" }", r#"{"level":"info"}"#, false),
            ("{ $.level = \"error\" }", "not json", false),
            ("{ $.latency > 100 }", r#"{"latency":150}"#, true),
            ("{ $.latency > 100 }", r#"{"latency":50}"#, false),
            ("{ $.a = \"x\" && $.b = 1 }", r#"{"a":"x","b":1}"#, true),
            ("{ $.a = \"x\" && $.b = 1 }", r#"{"a":"x","b":2}"#, false),
            ("{ $.a = \"x\" || $.b = 1 }", r#"{"a":"y","b":1}"#, true),
            (
                "{ $.user.name = \"bob\" }",
                r#"{"user":{"name":"bob"}}"#,
                true,
            ),
            ("{ $.name = \"al*\" }", r#"{"name":"alice"}"#, true),
            ("{ $.name = \"al*\" }", r#"{"name":"bob"}"#, false),
            ("{ $.items[1] = 2 }", r#"{"items":[1,2]}"#, true),
            ("{ $.ok IS TRUE }", r#"{"ok":true}"#, true),
            ("{ $.missing NOT EXISTS }", r#"{"a":1}"#, true),
            (
                "{ ($.a = 1 || $.a = 2) && $.b = 3 }",
                r#"{"a":2,"b":3}"#,
                true,
            ),
            (
                "[ip, user, ..., status = 404, size]",
                "1.2.3.4 bob GET / 404 12",
                true,
            ),
            (
                "[ip, user, ..., status = 404, size]",
                "1.2.3.4 bob GET / 200 12",
                false,
            ),
            ("[ip, user]", "1.2.3.4 bob", true),
            ("[ip, user]", "1.2.3.4 bob extra", false),
            (
                "[..., ..., ..., ..., ..., ..., ..., ..., ..., ..., x=1]",
                "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k",
                false,
            ),
        ];
        for (pattern, message, want) in cases {
            let p = parse(pattern).unwrap();
            assert_eq!(p.matches(message), *want, "{pattern} on {message}");
        }
    }

    #[test]
    fn malformed_patterns_are_errors() {
        assert!(parse("{ $.a = }").is_err());
        assert!(parse("{ $.a = 1").is_err());
        assert!(parse("\"unterminated").is_err());
    }
}
