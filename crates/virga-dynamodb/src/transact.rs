//! TransactWriteItems and TransactGetItems: all-or-nothing over any tables, with
//! per-action cancellation reasons and ClientRequestToken idempotency.

use crate::control::{name_from_arn, require_table, s};
use crate::data::{
    apply_update, capacity_units, consumed, load_item, no_mixing, read_projection, substitutions,
    write_condition,
};
use crate::errors::{expr, validation};
use crate::keys::{key_of_item, parse_key, write_item, Actor, MAX_ITEM};
use crate::state::{self, TableMeta, TokenRecord, TOKENS};
use crate::{DynamoDb, Input, Output};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_dynamodb_expr::{
    item_size, item_to_json, parse_update, project, Condition, Item, Update,
};
use virga_store::KeyBuf;

/// How long a ClientRequestToken is remembered (AWS: 10 minutes).
const TOKEN_WINDOW_SECS: f64 = 600.0;

enum Action {
    Check,
    Put(Item),
    Delete,
    Update(Option<Update>),
}

struct Planned {
    meta: TableMeta,
    key_item: Item,
    key: Vec<u8>,
    cond: Option<Condition>,
    action: Action,
    return_old_on_failure: bool,
}

fn plan(ddb: &DynamoDb, ctx: &RequestContext, entry: &Value) -> AwsResult<Planned> {
    let (kind, body) = entry
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| {
            validation("TransactItems can only contain one of Check, Put, Update or Delete")
        })?;
    let body = body.as_object().cloned().unwrap_or_default();
    let name = s(&body, "TableName").unwrap_or("");
    let meta = require_table(ddb, ctx, name_from_arn(name))?;
    no_mixing(&body, &[], &["ConditionExpression", "UpdateExpression"])?;
    let subs = substitutions(&body)?;
    let cond = write_condition(&body, &subs)?;
    let (key_item, key, action) = match kind.as_str() {
        "Put" => {
            let item = crate::data::parse_item(
                body.get("Item")
                    .and_then(Value::as_object)
                    .unwrap_or(&Map::new()),
            )?;
            let key = key_of_item(&meta, &item)?;
            if item_size(&item) > MAX_ITEM {
                return Err(validation(
                    "Item size has exceeded the maximum allowed size",
                ));
            }
            (crate::keys::key_item(&meta, &item), key, Action::Put(item))
        }
        "Delete" | "ConditionCheck" | "Update" => {
            let (key_item, key) = parse_key(&meta, body.get("Key"))?;
            let action = match kind.as_str() {
                "Delete" => Action::Delete,
                "ConditionCheck" => {
                    if cond.is_none() {
                        return Err(validation("1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null"));
                    }
                    Action::Check
                }
                _ => Action::Update(match s(&body, "UpdateExpression") {
                    Some(text) => Some(parse_update(text, &subs).map_err(expr)?),
                    None => None,
                }),
            };
            (key_item, key, action)
        }
        other => {
            return Err(validation(format!(
                "TransactItems can only contain one of Check, Put, Update or Delete: {other}"
            )))
        }
    };
    subs.check_unused().map_err(expr)?;
    Ok(Planned {
        meta,
        key_item,
        key,
        cond,
        action,
        return_old_on_failure: s(&body, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD"),
    })
}

fn canceled(reasons: Vec<Value>) -> AwsError {
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r.get("Code").and_then(Value::as_str).unwrap_or("None"))
        .collect();
    AwsError::new(
        400,
        "TransactionCanceledException",
        format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
    )
    .with_json("CancellationReasons", Value::Array(reasons))
}

