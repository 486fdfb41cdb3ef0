//! The one port: accepts connections, identifies the service of each request (SigV4
//! credential scope, X-Amz-Target, host name, path), authenticates it and hands it to
//! the service; `/_virga/` paths go to Virga's own endpoints.

use crate::internal;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use virga_core::auth::{self, AuthError, AuthKind, SignedRequest};
use virga_core::service::full_body;
use virga_core::{AwsError, Body, Clock, OperationName, RequestContext, Service};

pub struct Gateway {
    pub services: Vec<Arc<dyn Service>>,
    pub s3: Arc<virga_s3::S3>,
    pub sns: Arc<virga_sns::Sns>,
    pub lambda: Arc<virga_lambda::Lambda>,
    pub clock: Arc<Clock>,
    /// Access key -> secret key, for keys whose signatures are verified.
    pub credentials: HashMap<String, String>,
    pub strict_auth: bool,
    pub started: Instant,
    pub listen_addr: String,
    pub data_dir: String,
}

pub async fn run(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                // Two stages in one allocation that hyper keeps per connection:
                // admission, itself boxed and freed when done (it needs the headers,
                // the parsed signature, maybe the body for its hash), then the call
                // into the service. A long poll parked in the service so holds only
                // the second stage (a few hundred bytes).
                let admission = Box::pin(gw.clone().admit(req, Instant::now()));
                admission
                    .then(Admitted::respond)
                    .map(Ok::<_, std::convert::Infallible>)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(1024 * 1024)
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

/// The service an `X-Amz-Target` header names (`DynamoDB_20120810.PutItem`).
fn service_from_target(target: &str) -> Option<&'static str> {
    let prefix = target.split('.').next().unwrap_or("");
    Some(match prefix {
        // DynamoDB Streams signs as `dynamodb` too; one service answers both.
        p if p.starts_with("DynamoDB") => "dynamodb",
        "AmazonSQS" => "sqs",
        p if p.starts_with("Logs") => "logs",
        "AWSEvents" => "events",
        p if p.starts_with("AWSStepFunctions") => "states",
        "AWSCognitoIdentityProviderService" => "cognito-idp",
        p if p.starts_with("Kinesis") => "kinesis",
        _ => return None,
    })
}

impl Gateway {
    fn service(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.services.iter().find(|s| s.name() == name)
    }

