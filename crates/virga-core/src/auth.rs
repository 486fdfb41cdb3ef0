//! Request signatures: finding them (`parse`) and checking them (`verify`).
//!
//! Four shapes are understood, the ones AWS itself accepts:
//! - SigV4 in the `Authorization` header (every current SDK);
//! - SigV4 in the query string (presigned URLs: `X-Amz-Algorithm=AWS4-HMAC-SHA256&...`);
//! - SigV2 in the `Authorization` header (`AWS AK:signature`, S3's legacy scheme);
//! - SigV2 in the query string (`AWSAccessKeyId=..&Signature=..&Expires=..`, what boto3's
//!   `generate_presigned_url` produces for S3 against a custom endpoint).
//!
//! AWS's behaviour is the spec. Where clients legitimately differ (how the path or a `+` in
//! the query was encoded), `verify` accepts a signature that is valid under any of the
//! canonical forms those clients use; the first (AWS's own) form is the one reported in a
//! [`AuthError::SignatureMismatch`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// The SigV4 algorithm name, in the `Authorization` header and in `X-Amz-Algorithm`.
pub const ALGORITHM_V4: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The payload hash of presigned S3 URLs and of S3 requests that do not sign their body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The longest a SigV4 presigned URL may live: seven days.
pub const MAX_PRESIGNED_EXPIRES: i64 = 604_800;

/// The S3 sub-resources that SigV2 signs as part of the canonicalized resource
/// (the classic list, as botocore's `HmacV1Auth` has it).
const V2_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Where a request's signature was found, and which scheme it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
    HeaderV4,
    /// Presigned SigV4: `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...` in the query.
    QueryV4,
    /// `Authorization: AWS AK:signature`
    HeaderV2,
    /// Presigned SigV2: `AWSAccessKeyId=..&Signature=..&Expires=..` in the query.
    QueryV2,
}

