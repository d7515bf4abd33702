//! Accepting: listeners, the TLS and upgrade handshakes, JS decisions on
//! requests, and the hand-off of plain HTTP to a server above. Ends in a
//! registered connection (or an HTTP answer and close).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::net::tls_stream::{self, TlsStream};

use super::conn::{Behavior, Conn, ConnHost, ConnInit, Transport};
use super::deflate;
use super::handshake::{self, Limits, Request};
use super::routes::HttpService;
use super::server::{Listening, Pending, ServerCore};
use super::sink::{Decision, RequestKind};

/// Slowloris guard: TLS + request head must complete within this, by
/// default (`ServerOptions::handshake_timeout`); also the bound on writing
/// an error answer.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A JS `upgrade`/route handler that never answers must not pin the socket forever.
pub(super) const DECISION_TIMEOUT: Duration = Duration::from_secs(30);

impl ServerCore {
    /// Binds and starts accepting. Returns (listener token, local address).
    pub(crate) fn listen(
        self: &Arc<Self>,
        std_listener: std::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<(u32, SocketAddr)> {
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let server = self.clone();
        let (done, closed) = std::sync::mpsc::channel();
        let task = tokio::spawn(async move {
            let owned = OwnedListener { listener, _done: done };
            server.accept_loop(&owned.listener, tls).await
        });
        let token = self.listeners.lock().insert(Listening { task, closed }) as u32;
        Ok((token, addr))
    }

    pub(crate) fn close_listener(&self, token: u32) -> bool {
        let removed = self.listeners.lock().try_remove(token as usize);
        match removed {
            Some(l) => {
                l.stop();
                true
            }
            None => false,
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: &TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
        let mut backoff = Duration::from_millis(5);
        loop {
            match listener.accept().await {
                Ok((tcp, remote)) => {
                    backoff = Duration::from_millis(5);
                    if self.registry.len() >= self.opts.max_connections {
                        continue; // dropped: over the connection cap
                    }
                    let _ = tcp.set_nodelay(true);
                    let server = self.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        // Boxed: the handshake's large state machine lives on
                        // the heap only while it runs.
                        Box::pin(server.handshake(tcp, remote, tls)).await
                    });
                }
                Err(_) => {
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    async fn handshake(self: Arc<Self>, tcp: TcpStream, remote: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) {
        let id = self.registry.reserve();
        let outcome = match tls {
            None if self.handoff_http.load(Ordering::Relaxed) => self.clone().serve_or_handoff(id, tcp, remote).await,
            None => self.clone().serve_request(id, tcp, remote, false).await,
            Some(config) => {
                match tokio::time::timeout(self.opts.handshake_timeout, tls_stream::accept(tcp, config)).await {
                    Ok(Ok(tls)) => self.clone().serve_request(id, tls, remote, true).await,
                    _ => Ok(()),
                }
            }
        };
        let _ = outcome;
        self.registry.release_unless_taken(id);
    }

    /// Takes over a socket whose upgrade request was already read by someone
    /// else (Node's HTTP server): `rest` is what was read past the head.
    /// Answers it exactly as if it had arrived on our own listener. Call
    /// inside the runtime.
    pub(crate) fn adopt(
        self: &Arc<Self>,
        sock: std::net::TcpStream,
        req: Request,
        rest: Vec<u8>,
        remote: SocketAddr,
        secure: bool,
    ) {
        let server = self.clone();
        tokio::spawn(async move {
            let id = server.registry.reserve();
            if sock.set_nonblocking(true).is_ok() {
                if let Ok(tcp) = TcpStream::from_std(sock) {
                    let _ = tcp.set_nodelay(true);
                    let serve = server.clone().serve_upgrade(id, tcp, Incoming { req, rest, remote, secure });
                    let _ = tokio::time::timeout(server.opts.handshake_timeout, Box::pin(serve)).await;
                }
            }
            server.registry.release_unless_taken(id);
        });
    }

    /// Peeks at the request head without consuming it: a WebSocket upgrade
    /// for one of our routes is read and served here; anything else (polling,
    /// other routes, malformed heads) goes to `handoff` with every byte still
    /// unread, for Node's HTTP server to parse as if it had accepted it.
    async fn serve_or_handoff(self: Arc<Self>, id: u64, mut tcp: TcpStream, remote: SocketAddr) -> io::Result<()> {
        // Small until a head needs more; peeked bytes stay in the kernel.
        let max = self.opts.limits.max_head_bytes;
        let mut buf = vec![0u8; max.min(1024)];
        let deadline = tokio::time::Instant::now() + self.opts.handshake_timeout;
        let mut seen = 0;
        let mut backoff = Duration::from_millis(2);
        let mut partial_since: Option<tokio::time::Instant> = None;
        loop {
            let Ok(n) = tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await else { return Ok(()) };
            let n = n?;
            if n == 0 {
                return Ok(());
            }
            if n > seen {
                seen = n;
                match handshake::parse_request(&buf[..n], &self.opts.limits) {
                    Ok(Some(req)) => {
                        let ours = handshake::is_upgrade_request(&req)
                            && self
                                .routes
                                .read()
                                .ws_for(req.path())
                                .is_some_and(|(_, r)| !r.behavior.handler.hand_off_upgrade(&req));
                        if !ours {
                            break;
                        }
                        buf.truncate(req.head_len);
                        tcp.read_exact(&mut buf).await?;
                        drop(buf);
                        return self
                            .serve_upgrade(id, tcp, Incoming { req, rest: Vec::new(), remote, secure: false })
                            .await;
                    }
                    // The buffer is full: look at more of the head.
                    Ok(None) if n == buf.len() && buf.len() < max => {
                        buf.resize(max, 0);
                        continue;
                    }
                    Ok(None) if n < buf.len() => {}
                    // Too large or malformed: Node's parser answers it.
                    _ => break,
                }
            }
            // The head is still arriving (clients send it in one segment, so
            // this is rare or hostile). Unread bytes keep the socket readable,
            // so wait rather than re-peek at once; after a short while let
            // Node's HTTP server, with its own header timeouts, have it.
            let since = *partial_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= Duration::from_millis(500) {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
        let sock = tcp.into_std()?;
        self.sink.handoff(sock, remote, deadline.saturating_duration_since(tokio::time::Instant::now()));
        Ok(())
    }

    /// Reads one request head and answers it: 101 and a connection, or an
    /// HTTP response and close.
    async fn serve_request<S>(
        self: Arc<Self>,
        id: u64,
        mut stream: S,
        remote: SocketAddr,
        secure: bool,
    ) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let Some((req, rest)) = self.next_head(&mut stream, Vec::new()).await? else { return Ok(()) };
        // An upgrade, or the first of a connection's HTTP requests.
        self.serve_http(id, stream, Incoming { req, rest, remote, secure }).await
    }

    /// The next request head, within the handshake timeout, starting with
    /// `buf` (bytes already read). None when the connection is done: the
    /// client was too slow (slow-loris: just dropped) or went away, or its
    /// head was refused (the HTTP error is written here).
    pub(super) async fn next_head<S>(&self, stream: &mut S, buf: Vec<u8>) -> io::Result<Option<(Request, Vec<u8>)>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let head = tokio::time::timeout(self.opts.handshake_timeout, read_head(stream, buf, &self.opts.limits)).await;
        match head {
            Err(_) | Ok(Err(HeadError::Closed)) => Ok(None),
            Ok(Err(HeadError::Http(e))) => {
                let resp = handshake::simple_response(e.status(), "", &[], b"", false);
                write_and_close(stream, &resp).await.map(|_| None)
            }
            Ok(Ok(r)) => Ok(Some(r)),
        }
    }

    /// Answers an upgrade request: 101 and a connection, or an HTTP error.
    pub(super) async fn serve_upgrade<S>(self: Arc<Self>, id: u64, mut stream: S, incoming: Incoming) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let Incoming { req, rest, remote, secure } = incoming;
        let routed = self.routes.read().ws_for(req.path()).map(|(i, r)| (i, r.behavior.clone(), r.js_upgrade));
        let Some((route, behavior, js_upgrade)) = routed else {
            let resp = handshake::simple_response(404, "Not Found", &[], b"", false);
            return write_and_close(&mut stream, &resp).await;
        };
        let info = match handshake::validate_upgrade(&req) {
            Ok(info) => info,
            Err(reject) => return write_and_close(&mut stream, &reject.to_response()).await,
        };
        if let Err(resp) = behavior.handler.accept(&req) {
            return write_and_close(&mut stream, &resp).await;
        }
        // The client's offers, or (a JS `upgrade` handler) those it passed
        // on to `res.upgrade` (uWS.js negotiates from what it is given).
        let mut extensions = info.extensions;
        let protocol = if js_upgrade {
            match self.await_decision(id, RequestKind::Upgrade, route, &req, remote, &stream).await {
                Some(Decision::Upgrade { protocol, extensions: given }) => {
                    extensions = given;
                    protocol
                }
                Some(Decision::Respond(resp)) => return write_and_close(&mut stream, &resp).await,
                // A refusal written in parts: sent whole, then close.
                Some(Decision::Part(part)) => {
                    let mut resp = part.head.unwrap_or_default();
                    resp.extend_from_slice(b"Connection: close\r\n\r\n");
                    resp.extend_from_slice(&part.body);
                    return write_and_close(&mut stream, &resp).await;
                }
                None => return Ok(()),
            }
        } else {
            None
        };
        let deflate = match (&behavior.compression, &extensions) {
            (Some(cfg), Some(offers)) => deflate::negotiate(std::iter::once(offers.as_str()), cfg),
            _ => None,
        };
        let upgrade = Upgraded { route, behavior, key: info.key, protocol, deflate, remote, rest, secure };
        let opened = self.clone().open_upgraded(id, upgrade, &req, stream).await;
        if js_upgrade && !matches!(opened, Ok(true)) {
            // JS accepted this upgrade and waits for its `open`: say it will not come.
            self.sink.aborted(id);
        }
        opened.map(|_| ())
    }

    /// Writes the 101 and turns the stream into a registered connection.
    /// Ok(true) when the connection opened.
    async fn open_upgraded<S>(self: Arc<Self>, id: u64, up: Upgraded, req: &Request, mut stream: S) -> io::Result<bool>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let Upgraded { route, behavior, key, protocol, deflate, remote, mut rest, secure } = up;
        if self.shutting_down.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let accept = handshake::accept_key(&key);
        let (agreed, extensions) = deflate.unzip();
        let extra: Vec<(&str, &str)> = extensions.iter().map(|e| ("Sec-WebSocket-Extensions", e.as_str())).collect();
        let resp = handshake::response_101(&accept, protocol.as_deref(), &extra);
        stream.write_all(&resp).await?;
        stream.flush().await?;
        let (tcp, transport, more) = stream.into_parts();
        rest.extend_from_slice(&more);
        let sock = tcp.into_std()?;
        let group = self.next_group();
        let init = ConnInit { id, route, group, behavior, remote, transport, tick: self.tick(), deflate: agreed };
        let conn = Arc::new(Conn::new(init, sock));
        if !self.registry.fill(&conn) {
            return Ok(false);
        }
        conn.behavior.handler.open_request(&*self, &conn, req, secure);
        if conn.start(&*self, rest) || conn.register(&*self).is_err() {
            self.retire(&conn);
        } else if self.shutting_down.load(Ordering::Relaxed) {
            // `shutdown()` ran while this handshake finished and did not see it.
            conn.end(&*self, 1001, b"server shutting down");
        }
        Ok(true)
    }

    /// Asks JS and waits for `decide`, watching for the client going away.
    pub(super) async fn await_decision<S: IntoParts>(
        &self,
        id: u64,
        kind: RequestKind,
        route: u16,
        req: &Request,
        remote: SocketAddr,
        stream: &S,
    ) -> Option<Decision> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending.lock().insert(id, Pending { tx, out: Default::default() });
        let params = match kind {
            RequestKind::Upgrade => self.routes.read().ws_params(route, req.path()),
            RequestKind::Http => self.routes.read().http_params(route, req.path()),
        };
        self.sink.request(id, kind, route, req, &params, remote);
        let result = tokio::select! {
            d = rx.recv() => d,
            _ = client_gone(stream.tcp()) => None,
            _ = tokio::time::sleep(DECISION_TIMEOUT) => None,
        };
        self.pending.lock().remove(&id);
        if result.is_none() {
            self.sink.aborted(id);
        }
        result
    }

    /// The answer from above to a pending request. False when it is gone.
    pub(crate) fn decide(&self, id: u64, decision: Decision) -> bool {
        match self.pending.lock().get(&id) {
            Some(p) => p.tx.send(decision).is_ok(),
            None => false,
        }
    }
}

/// Resolves when the client closes its side while we have not answered yet
/// (never, once it has sent more: pipelined bytes are not an abort).
pub(super) async fn client_gone(tcp: &TcpStream) {
    loop {
        if tcp.readable().await.is_err() {
            return;
        }
        let mut b = [0u8; 1];
        match tcp.peek(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(_) => std::future::pending::<()>().await,
        }
    }
}

/// An HTTP request a Rust service answers: the body (by Content-Length,
/// within the service's limit), then its response, then close. A client
/// that goes away while the answer is pending drops the service's future.
pub(super) async fn serve_service<S>(service: &dyn HttpService, mut stream: S, incoming: Incoming) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + IntoParts,
{
    // What came after the head is the body's beginning.
    let Incoming { req, rest: mut body, remote, secure } = incoming;
    let limit = match service.body_limit(&req) {
        Ok(limit) => limit,
        Err(resp) => return write_and_close(&mut stream, &resp).await,
    };
    let length = match req.header("content-length").map(|v| v.trim().parse::<usize>()) {
        None if req.header("transfer-encoding").is_some() => None,
        None => Some(0),
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => None,
    };
    let Some(length) = length else {
        // Chunked or unreadable lengths: clients of these routes send a length.
        service.body_failed(&req, false);
        let resp = handshake::simple_response(411, "Length Required", &[], b"", false);
        return write_and_close(&mut stream, &resp).await;
    };
    if length > limit {
        service.body_failed(&req, true);
        let resp = handshake::simple_response(413, "Payload Too Large", &[], b"", false);
        return write_and_close(&mut stream, &resp).await;
    }
    if body.len() < length {
        let have = body.len();
        body.resize(length, 0);
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut body[have..])).await;
        if !matches!(read, Ok(Ok(_))) {
            service.body_failed(&req, false);
            return Ok(());
        }
    }
    body.truncate(length);
    let answer = service.serve(req, body, remote, secure);
    let resp = tokio::select! {
        resp = answer => resp,
        _ = client_gone(stream.tcp()) => return Ok(()),
    };
    write_and_close(&mut stream, &resp).await
}

