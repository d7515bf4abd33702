//! One WebSocket connection after the handshake: its socket, its outbound
//! queue, and the task that reads it.
//!
//! Memory is the point of this file. An idle connection holds: the `Conn`
//! (socket, a mutex around a few counters and an empty `VecDeque`), and a
//! task whose future is `ConnTask` (an `Arc`, an empty `Vec` and the
//! assembler). No read buffer: the task waits for readiness and reads into a
//! per-worker scratch buffer; only a partial frame is copied into a buffer of
//! its own, and that buffer is freed as soon as the frame completes. No write
//! buffer: frames are shared `Bytes` queued until the kernel takes them. No
//! timer: the server's sweeper looks at `last_rx` once per tick.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::frame::{self, FrameError, Incoming, MessageAssembler, OpCode};
use super::server::ServerCore;

/// Size of the per-worker read buffer. 64 KiB reads a full loopback burst in
/// one syscall; the buffer is per thread, not per socket.
const SCRATCH_SIZE: usize = 64 * 1024;
/// At most this many queued frames go into one `writev` (IOV_MAX is 1024;
/// 64 already amortises the syscall over many small messages).
const MAX_IOVECS: usize = 64;
/// TLS: plaintext handed to rustls per round, so rustls's own send buffer
/// stays bounded and our `out_bytes` stays an honest buffered amount.
const TLS_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_SIZE].into_boxed_slice());
}

/// Per-route limits and switches, fixed when the route is registered.
#[derive(Debug, Clone)]
pub(crate) struct Behavior {
    /// Close after this many seconds without receiving anything; 0 = never.
    pub idle_timeout_secs: u32,
    pub max_payload: usize,
    pub max_backpressure: usize,
    pub close_on_backpressure_limit: bool,
    pub send_pings: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            // uWS.js defaults, so ported apps behave the same.
            idle_timeout_secs: 120,
            max_payload: 16 * 1024,
            max_backpressure: 64 * 1024,
            close_on_backpressure_limit: false,
            send_pings: true,
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
    Tls(Box<rustls::ServerConnection>),
}

struct State {
    out: VecDeque<Bytes>,
    /// Bytes of `out[0]` already written.
    out_offset: usize,
    out_bytes: usize,
    transport: Transport,
    waker: Option<Waker>,
    phase: Phase,
    /// Set when the close event has been reported (exactly once per conn).
    close_reported: bool,
    /// `send` returned Backpressure: report `drain` when the queue empties.
    want_drain: bool,
    corked: bool,
    /// In the server's dirty list already (queued by publish, flush pending).
    dirty: bool,
    /// A ping was sent during the current idle period.
    pinged: bool,
    /// Tick at which Closing started (for the close-handshake timeout).
    closing_since: u32,
}

pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) route: u16,
    pub(crate) behavior: Arc<Behavior>,
    pub(crate) remote: SocketAddr,
    tcp: TcpStream,
    /// Server tick of the last byte received (relaxed: the sweeper only needs
    /// a recent value, and a late ping is harmless).
    last_rx: AtomicU32,
    state: Mutex<State>,
}

/// Adapts a `&TcpStream` to `std::io::Write`/`Read` for rustls; WouldBlock
/// passes through (tokio clears readiness on it, so the task re-registers).
struct TcpIo<'a>(&'a TcpStream);

