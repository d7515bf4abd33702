//! A TLS 1.3 client peer for tests and fuzzing: rustls's client on the
//! other side of a `TlsSession`, in memory, and a forger holding the
//! client's keys for records rustls's client would never make.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ConnectionTrafficSecrets;

use super::tls::{load_client_config, load_server_config, TlsSource};
use super::TlsSession;

pub(crate) fn fixture(name: &str) -> String {
    format!("{}/__test__/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn pair_with(extract: bool) -> (TlsSession, rustls::ClientConnection) {
    // Built once: parsing the PEM files dominated a fuzzing run's time.
    static SERVER: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    static CLIENTS: OnceLock<[Arc<rustls::ClientConfig>; 2]> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        load_server_config(&TlsSource::File(fixture("key.pem")), &TlsSource::File(fixture("cert.pem")), None).unwrap()
    });
    let clients = CLIENTS.get_or_init(|| {
        [false, true].map(|extract| {
            let mut cfg = (*load_client_config(None, None, None, false).unwrap()).clone();
            cfg.enable_secret_extraction = extract;
            Arc::new(cfg)
        })
    });
    let cfg = clients[usize::from(extract)].clone();
    let client = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    (TlsSession::new(server.clone()).unwrap(), client)
}

pub(crate) fn to_server(s: &mut TlsSession, c: &mut rustls::ClientConnection) -> Result<Vec<u8>, rustls::Error> {
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).unwrap();
    }
    let mut plain = Vec::new();
    s.read(&mut wire, &mut plain)?;
    Ok(plain)
}

pub(crate) fn server_out(s: &mut TlsSession) -> Vec<u8> {
    let mut back = Vec::new();
    s.write_pending(|b| {
        back.extend_from_slice(b);
        Ok(b.len())
    })
    .unwrap();
    back
}

pub(crate) fn to_client(s: &mut TlsSession, c: &mut rustls::ClientConnection) -> Result<Vec<u8>, rustls::Error> {
    let back = server_out(s);
    let mut r = &back[..];
    while !r.is_empty() {
        c.read_tls(&mut r).unwrap();
        c.process_new_packets()?;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.reader().read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

pub(crate) fn handshake(extract: bool) -> (TlsSession, rustls::ClientConnection) {
    let (mut s, mut c) = pair_with(extract);
    for _ in 0..8 {
        to_server(&mut s, &mut c).unwrap();
        to_client(&mut s, &mut c).unwrap();
    }
    assert!(s.is_established() && !c.is_handshaking());
    (s, c)
}

/// As `open_upgraded`: the 101 goes out, then the session settles.
pub(crate) fn settled(extract: bool) -> (TlsSession, rustls::ClientConnection) {
    let (mut s, mut c) = handshake(extract);
    s.encrypt(b"HTTP/1.1 101").unwrap();
    assert_eq!(to_client(&mut s, &mut c).unwrap(), b"HTTP/1.1 101");
    s.settle();
    assert!(s.is_settled());
    (s, c)
}

/// A TLS 1.3 sealer with the client's keys, for records rustls's client will not make.
pub(crate) struct Forge {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Forge {
    pub(crate) fn from(c: rustls::ClientConnection) -> Self {
        let (seq, secrets) = c.dangerous_extract_secrets().unwrap().tx;
        let (alg, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&aead::CHACHA20_POLY1305, key, iv),
            _ => unreachable!(),
        };
        Self {
            key: LessSafeKey::new(UnboundKey::new(alg, key.as_ref()).unwrap()),
            iv: iv.as_ref().try_into().unwrap(),
            seq,
        }
    }

    pub(crate) fn seal(&mut self, typ: u8, content: &[u8], padding: usize, out: &mut Vec<u8>) {
        let mut inner = content.to_vec();
        inner.push(typ);
        inner.resize(inner.len() + padding, 0);
        let len = inner.len() + 16;
        let header = [23u8, 3, 3, (len >> 8) as u8, len as u8];
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(n), Aad::from(header), &mut inner).unwrap();
        self.seq += 1;
        out.extend_from_slice(&header);
        out.extend_from_slice(&inner);
    }
}
