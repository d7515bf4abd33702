//! What every native handle (`NativeApp`, `NativeSocketIo`) owns: the tokio
//! runtime, the ws server and the batched event bridge to JS, with one
//! listen and one shutdown path.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{Buffer, Function};
use napi::{Error, Result, Status};
use napi_derive::napi;
use parking_lot::Mutex;

use super::events::{Batch, Delivery, EventBatch, EventSink};
use super::loop_read::{self, LoopReader};
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
    /// The JS thread's reading of the connection groups, when on.
    reader: Mutex<Option<LoopReader>>,
}

/// The server options every handle's core takes (checked in lib/options.js).
#[derive(Default)]
pub(crate) struct CoreOptions {
    /// I/O worker threads; None = one per core.
    pub workers: Option<u32>,
    pub max_connections: Option<u32>,
    pub handshake_timeout_ms: Option<u32>,
    /// Largest HTTP request body on the App's routes, bytes.
    pub max_body: Option<f64>,
}

impl Core {
    /// `on_events(batch)` receives every event batch (lib/events.js
    /// decodes; see `Delivery` for the two forms). The batch arrives
    /// through a threadsafe function, or straight from the JS thread's own
    /// read rounds (loop_read.rs).
    pub(crate) fn new(opts: CoreOptions, on_events: Function<EventBatch, ()>, scratch: Buffer) -> Result<Self> {
        let CoreOptions { workers, max_connections, handshake_timeout_ms, max_body } = opts;
        let inflow = Arc::new(Inflow::new(DEFAULT_INFLOW_LIMIT));
        let batch = Arc::new(Batch { buf: Mutex::new(Vec::new()), inflow: inflow.clone() });
        let delivery = Arc::new(Delivery::new(batch.clone(), scratch));
        let taker = delivery.clone();
        let wake = on_events
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_ctx| Ok(taker.take()))?;
        let runtime = net::build_runtime(workers.unwrap_or(0) as usize).map_err(err)?;
        let server_opts = ServerOptions {
            max_connections: max_connections.map_or(usize::MAX, |n| n as usize),
            groups: runtime.metrics().num_workers(),
            inflow,
            handshake_timeout: handshake_timeout_ms
                .map_or(ServerOptions::default().handshake_timeout, |ms| Duration::from_millis(ms.into())),
            max_body: max_body.map_or(ServerOptions::default().max_body, |n| n.max(0.0) as u64),
            ..ServerOptions::default()
        };
        let sink = Arc::new(EventSink::new(batch, wake));
        let server = ServerCore::new(sink.clone(), server_opts).map_err(err)?;
        let rt = runtime.handle().clone();
        let core = Self { server, sink, runtime: Mutex::new(Some(runtime)), reader: Mutex::new(None) };
        core.enter(|| core.server.start())?.map_err(err)?;
        if loop_read::wanted() {
            *core.reader.lock() = LoopReader::start(&on_events, &core.server, delivery, rt);
        }
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
        // The groups' threads read the closing handshakes.
        self.stop_reader();
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

impl Core {
    /// On the JS thread (close, or the handle's finalizer).
    fn stop_reader(&self) {
        if let Some(reader) = self.reader.lock().take() {
            reader.stop(&self.server);
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.stop_reader();
        if let Some(rt) = self.runtime.lock().take() {
            self.server.shutdown();
            rt.shutdown_background();
            self.server.clear();
        }
    }
}
