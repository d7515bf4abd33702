//! Socket.IO over Engine.IO over WebSocket against a real server on
//! loopback: namespace handshakes, events, binary attachments, rooms and
//! broadcast, protocol violations.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::packet::PacketType;
use super::server::{Client, Restore, SioHandler, SioServer};
use crate::adapter::recovery::RecoveryConfig;
use crate::adapter::BroadcastOptions;
use crate::engineio::engine::{CloseReason, EngineConfig};
use crate::test_support::{
    client_frame, engine_server, read_frame, read_text, wait_for, wait_until, ws_upgrade, EngineServer,
};
use crate::ws::frame::OpCode;

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    /// Client key, namespace, auth, and the socket id Rust made.
    Connect(u64, String, String, String),
    Packet(u64, PacketType, String, Option<u64>, String, usize),
    Disconnect(u64, String),
    Close(u64, CloseReason),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Ev>>);

impl SioHandler for Recorder {
    fn poll_ready(&self, _req: u64) {}
    fn connect(&self, c: &Arc<Client>, nsp: &str, auth: &str, socket_id: &str, _pid: &str) {
        self.0.lock().push(Ev::Connect(c.key, nsp.into(), auth.into(), socket_id.into()));
    }
    fn packet(&self, c: &Arc<Client>, kind: PacketType, nsp: &str, id: Option<u64>, data: &str, att: Vec<Bytes>) {
        self.0.lock().push(Ev::Packet(c.key, kind, nsp.into(), id, data.into(), att.len()));
    }
    fn disconnect(&self, c: &Arc<Client>, nsp: &str) {
        self.0.lock().push(Ev::Disconnect(c.key, nsp.into()));
    }
    fn close(&self, c: &Arc<Client>, reason: CloseReason) {
        self.0.lock().push(Ev::Close(c.key, reason));
    }
}

struct Harness {
    srv: EngineServer,
    sio: Arc<SioServer>,
    events: Arc<Recorder>,
}

impl Harness {
    fn new() -> Self {
        Self::with_connect_timeout(Duration::from_secs(45))
    }

    fn with_connect_timeout(connect_timeout: Duration) -> Self {
        Self::with(connect_timeout, None)
    }

