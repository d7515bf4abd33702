//! One server-side TLS session on rustls's unbuffered API: the session's
//! keys and state, and bytes only while they are in flight.
//!
//! rustls's buffered `ServerConnection` keeps a 4 KiB read buffer for the
//! life of the connection (its deframer's), so an idle TLS socket held
//! ~7.7 KB of heap; here the caller reads into its own (per-thread) buffer
//! and the session copies out only an incomplete record, freed once the
//! record completes: ~3.4 KB when idle (measured with a counting allocator,
//! rustls 0.23, TLS 1.3, AES-GCM). Ciphertext the kernel has not taken
//! waits in `outgoing`, also freed once written.
//!
//! Once a TLS 1.3 connection has become a WebSocket (`settle`), records
//! are sealed and opened by `tls_records` with the keys rustls derived,
//! and rustls keeps only what key updates need: ~2.0 KB idle. TLS 1.2
//! stays with rustls throughout.

use std::io;
use std::sync::Arc;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};

use super::tls_records::{self, Records, TrafficSecrets};

/// A session's ciphertext in flight, incomplete record included, beyond
/// which the peer is refused: rustls joins handshake messages up to 64 KiB
/// and a record is at most 16 KiB + 2 KiB; one read adds at most 64 KiB.
const MAX_INCOMING: usize = 160 * 1024;

/// Who protects the records: rustls, or (TLS 1.3 after `settle`) this
/// crate with rustls's keys. Boxed: the two differ in size.
enum Engine {
    Rustls(Box<UnbufferedServerConnection>),
    Records(Box<Records>),
    /// A failed move between the two: the session can do nothing more.
    Gone,
}

pub(crate) struct TlsSession {
    engine: Engine,
    /// Ciphertext of an incomplete record; empty (unallocated) between records.
    incoming: Vec<u8>,
    /// Ciphertext not yet written; `outgoing[..sent]` is out already.
    outgoing: Vec<u8>,
    sent: usize,
    /// The handshake is done: application data flows both ways.
    established: bool,
    /// The peer sent close_notify: it sends nothing more.
    peer_closed: bool,
    /// TLS 1.3's first application traffic secrets, from the handshake
    /// until `settle` takes them.
    traffic: Option<Box<TrafficSecrets>>,
    /// rustls sealed data after the last read: it holds no KeyUpdate answer
    /// back (it queues one until its next write, and handing the keys over
    /// would lose it).
    wrote_last: bool,
}

fn over() -> rustls::Error {
    rustls::Error::General("TLS session is over".into())
}

impl TlsSession {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, rustls::Error> {
        Ok(Self {
            engine: Engine::Rustls(Box::new(UnbufferedServerConnection::new(config)?)),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            established: false,
            peer_closed: false,
            traffic: None,
            wrote_last: false,
        })
    }

    pub(crate) fn is_established(&self) -> bool {
        self.established
    }

    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Ciphertext waits to be written.
    pub(crate) fn has_pending(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.outgoing.len() - self.sent
    }

    /// Takes ciphertext just read (`fresh`, decrypted in place as needed) and
    /// appends the application data it completes to `plain`. What the peer's
    /// records ask us to send (handshake flights, alerts, key update answers)
    /// joins the pending output, which the caller writes. An error is a
    /// protocol violation: the session is over (a fatal alert may be
    /// pending, worth one attempt to write).
    pub(crate) fn read(&mut self, fresh: &mut [u8], plain: &mut Vec<u8>) -> Result<(), rustls::Error> {
        let Self { engine, incoming, outgoing, established, peer_closed, traffic, wrote_last, .. } = self;
        let held = !incoming.is_empty();
        if held {
            if incoming.len() + fresh.len() > MAX_INCOMING {
                return Err(rustls::Error::General("TLS record buffer full".into()));
            }
            incoming.extend_from_slice(fresh);
        }
        let buf: &mut [u8] = if held { &mut incoming[..] } else { fresh };
        // What is done with, from the front of `buf`.
        let mut done = 0;
        let result = match engine {
            Engine::Rustls(conn) => {
                *wrote_last = false;
                tls_records::clear_captured();
                let r = rustls_read(conn, buf, &mut done, plain, outgoing, established, peer_closed);
                if let Some(secrets) = tls_records::take_captured() {
                    *traffic = Some(Box::new(secrets));
                }
                r
            }
            Engine::Records(records) => match records.open(buf, plain) {
                Ok(opened) => {
                    done = opened.used;
                    *peer_closed |= opened.closed;
                    Ok(())
                }
                Err(e) => {
                    records.alert(e, outgoing);
                    Err(rustls::Error::General(e.to_string()))
                }
            },
            Engine::Gone => Err(over()),
        };
        // Keep the incomplete rest, and only that.
        if held {
            incoming.drain(..done.min(incoming.len()));
            if incoming.is_empty() {
                *incoming = Vec::new();
            }
        } else if done < buf.len() {
            *incoming = buf[done..].to_vec();
        }
        if result.is_err() {
            // rustls queued a fatal alert; it comes out on the next call.
            self.drain_output();
            // Nothing is sealed after a fatal alert (neither engine refuses
            // by itself: rustls's unbuffered state still offers WriteTraffic).
            self.engine = Engine::Gone;
        }
        result
    }

