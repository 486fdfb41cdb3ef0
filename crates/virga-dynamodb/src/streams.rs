//! DynamoDB Streams: one shard per stream, records in `ddb.stream` keyed by
//! (stream uid, sequence number), kept 24 hours.

use crate::control::s;
use crate::errors::validation;
use crate::state::{self, StreamMeta, TableMeta, STREAM, TABLES};
use crate::{DynamoDb, Input, Output};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_store::KeyBuf;

/// Stream records are readable for 24 hours.
pub const RETENTION_SECS: f64 = 24.0 * 3600.0;
/// Shard iterators expire after 15 minutes.
const ITERATOR_SECS: f64 = 15.0 * 60.0;

pub fn call(ddb: &DynamoDb, ctx: &RequestContext, op: &str, i: Input) -> AwsResult<Output> {
    match op {
        "ListStreams" => list_streams(ddb, ctx, &i),
        "DescribeStream" => describe_stream(ddb, &i),
        "GetShardIterator" => get_shard_iterator(ddb, &i),
        "GetRecords" => get_records(ddb, &i),
        _ => Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("Virga does not implement DynamoDB Streams {op}"),
        )),
    }
}

fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn all_tables(ddb: &DynamoDb) -> AwsResult<Vec<TableMeta>> {
    let rows = ddb.store.read(|r| {
        r.scan(
            TABLES,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            false,
        )
    })?;
    rows.iter().map(|(_, v)| state::decode(v)).collect()
}

fn shard_id(st: &StreamMeta) -> String {
    format!(
        "shardId-{:020}-{:08x}",
        (st.created * 1000.0) as u64,
        st.uid as u32
    )
}

fn stream_not_found(arn: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Requested resource not found: Stream: {arn} not found"),
    )
}

/// The table and stream an ARN names (`arn:...:table/NAME/stream/LABEL`).
fn find_stream(ddb: &DynamoDb, arn: &str) -> AwsResult<(TableMeta, StreamMeta)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (Some(region), Some(resource)) = (parts.get(3), parts.get(5)) else {
        return Err(validation(format!("Invalid StreamArn: {arn}")));
    };
    let mut segs = resource.split('/');
    let (Some("table"), Some(table), Some("stream"), Some(label)) =
        (segs.next(), segs.next(), segs.next(), segs.next())
    else {
        return Err(validation(format!("Invalid StreamArn: {arn}")));
    };
    // The live table first, then deleted tables of that name whose stream lives on.
    let prefix = KeyBuf::new().str(region).str(table).into_vec();
    let end = virga_store::prefix_end(&prefix).unwrap_or_default();
    let candidates: Vec<TableMeta> = ddb.store.read(|r| {
        let mut v: Vec<TableMeta> = state::load_table(r, region, table)?.into_iter().collect();
        for (_, raw) in r.scan(
            state::DROPPED,
            Bound::Included(prefix.as_slice()),
            Bound::Excluded(end.as_slice()),
            usize::MAX,
            true,
        )? {
            v.push(state::decode(&raw)?);
        }
        Ok(v)
    })?;
    for meta in candidates {
        if let Some(st) = meta
            .stream
            .iter()
            .chain(meta.old_streams.iter())
            .find(|s| s.label == label)
            .cloned()
        {
            return Ok((meta, st));
        }
    }
    Err(stream_not_found(arn))
}

