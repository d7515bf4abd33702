//! Client side of RFC 6455: frame encoding (always masked), an incremental
//! frame decoder for server frames (never masked), and the opening handshake
//! helpers (request text, Sec-WebSocket-Accept check with a small SHA-1 and
//! base64 written here so the crate stays tiny).

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a server's byte stream is not acceptable WebSocket framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    ReservedBits,
    BadOpcode,
    MaskedServerFrame,
    ControlTooLong,
    ControlFragmented,
    LengthOverflow,
    FrameTooLarge,
    UnexpectedContinuation,
    ExpectedContinuation,
}

impl ProtoError {
    pub fn kind(self) -> &'static str {
        match self {
            ProtoError::ReservedBits => "proto_reserved_bits",
            ProtoError::BadOpcode => "proto_bad_opcode",
            ProtoError::MaskedServerFrame => "proto_masked_server_frame",
            ProtoError::ControlTooLong => "proto_control_too_long",
            ProtoError::ControlFragmented => "proto_control_fragmented",
            ProtoError::LengthOverflow => "proto_length_overflow",
            ProtoError::FrameTooLarge => "proto_frame_too_large",
            ProtoError::UnexpectedContinuation => "proto_unexpected_continuation",
            ProtoError::ExpectedContinuation => "proto_expected_continuation",
        }
    }
}

/// XOR `buf` with the 4-byte masking key (the key's phase starts at buf[0]).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().unwrap()) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Append one masked client frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    encode_frame_parts(out, fin, opcode, &[payload], mask);
}

/// Append one masked client frame whose payload is the concatenation of
/// `parts`: lets callers send "prefix + number + suffix" without building
/// the message in a buffer of its own first.
pub fn encode_frame_parts(out: &mut Vec<u8>, fin: bool, opcode: u8, parts: &[&[u8]], mask: [u8; 4]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(14 + len);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    for p in parts {
        out.extend_from_slice(p);
    }
    apply_mask(&mut out[start..], mask);
}

/// A fresh masking key. fastrand is not a CSPRNG; fine for a load generator
/// talking to our own servers on loopback.
pub fn random_mask() -> [u8; 4] {
    fastrand::u32(..).to_ne_bytes()
}

/// Parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub fin: bool,
    /// RSV1: a compressed message (permessage-deflate), on its first frame.
    pub rsv1: bool,
    pub opcode: u8,
    pub header_len: usize,
    pub payload_len: u64,
}

/// Parse a server frame header from the start of `buf`; RSV1 is allowed
/// on data frames when `deflate` was negotiated. Ok(None) means more bytes
/// are needed.
pub fn parse_head_ext(buf: &[u8], max_payload: u64, deflate: bool) -> Result<Option<Head>, ProtoError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let b0 = buf[0];
    let b1 = buf[1];
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && (!deflate || !matches!(b0 & 0x0f, OP_TEXT | OP_BINARY))) {
        return Err(ProtoError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    match opcode {
        OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err(ProtoError::BadOpcode),
    }
    if b1 & 0x80 != 0 {
        return Err(ProtoError::MaskedServerFrame);
    }
    let (header_len, payload_len) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (4, u16::from_be_bytes([buf[2], buf[3]]) as u64)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let v = u64::from_be_bytes(buf[2..10].try_into().unwrap());
            if v >> 63 != 0 {
                return Err(ProtoError::LengthOverflow);
            }
            (10, v)
        }
        n => (2, n as u64),
    };
    if opcode >= OP_CLOSE {
        if !fin {
            return Err(ProtoError::ControlFragmented);
        }
        if payload_len > 125 {
            return Err(ProtoError::ControlTooLong);
        }
    }
    if payload_len > max_payload {
        return Err(ProtoError::FrameTooLarge);
    }
    Ok(Some(Head { fin, rsv1, opcode, header_len, payload_len }))
}

/// One decoded frame handed to the caller.
#[derive(Debug)]
pub struct Frame<'a> {
    pub fin: bool,
    pub opcode: u8,
    /// For data frames: the opcode of the message this frame belongs to
    /// (TEXT or BINARY, also on continuation frames). Equal to `opcode` for control frames.
    pub msg_opcode: u8,
    /// The message this data frame belongs to is compressed.
    pub compressed: bool,
    pub payload: &'a [u8],
}

