//! Query and Scan: range reads over the ordered item and index keys, with filters,
//! projections, Select, Limit, the 1 MB page and parallel scan segments.

use crate::control::{require_table, s, table_name};
use crate::data::{capacity_units, consumed, no_mixing, read_projection, substitutions};
use crate::errors::{expr, validation};
use crate::keys::{self, decode_item, index_bounds, key_item};
use crate::state::{IndexMeta, KeyAttr, TableMeta, INDEX, ITEMS};
use crate::{DynamoDb, Input, Output};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use virga_core::{AwsResult, RequestContext};
use virga_dynamodb_expr::{
    item_size, item_to_json, key_bytes, legacy, parse_condition, parse_key_condition, project,
    AttrValue, Condition, Item, KeyCondition, Path, RangeCondition,
};
use virga_store::{prefix_end, KeyBuf};

/// DynamoDB stops a page once it has read 1 MB of items.
const PAGE_BYTES: usize = 1024 * 1024;
/// Rows read from the store per round trip.
const CHUNK: usize = 256;

/// Where a Query or Scan reads: the table itself or one of its indexes.
struct Source<'a> {
    meta: &'a TableMeta,
    index: Option<(&'a IndexMeta, bool)>,
}

impl Source<'_> {
    fn hash(&self) -> &KeyAttr {
        self.index.map_or(&self.meta.hash, |(i, _)| &i.hash)
    }

    fn range(&self) -> Option<&KeyAttr> {
        match self.index {
            Some((i, _)) => i.range.as_ref(),
            None => self.meta.range.as_ref(),
        }
    }

    fn store_table(&self) -> &'static str {
        if self.index.is_some() {
            INDEX
        } else {
            ITEMS
        }
    }

    /// The store key prefix of every row of this source.
    fn prefix(&self) -> Vec<u8> {
        match self.index {
            Some((i, _)) => index_bounds(self.meta, &i.name).0,
            None => KeyBuf::new().u64(self.meta.uid).into_vec(),
        }
    }

    /// The store key of the row an item has in this source.
    fn row_key(&self, item: &Item) -> Option<Vec<u8>> {
        match self.index {
            Some((i, _)) => keys::index_store_key(self.meta, i, item),
            None => {
                let h = item.get(&self.meta.hash.name)?;
                let r = match &self.meta.range {
                    Some(r) => Some(item.get(&r.name)?),
                    None => None,
                };
                Some(keys::item_store_key(self.meta, h, r))
            }
        }
    }

    /// The attributes of a LastEvaluatedKey: the table's key and the index's.
    fn last_key(&self, item: &Item) -> Item {
        let mut k = key_item(self.meta, item);
        if let Some((i, _)) = self.index {
            for a in std::iter::once(&i.hash).chain(i.range.as_ref()) {
                if let Some(v) = item.get(&a.name) {
                    k.insert(a.name.clone(), v.clone());
                }
            }
        }
        k
    }
}

fn source<'a>(meta: &'a TableMeta, i: &Input) -> AwsResult<Source<'a>> {
    let index = match s(i, "IndexName") {
        Some(name) => Some(meta.index(name).ok_or_else(|| {
            validation(format!(
                "The table does not have the specified index: {name}"
            ))
        })?),
        None => None,
    };
    if let Some((ix, true)) = index {
        if i.get("ConsistentRead").and_then(Value::as_bool) == Some(true) {
            return Err(validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        let _ = ix;
    }
    Ok(Source { meta, index })
}

/// What a Query or Scan returns per item, from Select and the projection.
enum Shape {
    Count,
    All,
    Projected(Vec<Path>),
}

fn select(i: &Input, src: &Source, projection: Option<Vec<Path>>) -> AwsResult<(Shape, bool)> {
    let select = s(i, "Select");
    // Whether items must be read from the table because the index lacks attributes.
    let mut fetch_from_table = false;
    let shape = match (select, projection) {
        (Some("COUNT"), None) => Shape::Count,
        (Some("COUNT"), Some(_)) | (Some("ALL_ATTRIBUTES"), Some(_)) | (Some("ALL_PROJECTED_ATTRIBUTES"), Some(_)) => {
            return Err(validation(format!(
                "Cannot specify the ProjectionExpression when choosing to get {}",
                select.unwrap_or("")
            )))
        }
        (Some("SPECIFIC_ATTRIBUTES"), None) => {
            return Err(validation(
                "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
            ))
        }
        (_, Some(p)) => {
            if let Some((ix, false)) = src.index {
                fetch_from_table = ix.projection != "ALL";
            }
            Shape::Projected(p)
        }
        (Some("ALL_PROJECTED_ATTRIBUTES"), None) => {
            if src.index.is_none() {
                return Err(validation(
                    "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
                ));
            }
            Shape::All
        }
        (Some("ALL_ATTRIBUTES"), None) => {
            if let Some((ix, global)) = src.index {
                if ix.projection != "ALL" {
                    if global {
                        return Err(validation(format!(
                            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                            ix.name
                        )));
                    }
                    fetch_from_table = true;
                }
            }
            Shape::All
        }
        (_, None) => Shape::All,
    };
    Ok((shape, fetch_from_table))
}

/// A filter: FilterExpression, or the legacy QueryFilter/ScanFilter.
fn filter(
    i: &Input,
    legacy_name: &str,
    subs: &virga_dynamodb_expr::Substitutions,
) -> AwsResult<Option<Condition>> {
    if let Some(text) = s(i, "FilterExpression") {
        return parse_condition(text, "FilterExpression", subs)
            .map(Some)
            .map_err(expr);
    }
    if let Some(f) = i.get(legacy_name).and_then(Value::as_object) {
        return legacy::condition_from_filter(f, s(i, "ConditionalOperator"))
            .map(Some)
            .map_err(expr);
    }
    Ok(None)
}

fn check_key_value(attr: &KeyAttr, v: &AttrValue) -> AwsResult<()> {
    if v.type_name() != attr.ty {
        return Err(validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ));
    }
    Ok(())
}

