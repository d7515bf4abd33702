//! TLS 1.3 record protection after the handshake (RFC 8446 section 5),
//! with the traffic keys rustls derived: what an idle TLS 1.3 connection
//! keeps is two AEAD keys, their IVs, sequence numbers and traffic secrets
//! (~1.3 KB in all, measured with a counting allocator; rustls's whole
//! unbuffered session is ~3.4 KB, and its `KernelConnection`, kept only
//! for key updates, would add 0.8 KB).
//!
//! rustls does the handshake and the key schedule up to the first
//! application traffic secrets, which its key log hands us (`Capture`).
//! Here: sealing and opening records, the inner content type and its
//! padding, alerts, KeyUpdate in both directions (the next secret is
//! HKDF-Expand-Label(secret, "traffic upd"), RFC 8446 7.2), and the
//! confidentiality limit on what we send.

use std::cell::RefCell;

use rustls::ConnectionTrafficSecrets;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

/// Plaintext per record (2^14) and ciphertext beyond it: the content type
/// byte, padding and the tag, at most 256 (RFC 8446 5.2).
const MAX_PLAIN: usize = 16 * 1024;
const MAX_CIPHER: usize = MAX_PLAIN + 256;
const HEADER: usize = 5;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const KEY_UPDATE: u8 = 24;
/// What a peer may send in a row before it is refused, as rustls and
/// BoringSSL bound them: KeyUpdates without application data between
/// them, empty records, and warning alerts (user_canceled) in all.
const MAX_KEY_UPDATES_IN_A_ROW: u8 = 32;
const MAX_EMPTY_IN_A_ROW: u8 = 32;
const MAX_WARNINGS: u8 = 4;
/// Key updates rustls may have followed before the hand-over (a client
/// sending more before its upgrade is answered is already unusual).
const MAX_GENERATIONS: usize = 8;

/// Why a peer's records were refused, with the alert that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// A record that does not decrypt (bad_record_mac).
    BadRecordMac,
    /// Too long a record (record_overflow).
    Overflow,
    /// Anything TLS 1.3 does not allow here (unexpected_message).
    Unexpected,
    /// The peer's fatal alert.
    Alert(u8),
    /// No key for what comes next (a key update rustls refused).
    Keys,
}

impl RecordError {
    fn alert(self) -> Option<u8> {
        match self {
            RecordError::BadRecordMac => Some(20),
            RecordError::Overflow => Some(22),
            RecordError::Unexpected => Some(10),
            RecordError::Keys => Some(80),
            RecordError::Alert(_) => None,
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::BadRecordMac => f.write_str("TLS record failed to decrypt"),
            RecordError::Overflow => f.write_str("TLS record too long"),
            RecordError::Unexpected => f.write_str("unexpected TLS record"),
            RecordError::Alert(d) => write!(f, "peer sent TLS alert {d}"),
            RecordError::Keys => f.write_str("TLS key update failed"),
        }
    }
}

impl std::error::Error for RecordError {}

/// A traffic secret (the hash's length: 32 or 48 bytes), zeroed when dropped.
#[derive(Clone)]
pub(crate) struct Secret {
    bytes: [u8; 48],
    len: u8,
}

impl Secret {
    fn new(b: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; 48];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Self { bytes, len: b.len() as u8 })
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in &mut self.bytes {
            // SAFETY: a plain write to a live byte; volatile so it is not elided.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// The application traffic secrets a handshake derived (client's, server's).
pub(crate) type TrafficSecrets = (Secret, Secret);

thread_local! {
    /// What rustls's key log gave during the current thread's last rustls call.
    static CAPTURED: RefCell<(Option<Secret>, Option<Secret>)> = const { RefCell::new((None, None)) };
}

/// rustls's key log, used to learn the first application traffic secrets
/// (nothing is written anywhere). rustls logs them synchronously while
/// `process_tls_records` runs, so the session that called it takes them
/// right after (`take_captured`) from this thread.
#[derive(Debug)]
pub(crate) struct Capture;

const CLIENT_SECRET_0: &str = "CLIENT_TRAFFIC_SECRET_0";
const SERVER_SECRET_0: &str = "SERVER_TRAFFIC_SECRET_0";

impl rustls::KeyLog for Capture {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        CAPTURED.with(|c| {
            let mut c = c.borrow_mut();
            match label {
                CLIENT_SECRET_0 => c.0 = Secret::new(secret),
                SERVER_SECRET_0 => c.1 = Secret::new(secret),
                _ => {}
            }
        });
    }

    fn will_log(&self, label: &str) -> bool {
        label == CLIENT_SECRET_0 || label == SERVER_SECRET_0
    }
}

