//! Attribute values: the wire form, DynamoDB's size accounting, comparison and the
//! order-preserving key encoding.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};

pub use crate::number::Number;

/// One attribute value. Sets keep their insertion order; equality treats them as
/// sets (`SS ["a","b"] == SS ["b","a"]`), as DynamoDB compares them.
#[derive(Clone, Debug)]
pub enum AttrValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(BTreeMap<String, AttrValue>),
    L(Vec<AttrValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

/// An item: attribute name to value.
pub type Item = BTreeMap<String, AttrValue>;

const MSG_EMPTY: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const MSG_MULTIPLE: &str = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
const INVALID: &str = "One or more parameter values were invalid: ";

fn set_eq<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    // Sets hold no duplicates, so equal lengths and inclusion mean equality.
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

impl PartialEq for AttrValue {
    fn eq(&self, other: &AttrValue) -> bool {
        use AttrValue::*;
        match (self, other) {
            (S(a), S(b)) => a == b,
            (N(a), N(b)) => a == b,
            (B(a), B(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Null, Null) => true,
            (M(a), M(b)) => a == b,
            (L(a), L(b)) => a == b,
            (Ss(a), Ss(b)) => set_eq(a, b),
            (Ns(a), Ns(b)) => set_eq(a, b),
            (Bs(a), Bs(b)) => set_eq(a, b),
            _ => false,
        }
    }
}

fn expect_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(_) => Err(format!("NUMBER_VALUE cannot be converted to {what}")),
        Value::Bool(_) => Err(format!("BOOLEAN_VALUE cannot be converted to {what}")),
        Value::Array(_) => Err("Start of list found where not expected".to_string()),
        _ => Err("Start of structure or map found where not expected.".to_string()),
    }
}

fn expect_array(v: &Value) -> Result<&Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(_) => Err("Start of structure or map found where not expected.".to_string()),
        _ => Err("Expected list or null".to_string()),
    }
}

fn decode_b64(s: &str) -> Result<Vec<u8>, String> {
    B64.decode(s)
        .map_err(|e| format!("'{s}' can not be converted to a Blob: {e}"))
}

fn raw_list(items: &[Value]) -> String {
    let parts: Vec<&str> = items.iter().map(|v| v.as_str().unwrap_or("")).collect();
    format!("[{}]", parts.join(", "))
}

