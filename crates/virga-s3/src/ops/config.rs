//! Bucket configurations: tagging, policy, versioning, CORS, lifecycle, notifications,
//! website, encryption, ownership, public access block. Each is stored as the
//! model-shaped value the client sent, so Get returns what Put stored.

use crate::state::{self, Bucket};
use crate::{Call, Out, S3};
use serde_json::{json, Map, Value};
use virga_core::{AwsError, AwsResult};

fn no_content() -> Out {
    Out {
        status: Some(204),
        ..Default::default()
    }
}

fn update(s3: &S3, c: &Call, f: impl FnOnce(&mut Bucket) -> AwsResult<()>) -> AwsResult<()> {
    let name = c.req("Bucket")?.to_string();
    s3.store.transact(|t| {
        let mut b = state::must_bucket(t, &name)?;
        f(&mut b)?;
        state::put_bucket(t, &b)
    })
}

fn bucket(s3: &S3, c: &Call) -> AwsResult<Bucket> {
    let name = c.req("Bucket")?;
    s3.store.read(|r| state::must_bucket(r, name))
}

fn invalid_tag(msg: &str) -> AwsError {
    AwsError::new(400, "InvalidTag", msg)
}

/// Validates a TagSet and turns it into pairs.
pub fn tag_set(v: Option<&Value>, max: usize) -> AwsResult<Vec<(String, String)>> {
    let mut tags: Vec<(String, String)> = Vec::new();
    let items = v
        .and_then(|t| t.get("TagSet"))
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default();
    for item in items {
        let k = item.get("Key").and_then(|k| k.as_str()).unwrap_or("");
        let val = item.get("Value").and_then(|k| k.as_str()).unwrap_or("");
        push_tag(&mut tags, k, val, max)?;
    }
    Ok(tags)
}

pub fn push_tag(tags: &mut Vec<(String, String)>, k: &str, v: &str, max: usize) -> AwsResult<()> {
    if k.is_empty() || k.chars().count() > 128 {
        return Err(invalid_tag("The TagKey you have provided is invalid"));
    }
    if v.chars().count() > 256 {
        return Err(invalid_tag("The TagValue you have provided is invalid"));
    }
    if k.starts_with("aws:") {
        return Err(invalid_tag(
            "System tags cannot be added/updated by requester",
        ));
    }
    if tags.iter().any(|(x, _)| x == k) {
        return Err(invalid_tag(
            "Cannot provide multiple Tags with the same key",
        ));
    }
    tags.push((k.to_string(), v.to_string()));
    if tags.len() > max {
        return Err(if max == 10 {
            AwsError::new(400, "BadRequest", "Object tags cannot be greater than 10")
        } else {
            invalid_tag("Bucket tag count cannot be greater than 50")
        });
    }
    Ok(())
}

