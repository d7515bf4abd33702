//! What every native handle (`NativeApp`, `NativeSocketIo`) owns: the tokio
//! runtime, the ws server and the batched event bridge to JS, with one
//! listen and one shutdown path.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{Buffer, Function};
use napi::{Either, Error, Result, Status};
use napi_derive::napi;
use parking_lot::Mutex;

use super::events::{Batch, EventBatch, EventSink};
use crate::net::{self, ListenOptions};
use crate::ws::{Inflow, ServerCore, ServerOptions, DEFAULT_INFLOW_LIMIT};

#[napi(object)]
pub struct ListenResult {
    pub token: u32,
    pub port: u32,
}

pub(crate) fn err(msg: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, msg.to_string())
}

pub(crate) struct Core {
    pub(crate) server: Arc<ServerCore>,
    pub(crate) sink: Arc<EventSink>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Core {
    /// `on_events(batch)` receives every event batch (lib/events.js
    /// decodes): the number of bytes written to `scratch` (a Buffer JS
    /// holds for the handle's life) when the batch fits there, else a
    /// Buffer of its own. A small batch (the usual one at low rates) then
    /// costs no allocation and no Buffer construction in Node, whose
    /// prototype setup was ~12% of the JS thread in the heartbeat profile.
    pub(crate) fn new(
        workers: Option<u32>,
        max_connections: Option<u32>,
        handshake_timeout_ms: Option<u32>,
        on_events: Function<EventBatch, ()>,
        scratch: Buffer,
    ) -> Result<Self> {
        let inflow = Arc::new(Inflow::new(DEFAULT_INFLOW_LIMIT));
        let batch = Arc::new(Batch { buf: Mutex::new(Vec::new()), inflow: inflow.clone() });
        let taker = batch.clone();
        let scratch = Mutex::new(scratch);
        let wake =
            on_events.build_threadsafe_function::<()>().weak::<true>().callee_handled::<false>().build_callback(
                move |_ctx| {
                    // Runs on the JS thread, the only one that touches
                    // `scratch`; JS decodes it before the next call.
                    let events = taker.take();
                    let mut scratch = scratch.lock();
                    if events.len() <= scratch.len() {
                        scratch[..events.len()].copy_from_slice(&events);
                        let n = events.len() as u32;
                        taker.recycle(events);
                        Ok(Either::A(n))
                    } else {
                        Ok(Either::B(Buffer::from(events)))
                    }
                },
            )?;
        let runtime = net::build_runtime(workers.unwrap_or(0) as usize).map_err(err)?;
        let server_opts = ServerOptions {
            max_connections: max_connections.map_or(usize::MAX, |n| n as usize),
            groups: runtime.metrics().num_workers(),
            inflow,
            handshake_timeout: handshake_timeout_ms
                .map_or(ServerOptions::default().handshake_timeout, |ms| Duration::from_millis(ms.into())),
            ..ServerOptions::default()
        };
        let sink = Arc::new(EventSink::new(batch, wake));
        let server = ServerCore::new(sink.clone(), server_opts).map_err(err)?;
        let core = Self { server, sink, runtime: Mutex::new(Some(runtime)) };
        core.enter(|| core.server.start())?.map_err(err)?;
        Ok(core)
    }

    /// Runs `f` inside the runtime (for spawning); Err once closed.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let rt = self.runtime.lock();
        let rt = rt.as_ref().ok_or_else(|| err("closed"))?;
        let _guard = rt.enter();
        Ok(f())
    }

    pub(crate) fn listen(
        &self,
        host: String,
        port: u32,
        reuse_port: Option<bool>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<ListenResult> {
        let port = u16::try_from(port).map_err(|_| err(format!("invalid port {port}")))?;
        let opts = ListenOptions { host, port, reuse_port: reuse_port.unwrap_or(false), backlog: 1024 };
        let std_listener = net::bind(&opts).map_err(|e| err(format!("listen {}:{}: {e}", opts.host, port)))?;
        let (token, addr) = self.enter(|| self.server.listen(std_listener, tls))?.map_err(err)?;
        Ok(ListenResult { token, port: addr.port() as u32 })
    }

    /// Starts accepting on a listening TCP socket someone else bound (Node's
    /// http.Server): `fd` is duplicated, the caller closes its own copy.
    pub(crate) fn listen_fd(&self, fd: i32) -> Result<ListenResult> {
        // SAFETY: fcntl on a descriptor the caller owns; returns a new one or -1.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(err(format!("listen on fd {fd}: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let std_listener = std::net::TcpListener::from(unsafe { OwnedFd::from_raw_fd(dup) });
        // Refuses anything but a listening TCP socket (a pipe, a UDP socket).
        let addr = std_listener.local_addr().map_err(|e| err(format!("listen on fd {fd}: {e}")))?;
        std_listener.set_nonblocking(true).map_err(err)?;
        let (token, _) = self.enter(|| self.server.listen(std_listener, None))?.map_err(err)?;
        Ok(ListenResult { token, port: addr.port() as u32 })
    }

    /// Stops listening, closes every connection with 1001, then shuts the
    /// runtime down in the background once the sockets are gone (bounded).
    pub(crate) fn close(&self) {
        self.server.shutdown();
        let Some(rt) = self.runtime.lock().take() else { return };
        let server = self.server.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(3);
            while server.connection_count() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            rt.shutdown_timeout(Duration::from_secs(1));
            server.clear();
        });
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.lock().take() {
            self.server.shutdown();
            rt.shutdown_background();
            self.server.clear();
        }
    }
}