impl AttrValue {
    /// Parses the wire form (`{"S":"x"}`, `{"N":"1"}`, `{"B":"<base64>"}`, ...) with
    /// AWS's validation messages.
    pub fn from_json(v: &Value) -> Result<AttrValue, String> {
        let obj = match v {
            Value::Object(m) => m,
            Value::Null => return Err(MSG_EMPTY.to_string()),
            Value::Array(_) => return Err("Start of list found where not expected".to_string()),
            _ => return Err("Expected null".to_string()),
        };
        let mut found: Option<AttrValue> = None;
        let mut count = 0;
        for (key, val) in obj {
            if val.is_null() {
                continue;
            }
            let parsed = match key.as_str() {
                "S" => AttrValue::S(expect_str(val, "String")?.to_string()),
                "N" => AttrValue::N(Number::parse(expect_str(val, "String")?)?),
                "B" => AttrValue::B(decode_b64(expect_str(val, "Blob")?)?),
                "BOOL" => match val {
                    Value::Bool(b) => AttrValue::Bool(*b),
                    _ => return Err("Unexpected value type in payload".to_string()),
                },
                "NULL" => match val {
                    Value::Bool(true) => AttrValue::Null,
                    Value::Bool(false) => {
                        return Err(format!(
                            "{INVALID}Null attribute value types must have the value of true"
                        ))
                    }
                    _ => return Err("Unexpected value type in payload".to_string()),
                },
                "M" => match val {
                    Value::Object(m) => AttrValue::M(item_from_json(m)?),
                    Value::Array(_) => {
                        return Err("Start of list found where not expected".to_string())
                    }
                    _ => return Err("Expected map or null".to_string()),
                },
                "L" => {
                    let items = expect_array(val)?;
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(AttrValue::from_json(item)?);
                    }
                    AttrValue::L(out)
                }
                "SS" => {
                    let items = expect_array(val)?;
                    if items.is_empty() {
                        return Err(format!("{INVALID}An string set  may not be empty"));
                    }
                    let mut out = Vec::with_capacity(items.len());
                    let mut seen = HashSet::with_capacity(items.len());
                    for item in items {
                        let s = expect_str(item, "String")?;
                        if !seen.insert(s) {
                            return Err(format!(
                                "{INVALID}Input collection {} contains duplicates.",
                                raw_list(items)
                            ));
                        }
                        out.push(s.to_string());
                    }
                    AttrValue::Ss(out)
                }
                "NS" => {
                    let items = expect_array(val)?;
                    if items.is_empty() {
                        return Err(format!("{INVALID}An number set  may not be empty"));
                    }
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(Number::parse(expect_str(item, "String")?)?);
                    }
                    let mut seen = HashSet::with_capacity(out.len());
                    if !out.iter().all(|n| seen.insert(*n)) {
                        return Err(format!(
                            "{INVALID}Input collection {} contains duplicates.",
                            raw_list(items)
                        ));
                    }
                    AttrValue::Ns(out)
                }
                "BS" => {
                    let items = expect_array(val)?;
                    if items.is_empty() {
                        return Err(format!("{INVALID}An binary set  may not be empty"));
                    }
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(decode_b64(expect_str(item, "Blob")?)?);
                    }
                    let mut seen = HashSet::with_capacity(out.len());
                    if !out.iter().all(|b| seen.insert(b.as_slice())) {
                        return Err(format!(
                            "{INVALID}Input collection {}of type BS contains duplicates.",
                            raw_list(items)
                        ));
                    }
                    AttrValue::Bs(out)
                }
                _ => continue,
            };
            count += 1;
            found = Some(parsed);
        }
        match (count, found) {
            (1, Some(v)) => Ok(v),
            (0, _) | (_, None) => Err(MSG_EMPTY.to_string()),
            _ => Err(MSG_MULTIPLE.to_string()),
        }
    }

    /// The wire form.
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(1);
        let (k, v) = match self {
            AttrValue::S(s) => ("S", Value::String(s.clone())),
            AttrValue::N(n) => ("N", Value::String(n.to_string())),
            AttrValue::B(b) => ("B", Value::String(B64.encode(b))),
            AttrValue::Bool(b) => ("BOOL", Value::Bool(*b)),
            AttrValue::Null => ("NULL", Value::Bool(true)),
            AttrValue::M(items) => ("M", Value::Object(item_to_json(items))),
            AttrValue::L(l) => (
                "L",
                Value::Array(l.iter().map(AttrValue::to_json).collect()),
            ),
            AttrValue::Ss(s) => (
                "SS",
                Value::Array(s.iter().map(|x| Value::String(x.clone())).collect()),
            ),
            AttrValue::Ns(s) => (
                "NS",
                Value::Array(s.iter().map(|x| Value::String(x.to_string())).collect()),
            ),
            AttrValue::Bs(s) => (
                "BS",
                Value::Array(s.iter().map(|x| Value::String(B64.encode(x))).collect()),
            ),
        };
        m.insert(k.to_string(), v);
        Value::Object(m)
    }

    /// The type's wire name: "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS".
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Bool(_) => "BOOL",
            AttrValue::Null => "NULL",
            AttrValue::M(_) => "M",
            AttrValue::L(_) => "L",
            AttrValue::Ss(_) => "SS",
            AttrValue::Ns(_) => "NS",
            AttrValue::Bs(_) => "BS",
        }
    }

    /// Bytes DynamoDB counts for the value toward the item size: strings and
    /// binaries their length, numbers per [`Number::size`], BOOL/NULL one byte,
    /// lists and maps 3 bytes plus one per element (plus the keys of a map).
    pub fn size(&self) -> usize {
        match self {
            AttrValue::S(s) => s.len(),
            AttrValue::N(n) => n.size(),
            AttrValue::B(b) => b.len(),
            AttrValue::Bool(_) | AttrValue::Null => 1,
            AttrValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + v.size()).sum::<usize>(),
            AttrValue::L(l) => 3 + l.iter().map(|v| 1 + v.size()).sum::<usize>(),
            AttrValue::Ss(s) => s.iter().map(String::len).sum(),
            AttrValue::Ns(s) => s.iter().map(Number::size).sum(),
            AttrValue::Bs(s) => s.iter().map(Vec::len).sum(),
        }
    }

    /// Whether this is a set type (SS, NS, BS).
    pub fn is_set(&self) -> bool {
        matches!(self, AttrValue::Ss(_) | AttrValue::Ns(_) | AttrValue::Bs(_))
    }
}

/// Parses an item (or key) in wire form.
pub fn item_from_json(m: &Map<String, Value>) -> Result<Item, String> {
    let mut item = Item::new();
    for (k, v) in m {
        item.insert(k.clone(), AttrValue::from_json(v)?);
    }
    Ok(item)
}

/// An item in wire form.
pub fn item_to_json(item: &Item) -> Map<String, Value> {
    item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()
}