pub fn tags_value(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

pub fn put_bucket_tagging(s3: &S3, c: Call) -> AwsResult<Out> {
    let tags = tag_set(c.input.get("Tagging"), 50)?;
    update(s3, &c, |b| {
        b.tags = tags;
        Ok(())
    })?;
    Ok(no_content())
}

pub fn get_bucket_tagging(s3: &S3, c: Call) -> AwsResult<Out> {
    let b = bucket(s3, &c)?;
    if b.tags.is_empty() {
        return Err(
            AwsError::new(404, "NoSuchTagSet", "The TagSet does not exist")
                .with("BucketName", b.name.as_str()),
        );
    }
    Ok(Out::value(json!({"TagSet": tags_value(&b.tags)})))
}

pub fn delete_bucket_tagging(s3: &S3, c: Call) -> AwsResult<Out> {
    update(s3, &c, |b| {
        b.tags.clear();
        Ok(())
    })?;
    Ok(no_content())
}

pub fn put_bucket_policy(s3: &S3, c: Call) -> AwsResult<Out> {
    let policy = c.str("Policy").unwrap_or("").to_string();
    let parsed: Result<Value, _> = serde_json::from_str(&policy);
    let bucket = c.req("Bucket")?.to_string();
    match parsed {
        Ok(Value::Object(o)) if o.contains_key("Statement") => {
            let statements = match &o["Statement"] {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let own = format!("arn:aws:s3:::{bucket}");
            for st in &statements {
                let resources = match st.get("Resource") {
                    Some(Value::String(r)) => vec![r.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|r| r.as_str().map(|s| s.to_string()))
                        .collect(),
                    _ => Vec::new(),
                };
                let ok = resources.iter().all(|r| {
                    r == &own
                        || r.starts_with(&format!("{own}/"))
                        || r == "*"
                        || (r.ends_with('*') && own.starts_with(r.trim_end_matches('*')))
                });
                if !ok {
                    return Err(AwsError::new(
                        400,
                        "MalformedPolicy",
                        "Policy has invalid resource",
                    ));
                }
            }
        }
        Ok(Value::Object(_)) => {
            return Err(AwsError::new(
                400,
                "MalformedPolicy",
                "Missing required field Statement",
            ))
        }
        _ => {
            return Err(AwsError::new(
                400,
                "MalformedPolicy",
                "Policies must be valid JSON and the first byte must be '{'",
            ))
        }
    }
    update(s3, &c, |b| {
        b.policy = Some(policy);
        Ok(())
    })?;
    Ok(no_content())
}

pub fn get_bucket_policy(s3: &S3, c: Call) -> AwsResult<Out> {
    let b = bucket(s3, &c)?;
    match b.policy {
        Some(p) => Ok(Out::value(json!({ "Policy": p }))),
        None => Err(AwsError::new(
            404,
            "NoSuchBucketPolicy",
            "The bucket policy does not exist",
        )
        .with("BucketName", b.name.as_str())),
    }
}

pub fn delete_bucket_policy(s3: &S3, c: Call) -> AwsResult<Out> {
    update(s3, &c, |b| {
        b.policy = None;
        Ok(())
    })?;
    Ok(no_content())
}

pub fn put_bucket_versioning(s3: &S3, c: Call) -> AwsResult<Out> {
    let cfg = c
        .input
        .get("VersioningConfiguration")
        .cloned()
        .unwrap_or(Value::Null);
    let status = cfg
        .get("Status")
        .and_then(|s| s.as_str())
        .map(|s| s.to_string());
    let mfa = cfg
        .get("MFADelete")
        .and_then(|s| s.as_str())
        .map(|s| s.to_string());
    if let Some(s) = &status {
        if s != "Enabled" && s != "Suspended" {
            return Err(AwsError::new(
                400,
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema",
            ));
        }
    }
    update(s3, &c, |b| {
        if let Some(s) = status {
            b.versioning = Some(s);
        }
        if mfa.is_some() {
            b.mfa_delete = mfa;
        }
        Ok(())
    })?;
    Ok(Out::empty())
}

pub fn get_bucket_versioning(s3: &S3, c: Call) -> AwsResult<Out> {
    let b = bucket(s3, &c)?;
    let mut out = Map::new();
    if let Some(s) = b.versioning {
        out.insert("Status".into(), json!(s));
    }
    if let Some(m) = b.mfa_delete {
        out.insert("MFADelete".into(), json!(m));
    }
    Ok(Out::value(Value::Object(out)))
}

/// A configuration kept as one value on the bucket.
struct ConfigSpec {
    /// The input (and, with `output_payload`, output) member holding it.
    payload: &'static str,
    field: fn(&mut Bucket) -> &mut Option<Value>,
    /// The error a Get answers when none is set.
    missing: fn(&str) -> AwsError,
    validate: fn(&Value) -> AwsResult<Value>,
    output_payload: bool,
    /// What a Get answers when none is set, if not the `missing` error.
    default: Option<fn(&Bucket) -> Option<Value>>,
}

/// Put/Get/Delete of a configuration kept as one value on the bucket.
fn simple_config(s3: &S3, op: &str, c: Call, spec: ConfigSpec) -> AwsResult<Out> {
    let ConfigSpec {
        payload,
        field,
        missing,
        validate,
        output_payload,
        default,
    } = spec;
    if op.starts_with("Put") {
        let v = c.input.get(payload).cloned().unwrap_or(Value::Null);
        let v = validate(&v)?;
        update(s3, &c, |b| {
            *field(b) = Some(v);
            Ok(())
        })?;
        Ok(Out::empty())
    } else if op.starts_with("Delete") {
        update(s3, &c, |b| {
            *field(b) = None;
            Ok(())
        })?;
        Ok(no_content())
    } else {
        let mut b = bucket(s3, &c)?;
        let name = b.name.clone();
        let value = field(&mut b).take().or_else(|| default.and_then(|d| d(&b)));
        match value {
            Some(v) if output_payload => Ok(Out::value(json!({ payload: v }))),
            Some(v) => Ok(Out::value(v)),
            None => Err(missing(&name)),
        }
    }
}

fn malformed(msg: &str) -> AwsError {
    AwsError::new(400, "MalformedXML", msg)
}

pub fn cors(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    simple_config(
        s3,
        op,
        c,
        ConfigSpec {
            payload: "CORSConfiguration",
            field: |b| &mut b.cors,
            missing: |name| {
                AwsError::new(
                    404,
                    "NoSuchCORSConfiguration",
                    "The CORS configuration does not exist",
                )
                .with("BucketName", name)
            },
            validate: |v| {
                let rules = v.get("CORSRules").and_then(|r| r.as_array());
                match rules {
                Some(r) if !r.is_empty() && r.len() <= 100 => {}
                _ => return Err(malformed("The XML you provided was not well-formed or did not validate against our published schema")),
            }
                for r in rules.into_iter().flatten() {
                    for m in r
                        .get("AllowedMethods")
                        .and_then(|m| m.as_array())
                        .into_iter()
                        .flatten()
                    {
                        let m = m.as_str().unwrap_or("");
                        if !["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&m) {
                            return Err(AwsError::new(
                            400,
                            "InvalidRequest",
                            format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}"),
                        ));
                        }
                    }
                }
                Ok(v.clone())
            },
            output_payload: false,
            default: None,
        },
    )
}

pub fn lifecycle(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    simple_config(
        s3,
        op,
        c,
        ConfigSpec {
            payload: "LifecycleConfiguration",
            field: |b| &mut b.lifecycle,
            missing: |name| {
                AwsError::new(
                    404,
                    "NoSuchLifecycleConfiguration",
                    "The lifecycle configuration does not exist",
                )
                .with("BucketName", name)
            },
            validate: |v| {
                let rules = v
                    .get("Rules")
                    .and_then(|r| r.as_array())
                    .cloned()
                    .unwrap_or_default();
                if rules.is_empty() {
                    return Err(malformed("The XML you provided was not well-formed or did not validate against our published schema"));
                }
                let mut ids = Vec::new();
                let mut out = Vec::new();
                for mut r in rules {
                    match r.get("Status").and_then(|s| s.as_str()) {
                    Some("Enabled") | Some("Disabled") => {}
                    _ => return Err(malformed("The XML you provided was not well-formed or did not validate against our published schema")),
                }
                    if let Some(days) = r.pointer("/Expiration/Days").and_then(|d| d.as_i64()) {
                        if days <= 0 {
                            return Err(AwsError::new(
                                400,
                                "InvalidArgument",
                                "'Days' for Expiration action must be a positive integer",
                            ));
                        }
                    }
                    let id = match r.get("ID").and_then(|i| i.as_str()) {
                        Some(id) => id.to_string(),
                        None => {
                            let id = uuid::Uuid::new_v4().simple().to_string();
                            r["ID"] = json!(id);
                            id
                        }
                    };
                    if ids.contains(&id) {
                        return Err(AwsError::new(
                            400,
                            "InvalidArgument",
                            "Rule ID must be unique. Found same ID for more than one rule",
                        ));
                    }
                    ids.push(id);
                    out.push(r);
                }
                Ok(json!({ "Rules": out }))
            },
            output_payload: false,
            default: None,
        },
    )
}

pub fn notification(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    if op.starts_with("Get") {
        let b = bucket(s3, &c)?;
        return Ok(Out::value(b.notification.unwrap_or_else(|| json!({}))));
    }
    let mut v = c
        .input
        .get("NotificationConfiguration")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for (list, arn_field) in [
        ("TopicConfigurations", "TopicArn"),
        ("QueueConfigurations", "QueueArn"),
        ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
    ] {
        if let Some(items) = v.get_mut(list).and_then(|l| l.as_array_mut()) {
            for it in items.iter_mut() {
                let arn = it.get(arn_field).and_then(|a| a.as_str()).unwrap_or("");
                let events = it.get("Events").and_then(|e| e.as_array());
                if !arn.starts_with("arn:") || events.is_none_or(|e| e.is_empty()) {
                    return Err(AwsError::new(
                        400,
                        "InvalidArgument",
                        "Unable to validate the following destination configurations",
                    ));
                }
                for e in events.into_iter().flatten() {
                    let e = e.as_str().unwrap_or("");
                    if !crate::events::valid_event_name(e) {
                        return Err(AwsError::new(
                            400,
                            "InvalidArgument",
                            format!("The event is not supported for notifications: {e}"),
                        ));
                    }
                }
                if it.get("Id").is_none() {
                    it["Id"] = json!(uuid::Uuid::new_v4().to_string());
                }
            }
        }
    }
    let name = c.req("Bucket")?.to_string();
    s3.store.transact(|t| {
        let mut b = state::must_bucket(t, &name)?;
        b.notification = Some(v);
        state::put_bucket(t, &b)?;
        crate::events::record_test_events(t, s3, &b, &c.ctx)
    })?;
    s3.outbox_ready.notify_one();
    Ok(Out::empty())
}

pub fn website(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    simple_config(
        s3,
        op,
        c,
        ConfigSpec {
            payload: "WebsiteConfiguration",
            field: |b| &mut b.website,
            missing: |name| {
                AwsError::new(
                    404,
                    "NoSuchWebsiteConfiguration",
                    "The specified bucket does not have a website configuration",
                )
                .with("BucketName", name)
            },
            validate: |v| {
                let has_index = v
                    .pointer("/IndexDocument/Suffix")
                    .and_then(|s| s.as_str())
                    .is_some_and(|s| !s.is_empty() && !s.contains('/'));
                if !has_index && v.get("RedirectAllRequestsTo").is_none() {
                    return Err(AwsError::new(
                    400,
                    "InvalidArgument",
                    "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty",
                ));
                }
                Ok(v.clone())
            },
            output_payload: false,
            default: None,
        },
    )
}

pub fn encryption(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    if op.starts_with("Get") {
        let b = bucket(s3, &c)?;
        // Every bucket has SSE-S3 by default, as on AWS since 2023.
        let v = b.encryption.unwrap_or_else(|| {
            json!({"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": false}]})
        });
        return Ok(Out::value(
            json!({ "ServerSideEncryptionConfiguration": v }),
        ));
    }
    simple_config(
        s3,
        op,
        c,
        ConfigSpec {
            payload: "ServerSideEncryptionConfiguration",
            field: |b| &mut b.encryption,
            missing: |_| AwsError::internal("unreachable"),
            validate: |v| Ok(v.clone()),
            output_payload: true,
            default: None,
        },
    )
}

