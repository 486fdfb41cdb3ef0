//! Lambda's stored records and their keys.

use crate::Lambda;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ops::Bound;
use virga_core::{AwsError, AwsResult};
use virga_store::{prefix_end, KeyBuf, KvRead};

pub const FUNCTIONS: &str = "lambda.fn";
pub const VERSIONS: &str = "lambda.ver";
pub const ALIASES: &str = "lambda.alias";
pub const LAYERS: &str = "lambda.layer";
pub const MAPPINGS: &str = "lambda.esm";
pub const ASYNC: &str = "lambda.async";
pub const DUE: &str = "lambda.due";

/// A deployment package: a zip kept as a blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Code {
    /// base64 of the zip's SHA-256 (AWS's CodeSha256).
    pub sha256: String,
    pub size: i64,
    pub blob: String,
}

/// A function: the `$LATEST` configuration and code, and what belongs to the function
/// as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Function {
    /// `$LATEST`'s FunctionConfiguration, as the API returns it.
    pub config: Map<String, Value>,
    pub code: Code,
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// Resource-policy statements by qualifier ("" for the unqualified function).
    #[serde(default)]
    pub policy: BTreeMap<String, Vec<Value>>,
    #[serde(default)]
    pub reserved: Option<i64>,
    #[serde(default)]
    pub last_version: u64,
    /// FunctionEventInvokeConfig by qualifier ("$LATEST", "1", an alias).
    #[serde(default)]
    pub invoke_configs: BTreeMap<String, Value>,
}

/// A published version: immutable configuration and code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub config: Map<String, Value>,
    pub code: Code,
    /// `$LATEST`'s Description when this version was published (PublishVersion may
    /// give the version its own), to tell whether anything changed since.
    #[serde(default)]
    pub source_description: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    /// GetLayerVersion's fields (without Content).
    pub info: Map<String, Value>,
    pub code: Code,
}

/// An event source mapping: its configuration as the API returns it, and where its
/// poller has got to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mapping {
    pub region: String,
    pub config: Map<String, Value>,
    /// Stream sources: per shard, the sequence number of the last record processed.
    #[serde(default)]
    pub positions: BTreeMap<String, String>,
}

/// A queued asynchronous invocation (Event invoke, S3/SNS event, destination).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AsyncInvocation {
    pub region: String,
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: String,
    pub request_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued (ms), for MaximumEventAgeInSeconds.
    pub queued_ms: i64,
    pub due_ms: i64,
    /// An attempt is running (the entry is leased); after a restart it is due at once.
    #[serde(default)]
    pub leased: bool,
}

pub fn fn_key(region: &str, name: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(name).into_vec()
}

pub fn ver_key(region: &str, name: &str, version: u64) -> Vec<u8> {
    KeyBuf::new().str(region).str(name).u64(version).into_vec()
}

pub fn alias_key(region: &str, name: &str, alias: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(name).str(alias).into_vec()
}

pub fn layer_key(region: &str, layer: &str, version: u64) -> Vec<u8> {
    KeyBuf::new().str(region).str(layer).u64(version).into_vec()
}

pub fn enc<T: Serialize>(v: &T) -> AwsResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| AwsError::internal(format!("encode: {e}")))
}

pub fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> AwsResult<T> {
    serde_json::from_slice(b).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

/// Rows of `table` whose key starts with `prefix`, after `after` (exclusive) if given.
pub fn scan_prefix(
    r: &dyn KvRead,
    table: &str,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> AwsResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let end = prefix_end(prefix);
    let start = match after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Included(prefix),
    };
    r.scan(
        table,
        start,
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        limit,
        false,
    )
}

/// Every blob a stored record refers to (for reset).
pub fn all_blob_ids(l: &Lambda) -> AwsResult<Vec<String>> {
    l.store.read(|r| {
        let mut ids = Vec::new();
        for (_, v) in scan_prefix(r, FUNCTIONS, &[], None, usize::MAX)? {
            ids.push(dec::<Function>(&v)?.code.blob);
        }
        for (_, v) in scan_prefix(r, VERSIONS, &[], None, usize::MAX)? {
            ids.push(dec::<Version>(&v)?.code.blob);
        }
        for (k, v) in scan_prefix(r, LAYERS, &[], None, usize::MAX)? {
            // Version 0 is the layer's version counter, not a layer version.
            if !k.ends_with(&0u64.to_be_bytes()) {
                ids.push(dec::<Layer>(&v)?.code.blob);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    })
}
