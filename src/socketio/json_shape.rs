//! The JSON shape scanner of the Socket.IO codec (packet.rs): one pass,
//! no recursion, no DOM. It checks that a payload is exactly one RFC 8259
//! value and reports its structure to a sink, which is how the codec checks
//! binary placeholders; the payload itself is parsed once, in JS. Pure, like
//! the codec, and reached by the same unit tests and fuzz target.

/// Why a payload does not have the shape asked for (the codec maps each to
/// its `ParseError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ShapeError {
    InvalidJson { offset: usize },
    InvalidPlaceholder(&'static str),
    PlaceholderOutOfRange { num: u64, attachments: u32 },
    DuplicatePlaceholder(u32),
    UnreferencedAttachment(u32),
}

/// Whether `text` is exactly one JSON value (trailing whitespace allowed).
pub(super) fn check(text: &str) -> Result<(), ShapeError> {
    scan(text, &mut NoSink)
}

/// Validates the placeholders of a BINARY_EVENT / BINARY_ACK payload against
/// the number of attachments its header announced (CVE-2022-2421).
///
/// A placeholder is an object whose `_placeholder` member is `true` (keys
/// compared after JSON unescaping, as `JSON.parse` sees them). It must be
/// exactly `{"_placeholder":true,"num":<k>}` in any key order, with `k` a plain
/// integer below `attachments`, and every attachment must be referenced
/// exactly once. Every encoder we know (socket.io-parser `deconstructPacket`,
/// python-socketio) numbers each binary once, in order; anything looser lets
/// a peer splice in `undefined` or a function (`"num":"splice"`), or announce
/// attachments nobody reads. An object with `_placeholder` twice is refused:
/// `JSON.parse` keeps the last one, and guessing along with it is not worth it.
///
/// The payload is returned unchanged to JS, which replaces each placeholder
/// object with its Buffer after `JSON.parse`; after this check it can trust
/// `num` without re-validating.
pub(super) fn validate_placeholders(data: &str, attachments: u32) -> Result<(), ShapeError> {
    let mut sink = Placeholders::new(attachments);
    scan(data, &mut sink)?;
    sink.finish()
}

/// Scalars the scanner reports to a [`Sink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    String,
    Number,
    True,
    False,
    Null,
}

/// What a check needs to see of a payload beyond well-formedness. Default
/// methods do nothing, so the plain validation pass compiles to the bare
/// scanner.
trait Sink {
    /// A container opens (`object` false for an array).
    fn open(&mut self, _object: bool) {}
    /// An object key, as the raw text between its quotes.
    fn key(&mut self, _raw: &str) {}
    /// A scalar value; strings as the raw text between the quotes.
    fn scalar(&mut self, _kind: Scalar, _raw: &str) {}
    /// A container closes.
    fn close(&mut self, _object: bool) -> Result<(), ShapeError> {
        Ok(())
    }
}

struct NoSink;
impl Sink for NoSink {}

/// Open containers, one bit each (set = object). The first 64 levels live in
/// a word so ordinary payloads never allocate; deeper ones spill to a Vec
/// whose size is bounded by the input (no recursion, so no stack overflow).
#[derive(Default)]
struct Nesting {
    depth: usize,
    inline: u64,
    spill: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            let bit = 1u64 << self.depth;
            if object {
                self.inline |= bit;
            } else {
                self.inline &= !bit;
            }
        } else {
            self.spill.push(object);
        }
        self.depth += 1;
    }

    fn top(&self) -> Option<bool> {
        let d = self.depth.checked_sub(1)?;
        if d < 64 {
            Some(self.inline >> d & 1 == 1)
        } else {
            self.spill.last().copied()
        }
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.spill.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Checks that `text` is exactly one RFC 8259 JSON value, optionally followed
/// by whitespace (leading whitespace is refused by the callers' shape check).
/// Single pass, iterative, linear time. Two loops instead of a per-token state
/// machine: one reads a value, the other the separators after it, which is
/// what keeps the common payload close to serde_json's `IgnoredAny` speed.
fn scan<S: Sink>(text: &str, sink: &mut S) -> Result<(), ShapeError> {
    let b = text.as_bytes();
    let err = |offset| ShapeError::InvalidJson { offset };
    let mut nesting = Nesting::default();
    let mut i = 0;
    'value: loop {
        // A value starts at `i` (after optional whitespace).
        i = skip_ws(b, i);
        let Some(&c) = b.get(i) else { return Err(err(i)) };
        match c {
            b'{' => {
                sink.open(true);
                nesting.push(true);
                i = skip_ws(b, i + 1);
                if b.get(i) != Some(&b'}') {
                    i = scan_key(text, i, sink)?;
                    continue 'value;
                }
                nesting.pop();
                sink.close(true)?;
                i += 1;
            }
            b'[' => {
                sink.open(false);
                nesting.push(false);
                i = skip_ws(b, i + 1);
                if b.get(i) != Some(&b']') {
                    continue 'value;
                }
                nesting.pop();
                sink.close(false)?;
                i += 1;
            }
            b'"' => {
                let end = scan_string(b, i)?;
                sink.scalar(Scalar::String, &text[i + 1..end - 1]);
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let end = scan_number(b, i)?;
                sink.scalar(Scalar::Number, &text[i..end]);
                i = end;
            }
            b't' | b'f' | b'n' => {
                let (word, kind): (&[u8], _) = match c {
                    b't' => (b"true", Scalar::True),
                    b'f' => (b"false", Scalar::False),
                    _ => (b"null", Scalar::Null),
                };
                if !b[i..].starts_with(word) {
                    return Err(err(i));
                }
                sink.scalar(kind, "");
                i += word.len();
            }
            _ => return Err(err(i)),
        }
        // A value ended at `i`: a comma, closing brackets, or (at top level) the end.
        loop {
            i = skip_ws(b, i);
            let Some(object) = nesting.top() else {
                return if i == b.len() { Ok(()) } else { Err(err(i)) };
            };
            match (b.get(i), object) {
                (Some(b','), false) => {
                    i += 1;
                    continue 'value;
                }
                (Some(b','), true) => {
                    i = scan_key(text, skip_ws(b, i + 1), sink)?;
                    continue 'value;
                }
                (Some(b']'), false) | (Some(b'}'), true) => {
                    nesting.pop();
                    sink.close(object)?;
                    i += 1;
                }
                _ => return Err(err(i)),
            }
        }
    }
}