/// The largest key value that begins with `prefix`, as an inclusive upper bound.
fn begins_with_upper(prefix: &AttrValue) -> Option<AttrValue> {
    match prefix {
        // Range keys are at most 1024 bytes, so any continuation sorts below 257 of
        // the highest code point (4 bytes each).
        AttrValue::S(p) => Some(AttrValue::S(format!("{p}{}", "\u{10FFFF}".repeat(257)))),
        AttrValue::B(p) => {
            let mut b = p.clone();
            b.extend(std::iter::repeat_n(0xff, 1025));
            Some(AttrValue::B(b))
        }
        _ => None,
    }
}

/// Store key bounds of a key condition within `prefix` (the hash key's rows).
fn key_bounds(prefix: &[u8], range: Option<&RangeCondition>) -> (Vec<u8>, Bound<Vec<u8>>) {
    let with = |v: &AttrValue| {
        let mut k = prefix.to_vec();
        k.extend_from_slice(&key_bytes(v));
        k
    };
    let after = |v: &AttrValue| prefix_end(&with(v)).unwrap_or_default();
    let end_all = prefix_end(prefix).unwrap_or_default();
    match range {
        None => (prefix.to_vec(), Bound::Excluded(end_all)),
        Some(RangeCondition::Eq(v)) => (with(v), Bound::Excluded(after(v))),
        Some(RangeCondition::Lt(v)) => (prefix.to_vec(), Bound::Excluded(with(v))),
        Some(RangeCondition::Le(v)) => (prefix.to_vec(), Bound::Excluded(after(v))),
        Some(RangeCondition::Gt(v)) => (after(v), Bound::Excluded(end_all)),
        Some(RangeCondition::Ge(v)) => (with(v), Bound::Excluded(end_all)),
        Some(RangeCondition::Between(a, b)) => (with(a), Bound::Excluded(after(b))),
        Some(RangeCondition::BeginsWith(p)) => match begins_with_upper(p) {
            Some(upper) => (with(p), Bound::Excluded(after(&upper))),
            None => (with(p), Bound::Excluded(end_all)),
        },
    }
}

fn range_value(rc: &RangeCondition) -> Vec<&AttrValue> {
    match rc {
        RangeCondition::Eq(v)
        | RangeCondition::Lt(v)
        | RangeCondition::Le(v)
        | RangeCondition::Gt(v)
        | RangeCondition::Ge(v)
        | RangeCondition::BeginsWith(v) => vec![v],
        RangeCondition::Between(a, b) => vec![a, b],
    }
}

