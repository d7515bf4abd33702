//! Engine.IO v3's encodings (socket.io-client v2, served with `allowEIO3`),
//! where they differ from v4 (engine.io-parser 2.x): pure functions, as
//! packet.rs.
//!
//! - Polling payloads are length-prefixed, `<len>:<record>…`, the length in
//!   UTF-16 code units (what a JS string counts); binary messages are
//!   `b4<base64>`. A client that supports binary may POST a binary payload
//!   instead (`application/octet-stream`): per packet a 0 (text) or 1
//!   (binary) byte, the length as one byte per decimal digit, 255, then the
//!   packet (text as UTF-8; binary as its type byte and the data).
//! - Binary WebSocket frames carry the packet type first (`4` + data).

use bytes::Bytes;

use super::packet::{decode_record, encode_text, DecodeError, Packet, Payload, BASE64};
use base64::Engine as _;

/// A record of a v3 text payload: as v4's, but a binary message is
/// `b4<base64>`.
fn record(packet: &Packet) -> String {
    match packet {
        Packet::Message(Payload::Binary(data)) => format!("b4{}", BASE64.encode(data)),
        // v4 text records are UTF-8 (from the packet's own text).
        _ => String::from_utf8_lossy(&encode_text(packet)).into_owned(),
    }
}

/// A polling response body: `<len>:<record>` for each packet.
pub fn encode_payload(packets: &[Packet]) -> Bytes {
    let mut out = String::new();
    for p in packets {
        let r = record(p);
        out.push_str(&r.encode_utf16().count().to_string());
        out.push(':');
        out.push_str(&r);
    }
    Bytes::from(out)
}

/// One v3 text record: `b4<base64>` is a binary message; the rest as v4.
fn decode_text_record(r: &str) -> Result<Packet, DecodeError> {
    if let Some(b64) = r.strip_prefix('b') {
        let data = b64.strip_prefix('4').ok_or(DecodeError::InvalidBase64)?;
        let binary = BASE64.decode(data).map_err(|_| DecodeError::InvalidBase64)?;
        return Ok(Packet::Message(Payload::Binary(Bytes::from(binary))));
    }
    decode_record(r.as_bytes(), Bytes::copy_from_slice)
}

/// A binary WebSocket frame (or binary payload entry): the type byte, then
/// the data; only messages carry binary.
pub fn decode_binary(frame: &[u8]) -> Result<Packet, DecodeError> {
    match frame.split_first() {
        None => Err(DecodeError::Empty),
        Some((4, data)) => Ok(Packet::Message(Payload::Binary(Bytes::copy_from_slice(data)))),
        Some((&t, _)) => Err(DecodeError::UnknownType(t)),
    }
}

/// A binary message as a WebSocket frame's payload: `4` + the data.
pub fn encode_binary(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(4);
    out.extend_from_slice(data);
    Bytes::from(out)
}

/// A POST body: the binary form when `binary` (its Content-Type said so),
/// else the text form. All or nothing, as engine.io-parser 2 ignores a
/// payload with an error in it.
pub fn decode_payload(body: &[u8], binary: bool) -> Result<Vec<Packet>, DecodeError> {
    if binary {
        decode_binary_payload(body)
    } else {
        decode_text_payload(std::str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?)
    }
}

fn decode_text_payload(body: &str) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (len, after) = rest.split_once(':').ok_or(DecodeError::Empty)?;
        let n: usize = len.parse().map_err(|_| DecodeError::Empty)?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::Empty);
        }
        // `n` UTF-16 code units of what follows.
        let mut units = 0;
        let mut end = 0;
        for c in after.chars() {
            if units >= n {
                break;
            }
            units += c.len_utf16();
            end += c.len_utf8();
        }
        if units != n {
            return Err(DecodeError::Empty);
        }
        let (r, next) = after.split_at(end);
        if !r.is_empty() {
            out.push(decode_text_record(r)?);
        }
        rest = next;
    }
    Ok(out)
}

fn decode_binary_payload(mut body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = body.split_first() {
        // engine.io-parser gives up past 310 digits.
        let digits = rest.iter().take(311).position(|&b| b == 255).ok_or(DecodeError::Empty)?;
        let mut n: usize = 0;
        for &d in &rest[..digits] {
            if d > 9 {
                return Err(DecodeError::Empty);
            }
            n = n.checked_mul(10).and_then(|n| n.checked_add(d as usize)).ok_or(DecodeError::Empty)?;
        }
        let data = &rest[digits + 1..];
        let entry = data.get(..n).ok_or(DecodeError::Empty)?;
        out.push(match kind {
            0 => decode_text_record(std::str::from_utf8(entry).map_err(|_| DecodeError::InvalidUtf8)?)?,
            1 => decode_binary(entry)?,
            t => return Err(DecodeError::UnknownType(t)),
        });
        body = &data[n..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Packet {
        Packet::Message(Payload::Text(Bytes::copy_from_slice(s.as_bytes())))
    }

    #[test]
    fn text_payloads_count_utf16_units_and_carry_binary_as_b4() {
        let packets =
            [text("héllo 😀"), Packet::Message(Payload::Binary(Bytes::from_static(&[1, 2, 3]))), Packet::Pong(None)];
        let body = encode_payload(&packets);
        // "4héllo 😀" is 9 UTF-16 units (the emoji is two).
        assert_eq!(&body[..], "9:4héllo 😀6:b4AQID1:3".as_bytes());
        assert_eq!(decode_payload(&body, false).unwrap(), packets);
        assert_eq!(decode_payload(b"1:2", false).unwrap(), [Packet::Ping(None)]);
        assert_eq!(decode_payload(b"0:", false).unwrap(), []);
        for bad in ["", "3:42", "x:4", "2:4", ":4", "1:4a", "2:b5AQID", "-1:4"] {
            assert!(decode_payload(bad.as_bytes(), false).is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_payloads_hold_text_and_binary_entries() {
        // "42["a"]" as text (0, length 7), then binary (1, length 3: type 4 + 2 bytes).
        let mut body = vec![0, 7, 255];
        body.extend_from_slice(br#"42["a"]"#);
        body.extend_from_slice(&[1, 3, 255, 4, 9, 8]);
        assert_eq!(
            decode_payload(&body, true).unwrap(),
            [text(r#"2["a"]"#), Packet::Message(Payload::Binary(Bytes::from_static(&[9, 8])))]
        );
        for bad in [&[0, 9, 255, b'4'][..], &[2, 1, 255, b'4'], &[0, 1], &[1, 1, 255, 3], &[0, 12, 255, b'4']] {
            assert!(decode_payload(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn websocket_binary_frames_carry_the_type() {
        assert_eq!(&encode_binary(&[1, 2])[..], &[4, 1, 2]);
        assert_eq!(decode_binary(&[4, 1, 2]).unwrap(), Packet::Message(Payload::Binary(Bytes::from_static(&[1, 2]))));
        assert!(decode_binary(&[]).is_err());
        assert!(decode_binary(&[2, 1]).is_err());
    }
}