/// Fields drop in order: the socket closes before `_done` says so.
struct OwnedListener {
    listener: TcpListener,
    _done: std::sync::mpsc::Sender<()>,
}

/// A request whose head has been read: what follows it in the buffer
/// (`rest`: frames glued to an upgrade, or the start of a body), where it
/// came from, and whether over TLS.
pub(super) struct Incoming {
    pub req: Request,
    pub rest: Vec<u8>,
    pub remote: SocketAddr,
    pub secure: bool,
}

/// An accepted upgrade on its way to becoming a connection.
struct Upgraded {
    route: u16,
    behavior: Arc<Behavior>,
    key: String,
    protocol: Option<String>,
    /// permessage-deflate as agreed, and the response header's value.
    deflate: Option<(deflate::Agreed, String)>,
    remote: SocketAddr,
    rest: Vec<u8>,
    secure: bool,
}

pub(crate) trait IntoParts {
    fn tcp(&self) -> &TcpStream;
    /// The socket, its transport, and bytes read past what was asked for
    /// (TLS: plaintext already decrypted).
    fn into_parts(self) -> (TcpStream, Transport, Vec<u8>);
}

impl IntoParts for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn into_parts(self) -> (TcpStream, Transport, Vec<u8>) {
        (self, Transport::Plain, Vec::new())
    }
}

