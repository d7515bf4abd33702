//! Engine.IO v4 wire codec: pure functions from bytes to packets and back, for
//! both transports, plus the small wire formats around them (open-packet JSON,
//! session ids, the request query, HTTP error bodies). No I/O except the
//! randomness of [`generate_sid`].
//!
//! Reference: `docs/engine.io-protocol/v4-current.md`, engine.io 6.6
//! (`packages/engine.io/lib`) and engine.io-parser 5.2
//! (`packages/engine.io-parser/lib`) in the socketio/socket.io monorepo.
//! Where this codec deliberately differs from engine.io, the comment says so.

use std::fs::File;
use std::io::{self, Read};
use std::sync::OnceLock;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::json::push_json_string;

/// Separates packets in a polling payload (spec, "Packet encoding"). Splitting
/// raw bytes on it is safe: every byte of a multi-byte UTF-8 sequence has its
/// high bit set, so 0x1e only ever encodes U+001E itself.
pub const SEPARATOR: u8 = 0x1e;

/// Marks a base64 binary message in a text encoding; it replaces the type char
/// (engine.io-parser `encodePacket.ts`: `"b" + base64`, no `4`).
const BINARY_PREFIX: u8 = b'b';

/// Standard alphabet, padded on encode. Decoding accepts missing padding and
/// non-zero trailing bits because Node's `Buffer.from(s, "base64")`, which
/// engine.io decodes with, does; it also skips foreign characters and accepts
/// the URL-safe alphabet, which we reject: no official client sends either.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The first character of every text-encoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Open = b'0',
    Close = b'1',
    Ping = b'2',
    Pong = b'3',
    Message = b'4',
    Upgrade = b'5',
    Noop = b'6',
}

impl PacketType {
    pub fn from_byte(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    pub fn as_byte(self) -> u8 {
        self as u8
    }
}

/// The handshake data of an open packet. Server to client only: engine.io's
/// socket ignores an open packet from a client (`socket.ts` `onPacket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub sid: String,
    /// `["websocket"]` for a polling session (when upgrades are allowed), `[]`
    /// for a session opened over WebSocket (`server.ts` `upgrades()`).
    pub upgrades: Vec<&'static str>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    /// engine.io sends `maxHttpBufferSize` here (`socket.ts` `onOpen`).
    pub max_payload: u64,
}

/// The data of a message packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Valid UTF-8: the decoders guarantee it; code building one by hand must
    /// too (or use [`Payload::text`]), since encoders copy the bytes as they are.
    Text(Bytes),
    Binary(Bytes),
}

impl Payload {
    pub fn text(text: impl Into<String>) -> Payload {
        Payload::Text(Bytes::from(text.into()))
    }

    pub fn as_bytes(&self) -> &Bytes {
        match self {
            Payload::Text(bytes) | Payload::Binary(bytes) => bytes,
        }
    }

    pub fn is_binary(&self) -> bool {
        matches!(self, Payload::Binary(_))
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Server to client only; decoding one yields [`DecodeError::UnexpectedOpen`].
    Open(OpenInfo),
    Close,
    /// The text after the type char, if any: `2probe` starts an upgrade.
    /// A `Some` that is empty encodes as `2` and so decodes back as `None`.
    Ping(Option<Bytes>),
    /// `3probe` answers the upgrade probe.
    Pong(Option<Bytes>),
    Message(Payload),
    Upgrade,
    Noop,
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }
}

/// Why bytes are not an Engine.IO packet. engine.io turns each of these into a
/// parser "error" packet and closes the session with reason "parse error".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An empty frame, an empty HTTP body, or an empty record between (or
    /// after) separators: engine.io-parser finds no type char in `""`.
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type byte {0:#04x}")]
    UnknownType(u8),
    /// engine.io ignores a client's open packet instead of failing; a caller
    /// that wants exact parity can skip this error rather than close.
    #[error("open packet sent by the client")]
    UnexpectedOpen,
    /// engine.io decodes a polling body lossily (`req.setEncoding("utf8")`) and
    /// `ws` closes on bad UTF-8 in text frames; we reject in both cases.
    #[error("text packet is not valid UTF-8")]
    InvalidUtf8,
    #[error("binary packet is not valid base64")]
    InvalidBase64,
}

/// Decodes a WebSocket text frame: one packet, `<type>[<data>]`. A binary frame
/// is not decoded: it is `Packet::Message(Payload::Binary(frame))` as is.
/// A text frame `b<base64>` is a binary message too, as in engine.io, which
/// runs both transports through the same `decodePacket`.
pub fn decode_text(frame: &[u8]) -> Result<Packet, DecodeError> {
    decode_record(frame, Bytes::copy_from_slice)
}

