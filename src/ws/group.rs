//! Connection groups: many established sockets driven by one thread.
//!
//! A tokio `TcpStream` costs two 128-byte-aligned heap blocks per socket (its
//! reactor `ScheduledIo` and, with one task per socket, the task cell):
//! ~512 B of a ~1 KB budget, measured with a counting allocator. Instead, each
//! group owns a level-triggered epoll set holding its sockets (kernel memory
//! only) and one thread that waits on it, takes a batch of ready sockets and
//! reads or flushes them. Per socket, userland keeps just the `Conn`.
//!
//! A thread of its own rather than a tokio task: tokio's reactor is woken by
//! every socket that becomes ready in the set (each one re-signals the set's
//! fd), so under load a worker slept and woke for every ~2 messages (echo
//! profile: 0.8 `epoll_wait` and 0.2 context switches per round trip). This
//! thread decides itself when to look: while the layer above holds a batch
//! of at least `COALESCE_FROM` bytes it has not taken yet
//! (`Inflow::pending`), it waits for that batch to be taken (at most
//! `COALESCE`), then reads everything that became ready meanwhile in one
//! round; behind a smaller batch it reads at once. Handlers may still spawn tokio tasks: the thread
//! runs inside the runtime's context.
//!
//! A group can be lent to a driver outside ([`Group::lend`]): the JS
//! thread, whose event loop watches the epoll set and runs a round itself
//! when it is readable, so a message at a low rate wakes one thread, not
//! two. The group's thread then only watches that the driver keeps up, and
//! reads in its place while it does not (see `WATCH`).
//!
//! Level-triggered on purpose: a socket is read at most once per round (one
//! scratch-buffer's worth), so a busy peer cannot starve the others; what it
//! left unread is reported again next round.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::conn::{Conn, ConnHost};
use super::inflow::Inflow;

/// What a group's thread needs of the server that owns its sockets: their
/// connections by id, and retiring the finished ones.
pub(crate) trait GroupHost: ConnHost + Send + Sync + 'static {
    fn conn(&self, id: u64) -> Option<Arc<Conn>>;
    /// Takes a finished connection out of its group and the registry.
    fn retire(&self, conn: &Arc<Conn>);
}

/// Ready sockets taken per `epoll_wait`.
const BATCH: usize = 256;

/// Longest wait for the layer above to take its pending events before the
/// group reads anyway (protocol work such as pongs and close frames, and the
/// events for the next batch, never wait longer than this for a busy JS
/// thread; the inflow limit still bounds the backlog).
const COALESCE: Duration = Duration::from_millis(1);

/// Coalesce only behind a batch at least this large: a JS thread with that
/// much to do is busy, and reading meanwhile would only wake this thread once
/// per socket. Behind a few events (light traffic) the group reads at once,
/// so frames a client sent together (a CONNECT burst, say) are read before
/// JS acts on the first of them, as they were when every readiness was read
/// straight away.
const COALESCE_FROM: usize = 1024;

/// The epoll data of the group's own wake-up eventfd (never a connection id:
/// those carry at most 21 generation bits above the slab key).
const WAKE_ID: u64 = u64::MAX;

pub(crate) struct Group {
    epoll: OwnedFd,
    wake: OwnedFd,
    stopped: AtomicBool,
    /// Lent to a driver outside (the JS thread, which reads while its event
    /// loop would otherwise sleep): the group's thread only watches.
    lent: AtomicBool,
    /// Rounds the driver was called for: the watch sees it alive.
    driven: AtomicU64,
    /// Whoever holds this reads the group; one round at a time, so a
    /// socket is never read by two threads at once.
    round: Mutex<Round>,
}

/// What a read round keeps between rounds.
struct Round {
    events: Vec<libc::epoll_event>,
    /// Connections not read until the layer above takes its backlog (or
    /// catches up): they produced it (fairness: the others go on).
    paused: Vec<u64>,
    paused_epoch: u32,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

const READ_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
const WRITE_EVENTS: u32 = READ_EVENTS | libc::EPOLLOUT as u32;

/// How often a lent group's thread looks whether its driver still reads:
/// sockets ready at two looks in a row with no round called between them
/// mean the driver is busy (a JS thread in a long synchronous task), and
/// the thread reads them itself until the driver is back, so pongs, pings
/// and close handshakes never wait on user code.
const WATCH: Duration = Duration::from_millis(50);

impl Group {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscalls; each returned fd is owned from here on.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let wake = unsafe { OwnedFd::from_raw_fd(cvt(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?) };
        let g = Self {
            epoll,
            wake,
            stopped: AtomicBool::new(false),
            lent: AtomicBool::new(false),
            driven: AtomicU64::new(0),
            round: Mutex::new(Round {
                events: vec![libc::epoll_event { events: 0, u64: 0 }; BATCH],
                paused: Vec::new(),
                paused_epoch: 0,
            }),
        };
        g.ctl(libc::EPOLL_CTL_ADD, g.wake.as_raw_fd(), libc::EPOLLIN as u32, WAKE_ID)?;
        Ok(g)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, id: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: id };
        // SAFETY: `ev` outlives the call; epoll_ctl is thread-safe.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    pub(crate) fn add(&self, fd: RawFd, id: u64, want_write: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, if want_write { WRITE_EVENTS } else { READ_EVENTS }, id)
    }