    /// A TLS 1.3 session's handshake is over and no more HTTP will pass:
    /// records are protected here from now on, with rustls's keys. Needs
    /// the config's `enable_secret_extraction` and key log (`Capture`), and
    /// a write after the last read (the 101 is one); TLS 1.2 stays with
    /// rustls, as does a session that cannot settle.
    pub(crate) fn settle(&mut self) {
        let Engine::Rustls(conn) = &self.engine else { return };
        let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        if !self.established || !tls13 || !self.wrote_last {
            return;
        }
        let Some(traffic) = self.traffic.take() else { return };
        let Engine::Rustls(conn) = std::mem::replace(&mut self.engine, Engine::Gone) else { return };
        let Some(limit) =
            conn.negotiated_cipher_suite().and_then(|s| s.tls13()).map(|s| s.common.confidentiality_limit)
        else {
            self.engine = Engine::Rustls(conn);
            return;
        };
        // Taking the keys consumes rustls's session: keys this layer cannot
        // reach (`Records::new` checks ours against them) end the session.
        if let Ok((secrets, _kernel)) = conn.dangerous_into_kernel_connection() {
            if let Some(records) = Records::new(*traffic, &secrets.tx, &secrets.rx, limit) {
                self.engine = Engine::Records(Box::new(records));
            }
        }
    }

    /// Whether `settle` moved the records here.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn is_settled(&self) -> bool {
        matches!(self.engine, Engine::Records(_))
    }

    /// Encodes what rustls has queued to send (after an error: its alert).
    fn drain_output(&mut self) {
        let Self { engine: Engine::Rustls(conn), outgoing, .. } = self else { return };
        for _ in 0..8 {
            let status = conn.process_tls_records(&mut []);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    if encode_into(outgoing, 64, |out| enc.encode(out)).is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
                _ => return,
            }
        }
    }

    /// Encrypts `data` onto the pending output.
    pub(crate) fn encrypt(&mut self, data: &[u8]) -> Result<(), rustls::Error> {
        let Self { engine, outgoing, .. } = self;
        let conn = match engine {
            Engine::Rustls(conn) => conn,
            Engine::Records(records) => {
                return records.seal(data, outgoing).map_err(|e| rustls::Error::General(e.to_string()))
            }
            Engine::Gone => return Err(over()),
        };
        loop {
            let status = conn.process_tls_records(&mut []);
            match status.state? {
                ConnectionState::WriteTraffic(mut w) => {
                    self.wrote_last |= !data.is_empty();
                    return encode_into(outgoing, seal_guess(data.len()), |out| w.encrypt(data, out));
                }
                ConnectionState::EncodeTlsData(mut enc) => encode_into(outgoing, 4096, |out| enc.encode(out))?,
                ConnectionState::TransmitTlsData(t) => t.done(),
                _ => return Err(rustls::Error::General("TLS session cannot send".into())),
            }
        }
    }

    /// Queues close_notify (best effort: a session that cannot send any more
    /// has nothing to say).
    pub(crate) fn close_notify(&mut self) {
        let Self { engine, outgoing, .. } = self;
        match engine {
            Engine::Rustls(conn) => {
                let status = conn.process_tls_records(&mut []);
                if let Ok(ConnectionState::WriteTraffic(mut w)) = status.state {
                    let _ = encode_into(outgoing, 64, |out| w.queue_close_notify(out));
                }
            }
            Engine::Records(records) => records.close_notify(outgoing),
            Engine::Gone => {}
        }
    }

    /// Writes pending ciphertext with `write` (a non-blocking send). Ok(true)
    /// when all of it is out (its buffer is freed), Ok(false) when the
    /// socket would block.
    pub(crate) fn write_pending(&mut self, mut write: impl FnMut(&[u8]) -> io::Result<usize>) -> io::Result<bool> {
        while self.sent < self.outgoing.len() {
            match write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Ok(true)
    }
}

