//! Model-driven AWS protocols. A service hands its vendored botocore model to a
//! [`ServiceModel`]; the codecs parse requests into the operation's input (a JSON value
//! shaped like the model's input structure) and write outputs and errors in the
//! protocol's wire format, so no service hand-writes a shape.
//!
//! Value conventions shared by every codec: structures and maps are JSON objects, lists
//! are arrays, timestamps are numbers of seconds since the epoch, blobs (non-streaming)
//! are base64 strings.

pub mod json;
pub mod model;
pub mod query;
pub mod rest;
pub mod rest_json;
pub mod rest_xml;
pub mod time_fmt;
pub mod validate;
pub mod xml;

use std::sync::OnceLock;

pub use model::Model;
pub use rest::{RestRequest, RestRouter};

/// A service's model, parsed on first use, with its compiled REST routes.
pub struct ServiceModel {
    source: &'static str,
    patterns: bool,
    parsed: OnceLock<Result<(Model, RestRouter), String>>,
}

impl ServiceModel {
    pub const fn new(source: &'static str) -> ServiceModel {
        ServiceModel {
            source,
            patterns: false,
            parsed: OnceLock::new(),
        }
    }

    /// A model whose inputs are also checked against the string patterns it declares.
    pub const fn with_patterns(source: &'static str) -> ServiceModel {
        ServiceModel {
            source,
            patterns: true,
            parsed: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&(Model, RestRouter), virga_core::AwsError> {
        self.parsed
            .get_or_init(|| {
                let mut m = Model::parse(self.source)?;
                m.check_patterns = self.patterns;
                let r = RestRouter::new(&m);
                Ok((m, r))
            })
            .as_ref()
            .map_err(|e| virga_core::AwsError::internal(e.clone()))
    }

    pub fn model(&self) -> Result<&Model, virga_core::AwsError> {
        self.get().map(|(m, _)| m)
    }

    pub fn router(&self) -> Result<&RestRouter, virga_core::AwsError> {
        self.get().map(|(_, r)| r)
    }
}

/// A map member of a parsed input as strings (SQS and SNS attributes and tags), with
/// non-string values in their JSON form.
pub fn string_map(
    input: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> std::collections::BTreeMap<String, String> {
    input
        .get(name)
        .and_then(|a| a.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = v
                        .as_str()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A list-of-strings member of a parsed input (attribute names, tag keys).
pub fn string_list(input: &serde_json::Map<String, serde_json::Value>, name: &str) -> Vec<String> {
    input
        .get(name)
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(|s| s.to_string()))
                .collect()
        })
        .unwrap_or_default()
}