pub fn ownership(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    simple_config(
        s3,
        op,
        c,
        ConfigSpec {
            payload: "OwnershipControls",
            field: |b| &mut b.ownership,
            missing: |name| {
                AwsError::new(
                    404,
                    "OwnershipControlsNotFoundError",
                    "The bucket ownership controls were not found",
                )
                .with("BucketName", name)
            },
            validate: |v| Ok(v.clone()),
            output_payload: true,
            default: None,
        },
    )
}

pub fn public_access_block(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    simple_config(
        s3,
        op,
        c,
        ConfigSpec {
            payload: "PublicAccessBlockConfiguration",
            field: |b| &mut b.public_access_block,
            missing: |name| {
                AwsError::new(
                    404,
                    "NoSuchPublicAccessBlockConfiguration",
                    "The public access block configuration was not found",
                )
                .with("BucketName", name)
            },
            validate: |v| Ok(v.clone()),
            output_payload: true,
            default: None,
        },
    )
}

fn not_configured(what: &'static str) -> fn(&str) -> AwsError {
    match what {
        "replication" => |name| {
            AwsError::new(
                404,
                "ReplicationConfigurationNotFoundError",
                "The replication configuration was not found",
            )
            .with("BucketName", name)
        },
        _ => |name| {
            AwsError::new(
                404,
                "ObjectLockConfigurationNotFoundError",
                "Object Lock configuration does not exist for this bucket",
            )
            .with("BucketName", name)
        },
    }
}

