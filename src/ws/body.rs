//! HTTP/1.1 message bodies (RFC 9112 6-7): the request body's framing from
//! its head, the body decoder (Content-Length or chunked), and the chunked
//! encoding of a response. Pure: bytes in, bytes out.

use super::handshake::Request;

/// Why a request's body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Both Content-Length and Transfer-Encoding, several different
    /// lengths, a transfer coding other than chunked, or a bad length: the
    /// request smuggling cases (RFC 9112 6.3); answered 400.
    BadFraming,
    /// Malformed chunk framing (size line, missing CRLF).
    BadChunk,
    /// Over the body limit; answered 413 when nothing was answered yet.
    TooLarge,
}

/// How a request's body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n` (0 when the request has neither header).
    Length(u64),
    Chunked,
}

/// The framing a request head declares, refusing the ambiguous ones.
pub fn request_framing(req: &Request) -> Result<Framing, BodyError> {
    let te: Vec<&str> = req.header_values("transfer-encoding").collect();
    let lengths: Vec<&str> = req.header_values("content-length").flat_map(|v| v.split(',')).map(str::trim).collect();
    if !te.is_empty() {
        // Chunked must be the only (and so the final) coding; with a length
        // beside it the request is ambiguous.
        let codings: Vec<&str> =
            te.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
        if !lengths.is_empty() || codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(BodyError::BadFraming);
        }
        return Ok(Framing::Chunked);
    }
    let Some(first) = lengths.first() else { return Ok(Framing::Length(0)) };
    if lengths.iter().any(|l| l != first) || first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BodyError::BadFraming);
    }
    first.parse::<u64>().map(Framing::Length).map_err(|_| BodyError::BadFraming)
}

/// Chunk size lines longer than this (extensions included) are refused.
const MAX_SIZE_LINE: usize = 1024;
/// Trailer section bytes read and dropped at most.
const MAX_TRAILERS: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Body bytes left (Content-Length, or the current chunk).
    Data {
        left: u64,
        chunked: bool,
    },
    /// After a chunk's data: its CRLF.
    DataEnd {
        seen: u8,
    },
    /// A chunk size line, `line` bytes of it seen so far.
    Size {
        size: u64,
        digits: u32,
        ext: bool,
        line: usize,
        cr: bool,
    },
    /// The trailer section after the last chunk: `line` bytes of the
    /// current line, `total` bytes of the section.
    Trailers {
        line: usize,
        total: usize,
        cr: bool,
    },
    Done,
}

/// Decodes one request body from the bytes that follow its head, in as many
/// pieces as they arrive, counting against a limit.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    received: u64,
    limit: u64,
}

impl BodyDecoder {
    /// A Content-Length over `limit` fails at once (before any byte is read).
    pub fn new(framing: Framing, limit: u64) -> Result<Self, BodyError> {
        let state = match framing {
            Framing::Length(n) if n > limit => return Err(BodyError::TooLarge),
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Data { left: n, chunked: false },
            Framing::Chunked => State::Size { size: 0, digits: 0, ext: false, line: 0, cr: false },
        };
        Ok(Self { state, received: 0, limit })
    }

    /// The body has ended; bytes after it belong to the next request.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes from `input` what belongs to this body, appending its data
    /// to `out`. Returns the bytes consumed: less than `input.len()` only
    /// once the body is done.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, BodyError> {
        let mut pos = 0;
        while pos < input.len() {
            match &mut self.state {
                State::Done => break,
                State::Data { left, chunked } => {
                    let n = (*left).min((input.len() - pos) as u64) as usize;
                    out.extend_from_slice(&input[pos..pos + n]);
                    pos += n;
                    *left -= n as u64;
                    self.received += n as u64;
                    if *left == 0 {
                        self.state = if *chunked { State::DataEnd { seen: 0 } } else { State::Done };
                    }
                }
                State::DataEnd { seen } => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if input[pos] != want {
                        return Err(BodyError::BadChunk);
                    }
                    pos += 1;
                    *seen += 1;
                    if *seen == 2 {
                        self.state = State::Size { size: 0, digits: 0, ext: false, line: 0, cr: false };
                    }
                }
                State::Size { size, digits, ext, line, cr } => {
                    let b = input[pos];
                    pos += 1;
                    *line += 1;
                    if *line > MAX_SIZE_LINE {
                        return Err(BodyError::BadChunk);
                    }
                    if *cr {
                        if b != b'\n' || *digits == 0 {
                            return Err(BodyError::BadChunk);
                        }
                        let size = *size;
                        if self.received.saturating_add(size) > self.limit {
                            return Err(BodyError::TooLarge);
                        }
                        self.state = if size == 0 {
                            State::Trailers { line: 0, total: 0, cr: false }
                        } else {
                            State::Data { left: size, chunked: true }
                        };
                    } else if b == b'\r' {
                        *cr = true;
                    } else if *ext {
                        // Chunk extensions are ignored (no CR/LF inside them).
                        if b == b'\n' {
                            return Err(BodyError::BadChunk);
                        }
                    } else if b == b';' && *digits > 0 {
                        *ext = true;
                    } else if let Some(d) = (b as char).to_digit(16) {
                        *digits += 1;
                        if *digits > 15 {
                            return Err(BodyError::BadChunk);
                        }
                        *size = *size * 16 + d as u64;
                    } else {
                        return Err(BodyError::BadChunk);
                    }
                }
                State::Trailers { line, total, cr } => {
                    let b = input[pos];
                    pos += 1;
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        return Err(BodyError::BadChunk);
                    }
                    if *cr {
                        if b != b'\n' {
                            return Err(BodyError::BadChunk);
                        }
                        if *line == 0 {
                            self.state = State::Done;
                        } else {
                            *line = 0;
                            *cr = false;
                        }
                    } else if b == b'\r' {
                        *cr = true;
                    } else if b == b'\n' {
                        return Err(BodyError::BadChunk);
                    } else {
                        *line += 1;
                    }
                }
            }
        }
        Ok(pos)
    }
}

