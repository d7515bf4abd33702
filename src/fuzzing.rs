//! Entry points for `fuzz/` (cargo-fuzz builds with `--cfg fuzzing`). They
//! drive the pure codecs exactly as the connection layer does.

use crate::ws::frame::{self, Incoming, MessageAssembler};
use crate::ws::handshake::{self, Limits};

/// Parses `data` as a client byte stream; panics only on a broken invariant.
pub fn frame_stream(data: &[u8], max: usize) {
    let mut buf = data.to_vec();
    let mut asm = MessageAssembler::new();
    let mut pos = 0;
    while pos < buf.len() {
        let (h, total) = match frame::next_frame(&mut buf[pos..], true, max as u64) {
            Ok(Some(found)) => found,
            Ok(None) | Err(_) => return,
        };
        let payload = &buf[pos + h.header_len..pos + total];
        pos += total;
        match asm.push(&h, payload, max) {
            Ok(Some(Incoming::Message { binary, payload })) => {
                assert!(payload.len() <= max, "message over the limit");
                if !binary {
                    assert!(std::str::from_utf8(&payload).is_ok(), "invalid UTF-8 text passed");
                }
            }
            Ok(Some(Incoming::Close { .. })) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Parses `data` as a request head and validates it as an upgrade.
pub fn request_head(data: &[u8]) {
    if let Ok(Some(req)) = handshake::parse_request(data, &Limits::default()) {
        assert!(req.head_len <= data.len());
        let _ = req.path();
        let _ = req.query();
        if let Ok(info) = handshake::validate_upgrade(&req) {
            let _ = handshake::response_101(&handshake::accept_key(&info.key), info.protocols.as_deref(), &[]);
        }
    }
}

/// Any Engine.IO polling body and WebSocket text frame: decode never panics,
/// and what decodes re-encodes to something that decodes the same way.
pub fn engineio(data: &[u8]) {
    use crate::engineio::packet;
    if let Ok(packets) = packet::decode_payload(data) {
        let again = packet::decode_payload(&packet::encode_payload(&packets)).expect("re-encoded payload decodes");
        assert_eq!(again.len(), packets.len());
    }
    let _ = packet::decode_text(data);
    let _ = packet::parse_query(&String::from_utf8_lossy(data));
}

/// Any Socket.IO packet text: decode never panics, and a decoded packet
/// re-encodes to text that decodes to the same header.
pub fn socketio(data: &[u8]) {
    use crate::socketio::packet;
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = packet::decode(text, &packet::Limits::default()) {
        let again = packet::encode(p.kind, p.nsp, p.id, p.attachments, p.data);
        let q = packet::decode(&again, &packet::Limits::default()).expect("re-encoded packet decodes");
        assert_eq!((q.kind, q.nsp, q.id, q.attachments, q.data), (p.kind, p.nsp, p.id, p.attachments, p.data));
    }
}

/// Any message from Redis, as the adapter reads it: what decodes re-encodes
/// to the same message (after the first pass, which normalises numbers and
/// keys as JS would).
pub fn redis_message(data: &[u8]) {
    use crate::adapter::redis::wire;
    if let Ok(b) = wire::decode_broadcast(data) {
        let once = wire::decode_broadcast(&wire::encode_broadcast(&b).expect("decoded data re-encodes"))
            .expect("re-encoded decodes");
        let twice = wire::decode_broadcast(&wire::encode_broadcast(&once).expect("re-encodes")).expect("decodes");
        assert_eq!(once, twice);
    }
    if let Ok(wire::ClusterMessage::Broadcast(b)) = wire::decode_cluster(data) {
        let again =
            |b: &wire::Broadcast| match wire::decode_cluster(&wire::encode_cluster_broadcast(b).expect("re-encodes")) {
                Ok(wire::ClusterMessage::Broadcast(b)) => b,
                other => panic!("a broadcast re-encoded reads back as {other:?}"),
            };
        let once = again(&b);
        assert_eq!(once, again(&once));
    }
    // Messages are maps (objects): the protocol tells JSON from MessagePack
    // by a first byte of `{`, which a non-map value's MessagePack form may
    // also start with (123 is the one byte 0x7b), so only maps round-trip.
    if let Ok((json, att)) = wire::message_to_json(data) {
        if !json.starts_with('{') {
            return;
        }
        let once =
            wire::message_to_json(&wire::json_to_message(&json, &att).expect("JSON re-encodes")).expect("decodes");
        let twice =
            wire::message_to_json(&wire::json_to_message(&once.0, &once.1).expect("re-encodes")).expect("decodes");
        assert_eq!(once, twice);
    }
}

/// A settled TLS 1.3 session (the server side of a WebSocket connection
/// after the upgrade) fed what a hostile client can send: raw bytes, and
/// records sealed with the client's own keys carrying any content type,
/// content and padding. Never panics; what waits to be sent stays small.
pub fn tls_records(data: &[u8]) {
    use crate::net::tls_peer::{settled, Forge};
    let (mut session, client) = settled(true);
    let mut forge = Forge::from(client);
    let mut ops = data;
    let mut plain = Vec::new();
    while let [op, rest @ ..] = ops {
        let mut wire = Vec::new();
        match op % 3 {
            // Raw bytes, as they come (a length byte, then that many).
            0 => {
                let Some((&n, rest)) = rest.split_first() else { return };
                let n = usize::from(n).min(rest.len());
                wire.extend_from_slice(&rest[..n]);
                ops = &rest[n..];
            }
            // A sealed record: content type, padding, length (two bytes), content.
            1 => {
                let [typ, pad, hi, lo, rest @ ..] = rest else { return };
                let n = (usize::from(*hi) << 8 | usize::from(*lo)).min(rest.len());
                forge.seal(*typ, &rest[..n], usize::from(*pad), &mut wire);
                ops = &rest[n..];
            }
            // The server sends (it may owe a KeyUpdate first).
            _ => {
                let Some((&n, rest)) = rest.split_first() else { return };
                let n = usize::from(n).min(rest.len());
                if session.encrypt(&rest[..n]).is_err() {
                    return;
                }
                ops = &rest[n..];
            }
        }
        if !wire.is_empty() && session.read(&mut wire, &mut plain).is_err() {
            // Ended: nothing more is sealed.
            assert!(session.encrypt(b"x").is_err(), "sealed after a fatal alert");
            return;
        }
        assert!(session.pending_len() < 64 * 1024, "pending output grows: {}", session.pending_len());
    }
}

/// Any bytes after a request head, as a chunked body and as a
/// Content-Length one, fed in two pieces split at the first byte's value:
/// decoding never panics, never passes the limit, never consumes more than
/// it is given, and the split does not change what decodes.
pub fn http_body(data: &[u8]) {
    use crate::ws::body::{BodyDecoder, Framing};
    let split = data.first().map_or(0, |&b| b as usize).min(data.len());
    for framing in [Framing::Chunked, Framing::Length(data.len() as u64 / 2)] {
        let whole = {
            let mut d = BodyDecoder::new(framing.clone(), 4096).expect("within the limit");
            let mut out = Vec::new();
            d.decode(data, &mut out).map(|used| (used, out, d.is_done()))
        };
        let mut d = BodyDecoder::new(framing, 4096).expect("within the limit");
        let mut out = Vec::new();
        let pieces = d.decode(&data[..split], &mut out).and_then(|a| {
            assert!(a <= split);
            if a < split {
                return Ok((a, d.is_done()));
            }
            d.decode(&data[split..], &mut out).map(|b| (a + b, d.is_done()))
        });
        assert!(out.len() <= 4096, "body over the limit");
        if let (Ok((used, body, done)), Ok((used2, done2))) = (&whole, &pieces) {
            assert_eq!((used, body, done), (used2, &out, done2), "the split changed the decoding");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_accept_garbage_and_valid_input() {
        super::frame_stream(&[0x81, 0x85, 1, 2, 3, 4, b'h' ^ 1, b'e' ^ 2, b'l' ^ 3, b'l' ^ 4, b'o' ^ 1], 1024);
        super::frame_stream(&[0xff; 64], 1024);
        super::request_head(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        super::request_head(&[0u8; 100]);
        super::engineio(b"4hello\x1ebAQIDBA==");
        super::socketio(b"2/admin,12[\"ev\",1]");
        super::redis_message(b"\x93\xa1u\x83\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xa1/\x80");
        super::redis_message(br#"{"type":1}"#);
        super::redis_message(&[0xdd, 0xff, 0xff, 0xff]);
        // Found by cargo-fuzz: the number 123, which re-encodes as `{`.
        super::redis_message(&[0xcc, 0x7b]);
        // Raw junk, then a sealed KeyUpdate request, data, an empty record
        // and a padded alert, then the server sending.
        super::tls_records(&[0, 5, 23, 3, 3, 0, 0]);
        super::tls_records(&[
            1, 22, 0, 0, 5, 24, 0, 0, 1, 1, 1, 23, 3, 0, 2, b'h', b'i', 1, 23, 0, 0, 0, 2, b'x', b'y',
        ]);
        super::tls_records(&[1, 21, 200, 0, 2, 1, 90, 2, 3, b'a', b'b', b'c']);
    }

    /// The committed, minimized corpora (fuzz/corpus/<target>/, from runs of
    /// 10M executions each, docs/decisions.md) replayed through the same
    /// entry points on every `cargo test`: a regression in a codec that
    /// the fuzzer's inputs reach fails here, without nightly or cargo-fuzz.
    #[test]
    fn committed_corpora_replay_clean() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        type Entry = fn(&[u8]);
        let targets: [(&str, Entry); 7] = [
            ("frames", |d| super::frame_stream(d, 64 * 1024)),
            ("handshake", super::request_head),
            ("engineio", super::engineio),
            ("socketio", super::socketio),
            ("redis", super::redis_message),
            ("tls_records", super::tls_records),
            ("http_body", super::http_body),
        ];
        let mut replayed = 0;
        for (name, entry) in targets {
            let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
            for file in dir.flatten() {
                let data = std::fs::read(file.path()).unwrap();
                entry(&data);
                replayed += 1;
            }
        }
        // Once corpora are committed, an empty replay means they went missing.
        if root.exists() {
            assert!(replayed > 0, "fuzz/corpus exists but holds no inputs");
        }
    }

    /// A cheap stand-in for a fuzzing run where cargo-fuzz is absent: every
    /// one-byte change of a real broadcast (binary and Date included), in
    /// the classic form and both sharded ones (MessagePack, JSON), goes
    /// through the Redis entry point without breaking an invariant.
    #[test]
    fn every_one_byte_mutation_of_a_broadcast_is_handled() {
        use crate::adapter::redis::wire::{encode_broadcast, encode_cluster_broadcast, Broadcast, Flags};
        let b = Broadcast {
            uid: "abc123".into(),
            nsp: "/n".into(),
            data: r#"["ev",1.5,-3,{"k":[true,null,"s"],"b":{"_placeholder":true,"num":0}}]"#.into(),
            attachments: vec![bytes::Bytes::from_static(&[1, 2])],
            rooms: vec!["r".into()],
            except: vec!["x".into()],
            flags: Flags { volatile: true, compress: Some(true) },
        };
        let text =
            Broadcast { data: r#"["ev",1.5,-3,{"k":[true,null,"s"]}]"#.into(), attachments: vec![], ..b.clone() };
        let messages = [encode_broadcast(&b), encode_cluster_broadcast(&b), encode_cluster_broadcast(&text)];
        for msg in messages.map(Result::unwrap) {
            for i in 0..msg.len() {
                for v in [0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xcb, 0xd6, 0xd9, 0xdc, 0xde, 0xff, b'"', b'{', b'1'] {
                    let mut m = msg.clone();
                    m[i] = v;
                    super::redis_message(&m);
                    super::redis_message(&m[..i]);
                }
            }
        }
    }
}