/// Accelerate, request-payment, logging, replication and object-lock configurations:
/// stored and returned as sent (Virga does not act on them), with S3's defaults.
pub fn other(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    let accepted = |v: &Value| Ok(v.clone());
    let spec = match op {
        "PutBucketAccelerateConfiguration" | "GetBucketAccelerateConfiguration" => ConfigSpec {
            payload: "AccelerateConfiguration",
            field: |b| &mut b.accelerate,
            missing: |_| AwsError::internal("unreachable"),
            validate: |v| {
                match v.get("Status").and_then(|s| s.as_str()) {
                Some("Enabled" | "Suspended") => Ok(v.clone()),
                _ => Err(malformed("The XML you provided was not well-formed or did not validate against our published schema")),
            }
            },
            output_payload: false,
            default: Some(|_| Some(json!({}))),
        },
        "PutBucketRequestPayment" | "GetBucketRequestPayment" => ConfigSpec {
            payload: "RequestPaymentConfiguration",
            field: |b| &mut b.request_payment,
            missing: |_| AwsError::internal("unreachable"),
            validate: |v| {
                match v.get("Payer").and_then(|s| s.as_str()) {
                Some("Requester" | "BucketOwner") => Ok(v.clone()),
                _ => Err(malformed("The XML you provided was not well-formed or did not validate against our published schema")),
            }
            },
            output_payload: false,
            default: Some(|_| Some(json!({"Payer": "BucketOwner"}))),
        },
        "PutBucketLogging" | "GetBucketLogging" => ConfigSpec {
            payload: "BucketLoggingStatus",
            field: |b| &mut b.logging,
            missing: |_| AwsError::internal("unreachable"),
            validate: accepted,
            output_payload: false,
            default: Some(|_| Some(json!({}))),
        },
        "PutBucketReplication" | "GetBucketReplication" | "DeleteBucketReplication" => {
            if op.starts_with("Put") {
                let b = bucket(s3, &c)?;
                if b.versioning.as_deref() != Some("Enabled") {
                    return Err(AwsError::new(
                        400,
                        "InvalidRequest",
                        "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
                    ));
                }
            }
            ConfigSpec {
                payload: "ReplicationConfiguration",
                field: |b| &mut b.replication,
                missing: not_configured("replication"),
                validate: accepted,
                output_payload: true,
                default: None,
            }
        }
        _ => ConfigSpec {
            payload: "ObjectLockConfiguration",
            field: |b| &mut b.object_lock,
            missing: not_configured("object lock"),
            validate: accepted,
            output_payload: true,
            default: Some(|b| {
                b.object_lock_enabled
                    .then(|| json!({"ObjectLockEnabled": "Enabled"}))
            }),
        },
    };
    simple_config(s3, op, c, spec)
}

/// Whether the bucket's policy makes it public (Virga's never do: policies are stored,
/// not evaluated).
pub fn policy_status(s3: &S3, c: Call) -> AwsResult<Out> {
    let b = bucket(s3, &c)?;
    if b.policy.is_none() {
        return Err(AwsError::new(
            404,
            "NoSuchBucketPolicy",
            "The bucket policy does not exist",
        )
        .with("BucketName", b.name.as_str()));
    }
    Ok(Out::value(json!({"PolicyStatus": {"IsPublic": false}})))
}
