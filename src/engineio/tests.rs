//! Engine.IO over WebSocket against a real server on loopback: the open
//! packet, the server-driven heartbeat, messages both ways, close reasons.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::engine::{CloseReason, Engine, EngineConfig, EngineHandler, Session};
use super::packet::{Packet, Payload};
use crate::test_support::{client_frame, engine_server, read_text, wait_for, ws_upgrade, EngineServer};
use crate::ws::frame::OpCode;

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
    fn message(&self, s: &Arc<Session>, p: Payload) -> Result<(), ()> {
        let binary = p.is_binary();
        self.0.lock().push(Ev::Message(s.sid.clone(), p.as_bytes().to_vec(), binary));
        Ok(())
    }
    fn close(&self, s: &Arc<Session>, reason: CloseReason) {
        self.0.lock().push(Ev::Close(s.sid.clone(), reason));
    }
}

struct Harness {
    srv: EngineServer,
    engine: Arc<Engine>,
    events: Arc<Recorder>,
}

impl Harness {
    fn new(ping_interval_ms: u64, ping_timeout_ms: u64) -> Self {
        let events = Arc::new(Recorder::default());
        let cfg = EngineConfig {
            ping_interval: Duration::from_millis(ping_interval_ms),
            ping_timeout: Duration::from_millis(ping_timeout_ms),
            max_payload: 1_000_000,
        };
        let srv = engine_server(cfg, events.clone());
        let engine = srv.engine.clone();
        Self { srv, engine, events }
    }

    fn wait_for(&self, f: impl Fn(&Ev) -> bool) -> Ev {
        wait_for(&self.events.0, f)
    }

    fn upgrade(&self, query: &str) -> (TcpStream, String) {
        ws_upgrade(self.srv.addr, query)
    }

    /// A connected session: the socket and its sid (from the open packet).
    fn connect(&self) -> (TcpStream, String) {
        let (mut s, head) = self.upgrade("EIO=4&transport=websocket");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let open = text(&mut s);
        let sid = open.split("\"sid\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
        (s, sid)
    }
}

fn text(s: &mut TcpStream) -> String {
    read_text(s)
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
