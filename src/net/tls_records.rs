//! TLS 1.3 record protection after the handshake (RFC 8446 section 5),
//! with the traffic keys rustls derived: what an idle TLS 1.3 connection
//! keeps is two AEAD keys, their IVs and sequence numbers, and rustls's
//! `KernelConnection` for key updates (~2.0 KB in all, measured with a
//! counting allocator; rustls's whole unbuffered session is ~3.4 KB).
//!
//! rustls still does everything but the AEAD: the handshake, the key
//! schedule, and the next secrets on a KeyUpdate. Here: sealing and opening
//! records, the inner content type and its padding, alerts, KeyUpdate in
//! both directions, and the confidentiality limit on what we send.

use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::ConnectionTrafficSecrets;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

/// Plaintext per record (2^14) and ciphertext beyond it: the content type
/// byte, padding and the tag, at most 256 (RFC 8446 5.2).
const MAX_PLAIN: usize = 16 * 1024;
const MAX_CIPHER: usize = MAX_PLAIN + 256;
const HEADER: usize = 5;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const KEY_UPDATE: u8 = 24;

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

/// One direction's key, IV and sequence number.
struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Keys {
    fn new(secrets: ConnectionTrafficSecrets, seq: u64) -> Option<Self> {
        let (alg, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&aead::CHACHA20_POLY1305, key, iv),
            _ => return None,
        };
        let key = LessSafeKey::new(UnboundKey::new(alg, key.as_ref()).ok()?);
        let iv: [u8; 12] = iv.as_ref().try_into().ok()?;
        Some(Self { key, iv, seq })
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
    kernel: KernelConnection<ServerConnectionData>,
    tx: Keys,
    rx: Keys,
    /// Records sealed under one key before we move to the next.
    limit: u64,
}

/// What `open` found.
pub(crate) struct Opened {
    /// Bytes of whole records consumed from the front.
    pub used: usize,
    /// The peer's close_notify came (what follows it is ignored).
    pub closed: bool,
}

impl Records {
    /// From rustls's secrets once a TLS 1.3 handshake is over. None for
    /// a cipher this layer does not know (the caller keeps rustls then).
    pub(crate) fn new(
        kernel: KernelConnection<ServerConnectionData>,
        tx: (u64, ConnectionTrafficSecrets),
        rx: (u64, ConnectionTrafficSecrets),
    ) -> Option<Self> {
        let limit = kernel.negotiated_cipher_suite().tls13()?.common.confidentiality_limit;
        Some(Self { tx: Keys::new(tx.1, tx.0)?, rx: Keys::new(rx.1, rx.0)?, kernel, limit: limit.saturating_sub(16) })
    }

    /// Seals `data` as application data onto `out`, in records of at most
    /// 16 KiB of plaintext.
    pub(crate) fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        for chunk in data.chunks(MAX_PLAIN) {
            if self.tx.seq >= self.limit {
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
        let (seq, secrets) = self.kernel.update_tx_secret().map_err(|_| RecordError::Keys)?;
        self.tx = Keys::new(secrets, seq).ok_or(RecordError::Keys)?;
        Ok(())
    }

    /// Opens the whole records at the front of `buf` (decrypted in place):
    /// application data goes to `plain`, what the peer's records ask us to
    /// send (a KeyUpdate's answer) to `out`. An incomplete record at the
    /// end is left for the caller to keep.
    pub(crate) fn open(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Opened, RecordError> {
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
            // The content type is the last nonzero byte; zeros after it are padding.
            let Some(at) = inner.iter().rposition(|&b| b != 0) else {
                return Err(RecordError::Unexpected);
            };
            let (content, content_type) = (&inner[..at], inner[at]);
            if content.len() > MAX_PLAIN {
                return Err(RecordError::Overflow);
            }
            match content_type {
                APPLICATION_DATA => plain.extend_from_slice(content),
                ALERT => match content {
                    [_, 0] => return Ok(Opened { used, closed: true }),
                    // user_canceled is a warning; close_notify follows it.
                    [1, 90] => {}
                    [_, desc] => return Err(RecordError::Alert(*desc)),
                    _ => return Err(RecordError::Unexpected),
                },
                // Only KeyUpdate may come after the handshake (no
                // post-handshake authentication is asked for), one per
                // record and not split.
                HANDSHAKE => match content {
                    [KEY_UPDATE, 0, 0, 1, req @ (0 | 1)] => {
                        let (seq, secrets) = self.kernel.update_rx_secret().map_err(|_| RecordError::Keys)?;
                        self.rx = Keys::new(secrets, seq).ok_or(RecordError::Keys)?;
                        if *req == 1 {
                            self.update_tx(false, out)?;
                        }
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
