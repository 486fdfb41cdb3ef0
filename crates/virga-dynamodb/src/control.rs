//! The control plane: tables, indexes, streams settings, TTL settings, tags, limits.

use crate::errors::{in_use, no_table_named, validation};
use crate::keys::{self, encode_item, index_bounds, index_store_key, project_for_index};
use crate::state::{
    self, IndexMeta, KeyAttr, StreamMeta, TableMeta, INDEX, ITEMS, STATS, TABLES, TTL,
};
use crate::{DynamoDb, Input, Output};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_dynamodb_expr::Item;
use virga_store::{KeyBuf, KvTxn};

const MAX_GSIS: usize = 20;
const MAX_LSIS: usize = 5;
const MAX_PROJECTED_NON_KEY: usize = 100;

pub fn s<'a>(i: &'a Input, name: &str) -> Option<&'a str> {
    i.get(name).and_then(Value::as_str)
}

fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub fn table_name(i: &Input) -> AwsResult<&str> {
    let name = s(i, "TableName").ok_or_else(|| {
        validation("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
    })?;
    check_table_name(name)?;
    Ok(name)
}

/// TableName takes a name or (since 2024) an ARN, so the model no longer says what a
/// name must look like: 3-255 characters of `[a-zA-Z0-9_.-]`.
pub fn check_table_name(name: &str) -> AwsResult<()> {
    if name.starts_with("arn:") {
        return Ok(());
    }
    let fail = |what: &str| {
        validation(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: {what}"
        ))
    };
    if name.len() < 3 {
        return Err(fail("Member must have length greater than or equal to 3"));
    }
    if name.len() > 255 {
        return Err(fail("Member must have length less than or equal to 255"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(fail(
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

/// The table `name` (or table ARN) in the caller's region, or ResourceNotFoundException.
pub fn require_table(ddb: &DynamoDb, ctx: &RequestContext, name: &str) -> AwsResult<TableMeta> {
    let name = name_from_arn(name);
    let key = (ctx.region.clone(), name.to_string());
    // The cache lock is held across the store read on a miss, so a control-plane
    // change that commits and then forgets the entry cannot be overwritten by a
    // description read before it.
    let mut tables = ddb.tables.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(meta) = tables.get(&key) {
        return Ok(TableMeta::clone(meta));
    }
    let meta = ddb
        .store
        .read(|r| state::load_table(r, &ctx.region, name))?
        .ok_or_else(crate::errors::no_table)?;
    tables.insert(key, std::sync::Arc::new(meta.clone()));
    Ok(meta)
}

/// The table's current description for a write about to happen under `write_lock`:
/// indexes, TTL and stream settings may have changed since `before` was read, and
/// the table may have been deleted (and recreated, with another uid) meanwhile.
pub fn relock_table(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    before: &TableMeta,
) -> AwsResult<TableMeta> {
    let now = require_table(ddb, ctx, &before.name)?;
    if now.uid != before.uid {
        return Err(crate::errors::no_table());
    }
    Ok(now)
}

/// Drops a table's cached description (after a control-plane change to it).
pub fn forget_table(ddb: &DynamoDb, region: &str, name: &str) {
    ddb.tables
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(region.to_string(), name.to_string()));
}

/// Accepts a table ARN where a table name is expected, as AWS does.
pub fn name_from_arn(name: &str) -> &str {
    match name.strip_prefix("arn:") {
        Some(rest) => rest.rsplit_once(":table/").map_or(name, |(_, n)| n),
        None => name,
    }
}

fn key_schema(v: Option<&Value>, what: &str) -> AwsResult<(String, Option<String>)> {
    let elems = v.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut hash = None;
    let mut range = None;
    for (n, e) in elems.iter().enumerate() {
        let name = e
            .get("AttributeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match e.get("KeyType").and_then(Value::as_str) {
            Some("HASH") => {
                if n != 0 {
                    return Err(validation(format!(
                        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type{what}"
                    )));
                }
                hash = Some(name);
            }
            Some("RANGE") => {
                if n == 0 {
                    return Err(validation(format!(
                        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type{what}"
                    )));
                }
                range = Some(name);
            }
            _ => {}
        }
    }
    if let (Some(h), Some(r)) = (&hash, &range) {
        if h == r {
            return Err(validation(
                "Invalid KeySchema: Some index key attribute have no definition",
            ));
        }
    }
    let hash = hash.ok_or_else(|| {
        validation(format!(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type{what}"
        ))
    })?;
    Ok((hash, range))
}

fn definition(defs: &[KeyAttr], name: &str) -> Option<KeyAttr> {
    defs.iter().find(|d| d.name == name).cloned()
}

fn parse_index(
    v: &Value,
    defs: &[KeyAttr],
    global: bool,
    table_hash: &str,
    billing: &str,
) -> AwsResult<IndexMeta> {
    let name = v
        .get("IndexName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (h, r) = key_schema(v.get("KeySchema"), "")?;
    let mut missing = Vec::new();
    let hash = definition(defs, &h);
    if hash.is_none() {
        missing.push(h.clone());
    }
    let range = match &r {
        Some(r) => {
            let d = definition(defs, r);
            if d.is_none() {
                missing.push(r.clone());
            }
            d
        }
        None => None,
    };
    if !missing.is_empty() {
        return Err(validation(format!(
            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            missing.join(", "),
            defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let (Some(hash), range) = (hash, range) else {
        return Err(validation("Invalid KeySchema"));
    };
    if !global {
        if hash.name != table_hash {
            return Err(validation(format!(
                "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {table_hash}",
                hash.name
            )));
        }
        if range.is_none() {
            return Err(validation(format!(
                "One or more parameter values were invalid: Index KeySchema does not have a range key for index: {name}"
            )));
        }
    }
    let projection = v.get("Projection").cloned().unwrap_or(json!({}));
    let ptype = projection
        .get("ProjectionType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ptype.is_empty() {
        return Err(validation(
            "One or more parameter values were invalid: Unknown ProjectionType: null",
        ));
    }
    let non_key: Vec<String> = projection
        .get("NonKeyAttributes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if ptype == "INCLUDE" && non_key.is_empty() {
        return Err(validation(
            "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
        ));
    }
    if ptype != "INCLUDE" && !non_key.is_empty() {
        return Err(validation(format!(
            "One or more parameter values were invalid: ProjectionType is {ptype}, but NonKeyAttributes is specified"
        )));
    }
    let (read_capacity, write_capacity) = match v.get("ProvisionedThroughput") {
        Some(p) if global => {
            if billing == "PAY_PER_REQUEST" {
                return Err(validation(
                    "One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: ".to_string() + &name + " when BillingMode is PAY_PER_REQUEST",
                ));
            }
            (
                p.get("ReadCapacityUnits").and_then(Value::as_u64),
                p.get("WriteCapacityUnits").and_then(Value::as_u64),
            )
        }
        None if global && billing == "PROVISIONED" => {
            return Err(validation(format!(
                "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: {name}"
            )))
        }
        _ => (None, None),
    };
    Ok(IndexMeta {
        name,
        hash,
        range,
        projection: ptype,
        non_key,
        read_capacity,
        write_capacity,
    })
}

fn parse_stream_spec(v: Option<&Value>) -> AwsResult<Option<(bool, String)>> {
    let Some(spec) = v else {
        return Ok(None);
    };
    let enabled = spec
        .get("StreamEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let view = spec
        .get("StreamViewType")
        .and_then(Value::as_str)
        .map(str::to_string);
    match (enabled, view) {
        (true, None) => Err(validation(
            "One or more parameter values were invalid: StreamViewType is required when StreamEnabled is true",
        )),
        (false, Some(_)) => Err(validation(
            "One or more parameter values were invalid: StreamViewType cannot be specified when StreamEnabled is false",
        )),
        (true, Some(v)) => Ok(Some((true, v))),
        (false, None) => Ok(Some((false, String::new()))),
    }
}

fn new_stream(t: &mut dyn KvTxn, view: String, now: f64) -> AwsResult<StreamMeta> {
    Ok(StreamMeta {
        uid: state::next_uid(t)?,
        view_type: view,
        label: virga_protocol::time_fmt::iso8601(now)
            .trim_end_matches('Z')
            .to_string(),
        enabled: true,
        created: now,
    })
}

pub fn create_table(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = table_name(i)?.to_string();
    let defs: Vec<KeyAttr> = i
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| KeyAttr {
                    name: d
                        .get("AttributeName")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    ty: d
                        .get("AttributeType")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for d in &defs {
        if !seen.insert(d.name.as_str()) {
            return Err(validation(format!(
                "Cannot have two attributes with the same name. Attribute name: {}",
                d.name
            )));
        }
    }
    let (h, r) = key_schema(i.get("KeySchema"), "")?;
    for k in std::iter::once(&h).chain(r.as_ref()) {
        if definition(&defs, k).is_none() {
            return Err(validation(
                "Invalid KeySchema: Some index key attribute have no definition",
            ));
        }
    }
    let hash = definition(&defs, &h).ok_or_else(|| validation("Invalid KeySchema"))?;
    let range = r.as_ref().and_then(|r| definition(&defs, r));
    let billing = s(i, "BillingMode").unwrap_or("PROVISIONED").to_string();
    let (read_capacity, write_capacity) = match (billing.as_str(), i.get("ProvisionedThroughput")) {
        ("PROVISIONED", Some(p)) => (
            p.get("ReadCapacityUnits").and_then(Value::as_u64).unwrap_or(0),
            p.get("WriteCapacityUnits").and_then(Value::as_u64).unwrap_or(0),
        ),
        ("PROVISIONED", None) => {
            return Err(validation(
                "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
            ))
        }
        (_, Some(_)) => {
            return Err(validation(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ))
        }
        _ => (0, 0),
    };
    let gsis: Vec<IndexMeta> = i
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|g| parse_index(g, &defs, true, &hash.name, &billing))
                .collect::<AwsResult<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    let lsis: Vec<IndexMeta> = i
        .get("LocalSecondaryIndexes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|g| parse_index(g, &defs, false, &hash.name, &billing))
                .collect::<AwsResult<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    if !lsis.is_empty() && range.is_none() {
        return Err(validation(
            "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
        ));
    }
    if gsis.len() > MAX_GSIS {
        return Err(validation(format!(
            "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
        )));
    }
    if lsis.len() > MAX_LSIS {
        return Err(validation(format!(
            "One or more parameter values were invalid: LocalSecondaryIndex count exceeds the per-table limit of {MAX_LSIS}"
        )));
    }
    let mut index_names = std::collections::HashSet::new();
    for ix in gsis.iter().chain(&lsis) {
        if !index_names.insert(ix.name.as_str()) {
            return Err(validation(format!(
                "One or more parameter values were invalid: Duplicate index name: {}",
                ix.name
            )));
        }
    }
    let non_key: usize = gsis.iter().chain(&lsis).map(|x| x.non_key.len()).sum();
    if non_key > MAX_PROJECTED_NON_KEY {
        return Err(validation(format!(
            "One or more parameter values were invalid: Number of projected attributes in all indexes exceeds limit of {MAX_PROJECTED_NON_KEY}, number of projected attributes:{non_key}"
        )));
    }
    // Every definition must be used by a key of the table or an index.
    let used: std::collections::HashSet<&str> = std::iter::once(hash.name.as_str())
        .chain(range.iter().map(|r| r.name.as_str()))
        .chain(gsis.iter().chain(&lsis).flat_map(|x| {
            std::iter::once(x.hash.name.as_str()).chain(x.range.iter().map(|r| r.name.as_str()))
        }))
        .collect();
    if defs.iter().any(|d| !used.contains(d.name.as_str())) {
        return Err(validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let stream_spec = parse_stream_spec(i.get("StreamSpecification"))?;
    let tags = tag_list(i.get("Tags"))?;
    let now = ddb.clock.now_secs_f64();
    let meta = ddb.store.transact(|t| {
        if state::load_table(t, &ctx.region, &name)?.is_some() {
            return Err(in_use(format!("Table already exists: {name}")));
        }
        let stream = match &stream_spec {
            Some((true, view)) => Some(new_stream(t, view.clone(), now)?),
            _ => None,
        };
        let meta = TableMeta {
            name: name.clone(),
            region: ctx.region.clone(),
            account: ctx.account.clone(),
            uid: state::next_uid(t)?,
            id: uuid::Uuid::new_v4().to_string(),
            hash: hash.clone(),
            range: range.clone(),
            attribute_definitions: defs.clone(),
            gsis: gsis.clone(),
            lsis: lsis.clone(),
            billing_mode: billing.clone(),
            read_capacity,
            write_capacity,
            stream,
            old_streams: Vec::new(),
            ttl_attribute: None,
            ttl_enabled: false,
            created: now,
            deletion_protection: i
                .get("DeletionProtectionEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            table_class: s(i, "TableClass").map(str::to_string),
            sse: i.get("SSESpecification").cloned(),
            tags: tags.clone(),
            billing_mode_updated: None,
        };
        state::save_table(t, &meta)?;
        Ok(meta)
    })?;
    forget_table(ddb, &ctx.region, &name);
    let desc = describe(ddb, &meta, "CREATING", None)?;
    Ok(obj(json!({ "TableDescription": desc })))
}

fn tag_list(v: Option<&Value>) -> AwsResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for t in v.and_then(Value::as_array).into_iter().flatten() {
        let k = t.get("Key").and_then(Value::as_str).unwrap_or("");
        let val = t.get("Value").and_then(Value::as_str).unwrap_or("");
        out.push((k.to_string(), val.to_string()));
    }
    Ok(out)
}

fn key_schema_json(hash: &KeyAttr, range: Option<&KeyAttr>) -> Value {
    let mut v = vec![json!({"AttributeName": hash.name, "KeyType": "HASH"})];
    if let Some(r) = range {
        v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    Value::Array(v)
}

fn projection_json(ix: &IndexMeta) -> Value {
    let mut p = json!({"ProjectionType": ix.projection});
    if !ix.non_key.is_empty() {
        p["NonKeyAttributes"] = json!(ix.non_key);
    }
    p
}

/// Items and bytes in an index (counted; DescribeTable is not a hot path).
fn index_stats(ddb: &DynamoDb, meta: &TableMeta, ix: &IndexMeta) -> AwsResult<(u64, u64)> {
    let (start, end) = index_bounds(meta, &ix.name);
    let count = ddb.store.read(|r| {
        r.count(
            INDEX,
            Bound::Included(start.as_slice()),
            Bound::Excluded(end.as_slice()),
        )
    })?;
    Ok((count, 0))
}

/// The TableDescription AWS returns, with `status` as the table's status.
pub fn describe(
    ddb: &DynamoDb,
    meta: &TableMeta,
    status: &str,
    creating_index: Option<&str>,
) -> AwsResult<Value> {
    let stats = ddb.store.read(|r| state::load_stats(r, meta.uid))?;
    let mut d = json!({
        "AttributeDefinitions": meta.attribute_definitions.iter().map(|a| json!({"AttributeName": a.name, "AttributeType": a.ty})).collect::<Vec<_>>(),
        "TableName": meta.name,
        "KeySchema": key_schema_json(&meta.hash, meta.range.as_ref()),
        "TableStatus": status,
        "CreationDateTime": meta.created,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": meta.read_capacity,
            "WriteCapacityUnits": meta.write_capacity,
        },
        "TableSizeBytes": stats.bytes.max(0),
        "ItemCount": stats.count.max(0),
        "TableArn": meta.arn(),
        "TableId": meta.id,
        "DeletionProtectionEnabled": meta.deletion_protection,
    });
    if meta.billing_mode == "PAY_PER_REQUEST" {
        d["BillingModeSummary"] = json!({
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": meta.billing_mode_updated.unwrap_or(meta.created),
        });
    } else if meta.billing_mode_updated.is_some() {
        d["BillingModeSummary"] = json!({"BillingMode": "PROVISIONED"});
    }
    if !meta.lsis.is_empty() {
        let mut v = Vec::new();
        for ix in &meta.lsis {
            let (count, bytes) = index_stats(ddb, meta, ix)?;
            v.push(json!({
                "IndexName": ix.name,
                "KeySchema": key_schema_json(&ix.hash, ix.range.as_ref()),
                "Projection": projection_json(ix),
                "IndexSizeBytes": bytes,
                "ItemCount": count,
                "IndexArn": format!("{}/index/{}", meta.arn(), ix.name),
            }));
        }
        d["LocalSecondaryIndexes"] = Value::Array(v);
    }
    if !meta.gsis.is_empty() {
        let mut v = Vec::new();
        for ix in &meta.gsis {
            let (count, bytes) = index_stats(ddb, meta, ix)?;
            let status = if creating_index == Some(ix.name.as_str()) {
                "CREATING"
            } else {
                "ACTIVE"
            };
            let mut g = json!({
                "IndexName": ix.name,
                "KeySchema": key_schema_json(&ix.hash, ix.range.as_ref()),
                "Projection": projection_json(ix),
                "IndexStatus": status,
                "ProvisionedThroughput": {
                    "NumberOfDecreasesToday": 0,
                    "ReadCapacityUnits": ix.read_capacity.unwrap_or(0),
                    "WriteCapacityUnits": ix.write_capacity.unwrap_or(0),
                },
                "IndexSizeBytes": bytes,
                "ItemCount": count,
                "IndexArn": format!("{}/index/{}", meta.arn(), ix.name),
            });
            if status == "CREATING" {
                g["Backfilling"] = json!(false);
            }
            v.push(g);
        }
        d["GlobalSecondaryIndexes"] = Value::Array(v);
    }
    if let Some(st) = &meta.stream {
        if st.enabled {
            d["StreamSpecification"] =
                json!({"StreamEnabled": true, "StreamViewType": st.view_type});
        }
        d["LatestStreamLabel"] = json!(st.label);
        d["LatestStreamArn"] = json!(meta.stream_arn(st));
    }
    if let Some(sse) = &meta.sse {
        if sse.get("Enabled").and_then(Value::as_bool) == Some(true) {
            d["SSEDescription"] = json!({
                "Status": "ENABLED",
                "SSEType": sse.get("SSEType").and_then(Value::as_str).unwrap_or("KMS"),
                "KMSMasterKeyArn": sse.get("KMSMasterKeyId").and_then(Value::as_str).map(str::to_string)
                    .unwrap_or_else(|| format!("arn:aws:kms:{}:{}:key/virga-default", meta.region, meta.account)),
            });
        }
    }
    if let Some(tc) = &meta.table_class {
        d["TableClassSummary"] = json!({"TableClass": tc});
    }
    Ok(d)
}

pub fn describe_table(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = table_name(i)?;
    let meta = ddb
        .store
        .read(|r| state::load_table(r, &ctx.region, name_from_arn(name)))?
        .ok_or_else(|| no_table_named(name_from_arn(name)))?;
    Ok(obj(json!({"Table": describe(ddb, &meta, "ACTIVE", None)?})))
}

pub fn list_tables(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let limit = i.get("Limit").and_then(Value::as_u64).unwrap_or(100) as usize;
    let start = s(i, "ExclusiveStartTableName");
    let region_prefix = KeyBuf::new().str(&ctx.region).into_vec();
    let from = match start {
        Some(n) => state::table_key(&ctx.region, n),
        None => region_prefix.clone(),
    };
    let end = virga_store::prefix_end(&region_prefix).unwrap_or_default();
    let rows = ddb.store.read(|r| {
        r.scan(
            TABLES,
            if start.is_some() {
                Bound::Excluded(from.as_slice())
            } else {
                Bound::Included(from.as_slice())
            },
            Bound::Excluded(end.as_slice()),
            limit + 1,
            false,
        )
    })?;
    let mut names = Vec::new();
    for (_, v) in rows.iter().take(limit) {
        let m: TableMeta = state::decode(v)?;
        names.push(m.name);
    }
    let mut out = json!({ "TableNames": names });
    if names.len() == limit {
        out["LastEvaluatedTableName"] = json!(names.last());
    }
    Ok(obj(out))
}

pub fn delete_table(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = name_from_arn(table_name(i)?).to_string();
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let meta = ddb.store.transact(|t| {
        let meta =
            state::load_table(t, &ctx.region, &name)?.ok_or_else(|| no_table_named(&name))?;
        if meta.deletion_protection {
            return Err(validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            ));
        }
        let (start, end) = keys::table_bounds(meta.uid);
        for table in [ITEMS, INDEX, TTL] {
            t.delete_range(table, &start, &end)?;
        }
        t.delete(STATS, &state::stats_key(meta.uid))?;
        t.delete(TABLES, &state::table_key(&ctx.region, &name))?;
        if meta.stream.is_some() {
            let mut dropped = meta.clone();
            if let Some(st) = dropped.stream.as_mut() {
                st.enabled = false;
            }
            let key = KeyBuf::new()
                .str(&ctx.region)
                .str(&name)
                .u64(meta.uid)
                .into_vec();
            t.put(state::DROPPED, &key, &state::encode(&dropped)?)?;
        }
        Ok(meta)
    })?;
    forget_table(ddb, &ctx.region, &name);
    let mut desc = describe(ddb, &meta, "DELETING", None)?;
    desc["ItemCount"] = json!(0);
    desc["TableSizeBytes"] = json!(0);
    Ok(obj(json!({ "TableDescription": desc })))
}

pub fn update_table(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = name_from_arn(table_name(i)?).to_string();
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let now = ddb.clock.now_secs_f64();
    let (meta, created_index) = ddb.store.transact(|t| {
        let mut meta =
            state::load_table(t, &ctx.region, &name)?.ok_or_else(|| no_table_named(&name))?;
        let mut created_index = None;
        let mut changed = false;
        if let Some(defs) = i.get("AttributeDefinitions").and_then(Value::as_array) {
            for d in defs {
                let a = KeyAttr {
                    name: d.get("AttributeName").and_then(Value::as_str).unwrap_or("").into(),
                    ty: d.get("AttributeType").and_then(Value::as_str).unwrap_or("").into(),
                };
                if let Some(existing) = meta.attribute_definitions.iter().find(|x| x.name == a.name) {
                    if existing.ty != a.ty {
                        return Err(validation(format!(
                            "One or more parameter values were invalid: Cannot change the type of an existing attribute: {}",
                            a.name
                        )));
                    }
                } else {
                    meta.attribute_definitions.push(a);
                }
            }
        }
        if let Some(b) = s(i, "BillingMode") {
            if b != meta.billing_mode {
                meta.billing_mode = b.to_string();
                meta.billing_mode_updated = Some(now);
                changed = true;
                if b == "PAY_PER_REQUEST" {
                    meta.read_capacity = 0;
                    meta.write_capacity = 0;
                }
            }
        }
        if let Some(p) = i.get("ProvisionedThroughput") {
            if meta.billing_mode == "PAY_PER_REQUEST" {
                return Err(validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            let r = p.get("ReadCapacityUnits").and_then(Value::as_u64).unwrap_or(0);
            let w = p.get("WriteCapacityUnits").and_then(Value::as_u64).unwrap_or(0);
            if r == meta.read_capacity && w == meta.write_capacity && i.len() == 2 {
                return Err(validation(format!(
                    "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {r}. Requested ReadCapacityUnits: {r}. Current WriteCapacityUnits provisioned for the table: {w}. Requested WriteCapacityUnits: {w}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
                )));
            }
            meta.read_capacity = r;
            meta.write_capacity = w;
            changed = true;
        }
        if let Some(b) = i.get("DeletionProtectionEnabled").and_then(Value::as_bool) {
            meta.deletion_protection = b;
            changed = true;
        }
        if let Some(tc) = s(i, "TableClass") {
            meta.table_class = Some(tc.to_string());
            changed = true;
        }
        if let Some(sse) = i.get("SSESpecification") {
            meta.sse = Some(sse.clone());
            changed = true;
        }
        if let Some((enabled, view)) = parse_stream_spec(i.get("StreamSpecification"))? {
            changed = true;
            match (enabled, meta.active_stream().is_some()) {
                (true, true) => {
                    return Err(validation(format!(
                        "Table already has an enabled stream: TableName: {name}"
                    )))
                }
                (false, false) => {
                    return Err(validation(
                        "One or more parameter values were invalid: Stream is already disabled",
                    ))
                }
                (true, false) => {
                    if let Some(old) = meta.stream.take() {
                        meta.old_streams.push(old);
                    }
                    meta.stream = Some(new_stream(t, view, now)?);
                }
                (false, true) => {
                    if let Some(st) = meta.stream.as_mut() {
                        st.enabled = false;
                    }
                }
            }
        }
        for u in i
            .get("GlobalSecondaryIndexUpdates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            changed = true;
            if let Some(c) = u.get("Create") {
                let billing = meta.billing_mode.clone();
                let ix = parse_index(c, &meta.attribute_definitions, true, &meta.hash.name, &billing)?;
                if meta.index(&ix.name).is_some() {
                    return Err(validation(format!(
                        "One or more parameter values were invalid: Index name {} already exists",
                        ix.name
                    )));
                }
                if meta.gsis.len() >= MAX_GSIS {
                    return Err(validation(format!(
                        "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
                    )));
                }
                backfill_index(t, &meta, &ix)?;
                created_index = Some(ix.name.clone());
                meta.gsis.push(ix);
            } else if let Some(d) = u.get("Delete") {
                let ix_name = d.get("IndexName").and_then(Value::as_str).unwrap_or("");
                let Some(pos) = meta.gsis.iter().position(|g| g.name == ix_name) else {
                    return Err(AwsError::new(
                        400,
                        "ResourceNotFoundException",
                        format!("Requested resource not found: Index: {ix_name} not found"),
                    ));
                };
                let (start, end) = index_bounds(&meta, ix_name);
                t.delete_range(INDEX, &start, &end)?;
                meta.gsis.remove(pos);
            } else if let Some(up) = u.get("Update") {
                let ix_name = up.get("IndexName").and_then(Value::as_str).unwrap_or("");
                let Some(g) = meta.gsis.iter_mut().find(|g| g.name == ix_name) else {
                    return Err(AwsError::new(
                        400,
                        "ResourceNotFoundException",
                        format!("Requested resource not found: Index: {ix_name} not found"),
                    ));
                };
                if let Some(p) = up.get("ProvisionedThroughput") {
                    g.read_capacity = p.get("ReadCapacityUnits").and_then(Value::as_u64);
                    g.write_capacity = p.get("WriteCapacityUnits").and_then(Value::as_u64);
                }
            }
        }
        if !changed {
            return Err(validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        state::save_table(t, &meta)?;
        Ok((meta, created_index))
    })?;
    forget_table(ddb, &ctx.region, &name);
    let desc = describe(ddb, &meta, "UPDATING", created_index.as_deref())?;
    Ok(obj(json!({ "TableDescription": desc })))
}

/// Calls `f` with the store key and item of every item of a table, in chunks.
fn for_each_item(
    t: &mut dyn KvTxn,
    meta: &TableMeta,
    mut f: impl FnMut(&mut dyn KvTxn, &[u8], Item) -> AwsResult<()>,
) -> AwsResult<()> {
    let (start, end) = keys::table_bounds(meta.uid);
    let mut from = start;
    loop {
        let rows = t.scan(
            ITEMS,
            Bound::Excluded(from.as_slice()),
            Bound::Excluded(end.as_slice()),
            1000,
            false,
        )?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        let last = last.clone();
        for (k, v) in &rows {
            f(t, k, keys::decode_item(v)?)?;
        }
        from = last;
    }
}

/// Writes the entries of a new index for every existing item.
fn backfill_index(t: &mut dyn KvTxn, meta: &TableMeta, ix: &IndexMeta) -> AwsResult<()> {
    for_each_item(t, meta, |t, _, item| {
        match index_store_key(meta, ix, &item) {
            Some(k) => t.put(
                INDEX,
                &k,
                &encode_item(&project_for_index(meta, ix, &item))?,
            ),
            None => Ok(()),
        }
    })
}

/// Writes the TTL index entries of every existing item (TTL was just enabled).
fn backfill_ttl(t: &mut dyn KvTxn, meta: &TableMeta, attr: &str) -> AwsResult<()> {
    for_each_item(t, meta, |t, k, item| {
        match keys::ttl_key(meta, attr, &item, k) {
            Some(tk) => t.put(TTL, &tk, k),
            None => Ok(()),
        }
    })
}

fn parse_table_arn(arn: &str) -> AwsResult<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "dynamodb" {
        return Err(validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    }
    let name = parts[5]
        .strip_prefix("table/")
        .map(|n| n.split('/').next().unwrap_or(n))
        .ok_or_else(|| {
            validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        })?;
    Ok((parts[3].to_string(), name.to_string()))
}

fn with_table_by_arn<T>(
    ddb: &DynamoDb,
    arn: &str,
    f: impl FnOnce(&mut TableMeta) -> AwsResult<T>,
    write: bool,
) -> AwsResult<T> {
    let (region, name) = parse_table_arn(arn)?;
    let not_found = || {
        AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Requested resource not found: ResourcArn: {arn} not found"),
        )
    };
    if !write {
        let mut meta = ddb
            .store
            .read(|r| state::load_table(r, &region, &name))?
            .ok_or_else(not_found)?;
        return f(&mut meta);
    }
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let out = ddb.store.transact(|t| {
        let mut meta = state::load_table(t, &region, &name)?.ok_or_else(not_found)?;
        let out = f(&mut meta)?;
        state::save_table(t, &meta)?;
        Ok(out)
    })?;
    forget_table(ddb, &region, &name);
    Ok(out)
}

pub fn tag_resource(ddb: &DynamoDb, _ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "ResourceArn").unwrap_or("");
    let tags = tag_list(i.get("Tags"))?;
    with_table_by_arn(
        ddb,
        arn,
        |meta| {
            for (k, v) in tags {
                match meta.tags.iter_mut().find(|(x, _)| *x == k) {
                    Some(e) => e.1 = v,
                    None => meta.tags.push((k, v)),
                }
            }
            if meta.tags.len() > 50 {
                return Err(validation("One or more parameter values were invalid: The number of tags exceeds the limit of 50"));
            }
            Ok(())
        },
        true,
    )?;
    Ok(Map::new())
}

pub fn untag_resource(ddb: &DynamoDb, _ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "ResourceArn").unwrap_or("");
    let keys = virga_protocol::string_list(i, "TagKeys");
    with_table_by_arn(
        ddb,
        arn,
        |meta| {
            meta.tags.retain(|(k, _)| !keys.contains(k));
            Ok(())
        },
        true,
    )?;
    Ok(Map::new())
}

pub fn list_tags(ddb: &DynamoDb, _ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let arn = s(i, "ResourceArn").unwrap_or("");
    let tags = with_table_by_arn(ddb, arn, |meta| Ok(meta.tags.clone()), false)?;
    let list: Vec<Value> = tags
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(obj(json!({ "Tags": list })))
}

pub fn update_ttl(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let name = name_from_arn(table_name(i)?).to_string();
    let spec = i
        .get("TimeToLiveSpecification")
        .cloned()
        .unwrap_or(json!({}));
    let enabled = spec
        .get("Enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let attr = spec
        .get("AttributeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    ddb.store.transact(|t| {
        let mut meta =
            state::load_table(t, &ctx.region, &name)?.ok_or_else(crate::errors::no_table)?;
        match (enabled, meta.ttl_enabled) {
            (true, true) if meta.ttl_attribute.as_deref() != Some(attr.as_str()) => {
                return Err(validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {}",
                    meta.ttl_attribute.clone().unwrap_or_default()
                )))
            }
            (true, true) => return Err(validation("TimeToLive is already enabled")),
            (false, false) => return Err(validation("TimeToLive is already disabled")),
            (false, true) if meta.ttl_attribute.as_deref() != Some(attr.as_str()) => {
                return Err(validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {}",
                    meta.ttl_attribute.clone().unwrap_or_default()
                )))
            }
            _ => {}
        }
        let (start, end) = keys::table_bounds(meta.uid);
        t.delete_range(TTL, &start, &end)?;
        if enabled {
            meta.ttl_attribute = Some(attr.clone());
            meta.ttl_enabled = true;
            backfill_ttl(t, &meta, &attr)?;
        } else {
            meta.ttl_attribute = None;
            meta.ttl_enabled = false;
        }
        state::save_table(t, &meta)
    })?;
    forget_table(ddb, &ctx.region, &name);
    ddb.ttl_wake.notify_one();
    Ok(obj(json!({
        "TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}
    })))
}

pub fn describe_ttl(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = require_table(ddb, ctx, table_name(i)?)?;
    let desc = match (&meta.ttl_attribute, meta.ttl_enabled) {
        (Some(a), true) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": a}),
        _ => json!({"TimeToLiveStatus": "DISABLED"}),
    };
    Ok(obj(json!({ "TimeToLiveDescription": desc })))
}

pub fn describe_limits() -> Output {
    obj(json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }))
}

pub fn describe_endpoints(ctx: &RequestContext) -> Output {
    let host = if ctx.host.is_empty() {
        ctx.listen_addr.clone()
    } else {
        ctx.host.clone()
    };
    obj(json!({"Endpoints": [{"Address": host, "CachePeriodInMinutes": 1440}]}))
}

pub fn describe_continuous_backups(
    ddb: &DynamoDb,
    ctx: &RequestContext,
    i: &Input,
) -> AwsResult<Output> {
    let name = table_name(i)?;
    ddb.store
        .read(|r| state::load_table(r, &ctx.region, name_from_arn(name)))?
        .ok_or_else(|| {
            AwsError::new(
                400,
                "TableNotFoundException",
                format!("Table not found: {}", name_from_arn(name)),
            )
        })?;
    Ok(obj(json!({
        "ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
        }
    })))
}
