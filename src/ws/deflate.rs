//! permessage-deflate (RFC 7692): the route's setting in uWS.js's terms,
//! the negotiation against a client's offers, and compressing and
//! inflating one message. Pure (no sockets); the per-thread shared
//! (de)compressors live here too.
//!
//! Memory per connection: nothing unless negotiated. A shared compressor
//! (`server_no_context_takeover`) and a shared decompressor
//! (`client_no_context_takeover`) are one per thread, reset per message;
//! a dedicated compressor keeps a deflate state per connection (its window
//! twice over plus the hash tables: 2^(bits+2) + 128 KiB), a dedicated
//! decompressor an inflate state with its window (2^bits + ~7 KiB).

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{self, OpCode};

/// uWS.js's `compression` bits: the low byte names the compressor
/// (1 shared; otherwise window bits << 4 | memory level), bits 8-11 the
/// decompressor (1 shared; otherwise its window bits).
#[cfg(test)]
pub const SHARED_COMPRESSOR: u32 = 1;
#[cfg(test)]
pub const SHARED_DECOMPRESSOR: u32 = 1 << 8;

/// The messages' compression level (zlib's default trades speed for size
/// as uWS.js's does).
const LEVEL: u32 = 6;

/// What a route allows, from its `compression` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// None: the server keeps no context between messages (shared
    /// compressor); Some(bits): a per-connection compressor with this window.
    pub compressor_window: Option<u8>,
    /// None: the client must not keep context (shared decompressor);
    /// Some(bits): a per-connection decompressor with this window.
    pub decompressor_window: Option<u8>,
}

impl Config {
    /// The route's `compression` value; None when it is off (0).
    pub fn from_uws(bits: u32) -> Option<Config> {
        let comp = bits & 0xff;
        let decomp = (bits >> 8) & 0xf;
        if comp == 0 && decomp == 0 {
            return None;
        }
        let compressor_window = match comp {
            0 | 1 => None,
            c => Some(((c >> 4) as u8).clamp(9, 15)),
        };
        let decompressor_window = match decomp {
            0 | 1 => None,
            d => Some((d as u8).clamp(9, 15)),
        };
        Some(Config { compressor_window, decompressor_window })
    }
}

/// What was agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// We keep our compression context between messages (a dedicated
    /// compressor with this window); None: a fresh context per message.
    pub server_window: Option<u8>,
    /// The client keeps its context: a dedicated decompressor with this
    /// window; None: a fresh context per message (shared decompressor).
    pub client_window: Option<u8>,
}

#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// Present; with its value when it had one.
    client_max_window_bits: Option<Option<u8>>,
}

/// One offer's parameters; None when it is not permessage-deflate or is
/// malformed (an unknown or repeated parameter, a bad value: RFC 7692 7.1).
fn parse_offer(offer: &str) -> Option<Offer> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut o = Offer::default();
    let bits = |v: Option<&str>| -> Option<u8> {
        let v = v?.trim().trim_matches('"');
        if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
    };
    for p in parts.filter(|p| !p.is_empty()) {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (p, None),
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() && !o.server_no_context_takeover => {
                o.server_no_context_takeover = true
            }
            "client_no_context_takeover" if value.is_none() && !o.client_no_context_takeover => {
                o.client_no_context_takeover = true
            }
            "server_max_window_bits" if o.server_max_window_bits.is_none() => {
                o.server_max_window_bits = Some(bits(value)?)
            }
            "client_max_window_bits" if o.client_max_window_bits.is_none() => {
                o.client_max_window_bits = Some(match value {
                    None => None,
                    v => Some(bits(v)?),
                })
            }
            _ => return None,
        }
    }
    Some(o)
}

/// The first of the client's offers (`Sec-WebSocket-Extensions` values, in
/// order) we can accept under `cfg`, and the response header's value.
pub fn negotiate<'a>(values: impl Iterator<Item = &'a str>, cfg: &Config) -> Option<(Agreed, String)> {
    for offer in values.flat_map(|v| v.split(',')) {
        let Some(o) = parse_offer(offer) else { continue };
        // Our compressor: zlib cannot keep to a 256-byte window (it widens 8
        // to 9), so an offer asking for it is declined.
        let server_window = match (o.server_no_context_takeover, cfg.compressor_window) {
            (_, _) if o.server_max_window_bits == Some(8) => continue,
            (true, _) | (false, None) => None,
            (false, Some(bits)) => Some(o.server_max_window_bits.map_or(bits, |m| m.min(bits))),
        };
        // The client's: it keeps context only where a dedicated
        // decompressor holds it, and we may ask for a smaller window only
        // when the offer says the client can do that.
        let client_window = match (o.client_no_context_takeover, cfg.decompressor_window) {
            (true, _) | (false, None) => None,
            (false, Some(bits)) => match o.client_max_window_bits {
                Some(Some(offered)) => Some(offered.min(bits)),
                Some(None) => Some(bits),
                None => Some(15),
            },
        };
        let mut resp = String::from("permessage-deflate");
        if server_window.is_none() {
            resp.push_str("; server_no_context_takeover");
        }
        if client_window.is_none() {
            resp.push_str("; client_no_context_takeover");
        }
        if let (Some(bits), Some(_)) = (server_window, o.server_max_window_bits) {
            resp.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if let (Some(bits), Some(_)) = (client_window, o.client_max_window_bits) {
            resp.push_str(&format!("; client_max_window_bits={bits}"));
        }
        return Some((Agreed { server_window, client_window }, resp));
    }
    None
}

/// Why an inflated message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Over the limit once inflated (1009).
    TooLarge,
    /// Not a valid deflate stream (1007, as ws and uWS.js close).
    Corrupt,
}

