//! Incremental decoder of `Content-Encoding: aws-chunked` bodies.
//!
//! The body is a sequence of chunks `<hex-size>[;chunk-signature=<64 hex>]\r\n<data>\r\n`,
//! ending with a zero-size chunk `0[;chunk-signature=...]\r\n`, then optional trailer lines
//! (`x-amz-checksum-crc32:<base64>\r\n`, possibly `x-amz-trailer-signature:...\r\n`), then
//! a final `\r\n`.
//!
//! Data is streamed through as it arrives: only a size line or a trailer line is ever
//! buffered, never a chunk. Strict inside the stream (a truncated body is an error, not
//! shorter data); lenient at the very end, where some clients omit the final `\r\n` (or the
//! `\r\n` ending the zero-size chunk's line).
//!
//! Chunk and trailer signatures are parsed but not verified.

use std::fmt;

/// The longest size line or trailer line accepted.
const MAX_LINE: usize = 4096;
/// The most trailer bytes accepted after the final chunk.
const MAX_TRAILER_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedError {
    /// The stream is not valid aws-chunked encoding; a human-readable reason.
    Malformed(String),
    /// The stream ended before its final zero-size chunk.
    Truncated,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkedError::Malformed(reason) => write!(f, "malformed aws-chunked body: {reason}"),
            ChunkedError::Truncated => f.write_str("aws-chunked body ended before its final chunk"),
        }
    }
}

impl std::error::Error for ChunkedError {}

fn malformed(reason: impl Into<String>) -> ChunkedError {
    ChunkedError::Malformed(reason.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a `<hex-size>[;ext]` line into `line`.
    SizeLine,
    /// Passing through chunk data.
    Data { remaining: u64 },
    /// Expecting the `\r` that ends a chunk's data.
    DataCr,
    /// Expecting the `\n` that ends a chunk's data.
    DataLf,
    /// After the zero-size chunk: reading trailer lines into `line`, until an empty one.
    Trailers,
    /// The final empty line was seen (or accepted leniently by `finish`).
    Done,
    /// An error was reported; every later call reports it again.
    Failed(ChunkedError),
}

/// Decodes an aws-chunked body fed in pieces of any size.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    line: Vec<u8>,
    trailers: Vec<(String, String)>,
    trailer_bytes: usize,
    decoded_len: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeLine,
            line: Vec::new(),
            trailers: Vec::new(),
            trailer_bytes: 0,
            decoded_len: 0,
        }
    }

    /// Feeds more encoded bytes; appends decoded payload bytes to `out`. May be called with
    /// arbitrary splits of the input (even 1 byte at a time).
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkedError> {
        let result = self.push_inner(input, out);
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
        }
        result
    }

    fn push_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkedError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::SizeLine | State::Trailers => {
                    let rest = &input[i..];
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(p) => {
                            self.append_line(&rest[..p])?;
                            i += p + 1;
                            let line = std::mem::take(&mut self.line);
                            let Some(line) = line.strip_suffix(b"\r") else {
                                return Err(malformed("a line ends with a bare LF, not CRLF"));
                            };
                            if line.contains(&b'\r') {
                                return Err(malformed("a stray CR inside a line"));
                            }
                            if self.state == State::SizeLine {
                                self.on_size_line(line)?;
                            } else {
                                self.on_trailer_line(line)?;
                            }
                        }
                        None => {
                            self.append_line(rest)?;
                            i = input.len();
                        }
                    }
                }
                State::Data { remaining } => {
                    let available = input.len() - i;
                    let n = usize::try_from(*remaining).map_or(available, |r| r.min(available));
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    // `n` fits in u64: it is at most `remaining`.
                    *remaining -= n as u64;
                    self.decoded_len += n as u64;
                    if *remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    if input[i] != b'\r' {
                        return Err(malformed(
                            "chunk data is longer than its size, or not followed by CRLF",
                        ));
                    }
                    i += 1;
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if input[i] != b'\n' {
                        return Err(malformed("chunk data is not followed by CRLF"));
                    }
                    i += 1;
                    self.state = State::SizeLine;
                }
                State::Done => {
                    return Err(malformed("bytes after the end of the aws-chunked body"));
                }
                State::Failed(e) => return Err(e.clone()),
            }
        }
        Ok(())
    }

    /// Call at end of input: `Ok` if the stream ended properly (final zero chunk seen),
    /// `Err(Truncated)` otherwise.
    pub fn finish(&mut self) -> Result<(), ChunkedError> {
        let result = self.finish_inner();
        match &result {
            Ok(()) => self.state = State::Done,
            Err(e) => self.state = State::Failed(e.clone()),
        }
        result
    }

    fn finish_inner(&mut self) -> Result<(), ChunkedError> {
        match &self.state {
            State::Done => Ok(()),
            State::Failed(e) => Err(e.clone()),
            State::Data { .. } | State::DataCr | State::DataLf => Err(ChunkedError::Truncated),
            State::SizeLine => {
                // Lenient: the zero-size chunk's line without its CRLF.
                let line = std::mem::take(&mut self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                match parse_size_line(line) {
                    Ok(0) => Ok(()),
                    _ => Err(ChunkedError::Truncated),
                }
            }
            State::Trailers => {
                // Lenient: the final CRLF, or the CRLF of the last trailer line, missing.
                let line = std::mem::take(&mut self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                if line.is_empty() {
                    return Ok(());
                }
                match parse_trailer(line) {
                    Ok(trailer) => {
                        self.trailers.push(trailer);
                        Ok(())
                    }
                    Err(_) => Err(ChunkedError::Truncated),
                }
            }
        }
    }

    /// Trailer headers seen after the final chunk (lowercase name, value), e.g.
    /// `("x-amz-checksum-crc32", "AAAAAA==")`.
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Whether the whole body, final CRLF included, has been decoded (or accepted by `finish`).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded payload bytes so far (to compare with `x-amz-decoded-content-length`).
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    fn append_line(&mut self, bytes: &[u8]) -> Result<(), ChunkedError> {
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(malformed(format!(
                "a size or trailer line is longer than {MAX_LINE} bytes"
            )));
        }
        if self.state == State::Trailers {
            self.trailer_bytes += bytes.len();
            if self.trailer_bytes > MAX_TRAILER_BYTES {
                return Err(malformed(format!(
                    "trailers are longer than {MAX_TRAILER_BYTES} bytes"
                )));
            }
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn on_size_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        self.state = match parse_size_line(line)? {
            0 => State::Trailers,
            size => State::Data { remaining: size },
        };
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        if line.is_empty() {
            self.state = State::Done;
        } else {
            let trailer = parse_trailer(line)?;
            self.trailers.push(trailer);
        }
        Ok(())
    }
}

/// `<hex-size>[;name=value]*` (without CRLF) to the size.
fn parse_size_line(line: &[u8]) -> Result<u64, ChunkedError> {
    let shown = || String::from_utf8_lossy(line).into_owned();
    let mut parts = line.split(|&b| b == b';');
    let size = parts.next().unwrap_or_default().trim_ascii();
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed(format!(
            "chunk size line {:?} does not start with a hexadecimal size",
            shown()
        )));
    }
    let size = std::str::from_utf8(size)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| malformed(format!("chunk size in {:?} is out of range", shown())))?;
    for ext in parts {
        let ext = ext.trim_ascii();
        let (name, value) = match ext.iter().position(|&b| b == b'=') {
            Some(p) => (&ext[..p], &ext[p + 1..]),
            None => (ext, &b""[..]),
        };
        if name.is_empty() {
            return Err(malformed(format!(
                "chunk size line {:?} has an empty extension",
                shown()
            )));
        }
        if name == b"chunk-signature"
            && (value.len() != 64 || !value.iter().all(u8::is_ascii_hexdigit))
        {
            return Err(malformed(format!(
                "chunk-signature in {:?} is not 64 hexadecimal digits",
                shown()
            )));
        }
    }
    Ok(size)
}

