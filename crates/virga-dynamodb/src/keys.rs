//! Item keys: validation against the table's schema, the ordered store keys of items
//! and index entries, and the one write path that keeps indexes, counters, the TTL
//! index and the stream in step with the item.

use crate::errors::validation;
use crate::state::{self, IndexMeta, KeyAttr, StreamMeta, TableMeta, INDEX, ITEMS, STREAM, TTL};
use serde_json::{json, Map, Value};
use virga_core::AwsResult;
use virga_dynamodb_expr::{item_size, item_to_json, key_bytes, AttrValue, Item};
use virga_store::{KeyBuf, KvTxn};

/// AWS's limits on key attribute sizes.
const MAX_HASH_KEY: usize = 2048;
const MAX_RANGE_KEY: usize = 1024;
/// DynamoDB's item size limit.
pub const MAX_ITEM: usize = 400 * 1024;

fn value_len(v: &AttrValue) -> usize {
    match v {
        AttrValue::S(s) => s.len(),
        AttrValue::B(b) => b.len(),
        other => other.size(),
    }
}

/// Checks one key attribute of an item or key map against its definition.
fn check_key_value(attr: &KeyAttr, v: &AttrValue, is_range: bool, in_item: bool) -> AwsResult<()> {
    if v.type_name() != attr.ty {
        return Err(validation(if in_item {
            format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.ty,
                v.type_name()
            )
        } else {
            "The provided key element does not match the schema".to_string()
        }));
    }
    let len = value_len(v);
    if len == 0 && matches!(v, AttrValue::S(_) | AttrValue::B(_)) {
        return Err(validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
            if attr.ty == "S" { "string" } else { "binary" },
            attr.name
        )));
    }
    if !is_range && len > MAX_HASH_KEY {
        return Err(validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if is_range && len > MAX_RANGE_KEY {
        return Err(validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok(())
}

/// The store key of an item: (table uid, partition key, sort key).
pub fn item_store_key(meta: &TableMeta, hash: &AttrValue, range: Option<&AttrValue>) -> Vec<u8> {
    let mut k = KeyBuf::new().u64(meta.uid).into_vec();
    k.extend_from_slice(&key_bytes(hash));
    if let Some(r) = range {
        k.extend_from_slice(&key_bytes(r));
    }
    k
}

/// The first store key of a table's items, and the key after its last.
pub fn table_bounds(uid: u64) -> (Vec<u8>, Vec<u8>) {
    (
        KeyBuf::new().u64(uid).into_vec(),
        KeyBuf::new().u64(uid + 1).into_vec(),
    )
}

/// Validates a full item's key attributes; returns its store key.
pub fn key_of_item(meta: &TableMeta, item: &Item) -> AwsResult<Vec<u8>> {
    let hash = item.get(&meta.hash.name).ok_or_else(|| {
        validation(format!(
            "One or more parameter values were invalid: Missing the key {} in the item",
            meta.hash.name
        ))
    })?;
    check_key_value(&meta.hash, hash, false, true)?;
    let range = match &meta.range {
        Some(r) => {
            let v = item.get(&r.name).ok_or_else(|| {
                validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    r.name
                ))
            })?;
            check_key_value(r, v, true, true)?;
            Some(v)
        }
        None => None,
    };
    for (index, _) in meta.indexes() {
        for attr in std::iter::once(&index.hash).chain(index.range.as_ref()) {
            if let Some(v) = item.get(&attr.name) {
                if v.type_name() != attr.ty {
                    return Err(validation(format!(
                        "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                        attr.name, attr.ty, v.type_name(), index.name
                    )));
                }
                if value_len(v) == 0 && matches!(v, AttrValue::S(_) | AttrValue::B(_)) {
                    return Err(validation(format!(
                        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                        index.name, attr.name
                    )));
                }
            }
        }
    }
    Ok(item_store_key(meta, hash, range))
}

/// Parses and validates a `Key` map (exactly the table's key attributes).
pub fn parse_key(meta: &TableMeta, key: Option<&Value>) -> AwsResult<(Item, Vec<u8>)> {
    let obj = key
        .and_then(Value::as_object)
        .ok_or_else(|| validation("The provided key element does not match the schema"))?;
    let item = crate::data::parse_item(obj)?;
    let expected = 1 + usize::from(meta.range.is_some());
    if item.len() != expected {
        return Err(validation(
            "The provided key element does not match the schema",
        ));
    }
    let hash = item
        .get(&meta.hash.name)
        .ok_or_else(|| validation("The provided key element does not match the schema"))?;
    check_key_value(&meta.hash, hash, false, false)?;
    let range = match &meta.range {
        Some(r) => {
            let v = item
                .get(&r.name)
                .ok_or_else(|| validation("The provided key element does not match the schema"))?;
            check_key_value(r, v, true, false)?;
            Some(v)
        }
        None => None,
    };
    let store_key = item_store_key(meta, hash, range);
    Ok((item, store_key))
}

/// The primary key attributes of an item, as a key map.
pub fn key_item(meta: &TableMeta, item: &Item) -> Item {
    meta.key_names()
        .into_iter()
        .filter_map(|n| item.get(n).map(|v| (n.to_string(), v.clone())))
        .collect()
}

/// The store key of an item's entry in `index`, or None when the item lacks the
/// index's key attributes (a sparse index).
pub fn index_store_key(meta: &TableMeta, index: &IndexMeta, item: &Item) -> Option<Vec<u8>> {
    let h = item.get(&index.hash.name)?;
    if h.type_name() != index.hash.ty {
        return None;
    }
    let mut k = KeyBuf::new().u64(meta.uid).str(&index.name).into_vec();
    k.extend_from_slice(&key_bytes(h));
    if let Some(r) = &index.range {
        let v = item.get(&r.name)?;
        if v.type_name() != r.ty {
            return None;
        }
        k.extend_from_slice(&key_bytes(v));
    }
    k.extend_from_slice(&key_bytes(item.get(&meta.hash.name)?));
    if let Some(r) = &meta.range {
        k.extend_from_slice(&key_bytes(item.get(&r.name)?));
    }
    Some(k)
}

/// The first store key of an index's entries, and the key after its last.
pub fn index_bounds(meta: &TableMeta, index: &str) -> (Vec<u8>, Vec<u8>) {
    let start = KeyBuf::new().u64(meta.uid).str(index).into_vec();
    let end = virga_store::prefix_end(&start).unwrap_or_default();
    (start, end)
}

/// The attributes an index stores for an item.
pub fn project_for_index(meta: &TableMeta, index: &IndexMeta, item: &Item) -> Item {
    if index.projection == "ALL" {
        return item.clone();
    }
    let mut keep: Vec<&str> = meta.key_names();
    keep.push(&index.hash.name);
    if let Some(r) = &index.range {
        keep.push(&r.name);
    }
    if index.projection == "INCLUDE" {
        keep.extend(index.non_key.iter().map(String::as_str));
    }
    item.iter()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn encode_item(item: &Item) -> AwsResult<Vec<u8>> {
    state::encode(&Value::Object(item_to_json(item)))
}

pub fn decode_item(bytes: &[u8]) -> AwsResult<Item> {
    let v: Map<String, Value> = state::decode(bytes)?;
    crate::data::parse_item(&v)
}

/// Who made a change, for stream records (TTL deletions are the service's own).
#[derive(Clone, Copy, PartialEq)]
pub enum Actor {
    User,
    Ttl,
}

/// Writes (or, with `new = None`, deletes) one item and everything that follows it:
/// index entries, item counters, the TTL index and the stream record.
pub fn write_item(
    ddb: &crate::DynamoDb,
    t: &mut dyn KvTxn,
    meta: &TableMeta,
    store_key: &[u8],
    old: Option<&Item>,
    new: Option<&Item>,
    actor: Actor,
) -> AwsResult<()> {
    match new {
        Some(item) => t.put(ITEMS, store_key, &encode_item(item)?)?,
        None if old.is_some() => t.delete(ITEMS, store_key)?,
        None => return Ok(()),
    }
    for (index, _) in meta.indexes() {
        let old_key = old.and_then(|o| index_store_key(meta, index, o));
        let new_key = new.and_then(|n| index_store_key(meta, index, n));
        if let Some(k) = &old_key {
            if new_key.as_ref() != Some(k) {
                t.delete(INDEX, k)?;
            }
        }
        if let (Some(k), Some(item)) = (&new_key, new) {
            t.put(
                INDEX,
                k,
                &encode_item(&project_for_index(meta, index, item))?,
            )?;
        }
    }
    let old_size = old.map_or(0, |o| item_size(o) as i64);
    let new_size = new.map_or(0, |n| item_size(n) as i64);
    let count = i64::from(new.is_some()) - i64::from(old.is_some());
    state::add_stats(t, meta.uid, count, new_size - old_size)?;
    if let Some(attr) = &meta.ttl_attribute {
        let old_ttl = old.and_then(|o| ttl_key(meta, attr, o, store_key));
        let new_ttl = new.and_then(|n| ttl_key(meta, attr, n, store_key));
        if old_ttl != new_ttl {
            if let Some(k) = old_ttl {
                t.delete(TTL, &k)?;
            }
            if let Some(k) = new_ttl {
                t.put(TTL, &k, store_key)?;
            }
        }
    }
    if let Some(stream) = meta.active_stream() {
        if old != new {
            write_stream_record(ddb, t, meta, stream, old, new, actor)?;
        }
    }
    Ok(())
}

/// The TTL index key of an item whose TTL attribute is a number of epoch seconds.
pub fn ttl_key(meta: &TableMeta, attr: &str, item: &Item, store_key: &[u8]) -> Option<Vec<u8>> {
    let AttrValue::N(n) = item.get(attr)? else {
        return None;
    };
    let secs: f64 = n.to_string().parse().ok()?;
    if !(0.0..1e15).contains(&secs) {
        return None;
    }
    let mut k = KeyBuf::new().u64(meta.uid).u64(secs as u64).into_vec();
    k.extend_from_slice(store_key);
    Some(k)
}

fn write_stream_record(
    ddb: &crate::DynamoDb,
    t: &mut dyn KvTxn,
    meta: &TableMeta,
    stream: &StreamMeta,
    old: Option<&Item>,
    new: Option<&Item>,
    actor: Actor,
) -> AwsResult<()> {
    let seq = ddb.next_stream_seq();
    let event_name = match (old, new) {
        (None, Some(_)) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        _ => "REMOVE",
    };
    let any = new.or(old).cloned().unwrap_or_default();
    let keys = key_item(meta, &any);
    let mut d = Map::new();
    d.insert(
        "ApproximateCreationDateTime".into(),
        json!(ddb.clock.now_secs_f64().floor()),
    );
    d.insert("Keys".into(), Value::Object(item_to_json(&keys)));
    let view = stream.view_type.as_str();
    if matches!(view, "NEW_IMAGE" | "NEW_AND_OLD_IMAGES") {
        if let Some(n) = new {
            d.insert("NewImage".into(), Value::Object(item_to_json(n)));
        }
    }
    if matches!(view, "OLD_IMAGE" | "NEW_AND_OLD_IMAGES") {
        if let Some(o) = old {
            d.insert("OldImage".into(), Value::Object(item_to_json(o)));
        }
    }
    d.insert("SequenceNumber".into(), json!(format!("{seq:021}")));
    let size = item_size(&keys) + new.map_or(0, item_size) + old.map_or(0, item_size);
    d.insert("SizeBytes".into(), json!(size));
    d.insert("StreamViewType".into(), json!(view));
    let mut record = json!({
        "eventID": uuid::Uuid::new_v4().simple().to_string(),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": meta.region,
        "dynamodb": Value::Object(d),
    });
    if actor == Actor::Ttl {
        record["userIdentity"] = json!({
            "Type": "Service",
            "PrincipalId": "dynamodb.amazonaws.com",
        });
    }
    let key = KeyBuf::new().u64(stream.uid).u64(seq).into_vec();
    t.put(STREAM, &key, &state::encode(&record)?)
}
