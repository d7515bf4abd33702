//! The messages `@socket.io/redis-adapter` 8.x (classic) and
//! `@socket.io/redis-emitter` 5.x exchange, read and written as they do
//! (notepack.io MessagePack or JSON), with one boundary to the rest of
//! ferrosocket: event arguments travel as JSON text whose binaries are
//! socket.io-parser placeholders (`{"_placeholder":true,"num":k}`) plus
//! their attachments, the form the Socket.IO codec and JS already use.
//! Pure: no I/O, reached by unit tests and the fuzz target.

use bytes::Bytes;
use serde_json::{Map, Number, Value as Json};
use thiserror::Error;

use super::msgpack::{self, timestamp_ms, Value};

/// socket.io-parser's EVENT; BINARY_EVENT (5) is read as the same.
const EVENT: i64 = 2;
const BINARY_EVENT: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum WireError {
    #[error("MessagePack: {0}")]
    MsgPack(#[from] msgpack::DecodeError),
    #[error("JSON: {0}")]
    Json(String),
    #[error("not a broadcast message: {0}")]
    Shape(&'static str),
    #[error("placeholder {0} names no attachment")]
    Placeholder(u64),
}

/// The flags a broadcast carries between nodes (socket.io's
/// `BroadcastFlags`; `local` never leaves its node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub volatile: bool,
    pub compress: Option<bool>,
}

/// A broadcast between nodes: `[uid, packet, { rooms, except, flags }]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Broadcast {
    pub uid: String,
    /// "/" when the sender left it out (the emitter may).
    pub nsp: String,
    /// The event array as JSON text, binaries as placeholders.
    pub data: String,
    pub attachments: Vec<Bytes>,
    pub rooms: Vec<String>,
    pub except: Vec<String>,
    pub flags: Flags,
}

/// `[uid, { type: 2, data, nsp }, { rooms, except, flags }]` as the classic
/// adapter publishes it. `data` is the event array's JSON text with
/// placeholders for `attachments`.
pub(crate) fn encode_broadcast(b: &Broadcast) -> Result<Vec<u8>, WireError> {
    let data = json_to_value(&b.data, &b.attachments)?;
    let packet = Value::Map(vec![
        (Value::str("type"), Value::Int(EVENT)),
        (Value::str("data"), data),
        (Value::str("nsp"), Value::str(&b.nsp)),
    ]);
    let mut out = Vec::with_capacity(b.data.len() + 64);
    msgpack::encode(&Value::Array(vec![Value::str(&b.uid), packet, options(b)]), &mut out);
    Ok(out)
}

/// `{ rooms, except, flags }`.
fn options(b: &Broadcast) -> Value {
    let mut flags = Vec::new();
    if b.flags.volatile {
        flags.push((Value::str("volatile"), Value::Bool(true)));
    }
    if let Some(c) = b.flags.compress {
        flags.push((Value::str("compress"), Value::Bool(c)));
    }
    Value::Map(vec![
        (Value::str("rooms"), strings(&b.rooms)),
        (Value::str("except"), strings(&b.except)),
        (Value::str("flags"), Value::Map(flags)),
    ])
}

/// The channel a broadcast goes to: `{key}#{nsp}#`, or with its room
/// appended when it targets exactly one (`{key}#{nsp}#{room}#`).
pub(crate) fn broadcast_channel(key: &str, nsp: &str, rooms: &[String]) -> String {
    match rooms {
        [room] => format!("{key}#{nsp}#{room}#"),
        _ => format!("{key}#{nsp}#"),
    }
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::str(s)).collect())
}

/// Reads a broadcast message from any node or emitter.
pub(crate) fn decode_broadcast(msg: &[u8]) -> Result<Broadcast, WireError> {
    let Value::Array(mut parts) = msgpack::decode(msg)? else { return Err(WireError::Shape("not an array")) };
    if parts.len() < 3 {
        return Err(WireError::Shape("fewer than three parts"));
    }
    let opts = parts.swap_remove(2);
    let packet = parts.swap_remove(1);
    let uid = match &parts[0] {
        Value::Str(s) => s.clone(),
        _ => return Err(WireError::Shape("uid is not a string")),
    };
    broadcast_of(uid, &packet, Some(&opts))
}

