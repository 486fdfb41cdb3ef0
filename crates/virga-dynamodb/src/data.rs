//! Single-item operations and their batch forms: PutItem, GetItem, UpdateItem,
//! DeleteItem, BatchGetItem, BatchWriteItem.

use crate::control::{name_from_arn, relock_table, require_table, s, table_name};
use crate::errors::{condition_failed, expr, validation};
use crate::keys::{self, key_of_item, parse_key, write_item, Actor, MAX_ITEM};
use crate::state::{TableMeta, ITEMS};
use crate::{DynamoDb, Input, Output};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use virga_core::{AwsResult, RequestContext};
use virga_dynamodb_expr::{
    item_from_json, item_size, item_to_json, legacy, parse_condition, parse_projection,
    parse_update, project, AttrValue, Condition, Item, Path, Substitutions, Update,
};
use virga_store::KvTxn;

pub fn parse_item(m: &Map<String, Value>) -> AwsResult<Item> {
    let item = item_from_json(m).map_err(validation)?;
    check_item_shape(&item)?;
    Ok(item)
}

/// DynamoDB's limits on an item's shape: attribute names of 1..65535 bytes and at
/// most 32 levels of nested maps and lists.
pub fn check_item_shape(item: &Item) -> AwsResult<()> {
    fn depth(v: &AttrValue) -> usize {
        match v {
            AttrValue::M(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            AttrValue::L(l) => 1 + l.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    fn names(v: &AttrValue) -> AwsResult<()> {
        if let AttrValue::M(m) = v {
            for (k, x) in m {
                check_name(k)?;
                names(x)?;
            }
        } else if let AttrValue::L(l) = v {
            for x in l {
                names(x)?;
            }
        }
        Ok(())
    }
    for (k, v) in item {
        check_name(k)?;
        names(v)?;
        if depth(v) >= MAX_NESTING {
            return Err(nesting_error());
        }
    }
    Ok(())
}

/// Maps and lists may nest 32 levels deep (the top-level attribute counts as one).
const MAX_NESTING: usize = 32;

pub fn nesting_error() -> virga_core::AwsError {
    validation("Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit")
}

fn check_name(name: &str) -> AwsResult<()> {
    if name.is_empty() {
        return Err(validation(
            "One or more parameter values were invalid: An attribute name may not be empty",
        ));
    }
    if name.len() >= 65536 {
        return Err(validation(
            "Attribute name is too large, must be less than 65536 bytes",
        ));
    }
    Ok(())
}

fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The request's ExpressionAttributeNames/Values.
pub fn substitutions(i: &Input) -> AwsResult<Substitutions> {
    if let Some(names) = i.get("ExpressionAttributeNames").and_then(Value::as_object) {
        for (k, v) in names {
            match v.as_str() {
                Some("") => {
                    return Err(validation(format!(
                        "ExpressionAttributeNames contains invalid value: Empty attribute name for key {k}"
                    )))
                }
                Some(n) if n.len() >= 65536 => {
                    return Err(validation(
                        "Attribute name is too large, must be less than 65536 bytes",
                    ))
                }
                _ => {}
            }
        }
    }
    Substitutions::new(
        i.get("ExpressionAttributeNames").and_then(Value::as_object),
        i.get("ExpressionAttributeValues")
            .and_then(Value::as_object),
    )
    .map_err(expr)
}

/// Rejects requests that mix legacy parameters with expressions, as AWS does.
pub fn no_mixing(i: &Input, legacy_names: &[&str], expression_names: &[&str]) -> AwsResult<()> {
    let l: Vec<&str> = legacy_names
        .iter()
        .copied()
        .filter(|n| i.contains_key(*n))
        .collect();
    let e: Vec<&str> = expression_names
        .iter()
        .copied()
        .filter(|n| i.contains_key(*n))
        .collect();
    if !l.is_empty() && !e.is_empty() {
        return Err(validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            l.join(", "),
            e.join(", ")
        )));
    }
    if e.is_empty() {
        for (p, what) in [
            ("ExpressionAttributeNames", "ExpressionAttributeNames"),
            ("ExpressionAttributeValues", "ExpressionAttributeValues"),
        ] {
            if i.contains_key(p) {
                return Err(validation(format!(
                    "{what} can only be specified when using expressions"
                )));
            }
        }
    }
    Ok(())
}

/// The condition of a write: ConditionExpression, or the legacy Expected.
pub fn write_condition(i: &Input, subs: &Substitutions) -> AwsResult<Option<Condition>> {
    if let Some(text) = s(i, "ConditionExpression") {
        return parse_condition(text, "ConditionExpression", subs)
            .map(Some)
            .map_err(expr);
    }
    if let Some(expected) = i.get("Expected").and_then(Value::as_object) {
        return legacy::condition_from_expected(expected, s(i, "ConditionalOperator"))
            .map(Some)
            .map_err(expr);
    }
    Ok(None)
}

/// The projection of a read: ProjectionExpression, or the legacy AttributesToGet.
pub fn read_projection(i: &Input, subs: &Substitutions) -> AwsResult<Option<Vec<Path>>> {
    if let Some(text) = s(i, "ProjectionExpression") {
        return parse_projection(text, subs).map(Some).map_err(expr);
    }
    let names = virga_protocol::string_list(i, "AttributesToGet");
    if !names.is_empty() {
        let mut seen = HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                return Err(validation(format!(
                    "One or more parameter values were invalid: Duplicate value in attribute name: {n}"
                )));
            }
        }
        return Ok(Some(legacy::projection_from_attributes_to_get(&names)));
    }
    Ok(None)
}

