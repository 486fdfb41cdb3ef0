//! The tokenizer shared by all expression kinds.

/// Token kinds. Words (`AND`, `SET`, function names, attribute names) are all
/// `Ident`; each parser decides what a word means where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// `[A-Za-z][A-Za-z0-9_]*`
    Ident,
    /// `#[A-Za-z0-9_]+`
    Name,
    /// `:[A-Za-z0-9_]+`
    Value,
    /// `[0-9]+` (list indexes)
    Number,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    /// Any other single character.
    Other,
    Eof,
}

/// A token: kind and byte span in the source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `src` into tokens, ending with `Eof` at `src.len()`.
pub(crate) fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut toks = Vec::with_capacity(src.len() / 3 + 2);
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        i += 1;
        let kind = match c {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'a'..=b'z' | b'A'..=b'Z' => {
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                Tok::Ident
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                Tok::Number
            }
            b'#' | b':' => {
                let body = i;
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                match (i > body, c) {
                    (false, _) => Tok::Other,
                    (true, b'#') => Tok::Name,
                    (true, _) => Tok::Value,
                }
            }
            b'=' => Tok::Eq,
            b'<' => match b.get(i) {
                Some(b'>') => {
                    i += 1;
                    Tok::Ne
                }
                Some(b'=') => {
                    i += 1;
                    Tok::Le
                }
                _ => Tok::Lt,
            },
            b'>' => {
                if b.get(i) == Some(&b'=') {
                    i += 1;
                    Tok::Ge
                } else {
                    Tok::Gt
                }
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b',' => Tok::Comma,
            b'.' => Tok::Dot,
            b'+' => Tok::Plus,
            b'-' => Tok::Minus,
            _ => {
                // One whole character, however many bytes it takes.
                i = start + src[start..].chars().next().map_or(1, char::len_utf8);
                Tok::Other
            }
        };
        toks.push(Token {
            kind,
            start,
            end: i,
        });
    }
    toks.push(Token {
        kind: Tok::Eof,
        start: b.len(),
        end: b.len(),
    });
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, &str)> {
        lex(src)
            .into_iter()
            .map(|t| (t.kind, &src[t.start..t.end]))
            .collect()
    }

    #[test]
    fn tokens() {
        use Tok::*;
        assert_eq!(
            kinds("a.b[10] <> :v AND #n>=x_1 <=<(),+-é!"),
            vec![
                (Ident, "a"),
                (Dot, "."),
                (Ident, "b"),
                (LBracket, "["),
                (Number, "10"),
                (RBracket, "]"),
                (Ne, "<>"),
                (Value, ":v"),
                (Ident, "AND"),
                (Name, "#n"),
                (Ge, ">="),
                (Ident, "x_1"),
                (Le, "<="),
                (Lt, "<"),
                (LParen, "("),
                (RParen, ")"),
                (Comma, ","),
                (Plus, "+"),
                (Minus, "-"),
                (Other, "é"),
                (Other, "!"),
                (Eof, ""),
            ]
        );
        assert_eq!(
            kinds("_x # :"),
            vec![
                (Other, "_"),
                (Ident, "x"),
                (Other, "#"),
                (Other, ":"),
                (Eof, "")
            ]
        );
        assert_eq!(kinds("1a"), vec![(Number, "1"), (Ident, "a"), (Eof, "")]);
    }
}
