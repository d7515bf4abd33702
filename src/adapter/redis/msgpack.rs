//! MessagePack as notepack.io (the parser of `@socket.io/redis-adapter` and
//! `@socket.io/redis-emitter`) writes and reads it: the subset those
//! messages use, decoded from untrusted bytes with bounded depth and checked
//! lengths. Pure; reached by unit tests and the fuzz target.

use thiserror::Error;

/// Deeper nesting than this is refused (a hostile message must not
/// exhaust the stack).
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Nil,
    Bool(bool),
    /// Every integer that fits; `UInt` only above `i64::MAX`.
    Int(i64),
    UInt(u64),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// An extension: notepack writes a `Date` as the timestamp extension (-1).
    Ext(i8, Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum DecodeError {
    #[error("message ends inside a value (offset {0})")]
    Truncated(usize),
    #[error("unknown MessagePack type byte 0x{byte:02x} at offset {offset}")]
    UnknownType { byte: u8, offset: usize },
    #[error("string is not UTF-8 at offset {0}")]
    InvalidUtf8(usize),
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("{0} bytes after the value")]
    Trailing(usize),
}

impl Value {
    pub(crate) fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    /// A map's member by string key.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            Value::F64(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }
}

/// Appends `v` encoded as notepack encodes the same JS value (smallest
/// integer form, float64 for other numbers).
pub(crate) fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => encode_int(*i, out),
        Value::UInt(u) => {
            if let Ok(i) = i64::try_from(*u) {
                encode_int(i, out)
            } else {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            }
        }
        Value::F64(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => {
            let n = s.len();
            if n < 0x20 {
                out.push(0xa0 | n as u8);
            } else {
                len_header(out, n, [0xd9, 0xda, 0xdb]);
            }
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            len_header(out, b.len(), [0xc4, 0xc5, 0xc6]);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            let n = items.len();
            if n < 0x10 {
                out.push(0x90 | n as u8);
            } else {
                len_header16(out, n, [0xdc, 0xdd]);
            }
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(members) => {
            let n = members.len();
            if n < 0x10 {
                out.push(0x80 | n as u8);
            } else {
                len_header16(out, n, [0xde, 0xdf]);
            }
            for (k, v) in members {
                encode(k, out);
                encode(v, out);
            }
        }
        Value::Ext(t, data) => {
            let fixed = match data.len() {
                1 => Some(0xd4),
                2 => Some(0xd5),
                4 => Some(0xd6),
                8 => Some(0xd7),
                16 => Some(0xd8),
                _ => None,
            };
            match fixed {
                Some(b) => out.push(b),
                None => len_header(out, data.len(), [0xc7, 0xc8, 0xc9]),
            }
            out.push(*t as u8);
            out.extend_from_slice(data);
        }
    }
}

