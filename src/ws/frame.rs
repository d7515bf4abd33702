//! RFC 6455 framing: header codec, masking, close payloads and message reassembly.
//!
//! Everything here is a pure function of bytes (or a small state machine fed with
//! bytes), so the connection layer owns the socket and its buffers while unit tests
//! and fuzzers can drive the codec directly. "Need more bytes" is `Ok(None)`, never
//! an error. Each [`FrameError`] maps to the close code the peer must receive.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// RFC 6455 5.5: control frames carry at most 125 payload bytes, so they always fit
/// the 7-bit length form and can be handled without buffering.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A close payload is a 2-byte code plus the reason, inside the 125-byte control limit.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Largest possible frame header: 2 fixed bytes, 8 length bytes, 4 mask bytes.
pub const MAX_HEADER_LEN: usize = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// `None` for the opcodes RFC 6455 reserves (3-7, 11-15).
    pub fn from_u8(value: u8) -> Option<OpCode> {
        match value {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }

    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate; only on the
    /// first frame of a data message, and only where it was negotiated).
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header occupies on the wire; the payload starts right after.
    pub header_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    #[error("message too large")]
    TooLarge,
    #[error("policy violation: {0}")]
    Policy(&'static str),
    #[error("invalid compressed data")]
    Corrupt,
}

impl FrameError {
    /// The close code (RFC 6455 7.4.1) to send before dropping the connection.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => 1002,
            FrameError::InvalidUtf8 | FrameError::Corrupt => 1007,
            FrameError::Policy(_) => 1008,
            FrameError::TooLarge => 1009,
        }
    }
}

/// `N` bytes of `buf` starting at `at`, or `None` if they have not all arrived.
fn array_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Server-side header decode. `Ok(None)` means more bytes are needed.
///
/// Every check that the first two bytes allow is made before waiting for the rest,
/// so a bad frame is refused as soon as it is recognisable. The declared length is
/// checked against `max_payload` from the header alone: the caller never has to
/// buffer an oversized payload to find out it is too large.
///
/// Non-minimal length encodings (say, 5 in the 16-bit form) are accepted: RFC 6455
/// puts the "minimal" rule on senders, and refusing them buys no safety.
#[cfg(any(test, fuzzing))]
pub fn decode_header(buf: &[u8], require_mask: bool, max_payload: u64) -> Result<Option<FrameHeader>, FrameError> {
    decode_header_ext(buf, require_mask, max_payload, false)
}

/// [`decode_header`] on a connection that negotiated permessage-deflate
/// when `deflate`: RSV1 is then allowed on the first frame of a data
/// message (RFC 7692 6). RSV2 and RSV3 are always refused.
pub fn decode_header_ext(
    buf: &[u8],
    require_mask: bool,
    max_payload: u64,
    deflate: bool,
) -> Result<Option<FrameHeader>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    // Any RSV bit no extension gave a meaning is a protocol violation (5.2).
    if b0 & 0x30 != 0 || (b0 & 0x40 != 0 && !deflate) {
        return Err(FrameError::Protocol("reserved bits set without a negotiated extension"));
    }
    let rsv1 = b0 & 0x40 != 0;
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(FrameError::Protocol("reserved opcode"))?;
    if rsv1 && !matches!(opcode, OpCode::Text | OpCode::Binary) {
        return Err(FrameError::Protocol("RSV1 on a control or continuation frame"));
    }
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(FrameError::Protocol("fragmented control frame"));
        }
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::Protocol("control frame payload over 125 bytes"));
        }
    }
    if require_mask && !masked {
        return Err(FrameError::Protocol("unmasked client frame"));
    }

    let (payload_len, mask_at) = match len7 {
        126 => match array_at::<2>(buf, 2) {
            Some(b) => (u64::from(u16::from_be_bytes(b)), 4),
            None => return Ok(None),
        },
        127 => match array_at::<8>(buf, 2) {
            Some(b) => {
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(FrameError::Protocol("64-bit payload length with the most significant bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if payload_len > max_payload {
        return Err(FrameError::TooLarge);
    }

    let (mask, header_len) = if masked {
        match array_at::<4>(buf, mask_at) {
            Some(key) => (Some(key), mask_at + 4),
            None => return Ok(None),
        }
    } else {
        (None, mask_at)
    };
    Ok(Some(FrameHeader { fin, rsv1, opcode, mask, payload_len, header_len }))
}

/// The next complete frame at the start of `buf`: validates its header, unmasks
/// its payload in place, and returns the header and the frame's total length.
/// `Ok(None)` when `buf` does not hold the whole frame yet.
#[cfg(any(test, fuzzing))]
pub fn next_frame(
    buf: &mut [u8],
    require_mask: bool,
    max_payload: u64,
) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    next_frame_ext(buf, require_mask, max_payload, false)
}

/// [`next_frame`], RSV1 allowed where permessage-deflate was negotiated.
pub fn next_frame_ext(
    buf: &mut [u8],
    require_mask: bool,
    max_payload: u64,
    deflate: bool,
) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    let Some(h) = decode_header_ext(buf, require_mask, max_payload, deflate)? else { return Ok(None) };
    let total = h.header_len + h.payload_len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    if let Some(mask) = h.mask {
        apply_mask(&mut buf[h.header_len..total], mask, 0);
    }
    Ok(Some((h, total)))
}

/// XOR-unmasks (or masks) `buf` in place. `offset` is the position of `buf[0]` within
/// the frame payload, so a payload arriving in several reads can be unmasked read by
/// read without copying it together first.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = mask;
    key.rotate_left(offset % 4);
    // Eight bytes per step; XOR is bytewise, so native byte order is fine as long as
    // the word and the key are read the same way.
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let (words, tail) = buf.as_chunks_mut::<8>();
    for word in words {
        *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
    }
    // Words cover a multiple of 4 bytes, so the tail starts at key phase 0 again.
    for (i, byte) in tail.iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

fn write_header(opcode: OpCode, fin: bool, payload_len: usize, mask_bit: u8, out: &mut [u8; 14]) -> usize {
    debug_assert!(
        !opcode.is_control() || (fin && payload_len <= MAX_CONTROL_PAYLOAD),
        "control frames must be final and at most 125 bytes"
    );
    out[0] = (u8::from(fin) << 7) | opcode.as_u8();
    if payload_len < 126 {
        // Guarded by the comparison: the length fits in 7 bits.
        out[1] = mask_bit | payload_len as u8;
        2
    } else if let Ok(len) = u16::try_from(payload_len) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    }
}

