//! Socket.IO v5 packet codec: the text of one Engine.IO message in, a borrowed
//! header plus the raw JSON payload text out; and the reverse for sending.
//!
//! Wire form (`docs/socket.io-protocol/v5-current.md`, socketio/socket.io):
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`.
//!
//! Why no JSON DOM here: JavaScript parses every payload once anyway
//! (`JSON.parse` to build the handler's arguments), so building a
//! `serde_json::Value` too would allocate every node twice. This module only
//! needs the payload's *shape* (object? array? first element a string or a
//! number? reserved name? placeholder objects?), which a single-pass,
//! non-recursive validating scanner (json_shape.rs) answers without allocating for nesting up
//! to 64 levels. serde_json (even with `IgnoredAny`) would not give us
//! `JSON.parse`'s exact view of the few keys we care about (escaped keys such
//! as `"\u005fplaceholder"`, duplicate keys where the last one wins), and the
//! main crate does not depend on it. The scanner accepts exactly RFC 8259
//! JSON, which is what `JSON.parse` accepts, so JS never sees a payload that
//! this module let through as valid but `JSON.parse` then rejects.
//!
//! Every [`ParseError`] means the same thing to the peer: Socket.IO closes the
//! connection with the reason `"parse error"` ([`ParseError::reason`]).
//!
//! Deliberate differences from socket.io-parser 4.2.6
//! (`packages/socket.io-parser/lib/index.ts`, `Decoder.decodeString`), all of
//! them inputs that no Socket.IO client produces, rejected here because the
//! reference only accepts them through `Number()` coercion quirks:
//! - the type must be an ASCII digit 0-6 (the reference reads `""` and `" "`
//!   as `Number("") === 0`, i.e. CONNECT);
//! - the attachment count must be ASCII digits (the reference also takes
//!   `"5-"` as 0, `" 1"`, `"0x1"`, `"1e0"`);
//! - the ack id must be ASCII digits and at most [`Limits::max_ack_id`] (the
//!   reference's scan swallows JSON whitespace, so `2 ["a"]` is an EVENT with
//!   id 0, and `Number()` rounds ids past 2^53);
//! - hence the payload must not start with whitespace (trailing whitespace is
//!   fine, as with `JSON.parse`);
//! - EVENT, ACK and their binary forms must carry a payload: the spec says
//!   "The payload is mandatory", while the reference only validates a payload
//!   that is present (`if (str.charAt(++i))`), so it hands `2` to the server
//!   as an event without a name;
//! - binary placeholders are checked when the text arrives, strictly (see
//!   `json_shape::validate_placeholders`); the reference checks them after the buffers
//!   arrive and accepts fractional `num`s and unused attachments.

use std::fmt;

use super::json_shape::{self, json_str_eq, scan_string, skip_ws, ShapeError};
use crate::json::push_json_string;

/// Socket.IO packet types, sent as one ASCII digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl PacketType {
    /// The type for a wire digit `b'0'..=b'6'`.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The wire digit.
    pub fn as_byte(self) -> u8 {
        b'0' + self as u8
    }

    /// BINARY_EVENT and BINARY_ACK carry `<attachments>-` and are followed by
    /// that many binary messages.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::Event => "EVENT",
            Self::Ack => "ACK",
            Self::ConnectError => "CONNECT_ERROR",
            Self::BinaryEvent => "BINARY_EVENT",
            Self::BinaryAck => "BINARY_ACK",
        })
    }
}

/// A decoded packet header plus the raw JSON payload text, all borrowed from
/// the input so decoding copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: PacketType,
    /// `"/"` when the packet names no namespace. Starts with `/`, holds no `,`.
    pub nsp: &'a str,
    pub id: Option<u64>,
    /// Binary attachments that follow; 0 unless `kind.is_binary()`.
    pub attachments: u32,
    /// The JSON payload exactly as received (trailing whitespace included), or
    /// `""` when there is none. Already validated: `JSON.parse` accepts it.
    pub data: &'a str,
}

/// Why a packet was refused. Every variant ends the connection with the
/// Socket.IO disconnect reason `"parse error"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type")]
    UnknownType,
    #[error("illegal attachments")]
    IllegalAttachments,
    #[error("too many attachments (at most {max})")]
    TooManyAttachments { max: u32 },
    #[error("ack id larger than {max}")]
    AckIdTooLarge { max: u64 },
    #[error("invalid JSON at byte {offset} of the payload")]
    InvalidJson { offset: usize },
    #[error("{kind} packet without payload")]
    MissingPayload { kind: PacketType },
    #[error("invalid {kind} payload: {reason}")]
    InvalidPayload { kind: PacketType, reason: &'static str },
    #[error("reserved event name {0:?}")]
    ReservedEventName(&'static str),
    #[error("illegal attachment placeholder: {0}")]
    InvalidPlaceholder(&'static str),
    #[error("placeholder num {num} out of range for {attachments} attachments")]
    PlaceholderOutOfRange { num: u64, attachments: u32 },
    #[error("attachment {0} referenced twice")]
    DuplicatePlaceholder(u32),
    #[error("attachment {0} never referenced")]
    UnreferencedAttachment(u32),
}

/// The scanner's findings, as the packet errors they are.
impl From<ShapeError> for ParseError {
    fn from(e: ShapeError) -> ParseError {
        match e {
            ShapeError::InvalidJson { offset } => ParseError::InvalidJson { offset },
            ShapeError::InvalidPlaceholder(why) => ParseError::InvalidPlaceholder(why),
            ShapeError::PlaceholderOutOfRange { num, attachments } => {
                ParseError::PlaceholderOutOfRange { num, attachments }
            }
            ShapeError::DuplicatePlaceholder(num) => ParseError::DuplicatePlaceholder(num),
            ShapeError::UnreferencedAttachment(num) => ParseError::UnreferencedAttachment(num),
        }
    }
}

/// Decoder limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Binary attachments one packet may announce. Default 10, as
    /// socket.io-parser 4.2.6's `maxAttachments`: without a cap one header
    /// makes the server buffer any number of binary messages (CVE-2026-33151).
    pub max_attachments: u32,
    /// Largest ack id accepted. Default `2^53 - 1` (`Number.MAX_SAFE_INTEGER`):
    /// the id reaches JavaScript as a Number, and a larger one would come back
    /// in the ACK rounded to a different id.
    pub max_ack_id: u64,
}

impl Limits {
    pub const DEFAULT: Limits = Limits { max_attachments: 10, max_ack_id: (1 << 53) - 1 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Event names a peer may not use: they have a meaning to the server
/// (`RESERVED_EVENTS` in packages/socket.io-parser/lib/index.ts). `"error"` is
/// deliberately not here; the server layer must tolerate it (CVE-2024-38355).
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// Decodes one Socket.IO packet from the text of an Engine.IO message.
///
/// Runs in time linear in `text`; nothing is copied. For binary packets the
/// placeholders are validated too (see `json_shape::validate_placeholders`), so a
/// returned packet needs no further checks before its attachments are read.
pub fn decode<'a>(text: &'a str, limits: &Limits) -> Result<Packet<'a>, ParseError> {
    let b = text.as_bytes();
    let &first = b.first().ok_or(ParseError::Empty)?;
    let kind = PacketType::from_byte(first).ok_or(ParseError::UnknownType)?;
    let mut i = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        // `<digits>-` right after the type (index.ts: "Illegal attachments" / "too many attachments").
        let start = i;
        let mut n: u64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            // Saturating: a count this large only needs to compare above the cap.
            n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
            i += 1;
        }
        // socket.io-parser 4.2.7 (the one socket.io 4.8 ships) refuses a count below 1.
        if i == start || b.get(i) != Some(&b'-') || n == 0 {
            return Err(ParseError::IllegalAttachments);
        }
        if n > u64::from(limits.max_attachments) {
            return Err(ParseError::TooManyAttachments { max: limits.max_attachments });
        }
        attachments = n as u32;
        i += 1;
    }

    // A namespace starts with '/' and runs to the first ',' or, without one, to the end (index.ts decodeString).
    let mut nsp = "/";
    if b.get(i) == Some(&b'/') {
        match text[i..].find(',') {
            Some(comma) => {
                nsp = &text[i..i + comma];
                i += comma + 1;
            }
            None => {
                nsp = &text[i..];
                i = b.len();
            }
        }
    }

    // Any packet type may carry an ack id: a digit run right after the namespace (index.ts decodeString).
    let mut id = None;
    if b.get(i).is_some_and(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            // Checked per digit, so a megabyte of digits fails at the first one too many.
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .filter(|&n| n <= limits.max_ack_id)
                .ok_or(ParseError::AckIdTooLarge { max: limits.max_ack_id })?;
            i += 1;
        }
        id = Some(n);
    }

    let data = &text[i..];
    check_payload(kind, data, attachments)?;
    Ok(Packet { kind, nsp, id, attachments, data })
}

