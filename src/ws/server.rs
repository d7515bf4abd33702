//! The WebSocket server: routes, accept loops, the upgrade handshake, the
//! connection registry, the idle sweeper and pub/sub fan-out.
//!
//! Everything that needs a JavaScript decision (an `upgrade` handler, an
//! HTTP route) is handed up through [`WsHandler::request`] and answered with
//! [`ServerCore::decide`]; everything else is decided here.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use slab::Slab;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::conn::{Behavior, Conn, ConnInit, Queued, SendStatus, Transport};
use super::frame::{self, OpCode};
use super::group::Group;
use super::handshake::{self, Limits, Request};
use crate::pubsub::TopicTree;

/// Slowloris guard: TLS + request head must complete within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A JS `upgrade`/route handler that never answers must not pin the socket forever.
const DECISION_TIMEOUT: Duration = Duration::from_secs(30);
/// Sweeper resolution: idle timeouts and automatic pings are checked once per tick.
const TICK: Duration = Duration::from_secs(1);

/// What the layer above (N-API events, later Engine.IO) is told.
/// Connection callbacks get the server so a Rust handler can answer on the
/// same connection (`conn.send(server, ..)`); they run on I/O workers or the
/// JS thread and must not block.
pub(crate) trait WsHandler: Send + Sync + 'static {
    /// A Rust-handled route may refuse an upgrade with a full HTTP response.
    fn accept(&self, _req: &Request) -> Result<(), Vec<u8>> {
        Ok(())
    }
    fn open(&self, server: &ServerCore, conn: &Arc<Conn>);
    /// `open` with the upgrade request that made the connection (route
    /// handlers that need its URL or headers override this one).
    fn open_request(&self, server: &ServerCore, conn: &Arc<Conn>, _req: &Request, _secure: bool) {
        self.open(server, conn)
    }
    fn message(&self, server: &ServerCore, conn: &Conn, payload: &[u8], binary: bool);
    fn ping(&self, server: &ServerCore, conn: &Conn, payload: &[u8]);
    fn pong(&self, server: &ServerCore, conn: &Conn, payload: &[u8]);
    fn drain(&self, server: &ServerCore, conn: &Conn);
    fn close(&self, server: &ServerCore, conn: &Conn, code: u16, reason: &[u8]);
    /// Only the server's own handler gets these (route handlers never do).
    /// A request that needs a decision from above: an upgrade on a route
    /// with an `upgrade` handler, or a plain HTTP request on an HTTP route.
    fn request(&self, _id: u64, _kind: RequestKind, _route: u16, _req: &Request, _remote: SocketAddr) {}
    /// The client went away before the decision came.
    fn aborted(&self, _id: u64) {}
    /// A plain-HTTP connection on a hand-off listener, untouched (its bytes
    /// were only peeked at), for someone else's HTTP server. Dropping it
    /// closes it.
    fn handoff(&self, _sock: std::net::TcpStream, _remote: SocketAddr) {}
    /// Only route handlers get this, on a hand-off listener: whether this
    /// upgrade goes to `handoff` (an HTTP server above must see it first)
    /// rather than being served here.
    fn hand_off_upgrade(&self, _req: &Request) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Upgrade,
    Http,
}

/// The answer to a [`WsHandler::request`].
pub(crate) enum Decision {
    Upgrade {
        protocol: Option<String>,
    },
    /// A complete HTTP response; the connection is closed after it.
    Respond(Vec<u8>),
}

/// A route pattern as uWS.js spells them: exact path, `:param` segments, and
/// a trailing `*` matching any rest (`/*` matches everything).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    segments: Vec<Seg>,
    wildcard_tail: bool,
    raw: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param,
}

impl Pattern {
    pub(crate) fn parse(raw: &str) -> Self {
        let mut wildcard_tail = false;
        let mut segments = Vec::new();
        for s in raw.trim_start_matches('/').split('/') {
            if wildcard_tail {
                break;
            }
            if s == "*" {
                wildcard_tail = true;
            } else if let Some(prefix) = s.strip_suffix('*') {
                // "/foo*": treat as prefix of this segment, as uWS does for
                // a trailing star.
                segments.push(Seg::Lit(prefix.to_string()));
                wildcard_tail = true;
            } else if s.starts_with(':') {
                segments.push(Seg::Param);
            } else {
                segments.push(Seg::Lit(s.to_string()));
            }
        }
        Self { segments, wildcard_tail, raw: raw.to_string() }
    }