/// Forgets what this thread captured (before a session's rustls call).
pub(crate) fn clear_captured() {
    CAPTURED.with(|c| *c.borrow_mut() = (None, None));
}

/// Both secrets, if the last rustls call on this thread logged them.
pub(crate) fn take_captured() -> Option<TrafficSecrets> {
    CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        match (c.0.take(), c.1.take()) {
            (Some(client), Some(server)) => Some((client, server)),
            _ => None,
        }
    })
}

/// The negotiated suite as this layer needs it.
#[derive(Clone, Copy)]
struct Suite {
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
}

impl Suite {
    fn of(secrets: &ConnectionTrafficSecrets) -> Option<Self> {
        Some(match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { .. } => Self { aead: &aead::AES_128_GCM, hkdf: hkdf::HKDF_SHA256 },
            ConnectionTrafficSecrets::Aes256Gcm { .. } => Self { aead: &aead::AES_256_GCM, hkdf: hkdf::HKDF_SHA384 },
            ConnectionTrafficSecrets::Chacha20Poly1305 { .. } => {
                Self { aead: &aead::CHACHA20_POLY1305, hkdf: hkdf::HKDF_SHA256 }
            }
            _ => return None,
        })
    }
}

/// HKDF-Expand-Label(secret, label, "", out.len()) (RFC 8446 7.1).
fn expand_label(alg: hkdf::Algorithm, secret: &[u8], label: &[u8], out: &mut [u8]) -> Option<()> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    let prk = hkdf::Prk::new_less_safe(alg, secret);
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// One direction's key, IV, sequence number and traffic secret.
struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    secret: Secret,
}

impl Keys {
    /// The key and IV of `secret` (RFC 8446 7.3).
    fn derive(suite: Suite, secret: Secret, seq: u64) -> Option<Self> {
        let mut key = [0u8; 32];
        let key = &mut key[..suite.aead.key_len()];
        expand_label(suite.hkdf, secret.as_slice(), b"key", key)?;
        let mut iv = [0u8; 12];
        expand_label(suite.hkdf, secret.as_slice(), b"iv", &mut iv)?;
        let key = LessSafeKey::new(UnboundKey::new(suite.aead, key).ok()?);
        Some(Self { key, iv, seq, secret })
    }

    /// The next generation after a KeyUpdate, sequence numbers from 0.
    fn next(&self, suite: Suite) -> Option<Self> {
        let mut next = [0u8; 48];
        let next = &mut next[..self.secret.as_slice().len()];
        expand_label(suite.hkdf, self.secret.as_slice(), b"traffic upd", next)?;
        Self::derive(suite, Secret::new(next)?, 0)
    }

    /// Whether these are the key and IV rustls handed over.
    fn matches(&self, secrets: &ConnectionTrafficSecrets) -> bool {
        let (key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            _ => return false,
        };
        // Sealing one block with each key is a cheap comparison of keys we
        // may not read back out of ring.
        let probe = |k: &LessSafeKey| {
            let mut block = [0u8; 16];
            k.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut block)
                .map(|tag| (block, *tag.as_ref().first_chunk::<16>().unwrap_or(&[0; 16])))
                .ok()
        };
        let Ok(theirs) = UnboundKey::new(self.key.algorithm(), key.as_ref()).map(LessSafeKey::new) else {
            return false;
        };
        iv.as_ref() == self.iv && probe(&theirs).is_some() && probe(&theirs) == probe(&self.key)
    }

    /// The per-record nonce: the IV with the sequence number XORed into
    /// its last 8 bytes (RFC 8446 5.3).
    fn nonce(&self) -> Nonce {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        Nonce::assume_unique_for_key(n)
    }
}

