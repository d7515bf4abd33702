//! One WebSocket connection after the handshake: its socket, its outbound
//! queue, and the frame parser state.
//!
//! Memory is the point of this file. An idle connection is one `Conn`: the
//! socket fd, a mutex around a few counters and an empty `VecDeque`, and the
//! read state (an empty `Vec` and an 8-byte assembler). No task, no tokio
//! registration (see `group.rs`), no read buffer: its group reads into a
//! per-thread scratch buffer, and only a partial frame is copied into a
//! buffer of its own, freed as soon as the frame completes. No write buffer:
//! frames are shared `Bytes` queued until the kernel takes them. No timer:
//! the server's sweeper looks at `last_rx` once per tick.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::net::TlsSession;

use super::deflate::{self, Agreed, Deflater, InflateError, Inflater};
use super::frame::{self, FrameError, Incoming, MessageAssembler, OpCode};
use super::handshake::Request;

/// Size of the per-thread read buffer. 64 KiB reads a full loopback burst in
/// one syscall; the buffer is per thread, not per socket.
const SCRATCH_SIZE: usize = 64 * 1024;
/// At most this many queued frames go into one `sendmsg` (IOV_MAX is 1024;
/// 64 already amortises the syscall over many small messages).
const MAX_IOVECS: usize = 64;
/// Direct sends of payloads up to this size are copied behind their header
/// into one stack buffer and written with one `send`.
const DIRECT_COPY: usize = 2048;
/// TLS: queued frames sealed per round (one record when they fit), so the
/// ciphertext waiting in the session stays bounded and our `out_bytes`
/// stays an honest buffered amount.
const TLS_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_SIZE].into_boxed_slice());
    /// TLS: plaintext of one read (per thread, as `SCRATCH` is).
    static PLAIN: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(SCRATCH_SIZE));
    /// TLS: queued frames gathered into one record's plaintext.
    static GATHER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(TLS_CHUNK));
}

/// What a connection asks of the server that owns it: the clock, readiness
/// watching, and word of its close. Given to every call that may need it, so
/// a connection knows nothing of the server above it.
pub(crate) trait ConnHost {
    /// The sweeper's clock, in ticks (one a second).
    fn tick(&self) -> u32;
    /// How many times the layer above took its pending events (see
    /// `Inflow::epoch`): what this connection handed up is counted per epoch.
    fn inflow_epoch(&self) -> u32 {
        0
    }
    /// Whether what `conn`'s peer sends is not being read for now (it is
    /// paused, or nobody is read): its answers wait in the kernel.
    fn is_unread(&self, _conn: &Conn) -> bool {
        false
    }
    /// Starts watching the socket (for writability too with `want_write`).
    fn watch(&self, conn: &Conn, want_write: bool) -> io::Result<()>;
    /// What the group watches the socket for: readability unless `paused`,
    /// writability with `write`. Called under the connection's state lock,
    /// so pausing and a send's need to write never undo each other.
    fn interest(&self, conn: &Conn, paused: bool, write: bool);
    /// The connection closed (exactly once per connection): the host forgets
    /// it and tells the route's handler.
    fn closed(&self, conn: &Conn, code: u16, reason: &[u8]);
}

/// A route's connection events, and its say over the upgrades that make them.
/// Callbacks get the host so a handler can answer on the same connection
/// (`conn.send(host, ..)`); they run on I/O threads or the JS thread and must
/// not block. The server's own requests (JS decisions, hand-offs) go to a
/// separate sink (`sink.rs`).
pub(crate) trait WsHandler: Send + Sync + 'static {
    /// May refuse an upgrade with a full HTTP response.
    fn accept(&self, _req: &Request) -> Result<(), Vec<u8>> {
        Ok(())
    }
    /// On a listener that hands plain HTTP to a server above: whether this
    /// upgrade goes there too (that server must see it first) rather than
    /// being served here.
    fn hand_off_upgrade(&self, _req: &Request) -> bool {
        false
    }
    fn open(&self, host: &dyn ConnHost, conn: &Arc<Conn>);
    /// `open` with the upgrade request that made the connection (handlers
    /// that need its URL or headers override this one).
    fn open_request(&self, host: &dyn ConnHost, conn: &Arc<Conn>, _req: &Request, _secure: bool) {
        self.open(host, conn)
    }
    fn message(&self, host: &dyn ConnHost, conn: &Conn, payload: &[u8], binary: bool);
    fn ping(&self, host: &dyn ConnHost, conn: &Conn, payload: &[u8]);
    fn pong(&self, host: &dyn ConnHost, conn: &Conn, payload: &[u8]);
    fn drain(&self, host: &dyn ConnHost, conn: &Conn);
    fn close(&self, host: &dyn ConnHost, conn: &Conn, code: u16, reason: &[u8]);
}

/// Per-route limits and switches, fixed when the route is registered.
#[derive(Clone)]
pub(crate) struct Behavior {
    /// Who gets this route's connection events: the N-API sink, or a Rust
    /// layer such as Engine.IO.
    pub handler: Arc<dyn WsHandler>,
    /// Close after this many seconds without receiving anything; 0 = never.
    pub idle_timeout_secs: u32,
    pub max_payload: usize,
    pub max_backpressure: usize,
    pub close_on_backpressure_limit: bool,
    pub send_pings: bool,
    /// Which peer frames reach the handler: those nobody listens to (a
    /// route without a `message`, `ping` or `pong` handler) are dropped
    /// here, so a flood of them never queues events for JS.
    pub forward: Forward,
    /// permessage-deflate as the route allows it (None: never negotiated).
    pub compression: Option<deflate::Config>,
}