    /// Higher is more specific: static routes beat params beat wildcards.
    fn matches(&self, path: &str) -> Option<u32> {
        let mut parts = path.trim_start_matches('/').split('/');
        let mut score = 0u32;
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            let last_prefix = self.wildcard_tail && i + 1 == n && !self.raw.ends_with("/*");
            let part = parts.next()?;
            match seg {
                Seg::Lit(l) if last_prefix => {
                    if !part.starts_with(l.as_str()) {
                        return None;
                    }
                    score += 1;
                }
                Seg::Lit(l) => {
                    if part != l {
                        return None;
                    }
                    score += 3;
                }
                Seg::Param => score += 2,
            }
        }
        if self.wildcard_tail {
            return Some(score);
        }
        match parts.next() {
            None => Some(score + 1),
            Some(_) => None,
        }
    }
}

pub(crate) struct WsRoute {
    pub pattern: Pattern,
    pub behavior: Arc<Behavior>,
    /// A JS `upgrade` handler decides; otherwise every valid upgrade is accepted here.
    pub js_upgrade: bool,
}

pub(crate) struct HttpRoute {
    /// Lowercase method, or None for `any`.
    pub method: Option<String>,
    pub pattern: Pattern,
}

#[derive(Default)]
struct Routes {
    ws: Vec<WsRoute>,
    http: Vec<HttpRoute>,
}

fn best<'a, T>(items: impl Iterator<Item = (usize, &'a T, &'a Pattern)>, path: &str) -> Option<(usize, &'a T)>
where
    T: 'a,
{
    let mut found: Option<(u32, usize, &T)> = None;
    for (i, item, p) in items {
        if let Some(score) = p.matches(path) {
            if found.is_none_or(|(s, _, _)| score > s) {
                found = Some((score, i, item));
            }
        }
    }
    found.map(|(_, i, t)| (i, t))
}

struct Slot {
    gen: u32,
    conn: Option<Arc<Conn>>,
}

/// Ids handed to JS: slab key in the low 32 bits, a 21-bit generation above
/// it, so a stale handle never reaches a connection that reused the slot
/// (and the id stays an exact JS number).
fn make_id(key: usize, gen: u32) -> u64 {
    ((gen as u64) << 32) | key as u64
}
fn split_id(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

pub(crate) struct ServerOptions {
    pub max_connections: usize,
    pub limits: Limits,
    /// Connection groups (one tokio task each); one per worker keeps every
    /// core busy without splitting sockets finer than needed.
    pub groups: usize,
    /// Backlog of events handed up and not yet consumed (see inflow.rs).
    pub inflow: Arc<super::inflow::Inflow>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_connections: usize::MAX,
            limits: Limits::default(),
            groups: 2,
            inflow: Arc::new(super::inflow::Inflow::new(super::inflow::DEFAULT_INFLOW_LIMIT)),
        }
    }
}

pub(crate) struct ServerCore {
    me: std::sync::Weak<ServerCore>,
    handler: Arc<dyn WsHandler>,
    opts: ServerOptions,
    routes: RwLock<Routes>,
    slots: RwLock<Slab<Slot>>,
    next_gen: AtomicU32,
    tick: AtomicU32,
    topics: Mutex<TopicTree<Arc<Conn>>>,
    /// Connections with published frames queued and not yet flushed.
    dirty: Mutex<Vec<Arc<Conn>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Decision>>>,
    listeners: Mutex<Slab<Listening>>,
    shutting_down: AtomicBool,
    /// Plain-TCP listeners serve only WebSocket upgrades themselves (those
    /// their route's handler does not hand off, `WsHandler::hand_off_upgrade`)
    /// and hand every other connection to `WsHandler::handoff` (an HTTP
    /// server above, such as Socket.IO's Node one).
    handoff_http: AtomicBool,
    /// Established connections live in these epoll groups (see group.rs).
    groups: Vec<Arc<Group>>,
    next_group: AtomicU32,
}