/// One text record, from a WS text frame or a polling payload. `to_bytes` turns
/// a subslice of `record` into owned `Bytes` (a copy, or a view of the body).
pub(crate) fn decode_record(record: &[u8], to_bytes: impl FnOnce(&[u8]) -> Bytes) -> Result<Packet, DecodeError> {
    let Some((&first, data)) = record.split_first() else {
        return Err(DecodeError::Empty);
    };
    if std::str::from_utf8(record).is_err() {
        return Err(DecodeError::InvalidUtf8);
    }
    if first == BINARY_PREFIX {
        let binary = BASE64.decode(data).map_err(|_| DecodeError::InvalidBase64)?;
        return Ok(Packet::Message(Payload::Binary(Bytes::from(binary))));
    }
    let kind = PacketType::from_byte(first).ok_or(DecodeError::UnknownType(first))?;
    // engine.io-parser attaches data only when the packet is longer than its
    // type char, so `2` is a ping without data and `4` a message of "".
    let text = || if data.is_empty() { None } else { Some(to_bytes(data)) };
    Ok(match kind {
        PacketType::Open => return Err(DecodeError::UnexpectedOpen),
        // Data after close/upgrade/noop is ignored, not an error: engine.io never
        // reads it, so `5probe` upgrades like `5`.
        PacketType::Close => Packet::Close,
        PacketType::Upgrade => Packet::Upgrade,
        PacketType::Noop => Packet::Noop,
        PacketType::Ping => Packet::Ping(text()),
        PacketType::Pong => Packet::Pong(text()),
        PacketType::Message => Packet::Message(Payload::Text(text().unwrap_or_default())),
    })
}

/// Encodes a packet for a WebSocket frame: `(is_binary, payload)`. Binary
/// messages go out as raw binary frames (shared, not copied); everything else
/// is one text frame. A client that asked for `b64` (it cannot receive binary
/// frames) needs `(false, encode_text(packet))` instead, as engine.io's
/// websocket transport does when `supportsBinary` is false.
pub fn encode_ws(packet: &Packet) -> (bool, Bytes) {
    match packet {
        Packet::Message(Payload::Binary(binary)) => (true, binary.clone()),
        _ => (false, encode_text(packet)),
    }
}

/// Encodes one packet as text: `<type>[<data>]`, or `b<base64>` for binary.
pub fn encode_text(packet: &Packet) -> Bytes {
    let mut out = BytesMut::with_capacity(record_len(packet));
    write_record(&mut out, packet);
    out.freeze()
}

/// Decodes a polling request body: records split on [`SEPARATOR`]. All or
/// nothing, for tests and the fuzzer; the engine uses [`PayloadDecoder`],
/// which yields the packets before a bad record too.
#[cfg(any(test, fuzzing))]
pub fn decode_payload(body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
    PayloadDecoder::new(body).collect()
}

/// Decodes a polling body record by record. engine.io-parser's `decodePayload`
/// delivers every packet before a bad record, then the error (which closes the
/// session), then stops; this iterator does the same.
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    body: Bytes,
    /// Start of the next record; `None` after the last record or an error.
    next: Option<usize>,
}

impl PayloadDecoder {
    /// Copies the body once; text records are then views into that copy.
    pub fn new(body: &[u8]) -> PayloadDecoder {
        PayloadDecoder { body: Bytes::copy_from_slice(body), next: Some(0) }
    }
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next?;
        let rest = &self.body[start..];
        // JS `split` keeps empty fields, so an empty body is one empty record and
        // a trailing separator ends with one: both are parse errors in engine.io.
        let (record, next) = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(i) => (&rest[..i], Some(start + i + 1)),
            None => (rest, None),
        };
        let result = decode_record(record, |data| self.body.slice_ref(data));
        self.next = if result.is_ok() { next } else { None };
        Some(result)
    }
}

impl std::iter::FusedIterator for PayloadDecoder {}

/// Encodes packets as a polling response body: text records joined by
/// [`SEPARATOR`], binary messages as `b<base64>` whatever the client supports
/// (protocol v4 always uses base64 over polling). An empty slice gives an empty
/// body, which a client decodes as a parse error: send at least one packet
/// (engine.io sends a noop to release a held GET).
///
/// A text message containing U+001E is split in two by the receiver: the
/// protocol has no escape for it (the spec "assumes the record separator is not
/// used in the data"), and engine.io sends it unchanged, so we do too.
pub fn encode_payload(packets: &[Packet]) -> Bytes {
    let len = packets.iter().map(|p| record_len(p) + 1).sum::<usize>().saturating_sub(1);
    let mut out = BytesMut::with_capacity(len);
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.put_u8(SEPARATOR);
        }
        write_record(&mut out, packet);
    }
    out.freeze()
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Exact length of a text record, so encoders allocate once.
fn record_len(packet: &Packet) -> usize {
    match packet {
        Packet::Open(info) => 1 + open_json(info).len(),
        Packet::Ping(data) | Packet::Pong(data) => 1 + data.as_ref().map_or(0, Bytes::len),
        Packet::Message(Payload::Text(text)) => 1 + text.len(),
        Packet::Message(Payload::Binary(binary)) => 1 + base64_len(binary.len()),
        Packet::Close | Packet::Upgrade | Packet::Noop => 1,
    }
}

