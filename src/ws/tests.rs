//! The server over real loopback TCP, without Node: raw bytes in, events and
//! raw bytes out. The handler records events; replies go through the same
//! `ServerCore` calls the N-API layer makes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::frame::{self, OpCode};
use super::{Behavior, Conn, ConnHost, Pattern, RequestSink, ServerCore, ServerOptions, WsHandler, WsRoute};
use crate::test_support::{client_frame, read_frame, read_head};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Open(u64),
    Message(u64, Vec<u8>, bool),
    Close(u64, u16),
}

/// Records events; with a nonzero size, sends that many bytes on open.
#[derive(Default)]
struct Recorder(Mutex<Vec<Ev>>, usize);

impl WsHandler for Recorder {
    fn open(&self, host: &dyn ConnHost, conn: &Arc<Conn>) {
        self.0.lock().push(Ev::Open(conn.id));
        if self.1 > 0 {
            // Like a JS `open` handler sending at once, before the socket is in its group.
            conn.send(host, &vec![7u8; self.1], true);
        }
    }
    fn message(&self, _: &dyn ConnHost, conn: &Conn, payload: &[u8], binary: bool) {
        self.0.lock().push(Ev::Message(conn.id, payload.to_vec(), binary));
    }
    fn ping(&self, _: &dyn ConnHost, _: &Conn, _: &[u8]) {}
    fn pong(&self, _: &dyn ConnHost, _: &Conn, _: &[u8]) {}
    fn drain(&self, _: &dyn ConnHost, _: &Conn) {}
    fn close(&self, _: &dyn ConnHost, conn: &Conn, code: u16, _: &[u8]) {
        self.0.lock().push(Ev::Close(conn.id, code));
    }
}

/// The tests' routes make no requests upward.
struct NoRequests;
impl RequestSink for NoRequests {}

/// The route settings under test; the harness puts its recorder in.
fn settings() -> Behavior {
    Behavior::new(Arc::new(Recorder::default()))
}

struct Harness {
    _rt: tokio::runtime::Runtime,
    server: Arc<ServerCore>,
    events: Arc<Recorder>,
    addr: SocketAddr,
}

impl Harness {
    fn new(behavior: Behavior) -> Self {
        Self::with_recorder(behavior, Recorder::default())
    }

    fn with_recorder(behavior: Behavior, recorder: Recorder) -> Self {
        Self::with_options(behavior, recorder, ServerOptions::default())
    }

    fn with_options(behavior: Behavior, recorder: Recorder, opts: ServerOptions) -> Self {
        Self::listening(behavior, recorder, opts, None)
    }