/// The payload rules of `Decoder.isPayloadValid` (packages/socket.io-parser/lib/index.ts),
/// plus the spec's "payload is mandatory" for EVENT and ACK.
fn check_payload(kind: PacketType, data: &str, attachments: u32) -> Result<(), ParseError> {
    let invalid = |reason| ParseError::InvalidPayload { kind, reason };
    let Some(&first) = data.as_bytes().first() else {
        return match kind {
            PacketType::Connect | PacketType::Disconnect | PacketType::ConnectError => Ok(()),
            _ => Err(ParseError::MissingPayload { kind }),
        };
    };
    // Shape first: it is one byte, and refusing early spares a scan of a large bad payload.
    match kind {
        PacketType::Connect if first != b'{' => return Err(invalid("must be an object")),
        PacketType::Disconnect => return Err(invalid("DISCONNECT carries no payload")),
        PacketType::ConnectError if first != b'{' && first != b'"' => {
            return Err(invalid("must be a string or an object"));
        }
        PacketType::Event | PacketType::BinaryEvent | PacketType::Ack | PacketType::BinaryAck if first != b'[' => {
            return Err(invalid("must be an array"));
        }
        _ => {}
    }
    if kind.is_binary() {
        json_shape::validate_placeholders(data, attachments)?;
    } else {
        json_shape::check(data)?;
    }
    if matches!(kind, PacketType::Event | PacketType::BinaryEvent) {
        check_event_name(kind, data)?;
    }
    Ok(())
}

/// The first element of a (validated) EVENT array must be a number or a
/// string that is not reserved (CVE-2023-32695: anything else reached the
/// server's `emit` as the event name and threw).
fn check_event_name(kind: PacketType, data: &str) -> Result<(), ParseError> {
    let b = data.as_bytes();
    let i = skip_ws(b, 1);
    match b.get(i) {
        Some(b'"') => {
            // The payload is valid JSON, so the string is well formed and closed.
            let end = scan_string(b, i)?;
            let raw = &data[i + 1..end - 1];
            let reserved = if raw.as_bytes().contains(&b'\\') {
                RESERVED_EVENTS.iter().find(|name| json_str_eq(raw, name))
            } else {
                RESERVED_EVENTS.iter().find(|&&name| name == raw)
            };
            match reserved {
                Some(name) => Err(ParseError::ReservedEventName(name)),
                None => Ok(()),
            }
        }
        Some(b'-' | b'0'..=b'9') => Ok(()),
        Some(b']') => Err(ParseError::InvalidPayload { kind, reason: "empty array" }),
        _ => Err(ParseError::InvalidPayload { kind, reason: "event name must be a string or a number" }),
    }
}

/// Encodes a packet for sending: `encode(Event, "/admin", Some(12), 0, "[\"ev\"]")`
/// is `2/admin,12["ev"]`.
///
/// `data` is JSON text (from `JSON.stringify`) or `""`. `attachments` is
/// written only for binary types. The namespace is omitted when it is `"/"` or
/// empty; it must not contain `,` (socket.io-parser's encoder throws
/// "invalid namespace: must not contain a comma"; the caller names it).
pub fn encode(kind: PacketType, nsp: &str, id: Option<u64>, attachments: u32, data: &str) -> String {
    // type + "NN-" + nsp + ',' + 20-digit id + data
    let mut out = String::with_capacity(1 + 11 + nsp.len() + 1 + 20 + data.len());
    encode_into(&mut out, kind, nsp, id, attachments, data);
    out
}

/// [`encode`], appending to `out` so a sender can reuse one buffer.
pub fn encode_into(out: &mut String, kind: PacketType, nsp: &str, id: Option<u64>, attachments: u32, data: &str) {
    out.push(char::from(kind.as_byte()));
    if kind.is_binary() {
        push_u64(out, u64::from(attachments));
        out.push('-');
    }
    if !nsp.is_empty() && nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        push_u64(out, id);
    }
    out.push_str(data);
}

/// The data of an EVENT or BINARY_EVENT packet this server encoded (what
/// [`encode`] wrote after the header): the event array's JSON text. None
/// for other types or a header that does not end in `[`.
pub fn event_data(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let kind = PacketType::from_byte(*b.first()?)?;
    if !matches!(kind, PacketType::Event | PacketType::BinaryEvent) {
        return None;
    }
    let mut i = 1;
    if kind.is_binary() {
        i += text[i..].find('-')? + 1;
    }
    if b.get(i) == Some(&b'/') {
        i += text[i..].find(',')? + 1;
    }
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (b.get(i) == Some(&b'[')).then(|| &text[i..])
}

/// The CONNECT reply payload, `{"sid":"<sid>"}`, with `"pid"` (connection
/// state recovery's private session id) when given.
pub fn connect_payload(sid: &str, pid: Option<&str>) -> String {
    let mut out = String::with_capacity(sid.len() + pid.map_or(0, |p| p.len() + 9) + 10);
    out.push_str("{\"sid\":");
    push_json_string(&mut out, sid);
    if let Some(pid) = pid {
        out.push_str(",\"pid\":");
        push_json_string(&mut out, pid);
    }
    out.push('}');
    out
}