pub fn transact_write(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let entries = i
        .get("TransactItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut planned = Vec::with_capacity(entries.len());
    let mut invalid = Vec::new();
    for (idx, e) in entries.iter().enumerate() {
        match plan(ddb, ctx, e) {
            Ok(p) => planned.push(p),
            // A key of the wrong type cancels the transaction with a reason, as on
            // AWS; other bad input fails the whole request.
            Err(err)
                if err.message.contains("Type mismatch for key")
                    || err.message == "The provided key element does not match the schema" =>
            {
                invalid.push((idx, err.message));
            }
            Err(err) => return Err(err),
        }
    }
    if !invalid.is_empty() {
        let mut reasons: Vec<Value> = entries.iter().map(|_| json!({"Code": "None"})).collect();
        for (idx, message) in invalid {
            reasons[idx] = json!({"Code": "ValidationError", "Message": message});
        }
        return Err(canceled(reasons));
    }
    let mut seen = HashSet::new();
    for p in &planned {
        if !seen.insert((p.meta.uid, p.key.clone())) {
            return Err(validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
    }
    let token = s(i, "ClientRequestToken").map(str::to_string);
    let digest = hex::encode(Sha256::digest(
        serde_json::to_vec(&Value::Array(entries.clone())).unwrap_or_default(),
    ));
    let now = ddb.clock.now_secs_f64();
    let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    for p in planned.iter_mut() {
        p.meta = crate::control::relock_table(ddb, ctx, &p.meta)?;
    }
    let sizes = ddb.store.transact(|t| {
        if let Some(tok) = &token {
            let key = KeyBuf::new().str(tok).into_vec();
            if let Some(v) = t.get(TOKENS, &key)? {
                let rec: TokenRecord = state::decode(&v)?;
                if rec.at + TOKEN_WINDOW_SECS > now {
                    if rec.digest != digest {
                        return Err(AwsError::new(
                            400,
                            "IdempotentParameterMismatchException",
                            "Specified idempotent token was used with different request parameters within the 10 minute idempotency window",
                        ));
                    }
                    // A retry of a transaction that already succeeded: nothing to do.
                    return Ok(Vec::new());
                }
            }
        }
        let mut olds = Vec::with_capacity(planned.len());
        let mut reasons = Vec::with_capacity(planned.len());
        let mut failed = false;
        for p in &planned {
            let old = load_item(t, &p.key)?;
            let ok = match &p.cond {
                Some(c) => c.eval(old.as_ref().unwrap_or(&Item::new())).map_err(expr)?,
                None => true,
            };
            if ok {
                reasons.push(json!({"Code": "None"}));
            } else {
                failed = true;
                let mut r = json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
                if let (true, Some(o)) = (p.return_old_on_failure, &old) {
                    r["Item"] = Value::Object(item_to_json(o));
                }
                reasons.push(r);
            }
            olds.push(old);
        }
        if failed {
            return Err(canceled(reasons));
        }
        let mut sizes = Vec::new();
        for (idx, (p, old)) in planned.iter().zip(&olds).enumerate() {
            let new = match &p.action {
                Action::Check => {
                    sizes.push((idx, 0usize));
                    continue;
                }
                Action::Put(item) => Some(item.clone()),
                Action::Delete => None,
                Action::Update(u) => match apply_update(&p.meta, &p.key_item, old.as_ref(), u.as_ref()) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        let mut reasons: Vec<Value> = planned.iter().map(|_| json!({"Code": "None"})).collect();
                        reasons[idx] = json!({"Code": "ValidationError", "Message": e.message});
                        return Err(canceled(reasons));
                    }
                },
            };
            // As in UpdateItem: an update that only removes creates no item.
            if old.is_none() && matches!(p.action, Action::Update(Some(_))) && new.as_ref() == Some(&p.key_item) {
                sizes.push((idx, 0));
                continue;
            }
            let size = new.as_ref().map_or(0, item_size).max(old.as_ref().map_or(0, item_size));
            write_item(ddb, t, &p.meta, &p.key, old.as_ref(), new.as_ref(), Actor::User)?;
            sizes.push((idx, size));
        }
        if let Some(tok) = &token {
            let key = KeyBuf::new().str(tok).into_vec();
            t.put(TOKENS, &key, &state::encode(&TokenRecord { digest: digest.clone(), at: now })?)?;
        }
        Ok(sizes)
    })?;
    let mut out = Map::new();
    if s(i, "ReturnConsumedCapacity").is_some_and(|v| v != "NONE") {
        let mut per_table: Vec<(String, f64, &TableMeta)> = Vec::new();
        for (idx, size) in sizes {
            let p = &planned[idx];
            let units = 2.0 * capacity_units(size, true, true);
            match per_table.iter_mut().find(|(n, _, _)| *n == p.meta.name) {
                Some(e) => e.1 += units,
                None => per_table.push((p.meta.name.clone(), units, &p.meta)),
            }
        }
        let list: Vec<Value> = per_table
            .iter()
            .filter_map(|(_, units, meta)| consumed(i, meta, *units, true, None))
            .collect();
        out.insert("ConsumedCapacity".into(), Value::Array(list));
    }
    Ok(out)
}

pub fn transact_get(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let entries = i
        .get("TransactItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut plans = Vec::new();
    let mut seen = HashSet::new();
    for e in &entries {
        let get = e
            .get("Get")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let meta = require_table(ddb, ctx, name_from_arn(s(&get, "TableName").unwrap_or("")))?;
        let (_, key) = parse_key(&meta, get.get("Key"))?;
        if !seen.insert((meta.uid, key.clone())) {
            return Err(validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        let subs = substitutions(&get)?;
        let projection = read_projection(&get, &subs)?;
        subs.check_unused().map_err(expr)?;
        plans.push((meta, key, projection));
    }
    let mut responses = Vec::new();
    let mut units: Vec<(String, f64, usize)> = Vec::new();
    ddb.store.read(|r| {
        for (idx, (meta, key, projection)) in plans.iter().enumerate() {
            let item = load_item(r, key)?;
            let size = item.as_ref().map_or(0, item_size);
            let u = 2.0 * capacity_units(size, false, true);
            match units.iter_mut().find(|(n, _, _)| *n == meta.name) {
                Some(e) => e.1 += u,
                None => units.push((meta.name.clone(), u, idx)),
            }
            responses.push(match item {
                Some(it) => {
                    let shown = match projection {
                        Some(p) => project(&it, p),
                        None => it,
                    };
                    json!({"Item": item_to_json(&shown)})
                }
                None => json!({}),
            });
        }
        Ok(())
    })?;
    let mut out = Map::new();
    out.insert("Responses".into(), Value::Array(responses));
    if s(i, "ReturnConsumedCapacity").is_some_and(|v| v != "NONE") {
        let list: Vec<Value> = units
            .iter()
            .filter_map(|(_, u, idx)| consumed(i, &plans[*idx].0, *u, false, None))
            .collect();
        out.insert("ConsumedCapacity".into(), Value::Array(list));
    }
    Ok(out)
}