pub(crate) struct Records {
    suite: Suite,
    tx: Keys,
    rx: Keys,
    /// Records sealed under one key before we move to the next.
    limit: u64,
    /// The peer asked for our KeyUpdate: sent before our next application
    /// data record (RFC 8446 4.6.3), one for any number of requests.
    update_due: bool,
    key_updates_in_a_row: u8,
    empty_in_a_row: u8,
    warnings: u8,
}

/// What `open` found.
pub(crate) struct Opened {
    /// Bytes of whole records consumed from the front.
    pub used: usize,
    /// The peer's close_notify came (what follows it is ignored).
    pub closed: bool,
}

impl Records {
    /// From the traffic secrets the handshake logged (`traffic`: client's,
    /// server's) and the keys and sequence numbers rustls hands over
    /// (`tx`, `rx`) once a TLS 1.3 handshake is over; `limit` is the
    /// suite's confidentiality limit. A key update rustls already followed
    /// (the client's, in the same read as its request) is found by
    /// deriving the next generations until one gives rustls's key. None
    /// for a cipher this layer does not know, or keys it cannot reach.
    pub(crate) fn new(
        traffic: TrafficSecrets,
        tx: &(u64, ConnectionTrafficSecrets),
        rx: &(u64, ConnectionTrafficSecrets),
        limit: u64,
    ) -> Option<Self> {
        let suite = Suite::of(&tx.1)?;
        let (client, server) = traffic;
        let find = |secret: Secret, (seq, theirs): &(u64, ConnectionTrafficSecrets)| {
            let mut keys = Keys::derive(suite, secret, 0)?;
            for _ in 0..MAX_GENERATIONS {
                if keys.matches(theirs) {
                    keys.seq = *seq;
                    return Some(keys);
                }
                keys = keys.next(suite)?;
            }
            None
        };
        Some(Self {
            suite,
            tx: find(server, tx)?,
            rx: find(client, rx)?,
            limit: limit.saturating_sub(16),
            update_due: false,
            key_updates_in_a_row: 0,
            empty_in_a_row: 0,
            warnings: 0,
        })
    }