impl ServerCore {
    pub(crate) fn new(handler: Arc<dyn WsHandler>, opts: ServerOptions) -> io::Result<Arc<Self>> {
        let groups = (0..opts.groups.max(1)).map(|_| Group::new().map(Arc::new)).collect::<io::Result<Vec<_>>>()?;
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            handler,
            opts,
            routes: RwLock::new(Routes::default()),
            slots: RwLock::new(Slab::new()),
            next_gen: AtomicU32::new(1),
            tick: AtomicU32::new(0),
            topics: Mutex::new(TopicTree::default()),
            dirty: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Slab::new()),
            shutting_down: AtomicBool::new(false),
            handoff_http: AtomicBool::new(false),
            groups,
            next_group: AtomicU32::new(0),
        }))
    }

    /// For handlers that keep a reference to the server they were called by.
    pub(crate) fn weak(&self) -> std::sync::Weak<ServerCore> {
        self.me.clone()
    }

    pub(crate) fn group(&self, idx: u16) -> &Group {
        &self.groups[idx as usize]
    }

    /// The handler of the connection's route (see `Behavior::handler`).
    pub(crate) fn handler_for<'a>(&'a self, conn: &'a Conn) -> &'a dyn WsHandler {
        conn.behavior.handler.as_deref().unwrap_or(&*self.handler)
    }

    pub(crate) fn tick(&self) -> u32 {
        self.tick.load(Ordering::Relaxed)
    }

    pub(crate) fn add_ws_route(&self, route: WsRoute) -> u16 {
        let mut r = self.routes.write();
        r.ws.push(route);
        (r.ws.len() - 1) as u16
    }

    pub(crate) fn add_http_route(&self, route: HttpRoute) -> u16 {
        let mut r = self.routes.write();
        r.http.push(route);
        (r.http.len() - 1) as u16
    }

    /// Starts the group threads and the sweeper; call once, inside the runtime.
    pub(crate) fn start(self: &Arc<Self>) -> io::Result<()> {
        let rt = tokio::runtime::Handle::current();
        for g in &self.groups {
            g.spawn(Arc::downgrade(self), self.opts.inflow.clone(), rt.clone())?;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(server) = weak.upgrade() else { return };
                let now = server.tick.fetch_add(1, Ordering::Relaxed) + 1;
                for conn in server.snapshot() {
                    conn.on_tick(&server, now);
                }
            }
        });
        Ok(())
    }

    fn snapshot(&self) -> Vec<Arc<Conn>> {
        self.slots.read().iter().filter_map(|(_, s)| s.conn.clone()).collect()
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.slots.read().iter().filter(|(_, s)| s.conn.is_some()).count()
    }

    fn reserve_id(&self) -> u64 {
        let gen = self.next_gen.fetch_add(1, Ordering::Relaxed) & 0x1f_ffff;
        let key = self.slots.write().insert(Slot { gen, conn: None });
        make_id(key, gen)
    }

    fn release_id(&self, id: u64) {
        let (key, gen) = split_id(id);
        let mut slots = self.slots.write();
        if slots.get(key).is_some_and(|s| s.gen == gen) {
            slots.remove(key);
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<Conn>> {
        let (key, gen) = split_id(id);
        let slots = self.slots.read();
        let slot = slots.get(key)?;
        if slot.gen != gen {
            return None;
        }
        slot.conn.clone()
    }

    /// Called exactly once per connection, when its close is reported.
    pub(crate) fn conn_closed(&self, conn: &Conn, code: u16, reason: &[u8]) {
        self.topics.lock().unsubscribe_all(conn.id);
        self.handler_for(conn).close(self, conn, code, reason);
    }

    /// Takes a finished connection out of its group and the registry; the fd
    /// closes when the last reference (a pending flush, say) is dropped.
    pub(crate) fn retire(&self, conn: &Arc<Conn>) {
        if conn.retire(self) {
            self.group(conn.group).remove(conn.fd());
            self.release_id(conn.id);
        }
    }

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

    /// See `handoff_http`. Set before listening.
    pub(crate) fn set_handoff_http(&self, on: bool) {
        self.handoff_http.store(on, Ordering::Relaxed);
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
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let mut backoff = Duration::from_millis(5);
        loop {
            match listener.accept().await {
                Ok((tcp, remote)) => {
                    backoff = Duration::from_millis(5);
                    if self.slots.read().len() >= self.opts.max_connections {
                        continue; // dropped: over the connection cap
                    }
                    let _ = tcp.set_nodelay(true);
                    let server = self.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // Boxed: the handshake's large state machine lives on
                        // the heap only while it runs.
                        Box::pin(server.handshake(tcp, remote, acceptor)).await
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

    async fn handshake(
        self: Arc<Self>,
        tcp: TcpStream,
        remote: SocketAddr,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let id = self.reserve_id();
        let outcome = match acceptor {
            None if self.handoff_http.load(Ordering::Relaxed) => self.clone().serve_or_handoff(id, tcp, remote).await,
            None => self.clone().serve_request(id, tcp, remote, false).await,
            Some(acc) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
                Ok(Ok(tls)) => self.clone().serve_request(id, tls, remote, true).await,
                _ => Ok(()),
            },
        };
        let _ = outcome;
        self.release_unless_taken(id);
    }

    /// The slot of a handshake is released here unless a connection took it over.
    fn release_unless_taken(&self, id: u64) {
        let (key, gen) = split_id(id);
        let mut slots = self.slots.write();
        if slots.get(key).is_some_and(|s| s.gen == gen && s.conn.is_none()) {
            slots.remove(key);
        }
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
            let id = server.reserve_id();
            if sock.set_nonblocking(true).is_ok() {
                if let Ok(tcp) = TcpStream::from_std(sock) {
                    let _ = tcp.set_nodelay(true);
                    let serve = server.clone().serve_upgrade(id, tcp, req, rest, remote, secure);
                    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, Box::pin(serve)).await;
                }
            }
            server.release_unless_taken(id);
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
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
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
                        let ours = handshake::is_upgrade_request(&req) && {
                            let routes = self.routes.read();
                            best(routes.ws.iter().enumerate().map(|(i, r)| (i, r, &r.pattern)), req.path()).is_some_and(
                                |(_, r)| !r.behavior.handler.as_deref().is_some_and(|h| h.hand_off_upgrade(&req)),
                            )
                        };
                        if !ours {
                            break;
                        }
                        buf.truncate(req.head_len);
                        tcp.read_exact(&mut buf).await?;
                        drop(buf);
                        return self.serve_upgrade(id, tcp, req, Vec::new(), remote, false).await;
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
        self.handler.handoff(sock, remote);
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
        let head = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_head(&mut stream, &self.opts.limits)).await;
        let (req, rest) = match head {
            Err(_) => return Ok(()), // slowloris: just drop
            Ok(Err(HeadError::Io(e))) => return Err(e),
            Ok(Err(HeadError::Http(e))) => {
                let status = e.status();
                let resp = handshake::simple_response(status, handshake::status_reason(status), &[], b"", false);
                return write_and_close(&mut stream, &resp).await;
            }
            Ok(Ok(r)) => r,
        };

        if !handshake::is_upgrade_request(&req) {
            return self.serve_http(id, stream, req, remote).await;
        }
        self.serve_upgrade(id, stream, req, rest, remote, secure).await
    }

    /// Answers an upgrade request: 101 and a connection, or an HTTP error.
    async fn serve_upgrade<S>(
        self: Arc<Self>,
        id: u64,
        mut stream: S,
        req: Request,
        rest: Vec<u8>,
        remote: SocketAddr,
        secure: bool,
    ) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let routed = {
            let routes = self.routes.read();
            best(routes.ws.iter().enumerate().map(|(i, r)| (i, r, &r.pattern)), req.path())
                .map(|(i, r)| (i as u16, r.behavior.clone(), r.js_upgrade))
        };
        let Some((route, behavior, js_upgrade)) = routed else {
            let resp = handshake::simple_response(404, "Not Found", &[], b"", false);
            return write_and_close(&mut stream, &resp).await;
        };
        let info = match handshake::validate_upgrade(&req) {
            Ok(info) => info,
            Err(reject) => return write_and_close(&mut stream, &reject.to_response()).await,
        };
        if let Some(h) = &behavior.handler {
            if let Err(resp) = h.accept(&req) {
                return write_and_close(&mut stream, &resp).await;
            }
        }
        let protocol = if js_upgrade {
            match self.await_decision(id, RequestKind::Upgrade, route, &req, remote, &stream).await {
                Some(Decision::Upgrade { protocol }) => protocol,
                Some(Decision::Respond(resp)) => return write_and_close(&mut stream, &resp).await,
                None => return Ok(()),
            }
        } else {
            None
        };
        let upgrade = Upgraded { route, behavior, key: info.key, protocol, remote, rest, secure };
        let opened = self.clone().open_upgraded(id, upgrade, &req, stream).await;
        if js_upgrade && !matches!(opened, Ok(true)) {
            // JS accepted this upgrade and waits for its `open`: say it will not come.
            self.handler.aborted(id);
        }
        opened.map(|_| ())
    }

    /// Writes the 101 and turns the stream into a registered connection.
    /// Ok(true) when the connection opened.
    async fn open_upgraded<S>(self: Arc<Self>, id: u64, up: Upgraded, req: &Request, mut stream: S) -> io::Result<bool>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let Upgraded { route, behavior, key, protocol, remote, rest, secure } = up;
        if self.shutting_down.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let accept = handshake::accept_key(&key);
        let resp = handshake::response_101(&accept, protocol.as_deref(), &[]);
        stream.write_all(&resp).await?;
        stream.flush().await?;
        let (tcp, transport) = stream.into_parts();
        let sock = tcp.into_std()?;
        let group = (self.next_group.fetch_add(1, Ordering::Relaxed) as usize % self.groups.len()) as u16;
        let init = ConnInit { id, route, group, behavior, remote, transport, tick: self.tick() };
        let conn = Arc::new(Conn::new(init, sock));
        {
            let (key, gen) = split_id(id);
            let mut slots = self.slots.write();
            match slots.get_mut(key) {
                Some(s) if s.gen == gen => s.conn = Some(conn.clone()),
                _ => return Ok(false),
            }
        }
        self.handler_for(&conn).open_request(&self, &conn, req, secure);
        if conn.start(&self, rest) || conn.register(&self).is_err() {
            self.retire(&conn);
        } else if self.shutting_down.load(Ordering::Relaxed) {
            // `shutdown()` ran while this handshake finished and did not see it.
            conn.end(&self, 1001, b"server shutting down");
        }
        Ok(true)
    }

    async fn serve_http<S>(self: Arc<Self>, id: u64, mut stream: S, req: Request, remote: SocketAddr) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let method = req.method.to_ascii_lowercase();
        let routed = {
            let routes = self.routes.read();
            let candidates = routes
                .http
                .iter()
                .enumerate()
                .filter(|(_, r)| r.method.as_deref().is_none_or(|m| m == method))
                .map(|(i, r)| (i, r, &r.pattern));
            best(candidates, req.path()).map(|(i, _)| i as u16)
        };
        let resp = match routed {
            None => {
                handshake::simple_response(404, "Not Found", &[("content-type", "text/plain")], b"Not Found", false)
            }
            Some(route) => match self.await_decision(id, RequestKind::Http, route, &req, remote, &stream).await {
                Some(Decision::Respond(resp)) => resp,
                Some(Decision::Upgrade { .. }) => {
                    handshake::simple_response(500, "Internal Server Error", &[], b"", false)
                }
                None => return Ok(()),
            },
        };
        write_and_close(&mut stream, &resp).await
    }

    /// Asks JS and waits for `decide`, watching for the client going away.
    async fn await_decision<S: IntoParts>(
        &self,
        id: u64,
        kind: RequestKind,
        route: u16,
        req: &Request,
        remote: SocketAddr,
        stream: &S,
    ) -> Option<Decision> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        self.handler.request(id, kind, route, req, remote);
        let tcp = stream.tcp();
        let aborted = async {
            loop {
                if tcp.readable().await.is_err() {
                    return;
                }
                let mut b = [0u8; 1];
                match tcp.peek(&mut b).await {
                    Ok(0) | Err(_) => return,
                    // The client sent more (pipelined bytes): not an abort;
                    // stop watching, leave the bytes for later.
                    Ok(_) => std::future::pending::<()>().await,
                }
            }
        };
        let result = tokio::select! {
            d = rx => d.ok(),
            _ = aborted => None,
            _ = tokio::time::sleep(DECISION_TIMEOUT) => None,
        };
        if self.pending.lock().remove(&id).is_some() {
            self.handler.aborted(id);
        }
        result
    }

    /// The answer from above to a pending request. False when it is gone.
    pub(crate) fn decide(&self, id: u64, decision: Decision) -> bool {
        match self.pending.lock().remove(&id) {
            Some(tx) => tx.send(decision).is_ok(),
            None => false,
        }
    }

    /// Lock order: topic tree, then the connection's state. Checking
    /// `is_open` under the topic lock means a concurrent close (whose
    /// `unsubscribe_all` also takes it) cannot slip in between and leave a
    /// subscription, and with it the connection, behind.
    pub(crate) fn subscribe(&self, conn: &Arc<Conn>, topic: &str) -> bool {
        let mut topics = self.topics.lock();
        conn.is_open() && topics.subscribe(conn.id, conn, topic)
    }

    pub(crate) fn unsubscribe(&self, id: u64, topic: &str) -> bool {
        self.topics.lock().unsubscribe(id, topic)
    }

    pub(crate) fn is_subscribed(&self, id: u64, topic: &str) -> bool {
        self.topics.lock().is_subscribed(id, topic)
    }

    pub(crate) fn topics_of(&self, id: u64) -> Vec<Arc<str>> {
        self.topics.lock().topics_of(id)
    }

    pub(crate) fn num_subscribers(&self, topic: &str) -> usize {
        self.topics.lock().num_subscribers(topic)
    }

    /// Frames `payload` once and queues the shared bytes on every subscriber
    /// (except `skip`). Writing happens in [`Self::flush`], so a burst of
    /// publishes reaches each socket in one `writev`. Returns how many
    /// subscribers got it.
    pub(crate) fn publish(&self, topic: &str, payload: &[u8], binary: bool, skip: Option<u64>) -> usize {
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        let framed: Bytes = frame::encode_frame(opcode, payload);
        let mut newly_dirty = Vec::new();
        let mut to_close = Vec::new();
        let mut delivered = 0;
        self.topics.lock().for_each(topic, skip, |_, conn| match conn.queue_published(&framed) {
            Queued::NewlyDirty => {
                delivered += 1;
                newly_dirty.push(conn.clone());
            }
            Queued::Pending => delivered += 1,
            Queued::Skipped => {}
            Queued::MustClose => to_close.push(conn.clone()),
        });
        if !newly_dirty.is_empty() {
            self.dirty.lock().append(&mut newly_dirty);
        }
        for c in to_close {
            c.end(self, 1009, b"backpressure limit");
        }
        delivered
    }

    /// Queues one shared frame on `conn` as a publish does (written by the
    /// next `flush`, several per `writev`). False when skipped (closed, or
    /// over maxBackpressure; closed with 1009 under closeOnBackpressureLimit).
    pub(crate) fn queue_shared(&self, conn: &Arc<Conn>, framed: &Bytes) -> bool {
        match conn.queue_published(framed) {
            Queued::NewlyDirty => {
                self.dirty.lock().push(conn.clone());
                true
            }
            Queued::Pending => true,
            Queued::Skipped => false,
            Queued::MustClose => {
                conn.end(self, 1009, b"backpressure limit");
                false
            }
        }
    }

    /// Writes everything publishes queued. The JS layer calls this once per
    /// tick after publishing.
    pub(crate) fn flush(&self) {
        let dirty = std::mem::take(&mut *self.dirty.lock());
        for conn in dirty {
            conn.flush_dirty(self);
        }
    }

    pub(crate) fn send(&self, id: u64, payload: &[u8], binary: bool) -> Option<SendStatus> {
        self.get(id)?.send(self, payload, binary)
    }

    pub(crate) fn end(&self, id: u64, code: u16, reason: &[u8]) -> bool {
        match self.get(id) {
            Some(c) => {
                c.end(self, code, reason);
                true
            }
            None => false,
        }
    }

    pub(crate) fn terminate(&self, id: u64) -> bool {
        match self.get(id) {
            Some(c) => {
                c.terminate(self);
                true
            }
            None => false,
        }
    }

    /// `app.close()`: stop accepting, send every connection close 1001, and
    /// refuse pending requests. Close frames are written before this returns.
    pub(crate) fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let listeners = std::mem::take(&mut *self.listeners.lock());
        for (_, l) in listeners {
            l.stop();
        }
        for (_, tx) in std::mem::take(&mut *self.pending.lock()) {
            drop(tx);
        }
        self.flush();
        for conn in self.snapshot() {
            conn.end(self, 1001, b"server shutting down");
        }
    }

    /// After the runtime has stopped: drop every connection (closing fds).
    pub(crate) fn clear(&self) {
        for conn in self.snapshot() {
            self.retire(&conn);
        }
        for g in &self.groups {
            g.stop();
        }
    }
}