impl IntoParts for TlsStream {
    fn tcp(&self) -> &TcpStream {
        TlsStream::tcp(self)
    }
    fn into_parts(self) -> (TcpStream, Transport, Vec<u8>) {
        let (tcp, session, plain) = TlsStream::into_parts(self);
        (tcp, Transport::Tls(session), plain)
    }
}

enum HeadError {
    /// The client went away (or the read failed) before a whole head.
    Closed,
    Http(handshake::HttpError),
}

/// Reads until a complete request head, starting with what is in `buf`
/// (the bytes a keep-alive client pipelined behind its last request);
/// returns it and any bytes after it (frames the client sent in the same
/// segment as the upgrade, a body, further requests).
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut buf: Vec<u8>,
    limits: &Limits,
) -> Result<(Request, Vec<u8>), HeadError> {
    buf.reserve(1024);
    // What is already here is looked at before reading more.
    let mut fresh = !buf.is_empty();
    loop {
        if fresh {
            match handshake::parse_request(&buf, limits) {
                Ok(Some(req)) => {
                    let rest = buf.split_off(req.head_len);
                    return Ok((req, rest));
                }
                Ok(None) => {}
                Err(e) => return Err(HeadError::Http(e)),
            }
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len().min(limits.max_head_bytes + 1));
        }
        let n = stream.read_buf(&mut buf).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        fresh = true;
    }
}

/// Bounded: a client that never reads must not pin the task, its slot and
/// the response body forever.
pub(super) async fn write_and_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, resp: &[u8]) -> io::Result<()> {
    let write = async {
        stream.write_all(resp).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, write).await.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))?;
    // A lingering close: closing with unread bytes from the client (the rest
    // of a head too large, a body) sends a reset, which can destroy the
    // answer before the client reads it. What still comes is read and
    // dropped until the client closes, for a short while and a few KiB.
    let linger = async {
        let mut scratch = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
    Ok(())
}

/// How long, and how much, a refused request's connection is read after the
/// answer (lingering close).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 << 10;