/// A CONNECT_ERROR payload, `{"message":"<message>"}` or with `,"data":<data>`
/// when middleware attached data (`data` is JSON text).
pub fn connect_error_payload(message: &str, data: Option<&str>) -> String {
    let mut out = String::with_capacity(message.len() + data.map_or(0, str::len) + 22);
    out.push_str("{\"message\":");
    push_json_string(&mut out, message);
    if let Some(data) = data {
        out.push_str(",\"data\":");
        out.push_str(data);
    }
    out.push('}');
    out
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::PacketType::*;
    use super::*;
    use crate::socketio::json_shape::string_run_end;

    fn dec(text: &str) -> Result<Packet<'_>, ParseError> {
        decode(text, &Limits::default())
    }

    fn ok(text: &str) -> Packet<'_> {
        dec(text).unwrap_or_else(|e| panic!("{text:?} should decode: {e}"))
    }

    fn pkt<'a>(kind: PacketType, nsp: &'a str, id: Option<u64>, attachments: u32, data: &'a str) -> Packet<'a> {
        Packet { kind, nsp, id, attachments, data }
    }

    fn invalid_payload(text: &str) {
        match dec(text) {
            Err(ParseError::InvalidPayload { .. } | ParseError::InvalidJson { .. }) => {}
            other => panic!("{text:?}: expected an invalid payload, got {other:?}"),
        }
    }

    const PH0: &str = r#"{"_placeholder":true,"num":0}"#;
    const PH1: &str = r#"{"_placeholder":true,"num":1}"#;

    // ---- encode / decode round trips -------------------------------------------------

    #[test]
    fn packet_type_digits_round_trip() {
        for b in b'0'..=b'6' {
            let kind = PacketType::from_byte(b).unwrap();
            assert_eq!(kind.as_byte(), b);
            assert_eq!(kind.is_binary(), b == b'5' || b == b'6');
        }
        for b in [b'7', b'9', b'a', b' ', b'-', 0, 255] {
            assert_eq!(PacketType::from_byte(b), None);
        }
        assert_eq!(ConnectError.to_string(), "CONNECT_ERROR");
    }

    #[test]
    fn encodes_the_spec_examples() {
        assert_eq!(encode(Connect, "/", None, 0, ""), "0");
        assert_eq!(
            encode(Connect, "/admin", None, 0, r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#
        );
        assert_eq!(encode(Disconnect, "/admin", None, 0, ""), "1/admin,");
        assert_eq!(encode(Event, "/", Some(1), 0, r#"["ev",1]"#), r#"21["ev",1]"#);
        assert_eq!(encode(Event, "/", None, 0, r#"["ev",1]"#), r#"2["ev",1]"#);
        assert_eq!(encode(Ack, "/admin", Some(12), 0, "[]"), "3/admin,12[]");
        assert_eq!(
            encode(ConnectError, "/", None, 0, r#"{"message":"Not authorized"}"#),
            r#"4{"message":"Not authorized"}"#
        );
        let data = format!(r#"["ev",{PH0}]"#);
        assert_eq!(encode(BinaryEvent, "/", None, 1, &data), format!("51-{data}"));
        let data = format!(r#"["baz",{PH0},{PH1}]"#);
        assert_eq!(encode(BinaryEvent, "/admin", None, 2, &data), format!("52-/admin,{data}"));
        assert_eq!(encode(BinaryAck, "/", Some(789), 1, &format!("[{PH0}]")), format!("61-789[{PH0}]"));
        // attachments are written only for binary types; "" namespace means "/"
        assert_eq!(encode(Event, "", None, 3, r#"["a"]"#), r#"2["a"]"#);
        assert_eq!(encode(Ack, "/", Some(u64::MAX), 0, "[]"), "318446744073709551615[]");
    }

    #[test]
    fn event_data_is_what_follows_the_header() {
        assert_eq!(event_data(r#"2["a",1]"#), Some(r#"["a",1]"#));
        assert_eq!(event_data(r#"2/chat,12["a"]"#), Some(r#"["a"]"#));
        assert_eq!(
            event_data(r#"51-/x,["a",{"_placeholder":true,"num":0}]"#),
            Some(r#"["a",{"_placeholder":true,"num":0}]"#)
        );
        assert_eq!(event_data(r#"3/chat,1["a"]"#), None);
        assert_eq!(event_data("2/chat"), None);
        assert_eq!(event_data(""), None);
    }

    #[test]
    fn encode_into_appends() {
        let mut buf = String::from("4");
        encode_into(&mut buf, Event, "/chat", Some(0), 0, r#"["m"]"#);
        assert_eq!(buf, r#"42/chat,0["m"]"#);
    }

    #[test]
    fn every_type_round_trips_with_and_without_namespace_and_id() {
        let payloads: [(PacketType, &[&str]); 7] = [
            (Connect, &["", r#"{"token":"x"}"#, "{}"]),
            (Disconnect, &[""]),
            (Event, &[r#"["ev"]"#, r#"["ev",1,"2",{"3":[true]}]"#, "[42]"]),
            (Ack, &["[]", r#"[1,"2",{"3":[false]}]"#]),
            (ConnectError, &["", r#"{"message":"Not authorized","data":{"a":1}}"#, r#""plain""#]),
            (BinaryEvent, &[r#"["ev",{"_placeholder":true,"num":0}]"#]),
            (BinaryAck, &[r#"[{"_placeholder":true,"num":0}]"#]),
        ];
        let mut checked = 0;
        for (kind, datas) in payloads {
            let attachments = u32::from(kind.is_binary());
            for nsp in ["/", "/admin", "/a/b c/é", "/with-dash_and.dot"] {
                for id in [None, Some(0), Some(7), Some(456), Some(Limits::DEFAULT.max_ack_id)] {
                    for &data in datas {
                        let text = encode(kind, nsp, id, attachments, data);
                        assert_eq!(dec(&text), Ok(pkt(kind, nsp, id, attachments, data)), "{text}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 14 * 4 * 5);
    }

    // ---- header: namespace, ack id, attachments ----------------------------------------

    #[test]
    fn namespace_without_comma_runs_to_the_end() {
        assert_eq!(ok("0/random"), pkt(Connect, "/random", None, 0, ""));
        assert_eq!(ok("1/custom"), pkt(Disconnect, "/custom", None, 0, ""));
        // so digits and JSON after it belong to the namespace, as in the reference
        assert_eq!(ok("0/admin12{}"), pkt(Connect, "/admin12{}", None, 0, ""));
        assert_eq!(dec(r#"2/admin["ev"]"#), Err(ParseError::MissingPayload { kind: Event }));
    }

    #[test]
    fn namespace_forms() {
        assert_eq!(ok("0/admin,"), pkt(Connect, "/admin", None, 0, ""));
        assert_eq!(ok("0/,"), pkt(Connect, "/", None, 0, ""));
        assert_eq!(ok(r#"0/admin,{"token":"123"}"#).data, r#"{"token":"123"}"#);
        assert_eq!(ok(r#"2/admin,["bar"]"#), pkt(Event, "/admin", None, 0, r#"["bar"]"#));
        assert_eq!(ok(r#"2/admin,13["foo"]"#), pkt(Event, "/admin", Some(13), 0, r#"["foo"]"#));
        assert_eq!(ok(r#"3/admin,13["bar"]"#), pkt(Ack, "/admin", Some(13), 0, r#"["bar"]"#));
        // the first comma ends the namespace; later ones are payload
        assert_eq!(ok(r#"2/a,["b,c"]"#), pkt(Event, "/a", None, 0, r#"["b,c"]"#));
        // a namespace must start with '/': otherwise the text is payload, and not JSON
        assert_eq!(dec(r#"2admin,["a"]"#), Err(ParseError::InvalidPayload { kind: Event, reason: "must be an array" }));
        assert!(matches!(dec(r#"0admin,{}"#), Err(ParseError::InvalidPayload { .. })));
    }

    #[test]
    fn ack_ids() {
        assert_eq!(ok(r#"2456["m"]"#).id, Some(456));
        assert_eq!(ok(r#"20["m"]"#).id, Some(0));
        // leading zeros: Number("012") === 12 in the reference
        assert_eq!(ok(r#"2012["m"]"#).id, Some(12));
        assert_eq!(ok(r#"52-789["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#).id, Some(789));
        // any type may carry one
        assert_eq!(ok("012"), pkt(Connect, "/", Some(12), 0, ""));
        assert_eq!(ok(r#"0/x,5{"a":1}"#), pkt(Connect, "/x", Some(5), 0, r#"{"a":1}"#));
        assert_eq!(ok("112"), pkt(Disconnect, "/", Some(12), 0, ""));
        // an id followed by nothing: fine where a payload is optional, not for EVENT / ACK
        assert_eq!(dec("212"), Err(ParseError::MissingPayload { kind: Event }));
        assert_eq!(dec("3/admin,12"), Err(ParseError::MissingPayload { kind: Ack }));
        // conformance suite: "42abc[...]" (invalid ack id) closes the connection
        assert!(dec(r#"2abc["message-with-ack",1,"2",{"3":[false]}]"#).is_err());
    }

    #[test]
    fn ack_id_default_limit_is_the_js_safe_integer() {
        assert_eq!(ok(r#"29007199254740991["a"]"#).id, Some(9_007_199_254_740_991));
        let max = Limits::DEFAULT.max_ack_id;
        assert_eq!(dec(r#"29007199254740992["a"]"#), Err(ParseError::AckIdTooLarge { max }));
    }

    #[test]
    fn ack_ids_near_u64_max() {
        let wide = Limits { max_ack_id: u64::MAX, ..Limits::DEFAULT };
        assert_eq!(decode(r#"318446744073709551615["a"]"#, &wide).unwrap().id, Some(u64::MAX));
        assert_eq!(decode(r#"318446744073709551614[]"#, &wide).unwrap().id, Some(u64::MAX - 1));
        let overflow = Err(ParseError::AckIdTooLarge { max: u64::MAX });
        assert_eq!(decode(r#"318446744073709551616[]"#, &wide), overflow);
        assert_eq!(decode(r#"3184467440737095516150[]"#, &wide), overflow);
        assert_eq!(decode(r#"399999999999999999999999999999[]"#, &wide), overflow);
        let tight = Limits { max_ack_id: 100, ..Limits::DEFAULT };
        assert_eq!(decode("3100[]", &tight).unwrap().id, Some(100));
        assert_eq!(decode("3101[]", &tight), Err(ParseError::AckIdTooLarge { max: 100 }));
    }

    #[test]
    fn attachment_counts() {
        // socket.io-parser test/parser.js: "Illegal attachments"
        for text in ["5", "51", "5a-", "51.23-", "6", "6-1", "5 1-[]", "50x1-[]"] {
            assert_eq!(dec(text), Err(ParseError::IllegalAttachments), "{text:?}");
        }
        // the reference reads an empty count as Number("") === 0; no encoder writes it
        assert_eq!(dec(r#"5-["a"]"#), Err(ParseError::IllegalAttachments));
        // zero attachments: accepted by socket.io-parser 4.2.6, refused by 4.2.7 (socket.io 4.8.x)
        assert_eq!(dec(r#"50-["a"]"#), Err(ParseError::IllegalAttachments));
        assert_eq!(dec(r#"600-[]"#), Err(ParseError::IllegalAttachments));
        assert_eq!(ok(r#"501-["a",{"_placeholder":true,"num":0}]"#).attachments, 1);
        // counts belong to binary types only: for EVENT "1" is the ack id and "-" starts the payload
        assert!(matches!(dec(r#"21-["a"]"#), Err(ParseError::InvalidPayload { .. })));
        assert_eq!(
            ok(r#"61-/nsp,3[{"_placeholder":true,"num":0}]"#),
            pkt(BinaryAck, "/nsp", Some(3), 1, &format!("[{PH0}]"))
        );
    }

    #[test]
    fn attachment_count_over_the_limit() {
        let data: String = (0..10).map(|n| format!(r#",{{"_placeholder":true,"num":{n}}}"#)).collect();
        assert_eq!(ok(&format!(r#"510-["a"{data}]"#)).attachments, 10);
        let data11 = format!(r#"{data},{{"_placeholder":true,"num":10}}"#);
        assert_eq!(dec(&format!(r#"511-["a"{data11}]"#)), Err(ParseError::TooManyAttachments { max: 10 }));
        let small = Limits { max_attachments: 2, ..Limits::DEFAULT };
        let text = format!(r#"53-["hello",{PH0},{PH1},{{"_placeholder":true,"num":2}}]"#);
        assert_eq!(decode(&text, &small), Err(ParseError::TooManyAttachments { max: 2 }));
        let none = Limits { max_attachments: 0, ..Limits::DEFAULT };
        assert_eq!(decode(r#"51-["a"]"#, &none), Err(ParseError::TooManyAttachments { max: 0 }));
        assert_eq!(decode(r#"50-["a"]"#, &none), Err(ParseError::IllegalAttachments));
    }

    #[test]
    fn unknown_or_empty_type() {
        assert_eq!(dec(""), Err(ParseError::Empty));
        for text in ["7", "9", "999", "abc", " ", " 2[\"a\"]", "-1", "\u{0}", "é"] {
            assert_eq!(dec(text), Err(ParseError::UnknownType), "{text:?}");
        }
    }

    // ---- payload rules (Decoder.isPayloadValid) -----------------------------------------

    #[test]
    fn connect_payload_absent_or_object() {
        assert_eq!(ok("0"), pkt(Connect, "/", None, 0, ""));
        assert_eq!(ok(r#"0{"token":"123"}"#).data, r#"{"token":"123"}"#);
        assert_eq!(ok(r#"0{"a":{"b":[1,2,{"c":null}]}}"#).kind, Connect);
        invalid_payload("0[]");
        invalid_payload(r#"0/admin,"invalid""#);
        invalid_payload("0null");
        invalid_payload("0/a,true");
        invalid_payload("0{");
        invalid_payload(r#"0{"a":1}}"#);
    }

    #[test]
    fn disconnect_takes_no_payload() {
        assert_eq!(ok("1"), pkt(Disconnect, "/", None, 0, ""));
        assert_eq!(ok("1/admin,"), pkt(Disconnect, "/admin", None, 0, ""));
        for text in ["1/admin,{}", "1{}", "1[]", r#"1"x""#, "1/a,null"] {
            assert_eq!(
                dec(text),
                Err(ParseError::InvalidPayload { kind: Disconnect, reason: "DISCONNECT carries no payload" }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn event_payload_must_be_a_non_empty_array() {
        assert_eq!(dec("2"), Err(ParseError::MissingPayload { kind: Event }));
        assert_eq!(dec("2/admin,"), Err(ParseError::MissingPayload { kind: Event }));
        assert_eq!(dec("5"), Err(ParseError::IllegalAttachments));
        assert_eq!(dec("51-"), Err(ParseError::MissingPayload { kind: BinaryEvent }));
        assert_eq!(dec("2[]"), Err(ParseError::InvalidPayload { kind: Event, reason: "empty array" }));
        assert_eq!(dec("2[ \n]"), Err(ParseError::InvalidPayload { kind: Event, reason: "empty array" }));
        assert!(dec("51-[]").is_err());
        // conformance suite: 42{} closes the connection
        for text in ["2{}", "2/admin,{}", r#"2"ev""#, r#"2/admin,"invalid"#, "2null", "2true", "2-1", "21.5"] {
            invalid_payload(text);
        }
        // a truncated array
        invalid_payload(r#"2["some","data""#);
    }

    #[test]
    fn event_name_must_be_a_string_or_number() {
        assert_eq!(ok(r#"2["message",1,"2",{"3":[true]}]"#).data, r#"["message",1,"2",{"3":[true]}]"#);
        for text in ["2[1]", "2[0,\"x\"]", "2[-1.5e3]", "2[1E+400]", "2[ 7 ]", r#"2[""]"#] {
            ok(text);
        }
        for text in
            [r#"2[true,"foo"]"#, r#"2[null,"bar"]"#, r#"2[{"toString":"foo"}]"#, "2[[]]", "2[[\"ev\"]]", "2[false]"]
        {
            assert_eq!(
                dec(text),
                Err(ParseError::InvalidPayload { kind: Event, reason: "event name must be a string or a number" }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_reserved_event_name_is_refused() {
        for name in RESERVED_EVENTS {
            let expected = Err(ParseError::ReservedEventName(name));
            assert_eq!(dec(&format!(r#"2["{name}"]"#)), expected);
            assert_eq!(dec(&format!(r#"2/admin,12["{name}","123"]"#)), expected);
            assert_eq!(dec(&format!(r#"2[ "{name}" ]"#)), expected);
            let binary = format!(r#"51-["{name}",{PH0}]"#);
            assert_eq!(dec(&binary), expected);
        }
        // near misses are ordinary names
        for name in ["Connect", "connect ", "connects", "disconnect_", "newlistener", "connect\\u0000"] {
            ok(&format!(r#"2["{name}"]"#));
        }
        // only the first element is the name
        ok(r#"2["ev","connect","disconnect"]"#);
        // ACKs carry no name
        ok(r#"3["connect"]"#);
    }

    #[test]
    fn escaped_reserved_names_are_refused() {
        // JSON.parse turns these into the reserved names, so must we.
        let cases = [
            (r#"2["\u0063onnect"]"#, "connect"),
            (r#"2["dis\u0063onnect"]"#, "disconnect"),
            (r#"2["\u0064\u0069\u0073\u0063\u006F\u006E\u006E\u0065\u0063\u0074ing"]"#, "disconnecting"),
            (r#"2["new\u004cistener"]"#, "newListener"),
            (r#"2["connect\u005ferror"]"#, "connect_error"),
        ];
        for (text, name) in cases {
            assert_eq!(dec(text), Err(ParseError::ReservedEventName(name)), "{text}");
        }
        ok(r#"2["\u0063onnect\n"]"#);
        ok(r#"2["\ud800connect"]"#);
        ok(r#"2["\/connect"]"#);
    }

    #[test]
    fn ack_payload_must_be_an_array() {
        assert_eq!(ok("3[]"), pkt(Ack, "/", None, 0, "[]"));
        assert_eq!(ok("312[]"), pkt(Ack, "/", Some(12), 0, "[]"));
        assert_eq!(ok(r#"3/admin,12[null,true,{"x":[]}]"#).id, Some(12));
        assert_eq!(dec("3"), Err(ParseError::MissingPayload { kind: Ack }));
        assert_eq!(dec("61-"), Err(ParseError::MissingPayload { kind: BinaryAck }));
        assert_eq!(ok(&format!("61-[{PH0}]")), pkt(BinaryAck, "/", None, 1, &format!("[{PH0}]")));
        for text in ["3{}", r#"3"x""#, "3null", "31.5", "61-{}"] {
            invalid_payload(text);
        }
    }

    #[test]
    fn connect_error_payload_is_a_string_or_object() {
        assert_eq!(ok(r#"4{"message":"Not authorized"}"#).kind, ConnectError);
        assert_eq!(ok(r#"4/random,{"message":"Invalid namespace"}"#).nsp, "/random");
        assert_eq!(ok(r#"4"Not authorized""#).data, r#""Not authorized""#);
        assert_eq!(ok("4"), pkt(ConnectError, "/", None, 0, ""));
        // a client may send type 4: the codec decodes it; the server closes the connection
        // (packages/socket.io/lib/client.ts ondecoded: "invalid state")
        assert_eq!(ok(r#"4{"message":"x"}"#).kind, ConnectError);
        for text in ["4[]", "4null", "4true", "4abc", r#"442["some","data""#] {
            invalid_payload(text);
        }
    }

    #[test]
    fn whitespace_rules() {
        // JSON.parse allows whitespace inside and after the value
        assert_eq!(ok("2[ \"a\" , 1 ]\n").data, "[ \"a\" , 1 ]\n");
        ok("0{ \"a\" : [ 1 , 2 ] }\t\r\n ");
        // before the payload the reference would read it as part of an ack id; refused here
        for text in ["2 [\"a\"]", "2\n[\"a\"]", "21 [\"a\"]", "2/a, [\"a\"]", "0 {}", "1 ", "0/a,\t"] {
            assert!(dec(text).is_err(), "{text:?}");
        }
        // whitespace that JSON does not know
        assert!(dec("2[\"a\"]\u{a0}").is_err());
        assert!(dec("2[\u{a0}\"a\"]").is_err());
        assert!(dec("2[\"a\"]\u{b}").is_err());
    }

    // ---- the JSON scanner -------------------------------------------------------------

    #[test]
    fn scanner_is_not_fooled_by_brackets_quotes_and_escapes_in_strings() {
        let tricky = [
            r#"2["a]b","c"]"#,
            r#"2["]","[","}","{",",",":"]"#,
            r#"2["say \"hi\"]",{"k\"]":"v]\\"}]"#,
            r#"2["ends with backslash\\",{"\\":"\\\\"}]"#,
            r#"2["\u00e9\ud83d\ude00\u2028","日本語 😀","\b\f\n\r\t\/"]"#,
            r#"2["x",{"_placeholder":true,"num":"splice"}]"#,
            r#"2["{\"_placeholder\":true,\"num\":0}"]"#,
            r#"2["a",[[[[[["]"]]]]]],{"a":{"b":{"c":"}"}}}]"#,
        ];
        for text in tricky {
            assert_eq!(ok(text).data, &text[1..], "{text}");
        }
        // an escaped quote must not end the string: then the array is unterminated
        assert!(dec(r#"2["a\"]"#).is_err());
        assert!(dec(r#"2["a\\"]"#).is_ok());
        assert!(dec(r#"2["a\\\"]"#).is_err());
    }

    #[test]
    fn scanner_rejects_what_json_parse_rejects() {
        let bad = [
            r#"2["a",]"#,
            r#"2["a",,1]"#,
            r#"2[,"a"]"#,
            r#"2["a" 1]"#,
            r#"2["a"]]"#,
            r#"2["a"][1]"#,
            r#"2["a"}"#,
            r#"2["a",{]"#,
            r#"2["a",{"k"}]"#,
            r#"2["a",{"k":}]"#,
            r#"2["a",{"k":1,}]"#,
            r#"2["a",{k:1}]"#,
            r#"2["a",{"k" 1}]"#,
            r#"2["a",{1:1}]"#,
            r#"2['a']"#,
            r#"2["a",01]"#,
            r#"2["a",-]"#,
            r#"2["a",1.]"#,
            r#"2["a",.5]"#,
            r#"2["a",1e]"#,
            r#"2["a",1e+]"#,
            r#"2["a",+1]"#,
            r#"2["a",NaN]"#,
            r#"2["a",Infinity]"#,
            r#"2["a",tru]"#,
            r#"2["a",nul]"#,
            r#"2["a",True]"#,
            r#"2["a",undefined]"#,
            r#"2["a\x"]"#,
            r#"2["a\u12"]"#,
            r#"2["a\u12G4"]"#,
            r#"2["a\"#,
            "2[\"a\nb\"]",
            "2[\"a\u{1}b\"]",
            "2[\"a\tb\"]",
            r#"2["a",/*c*/1]"#,
            r#"2["a"#,
            "2[",
            "2[[",
        ];
        for text in bad {
            assert!(matches!(dec(text), Err(ParseError::InvalidJson { .. })), "{text:?} -> {:?}", dec(text));
        }
        let good = [r#"2["a",-0,0.5e-7,1E3,-12.25e+2,true,false,null,{},[],{"":""}]"#, "2[\"\u{7f}\u{80}\"]"];
        for text in good {
            ok(text);
        }
    }

    #[test]
    fn string_run_end_matches_the_byte_by_byte_definition() {
        let naive = |b: &[u8], i: usize| {
            b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map_or(b.len(), |p| i + p)
        };
        // Bytes on either side of each boundary, plus high bytes whose borrows could mislead SWAR.
        const BYTES: [u8; 16] =
            [0, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff, b'a'];
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        for _ in 0..100_000 {
            let len = rng.below(40);
            let mut b: Vec<u8> = (0..len).map(|_| b'x').collect();
            for _ in 0..rng.below(4) {
                if len > 0 {
                    let at = rng.below(len);
                    b[at] = BYTES[rng.below(BYTES.len())];
                }
            }
            let start = rng.below(len + 1);
            assert_eq!(string_run_end(&b, start), naive(&b, start), "{b:?} from {start}");
        }
    }

    #[test]
    fn invalid_json_reports_the_offset() {
        assert_eq!(dec(r#"2["a",]"#), Err(ParseError::InvalidJson { offset: 5 }));
        assert_eq!(dec(r#"2/x,3["a" "#), Err(ParseError::InvalidJson { offset: 5 }));
    }

    #[test]
    fn deep_nesting_neither_recurses_nor_overflows() {
        for depth in [63, 64, 65, 200_000] {
            let text = format!(r#"2["a",{}1{}]"#, "[".repeat(depth), "]".repeat(depth));
            ok(&text);
            let objects = format!(r#"2["a",{}1{}]"#, r#"{"k":"#.repeat(depth), "}".repeat(depth));
            ok(&objects);
            // mismatched close at the deepest level
            let wrong = format!(r#"2["a",{}1}}{}]"#, "[".repeat(depth), "]".repeat(depth - 1));
            assert!(dec(&wrong).is_err(), "{depth}");
            let unclosed = format!(r#"2["a",{}1{}]"#, "[".repeat(depth), "]".repeat(depth - 1));
            assert!(dec(&unclosed).is_err(), "{depth}");
        }
        // arrays and objects alternating past the inline word keep their kinds straight
        let text = format!(r#"2["a",{}1{}]"#, r#"[{"k":"#.repeat(100), "}]".repeat(100));
        ok(&text);
        let swapped = format!(r#"2["a",{}1{}]"#, r#"[{"k":"#.repeat(100), "]}".repeat(100));
        assert!(dec(&swapped).is_err());
    }

    // ---- binary placeholders ------------------------------------------------------------

    fn ph(data: &str, attachments: u32) -> Result<(), ParseError> {
        Ok(json_shape::validate_placeholders(data, attachments)?)
    }

    #[test]
    fn placeholders_valid_forms() {
        assert_eq!(ph(&format!(r#"["ev",{PH0}]"#), 1), Ok(()));
        assert_eq!(ph(&format!(r#"["ev",{PH1},{PH0}]"#), 2), Ok(()));
        assert_eq!(ph(r#"["ev",{"num":0,"_placeholder":true}]"#, 1), Ok(()));
        assert_eq!(ph(r#"["ev", { "_placeholder" : true , "num" : 0 } ]"#, 1), Ok(()));
        assert_eq!(ph(&format!(r#"["ev",{{"a":[1,{{"b":{PH0}}}],"c":{PH1}}}]"#), 2), Ok(()));
        assert_eq!(ph(r#"["ev"]"#, 0), Ok(()));
        // _placeholder not true: an ordinary object, not a reference
        assert_eq!(ph(r#"["ev",{"_placeholder":false,"num":"x","y":1}]"#, 0), Ok(()));
        assert_eq!(ph(r#"["ev",{"_placeholder":"true","num":0}]"#, 0), Ok(()));
        assert_eq!(ph(r#"["ev",{"_placeholder":[true],"num":0}]"#, 0), Ok(()));
        assert_eq!(ph(r#"["ev",{"_placeholder":1,"num":0}]"#, 0), Ok(()));
        // a placeholder written inside a string is only text
        assert_eq!(ph(r#"["{\"_placeholder\":true,\"num\":\"splice\"}"]"#, 0), Ok(()));
        // ten attachments
        let data: String = (0..10).rev().map(|n| format!(r#",{{"_placeholder":true,"num":{n}}}"#)).collect();
        assert_eq!(ph(&format!(r#"["a"{data}]"#), 10), Ok(()));
    }

    #[test]
    fn placeholder_num_must_be_a_plain_integer() {
        for num in
            [r#""splice""#, r#""0""#, "-1", "0.5", "0.0", "1e0", "-0", "null", "true", "[0]", "{}", r#"{"num":0}"#]
        {
            let data = format!(r#"["ev",{{"_placeholder":true,"num":{num}}}]"#);
            assert_eq!(
                ph(&data, 2),
                Err(ParseError::InvalidPlaceholder("num must be a non-negative integer")),
                "{data}"
            );
        }
    }

    #[test]
    fn placeholder_num_out_of_range() {
        assert_eq!(
            ph(&format!(r#"["ev",{PH1}]"#), 1),
            Err(ParseError::PlaceholderOutOfRange { num: 1, attachments: 1 })
        );
        assert_eq!(
            ph(&format!(r#"["ev",{PH0}]"#), 0),
            Err(ParseError::PlaceholderOutOfRange { num: 0, attachments: 0 })
        );
        let huge = r#"["ev",{"_placeholder":true,"num":99999999999999999999999999}]"#;
        assert_eq!(ph(huge, 3), Err(ParseError::PlaceholderOutOfRange { num: u64::MAX, attachments: 3 }));
    }

    #[test]
    fn placeholder_shape_is_strict() {
        let missing = r#"["ev",{"_placeholder":true}]"#;
        assert_eq!(ph(missing, 1), Err(ParseError::InvalidPlaceholder("needs exactly one num")));
        let twice = r#"["ev",{"_placeholder":true,"num":0,"num":"splice"}]"#;
        assert_eq!(ph(twice, 1), Err(ParseError::InvalidPlaceholder("needs exactly one num")));
        let extra = r#"["ev",{"_placeholder":true,"num":0,"toJSON":1}]"#;
        assert_eq!(ph(extra, 1), Err(ParseError::InvalidPlaceholder("keys other than _placeholder and num")));
        let nested = format!(r#"["ev",{{"_placeholder":true,"num":0,"x":{PH1}}}]"#);
        assert_eq!(ph(&nested, 2), Err(ParseError::InvalidPlaceholder("keys other than _placeholder and num")));
        // JSON.parse keeps the last duplicate; we refuse to guess
        let dup = r#"["ev",{"_placeholder":false,"_placeholder":true,"num":0}]"#;
        assert_eq!(ph(dup, 1), Err(ParseError::InvalidPlaceholder("duplicate _placeholder key")));
        let dup = r#"["ev",{"_placeholder":true,"_placeholder":false}]"#;
        assert_eq!(ph(dup, 0), Err(ParseError::InvalidPlaceholder("duplicate _placeholder key")));
    }

    #[test]
    fn escaped_placeholder_keys_are_seen_as_json_parse_sees_them() {
        let data = r#"["ev",{"\u005fplaceholder":true,"num":"splice"}]"#;
        assert_eq!(ph(data, 1), Err(ParseError::InvalidPlaceholder("num must be a non-negative integer")));
        let data = r#"["ev",{"_placeholder":true,"n\u0075m":5}]"#;
        assert_eq!(ph(data, 1), Err(ParseError::PlaceholderOutOfRange { num: 5, attachments: 1 }));
        let data = r#"["ev",{"_placeholder":true,"num":0,"\u006eum":0}]"#;
        assert_eq!(ph(data, 1), Err(ParseError::InvalidPlaceholder("needs exactly one num")));
        let data = r#"["ev",{"_pl\u0061ceholder":true,"\u006e\u0075\u006d":0}]"#;
        assert_eq!(ph(data, 1), Ok(()));
    }

    #[test]
    fn every_attachment_is_referenced_exactly_once() {
        assert_eq!(ph(&format!(r#"["ev",{PH0},{PH0}]"#), 2), Err(ParseError::DuplicatePlaceholder(0)));
        assert_eq!(ph(&format!(r#"["ev",{PH0},{PH0}]"#), 1), Err(ParseError::DuplicatePlaceholder(0)));
        assert_eq!(ph(&format!(r#"["ev",{PH0}]"#), 2), Err(ParseError::UnreferencedAttachment(1)));
        assert_eq!(ph(&format!(r#"["ev",{PH1}]"#), 2), Err(ParseError::UnreferencedAttachment(0)));
        assert_eq!(ph(r#"["hello"]"#, 1), Err(ParseError::UnreferencedAttachment(0)));
        // decode applies the same rules to binary packets
        assert_eq!(dec(r#"51-["hello"]"#), Err(ParseError::UnreferencedAttachment(0)));
        assert_eq!(dec(&format!(r#"62-[{PH0},{PH0}]"#)), Err(ParseError::DuplicatePlaceholder(0)));
    }

    #[test]
    fn placeholders_in_plain_events_are_just_objects() {
        // no attachments follow an EVENT, and JS splices only for binary packets
        ok(r#"2["ev",{"_placeholder":true,"num":"splice"}]"#);
        ok(&format!(r#"3[{PH1},{PH1}]"#));
    }

    #[test]
    fn placeholders_need_valid_json() {
        assert!(matches!(ph(r#"["ev",{"_placeholder":true,"num":0]"#, 1), Err(ParseError::InvalidJson { .. })));
        assert!(matches!(ph("", 0), Err(ParseError::InvalidJson { .. })));
    }

    // ---- the advisories -----------------------------------------------------------------

    /// CVE-2020-36049: socket.io-parser built strings character by character, so a
    /// giant packet cost quadratic time and memory. Here everything is borrowed and
    /// every header field is read in one pass.
    #[test]
    fn cve_2020_36049_giant_packets_are_linear_and_borrowed() {
        const BIG: usize = 8 << 20;
        let nsp_only = format!("0/{}", "n".repeat(BIG));
        let p = ok(&nsp_only);
        assert_eq!(p.nsp.len(), BIG + 1);
        assert!(std::ptr::eq(p.nsp.as_ptr(), nsp_only[1..].as_ptr()));

        let big_string = format!(r#"2/chat,1["ev","{}"]"#, "x\\\"]".repeat(BIG / 4));
        let p = ok(&big_string);
        assert!(std::ptr::eq(p.data.as_ptr(), big_string[8..].as_ptr()));

        let big_array = format!(r#"2["ev"{}]"#, ",[1,{\"a\":\"]\"}]".repeat(BIG / 16));
        assert_eq!(ok(&big_array).data.len(), big_array.len() - 1);

        let digits = "9".repeat(BIG);
        assert_eq!(
            dec(&format!("2{digits}[\"a\"]")),
            Err(ParseError::AckIdTooLarge { max: Limits::DEFAULT.max_ack_id })
        );
        assert_eq!(dec(&format!("5{digits}-[]")), Err(ParseError::TooManyAttachments { max: 10 }));
        assert_eq!(dec(&format!("5{digits}")), Err(ParseError::IllegalAttachments));
        assert!(dec(&format!("2[\"a\",{digits}")).is_err());
    }

    /// CVE-2022-2421: `num` was trusted, so `"splice"` or an out-of-range index
    /// put a function or `undefined` into the handler's arguments.
    #[test]
    fn cve_2022_2421_placeholder_num_injection() {
        let splice = r#"51-["hello",{"_placeholder":true,"num":"splice"}]"#;
        assert_eq!(dec(splice), Err(ParseError::InvalidPlaceholder("num must be a non-negative integer")));
        let out_of_range = r#"51-["hello",{"_placeholder":true,"num":1}]"#;
        assert_eq!(dec(out_of_range), Err(ParseError::PlaceholderOutOfRange { num: 1, attachments: 1 }));
        for num in [r#""toString""#, r#""__proto__""#, r#""length""#, "-1", "0.5", "1e400"] {
            let text = format!(r#"61-[{{"_placeholder":true,"num":{num}}}]"#);
            assert!(dec(&text).is_err(), "{text}");
        }
        let escaped = r#"51-["hello",{"\u005fplaceholder":true,"num":"splice"}]"#;
        assert!(dec(escaped).is_err());
        let shadowed = r#"51-["hello",{"_placeholder":true,"num":0,"num":"splice"}]"#;
        assert!(dec(shadowed).is_err());
    }

    /// CVE-2023-32695: a non-string event name (or a reserved one) reached the
    /// server's `emit` and threw.
    #[test]
    fn cve_2023_32695_event_names() {
        for text in [r#"2[{"toString":"foo"}]"#, r#"2[null,"bar"]"#, r#"2[true,"foo"]"#, r#"2[["x"]]"#, "2[]"] {
            assert!(matches!(dec(text), Err(ParseError::InvalidPayload { kind: Event, .. })), "{text}");
        }
        assert_eq!(dec(r#"2["disconnect","123"]"#), Err(ParseError::ReservedEventName("disconnect")));
        assert_eq!(dec(r#"2["newListener"]"#), Err(ParseError::ReservedEventName("newListener")));
        assert_eq!(
            dec(r#"51-[{"_placeholder":true,"num":0}]"#),
            Err(ParseError::InvalidPayload { kind: BinaryEvent, reason: "event name must be a string or a number" })
        );
    }

    /// CVE-2024-38355: a client emitting "error" crashed a server without an error
    /// listener. The parser accepts the name (it is not reserved); the codec must
    /// pass it through unchanged and the server layer must give every socket a
    /// no-op "error" listener (packages/socket.io/lib/socket.ts constructor).
    #[test]
    fn cve_2024_38355_error_event_is_decoded_not_refused() {
        assert_eq!(ok(r#"2["error","boom"]"#), pkt(Event, "/", None, 0, r#"["error","boom"]"#));
        assert_eq!(ok(r#"2/admin,7["error"]"#).id, Some(7));
        assert!(!RESERVED_EVENTS.contains(&"error"));
    }

    /// CVE-2026-33151: the attachment count was unbounded, so one header made the
    /// server buffer any number of binary messages.
    #[test]
    fn cve_2026_33151_attachment_count_capped() {
        assert_eq!(Limits::default().max_attachments, 10);
        assert_eq!(dec("511-[]"), Err(ParseError::TooManyAttachments { max: 10 }));
        assert_eq!(dec("6100000-[]"), Err(ParseError::TooManyAttachments { max: 10 }));
        assert_eq!(dec("54294967296-[]"), Err(ParseError::TooManyAttachments { max: 10 }));
        assert_eq!(dec("518446744073709551616000-[]"), Err(ParseError::TooManyAttachments { max: 10 }));
        // the cap is checked before the payload is scanned
        assert_eq!(dec("511-not json at all"), Err(ParseError::TooManyAttachments { max: 10 }));
    }

    // ---- robustness ---------------------------------------------------------------------

    /// A fixed-seed xorshift64*, so failures reproduce without an extra crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Whatever decodes must satisfy the invariants and survive a re-encode.
    fn check_invariants(text: &str) {
        let limits = Limits::default();
        let Ok(p) = decode(text, &limits) else { return };
        assert!(p.nsp.starts_with('/') && !p.nsp.contains(','), "{text:?}");
        assert!(text.ends_with(p.data), "{text:?}");
        assert!(p.id.is_none_or(|id| id <= limits.max_ack_id));
        if p.kind.is_binary() {
            assert!(p.attachments <= limits.max_attachments);
            assert_eq!(json_shape::validate_placeholders(p.data, p.attachments), Ok(()), "{text:?}");
        } else {
            assert_eq!(p.attachments, 0);
        }
        let again = encode(p.kind, p.nsp, p.id, p.attachments, p.data);
        assert_eq!(decode(&again, &limits), Ok(p), "{text:?} -> {again:?}");
    }

    #[test]
    fn truncated_packets_never_panic() {
        let valid = [
            r#"0/admin,{"token":"a\"b\u00e9"}"#,
            r#"2/chat,123["ev",{"k":[1,-2.5e3,true,null,"]"]}]"#,
            r#"52-/bin,9["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            r#"61-4[{"_placeholder":true,"num":0}]"#,
            r#"4/x,{"message":"Invalid namespace","data":"😀"}"#,
            r#"3/admin,12[]"#,
        ];
        for text in valid {
            ok(text);
            for (end, _) in text.char_indices() {
                let prefix = &text[..end];
                let _ = dec(prefix);
                check_invariants(prefix);
                let suffix = &text[end..];
                let _ = dec(suffix);
                check_invariants(suffix);
            }
        }
    }

    #[test]
    fn random_strings_never_panic() {
        // Characters that matter to the grammar, weighted towards structure.
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "9",
            "-",
            "/",
            ",",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "\\",
            ":",
            "u",
            "a",
            "e",
            ".",
            "+",
            "t",
            "true",
            "null",
            " ",
            "\n",
            "\t",
            "é",
            "😀",
            "\u{0}",
            "\u{1f}",
            "_placeholder",
            "num",
            "\"_placeholder\":true",
            "\"num\":",
            "\\u005f",
            "connect",
            "\"",
            "[\"",
            "\",",
            "ev",
            "1-",
            "5",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut decoded = 0;
        for _ in 0..200_000 {
            let len = rng.below(24);
            // Half start with a packet type so the header and payload paths get exercised too.
            let mut text = if rng.below(2) == 0 { rng.below(7).to_string() } else { String::new() };
            for _ in 0..len {
                text.push_str(ALPHABET[rng.below(ALPHABET.len())]);
            }
            decoded += usize::from(dec(&text).is_ok());
            check_invariants(&text);
            let _ = json_shape::validate_placeholders(&text, rng.below(4) as u32);
        }
        // the generator must reach the accepting paths too, or it tests little
        assert!(decoded > 1_000, "only {decoded} random packets decoded");
    }

    #[test]
    fn mutated_valid_packets_never_panic() {
        let seeds = [
            r#"2["ev",1,"2",{"3":[true]}]"#,
            r#"52-/admin,7["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            r#"0/admin,{"token":"123"}"#,
            r#"3/x,99[{"a":"\"]\\"},-0.5e+2]"#,
        ];
        let inserts = ["\"", "\\", "[", "]", "{", "}", ",", ":", "0", "9", "-", "/", " ", "é", "\u{1}", "u"];
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let mut decoded = 0;
        for _ in 0..50_000 {
            let mut text = seeds[rng.below(seeds.len())].to_string();
            for _ in 0..1 + rng.below(3) {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
                let at = boundaries[rng.below(boundaries.len())];
                match rng.below(3) {
                    0 => text.insert_str(at, inserts[rng.below(inserts.len())]),
                    1 if at < text.len() => {
                        let c = text[at..].chars().next().map_or(0, char::len_utf8);
                        text.replace_range(at..at + c, "");
                    }
                    _ => text.truncate(at),
                }
            }
            decoded += usize::from(dec(&text).is_ok());
            check_invariants(&text);
        }
        assert!(decoded > 1_000, "only {decoded} mutants decoded");
    }

    // ---- CONNECT replies and socket ids ---------------------------------------------------

    #[test]
    fn connect_reply_payloads() {
        assert_eq!(connect_payload("wZX3oN0bSVIhsaknAAAI", None), r#"{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);
        assert_eq!(connect_payload("a", Some("b\"c")), r#"{"sid":"a","pid":"b\"c"}"#);
        let reply = encode(Connect, "/admin", None, 0, &connect_payload("abc", None));
        assert_eq!(reply, r#"0/admin,{"sid":"abc"}"#);
        assert_eq!(ok(&reply).data, r#"{"sid":"abc"}"#);
        assert_eq!(connect_error_payload("Not authorized", None), r#"{"message":"Not authorized"}"#);
        let with_data = connect_error_payload("say \"no\"\\\n\u{1}", Some(r#"{"code":4}"#));
        assert_eq!(with_data, r#"{"message":"say \"no\"\\\n\u0001","data":{"code":4}}"#);
        assert_eq!(ok(&encode(ConnectError, "/", None, 0, &with_data)).data, with_data);
        assert_eq!(connect_payload("\u{8}\u{c}\t\r", None), r#"{"sid":"\b\f\t\r"}"#);
    }

    #[test]
    fn every_error_is_a_parse_error_disconnect() {
        let errors = [
            dec("").unwrap_err(),
            dec("9").unwrap_err(),
            dec("5x").unwrap_err(),
            dec("2[").unwrap_err(),
            dec(r#"2["connect"]"#).unwrap_err(),
            dec(r#"51-["a"]"#).unwrap_err(),
        ];
        for e in errors {
            assert!(!e.to_string().is_empty());
        }
    }
}
