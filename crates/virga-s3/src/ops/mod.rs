//! S3 operation handlers, one file per group. Adding an operation is a function in
//! its group and a line in [`call`].

mod buckets;
mod config;
mod listing;
pub(crate) mod multipart;
pub(crate) mod objects;

use crate::{Call, Out, S3};
use virga_core::{AwsError, AwsResult};

pub async fn call(s3: &S3, op: &str, c: Call) -> AwsResult<Out> {
    match op {
        "ListBuckets" => buckets::list_buckets(s3, c),
        "CreateBucket" => buckets::create_bucket(s3, c),
        "HeadBucket" => buckets::head_bucket(s3, c),
        "DeleteBucket" => buckets::delete_bucket(s3, c),
        "GetBucketLocation" => buckets::get_bucket_location(s3, c),
        "GetBucketAcl" => buckets::get_bucket_acl(s3, c),
        "PutBucketAcl" => buckets::put_bucket_acl(s3, c),

        "PutBucketTagging" => config::put_bucket_tagging(s3, c),
        "GetBucketTagging" => config::get_bucket_tagging(s3, c),
        "DeleteBucketTagging" => config::delete_bucket_tagging(s3, c),
        "PutBucketPolicy" => config::put_bucket_policy(s3, c),
        "GetBucketPolicy" => config::get_bucket_policy(s3, c),
        "DeleteBucketPolicy" => config::delete_bucket_policy(s3, c),
        "PutBucketVersioning" => config::put_bucket_versioning(s3, c),
        "GetBucketVersioning" => config::get_bucket_versioning(s3, c),
        "PutBucketCors" | "GetBucketCors" | "DeleteBucketCors" => config::cors(s3, op, c),
        "PutBucketLifecycleConfiguration"
        | "GetBucketLifecycleConfiguration"
        | "DeleteBucketLifecycle" => config::lifecycle(s3, op, c),
        "PutBucketNotificationConfiguration" | "GetBucketNotificationConfiguration" => {
            config::notification(s3, op, c)
        }
        "PutBucketWebsite" | "GetBucketWebsite" | "DeleteBucketWebsite" => {
            config::website(s3, op, c)
        }
        "PutBucketEncryption" | "GetBucketEncryption" | "DeleteBucketEncryption" => {
            config::encryption(s3, op, c)
        }
        "PutBucketOwnershipControls"
        | "GetBucketOwnershipControls"
        | "DeleteBucketOwnershipControls" => config::ownership(s3, op, c),
        "PutPublicAccessBlock" | "GetPublicAccessBlock" | "DeletePublicAccessBlock" => {
            config::public_access_block(s3, op, c)
        }
        "PutBucketAccelerateConfiguration"
        | "GetBucketAccelerateConfiguration"
        | "PutBucketRequestPayment"
        | "GetBucketRequestPayment"
        | "PutBucketLogging"
        | "GetBucketLogging"
        | "PutBucketReplication"
        | "GetBucketReplication"
        | "DeleteBucketReplication"
        | "PutObjectLockConfiguration"
        | "GetObjectLockConfiguration" => config::other(s3, op, c),
        "GetBucketPolicyStatus" => config::policy_status(s3, c),

        "PutObject" => objects::put_object(s3, c).await,
        "GetObject" => objects::get_object(s3, c, false),
        "HeadObject" => objects::get_object(s3, c, true),
        "DeleteObject" => objects::delete_object(s3, c).await,
        "DeleteObjects" => objects::delete_objects(s3, c).await,
        "CopyObject" => objects::copy_object(s3, c).await,
        "PutObjectTagging" => objects::put_object_tagging(s3, c).await,
        "GetObjectTagging" => objects::get_object_tagging(s3, c),
        "DeleteObjectTagging" => objects::delete_object_tagging(s3, c).await,
        "GetObjectAcl" => objects::get_object_acl(s3, c),
        "PutObjectAcl" => objects::put_object_acl(s3, c),

        "ListObjects" => listing::list_objects(s3, c, false),
        "ListObjectsV2" => listing::list_objects(s3, c, true),
        "ListObjectVersions" => listing::list_object_versions(s3, c),
        "ListMultipartUploads" => listing::list_multipart_uploads(s3, c),

        "CreateMultipartUpload" => multipart::create(s3, c).await,
        "UploadPart" => multipart::upload_part(s3, c).await,
        "UploadPartCopy" => multipart::upload_part_copy(s3, c).await,
        "ListParts" => multipart::list_parts(s3, c),
        "CompleteMultipartUpload" => multipart::complete(s3, c).await,
        "AbortMultipartUpload" => multipart::abort(s3, c).await,

        _ => Err(AwsError::new(
            501,
            "NotImplemented",
            format!("Virga does not implement the S3 operation {op} yet"),
        )),
    }
}