/// Incremental decoder. Holds no allocation while the stream sits between
/// frames: bytes are parsed straight out of the caller's (shared) read buffer
/// and only an incomplete frame tail is copied into `partial`.
#[derive(Debug)]
pub struct Decoder {
    partial: Vec<u8>,
    max_payload: u32,
    /// Opcode of the fragmented message in progress, 0 if none.
    msg_opcode: u8,
    /// permessage-deflate was negotiated: RSV1 allowed.
    deflate: bool,
    /// The fragmented message in progress is compressed.
    msg_compressed: bool,
}

impl Decoder {
    pub fn new(max_payload: u32) -> Self {
        Decoder { partial: Vec::new(), max_payload, msg_opcode: 0, deflate: false, msg_compressed: false }
    }

    /// permessage-deflate was negotiated (RSV1 marks compressed messages).
    pub fn set_deflate(&mut self) {
        self.deflate = true;
    }

    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    pub fn has_buffered(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Seed the decoder with bytes that arrived together with the handshake response.
    pub fn preload(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
    }

    /// Feed bytes from the stream. `f` gets every complete frame and returns
    /// false to stop decoding (e.g. after a close frame); the remaining bytes
    /// are then discarded. Passing an empty `data` decodes what is buffered.
    pub fn feed<F>(&mut self, data: &[u8], mut f: F) -> Result<(), ProtoError>
    where
        F: FnMut(&Frame<'_>) -> bool,
    {
        if self.partial.is_empty() {
            let (used, stopped) = self.parse_all(data, &mut f)?;
            if !stopped && used < data.len() {
                self.stash(&data[used..]);
            }
        } else {
            self.partial.extend_from_slice(data);
            let buf = std::mem::take(&mut self.partial);
            let (used, stopped) = self.parse_all(&buf, &mut f)?;
            if !stopped && used < buf.len() {
                if used == 0 {
                    self.partial = buf;
                } else {
                    self.stash(&buf[used..]);
                }
            }
            // else: `buf` is dropped, so an idle connection keeps no buffer.
        }
        Ok(())
    }

    fn stash(&mut self, rest: &[u8]) {
        // Reserve for the whole frame once its length is known.
        let want = match parse_head_ext(rest, self.max_payload as u64, self.deflate) {
            Ok(Some(h)) => h.header_len + h.payload_len as usize,
            _ => rest.len(),
        };
        self.partial.reserve_exact(want.max(rest.len()));
        self.partial.extend_from_slice(rest);
    }

    fn parse_all<F>(&mut self, data: &[u8], f: &mut F) -> Result<(usize, bool), ProtoError>
    where
        F: FnMut(&Frame<'_>) -> bool,
    {
        let mut used = 0;
        loop {
            let rest = &data[used..];
            let h = match parse_head_ext(rest, self.max_payload as u64, self.deflate)? {
                Some(h) => h,
                None => return Ok((used, false)),
            };
            let total = h.header_len + h.payload_len as usize;
            if rest.len() < total {
                return Ok((used, false));
            }
            let msg_opcode = self.sequence(&h)?;
            let compressed = match h.opcode {
                OP_TEXT | OP_BINARY => {
                    self.msg_compressed = h.rsv1;
                    h.rsv1
                }
                OP_CONT => self.msg_compressed,
                _ => false,
            };
            let frame =
                Frame { fin: h.fin, opcode: h.opcode, msg_opcode, compressed, payload: &rest[h.header_len..total] };
            used += total;
            if !f(&frame) {
                return Ok((used, true));
            }
        }
    }

    /// Check fragmentation order; returns the message opcode for the frame.
    fn sequence(&mut self, h: &Head) -> Result<u8, ProtoError> {
        match h.opcode {
            OP_CONT => {
                if self.msg_opcode == 0 {
                    return Err(ProtoError::UnexpectedContinuation);
                }
                let op = self.msg_opcode;
                if h.fin {
                    self.msg_opcode = 0;
                }
                Ok(op)
            }
            OP_TEXT | OP_BINARY => {
                if self.msg_opcode != 0 {
                    return Err(ProtoError::ExpectedContinuation);
                }
                if !h.fin {
                    self.msg_opcode = h.opcode;
                }
                Ok(h.opcode)
            }
            op => Ok(op),
        }
    }
}

// ---------------------------------------------------------------- handshake

/// 16 random bytes, base64: the Sec-WebSocket-Key.
pub fn new_key() -> String {
    let mut k = [0u8; 16];
    for b in k.iter_mut() {
        *b = fastrand::u8(..);
    }
    base64(&k)
}

pub fn accept_for(key: &str) -> String {
    let mut s = Vec::with_capacity(key.len() + WS_GUID.len());
    s.extend_from_slice(key.as_bytes());
    s.extend_from_slice(WS_GUID.as_bytes());
    base64(&sha1(&s))
}

/// The GET request that opens a WebSocket.
pub fn upgrade_request(host: &str, path: &str, key: &str, extra_headers: &[String]) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in extra_headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Outcome of parsing (part of) the server's handshake response.
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeParse {
    /// Need more bytes.
    Partial,
    /// Valid 101 response; the value is the header length (bytes after it are frames).
    Done(usize),
    /// Rejected; the value is an error kind label.
    Failed(String),
}

pub fn parse_upgrade_response(buf: &[u8], key: &str) -> HandshakeParse {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Partial) => return HandshakeParse::Partial,
        Ok(httparse::Status::Complete(n)) => n,
        Err(_) => return HandshakeParse::Failed("handshake_bad_http".into()),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return HandshakeParse::Failed(format!("handshake_status_{code}"));
    }
    let mut upgrade_ok = false;
    let mut connection_ok = false;
    let mut accept_ok = false;
    let expected = accept_for(key);
    for h in resp.headers.iter() {
        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade_ok = v.eq_ignore_ascii_case("websocket");
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection_ok = v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if h.name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept_ok = v == expected;
        }
    }
    if !upgrade_ok || !connection_ok {
        return HandshakeParse::Failed("handshake_missing_upgrade".into());
    }
    if !accept_ok {
        return HandshakeParse::Failed("handshake_bad_accept".into());
    }
    HandshakeParse::Done(len)
}