fn write_record(out: &mut BytesMut, packet: &Packet) {
    match packet {
        Packet::Message(Payload::Binary(binary)) => {
            out.put_u8(BINARY_PREFIX);
            let start = out.len();
            out.resize(start + base64_len(binary.len()), 0);
            // Cannot fail: the slice was just sized to the padded encoded length.
            let written = BASE64.encode_slice(binary, &mut out[start..]).expect("base64 output sized exactly");
            debug_assert_eq!(written, out.len() - start);
        }
        Packet::Open(info) => {
            out.put_u8(PacketType::Open.as_byte());
            out.put_slice(open_json(info).as_bytes());
        }
        Packet::Ping(data) | Packet::Pong(data) => {
            out.put_u8(packet.packet_type().as_byte());
            if let Some(data) = data {
                out.put_slice(data);
            }
        }
        Packet::Message(Payload::Text(text)) => {
            out.put_u8(PacketType::Message.as_byte());
            out.put_slice(text);
        }
        Packet::Close | Packet::Upgrade | Packet::Noop => out.put_u8(packet.packet_type().as_byte()),
    }
}

/// The open packet's JSON, byte for byte what engine.io's `JSON.stringify`
/// produces: these five keys in this order, no spaces (`socket.ts` `onOpen`).
pub fn open_json(info: &OpenInfo) -> String {
    let mut json = String::with_capacity(96 + info.sid.len());
    json.push_str("{\"sid\":");
    push_json_string(&mut json, &info.sid);
    json.push_str(",\"upgrades\":[");
    for (i, upgrade) in info.upgrades.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_json_string(&mut json, upgrade);
    }
    json.push_str("],\"pingInterval\":");
    json.push_str(&info.ping_interval.to_string());
    json.push_str(",\"pingTimeout\":");
    json.push_str(&info.ping_timeout.to_string());
    json.push_str(",\"maxPayload\":");
    json.push_str(&info.max_payload.to_string());
    json.push('}');
    json
}

/// Length in bytes of the random part of a session id: a multiple of 3, so the
/// base64 text (20 chars) needs no padding, as in engine.io's `base64id.ts`.
const SID_BYTES: usize = 15;

/// A new session id: 15 bytes from `/dev/urandom`, base64url without padding
/// (20 chars of `A-Z a-z 0-9 - _`, the alphabet engine.io's ids use). engine.io
/// spends 3 of its 15 bytes on a sequence number; all of ours are random, so
/// ids reveal nothing about how many sessions came before.
///
/// `/dev/urandom` rather than the `getrandom` crate: it is a CSPRNG on every
/// Linux, the only platform the addon ships for, and needs no new dependency.
/// An error here should fail the handshake with `HttpErrorCode::BadRequest`, as
/// engine.io does when `generateId` throws.
pub fn generate_sid() -> io::Result<String> {
    // Opened once and shared: `&File` reads are thread-safe. Each thread
    // keeps a pool of random bytes refilled 64 sids at a time, so a
    // handshake usually costs no system call at all.
    static URANDOM: OnceLock<File> = OnceLock::new();
    const POOL: usize = SID_BYTES * 64;
    thread_local! {
        static RANDOM: std::cell::RefCell<([u8; POOL], usize)> = const { std::cell::RefCell::new(([0; POOL], POOL)) };
    }
    let file = match URANDOM.get() {
        Some(file) => file,
        None => {
            let opened = File::open("/dev/urandom")?;
            // Losing a race to another thread just drops our handle.
            URANDOM.get_or_init(|| opened)
        }
    };
    RANDOM.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + SID_BYTES > POOL {
            (&*file).read_exact(bytes)?;
            *used = 0;
        }
        let sid = URL_SAFE_NO_PAD.encode(&bytes[*used..*used + SID_BYTES]);
        *used += SID_BYTES;
        Ok(sid)
    })
}

/// The Engine.IO parameters of a request URL, as engine.io sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Protocol revision; engine.io treats anything but `"4"` (or a missing
    /// value) as v3, refused with `UnsupportedProtocolVersion` unless allowEIO3.
    pub eio: Option<String>,
    pub transport: Option<String>,
    /// `None` when absent or empty: engine.io tests `if (sid)`, so `sid=` is a
    /// new handshake, not an unknown session.
    pub sid: Option<String>,
    /// The client cannot receive binary: JS truthiness of the `b64` string, so
    /// `b64=1` and `b64=0` set it, `b64=` and a bare `b64` do not.
    pub b64: bool,
    /// The JSONP callback index `j`; any `j`, even empty, makes a polling
    /// request JSONP (`typeof req._query.j === "string"`, `transports/index.ts`).
    pub jsonp: Option<String>,
}