/// A compressor: fresh per message (shared) or keeping its window.
pub struct Deflater(Compress);

impl Deflater {
    pub fn new(window_bits: u8) -> Self {
        Deflater(Compress::new_with_window_bits(Compression::new(LEVEL), false, window_bits.clamp(9, 15)))
    }

    /// `input` compressed as one message's payload (the sync flush's tail
    /// `00 00 ff ff` removed, RFC 7692 7.2.1). `fresh`: no context from
    /// earlier messages is used (and none kept).
    pub fn compress(&mut self, input: &[u8], fresh: bool, out: &mut Vec<u8>) {
        if fresh {
            self.0.reset();
        }
        out.reserve(input.len() / 2 + 64);
        let base = self.0.total_in();
        loop {
            let used = (self.0.total_in() - base) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            // Raw deflate into spare capacity cannot fail.
            let _ = self.0.compress_vec(&input[used..], out, FlushCompress::Sync);
            let used = (self.0.total_in() - base) as usize;
            // The flush is complete when all input went in and the output
            // was not cut short by capacity.
            if used == input.len() && out.capacity() - out.len() >= 64 {
                break;
            }
        }
        if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        }
    }

    /// `payload` as a whole compressed frame, keeping this compressor's
    /// context (a connection's own).
    pub fn frame(&mut self, opcode: OpCode, payload: &[u8]) -> Bytes {
        let mut out = Vec::new();
        self.compress(payload, false, &mut out);
        frame::encode_compressed_frame(opcode, &out)
    }
}

/// A decompressor: fresh per message (shared) or keeping the client's window.
pub struct Inflater(Decompress);

impl Inflater {
    pub fn new(window_bits: u8) -> Self {
        Inflater(Decompress::new_with_window_bits(false, window_bits.clamp(9, 15)))
    }

    /// One message's payload inflated into `out`, at most `max` bytes.
    /// `fresh`: the client kept no context (and none is kept).
    pub fn inflate(&mut self, input: &[u8], max: usize, fresh: bool, out: &mut Vec<u8>) -> Result<(), InflateError> {
        if fresh {
            self.0.reset(false);
        }
        let r = self.feed(input, max, out).and_then(|ended| if ended { Ok(true) } else { self.feed(&TAIL, max, out) });
        match r {
            // A final block ends the stream: the next message starts anew.
            Ok(ended) => {
                if ended {
                    self.0.reset(false);
                }
                Ok(())
            }
            Err(e) => {
                self.0.reset(false);
                Err(e)
            }
        }
    }

    /// Ok(true) when the deflate stream ended (a final block).
    fn feed(&mut self, data: &[u8], max: usize, out: &mut Vec<u8>) -> Result<bool, InflateError> {
        let base = self.0.total_in();
        loop {
            let used = (self.0.total_in() - base) as usize;
            if out.len() == out.capacity() {
                if out.len() > max {
                    return Err(InflateError::TooLarge);
                }
                let room = (max + 1 - out.len()).min(out.len().max(4096));
                out.reserve(room);
            }
            let before = (used, out.len());
            let status =
                self.0.decompress_vec(&data[used..], out, FlushDecompress::Sync).map_err(|_| InflateError::Corrupt)?;
            if out.len() > max {
                return Err(InflateError::TooLarge);
            }
            let used = (self.0.total_in() - base) as usize;
            if status == Status::StreamEnd {
                // Bytes after the final block are not deflate data.
                return if used == data.len() || data[used..] == TAIL[..] {
                    Ok(true)
                } else {
                    Err(InflateError::Corrupt)
                };
            }
            if used == data.len() && out.len() < out.capacity() {
                return Ok(false);
            }
            if (used, out.len()) == before && out.len() < out.capacity() {
                return Err(InflateError::Corrupt);
            }
        }
    }
}

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

thread_local! {
    static SHARED_DEFLATER: RefCell<Option<Deflater>> = const { RefCell::new(None) };
    static SHARED_INFLATER: RefCell<Option<Inflater>> = const { RefCell::new(None) };
}

/// Compresses with this thread's shared compressor (no context kept).
pub fn compress_shared(input: &[u8], out: &mut Vec<u8>) {
    SHARED_DEFLATER.with(|d| d.borrow_mut().get_or_insert_with(|| Deflater::new(15)).compress(input, true, out));
}