    fn with(connect_timeout: Duration, recovery: Option<RecoveryConfig>) -> Self {
        let events = Arc::new(Recorder::default());
        let sio = SioServer::new(events.clone(), connect_timeout, recovery);
        // Short heartbeat intervals only so that the engine ticks often.
        let cfg = EngineConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_millis(80),
            ..EngineConfig::default()
        };
        let srv = engine_server(cfg, sio.clone());
        Self { srv, sio, events }
    }

    fn wait_for(&self, f: impl Fn(&Ev) -> bool) -> Ev {
        wait_for(&self.events.0, f)
    }

    /// Engine.IO open, then CONNECT to `/` accepted; the socket and the
    /// client's key and socket id.
    fn connect(&self) -> (TcpStream, u64, String) {
        let (mut s, head) = ws_upgrade(self.srv.addr, "EIO=4&transport=websocket");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(read_text(&mut s).starts_with("0{"));
        let seen = self.events.0.lock().len();
        send(&mut s, "40");
        wait_until("CONNECT", || self.events.0.lock()[seen..].iter().any(|e| matches!(e, Ev::Connect(..))));
        let ev = self.events.0.lock()[seen..].iter().find(|e| matches!(e, Ev::Connect(..))).cloned().unwrap();
        let Ev::Connect(key, nsp, _, socket_id) = ev else { unreachable!() };
        assert_eq!(nsp, "/");
        assert!(self.sio.accept(key, "/", &socket_id, None));
        assert_eq!(read_text(&mut s), format!(r#"40{{"sid":"{socket_id}"}}"#));
        (s, key, socket_id)
    }

    /// The next CONNECT after event `seen`: (key, socket id).
    fn next_connect(&self, seen: usize) -> (u64, String) {
        wait_until("CONNECT", || self.events.0.lock()[seen..].iter().any(|e| matches!(e, Ev::Connect(..))));
        let ev = self.events.0.lock()[seen..].iter().find(|e| matches!(e, Ev::Connect(..))).cloned().unwrap();
        let Ev::Connect(key, _, _, id) = ev else { unreachable!() };
        (key, id)
    }
}

fn send(s: &mut TcpStream, text: &str) {
    s.write_all(&client_frame(OpCode::Text, true, text.as_bytes())).unwrap();
}

#[test]
fn connect_passes_auth_up_and_accept_answers_with_the_socket_id() {
    let h = Harness::new();
    let (mut s, head) = ws_upgrade(h.srv.addr, "EIO=4&transport=websocket");
    assert!(head.starts_with("HTTP/1.1 101"));
    read_text(&mut s);
    send(&mut s, r#"40{"token":"abc"}"#);
    let Ev::Connect(key, nsp, auth, id) = h.wait_for(|e| matches!(e, Ev::Connect(..))) else { unreachable!() };
    assert_eq!((nsp.as_str(), auth.as_str()), ("/", r#"{"token":"abc"}"#));
    // socket.io's id shape: 15 random bytes, base64url.
    assert!(id.len() == 20 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
    assert!(h.sio.accept(key, "/", &id, None));
    assert_eq!(read_text(&mut s), format!(r#"40{{"sid":"{id}"}}"#));
    assert_eq!(h.sio.client(key).unwrap().socket_id("/").as_deref(), Some(id.as_str()));
}

#[test]
fn a_refused_namespace_gets_connect_error_and_the_client_stays() {
    let h = Harness::new();
    let (mut s, key, _) = h.connect();
    send(&mut s, "40/admin,");
    let Ev::Connect(_, _, _, id) =
        h.wait_for(|e| matches!(e, Ev::Connect(k, n, a, _) if *k == key && n == "/admin" && a.is_empty()))
    else {
        unreachable!()
    };
    assert!(h.sio.reject(key, "/admin", &id, "Not authorized", Some(r#"{"code":7}"#)));
    assert_eq!(read_text(&mut s), r#"44/admin,{"message":"Not authorized","data":{"code":7}}"#);
    send(&mut s, r#"42["still","here"]"#);
    h.wait_for(
        |e| matches!(e, Ev::Packet(k, PacketType::Event, _, None, d, 0) if *k == key && d == r#"["still","here"]"#),
    );
}

#[test]
fn events_and_acks_go_up_with_raw_json_and_emit_goes_down() {
    let h = Harness::new();
    let (mut s, key, _) = h.connect();
    send(&mut s, r#"4212["hello",{"a":[1,2]}]"#);
    h.wait_for(|e| {
        *e == Ev::Packet(key, PacketType::Event, "/".into(), Some(12), r#"["hello",{"a":[1,2]}]"#.into(), 0)
    });
    send(&mut s, r#"437["ok"]"#);
    h.wait_for(|e| *e == Ev::Packet(key, PacketType::Ack, "/".into(), Some(7), r#"["ok"]"#.into(), 0));
    assert!(h.sio.emit(key, r#"2["server",1]"#, &[], false, true));
    assert_eq!(read_text(&mut s), r#"42["server",1]"#);
}

#[test]
fn binary_events_are_held_until_their_attachments_arrive() {
    let h = Harness::new();
    let (mut s, key, _) = h.connect();
    send(&mut s, r#"452-["files",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
    s.write_all(&client_frame(OpCode::Binary, true, &[1, 2, 3])).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!h.events.0.lock().iter().any(|e| matches!(e, Ev::Packet(_, PacketType::BinaryEvent, ..))));
    s.write_all(&client_frame(OpCode::Binary, true, &[4])).unwrap();
    h.wait_for(|e| matches!(e, Ev::Packet(k, PacketType::BinaryEvent, _, None, _, 2) if *k == key));
    // And down: the packet text, then each attachment as a binary frame.
    assert!(h.sio.emit(
        key,
        r#"51-["back",{"_placeholder":true,"num":0}]"#,
        &[Bytes::from_static(&[9, 9])],
        false,
        true
    ));
    assert!(read_text(&mut s).starts_with("451-"));
    assert_eq!(read_frame(&mut s), (2, vec![9, 9]));
}

#[test]
fn broadcast_reaches_room_unions_minus_except_and_sender() {
    let h = Harness::new();
    let (mut a, ka, ia) = h.connect();
    let (mut b, kb, ib) = h.connect();
    let (mut c, kc, ic) = h.connect();
    assert!(h.sio.join(ka, "/", &ia, "red") && h.sio.join(kb, "/", &ib, "blue") && h.sio.join(kc, "/", &ic, "blue"));
    assert!(h.sio.join(kc, "/", &ic, "muted"));
    // to(red).to(blue).except(muted): a and b.
    assert_eq!(h.sio.broadcast(&to("/", &["red", "blue"], &["muted"], None), r#"2["x",1]"#, &[], false, true), 2);
    // Broadcasts are queued; the caller flushes once per burst.
    h.srv.server.flush();
    assert_eq!(read_text(&mut a), r#"42["x",1]"#);
    assert_eq!(read_text(&mut b), r#"42["x",1]"#);
    // Everyone in the namespace except the sender (socket.broadcast.emit).
    assert_eq!(h.sio.broadcast(&to("/", &[], &[], Some(kb)), r#"2["x",2]"#, &[], false, true), 2);
    h.srv.server.flush();
    assert_eq!(read_text(&mut a), r#"42["x",2]"#);
    assert_eq!(read_text(&mut c), r#"42["x",2]"#);
    // Own rooms (socket ids): to(a's id).to(red) reaches a once; except(c's id).
    assert_eq!(h.sio.broadcast(&to("/", &[&ia, "red"], &[], None), r#"2["x",3]"#, &[], false, true), 1);
    assert_eq!(h.sio.broadcast(&to("/", &["blue"], &[&ic], None), r#"2["x",4]"#, &[], false, true), 1);
    assert_eq!(h.sio.broadcast(&to("/", &[&ic], &["muted"], None), r#"2["x",5]"#, &[], false, true), 0);
    assert_eq!(h.sio.broadcast(&to("/admin", &[&ia], &[], None), r#"2["x",6]"#, &[], false, true), 0);
    h.srv.server.flush();
    assert_eq!(read_text(&mut a), r#"42["x",3]"#);
    assert_eq!(read_text(&mut b), r#"42["x",4]"#);
    // c never got the first one: its next frame is the second.
    b.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    assert!(std::io::Read::read(&mut b, &mut [0u8; 1]).is_err(), "the sender must not receive its broadcast");
}

/// The selection a test names: rooms, except, the sender.
fn to(nsp: &str, rooms: &[&str], except: &[&str], skip: Option<u64>) -> BroadcastOptions {
    BroadcastOptions {
        nsp: nsp.into(),
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        except: except.iter().map(|r| r.to_string()).collect(),
        except_client: skip,
    }
}

#[test]
fn client_disconnect_leaves_the_namespace_and_its_rooms_once_js_is_done() {
    let h = Harness::new();
    let (mut s, key, id) = h.connect();
    assert!(h.sio.join(key, "/", &id, "red"));
    send(&mut s, "41");
    h.wait_for(|e| *e == Ev::Disconnect(key, "/".into()));
    assert_eq!(h.sio.client(key).unwrap().socket_id("/"), None, "no longer connected: no events");
    // Its 'disconnecting' handlers still find it in its rooms, as in socket.io.
    assert_eq!(h.sio.select(&to("/", &["red"], &[], None)), vec![key]);
    assert_eq!(h.sio.select(&to("/", &[&id], &[], None)), vec![key]);
    assert!(!h.sio.join(key, "/", &id, "late"), "a leaving socket joins nothing");
    assert!(h.sio.remove_socket(key, "/", &id));
    assert!(h.sio.select(&to("/", &["red"], &[], None)).is_empty());
    assert!(h.sio.select(&to("/", &[], &[], None)).is_empty());
    assert!(h.sio.select(&to("/", &[&id], &[], None)).is_empty());
}

#[test]
fn rooms_joined_in_middleware_are_joined_at_accept_and_dropped_on_refusal() {
    let h = Harness::new();
    for accepted in [true, false] {
        let (mut s, head) = ws_upgrade(h.srv.addr, "EIO=4&transport=websocket");
        assert!(head.starts_with("HTTP/1.1 101"));
        read_text(&mut s);
        let seen = h.events.0.lock().len();
        send(&mut s, "40");
        let (key, id) = h.next_connect(seen);
        // The middleware joins; nobody is reached before the accept.
        assert!(h.sio.join(key, "/", &id, "early"));
        assert!(!h.sio.join(key, "/", &id, "early"), "already joined");
        assert!(h.sio.join(key, "/", &id, "gone") && h.sio.leave(key, "/", &id, "gone"));
        assert!(!h.sio.select(&to("/", &["early"], &[], None)).contains(&key));
        if accepted {
            assert!(h.sio.accept(key, "/", &id, None));
            assert_eq!(h.sio.select(&to("/", &["early"], &[], None)), vec![key]);
            assert!(h.sio.select(&to("/", &["gone"], &[], None)).is_empty());
        } else {
            // A second CONNECT while the first is in middleware: each socket
            // keeps its own joins, and refusing one leaves the other's.
            send(&mut s, "40");
            wait_until("second CONNECT", || {
                h.events.0.lock()[seen..].iter().filter(|e| matches!(e, Ev::Connect(k, ..) if *k == key)).count() == 2
            });
            let Some(Ev::Connect(_, _, _, second)) = h.events.0.lock()[seen..]
                .iter()
                .filter(|e| matches!(e, Ev::Connect(k, ..) if *k == key))
                .nth(1)
                .cloned()
            else {
                unreachable!()
            };
            assert!(h.sio.join(key, "/", &second, "kept"));
            assert!(h.sio.reject(key, "/", &id, "no", None));
            assert!(!h.sio.join(key, "/", &id, "late"), "a refused socket joins nothing");
            assert!(h.sio.accept(key, "/", &second, None));
            assert!(!h.sio.select(&to("/", &["early"], &[], None)).contains(&key));
            assert!(h.sio.select(&to("/", &["kept"], &[], None)).contains(&key));
        }
    }
}

#[test]
fn a_closed_client_stays_in_its_rooms_until_released() {
    let h = Harness::new();
    let (s, key, id) = h.connect();
    assert!(h.sio.join(key, "/", &id, "red"));
    drop(s);
    h.wait_for(|e| *e == Ev::Close(key, CloseReason::TransportClose));
    assert_eq!(h.sio.select(&to("/", &["red"], &[], None)), vec![key]);
    h.sio.release(key);
    assert!(h.sio.select(&to("/", &["red"], &[], None)).is_empty());
    assert!(h.sio.select(&to("/", &[&id], &[], None)).is_empty());
}

#[test]
fn events_before_connect_and_bad_packets_close_with_parse_error() {
    let h = Harness::new();
    for bad in [r#"42["early"]"#, r#"42["connect"]"#, "4x", r#"44{"message":"no"}"#] {
        let (mut s, head) = ws_upgrade(h.srv.addr, "EIO=4&transport=websocket");
        assert!(head.starts_with("HTTP/1.1 101"));
        read_text(&mut s);
        if bad != r#"42["early"]"# {
            let seen = h.events.0.lock().len();
            send(&mut s, "40");
            let (key, id) = h.next_connect(seen);
            h.sio.accept(key, "/", &id, None);
            read_text(&mut s);
        }
        let before = h.events.0.lock().iter().filter(|e| matches!(e, Ev::Close(_, CloseReason::ParseError))).count();
        send(&mut s, bad);
        wait_until(&format!("parse error close after {bad}"), || {
            h.events.0.lock().iter().filter(|e| matches!(e, Ev::Close(_, CloseReason::ParseError))).count() > before
        });
    }
}

#[test]
fn engine_close_reports_once_with_the_engine_reason() {
    let h = Harness::new();
    let (s, key, _) = h.connect();
    drop(s);
    h.wait_for(|e| *e == Ev::Close(key, CloseReason::TransportClose));
    assert!(h.sio.client(key).is_none());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(h.events.0.lock().iter().filter(|e| matches!(e, Ev::Close(k, _) if *k == key)).count(), 1);
}

#[test]
fn a_client_that_joins_no_namespace_within_connect_timeout_is_closed() {
    let h = Harness::with_connect_timeout(Duration::from_millis(150));
    // This one connects in time and must survive.
    let (_kept, kept, _) = h.connect();
    // This one only opens the Engine.IO session.
    let (mut idle, head) = ws_upgrade(h.srv.addr, "EIO=4&transport=websocket");
    assert!(head.starts_with("HTTP/1.1 101"));
    read_text(&mut idle);
    assert_eq!(read_text(&mut idle), "1", "the engine close packet");
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.sio.client(kept).is_some(), "a connected client is not subject to connectTimeout");
    assert!(!h.events.0.lock().iter().any(|e| matches!(e, Ev::Close(k, _) if *k == kept)));
}

#[test]
fn volatile_packets_are_dropped_while_the_transport_cannot_take_them() {
    let h = Harness::new();
    let (mut s, key, _) = h.connect();
    assert!(h.sio.emit(key, r#"2["v",1]"#, &[], true, true), "an idle WebSocket takes a volatile packet");
    assert_eq!(read_text(&mut s), r#"42["v",1]"#);
    // The client stops reading: a large packet fills the kernel buffers and
    // waits in the socket's queue.
    let big = format!(r#"2["big","{}"]"#, "x".repeat(8 << 20));
    assert!(h.sio.emit(key, &big, &[], false, true));
    assert!(!h.sio.emit(key, r#"2["v",2]"#, &[], true, true), "dropped while the queue is not empty");
    assert_eq!(h.sio.broadcast(&to("/", &[], &[], None), r#"2["v",3]"#, &[], true, true), 0);
    assert!(h.sio.emit(key, r#"2["after",4]"#, &[], false, true), "a normal packet still queues");
    h.srv.server.flush();
    assert!(read_text(&mut s).starts_with(r#"42["big""#));
    assert_eq!(read_text(&mut s), r#"42["after",4]"#);
}

#[test]
fn a_recovered_session_gets_its_id_and_the_broadcasts_it_missed_before_its_connect() {
    let cfg = RecoveryConfig { max_age: Duration::from_secs(60), max_bytes: 1 << 20 };
    let h = Harness::with(Duration::from_secs(45), Some(cfg));
    let (mut a, ka, ia) = h.connect();
    assert!(h.sio.join(ka, "/", &ia, "r1"));
    // A stored broadcast carries its offset as the event's last argument.
    assert_eq!(h.sio.broadcast_stored(&to("/", &[], &[], None), r#"2["hello"]"#, &[], true), 1);
    h.srv.server.flush();
    let hello = read_text(&mut a);
    let offset = hello.strip_prefix(r#"42["hello",""#).and_then(|r| r.strip_suffix(r#""]"#)).expect(&hello).to_string();
    drop(a);
    h.wait_for(|e| *e == Ev::Close(ka, CloseReason::TransportClose));
    h.sio.release(ka);
    // Missed: to everyone, to its room, to its own room (a direct emit), a
    // binary one; not: another room, the sender's own broadcast.
    h.sio.broadcast_stored(&to("/", &[], &[], None), r#"2["m1"]"#, &[], true);
    h.sio.broadcast_stored(&to("/", &["r1"], &[], None), r#"2["m2"]"#, &[], true);
    h.sio.broadcast_stored(&to("/", &["r2"], &[], None), r#"2["not-mine"]"#, &[], true);
    h.sio.broadcast_stored(&to("/", &[&ia], &[], None), r#"2["m3"]"#, &[], true);
    h.sio.broadcast_stored(&to("/", &[], &[], Some(ka)), r#"2["from-me"]"#, &[], true);
    h.sio.broadcast_stored(
        &to("/", &[], &[], None),
        r#"51-["m4",{"_placeholder":true,"num":0}]"#,
        &[Bytes::from_static(&[7])],
        true,
    );
    // It comes back on a new connection with pid and offset.
    let (mut b, head) = ws_upgrade(h.srv.addr, "EIO=4&transport=websocket");
    assert!(head.starts_with("HTTP/1.1 101"));
    read_text(&mut b);
    let seen = h.events.0.lock().len();
    send(&mut b, &format!(r#"40{{"pid":"p","offset":"{offset}"}}"#));
    let (kb, pending) = h.next_connect(seen);
    let rooms = [ia.clone(), "r1".to_string()];
    let mut kept =
        Restore { nsp: "/", pending_id: &pending, sid: &ia, rooms: &rooms, old_key: Some(ka), offset: Some("x") };
    assert!(!h.sio.restore(kb, &kept), "an unknown offset");
    kept.offset = Some(&offset);
    assert!(h.sio.restore(kb, &kept));
    assert!(h.sio.join(kb, "/", &ia, "r1"), "the restored id is the pending socket's now");
    assert!(h.sio.accept(kb, "/", &ia, Some("the-pid")));
    h.srv.server.flush();
    for name in ["m1", "m2", "m3"] {
        assert!(read_text(&mut b).starts_with(&format!(r#"42["{name}",""#)));
    }
    assert!(read_text(&mut b).starts_with(r#"451-["m4",{"_placeholder":true,"num":0},""#));
    assert_eq!(read_frame(&mut b), (2, vec![7]));
    assert_eq!(read_text(&mut b), format!(r#"40{{"sid":"{ia}","pid":"the-pid"}}"#));
    // And it is in its rooms again under its old id.
    assert_eq!(h.sio.select(&to("/", &["r1"], &[], None)), vec![kb]);
    assert_eq!(h.sio.select(&to("/", &[&ia], &[], None)), vec![kb]);
}

#[test]
fn without_recovery_nothing_is_stored_or_restored() {
    let h = Harness::new();
    let (mut a, ka, ia) = h.connect();
    assert_eq!(h.sio.broadcast_stored(&to("/", &[], &[], None), r#"2["hello"]"#, &[], true), 1);
    h.srv.server.flush();
    assert_eq!(read_text(&mut a), r#"42["hello"]"#);
    let kept = Restore { nsp: "/", pending_id: &ia, sid: &ia, rooms: &[], old_key: None, offset: Some("x0") };
    assert!(!h.sio.restore(ka, &kept));
}