/// What reaches a route's handler (see [`Behavior::forward`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Forward {
    pub message: bool,
    pub ping: bool,
    pub pong: bool,
}

impl Forward {
    pub(crate) const ALL: Forward = Forward { message: true, ping: true, pong: true };
}

/// What an event costs the layer above beyond its payload (kind, id,
/// lengths), for the per-connection share of the inflow backlog.
const EVENT_OVERHEAD: usize = 16;

/// Longest a graceful close waits, in ticks, while what was queued before
/// the close frame still drains to a slow reader (ws's close timeout).
const CLOSE_DRAIN_SECS: u32 = 30;

/// More control frames (pings and pongs) than this from one peer within one
/// sweeper tick (a second) close the connection with 1008: no client needs
/// them, and each one costs a parse and maybe a reply.
pub(crate) const MAX_CONTROL_FRAMES_PER_TICK: u32 = 1000;

impl Behavior {
    /// uWS.js's defaults, so ported apps behave the same.
    pub(crate) fn new(handler: Arc<dyn WsHandler>) -> Self {
        Self {
            handler,
            idle_timeout_secs: 120,
            max_payload: 16 * 1024,
            max_backpressure: 64 * 1024,
            close_on_backpressure_limit: false,
            send_pings: true,
            forward: Forward::ALL,
            compression: None,
        }
    }
}

/// What `queue_published` did with one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// Queued; the caller must put the connection in the dirty list.
    NewlyDirty,
    /// Queued; already in the dirty list (or corked).
    Pending,
    /// Closed or over maxBackpressure: this subscriber misses the message.
    Skipped,
    /// Over maxBackpressure with closeOnBackpressureLimit: caller closes it.
    MustClose,
}

/// What `send` did, as uWS.js reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendStatus {
    /// Queued behind unsent data; `drain` follows when the queue empties.
    Backpressure = 0,
    Success = 1,
    /// Refused: the buffered amount was already over maxBackpressure.
    Dropped = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// We sent a close frame and wait for the peer's (or the sweeper's deadline).
    Closing,
    /// Nothing more is read or written; the task ends and the fd is closed.
    Closed,
}

pub(crate) enum Transport {
    Plain,
    Tls(Box<TlsSession>),
}

struct State {
    out: VecDeque<Bytes>,
    /// Bytes of `out[0]` already written.
    out_offset: usize,
    out_bytes: usize,
    transport: Transport,
    phase: Phase,
    /// The close event has been reported (exactly once per connection).
    close_reported: bool,
    /// Removed from its group and the registry.
    retired: bool,
    /// `send` returned Backpressure: report `drain` when the queue empties.
    want_drain: bool,
    /// The group watches for writability (the kernel buffer was full).
    want_write: bool,
    corked: bool,
    /// In the server's dirty list already (queued by publish, flush pending).
    dirty: bool,
    /// A ping was sent during the current idle period.
    pinged: bool,
    /// The pong for the latest ping, held while other frames are queued:
    /// sent once they are out, replaced by a newer ping's (RFC 6455 5.5.3
    /// lets an endpoint answer only the latest), so a peer that pings and
    /// never reads holds at most one pong here.
    pending_pong: Option<Bytes>,
    /// Tick at which Closing started (for the close-handshake timeout).
    closing_since: u32,
    /// When the close began, and what was queued at the last look: a
    /// closing connection whose queue still drains is given time.
    closing_started: u32,
    closing_out: usize,
    /// The close was the peer's (its close frame came first).
    by_peer: bool,
}

/// Read side: touched only by the connection's group task (and once by the
/// handshake task before the socket joins its group), so its lock is never
/// contended; it is separate from `State` so that handlers called while
/// parsing may send on this same connection.
struct ReadState {
    /// Bytes of an incomplete frame; empty (unallocated) between frames.
    partial: Vec<u8>,
    asm: MessageAssembler,
    /// Control frames received during tick `control_tick`.
    control: ControlCount,
    /// The dedicated decompressor (permessage-deflate with the client's
    /// context kept), made at the first compressed message.
    inflater: Option<Box<Inflater>>,
}

#[derive(Default)]
struct ControlCount {
    tick: u32,
    count: u32,
    /// Closed for flooding: what the peer still sends is read and dropped
    /// until its close frame (or the close timeout), so that our close
    /// frame reaches it instead of a reset for unread data.
    flooded: bool,
}

impl ControlCount {
    /// Counts one control frame at `tick`; false once over the limit.
    fn allow(&mut self, tick: u32) -> bool {
        if tick != self.tick {
            self.tick = tick;
            self.count = 0;
        }
        self.count += 1;
        self.count <= MAX_CONTROL_FRAMES_PER_TICK
    }
}

/// Where a new connection belongs and what it starts with.
pub(crate) struct ConnInit {
    pub id: u64,
    pub route: u16,
    pub group: u16,
    pub behavior: Arc<Behavior>,
    pub remote: SocketAddr,
    pub transport: Transport,
    pub tick: u32,
    /// permessage-deflate, when negotiated.
    pub deflate: Option<Agreed>,
}

/// permessage-deflate as agreed for one connection, and its dedicated
/// compressor (made at the first compressed send) when ours keeps context.
struct ConnDeflate {
    agreed: Agreed,
    /// Held while a compressed message is queued, so messages reach the
    /// socket in the order they were compressed.
    deflater: Mutex<Option<Deflater>>,
}

pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) route: u16,
    pub(crate) group: u16,
    pub(crate) behavior: Arc<Behavior>,
    pub(crate) remote: SocketAddr,
    sock: TcpStream,
    /// Server tick of the last byte received (relaxed: the sweeper only needs
    /// a recent value, and a late ping is harmless).
    last_rx: AtomicU32,
    /// What this connection handed to its handler in the current inflow
    /// epoch: `epoch << 32 | bytes` (written by its group thread only).
    handed: AtomicU64,
    /// Not read for now: it produced its share of a backlog the layer
    /// above has not taken (group.rs). Its idle timer does not run.
    paused: AtomicBool,
    state: Mutex<State>,
    read: Mutex<ReadState>,
    deflate: Option<Box<ConnDeflate>>,
}

enum Flow {
    Continue,
    /// Stop reading: close frame received or sent, or protocol error.
    Stop,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted
}

impl Conn {
    /// `sock` must be non-blocking.
    pub(crate) fn new(init: ConnInit, sock: TcpStream) -> Self {
        let ConnInit { id, route, group, behavior, remote, transport, tick, deflate } = init;
        Self {
            id,
            route,
            group,
            behavior,
            remote,
            sock,
            last_rx: AtomicU32::new(tick),
            handed: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            state: Mutex::new(State {
                out: VecDeque::new(),
                out_offset: 0,
                out_bytes: 0,
                transport,
                phase: Phase::Open,
                close_reported: false,
                retired: false,
                want_drain: false,
                want_write: false,
                corked: false,
                dirty: false,
                pinged: false,
                pending_pong: None,
                closing_since: 0,
                closing_started: 0,
                closing_out: 0,
                by_peer: false,
            }),
            read: Mutex::new(ReadState {
                partial: Vec::new(),
                asm: MessageAssembler::new(),
                control: ControlCount::default(),
                inflater: None,
            }),
            deflate: deflate.map(|agreed| Box::new(ConnDeflate { agreed, deflater: Mutex::new(None) })),
        }
    }

    /// Joins the epoll group. Under the state lock, so a send that already
    /// hit a full kernel buffer (before the socket was registered, when the
    /// write-interest change could not apply) registers write interest too.
    pub(crate) fn register(&self, host: &dyn ConnHost) -> io::Result<()> {
        let st = self.state.lock();
        host.watch(self, st.want_write)
    }