fn check_return_values(i: &Input, allowed: &[&str]) -> AwsResult<String> {
    let rv = s(i, "ReturnValues").unwrap_or("NONE").to_string();
    if !allowed.contains(&rv.as_str()) {
        return Err(validation(if allowed.len() == 2 {
            "ReturnValues can only be ALL_OLD or NONE"
        } else {
            "Return values set to invalid value"
        }));
    }
    Ok(rv)
}

fn check_size(item: &Item) -> AwsResult<()> {
    if item_size(item) > MAX_ITEM {
        return Err(validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(())
}

/// Capacity units a read or write of `bytes` consumes.
pub fn capacity_units(bytes: usize, write: bool, consistent: bool) -> f64 {
    if write {
        bytes.div_ceil(1024).max(1) as f64
    } else {
        let units = bytes.div_ceil(4096).max(1) as f64;
        if consistent {
            units
        } else {
            units / 2.0
        }
    }
}

/// The ConsumedCapacity member for ReturnConsumedCapacity TOTAL or INDEXES.
/// `item` (for writes) decides which GSIs the write touched: those whose key it has.
pub fn consumed(
    i: &Input,
    meta: &TableMeta,
    units: f64,
    write: bool,
    item: Option<&Item>,
) -> Option<Value> {
    match s(i, "ReturnConsumedCapacity") {
        Some("TOTAL") => Some(json!({"TableName": meta.name, "CapacityUnits": units})),
        Some("INDEXES") => {
            let mut v = json!({
                "TableName": meta.name,
                "CapacityUnits": units,
                "Table": {"CapacityUnits": units},
            });
            let touched: Vec<&str> = match (write, item) {
                (true, Some(item)) => meta
                    .gsis
                    .iter()
                    .filter(|x| crate::keys::index_store_key(meta, x, item).is_some())
                    .map(|x| x.name.as_str())
                    .collect(),
                _ => Vec::new(),
            };
            if !touched.is_empty() {
                let g: Map<String, Value> = touched
                    .iter()
                    .map(|n| (n.to_string(), json!({"CapacityUnits": units})))
                    .collect();
                v["GlobalSecondaryIndexes"] = Value::Object(g);
                v["CapacityUnits"] = json!(units * (1 + touched.len()) as f64);
            }
            Some(v)
        }
        _ => None,
    }
}

fn collection_metrics(i: &Input, meta: &TableMeta, item: &Item) -> Option<Value> {
    if s(i, "ReturnItemCollectionMetrics") != Some("SIZE") || meta.lsis.is_empty() {
        return None;
    }
    let hash = item.get(&meta.hash.name)?;
    Some(json!({
        "ItemCollectionKey": {meta.hash.name.clone(): hash.to_json()},
        "SizeEstimateRangeGB": [0.0, 1.0],
    }))
}

/// Adds a single-item write's ConsumedCapacity and ItemCollectionMetrics, when asked.
fn write_metrics(
    i: &Input,
    meta: &TableMeta,
    mut out: Output,
    size: usize,
    index_item: Option<&Item>,
    item: &Item,
) -> Output {
    if let Some(c) = consumed(i, meta, capacity_units(size, true, true), true, index_item) {
        out.insert("ConsumedCapacity".into(), c);
    }
    if let Some(m) = collection_metrics(i, meta, item) {
        out.insert("ItemCollectionMetrics".into(), m);
    }
    out
}

/// Evaluates a write's condition against the stored item (an empty item when there
/// is none): ConditionalCheckFailedException when it does not hold.
fn check_write_condition(i: &Input, cond: Option<&Condition>, old: Option<&Item>) -> AwsResult<()> {
    let Some(c) = cond else {
        return Ok(());
    };
    if c.eval(old.unwrap_or(&Item::new())).map_err(expr)? {
        Ok(())
    } else {
        Err(failed(i, old))
    }
}

fn failed(i: &Input, old: Option<&Item>) -> virga_core::AwsError {
    let e = condition_failed();
    match (s(i, "ReturnValuesOnConditionCheckFailure"), old) {
        (Some("ALL_OLD"), Some(o)) => e.with_json("Item", Value::Object(item_to_json(o))),
        _ => e,
    }
}

pub fn load_item(t: &dyn virga_store::KvRead, key: &[u8]) -> AwsResult<Option<Item>> {
    t.get(ITEMS, key)?
        .map(|v| keys::decode_item(&v))
        .transpose()
}

fn table_for(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<TableMeta> {
    require_table(ddb, ctx, table_name(i)?)
}

pub fn put_item(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = table_for(ddb, ctx, i)?;
    let item = parse_item(
        i.get("Item")
            .and_then(Value::as_object)
            .unwrap_or(&Map::new()),
    )?;
    let key = key_of_item(&meta, &item)?;
    check_size(&item)?;
    no_mixing(i, &["Expected"], &["ConditionExpression"])?;
    let subs = substitutions(i)?;
    let cond = write_condition(i, &subs)?;
    subs.check_unused().map_err(expr)?;
    let rv = check_return_values(i, &["NONE", "ALL_OLD"])?;
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    // Indexes, TTL or the stream may have changed since validation.
    let meta = relock_table(ddb, ctx, &meta)?;
    let old = ddb.store.transact(|t| {
        let old = load_item(t, &key)?;
        check_write_condition(i, cond.as_ref(), old.as_ref())?;
        write_item(ddb, t, &meta, &key, old.as_ref(), Some(&item), Actor::User)?;
        Ok(old)
    })?;
    let mut out = Map::new();
    if rv == "ALL_OLD" {
        if let Some(o) = &old {
            out.insert("Attributes".into(), Value::Object(item_to_json(o)));
        }
    }
    let size = item_size(&item).max(old.as_ref().map_or(0, item_size));
    Ok(write_metrics(i, &meta, out, size, Some(&item), &item))
}

pub fn get_item(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = table_for(ddb, ctx, i)?;
    let (_, key) = parse_key(&meta, i.get("Key"))?;
    no_mixing(i, &["AttributesToGet"], &["ProjectionExpression"])?;
    let subs = substitutions(i)?;
    let projection = read_projection(i, &subs)?;
    subs.check_unused().map_err(expr)?;
    let item = ddb.store.read(|r| load_item(r, &key))?;
    let mut out = Map::new();
    let consistent = i.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
    let size = item.as_ref().map_or(0, item_size);
    if let Some(item) = item {
        let shown = match &projection {
            Some(p) => project(&item, p),
            None => item,
        };
        out.insert("Item".into(), Value::Object(item_to_json(&shown)));
    }
    if let Some(c) = consumed(
        i,
        &meta,
        capacity_units(size, false, consistent),
        false,
        None,
    ) {
        out.insert("ConsumedCapacity".into(), c);
    }
    Ok(out)
}

/// The parsed update of an UpdateItem: UpdateExpression, or legacy AttributeUpdates.
fn parse_item_update(i: &Input, subs: &Substitutions) -> AwsResult<Option<Update>> {
    if let Some(text) = s(i, "UpdateExpression") {
        return parse_update(text, subs).map(Some).map_err(expr);
    }
    if let Some(u) = i.get("AttributeUpdates").and_then(Value::as_object) {
        return legacy::update_from_attribute_updates(u)
            .map(Some)
            .map_err(expr);
    }
    Ok(None)
}

/// Applies an update to an item (or to the bare key when the item does not exist).
pub fn apply_update(
    meta: &TableMeta,
    key_item: &Item,
    old: Option<&Item>,
    update: Option<&Update>,
) -> AwsResult<Item> {
    let mut new = old.cloned().unwrap_or_else(|| key_item.clone());
    if let Some(u) = update {
        for name in u.top_level_attributes() {
            if meta.key_names().contains(&name.as_str()) {
                return Err(validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
                )));
            }
        }
        u.apply(&mut new).map_err(expr)?;
        check_item_shape(&new)?;
    }
    if item_size(&new) > MAX_ITEM {
        return Err(validation(
            "Item size to update has exceeded the maximum allowed size",
        ));
    }
    key_of_item(meta, &new)?;
    Ok(new)
}

pub fn update_item(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = table_for(ddb, ctx, i)?;
    let (key_item, key) = parse_key(&meta, i.get("Key"))?;
    no_mixing(
        i,
        &["Expected", "AttributeUpdates"],
        &["ConditionExpression", "UpdateExpression"],
    )?;
    let subs = substitutions(i)?;
    let update = parse_item_update(i, &subs)?;
    let cond = write_condition(i, &subs)?;
    subs.check_unused().map_err(expr)?;
    let rv = check_return_values(
        i,
        &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
    )?;
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let meta = relock_table(ddb, ctx, &meta)?;
    let (old, new) = ddb.store.transact(|t| {
        let old = load_item(t, &key)?;
        check_write_condition(i, cond.as_ref(), old.as_ref())?;
        let new = apply_update(&meta, &key_item, old.as_ref(), update.as_ref())?;
        // An update that only removes (REMOVE, DELETE from a set) does not create a
        // missing item, as on AWS.
        let creates_nothing = old.is_none() && update.is_some() && new == key_item;
        if !creates_nothing {
            write_item(ddb, t, &meta, &key, old.as_ref(), Some(&new), Actor::User)?;
        }
        Ok((old, (!creates_nothing).then_some(new)))
    })?;
    let mut out = Map::new();
    // UPDATED_OLD/UPDATED_NEW: just the document paths the update wrote.
    let targets: Vec<Path> = update
        .as_ref()
        .map(|u| u.target_paths().into_iter().cloned().collect())
        .unwrap_or_default();
    let pick = |item: &Item| -> Item { project(item, &targets) };
    let shown = match rv.as_str() {
        "ALL_OLD" => old.clone(),
        "ALL_NEW" => new.clone(),
        "UPDATED_OLD" => old.as_ref().map(pick),
        "UPDATED_NEW" => new.as_ref().map(pick),
        _ => None,
    };
    let new = new.unwrap_or(key_item);
    if let Some(a) = shown.filter(|a| !a.is_empty()) {
        out.insert("Attributes".into(), Value::Object(item_to_json(&a)));
    }
    let size = item_size(&new).max(old.as_ref().map_or(0, item_size));
    Ok(write_metrics(i, &meta, out, size, Some(&new), &new))
}

pub fn delete_item(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = table_for(ddb, ctx, i)?;
    let (key_item, key) = parse_key(&meta, i.get("Key"))?;
    no_mixing(i, &["Expected"], &["ConditionExpression"])?;
    let subs = substitutions(i)?;
    let cond = write_condition(i, &subs)?;
    subs.check_unused().map_err(expr)?;
    let rv = check_return_values(i, &["NONE", "ALL_OLD"])?;
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    // Indexes, TTL or the stream may have changed since validation.
    let meta = relock_table(ddb, ctx, &meta)?;
    let old = ddb.store.transact(|t| {
        let old = load_item(t, &key)?;
        check_write_condition(i, cond.as_ref(), old.as_ref())?;
        write_item(ddb, t, &meta, &key, old.as_ref(), None, Actor::User)?;
        Ok(old)
    })?;
    let mut out = Map::new();
    if rv == "ALL_OLD" {
        if let Some(o) = &old {
            out.insert("Attributes".into(), Value::Object(item_to_json(o)));
        }
    }
    let size = old.as_ref().map_or(0, item_size);
    let written = old.as_ref().unwrap_or(&key_item);
    Ok(write_metrics(i, &meta, out, size, old.as_ref(), written))
}

const MAX_BATCH_GET: usize = 100;
const MAX_BATCH_WRITE: usize = 25;

fn request_items(i: &Input) -> AwsResult<&Map<String, Value>> {
    i.get("RequestItems")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            validation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
        })
}

