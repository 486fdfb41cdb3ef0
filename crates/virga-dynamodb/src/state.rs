//! What DynamoDB keeps in the store, and the table descriptions.
//!
//! Store tables (all under `ddb.` so that `/_virga/reset` clears them):
//! - `ddb.table`  (region, table name) -> [`TableMeta`]
//! - `ddb.item`   (table uid, partition key, sort key) -> item (wire JSON)
//! - `ddb.index`  (table uid, index name, index keys, table keys) -> projected item
//! - `ddb.stats`  (table uid) -> [`Stats`]: ItemCount and TableSizeBytes, kept exact
//! - `ddb.stream` (stream uid, sequence number) -> stream record
//! - `ddb.ttl`    (table uid, expiry second, item key) -> item key: what TTL deletes next
//! - `ddb.dropped` (region, name, uid) -> a deleted table whose stream is still readable
//! - `ddb.token`  (ClientRequestToken) -> [`TokenRecord`] for TransactWriteItems
//! - `ddb.seq`    ("uid") -> the last table/stream uid handed out

use serde::{Deserialize, Serialize};
use serde_json::Value;
use virga_core::{AwsError, AwsResult};
use virga_store::{KeyBuf, KvRead, KvTxn};

pub const TABLES: &str = "ddb.table";
pub const ITEMS: &str = "ddb.item";
pub const INDEX: &str = "ddb.index";
pub const STATS: &str = "ddb.stats";
pub const STREAM: &str = "ddb.stream";
pub const TTL: &str = "ddb.ttl";
pub const TOKENS: &str = "ddb.token";
/// Deleted tables that had a stream: (region, name, uid) -> [`TableMeta`] with the
/// stream disabled, so that consumers can drain it for 24 hours, as on AWS.
pub const DROPPED: &str = "ddb.dropped";
const SEQ: &str = "ddb.seq";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyAttr {
    pub name: String,
    /// `S`, `N` or `B`.
    pub ty: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexMeta {
    pub name: String,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    pub non_key: Vec<String>,
    pub read_capacity: Option<u64>,
    pub write_capacity: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamMeta {
    pub uid: u64,
    /// `KEYS_ONLY`, `NEW_IMAGE`, `OLD_IMAGE` or `NEW_AND_OLD_IMAGES`.
    pub view_type: String,
    pub label: String,
    pub enabled: bool,
    pub created: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    pub region: String,
    pub account: String,
    pub uid: u64,
    pub id: String,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    pub attribute_definitions: Vec<KeyAttr>,
    pub gsis: Vec<IndexMeta>,
    pub lsis: Vec<IndexMeta>,
    pub billing_mode: String,
    pub read_capacity: u64,
    pub write_capacity: u64,
    /// The current stream, and earlier ones (still listed for 24 h on AWS).
    pub stream: Option<StreamMeta>,
    #[serde(default)]
    pub old_streams: Vec<StreamMeta>,
    pub ttl_attribute: Option<String>,
    pub ttl_enabled: bool,
    pub created: f64,
    pub deletion_protection: bool,
    pub table_class: Option<String>,
    pub sse: Option<Value>,
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub billing_mode_updated: Option<f64>,
}

impl TableMeta {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.region, self.account, self.name
        )
    }

    pub fn stream_arn(&self, s: &StreamMeta) -> String {
        format!("{}/stream/{}", self.arn(), s.label)
    }

    pub fn index(&self, name: &str) -> Option<(&IndexMeta, bool)> {
        self.gsis
            .iter()
            .map(|i| (i, true))
            .chain(self.lsis.iter().map(|i| (i, false)))
            .find(|(i, _)| i.name == name)
    }

    /// Every index with whether it is global.
    pub fn indexes(&self) -> impl Iterator<Item = (&IndexMeta, bool)> {
        self.gsis
            .iter()
            .map(|i| (i, true))
            .chain(self.lsis.iter().map(|i| (i, false)))
    }

    pub fn key_names(&self) -> Vec<&str> {
        let mut v = vec![self.hash.name.as_str()];
        if let Some(r) = &self.range {
            v.push(r.name.as_str());
        }
        v
    }

    pub fn active_stream(&self) -> Option<&StreamMeta> {
        self.stream.as_ref().filter(|s| s.enabled)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Stats {
    pub count: i64,
    pub bytes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// SHA-256 of the request's items, to tell a retry from a different request.
    pub digest: String,
    pub at: f64,
}

pub fn encode<T: Serialize>(v: &T) -> AwsResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| AwsError::internal(format!("encode: {e}")))
}

pub fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> AwsResult<T> {
    serde_json::from_slice(b).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

pub fn table_key(region: &str, name: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(name).into_vec()
}

pub fn load_table(r: &dyn KvRead, region: &str, name: &str) -> AwsResult<Option<TableMeta>> {
    r.get(TABLES, &table_key(region, name))?
        .map(|v| decode(&v))
        .transpose()
}

pub fn save_table(t: &mut dyn KvTxn, meta: &TableMeta) -> AwsResult<()> {
    t.put(TABLES, &table_key(&meta.region, &meta.name), &encode(meta)?)
}

/// A new uid for a table or stream (never reused, so a recreated table starts empty).
pub fn next_uid(t: &mut dyn KvTxn) -> AwsResult<u64> {
    let cur = t
        .get(SEQ, b"uid")?
        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    let next = cur + 1;
    t.put(SEQ, b"uid", &next.to_be_bytes())?;
    Ok(next)
}

pub fn stats_key(uid: u64) -> Vec<u8> {
    KeyBuf::new().u64(uid).into_vec()
}

pub fn load_stats(r: &dyn KvRead, uid: u64) -> AwsResult<Stats> {
    Ok(r.get(STATS, &stats_key(uid))?
        .map(|v| decode(&v))
        .transpose()?
        .unwrap_or_default())
}

pub fn add_stats(t: &mut dyn KvTxn, uid: u64, count: i64, bytes: i64) -> AwsResult<()> {
    if count == 0 && bytes == 0 {
        return Ok(());
    }
    let mut s = load_stats(t, uid)?;
    s.count += count;
    s.bytes += bytes;
    t.put(STATS, &stats_key(uid), &encode(&s)?)
}