    /// Names the service of a request and authenticates it: the request to hand to
    /// the service, or the answer when it is refused.
    async fn admit(self: Arc<Self>, req: Request<Incoming>, started: Instant) -> Admitted {
        // hyper keeps an unanswered `Expect: 100-continue` of a request with an empty
        // body pending and sends its 100 on the next request of the connection, which
        // corrupts that exchange for the client (boto3 sends Expect on every PutObject).
        // Closing such a connection after the response avoids it.
        let close_after = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
            && req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() == b"0");
        let req = req.map(|b| b.map_err(std::io::Error::other).boxed_unsync());
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        if path.starts_with("/_virga/") || path == "/_virga" {
            let operation = OperationName::default();
            operation.set(&path);
            let log = RequestLog {
                service: "virga".into(),
                operation,
                method,
                path,
                started,
            };
            let resp = internal::handle(&self, req).await;
            return Admitted {
                admission: Admission::Answer(Box::new(resp)),
                log,
                close_after,
            };
        }
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|s| s.to_string())
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let mut headers = req.headers().clone();
        if !headers.contains_key(http::header::HOST) {
            if let Ok(v) = http::HeaderValue::from_str(&host) {
                headers.insert(http::header::HOST, v);
            }
        }
        let raw_query = req.uri().query().unwrap_or("").to_string();
        let signed = SignedRequest {
            method: method.as_str(),
            raw_path: &path,
            raw_query: &raw_query,
            headers: &headers,
            body_sha256: None,
        };
        let parsed = auth::parse(&signed);
        let scope_service = parsed
            .as_ref()
            .ok()
            .and_then(|p| p.as_ref())
            .and_then(|p| p.service.clone());
        let service_name = scope_service
            .or_else(|| {
                headers
                    .get("x-amz-target")
                    .and_then(|t| t.to_str().ok())
                    .and_then(service_from_target)
                    .map(|s| s.to_string())
            })
            .or_else(|| virga_core::hosts::service_from_host(&host))
            // The SubscribeURL/UnsubscribeURL links SNS hands out are plain GETs.
            .or_else(|| {
                (raw_query.contains("Action=ConfirmSubscription")
                    || raw_query.contains("Action=Unsubscribe"))
                .then(|| "sns".to_string())
            })
            .unwrap_or_else(|| "s3".to_string());
        let request_id = virga_core::request_id();
        let region = parsed
            .as_ref()
            .ok()
            .and_then(|p| p.as_ref())
            .and_then(|p| p.region.clone())
            .unwrap_or_else(|| virga_core::DEFAULT_REGION.to_string());
        let ctx = RequestContext {
            request_id: request_id.clone(),
            account: virga_core::DEFAULT_ACCOUNT.to_string(),
            region,
            access_key: parsed
                .as_ref()
                .ok()
                .and_then(|p| p.as_ref())
                .map(|p| p.access_key.clone()),
            host: host.clone(),
            listen_addr: self.listen_addr.clone(),
            clock: self.clock.clone(),
            started,
            operation: Default::default(),
        };
        let operation = ctx.operation.clone();
        let admission = match self.service(&service_name) {
            None => Admission::Answer(Box::new(error_response(
                &service_name,
                &AwsError::new(
                    501,
                    "NotImplemented",
                    format!("Virga does not implement the {service_name} service yet"),
                ),
                &request_id,
                method == http::Method::HEAD,
            ))),
            Some(svc) => {
                // Services other than S3 sign the body's hash without sending it in a
                // header: read the (small) body to verify a known key's signature.
                let mut req = req;
                let mut body_hash = None;
                if let Ok(Some(p)) = &parsed {
                    let needs_hash = service_name != "s3"
                        && p.kind == AuthKind::HeaderV4
                        && !headers.contains_key("x-amz-content-sha256")
                        && self.credentials.contains_key(&p.access_key);
                    if needs_hash {
                        let (parts, body) = req.into_parts();
                        let bytes = match http_body_util::Limited::new(body, 16 * 1024 * 1024)
                            .collect()
                            .await
                        {
                            Ok(b) => b.to_bytes(),
                            Err(_) => Bytes::new(),
                        };
                        body_hash =
                            Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
                        req = Request::from_parts(parts, full_body(bytes));
                    }
                }
                let signed = SignedRequest {
                    body_sha256: body_hash.as_deref(),
                    ..signed
                };
                let auth_result = match parsed {
                    Err(e) => Err(AuthErrorKind::Auth(e)),
                    // Browser uploads carry their signature in the form; S3 checks it.
                    Ok(None) if self.strict_auth && !is_form_post(&method, &headers) => {
                        Err(AuthErrorKind::Anonymous)
                    }
                    Ok(None) => Ok(()),
                    Ok(Some(p)) => self.authenticate(&p, &signed, &host, &service_name),
                };
                match auth_result {
                    Ok(()) => Admission::Call(svc.clone(), Box::new((ctx, req))),
                    Err(e) => {
                        let err = auth_error(&service_name, e, &self.strict_auth);
                        Admission::Answer(Box::new(error_response(
                            &service_name,
                            &err,
                            &request_id,
                            method == http::Method::HEAD,
                        )))
                    }
                }
            }
        };
        Admitted {
            admission,
            log: RequestLog {
                service: service_name,
                operation,
                method,
                path,
                started,
            },
            close_after,
        }
    }

    /// Verifies the signature of a known key; unknown keys are accepted (checking only
    /// presigned expiry) unless `--strict-auth` is on.
    fn authenticate(
        &self,
        p: &auth::ParsedAuth,
        signed: &SignedRequest,
        host: &str,
        service: &str,
    ) -> Result<(), AuthErrorKind> {
        // SigV2 signs the bucket in the resource path, also for virtual-host requests.
        let v2_path;
        let mut req = *signed;
        if matches!(p.kind, AuthKind::HeaderV2 | AuthKind::QueryV2) {
            if let Some(b) = virga_core::hosts::s3_host(host).bucket {
                v2_path = format!("/{b}{}", signed.raw_path);
                req.raw_path = &v2_path;
            }
        }
        let s3_style = service == "s3";
        let now = self.clock.now();
        if self.strict_auth && matches!(p.kind, AuthKind::HeaderV4) {
            // Signed requests must be fresh (AWS allows 15 minutes of skew).
            let signed_at = p.request_time.as_deref().and_then(auth::parse_amz_date);
            let now_secs = self.clock.now_secs_f64() as i64;
            if signed_at.is_some_and(|t| (now_secs - t).abs() > 15 * 60) {
                return Err(AuthErrorKind::Skewed);
            }
        }
        match self.credentials.get(&p.access_key) {
            Some(secret) => {
                auth::verify(p, &req, secret, now, s3_style).map_err(AuthErrorKind::Auth)
            }
            None if self.strict_auth => Err(AuthErrorKind::UnknownKey(p.access_key.clone())),
            None => match auth::verify(p, &req, "", now, s3_style) {
                Err(AuthError::Expired) => Err(AuthErrorKind::Auth(AuthError::Expired)),
                Err(AuthError::Malformed(m)) => Err(AuthErrorKind::Auth(AuthError::Malformed(m))),
                _ => Ok(()),
            },
        }
    }
}

