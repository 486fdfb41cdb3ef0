//! Order-preserving composite keys: the byte order of an encoded key is the order of
//! its parts, so a table scan returns rows sorted by (part1, part2, ...). Each byte
//! string part is escaped (0x00 -> 0x00 0xFF) and terminated by 0x00 0x01, so no part
//! is a prefix of another's encoding.

#[derive(Debug, Default, Clone)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    pub fn new() -> KeyBuf {
        KeyBuf(Vec::new())
    }

    /// Appends a byte-string part.
    pub fn bytes(mut self, part: &[u8]) -> KeyBuf {
        for &b in part {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xff);
            }
        }
        self.0.extend_from_slice(&[0, 1]);
        self
    }

    pub fn str(self, part: &str) -> KeyBuf {
        self.bytes(part.as_bytes())
    }

    /// Appends an unsigned integer part (big-endian, so it orders numerically).
    pub fn u64(mut self, n: u64) -> KeyBuf {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Appends a raw, unterminated prefix of a byte-string part, for prefix scans.
    pub fn partial(mut self, part: &[u8]) -> KeyBuf {
        for &b in part {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xff);
            }
        }
        self
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

/// Splits an encoded key back into its byte-string parts (for keys made only of `bytes`).
pub fn decode_parts(mut key: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut cur = Vec::new();
    while !key.is_empty() {
        match key {
            [0, 1, rest @ ..] => {
                parts.push(std::mem::take(&mut cur));
                key = rest;
            }
            [0, 0xff, rest @ ..] => {
                cur.push(0);
                key = rest;
            }
            [b, rest @ ..] => {
                cur.push(*b);
                key = rest;
            }
            [] => break,
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_parts() {
        let a = KeyBuf::new().str("b").str("a").into_vec();
        let b = KeyBuf::new().str("b").str("a\0").into_vec();
        let c = KeyBuf::new().str("b").str("ab").into_vec();
        let d = KeyBuf::new().str("b0").str("").into_vec();
        let mut v = vec![d.clone(), c.clone(), b.clone(), a.clone()];
        v.sort();
        assert_eq!(v, vec![a.clone(), b, c, d]);
        assert_eq!(decode_parts(&a), vec![b"b".to_vec(), b"a".to_vec()]);
        let p = KeyBuf::new().str("b").partial(b"a").into_vec();
        assert!(a.starts_with(&p));
    }
}