/// `data` as one chunk of a chunked response (nothing for empty data: an
/// empty chunk would end the body).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked response.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::handshake::{parse_request, Limits};

    fn head(extra: &str) -> Request {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_request(raw.as_bytes(), &Limits::default()).unwrap().unwrap()
    }

    fn decode_all(framing: Framing, input: &[u8], step: usize) -> Result<(Vec<u8>, usize), BodyError> {
        let mut d = BodyDecoder::new(framing, 1 << 20)?;
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() && !d.is_done() {
            let end = (pos + step).min(input.len());
            pos += d.decode(&input[pos..end], &mut out)?;
        }
        Ok((out, pos))
    }

    #[test]
    fn framing_from_the_head_refuses_ambiguity() {
        assert_eq!(request_framing(&head("")), Ok(Framing::Length(0)));
        assert_eq!(request_framing(&head("Content-Length: 12\r\n")), Ok(Framing::Length(12)));
        assert_eq!(request_framing(&head("Content-Length: 5\r\nContent-Length: 5\r\n")), Ok(Framing::Length(5)));
        assert_eq!(request_framing(&head("Transfer-Encoding: chunked\r\n")), Ok(Framing::Chunked));
        for bad in [
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 1e3\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: identity\r\n",
        ] {
            assert_eq!(request_framing(&head(bad)), Err(BodyError::BadFraming), "{bad:?}");
        }
    }

    #[test]
    fn content_length_bodies_stop_at_their_length_in_any_split() {
        for step in [1, 2, 7, 100] {
            let (body, used) = decode_all(Framing::Length(5), b"helloGET / HTTP/1.1", step).unwrap();
            assert_eq!(body, b"hello");
            assert_eq!(used, 5);
        }
        assert_eq!(BodyDecoder::new(Framing::Length(10), 9).unwrap_err(), BodyError::TooLarge);
        assert!(BodyDecoder::new(Framing::Length(0), 0).unwrap().is_done());
    }

    #[test]
    fn chunked_bodies_decode_in_any_split_with_extensions_and_trailers() {
        let wire = b"3\r\nabc\r\nA;name=v\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 3, 5, 64] {
            let (body, used) = decode_all(Framing::Chunked, wire, step).unwrap();
            assert_eq!(body, b"abc0123456789");
            assert_eq!(&wire[used..], b"NEXT");
        }
    }

    #[test]
    fn bad_chunks_and_oversized_chunks_are_refused() {
        for bad in
            [&b"x\r\n"[..], b"3\r\nabcX\r\n", b"3\nabc", b";a\r\n", b"fffffffffffffffff\r\n", b"0\r\nbad\nline\r\n\r\n"]
        {
            assert!(decode_all(Framing::Chunked, bad, 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut d = BodyDecoder::new(Framing::Chunked, 4).unwrap();
        assert_eq!(d.decode(b"5\r\n", &mut Vec::new()), Err(BodyError::TooLarge));
        let mut d = BodyDecoder::new(Framing::Chunked, 4).unwrap();
        let mut out = Vec::new();
        assert_eq!(d.decode(b"3\r\nabc\r\n", &mut out), Ok(8));
        assert_eq!(d.decode(b"2\r\n", &mut out), Err(BodyError::TooLarge));
    }

    #[test]
    fn chunk_encoding_round_trips_through_the_decoder() {
        let mut wire = Vec::new();
        encode_chunk(b"hello ", &mut wire);
        encode_chunk(b"", &mut wire);
        encode_chunk(&[7u8; 300], &mut wire);
        wire.extend_from_slice(LAST_CHUNK);
        let (body, used) = decode_all(Framing::Chunked, &wire, 11).unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(body.len(), 306);
        assert_eq!(&body[..6], b"hello ");
    }
}