/// What admission decided for a request.
enum Admission {
    /// Hand the request to the service. Boxed, and freed once handed over: the
    /// answer's future lives as long as the service's (a long poll: 20 s).
    Call(Arc<dyn Service>, Box<(RequestContext, Request<Body>)>),
    /// Answered without the service (Virga's own endpoints, an unknown service, a
    /// refused signature).
    Answer(Box<Response<Body>>),
}

/// An admitted request, and what its log line needs once answered.
struct Admitted {
    admission: Admission,
    log: RequestLog,
    close_after: bool,
}

struct RequestLog {
    service: String,
    /// Filled in by the service's codec once it knows the operation.
    operation: OperationName,
    method: http::Method,
    path: String,
    started: Instant,
}

impl Admitted {
    async fn respond(self) -> Response<Body> {
        let mut resp = match self.admission {
            Admission::Call(svc, call) => {
                // The box is freed here, not kept while the service answers.
                let answer = {
                    let (ctx, req) = *call;
                    svc.handle(ctx, req)
                };
                answer.await
            }
            Admission::Answer(resp) => *resp,
        };
        let log = &self.log;
        let operation = log.operation.get();
        tracing::info!(
            service = %log.service,
            operation = %operation.as_deref().unwrap_or("-"),
            status = resp.status().as_u16(),
            latency_ms = format!("{:.2}", log.started.elapsed().as_secs_f64() * 1000.0),
            "{} {}",
            log.method,
            log.path
        );
        if self.close_after {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

pub enum AuthErrorKind {
    Auth(AuthError),
    UnknownKey(String),
    /// An unsigned request under `--strict-auth`.
    Anonymous,
    /// A signature older or newer than 15 minutes under `--strict-auth`.
    Skewed,
}

impl From<AuthError> for AuthErrorKind {
    fn from(e: AuthError) -> Self {
        AuthErrorKind::Auth(e)
    }
}

fn auth_error(service: &str, e: impl Into<AuthErrorKind>, _strict: &bool) -> AwsError {
    let s3 = service == "s3";
    match e.into() {
        AuthErrorKind::Anonymous => AwsError::new(403, "AccessDenied", "Access Denied"),
        AuthErrorKind::Skewed => AwsError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .with("MaxAllowedSkewMilliseconds", "900000"),
        AuthErrorKind::UnknownKey(k) => {
            if s3 {
                AwsError::new(
                    403,
                    "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                )
                .with("AWSAccessKeyId", k)
            } else {
                AwsError::new(
                    403,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            }
        }
        AuthErrorKind::Auth(AuthError::Expired) => {
            AwsError::new(403, "AccessDenied", "Request has expired")
        }
        AuthErrorKind::Auth(AuthError::SignatureMismatch {
            string_to_sign,
            canonical_request,
        }) => {
            let e = AwsError::new(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            );
            if s3 {
                e.with("StringToSign", string_to_sign)
                    .with("CanonicalRequest", canonical_request)
            } else {
                e
            }
        }
        AuthErrorKind::Auth(AuthError::Malformed(m)) => {
            if s3 {
                AwsError::new(400, "AuthorizationQueryParametersError", m)
            } else {
                AwsError::new(400, "IncompleteSignature", m)
            }
        }
    }
}

/// An error in the wire format of `service`'s protocol.
pub fn error_response(service: &str, e: &AwsError, request_id: &str, head: bool) -> Response<Body> {
    if service == "s3" {
        return virga_s3::error_response(e, request_id, head);
    }
    let body = serde_json::json!({"__type": e.code, "message": e.message}).to_string();
    Response::builder()
        .status(e.status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", request_id)
        .header("x-amzn-errortype", e.code.as_str())
        .body(full_body(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(full_body("")))
}

fn is_form_post(method: &http::Method, headers: &http::HeaderMap) -> bool {
    method == http::Method::POST
        && headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"))
}
