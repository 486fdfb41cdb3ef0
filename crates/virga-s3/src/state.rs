//! S3's tables in the store and the records kept in them.
//!
//! | table       | key                                  | value            |
//! |-------------|--------------------------------------|------------------|
//! | s3.bucket   | (name)                               | [`Bucket`]       |
//! | s3.obj      | (bucket, key)                        | current [`ObjectVersion`] (may be a delete marker) |
//! | s3.ver      | (bucket, key, u64::MAX - seq)        | every version, newest first |
//! | s3.mpu      | (bucket, upload id)                  | [`Upload`]       |
//! | s3.part     | (upload id, part number)             | [`Part`]         |
//! | s3.outbox   | (seq)                                | event notification not yet delivered |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::ops::Bound;
use virga_core::{AwsError, AwsResult};
use virga_store::{KeyBuf, KvRead, KvTxn};

pub const BUCKETS: &str = "s3.bucket";
pub const OBJECTS: &str = "s3.obj";
pub const VERSIONS: &str = "s3.ver";
pub const UPLOADS: &str = "s3.mpu";
pub const PARTS: &str = "s3.part";
pub const OUTBOX: &str = "s3.outbox";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Bucket {
    pub name: String,
    pub region: String,
    pub account: String,
    pub created: f64,
    /// `Enabled` or `Suspended`; None if versioning was never configured.
    #[serde(default)]
    pub versioning: Option<String>,
    #[serde(default)]
    pub mfa_delete: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub policy: Option<String>,
    /// Configurations are kept as the model-shaped values the client sent, so a Get
    /// returns exactly what the Put stored.
    #[serde(default)]
    pub cors: Option<Value>,
    #[serde(default)]
    pub lifecycle: Option<Value>,
    #[serde(default)]
    pub notification: Option<Value>,
    #[serde(default)]
    pub website: Option<Value>,
    #[serde(default)]
    pub encryption: Option<Value>,
    #[serde(default)]
    pub ownership: Option<Value>,
    #[serde(default)]
    pub public_access_block: Option<Value>,
    #[serde(default)]
    pub acl: Option<String>,
    #[serde(default)]
    pub accelerate: Option<Value>,
    #[serde(default)]
    pub request_payment: Option<Value>,
    #[serde(default)]
    pub logging: Option<Value>,
    #[serde(default)]
    pub replication: Option<Value>,
    #[serde(default)]
    pub object_lock: Option<Value>,
    /// Created with `x-amz-bucket-object-lock-enabled: true`.
    #[serde(default)]
    pub object_lock_enabled: bool,
}

/// A stored piece of an object's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlobPart {
    pub blob: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ObjectVersion {
    pub key: String,
    /// `null` when written while versioning was off or suspended.
    pub version_id: String,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete_marker: bool,
    pub size: u64,
    /// Quoted, as sent in the ETag header.
    pub etag: String,
    pub last_modified: f64,
    /// Content-Type, Content-Encoding, Cache-Control, ... (model member name -> value).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Algorithm (CRC32, CRC32C, SHA1, SHA256) -> base64 value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<BlobPart>,
    /// Sizes of the multipart upload's parts, when it was one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_sizes: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Upload {
    pub upload_id: String,
    pub key: String,
    pub initiated: f64,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub checksum_algorithm: Option<String>,
    #[serde(default)]
    pub checksum_type: Option<String>,
    #[serde(default)]
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Part {
    pub number: u64,
    pub etag: String,
    pub size: u64,
    pub last_modified: f64,
    pub blob: String,
    #[serde(default)]
    pub checksums: Vec<(String, String)>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

pub fn encode<T: Serialize>(v: &T) -> AwsResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| AwsError::internal(format!("encode: {e}")))
}

pub fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> AwsResult<T> {
    serde_json::from_slice(b).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

pub fn bucket_key(name: &str) -> Vec<u8> {
    KeyBuf::new().str(name).into_vec()
}

pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    KeyBuf::new().str(bucket).str(key).into_vec()
}

pub fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    KeyBuf::new()
        .str(bucket)
        .str(key)
        .u64(u64::MAX - seq)
        .into_vec()
}

pub fn upload_key(bucket: &str, upload_id: &str) -> Vec<u8> {
    KeyBuf::new().str(bucket).str(upload_id).into_vec()
}

pub fn part_key(upload_id: &str, number: u64) -> Vec<u8> {
    KeyBuf::new().str(upload_id).u64(number).into_vec()
}

pub fn get_bucket(r: &dyn KvRead, name: &str) -> AwsResult<Option<Bucket>> {
    r.get(BUCKETS, &bucket_key(name))?
        .map(|b| decode(&b))
        .transpose()
}

pub fn no_such_bucket(name: &str) -> AwsError {
    AwsError::new(404, "NoSuchBucket", "The specified bucket does not exist")
        .with("BucketName", name)
}

pub fn must_bucket(r: &dyn KvRead, name: &str) -> AwsResult<Bucket> {
    get_bucket(r, name)?.ok_or_else(|| no_such_bucket(name))
}

pub fn put_bucket(t: &mut dyn KvTxn, b: &Bucket) -> AwsResult<()> {
    t.put(BUCKETS, &bucket_key(&b.name), &encode(b)?)
}

pub fn current(r: &dyn KvRead, bucket: &str, key: &str) -> AwsResult<Option<ObjectVersion>> {
    r.get(OBJECTS, &object_key(bucket, key))?
        .map(|b| decode(&b))
        .transpose()
}

/// All versions of one key, newest first.
pub fn versions_of(r: &dyn KvRead, bucket: &str, key: &str) -> AwsResult<Vec<ObjectVersion>> {
    let start = object_key(bucket, key);
    let end = virga_store::prefix_end(&start);
    let rows = r.scan(
        VERSIONS,
        Bound::Included(&start),
        end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        usize::MAX,
        false,
    )?;
    rows.iter().map(|(_, v)| decode(v)).collect()
}

/// Any rows at all under `prefix` of `table`.
pub fn any_with_prefix(r: &dyn KvRead, table: &str, prefix: &[u8]) -> AwsResult<bool> {
    let end = virga_store::prefix_end(prefix);
    Ok(!r
        .scan(
            table,
            Bound::Included(prefix),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            1,
            false,
        )?
        .is_empty())
}
