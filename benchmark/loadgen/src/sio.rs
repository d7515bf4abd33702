//! Engine.IO v4 and Socket.IO v5 text packets, client side, plus the JSON
//! scanners the modes need. Pure functions from bytes to values: no I/O, no
//! allocation on the parse side. Over the WebSocket transport one text frame
//! carries exactly one Engine.IO packet, so there is no "need more bytes"
//! case here: the WebSocket layer hands over whole messages.
//!
//! No JSON library on the hot path: the load generator only has to find a
//! handful of known keys in messages whose shape it chose itself.

/// One Engine.IO packet (the first character is its type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eio<'a> {
    /// `0{"sid":...,"pingInterval":...}`
    Open(&'a [u8]),
    Close,
    /// Server heartbeat (v4: the server pings, the client answers `3`).
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// `4...`: a Socket.IO packet.
    Message(&'a [u8]),
    Upgrade,
    Noop,
}

pub fn parse_eio(p: &[u8]) -> Option<Eio<'_>> {
    let (&t, rest) = p.split_first()?;
    Some(match t {
        b'0' => Eio::Open(rest),
        b'1' => Eio::Close,
        b'2' => Eio::Ping(rest),
        b'3' => Eio::Pong(rest),
        b'4' => Eio::Message(rest),
        b'5' => Eio::Upgrade,
        b'6' => Eio::Noop,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

/// `<type>[<attachments>-][<namespace>,][<ackId>][<JSON payload>]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: Kind,
    /// `/` when the packet names no namespace.
    pub nsp: &'a [u8],
    pub ack: Option<u64>,
    /// The JSON payload, unparsed (may be empty).
    pub data: &'a [u8],
}

/// Parse the Socket.IO packet inside an Engine.IO message (after the `4`).
pub fn parse_sio(m: &[u8]) -> Option<Packet<'_>> {
    let (&t, mut rest) = m.split_first()?;
    let kind = match t {
        b'0' => Kind::Connect,
        b'1' => Kind::Disconnect,
        b'2' => Kind::Event,
        b'3' => Kind::Ack,
        b'4' => Kind::ConnectError,
        b'5' => Kind::BinaryEvent,
        b'6' => Kind::BinaryAck,
        _ => return None,
    };
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let dash = rest.iter().position(|&b| b == b'-')?;
        if dash == 0 || !rest[..dash].iter().all(u8::is_ascii_digit) {
            return None;
        }
        rest = &rest[dash + 1..];
    }
    let nsp: &[u8] = if rest.first() == Some(&b'/') {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let n = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(&[]);
        n
    } else {
        b"/"
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let ack = if digits > 0 { Some(parse_u64(&rest[..digits])?) } else { None };
    Some(Packet { kind, nsp, ack, data: &rest[digits..] })
}

/// Split an EVENT payload `["name",args...]` into the name (raw JSON string
/// contents, escapes left as they are) and the arguments after it (the JSON
/// text between the name's comma and the closing `]`, empty if none).
pub fn split_event(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = skip_ws(data).strip_prefix(b"[")?;
    let rest = skip_ws(rest).strip_prefix(b"\"")?;
    let mut i = 0;
    let name_end = loop {
        match *rest.get(i)? {
            b'\\' => i += 2,
            b'"' => break i,
            _ => i += 1,
        }
    };
    let name = &rest[..name_end];
    let after = skip_ws(&rest[name_end + 1..]);
    let args = match after.strip_prefix(b",") {
        Some(a) => {
            let a = trim_end_ws(a).strip_suffix(b"]")?;
            trim_end_ws(skip_ws(a))
        }
        None => {
            after.strip_prefix(b"]")?;
            &[]
        }
    };
    Some((name, args))
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn trim_end_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().rev().take_while(|c| c.is_ascii_whitespace()).count();
    &b[..b.len() - n]
}

/// All of `b` as an unsigned decimal (no sign, no spaces); None on overflow.
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// The unsigned integer right after the first occurrence of `key` (e.g.
/// `"seq":`) that is not inside an escaped string (`\"seq\":`), spaces
/// allowed before the digits.
pub fn scan_u64_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let mut from = 0;
    while let Some(pos) = find(&hay[from..], key) {
        let at = from + pos;
        from = at + 1;
        if at > 0 && hay[at - 1] == b'\\' {
            continue;
        }
        let rest = skip_ws(&hay[at + key.len()..]);
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        return parse_u64(&rest[..n]);
    }
    None
}