impl Write for TcpIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        route: u16,
        behavior: Arc<Behavior>,
        tcp: TcpStream,
        remote: SocketAddr,
        transport: Transport,
        tick: u32,
    ) -> Self {
        Self {
            id,
            route,
            behavior,
            remote,
            tcp,
            last_rx: AtomicU32::new(tick),
            state: Mutex::new(State {
                out: VecDeque::new(),
                out_offset: 0,
                out_bytes: 0,
                transport,
                waker: None,
                phase: Phase::Open,
                close_reported: false,
                want_drain: false,
                corked: false,
                dirty: false,
                pinged: false,
                closing_since: 0,
            }),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state.lock().phase == Phase::Open
    }

    pub(crate) fn buffered_amount(&self) -> usize {
        self.state.lock().out_bytes
    }

    /// Sends one data message. Called from the JS thread: writes straight to
    /// the socket when nothing is queued (no cross-thread hop on the echo
    /// path), else queues behind what is there so per-socket order holds.
    pub(crate) fn send(
        &self,
        server: &ServerCore,
        payload: &[u8],
        binary: bool,
    ) -> Option<SendStatus> {
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        self.send_frame(server, frame::encode_frame(opcode, payload))
    }

    /// Sends an already framed message (publish shares one `Bytes` among all
    /// subscribers). None when the connection is no longer open.
    pub(crate) fn send_frame(&self, server: &ServerCore, framed: Bytes) -> Option<SendStatus> {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return None;
        }
        if st.out_bytes > self.behavior.max_backpressure {
            if self.behavior.close_on_backpressure_limit {
                drop(st);
                self.end(server, 1009, b"backpressure limit");
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
        Some(self.flush_or_park(&mut st))
    }

    /// Queues a published frame without writing: the caller flushes all dirty
    /// connections once, so several publishes share one `writev`. Must not
    /// close (the caller holds the topic lock): it says what to do instead.
    pub(crate) fn queue_published(&self, framed: &Bytes) -> Queued {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return Queued::Skipped;
        }
        if st.out_bytes > self.behavior.max_backpressure {
            return if self.behavior.close_on_backpressure_limit {
                Queued::MustClose
            } else {
                Queued::Skipped
            };
        }
        st.out_bytes += framed.len();
        st.out.push_back(framed.clone());
        if !st.dirty && !st.corked {
            st.dirty = true;
            return Queued::NewlyDirty;
        }
        Queued::Pending
    }

    /// Flush after a publish batch (JS thread or worker).
    pub(crate) fn flush_dirty(&self) {
        let mut st = self.state.lock();
        st.dirty = false;
        if !st.corked && st.phase != Phase::Closed {
            self.flush_or_park(&mut st);
        }
    }

    pub(crate) fn set_corked(&self, corked: bool) {
        let mut st = self.state.lock();
        st.corked = corked;
        if !corked && !st.dirty && st.phase != Phase::Closed {
            self.flush_or_park(&mut st);
        }
    }

    /// Tries to write everything queued; on a full kernel buffer, wakes the
    /// task so it registers write interest.
    fn flush_or_park(&self, st: &mut State) -> SendStatus {
        match self.flush(st) {
            Ok(true) => SendStatus::Success,
            Ok(false) => {
                st.want_drain = true;
                if let Some(w) = &st.waker {
                    w.wake_by_ref();
                }
                SendStatus::Backpressure
            }
            Err(_) => {
                // The peer is gone; the read side will see it and report close.
                st.phase = Phase::Closed;
                if let Some(w) = &st.waker {
                    w.wake_by_ref();
                }
                SendStatus::Backpressure
            }
        }
    }

    /// Writes queued frames. Ok(true): all written. Ok(false): would block.
    fn flush(&self, st: &mut State) -> io::Result<bool> {
        match &mut st.transport {
            Transport::Plain => {
                while !st.out.is_empty() {
                    let mut iov: [IoSlice<'_>; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
                    let mut n_iov = 0;
                    for (i, b) in st.out.iter().take(MAX_IOVECS).enumerate() {
                        iov[i] = IoSlice::new(if i == 0 { &b[st.out_offset..] } else { &b[..] });
                        n_iov += 1;
                    }
                    match self.tcp.try_write_vectored(&iov[..n_iov]) {
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
                while tls.wants_write() {
                    match tls.write_tls(&mut TcpIo(&self.tcp)) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if st.out.is_empty() {
                    if st.out.capacity() > 64 {
                        st.out = VecDeque::new();
                    }
                    return Ok(true);
                }
                let mut budget = TLS_CHUNK;
                while budget > 0 {
                    let Some(front) = st.out.front() else { break };
                    let rest = &front[st.out_offset..];
                    let take = rest.len().min(budget);
                    tls.writer().write_all(&rest[..take])?;
                    budget -= take;
                    advance(&mut st.out, &mut st.out_offset, &mut st.out_bytes, take);
                }
            },
        }
    }

    /// Queues a control frame, bypassing the backpressure limit (a pong or a
    /// close must go out even to a slow reader; they are at most 127 bytes).
    fn send_control(&self, st: &mut State, opcode: OpCode, payload: &[u8]) {
        let framed = frame::encode_frame(opcode, payload);
        st.out_bytes += framed.len();
        st.out.push_back(framed);
        if !st.corked {
            self.flush_or_park(st);
        }
    }

    pub(crate) fn ping(&self, payload: &[u8]) -> bool {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return false;
        }
        let p = &payload[..payload.len().min(125)];
        self.send_control(&mut st, OpCode::Ping, p);
        true
    }

    /// Graceful close: send a close frame, wait (bounded) for the peer's.
    /// The close event is reported now, with this code and reason.
    pub(crate) fn end(&self, server: &ServerCore, code: u16, reason: &[u8]) {
        let mut st = self.state.lock();
        if st.phase != Phase::Open {
            return;
        }
        let reason = String::from_utf8_lossy(reason);
        // Code 0 (uWS.js `end()` without arguments): a close frame with no
        // status, which the peer (and our close handler) sees as 1005.
        let (payload, code) = if code == 0 {
            (Vec::new(), 1005)
        } else {
            (frame::close_payload(code, &reason), code)
        };
        st.corked = false;
        self.send_control(&mut st, OpCode::Close, &payload);
        st.phase = Phase::Closing;
        st.closing_since = server.tick();
        let report = !st.close_reported;
        st.close_reported = true;
        if let Some(w) = &st.waker {
            w.wake_by_ref();
        }
        drop(st);
        if report {
            server.conn_closed(self, code, reason.as_bytes());
        }
    }

    /// Abrupt close (uWS `close()`): no close frame; reported as 1006.
    pub(crate) fn terminate(&self, server: &ServerCore) {
        let mut st = self.state.lock();
        if st.phase == Phase::Closed {
            return;
        }
        st.phase = Phase::Closed;
        let report = !st.close_reported;
        st.close_reported = true;
        if let Some(w) = &st.waker {
            w.wake_by_ref();
        }
        drop(st);
        if report {
            server.conn_closed(self, 1006, b"");
        }
    }

    /// Called by the sweeper once per tick. Sends the automatic ping, closes
    /// idle connections and ends close handshakes that got no answer.
    pub(crate) fn on_tick(&self, server: &ServerCore, now: u32) {
        let b = &self.behavior;
        let idle = now.wrapping_sub(self.last_rx.load(Ordering::Relaxed));
        let mut st = self.state.lock();
        match st.phase {
            Phase::Closed => {}
            Phase::Closing => {
                // RFC 6455 7.1.1: don't wait forever for the peer's close frame.
                if now.wrapping_sub(st.closing_since) >= 2 {
                    st.phase = Phase::Closed;
                    if let Some(w) = &st.waker {
                        w.wake_by_ref();
                    }
                }
            }
            Phase::Open if b.idle_timeout_secs > 0 => {
                if idle >= b.idle_timeout_secs {
                    drop(st);
                    // uWS.js reports an idle timeout as an abnormal closure.
                    self.terminate(server);
                } else if b.send_pings && !st.pinged && idle >= b.idle_timeout_secs.div_ceil(2) {
                    st.pinged = true;
                    self.send_control(&mut st, OpCode::Ping, b"");
                }
            }
            Phase::Open => {}
        }
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

/// The long-lived task of one connection. Kept deliberately small: it is
/// what every idle socket pays for.
pub(crate) struct ConnTask {
    conn: Arc<Conn>,
    server: Arc<ServerCore>,
    /// Bytes of an incomplete frame; empty (unallocated) between frames.
    partial: Vec<u8>,
    asm: MessageAssembler,
    /// First poll not done yet: bytes that came with the upgrade request (and
    /// plaintext rustls already decrypted) are processed then.
    fresh: bool,
}

enum Flow {
    Continue,
    /// Stop reading: close frame received / sent, or protocol error.
    Stop,
}

impl ConnTask {
    pub(crate) fn new(conn: Arc<Conn>, server: Arc<ServerCore>, early: Vec<u8>) -> Self {
        Self {
            conn,
            server,
            partial: early,
            asm: MessageAssembler::new(),
            fresh: true,
        }
    }

    /// Parses and dispatches every complete frame in `buf`; returns how many
    /// bytes were consumed.
    fn process(&mut self, buf: &mut [u8]) -> Result<(usize, Flow), FrameError> {
        let max = self.conn.behavior.max_payload;
        let mut pos = 0;
        while pos < buf.len() {
            let Some(h) = frame::decode_header(&buf[pos..], true, max as u64)? else {
                break;
            };
            let total = h.header_len + h.payload_len as usize;
            if buf.len() - pos < total {
                break;
            }
            let payload = &mut buf[pos + h.header_len..pos + total];
            if let Some(mask) = h.mask {
                frame::apply_mask(payload, mask, 0);
            }
            pos += total;
            match self.asm.push(&h, payload, max)? {
                None => {}
                Some(Incoming::Message { binary, payload }) => {
                    self.server.handler().message(&self.conn, &payload, binary)
                }
                Some(Incoming::Ping(p)) => {
                    let mut st = self.conn.state.lock();
                    if st.phase == Phase::Open {
                        self.conn.send_control(&mut st, OpCode::Pong, p);
                    }
                    drop(st);
                    self.server.handler().ping(&self.conn, p);
                }
                Some(Incoming::Pong(p)) => self.server.handler().pong(&self.conn, p),
                Some(Incoming::Close { code, reason }) => {
                    self.on_close_frame(code, reason.as_bytes());
                    return Ok((pos, Flow::Stop));
                }
            }
        }
        Ok((pos, Flow::Continue))
    }

    fn on_close_frame(&mut self, code: Option<u16>, reason: &[u8]) {
        let mut st = self.conn.state.lock();
        if st.phase == Phase::Open {
            // Echo the peer's code (RFC 6455 5.5.1), then close the TCP side.
            let payload = frame::close_payload(code.unwrap_or(1000), "");
            self.conn.send_control(&mut st, OpCode::Close, &payload);
        }
        st.phase = Phase::Closed;
        let report = !st.close_reported;
        st.close_reported = true;
        drop(st);
        if report {
            // No status code in the frame is reported as 1005, as browsers do.
            self.server
                .conn_closed(&self.conn, code.unwrap_or(1005), reason);
        }
    }

    fn protocol_error(&mut self, e: FrameError) {
        let code = e.close_code();
        self.conn.end(&self.server, code, e.to_string().as_bytes());
        self.conn.state.lock().phase = Phase::Closed;
    }

    /// Feeds freshly read plaintext bytes through the frame parser.
    fn on_bytes(&mut self, data: &mut [u8]) -> Flow {
        self.conn
            .last_rx
            .store(self.server.tick(), Ordering::Relaxed);
        self.conn.state.lock().pinged = false;
        let result = if self.partial.is_empty() {
            match self.process(data) {
                Ok((used, flow)) => {
                    if used < data.len() && matches!(flow, Flow::Continue) {
                        self.keep_partial(&data[used..]);
                    }
                    Ok(flow)
                }
                Err(e) => Err(e),
            }
        } else {
            self.partial.extend_from_slice(data);
            self.process_partial()
        };
        match result {
            Ok(flow) => flow,
            Err(e) => {
                self.protocol_error(e);
                Flow::Stop
            }
        }
    }

    fn process_partial(&mut self) -> Result<Flow, FrameError> {
        let mut buf = std::mem::take(&mut self.partial);
        let (used, flow) = self.process(&mut buf)?;
        if used == buf.len() || matches!(flow, Flow::Stop) {
            // Frame boundary reached: free the buffer, idle sockets hold none.
            return Ok(flow);
        }
        buf.drain(..used);
        self.partial = buf;
        self.reserve_for_frame();
        Ok(flow)
    }

    fn keep_partial(&mut self, rest: &[u8]) {
        self.partial = Vec::with_capacity(rest.len().max(64));
        self.partial.extend_from_slice(rest);
        self.reserve_for_frame();
    }

    /// Once the header of the pending frame is known, reserve room for the
    /// whole frame so the rest is read in place (no regrowth copies).
    fn reserve_for_frame(&mut self) {
        let max = self.conn.behavior.max_payload as u64;
        if let Ok(Some(h)) = frame::decode_header(&self.partial, true, max) {
            let total = h.header_len + h.payload_len as usize;
            if total > self.partial.capacity() {
                self.partial.reserve_exact(total - self.partial.len());
            }
        }
    }

    /// Processes what the handshake already received. Returns true when the
    /// connection is done.
    fn first_poll(&mut self) -> bool {
        if !self.partial.is_empty() {
            let early = std::mem::take(&mut self.partial);
            let mut early = early;
            if let Flow::Stop = self.on_bytes(&mut early) {
                return true;
            }
        }
        let is_tls = matches!(self.conn.state.lock().transport, Transport::Tls(_));
        is_tls && matches!(self.drain_tls_plaintext(), ReadStep::Done)
    }

    /// Reads whatever the socket has. Returns Ready(()) when the connection is done.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.conn.tcp.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
            let is_tls = matches!(self.conn.state.lock().transport, Transport::Tls(_));
            let step = if is_tls {
                self.read_tls()
            } else {
                self.read_plain()
            };
            match step {
                ReadStep::Again => {}
                ReadStep::Done => return Poll::Ready(()),
            }
        }
    }

    fn read_plain(&mut self) -> ReadStep {
        if !self.partial.is_empty() && self.partial.capacity() > self.partial.len() {
            // Mid-frame: read straight into the frame's own buffer.
            return match self.conn.tcp.try_read_buf(&mut self.partial) {
                Ok(0) => ReadStep::Done,
                Ok(_) => {
                    self.conn
                        .last_rx
                        .store(self.server.tick(), Ordering::Relaxed);
                    match self.process_partial() {
                        Ok(Flow::Continue) => ReadStep::Again,
                        Ok(Flow::Stop) => ReadStep::Done,
                        Err(e) => {
                            self.protocol_error(e);
                            ReadStep::Done
                        }
                    }
                }
                Err(e) if would_block(&e) => ReadStep::Again,
                Err(_) => ReadStep::Done,
            };
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            match self.conn.tcp.try_read(&mut s[..]) {
                Ok(0) => ReadStep::Done,
                Ok(n) => match self.on_bytes(&mut s[..n]) {
                    Flow::Continue => ReadStep::Again,
                    Flow::Stop => ReadStep::Done,
                },
                Err(e) if would_block(&e) => ReadStep::Again,
                Err(_) => ReadStep::Done,
            }
        })
    }

    /// Reads TLS records from the socket (only when rustls has no plaintext
    /// left), then hands the plaintext to the frame parser.
    fn read_tls(&mut self) -> ReadStep {
        {
            let mut st = self.conn.state.lock();
            let Transport::Tls(tls) = &mut st.transport else {
                return ReadStep::Done;
            };
            match tls.read_tls(&mut TcpIo(&self.conn.tcp)) {
                Ok(0) => return ReadStep::Done,
                Ok(_) => {}
                Err(e) if would_block(&e) => return ReadStep::Again,
                Err(_) => return ReadStep::Done,
            }
            if tls.process_new_packets().is_err() {
                // rustls queued a fatal alert; try to send it, then give up.
                let _ = tls.write_tls(&mut TcpIo(&self.conn.tcp));
                return ReadStep::Done;
            }
            if tls.wants_write() {
                // A read may produce records to send (alerts, key updates).
                self.conn.flush_or_park(&mut st);
            }
        }
        self.drain_tls_plaintext()
    }

    /// Moves all plaintext rustls holds through the frame parser.
    fn drain_tls_plaintext(&mut self) -> ReadStep {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            loop {
                let mut n = 0;
                let mut eof = false;
                {
                    let mut st = self.conn.state.lock();
                    let Transport::Tls(tls) = &mut st.transport else {
                        return ReadStep::Done;
                    };
                    while n < s.len() {
                        match tls.reader().read(&mut s[n..]) {
                            Ok(0) => {
                                eof = true;
                                break;
                            }
                            Ok(k) => n += k,
                            Err(e) if would_block(&e) => break,
                            Err(_) => return ReadStep::Done,
                        }
                    }
                }
                if n > 0 {
                    if let Flow::Stop = self.on_bytes(&mut s[..n]) {
                        return ReadStep::Done;
                    }
                }
                if eof {
                    return ReadStep::Done;
                }
                if n < s.len() {
                    return ReadStep::Again;
                }
            }
        })
    }

    /// Drives pending writes; registers for writability when the kernel is full.
    fn poll_write(&mut self, cx: &mut Context<'_>) {
        let mut st = self.conn.state.lock();
        loop {
            let pending =
                !st.out.is_empty() || matches!(&st.transport, Transport::Tls(t) if t.wants_write());
            if !pending || st.corked {
                break;
            }
            match self.conn.flush(&mut st) {
                Ok(true) => break,
                Ok(false) => match self.conn.tcp.poll_write_ready(cx) {
                    Poll::Pending => return,
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(_)) => {
                        st.phase = Phase::Closed;
                        return;
                    }
                },
                Err(_) => {
                    st.phase = Phase::Closed;
                    return;
                }
            }
        }
        if st.want_drain && st.out.is_empty() && st.phase == Phase::Open {
            st.want_drain = false;
            drop(st);
            self.server.handler().drain(&self.conn);
        }
    }
}