/// An object key and its colon at `i`; returns where the member's value starts.
fn scan_key<S: Sink>(text: &str, i: usize, sink: &mut S) -> Result<usize, ShapeError> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return Err(ShapeError::InvalidJson { offset: i });
    }
    let end = scan_string(b, i)?;
    sink.key(&text[i + 1..end - 1]);
    let colon = skip_ws(b, end);
    if b.get(colon) != Some(&b':') {
        return Err(ShapeError::InvalidJson { offset: colon });
    }
    Ok(colon + 1)
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` that ends a plain run inside a
/// JSON string: `"`, `\\`, or a control character (JSON forbids those raw).
/// Eight bytes per step (SWAR): string text is most of a typical payload, and
/// a byte-at-a-time loop made the scan twice as slow as serde_json's.
pub(super) fn string_run_end(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit set in the bytes of `x` below `n` (n <= 0x80). Bytes above the
    // first hit may be flagged falsely (borrows), so only the lowest one counts.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let stops = below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1) | below(x, 0x20);
        if stops != 0 {
            // Little-endian: the lowest flagged byte is the first stop in text order.
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b.get(i).is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20) {
        i += 1;
    }
    i
}

/// `b[start]` is `"`; returns the index just past the closing quote.
pub(super) fn scan_string(b: &[u8], start: usize) -> Result<usize, ShapeError> {
    let mut i = start + 1;
    loop {
        i = string_run_end(b, i);
        match b.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') if b.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => i += 6,
                _ => return Err(ShapeError::InvalidJson { offset: i }),
            },
            // Anything else that stopped the run is a raw control character (or the end).
            _ => return Err(ShapeError::InvalidJson { offset: i }),
        }
    }
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; returns the end index.
pub(super) fn scan_number(b: &[u8], start: usize) -> Result<usize, ShapeError> {
    let digits = |mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == from {
            Err(ShapeError::InvalidJson { offset: i })
        } else {
            Ok(i)
        }
    };
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i) {
        Some(b'0') => i + 1,
        _ => digits(i)?,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(i)?;
    }
    Ok(i)
}

/// Whether the JSON string contents `raw` (validated, between the quotes)
/// decode to `target`, so `"\u0063onnect"` matches `connect` as it does after
/// `JSON.parse`. A lone surrogate escape decodes to U+FFFD; every name
/// compared here is ASCII, so that cannot produce a false match.
pub(super) fn json_str_eq(raw: &str, target: &str) -> bool {
    if !raw.contains('\\') {
        return raw == target;
    }
    let mut want = target.chars();
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        let (decoded, len) = if c == '\\' { decode_escape(rest) } else { (c, c.len_utf8()) };
        if want.next() != Some(decoded) {
            return false;
        }
        rest = &rest[len..];
    }
    want.next().is_none()
}

/// Decodes the escape at the start of `s` (validated JSON), returning the
/// character and the number of bytes consumed.
fn decode_escape(s: &str) -> (char, usize) {
    let b = s.as_bytes();
    let hex = |at: usize| s.get(at..at + 4).and_then(|h| u32::from_str_radix(h, 16).ok());
    match b.get(1) {
        Some(b'b') => ('\u{8}', 2),
        Some(b'f') => ('\u{c}', 2),
        Some(b'n') => ('\n', 2),
        Some(b'r') => ('\r', 2),
        Some(b't') => ('\t', 2),
        Some(b'u') => {
            let Some(hi) = hex(2) else { return (char::REPLACEMENT_CHARACTER, s.len()) };
            if (0xD800..0xDC00).contains(&hi) && s.get(6..8) == Some("\\u") {
                if let Some(lo) = hex(8).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return (char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER), 12);
                }
            }
            (char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER), 6)
        }
        // '"', '\\' and '/' stand for themselves.
        Some(&c) if c.is_ascii() => (char::from(c), 2),
        // Not reachable for validated input; consume the rest rather than split a character.
        _ => (char::REPLACEMENT_CHARACTER, s.len()),
    }
}