    /// Over TLS, with the fixture certificate.
    fn with_tls(behavior: Behavior) -> Self {
        let fixture = |name: &str| {
            crate::net::TlsSource::File(format!("{}/__test__/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
        };
        let tls = crate::net::load_server_config(&fixture("key.pem"), &fixture("cert.pem"), None).unwrap();
        Self::listening(behavior, Recorder::default(), ServerOptions::default(), Some(tls))
    }

    fn listening(
        behavior: Behavior,
        recorder: Recorder,
        opts: ServerOptions,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let rt = crate::net::build_runtime(2).unwrap();
        let events = Arc::new(recorder);
        let server = ServerCore::new(Arc::new(NoRequests), opts).unwrap();
        let _guard = rt.enter();
        server.start().unwrap();
        let behavior = Behavior { handler: events.clone(), ..behavior };
        server.add_ws_route(WsRoute { pattern: Pattern::parse("/*"), behavior: Arc::new(behavior), js_upgrade: false });
        let opts = crate::net::ListenOptions { host: "127.0.0.1".into(), port: 0, reuse_port: false, backlog: 128 };
        let (_, addr) = server.listen(crate::net::bind(&opts).unwrap(), tls).unwrap();
        Self { _rt: rt, server, events, addr }
    }

    /// Waits (bounded) until an event matching `f` was recorded.
    fn wait_for(&self, f: impl Fn(&Ev) -> bool) -> Ev {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(e) = self.events.0.lock().iter().find(|e| f(e)) {
                return e.clone();
            }
            assert!(Instant::now() < deadline, "event not seen; got {:?}", self.events.0.lock());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Connects and upgrades; returns the socket and the server's id for it.
    fn connect(&self, extra: &[u8]) -> (TcpStream, u64) {
        let known: Vec<u64> =
            self.events.0.lock().iter().filter_map(|e| if let Ev::Open(i) = e { Some(*i) } else { None }).collect();
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .to_vec();
        req.extend_from_slice(extra);
        s.write_all(&req).unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        let Ev::Open(id) = self.wait_for(|e| matches!(e, Ev::Open(i) if !known.contains(i))) else { unreachable!() };
        (s, id)
    }
}

#[test]
fn message_reaches_the_handler_and_send_reaches_the_client() {
    let h = Harness::new(settings());
    let (mut s, id) = h.connect(b"");
    s.write_all(&client_frame(OpCode::Text, true, b"hello")).unwrap();
    h.wait_for(|e| *e == Ev::Message(id, b"hello".to_vec(), false));
    assert_eq!(h.server.send(id, b"back", true, false), Some(super::conn::SendStatus::Success));
    assert_eq!(read_frame(&mut s), (2, b"back".to_vec()));
}

#[test]
fn frames_in_the_upgrade_segment_are_processed() {
    let h = Harness::new(settings());
    let (_s, id) = h.connect(&client_frame(OpCode::Binary, true, &[1, 2, 3]));
    h.wait_for(|e| *e == Ev::Message(id, vec![1, 2, 3], true));
}

#[test]
fn ping_is_answered_with_the_same_payload() {
    let h = Harness::new(settings());
    let (mut s, _) = h.connect(b"");
    s.write_all(&client_frame(OpCode::Ping, true, b"abc")).unwrap();
    assert_eq!(read_frame(&mut s), (0xA, b"abc".to_vec()));
}

#[test]
fn a_message_split_across_many_writes_is_reassembled() {
    let h = Harness::new(Behavior { max_payload: 1 << 20, ..settings() });
    let (mut s, id) = h.connect(b"");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in client_frame(OpCode::Binary, true, &payload).chunks(7_001) {
        s.write_all(chunk).unwrap();
    }
    h.wait_for(|e| matches!(e, Ev::Message(i, p, true) if *i == id && *p == payload));
}

#[test]
fn unmasked_frame_closes_with_1002() {
    let h = Harness::new(settings());
    let (mut s, id) = h.connect(b"");
    s.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    let (op, p) = read_frame(&mut s);
    assert_eq!((op, u16::from_be_bytes([p[0], p[1]])), (8, 1002));
    h.wait_for(|e| *e == Ev::Close(id, 1002));
    // And the TCP connection ends.
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[test]
fn oversized_declared_length_closes_with_1009_before_the_payload() {
    let h = Harness::new(Behavior { max_payload: 1024, ..settings() });
    let (mut s, id) = h.connect(b"");
    // Header only: 1 MiB declared, nothing sent after it.
    let mut hdr = [0u8; 14];
    let n = frame::encode_header_masked(OpCode::Binary, true, 1 << 20, [1, 2, 3, 4], &mut hdr);
    s.write_all(&hdr[..n]).unwrap();
    let (op, p) = read_frame(&mut s);
    assert_eq!((op, u16::from_be_bytes([p[0], p[1]])), (8, 1009));
    h.wait_for(|e| *e == Ev::Close(id, 1009));
}

#[test]
fn publish_frames_once_and_skips_the_sender() {
    let h = Harness::new(settings());
    let (mut a, ida) = h.connect(b"");
    let (mut b, idb) = h.connect(b"");
    for id in [ida, idb] {
        assert!(h.server.subscribe(&h.server.get(id).unwrap(), "room"));
    }
    assert_eq!(h.server.publish("room", b"to-b", false, Some(ida), false), 1);
    assert_eq!(h.server.publish("room", b"to-all", false, None, false), 2);
    h.server.flush();
    assert_eq!(read_frame(&mut b), (1, b"to-b".to_vec()));
    assert_eq!(read_frame(&mut b), (1, b"to-all".to_vec()));
    assert_eq!(read_frame(&mut a), (1, b"to-all".to_vec()));
    // Closing a subscriber drops its subscriptions at once.
    a.write_all(&client_frame(OpCode::Close, true, &1000u16.to_be_bytes())).unwrap();
    h.wait_for(|e| *e == Ev::Close(ida, 1000));
    assert_eq!(h.server.num_subscribers("room"), 1);
}

#[test]
fn idle_connection_is_pinged_then_closed() {
    let h = Harness::new(Behavior { idle_timeout_secs: 2, ..settings() });
    let (mut s, id) = h.connect(b"");
    // Half the idle timeout without traffic: an automatic ping.
    assert_eq!(read_frame(&mut s).0, 0x9);
    // Not answering it: closed as 1006 (abnormal), like uWS.js.
    h.wait_for(|e| *e == Ev::Close(id, 1006));
    assert!(h.server.get(id).is_none() || !h.server.get(id).unwrap().is_open());
}

#[test]
fn a_blocking_send_from_open_is_still_delivered_in_full() {
    // Larger than loopback's socket buffers on both ends, so the send blocks.
    const N: usize = 32 << 20;
    let recorder = Recorder(Mutex::default(), N);
    let h = Harness::with_recorder(Behavior { max_backpressure: 64 << 20, ..settings() }, recorder);
    let (mut s, _) = h.connect(b"");
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while got < N + 10 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert_eq!(got, N + 10, "32 MiB + a 10-byte header must all arrive");
}

#[test]
fn subscribing_while_the_peer_closes_never_leaves_a_subscription_behind() {
    let h = Harness::new(settings());
    for _ in 0..300 {
        let (mut s, id) = h.connect(b"");
        let conn = h.server.get(id).unwrap();
        let closer = std::thread::spawn(move || {
            s.write_all(&client_frame(OpCode::Close, true, &1000u16.to_be_bytes())).unwrap();
            s
        });
        // Hammer subscribe/unsubscribe across the close; a subscribe that
        // succeeds once the connection is no longer open is left in place
        // for the check below.
        loop {
            let subscribed = h.server.subscribe(&conn, "t");
            if !conn.is_open() {
                break;
            }
            if subscribed {
                h.server.unsubscribe(id, "t");
            }
        }
        h.wait_for(|e| *e == Ev::Close(id, 1000));
        assert!(!h.server.is_subscribed(id, "t"), "closed connection {id} still subscribed");
        drop(closer.join().unwrap());
    }
    assert_eq!(h.server.num_subscribers("t"), 0);
}

#[test]
fn pings_from_a_peer_that_never_reads_do_not_grow_the_queue() {
    let h = Harness::new(Behavior { max_backpressure: 64 * 1024, ..settings() });
    let (mut s, id) = h.connect(b"");
    let ping = client_frame(OpCode::Ping, true, &[0u8; 125]);
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 2000).collect();
    s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    // ~260 KB of pings per write, 40 writes, never reading a byte.
    for _ in 0..40 {
        if s.write_all(&burst).is_err() {
            break; // the server stopped reading: also fine
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    // At most one pong partly written and one pending (not counted).
    let buffered = h.server.get(id).map_or(0, |c| c.buffered_amount());
    assert!(buffered <= 127 + 4, "queued {buffered} bytes of pongs");
}

#[test]
fn a_control_frame_flood_is_closed_with_1008() {
    let h = Harness::new(settings());
    let (mut s, id) = h.connect(b"");
    // 2500 empty pings at once: even split over two ticks, one holds > 1000.
    let ping = client_frame(OpCode::Ping, true, b"");
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 2500).collect();
    s.write_all(&burst).unwrap();
    let mut pongs = 0;
    let close = loop {
        match read_frame(&mut s) {
            (0xA, _) => pongs += 1,
            (0x8, p) => break u16::from_be_bytes([p[0], p[1]]),
            (op, _) => panic!("unexpected opcode {op}"),
        }
    };
    assert_eq!(close, 1008);
    assert!((1..=super::conn::MAX_CONTROL_FRAMES_PER_TICK * 2).contains(&pongs), "{pongs} pongs");
    h.wait_for(|e| *e == Ev::Close(id, 1008));
}

#[test]
fn pongs_wait_behind_queued_frames_and_only_the_latest_is_sent() {
    // A peer that does not read: its 32 MiB message stays queued, and the
    // pings it sends meanwhile are answered once, for the last one, after it.
    const N: usize = 32 << 20;
    let h =
        Harness::with_recorder(Behavior { max_backpressure: 64 << 20, ..settings() }, Recorder(Mutex::default(), N));
    let (mut s, _) = h.connect(b"");
    for i in 0u16..300 {
        s.write_all(&client_frame(OpCode::Ping, true, &i.to_be_bytes())).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let (op, data) = read_frame(&mut s);
    assert_eq!((op, data.len()), (2, N));
    assert_eq!(read_frame(&mut s), (0xA, 299u16.to_be_bytes().to_vec()));
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut more = [0u8; 1];
    assert!(s.read(&mut more).is_err(), "nothing after the one pong");
}

#[test]
fn frames_nobody_handles_never_reach_the_handler() {
    let forward = super::Forward { message: false, ping: true, pong: true };
    let h = Harness::new(Behavior { forward, ..settings() });
    let (mut s, id) = h.connect(b"");
    s.write_all(&client_frame(OpCode::Text, true, b"nobody listens")).unwrap();
    s.write_all(&client_frame(OpCode::Ping, true, b"still here")).unwrap();
    assert_eq!(read_frame(&mut s), (0xA, b"still here".to_vec()));
    assert!(!h.events.0.lock().iter().any(|e| matches!(e, Ev::Message(..))), "a message crossed");
    assert!(h.server.get(id).unwrap().is_open());
}

#[test]
fn a_declared_length_reserves_nothing_until_bytes_arrive() {
    let h = Harness::new(Behavior { max_payload: 1 << 30, ..settings() });
    let (mut s, id) = h.connect(b"");
    let mut hdr = [0u8; 14];
    let n = frame::encode_header_masked(OpCode::Binary, true, 1 << 30, [1, 2, 3, 4], &mut hdr);
    s.write_all(&hdr[..n]).unwrap();
    s.write_all(&[0u8; 100]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let cap = h.server.get(id).unwrap().partial_capacity();
    assert!(cap < 1 << 20, "a 1 GiB header made the server hold {cap} bytes");
}

#[test]
fn sends_the_kernel_only_partly_takes_keep_every_byte_in_order() {
    // A peer that does not read: direct sends soon go out in part, and the
    // rest is queued behind them. Small sends (copied into one buffer), large
    // sends (header and payload as two parts) and sends behind a queue must
    // all arrive whole and in order once the peer reads.
    let h = Harness::new(Behavior { max_backpressure: 256 << 20, ..settings() });
    let (mut s, id) = h.connect(b"");
    let mut sent = Vec::new();
    let mut i = 0u32;
    while sent.len() < 600 {
        let len = match i % 3 {
            0 => 100,
            1 => 3000,
            _ => 70_000,
        };
        let payload: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
        assert!(h.server.send(id, &payload, true, false).is_some());
        sent.push(payload);
        i += 1;
    }
    let c = h.server.get(id).unwrap();
    assert!(c.buffered_amount() > 0, "the kernel buffers must have filled up");
    for want in &sent {
        let (op, got) = read_frame(&mut s);
        assert_eq!(op, 2);
        assert_eq!(got.len(), want.len());
        assert!(got == *want, "payload of {} bytes differs", want.len());
    }
}

#[test]
fn a_batch_the_layer_above_never_takes_delays_reading_only_briefly() {
    // The groups wait for a pending batch to be taken before reading, but only
    // up to COALESCE: a JS thread that is stuck must not stop pings being
    // answered or messages being read (the inflow limit bounds the backlog).
    let inflow = Arc::new(super::Inflow::new(1 << 20));
    // Large enough that the groups coalesce behind it (COALESCE_FROM).
    inflow.add(64 << 10);
    let h = Harness::with_options(
        settings(),
        Recorder::default(),
        ServerOptions { inflow: inflow.clone(), ..ServerOptions::default() },
    );
    let (mut s, id) = h.connect(b"");
    let t = Instant::now();
    s.write_all(&client_frame(OpCode::Ping, true, b"abc")).unwrap();
    assert_eq!(read_frame(&mut s), (0xA, b"abc".to_vec()));
    assert!(t.elapsed() < Duration::from_millis(500), "pong after {:?}", t.elapsed());
    s.write_all(&client_frame(OpCode::Text, true, b"still read")).unwrap();
    h.wait_for(|e| *e == Ev::Message(id, b"still read".to_vec(), false));
    assert!(inflow.has_pending(), "nobody took the batch");
    // Over the limit, a connection that produced little of the backlog is
    // still read.
    inflow.add(1 << 20);
    s.write_all(&client_frame(OpCode::Text, true, b"light")).unwrap();
    h.wait_for(|e| *e == Ev::Message(id, b"light".to_vec(), false));
    // Over twice the limit, reading stops until the batch is taken.
    inflow.add(2 << 20);
    s.write_all(&client_frame(OpCode::Text, true, b"after")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        !h.events.0.lock().iter().any(|e| *e == Ev::Message(id, b"after".to_vec(), false)),
        "read while far over the limit"
    );
    inflow.drained();
    h.wait_for(|e| *e == Ev::Message(id, b"after".to_vec(), false));
}

#[test]
fn over_the_limit_only_the_connections_that_made_the_backlog_wait() {
    let inflow = Arc::new(super::Inflow::new(1 << 20));
    let h = Harness::with_options(
        settings(),
        Recorder::default(),
        ServerOptions { inflow: inflow.clone(), ..ServerOptions::default() },
    );
    let (mut heavy, heavy_id) = h.connect(b"");
    let (mut light, light_id) = h.connect(b"");
    // The heavy peer hands up more than its share (64 KiB here), then the
    // backlog goes over the limit without the layer above taking it.
    let big = vec![1u8; 8 << 10];
    for _ in 0..10 {
        heavy.write_all(&client_frame(OpCode::Binary, true, &big)).unwrap();
    }
    h.wait_for(|e| matches!(e, Ev::Message(i, p, _) if *i == heavy_id && p.len() == big.len()));
    std::thread::sleep(Duration::from_millis(100));
    inflow.add((1 << 20) + 1);
    heavy.write_all(&client_frame(OpCode::Text, true, b"heavy waits")).unwrap();
    light.write_all(&client_frame(OpCode::Text, true, b"light goes on")).unwrap();
    h.wait_for(|e| *e == Ev::Message(light_id, b"light goes on".to_vec(), false));
    // The light one still answers pings; the heavy one is not read.
    light.write_all(&client_frame(OpCode::Ping, true, b"p")).unwrap();
    assert_eq!(read_frame(&mut light), (0xA, b"p".to_vec()));
    std::thread::sleep(Duration::from_millis(150));
    let heard = |m: &[u8]| h.events.0.lock().iter().any(|e| *e == Ev::Message(heavy_id, m.to_vec(), false));
    assert!(!heard(b"heavy waits"), "the heavy connection was read over the limit");
    // Once the backlog is taken, it is read again.
    inflow.drained();
    h.wait_for(|e| *e == Ev::Message(heavy_id, b"heavy waits".to_vec(), false));
}

/// A TLS client (rustls, trusting anything) over a blocking socket.
fn tls_client(addr: SocketAddr) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = crate::net::tls::load_client_config(None, None, None, false).unwrap();
    let conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    rustls::StreamOwned::new(conn, sock)
}

#[test]
fn tls_connections_carry_frames_and_end_with_close_notify() {
    let h = Harness::with_tls(Behavior { max_payload: 1 << 20, ..settings() });
    let mut s = tls_client(h.addr);
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&got));
    let Ev::Open(id) = h.wait_for(|e| matches!(e, Ev::Open(_))) else { unreachable!() };
    // Both ways, a message larger than one TLS record included.
    let big = vec![b'x'; 40_000];
    s.write_all(&client_frame(OpCode::Binary, true, &big)).unwrap();
    h.wait_for(|e| *e == Ev::Message(id, big.clone(), true));
    assert_eq!(h.server.send(id, &big, true, false), Some(super::conn::SendStatus::Success));
    let mut frame = vec![0u8; 4 + big.len()];
    s.read_exact(&mut frame).unwrap();
    assert_eq!((frame[0], frame[1]), (0x82, 126));
    assert_eq!(&frame[4..], &big[..]);
    // Our close frame, the client's answer, then close_notify before the
    // socket closes: a clean end of the TLS stream, not a truncation.
    assert!(h.server.end(id, 1000, b"bye"));
    let mut close = [0u8; 7];
    s.read_exact(&mut close).unwrap();
    assert_eq!(&close[..4], &[0x88, 5, 0x03, 0xe8]);
    s.write_all(&client_frame(OpCode::Close, true, &[0x03, 0xe8])).unwrap();
    let mut rest = Vec::new();
    let end = s.read_to_end(&mut rest);
    assert!(end.is_ok(), "the stream ends with close_notify: {end:?}");
    assert!(rest.is_empty());
}