    /// Watch for readability unless `paused`, and for writability when
    /// `write` (the kernel send buffer was full).
    pub(crate) fn interest(&self, fd: RawFd, id: u64, paused: bool, write: bool) {
        let events = match (paused, write) {
            (false, true) => WRITE_EVENTS,
            (false, false) => READ_EVENTS,
            (true, true) => libc::EPOLLOUT as u32,
            (true, false) => 0,
        };
        // Fails only if the socket was already removed: nothing left to watch.
        let _ = self.ctl(libc::EPOLL_CTL_MOD, fd, events, id);
    }

    pub(crate) fn remove(&self, fd: RawFd) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
    }

    /// Ends the group's thread (its sockets are the server's to close).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake();
    }

    /// Lends the group to a driver that calls [`Group::drive`] whenever the
    /// returned fd (the epoll set) is readable; the group's thread then only
    /// watches (see `WATCH`).
    pub(crate) fn lend(&self) -> RawFd {
        self.lent.store(true, Ordering::Release);
        // The thread may be waiting in epoll_wait with the round held.
        self.wake();
        self.epoll.as_raw_fd()
    }

    /// The driver is done: the group's thread reads again.
    pub(crate) fn reclaim(&self) {
        self.lent.store(false, Ordering::Release);
    }

    /// One read round for a driver: what is ready now, without waiting.
    /// Does nothing while the group's thread holds the round.
    pub(crate) fn drive<H: GroupHost>(&self, server: &H, inflow: &Inflow) {
        self.driven.fetch_add(1, Ordering::Relaxed);
        if let Some(mut round) = self.round.try_lock() {
            if let Some(n) = self.wait(&mut round, 0) {
                // Far over the limit nobody is read; the driver takes the
                // backlog right after this.
                if !inflow.is_far_over() {
                    self.process(server, inflow, &mut round, n);
                }
            }
        }
    }

    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own eventfd; a
        // full counter (EAGAIN) already means a pending wake-up.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    fn clear_wake(&self) {
        let mut b = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; nonblocking.
        let _ = unsafe { libc::read(self.wake.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
    }

    /// Whether the epoll set has something ready, without taking it.
    fn ready(&self, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd { fd: self.epoll.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
    }

    /// Starts the group's thread inside `rt`'s context; `inflow` is the
    /// server's count of events handed up and not yet taken.
    pub(crate) fn spawn<H: GroupHost>(
        self: &Arc<Self>,
        server: Weak<H>,
        inflow: Arc<Inflow>,
        rt: tokio::runtime::Handle,
    ) -> io::Result<()> {
        let g = self.clone();
        std::thread::Builder::new().name("ferrosocket-net".into()).spawn(move || {
            let _rt = rt.enter();
            g.run(server, &inflow);
        })?;
        Ok(())
    }

    /// The group's thread: runs until stopped or the server is dropped.
    fn run<H: GroupHost>(&self, server: Weak<H>, inflow: &Inflow) {
        let mut watch = Watch::default();
        while !self.stopped.load(Ordering::Acquire) {
            if self.lent.load(Ordering::Acquire) {
                if !self.watch(&server, inflow, &mut watch) {
                    return;
                }
                continue;
            }
            watch = Watch::default();
            if inflow.pending() >= COALESCE_FROM {
                inflow.wait_taken(COALESCE);
            }
            let mut round = self.round.lock();
            // With connections paused, look again soon: the backlog being
            // taken wakes nothing here.
            let timeout = if round.paused.is_empty() { -1 } else { PAUSED_RECHECK_MS };
            let Some(n) = self.wait(&mut round, timeout) else {
                return;
            };
            // JS is behind by more than twice the limit: read nobody until
            // it catches up (the ready sockets stay ready, level-triggered).
            if inflow.is_far_over() {
                drop(round);
                inflow.wait_taken(Duration::from_millis(100));
                continue;
            }
            let Some(server) = server.upgrade() else {
                return;
            };
            self.process(&*server, inflow, &mut round, n);
        }
    }

    /// A lent group's thread: sleeps, and reads only when the driver has
    /// not for a whole `WATCH` with sockets ready, or to wake paused
    /// connections. False when the server is gone.
    fn watch<H: GroupHost>(&self, server: &Weak<H>, inflow: &Inflow, w: &mut Watch) -> bool {
        if w.takeover {
            // Read what becomes ready until the driver is seen again.
            self.ready(WATCH.as_millis() as i32);
        } else {
            std::thread::sleep(if w.paused { Duration::from_millis(PAUSED_RECHECK_MS as u64) } else { WATCH });
        }
        let driven = self.driven.load(Ordering::Relaxed);
        let ready = self.ready(0);
        let alive = driven != w.driven;
        w.takeover = ready && (w.takeover || w.ready) && !alive;
        w.ready = ready;
        w.driven = driven;
        if !(w.takeover || w.paused) || self.stopped.load(Ordering::Acquire) {
            return true;
        }
        if w.takeover && inflow.is_far_over() {
            // As the thread's own loop: read nobody until JS catches up
            // (without this wait the look above would spin on the sockets
            // left ready).
            inflow.wait_taken(Duration::from_millis(100));
            return true;
        }
        let Some(mut round) = self.round.try_lock() else {
            return true;
        };
        let Some(server) = server.upgrade() else {
            return false;
        };
        let n = if w.takeover { self.wait(&mut round, 0) } else { Some(0) };
        if let Some(n) = n {
            if !inflow.is_far_over() {
                self.process(&*server, inflow, &mut round, n);
            }
        }
        w.paused = !round.paused.is_empty();
        true
    }

    /// Takes what is ready into `round.events` (waiting up to `timeout`
    /// ms, -1 for ever); None on an error that cannot pass (EBADF/EINVAL
    /// cannot happen while we own the epoll fd: never spin on them).
    fn wait(&self, round: &mut Round, timeout: i32) -> Option<usize> {
        loop {
            // SAFETY: `events` has BATCH valid slots.
            let n =
                unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), round.events.as_mut_ptr(), BATCH as i32, timeout) };
            if n >= 0 {
                return Some(n as usize);
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return None;
            }
        }
    }

    /// Reads or flushes the `n` sockets `wait` found ready.
    fn process<H: GroupHost>(&self, server: &H, inflow: &Inflow, round: &mut Round, n: usize) {
        let over = inflow.is_over();
        let epoch = inflow.epoch();
        if !round.paused.is_empty() && (!over || epoch != round.paused_epoch) {
            for id in round.paused.drain(..) {
                if let Some(conn) = server.conn(id) {
                    conn.set_paused(server, false, server.tick());
                }
            }
        }
        let share = inflow.share();
        for i in 0..n {
            let ev = round.events[i];
            if ev.u64 == WAKE_ID {
                self.clear_wake();
                continue;
            }
            let Some(conn) = server.conn(ev.u64) else {
                continue;
            };
            // Over the limit, a connection that handed up its share of
            // the backlog is not read (TCP pushes back on its peer);
            // the others are, so they keep answering pings. A hang-up
            // is still read.
            let only_data = ev.events & HANGUP == 0 && ev.events & libc::EPOLLIN as u32 != 0;
            if over && only_data && conn.handed_in(epoch) >= share {
                if !round.paused.contains(&conn.id) {
                    conn.set_paused(server, true, server.tick());
                    round.paused.push(conn.id);
                }
                round.paused_epoch = epoch;
                if ev.events & libc::EPOLLOUT as u32 != 0 {
                    on_event(server, &conn, libc::EPOLLOUT as u32);
                }
                continue;
            }
            on_event(server, &conn, ev.events);
        }
    }
}