/// A broadcast from its packet (`{ type, data, nsp }`) and options
/// (`{ rooms, except, flags }`), as both protocols carry them.
fn broadcast_of(uid: String, packet: &Value, opts: Option<&Value>) -> Result<Broadcast, WireError> {
    if !matches!(packet.get("type").and_then(Value::as_i64), Some(EVENT | BINARY_EVENT)) {
        return Err(WireError::Shape("packet is not an event"));
    }
    let nsp = match packet.get("nsp") {
        None | Some(Value::Nil) => "/".to_string(),
        Some(Value::Str(s)) => s.clone(),
        Some(_) => return Err(WireError::Shape("nsp is not a string")),
    };
    let Some(data @ Value::Array(_)) = packet.get("data") else { return Err(WireError::Shape("data is not an array")) };
    let mut attachments = Vec::new();
    let data = value_to_json(data, &mut attachments);
    let rooms = rooms_of(opts.and_then(|o| o.get("rooms")));
    let except = rooms_of(opts.and_then(|o| o.get("except")));
    let flags = match opts.and_then(|o| o.get("flags")) {
        Some(f) => Flags {
            volatile: matches!(f.get("volatile"), Some(Value::Bool(true))),
            compress: match f.get("compress") {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            },
        },
        None => Flags::default(),
    };
    Ok(Broadcast { uid, nsp, data, attachments, rooms, except, flags })
}

/// socket.io-adapter's `ClusterAdapter` BROADCAST message type, the one
/// the sharded adapter's router delivers without JS.
const CLUSTER_BROADCAST: i64 = 3;

/// What arrives on a sharded adapter's channel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClusterMessage {
    /// A broadcast without acks: delivered in Rust.
    Broadcast(Broadcast),
    /// Anything else (requests, responses, broadcasts with acks), for JS:
    /// the sender's uid, the message as JSON text with placeholders.
    Other { uid: String, json: String, attachments: Vec<Bytes> },
}

/// Reads a `ClusterAdapter` message, `{ uid, nsp, type, data }`: JSON, or
/// MessagePack when it holds binaries (told apart by the first byte, `{`,
/// as the sharded adapter does).
pub(crate) fn decode_cluster(msg: &[u8]) -> Result<ClusterMessage, WireError> {
    let v = if msg.first() == Some(&b'{') {
        let text = std::str::from_utf8(msg).map_err(|e| WireError::Json(e.to_string()))?;
        from_json(&parse_json(text)?, None, 0)?
    } else {
        msgpack::decode(msg)?
    };
    let Some(Value::Str(uid)) = v.get("uid") else { return Err(WireError::Shape("uid is not a string")) };
    let uid = uid.clone();
    let data = v.get("data");
    // notepack writes `undefined` as fixext 1 of type 0.
    let no_ack = matches!(data.and_then(|d| d.get("requestId")), None | Some(Value::Nil | Value::Ext(0, _)));
    if v.get("type").and_then(Value::as_i64) == Some(CLUSTER_BROADCAST) && no_ack {
        let packet = data.and_then(|d| d.get("packet")).ok_or(WireError::Shape("no packet"))?;
        let mut b = broadcast_of(uid, packet, data.and_then(|d| d.get("opts")))?;
        if let Some(Value::Str(nsp)) = v.get("nsp") {
            b.nsp.clone_from(nsp);
        }
        return Ok(ClusterMessage::Broadcast(b));
    }
    let mut attachments = Vec::new();
    let json = value_to_json(&v, &mut attachments);
    Ok(ClusterMessage::Other { uid, json, attachments })
}