impl Drop for ServerCore {
    fn drop(&mut self) {
        for g in &self.groups {
            g.stop();
        }
    }
}

/// Splits a finished handshake stream into the raw socket and how to speak on it.
/// A listening socket's accept task, and word of when its socket is closed.
struct Listening {
    task: JoinHandle<()>,
    closed: std::sync::mpsc::Receiver<()>,
}

impl Listening {
    /// Stops accepting and waits (briefly) until the socket is closed, so the
    /// port can be bound again as soon as this returns.
    fn stop(self) {
        self.task.abort();
        let _ = self.closed.recv_timeout(Duration::from_secs(1));
    }
}

/// Fields drop in order: the socket closes before `_done` says so.
struct OwnedListener {
    listener: TcpListener,
    _done: std::sync::mpsc::Sender<()>,
}

/// An accepted upgrade on its way to becoming a connection.
struct Upgraded {
    route: u16,
    behavior: Arc<Behavior>,
    key: String,
    protocol: Option<String>,
    remote: SocketAddr,
    rest: Vec<u8>,
    secure: bool,
}

pub(crate) trait IntoParts {
    fn tcp(&self) -> &TcpStream;
    fn into_parts(self) -> (TcpStream, Transport);
}

impl IntoParts for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn into_parts(self) -> (TcpStream, Transport) {
        (self, Transport::Plain)
    }
}

