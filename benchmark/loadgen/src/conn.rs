//! One application connection: a WebSocket client plus, for `--protocol
//! sio`, the Engine.IO/Socket.IO layer (open packet, namespace CONNECT,
//! answering the server's heartbeat). Modes see only whole application
//! messages and never Engine.IO control traffic.

use std::net::IpAddr;
use std::time::Duration;

use crate::client::{self, Proto, Pumped, Target, WsClient};
use crate::sio::{self, Eio, Kind};
use crate::ws;

/// One application message as the modes see it.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// The text frame as received: the whole message (ws) or the whole
    /// Engine.IO packet `42[...]` (sio).
    pub raw: &'a [u8],
    /// sio: the event name (raw JSON string contents). ws: None.
    pub event: Option<&'a [u8]>,
    /// sio: the JSON text of the event's arguments after the name. ws: `raw`.
    pub args: &'a [u8],
}

pub struct Conn {
    ws: WsClient,
}

/// Connect, do the WebSocket handshake and, for Socket.IO, join the
/// namespace. The connection counts as established when this returns.
pub async fn open(target: &Target, source: Option<IpAddr>) -> Result<Conn, String> {
    let mut ws = client::connect(target, source).await?;
    if let Proto::Sio { nsp } = &target.proto {
        sio_handshake(&mut ws, nsp).await?;
    }
    Ok(Conn { ws })
}

/// `open` with an overall deadline.
pub async fn open_timeout(target: &Target, source: Option<IpAddr>, limit: Duration) -> Result<Conn, String> {
    match tokio::time::timeout(limit, open(target, source)).await {
        Ok(r) => r,
        Err(_) => Err("connect_timeout".into()),
    }
}

/// Wait for the Engine.IO open packet, send CONNECT, wait for the reply.
/// Application packets that arrive in the same read as the CONNECT reply
/// are dropped (the modes start talking only after everything connected).
async fn sio_handshake(ws: &mut WsClient, nsp: &str) -> Result<(), String> {
    let mut opened = false;
    loop {
        let mut send_connect = false;
        let mut pongs = 0u32;
        let mut outcome: Option<Result<(), &'static str>> = None;
        let mut on = |op: u8, m: &[u8]| {
            if op != ws::OP_TEXT {
                return;
            }
            let packet = sio::parse_eio(m);
            if let Some(Eio::Ping(_)) = packet {
                // Answered even after the outcome is known.
                pongs += 1;
            }
            if outcome.is_some() {
                return;
            }
            match packet {
                Some(Eio::Open(_)) if !opened => {
                    opened = true;
                    send_connect = true;
                }
                Some(Eio::Close) => outcome = Some(Err("sio_eio_close")),
                Some(Eio::Message(m)) if opened => match sio::parse_sio(m) {
                    Some(p) if p.nsp == nsp.as_bytes() => match p.kind {
                        Kind::Connect => outcome = Some(Ok(())),
                        Kind::ConnectError => outcome = Some(Err("sio_connect_error")),
                        _ => {}
                    },
                    _ => {}
                },
                _ => {}
            }
        };
        let r = ws.pump(&mut on).await?;
        answer_pings(ws, pongs);
        if send_connect {
            ws.queue(ws::OP_TEXT, &sio::connect_packet(nsp));
        }
        match outcome {
            Some(Ok(())) => {
                ws.flush().await?;
                return Ok(());
            }
            Some(Err(kind)) => return Err(kind.into()),
            None => {}
        }
        match r {
            Pumped::Open => {}
            Pumped::Closed(code) => return Err(format!("sio_server_close_{code}")),
            Pumped::Eof => return Err("sio_eof".into()),
        }
        // The next pump writes what was queued before it reads.
    }
}

fn answer_pings(ws: &mut WsClient, n: u32) {
    for _ in 0..n {
        ws.queue(ws::OP_TEXT, b"3");
    }
    ws.pings += n;
}

impl Conn {
    /// Pings answered so far (WebSocket and Engine.IO).
    pub fn pings(&self) -> u32 {
        self.ws.pings
    }

    /// Queue one text message made of `parts`; written by the next `pump`.
    pub fn send(&mut self, parts: &[&[u8]]) {
        self.ws.queue_parts(ws::OP_TEXT, parts);
    }