fn list_streams(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let only = s(i, "TableName").map(crate::control::name_from_arn);
    let limit = i.get("Limit").and_then(Value::as_u64).unwrap_or(100) as usize;
    let start = s(i, "ExclusiveStartStreamArn");
    let mut streams = Vec::new();
    for meta in all_tables(ddb)? {
        if meta.region != ctx.region || only.is_some_and(|n| n != meta.name) {
            continue;
        }
        for st in meta.old_streams.iter().chain(meta.stream.iter()) {
            streams.push(json!({
                "StreamArn": meta.stream_arn(st),
                "TableName": meta.name,
                "StreamLabel": st.label,
            }));
        }
    }
    if let Some(start) = start {
        if let Some(pos) = streams.iter().position(|s| s["StreamArn"] == start) {
            streams.drain(..=pos);
        }
    }
    let more = streams.len() > limit;
    streams.truncate(limit);
    let mut out = json!({ "Streams": streams });
    if more {
        out["LastEvaluatedStreamArn"] = streams
            .last()
            .map_or(Value::Null, |s| s["StreamArn"].clone());
    }
    Ok(obj(out))
}

fn first_and_last_seq(ddb: &DynamoDb, st: &StreamMeta) -> AwsResult<(Option<u64>, Option<u64>)> {
    let start = KeyBuf::new().u64(st.uid).into_vec();
    let end = KeyBuf::new().u64(st.uid + 1).into_vec();
    let seq = |rows: Vec<(Vec<u8>, Vec<u8>)>| {
        rows.first()
            .and_then(|(k, _)| k.get(8..16))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    };
    ddb.store.read(|r| {
        let first = r.scan(
            STREAM,
            Bound::Included(start.as_slice()),
            Bound::Excluded(end.as_slice()),
            1,
            false,
        )?;
        let last = r.scan(
            STREAM,
            Bound::Included(start.as_slice()),
            Bound::Excluded(end.as_slice()),
            1,
            true,
        )?;
        Ok((seq(first), seq(last)))
    })
}

fn describe_stream(ddb: &DynamoDb, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "StreamArn").unwrap_or("");
    let (meta, st) = find_stream(ddb, arn)?;
    let (first, last) = first_and_last_seq(ddb, &st)?;
    let mut range = json!({
        "StartingSequenceNumber": format!("{:021}", first.unwrap_or(st.created as u64 * 1_000_000)),
    });
    if !st.enabled {
        range["EndingSequenceNumber"] = json!(format!("{:021}", last.unwrap_or(0)));
    }
    let mut key_schema = vec![json!({"AttributeName": meta.hash.name, "KeyType": "HASH"})];
    if let Some(r) = &meta.range {
        key_schema.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    Ok(obj(json!({
        "StreamDescription": {
            "StreamArn": meta.stream_arn(&st),
            "StreamLabel": st.label,
            "StreamStatus": if st.enabled { "ENABLED" } else { "DISABLED" },
            "StreamViewType": st.view_type,
            "CreationRequestDateTime": st.created,
            "TableName": meta.name,
            "KeySchema": key_schema,
            "Shards": [{
                "ShardId": shard_id(&st),
                "SequenceNumberRange": range,
            }],
        }
    })))
}

#[derive(Serialize, Deserialize)]
struct Iterator {
    arn: String,
    shard: String,
    /// Records with a sequence number above this are next.
    after: u64,
    issued: f64,
}

fn encode_iterator(it: &Iterator) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(it).unwrap_or_default())
}

fn decode_iterator(s: &str) -> AwsResult<Iterator> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| validation("Invalid ShardIterator"))
}

fn parse_seq(s: Option<&str>, kind: &str) -> AwsResult<u64> {
    let s = s.ok_or_else(|| {
        validation(format!(
            "Must provide a SequenceNumber for ShardIteratorType {kind}"
        ))
    })?;
    s.parse::<u64>()
        .map_err(|_| validation(format!("Invalid SequenceNumber: {s}")))
}