/// `{ type: 3, data: { packet: { type: 2, data, nsp }, opts }, uid, nsp }`
/// as a `ClusterAdapter` publishes a broadcast: JSON, or MessagePack when
/// it holds binaries.
pub(crate) fn encode_cluster_broadcast(b: &Broadcast) -> Result<Vec<u8>, WireError> {
    let packet = Value::Map(vec![
        (Value::str("type"), Value::Int(EVENT)),
        (Value::str("data"), json_to_value(&b.data, &b.attachments)?),
        (Value::str("nsp"), Value::str(&b.nsp)),
    ]);
    let v = Value::Map(vec![
        (Value::str("type"), Value::Int(CLUSTER_BROADCAST)),
        (Value::str("data"), Value::Map(vec![(Value::str("packet"), packet), (Value::str("opts"), options(b))])),
        (Value::str("uid"), Value::str(&b.uid)),
        (Value::str("nsp"), Value::str(&b.nsp)),
    ]);
    if b.attachments.is_empty() {
        return Ok(value_to_json(&v, &mut Vec::new()).into_bytes());
    }
    let mut out = Vec::with_capacity(b.data.len() + 128);
    msgpack::encode(&v, &mut out);
    Ok(out)
}

/// Room names as socket.io holds them: strings, and numbers (rooms may be
/// numbers in JS) in their JS spelling.
fn rooms_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|r| match r {
                Value::Str(s) => Some(s.clone()),
                Value::Int(i) => Some(i.to_string()),
                Value::UInt(u) => Some(u.to_string()),
                Value::F64(f) => Some(js_number(*f)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A JSON message from a node (requests and responses start with `{`), or a
/// MessagePack one, as JSON text with placeholders for its binaries: what
/// JS reads.
pub(crate) fn message_to_json(msg: &[u8]) -> Result<(String, Vec<Bytes>), WireError> {
    if msg.first() == Some(&b'{') {
        let text = std::str::from_utf8(msg).map_err(|e| WireError::Json(e.to_string()))?;
        parse_json(text)?;
        return Ok((text.to_string(), Vec::new()));
    }
    let v = msgpack::decode(msg)?;
    let mut attachments = Vec::new();
    Ok((value_to_json(&v, &mut attachments), attachments))
}

/// JSON text (placeholders for `attachments`) as MessagePack: what a node
/// publishes when a message holds binaries (broadcast acks).
pub(crate) fn json_to_message(text: &str, attachments: &[Bytes]) -> Result<Vec<u8>, WireError> {
    let v = json_to_value(text, attachments)?;
    let mut out = Vec::new();
    msgpack::encode(&v, &mut out);
    Ok(out)
}

fn json_to_value(text: &str, attachments: &[Bytes]) -> Result<Value, WireError> {
    from_json(&parse_json(text)?, Some(attachments), 0)
}

/// JSON text as JS writes it, read: `JSON.stringify` escapes a lone
/// surrogate (half an emoji cut off) as `\udXXX`, which serde_json refuses;
/// it becomes U+FFFD, as JS's own UTF-8 encoding of such a string does.
fn parse_json(text: &str) -> Result<Json, WireError> {
    serde_json::from_str(&well_formed(text)).map_err(|e| WireError::Json(e.to_string()))
}

/// `text` with every lone-surrogate escape (`\uD800`-`\uDFFF` not in a
/// high-low pair) replaced by `\ufffd`. Backslashes occur only inside JSON
/// strings, so scanning escapes is enough.
fn well_formed(text: &str) -> std::borrow::Cow<'_, str> {
    fn unit(b: &[u8], at: usize) -> Option<u16> {
        if b.get(at) != Some(&b'\\') || b.get(at + 1) != Some(&b'u') {
            return None;
        }
        std::str::from_utf8(b.get(at + 2..at + 6)?).ok().and_then(|h| u16::from_str_radix(h, 16).ok())
    }
    let b = text.as_bytes();
    if !text.contains("\\u") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match unit(b, i) {
            Some(hi @ 0xD800..=0xDBFF) if matches!(unit(b, i + 6), Some(0xDC00..=0xDFFF)) => {
                let _ = hi;
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.push_str(&text[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            Some(_) => i += 6,
            // Any other escape: two characters.
            None => i += 2,
        }
    }
    if copied == 0 {
        return text.into();
    }
    out.push_str(&text[copied..]);
    out.into()
}

/// `attachments`: what placeholders stand for; None reads them as the
/// plain objects they are in a message that came as JSON.
fn from_json(j: &Json, attachments: Option<&[Bytes]>, depth: usize) -> Result<Value, WireError> {
    if depth > msgpack::MAX_DEPTH {
        return Err(WireError::Json("nested too deep".into()));
    }
    Ok(match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number(n),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => {
            Value::Array(items.iter().map(|i| from_json(i, attachments, depth + 1)).collect::<Result<_, _>>()?)
        }
        Json::Object(m) => {
            if let (Some(attachments), Some(num)) = (attachments, placeholder(m)) {
                let a = attachments.get(num as usize).ok_or(WireError::Placeholder(num))?;
                return Ok(Value::Bin(a.to_vec()));
            }
            Value::Map(
                m.iter()
                    .map(|(k, v)| Ok((Value::Str(k.clone()), from_json(v, attachments, depth + 1)?)))
                    .collect::<Result<_, WireError>>()?,
            )
        }
    })
}

/// As notepack writes a JS number: an integer when it is one.
fn number(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        return Value::Int(i);
    }
    if let Some(u) = n.as_u64() {
        return Value::UInt(u);
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        Value::Int(f as i64)
    } else {
        Value::F64(f)
    }
}

fn placeholder(m: &Map<String, Json>) -> Option<u64> {
    if m.len() == 2 && m.get("_placeholder") == Some(&Json::Bool(true)) {
        m.get("num").and_then(Json::as_u64)
    } else {
        None
    }
}

/// As `JSON.stringify` writes what notepack decoded (binaries replaced by
/// placeholders, appended to `attachments`; a Date as its ISO string; NaN
/// and infinities as null).
fn value_to_json(v: &Value, attachments: &mut Vec<Bytes>) -> String {
    let mut out = String::new();
    write_json(v, attachments, &mut out);
    out
}

fn write_json(v: &Value, attachments: &mut Vec<Bytes>, out: &mut String) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::UInt(u) => out.push_str(&u.to_string()),
        Value::F64(f) if f.is_finite() => out.push_str(&js_number(*f)),
        Value::F64(_) => out.push_str("null"),
        Value::Str(s) => crate::json::push_json_string(out, s),
        Value::Bin(b) => {
            out.push_str(&format!("{{\"_placeholder\":true,\"num\":{}}}", attachments.len()));
            attachments.push(Bytes::copy_from_slice(b));
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, attachments, out);
            }
            out.push(']');
        }
        Value::Map(members) => {
            out.push('{');
            for (i, (k, val)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::json::push_json_string(out, &key_text(k));
                out.push(':');
                write_json(val, attachments, out);
            }
            out.push('}');
        }
        Value::Ext(t, data) => match timestamp_ms(*t, data) {
            Some(ms) => crate::json::push_json_string(out, &iso_date(ms)),
            None => out.push_str("null"),
        },
    }
}