    /// Write queued messages, wait for data, hand every application message
    /// to `on_msg`. Err(kind) when the connection ended (server close, EOF,
    /// Engine.IO close, Socket.IO DISCONNECT, I/O or protocol error).
    /// Cancel-safe like `WsClient::pump`. Engine.IO pongs are queued and go
    /// out with the next call's initial write (callers pump in a loop).
    pub async fn pump<H>(&mut self, proto: &Proto, on_msg: &mut H) -> Result<(), String>
    where
        H: FnMut(&Msg<'_>),
    {
        // One await point for both protocols and little state across it:
        // every idle connection holds this future.
        #[derive(Default)]
        struct Seen {
            pongs: u32,
            ended: Option<End>,
        }
        let mut seen = Seen::default();
        let st = &mut seen;
        let mut on = move |op: u8, m: &[u8]| match proto {
            Proto::Ws => on_msg(&Msg { raw: m, event: None, args: m }),
            Proto::Sio { nsp } if op == ws::OP_TEXT && st.ended.is_none() => match sio_message(m, nsp.as_bytes()) {
                SioIn::App(msg) => on_msg(&msg),
                SioIn::Ping => st.pongs += 1,
                SioIn::End(kind) => st.ended = Some(kind),
                SioIn::Other => {}
            },
            Proto::Sio { .. } => {}
        };
        let r = self.ws.pump(&mut on).await?;
        if let Some(end) = seen.ended {
            return Err(end.kind().into());
        }
        answer_pings(&mut self.ws, seen.pongs);
        match r {
            Pumped::Open => Ok(()),
            Pumped::Closed(code) => Err(format!("server_close_{code}")),
            Pumped::Eof => Err("eof".into()),
        }
    }

    /// Best-effort closing handshake, bounded by `wait`.
    pub async fn goodbye(self, code: u16, wait: Duration) {
        self.ws.goodbye(code, wait).await
    }
}

/// What one Engine.IO text packet means to an established connection.
#[derive(Debug)]
enum SioIn<'a> {
    App(Msg<'a>),
    Ping,
    End(End),
    Other,
}

/// Why the server ended a Socket.IO connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    EngineClose,
    Disconnect,
}

impl End {
    fn kind(self) -> &'static str {
        match self {
            End::EngineClose => "sio_eio_close",
            End::Disconnect => "sio_disconnect",
        }
    }
}