fn get_shard_iterator(ddb: &DynamoDb, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "StreamArn").unwrap_or("");
    let shard = s(i, "ShardId").unwrap_or("");
    let kind = s(i, "ShardIteratorType").unwrap_or("");
    let (meta, st) = find_stream(ddb, arn)?;
    if shard != shard_id(&st) {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            "Requested resource not found: Shard does not exist",
        ));
    }
    let seq = s(i, "SequenceNumber");
    let after = match kind {
        "TRIM_HORIZON" => 0,
        "LATEST" => first_and_last_seq(ddb, &st)?.1.unwrap_or(0),
        "AT_SEQUENCE_NUMBER" => parse_seq(seq, kind)?.saturating_sub(1),
        "AFTER_SEQUENCE_NUMBER" => parse_seq(seq, kind)?,
        other => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
            )))
        }
    };
    if seq.is_some() && matches!(kind, "TRIM_HORIZON" | "LATEST") {
        return Err(validation(format!(
            "Must not provide a SequenceNumber for ShardIteratorType {kind}"
        )));
    }
    let it = Iterator {
        arn: meta.stream_arn(&st),
        shard: shard.to_string(),
        after,
        issued: ddb.clock.now_secs_f64(),
    };
    Ok(obj(json!({ "ShardIterator": encode_iterator(&it) })))
}

fn get_records(ddb: &DynamoDb, i: &Input) -> AwsResult<Output> {
    let mut it = decode_iterator(s(i, "ShardIterator").unwrap_or(""))?;
    let now = ddb.clock.now_secs_f64();
    if it.issued + ITERATOR_SECS < now {
        return Err(AwsError::new(
            400,
            "ExpiredIteratorException",
            "Iterator expired. The iterator was created over 15 minutes ago.",
        ));
    }
    let limit = i
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(1000)
        .min(1000) as usize;
    let (_, st) = find_stream(ddb, &it.arn)?;
    // Records older than the retention period are gone (sequence numbers are
    // microseconds of the clock).
    let oldest = ((now - RETENTION_SECS).max(0.0) * 1e6) as u64;
    let from = KeyBuf::new()
        .u64(st.uid)
        .u64(it.after.max(oldest))
        .into_vec();
    let end = KeyBuf::new().u64(st.uid + 1).into_vec();
    let rows = ddb.store.read(|r| {
        r.scan(
            STREAM,
            Bound::Excluded(from.as_slice()),
            Bound::Excluded(end.as_slice()),
            limit,
            false,
        )
    })?;
    let mut records = Vec::with_capacity(rows.len());
    for (k, v) in &rows {
        if let Some(seq) = k
            .get(8..16)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        {
            it.after = seq;
        }
        records.push(state::decode::<Value>(v)?);
    }
    it.issued = now;
    let mut out = json!({ "Records": records });
    if st.enabled || !rows.is_empty() {
        out["NextShardIterator"] = json!(encode_iterator(&it));
    }
    Ok(obj(out))
}

/// Deletes stream records past the retention period.
pub fn trim(ddb: &DynamoDb) -> AwsResult<()> {
    let now = ddb.clock.now_secs_f64();
    let oldest = ((now - RETENTION_SECS).max(0.0) * 1e6) as u64;
    let dropped = ddb.store.read(|r| {
        r.scan(
            state::DROPPED,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            false,
        )
    })?;
    let mut metas = all_tables(ddb)?;
    for (key, raw) in dropped {
        let meta: TableMeta = state::decode(&raw)?;
        // Forgotten once its newest record is past the retention period.
        let last = match &meta.stream {
            Some(st) => first_and_last_seq(ddb, st)?.1,
            None => None,
        };
        if last.is_none_or(|l| (l as f64) / 1e6 + RETENTION_SECS < now) {
            ddb.store.transact(|t| t.delete(state::DROPPED, &key))?;
        }
        metas.push(meta);
    }
    for meta in metas {
        for st in meta.stream.iter().chain(meta.old_streams.iter()) {
            let start = KeyBuf::new().u64(st.uid).into_vec();
            let end = KeyBuf::new().u64(st.uid).u64(oldest).into_vec();
            ddb.store
                .transact(|t| t.delete_range(STREAM, &start, &end))?;
        }
    }
    Ok(())
}

pub(crate) fn tables(ddb: &DynamoDb) -> AwsResult<Vec<TableMeta>> {
    all_tables(ddb)
}
