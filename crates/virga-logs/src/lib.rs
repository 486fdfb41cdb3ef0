//! Amazon CloudWatch Logs on Virga (JSON 1.1): log groups, streams, events,
//! GetLogEvents/FilterLogEvents with filter patterns, retention, tags. Other
//! services (Lambda) write through [`Logs::append`].
//!
//! Store tables (under `logs.`):
//! - `logs.group`  (region, group) -> [`Group`]
//! - `logs.stream` (region, group, stream) -> [`Stream`]
//! - `logs.event`  (region, group, stream, timestamp, seq) -> [`Event`] (GetLogEvents)
//! - `logs.gevent` (region, group, timestamp, seq) -> [`Event`] with its stream
//!   (FilterLogEvents reads a group's events in time order without merging streams)

pub mod filter;

use base64::Engine;
use http::Response;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use virga_core::service::aws_response;
use virga_core::{AwsError, AwsResult, Body, BoxFuture, Clock, RequestContext};
use virga_protocol::{json, ServiceModel};
use virga_store::{prefix_end, KeyBuf, KvRead, KvStore, KvTxn};

static MODEL: ServiceModel = ServiceModel::new(include_str!("../../../models/logs.json"));

const GROUPS: &str = "logs.group";
const STREAMS: &str = "logs.stream";
const EVENTS: &str = "logs.event";
const GROUP_EVENTS: &str = "logs.gevent";

/// PutRetentionPolicy's allowed values (days).
const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
const DAY_MS: i64 = 86_400_000;

type Input = Map<String, Value>;
type Output = Map<String, Value>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub created: i64,
    pub retention_days: Option<i64>,
    pub tags: Map<String, Value>,
    pub class: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Stream {
    pub name: String,
    pub created: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub bytes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    /// The stream (kept in the group-wide table only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    s: String,
    m: String,
    i: i64,
}

pub struct Logs {
    store: Arc<dyn KvStore>,
    clock: Arc<Clock>,
    seq: AtomicU64,
}

fn enc<T: Serialize>(v: &T) -> AwsResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| AwsError::internal(format!("encode: {e}")))
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> AwsResult<T> {
    serde_json::from_slice(b).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", msg)
}

fn not_found(msg: &str) -> AwsError {
    AwsError::new(400, "ResourceNotFoundException", msg)
}

fn s<'a>(i: &'a Input, k: &str) -> Option<&'a str> {
    i.get(k).and_then(Value::as_str)
}