fn sio_message<'a>(m: &'a [u8], nsp: &[u8]) -> SioIn<'a> {
    match sio::parse_eio(m) {
        Some(Eio::Ping(_)) => SioIn::Ping,
        Some(Eio::Close) => SioIn::End(End::EngineClose),
        Some(Eio::Message(inner)) => match sio::parse_sio(inner) {
            Some(p) if p.nsp == nsp => match p.kind {
                Kind::Event => match sio::split_event(p.data) {
                    Some((name, args)) => SioIn::App(Msg { raw: m, event: Some(name), args }),
                    None => SioIn::Other,
                },
                Kind::Disconnect => SioIn::End(End::Disconnect),
                _ => SioIn::Other,
            },
            _ => SioIn::Other,
        },
        _ => SioIn::Other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sio_messages_for_an_established_connection() {
        let SioIn::App(m) = sio_message(br#"42["bcast",{"seq":3}]"#, b"/") else { panic!() };
        assert_eq!(m.event, Some(&b"bcast"[..]));
        assert_eq!(m.args, br#"{"seq":3}"#);
        assert_eq!(m.raw, br#"42["bcast",{"seq":3}]"#);
        // Other namespaces, acks, connect replies and garbage are not ours.
        assert!(matches!(sio_message(br#"42/x,["bcast",1]"#, b"/"), SioIn::Other));
        assert!(matches!(sio_message(br#"42/x,["bcast",1]"#, b"/x"), SioIn::App(_)));
        assert!(matches!(sio_message(b"431[1]", b"/"), SioIn::Other));
        assert!(matches!(sio_message(b"42", b"/"), SioIn::Other));
        assert!(matches!(sio_message(b"x", b"/"), SioIn::Other));
        assert!(matches!(sio_message(b"2", b"/"), SioIn::Ping));
        assert!(matches!(sio_message(b"1", b"/"), SioIn::End(_)));
        assert!(matches!(sio_message(b"41", b"/"), SioIn::End(_)));
        assert!(matches!(sio_message(b"41/x,", b"/"), SioIn::Other));
    }

    /// A scripted server on real TCP: just enough RFC 6455 to talk to the client.
    pub(crate) mod fake {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{TcpListener, TcpStream};

        pub async fn accept_ws(l: &TcpListener) -> TcpStream {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).await.unwrap();
                req.push(b[0]);
            }
            let req = String::from_utf8(req).unwrap();
            let key = req.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                crate::ws::accept_for(key.trim())
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            s
        }

        /// One unmasked frame (payload < 126 bytes).
        pub async fn send(s: &mut TcpStream, b0: u8, payload: &[u8]) {
            let mut f = vec![b0, payload.len() as u8];
            f.extend_from_slice(payload);
            s.write_all(&f).await.unwrap();
        }

        pub async fn send_text(s: &mut TcpStream, payload: &[u8]) {
            send(s, 0x81, payload).await
        }

        /// One masked client frame's payload (< 126 bytes).
        pub async fn read_text(s: &mut TcpStream) -> Vec<u8> {
            let mut h = [0u8; 6];
            s.read_exact(&mut h).await.unwrap();
            assert_eq!(h[0], 0x81);
            let mut p = vec![0u8; (h[1] & 0x7f) as usize];
            s.read_exact(&mut p).await.unwrap();
            crate::ws::apply_mask(&mut p, [h[2], h[3], h[4], h[5]]);
            p
        }
    }

    /// Run a test body on a fresh runtime, failing instead of hanging.
    fn block_on<F: std::future::Future<Output = ()>>(f: F) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), f).await.expect("test timed out") })
    }

    async fn target(port: u16, extra: &str) -> Target {
        let argv: Vec<String> =
            format!("idle --url ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket {extra}")
                .split_whitespace()
                .map(String::from)
                .collect();
        crate::control::resolve_target(&crate::args::parse(&argv).unwrap()).await.unwrap()
    }

    /// Pump until a message arrives or the connection ends.
    async fn next(c: &mut Conn, proto: &Proto) -> Result<Vec<u8>, String> {
        loop {
            let mut got = None;
            c.pump(proto, &mut |m: &Msg<'_>| {
                got.get_or_insert_with(|| m.raw.to_vec());
            })
            .await?;
            if let Some(g) = got {
                return Ok(g);
            }
        }
    }

    #[test]
    fn socket_io_over_tcp() {
        block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let mut s = fake::accept_ws(&l).await;
                fake::send_text(&mut s, br#"0{"sid":"e","upgrades":[],"pingInterval":25000}"#).await;
                assert_eq!(fake::read_text(&mut s).await, b"40/x,");
                // Events before the CONNECT reply are not ours yet.
                fake::send_text(&mut s, br#"42/x,["early",1]"#).await;
                fake::send_text(&mut s, br#"40/x,{"sid":"s"}"#).await;
                fake::send_text(&mut s, b"2").await;
                assert_eq!(fake::read_text(&mut s).await, b"3");
                fake::send_text(&mut s, br#"42["bcast",{"seq":1}]"#).await;
                // Fragmented: "42/x,[" + "\"bcast\",{\"seq\":2}]"
                fake::send(&mut s, 0x01, br#"42/x,["#).await;
                fake::send(&mut s, 0x80, br#""bcast",{"seq":2}]"#).await;
                assert_eq!(fake::read_text(&mut s).await, br#"42/x,["echo",5]"#);
                fake::send_text(&mut s, b"41/x,").await;
                s
            });
            let t = target(port, "--protocol sio --namespace /x").await;
            let mut c = open_timeout(&t, None, Duration::from_secs(5)).await.unwrap();
            assert_eq!(next(&mut c, &t.proto).await.unwrap(), br#"42/x,["bcast",{"seq":2}]"#);
            assert_eq!(c.pings(), 1);
            c.send(&[br#"42/x,["echo","#, b"5", b"]"]);
            assert_eq!(next(&mut c, &t.proto).await, Err("sio_disconnect".into()));
            drop(server.await.unwrap());
        });
    }

    #[test]
    fn socket_io_connect_error_and_plain_ws() {
        block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let mut s = fake::accept_ws(&l).await;
                fake::send_text(&mut s, br#"0{"sid":"e"}"#).await;
                assert_eq!(fake::read_text(&mut s).await, b"40");
                fake::send_text(&mut s, br#"44{"message":"Not authorized"}"#).await;
                let mut s = fake::accept_ws(&l).await;
                fake::send_text(&mut s, br#"{"seq":3}"#).await;
                assert_eq!(fake::read_text(&mut s).await, b"hi");
                fake::send(&mut s, 0x88, &1001u16.to_be_bytes()).await;
                s
            });
            let t = target(port, "--protocol sio").await;
            let e = open_timeout(&t, None, Duration::from_secs(5)).await.err();
            assert_eq!(e.as_deref(), Some("sio_connect_error"));
            let t = target(port, "").await;
            let mut c = open_timeout(&t, None, Duration::from_secs(5)).await.unwrap();
            assert_eq!(next(&mut c, &t.proto).await.unwrap(), br#"{"seq":3}"#);
            c.send(&[b"h", b"i"]);
            assert_eq!(next(&mut c, &t.proto).await, Err("server_close_1001".into()));
            drop(server.await.unwrap());
        });
    }
}