/// Runs rustls's state machine over `buf` (see `TlsSession::read`);
/// `done` says how much of it rustls is done with.
fn rustls_read(
    conn: &mut UnbufferedServerConnection,
    buf: &mut [u8],
    done: &mut usize,
    plain: &mut Vec<u8>,
    outgoing: &mut Vec<u8>,
    established: &mut bool,
    peer_closed: &mut bool,
) -> Result<(), rustls::Error> {
    loop {
        let status = conn.process_tls_records(&mut buf[*done..]);
        let mut discard = status.discard;
        match status.state? {
            ConnectionState::ReadTraffic(mut records) => {
                while let Some(record) = records.next_record() {
                    let r = record?;
                    discard += r.discard;
                    plain.extend_from_slice(r.payload);
                }
            }
            ConnectionState::EncodeTlsData(mut enc) => encode_into(outgoing, 4096, |out| enc.encode(out))?,
            // The encoded records wait in `outgoing`, written in order
            // before anything encrypted later.
            ConnectionState::TransmitTlsData(t) => t.done(),
            ConnectionState::PeerClosed => *peer_closed = true,
            ConnectionState::Closed => {
                *peer_closed = true;
                *done += discard;
                return Ok(());
            }
            ConnectionState::WriteTraffic(_) => {
                *established = true;
                *done += discard;
                return Ok(());
            }
            ConnectionState::BlockedHandshake => {
                *done += discard;
                return Ok(());
            }
            // Early data is not enabled (the config's max_early_data_size is 0).
            _ => return Err(rustls::Error::General("unexpected TLS state".into())),
        }
        *done += discard;
    }
}

/// Either rustls error that says the buffer was too small.
trait NeedsRoom {
    fn room(&self) -> Option<usize>;
}

impl NeedsRoom for EncodeError {
    fn room(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => Some(*required_size),
            _ => None,
        }
    }
}

impl NeedsRoom for EncryptError {
    fn room(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => Some(*required_size),
            _ => None,
        }
    }
}

/// Room for `len` bytes of application data once sealed: per 16 KiB record
/// a header, a tag, the content type and TLS 1.2's explicit nonce, with
/// some to spare (rustls says so when it needs more).
fn seal_guess(len: usize) -> usize {
    len + (len / (16 * 1024) + 1) * 40 + 64
}