impl IntoParts for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
    fn into_parts(self) -> (TcpStream, Transport) {
        let (tcp, session) = self.into_inner();
        (tcp, Transport::Tls(Box::new(session)))
    }
}

enum HeadError {
    Io(io::Error),
    Http(handshake::HttpError),
}

/// Reads until a complete request head; returns it and any bytes after it
/// (frames the client sent in the same segment as the upgrade).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, limits: &Limits) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len().min(limits.max_head_bytes + 1));
        }
        let n = stream.read_buf(&mut buf).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        match handshake::parse_request(&buf, limits) {
            Ok(Some(req)) => {
                let rest = buf.split_off(req.head_len);
                return Ok((req, rest));
            }
            Ok(None) => {}
            Err(e) => return Err(HeadError::Http(e)),
        }
    }
}

/// Bounded: a client that never reads must not pin the task, its slot and
/// the response body forever.
async fn write_and_close<S: AsyncWrite + Unpin>(stream: &mut S, resp: &[u8]) -> io::Result<()> {
    let write = async {
        stream.write_all(resp).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, write).await.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_uws() {
        let p = Pattern::parse("/*");
        assert!(p.matches("/").is_some() && p.matches("/a/b").is_some());
        let p = Pattern::parse("/chat");
        assert!(p.matches("/chat").is_some());
        assert!(p.matches("/chat/x").is_none() && p.matches("/other").is_none());
        let p = Pattern::parse("/user/:id");
        assert!(p.matches("/user/7").is_some() && p.matches("/user").is_none());
        let p = Pattern::parse("/static/*");
        assert!(p.matches("/static/a.js").is_some() && p.matches("/x/a.js").is_none());
    }

    #[test]
    fn most_specific_route_wins_regardless_of_order() {
        let pats = [Pattern::parse("/*"), Pattern::parse("/user/:id"), Pattern::parse("/user/me")];
        let pick = |path: &str| best(pats.iter().enumerate().map(|(i, p)| (i, p, p)), path).map(|(i, _)| i);
        assert_eq!(pick("/user/me"), Some(2));
        assert_eq!(pick("/user/7"), Some(1));
        assert_eq!(pick("/elsewhere"), Some(0));
    }

    #[test]
    fn ids_round_trip_and_stay_exact_in_js_numbers() {
        let id = make_id(123_456, 0x1f_ffff);
        assert_eq!(split_id(id), (123_456, 0x1f_ffff));
        assert!(id < (1u64 << 53));
    }
}