/// `payload` as a whole compressed frame made with this thread's shared
/// compressor: what every subscriber that keeps no context can be sent.
pub fn shared_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut out = Vec::new();
    compress_shared(payload, &mut out);
    frame::encode_compressed_frame(opcode, &out)
}

/// Inflates with this thread's shared decompressor (no context kept).
pub fn inflate_shared(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
    SHARED_INFLATER.with(|d| d.borrow_mut().get_or_insert_with(|| Inflater::new(15)).inflate(input, max, true, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: Config = Config { compressor_window: None, decompressor_window: None };

    fn offer(v: &str, cfg: &Config) -> Option<(Agreed, String)> {
        negotiate(std::iter::once(v), cfg)
    }

    #[test]
    fn uws_constants_map_to_windows() {
        assert_eq!(Config::from_uws(0), None);
        assert_eq!(Config::from_uws(SHARED_COMPRESSOR), Some(ON));
        // DEDICATED_COMPRESSOR_3KB | DEDICATED_DECOMPRESSOR_32KB
        let c = Config::from_uws(145 | 3840).unwrap();
        assert_eq!((c.compressor_window, c.decompressor_window), (Some(9), Some(15)));
        assert_eq!(Config::from_uws(248).unwrap().compressor_window, Some(15));
        assert_eq!(Config::from_uws(SHARED_DECOMPRESSOR), Some(ON));
    }

    #[test]
    fn shared_settings_answer_no_context_takeover_both_ways() {
        let (a, resp) = offer("permessage-deflate; client_max_window_bits", &ON).unwrap();
        assert_eq!(a, Agreed { server_window: None, client_window: None });
        assert_eq!(resp, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    }

    #[test]
    fn dedicated_settings_keep_context_within_the_offered_windows() {
        let cfg = Config { compressor_window: Some(15), decompressor_window: Some(12) };
        let (a, resp) = offer("permessage-deflate; server_max_window_bits=10; client_max_window_bits", &cfg).unwrap();
        assert_eq!(a, Agreed { server_window: Some(10), client_window: Some(12) });
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12");
        // Without client_max_window_bits in the offer we cannot ask for less than 15.
        let (a, resp) = offer("permessage-deflate", &cfg).unwrap();
        assert_eq!(a.client_window, Some(15));
        assert_eq!(resp, "permessage-deflate");
        // The client asks us not to keep context.
        let (a, _) = offer("permessage-deflate; server_no_context_takeover", &cfg).unwrap();
        assert_eq!(a.server_window, None);
    }

    #[test]
    fn bad_offers_are_skipped_for_the_next_one() {
        for bad in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=8",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(offer(bad, &ON), None, "{bad}");
            let two = format!("{bad}, permessage-deflate");
            assert!(offer(&two, &ON).is_some(), "{two}");
        }
    }

    #[test]
    fn messages_round_trip_fresh_and_with_context() {
        let text = b"the quick brown fox jumps over the lazy dog; the quick brown fox again".repeat(20);
        // One pair per mode, as a connection (or a thread's shared pair) has.
        for fresh in [true, false] {
            let mut d = Deflater::new(15);
            let mut i = Inflater::new(15);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let mut wire = Vec::new();
                d.compress(&text, fresh, &mut wire);
                assert!(!wire.ends_with(&TAIL));
                sizes.push(wire.len());
                let mut back = Vec::new();
                i.inflate(&wire, 1 << 20, fresh, &mut back).unwrap();
                assert_eq!(back, text);
            }
            if fresh {
                assert!(sizes.iter().all(|&s| s == sizes[0]));
            } else {
                assert!(sizes[1] < sizes[0], "context makes the repeat smaller: {sizes:?}");
            }
        }
        let mut wire = Vec::new();
        compress_shared(b"", &mut wire);
        let mut back = Vec::new();
        inflate_shared(&wire, 10, &mut back).unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn inflation_is_bounded_and_corruption_refused() {
        let zeros = vec![0u8; 1 << 20];
        let mut wire = Vec::new();
        compress_shared(&zeros, &mut wire);
        assert!(wire.len() < 4096, "a bomb: {} bytes", wire.len());
        let mut out = Vec::new();
        assert_eq!(inflate_shared(&wire, 1000, &mut out), Err(InflateError::TooLarge));
        assert!(out.capacity() < 64 << 10, "allocated {} for a 1000-byte limit", out.capacity());
        out.clear();
        assert_eq!(inflate_shared(&wire, zeros.len(), &mut out), Ok(()));
        assert_eq!(out.len(), zeros.len());
        out.clear();
        assert_eq!(inflate_shared(&[0xff, 0xff, 0xff, 0x00, 0x12], 1000, &mut out), Err(InflateError::Corrupt));
        // The shared inflater recovers for the next message.
        out.clear();
        let mut ok = Vec::new();
        compress_shared(b"fine", &mut ok);
        assert_eq!(inflate_shared(&ok, 100, &mut out), Ok(()));
        assert_eq!(out, b"fine");
    }
}