impl Query {
    pub fn is_eio4(&self) -> bool {
        self.eio.as_deref() == Some("4")
    }
}

/// Parses the raw query string (everything after the first `?` of the request
/// target) the way engine.io does, with `new URL(...).searchParams` and
/// `Object.fromEntries`: `&`-separated pairs, `+` is a space, percent-decoding
/// of names and values (a malformed escape stays literal, bad UTF-8 becomes
/// U+FFFD), and the last of repeated keys wins. `t` (cache buster) is ignored.
pub fn parse_query(query: &str) -> Query {
    // The URL parser ends the query at a fragment; a raw target should have
    // none, but this keeps us seeing what engine.io sees if one slips through.
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let mut eio = None;
    let mut transport = None;
    let mut sid = None;
    let mut b64 = None;
    let mut jsonp = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match form_decode(name).as_str() {
            "EIO" => &mut eio,
            "transport" => &mut transport,
            "sid" => &mut sid,
            "b64" => &mut b64,
            "j" => &mut jsonp,
            _ => continue,
        };
        *slot = Some(form_decode(value));
    }
    Query {
        eio,
        transport,
        sid: sid.filter(|s: &String| !s.is_empty()),
        b64: b64.is_some_and(|s: String| !s.is_empty()),
        jsonp,
    }
}