pub fn batch_get_item(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let requests = request_items(i)?;
    let total: usize = requests
        .values()
        .map(|r| r.get("Keys").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    if total > MAX_BATCH_GET {
        return Err(validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    struct Plan {
        meta: TableMeta,
        keys: Vec<Vec<u8>>,
        projection: Option<Vec<Path>>,
        consistent: bool,
    }
    let mut plans = Vec::new();
    for (name, req) in requests {
        let req = req.as_object().cloned().unwrap_or_default();
        let meta = require_table(ddb, ctx, name)?;
        no_mixing(&req, &["AttributesToGet"], &["ProjectionExpression"])?;
        let subs = substitutions(&req)?;
        let projection = read_projection(&req, &subs)?;
        subs.check_unused().map_err(expr)?;
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for k in req
            .get("Keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (_, key) = parse_key(&meta, Some(k))?;
            if !seen.insert(key.clone()) {
                return Err(validation("Provided list of item keys contains duplicates"));
            }
            keys.push(key);
        }
        plans.push(Plan {
            meta,
            keys,
            projection,
            consistent: req.get("ConsistentRead").and_then(Value::as_bool) == Some(true),
        });
    }
    let mut responses = Map::new();
    let mut capacity = Vec::new();
    ddb.store.read(|r| {
        for p in &plans {
            let mut items = Vec::new();
            let mut units = 0.0;
            for k in &p.keys {
                if let Some(item) = load_item(r, k)? {
                    units += capacity_units(item_size(&item), false, p.consistent);
                    let shown = match &p.projection {
                        Some(pr) => project(&item, pr),
                        None => item,
                    };
                    items.push(Value::Object(item_to_json(&shown)));
                }
            }
            if let Some(c) = consumed(i, &p.meta, units, false, None) {
                capacity.push(c);
            }
            responses.insert(p.meta.name.clone(), Value::Array(items));
        }
        Ok(())
    })?;
    let mut out = obj(json!({"Responses": responses, "UnprocessedKeys": {}}));
    if !capacity.is_empty() {
        out.insert("ConsumedCapacity".into(), Value::Array(capacity));
    }
    Ok(out)
}

enum WriteOp {
    Put(Item),
    Delete,
}

/// One table's writes of a BatchWriteItem: (store key, write).
type TableWrites = (TableMeta, Vec<(Vec<u8>, WriteOp)>);

pub fn batch_write_item(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let requests = request_items(i)?;
    let total: usize = requests
        .values()
        .map(|r| r.as_array().map_or(0, Vec::len))
        .sum();
    if total > MAX_BATCH_WRITE {
        return Err(validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }
    let mut writes: Vec<TableWrites> = Vec::new();
    for (name, reqs) in requests {
        let meta = require_table(ddb, ctx, name_from_arn(name))?;
        let mut ops = Vec::new();
        let mut seen = HashSet::new();
        for r in reqs.as_array().into_iter().flatten() {
            let (key, op) = if let Some(p) = r.get("PutRequest") {
                let item = parse_item(
                    p.get("Item")
                        .and_then(Value::as_object)
                        .unwrap_or(&Map::new()),
                )?;
                let key = key_of_item(&meta, &item).map_err(|e| {
                    if e.message.contains("Type mismatch for key") {
                        validation("The provided key element does not match the schema")
                    } else {
                        e
                    }
                })?;
                check_size(&item)?;
                (key, WriteOp::Put(item))
            } else if let Some(d) = r.get("DeleteRequest") {
                let (_, key) = parse_key(&meta, d.get("Key"))?;
                (key, WriteOp::Delete)
            } else {
                return Err(validation(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ));
            };
            if !seen.insert(key.clone()) {
                return Err(validation("Provided list of item keys contains duplicates"));
            }
            ops.push((key, op));
        }
        writes.push((meta, ops));
    }
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    for (meta, _) in writes.iter_mut() {
        *meta = relock_table(ddb, ctx, meta)?;
    }
    let sizes = ddb.store.transact(|t| {
        let mut sizes = Vec::new();
        for (meta, ops) in &writes {
            let mut units = 0.0;
            for (key, op) in ops {
                let old = load_item(t, key)?;
                let new = match op {
                    WriteOp::Put(item) => Some(item),
                    WriteOp::Delete => None,
                };
                units += capacity_units(
                    new.map_or(0, item_size)
                        .max(old.as_ref().map_or(0, item_size)),
                    true,
                    true,
                );
                write_item(
                    ddb,
                    t as &mut dyn KvTxn,
                    meta,
                    key,
                    old.as_ref(),
                    new,
                    Actor::User,
                )?;
            }
            sizes.push(units);
        }
        Ok(sizes)
    })?;
    let mut out = obj(json!({"UnprocessedItems": {}}));
    let capacity: Vec<Value> = writes
        .iter()
        .zip(sizes)
        .filter_map(|((meta, _), units)| consumed(i, meta, units, true, None))
        .collect();
    if !capacity.is_empty() {
        out.insert("ConsumedCapacity".into(), Value::Array(capacity));
    }
    Ok(out)
}
