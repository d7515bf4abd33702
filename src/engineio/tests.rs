//! Engine.IO over WebSocket against a real server on loopback: the open
//! packet, the server-driven heartbeat, messages both ways, close reasons.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::engine::{CloseReason, Engine, EngineConfig, EngineHandler, Session};
use super::packet::{Packet, Payload};
use crate::test_support::{client_frame, read_frame, read_head};
use crate::ws::frame::OpCode;
use crate::ws::{Behavior, Conn, Pattern, Request, RequestKind, ServerCore, ServerOptions, WsHandler, WsRoute};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Open(String),
    Message(String, Vec<u8>, bool),
    Close(String, CloseReason),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Ev>>);

impl EngineHandler for Recorder {
    fn open(&self, s: &Arc<Session>) {
        self.0.lock().push(Ev::Open(s.sid.clone()));
    }
    fn message(&self, s: &Arc<Session>, p: Payload) {
        let binary = p.is_binary();
        self.0.lock().push(Ev::Message(s.sid.clone(), p.as_bytes().to_vec(), binary));
    }
    fn close(&self, s: &Arc<Session>, reason: CloseReason) {
        self.0.lock().push(Ev::Close(s.sid.clone(), reason));
    }
}

/// The JS-facing default handler is unused on an Engine.IO route.
struct Unused;
impl WsHandler for Unused {
    fn open(&self, _: &ServerCore, _: &Arc<Conn>) {}
    fn message(&self, _: &ServerCore, _: &Conn, _: &[u8], _: bool) {}
    fn ping(&self, _: &ServerCore, _: &Conn, _: &[u8]) {}
    fn pong(&self, _: &ServerCore, _: &Conn, _: &[u8]) {}
    fn drain(&self, _: &ServerCore, _: &Conn) {}
    fn close(&self, _: &ServerCore, _: &Conn, _: u16, _: &[u8]) {}
    fn request(&self, _: u64, _: RequestKind, _: u16, _: &Request, _: SocketAddr) {}
    fn aborted(&self, _: u64) {}
}

struct Harness {
    _rt: tokio::runtime::Runtime,
    _server: Arc<ServerCore>,
    engine: Arc<Engine>,
    events: Arc<Recorder>,
    addr: SocketAddr,
}

impl Harness {
    fn new(ping_interval_ms: u64, ping_timeout_ms: u64) -> Self {
        let rt = crate::net::build_runtime(2).unwrap();
        let events = Arc::new(Recorder::default());
        let cfg = EngineConfig {
            ping_interval: Duration::from_millis(ping_interval_ms),
            ping_timeout: Duration::from_millis(ping_timeout_ms),
            max_payload: 1_000_000,
        };
        let engine = Engine::new(cfg, events.clone());
        let server = ServerCore::new(Arc::new(Unused), ServerOptions::default()).unwrap();
        let _guard = rt.enter();
        server.start();
        engine.start();
        server.add_ws_route(WsRoute {
            pattern: Pattern::parse("/engine.io/*"),
            // Engine.IO's heartbeat replaces WebSocket-level idle pings.
            behavior: Arc::new(Behavior {
                handler: Some(engine.clone()),
                idle_timeout_secs: 0,
                send_pings: false,
                max_payload: 1_000_000,
                ..Behavior::default()
            }),
            js_upgrade: false,
        });
        let opts = crate::net::ListenOptions { host: "127.0.0.1".into(), port: 0, reuse_port: false, backlog: 128 };
        let (_, addr) = server.listen(crate::net::bind(&opts).unwrap(), None).unwrap();
        Self { _rt: rt, _server: server, engine, events, addr }
    }

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

    fn upgrade(&self, query: &str) -> (TcpStream, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /engine.io/?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let head = read_head(&mut s);
        (s, head)
    }

