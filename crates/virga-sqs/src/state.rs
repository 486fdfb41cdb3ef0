//! SQS's tables and records.
//!
//! | table     | key                          | value |
//! |-----------|------------------------------|-------|
//! | sqs.queue | (region, account, name)      | [`Queue`] |
//! | sqs.msg   | (queue id, seq)              | [`Message`], in send order (FIFO order) |
//! | sqs.vis   | (queue id, visible at ms, seq) | empty: never-received messages by visibility time |
//! | sqs.vis.seen | (queue id, visible at ms, seq) | empty: received messages by visibility time |
//! | sqs.dedup | (queue id, deduplication id) | [`Dedup`]: FIFO deduplication window |
//!
//! A queue id is `region/account/name`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use virga_core::{AwsError, AwsResult};
use virga_store::KeyBuf;

pub const QUEUES: &str = "sqs.queue";
pub const MESSAGES: &str = "sqs.msg";
pub const VISIBLE: &str = "sqs.vis";
/// Like `sqs.vis`, for messages received at least once: counting both by visibility
/// time gives the visible, in-flight and delayed numbers without reading messages.
pub const VISIBLE_SEEN: &str = "sqs.vis.seen";
/// FIFO messages by (queue, group, seq): a receive visits each group's head instead
/// of every message.
pub const GROUPS: &str = "sqs.fifo";
/// Messages stored per queue (qid) -> u64, kept by insert/remove_indexes so that the
/// approximate counts do not have to count a long backlog.
pub const COUNTS: &str = "sqs.count";
pub const DEDUP: &str = "sqs.dedup";
pub const TASKS: &str = "sqs.task";

/// A message move task (dead-letter queue redrive).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct MoveTask {
    pub handle: String,
    pub status: String,
    pub source_arn: String,
    #[serde(default)]
    pub destination_arn: Option<String>,
    #[serde(default)]
    pub max_per_second: Option<i64>,
    pub moved: u64,
    pub to_move: u64,
    pub started_ms: i64,
    #[serde(default)]
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Queue {
    pub name: String,
    pub account: String,
    pub region: String,
    pub created: i64,
    pub modified: i64,
    /// Settable attributes, as strings (as SQS takes and returns them).
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub last_purge_ms: i64,
}

impl Queue {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.region, self.account, self.name)
    }
    pub fn fifo(&self) -> bool {
        self.attributes
            .get("FifoQueue")
            .is_some_and(|v| v == "true")
    }
    pub fn arn(&self) -> String {
        format!("arn:aws:sqs:{}:{}:{}", self.region, self.account, self.name)
    }
    pub fn attr_i64(&self, name: &str, default: i64) -> i64 {
        self.attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Message {
    pub id: String,
    pub seq: u64,
    pub body: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub system_attributes: Map<String, Value>,
    pub md5_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_attributes: Option<String>,
    pub sent_ms: i64,
    #[serde(default)]
    pub first_receive_ms: Option<i64>,
    #[serde(default)]
    pub receive_count: u32,
    pub visible_at_ms: i64,
    /// The receipt handle of the latest receive.
    #[serde(default)]
    pub receipt: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub dedup: Option<String>,
    #[serde(default)]
    pub sender: String,
    /// The queue a dead-lettered message came from (where a move task returns it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dedup {
    pub message_id: String,
    pub sequence: u64,
    pub expires_ms: i64,
}

pub fn encode<T: Serialize>(v: &T) -> AwsResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| AwsError::internal(format!("encode: {e}")))
}

pub fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> AwsResult<T> {
    serde_json::from_slice(b).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

pub fn queue_key(region: &str, account: &str, name: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(account).str(name).into_vec()
}

pub fn msg_key(qid: &str, seq: u64) -> Vec<u8> {
    KeyBuf::new().str(qid).u64(seq).into_vec()
}

pub fn vis_key(qid: &str, visible_at_ms: i64, seq: u64) -> Vec<u8> {
    KeyBuf::new()
        .str(qid)
        .u64(visible_at_ms.max(0) as u64)
        .u64(seq)
        .into_vec()
}

pub fn dedup_key(qid: &str, id: &str) -> Vec<u8> {
    KeyBuf::new().str(qid).str(id).into_vec()
}

pub fn qid_prefix(qid: &str) -> Vec<u8> {
    KeyBuf::new().str(qid).into_vec()
}

/// The visibility index a message belongs in.
pub fn vis_table(m: &Message) -> &'static str {
    if m.receive_count > 0 {
        VISIBLE_SEEN
    } else {
        VISIBLE
    }
}

/// Adds `m` (as it is now) to its queue's visibility index.
pub fn index(t: &mut dyn virga_store::KvTxn, qid: &str, m: &Message) -> AwsResult<()> {
    t.put(vis_table(m), &vis_key(qid, m.visible_at_ms, m.seq), b"")
}

/// Removes `m` (as it was stored) from its queue's visibility index.
pub fn unindex(t: &mut dyn virga_store::KvTxn, qid: &str, m: &Message) -> AwsResult<()> {
    t.delete(vis_table(m), &vis_key(qid, m.visible_at_ms, m.seq))
}

pub fn group_prefix(qid: &str, group: &str) -> Vec<u8> {
    KeyBuf::new().str(qid).str(group).into_vec()
}

fn group_key(qid: &str, m: &Message) -> Option<Vec<u8>> {
    // FIFO messages always carry a deduplication id; standard ones never do.
    m.dedup.as_ref()?;
    let group = m.group.as_deref().unwrap_or("");
    Some(KeyBuf::new().str(qid).str(group).u64(m.seq).into_vec())
}

/// How many messages the queue stores (None for queues from before the counter).
pub fn stored_count(r: &dyn virga_store::KvRead, qid: &str) -> AwsResult<Option<u64>> {
    Ok(r.get(COUNTS, &qid_prefix(qid))?
        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes)))
}

fn add_count(t: &mut dyn virga_store::KvTxn, qid: &str, delta: i64) -> AwsResult<()> {
    let key = qid_prefix(qid);
    let cur = stored_count(t, qid)?.unwrap_or(0);
    let next = cur.saturating_add_signed(delta);
    t.put(COUNTS, &key, &next.to_be_bytes())
}

/// Records a new message in the queue's indexes.
pub fn insert_indexes(t: &mut dyn virga_store::KvTxn, qid: &str, m: &Message) -> AwsResult<()> {
    add_count(t, qid, 1)?;
    index(t, qid, m)?;
    if let Some(k) = group_key(qid, m) {
        t.put(GROUPS, &k, b"")?;
    }
    Ok(())
}

/// Removes a deleted message from the queue's indexes.
pub fn remove_indexes(t: &mut dyn virga_store::KvTxn, qid: &str, m: &Message) -> AwsResult<()> {
    add_count(t, qid, -1)?;
    unindex(t, qid, m)?;
    if let Some(k) = group_key(qid, m) {
        t.delete(GROUPS, &k)?;
    }
    Ok(())
}