/// Encodes an unmasked (server-to-client) frame header; returns its length: 2, 4 or 10.
pub fn encode_header(opcode: OpCode, fin: bool, payload_len: usize, out: &mut [u8; 14]) -> usize {
    write_header(opcode, fin, payload_len, 0, out)
}

/// Encodes a masked (client-to-server) frame header; returns its length: 6, 8 or 14.
/// The payload must be masked separately with [`apply_mask`] at offset 0.
// Only clients mask and this crate is a server: the callers are tests, which
// play the client.
#[cfg(test)]
pub fn encode_header_masked(opcode: OpCode, fin: bool, payload_len: usize, mask: [u8; 4], out: &mut [u8; 14]) -> usize {
    let n = write_header(opcode, fin, payload_len, 0x80, out);
    out[n..n + 4].copy_from_slice(&mask);
    n + 4
}

/// A whole final server frame in one buffer, so a message published to many sockets
/// is encoded once and shared by reference count.
pub fn encode_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(opcode, true, payload.len(), &mut header);
    let mut frame = BytesMut::with_capacity(n + payload.len());
    frame.put_slice(&header[..n]);
    frame.put_slice(payload);
    frame.freeze()
}

/// A whole final server frame of a compressed message (RSV1 set):
/// `compressed` is the payload as permessage-deflate sends it.
pub fn encode_compressed_frame(opcode: OpCode, compressed: &[u8]) -> Bytes {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(opcode, true, compressed.len(), &mut header);
    header[0] |= 0x40;
    let mut frame = BytesMut::with_capacity(n + compressed.len());
    frame.put_slice(&header[..n]);
    frame.put_slice(compressed);
    frame.freeze()
}

/// Close frame payload: the code big-endian, then `reason` cut to 123 bytes on a char
/// boundary so the frame stays a valid control frame with a valid UTF-8 reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Whether a peer may put `code` in a close frame (RFC 6455 7.4 and the IANA
/// registry). 1005, 1006 and 1015 are for reporting locally, never for the wire;
/// 1012-1014 were registered after the RFC and are sent by real servers.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Validates a received close payload. An empty payload means "no code given".
pub fn parse_close_payload(payload: &[u8]) -> Result<(Option<u16>, &str), FrameError> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(FrameError::Protocol("close payload of a single byte")),
        [hi, lo, reason @ ..] => {
            // Unreachable through decode_header, but this function is public and the
            // 123-byte reason limit is part of what it promises to check.
            if reason.len() > MAX_CLOSE_REASON {
                return Err(FrameError::Protocol("close reason over 123 bytes"));
            }
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(FrameError::Protocol("invalid close code"));
            }
            let reason = simdutf8::basic::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok((Some(code), reason))
        }
    }
}

/// Most fragments one message may have. Empty fragments cost no memory but each one
/// costs a wakeup and a call, so a peer could otherwise spin the server forever on a
/// message that never grows (CVE-2026-48779 class). The allowance scales with the
/// size limit so that legitimate heavy fragmentation still passes: Autobahn 9.x sends
/// 4 MiB in 64-byte fragments (65 536 of them), and 16 MiB allows 263 168.
pub const fn max_fragments(max_message: usize) -> usize {
    1024 + max_message / 64
}

/// Validates `data[from..]` (which starts on a char boundary) allowing an unfinished
/// code point at the very end, and returns the char boundary reached. Only a sequence
/// that no further bytes could repair is an error, which is what lets text fail at the
/// fragment where it becomes invalid rather than at the end of the message.
fn validate_utf8_prefix(data: &[u8], from: usize) -> Result<usize, FrameError> {
    match simdutf8::compat::from_utf8(&data[from..]) {
        Ok(_) => Ok(data.len()),
        Err(e) if e.error_len().is_none() => Ok(from + e.valid_up_to()),
        Err(_) => Err(FrameError::InvalidUtf8),
    }
}