fn encode_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        if i < 0x80 {
            out.push(i as u8);
        } else if i < 0x100 {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i < 0x10000 {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i < 0x1_0000_0000 {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -0x20 {
        out.push(i as i8 as u8);
    } else if i >= -0x80 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -0x8000 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -0x8000_0000 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// 8-, 16- or 32-bit length after one of three type bytes.
fn len_header(out: &mut Vec<u8>, n: usize, tags: [u8; 3]) {
    if n < 0x100 {
        out.extend_from_slice(&[tags[0], n as u8]);
    } else if n < 0x10000 {
        out.push(tags[1]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(tags[2]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// 16- or 32-bit count (arrays and maps past their fix forms).
fn len_header16(out: &mut Vec<u8>, n: usize, tags: [u8; 2]) {
    if n < 0x10000 {
        out.push(tags[0]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(tags[1]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Exactly one value, nothing after it.
pub(crate) fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    if r.pos != buf.len() {
        return Err(DecodeError::Trailing(buf.len() - r.pos));
    }
    Ok(v)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(DecodeError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let at = self.pos;
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Value::Int(i64::from(b)),
            0x80..=0x8f => self.map(usize::from(b & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(b & 0x0f), depth)?,
            0xa0..=0xbf => self.string(usize::from(b & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.be(1 << (b - 0xc4))? as usize;
                Value::Bin(self.take(n)?.to_vec())
            }
            0xc7..=0xc9 => {
                let n = self.be(1 << (b - 0xc7))? as usize;
                let t = self.take(1)?[0] as i8;
                Value::Ext(t, self.take(n)?.to_vec())
            }
            0xca => Value::F64(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::F64(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => {
                let u = self.be(1 << (b - 0xcc))?;
                i64::try_from(u).map_or(Value::UInt(u), Value::Int)
            }
            0xd0 => Value::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Value::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Value::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Value::Int(self.be(8)? as i64),
            0xd4..=0xd8 => {
                let t = self.take(1)?[0] as i8;
                Value::Ext(t, self.take(1 << (b - 0xd4))?.to_vec())
            }
            0xd9..=0xdb => {
                let n = self.be(1 << (b - 0xd9))? as usize;
                self.string(n)?
            }
            0xdc | 0xdd => {
                let n = self.be(if b == 0xdc { 2 } else { 4 })? as usize;
                self.array(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.be(if b == 0xde { 2 } else { 4 })? as usize;
                self.map(n, depth)?
            }
            0xe0..=0xff => Value::Int(i64::from(b as i8)),
            0xc1 => return Err(DecodeError::UnknownType { byte: b, offset: at }),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, DecodeError> {
        let at = self.pos;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map(|s| Value::Str(s.to_string())).map_err(|_| DecodeError::InvalidUtf8(at))
    }

    /// Each element takes at least one byte: a count past what is left is
    /// refused before anything is allocated for it.
    fn array(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::Truncated(self.pos));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        if n.saturating_mul(2) > self.buf.len() - self.pos {
            return Err(DecodeError::Truncated(self.pos));
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            members.push((k, v));
        }
        Ok(Value::Map(members))
    }
}

/// A notepack `Date` (timestamp extension -1) as milliseconds since the
/// epoch: what `JSON.stringify` turns into an ISO string.
pub(crate) fn timestamp_ms(ext_type: i8, data: &[u8]) -> Option<f64> {
    if ext_type != -1 {
        return None;
    }
    let be = |s: &[u8]| s.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let (secs, nanos) = match data.len() {
        4 => (be(data) as i64, 0u64),
        8 => {
            let v = be(data);
            ((v & 0x3_ffff_ffff) as i64, v >> 34)
        }
        12 => (be(&data[4..]) as i64, be(&data[..4])),
        _ => return None,
    };
    Some(secs as f64 * 1000.0 + (nanos / 1_000_000) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(decode(&out), Ok(v));
    }

    #[test]
    fn values_round_trip_in_every_size_class() {
        for i in [
            0,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            4294967295,
            4294967296,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            -2147483648,
            -2147483649,
            i64::MIN,
            i64::MAX,
        ] {
            roundtrip(Value::Int(i));
        }
        roundtrip(Value::UInt(u64::MAX));
        roundtrip(Value::F64(1.5));
        roundtrip(Value::Nil);
        roundtrip(Value::Bool(true));
        for n in [0, 31, 32, 255, 256, 65536] {
            roundtrip(Value::Str("é".repeat(n / 2) + &"x".repeat(n % 2)));
            roundtrip(Value::Bin(vec![7; n]));
            roundtrip(Value::Array(vec![Value::Nil; n]));
            roundtrip(Value::Map((0..n).map(|i| (Value::Int(i as i64), Value::Nil)).collect()));
        }
        for n in [1, 2, 4, 8, 16, 3, 300] {
            roundtrip(Value::Ext(-1, vec![1; n]));
        }
    }

    #[test]
    fn encodes_as_notepack_does() {
        // notepack.encode(["abc", 300, -1, 1.5, null, true, {a: Buffer.from([1])}])
        let v = Value::Array(vec![
            Value::str("abc"),
            Value::Int(300),
            Value::Int(-1),
            Value::F64(1.5),
            Value::Nil,
            Value::Bool(true),
            Value::Map(vec![(Value::str("a"), Value::Bin(vec![1]))]),
        ]);
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(
            out,
            [
                0x97, 0xa3, b'a', b'b', b'c', 0xcd, 0x01, 0x2c, 0xff, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc0, 0xc3,
                0x81, 0xa1, b'a', 0xc4, 0x01, 0x01
            ]
        );
    }

    #[test]
    fn hostile_input_is_refused_without_allocating_for_it() {
        assert_eq!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]), Err(DecodeError::Truncated(5)));
        assert_eq!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]), Err(DecodeError::Truncated(5)));
        assert_eq!(decode(&[0xc6, 0xff, 0xff, 0xff, 0xff]), Err(DecodeError::Truncated(5)));
        assert_eq!(decode(&[0xc1]), Err(DecodeError::UnknownType { byte: 0xc1, offset: 0 }));
        assert_eq!(decode(&[0xa1, 0xff]), Err(DecodeError::InvalidUtf8(1)));
        assert_eq!(decode(&[0xc0, 0xc0]), Err(DecodeError::Trailing(1)));
        assert_eq!(decode(&[0x91; 100]), Err(DecodeError::TooDeep));
        assert_eq!(decode(&[]), Err(DecodeError::Truncated(0)));
    }

    #[test]
    fn timestamps_as_notepack_writes_dates() {
        // new Date(1000000000000): timestamp 32 (whole seconds)
        assert_eq!(timestamp_ms(-1, &1_000_000_000u32.to_be_bytes()), Some(1e12));
        // new Date(1000000000123): timestamp 64, 123 ms in the nanoseconds
        let v = (123_000_000u64 << 34) | 1_000_000_000;
        assert_eq!(timestamp_ms(-1, &v.to_be_bytes()), Some(1_000_000_000_123.0));
        // timestamp 96: nanoseconds then a signed 64-bit second count
        let mut d = 0u32.to_be_bytes().to_vec();
        d.extend_from_slice(&5u64.to_be_bytes());
        assert_eq!(timestamp_ms(-1, &d), Some(5000.0));
        assert_eq!(timestamp_ms(3, &[0; 4]), None);
    }
}