enum ReadStep {
    Again,
    Done,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted
}

impl Future for ConnTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        {
            let mut st = this.conn.state.lock();
            if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.waker = Some(cx.waker().clone());
            }
        }
        let mut read_done = false;
        if std::mem::take(&mut this.fresh) {
            read_done = this.first_poll();
        }
        let phase = this.conn.state.lock().phase;
        let read_done = match phase {
            Phase::Closed => true,
            _ => read_done || this.poll_read(cx).is_ready(),
        };
        this.poll_write(cx);
        let mut st = this.conn.state.lock();
        if read_done && st.phase == Phase::Open {
            // Peer closed the TCP stream without a close frame.
            st.phase = Phase::Closed;
        }
        if read_done && st.phase == Phase::Closing {
            st.phase = Phase::Closed;
        }
        if st.phase != Phase::Closed {
            return Poll::Pending;
        }
        // Best effort: whatever is queued (e.g. our close frame) gets one
        // last non-blocking write before the fd is closed.
        let _ = this.conn.flush(&mut st);
        st.waker = None;
        st.out.clear();
        st.out_bytes = 0;
        let report = !st.close_reported;
        st.close_reported = true;
        drop(st);
        if report {
            this.server.conn_closed(&this.conn, 1006, b"");
        }
        this.server.conn_gone(&this.conn);
        Poll::Ready(())
    }
}