/// application/x-www-form-urlencoded decoding of one name or value (WHATWG URL).
pub(crate) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (bytes.get(i + 1).copied().and_then(hex_value), bytes.get(i + 2).copied().and_then(hex_value)) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// engine.io's HTTP error codes (`Server.errors` in `server.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HttpErrorCode {
    TransportUnknown = 0,
    SessionIdUnknown = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    /// `allowRequest` (run in JS with the user's function) refused.
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl HttpErrorCode {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// `Server.errorMessages`. A failed WebSocket upgrade gets this text alone
    /// as a `text/html` body, always with status 400 (`abortUpgrade`).
    pub fn message(self) -> &'static str {
        match self {
            HttpErrorCode::TransportUnknown => "Transport unknown",
            HttpErrorCode::SessionIdUnknown => "Session ID unknown",
            HttpErrorCode::BadHandshakeMethod => "Bad handshake method",
            HttpErrorCode::BadRequest => "Bad request",
            HttpErrorCode::Forbidden => "Forbidden",
            HttpErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

/// Status and `application/json` body of a refused polling request, as
/// engine.io's `abortRequest` writes them: `{"code":N,"message":"..."}`,
/// 403 for Forbidden and 400 otherwise. `message` replaces the code's own
/// (engine.io uses the one `allowRequest` passes to its callback).
pub fn error_body(code: HttpErrorCode, message: Option<&str>) -> (u16, String) {
    let message = message.unwrap_or(code.message());
    let mut body = String::with_capacity(24 + message.len());
    body.push_str("{\"code\":");
    body.push_str(&code.code().to_string());
    body.push_str(",\"message\":");
    push_json_string(&mut body, message);
    body.push('}');
    (if code == HttpErrorCode::Forbidden { 403 } else { 400 }, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn text(s: &str) -> Packet {
        Packet::Message(Payload::text(s))
    }

    fn binary(b: &[u8]) -> Packet {
        Packet::Message(Payload::Binary(Bytes::copy_from_slice(b)))
    }

    fn open_info(upgrades: Vec<&'static str>) -> OpenInfo {
        OpenInfo {
            sid: "lv_VI97HAXpY6yYWAAAC".into(),
            upgrades,
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        }
    }

    /// Every packet a client may send, each with a distinct shape.
    fn client_packets() -> Vec<Packet> {
        vec![
            Packet::Close,
            Packet::Ping(None),
            Packet::Ping(Some(Bytes::from_static(b"probe"))),
            Packet::Pong(None),
            Packet::Pong(Some(Bytes::from_static(b"probe"))),
            text("hello"),
            text(""),
            text("héllo € 日本 🦀"),
            binary(&[1, 2, 3, 4]),
            binary(&[]),
            binary(&[0x1e, 0x1e, 0xff, 0x00]),
            Packet::Upgrade,
            Packet::Noop,
        ]
    }

    /// Tiny deterministic PRNG so the robustness tests need no dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn packet_type_bytes() {
        let all = [
            PacketType::Open,
            PacketType::Close,
            PacketType::Ping,
            PacketType::Pong,
            PacketType::Message,
            PacketType::Upgrade,
            PacketType::Noop,
        ];
        for (i, kind) in all.into_iter().enumerate() {
            assert_eq!(kind.as_byte(), b'0' + i as u8);
            assert_eq!(PacketType::from_byte(kind.as_byte()), Some(kind));
        }
        for byte in (0..=255u8).filter(|b| !(b'0'..=b'6').contains(b)) {
            assert_eq!(PacketType::from_byte(byte), None, "{byte}");
        }
    }

    #[test]
    fn ws_encodings_are_exact() {
        let cases: Vec<(Packet, &[u8])> = vec![
            (text("hello"), b"4hello"),
            (text(""), b"4"),
            (Packet::Ping(None), b"2"),
            (Packet::Ping(Some(Bytes::from_static(b"probe"))), b"2probe"),
            (Packet::Pong(Some(Bytes::from_static(b"probe"))), b"3probe"),
            (Packet::Pong(None), b"3"),
            (Packet::Ping(Some(Bytes::new())), b"2"),
            (Packet::Close, b"1"),
            (Packet::Upgrade, b"5"),
            (Packet::Noop, b"6"),
        ];
        for (packet, wire) in cases {
            assert_eq!(encode_ws(&packet), (false, Bytes::from_static(wire)), "{packet:?}");
        }
        assert_eq!(encode_ws(&binary(&[1, 2, 3])), (true, Bytes::from_static(&[1, 2, 3])));
        let open = Packet::Open(open_info(vec![]));
        let expected = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(encode_ws(&open), (false, Bytes::from(expected)));
    }

    #[test]
    fn ws_binary_is_shared_not_copied() {
        let data = Bytes::from(vec![7u8; 1024]);
        let (is_binary, out) = encode_ws(&Packet::Message(Payload::Binary(data.clone())));
        assert!(is_binary);
        assert_eq!(out.as_ptr(), data.as_ptr());
    }

    #[test]
    fn ws_round_trip_every_packet() {
        for packet in client_packets() {
            let (is_binary, wire) = encode_ws(&packet);
            let decoded = if is_binary { Packet::Message(Payload::Binary(wire)) } else { decode_text(&wire).unwrap() };
            assert_eq!(decoded, packet);
        }
    }

    #[test]
    fn text_encoding_of_binary_is_b_base64() {
        // The spec's example: <01 02 03 04> -> bAQIDBA== (no `4` before the `b`).
        assert_eq!(encode_text(&binary(&[1, 2, 3, 4])), Bytes::from_static(b"bAQIDBA=="));
        assert_eq!(encode_text(&binary(&[])), Bytes::from_static(b"b"));
        // A b64 WebSocket client gets the same text frame, and it decodes back.
        assert_eq!(decode_text(b"bAQIDBA==").unwrap(), binary(&[1, 2, 3, 4]));
        assert_eq!(decode_text(b"b").unwrap(), binary(&[]));
    }

    #[test]
    fn decode_without_data() {
        assert_eq!(decode_text(b"4").unwrap(), text(""));
        assert_eq!(decode_text(b"2").unwrap(), Packet::Ping(None));
        assert_eq!(decode_text(b"3").unwrap(), Packet::Pong(None));
        assert_eq!(decode_text(b"2probe").unwrap(), Packet::Ping(Some(Bytes::from_static(b"probe"))));
    }

    #[test]
    fn data_after_close_upgrade_noop_is_ignored() {
        assert_eq!(decode_text(b"1bye").unwrap(), Packet::Close);
        assert_eq!(decode_text(b"5probe").unwrap(), Packet::Upgrade);
        assert_eq!(decode_text(b"6xyz").unwrap(), Packet::Noop);
    }

    #[test]
    fn decode_text_errors() {
        assert_eq!(decode_text(b""), Err(DecodeError::Empty));
        assert_eq!(decode_text(b"7"), Err(DecodeError::UnknownType(b'7')));
        assert_eq!(decode_text(b"x4hello"), Err(DecodeError::UnknownType(b'x')));
        assert_eq!(decode_text(b" 4"), Err(DecodeError::UnknownType(b' ')));
        assert_eq!(decode_text("€".as_bytes()), Err(DecodeError::UnknownType(0xe2)));
        assert_eq!(decode_text(b"0"), Err(DecodeError::UnexpectedOpen));
        assert_eq!(decode_text(br#"0{"sid":"x"}"#), Err(DecodeError::UnexpectedOpen));
        assert_eq!(decode_text(b"4\xff"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_text(b"4\xe2\x82"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_text(b"\xff"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_text(b"bAQ\xffID"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_text(b"b!!!!"), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_text(b"bA"), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_text(b"bAQ=ID"), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_text(b"bAQID BA=="), Err(DecodeError::InvalidBase64));
        // URL-safe alphabet: Node would accept it, no client sends it.
        assert_eq!(decode_text(b"b-_8="), Err(DecodeError::InvalidBase64));
    }

    #[test]
    fn base64_padding_is_optional() {
        assert_eq!(decode_text(b"bAQIDBA==").unwrap(), binary(&[1, 2, 3, 4]));
        assert_eq!(decode_text(b"bAQIDBA").unwrap(), binary(&[1, 2, 3, 4]));
        assert_eq!(decode_text(b"b+/8=").unwrap(), binary(&[0xfb, 0xff]));
    }

    #[test]
    fn polling_spec_examples() {
        assert_eq!(
            decode_payload(b"4hello\x1e2\x1e4world").unwrap(),
            vec![text("hello"), Packet::Ping(None), text("world")]
        );
        assert_eq!(decode_payload(b"4hello\x1ebAQIDBA==").unwrap(), vec![text("hello"), binary(&[1, 2, 3, 4])]);
        assert_eq!(encode_payload(&[text("hello"), binary(&[1, 2, 3, 4])]), Bytes::from_static(b"4hello\x1ebAQIDBA=="));
        assert_eq!(encode_payload(&[Packet::Noop]), Bytes::from_static(b"6"));
    }

    #[test]
    fn polling_round_trip_every_packet() {
        let packets = client_packets();
        let body = encode_payload(&packets);
        assert_eq!(decode_payload(&body).unwrap(), packets);
        for packet in client_packets() {
            let body = encode_payload(std::slice::from_ref(&packet));
            assert_eq!(decode_payload(&body).unwrap(), vec![packet]);
        }
    }

    #[test]
    fn polling_open_then_message_exact() {
        let body = encode_payload(&[Packet::Open(open_info(vec!["websocket"])), text("0")]);
        let expected = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\
                        \"pingTimeout\":20000,\"maxPayload\":1000000}\x1e40";
        assert_eq!(body, Bytes::from(expected));
    }

    #[test]
    fn polling_mixed_text_binary_and_multibyte_utf8() {
        let packets = vec![
            text("€"),
            binary(&[0xe2, 0x82, 0xac]),
            text("日本語テキスト"),
            binary(&(0..=255).collect::<Vec<u8>>()),
            text("🦀🦀"),
            Packet::Ping(Some(Bytes::from("прóbe"))),
            text("a\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}"),
        ];
        let body = encode_payload(&packets);
        assert!(std::str::from_utf8(&body).is_ok());
        assert_eq!(decode_payload(&body).unwrap(), packets);
        assert_eq!(body.iter().filter(|&&b| b == SEPARATOR).count(), packets.len() - 1);
    }

    #[test]
    fn separator_byte_only_encodes_u001e() {
        // Why splitting raw bytes is safe: no multi-byte UTF-8 sequence contains 0x1e.
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let encoded = c.encode_utf8(&mut buf).as_bytes();
            assert_eq!(encoded.contains(&SEPARATOR), c == '\u{1e}', "{c:?}");
        }
    }

    #[test]
    fn u001e_in_text_splits_the_record() {
        // The protocol limitation engine.io shares: the receiver sees two messages.
        let body = encode_payload(&[text("x\u{1e}4y")]);
        assert_eq!(decode_payload(&body).unwrap(), vec![text("x"), text("y")]);
    }

    #[test]
    fn polling_empty_records_are_errors() {
        assert_eq!(decode_payload(b""), Err(DecodeError::Empty));
        assert_eq!(decode_payload(b"\x1e"), Err(DecodeError::Empty));
        assert_eq!(decode_payload(b"4a\x1e"), Err(DecodeError::Empty));
        assert_eq!(decode_payload(b"\x1e4a"), Err(DecodeError::Empty));
        assert_eq!(decode_payload(b"4a\x1e\x1e4b"), Err(DecodeError::Empty));
    }

    #[test]
    fn polling_record_errors() {
        assert_eq!(decode_payload(b"4a\x1e9"), Err(DecodeError::UnknownType(b'9')));
        assert_eq!(decode_payload(b"4a\x1eb***"), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_payload(b"4a\x1e4\xc3"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_payload(b"4\xc3\x1e4a"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_payload(b"0\x1e4a"), Err(DecodeError::UnexpectedOpen));
    }

    #[test]
    fn payload_decoder_delivers_packets_before_the_error_then_stops() {
        let mut records = PayloadDecoder::new(b"4a\x1e2\x1e9\x1e4never");
        assert_eq!(records.next(), Some(Ok(text("a"))));
        assert_eq!(records.next(), Some(Ok(Packet::Ping(None))));
        assert_eq!(records.next(), Some(Err(DecodeError::UnknownType(b'9'))));
        assert_eq!(records.next(), None);
        assert_eq!(records.next(), None);

        let mut trailing = PayloadDecoder::new(b"4a\x1e");
        assert_eq!(trailing.next(), Some(Ok(text("a"))));
        assert_eq!(trailing.next(), Some(Err(DecodeError::Empty)));
        assert_eq!(trailing.next(), None);

        let mut empty = PayloadDecoder::new(b"");
        assert_eq!(empty.next(), Some(Err(DecodeError::Empty)));
        assert_eq!(empty.next(), None);
    }

    #[test]
    fn encode_payload_of_nothing_is_empty() {
        assert!(encode_payload(&[]).is_empty());
    }

    #[test]
    fn encoders_allocate_exactly() {
        let mut packets = client_packets();
        packets.push(Packet::Open(open_info(vec!["websocket"])));
        for n in 0..10 {
            packets.push(binary(&vec![0xaa; n]));
        }
        for packet in &packets {
            assert_eq!(encode_text(packet).len(), record_len(packet), "{packet:?}");
        }
        let expected: usize = packets.iter().map(record_len).sum::<usize>() + packets.len() - 1;
        assert_eq!(encode_payload(&packets).len(), expected);
    }

    #[test]
    fn random_input_never_panics_and_successes_round_trip() {
        const INTERESTING: &[u8] = b"0123456b4\x1e\x1e=+/AQz-_ \xff\xc3\xa9\xe2\x82\xac\xf0\x9f";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut decoded_ok = 0;
        for _ in 0..100_000 {
            let len = (rng.next() % 24) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r & 3 == 0 {
                        r as u8 >> 3
                    } else {
                        INTERESTING[(r >> 8) as usize % INTERESTING.len()]
                    }
                })
                .collect();
            if let Ok(packet) = decode_text(&input) {
                decoded_ok += 1;
                let reencoded = encode_text(&packet);
                assert_eq!(decode_text(&reencoded), Ok(packet.clone()), "{input:?}");
                // A frame without ignored trailing data re-encodes to itself, up
                // to base64 padding and trailing bits, which decoding forgives.
                let lossy = matches!(
                    packet,
                    Packet::Close | Packet::Upgrade | Packet::Noop | Packet::Message(Payload::Binary(_))
                );
                if !lossy {
                    assert_eq!(reencoded, input, "{input:?}");
                }
            }
            if let Ok(packets) = decode_payload(&input) {
                assert_eq!(decode_payload(&encode_payload(&packets)), Ok(packets));
            }
        }
        // Guard against a generator that never produces valid packets.
        assert!(decoded_ok > 1000, "{decoded_ok}");
    }

    #[test]
    fn open_json_is_exact() {
        assert_eq!(
            open_json(&open_info(vec!["websocket"])),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(
            open_json(&open_info(vec![])),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        let info = OpenInfo {
            sid: "a\"b\\c\n\u{1}\u{1e}é/".into(),
            upgrades: vec!["websocket", "webtransport"],
            ping_interval: 300,
            ping_timeout: 200,
            max_payload: 1e6 as u64,
        };
        assert_eq!(
            open_json(&info),
            r#"{"sid":"a\"b\\c\n\u0001\u001eé/","upgrades":["websocket","webtransport"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
    }

    #[test]
    fn json_escapes_like_json_stringify() {
        let mut out = String::new();
        push_json_string(&mut out, "\u{8}\u{c}\n\r\t\u{0}\u{1f} \u{7f}\u{2028}");
        // DEL and U+2028 pass through raw, as in JSON.stringify.
        assert_eq!(out, "\"\\b\\f\\n\\r\\t\\u0000\\u001f \u{7f}\u{2028}\"");
    }

    #[test]
    fn sid_shape() {
        let sid = generate_sid().unwrap();
        assert_eq!(sid.len(), 20);
        assert!(sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{sid}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&sid).unwrap().len(), SID_BYTES);
    }

    #[test]
    fn sids_are_unique_and_use_the_whole_alphabet() {
        let sids: HashSet<String> = (0..10_000).map(|_| generate_sid().unwrap()).collect();
        assert_eq!(sids.len(), 10_000);
        assert!(sids.iter().all(|sid| sid.len() == 20));
        // 200k random chars miss none of the 64 unless the source is broken.
        let seen: HashSet<u8> = sids.iter().flat_map(|sid| sid.bytes()).collect();
        assert_eq!(seen.len(), 64);
    }

    #[test]
    fn sids_from_many_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..500).map(|_| generate_sid().unwrap()).collect::<Vec<_>>()))
            .collect();
        let all: HashSet<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        assert_eq!(all.len(), 4000);
    }

    #[test]
    fn error_bodies_are_exact() {
        let cases = [
            (HttpErrorCode::TransportUnknown, 400, r#"{"code":0,"message":"Transport unknown"}"#),
            (HttpErrorCode::SessionIdUnknown, 400, r#"{"code":1,"message":"Session ID unknown"}"#),
            (HttpErrorCode::BadHandshakeMethod, 400, r#"{"code":2,"message":"Bad handshake method"}"#),
            (HttpErrorCode::BadRequest, 400, r#"{"code":3,"message":"Bad request"}"#),
            (HttpErrorCode::Forbidden, 403, r#"{"code":4,"message":"Forbidden"}"#),
            (HttpErrorCode::UnsupportedProtocolVersion, 400, r#"{"code":5,"message":"Unsupported protocol version"}"#),
        ];
        for (code, status, body) in cases {
            assert_eq!(error_body(code, None), (status, body.to_string()));
        }
        assert_eq!(
            error_body(HttpErrorCode::Forbidden, Some("no \"guests\"\n")),
            (403, r#"{"code":4,"message":"no \"guests\"\n"}"#.to_string())
        );
    }

    #[test]
    fn query_basic() {
        let q = parse_query("EIO=4&transport=polling&t=NxyZ1a2");
        assert_eq!(
            q,
            Query { eio: Some("4".into()), transport: Some("polling".into()), sid: None, b64: false, jsonp: None }
        );
        assert!(q.is_eio4());
        let q = parse_query("EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC");
        assert_eq!(q.sid.as_deref(), Some("lv_VI97HAXpY6yYWAAAC"));
        assert_eq!(q.transport.as_deref(), Some("websocket"));
        assert_eq!(parse_query(""), Query::default());
        assert!(!parse_query("EIO=3").is_eio4());
        assert!(!parse_query("transport=polling").is_eio4());
    }

    #[test]
    fn query_percent_and_plus_decoding() {
        let q = parse_query("sid=ab%2Bc%2Fd%3D&transport=poll%69ng&EIO=%34");
        assert_eq!(q.sid.as_deref(), Some("ab+c/d="));
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert!(q.is_eio4());
        assert_eq!(parse_query("sid=a+b").sid.as_deref(), Some("a b"));
        assert_eq!(parse_query("sid=%e2%82%AC").sid.as_deref(), Some("€"));
        // Malformed escapes stay literal; bad UTF-8 becomes U+FFFD.
        assert_eq!(parse_query("sid=%zz%4").sid.as_deref(), Some("%zz%4"));
        assert_eq!(parse_query("sid=%").sid.as_deref(), Some("%"));
        assert_eq!(parse_query("sid=100%25").sid.as_deref(), Some("100%"));
        assert_eq!(parse_query("sid=%ff").sid.as_deref(), Some("\u{fffd}"));
        assert_eq!(parse_query("sid=%C3%28").sid.as_deref(), Some("\u{fffd}("));
        // Names are decoded too, and are case-sensitive.
        assert!(parse_query("%45IO=4").is_eio4());
        assert!(!parse_query("eio=4").is_eio4());
        // `=` inside a value belongs to the value.
        assert_eq!(parse_query("sid=a=b").sid.as_deref(), Some("a=b"));
    }

    #[test]
    fn query_repeated_keys_last_wins() {
        let q = parse_query("transport=websocket&EIO=3&transport=polling&EIO=4&sid=a&sid=b");
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert!(q.is_eio4());
        assert_eq!(q.sid.as_deref(), Some("b"));
        assert_eq!(parse_query("sid=a&sid=").sid, None);
    }

    #[test]
    fn query_flags() {
        assert!(parse_query("b64=1").b64);
        assert!(parse_query("b64=0").b64);
        assert!(parse_query("b64=false").b64);
        assert!(!parse_query("b64=").b64);
        assert!(!parse_query("b64").b64);
        assert!(!parse_query("EIO=4").b64);
        assert_eq!(parse_query("j=0").jsonp.as_deref(), Some("0"));
        assert_eq!(parse_query("j").jsonp.as_deref(), Some(""));
        assert_eq!(parse_query("j=").jsonp.as_deref(), Some(""));
        assert_eq!(parse_query("EIO=4").jsonp, None);
        assert_eq!(parse_query("sid=").sid, None);
        assert_eq!(parse_query("sid").sid, None);
    }

    #[test]
    fn query_odd_separators() {
        let q = parse_query("&&EIO=4&&transport=polling&");
        assert!(q.is_eio4());
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(parse_query("EIO=4#sid=x").sid, None);
        assert_eq!(parse_query("sid=x#frag").sid.as_deref(), Some("x"));
        // `;` is not a separator for URLSearchParams.
        assert_eq!(parse_query("sid=a;EIO=4").sid.as_deref(), Some("a;EIO=4"));
    }
}