/// Validates a key condition against the source's key schema.
fn check_key_condition(src: &Source, kc: &KeyCondition) -> AwsResult<()> {
    let hash = src.hash();
    if kc.hash_name != hash.name {
        if src.range().is_some_and(|r| r.name == kc.hash_name) {
            return Err(validation(format!(
                "Query condition missed key schema element: {}",
                hash.name
            )));
        }
        return Err(validation(format!(
            "Query condition missed key schema element: {}",
            hash.name
        )));
    }
    check_key_value(hash, &kc.hash)?;
    if let Some((name, rc)) = &kc.range {
        let Some(range) = src.range() else {
            return Err(validation("Query key condition not supported"));
        };
        if *name != range.name {
            return Err(validation(format!(
                "Query condition missed key schema element: {}",
                range.name
            )));
        }
        for v in range_value(rc) {
            check_key_value(range, v)?;
        }
        if let RangeCondition::BeginsWith(v) = rc {
            if matches!(v, AttrValue::N(_)) {
                return Err(validation(
                    "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                ));
            }
        }
    }
    Ok(())
}

/// Reads the ExclusiveStartKey as a store key of the source.
fn start_key(i: &Input, src: &Source) -> AwsResult<Option<Vec<u8>>> {
    let Some(esk) = i.get("ExclusiveStartKey").and_then(Value::as_object) else {
        return Ok(None);
    };
    let item = crate::data::parse_item(esk)?;
    let bad = || {
        validation("The provided starting key is invalid: The provided key element does not match the schema")
    };
    let mut expected: Vec<&KeyAttr> = vec![&src.meta.hash];
    expected.extend(src.meta.range.as_ref());
    if let Some((ix, _)) = src.index {
        for a in std::iter::once(&ix.hash).chain(ix.range.as_ref()) {
            if !expected.iter().any(|e| e.name == a.name) {
                expected.push(a);
            }
        }
    }
    if item.len() != expected.len() {
        return Err(bad());
    }
    for a in &expected {
        match item.get(&a.name) {
            Some(v) if v.type_name() == a.ty => {}
            _ => return Err(bad()),
        }
    }
    src.row_key(&item).map(Some).ok_or_else(bad)
}

struct Page {
    items: Vec<Value>,
    count: usize,
    scanned: usize,
    last: Option<Item>,
    bytes: usize,
}

/// Reads rows between the bounds in order, applying filter and shape.
#[allow(clippy::too_many_arguments)]
fn read_page(
    ddb: &DynamoDb,
    src: &Source,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    forward: bool,
    limit: Option<usize>,
    filter: Option<&Condition>,
    shape: &Shape,
    fetch_from_table: bool,
    segment: Option<(u64, u64)>,
) -> AwsResult<Page> {
    let mut page = Page {
        items: Vec::new(),
        count: 0,
        scanned: 0,
        last: None,
        bytes: 0,
    };
    let table = src.store_table();
    let (mut lo, mut hi) = (start, end);
    ddb.store.read(|r| loop {
        let want = limit.map_or(CHUNK, |l| (l - page.scanned).min(CHUNK));
        let rows = r.scan(
            table,
            as_ref(&lo),
            as_ref(&hi),
            if segment.is_some() { CHUNK } else { want },
            !forward,
        )?;
        let exhausted = rows.len() < if segment.is_some() { CHUNK } else { want };
        for (k, v) in &rows {
            if forward {
                lo = Bound::Excluded(k.clone());
            } else {
                hi = Bound::Excluded(k.clone());
            }
            let mut item = decode_item(v)?;
            if let Some((seg, total)) = segment {
                let h = item
                    .get(&src.meta.hash.name)
                    .map(key_bytes)
                    .unwrap_or_default();
                if segment_of(&h, total) != seg {
                    continue;
                }
            }
            page.scanned += 1;
            page.bytes += item_size(&item);
            if fetch_from_table {
                let (_, key) = keys::parse_key(
                    src.meta,
                    Some(&Value::Object(item_to_json(&key_item(src.meta, &item)))),
                )?;
                if let Some(full) = crate::data::load_item(r, &key)? {
                    item = full;
                }
            }
            let keep = match filter {
                Some(c) => c.eval(&item).map_err(expr)?,
                None => true,
            };
            if keep {
                page.count += 1;
                match shape {
                    Shape::Count => {}
                    Shape::All => page.items.push(Value::Object(item_to_json(&item))),
                    Shape::Projected(p) => page
                        .items
                        .push(Value::Object(item_to_json(&project(&item, p)))),
                }
            }
            let full = limit.is_some_and(|l| page.scanned >= l) || page.bytes >= PAGE_BYTES;
            if full {
                page.last = Some(src.last_key(&item));
                return Ok(());
            }
        }
        if exhausted {
            return Ok(());
        }
    })?;
    Ok(page)
}

pub(crate) fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Parallel scan segment of a partition key (FNV-1a of its encoding).
fn segment_of(hash_key: &[u8], total: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in hash_key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % total
}

fn limit(i: &Input) -> AwsResult<Option<usize>> {
    match i.get("Limit").and_then(Value::as_i64) {
        Some(l) if l < 1 => Err(validation(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(l) => Ok(Some(l as usize)),
        None => Ok(None),
    }
}

fn page_output(i: &Input, meta: &TableMeta, page: Page, shape: &Shape) -> Output {
    let mut out = Map::new();
    if !matches!(shape, Shape::Count) {
        out.insert("Items".into(), Value::Array(page.items));
    }
    out.insert("Count".into(), json!(page.count));
    out.insert("ScannedCount".into(), json!(page.scanned));
    if let Some(last) = page.last {
        out.insert(
            "LastEvaluatedKey".into(),
            Value::Object(item_to_json(&last)),
        );
    }
    let consistent = i.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
    if let Some(c) = consumed(
        i,
        meta,
        capacity_units(page.bytes, false, consistent),
        false,
        None,
    ) {
        out.insert("ConsumedCapacity".into(), c);
    }
    out
}

pub fn query(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = require_table(ddb, ctx, table_name(i)?)?;
    let src = source(&meta, i)?;
    no_mixing(
        i,
        &[
            "KeyConditions",
            "QueryFilter",
            "AttributesToGet",
            "ConditionalOperator",
        ],
        &[
            "KeyConditionExpression",
            "FilterExpression",
            "ProjectionExpression",
        ],
    )?;
    let subs = substitutions(i)?;
    let mut kc = if let Some(text) = s(i, "KeyConditionExpression") {
        parse_key_condition(text, &subs).map_err(expr)?
    } else if let Some(k) = i.get("KeyConditions").and_then(Value::as_object) {
        legacy::key_condition_from_key_conditions(k, &src.hash().name).map_err(expr)?
    } else {
        return Err(validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    };
    let filter = filter(i, "QueryFilter", &subs)?;
    let projection = read_projection(i, &subs)?;
    subs.check_unused().map_err(expr)?;
    kc.check_schema(&src.hash().name, src.range().map(|r| r.name.as_str()))
        .map_err(expr)?;
    check_key_condition(&src, &kc)?;
    if let Some(f) = &filter {
        let keys: Vec<&str> = std::iter::once(src.hash())
            .chain(src.range())
            .map(|k| k.name.as_str())
            .collect();
        if let Some(k) = f
            .top_level_attributes()
            .into_iter()
            .find(|a| keys.contains(&a.as_str()))
        {
            return Err(validation(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {k}"
            )));
        }
    }
    let (shape, fetch) = select(i, &src, projection)?;
    let limit = limit(i)?;
    let mut prefix = src.prefix();
    prefix.extend_from_slice(&key_bytes(&kc.hash));
    let (lo, hi) = key_bounds(&prefix, kc.range.as_ref().map(|(_, r)| r));
    let forward = i.get("ScanIndexForward").and_then(Value::as_bool) != Some(false);
    let (mut lo, mut hi) = (Bound::Included(lo), hi);
    if let Some(k) = start_key(i, &src)? {
        if !k.starts_with(&prefix) {
            return Err(validation(
                "The provided starting key is invalid: The provided key element does not match the schema",
            ));
        }
        // The start key narrows the key condition's range; it never widens it.
        let key_of = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(x) | Bound::Excluded(x) => Some(x.clone()),
            Bound::Unbounded => None,
        };
        if forward {
            if key_of(&lo).is_none_or(|l| k >= l) {
                lo = Bound::Excluded(k);
            }
        } else if key_of(&hi).is_none_or(|h| k < h) {
            hi = Bound::Excluded(k);
        }
    }
    let page = read_page(
        ddb,
        &src,
        lo,
        hi,
        forward,
        limit,
        filter.as_ref(),
        &shape,
        fetch,
        None,
    )?;
    Ok(page_output(i, &meta, page, &shape))
}

pub fn scan(ddb: &DynamoDb, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let meta = require_table(ddb, ctx, table_name(i)?)?;
    let src = source(&meta, i)?;
    no_mixing(
        i,
        &["ScanFilter", "AttributesToGet", "ConditionalOperator"],
        &["FilterExpression", "ProjectionExpression"],
    )?;
    let subs = substitutions(i)?;
    let filter = filter(i, "ScanFilter", &subs)?;
    let projection = read_projection(i, &subs)?;
    subs.check_unused().map_err(expr)?;
    let (shape, fetch) = select(i, &src, projection)?;
    let limit = limit(i)?;
    let segment = match (
        i.get("Segment").and_then(Value::as_i64),
        i.get("TotalSegments").and_then(Value::as_i64),
    ) {
        (None, None) => None,
        (Some(seg), Some(total)) => {
            if seg >= total {
                return Err(validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {seg} is not less than TotalSegments: {total}"
                )));
            }
            Some((seg as u64, total as u64))
        }
        (Some(_), None) => {
            return Err(validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ))
        }
        (None, Some(_)) => {
            return Err(validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ))
        }
    };
    let prefix = src.prefix();
    let mut lo = Bound::Included(prefix.clone());
    let hi = Bound::Excluded(prefix_end(&prefix).unwrap_or_default());
    if let Some(k) = start_key(i, &src)? {
        lo = Bound::Excluded(k);
    }
    let page = read_page(
        ddb,
        &src,
        lo,
        hi,
        true,
        limit,
        filter.as_ref(),
        &shape,
        fetch,
        segment,
    )?;
    Ok(page_output(i, &meta, page, &shape))
}