/// A lent group's thread's view of its driver between looks.
#[derive(Default)]
struct Watch {
    driven: u64,
    ready: bool,
    takeover: bool,
    paused: bool,
}

/// How often a group with paused connections looks whether the backlog
/// was taken, in ms.
const PAUSED_RECHECK_MS: i32 = 10;

const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32;

fn on_event<H: GroupHost>(server: &H, conn: &Arc<Conn>, events: u32) {
    let mut done = false;
    if events & libc::EPOLLOUT as u32 != 0 {
        conn.on_writable(server);
    }
    let readish = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    if events & readish != 0 {
        done = conn.on_readable(server);
    }
    if done || conn.is_closed() {
        server.retire(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::ServerCore;
    use std::time::Instant;

    /// A lent group whose driver stopped calling, with a socket left ready
    /// and the backlog far over the limit: the watch reads nobody and waits
    /// for the backlog to be taken, as the thread's own loop does, instead
    /// of looking again at once (a spinning thread while JS is stuck).
    #[test]
    fn a_watch_far_over_the_limit_waits_instead_of_spinning() {
        let g = Group::new().unwrap();
        g.lend();
        g.wake(); // the set is readable now and stays so until read
        let inflow = Inflow::new(10);
        inflow.add(100);
        assert!(inflow.is_far_over());
        let server = Weak::<ServerCore>::new();
        // Ready at the previous look, no round called since: takeover.
        let mut w = Watch { ready: true, ..Watch::default() };
        for _ in 0..3 {
            let t = Instant::now();
            assert!(g.watch(&server, &inflow, &mut w), "the watch goes on");
            assert!(w.takeover, "the driver is seen as stuck");
            assert!(t.elapsed() >= Duration::from_millis(90), "each look waited: {:?}", t.elapsed());
        }
        assert!(g.ready(0), "nothing was read");
        // The driver calls a round again: the watch hands back.
        g.driven.fetch_add(1, Ordering::Relaxed);
        assert!(g.watch(&server, &inflow, &mut w));
        assert!(!w.takeover);
    }
}