    /// Seals `data` as application data onto `out`, in records of at most
    /// 16 KiB of plaintext.
    pub(crate) fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        for chunk in data.chunks(MAX_PLAIN) {
            if self.update_due || self.tx.seq >= self.limit {
                self.update_due = false;
                self.update_tx(false, out)?;
            }
            self.seal_one(APPLICATION_DATA, chunk, out);
        }
        Ok(())
    }

    /// Our close_notify.
    pub(crate) fn close_notify(&mut self, out: &mut Vec<u8>) {
        self.seal_one(ALERT, &[1, 0], out);
    }

    /// The fatal alert that goes with an error (best effort: the session ends).
    pub(crate) fn alert(&mut self, error: RecordError, out: &mut Vec<u8>) {
        if let Some(desc) = error.alert() {
            self.seal_one(ALERT, &[2, desc], out);
        }
    }

    fn seal_one(&mut self, content_type: u8, chunk: &[u8], out: &mut Vec<u8>) {
        let len = chunk.len() + 1 + self.tx.key.algorithm().tag_len();
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        let start = out.len();
        out.reserve(HEADER + len);
        out.extend_from_slice(&header);
        out.extend_from_slice(chunk);
        out.push(content_type);
        let nonce = self.tx.nonce();
        // Sealing in place cannot fail for lengths under 2^14 + 1.
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start + HEADER..])
            .expect("AEAD seal of one TLS record");
        out.extend_from_slice(tag.as_ref());
        self.tx.seq += 1;
    }

    /// Sends a KeyUpdate under the current key, then moves to the next.
    fn update_tx(&mut self, requested: bool, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_one(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, u8::from(requested)], out);
        self.tx = self.tx.next(self.suite).ok_or(RecordError::Keys)?;
        Ok(())
    }

    /// Opens the whole records at the front of `buf` (decrypted in place):
    /// application data goes to `plain` (a KeyUpdate's answer waits for
    /// our next `seal`). An incomplete record at the end is left for the
    /// caller to keep.
    pub(crate) fn open(&mut self, buf: &mut [u8], plain: &mut Vec<u8>) -> Result<Opened, RecordError> {
        let mut used = 0;
        while buf.len() - used >= HEADER {
            let header: [u8; HEADER] = buf[used..used + HEADER].try_into().expect("5 bytes");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            // After the handshake every record is protected application_data
            // (its true type is inside) on legacy version 0x0303.
            if header[0] != APPLICATION_DATA || header[1] != 3 {
                return Err(RecordError::Unexpected);
            }
            if len > MAX_CIPHER {
                return Err(RecordError::Overflow);
            }
            if buf.len() - used < HEADER + len {
                break;
            }
            let body = &mut buf[used + HEADER..used + HEADER + len];
            let nonce = self.rx.nonce();
            let inner =
                self.rx.key.open_in_place(nonce, Aad::from(header), body).map_err(|_| RecordError::BadRecordMac)?;
            self.rx.seq += 1;
            used += HEADER + len;
            // TLSInnerPlaintext, padding included, is at most 2^14 + 1 (RFC 8446 5.4).
            if inner.len() > MAX_PLAIN + 1 {
                return Err(RecordError::Overflow);
            }
            // The content type is the last nonzero byte; zeros after it are padding.
            let Some(at) = inner.iter().rposition(|&b| b != 0) else {
                return Err(RecordError::Unexpected);
            };
            let (content, content_type) = (&inner[..at], inner[at]);
            if content.is_empty() {
                self.empty_in_a_row += 1;
                if self.empty_in_a_row > MAX_EMPTY_IN_A_ROW {
                    return Err(RecordError::Unexpected);
                }
            } else {
                self.empty_in_a_row = 0;
            }
            match content_type {
                APPLICATION_DATA => {
                    self.key_updates_in_a_row = 0;
                    plain.extend_from_slice(content);
                }
                ALERT => match content {
                    [_, 0] => return Ok(Opened { used, closed: true }),
                    // user_canceled is a warning; close_notify follows it.
                    [1, 90] => {
                        self.warnings += 1;
                        if self.warnings > MAX_WARNINGS {
                            return Err(RecordError::Unexpected);
                        }
                    }
                    [_, desc] => return Err(RecordError::Alert(*desc)),
                    _ => return Err(RecordError::Unexpected),
                },
                // Only KeyUpdate may come after the handshake (no
                // post-handshake authentication is asked for), one per
                // record and not split.
                HANDSHAKE => match content {
                    [KEY_UPDATE, 0, 0, 1, req @ (0 | 1)] => {
                        self.key_updates_in_a_row += 1;
                        if self.key_updates_in_a_row > MAX_KEY_UPDATES_IN_A_ROW {
                            return Err(RecordError::Unexpected);
                        }
                        self.rx = self.rx.next(self.suite).ok_or(RecordError::Keys)?;
                        // Answered before our next application data (`seal`):
                        // a peer that asks and never reads gets nothing queued.
                        self.update_due |= *req == 1;
                    }
                    _ => return Err(RecordError::Unexpected),
                },
                _ => return Err(RecordError::Unexpected),
            }
        }
        Ok(Opened { used, closed: false })
    }

    #[cfg(test)]
    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }
}