/// A request's signature, as found by [`parse`]; checked by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    pub kind: AuthKind,
    pub access_key: String,
    /// The region of the V4 credential scope; `None` for V2.
    pub region: Option<String>,
    /// The service of the V4 credential scope (e.g. `s3`, `sqs`); `None` for V2.
    pub service: Option<String>,
    /// The date of the V4 credential scope (`YYYYMMDD`); `None` for V2.
    pub scope_date: Option<String>,
    /// When the request was signed. V4: the ISO 8601 basic time that was signed
    /// (`20150830T123600Z`, from `x-amz-date`, `Date` or `X-Amz-Date`). V2 header: the
    /// `x-amz-date` header if present, else the `Date` header, verbatim. V2 query: `None`.
    pub request_time: Option<String>,
    /// V4: the lowercase names of the signed headers, in the order given. V2: empty.
    pub signed_headers: Vec<String>,
    /// V4: the lowercase hex signature. V2: the base64 signature (query value decoded).
    pub signature: String,
    /// V4 presigned: `X-Amz-Expires` (seconds after `request_time`).
    /// V2 presigned: `Expires` (absolute, seconds since the epoch). Otherwise `None`.
    pub expires: Option<i64>,
    /// The session token of temporary credentials (`x-amz-security-token` header or
    /// `X-Amz-Security-Token` query parameter), if the request has one.
    pub security_token: Option<String>,
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A presigned URL past `X-Amz-Date + X-Amz-Expires` (V4) or `Expires` (V2).
    Expired,
    /// The signature does not match. V4 carries the string to sign and the canonical
    /// request that Virga computed (S3 returns both in `SignatureDoesNotMatch`); V2 carries
    /// the string to sign and an empty canonical request.
    SignatureMismatch {
        string_to_sign: String,
        canonical_request: String,
    },
    /// The signature's parts are missing or ill-formed; a human-readable reason.
    Malformed(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Expired => f.write_str("Request has expired"),
            AuthError::SignatureMismatch { .. } => f.write_str(
                "The request signature we calculated does not match the signature you provided. \
                 Check your key and signing method.",
            ),
            AuthError::Malformed(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for AuthError {}

/// What `parse` and `verify` read of an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as received on the wire (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as received (no leading `?`); may be empty.
    pub raw_query: &'a str,
    pub headers: &'a http::HeaderMap,
    /// Hex SHA-256 of the body for services that do not send `x-amz-content-sha256`
    /// (non-S3); `None` otherwise.
    pub body_sha256: Option<&'a str>,
}

fn malformed(reason: impl Into<String>) -> AuthError {
    AuthError::Malformed(reason.into())
}

// ---------------------------------------------------------------------------------- parse

/// Finds the signature of a request. `Ok(None)` means an anonymous request.
pub fn parse(req: &SignedRequest) -> Result<Option<ParsedAuth>, AuthError> {
    let params = split_query(req.raw_query);
    let has_v4_query = find_param(&params, "X-Amz-Algorithm").is_some();
    let has_v2_query = find_param(&params, "AWSAccessKeyId").is_some();

    if let Some(value) = req.headers.get(http::header::AUTHORIZATION) {
        if has_v4_query || has_v2_query {
            return Err(malformed(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                 Signature query string parameter or the Authorization header should be specified",
            ));
        }
        let value = value
            .to_str()
            .map_err(|_| malformed("the Authorization header is not valid ASCII"))?
            .trim();
        return parse_authorization_header(value, req).map(Some);
    }
    if has_v4_query {
        if has_v2_query {
            return Err(malformed(
                "Only one auth mechanism allowed; X-Amz-Algorithm and AWSAccessKeyId are both present",
            ));
        }
        return parse_query_v4(&params, req).map(Some);
    }
    if has_v2_query {
        return parse_query_v2(&params, req).map(Some);
    }
    for name in ["X-Amz-Credential", "X-Amz-Signature"] {
        if find_param(&params, name).is_some() {
            return Err(malformed(format!(
                "{name} is present but X-Amz-Algorithm is missing"
            )));
        }
    }
    Ok(None)
}

fn parse_authorization_header(value: &str, req: &SignedRequest) -> Result<ParsedAuth, AuthError> {
    let (scheme, rest) = match value.split_once([' ', '\t']) {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (value, ""),
    };
    match scheme {
        ALGORITHM_V4 => parse_header_v4(rest, req),
        "AWS" => parse_header_v2(rest, req),
        "" => Err(malformed("the Authorization header is empty")),
        other => Err(malformed(format!(
            "unsupported authorization type {other:?}; expected {ALGORITHM_V4} or AWS"
        ))),
    }
}

fn parse_header_v4(rest: &str, req: &SignedRequest) -> Result<ParsedAuth, AuthError> {
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(malformed(format!(
                "Authorization header component {part:?} is not of the form key=value"
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let credential =
        credential.ok_or_else(|| malformed("the Authorization header is missing Credential"))?;
    let signed_headers = signed_headers
        .ok_or_else(|| malformed("the Authorization header is missing SignedHeaders"))?;
    let signature =
        signature.ok_or_else(|| malformed("the Authorization header is missing Signature"))?;
    let scope = parse_credential(credential)?;

    let request_time = if let Some(v) = header_str(req.headers, "x-amz-date")? {
        parse_amz_date(v.trim())
            .map(|_| v.trim().to_string())
            .ok_or_else(|| {
                malformed(format!(
                    "X-Amz-Date {v:?} is not of the form YYYYMMDDTHHMMSSZ"
                ))
            })?
    } else if let Some(v) = header_str(req.headers, "date")? {
        date_header_to_amz(v.trim()).ok_or_else(|| {
            malformed(format!(
                "the Date header {v:?} is neither ISO 8601 basic nor RFC 1123"
            ))
        })?
    } else {
        return Err(malformed(
            "the request is signed with SigV4 but has neither an X-Amz-Date nor a Date header",
        ));
    };
    check_scope_date(&scope.date, &request_time)?;

    Ok(ParsedAuth {
        kind: AuthKind::HeaderV4,
        access_key: scope.access_key,
        region: Some(scope.region),
        service: Some(scope.service),
        scope_date: Some(scope.date),
        request_time: Some(request_time),
        signed_headers: parse_signed_headers(signed_headers)?,
        signature: parse_v4_signature(signature)?,
        expires: None,
        security_token: header_str(req.headers, "x-amz-security-token")?.map(str::to_string),
    })
}

fn parse_query_v4(params: &[RawParam], req: &SignedRequest) -> Result<ParsedAuth, AuthError> {
    let get = |name: &str| -> Result<String, AuthError> {
        find_param(params, name)
            .map(|p| p.value_string())
            .ok_or_else(|| malformed(format!("the presigned URL is missing {name}")))
    };
    let algorithm = get("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM_V4 {
        return Err(malformed(format!(
            "X-Amz-Algorithm {algorithm:?} is not supported; only {ALGORITHM_V4} is"
        )));
    }
    let scope = parse_credential(&get("X-Amz-Credential")?)?;
    let request_time = get("X-Amz-Date")?;
    if parse_amz_date(&request_time).is_none() {
        return Err(malformed(format!(
            "X-Amz-Date {request_time:?} is not of the form YYYYMMDDTHHMMSSZ"
        )));
    }
    check_scope_date(&scope.date, &request_time)?;
    let expires_raw = get("X-Amz-Expires")?;
    let expires: i64 = expires_raw
        .trim()
        .parse()
        .map_err(|_| malformed(format!("X-Amz-Expires {expires_raw:?} is not a number")))?;
    if expires > MAX_PRESIGNED_EXPIRES {
        return Err(malformed(format!(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than {MAX_PRESIGNED_EXPIRES} seconds"
        )));
    }
    if expires < 1 {
        return Err(malformed("X-Amz-Expires must be non-negative".to_string()));
    }
    let signed_headers = parse_signed_headers(&get("X-Amz-SignedHeaders")?)?;
    let signature = parse_v4_signature(&get("X-Amz-Signature")?)?;
    let security_token = match find_param(params, "X-Amz-Security-Token") {
        Some(p) => Some(p.value_string()),
        None => header_str(req.headers, "x-amz-security-token")?.map(str::to_string),
    };
    Ok(ParsedAuth {
        kind: AuthKind::QueryV4,
        access_key: scope.access_key,
        region: Some(scope.region),
        service: Some(scope.service),
        scope_date: Some(scope.date),
        request_time: Some(request_time),
        signed_headers,
        signature,
        expires: Some(expires),
        security_token,
    })
}

fn parse_header_v2(rest: &str, req: &SignedRequest) -> Result<ParsedAuth, AuthError> {
    let Some((access_key, signature)) = rest.rsplit_once(':') else {
        return Err(malformed(
            "the Authorization header is not of the form AWS AccessKeyId:Signature",
        ));
    };
    let (access_key, signature) = (access_key.trim(), signature.trim());
    if access_key.is_empty() || signature.is_empty() {
        return Err(malformed(
            "the Authorization header is not of the form AWS AccessKeyId:Signature",
        ));
    }
    let request_time = match header_str(req.headers, "x-amz-date")? {
        Some(v) => v.trim().to_string(),
        None => match header_str(req.headers, "date")? {
            Some(v) => v.trim().to_string(),
            None => return Err(malformed(
                "the request is signed with SigV2 but has neither a Date nor an x-amz-date header",
            )),
        },
    };
    Ok(ParsedAuth {
        kind: AuthKind::HeaderV2,
        access_key: access_key.to_string(),
        region: None,
        service: None,
        scope_date: None,
        request_time: Some(request_time),
        signed_headers: Vec::new(),
        signature: signature.to_string(),
        expires: None,
        security_token: header_str(req.headers, "x-amz-security-token")?.map(str::to_string),
    })
}

fn parse_query_v2(params: &[RawParam], req: &SignedRequest) -> Result<ParsedAuth, AuthError> {
    let access_key = find_param(params, "AWSAccessKeyId")
        .map(|p| p.value_string())
        .unwrap_or_default();
    if access_key.is_empty() {
        return Err(malformed("AWSAccessKeyId is empty"));
    }
    // A base64 signature has no spaces: a `+` sent unencoded is a `+`, not a space.
    let signature = find_param(params, "Signature")
        .map(|p| String::from_utf8_lossy(&decode(p.value.unwrap_or(""), false)).into_owned())
        .ok_or_else(|| malformed("the presigned URL has AWSAccessKeyId but no Signature"))?;
    if signature.is_empty() {
        return Err(malformed("the Signature query parameter is empty"));
    }
    let expires_raw = find_param(params, "Expires")
        .map(|p| p.value_string())
        .ok_or_else(|| malformed("the presigned URL has AWSAccessKeyId but no Expires"))?;
    let expires: i64 = expires_raw.trim().parse().map_err(|_| {
        malformed(format!(
            "Expires {expires_raw:?} is not a time in seconds since the epoch"
        ))
    })?;
    let security_token = match find_param_ci(params, "x-amz-security-token") {
        Some(p) => Some(p.value_string()),
        None => header_str(req.headers, "x-amz-security-token")?.map(str::to_string),
    };
    Ok(ParsedAuth {
        kind: AuthKind::QueryV2,
        access_key,
        region: None,
        service: None,
        scope_date: None,
        request_time: None,
        signed_headers: Vec::new(),
        signature,
        expires: Some(expires),
        security_token,
    })
}

struct CredentialScope {
    access_key: String,
    date: String,
    region: String,
    service: String,
}

/// `AK/YYYYMMDD/region/service/aws4_request`
fn parse_credential(credential: &str) -> Result<CredentialScope, AuthError> {
    let bad = |why: &str| {
        malformed(format!(
            "Credential {credential:?} is malformed ({why}); expected \
             <access key>/<YYYYMMDD>/<region>/<service>/aws4_request"
        ))
    };
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next().unwrap_or_default();
    let service = parts.next().unwrap_or_default();
    let region = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let access_key = parts.next().unwrap_or_default();
    if access_key.is_empty() {
        return Err(bad("too few parts"));
    }
    if terminator != "aws4_request" {
        return Err(bad("it does not end in aws4_request"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the date is not YYYYMMDD"));
    }
    if region.is_empty() {
        return Err(bad("the region is empty"));
    }
    if service.is_empty() {
        return Err(bad("the service is empty"));
    }
    Ok(CredentialScope {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
    })
}

fn check_scope_date(scope_date: &str, request_time: &str) -> Result<(), AuthError> {
    if request_time.get(..8) == Some(scope_date) {
        Ok(())
    } else {
        Err(malformed(format!(
            "the date of the credential scope ({scope_date}) does not match the date of \
             the request ({request_time})"
        )))
    }
}

fn parse_signed_headers(list: &str) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = list
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(malformed(format!(
            "SignedHeaders {list:?} is malformed: expected header names separated by ';'"
        )));
    }
    Ok(names)
}

fn parse_v4_signature(sig: &str) -> Result<String, AuthError> {
    let sig = sig.trim();
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed(format!(
            "Signature {sig:?} is not 64 hexadecimal digits"
        )));
    }
    Ok(sig.to_ascii_lowercase())
}

// --------------------------------------------------------------------------------- verify

/// Verifies the signature with the secret key. `now` comes from Virga's clock.
///
/// `s3_style` = true for S3: the canonical URI is the raw path as sent (single-encoded,
/// not normalized). false for all other services: the canonical URI is the raw path with
/// dot segments and repeated slashes removed, URI-encoded once more (double-encoded), as
/// botocore and the AWS SDKs do for non-S3 services.
pub fn verify(
    auth: &ParsedAuth,
    req: &SignedRequest,
    secret_key: &str,
    now: SystemTime,
    s3_style: bool,
) -> Result<(), AuthError> {
    match auth.kind {
        AuthKind::HeaderV4 | AuthKind::QueryV4 => verify_v4(auth, req, secret_key, now, s3_style),
        AuthKind::HeaderV2 | AuthKind::QueryV2 => verify_v2(auth, req, secret_key, now),
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn verify_v4(
    auth: &ParsedAuth,
    req: &SignedRequest,
    secret_key: &str,
    now: SystemTime,
    s3_style: bool,
) -> Result<(), AuthError> {
    let missing = |what: &str| malformed(format!("the SigV4 signature has no {what}"));
    let request_time = auth
        .request_time
        .as_deref()
        .ok_or_else(|| missing("date"))?;
    let scope_date = auth
        .scope_date
        .as_deref()
        .ok_or_else(|| missing("scope date"))?;
    let region = auth.region.as_deref().ok_or_else(|| missing("region"))?;
    let service = auth.service.as_deref().ok_or_else(|| missing("service"))?;

    if auth.kind == AuthKind::QueryV4 {
        let signed_at = parse_amz_date(request_time).ok_or_else(|| {
            malformed(format!(
                "X-Amz-Date {request_time:?} is not of the form YYYYMMDDTHHMMSSZ"
            ))
        })?;
        let expires = auth.expires.ok_or_else(|| missing("X-Amz-Expires"))?;
        if unix_secs(now) > signed_at.saturating_add(expires) {
            return Err(AuthError::Expired);
        }
    }

    let params = split_query(req.raw_query);
    let exclude_signature = auth.kind == AuthKind::QueryV4;
    let mut queries = vec![canonical_query(&params, exclude_signature, true)];
    if req.raw_query.contains('+') {
        push_unique(
            &mut queries,
            canonical_query(&params, exclude_signature, false),
        );
    }
    let uris = canonical_uri_candidates(req.raw_path, s3_style);
    let payloads = payload_candidates(auth, req, &params, s3_style)?;
    let headers_block = canonical_headers(&auth.signed_headers, req.headers);
    let signed_list = auth.signed_headers.join(";");
    let scope = format!("{scope_date}/{region}/{service}/aws4_request");
    let key = signing_key(secret_key, scope_date, region, service);

    let mut first: Option<(String, String)> = None;
    for uri in &uris {
        for query in &queries {
            for payload in &payloads {
                let mut creq: Vec<u8> = Vec::with_capacity(256 + headers_block.len());
                creq.extend_from_slice(req.method.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(uri.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(query.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(&headers_block);
                creq.push(b'\n');
                creq.extend_from_slice(signed_list.as_bytes());
                creq.push(b'\n');
                creq.extend_from_slice(payload.as_bytes());
                let sts = format!(
                    "{ALGORITHM_V4}\n{request_time}\n{scope}\n{}",
                    hex::encode(Sha256::digest(&creq))
                );
                let expected = hex::encode(hmac_sha256(&key, sts.as_bytes()));
                if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
                    return Ok(());
                }
                if first.is_none() {
                    first = Some((sts, String::from_utf8_lossy(&creq).into_owned()));
                }
            }
        }
    }
    let (string_to_sign, canonical_request) = first.unwrap_or_default();
    Err(AuthError::SignatureMismatch {
        string_to_sign,
        canonical_request,
    })
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The canonical URIs to try, AWS's own rule first.
fn canonical_uri_candidates(raw_path: &str, s3_style: bool) -> Vec<String> {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let mut out = Vec::new();
    if s3_style {
        // S3: the path as sent. Then the path re-encoded with AWS's rules, for clients that
        // send characters (`(`, `!`, `%7E`...) encoded differently from how they signed them.
        out.push(path.to_string());
        push_unique(&mut out, reencode_path(path));
    } else {
        // Other services: normalized and encoded once more (botocore, aws-sdk-*).
        out.push(uri_encode(remove_dot_segments(path).as_bytes(), false));
        // Then clients that do not normalize, or that sign the single-encoded path
        // (the SigV4 test suite's own convention).
        push_unique(&mut out, uri_encode(path.as_bytes(), false));
        push_unique(&mut out, path.to_string());
        push_unique(&mut out, reencode_path(&remove_dot_segments(path)));
    }
    out
}

/// Decodes a percent-encoded path and encodes it again with AWS's rules, keeping `/`.
fn reencode_path(path: &str) -> String {
    uri_encode(&decode(path, false), false)
}

/// RFC 3986 dot-segment removal, also collapsing repeated slashes (botocore's
/// `remove_dot_segments`, which AWS services expect).
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{first}{}{last}", segments.join("/"))
}

fn payload_candidates(
    auth: &ParsedAuth,
    req: &SignedRequest,
    params: &[RawParam],
    s3_style: bool,
) -> Result<Vec<String>, AuthError> {
    let body_or_empty = || req.body_sha256.unwrap_or(EMPTY_SHA256).trim().to_string();
    Ok(match auth.kind {
        AuthKind::QueryV4 => {
            if let Some(p) = find_param(params, "X-Amz-Content-Sha256") {
                vec![p.value_string()]
            } else if s3_style {
                vec![UNSIGNED_PAYLOAD.to_string()]
            } else {
                // botocore presigns non-S3 requests with the body's hash (EKS tokens, RDS...).
                let mut v = vec![body_or_empty()];
                push_unique(&mut v, UNSIGNED_PAYLOAD.to_string());
                v
            }
        }
        _ => match header_str(req.headers, "x-amz-content-sha256")? {
            Some(v) => vec![v.trim().to_string()],
            None => vec![body_or_empty()],
        },
    })
}

/// `name:value\n` for each signed header, values trimmed, inner runs of spaces collapsed,
/// repeated headers joined by `,`.
fn canonical_headers(signed: &[String], headers: &http::HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed_collapsed(value.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out
}

fn push_trimmed_collapsed(value: &[u8], out: &mut Vec<u8>) {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t');
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |p| p + 1);
    let mut prev_space = false;
    for &b in &value[start..end] {
        if is_space(&b) {
            if !prev_space {
                out.push(b' ');
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

/// Every parameter (but `X-Amz-Signature` when presigned) decoded, re-encoded with AWS's
/// rules, sorted by key then value, `k=v` joined by `&`.
fn canonical_query(params: &[RawParam], exclude_signature: bool, plus_as_space: bool) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|p| !(exclude_signature && p.key_bytes() == b"X-Amz-Signature"))
        .map(|p| {
            (
                uri_encode(&decode(p.key, plus_as_space), true),
                uri_encode(&decode(p.value.unwrap_or(""), plus_as_space), true),
            )
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The signature of a browser-upload (POST object) policy: SigV4 signs the base64
/// policy with the scope's signing key; SigV2 with HMAC-SHA1 of the secret.
pub fn policy_signature_v4(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    policy_b64: &str,
) -> String {
    hex::encode(hmac_sha256(
        &signing_key(secret, date, region, service),
        policy_b64.as_bytes(),
    ))
}

pub fn policy_signature_v2(secret: &str, policy_b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(hmac_sha1(secret.as_bytes(), policy_b64.as_bytes()))
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ------------------------------------------------------------------------------------ V2

fn verify_v2(
    auth: &ParsedAuth,
    req: &SignedRequest,
    secret_key: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    let params = split_query(req.raw_query);
    let is_query = auth.kind == AuthKind::QueryV2;

    // The "date" line: Expires for presigned URLs; Date for the header form, empty when
    // x-amz-date is sent (it is then signed among the x-amz-* headers).
    let mut date_lines: Vec<String> = Vec::new();
    if is_query {
        let expires = auth
            .expires
            .ok_or_else(|| malformed("the presigned URL has no Expires"))?;
        if unix_secs(now) > expires {
            return Err(AuthError::Expired);
        }
        let raw = find_param(&params, "Expires")
            .map(|p| p.value_string())
            .unwrap_or_else(|| expires.to_string());
        date_lines.push(raw);
    } else {
        let date = header_str(req.headers, "date")?.map(|d| d.trim().to_string());
        if header_str(req.headers, "x-amz-date")?.is_some() {
            date_lines.push(String::new());
            if let Some(d) = date {
                date_lines.push(d);
            }
        } else {
            date_lines.push(date.unwrap_or_default());
        }
    }

    // Content-MD5 and Content-Type: the headers, or (presigned) the query parameters
    // botocore moves them to.
    let standard = |name: &str| -> Result<String, AuthError> {
        if let Some(v) = header_str(req.headers, name)? {
            return Ok(v.trim().to_string());
        }
        if is_query {
            if let Some(p) = find_param_ci(&params, name) {
                return Ok(p.value_string().trim().to_string());
            }
        }
        Ok(String::new())
    };
    let content_md5 = standard("content-md5")?;
    let content_type = standard("content-type")?;
    let amz_headers = v2_amz_headers(req.headers, if is_query { Some(&params) } else { None });

    let mut resources = vec![v2_canonical_resource(req.raw_path, &params, false)];
    if req.raw_query.contains('+') {
        push_unique(
            &mut resources,
            v2_canonical_resource(req.raw_path, &params, true),
        );
    }

    let mut first: Option<String> = None;
    for date_line in &date_lines {
        for resource in &resources {
            let mut sts: Vec<u8> = Vec::new();
            for line in [req.method, &content_md5, &content_type, date_line] {
                sts.extend_from_slice(line.as_bytes());
                sts.push(b'\n');
            }
            sts.extend_from_slice(&amz_headers);
            sts.extend_from_slice(resource);
            let expected = base64::engine::general_purpose::STANDARD
                .encode(hmac_sha1(secret_key.as_bytes(), &sts));
            if constant_time_eq(expected.as_bytes(), auth.signature.trim().as_bytes()) {
                return Ok(());
            }
            if first.is_none() {
                first = Some(String::from_utf8_lossy(&sts).into_owned());
            }
        }
    }
    Err(AuthError::SignatureMismatch {
        string_to_sign: first.unwrap_or_default(),
        canonical_request: String::new(),
    })
}

/// CanonicalizedAmzHeaders: lowercase `x-amz-*` names sorted, `name:value\n`, repeated
/// values joined by `,`. Presigned URLs also carry them as query parameters.
fn v2_amz_headers(headers: &http::HeaderMap, params: Option<&[RawParam]>) -> Vec<u8> {
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    for name in headers.keys() {
        let name = name.as_str();
        if !name.starts_with("x-amz-") {
            continue;
        }
        let mut value = Vec::new();
        for (i, v) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                value.push(b',');
            }
            push_trimmed_collapsed(v.as_bytes(), &mut value);
        }
        found.push((name.to_string(), value));
    }
    if let Some(params) = params {
        let mut from_query: Vec<(String, Vec<u8>)> = Vec::new();
        for p in params {
            let name = String::from_utf8_lossy(&decode(p.key, true)).to_ascii_lowercase();
            if !name.starts_with("x-amz-") || found.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let value = decode(p.value.unwrap_or(""), true);
            match from_query.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(b',');
                    existing.extend_from_slice(value.trim_ascii());
                }
                None => from_query.push((name, value.trim_ascii().to_vec())),
            }
        }
        found.extend(from_query);
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (name, value) in found {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&value);
        out.push(b'\n');
    }
    out
}

/// CanonicalizedResource: the raw path, then the S3 sub-resources of the query sorted by
/// name, values decoded: `/bucket/key?acl&uploadId=x&partNumber=1`.
fn v2_canonical_resource(raw_path: &str, params: &[RawParam], plus_as_space: bool) -> Vec<u8> {
    let mut out = if raw_path.is_empty() {
        b"/".to_vec()
    } else {
        raw_path.as_bytes().to_vec()
    };
    let mut subs: Vec<(Vec<u8>, Option<Vec<u8>>)> = params
        .iter()
        .filter_map(|p| {
            let key = decode(p.key, false);
            let wanted = V2_SUBRESOURCES
                .iter()
                .any(|s| s.as_bytes() == key.as_slice());
            wanted.then(|| (key, p.value.map(|v| decode(v, plus_as_space))))
        })
        .collect();
    subs.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (key, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(key);
        if let Some(value) = value {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
    out
}

// ------------------------------------------------------------------------------- helpers

/// One `key[=value]` of a raw query string, still percent-encoded.
#[derive(Debug, Clone, Copy)]
struct RawParam<'a> {
    key: &'a str,
    /// `None` when the parameter has no `=`.
    value: Option<&'a str>,
}

impl RawParam<'_> {
    fn key_bytes(&self) -> Vec<u8> {
        decode(self.key, true)
    }

    /// The decoded value (`+` as space, as in forms), lossily as UTF-8.
    fn value_string(&self) -> String {
        String::from_utf8_lossy(&decode(self.value.unwrap_or(""), true)).into_owned()
    }
}

fn split_query(raw: &str) -> Vec<RawParam<'_>> {
    raw.split('&')
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once('=') {
            Some((key, value)) => RawParam {
                key,
                value: Some(value),
            },
            None => RawParam {
                key: s,
                value: None,
            },
        })
        .collect()
}

fn find_param<'p, 'a>(params: &'p [RawParam<'a>], name: &str) -> Option<&'p RawParam<'a>> {
    params.iter().find(|p| p.key_bytes() == name.as_bytes())
}

fn find_param_ci<'p, 'a>(params: &'p [RawParam<'a>], name: &str) -> Option<&'p RawParam<'a>> {
    params
        .iter()
        .find(|p| p.key_bytes().eq_ignore_ascii_case(name.as_bytes()))
}

/// Percent-decodes (invalid escapes are kept as they are); `+` becomes a space if asked.
fn decode(s: &str, plus_as_space: bool) -> Vec<u8> {
    if plus_as_space && s.contains('+') {
        percent_encoding::percent_decode_str(&s.replace('+', " ")).collect()
    } else {
        percent_encoding::percent_decode_str(s).collect()
    }
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX` (upper-case hex); `/` too
/// unless `encode_slash` is false.
fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !encode_slash)
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The first value of a header; an error if it is not visible ASCII.
fn header_str<'h>(headers: &'h http::HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| malformed(format!("the {name} header is not valid ASCII"))),
    }
}

/// `20150830T123600Z` as seconds since the epoch.
/// Seconds since the epoch of an ISO 8601 basic time (`20150830T123600Z`).
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// A `Date` header (ISO 8601 basic, or RFC 1123 `Fri, 24 May 2013 00:00:00 GMT`) as
/// ISO 8601 basic, the form SigV4 signs.
fn date_header_to_amz(s: &str) -> Option<String> {
    if parse_amz_date(s).is_some() {
        return Some(s.to_string());
    }
    let rfc1123 = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = PrimitiveDateTime::parse(s, rfc1123).ok()?.assume_utc();
    format_amz_date(t)
}

fn format_amz_date(t: OffsetDateTime) -> Option<String> {
    t.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use std::time::Duration;

    const SUITE_AK: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const S3_AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
                HeaderValue::from_str(value).expect("test header value"),
            );
        }
        map
    }

    fn req<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        h: &'a HeaderMap,
    ) -> SignedRequest<'a> {
        SignedRequest {
            method,
            raw_path: path,
            raw_query: query,
            headers: h,
            body_sha256: None,
        }
    }

    fn at(iso: &str) -> SystemTime {
        let secs = parse_amz_date(iso).expect("test date");
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
    }

    fn suite_auth(sig: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={sig}"
        )
    }

    fn check(r: &SignedRequest, secret: &str, now: SystemTime, s3: bool) -> Result<(), AuthError> {
        let auth = parse(r)?.ok_or_else(|| malformed("anonymous"))?;
        verify(&auth, r, secret, now, s3)
    }

    // ------------------------------------------------ AWS SigV4 test suite (service "service")

    #[test]
    fn suite_get_vanilla() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &suite_auth("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ),
        ]);
        let r = req("GET", "/", "", &h);
        let auth = parse(&r).expect("parses").expect("signed");
        assert_eq!(auth.kind, AuthKind::HeaderV4);
        assert_eq!(auth.access_key, SUITE_AK);
        assert_eq!(auth.region.as_deref(), Some("us-east-1"));
        assert_eq!(auth.service.as_deref(), Some("service"));
        assert_eq!(auth.signed_headers, vec!["host", "x-amz-date"]);
        let now = at("20150830T123600Z");
        assert_eq!(verify(&auth, &r, SUITE_SECRET, now, false), Ok(()));
        // A wrong secret, or a different method, must fail.
        assert!(matches!(
            verify(&auth, &r, "not-the-secret", now, false),
            Err(AuthError::SignatureMismatch { .. })
        ));
        let post = req("POST", "/", "", &h);
        match verify(&auth, &post, SUITE_SECRET, now, false) {
            Err(AuthError::SignatureMismatch {
                string_to_sign,
                canonical_request,
            }) => {
                assert!(canonical_request.starts_with("POST\n/\n\nhost:example.amazonaws.com\n"));
                assert!(string_to_sign.starts_with(
                    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                ));
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn suite_post_vanilla_and_query_order() {
        let now = at("20150830T123600Z");
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &suite_auth("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
            ),
        ]);
        assert_eq!(
            check(&req("POST", "/", "", &h), SUITE_SECRET, now, false),
            Ok(())
        );

        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &suite_auth("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            ),
        ]);
        let r = req("GET", "/", "Param2=value2&Param1=value1", &h);
        assert_eq!(check(&r, SUITE_SECRET, now, false), Ok(()));
        // Tampering with a query value breaks it.
        let r = req("GET", "/", "Param2=value3&Param1=value1", &h);
        assert!(matches!(
            check(&r, SUITE_SECRET, now, false),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    // --------------------------------------------- S3 documentation (sig-v4-header-based-auth)

    fn s3_headers(extra: &[(&str, &str)], sig: &str, signed: &str) -> HeaderMap {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders={signed},Signature={sig}"
        );
        let mut pairs = vec![
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", auth.as_str()),
        ];
        pairs.extend_from_slice(extra);
        headers(&pairs)
    }

    #[test]
    fn s3_doc_get_object() {
        let h = s3_headers(
            &[
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
            ],
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            "host;range;x-amz-content-sha256;x-amz-date",
        );
        let now = at("20130524T000000Z");
        assert_eq!(
            check(&req("GET", "/test.txt", "", &h), S3_SECRET, now, true),
            Ok(())
        );
        // The range is signed: another range is refused.
        let mut h2 = h.clone();
        h2.insert("range", HeaderValue::from_static("bytes=0-10"));
        assert!(matches!(
            check(&req("GET", "/test.txt", "", &h2), S3_SECRET, now, true),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn s3_doc_put_object_with_encoded_key_and_date_header() {
        let h = s3_headers(
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                (
                    "x-amz-content-sha256",
                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                ),
            ],
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        );
        let now = at("20130524T000000Z");
        let r = req("PUT", "/test%24file.text", "", &h);
        assert_eq!(check(&r, S3_SECRET, now, true), Ok(()));
    }

    #[test]
    fn s3_doc_get_lifecycle_and_list_objects() {
        let now = at("20130524T000000Z");
        let h = s3_headers(
            &[("x-amz-content-sha256", EMPTY_SHA256)],
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            "host;x-amz-content-sha256;x-amz-date",
        );
        assert_eq!(
            check(&req("GET", "/", "lifecycle", &h), S3_SECRET, now, true),
            Ok(())
        );
        let h = s3_headers(
            &[("x-amz-content-sha256", EMPTY_SHA256)],
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            "host;x-amz-content-sha256;x-amz-date",
        );
        assert_eq!(
            check(
                &req("GET", "/", "max-keys=2&prefix=J", &h),
                S3_SECRET,
                now,
                true
            ),
            Ok(())
        );
        assert!(matches!(
            check(
                &req("GET", "/", "max-keys=3&prefix=J", &h),
                S3_SECRET,
                now,
                true
            ),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    // ----------------------------------------------------------- S3 docs presigned GET (V4)

    const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn s3_doc_presigned_get() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let r = req("GET", "/test.txt", PRESIGNED_QUERY, &h);
        let auth = parse(&r).expect("parses").expect("signed");
        assert_eq!(auth.kind, AuthKind::QueryV4);
        assert_eq!(auth.access_key, S3_AK);
        assert_eq!(auth.service.as_deref(), Some("s3"));
        assert_eq!(auth.expires, Some(86400));
        assert_eq!(
            verify(&auth, &r, S3_SECRET, at("20130524T000000Z"), true),
            Ok(())
        );
        // The last second of validity, then expired.
        assert_eq!(
            verify(&auth, &r, S3_SECRET, at("20130525T000000Z"), true),
            Ok(())
        );
        assert_eq!(
            verify(&auth, &r, S3_SECRET, at("20130525T000001Z"), true),
            Err(AuthError::Expired)
        );
        // Another key, or an extra parameter, is refused.
        let r2 = req("GET", "/test2.txt", PRESIGNED_QUERY, &h);
        assert!(matches!(
            verify(&auth, &r2, S3_SECRET, at("20130524T000000Z"), true),
            Err(AuthError::SignatureMismatch { .. })
        ));
        let q = format!("{PRESIGNED_QUERY}&versionId=1");
        let r3 = req("GET", "/test.txt", &q, &h);
        assert!(matches!(
            check(&r3, S3_SECRET, at("20130524T000000Z"), true),
            Err(AuthError::SignatureMismatch { .. })
        ));
        // A tampered expiry is a mismatch, not a longer life.
        let q = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=86401");
        let r4 = req("GET", "/test.txt", &q, &h);
        assert!(matches!(
            check(&r4, S3_SECRET, at("20130524T000000Z"), true),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn presigned_v4_malformed() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let malformed_for = |q: String| {
            let r = req("GET", "/test.txt", &q, &h);
            matches!(parse(&r), Err(AuthError::Malformed(_)))
        };
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=604801")
        ));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=0")
        ));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=soon")
        ));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("&X-Amz-Date=20130524T000000Z", "")
        ));
        assert!(malformed_for(PRESIGNED_QUERY.replace(
            "X-Amz-Date=20130524T000000Z",
            "X-Amz-Date=20130525T000000Z"
        )));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("%2Faws4_request", "")
        ));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")
        ));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("X-Amz-Signature=aeeed9bb", "X-Amz-Signature=zzzz")
        ));
        assert!(malformed_for(
            PRESIGNED_QUERY.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", "")
        ));
        // Both a header and a presigned query.
        let h2 = headers(&[("authorization", &suite_auth(&"0".repeat(64)))]);
        let r = req("GET", "/", PRESIGNED_QUERY, &h2);
        assert!(matches!(parse(&r), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn header_v4_malformed() {
        let cases: Vec<Vec<(&str, &str)>> = vec![
            // No date at all.
            vec![("authorization", "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")],
            // No Signature.
            vec![("x-amz-date", "20150830T123600Z"), ("authorization", "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/sqs/aws4_request, SignedHeaders=host")],
            // Bad credential.
            vec![("x-amz-date", "20150830T123600Z"), ("authorization", "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")],
            // Bad date.
            vec![("x-amz-date", "yesterday"), ("authorization", "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")],
            // Unknown scheme.
            vec![("authorization", "Bearer abc")],
            // V2 without a colon.
            vec![("date", "Tue, 27 Mar 2007 19:36:42 +0000"), ("authorization", "AWS AKIAIOSFODNN7EXAMPLE")],
            // V2 without a date.
            vec![("authorization", "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")],
        ];
        for case in cases {
            let h = headers(&case);
            let r = req("GET", "/", "", &h);
            assert!(
                matches!(parse(&r), Err(AuthError::Malformed(_))),
                "{case:?} should be malformed, got {:?}",
                parse(&r)
            );
        }
    }

    #[test]
    fn anonymous() {
        let h = headers(&[("host", "localhost")]);
        assert_eq!(parse(&req("GET", "/b/k", "versionId=3&x=y", &h)), Ok(None));
    }

    #[test]
    fn v4_date_header_fallback() {
        // get-vanilla signed with its time in a `Date` header instead of `x-amz-date`
        // (expected value computed independently with Python's hmac/hashlib).
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=date;host, \
                 Signature=1262aceaf1a79c7f0b69fda81cd744572fcbe2e4c23b647b4de183cd5a0f1075",
            ),
        ]);
        let r = req("GET", "/", "", &h);
        let auth = parse(&r).expect("parses").expect("signed");
        assert_eq!(auth.request_time.as_deref(), Some("20150830T123600Z"));
        assert_eq!(
            verify(&auth, &r, SUITE_SECRET, at("20150830T123600Z"), false),
            Ok(())
        );
    }

    // ------------------------------------------------------------ botocore-signed requests

    #[test]
    fn non_s3_double_encodes_the_path() {
        // Signed by botocore's SigV4Auth for "lambda": its canonical URI is the wire path
        // encoded once more (`arn%253Aaws...`), and the payload hash is the body's.
        let h = headers(&[
            ("host", "lambda.us-east-1.amazonaws.com"),
            ("content-type", "application/json"),
            ("x-amz-date", "20240102T030405Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/lambda/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=e91150cc7f3e4bac25b99e05e03df7442103068783833064bd1d8889e8be47f2",
            ),
        ]);
        let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afoo/invocations";
        let body = "93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588";
        let mut r = req("POST", path, "Qualifier=%24LATEST", &h);
        r.body_sha256 = Some(body);
        let now = at("20240102T030405Z");
        assert_eq!(check(&r, SUITE_SECRET, now, false), Ok(()));
        // The primary canonical request shows the double encoding.
        let auth = parse(&r).expect("parses").expect("signed");
        match verify(&auth, &r, "wrong", now, false) {
            Err(AuthError::SignatureMismatch {
                canonical_request, ..
            }) => assert!(
                canonical_request.starts_with("POST\n/2015-03-31/functions/arn%253Aaws%253Alambda"),
                "{canonical_request}"
            ),
            other => panic!("expected a mismatch, got {other:?}"),
        }
        // Another body is refused.
        r.body_sha256 = Some(EMPTY_SHA256);
        assert!(matches!(
            check(&r, SUITE_SECRET, now, false),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn s3_raw_path_with_odd_characters() {
        // Signed by botocore's S3SigV4Auth: the canonical URI is the wire path as sent.
        let h = headers(&[
            ("host", "localhost"),
            ("x-amz-date", "20240102T030405Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
                 Signature=e72b680f807a72f8ccd5a72e91027eddb770bacde96ab43ae2d2ca2dc14ff980",
            ),
        ]);
        let now = at("20240102T030405Z");
        let path = "/my-bucket/a%20b%2Bc%281%29.txt";
        assert_eq!(
            check(
                &req("GET", path, "prefix=x%20y", &h),
                SUITE_SECRET,
                now,
                true
            ),
            Ok(())
        );
        // A client that sends `(` `)` unencoded but signed them encoded is still accepted.
        let loose = "/my-bucket/a%20b%2Bc(1).txt";
        assert_eq!(
            check(
                &req("GET", loose, "prefix=x%20y", &h),
                SUITE_SECRET,
                now,
                true
            ),
            Ok(())
        );
        // `+` in a query means a space, as `%20` does.
        assert_eq!(
            check(&req("GET", path, "prefix=x+y", &h), SUITE_SECRET, now, true),
            Ok(())
        );
        // Another key is refused.
        let other = "/my-bucket/a%20b%2Bc%282%29.txt";
        assert!(matches!(
            check(
                &req("GET", other, "prefix=x%20y", &h),
                SUITE_SECRET,
                now,
                true
            ),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn v2_query_botocore_presigned() {
        // boto3 `generate_presigned_url` against a custom endpoint (signature "s3", i.e. V2),
        // with a session token, a version id and a response override; time.time() = 1700000000.
        let h = headers(&[("host", "localhost:4566")]);
        let path = "/my-bucket/dir/a%20b%2Bc%281%29.txt";
        let q = "versionId=v1&response-content-disposition=attachment%3B%20filename%3D%22x%20y.txt%22\
                 &AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=tZiQN%2BORoKr%2B7k1lpFFvmh%2BfMe8%3D\
                 &x-amz-security-token=tok%2Fen%2B1%3D&Expires=1700003600";
        let r = req("GET", path, q, &h);
        let auth = parse(&r).expect("parses").expect("signed");
        assert_eq!(auth.kind, AuthKind::QueryV2);
        assert_eq!(auth.access_key, S3_AK);
        assert_eq!(auth.security_token.as_deref(), Some("tok/en+1="));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(verify(&auth, &r, S3_SECRET, now, true), Ok(()));
        assert_eq!(
            verify(&auth, &r, S3_SECRET, now + Duration::from_secs(3601), true),
            Err(AuthError::Expired)
        );
        // Tampering with a signed sub-resource or the token.
        for tampered in [
            q.replace("versionId=v1", "versionId=v2"),
            q.replace("tok%2Fen", "tok%2Fem"),
        ] {
            let r = req("GET", path, &tampered, &h);
            assert!(matches!(
                check(&r, S3_SECRET, now, true),
                Err(AuthError::SignatureMismatch { .. })
            ));
        }
        // A non-sub-resource parameter is not signed in V2.
        let extra = format!("{q}&foo=bar");
        assert_eq!(
            check(&req("GET", path, &extra, &h), S3_SECRET, now, true),
            Ok(())
        );

        // A presigned PUT: botocore moves Content-Type into the query.
        let q = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=ZSY1yOxMVs%2BvapDTDlmo5K60NiY%3D\
                 &content-type=text%2Fplain&x-amz-security-token=tok%2Fen%2B1%3D&Expires=1700000600";
        assert_eq!(
            check(
                &req("PUT", "/my-bucket/up.bin", q, &h),
                S3_SECRET,
                now,
                true
            ),
            Ok(())
        );
        let h2 = headers(&[("host", "localhost:4566"), ("content-type", "text/plain")]);
        assert_eq!(
            check(
                &req("PUT", "/my-bucket/up.bin", q, &h2),
                S3_SECRET,
                now,
                true
            ),
            Ok(())
        );
        let h3 = headers(&[("host", "localhost:4566"), ("content-type", "image/png")]);
        assert!(matches!(
            check(
                &req("PUT", "/my-bucket/up.bin", q, &h3),
                S3_SECRET,
                now,
                true
            ),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    // ---------------------------------------------------------------------------------- V2

    #[test]
    fn v2_header_aws_doc_example() {
        // "Example Object GET" of the S3 REST authentication docs.
        let h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            ),
        ]);
        let r = req("GET", "/johnsmith/photos/puppy.jpg", "", &h);
        let auth = parse(&r).expect("parses").expect("signed");
        assert_eq!(auth.kind, AuthKind::HeaderV2);
        assert_eq!(auth.access_key, S3_AK);
        assert_eq!(
            verify(&auth, &r, S3_SECRET, SystemTime::now(), true),
            Ok(())
        );
        let r2 = req("GET", "/johnsmith/photos/kitten.jpg", "", &h);
        assert!(matches!(
            verify(&auth, &r2, S3_SECRET, SystemTime::now(), true),
            Err(AuthError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn v2_query_aws_doc_example() {
        // "Query String Request Authentication" example of the S3 docs.
        let h = headers(&[("host", "johnsmith.s3.amazonaws.com")]);
        let q = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620\
                 &Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";
        let r = req("GET", "/johnsmith/photos/puppy.jpg", q, &h);
        let auth = parse(&r).expect("parses").expect("signed");
        assert_eq!(auth.kind, AuthKind::QueryV2);
        assert_eq!(auth.expires, Some(1_175_139_620));
        let before = UNIX_EPOCH + Duration::from_secs(1_175_139_620);
        assert_eq!(verify(&auth, &r, S3_SECRET, before, true), Ok(()));
        assert_eq!(
            verify(&auth, &r, S3_SECRET, before + Duration::from_secs(1), true),
            Err(AuthError::Expired)
        );
        // An unencoded `+` in the signature is still a `+`.
        let q2 = q.replace("%2B", "+");
        let r2 = req("GET", "/johnsmith/photos/puppy.jpg", &q2, &h);
        assert_eq!(check(&r2, S3_SECRET, before, true), Ok(()));
        // A later Expires does not verify.
        let q3 = q.replace("1175139620", "1175139621");
        let r3 = req("GET", "/johnsmith/photos/puppy.jpg", &q3, &h);
        assert!(matches!(
            check(&r3, S3_SECRET, before, true),
            Err(AuthError::SignatureMismatch { .. })
        ));
        // Missing Expires / Signature.
        let r4 = req(
            "GET",
            "/johnsmith/photos/puppy.jpg",
            "AWSAccessKeyId=AK&Signature=x",
            &h,
        );
        assert!(matches!(parse(&r4), Err(AuthError::Malformed(_))));
        let r5 = req(
            "GET",
            "/johnsmith/photos/puppy.jpg",
            "AWSAccessKeyId=AK&Expires=1",
            &h,
        );
        assert!(matches!(parse(&r5), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn canonical_pieces() {
        assert_eq!(
            uri_encode("a b/c~d+e$é".as_bytes(), false),
            "a%20b/c~d%2Be%24%C3%A9"
        );
        assert_eq!(uri_encode(b"a/b", true), "a%2Fb");
        assert_eq!(remove_dot_segments("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(remove_dot_segments("/"), "/");
        let params = split_query("b=2&a=2&a=1&c&%41=x+y");
        assert_eq!(
            canonical_query(&params, false, true),
            "A=x%20y&a=1&a=2&b=2&c="
        );
        let mut out = Vec::new();
        push_trimmed_collapsed(b"  a   b \t c  ", &mut out);
        assert_eq!(out, b"a b c");
        assert_eq!(
            date_header_to_amz("Fri, 24 May 2013 00:00:00 GMT").as_deref(),
            Some("20130524T000000Z")
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