fn obj(v: Value) -> Output {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn group_key(region: &str, group: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(group).into_vec()
}

fn stream_key(region: &str, group: &str, stream: &str) -> Vec<u8> {
    KeyBuf::new().str(region).str(group).str(stream).into_vec()
}

/// The group named by logGroupName or logGroupIdentifier (a name or an ARN).
fn group_name(i: &Input) -> AwsResult<String> {
    let raw = s(i, "logGroupName")
        .or(s(i, "logGroupIdentifier"))
        .ok_or_else(|| invalid("Should provide either logGroupName or logGroupIdentifier"))?;
    Ok(match raw.split_once(":log-group:") {
        Some((_, rest)) => rest.trim_end_matches(":*").to_string(),
        None => raw.to_string(),
    })
}

/// (timestamp, sequence) from the end of an event's store key.
fn event_position(k: &[u8]) -> (i64, u64) {
    let n = k.len();
    let be = |r: std::ops::Range<usize>| {
        k.get(r)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    };
    (
        be(n.saturating_sub(16)..n.saturating_sub(8)) as i64,
        be(n.saturating_sub(8)..n),
    )
}

fn token(ts: i64, seq: u64) -> String {
    format!("{:020}{:020}", ts.max(0), seq)
}

fn parse_token(t: &str) -> Option<(i64, u64)> {
    if t.len() != 40 || !t.is_ascii() {
        return None;
    }
    Some((t.get(..20)?.parse().ok()?, t.get(20..)?.parse().ok()?))
}

impl Logs {
    pub fn new(store: Arc<dyn KvStore>, clock: Arc<Clock>) -> Arc<Logs> {
        let start = (clock.now_millis().max(0) as u64) * 1000;
        Arc::new(Logs {
            store,
            clock,
            seq: AtomicU64::new(start),
        })
    }

    fn arn(&self, region: &str, group: &str) -> String {
        format!(
            "arn:aws:logs:{region}:{}:log-group:{group}",
            virga_core::DEFAULT_ACCOUNT
        )
    }

    fn load_group(&self, r: &dyn KvRead, region: &str, name: &str) -> AwsResult<Group> {
        r.get(GROUPS, &group_key(region, name))?
            .map(|v| dec(&v))
            .transpose()?
            .ok_or_else(|| not_found("The specified log group does not exist."))
    }

    /// Appends events to a stream, creating the group and stream if needed (what
    /// Lambda's log writer does). Timestamps are epoch milliseconds.
    pub fn append(
        &self,
        region: &str,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> AwsResult<()> {
        let now = self.clock.now_millis();
        self.store.transact(|t| {
            if t.get(GROUPS, &group_key(region, group))?.is_none() {
                let g = Group {
                    name: group.to_string(),
                    created: now,
                    retention_days: None,
                    tags: Map::new(),
                    class: "STANDARD".into(),
                };
                t.put(GROUPS, &group_key(region, group), &enc(&g)?)?;
            }
            if t.get(STREAMS, &stream_key(region, group, stream))?
                .is_none()
            {
                let st = Stream {
                    name: stream.to_string(),
                    created: now,
                    ..Default::default()
                };
                t.put(STREAMS, &stream_key(region, group, stream), &enc(&st)?)?;
            }
            self.write_events(t, region, group, stream, events, now)
        })
    }

    fn write_events(
        &self,
        t: &mut dyn KvTxn,
        region: &str,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
        now: i64,
    ) -> AwsResult<()> {
        let skey = stream_key(region, group, stream);
        let mut st: Stream = match t.get(STREAMS, &skey)? {
            Some(v) => dec(&v)?,
            None => return Err(not_found("The specified log stream does not exist.")),
        };
        for (ts, message) in events {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let k = KeyBuf::new()
                .str(region)
                .str(group)
                .str(stream)
                .u64(*ts as u64)
                .u64(seq)
                .into_vec();
            t.put(
                EVENTS,
                &k,
                &enc(&Event {
                    s: String::new(),
                    m: message.clone(),
                    i: now,
                })?,
            )?;
            let gk = KeyBuf::new()
                .str(region)
                .str(group)
                .u64(*ts as u64)
                .u64(seq)
                .into_vec();
            t.put(
                GROUP_EVENTS,
                &gk,
                &enc(&Event {
                    s: stream.to_string(),
                    m: message.clone(),
                    i: now,
                })?,
            )?;
            st.first = Some(st.first.map_or(*ts, |f| f.min(*ts)));
            st.last = Some(st.last.map_or(*ts, |l| l.max(*ts)));
            st.bytes += message.len() as i64;
        }
        st.last_ingestion = Some(now);
        t.put(STREAMS, &skey, &enc(&st)?)
    }

    async fn serve(&self, ctx: RequestContext, req: http::Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        drop(parts);
        let result = async {
            let bytes = http_body_util::Limited::new(body, 8 * 1024 * 1024)
                .collect()
                .await
                .map_err(|_| invalid("Request too large"))?
                .to_bytes();
            let model = MODEL.model()?;
            let op = json::operation_from_target(model, &target).ok_or_else(|| {
                AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!("Unknown operation {target}"),
                )
            })?;
            ctx.set_operation(op);
            let input = json::parse_input(model, op, &bytes)?;
            let out = self.call(&ctx, op, &input)?;
            Ok::<_, AwsError>(json::serialize_output(model, op, &out))
        }
        .await;
        let (status, body) = match result {
            Ok(b) => (200, b),
            Err(e) => (e.status, json::error_body(&e)),
        };
        aws_response(
            status,
            "application/x-amz-json-1.1",
            &ctx.request_id,
            &[],
            body,
        )
    }

    fn call(&self, ctx: &RequestContext, op: &str, i: &Input) -> AwsResult<Output> {
        let region = ctx.region.as_str();
        match op {
            "CreateLogGroup" => self.create_group(region, i),
            "DeleteLogGroup" => self.delete_group(region, i),
            "DescribeLogGroups" => self.describe_groups(region, i),
            "CreateLogStream" => self.create_stream(region, i),
            "DeleteLogStream" => self.delete_stream(region, i),
            "DescribeLogStreams" => self.describe_streams(region, i),
            "PutLogEvents" => self.put_events(region, i),
            "GetLogEvents" => self.get_events(region, i),
            "FilterLogEvents" => self.filter_events(region, i),
            "PutRetentionPolicy" => self.put_retention(region, i),
            "DeleteRetentionPolicy" => self.delete_retention(region, i),
            "TagLogGroup" | "TagResource" => self.tag(region, i, op == "TagResource"),
            "UntagLogGroup" | "UntagResource" => self.untag(region, i, op == "UntagResource"),
            "ListTagsLogGroup" | "ListTagsForResource" => {
                self.list_tags(region, i, op == "ListTagsForResource")
            }
            _ => Err(AwsError::new(
                400,
                "UnknownOperationException",
                format!("Virga does not implement CloudWatch Logs {op} yet"),
            )),
        }
    }

    fn create_group(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let name = group_name(i)?;
        let g = Group {
            name: name.clone(),
            created: self.clock.now_millis(),
            retention_days: None,
            tags: i
                .get("tags")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            class: s(i, "logGroupClass").unwrap_or("STANDARD").to_string(),
        };
        self.store.transact(|t| {
            if t.get(GROUPS, &group_key(region, &name))?.is_some() {
                return Err(AwsError::new(
                    400,
                    "ResourceAlreadyExistsException",
                    "The specified log group already exists",
                ));
            }
            t.put(GROUPS, &group_key(region, &name), &enc(&g)?)
        })?;
        Ok(Map::new())
    }

    fn delete_group(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let name = group_name(i)?;
        self.store.transact(|t| {
            self.load_group(t, region, &name)?;
            let prefix = group_key(region, &name);
            let end = prefix_end(&prefix).unwrap_or_default();
            for table in [STREAMS, EVENTS, GROUP_EVENTS] {
                t.delete_range(table, &prefix, &end)?;
            }
            t.delete(GROUPS, &prefix)
        })?;
        Ok(Map::new())
    }

    fn group_json(&self, region: &str, g: &Group, bytes: i64) -> Value {
        let arn = self.arn(region, &g.name);
        let mut v = json!({
            "logGroupName": g.name,
            "creationTime": g.created,
            "metricFilterCount": 0,
            "arn": format!("{arn}:*"),
            "logGroupArn": arn,
            "storedBytes": bytes,
            "logGroupClass": g.class,
        });
        if let Some(d) = g.retention_days {
            v["retentionInDays"] = json!(d);
        }
        v
    }

    fn describe_groups(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let prefix = s(i, "logGroupNamePrefix").unwrap_or("");
        let pattern = s(i, "logGroupNamePattern");
        let limit = i.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
        let start = KeyBuf::new()
            .str(region)
            .partial(prefix.as_bytes())
            .into_vec();
        let end = prefix_end(&start).unwrap_or_default();
        let from = match s(i, "nextToken") {
            Some(tok) => Bound::Excluded(group_key(region, tok)),
            None => Bound::Included(start),
        };
        let rows = self.store.read(|r| {
            r.scan(
                GROUPS,
                match &from {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                },
                Bound::Excluded(end.as_slice()),
                usize::MAX,
                false,
            )
        })?;
        let mut groups = Vec::new();
        let mut next = None;
        for (_, v) in rows {
            let g: Group = dec(&v)?;
            if pattern.is_some_and(|p| !g.name.to_lowercase().contains(&p.to_lowercase())) {
                continue;
            }
            if groups.len() == limit {
                next = groups
                    .last()
                    .and_then(|x: &Value| x["logGroupName"].as_str().map(str::to_string));
                break;
            }
            let bytes = self.group_bytes(region, &g.name)?;
            groups.push(self.group_json(region, &g, bytes));
        }
        let mut out = json!({ "logGroups": groups });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(obj(out))
    }

    fn group_bytes(&self, region: &str, group: &str) -> AwsResult<i64> {
        let prefix = group_key(region, group);
        let end = prefix_end(&prefix).unwrap_or_default();
        let rows = self.store.read(|r| {
            r.scan(
                STREAMS,
                Bound::Included(&prefix),
                Bound::Excluded(&end),
                usize::MAX,
                false,
            )
        })?;
        let mut total = 0;
        for (_, v) in rows {
            total += dec::<Stream>(&v)?.bytes;
        }
        Ok(total)
    }

    fn create_stream(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let name = s(i, "logStreamName").unwrap_or("").to_string();
        if name.contains(':') || name.contains('*') {
            return Err(invalid(
                "1 validation error detected: Value at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*",
            ));
        }
        let now = self.clock.now_millis();
        self.store.transact(|t| {
            self.load_group(t, region, &group)?;
            let k = stream_key(region, &group, &name);
            if t.get(STREAMS, &k)?.is_some() {
                return Err(AwsError::new(
                    400,
                    "ResourceAlreadyExistsException",
                    "The specified log stream already exists",
                ));
            }
            t.put(
                STREAMS,
                &k,
                &enc(&Stream {
                    name: name.clone(),
                    created: now,
                    ..Default::default()
                })?,
            )
        })?;
        Ok(Map::new())
    }

    fn delete_stream(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let name = s(i, "logStreamName").unwrap_or("");
        self.store.transact(|t| {
            self.load_group(t, region, &group)?;
            let k = stream_key(region, &group, name);
            if t.get(STREAMS, &k)?.is_none() {
                return Err(not_found("The specified log stream does not exist."));
            }
            let end = prefix_end(&k).unwrap_or_default();
            t.delete_range(EVENTS, &k, &end)?;
            // The group-wide copies of its events.
            let gp = group_key(region, &group);
            let gend = prefix_end(&gp).unwrap_or_default();
            let rows = t.scan(
                GROUP_EVENTS,
                Bound::Included(&gp),
                Bound::Excluded(&gend),
                usize::MAX,
                false,
            )?;
            for (gk, v) in rows {
                if dec::<Event>(&v)?.s == name {
                    t.delete(GROUP_EVENTS, &gk)?;
                }
            }
            t.delete(STREAMS, &k)
        })?;
        Ok(Map::new())
    }

    fn stream_json(&self, region: &str, group: &str, st: &Stream) -> Value {
        let mut v = json!({
            "logStreamName": st.name,
            "creationTime": st.created,
            "arn": format!("{}:log-stream:{}", self.arn(region, group), st.name),
            "storedBytes": st.bytes,
            "uploadSequenceToken": "1",
        });
        if let Some(f) = st.first {
            v["firstEventTimestamp"] = json!(f);
        }
        if let Some(l) = st.last {
            v["lastEventTimestamp"] = json!(l);
        }
        if let Some(l) = st.last_ingestion {
            v["lastIngestionTime"] = json!(l);
        }
        v
    }

    fn describe_streams(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let prefix = s(i, "logStreamNamePrefix").unwrap_or("");
        let by_time = s(i, "orderBy") == Some("LastEventTime");
        if by_time && !prefix.is_empty() {
            return Err(invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = i.get("descending").and_then(Value::as_bool) == Some(true);
        let limit = i.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
        let start = KeyBuf::new()
            .str(region)
            .str(&group)
            .partial(prefix.as_bytes())
            .into_vec();
        let end = prefix_end(&start).unwrap_or_default();
        let mut streams: Vec<Stream> = self.store.read(|r| {
            self.load_group(r, region, &group)?;
            r.scan(
                STREAMS,
                Bound::Included(&start),
                Bound::Excluded(&end),
                usize::MAX,
                false,
            )?
            .iter()
            .map(|(_, v)| dec(v))
            .collect()
        })?;
        if by_time {
            streams.sort_by_key(|st| (st.last.unwrap_or(st.created), st.name.clone()));
        }
        if descending {
            streams.reverse();
        }
        let offset: usize = s(i, "nextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = streams
            .iter()
            .skip(offset)
            .take(limit)
            .map(|st| self.stream_json(region, &group, st))
            .collect();
        let mut out = json!({ "logStreams": page });
        if offset.saturating_add(limit) < streams.len() {
            out["nextToken"] = json!((offset + limit).to_string());
        }
        Ok(obj(out))
    }

    fn put_events(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let stream = s(i, "logStreamName").unwrap_or("").to_string();
        let events: Vec<(i64, String)> = i
            .get("logEvents")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e.get("timestamp").and_then(Value::as_i64).unwrap_or(0),
                            e.get("message")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if events.windows(2).any(|w| w[1].0 < w[0].0) {
            return Err(invalid(
                "Log events in a single PutLogEvents request must be in chronological order.",
            ));
        }
        let now = self.clock.now_millis();
        self.store.transact(|t| {
            let g = self.load_group(t, region, &group)?;
            let too_old = now - 14 * DAY_MS;
            let expired = g.retention_days.map(|d| now - d * DAY_MS);
            let too_new = now + 2 * 3600 * 1000;
            let mut info = Map::new();
            let mut accepted = Vec::new();
            for (idx, (ts, m)) in events.iter().enumerate() {
                if expired.is_some_and(|e| *ts < e) {
                    info.insert("expiredLogEventEndIndex".into(), json!(idx + 1));
                } else if *ts < too_old {
                    info.insert("tooOldLogEventEndIndex".into(), json!(idx + 1));
                } else if *ts > too_new {
                    if !info.contains_key("tooNewLogEventStartIndex") {
                        info.insert("tooNewLogEventStartIndex".into(), json!(idx));
                    }
                } else {
                    accepted.push((*ts, m.clone()));
                }
            }
            self.write_events(t, region, &group, &stream, &accepted, now)?;
            let mut out = json!({ "nextSequenceToken": format!("{:056}", now) });
            if !info.is_empty() {
                out["rejectedLogEventsInfo"] = Value::Object(info);
            }
            Ok(obj(out))
        })
    }

    /// Events older than the group's retention are gone (swept lazily on reads).
    fn retention_start(&self, g: &Group) -> i64 {
        g.retention_days
            .map_or(0, |d| self.clock.now_millis() - d * DAY_MS)
            .max(0)
    }

    fn get_events(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let stream = s(i, "logStreamName").unwrap_or("");
        let limit = i.get("limit").and_then(Value::as_u64).unwrap_or(10_000) as usize;
        let prefix = stream_key(region, &group, stream);
        let g = self.store.read(|r| {
            let g = self.load_group(r, region, &group)?;
            if r.get(STREAMS, &prefix)?.is_none() {
                return Err(not_found("The specified log stream does not exist."));
            }
            Ok(g)
        })?;
        let start_ms = i
            .get("startTime")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(self.retention_start(&g));
        let end_ms = i.get("endTime").and_then(Value::as_i64);
        let at = |ts: i64, seq: u64| {
            let mut k = prefix.clone();
            k.extend_from_slice(&KeyBuf::new().u64(ts.max(0) as u64).u64(seq).into_vec());
            k
        };
        let lo = at(start_ms, 0);
        let hi = match end_ms {
            Some(e) => at(e, 0),
            None => prefix_end(&prefix).unwrap_or_default(),
        };
        let tok = s(i, "nextToken");
        let (forward, lo, hi) = match tok.and_then(|t| t.split_once('/')) {
            Some(("f", p)) => {
                let (ts, seq) =
                    parse_token(p).ok_or_else(|| invalid("The specified nextToken is invalid."))?;
                (true, Bound::Excluded(at(ts, seq)), Bound::Excluded(hi))
            }
            Some(("b", p)) => {
                let (ts, seq) =
                    parse_token(p).ok_or_else(|| invalid("The specified nextToken is invalid."))?;
                (false, Bound::Included(lo), Bound::Excluded(at(ts, seq)))
            }
            Some(_) => return Err(invalid("The specified nextToken is invalid.")),
            None if tok.is_some() => return Err(invalid("The specified nextToken is invalid.")),
            None => (
                i.get("startFromHead").and_then(Value::as_bool) == Some(true),
                Bound::Included(lo),
                Bound::Excluded(hi),
            ),
        };
        let as_ref = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => Bound::Included(k.clone()),
            Bound::Excluded(k) => Bound::Excluded(k.clone()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (lo2, hi2) = (as_ref(&lo), as_ref(&hi));
        let mut rows = self.store.read(|r| {
            r.scan(
                EVENTS,
                match &lo2 {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                },
                match &hi2 {
                    Bound::Included(k) => Bound::Included(k.as_slice()),
                    Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                    Bound::Unbounded => Bound::Unbounded,
                },
                limit,
                !forward,
            )
        })?;
        if !forward {
            rows.reverse();
        }
        let pos = event_position;
        let mut events = Vec::new();
        for (k, v) in &rows {
            let e: Event = dec(v)?;
            let (ts, _) = pos(k);
            events.push(json!({"timestamp": ts, "message": e.m, "ingestionTime": e.i}));
        }
        // With nothing read, the tokens stay where the caller was.
        let (ftok, btok) = match (rows.first(), rows.last()) {
            (Some((first, _)), Some((last, _))) => {
                let (a, b) = pos(first);
                let (c, d) = pos(last);
                (format!("f/{}", token(c, d)), format!("b/{}", token(a, b)))
            }
            _ => match tok {
                Some(t) => (t.replacen("b/", "f/", 1), t.replacen("f/", "b/", 1)),
                // Nothing yet: the forward token waits at the start, so polling with
                // it finds events written later.
                None => (
                    format!("f/{}", token(start_ms, 0)),
                    format!("b/{}", token(end_ms.unwrap_or(start_ms), 0)),
                ),
            },
        };
        Ok(obj(json!({
            "events": events,
            "nextForwardToken": ftok,
            "nextBackwardToken": btok,
        })))
    }

    fn filter_events(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let pattern = filter::parse(s(i, "filterPattern").unwrap_or(""))
            .map_err(|e| invalid(format!("Invalid filter pattern: {e}")))?;
        let names: Vec<String> = virga_protocol::string_list(i, "logStreamNames");
        let name_prefix = s(i, "logStreamNamePrefix");
        if !names.is_empty() && name_prefix.is_some() {
            return Err(invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive",
            ));
        }
        let limit = i.get("limit").and_then(Value::as_u64).unwrap_or(10_000) as usize;
        let g = self.store.read(|r| self.load_group(r, region, &group))?;
        let start_ms = i
            .get("startTime")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(self.retention_start(&g));
        let prefix = group_key(region, &group);
        let at = |ts: i64, seq: u64| {
            let mut k = prefix.clone();
            k.extend_from_slice(&KeyBuf::new().u64(ts.max(0) as u64).u64(seq).into_vec());
            k
        };
        let lo = match s(i, "nextToken") {
            Some(t) => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|p| parse_token(&p))
                    .ok_or_else(|| invalid("The specified nextToken is invalid."))?;
                Bound::Excluded(at(raw.0, raw.1))
            }
            None => Bound::Included(at(start_ms, 0)),
        };
        let hi = match i.get("endTime").and_then(Value::as_i64) {
            Some(e) => at(e.saturating_add(1), 0),
            None => prefix_end(&prefix).unwrap_or_default(),
        };
        let mut events = Vec::new();
        let mut next = None;
        let mut from = lo;
        let mut searched = std::collections::BTreeSet::new();
        'outer: loop {
            let rows = self.store.read(|r| {
                r.scan(
                    GROUP_EVENTS,
                    match &from {
                        Bound::Included(k) => Bound::Included(k.as_slice()),
                        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                        Bound::Unbounded => Bound::Unbounded,
                    },
                    Bound::Excluded(hi.as_slice()),
                    1000,
                    false,
                )
            })?;
            let done = rows.len() < 1000;
            for (k, v) in &rows {
                from = Bound::Excluded(k.clone());
                let e: Event = dec(v)?;
                if !names.is_empty() && !names.contains(&e.s) {
                    continue;
                }
                if name_prefix.is_some_and(|p| !e.s.starts_with(p)) {
                    continue;
                }
                searched.insert(e.s.clone());
                if !pattern.matches(&e.m) {
                    continue;
                }
                let (ts, seq) = event_position(k);
                events.push(json!({
                    "logStreamName": e.s,
                    "timestamp": ts,
                    "message": e.m,
                    "ingestionTime": e.i,
                    "eventId": token(ts, seq),
                }));
                if events.len() >= limit {
                    next = Some(
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token(ts, seq)),
                    );
                    break 'outer;
                }
            }
            if done {
                break;
            }
        }
        let searched: Vec<Value> = searched
            .into_iter()
            .map(|n| json!({"logStreamName": n, "searchedCompletely": true}))
            .collect();
        let mut out = json!({ "events": events, "searchedLogStreams": searched });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(obj(out))
    }

    fn update_group(
        &self,
        region: &str,
        name: &str,
        f: impl FnOnce(&mut Group) -> AwsResult<()>,
    ) -> AwsResult<()> {
        self.store.transact(|t| {
            let mut g = self.load_group(t, region, name)?;
            f(&mut g)?;
            t.put(GROUPS, &group_key(region, name), &enc(&g)?)
        })
    }

    fn put_retention(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        let days = i
            .get("retentionInDays")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if !RETENTION_DAYS.contains(&days) {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(|d| d.to_string()).collect();
            return Err(invalid(format!(
                "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            )));
        }
        self.update_group(region, &group, |g| {
            g.retention_days = Some(days);
            Ok(())
        })?;
        self.sweep_group(region, &group)?;
        Ok(Map::new())
    }

    fn delete_retention(&self, region: &str, i: &Input) -> AwsResult<Output> {
        let group = group_name(i)?;
        self.update_group(region, &group, |g| {
            g.retention_days = None;
            Ok(())
        })?;
        Ok(Map::new())
    }

    /// Deletes a group's events older than its retention period.
    fn sweep_group(&self, region: &str, group: &str) -> AwsResult<()> {
        let g = self.store.read(|r| self.load_group(r, region, group))?;
        let cutoff = self.retention_start(&g);
        if cutoff <= 0 {
            return Ok(());
        }
        let prefix = group_key(region, group);
        let end = prefix_end(&prefix).unwrap_or_default();
        self.store.transact(|t| {
            let mut cut = prefix.clone();
            cut.extend_from_slice(&KeyBuf::new().u64(cutoff as u64).into_vec());
            t.delete_range(GROUP_EVENTS, &prefix, &cut)?;
            for (k, _) in t.scan(
                STREAMS,
                Bound::Included(&prefix),
                Bound::Excluded(&end),
                usize::MAX,
                false,
            )? {
                let mut c = k.clone();
                c.extend_from_slice(&KeyBuf::new().u64(cutoff as u64).into_vec());
                t.delete_range(EVENTS, &k, &c)?;
            }
            Ok(())
        })
    }

    /// Applies every group's retention (called periodically and when the clock moves).
    pub fn sweep(&self) -> AwsResult<()> {
        let rows = self.store.read(|r| {
            r.scan(
                GROUPS,
                Bound::Unbounded,
                Bound::Unbounded,
                usize::MAX,
                false,
            )
        })?;
        for (k, v) in rows {
            let g: Group = dec(&v)?;
            if g.retention_days.is_some() {
                let parts = virga_store::key::decode_parts(&k);
                let region = parts
                    .first()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                self.sweep_group(&region, &g.name)?;
            }
        }
        Ok(())
    }

    fn group_from_arn(&self, region: &str, i: &Input, by_arn: bool) -> AwsResult<(String, String)> {
        if !by_arn {
            return Ok((region.to_string(), group_name(i)?));
        }
        let arn = s(i, "resourceArn").unwrap_or("");
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match (
            parts.get(3),
            parts.get(5).and_then(|r| r.strip_prefix("log-group:")),
        ) {
            (Some(r), Some(name)) => Ok((r.to_string(), name.trim_end_matches(":*").to_string())),
            _ => Err(invalid(format!("Invalid resourceArn: {arn}"))),
        }
    }

    fn tag(&self, region: &str, i: &Input, by_arn: bool) -> AwsResult<Output> {
        let (r, name) = self.group_from_arn(region, i, by_arn)?;
        let tags = i
            .get("tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        self.update_group(&r, &name, |g| {
            g.tags.extend(tags);
            Ok(())
        })?;
        Ok(Map::new())
    }

    fn untag(&self, region: &str, i: &Input, by_arn: bool) -> AwsResult<Output> {
        let (r, name) = self.group_from_arn(region, i, by_arn)?;
        let keys = virga_protocol::string_list(i, if by_arn { "tagKeys" } else { "tags" });
        self.update_group(&r, &name, |g| {
            for k in &keys {
                g.tags.remove(k);
            }
            Ok(())
        })?;
        Ok(Map::new())
    }

    fn list_tags(&self, region: &str, i: &Input, by_arn: bool) -> AwsResult<Output> {
        let (r, name) = self.group_from_arn(region, i, by_arn)?;
        let g = self.store.read(|rd| self.load_group(rd, &r, &name))?;
        Ok(obj(json!({ "tags": g.tags })))
    }
}

impl virga_core::Service for Logs {
    fn name(&self) -> &'static str {
        "logs"
    }

    fn handle(
        &self,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<'_, Response<Body>> {
        Box::pin(self.serve(ctx, req))
    }

    fn reset(&self) -> AwsResult<()> {
        self.store.clear("logs.")
    }

    fn start_background(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                if let Err(e) = self.sweep() {
                    tracing::warn!("CloudWatch Logs retention sweep failed: {}", e.message);
                }
            }
        });
    }
}
