//! Raw-socket client helpers shared by the Rust tests that talk to a real
//! server over loopback.

use std::io::Read;
use std::net::TcpStream;

use crate::ws::frame::{self, OpCode};

pub(crate) fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

pub(crate) fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut hdr = [0u8; 14];
    let n = frame::encode_header_masked(opcode, fin, payload.len(), mask, &mut hdr);
    let mut out = hdr[..n].to_vec();
    let mut body = payload.to_vec();
    frame::apply_mask(&mut body, mask, 0);
    out.extend_from_slice(&body);
    out
}

/// Reads one unmasked server frame: (opcode byte, payload).
pub(crate) fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).unwrap();
    (h[0] & 0x0f, p)
}

/// A real server with an Engine.IO route at `/engine.io/` on loopback.
pub(crate) struct EngineServer {
    _rt: tokio::runtime::Runtime,
    pub(crate) server: std::sync::Arc<crate::ws::ServerCore>,
    pub(crate) engine: std::sync::Arc<crate::engineio::engine::Engine>,
    pub(crate) addr: std::net::SocketAddr,
}

/// The server's requests upward (JS decisions, hand-offs): none here.
struct NoJs;
impl crate::ws::RequestSink for NoJs {}

pub(crate) fn engine_server(
    cfg: crate::engineio::engine::EngineConfig,
    handler: std::sync::Arc<dyn crate::engineio::engine::EngineHandler>,
) -> EngineServer {
    use crate::ws::{Behavior, Pattern, ServerCore, ServerOptions, WsRoute};
    use std::sync::Arc;
    let rt = crate::net::build_runtime(2).unwrap();
    let max_payload = cfg.max_payload;
    let engine = crate::engineio::engine::Engine::new(cfg, handler);
    let server = ServerCore::new(Arc::new(NoJs), ServerOptions::default()).unwrap();
    let _guard = rt.enter();
    server.start().unwrap();
    engine.start(&server);
    server.add_ws_route(WsRoute {
        pattern: Pattern::parse("/engine.io/*"),
        // Engine.IO's heartbeat replaces WebSocket-level idle pings.
        behavior: Arc::new(Behavior {
            idle_timeout_secs: 0,
            send_pings: false,
            max_payload,
            // As napi's mount: a slow client queues up to 16 MiB.
            max_backpressure: 16 << 20,
            ..Behavior::new(engine.clone())
        }),
        js_upgrade: false,
    });
    let opts = crate::net::ListenOptions { host: "127.0.0.1".into(), port: 0, reuse_port: false, backlog: 128 };
    let (_, addr) = server.listen(crate::net::bind(&opts).unwrap(), None).unwrap();
    EngineServer { _rt: rt, server, engine, addr }
}

/// Sends a WebSocket upgrade for `/engine.io/?{query}`; returns the socket and the response head.
pub(crate) fn ws_upgrade(addr: std::net::SocketAddr, query: &str) -> (TcpStream, String) {
    use std::io::Write;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /engine.io/?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    (s, head)
}

/// Reads one text frame.
pub(crate) fn read_text(s: &mut TcpStream) -> String {
    let (op, p) = read_frame(s);
    assert_eq!(op, 1, "expected a text frame");
    String::from_utf8(p).unwrap()
}

/// Waits (bounded) until `events` holds an item matching `f`.
pub(crate) fn wait_for<E: Clone + std::fmt::Debug>(events: &parking_lot::Mutex<Vec<E>>, f: impl Fn(&E) -> bool) -> E {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(e) = events.lock().iter().find(|e| f(e)) {
            return e.clone();
        }
        assert!(std::time::Instant::now() < deadline, "event not seen; got {:?}", events.lock());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits (bounded) until `cond()` holds; `cond` may take any lock it likes.
pub(crate) fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
