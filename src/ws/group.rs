//! Connection groups: many established sockets driven by one tokio task.
//!
//! A tokio `TcpStream` costs two 128-byte-aligned heap blocks per socket (its
//! reactor `ScheduledIo` and, with one task per socket, the task cell):
//! ~512 B of a ~1 KB budget, measured with a counting allocator. Instead, each
//! group owns a level-triggered epoll set holding its sockets (kernel memory
//! only), and tokio's reactor watches that one epoll fd. When it is readable
//! the group task takes a batch of ready sockets and reads or flushes them on
//! the tokio worker it runs on. Per socket, userland keeps just the `Conn`.
//!
//! Level-triggered on purpose: a socket is read at most once per round (one
//! scratch-buffer's worth), so a busy peer cannot starve the others; what it
//! left unread is reported again next round.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Weak};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::conn::Conn;
use super::server::ServerCore;

/// Ready sockets taken per `epoll_wait`; a full batch yields to other tasks.
const BATCH: usize = 256;

pub(crate) struct Group {
    epoll: OwnedFd,
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

impl Group {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is owned from here on.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Self { epoll: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, id: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: id };
        // SAFETY: `ev` outlives the call; epoll_ctl is thread-safe.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    pub(crate) fn add(&self, fd: RawFd, id: u64, want_write: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, if want_write { WRITE_EVENTS } else { READ_EVENTS }, id)
    }

    /// Also watch for writability (the kernel send buffer was full).
    pub(crate) fn want_write(&self, fd: RawFd, id: u64, on: bool) {
        let events = if on { WRITE_EVENTS } else { READ_EVENTS };
        // Fails only if the socket was already removed: nothing left to watch.
        let _ = self.ctl(libc::EPOLL_CTL_MOD, fd, events, id);
    }

    pub(crate) fn remove(&self, fd: RawFd) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
    }

    /// The group's task: runs until the server is dropped or the runtime stops.
    pub(crate) async fn run(self: Arc<Self>, server: Weak<ServerCore>) {
        // SAFETY: the epoll fd is owned by `self`, which this task keeps alive
        // (through the Arc) for as long as `afd` exists.
        let Ok(afd) = (unsafe { AsyncFd::register_with_interest(self.epoll.as_raw_fd(), Interest::READABLE) }) else {
            return;
        };
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
        loop {
            let Ok(mut guard) = afd.readable().await else {
                return;
            };
            // SAFETY: `events` has BATCH valid slots; timeout 0 never blocks.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), BATCH as i32, 0) };
            if n <= 0 {
                // Nothing ready: let tokio wait for the next edge on our fd.
                guard.clear_ready();
                continue;
            }
            drop(guard);
            let Some(server) = server.upgrade() else {
                return;
            };
            if server.inflow().is_over() {
                // JS is behind: read nothing until it catches up. The ready
                // sockets stay ready (level-triggered) and are read after.
                server.inflow().below_limit().await;
                continue;
            }
            for ev in &events[..n as usize] {
                let Some(conn) = server.get(ev.u64) else {
                    continue;
                };
                on_event(&server, &conn, ev.events);
            }
            drop(server);
            if n as usize == BATCH {
                tokio::task::yield_now().await;
            }
        }
    }
}

fn on_event(server: &ServerCore, conn: &Arc<Conn>, events: u32) {
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