/// Appends what `produce` writes to `out`: a first try with `guess` bytes
/// of room, a second with exactly the room rustls asks for.
fn encode_into<E: NeedsRoom + std::fmt::Debug>(
    out: &mut Vec<u8>,
    guess: usize,
    mut produce: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    out.resize(start + guess, 0);
    let first = produce(&mut out[start..]);
    let written = match first {
        Ok(n) => n,
        Err(e) => match e.room() {
            Some(need) => {
                out.resize(start + need, 0);
                match produce(&mut out[start..]) {
                    Ok(n) => n,
                    Err(e) => {
                        out.truncate(start);
                        return Err(rustls::Error::General(format!("TLS encode: {e:?}")));
                    }
                }
            }
            None => {
                out.truncate(start);
                return Err(rustls::Error::General(format!("TLS encode: {e:?}")));
            }
        },
    };
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::net::tls::{load_client_config, load_server_config, TlsSource};

    fn fixture(name: &str) -> String {
        format!("{}/__test__/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn pair() -> (TlsSession, rustls::ClientConnection) {
        let server =
            load_server_config(&TlsSource::File(fixture("key.pem")), &TlsSource::File(fixture("cert.pem")), None)
                .unwrap();
        let client_cfg = load_client_config(None, None, None, false).unwrap();
        let client = rustls::ClientConnection::new(client_cfg, "localhost".try_into().unwrap()).unwrap();
        (TlsSession::new(server).unwrap(), client)
    }

    /// Moves the client's records to the server `step` bytes at a time and
    /// the server's back; returns the plaintext the server got.
    fn pump(s: &mut TlsSession, c: &mut rustls::ClientConnection, step: usize) -> Vec<u8> {
        let mut plain = Vec::new();
        for _ in 0..64 {
            let mut wire = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut wire).unwrap();
            }
            for chunk in wire.chunks_mut(step) {
                s.read(chunk, &mut plain).unwrap();
            }
            let mut back = Vec::new();
            s.write_pending(|b| {
                back.extend_from_slice(b);
                Ok(b.len())
            })
            .unwrap();
            let mut r = &back[..];
            while !r.is_empty() {
                c.read_tls(&mut r).unwrap();
                c.process_new_packets().unwrap();
            }
            if wire.is_empty() && back.is_empty() {
                break;
            }
        }
        plain
    }

    /// The server's pending output to the client `step` bytes at a time,
    /// read as it comes; returns the client's plaintext.
    fn deliver(s: &mut TlsSession, c: &mut rustls::ClientConnection, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        s.write_pending(|b| {
            wire.extend_from_slice(b);
            Ok(b.len())
        })
        .unwrap();
        let mut got = Vec::new();
        for chunk in wire.chunks(step) {
            let mut r = chunk;
            while !r.is_empty() {
                c.read_tls(&mut r).unwrap();
                c.process_new_packets().unwrap();
                got.extend(client_reads(c));
            }
        }
        got
    }

    fn client_reads(c: &mut rustls::ClientConnection) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match c.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        got
    }

    /// A session past its handshake, settled as a connection's is.
    fn settled_pair() -> (TlsSession, rustls::ClientConnection) {
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        s.encrypt(b"101").unwrap();
        pump(&mut s, &mut c, usize::MAX >> 1);
        assert_eq!(client_reads(&mut c), b"101");
        s.settle();
        assert!(matches!(s.engine, Engine::Records(_)), "TLS 1.3 settles");
        (s, c)
    }

    fn records(s: &mut TlsSession) -> &mut Records {
        match &mut s.engine {
            Engine::Records(r) => r,
            _ => panic!("not settled"),
        }
    }

    #[test]
    fn settled_data_both_ways_even_a_byte_at_a_time_and_nothing_held_idle() {
        for step in [1, 7, 100, 1 << 20] {
            let (mut s, mut c) = settled_pair();
            c.writer().write_all(b"hello over tls").unwrap();
            c.writer().write_all(&[b'z'; 40_000]).unwrap();
            let got = pump(&mut s, &mut c, step);
            assert_eq!(&got[..14], b"hello over tls", "step {step}");
            assert_eq!(got.len(), 40_014, "step {step}");
            s.encrypt(&vec![b'q'; 50_000]).unwrap();
            s.encrypt(b"and back").unwrap();
            let back = deliver(&mut s, &mut c, step);
            assert_eq!(back.len(), 50_008, "step {step}");
            assert_eq!(&back[50_000..], b"and back");
            assert_eq!((s.incoming.capacity(), s.outgoing.capacity()), (0, 0), "step {step}");
        }
    }

    #[test]
    fn settled_key_updates_from_the_client_are_followed_both_ways() {
        let (mut s, mut c) = settled_pair();
        for round in 0..3 {
            c.refresh_traffic_keys().unwrap();
            c.writer().write_all(b"after the update").unwrap();
            assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"after the update", "round {round}");
            s.encrypt(b"answer").unwrap();
            pump(&mut s, &mut c, usize::MAX >> 1);
            assert_eq!(client_reads(&mut c), b"answer", "round {round}");
        }
    }

    #[test]
    fn key_updates_rustls_followed_before_settling_are_found() {
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        for _ in 0..2 {
            c.refresh_traffic_keys().unwrap();
            c.writer().write_all(b"early").unwrap();
            assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"early");
        }
        // rustls holds its answer to the KeyUpdate until it next writes:
        // no hand-over before that (it would be lost).
        s.settle();
        assert!(matches!(s.engine, Engine::Rustls(_)), "not settled before a write");
        s.encrypt(b"HTTP/1.1 101").unwrap();
        pump(&mut s, &mut c, usize::MAX >> 1);
        assert_eq!(client_reads(&mut c), b"HTTP/1.1 101");
        s.settle();
        assert!(matches!(s.engine, Engine::Records(_)), "settled two generations on");
        c.writer().write_all(b"later").unwrap();
        assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"later");
        s.encrypt(b"reply").unwrap();
        pump(&mut s, &mut c, usize::MAX >> 1);
        assert_eq!(client_reads(&mut c), b"reply");
    }

    #[test]
    fn settled_sender_moves_to_the_next_key_at_its_limit() {
        let (mut s, mut c) = settled_pair();
        records(&mut s).set_limit(3);
        for i in 0..10u8 {
            s.encrypt(&[i; 100]).unwrap();
        }
        pump(&mut s, &mut c, usize::MAX >> 1);
        let got = client_reads(&mut c);
        assert_eq!(got, (0..10u8).flat_map(|i| [i; 100]).collect::<Vec<_>>());
        // And the client's records still open (our receive key did not move).
        c.writer().write_all(b"still here").unwrap();
        assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"still here");
    }

    #[test]
    fn settled_close_notify_both_ways() {
        let (mut s, mut c) = settled_pair();
        c.writer().write_all(b"last").unwrap();
        c.send_close_notify();
        assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"last");
        assert!(s.peer_closed());
        s.close_notify();
        pump(&mut s, &mut c, usize::MAX >> 1);
        let mut buf = [0u8; 8];
        assert_eq!(c.reader().read(&mut buf).unwrap(), 0, "clean EOF at the client");
    }

    #[test]
    fn settled_tampering_and_oversize_are_refused_with_an_alert() {
        let (mut s, mut c) = settled_pair();
        c.writer().write_all(b"abc").unwrap();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(s.read(&mut wire, &mut Vec::new()).is_err());
        assert!(s.has_pending(), "bad_record_mac is queued");
        let (mut s, _) = settled_pair();
        let mut bad = [23u8, 3, 3, 0xff, 0xff];
        assert!(s.read(&mut bad, &mut Vec::new()).is_err());
        let (mut s, _) = settled_pair();
        let mut plaintext_alert = [21u8, 3, 3, 0, 2, 1, 0];
        assert!(s.read(&mut plaintext_alert, &mut Vec::new()).is_err(), "records must be protected");
    }

    #[test]
    fn handshake_and_data_both_ways_even_a_byte_at_a_time() {
        for step in [1, 7, 100, usize::MAX] {
            let (mut s, mut c) = pair();
            pump(&mut s, &mut c, step.min(1 << 20));
            assert!(s.is_established() && !c.is_handshaking(), "step {step}");
            c.writer().write_all(b"hello over tls").unwrap();
            assert_eq!(pump(&mut s, &mut c, step.min(1 << 20)), b"hello over tls", "step {step}");
            s.encrypt(b"and back").unwrap();
            pump(&mut s, &mut c, step.min(1 << 20));
            assert_eq!(client_reads(&mut c), b"and back");
            // Idle: nothing held between records.
            assert_eq!((s.incoming.capacity(), s.outgoing.capacity()), (0, 0), "step {step}");
        }
    }

    #[test]
    fn an_incomplete_record_is_kept_and_only_that() {
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        c.writer().write_all(&[b'x'; 3000]).unwrap();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        let mut plain = Vec::new();
        let cut = wire.len() - 10;
        s.read(&mut wire[..cut], &mut plain).unwrap();
        assert!(plain.is_empty());
        assert_eq!(s.incoming.len(), cut);
        s.read(&mut wire[cut..], &mut plain).unwrap();
        assert_eq!(plain, vec![b'x'; 3000]);
        assert_eq!(s.incoming.capacity(), 0);
    }

    #[test]
    fn a_megabyte_goes_out_in_records_the_client_reads_whole() {
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        s.encrypt(&data).unwrap();
        assert!(s.pending_len() > data.len());
        let mut got = Vec::new();
        // The socket takes a little at a time.
        while s.has_pending() {
            let mut wire = Vec::new();
            let mut room = 1000;
            s.write_pending(|b| {
                if room == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = b.len().min(room);
                room -= n;
                wire.extend_from_slice(&b[..n]);
                Ok(n)
            })
            .unwrap();
            let mut r = &wire[..];
            while !r.is_empty() {
                c.read_tls(&mut r).unwrap();
                c.process_new_packets().unwrap();
            }
            got.extend(client_reads(&mut c));
        }
        assert_eq!(got, data);
        assert_eq!(s.outgoing.capacity(), 0);
    }

    #[test]
    fn a_key_update_from_the_client_is_followed_both_ways() {
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        c.refresh_traffic_keys().unwrap();
        c.writer().write_all(b"after the update").unwrap();
        assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"after the update");
        s.encrypt(b"answer").unwrap();
        pump(&mut s, &mut c, usize::MAX >> 1);
        assert_eq!(client_reads(&mut c), b"answer");
    }

    #[test]
    fn close_notify_from_the_client_ends_its_side() {
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        c.writer().write_all(b"last").unwrap();
        c.send_close_notify();
        assert_eq!(pump(&mut s, &mut c, usize::MAX >> 1), b"last");
        assert!(s.peer_closed());
    }

    #[test]
    fn garbage_is_an_error_with_an_alert_to_send() {
        let (mut s, _) = pair();
        let mut junk = *b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(s.read(&mut junk, &mut Vec::new()).is_err());
        let (mut s, mut c) = pair();
        pump(&mut s, &mut c, usize::MAX >> 1);
        // A record header that promises more than any record may hold.
        let mut bad = [23u8, 3, 3, 0xff, 0xff];
        assert!(s.read(&mut bad, &mut Vec::new()).is_err());
        assert!(s.has_pending(), "a fatal alert is queued");
    }
}

#[cfg(test)]
#[path = "tls_session_hostile.rs"]
mod hostile;
