//! Deliveries that leave Virga: HTTP(S) endpoints (POST of the JSON document, as SNS
//! sends it, with retries and backoff) and the protocols Virga captures instead of
//! sending (email, email-json, sms), kept for tests to read at `/_virga/sns/messages`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The TLS client for https:// subscriptions: the system's trust store, which
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` can point at a local CA, as for other tools.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no trusted CA certificates found (set SSL_CERT_FILE)".into());
            }
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map(tokio_rustls::TlsConnector::from)
}

/// Sends one request over a fresh connection (plain or TLS) and returns the status.
async fn send<S>(stream: S, req: http::Request<Full<Bytes>>) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = tokio::time::timeout(Duration::from_secs(15), sender.send_request(req))
        .await
        .map_err(|_| "request timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// POSTs `body` to an `http://` or `https://` URL; the status, or why it could not be sent.
pub async fn post(url: &str, headers: &[(String, String)], body: String) -> Result<u16, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid endpoint {url}: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("not an http(s) endpoint: {url}")),
    };
    let host = uri.host().ok_or("endpoint without host")?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    let stream = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect failed: {e}"))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", uri.authority().map(|a| a.as_str()).unwrap_or(&host))
        .header("content-type", "text/plain; charset=UTF-8")
        .header("user-agent", "Amazon Simple Notification Service Agent");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    if !tls {
        return send(stream, req).await;
    }
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| format!("invalid TLS server name {host}: {e}"))?;
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tls_connector()?.connect(name, stream),
    )
    .await
    .map_err(|_| "TLS handshake timed out".to_string())?
    .map_err(|e| format!("TLS handshake failed: {e}"))?;
    send(stream, req).await
}

/// POSTs with SNS's retry schedule for local use: 4 attempts over about 7 seconds.
/// A 2xx ends it; Ok(false) means every attempt failed.
pub async fn post_with_retries(
    url: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<(), String> {
    let mut last = String::new();
    for (attempt, wait_ms) in [0u64, 1000, 2000, 4000].into_iter().enumerate() {
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        match post(url, headers, body.to_string()).await {
            Ok(s) if (200..300).contains(&s) => return Ok(()),
            Ok(s) => last = format!("attempt {}: HTTP {s}", attempt + 1),
            Err(e) => last = format!("attempt {}: {e}", attempt + 1),
        }
    }
    Err(last)
}