    #[cfg(test)]
    pub(crate) fn partial_capacity(&self) -> usize {
        self.read.lock().partial.capacity()
    }

    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }

    /// Whether the peer closed (its close frame came before any close of ours).
    pub(crate) fn closed_by_peer(&self) -> bool {
        self.state.lock().by_peer
    }

    /// Not read for now (the layer above is behind; see the group).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state.lock().phase == Phase::Open
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().phase == Phase::Closed
    }

    /// Counts `bytes` handed to the handler in inflow epoch `epoch`.
    fn charge(&self, epoch: u32, bytes: usize) {
        let v = self.handed.load(Ordering::Relaxed);
        let before = if (v >> 32) as u32 == epoch { v as u32 } else { 0 };
        let now = before.saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
        self.handed.store(u64::from(epoch) << 32 | u64::from(now), Ordering::Relaxed);
    }

    /// Bytes handed to the handler in inflow epoch `epoch` (0 for an older one).
    pub(crate) fn handed_in(&self, epoch: u32) -> usize {
        let v = self.handed.load(Ordering::Relaxed);
        if (v >> 32) as u32 == epoch {
            v as u32 as usize
        } else {
            0
        }
    }

    /// Not read for now (`on`), or read again; either way its idle timer
    /// starts afresh. The epoll interest changes under the state lock, as
    /// a send's does (see [`ConnHost::interest`]).
    pub(crate) fn set_paused(&self, host: &dyn ConnHost, on: bool, now: u32) {
        let st = self.state.lock();
        self.paused.store(on, Ordering::Relaxed);
        self.last_rx.store(now, Ordering::Relaxed);
        if st.phase != Phase::Closed {
            host.interest(self, on, st.want_write);
        }
    }

    pub(crate) fn buffered_amount(&self) -> usize {
        self.state.lock().out_bytes
    }

    /// Sends one data message. Called from the JS thread: writes straight to
    /// the socket when nothing is queued (no cross-thread hop on the echo
    /// path), else queues behind what is there so per-socket order holds.
    pub(crate) fn send(&self, host: &dyn ConnHost, payload: &[u8], binary: bool) -> Option<SendStatus> {
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        let mut head = [0u8; frame::MAX_HEADER_LEN];
        let hl = frame::encode_header(opcode, true, payload.len(), &mut head);
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return None;
        }
        if self.can_write_now(&st) {
            // Nothing queued, so nothing over the backpressure limit either.
            let r = if payload.len() <= DIRECT_COPY {
                // One contiguous `send` is cheaper than a two-part `sendmsg`.
                let mut buf = [0u8; frame::MAX_HEADER_LEN + DIRECT_COPY];
                buf[..hl].copy_from_slice(&head[..hl]);
                buf[hl..hl + payload.len()].copy_from_slice(payload);
                send_now(self.fd(), &[IoSlice::new(&buf[..hl + payload.len()])])
            } else {
                send_now(self.fd(), &[IoSlice::new(&head[..hl]), IoSlice::new(payload)])
            };
            return Some(self.after_direct(host, &mut st, r, hl + payload.len(), |n| {
                let mut rest = Vec::with_capacity(hl + payload.len() - n);
                if n < hl {
                    rest.extend_from_slice(&head[n..hl]);
                }
                rest.extend_from_slice(&payload[n.saturating_sub(hl)..]);
                Bytes::from(rest)
            }));
        }
        drop(st);
        self.send_frame(host, frame::encode_frame(opcode, payload))
    }

    /// Sends one data message compressed when permessage-deflate was
    /// negotiated (as is otherwise).
    pub(crate) fn send_compressed(&self, host: &dyn ConnHost, payload: &[u8], binary: bool) -> Option<SendStatus> {
        let Some(d) = &self.deflate else { return self.send(host, payload, binary) };
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        match d.agreed.server_window {
            None => self.send_frame(host, deflate::shared_frame(opcode, payload)),
            Some(bits) => {
                let mut deflater = d.deflater.lock();
                let framed = deflater.get_or_insert_with(|| Deflater::new(bits)).frame(opcode, payload);
                self.send_frame(host, framed)
            }
        }
    }

    /// Whether this connection takes a compressed message, and how: a frame
    /// compressed once for every such subscriber (no context kept), or its
    /// own compression (None when not negotiated).
    pub(crate) fn compression(&self) -> Option<bool> {
        self.deflate.as_ref().map(|d| d.agreed.server_window.is_none())
    }

    /// Queues a message compressed with this connection's own compressor
    /// (see `queue_published`).
    pub(crate) fn queue_published_compressed(&self, payload: &[u8], binary: bool) -> Queued {
        let Some(d) = &self.deflate else { return Queued::Skipped };
        let Some(bits) = d.agreed.server_window else { return Queued::Skipped };
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        let mut deflater = d.deflater.lock();
        if self.state.lock().phase != Phase::Open {
            return Queued::Skipped;
        }
        self.queue_published(&deflater.get_or_insert_with(|| Deflater::new(bits)).frame(opcode, payload))
    }

    /// Sends an already framed message. None when the connection is not open.
    pub(crate) fn send_frame(&self, host: &dyn ConnHost, framed: Bytes) -> Option<SendStatus> {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return None;
        }
        if self.can_write_now(&st) {
            let r = send_now(self.fd(), &[IoSlice::new(&framed)]);
            return Some(self.after_direct(host, &mut st, r, framed.len(), |n| framed.slice(n..)));
        }
        if st.out_bytes > self.behavior.max_backpressure {
            if self.behavior.close_on_backpressure_limit {
                drop(st);
                self.end(host, 1009, b"backpressure limit");
            }
            return Some(SendStatus::Dropped);
        }
        st.out_bytes += framed.len();
        st.out.push_back(framed);
        if st.corked {
            // uncork flushes; uWS.js also reports corked sends as success.
            return Some(SendStatus::Success);
        }
        // Flushes anything a publish queued too (order is kept; the dirty-list
        // flush then finds nothing left to do).
        Some(self.flush_or_park(host, &mut st))
    }

    /// A plain socket with nothing queued and not corked: a send may go
    /// straight to the kernel, skipping the queue.
    fn can_write_now(&self, st: &State) -> bool {
        st.out.is_empty() && !st.corked && matches!(st.transport, Transport::Plain)
    }

    /// The outcome of a direct send of `total` bytes: what the kernel did not
    /// take (`rest(n)` after `n` bytes) is queued and the group asked to
    /// report writability, as for a queued send.
    fn after_direct(
        &self,
        host: &dyn ConnHost,
        st: &mut State,
        r: io::Result<usize>,
        total: usize,
        rest: impl FnOnce(usize) -> Bytes,
    ) -> SendStatus {
        let n = match r {
            Ok(n) if n == total => return SendStatus::Success,
            Ok(n) => n,
            Err(e) if would_block(&e) => 0,
            Err(_) => {
                // The peer is gone; the group sees the hang-up and retires it.
                self.mark_closed(st);
                return SendStatus::Backpressure;
            }
        };
        let rest = rest(n);
        st.out_bytes += rest.len();
        st.out.push_back(rest);
        self.flush_or_park(host, st)
    }

    /// Queues a published frame without writing: the caller flushes all dirty
    /// connections once, so several publishes share one `sendmsg`. Must not
    /// close (the caller holds the topic lock): it says what to do instead.
    pub(crate) fn queue_published(&self, framed: &Bytes) -> Queued {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return Queued::Skipped;
        }
        if st.out_bytes > self.behavior.max_backpressure {
            return if self.behavior.close_on_backpressure_limit { Queued::MustClose } else { Queued::Skipped };
        }
        st.out_bytes += framed.len();
        st.out.push_back(framed.clone());
        if !st.dirty && !st.corked {
            st.dirty = true;
            return Queued::NewlyDirty;
        }
        Queued::Pending
    }

    /// Flush after a publish batch.
    pub(crate) fn flush_dirty(&self, host: &dyn ConnHost) {
        let mut st = self.state.lock();
        st.dirty = false;
        if !st.corked && st.phase != Phase::Closed {
            self.flush_or_park(host, &mut st);
        }
    }

    pub(crate) fn set_corked(&self, host: &dyn ConnHost, corked: bool) {
        let mut st = self.state.lock();
        st.corked = corked;
        if !corked && st.phase != Phase::Closed {
            self.flush_or_park(host, &mut st);
        }
    }

    /// Tries to write everything queued; on a full kernel buffer, asks the
    /// group to report writability.
    fn flush_or_park(&self, host: &dyn ConnHost, st: &mut State) -> SendStatus {
        match self.flush(st) {
            Ok(true) => SendStatus::Success,
            Ok(false) => {
                st.want_drain = true;
                if !st.want_write {
                    st.want_write = true;
                    host.interest(self, self.paused.load(Ordering::Relaxed), true);
                }
                SendStatus::Backpressure
            }
            Err(_) => {
                // The peer is gone; the group sees the hang-up and retires it.
                self.mark_closed(st);
                SendStatus::Backpressure
            }
        }
    }

    /// Phase -> Closed and make sure the group looks at this socket soon:
    /// shutting it down produces a hang-up event.
    fn mark_closed(&self, st: &mut State) {
        if st.phase != Phase::Closed {
            st.phase = Phase::Closed;
            if let Transport::Tls(tls) = &mut st.transport {
                // After what is queued (the flush writes it first), as RFC
                // 8446 6.1 asks; nothing if the session already ended.
                tls.close_notify();
            }
            let _ = self.flush(st);
            let _ = self.sock.shutdown(Shutdown::Both);
        }
    }

    /// Writes queued frames, then the pending pong if there is one.
    /// Ok(true): all written. Ok(false): would block.
    fn flush(&self, st: &mut State) -> io::Result<bool> {
        loop {
            if !self.flush_queue(st)? {
                return Ok(false);
            }
            // Never after a close frame.
            let pong = st.pending_pong.take();
            let Some(pong) = pong.filter(|_| st.phase == Phase::Open) else { return Ok(true) };
            st.out_bytes += pong.len();
            st.out.push_back(pong);
        }
    }

    fn flush_queue(&self, st: &mut State) -> io::Result<bool> {
        match &mut st.transport {
            Transport::Plain => {
                while !st.out.is_empty() {
                    let mut iov: [IoSlice<'_>; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
                    let mut n_iov = 0;
                    for (i, b) in st.out.iter().take(MAX_IOVECS).enumerate() {
                        iov[i] = IoSlice::new(if i == 0 { &b[st.out_offset..] } else { &b[..] });
                        n_iov += 1;
                    }
                    match send_now(self.fd(), &iov[..n_iov]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => advance(&mut st.out, &mut st.out_offset, &mut st.out_bytes, n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if st.out.capacity() > 64 {
                    // A burst grew the ring; give it back so idle stays small.
                    st.out = VecDeque::new();
                }
                Ok(true)
            }
            Transport::Tls(tls) => loop {
                let fd = self.fd();
                if !tls.write_pending(|b| send_now(fd, &[IoSlice::new(b)]))? {
                    return Ok(false);
                }
                if st.out.is_empty() {
                    if st.out.capacity() > 64 {
                        st.out = VecDeque::new();
                    }
                    return Ok(true);
                }
                GATHER.with(|g| {
                    let mut g = g.borrow_mut();
                    g.clear();
                    while g.len() < TLS_CHUNK {
                        let Some(front) = st.out.front() else { break };
                        let rest = &front[st.out_offset..];
                        let take = rest.len().min(TLS_CHUNK - g.len());
                        g.extend_from_slice(&rest[..take]);
                        advance(&mut st.out, &mut st.out_offset, &mut st.out_bytes, take);
                    }
                    tls.encrypt(&g).map_err(io::Error::other)
                })?;
            },
        }
    }

    /// Queues a control frame, bypassing the backpressure limit (a pong or a
    /// close must go out even to a slow reader; they are at most 127 bytes).
    fn send_control(&self, host: &dyn ConnHost, st: &mut State, opcode: OpCode, payload: &[u8]) {
        if opcode == OpCode::Close {
            // Nothing follows a close frame, a held pong included.
            st.pending_pong = None;
        }
        let framed = frame::encode_frame(opcode, payload);
        st.out_bytes += framed.len();
        st.out.push_back(framed);
        if !st.corked {
            self.flush_or_park(host, st);
        }
    }

    pub(crate) fn ping(&self, host: &dyn ConnHost, payload: &[u8]) -> bool {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return false;
        }
        let p = &payload[..payload.len().min(125)];
        self.send_control(host, &mut st, OpCode::Ping, p);
        true
    }

    /// Graceful close: send a close frame, wait (bounded) for the peer's.
    /// The close event is reported now, with this code and reason.
    pub(crate) fn end(&self, host: &dyn ConnHost, code: u16, reason: &[u8]) {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return;
        }
        let reason = String::from_utf8_lossy(reason);
        // Code 0 (uWS.js `end()` without arguments): a close frame with no
        // status, which the peer (and our close handler) sees as 1005.
        let (payload, code) = if code == 0 { (Vec::new(), 1005) } else { (frame::close_payload(code, &reason), code) };
        st.corked = false;
        self.send_control(host, &mut st, OpCode::Close, &payload);
        if st.phase == Phase::Open {
            st.phase = Phase::Closing;
            st.closing_since = host.tick();
            st.closing_started = st.closing_since;
            st.closing_out = st.out_bytes;
        }
        let report = !st.close_reported;
        st.close_reported = true;
        drop(st);
        if report {
            host.closed(self, code, reason.as_bytes());
        }
    }

    /// Abrupt close (uWS `close()`): no close frame; reported as 1006.
    pub(crate) fn terminate(&self, host: &dyn ConnHost) {
        let mut st = self.state.lock();
        if st.phase == Phase::Closed {
            return;
        }
        st.phase = Phase::Closed;
        // No final flush: an abrupt close sends nothing more.
        let _ = self.sock.shutdown(Shutdown::Both);
        let report = !st.close_reported;
        st.close_reported = true;
        drop(st);
        if report {
            host.closed(self, 1006, b"");
        }
    }

    /// Called by the sweeper once per tick. Sends the automatic ping, closes
    /// idle connections and ends close handshakes that got no answer.
    /// `unread`: the groups read nobody for now (the layer above is far
    /// behind); like a paused connection, nobody is idle then: what the
    /// peers sent waits in the kernel.
    pub(crate) fn on_tick(&self, host: &dyn ConnHost, now: u32, unread: bool) {
        let b = &self.behavior;
        if unread || self.paused.load(Ordering::Relaxed) {
            self.last_rx.store(now, Ordering::Relaxed);
        }
        let idle = now.wrapping_sub(self.last_rx.load(Ordering::Relaxed));
        let mut st = self.state.lock();
        if st.out.is_empty() && st.out.capacity() > 0 {
            // Traffic is over for now: an idle socket holds no queue buffer.
            st.out = VecDeque::new();
        }
        match st.phase {
            Phase::Closed => {}
            Phase::Closing => {
                // What was sent before the close still goes out to a slow
                // reader: the wait for the peer's close frame starts over
                // while the queue drains (up to CLOSE_DRAIN_SECS in all, as
                // ws waits 30 s). RFC 6455 7.1.1: never forever.
                if st.out_bytes < st.closing_out {
                    st.closing_out = st.out_bytes;
                    st.closing_since = now;
                }
                if now.wrapping_sub(st.closing_since) >= 2 || now.wrapping_sub(st.closing_started) >= CLOSE_DRAIN_SECS {
                    self.mark_closed(&mut st);
                }
            }
            Phase::Open if b.idle_timeout_secs > 0 => {
                if idle >= b.idle_timeout_secs {
                    drop(st);
                    // uWS.js reports an idle timeout as an abnormal closure.
                    self.terminate(host);
                } else if b.send_pings && !st.pinged && idle >= b.idle_timeout_secs.div_ceil(2) {
                    st.pinged = true;
                    self.send_control(host, &mut st, OpCode::Ping, b"");
                }
            }
            Phase::Open => {}
        }
    }

    /// Removal bookkeeping, once: returns false if already retired. The
    /// close is reported (1006) if nothing reported it before.
    pub(crate) fn retire(&self, host: &dyn ConnHost) -> bool {
        let mut st = self.state.lock();
        if st.retired {
            return false;
        }
        st.retired = true;
        if st.phase != Phase::Closed {
            self.mark_closed(&mut st);
        }
        st.out.clear();
        st.out_bytes = 0;
        let report = !st.close_reported;
        st.close_reported = true;
        drop(st);
        if report {
            host.closed(self, 1006, b"");
        }
        true
    }

    /// The group saw the socket writable: flush, stop watching when empty,
    /// and report `drain` if a send saw backpressure.
    pub(crate) fn on_writable(&self, host: &dyn ConnHost) {
        let mut st = self.state.lock();
        if st.phase == Phase::Closed {
            return;
        }
        match self.flush(&mut st) {
            Ok(true) => {
                if st.want_write {
                    st.want_write = false;
                    host.interest(self, self.paused.load(Ordering::Relaxed), false);
                }
                if st.want_drain && st.phase == Phase::Open {
                    st.want_drain = false;
                    drop(st);
                    self.behavior.handler.drain(host, self);
                }
            }
            Ok(false) => {}
            Err(_) => self.mark_closed(&mut st),
        }
    }

    /// Processes what the handshake already received (frames sent in the
    /// same segment as the upgrade, plaintext rustls already decrypted).
    /// Returns true when the connection is done.
    pub(crate) fn start(&self, host: &dyn ConnHost, mut early: Vec<u8>) -> bool {
        !early.is_empty() && matches!(self.on_bytes(host, &mut early), Flow::Stop)
    }

    /// The group saw the socket readable: read one round. Returns true when
    /// the connection is done (EOF, error, close handshake finished).
    pub(crate) fn on_readable(&self, host: &dyn ConnHost) -> bool {
        if self.is_closed() {
            return true;
        }
        let is_tls = matches!(self.state.lock().transport, Transport::Tls(_));
        let done = if is_tls { self.read_tls(host) } else { self.read_plain(host) };
        if done {
            let mut st = self.state.lock();
            self.mark_closed(&mut st);
        }
        done
    }

    fn read_plain(&self, host: &dyn ConnHost) -> bool {
        {
            let mut rs = self.read.lock();
            if let Some(remaining) = self.frame_remaining(&rs.partial) {
                // Mid-frame: read straight into the frame's own buffer, one
                // scratch-sized chunk at a time. The buffer grows with what
                // actually arrives, never with what a header merely declares.
                let len = rs.partial.len();
                let chunk = remaining.min(SCRATCH_SIZE);
                rs.partial.resize(len + chunk, 0);
                let r = (&self.sock).read(&mut rs.partial[len..]);
                match r {
                    Ok(0) => return true,
                    Ok(n) => {
                        rs.partial.truncate(len + n);
                        drop(rs);
                        self.last_rx.store(host.tick(), Ordering::Relaxed);
                        return matches!(self.process_partial(host), Flow::Stop);
                    }
                    Err(e) => {
                        rs.partial.truncate(len);
                        return !would_block(&e);
                    }
                }
            }
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            match (&self.sock).read(&mut s[..]) {
                Ok(0) => true,
                Ok(n) => matches!(self.on_bytes(host, &mut s[..n]), Flow::Stop),
                Err(e) => !would_block(&e),
            }
        })
    }

    /// Reads TLS records from the socket, then hands the plaintext to the
    /// frame parser. Returns true when the connection is done.
    fn read_tls(&self, host: &dyn ConnHost) -> bool {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let n = match (&self.sock).read(&mut s[..]) {
                Ok(0) => return true,
                Ok(n) => n,
                Err(e) => return !would_block(&e),
            };
            PLAIN.with(|p| {
                let mut plain = p.borrow_mut();
                plain.clear();
                let (read, peer_closed) = {
                    let mut st = self.state.lock();
                    let Transport::Tls(tls) = &mut st.transport else {
                        return true;
                    };
                    let read = tls.read(&mut s[..n], &mut plain);
                    let peer_closed = tls.peer_closed();
                    // A read may produce records to send (key update
                    // answers). After an error, the fatal alert goes out
                    // with `mark_closed`'s flush (the caller's).
                    if read.is_ok() && tls.has_pending() {
                        self.flush_or_park(host, &mut st);
                    }
                    (read, peer_closed)
                };
                if read.is_err() {
                    return true;
                }
                if !plain.is_empty() && matches!(self.on_bytes(host, &mut plain), Flow::Stop) {
                    return true;
                }
                if plain.capacity() > 2 * SCRATCH_SIZE {
                    // A burst with a record held over grew it: back to size.
                    *plain = Vec::with_capacity(SCRATCH_SIZE);
                }
                peer_closed
            })
        })
    }

    /// Feeds freshly read plaintext bytes through the frame parser.
    fn on_bytes(&self, host: &dyn ConnHost, data: &mut [u8]) -> Flow {
        self.last_rx.store(host.tick(), Ordering::Relaxed);
        self.state.lock().pinged = false;
        let mut guard = self.read.lock();
        if !guard.partial.is_empty() {
            guard.partial.extend_from_slice(data);
            drop(guard);
            return self.process_partial(host);
        }
        let rs = &mut *guard;
        match self.process(host, &mut rs.asm, &mut rs.control, &mut rs.inflater, data) {
            Ok((used, Flow::Continue)) => {
                if used < data.len() {
                    rs.partial = data[used..].to_vec();
                }
                Flow::Continue
            }
            Ok((_, Flow::Stop)) => Flow::Stop,
            Err(e) => {
                drop(guard);
                self.protocol_error(host, e);
                Flow::Stop
            }
        }
    }

    fn process_partial(&self, host: &dyn ConnHost) -> Flow {
        let mut guard = self.read.lock();
        let mut buf = std::mem::take(&mut guard.partial);
        let rs = &mut *guard;
        match self.process(host, &mut rs.asm, &mut rs.control, &mut rs.inflater, &mut buf) {
            Ok((used, flow)) => {
                if used < buf.len() && matches!(flow, Flow::Continue) {
                    buf.drain(..used);
                    rs.partial = buf;
                }
                // Otherwise the frame boundary was reached: the buffer is
                // freed here, idle sockets hold none.
                flow
            }
            Err(e) => {
                drop(guard);
                self.protocol_error(host, e);
                Flow::Stop
            }
        }
    }

    /// Bytes still missing from the incomplete frame at the start of
    /// `partial`, once its header is complete; None otherwise.
    fn frame_remaining(&self, partial: &[u8]) -> Option<usize> {
        if partial.is_empty() {
            return None;
        }
        let max = self.wire_max() as u64;
        let h = frame::decode_header_ext(partial, true, max, self.deflate.is_some()).ok()??;
        let total = h.header_len + h.payload_len as usize;
        total.checked_sub(partial.len()).filter(|&r| r > 0)
    }

    /// Parses and dispatches every complete frame in `buf`; returns how many
    /// bytes were consumed. Handlers run with the read lock held but not the
    /// state lock, so they may send on this connection.
    fn process(
        &self,
        host: &dyn ConnHost,
        asm: &mut MessageAssembler,
        control: &mut ControlCount,
        inflater: &mut Option<Box<Inflater>>,
        buf: &mut [u8],
    ) -> Result<(usize, Flow), FrameError> {
        let max = self.behavior.max_payload;
        let wire_max = self.wire_max();
        let deflate = self.deflate.is_some();
        let mut pos = 0;
        while pos < buf.len() {
            let Some((h, total)) = frame::next_frame_ext(&mut buf[pos..], true, wire_max as u64, deflate)? else {
                break;
            };
            let payload = &buf[pos + h.header_len..pos + total];
            pos += total;
            let forward = self.behavior.forward;
            let mut incoming = asm.push(&h, payload, wire_max)?;
            let inflated;
            match incoming {
                // Over maxPayloadLength uncompressed (the wire limit has slack
                // for compressed messages).
                Some(Incoming::Message { ref payload, .. }) if payload.len() > max => return Err(FrameError::TooLarge),
                Some(Incoming::Compressed { binary, ref payload }) => {
                    inflated = self.inflate(inflater, payload, max)?;
                    if !binary {
                        simdutf8::basic::from_utf8(&inflated).map_err(|_| FrameError::InvalidUtf8)?;
                    }
                    incoming = Some(Incoming::Message { binary, payload: std::borrow::Cow::Borrowed(&inflated) });
                }
                _ => {}
            }
            if control.flooded && !matches!(incoming, Some(Incoming::Close { .. })) {
                continue;
            }
            if matches!(incoming, Some(Incoming::Ping(_) | Incoming::Pong(_))) && !control.allow(host.tick()) {
                control.flooded = true;
                self.end(host, 1008, b"control frame flood");
                continue;
            }
            match incoming {
                None => {}
                Some(Incoming::Message { binary, payload }) if forward.message => {
                    self.behavior.handler.message(host, self, &payload, binary);
                    self.charge(host.inflow_epoch(), payload.len() + EVENT_OVERHEAD);
                }
                Some(Incoming::Message { .. } | Incoming::Compressed { .. }) => {}
                Some(Incoming::Ping(p)) => {
                    self.answer_ping(host, p);
                    if forward.ping {
                        self.behavior.handler.ping(host, self, p);
                        self.charge(host.inflow_epoch(), p.len() + EVENT_OVERHEAD);
                    }
                }
                Some(Incoming::Pong(p)) if forward.pong => {
                    self.behavior.handler.pong(host, self, p);
                    self.charge(host.inflow_epoch(), p.len() + EVENT_OVERHEAD);
                }
                Some(Incoming::Pong(_)) => {}
                Some(Incoming::Close { code, reason }) => {
                    self.on_close_frame(host, code, reason.as_bytes());
                    return Ok((pos, Flow::Stop));
                }
            }
        }
        Ok((pos, Flow::Continue))
    }

    /// The largest frame or message taken off the wire: maxPayloadLength,
    /// with slack for compressed messages (deflate can grow incompressible
    /// data a little); inflated messages are held to maxPayloadLength itself.
    fn wire_max(&self) -> usize {
        let max = self.behavior.max_payload;
        if self.deflate.is_some() {
            max.saturating_add(max / 64 + 64)
        } else {
            max
        }
    }

    /// A compressed message inflated, at most maxPayloadLength bytes.
    fn inflate(&self, inflater: &mut Option<Box<Inflater>>, payload: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        let window = self.deflate.as_ref().and_then(|d| d.agreed.client_window);
        let r = match window {
            None => deflate::inflate_shared(payload, max, &mut out),
            Some(bits) => {
                inflater.get_or_insert_with(|| Box::new(Inflater::new(bits))).inflate(payload, max, false, &mut out)
            }
        };
        r.map_err(|e| match e {
            InflateError::TooLarge => FrameError::TooLarge,
            InflateError::Corrupt => FrameError::Corrupt,
        })?;
        Ok(out)
    }

    /// The pong for `payload`: now when nothing else is queued, otherwise
    /// held as the one pending pong (replacing an older one) until the
    /// queue empties, so a peer that pings and never reads cannot grow our
    /// queue with pongs.
    fn answer_ping(&self, host: &dyn ConnHost, payload: &[u8]) {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return;
        }
        if st.out.is_empty() {
            self.send_control(host, &mut st, OpCode::Pong, payload);
        } else {
            st.pending_pong = Some(frame::encode_frame(OpCode::Pong, payload));
        }
    }

    fn on_close_frame(&self, host: &dyn ConnHost, code: Option<u16>, reason: &[u8]) {
        let mut st = self.state.lock();
        if st.phase == Phase::Open {
            // Echo the peer's code (RFC 6455 5.5.1), then close the TCP side.
            let payload = code.map_or_else(Vec::new, |c| frame::close_payload(c, ""));
            self.send_control(host, &mut st, OpCode::Close, &payload);
        }
        self.mark_closed(&mut st);
        let report = !st.close_reported;
        st.close_reported = true;
        st.by_peer = report;
        drop(st);
        if report {
            // No status code in the frame is reported as 1005, as browsers do.
            host.closed(self, code.unwrap_or(1005), reason);
        }
    }

    fn protocol_error(&self, host: &dyn ConnHost, e: FrameError) {
        self.end(host, e.close_code(), e.to_string().as_bytes());
        let mut st = self.state.lock();
        self.mark_closed(&mut st);
    }
}

/// One non-blocking `send`/`sendmsg` of `parts` in order, straight from the
/// caller's buffers: the socket calls skip the VFS layer `write`/`writev`
/// go through, and a vanished peer is an error return, never SIGPIPE.
fn send_now(fd: std::os::fd::RawFd, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    let r = if let [one] = parts {
        // SAFETY: `one` is a live buffer of `one.len()` bytes for the call.
        unsafe { libc::send(fd, one.as_ptr().cast(), one.len(), flags) }
    } else {
        // SAFETY: a zeroed msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix; the kernel only reads.
        msg.msg_iov = parts.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = parts.len() as _;
        // SAFETY: `msg` points at `parts`, buffers live for the call.
        unsafe { libc::sendmsg(fd, &msg, flags) }
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn advance(out: &mut VecDeque<Bytes>, offset: &mut usize, out_bytes: &mut usize, mut n: usize) {
    *out_bytes -= n;
    while n > 0 {
        let Some(front) = out.front() else { break };
        let left = front.len() - *offset;
        if n >= left {
            n -= left;
            *offset = 0;
            out.pop_front();
        } else {
            *offset += n;
            n = 0;
        }
    }
}
