//! CORS as S3 answers it: preflight `OPTIONS` requests are matched against the bucket's
//! CORS rules, and responses to requests with an `Origin` carry the matching rule's
//! `Access-Control-*` headers.

use crate::state::{self, Bucket};
use crate::S3;
use http::{HeaderMap, HeaderValue, Response};
use serde_json::Value;
use virga_core::service::empty_body;
use virga_core::{AwsError, AwsResult, Body, RequestContext};

/// `*` in an allowed origin or header matches any run of characters.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let s = s.to_ascii_lowercase();
    match p.split_once('*') {
        None => p == s,
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post)
        }
    }
}

fn strings<'a>(rule: &'a Value, field: &str) -> Vec<&'a str> {
    rule.get(field)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default()
}

/// The first rule allowing `origin` to use `method` with `headers`.
fn matching_rule<'a>(
    b: &'a Bucket,
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'a Value> {
    let rules = b.cors.as_ref()?.get("CORSRules")?.as_array()?;
    rules.iter().find(|r| {
        strings(r, "AllowedOrigins")
            .iter()
            .any(|o| wildcard_match(o, origin))
            && strings(r, "AllowedMethods")
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
            && headers.iter().all(|h| {
                strings(r, "AllowedHeaders")
                    .iter()
                    .any(|a| wildcard_match(a, h))
            })
    })
}

fn apply(rule: &Value, origin: &str, h: &mut HeaderMap, preflight_headers: Option<&str>) {
    let any_origin = strings(rule, "AllowedOrigins").contains(&"*");
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    if any_origin {
        set(h, "access-control-allow-origin", "*");
    } else {
        set(h, "access-control-allow-origin", origin);
        set(h, "access-control-allow-credentials", "true");
    }
    set(
        h,
        "access-control-allow-methods",
        &strings(rule, "AllowedMethods").join(", "),
    );
    if let Some(req) = preflight_headers.filter(|s| !s.is_empty()) {
        set(h, "access-control-allow-headers", req);
    }
    let expose = strings(rule, "ExposeHeaders");
    if !expose.is_empty() {
        set(h, "access-control-expose-headers", &expose.join(", "));
    }
    if let Some(age) = rule.get("MaxAgeSeconds").and_then(|a| a.as_i64()) {
        set(h, "access-control-max-age", &age.to_string());
    }
    set(
        h,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

fn forbidden(msg: &str) -> AwsError {
    AwsError::new(403, "AccessForbidden", msg)
}

pub fn preflight(
    s3: &S3,
    _ctx: &RequestContext,
    headers: &HeaderMap,
    bucket: Option<&str>,
) -> AwsResult<Response<Body>> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let Some(bucket) = bucket else {
        return Err(forbidden("CORSResponse: Bucket not found"));
    };
    let (Some(origin), Some(method)) = (get("origin"), get("access-control-request-method")) else {
        return Err(AwsError::new(
            400,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        ));
    };
    let b = s3.store.read(|r| state::must_bucket(r, bucket))?;
    if b.cors.is_none() {
        return Err(forbidden(
            "CORSResponse: CORS is not enabled for this bucket.",
        ));
    }
    let req_headers_raw = get("access-control-request-headers").unwrap_or("");
    let req_headers: Vec<String> = req_headers_raw
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let Some(rule) = matching_rule(&b, origin, method, &req_headers) else {
        return Err(forbidden("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."));
    };
    let mut resp = Response::new(empty_body());
    apply(rule, origin, resp.headers_mut(), Some(req_headers_raw));
    Ok(resp)
}

/// Adds CORS headers to an actual (non-preflight) response.
pub fn decorate(s3: &S3, bucket: &str, origin: &str, method: &str, h: &mut HeaderMap) {
    let Ok(Some(b)) = s3.store.read(|r| state::get_bucket(r, bucket)) else {
        return;
    };
    if let Some(rule) = matching_rule(&b, origin, method, &[]) {
        apply(rule, origin, h, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "http://a.com"));
        assert!(wildcard_match(
            "http://*.example.com",
            "http://www.example.com"
        ));
        assert!(!wildcard_match(
            "http://*.example.com",
            "http://example.org"
        ));
        assert!(wildcard_match("X-Amz-*", "x-amz-date"));
    }
}