/// A map key as a JS object key: what notepack's decoder gets when JS turns
/// the decoded key into a property name (`String(key)`). Never the key's
/// JSON: escaping nested keys level by level grows exponentially (a fuzzed
/// message of 40 nested map keys asked for 2 GiB).
fn key_text(k: &Value) -> String {
    match k {
        Value::Str(s) => s.clone(),
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::F64(f) if f.is_nan() => "NaN".into(),
        Value::F64(f) if f.is_infinite() => (if *f > 0.0 { "Infinity" } else { "-Infinity" }).into(),
        Value::F64(f) => js_number(*f),
        // Array.prototype.toString: the items' strings joined by commas,
        // null and undefined as empty strings.
        Value::Array(items) => items
            .iter()
            .map(|v| if matches!(v, Value::Nil) { String::new() } else { key_text(v) })
            .collect::<Vec<_>>()
            .join(","),
        Value::Bin(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Map(_) => "[object Object]".into(),
        // JS would write Date.prototype.toString(), which depends on the
        // server's time zone; the ISO form is what is stable (a Date as a
        // map key is beyond what socket.io's own messages carry).
        Value::Ext(t, data) => timestamp_ms(*t, data).map_or_else(|| "[object Object]".into(), iso_date),
    }
}

/// A finite double as JSON (serde's shortest round-trip form; clients read
/// the same number as from JS's spelling).
fn js_number(f: f64) -> String {
    if f == 0.0 {
        // JSON.stringify(-0) is "0".
        "0".into()
    } else if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        serde_json::Number::from_f64(f).map_or_else(|| "null".into(), |n| n.to_string())
    }
}