/// `name:value` (without CRLF) to (lowercase name, trimmed value).
fn parse_trailer(line: &[u8]) -> Result<(String, String), ChunkedError> {
    let text =
        std::str::from_utf8(line).map_err(|_| malformed("a trailer line is not valid UTF-8"))?;
    let (name, value) = text.split_once(':').ok_or_else(|| {
        malformed(format!(
            "trailer line {text:?} is not of the form name:value"
        ))
    })?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(malformed(format!(
            "trailer name {name:?} is not a header name"
        )));
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";

    fn decode_with(
        input: &[u8],
        piece: usize,
    ) -> (Result<(), ChunkedError>, Vec<u8>, ChunkedDecoder) {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for part in input.chunks(piece.max(1)) {
            if let Err(e) = d.push(part, &mut out) {
                return (Err(e), out, d);
            }
        }
        let r = d.finish();
        (r, out, d)
    }

    /// Decodes in every split size from 1 byte up to the whole input; all must agree.
    type Decoded = (Vec<u8>, Vec<(String, String)>);

    fn decode_all_splits(input: &[u8]) -> Result<Decoded, ChunkedError> {
        let (whole, out, d) = decode_with(input, input.len());
        let expected = whole.map(|()| (out, d.trailers().to_vec()));
        for piece in 1..input.len() {
            let (r, out, d) = decode_with(input, piece);
            let got = r.map(|()| (out, d.trailers().to_vec()));
            assert_eq!(got, expected, "split every {piece} bytes");
        }
        expected
    }

    fn encode(chunks: &[&[u8]], signed: bool, trailers: &[(&str, &str)]) -> Vec<u8> {
        let mut v = Vec::new();
        for c in chunks.iter().copied().chain(std::iter::once(&b""[..])) {
            v.extend_from_slice(format!("{:x}", c.len()).as_bytes());
            if signed {
                v.extend_from_slice(format!(";chunk-signature={SIG}").as_bytes());
            }
            v.extend_from_slice(b"\r\n");
            if !c.is_empty() {
                v.extend_from_slice(c);
                v.extend_from_slice(b"\r\n");
            }
        }
        for (name, value) in trailers {
            v.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v
    }

    #[test]
    fn one_shot_signed() {
        // The S3 docs' shape: 64 KiB, 1 KiB, then the final chunk.
        let a = vec![b'a'; 65536];
        let b = vec![b'a'; 1024];
        let input = encode(&[&a, &b], true, &[]);
        let (r, out, d) = decode_with(&input, input.len());
        assert_eq!(r, Ok(()));
        assert_eq!(out.len(), 66560);
        assert_eq!(d.decoded_len(), 66560);
        assert!(d.is_done());
        assert!(d.trailers().is_empty());
    }

    #[test]
    fn every_split_unsigned_and_signed() {
        for signed in [false, true] {
            let input = encode(&[b"hello ", b"world", b"!\r\n0\r\n"], signed, &[]);
            let (out, trailers) = decode_all_splits(&input).expect("decodes");
            assert_eq!(out, b"hello world!\r\n0\r\n");
            assert!(trailers.is_empty());
        }
    }

    #[test]
    fn byte_at_a_time_streams_data() {
        let input = encode(&[b"abcdef"], false, &[]);
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        // After the size line and two data bytes, those two bytes are already out.
        d.push(b"6\r\nab", &mut out).expect("ok");
        assert_eq!(out, b"ab");
        d.push(&input[5..], &mut out).expect("ok");
        assert_eq!(out, b"abcdef");
        assert!(d.is_done());
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn trailers_with_signature() {
        let input = encode(
            &[b"some data"],
            true,
            &[
                ("x-amz-checksum-crc32", "sOO8/Q=="),
                ("x-amz-trailer-signature", SIG),
            ],
        );
        let (out, trailers) = decode_all_splits(&input).expect("decodes");
        assert_eq!(out, b"some data");
        assert_eq!(
            trailers,
            vec![
                ("x-amz-checksum-crc32".to_string(), "sOO8/Q==".to_string()),
                ("x-amz-trailer-signature".to_string(), SIG.to_string()),
            ]
        );
        // Names are lowercased; unsigned trailer streams (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
        let input = b"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32C: AAAAAA==\r\n\r\n";
        let (out, trailers) = decode_all_splits(input).expect("decodes");
        assert_eq!(out, b"abc");
        assert_eq!(
            trailers,
            vec![("x-amz-checksum-crc32c".to_string(), "AAAAAA==".to_string())]
        );
    }

    #[test]
    fn lenient_at_the_very_end() {
        for input in [
            &b"3\r\nabc\r\n0\r\n"[..],
            b"3\r\nabc\r\n0\r\n\r",
            b"3\r\nabc\r\n0",
            b"3\r\nabc\r\n0;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ] {
            let (out, trailers) = decode_all_splits(input).expect("lenient end");
            assert_eq!(out, b"abc");
            assert!(trailers.is_empty());
        }
        let input = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n";
        let (_, trailers) = decode_all_splits(input).expect("lenient end");
        assert_eq!(trailers.len(), 1);
        let input = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==";
        let (_, trailers) = decode_all_splits(input).expect("lenient end");
        assert_eq!(
            trailers,
            vec![("x-amz-checksum-crc32".into(), "NSRBwg==".into())]
        );
    }

    #[test]
    fn truncated() {
        let full = encode(
            &[b"hello world"],
            true,
            &[("x-amz-checksum-crc32", "AAAAAA==")],
        );
        // Every cut before the zero-size chunk's size digit is Truncated, never shorter data.
        let zero_at = full
            .windows(3)
            .position(|w| w == b"\n0;")
            .expect("zero chunk")
            + 1;
        for cut in 0..zero_at {
            let (r, _, d) = decode_with(&full[..cut], 1);
            assert_eq!(r, Err(ChunkedError::Truncated), "cut at {cut}");
            assert!(!d.is_done());
        }
        assert_eq!(decode_with(b"", 1).0, Err(ChunkedError::Truncated));
        // A trailer cut inside its name.
        let (r, _, _) = decode_with(b"0\r\nx-amz-che", 4);
        assert_eq!(r, Err(ChunkedError::Truncated));
    }

    #[test]
    fn garbage_is_malformed() {
        let cases: &[&[u8]] = &[
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"hello world\r\n",
            b"\r\nabc\r\n0\r\n\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"3\r\nab\r\n0\r\n\r\n",
            b"3;chunk-signature=short\r\nabc\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"3\r\nabc\r\n0\r\nno colon here\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\r\nextra",
        ];
        for input in cases {
            for piece in [1, 2, input.len()] {
                let (r, _, _) = decode_with(input, piece);
                assert!(
                    matches!(r, Err(ChunkedError::Malformed(_))),
                    "{:?} in pieces of {piece}: {r:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        // An overlong line is refused without buffering it all.
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(matches!(
            d.push(&long, &mut out),
            Err(ChunkedError::Malformed(_))
        ));
        // A failed decoder stays failed.
        assert!(matches!(
            d.push(b"0\r\n\r\n", &mut out),
            Err(ChunkedError::Malformed(_))
        ));
        assert!(matches!(d.finish(), Err(ChunkedError::Malformed(_))));
    }
}
