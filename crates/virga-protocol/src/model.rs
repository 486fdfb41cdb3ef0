//! Service models: the botocore JSON (vendored under `models/`) parsed into the
//! shapes the codecs walk. A model is parsed on first use of its service, so start-up
//! and idle memory do not pay for services nobody calls.

use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
    /// Whether validation checks string patterns (services opt in as they are
    /// tested against them).
    #[serde(skip)]
    pub check_patterns: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub protocol: String,
    #[serde(default)]
    pub json_version: Option<String>,
    #[serde(default)]
    pub target_prefix: Option<String>,
    pub endpoint_prefix: String,
    #[serde(default)]
    pub signing_name: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub input: Option<ShapeRef>,
    #[serde(default)]
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub deprecated: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub request_uri: String,
    #[serde(default)]
    pub response_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub result_wrapper: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: ShapeKind,
    #[serde(default)]
    pub members: indexmap_like::Members,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub payload: Option<String>,
    /// List element.
    #[serde(default)]
    pub member: Option<Box<Member>>,
    /// Map key and value.
    #[serde(default)]
    pub key: Option<Box<Member>>,
    #[serde(default)]
    pub value: Option<Box<Member>>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub streaming: bool,
    #[serde(default)]
    pub timestamp_format: Option<String>,
    #[serde(default, rename = "enum")]
    pub enum_values: Vec<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// A string's regular expression (the whole value must match it).
    #[serde(default)]
    pub pattern: Option<String>,
    /// `pattern` compiled on first use; None when the regex crate cannot express it
    /// (look-arounds), and then it is not checked.
    #[serde(skip)]
    compiled: std::sync::OnceLock<Option<regex::Regex>>,
}

impl Shape {
    /// Whether `s` satisfies the shape's pattern (true when it has none, or one that
    /// cannot be compiled).
    pub fn pattern_matches(&self, s: &str) -> bool {
        let Some(p) = &self.pattern else {
            return true;
        };
        self.compiled
            .get_or_init(|| regex::Regex::new(&format!("^(?:{p})$")).ok())
            .as_ref()
            .is_none_or(|r| r.is_match(s))
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShapeKind {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Float,
    Double,
    Boolean,
    Timestamp,
    Blob,
    Bigdecimal,
    Biginteger,
    Union,
    Document,
    Byte,
    Short,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub sender_fault: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub shape: String,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub xml_attribute: bool,
    #[serde(default)]
    pub xml_namespace: Option<XmlNamespace>,
    #[serde(default)]
    pub timestamp_format: Option<String>,
    #[serde(default)]
    pub query_name: Option<String>,
    #[serde(default)]
    pub idempotency_token: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum XmlNamespace {
    Uri(String),
    Full {
        #[serde(default)]
        prefix: Option<String>,
        uri: String,
    },
}

impl XmlNamespace {
    pub fn uri(&self) -> &str {
        match self {
            XmlNamespace::Uri(u) => u,
            XmlNamespace::Full { uri, .. } => uri,
        }
    }
    pub fn prefix(&self) -> Option<&str> {
        match self {
            XmlNamespace::Uri(_) => None,
            XmlNamespace::Full { prefix, .. } => prefix.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    Uri,
    Querystring,
    Header,
    Headers,
    StatusCode,
}

/// Members keep the model's order (serialization order matters to some clients).
pub mod indexmap_like {
    use super::Member;
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::Deserialize;
    use std::fmt;

    #[derive(Debug, Default)]
    pub struct Members(pub Vec<(String, Member)>);

    impl Members {
        pub fn get(&self, name: &str) -> Option<&Member> {
            self.0.iter().find(|(n, _)| n == name).map(|(_, m)| m)
        }
        pub fn iter(&self) -> impl Iterator<Item = (&String, &Member)> {
            self.0.iter().map(|(n, m)| (n, m))
        }
    }

    impl<'de> Deserialize<'de> for Members {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Members;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a map of members")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Members, A::Error> {
                    let mut v = Vec::new();
                    while let Some((k, m)) = a.next_entry::<String, Member>()? {
                        v.push((k, m));
                    }
                    Ok(Members(v))
                }
            }
            d.deserialize_map(V)
        }
    }
}

impl Model {
    /// Parses a vendored model. Models are compiled into the binary, so a parse error
    /// is a build defect; it is reported, not panicked on, by the caller.
    pub fn parse(json: &str) -> Result<Model, String> {
        serde_json::from_str(json).map_err(|e| format!("invalid service model: {e}"))
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }
}

impl Shape {
    /// Reads a scalar of this shape from text (a header, query value or XML element):
    /// the JSON value, or what was expected ("an integer", ...) when the text is not one.
    pub fn parse_text(&self, text: &str) -> Result<serde_json::Value, &'static str> {
        use serde_json::Value;
        let t = text.trim();
        let number = |f: Option<f64>, what| {
            f.and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or(what)
        };
        Ok(match self.kind {
            ShapeKind::Integer | ShapeKind::Long | ShapeKind::Short | ShapeKind::Byte => {
                Value::from(t.parse::<i64>().map_err(|_| "an integer")?)
            }
            ShapeKind::Float | ShapeKind::Double | ShapeKind::Bigdecimal => {
                number(t.parse::<f64>().ok(), "a number")?
            }
            ShapeKind::Boolean => match t.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err("a boolean"),
            },
            ShapeKind::Timestamp => number(crate::time_fmt::parse_timestamp(t), "a timestamp")?,
            _ => Value::String(text.to_string()),
        })
    }
}

impl Member {
    /// The wire name of a member: `locationName` when given, else the member name.
    pub fn wire_name<'a>(&'a self, member_name: &'a str) -> &'a str {
        self.location_name.as_deref().unwrap_or(member_name)
    }
}