/// `Date.prototype.toISOString` of `ms` since the epoch
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`; years past 9999 as `+YYYYYY`).
fn iso_date(ms: f64) -> String {
    let ms = ms.floor() as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    format!("{year}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Howard Hinnant's days-to-civil for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Broadcast {
        Broadcast {
            uid: "abc123".into(),
            nsp: "/chat".into(),
            data: r#"["news",{"n":1,"f":1.5,"s":"é","b":{"_placeholder":true,"num":0}},null,[true,false]]"#.into(),
            attachments: vec![Bytes::from_static(&[1, 2, 3])],
            rooms: vec!["r1".into()],
            except: vec!["sid1".into()],
            flags: Flags { volatile: true, compress: Some(false) },
        }
    }

    #[test]
    fn a_broadcast_round_trips() {
        let b = sample();
        let bytes = encode_broadcast(&b).unwrap();
        assert_eq!(decode_broadcast(&bytes).unwrap(), b);
        assert_eq!(broadcast_channel("socket.io", "/chat", &b.rooms), "socket.io#/chat#r1#");
        assert_eq!(broadcast_channel("socket.io", "/", &["a".into(), "b".into()]), "socket.io#/#");
    }

    #[test]
    fn encodes_the_packet_as_the_classic_adapter_does() {
        // notepack.encode(["abc123", {type: 2, data: ["hi", 1], nsp: "/"}, {rooms: [], except: [], flags: {}}])
        let b = Broadcast {
            uid: "abc123".into(),
            nsp: "/".into(),
            data: r#"["hi",1]"#.into(),
            attachments: vec![],
            rooms: vec![],
            except: vec![],
            flags: Flags::default(),
        };
        let expected: &[u8] = &[
            0x93, 0xa6, b'a', b'b', b'c', b'1', b'2', b'3', 0x83, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a',
            b't', b'a', 0x92, 0xa2, b'h', b'i', 0x01, 0xa3, b'n', b's', b'p', 0xa1, b'/', 0x83, 0xa5, b'r', b'o', b'o',
            b'm', b's', 0x90, 0xa6, b'e', b'x', b'c', b'e', b'p', b't', 0x90, 0xa5, b'f', b'l', b'a', b'g', b's', 0x80,
        ];
        assert_eq!(encode_broadcast(&b).unwrap(), expected);
    }

    #[test]
    fn reads_what_the_emitter_sends_dates_and_numeric_rooms_included() {
        // An emitter message with no nsp, a Date (timestamp 32), a float
        // room and a BINARY_EVENT type.
        let v = Value::Array(vec![
            Value::str("emitter"),
            Value::Map(vec![
                (Value::str("type"), Value::Int(5)),
                (
                    Value::str("data"),
                    Value::Array(vec![Value::str("t"), Value::Ext(-1, 1_000_000_000u32.to_be_bytes().to_vec())]),
                ),
            ]),
            Value::Map(vec![(Value::str("rooms"), Value::Array(vec![Value::Int(42), Value::F64(1.5)]))]),
        ]);
        let mut bytes = Vec::new();
        msgpack::encode(&v, &mut bytes);
        let b = decode_broadcast(&bytes).unwrap();
        assert_eq!(b.nsp, "/");
        assert_eq!(b.data, r#"["t","2001-09-09T01:46:40.000Z"]"#);
        assert_eq!(b.rooms, ["42", "1.5"]);
        assert!(b.except.is_empty());
        assert_eq!(b.flags, Flags::default());
    }

    #[test]
    fn refuses_what_is_not_a_broadcast() {
        let enc = |v: Value| {
            let mut out = Vec::new();
            msgpack::encode(&v, &mut out);
            out
        };
        assert!(decode_broadcast(&enc(Value::str("x"))).is_err());
        assert!(decode_broadcast(&enc(Value::Array(vec![Value::str("u"), Value::Nil, Value::Nil]))).is_err());
        let ack = Value::Map(vec![(Value::str("type"), Value::Int(3)), (Value::str("data"), Value::Array(vec![]))]);
        assert!(decode_broadcast(&enc(Value::Array(vec![Value::str("u"), ack, Value::Nil]))).is_err());
        assert!(decode_broadcast(b"\xc1").is_err());
        let bad = Broadcast { data: r#"[{"_placeholder":true,"num":3}]"#.into(), ..sample() };
        assert_eq!(encode_broadcast(&bad), Err(WireError::Placeholder(3)));
    }

    #[test]
    fn requests_reach_js_as_json_whichever_encoding() {
        let (text, att) = message_to_json(br#"{"uid":"x","type":1,"requestId":"r"}"#).unwrap();
        assert_eq!(text, r#"{"uid":"x","type":1,"requestId":"r"}"#);
        assert!(att.is_empty());
        assert!(message_to_json(b"{not json").is_err());
        let packed = json_to_message(
            r#"{"type":9,"requestId":"r","packet":[{"_placeholder":true,"num":0}]}"#,
            &[Bytes::from_static(b"zz")],
        )
        .unwrap();
        let (text, att) = message_to_json(&packed).unwrap();
        assert_eq!(text, r#"{"type":9,"requestId":"r","packet":[{"_placeholder":true,"num":0}]}"#);
        assert_eq!(att, [Bytes::from_static(b"zz")]);
    }

    #[test]
    fn cluster_broadcasts_round_trip_as_json_or_msgpack() {
        let plain = Broadcast { data: r#"["hi",1,{"a":[1.5]}]"#.into(), attachments: vec![], ..sample() };
        let bytes = encode_cluster_broadcast(&plain).unwrap();
        // What JSON.stringify gives for ClusterAdapter's message.
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"type":3,"data":{"packet":{"type":2,"data":["hi",1,{"a":[1.5]}],"nsp":"/chat"},"opts":{"rooms":["r1"],"except":["sid1"],"flags":{"volatile":true,"compress":false}}},"uid":"abc123","nsp":"/chat"}"#
        );
        assert_eq!(decode_cluster(&bytes).unwrap(), ClusterMessage::Broadcast(plain));
        let binary = sample();
        let bytes = encode_cluster_broadcast(&binary).unwrap();
        assert_ne!(bytes[0], b'{');
        assert_eq!(decode_cluster(&bytes).unwrap(), ClusterMessage::Broadcast(binary));
    }

    #[test]
    fn cluster_requests_and_responses_reach_js_as_json() {
        let ack = br#"{"uid":"n2","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["e"],"nsp":"/"},"requestId":"q","opts":{"rooms":[],"except":[],"flags":{"timeout":10}}}}"#;
        let ClusterMessage::Other { uid, json, attachments } = decode_cluster(ack).unwrap() else {
            panic!("an ack is JS's")
        };
        assert_eq!((uid.as_str(), json.as_str()), ("n2", std::str::from_utf8(ack).unwrap()));
        assert!(attachments.is_empty());
        let response = Value::Map(vec![
            (Value::str("uid"), Value::str("n3")),
            (Value::str("type"), Value::Int(12)),
            (
                Value::str("data"),
                Value::Map(vec![
                    (Value::str("requestId"), Value::str("q")),
                    (Value::str("packet"), Value::Bin(vec![7])),
                ]),
            ),
        ]);
        let mut bytes = Vec::new();
        msgpack::encode(&response, &mut bytes);
        let ClusterMessage::Other { json, attachments, .. } = decode_cluster(&bytes).unwrap() else { panic!() };
        assert_eq!(json, r#"{"uid":"n3","type":12,"data":{"requestId":"q","packet":{"_placeholder":true,"num":0}}}"#);
        assert_eq!(attachments, [Bytes::from_static(&[7])]);
        // A broadcast whose requestId notepack wrote as `undefined` is no ack.
        let undefined = br#"{"uid":"n","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["e"]}}}"#;
        assert!(matches!(decode_cluster(undefined), Ok(ClusterMessage::Broadcast(_))));
        assert!(decode_cluster(br#"{"type":3}"#).is_err());
        assert!(decode_cluster(br#"{"uid":"n","type":3,"data":{"packet":{"type":2,"data":"x"}}}"#).is_err());
    }

    #[test]
    fn lone_surrogates_js_writes_are_read_as_replacement_characters() {
        assert_eq!(well_formed(r#"["a\ud83d"]"#), r#"["a\ufffd"]"#);
        assert_eq!(
            well_formed(r#"["\ud83d\ude00 ok","\udc00","\\ud800"]"#),
            r#"["\ud83d\ude00 ok","\ufffd","\\ud800"]"#
        );
        let cut = Broadcast { data: r#"["chat","hi \ud83d"]"#.into(), attachments: vec![], ..sample() };
        let ClusterMessage::Broadcast(b) = decode_cluster(&encode_cluster_broadcast(&cut).unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(b.data, "[\"chat\",\"hi \u{fffd}\"]");
        assert!(decode_broadcast(&encode_broadcast(&cut).unwrap()).is_ok());
    }

    #[test]
    fn map_keys_become_js_property_names_without_blowing_up() {
        // 40 maps nested as keys: JS names the outer key "[object Object]".
        let mut v = Value::Map(vec![(Value::str("k"), Value::Nil)]);
        for _ in 0..40 {
            v = Value::Map(vec![(v, Value::Int(1))]);
        }
        let text = value_to_json(&v, &mut Vec::new());
        assert_eq!(text, r#"{"[object Object]":1}"#);
        let keys = Value::Map(vec![
            (Value::Int(7), Value::Nil),
            (Value::Array(vec![Value::Int(1), Value::str("a")]), Value::Nil),
            (Value::Bool(true), Value::Nil),
        ]);
        assert_eq!(value_to_json(&keys, &mut Vec::new()), r#"{"7":null,"1,a":null,"true":null}"#);
        // String([null, 1]) is ",1"; String(1.5e300) is "1.5e+300".
        let keys = Value::Map(vec![
            (Value::Array(vec![Value::Nil, Value::Int(1)]), Value::Nil),
            (Value::F64(1.5e300), Value::Nil),
            (Value::F64(1e-7), Value::Nil),
        ]);
        assert_eq!(value_to_json(&keys, &mut Vec::new()), r#"{",1":null,"1.5e+300":null,"1e-7":null}"#);
    }

    #[test]
    fn dates_as_js_writes_them() {
        assert_eq!(iso_date(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(1_000_000_000_123.0), "2001-09-09T01:46:40.123Z");
        assert_eq!(iso_date(-1.0), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso_date(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_date(253_402_300_800_000.0), "+010000-01-01T00:00:00.000Z");
        assert_eq!(js_number(1.5), "1.5");
        assert_eq!(js_number(3.0), "3");
        assert_eq!(js_number(-0.0), "0");
    }
}