/// The item's size as DynamoDB counts it toward the 400 KB limit: attribute name
/// lengths plus value sizes.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// DynamoDB's comparison: only values of the same scalar type (S by UTF-8 bytes, N
/// numerically, B bytewise) are ordered; anything else is `None`.
pub fn compare(a: &AttrValue, b: &AttrValue) -> Option<Ordering> {
    match (a, b) {
        (AttrValue::S(x), AttrValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttrValue::N(x), AttrValue::N(y)) => Some(x.cmp(y)),
        (AttrValue::B(x), AttrValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Order-preserving encoding of a key value: `memcmp` order of the outputs is
/// DynamoDB's order (S by UTF-8 bytes, N numerically, B bytewise), and outputs
/// are self-delimiting, so concatenated (hash, range) encodings sort correctly.
///
/// S and B escape 0x00 as 0x00 0xFF and end with 0x00 0x00. N is a sign byte
/// (0x01 negative, 0x02 zero, 0x03 positive), an exponent byte and base-100
/// digit pairs, ending 0x00 (positive) or 0xFF (negative; bytes inverted). Other
/// types get a stable, tagged encoding that is not ordered.
pub fn key_bytes(v: &AttrValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    key_bytes_into(v, &mut out);
    out
}

/// [`key_bytes`], appended to `out`.
pub fn key_bytes_into(v: &AttrValue, out: &mut Vec<u8>) {
    match v {
        AttrValue::S(s) => escape_bytes(s.as_bytes(), true, out),
        AttrValue::B(b) => escape_bytes(b, true, out),
        AttrValue::N(n) => encode_number(n, out),
        other => {
            out.push(0xFE);
            out.extend_from_slice(other.type_name().as_bytes());
            out.push(0);
            let json = other.to_json().to_string();
            escape_bytes(json.as_bytes(), true, out);
        }
    }
}

/// The encoding of an S or B prefix without its terminator: every key whose value
/// begins with `v` starts with these bytes (for `begins_with` range scans).
pub fn key_prefix_bytes(v: &AttrValue) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        AttrValue::S(s) => escape_bytes(s.as_bytes(), false, &mut out),
        AttrValue::B(b) => escape_bytes(b, false, &mut out),
        other => key_bytes_into(other, &mut out),
    }
    out
}

fn escape_bytes(b: &[u8], terminate: bool, out: &mut Vec<u8>) {
    out.reserve(b.len() + 2);
    for &c in b {
        out.push(c);
        if c == 0 {
            out.push(0xFF);
        }
    }
    if terminate {
        out.extend_from_slice(&[0, 0]);
    }
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    let sign = n.signum();
    if sign == 0 {
        out.push(0x02);
        return;
    }
    // The leading digit's exponent is within -130..=125.
    let e = (n.sci_exp() + 130).clamp(0, 255) as u8;
    let (digits, len) = n.digits();
    let neg = sign < 0;
    out.push(if neg { 0x01 } else { 0x03 });
    out.push(if neg { 255 - e } else { e });
    for pair in digits[..len].chunks(2) {
        let p = pair[0] * 10 + pair.get(1).copied().unwrap_or(0); // 0..=99
        out.push(if neg { 101 - p } else { p + 1 });
    }
    out.push(if neg { 0xFF } else { 0x00 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn av(v: Value) -> AttrValue {
        AttrValue::from_json(&v).unwrap()
    }

    fn err(v: Value) -> String {
        AttrValue::from_json(&v).unwrap_err()
    }

    #[test]
    fn json_round_trips() {
        let cases = [
            json!({"S": "héllo ✓"}),
            json!({"S": ""}),
            json!({"N": "-123.456"}),
            json!({"B": "AAH+/w=="}),
            json!({"B": ""}),
            json!({"BOOL": true}),
            json!({"BOOL": false}),
            json!({"NULL": true}),
            json!({"M": {"inner": {"S": "x"}, "deep": {"M": {"n": {"N": "1"}}}, "empty": {"M": {}}}}),
            json!({"L": [{"S": "a"}, {"N": "2"}, {"L": []}, {"NULL": true}, {"B": "Bw=="}]}),
            json!({"SS": ["b", "a", "c"]}),
            json!({"SS": ["", "a"]}),
            json!({"NS": ["1", "-2.5", "300"]}),
            json!({"BS": ["AQ==", "AgM="]}),
        ];
        for c in cases {
            assert_eq!(av(c.clone()).to_json(), c);
        }
        // Numbers come back canonical; unknown keys and nulls are ignored.
        assert_eq!(av(json!({"N": "1E+2"})).to_json(), json!({"N": "100"}));
        assert_eq!(
            av(json!({"S": "x", "N": null, "foo": 1})),
            AttrValue::S("x".into())
        );
        let item = item_from_json(
            json!({"a": {"S": "1"}, "b": {"N": "2"}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(item_to_json(&item)),
            json!({"a": {"S": "1"}, "b": {"N": "2"}})
        );
    }

    #[test]
    fn json_errors() {
        let inv = "One or more parameter values were invalid: ";
        let cases = [
            (json!({}), MSG_EMPTY.to_string()),
            (json!({"a": ""}), MSG_EMPTY.to_string()),
            (json!({"M": {"a": {}}}), MSG_EMPTY.to_string()),
            (json!({"L": [{}]}), MSG_EMPTY.to_string()),
            (json!({"S": "a", "BOOL": true}), MSG_MULTIPLE.to_string()),
            (
                json!({"S": "a", "N": "b"}),
                "The parameter cannot be converted to a numeric value: b".to_string(),
            ),
            (
                json!({"SS": []}),
                format!("{inv}An string set  may not be empty"),
            ),
            (
                json!({"NS": []}),
                format!("{inv}An number set  may not be empty"),
            ),
            (
                json!({"BS": []}),
                format!("{inv}An binary set  may not be empty"),
            ),
            (
                json!({"SS": ["a", "a"]}),
                format!("{inv}Input collection [a, a] contains duplicates."),
            ),
            (
                json!({"NS": ["1", "1.0"]}),
                format!("{inv}Input collection [1, 1.0] contains duplicates."),
            ),
            (
                json!({"BS": ["Yg==", "Yg=="]}),
                format!("{inv}Input collection [Yg==, Yg==]of type BS contains duplicates."),
            ),
            (
                json!({"NULL": false}),
                format!("{inv}Null attribute value types must have the value of true"),
            ),
            (
                json!({"N": "abc"}),
                "The parameter cannot be converted to a numeric value: abc".to_string(),
            ),
            (
                json!({"NS": ["1", ""]}),
                "The parameter cannot be converted to a numeric value".to_string(),
            ),
            (
                json!({"N": "1e126"}),
                crate::number::MSG_OVERFLOW.to_string(),
            ),
            (
                json!({"N": 5}),
                "NUMBER_VALUE cannot be converted to String".to_string(),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(input.clone()), want, "{input}");
        }
        assert!(err(json!({"B": "!!"})).contains("can not be converted to a Blob"));
    }

    #[test]
    fn sets_compare_as_sets() {
        assert_eq!(av(json!({"SS": ["a", "b"]})), av(json!({"SS": ["b", "a"]})));
        assert_ne!(av(json!({"SS": ["a", "b"]})), av(json!({"SS": ["a"]})));
        assert_eq!(
            av(json!({"NS": ["1", "2.0"]})),
            av(json!({"NS": ["2", "1"]}))
        );
        assert_ne!(av(json!({"S": "1"})), av(json!({"N": "1"})));
        assert_eq!(av(json!({"N": "10"})), av(json!({"N": "1e1"})));
    }

    #[test]
    fn sizes() {
        let item = item_from_json(
            json!({
                "pk": {"S": "abc"},            // 2 + 3
                "n": {"N": "12.3456"},         // 1 + 4
                "b": {"B": "AQI="},            // 1 + 2
                "t": {"BOOL": true},           // 1 + 1
                "z": {"NULL": true},           // 1 + 1
                "ss": {"SS": ["a", "bc"]},     // 2 + 3
                "l": {"L": [{"S": "x"}, {"N": "1"}]},   // 1 + 3 + (1+1) + (1+2)
                "m": {"M": {"k": {"S": "vv"}}}          // 1 + 3 + 1 + 1 + 2
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(item_size(&item), 5 + 5 + 3 + 2 + 2 + 5 + 9 + 8);
        assert_eq!(av(json!({"S": "é"})).size(), 2);
        assert_eq!(av(json!({"NS": ["1", "-1"]})).size(), 5);
        assert_eq!(av(json!({"BS": ["AQI=", "AQ=="]})).size(), 3);
    }

    #[test]
    fn compare_semantics() {
        let s = |x: &str| AttrValue::S(x.into());
        let n = |x: &str| AttrValue::N(Number::parse(x).unwrap());
        assert_eq!(compare(&s("a"), &s("b")), Some(Ordering::Less));
        assert_eq!(
            compare(&s("\u{ff5e}"), &s("\u{1f600}")),
            Some(Ordering::Less)
        );
        assert_eq!(compare(&n("10"), &n("9")), Some(Ordering::Greater));
        assert_eq!(
            compare(&AttrValue::B(vec![0x80]), &AttrValue::B(vec![0x7f, 0xff])),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&s("1"), &n("1")), None);
        assert_eq!(
            compare(&AttrValue::Bool(true), &AttrValue::Bool(true)),
            None
        );
    }

    /// A tiny deterministic PRNG (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_number(r: &mut Rng) -> AttrValue {
        let digits = 1 + r.below(38) as usize;
        let mut s = String::new();
        if r.below(2) == 0 {
            s.push('-');
        }
        for i in 0..digits {
            let d = if i == 0 { 1 + r.below(9) } else { r.below(10) };
            s.push(char::from(b'0' + d as u8));
        }
        // Keep the leading digit's exponent in -130..=125.
        let lead = r.below(250) as i64 - 125;
        let e = lead - (digits as i64 - 1);
        s.push_str(&format!("e{e}"));
        let v = if r.below(20) == 0 { "0".to_string() } else { s };
        AttrValue::N(Number::parse(&v).unwrap())
    }

    fn check_order(values: &[AttrValue]) {
        for a in values {
            for b in values {
                let semantic = compare(a, b).unwrap();
                assert_eq!(key_bytes(a).cmp(&key_bytes(b)), semantic, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn key_bytes_order_numbers() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut values: Vec<AttrValue> = (0..300).map(|_| random_number(&mut r)).collect();
        for s in [
            "0",
            "-0.5",
            "0.5",
            "1",
            "-1",
            "10",
            "1.5",
            "1.52",
            "-1.5",
            "-1.52",
            "1.05",
            "1.1",
            "1e-130",
            "-1e-130",
            "9.9999999999999999999999999999999999999E+125",
            "-9.9999999999999999999999999999999999999E+125",
        ] {
            values.push(AttrValue::N(Number::parse(s).unwrap()));
        }
        check_order(&values);
    }

    #[test]
    fn key_bytes_order_strings_and_binaries() {
        let mut r = Rng(42);
        let alphabet = [
            "",
            "\0",
            "a",
            "b",
            "\u{e9}",
            "\u{ff5e}",
            "\u{1f600}",
            "\u{1}",
            "z",
        ];
        let strings: Vec<AttrValue> = (0..200)
            .map(|_| {
                let len = r.below(5);
                AttrValue::S(
                    (0..len)
                        .map(|_| alphabet[r.below(alphabet.len() as u64) as usize])
                        .collect(),
                )
            })
            .collect();
        check_order(&strings);
        let bytes: Vec<AttrValue> = (0..200)
            .map(|_| {
                let len = r.below(5);
                AttrValue::B(
                    (0..len)
                        .map(|_| [0u8, 1, 0x7f, 0x80, 0xfe, 0xff][r.below(6) as usize])
                        .collect(),
                )
            })
            .collect();
        check_order(&bytes);
    }

    #[test]
    fn key_bytes_compose_for_hash_and_range() {
        // (hash, range) pairs sort by hash first, then range, whatever the lengths.
        let mut r = Rng(7);
        let mut pairs = Vec::new();
        for _ in 0..150 {
            let h = AttrValue::S(
                (0..r.below(3))
                    .map(|_| ["a", "\0", "ab"][r.below(3) as usize])
                    .collect(),
            );
            let k = random_number(&mut r);
            pairs.push((h, k));
        }
        for (h1, k1) in &pairs {
            for (h2, k2) in &pairs {
                let semantic = compare(h1, h2).unwrap().then(compare(k1, k2).unwrap());
                let mut a = key_bytes(h1);
                a.extend(key_bytes(k1));
                let mut b = key_bytes(h2);
                b.extend(key_bytes(k2));
                assert_eq!(a.cmp(&b), semantic);
            }
        }
    }

    #[test]
    fn key_prefixes() {
        let p = key_prefix_bytes(&AttrValue::S("a\0".into()));
        assert!(key_bytes(&AttrValue::S("a\0".into())).starts_with(&p));
        assert!(key_bytes(&AttrValue::S("a\0x".into())).starts_with(&p));
        assert!(!key_bytes(&AttrValue::S("a".into())).starts_with(&p));
        let p = key_prefix_bytes(&AttrValue::B(vec![1]));
        assert!(key_bytes(&AttrValue::B(vec![1, 2])).starts_with(&p));
        // Other types encode stably.
        assert_eq!(
            key_bytes(&AttrValue::Bool(true)),
            key_bytes(&AttrValue::Bool(true))
        );
        assert_ne!(
            key_bytes(&AttrValue::Bool(true)),
            key_bytes(&AttrValue::Bool(false))
        );
    }
}