/// Bytes reserved for a growing message: doubling for amortised appends, but never
/// past `max_message`, so a message at the limit holds at most the limit.
fn reserve_bounded(data: &mut Vec<u8>, additional: usize, max_message: usize) {
    let needed = data.len() + additional;
    if needed > data.capacity() {
        let target = needed.saturating_mul(2).min(max_message).max(needed);
        data.reserve_exact(target - data.len());
    }
}

/// A fragmented message being reassembled. Boxed so that an idle assembler, which is
/// what almost every connection has almost all the time, costs one null pointer.
struct Partial {
    binary: bool,
    /// Compressed (RSV1 on its first frame): UTF-8 is checked once inflated.
    compressed: bool,
    data: Vec<u8>,
    /// For text: `data[..utf8_checked]` is valid UTF-8 ending on a char boundary, and
    /// what follows is at most 3 bytes of a code point still waiting for its end.
    utf8_checked: usize,
    fragments: usize,
}

/// Reassembles fragmented data messages and validates text as it arrives.
pub struct MessageAssembler {
    partial: Option<Box<Partial>>,
}

impl fmt::Debug for MessageAssembler {
    // Never dump a half-received message (it may be megabytes of user data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.partial {
            None => f.write_str("MessageAssembler(idle)"),
            Some(p) => f
                .debug_struct("MessageAssembler")
                .field("binary", &p.binary)
                .field("bytes", &p.data.len())
                .field("fragments", &p.fragments)
                .finish(),
        }
    }
}

impl Default for MessageAssembler {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A complete data message. Borrowed when it was a single unfragmented frame,
    /// owned when it had to be reassembled.
    Message {
        binary: bool,
        payload: Cow<'a, [u8]>,
    },
    /// A complete compressed data message (permessage-deflate), not yet
    /// inflated: text is validated after inflating.
    Compressed {
        binary: bool,
        payload: Cow<'a, [u8]>,
    },
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    Close {
        code: Option<u16>,
        reason: &'a str,
    },
}

impl MessageAssembler {
    pub const fn new() -> Self {
        MessageAssembler { partial: None }
    }

