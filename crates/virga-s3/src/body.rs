//! Object bodies in and out: a request body is streamed into a blob while its MD5 and
//! the requested flexible checksums are computed (decoding `aws-chunked` framing and
//! reading trailing checksums on the way); a response body streams blob ranges out.

use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use virga_core::chunked::{ChunkedDecoder, ChunkedError};
use virga_core::{AwsError, AwsResult, Body};
use virga_store::BlobStore;

use crate::state::BlobPart;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The flexible checksum algorithms S3 stores and returns.
pub const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// CRC-64/NVME, the algorithm S3 uses by default for new objects.
pub static CRC64NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

enum Checksum {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64(crc::Digest<'static, u64>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Checksum {
    fn new(alg: &str) -> Option<Checksum> {
        Some(match alg {
            "CRC32" => Checksum::Crc32(crc32fast::Hasher::new()),
            "CRC32C" => Checksum::Crc32c(0),
            "CRC64NVME" => Checksum::Crc64(CRC64NVME.digest()),
            "SHA1" => Checksum::Sha1(sha1::Sha1::new()),
            "SHA256" => Checksum::Sha256(sha2::Sha256::new()),
            _ => return None,
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc32(h) => h.update(data),
            Checksum::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Checksum::Crc64(d) => d.update(data),
            Checksum::Sha1(h) => h.update(data),
            Checksum::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Checksum::Crc32(h) => B64.encode(h.finalize().to_be_bytes()),
            Checksum::Crc32c(c) => B64.encode(c.to_be_bytes()),
            Checksum::Crc64(d) => B64.encode(d.finalize().to_be_bytes()),
            Checksum::Sha1(h) => B64.encode(h.finalize()),
            Checksum::Sha256(h) => B64.encode(h.finalize()),
        }
    }
}

/// What was stored from a request body.
pub struct Stored {
    /// Write `blob.write_in(txn)` in the transaction that records the object.
    pub blob: virga_store::FinishedBlob,
    pub size: u64,
    pub md5: [u8; 16],
    /// (algorithm, base64 value), verified against what the client sent.
    pub checksums: Vec<(String, String)>,
}

impl Stored {
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The checksum algorithm a request asks for, from its headers.
pub fn requested_algorithm(h: &HeaderMap) -> Option<String> {
    if let Some(a) =
        header(h, "x-amz-sdk-checksum-algorithm").or(header(h, "x-amz-checksum-algorithm"))
    {
        return Some(a.to_ascii_uppercase());
    }
    for alg in ALGORITHMS {
        let name = format!("x-amz-checksum-{}", alg.to_ascii_lowercase());
        if h.contains_key(name.as_str()) {
            return Some(alg.to_string());
        }
    }
    if let Some(t) = header(h, "x-amz-trailer") {
        let t = t.trim().to_ascii_lowercase();
        if let Some(a) = t.strip_prefix("x-amz-checksum-") {
            return Some(a.to_ascii_uppercase());
        }
    }
    None
}

fn incomplete() -> AwsError {
    AwsError::new(
        400,
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    )
}

/// Streams a request body into a new blob. `extra_algorithm` adds a checksum to compute
/// (a multipart upload's algorithm) besides what the request asks for.
pub async fn store_body(
    mut body: Body,
    headers: &HeaderMap,
    blobs: &Arc<dyn BlobStore>,
    extra_algorithm: Option<&str>,
    max_size: u64,
) -> AwsResult<Stored> {
    let chunked = header(headers, "content-encoding").is_some_and(|v| v.contains("aws-chunked"))
        || header(headers, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"));
    let declared: Option<u64> = if chunked {
        header(headers, "x-amz-decoded-content-length").and_then(|v| v.parse().ok())
    } else {
        header(headers, "content-length").and_then(|v| v.parse().ok())
    };
    if declared.is_some_and(|d| d > max_size) {
        return Err(AwsError::new(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed object size.",
        ));
    }
    let algorithm = requested_algorithm(headers).or(extra_algorithm.map(|s| s.to_string()));
    let mut checksum = match algorithm.as_deref() {
        Some(a) => Some(Checksum::new(a).ok_or_else(|| {
            AwsError::new(
                400,
                "InvalidRequest",
                format!("Checksum algorithm {a} is not supported"),
            )
        })?),
        None => None,
    };
    let mut md5 = Md5::new();
    let mut payload_sha = signed_payload_hash(headers).map(|h| (h, sha2::Sha256::new()));
    let mut decoder = chunked.then(ChunkedDecoder::new);
    let mut writer = blobs.writer()?;
    let mut size: u64 = 0;
    let mut decoded = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| incomplete())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if let Some((_, h)) = payload_sha.as_mut() {
            h.update(&data);
        }
        let out: &[u8] = match decoder.as_mut() {
            Some(d) => {
                decoded.clear();
                d.push(&data, &mut decoded).map_err(chunk_err)?;
                &decoded
            }
            None => &data,
        };
        if out.is_empty() {
            continue;
        }
        size += out.len() as u64;
        if size > max_size {
            return Err(AwsError::new(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed object size.",
            ));
        }
        md5.update(out);
        if let Some(c) = checksum.as_mut() {
            c.update(out);
        }
        writer.write(out)?;
    }
    let mut trailers: Vec<(String, String)> = Vec::new();
    if let Some(d) = decoder.as_mut() {
        d.finish().map_err(chunk_err)?;
        trailers = d.trailers().to_vec();
    }
    if declared.is_some_and(|d| d != size) {
        return Err(incomplete());
    }
    if let Some((expected, h)) = payload_sha {
        check_payload_hash(&expected, &h.finalize())?;
    }
    let md5: [u8; 16] = md5.finalize().into();
    if let Some(sent) = header(headers, "content-md5") {
        let sent = B64.decode(sent.trim()).map_err(|_| {
            AwsError::new(
                400,
                "InvalidDigest",
                "The Content-MD5 you specified was invalid.",
            )
        })?;
        if sent.len() != 16 {
            return Err(AwsError::new(
                400,
                "InvalidDigest",
                "The Content-MD5 you specified was invalid.",
            ));
        }
        if sent != md5 {
            return Err(AwsError::new(
                400,
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let mut checksums = Vec::new();
    if let (Some(alg), Some(c)) = (algorithm, checksum) {
        let computed = c.finish();
        let name = format!("x-amz-checksum-{}", alg.to_ascii_lowercase());
        let sent = header(headers, &name).map(|s| s.to_string()).or_else(|| {
            trailers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        });
        if let Some(sent) = sent {
            let well_formed = B64
                .decode(sent.trim())
                .is_ok_and(|raw| Some(raw.len()) == B64.decode(&computed).ok().map(|c| c.len()));
            if !well_formed {
                return Err(AwsError::new(
                    400,
                    "InvalidRequest",
                    format!("Value for {name} header is invalid."),
                ));
            }
            if sent.trim() != computed {
                return Err(AwsError::new(
                    400,
                    "BadDigest",
                    format!("The {alg} you specified did not match the calculated checksum."),
                ));
            }
        }
        checksums.push((alg, computed));
    }
    let blob = writer.finish()?;
    Ok(Stored {
        blob,
        size,
        md5,
        checksums,
    })
}

fn chunk_err(e: ChunkedError) -> AwsError {
    match e {
        ChunkedError::Truncated => incomplete(),
        ChunkedError::Malformed(m) => AwsError::new(
            400,
            "InvalidChunkSizeError",
            format!("Invalid aws-chunked body: {m}"),
        ),
    }
}

/// The payload hash a request signed (`x-amz-content-sha256` as 64 hex digits), if any.
fn signed_payload_hash(h: &HeaderMap) -> Option<String> {
    header(h, "x-amz-content-sha256")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|v| v.to_ascii_lowercase())
}

fn check_payload_hash(expected: &str, computed: &[u8]) -> AwsResult<()> {
    if hex::encode(computed) != expected {
        return Err(AwsError::new(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
        .with("ClientComputedContentSHA256", expected)
        .with("S3ComputedContentSHA256", hex::encode(computed)));
    }
    Ok(())
}

/// Reads a whole (small) request body, decoding aws-chunked framing if present.
pub async fn read_small_body(body: Body, headers: &HeaderMap, limit: usize) -> AwsResult<Vec<u8>> {
    let chunked = header(headers, "content-encoding").is_some_and(|v| v.contains("aws-chunked"))
        || header(headers, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"));
    let limited = http_body_util::Limited::new(body, limit);
    let raw = limited
        .collect()
        .await
        .map_err(|_| AwsError::new(400, "MaxMessageLengthExceeded", "Your request was too big."))?
        .to_bytes();
    if let Some(expected) = signed_payload_hash(headers) {
        check_payload_hash(&expected, &sha2::Sha256::digest(&raw))?;
    }
    if !chunked {
        return Ok(raw.to_vec());
    }
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    d.push(&raw, &mut out).map_err(chunk_err)?;
    d.finish().map_err(chunk_err)?;
    Ok(out)
}

/// A response body that streams byte ranges of blobs.
pub struct BlobBody {
    blobs: Arc<dyn BlobStore>,
    /// (blob, offset, len) still to send.
    pending: std::collections::VecDeque<(String, u64, u64)>,
    reader: Option<Box<dyn Read + Send>>,
    remaining_in_reader: u64,
}

const CHUNK: usize = 256 * 1024;

/// The (blob, offset, len) pieces that hold bytes `start..start+len` of an object.
pub fn slices(parts: &[BlobPart], start: u64, len: u64) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let end = start + len;
    for p in parts {
        let (ps, pe) = (pos, pos + p.size);
        pos = pe;
        if pe <= start || ps >= end {
            continue;
        }
        let from = start.max(ps) - ps;
        let to = end.min(pe) - ps;
        out.push((p.blob.clone(), from, to - from));
    }
    out
}

impl BlobBody {
    /// Streams bytes `start..start+len` of the object made of `parts`.
    pub fn new(blobs: Arc<dyn BlobStore>, parts: &[BlobPart], start: u64, len: u64) -> BlobBody {
        let pending = slices(parts, start, len).into();
        BlobBody {
            blobs,
            pending,
            reader: None,
            remaining_in_reader: 0,
        }
    }
}

impl HttpBody for BlobBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        loop {
            if this.reader.is_none() || this.remaining_in_reader == 0 {
                let Some((blob, off, len)) = this.pending.pop_front() else {
                    return Poll::Ready(None);
                };
                match this.blobs.open(&blob, off, len) {
                    Ok(r) => {
                        this.reader = Some(r);
                        this.remaining_in_reader = len;
                    }
                    Err(e) => return Poll::Ready(Some(Err(std::io::Error::other(e.message)))),
                }
            }
            let Some(reader) = this.reader.as_mut() else {
                continue;
            };
            let want = (this.remaining_in_reader as usize).min(CHUNK);
            let mut buf = vec![0u8; want];
            match reader.read(&mut buf) {
                Ok(0) => {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than recorded",
                    ))))
                }
                Ok(n) => {
                    buf.truncate(n);
                    this.remaining_in_reader -= n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))));
                }
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

pub fn blob_body(blobs: Arc<dyn BlobStore>, parts: &[BlobPart], start: u64, len: u64) -> Body {
    BlobBody::new(blobs, parts, start, len).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_their_check_values() {
        // The catalog's check values for "123456789".
        let check = |alg: &str| {
            let mut c = Checksum::new(alg).unwrap();
            c.update(b"123456789");
            B64.decode(c.finish()).unwrap()
        };
        assert_eq!(check("CRC32"), 0xCBF43926u32.to_be_bytes());
        assert_eq!(check("CRC32C"), 0xE3069283u32.to_be_bytes());
        assert_eq!(check("CRC64NVME"), 0xAE8B14860A799888u64.to_be_bytes());
        assert!(Checksum::new("MD4").is_none());
    }
}