    /// A connected session: the socket and its sid (from the open packet).
    fn connect(&self) -> (TcpStream, String) {
        let (mut s, head) = self.upgrade("EIO=4&transport=websocket");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let (op, open) = read_frame(&mut s);
        let open = String::from_utf8(open).unwrap();
        assert_eq!(op, 1);
        let sid = open.split("\"sid\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
        (s, sid)
    }
}

fn text(s: &mut TcpStream) -> String {
    let (op, p) = read_frame(s);
    assert_eq!(op, 1, "expected a text frame");
    String::from_utf8(p).unwrap()
}

#[test]
fn open_packet_has_exactly_the_v4_fields_and_no_upgrades_over_websocket() {
    let h = Harness::new(25_000, 20_000);
    let (mut s, head) = h.upgrade("EIO=4&transport=websocket");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let open = text(&mut s);
    let sid = open[9..29].to_string();
    assert_eq!(
        open,
        format!(r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#)
    );
    h.wait_for(|e| *e == Ev::Open(sid.clone()));
    assert!(h.engine.session(&sid).is_some());
}

#[test]
fn wrong_protocol_version_or_transport_is_refused_with_engineio_errors() {
    let h = Harness::new(25_000, 20_000);
    let (_, head) = h.upgrade("EIO=3&transport=websocket");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (mut s, head) = h.upgrade("transport=websocket");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let mut body = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut body).unwrap();
    assert_eq!(&body[..n], br#"{"code":5,"message":"Unsupported protocol version"}"#);
    let (_, head) = h.upgrade("EIO=4&transport=carrier-pigeon");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[test]
fn messages_flow_both_ways() {
    let h = Harness::new(25_000, 20_000);
    let (mut s, sid) = h.connect();
    s.write_all(&client_frame(OpCode::Text, true, b"4hello")).unwrap();
    s.write_all(&client_frame(OpCode::Binary, true, &[1, 2, 3])).unwrap();
    h.wait_for(|e| *e == Ev::Message(sid.clone(), b"hello".to_vec(), false));
    h.wait_for(|e| *e == Ev::Message(sid.clone(), vec![1, 2, 3], true));
    let session = h.engine.session(&sid).unwrap();
    assert!(session.send(&Packet::Message(Payload::text("world"))));
    assert_eq!(text(&mut s), "4world");
}

#[test]
fn the_server_pings_and_a_pong_keeps_the_session_alive() {
    let h = Harness::new(100, 100);
    let (mut s, sid) = h.connect();
    for _ in 0..4 {
        assert_eq!(text(&mut s), "2");
        s.write_all(&client_frame(OpCode::Text, true, b"3")).unwrap();
    }
    assert!(h.engine.session(&sid).is_some(), "answered pings keep the session");
    assert!(!h.events.0.lock().iter().any(|e| matches!(e, Ev::Close(..))));
}

#[test]
fn no_pong_within_ping_timeout_closes_with_ping_timeout() {
    let h = Harness::new(100, 100);
    let (mut s, sid) = h.connect();
    assert_eq!(text(&mut s), "2");
    let t0 = Instant::now();
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::PingTimeout));
    assert!(t0.elapsed() >= Duration::from_millis(80), "closed too early: {:?}", t0.elapsed());
    assert!(h.engine.session(&sid).is_none());
    assert_eq!(h.engine.session_count(), 0);
}

#[test]
fn client_close_packet_and_dropped_socket_end_the_session() {
    let h = Harness::new(25_000, 20_000);
    let (mut a, sid_a) = h.connect();
    a.write_all(&client_frame(OpCode::Text, true, b"1")).unwrap();
    h.wait_for(|e| *e == Ev::Close(sid_a.clone(), CloseReason::TransportClose));
    let (b, sid_b) = h.connect();
    drop(b);
    h.wait_for(|e| *e == Ev::Close(sid_b.clone(), CloseReason::TransportClose));
}

#[test]
fn garbage_and_client_pings_close_the_session() {
    let h = Harness::new(25_000, 20_000);
    let (mut a, sid_a) = h.connect();
    a.write_all(&client_frame(OpCode::Text, true, b"9nope")).unwrap();
    h.wait_for(|e| *e == Ev::Close(sid_a.clone(), CloseReason::ParseError));
    // v4 heartbeats go server -> client; a client ping is a protocol error.
    let (mut b, sid_b) = h.connect();
    b.write_all(&client_frame(OpCode::Text, true, b"2")).unwrap();
    h.wait_for(|e| *e == Ev::Close(sid_b.clone(), CloseReason::TransportError));
}

#[test]
fn close_all_sends_the_close_packet_and_reports_forced_close() {
    let h = Harness::new(25_000, 20_000);
    let (mut s, sid) = h.connect();
    h.engine.close_all();
    assert_eq!(text(&mut s), "1");
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::ForcedClose));
}