    /// True when no fragmented message is in progress (and nothing is allocated).
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Feeds one complete frame whose payload is already unmasked. `Ok(None)` means
    /// the frame was a non-final fragment. Control frames between fragments are
    /// returned at once and leave the message in progress untouched. After an error
    /// the message in progress is dropped: the caller is about to close anyway, and
    /// its memory should not outlive the close handshake.
    pub fn push<'a>(
        &mut self,
        header: &FrameHeader,
        payload: &'a [u8],
        max_message: usize,
    ) -> Result<Option<Incoming<'a>>, FrameError> {
        debug_assert_eq!(payload.len() as u64, header.payload_len);
        let result = self.push_frame(header, payload, max_message);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn push_frame<'a>(
        &mut self,
        header: &FrameHeader,
        payload: &'a [u8],
        max_message: usize,
    ) -> Result<Option<Incoming<'a>>, FrameError> {
        if header.opcode.is_control() {
            // decode_header already enforces this; repeated because headers can be
            // built by hand and the assembler must not trust its caller for safety.
            if !header.fin || payload.len() > MAX_CONTROL_PAYLOAD {
                return Err(FrameError::Protocol("invalid control frame"));
            }
        }
        match header.opcode {
            OpCode::Ping => Ok(Some(Incoming::Ping(payload))),
            OpCode::Pong => Ok(Some(Incoming::Pong(payload))),
            OpCode::Close => {
                let (code, reason) = parse_close_payload(payload)?;
                Ok(Some(Incoming::Close { code, reason }))
            }
            OpCode::Text | OpCode::Binary => {
                if self.partial.is_some() {
                    return Err(FrameError::Protocol("new data frame while a fragmented message is in progress"));
                }
                if payload.len() > max_message {
                    return Err(FrameError::TooLarge);
                }
                let binary = header.opcode == OpCode::Binary;
                let compressed = header.rsv1;
                if header.fin {
                    if compressed {
                        return Ok(Some(Incoming::Compressed { binary, payload: Cow::Borrowed(payload) }));
                    }
                    if !binary {
                        simdutf8::basic::from_utf8(payload).map_err(|_| FrameError::InvalidUtf8)?;
                    }
                    return Ok(Some(Incoming::Message { binary, payload: Cow::Borrowed(payload) }));
                }
                let utf8_checked = if binary || compressed { 0 } else { validate_utf8_prefix(payload, 0)? };
                let mut data = Vec::new();
                reserve_bounded(&mut data, payload.len(), max_message);
                data.extend_from_slice(payload);
                self.partial = Some(Box::new(Partial { binary, compressed, data, utf8_checked, fragments: 1 }));
                Ok(None)
            }
            OpCode::Continuation => {
                // Taken out for the duration: on any error below it is simply dropped.
                let Some(mut partial) = self.partial.take() else {
                    return Err(FrameError::Protocol("continuation frame with no message in progress"));
                };
                partial.fragments += 1;
                if partial.fragments > max_fragments(max_message) {
                    return Err(FrameError::Policy("too many fragments in one message"));
                }
                if payload.len() > max_message.saturating_sub(partial.data.len()) {
                    return Err(FrameError::TooLarge);
                }
                reserve_bounded(&mut partial.data, payload.len(), max_message);
                partial.data.extend_from_slice(payload);
                let check_utf8 = !partial.binary && !partial.compressed;
                if check_utf8 {
                    partial.utf8_checked = validate_utf8_prefix(&partial.data, partial.utf8_checked)?;
                }
                if !header.fin {
                    self.partial = Some(partial);
                    return Ok(None);
                }
                if check_utf8 && partial.utf8_checked != partial.data.len() {
                    // The message ended inside a code point.
                    return Err(FrameError::InvalidUtf8);
                }
                let Partial { binary, compressed, data, .. } = *partial;
                if compressed {
                    return Ok(Some(Incoming::Compressed { binary, payload: Cow::Owned(data) }));
                }
                Ok(Some(Incoming::Message { binary, payload: Cow::Owned(data) }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: u64 = u64::MAX >> 1;
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 14];
        let n = encode_header_masked(opcode, fin, payload.len(), MASK, &mut header);
        let mut frame = header[..n].to_vec();
        let start = frame.len();
        frame.extend_from_slice(payload);
        apply_mask(&mut frame[start..], MASK, 0);
        frame
    }

    #[test]
    fn rsv1_only_on_first_data_frames_of_a_deflate_connection() {
        let ok = decode_header_ext(&[0xC1, 0x80, 0, 0, 0, 0], true, NO_LIMIT, true).unwrap().unwrap();
        assert!(ok.rsv1 && ok.opcode == OpCode::Text);
        assert!(decode_header_ext(&[0x42, 0x80, 0, 0, 0, 0], true, NO_LIMIT, true).unwrap().unwrap().rsv1);
        for b0 in [0xC0u8, 0xC8, 0xC9, 0xCA] {
            assert!(
                matches!(decode_header_ext(&[b0, 0x80], true, NO_LIMIT, true), Err(FrameError::Protocol(_))),
                "{b0:#x}"
            );
        }
        assert!(matches!(decode_header_ext(&[0xC1, 0x80], true, NO_LIMIT, false), Err(FrameError::Protocol(_))));
        for rsv in [0x20u8, 0x10] {
            assert!(matches!(
                decode_header_ext(&[0x81 | rsv, 0x80], true, NO_LIMIT, true),
                Err(FrameError::Protocol(_))
            ));
        }
        let f = encode_compressed_frame(OpCode::Binary, b"abc");
        assert_eq!(&f[..], &[0xC2, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn a_compressed_message_is_handed_on_whole_and_unvalidated() {
        let mut asm = MessageAssembler::new();
        let first = FrameHeader { rsv1: true, ..hdr(OpCode::Text, false, 2) };
        assert_eq!(asm.push(&first, &[0xff, 0xfe], 100), Ok(None));
        let last = hdr(OpCode::Continuation, true, 1);
        let msg = asm.push(&last, &[0x00], 100).unwrap();
        assert_eq!(msg, Some(Incoming::Compressed { binary: false, payload: Cow::Owned(vec![0xff, 0xfe, 0x00]) }));
    }

    fn hdr(opcode: OpCode, fin: bool, len: usize) -> FrameHeader {
        FrameHeader { fin, rsv1: false, opcode, mask: None, payload_len: len as u64, header_len: 2 }
    }

    fn naive_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= mask[(offset + i) % 4];
        }
    }

    #[test]
    fn opcode_round_trip_and_control_classification() {
        let all = [OpCode::Continuation, OpCode::Text, OpCode::Binary, OpCode::Close, OpCode::Ping, OpCode::Pong];
        for op in all {
            assert_eq!(OpCode::from_u8(op.as_u8()), Some(op));
            assert_eq!(op.is_control(), op.as_u8() >= 8);
        }
        for reserved in (3..=7).chain(11..=15) {
            assert_eq!(OpCode::from_u8(reserved), None);
        }
    }

    #[test]
    fn header_round_trip_in_every_length_form() {
        // (payload length, unmasked header length)
        let cases = [
            (0, 2),
            (1, 2),
            (125, 2),
            (126, 4),
            (127, 4),
            (65_535, 4),
            (65_536, 10),
            (1 << 20, 10),
            (u32::MAX as usize + 7, 10),
        ];
        for (len, expected) in cases {
            for fin in [true, false] {
                let mut out = [0u8; 14];
                let n = encode_header(OpCode::Binary, fin, len, &mut out);
                assert_eq!(n, expected, "unmasked header length for {len}");
                let h = decode_header(&out[..n], false, NO_LIMIT).unwrap().unwrap();
                assert_eq!(
                    h,
                    FrameHeader {
                        fin,
                        rsv1: false,
                        opcode: OpCode::Binary,
                        mask: None,
                        payload_len: len as u64,
                        header_len: n
                    }
                );

                let n = encode_header_masked(OpCode::Text, fin, len, MASK, &mut out);
                assert_eq!(n, expected + 4, "masked header length for {len}");
                let h = decode_header(&out[..n], true, NO_LIMIT).unwrap().unwrap();
                assert_eq!(h.mask, Some(MASK));
                assert_eq!(h.payload_len, len as u64);
                assert_eq!(h.header_len, n);
                assert_eq!(h.opcode, OpCode::Text);
                assert_eq!(h.fin, fin);
            }
        }
    }

    #[test]
    fn known_wire_bytes() {
        // RFC 6455 5.7: unmasked "Hello" and a masked "Hello".
        assert_eq!(&encode_frame(OpCode::Text, b"Hello")[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let h = decode_header(&wire, true, NO_LIMIT).unwrap().unwrap();
        assert_eq!(h.header_len, 6);
        let mut payload = wire[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        assert_eq!(masked_frame(OpCode::Text, true, b"Hello"), wire);
    }

    #[test]
    fn every_truncated_prefix_needs_more_bytes() {
        for len in [5usize, 300, 70_000] {
            let frame = masked_frame(OpCode::Binary, true, &vec![7u8; len]);
            let h = decode_header(&frame, true, NO_LIMIT).unwrap().unwrap();
            for cut in 0..h.header_len {
                assert_eq!(decode_header(&frame[..cut], true, NO_LIMIT), Ok(None), "len {len} cut {cut}");
            }
            // From the end of the header on, the header decodes whatever payload is there.
            for cut in [h.header_len, h.header_len + 1, frame.len()] {
                assert_eq!(decode_header(&frame[..cut], true, NO_LIMIT), Ok(Some(h)));
            }
        }
    }

    #[test]
    fn reserved_bits_are_protocol_errors() {
        for rsv in [0x40u8, 0x20, 0x10, 0x70] {
            let err = decode_header(&[0x81 | rsv, 0x80], true, NO_LIMIT).unwrap_err();
            assert!(matches!(err, FrameError::Protocol(_)), "rsv {rsv:#x}");
            assert_eq!(err.close_code(), 1002);
        }
    }

    #[test]
    fn reserved_opcodes_are_protocol_errors() {
        for op in (3u8..=7).chain(11..=15) {
            let err = decode_header(&[0x80 | op, 0x80, 0, 0, 0, 0], true, NO_LIMIT).unwrap_err();
            assert_eq!(err, FrameError::Protocol("reserved opcode"), "opcode {op}");
        }
    }

    #[test]
    fn control_frames_must_be_final_and_short() {
        for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
            let b0 = op.as_u8();
            assert!(matches!(decode_header(&[b0, 0x80], true, NO_LIMIT), Err(FrameError::Protocol(_))));
            // 126 and 127 are refused from the first two bytes, without waiting for
            // the extended length to arrive.
            for len7 in [126u8, 127] {
                assert!(matches!(
                    decode_header(&[0x80 | b0, 0x80 | len7], true, NO_LIMIT),
                    Err(FrameError::Protocol(_))
                ));
            }
            let ok = decode_header(&[0x80 | b0, 0x80 | 125, 1, 2, 3, 4], true, NO_LIMIT).unwrap();
            assert_eq!(ok.unwrap().payload_len, 125);
        }
    }

    #[test]
    fn length_with_top_bit_set_is_refused_not_waited_for() {
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
        // No mask and no payload: the error must come from the length alone.
        assert!(matches!(decode_header(&frame, true, u64::MAX), Err(FrameError::Protocol(_))));
        frame[2] = 0xFF;
        assert!(matches!(decode_header(&frame, true, u64::MAX), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn unmasked_client_frames_are_refused_when_masking_is_required() {
        let frame = encode_frame(OpCode::Text, b"hi");
        assert_eq!(decode_header(&frame, true, NO_LIMIT), Err(FrameError::Protocol("unmasked client frame")));
        // Even from the first two bytes of a long frame.
        assert!(decode_header(&[0x82, 127], true, NO_LIMIT).is_err());
        let h = decode_header(&frame, false, NO_LIMIT).unwrap().unwrap();
        assert_eq!(h.mask, None);
        assert_eq!(h.header_len, 2);
    }

    #[test]
    fn declared_length_over_the_limit_is_too_large_before_any_payload() {
        let mut out = [0u8; 14];
        for len in [200usize, 70_000, 1 << 40] {
            let n = encode_header_masked(OpCode::Binary, true, len, MASK, &mut out);
            // Only the length bytes are needed: cut the mask key off too.
            let length_end = n - 4;
            let err = decode_header(&out[..length_end], true, len as u64 - 1).unwrap_err();
            assert_eq!(err, FrameError::TooLarge);
            assert_eq!(err.close_code(), 1009);
            // Exactly at the limit is fine.
            assert!(decode_header(&out[..n], true, len as u64).unwrap().is_some());
        }
    }

    #[test]
    fn masking_in_chunks_matches_whole_buffer() {
        let data: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(31)).collect();
        for len in 0..data.len() {
            let mut whole = data[..len].to_vec();
            apply_mask(&mut whole, MASK, 0);
            let mut reference = data[..len].to_vec();
            naive_mask(&mut reference, MASK, 0);
            assert_eq!(whole, reference, "len {len}");

            for split in 0..=len {
                let mut chunked = data[..len].to_vec();
                let (a, b) = chunked.split_at_mut(split);
                apply_mask(a, MASK, 0);
                apply_mask(b, MASK, split);
                assert_eq!(chunked, whole, "len {len} split {split}");
            }
        }
        // Three uneven chunks with offsets not multiple of 4 or 8.
        let mut chunked = data.clone();
        let (a, rest) = chunked.split_at_mut(3);
        let (b, c) = rest.split_at_mut(29);
        apply_mask(a, MASK, 0);
        apply_mask(b, MASK, 3);
        apply_mask(c, MASK, 32);
        let mut whole = data.clone();
        apply_mask(&mut whole, MASK, 0);
        assert_eq!(chunked, whole);
        // Masking is its own inverse.
        apply_mask(&mut whole, MASK, 0);
        assert_eq!(whole, data);
    }

    #[test]
    fn encode_frame_is_header_then_payload() {
        for len in [0usize, 125, 126, 65_536] {
            let payload = vec![0xABu8; len];
            let frame = encode_frame(OpCode::Binary, &payload);
            let h = decode_header(&frame, false, NO_LIMIT).unwrap().unwrap();
            assert!(h.fin);
            assert_eq!(h.opcode, OpCode::Binary);
            assert_eq!(h.payload_len, len as u64);
            assert_eq!(frame.len(), h.header_len + len);
            assert_eq!(&frame[h.header_len..], &payload[..]);
        }
    }

    #[test]
    fn close_payload_truncates_on_char_boundary() {
        assert_eq!(close_payload(1000, ""), vec![0x03, 0xE8]);
        assert_eq!(close_payload(4001, "bye"), b"\x0f\xa1bye".to_vec());

        let long = "é".repeat(100); // 200 bytes, 2 bytes per char
        let p = close_payload(1001, &long);
        assert_eq!(p.len(), 2 + 122, "123 would split a char");
        assert_eq!(parse_close_payload(&p), Ok((Some(1001), &long[..122])));

        let ascii = "x".repeat(500);
        let p = close_payload(1000, &ascii);
        assert_eq!(p.len(), 125);
        let h = decode_header(&encode_frame(OpCode::Close, &p), false, NO_LIMIT).unwrap();
        assert!(h.is_some(), "a truncated close frame is a valid control frame");
    }

    #[test]
    fn close_payload_rules() {
        assert_eq!(parse_close_payload(&[]), Ok((None, "")));
        assert!(matches!(parse_close_payload(&[0x03]), Err(FrameError::Protocol(_))));

        // Autobahn 7.9.x and SECURITY.md section 7.
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(
                matches!(parse_close_payload(&code.to_be_bytes()), Err(FrameError::Protocol(_))),
                "code {code} must be refused"
            );
        }
        // Autobahn 7.7.x plus the later-registered 1012-1014.
        let valid = (1000u16..=1003).chain(1007..=1014).chain([3000, 3999, 4000, 4999]);
        for code in valid {
            assert_eq!(parse_close_payload(&code.to_be_bytes()), Ok((Some(code), "")));
        }

        let mut with_reason = 1000u16.to_be_bytes().to_vec();
        with_reason.extend_from_slice("κόσμε".as_bytes());
        assert_eq!(parse_close_payload(&with_reason), Ok((Some(1000), "κόσμε")));

        let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
        bad_utf8
            .extend_from_slice(&[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]);
        let err = parse_close_payload(&bad_utf8).unwrap_err();
        assert_eq!(err, FrameError::InvalidUtf8);
        assert_eq!(err.close_code(), 1007);

        let mut too_long = 1000u16.to_be_bytes().to_vec();
        too_long.extend_from_slice(&[b'a'; 124]);
        assert!(matches!(parse_close_payload(&too_long), Err(FrameError::Protocol(_))));
        too_long.pop();
        assert!(parse_close_payload(&too_long).is_ok());
    }

    #[test]
    fn error_close_codes() {
        assert_eq!(FrameError::Protocol("x").close_code(), 1002);
        assert_eq!(FrameError::InvalidUtf8.close_code(), 1007);
        assert_eq!(FrameError::Policy("x").close_code(), 1008);
        assert_eq!(FrameError::TooLarge.close_code(), 1009);
    }

    #[test]
    fn idle_assembler_is_small_and_allocation_free() {
        assert!(std::mem::size_of::<MessageAssembler>() <= 16);
        // Usable in a const context: no allocation possible.
        const IDLE: MessageAssembler = MessageAssembler::new();
        assert!(IDLE.is_idle());
        assert!(MessageAssembler::default().is_idle());
    }

    #[test]
    fn unfragmented_messages_are_borrowed() {
        let mut asm = MessageAssembler::new();
        let text = b"hello";
        match asm.push(&hdr(OpCode::Text, true, 5), text, 100).unwrap() {
            Some(Incoming::Message { binary: false, payload: Cow::Borrowed(p) }) => assert_eq!(p, text),
            other => panic!("unexpected {other:?}"),
        }
        let bin = [0xFFu8, 0xFE];
        match asm.push(&hdr(OpCode::Binary, true, 2), &bin, 100).unwrap() {
            Some(Incoming::Message { binary: true, payload: Cow::Borrowed(p) }) => assert_eq!(p, bin),
            other => panic!("unexpected {other:?}"),
        }
        assert!(asm.is_idle());
    }

    #[test]
    fn unfragmented_text_is_validated() {
        let mut asm = MessageAssembler::new();
        let bad = [b'a', 0xC3];
        assert_eq!(asm.push(&hdr(OpCode::Text, true, 2), &bad, 100), Err(FrameError::InvalidUtf8));
        assert!(asm.push(&hdr(OpCode::Binary, true, 2), &bad, 100).unwrap().is_some());
        assert_eq!(
            asm.push(&hdr(OpCode::Text, true, 3), &[0xED, 0xA0, 0x80], 100),
            Err(FrameError::InvalidUtf8),
            "surrogates are not UTF-8"
        );
    }

    #[test]
    fn fragments_are_reassembled() {
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 3), b"Hel", 100), Ok(None));
        assert!(!asm.is_idle());
        assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 0), b"", 100), Ok(None));
        assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 1), b"l", 100), Ok(None));
        let msg = asm.push(&hdr(OpCode::Continuation, true, 1), b"o", 100).unwrap();
        match msg {
            Some(Incoming::Message { binary: false, payload: Cow::Owned(p) }) => assert_eq!(p, b"Hello"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(asm.is_idle());

        assert_eq!(asm.push(&hdr(OpCode::Binary, false, 2), &[0, 1], 100), Ok(None));
        let msg = asm.push(&hdr(OpCode::Continuation, true, 2), &[2, 3], 100).unwrap();
        assert_eq!(msg, Some(Incoming::Message { binary: true, payload: Cow::Owned(vec![0, 1, 2, 3]) }));
    }

    #[test]
    fn control_frames_between_fragments_come_out_at_once() {
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 2), b"ab", 100), Ok(None));
        assert_eq!(asm.push(&hdr(OpCode::Ping, true, 4), b"ping", 100), Ok(Some(Incoming::Ping(b"ping"))));
        assert_eq!(asm.push(&hdr(OpCode::Pong, true, 0), b"", 100), Ok(Some(Incoming::Pong(b""))));
        assert!(!asm.is_idle(), "message in progress survives control frames");
        let msg = asm.push(&hdr(OpCode::Continuation, true, 2), b"cd", 100).unwrap();
        assert_eq!(msg, Some(Incoming::Message { binary: false, payload: Cow::Owned(b"abcd".to_vec()) }));
    }

    #[test]
    fn close_frames_are_parsed() {
        let mut asm = MessageAssembler::new();
        assert_eq!(
            asm.push(&hdr(OpCode::Close, true, 0), b"", 100),
            Ok(Some(Incoming::Close { code: None, reason: "" }))
        );
        let p = close_payload(1001, "going away");
        assert_eq!(
            asm.push(&hdr(OpCode::Close, true, p.len()), &p, 100),
            Ok(Some(Incoming::Close { code: Some(1001), reason: "going away" }))
        );
        let bad = 1005u16.to_be_bytes();
        assert!(matches!(asm.push(&hdr(OpCode::Close, true, 2), &bad, 100), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn hand_built_invalid_control_headers_are_refused() {
        let mut asm = MessageAssembler::new();
        assert!(matches!(asm.push(&hdr(OpCode::Ping, false, 1), b"x", 100), Err(FrameError::Protocol(_))));
        let big = [0u8; 126];
        assert!(matches!(asm.push(&hdr(OpCode::Pong, true, 126), &big, 1000), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn continuation_without_start_is_a_protocol_error() {
        let mut asm = MessageAssembler::new();
        for fin in [true, false] {
            assert_eq!(
                asm.push(&hdr(OpCode::Continuation, fin, 1), b"x", 100),
                Err(FrameError::Protocol("continuation frame with no message in progress"))
            );
        }
    }

    #[test]
    fn new_data_frame_mid_message_is_a_protocol_error() {
        for op in [OpCode::Text, OpCode::Binary] {
            for fin in [true, false] {
                let mut asm = MessageAssembler::new();
                asm.push(&hdr(OpCode::Binary, false, 1), b"a", 100).unwrap();
                let err = asm.push(&hdr(op, fin, 1), b"b", 100).unwrap_err();
                assert!(matches!(err, FrameError::Protocol(_)));
                assert!(asm.is_idle(), "state is dropped after an error");
            }
        }
    }

    #[test]
    fn code_point_split_across_fragments_is_fine() {
        // U+20AC EURO SIGN (E2 82 AC) and U+1F600 (F0 9F 98 80) split byte by byte.
        let text = "a€😀b".as_bytes();
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 1), &text[..1], 100), Ok(None));
        for i in 1..text.len() - 1 {
            assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 1), &text[i..i + 1], 100), Ok(None), "byte {i}");
        }
        let last = text.len() - 1;
        let msg = asm.push(&hdr(OpCode::Continuation, true, 1), &text[last..], 100).unwrap();
        assert_eq!(msg, Some(Incoming::Message { binary: false, payload: Cow::Owned(text.to_vec()) }));
    }

    #[test]
    fn invalid_utf8_fails_at_the_fragment_where_it_becomes_invalid() {
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 3), b"ok ", 100), Ok(None));
        // 0xC0 can never start a valid sequence.
        assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 2), &[b'x', 0xC0], 100), Err(FrameError::InvalidUtf8));
        assert!(asm.is_idle());

        // A lead byte at the end of one fragment, a non-continuation byte in the next.
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 2), &[b'a', 0xE2], 100), Ok(None));
        assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 1), b"b", 100), Err(FrameError::InvalidUtf8));

        // Invalid in the very first fragment.
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 2), &[0xFF, b'a'], 100), Err(FrameError::InvalidUtf8));
    }

    #[test]
    fn text_ending_inside_a_code_point_is_invalid() {
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Text, false, 1), b"a", 100), Ok(None));
        assert_eq!(asm.push(&hdr(OpCode::Continuation, true, 2), &[0xF0, 0x9F], 100), Err(FrameError::InvalidUtf8));
    }

    #[test]
    fn binary_fragments_are_not_utf8_checked() {
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Binary, false, 1), &[0xF0], 100), Ok(None));
        assert!(asm.push(&hdr(OpCode::Continuation, true, 1), &[0xFF], 100).unwrap().is_some());
    }

    #[test]
    fn fragment_sum_over_the_limit_is_too_large() {
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Binary, false, 6), &[0; 6], 10), Ok(None));
        assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 4), &[0; 4], 10), Ok(None));
        assert_eq!(asm.push(&hdr(OpCode::Continuation, true, 1), &[0], 10), Err(FrameError::TooLarge));
        assert!(asm.is_idle());

        // A single frame over the limit, and one exactly at it.
        assert_eq!(asm.push(&hdr(OpCode::Text, true, 11), &[b'a'; 11], 10), Err(FrameError::TooLarge));
        assert!(asm.push(&hdr(OpCode::Text, true, 10), &[b'a'; 10], 10).unwrap().is_some());

        // A reassembled message exactly at the limit.
        asm.push(&hdr(OpCode::Binary, false, 5), &[1; 5], 10).unwrap();
        let msg = asm.push(&hdr(OpCode::Continuation, true, 5), &[2; 5], 10).unwrap();
        match msg {
            Some(Incoming::Message { payload, .. }) => assert_eq!(payload.len(), 10),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reassembly_buffer_never_exceeds_the_limit() {
        let mut asm = MessageAssembler::new();
        asm.push(&hdr(OpCode::Binary, false, 600), &[0; 600], 1000).unwrap();
        asm.push(&hdr(OpCode::Continuation, false, 300), &[0; 300], 1000).unwrap();
        let cap = asm.partial.as_ref().unwrap().data.capacity();
        assert!(cap <= 1000, "capacity {cap}");
    }

    #[test]
    fn fragment_flood_is_a_policy_violation() {
        let max = 1024;
        let limit = max_fragments(max);
        let mut asm = MessageAssembler::new();
        assert_eq!(asm.push(&hdr(OpCode::Binary, false, 0), b"", max), Ok(None));
        for _ in 1..limit {
            assert_eq!(asm.push(&hdr(OpCode::Continuation, false, 0), b"", max), Ok(None));
        }
        let err = asm.push(&hdr(OpCode::Continuation, true, 0), b"", max).unwrap_err();
        assert!(matches!(err, FrameError::Policy(_)));
        assert_eq!(err.close_code(), 1008);
        assert!(asm.is_idle());

        // Exactly max_fragments fragments is allowed.
        let mut asm = MessageAssembler::new();
        asm.push(&hdr(OpCode::Text, false, 0), b"", max).unwrap();
        for _ in 2..limit {
            asm.push(&hdr(OpCode::Continuation, false, 0), b"", max).unwrap();
        }
        assert!(asm.push(&hdr(OpCode::Continuation, true, 0), b"", max).unwrap().is_some());
    }

    #[test]
    fn autobahn_9_fragment_counts_fit_a_16_mib_limit() {
        let max = 16 << 20;
        assert!(max_fragments(max) >= (4 << 20) / 64);
        // And 1 MiB in 64-byte fragments fits a 4 MiB limit too.
        assert!(max_fragments(4 << 20) >= (1 << 20) / 64);
    }

    #[test]
    fn decode_then_assemble_a_masked_stream() {
        // Client-side fragments with an interleaved ping, decoded and assembled the
        // way the connection layer will.
        let mut wire = masked_frame(OpCode::Text, false, "Grüß ".as_bytes());
        wire.extend(masked_frame(OpCode::Ping, true, b"p"));
        wire.extend(masked_frame(OpCode::Continuation, true, "Gott".as_bytes()));

        let mut asm = MessageAssembler::new();
        let mut rest = &mut wire[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let h = decode_header(rest, true, 1 << 20).unwrap().unwrap();
            let (frame, tail) = rest.split_at_mut(h.header_len + h.payload_len as usize);
            let payload = &mut frame[h.header_len..];
            apply_mask(payload, h.mask.unwrap(), 0);
            match asm.push(&h, payload, 1 << 20).unwrap() {
                Some(Incoming::Message { payload, .. }) => out.push(payload.into_owned()),
                Some(Incoming::Ping(p)) => out.push(p.to_vec()),
                Some(other) => panic!("unexpected {other:?}"),
                None => {}
            }
            rest = tail;
        }
        assert_eq!(out, vec![b"p".to_vec(), "Grüß Gott".as_bytes().to_vec()]);
    }

    #[test]
    fn next_frame_unmasks_complete_frames_only() {
        let mask = [9, 8, 7, 6];
        let mut hdr = [0u8; 14];
        let n = encode_header_masked(OpCode::Text, true, 3, mask, &mut hdr);
        let mut wire = hdr[..n].to_vec();
        let mut body = b"abc".to_vec();
        apply_mask(&mut body, mask, 0);
        wire.extend_from_slice(&body);
        let full = wire.len();
        assert_eq!(next_frame(&mut wire[..full - 1], true, 100), Ok(None));
        let (h, total) = next_frame(&mut wire, true, 100).unwrap().unwrap();
        assert_eq!((h.opcode, total), (OpCode::Text, full));
        assert_eq!(&wire[h.header_len..total], b"abc");
    }
}
