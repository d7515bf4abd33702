//! Engine.IO against a real server on loopback (WebSocket, and long-polling
//! served in Rust): the open packet, the server-driven heartbeat, messages
//! both ways, close reasons.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::engine::{CloseReason, Engine, EngineConfig, EngineHandler, PollReply, Session};
use super::packet::{Packet, Payload};
use crate::test_support::{client_frame, engine_server, read_text, wait_for, ws_upgrade, EngineServer};
use crate::ws::frame::OpCode;
use crate::ws::Request;

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Open(String),
    Message(String, Vec<u8>, bool),
    Close(String, CloseReason),
    PollReady(u64),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Ev>>);

impl EngineHandler for Recorder {
    fn open(&self, s: &Arc<Session>) {
        self.0.lock().push(Ev::Open(s.sid.to_string()));
    }
    fn message(&self, s: &Arc<Session>, p: Payload) -> Result<(), ()> {
        let binary = p.is_binary();
        self.0.lock().push(Ev::Message(s.sid.to_string(), p.as_bytes().to_vec(), binary));
        Ok(())
    }
    fn close(&self, s: &Arc<Session>, reason: CloseReason) {
        self.0.lock().push(Ev::Close(s.sid.to_string(), reason));
    }
    fn poll_ready(&self, req: u64) {
        self.0.lock().push(Ev::PollReady(req));
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
            upgrade_timeout: Duration::from_millis(500),
            ..EngineConfig::default()
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
    // engine.io's abortUpgrade: always 400, the bare message as text/html.
    let mut body = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut body).unwrap();
    assert_eq!(&body[..n], b"Unsupported protocol version");
    assert!(head.contains("text/html"), "{head}");
    let (_, head) = h.upgrade("EIO=4&transport=websocket&sid=nope");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
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

// ---- long-polling (requests as Node's HTTP server hands them over) ----

fn request(method: &str, query: &str) -> Request {
    Request {
        method: method.into(),
        url: format!("/engine.io/?{query}"),
        version: 1,
        headers: vec![("host".into(), "x".into()), ("user-agent".into(), "test".into())],
        head_len: 0,
    }
}

fn remote() -> std::net::SocketAddr {
    "127.0.0.1:5555".parse().unwrap()
}

fn poll(h: &Harness, req_id: u64, method: &str, query: &str, body: &[u8]) -> PollReply {
    h.engine.handle_poll(req_id, &request(method, query), body, false, remote())
}

fn now(reply: PollReply) -> (u16, String) {
    match reply {
        PollReply::Now(a) => (a.status, String::from_utf8(a.body.to_vec()).unwrap()),
        PollReply::Held => panic!("expected an answer, the GET was held"),
    }
}

/// A polling handshake: the sid from the open packet.
fn poll_open(h: &Harness) -> String {
    let (status, body) = now(poll(h, 1, "GET", "EIO=4&transport=polling", b""));
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"0{"sid":""#), "{body}");
    assert!(body.contains(r#""upgrades":["websocket"]"#), "{body}");
    body.split("\"sid\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string()
}

#[test]
fn polling_handshake_get_held_until_data_and_post_delivers() {
    let h = Harness::new(25_000, 20_000);
    let sid = poll_open(&h);
    h.wait_for(|e| *e == Ev::Open(sid.clone()));
    let q = format!("EIO=4&transport=polling&sid={sid}");
    // Nothing queued: the GET is held.
    assert_eq!(poll(&h, 2, "GET", &q, b""), PollReply::Held);
    let s = h.engine.session(&sid).unwrap();
    assert_eq!(s.transport_name(), "polling");
    s.send(&Packet::Message(Payload::text("hello")));
    s.send(&Packet::Message(Payload::Binary(bytes::Bytes::from_static(&[1, 2, 3]))));
    // One notification for the held GET, whose body carries both packets.
    h.wait_for(|e| *e == Ev::PollReady(2));
    assert_eq!(h.events.0.lock().iter().filter(|e| **e == Ev::PollReady(2)).count(), 1);
    assert_eq!(&h.engine.poll_drain(2).unwrap()[..], b"4hello\x1ebAQID");
    assert_eq!(h.engine.poll_drain(2), None, "drained once");
    // POST: two packets in one body, answered "ok".
    let (status, body) = now(poll(&h, 3, "POST", &q, b"4one\x1ebAQID"));
    assert_eq!((status, body.as_str()), (200, "ok"));
    h.wait_for(|e| *e == Ev::Message(sid.clone(), b"one".to_vec(), false));
    h.wait_for(|e| *e == Ev::Message(sid.clone(), vec![1, 2, 3], true));
}

#[test]
fn polling_errors_use_engineio_codes() {
    let h = Harness::new(25_000, 20_000);
    let err = |r: PollReply| now(r);
    assert_eq!(err(poll(&h, 1, "GET", "EIO=4&transport=pigeon", b"")).1, r#"{"code":0,"message":"Transport unknown"}"#);
    assert_eq!(
        err(poll(&h, 1, "GET", "EIO=4&transport=polling&sid=nope", b"")).1,
        r#"{"code":1,"message":"Session ID unknown"}"#
    );
    assert_eq!(
        err(poll(&h, 1, "POST", "EIO=4&transport=polling", b"")).1,
        r#"{"code":2,"message":"Bad handshake method"}"#
    );
    assert_eq!(err(poll(&h, 1, "GET", "EIO=4&transport=websocket", b"")).1, r#"{"code":3,"message":"Bad request"}"#);
    assert_eq!(
        err(poll(&h, 1, "GET", "EIO=3&transport=polling", b"")).1,
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
    let sid = poll_open(&h);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let (status, _) = now(poll(&h, 2, "POST", &q, &vec![b'4'; 1_000_001]));
    assert_eq!(status, 413);
    assert!(h.engine.session(&sid).is_some(), "a refused body does not end the session");
}

#[test]
fn overlapping_gets_end_the_session_and_release_the_held_one_with_close() {
    let h = Harness::new(25_000, 20_000);
    let sid = poll_open(&h);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(poll(&h, 2, "GET", &q, b""), PollReply::Held);
    assert_eq!(now(poll(&h, 3, "GET", &q, b"")).0, 400);
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::TransportError));
    h.wait_for(|e| *e == Ev::PollReady(2));
    assert_eq!(&h.engine.poll_drain(2).unwrap()[..], b"1");
}

#[test]
fn aborted_get_ends_the_session_and_polling_heartbeat_times_out() {
    let h = Harness::new(60, 60);
    let sid = poll_open(&h);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(poll(&h, 2, "GET", &q, b""), PollReply::Held);
    h.engine.poll_abort(2);
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::TransportError));
    // A client that polls once and never answers the ping: "ping timeout".
    let sid = poll_open(&h);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(poll(&h, 3, "GET", &q, b""), PollReply::Held);
    h.wait_for(|e| *e == Ev::PollReady(3));
    assert_eq!(&h.engine.poll_drain(3).unwrap()[..], b"2");
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::PingTimeout));
}

#[test]
fn polling_pong_by_post_keeps_the_session_alive() {
    let h = Harness::new(80, 80);
    let sid = poll_open(&h);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    for round in 0..4u64 {
        let id = 10 + round;
        match poll(&h, id, "GET", &q, b"") {
            PollReply::Held => {
                h.wait_for(|e| *e == Ev::PollReady(id));
                assert_eq!(&h.engine.poll_drain(id).unwrap()[..], b"2");
            }
            PollReply::Now(a) => assert_eq!(&a.body[..], b"2"),
        }
        assert_eq!(now(poll(&h, 100 + round, "POST", &q, b"3")).0, 200);
    }
    assert!(h.engine.session(&sid).is_some());
    assert!(!h.events.0.lock().iter().any(|e| matches!(e, Ev::Close(..))));
}

#[test]
fn upgrade_probe_then_5_moves_the_session_to_websocket() {
    let h = Harness::new(25_000, 20_000);
    let sid = poll_open(&h);
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(poll(&h, 2, "GET", &q, b""), PollReply::Held);
    let (mut ws, head) = h.upgrade(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A second probe for the same session is accepted and closed at once.
    let (mut second, head2) = h.upgrade(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(head2.starts_with("HTTP/1.1 101"), "{head2}");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut second, &mut rest);
    assert!(rest.is_empty() || rest[0] & 0x0f == 8, "closed unanswered: {rest:?}");
    ws.write_all(&client_frame(OpCode::Text, true, b"2probe")).unwrap();
    assert_eq!(text(&mut ws), "3probe");
    // The held GET is released with a noop so the client can pause polling.
    h.wait_for(|e| *e == Ev::PollReady(2));
    assert_eq!(&h.engine.poll_drain(2).unwrap()[..], b"6");
    let s = h.engine.session(&sid).unwrap();
    s.send(&Packet::Message(Payload::text("queued while upgrading")));
    ws.write_all(&client_frame(OpCode::Text, true, b"5")).unwrap();
    // Packets queued for polling move over to the WebSocket.
    assert_eq!(text(&mut ws), "4queued while upgrading");
    crate::test_support::wait_until("upgrade", || s.transport_name() == "websocket");
    s.send(&Packet::Message(Payload::text("after")));
    assert_eq!(text(&mut ws), "4after");
    ws.write_all(&client_frame(OpCode::Text, true, b"4up")).unwrap();
    h.wait_for(|e| *e == Ev::Message(sid.clone(), b"up".to_vec(), false));
    // Polling is over for this sid.
    assert_eq!(now(poll(&h, 3, "GET", &q, b"")), (400, r#"{"code":3,"message":"Bad request"}"#.to_string()));
    drop(ws);
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::TransportClose));
}

#[test]
fn a_probe_that_never_sends_5_is_dropped_and_polling_carries_on() {
    let h = Harness::new(25_000, 20_000);
    let sid = poll_open(&h);
    let (mut ws, head) = h.upgrade(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.write_all(&client_frame(OpCode::Text, true, b"2probe")).unwrap();
    assert_eq!(text(&mut ws), "3probe");
    // upgradeTimeout is 500 ms in this harness: the server closes the probe.
    let (op, _) = crate::test_support::read_frame(&mut ws);
    assert_eq!(op, 8, "close frame");
    let s = h.engine.session(&sid).unwrap();
    assert_eq!(s.transport_name(), "polling");
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let (status, body) = now(poll(&h, 5, "GET", &q, b""));
    assert_eq!((status, body.as_str()), (200, "6"));
}

#[test]
fn repeated_probes_release_the_held_get_once_and_a_queue_past_its_cap_ends_the_session() {
    let h = Harness::new(25_000, 20_000);
    let sid = poll_open(&h);
    let (mut ws, head) = h.upgrade(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for _ in 0..3 {
        ws.write_all(&client_frame(OpCode::Text, true, b"2probe")).unwrap();
        assert_eq!(text(&mut ws), "3probe");
    }
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(now(poll(&h, 2, "GET", &q, b"")), (200, "6".to_string()), "one noop for three probes");
    // A polling client that never GETs while 17 MiB are sent to it.
    let s = h.engine.session(&sid).unwrap();
    let chunk = "x".repeat(1 << 20);
    for _ in 0..17 {
        s.send(&Packet::Message(Payload::text(chunk.clone())));
    }
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::TransportError));
}

/// A raw HTTP exchange with the Rust-served polling route: the request in
/// `parts` (written apart, `gap` between them), then the status code and
/// body of the answer (the server closes after it).
fn raw_http(addr: std::net::SocketAddr, parts: &[&[u8]], gap: Duration) -> (u16, String) {
    use std::io::Read;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(gap);
        }
        s.write_all(p).unwrap();
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

#[test]
fn polling_served_in_rust_reads_bodies_whole_holds_gets_and_refuses_bad_lengths() {
    use super::engine::PollingService;
    use crate::ws::{HttpRoute, Pattern};
    let h = Harness::new(25_000, 20_000);
    h.srv.server.add_http_route(HttpRoute {
        method: None,
        pattern: Pattern::parse("/engine.io/*"),
        service: Some(Arc::new(PollingService(h.engine.clone()))),
    });
    let addr = h.srv.addr;
    let get = |q: &str| format!("GET /engine.io/?EIO=4&transport=polling{q} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, open) = raw_http(addr, &[get("").as_bytes()], Duration::ZERO);
    assert_eq!(status, 200);
    let sid = open.split("\"sid\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let q = format!("&sid={sid}");

    // A body that arrives in two pieces is read whole.
    let head = format!("POST /engine.io/?EIO=4&transport=polling{q} HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n");
    let (status, ok) = raw_http(addr, &[head.as_bytes(), b"4hello", b"\x1e4world"], Duration::from_millis(50));
    assert_eq!((status, ok.as_str()), (200, "ok"));
    h.wait_for(|e| *e == Ev::Message(sid.clone(), b"world".to_vec(), false));

    // A GET with nothing to say is held until something is sent.
    let held = std::thread::spawn({
        let get = get(&q);
        move || raw_http(addr, &[get.as_bytes()], Duration::ZERO)
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(h.engine.session(&sid).unwrap().send(&Packet::Message(Payload::text("later"))));
    assert_eq!(held.join().unwrap(), (200, "4later".to_string()));

    // Lengths the route cannot read, or beyond maxHttpBufferSize.
    let chunked = format!(
        "POST /engine.io/?EIO=4&transport=polling{q} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n4hey!\r\n0\r\n\r\n"
    );
    assert_eq!(raw_http(addr, &[chunked.as_bytes()], Duration::ZERO).0, 411);
    let big =
        format!("POST /engine.io/?EIO=4&transport=polling{q} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
    assert_eq!(raw_http(addr, &[big.as_bytes()], Duration::ZERO).0, 413);

    // A client that leaves its held GET ends the session, as engine.io does.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(get(&q).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(s);
    h.wait_for(|e| *e == Ev::Close(sid.clone(), CloseReason::TransportError));
}