/// The broadcast sequence number of a message: `{"seq":K,...}` (ws) or
/// `42["bcast",{"seq":K,...}]` (Socket.IO); any message carrying the key.
pub fn scan_seq(msg: &[u8]) -> Option<u64> {
    scan_u64_after(msg, b"\"seq\":")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, tail) = needle.split_first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let p = hay[i..=hay.len() - needle.len()].iter().position(|&b| b == first)?;
        i += p;
        if &hay[i + 1..i + needle.len()] == tail {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Engine.IO message + Socket.IO CONNECT for `nsp`: `40` or `40/x,`.
pub fn connect_packet(nsp: &str) -> Vec<u8> {
    let mut v = b"40".to_vec();
    push_nsp(&mut v, nsp);
    v
}

/// Everything of an EVENT packet before its first argument:
/// `42["event",` or `42/x,["event",`. The packet ends with `]`.
pub fn event_prefix(nsp: &str, event: &str) -> Vec<u8> {
    let mut v = b"42".to_vec();
    push_nsp(&mut v, nsp);
    v.extend_from_slice(b"[\"");
    v.extend_from_slice(event.as_bytes());
    v.extend_from_slice(b"\",");
    v
}

fn push_nsp(v: &mut Vec<u8>, nsp: &str) {
    if nsp != "/" {
        v.extend_from_slice(nsp.as_bytes());
        v.push(b',');
    }
}

/// Decimal digits of `v` in a stack buffer; returns the used tail.
pub fn fmt_u64(v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_packets() {
        assert_eq!(parse_eio(br#"0{"sid":"a","upgrades":[]}"#), Some(Eio::Open(br#"{"sid":"a","upgrades":[]}"#)));
        assert_eq!(parse_eio(b"2"), Some(Eio::Ping(b"")));
        assert_eq!(parse_eio(b"3probe"), Some(Eio::Pong(b"probe")));
        assert_eq!(parse_eio(b"1"), Some(Eio::Close));
        assert_eq!(parse_eio(b"40"), Some(Eio::Message(b"0")));
        assert_eq!(parse_eio(b"6"), Some(Eio::Noop));
        assert_eq!(parse_eio(b""), None);
        assert_eq!(parse_eio(b"9"), None);
    }

    #[test]
    fn socket_io_packets() {
        let p = parse_sio(br#"0{"sid":"abc"}"#).unwrap();
        assert_eq!(p.kind, Kind::Connect);
        assert_eq!(p.nsp, b"/");
        assert_eq!(p.data, br#"{"sid":"abc"}"#);

        let p = parse_sio(br#"0/admin,{"sid":"abc"}"#).unwrap();
        assert_eq!((p.kind, p.nsp), (Kind::Connect, &b"/admin"[..]));
        assert_eq!(p.data, br#"{"sid":"abc"}"#);

        let p = parse_sio(b"1/admin,").unwrap();
        assert_eq!((p.kind, p.nsp, p.data), (Kind::Disconnect, &b"/admin"[..], &b""[..]));
        let p = parse_sio(b"1/admin").unwrap();
        assert_eq!((p.nsp, p.data), (&b"/admin"[..], &b""[..]));

        let p = parse_sio(br#"4{"message":"Invalid namespace"}"#).unwrap();
        assert_eq!(p.kind, Kind::ConnectError);

        let p = parse_sio(br#"2/x,12["ev",1]"#).unwrap();
        assert_eq!(p.kind, Kind::Event);
        assert_eq!(p.nsp, b"/x");
        assert_eq!(p.ack, Some(12));
        assert_eq!(p.data, br#"["ev",1]"#);

        let p = parse_sio(br#"51-["ev",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(p.kind, Kind::BinaryEvent);
        assert_eq!(p.nsp, b"/");
        assert_eq!(p.data, br#"["ev",{"_placeholder":true,"num":0}]"#);
        assert!(parse_sio(b"5-[]").is_none());
        assert!(parse_sio(b"").is_none());
        assert!(parse_sio(b"7").is_none());
    }

    #[test]
    fn events_split_into_name_and_args() {
        assert_eq!(split_event(br#"["echo",{"echo":"xx"}]"#), Some((&b"echo"[..], &br#"{"echo":"xx"}"#[..])));
        assert_eq!(split_event(br#"[ "a\"b" , 1, 2 ]"#), Some((&br#"a\"b"#[..], &b"1, 2"[..])));
        assert_eq!(split_event(br#"["ping"]"#), Some((&b"ping"[..], &b""[..])));
        assert_eq!(split_event(br#"["open"#), None);
        assert_eq!(split_event(br#"{"a":1}"#), None);
        assert_eq!(split_event(br#"["a",1"#), None);
    }

    #[test]
    fn seq_scanning() {
        assert_eq!(scan_seq(br#"{"seq":42,"t":1}"#), Some(42));
        assert_eq!(scan_seq(br#"42["bcast",{"seq":7}]"#), Some(7));
        assert_eq!(scan_seq(br#"{"seq": 3}"#), Some(3));
        assert_eq!(scan_seq(br#"{"x":"\"seq\":9","seq":5}"#), Some(5));
        assert_eq!(scan_seq(br#"{"seq":"5"}"#), None);
        assert_eq!(scan_seq(br#"{"seq":-1}"#), None);
        assert_eq!(scan_seq(br#"{"seq":99999999999999999999999}"#), None);
        assert_eq!(scan_seq(b"{}"), None);
        assert_eq!(scan_seq(b"\"seq\""), None);
        assert_eq!(scan_seq(b""), None);
        assert_eq!(scan_u64_after(br#"{"echo":17}"#, b"\"echo\":"), Some(17));
    }

    #[test]
    fn builders() {
        assert_eq!(connect_packet("/"), b"40");
        assert_eq!(connect_packet("/admin"), b"40/admin,");
        assert_eq!(event_prefix("/", "echo"), br#"42["echo","#);
        assert_eq!(event_prefix("/x", "echo"), br#"42/x,["echo","#);
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut b), b"0");
        assert_eq!(fmt_u64(1234567, &mut b), b"1234567");
        assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
        // What we send parses back as what we meant.
        let mut pkt = event_prefix("/x", "echo");
        pkt.extend_from_slice(b"5]");
        let Some(Eio::Message(m)) = parse_eio(&pkt) else { panic!() };
        let p = parse_sio(m).unwrap();
        assert_eq!((p.kind, p.nsp), (Kind::Event, &b"/x"[..]));
        assert_eq!(split_event(p.data), Some((&b"echo"[..], &b"5"[..])));
    }
}