/// Which member of an object a value belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Placeholder,
    Num,
    Other,
}

/// What has been seen of one open object.
#[derive(Clone, Copy)]
struct ObjectSeen {
    member: Member,
    placeholder_keys: u8,
    placeholder_true: bool,
    num_keys: u8,
    /// The `num` value when it is a plain non-negative integer (saturated).
    num: Option<u64>,
    other_keys: bool,
}

/// Sink for [`validate_placeholders`].
struct Placeholders {
    attachments: u32,
    used: Vec<bool>,
    /// One entry per open container; `None` for arrays.
    open: Vec<Option<ObjectSeen>>,
}

impl Placeholders {
    fn new(attachments: u32) -> Self {
        Self { attachments, used: vec![false; attachments as usize], open: Vec::new() }
    }

    /// Records a value for the current member of the enclosing object.
    fn value(&mut self, kind: Option<Scalar>, raw: &str) {
        let Some(Some(obj)) = self.open.last_mut() else { return };
        match obj.member {
            Member::Placeholder => obj.placeholder_true = kind == Some(Scalar::True),
            Member::Num => obj.num = if kind == Some(Scalar::Number) { plain_integer(raw) } else { None },
            Member::Other => {}
        }
    }

    fn finish(self) -> Result<(), ShapeError> {
        match self.used.iter().position(|&u| !u) {
            Some(num) => Err(ShapeError::UnreferencedAttachment(num as u32)),
            None => Ok(()),
        }
    }
}

impl Sink for Placeholders {
    fn open(&mut self, object: bool) {
        self.value(None, "");
        let seen = ObjectSeen {
            member: Member::Other,
            placeholder_keys: 0,
            placeholder_true: false,
            num_keys: 0,
            num: None,
            other_keys: false,
        };
        self.open.push(object.then_some(seen));
    }

    fn key(&mut self, raw: &str) {
        let Some(Some(obj)) = self.open.last_mut() else { return };
        obj.member = if json_str_eq(raw, "_placeholder") {
            obj.placeholder_keys = obj.placeholder_keys.saturating_add(1);
            Member::Placeholder
        } else if json_str_eq(raw, "num") {
            obj.num_keys = obj.num_keys.saturating_add(1);
            Member::Num
        } else {
            obj.other_keys = true;
            Member::Other
        };
    }

    fn scalar(&mut self, kind: Scalar, raw: &str) {
        self.value(Some(kind), raw);
    }

    fn close(&mut self, _object: bool) -> Result<(), ShapeError> {
        let Some(Some(obj)) = self.open.pop() else { return Ok(()) };
        if obj.placeholder_keys > 1 {
            return Err(ShapeError::InvalidPlaceholder("duplicate _placeholder key"));
        }
        if !(obj.placeholder_keys == 1 && obj.placeholder_true) {
            return Ok(());
        }
        if obj.other_keys {
            return Err(ShapeError::InvalidPlaceholder("keys other than _placeholder and num"));
        }
        if obj.num_keys != 1 {
            return Err(ShapeError::InvalidPlaceholder("needs exactly one num"));
        }
        let num = obj.num.ok_or(ShapeError::InvalidPlaceholder("num must be a non-negative integer"))?;
        if num >= u64::from(self.attachments) {
            return Err(ShapeError::PlaceholderOutOfRange { num, attachments: self.attachments });
        }
        let slot = &mut self.used[num as usize];
        if *slot {
            return Err(ShapeError::DuplicatePlaceholder(num as u32));
        }
        *slot = true;
        Ok(())
    }
}

/// `raw` as a u64 if it is written as a plain non-negative integer (no sign,
/// fraction or exponent: no encoder writes `1e0` or `0.0` for an index).
/// Saturates, so a huge index still compares out of range.
fn plain_integer(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(raw.bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::Nesting;

    #[test]
    fn nesting_spills_past_64_levels_and_gives_it_back() {
        let mut n = Nesting::default();
        let kind = |level: usize| level.is_multiple_of(3);
        for level in 0..130 {
            n.push(kind(level));
            assert_eq!(n.top(), Some(kind(level)));
        }
        assert_eq!(n.spill.len(), 130 - 64);
        for level in (0..130).rev() {
            assert_eq!(n.top(), Some(kind(level)));
            n.pop();
            assert_eq!(n.spill.len(), level.saturating_sub(64));
        }
        assert_eq!(n.top(), None);
    }
}
