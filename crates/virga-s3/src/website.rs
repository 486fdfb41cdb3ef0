//! Static website hosting at `http://<bucket>.s3-website.localhost:<port>/`: index
//! documents for directory paths, the error document (with status 404) for missing
//! keys, redirects for `RedirectAllRequestsTo` and for directory paths without a slash.

use crate::state;
use crate::S3;
use http::{Method, Response};
use virga_core::service::full_body;
use virga_core::{AwsError, AwsResult, Body, RequestContext};

fn html_error(
    status: u16,
    code: &str,
    message: &str,
    bucket: &str,
    request_id: &str,
) -> Response<Body> {
    let body = format!(
        "<html>\n<head><title>{status} {code}</title></head>\n<body>\n<h1>{status} {code}</h1>\n<ul>\n<li>Code: {code}</li>\n<li>Message: {message}</li>\n<li>BucketName: {bucket}</li>\n<li>RequestId: {request_id}</li>\n</ul>\n<hr/>\n</body>\n</html>\n"
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(full_body(body))
        .unwrap_or_else(|_| Response::new(full_body("")))
}

fn object(s3: &S3, bucket: &str, key: &str) -> AwsResult<Option<state::ObjectVersion>> {
    Ok(s3
        .store
        .read(|r| state::current(r, bucket, key))?
        .filter(|v| !v.delete_marker))
}

fn serve_object(s3: &S3, v: &state::ObjectVersion, status: u16, head: bool) -> Response<Body> {
    let ct = v
        .headers
        .get("ContentType")
        .and_then(|c| c.as_str())
        .unwrap_or("binary/octet-stream")
        .to_string();
    let body = if head {
        virga_core::service::empty_body()
    } else {
        crate::body::blob_body(s3.blobs.clone(), &v.parts, 0, v.size)
    };
    Response::builder()
        .status(status)
        .header("content-type", ct)
        .header("content-length", v.size.to_string())
        .header("etag", v.etag.as_str())
        .header(
            "last-modified",
            virga_protocol::time_fmt::rfc822(v.last_modified),
        )
        .body(body)
        .unwrap_or_else(|_| Response::new(full_body("")))
}

pub async fn serve(
    s3: &S3,
    ctx: &RequestContext,
    parts: &http::request::Parts,
    bucket: &str,
) -> AwsResult<Response<Body>> {
    ctx.set_operation("WebsiteGet");
    let rid = ctx.request_id.as_str();
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Ok(html_error(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            bucket,
            rid,
        ));
    }
    let head = parts.method == Method::HEAD;
    let Some(b) = s3.store.read(|r| state::get_bucket(r, bucket))? else {
        return Ok(html_error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
            bucket,
            rid,
        ));
    };
    let Some(cfg) = b.website.clone() else {
        return Ok(html_error(
            404,
            "NoSuchWebsiteConfiguration",
            "The specified bucket does not have a website configuration",
            bucket,
            rid,
        ));
    };
    if let Some(host) = cfg
        .pointer("/RedirectAllRequestsTo/HostName")
        .and_then(|h| h.as_str())
    {
        let proto = cfg
            .pointer("/RedirectAllRequestsTo/Protocol")
            .and_then(|p| p.as_str())
            .unwrap_or("http");
        let loc = format!("{proto}://{host}{}", parts.uri.path());
        return Response::builder()
            .status(301)
            .header("location", loc)
            .body(full_body(""))
            .map_err(|e| AwsError::internal(e.to_string()));
    }
    let suffix = cfg
        .pointer("/IndexDocument/Suffix")
        .and_then(|s| s.as_str())
        .unwrap_or("index.html");
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let mut key = path.trim_start_matches('/').to_string();
    if key.is_empty() || key.ends_with('/') {
        key.push_str(suffix);
    }
    if let Some(v) = object(s3, bucket, &key)? {
        return Ok(serve_object(s3, &v, 200, head));
    }
    // `/docs` with `docs/index.html` present redirects to `/docs/`.
    if !path.ends_with('/') && object(s3, bucket, &format!("{key}/{suffix}"))?.is_some() {
        return Response::builder()
            .status(302)
            .header("location", format!("{}/", parts.uri.path()))
            .body(full_body(""))
            .map_err(|e| AwsError::internal(e.to_string()));
    }
    if let Some(err_key) = cfg.pointer("/ErrorDocument/Key").and_then(|k| k.as_str()) {
        if let Some(v) = object(s3, bucket, err_key)? {
            return Ok(serve_object(s3, &v, 404, head));
        }
    }
    Ok(html_error(
        404,
        "NoSuchKey",
        "The specified key does not exist.",
        bucket,
        rid,
    ))
}