/// permessage-deflate in a 101 response head: None when not agreed, else
/// whether the server keeps no context (`server_no_context_takeover`).
pub fn agreed_deflate(head: &[u8]) -> Option<bool> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(head).ok()?;
    let ext = resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))?;
    let v = std::str::from_utf8(ext.value).ok()?.to_ascii_lowercase();
    v.trim_start().starts_with("permessage-deflate").then(|| v.contains("server_no_context_takeover"))
}

// ------------------------------------------------------------ SHA-1, base64

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = Vec::with_capacity(data.len() + 72);
    msg.extend_from_slice(data);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    let mut w = [0u32; 80];
    for block in msg.chunks_exact(64) {
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build an unmasked (server-style) frame for decoder tests.
    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame(&mut v, fin, opcode, payload, [0; 4]);
        // Clear the MASK bit and drop the zero key.
        v[1] &= 0x7f;
        let key_at = match v[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        v.drain(key_at..key_at + 4);
        v
    }

    /// (fin, opcode, msg_opcode, payload)
    type Got = (bool, u8, u8, Vec<u8>);

    fn collect(dec: &mut Decoder, data: &[u8]) -> Result<Vec<Got>, ProtoError> {
        let mut got = Vec::new();
        dec.feed(data, |f| {
            got.push((f.fin, f.opcode, f.msg_opcode, f.payload.to_vec()));
            true
        })?;
        Ok(got)
    }

    #[test]
    fn sha1_and_base64_vectors() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        let hex: String = sha1(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // RFC 6455 section 1.3 example.
        assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(new_key().len(), 24);
    }

    #[test]
    fn encode_masks_and_sizes() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        // RFC 6455 5.7: masked "Hello".
        let mut v = Vec::new();
        encode_frame(&mut v, true, OP_TEXT, b"Hello", mask);
        assert_eq!(v, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);

        let mut parts = Vec::new();
        encode_frame_parts(&mut parts, true, OP_TEXT, &[b"He", b"", b"llo"], mask);
        assert_eq!(parts, v);

        for (len, hdr) in [(125usize, 2usize), (126, 4), (65535, 4), (65536, 10)] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut v = Vec::new();
            encode_frame(&mut v, true, OP_BINARY, &payload, mask);
            assert_eq!(v.len(), hdr + 4 + len, "len {len}");
            assert_eq!(v[1] & 0x80, 0x80);
            let mut body = v[hdr + 4..].to_vec();
            apply_mask(&mut body, mask);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn decode_whole_and_split() {
        let mut stream = Vec::new();
        stream.extend(server_frame(true, OP_PING, b"hb"));
        stream.extend(server_frame(false, OP_TEXT, b"hel"));
        stream.extend(server_frame(true, OP_PONG, b""));
        stream.extend(server_frame(true, OP_CONT, b"lo"));
        let big: Vec<u8> = vec![7; 70_000];
        stream.extend(server_frame(true, OP_BINARY, &big));
        stream.extend(server_frame(true, OP_CLOSE, &[0x03, 0xe8]));

        let mut dec = Decoder::new(1 << 20);
        let all = collect(&mut dec, &stream).unwrap();
        assert!(!dec.has_buffered());
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], (true, OP_PING, OP_PING, b"hb".to_vec()));
        assert_eq!(all[1], (false, OP_TEXT, OP_TEXT, b"hel".to_vec()));
        assert_eq!(all[3], (true, OP_CONT, OP_TEXT, b"lo".to_vec()));
        assert_eq!(all[4].3.len(), 70_000);
        assert_eq!(all[5].1, OP_CLOSE);

        // Every split point, including one byte at a time.
        for step in [1usize, 3, 7, 1000] {
            let mut dec = Decoder::new(1 << 20);
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                got.extend(collect(&mut dec, chunk).unwrap());
            }
            assert_eq!(got, all, "step {step}");
            assert!(!dec.has_buffered());
        }
    }

    #[test]
    fn decode_preload_and_stop() {
        let mut dec = Decoder::new(1024);
        let mut s = server_frame(true, OP_CLOSE, &[0x03, 0xe8]);
        s.extend(server_frame(true, OP_TEXT, b"after close"));
        dec.preload(&s);
        let mut n = 0;
        dec.feed(&[], |_| {
            n += 1;
            false
        })
        .unwrap();
        assert_eq!(n, 1);
        assert!(!dec.has_buffered());
    }

    #[test]
    fn decode_rejects_bad_frames() {
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0x81, 0x81, 0, 0, 0, 0, 0]), Err(ProtoError::MaskedServerFrame));
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0xC1, 0x00]), Err(ProtoError::ReservedBits));
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0x83, 0x00]), Err(ProtoError::BadOpcode));
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0x09, 0x00]), Err(ProtoError::ControlFragmented));
        let mut dec = Decoder::new(1000);
        assert_eq!(collect(&mut dec, &[0x89, 126, 0, 126]), Err(ProtoError::ControlTooLong));
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0x82, 101]), Err(ProtoError::FrameTooLarge));
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0x80, 0]), Err(ProtoError::UnexpectedContinuation));
        let mut dec = Decoder::new(100);
        assert_eq!(collect(&mut dec, &[0x01, 1, b'a', 0x81, 1, b'b']), Err(ProtoError::ExpectedContinuation));
    }

    #[test]
    fn handshake_response() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x00";
        assert_eq!(parse_upgrade_response(&ok[..20], key), HandshakeParse::Partial);
        assert_eq!(parse_upgrade_response(ok, key), HandshakeParse::Done(ok.len() - 2));
        let bad = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: nope\r\n\r\n";
        assert_eq!(parse_upgrade_response(bad, key), HandshakeParse::Failed("handshake_bad_accept".into()));
        let nf = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_upgrade_response(nf, key), HandshakeParse::Failed("handshake_status_404".into()));
        let req = String::from_utf8(upgrade_request("127.0.0.1:9", "/x?y=1", key, &[])).unwrap();
        assert!(req.starts_with("GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(req.ends_with("Sec-WebSocket-Version: 13\r\n\r\n"));
    }
}

#[cfg(test)]
mod deflate_tests {
    use super::*;

    #[test]
    fn agreed_deflate_reads_the_response_head() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n";
        assert_eq!(agreed_deflate(head), Some(true));
        let head = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        assert_eq!(agreed_deflate(head), Some(false));
        assert_eq!(agreed_deflate(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), None);
    }

    #[test]
    fn rsv1_only_on_data_frames_once_negotiated() {
        assert!(parse_head_ext(&[0xC1, 0], 10, true).unwrap().unwrap().rsv1);
        assert!(parse_head_ext(&[0xC1, 0], 10, false).is_err());
        assert!(parse_head_ext(&[0xC9, 0], 10, true).is_err());
        assert!(parse_head_ext(&[0xA1, 0], 10, true).is_err());
    }
}
