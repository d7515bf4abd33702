//! The connection fleet every mode starts with: open N connections at a
//! bounded rate with bounded handshake concurrency, hand each established
//! one to the mode's `Session`, print the ready line once every connection
//! was attempted, and close them all (bounded) at the end.
//!
//! Memory: a connection is one tokio task whose future holds the `Conn` and
//! the mode's session state; handshake buffers are boxed and freed once the
//! connection is established.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::args::Args;
use crate::client::{Proto, Target};
use crate::conn::{self, Conn, Msg};
use crate::control;
use crate::hist::Histogram;

/// How long each connection may spend on its closing handshake at exit.
pub const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// What a mode does with one established connection.
pub trait Session: Send + Sync + 'static {
    /// Drive `conn` until `shut` turns true (return Ok: the fleet then closes
    /// the connection) or the connection ends (return Err(kind)).
    fn run<'a>(
        &'a self,
        conn: &'a mut Conn,
        proto: &'a Proto,
        shut: &'a mut watch::Receiver<bool>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a;
}

/// Connection counters shared by the fleet's tasks.
#[derive(Default)]
pub struct Fleet {
    pub requested: u64,
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub attempted: AtomicU64,
    /// Established connections that ended before the shutdown.
    pub dropped: AtomicU64,
    live: AtomicU64,
    pub pings: AtomicU64,
    /// Connect failures by kind.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Drops by kind.
    pub drops: Mutex<BTreeMap<String, u64>>,
    /// Connect start -> established, microseconds.
    pub hist: Mutex<Histogram>,
    all_attempted: Notify,
    exits: Notify,
}

impl Fleet {
    fn attempt_done(&self) {
        if self.attempted.fetch_add(1, Relaxed) + 1 == self.requested {
            self.all_attempted.notify_one();
        }
    }
    fn task_exit(&self) {
        self.live.fetch_sub(1, Relaxed);
        self.exits.notify_one();
    }
    pub fn count(map: &Mutex<BTreeMap<String, u64>>, kind: String) {
        *map.lock().unwrap().entry(kind).or_insert(0) += 1;
    }
    /// Connect failures and drops, by kind, in one map.
    pub fn error_kinds(&self) -> BTreeMap<String, u64> {
        let mut m = self.errors.lock().unwrap().clone();
        for (k, v) in self.drops.lock().unwrap().iter() {
            *m.entry(k.clone()).or_insert(0) += v;
        }
        m
    }
    pub fn open(&self) -> u64 {
        self.connected.load(Relaxed).saturating_sub(self.dropped.load(Relaxed))
    }
}

/// A fleet after its connect phase.
pub struct Running {
    pub fleet: Arc<Fleet>,
    shut_tx: watch::Sender<bool>,
    /// Start of the connect phase -> every connection attempted (or stop).
    pub connect_secs: f64,
    /// Some when a stop request arrived during the connect phase.
    pub stop_reason: Option<String>,
}

/// Open the fleet and wait until every connection was attempted (or a stop
/// request); print the ready line unless stopped.
pub async fn start<S: Session>(
    args: &Args,
    target: Target,
    session: Arc<S>,
    stop: &mut watch::Receiver<Option<String>>,
) -> Running {
    let fleet = Arc::new(Fleet { requested: args.connections, ..Default::default() });
    let (shut_tx, shut_rx) = watch::channel(false);
    let start = Instant::now();
    if args.connections == 0 {
        fleet.all_attempted.notify_one();
    }
    tokio::spawn(launch(args.clone(), Arc::new(target), fleet.clone(), session, shut_rx));
    if args.progress {
        tokio::spawn(progress(fleet.clone(), start));
    }
    let stop_reason = tokio::select! {
        _ = fleet.all_attempted.notified() => None,
        r = control::stopped(stop) => Some(r),
    };
    let connect_secs = start.elapsed().as_secs_f64();
    if stop_reason.is_none() {
        let ready = json!({
            "event": "ready",
            "mode": args.mode.as_str(),
            "protocol": args.protocol_name(),
            "requested": fleet.requested,
            "connected": fleet.connected.load(Relaxed),
            "failed": fleet.failed.load(Relaxed),
            "connect_secs": round3(connect_secs),
            "pid": std::process::id(),
        });
        control::emit(&ready);
        if let Some(p) = &args.ready_file {
            control::write_ready_file(p, &ready);
        }
        elog!(
            "loadgen[{}]: ready ({}): {} connected, {} failed in {:.2}s",
            std::process::id(),
            args.mode.as_str(),
            fleet.connected.load(Relaxed),
            fleet.failed.load(Relaxed),
            connect_secs,
        );
    }
    Running { fleet, shut_tx, connect_secs, stop_reason }
}

impl Running {
    /// Tell every connection to close and wait (bounded) until all are gone.
    pub async fn shutdown(&self) {
        let _ = self.shut_tx.send(true);
        let deadline = tokio::time::Instant::now() + GOODBYE_WAIT + Duration::from_secs(2);
        while self.fleet.live.load(Relaxed) > 0 {
            let notified = self.fleet.exits.notified();
            if self.fleet.live.load(Relaxed) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// CLOCK_REALTIME in microseconds: comparable across processes.
pub fn realtime_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

async fn launch<S: Session>(
    args: Args,
    target: Arc<Target>,
    fleet: Arc<Fleet>,
    session: Arc<S>,
    mut shut: watch::Receiver<bool>,
) {
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let timeout = Duration::from_secs_f64(args.timeout);
    let rate = args.rate();
    let start = tokio::time::Instant::now();
    for i in 0..args.connections {
        if *shut.borrow() {
            return;
        }
        if rate > 0.0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.expect("semaphore closed"),
            _ = shut.changed() => return,
        };
        let source = if args.source_ips.is_empty() {
            None
        } else {
            let k = (args.index_base + i) % args.source_ips.len() as u64;
            Some(args.source_ips[k as usize])
        };
        fleet.live.fetch_add(1, Relaxed);
        tokio::spawn(conn_task(permit, target.clone(), source, timeout, fleet.clone(), session.clone(), shut.clone()));
    }
}

pub(crate) async fn conn_task<S: Session>(
    permit: OwnedSemaphorePermit,
    target: Arc<Target>,
    source: Option<IpAddr>,
    timeout: Duration,
    fleet: Arc<Fleet>,
    session: Arc<S>,
    mut shut: watch::Receiver<bool>,
) {
    let t0 = Instant::now();
    // Boxed: the handshake's buffers live on the heap only while it runs and
    // do not grow the long-lived task.
    let res = Box::pin(conn::open_timeout(&target, source, timeout)).await;
    drop(permit);
    let mut conn = match res {
        Ok(c) => {
            fleet.hist.lock().unwrap().record(t0.elapsed().as_micros() as u64);
            fleet.connected.fetch_add(1, Relaxed);
            fleet.attempt_done();
            c
        }
        Err(kind) => {
            fleet.failed.fetch_add(1, Relaxed);
            Fleet::count(&fleet.errors, kind);
            fleet.attempt_done();
            fleet.task_exit();
            return;
        }
    };
    let end = session.run(&mut conn, &target.proto, &mut shut).await;
    fleet.pings.fetch_add(conn.pings() as u64, Relaxed);
    match end {
        // Boxed: its timer and pump state are only needed at exit.
        Ok(()) => Box::pin(conn.goodbye(1000, GOODBYE_WAIT)).await,
        Err(kind) => {
            fleet.dropped.fetch_add(1, Relaxed);
            Fleet::count(&fleet.drops, kind);
        }
    }
    fleet.task_exit();
}

async fn progress(fleet: Arc<Fleet>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let attempted = fleet.attempted.load(Relaxed);
        elog!(
            "loadgen[{}]: t={:.0}s connected={} failed={} in_flight={}",
            std::process::id(),
            start.elapsed().as_secs_f64(),
            fleet.connected.load(Relaxed),
            fleet.failed.load(Relaxed),
            fleet.live.load(Relaxed).saturating_sub(fleet.open()),
        );
        if attempted >= fleet.requested {
            return;
        }
    }
}

/// With --progress: a line on stderr every second from `line()` until the
/// returned guard drops.
pub fn ticker<F>(enabled: bool, line: F) -> Option<TickerGuard>
where
    F: Fn() -> String + Send + 'static,
{
    if !enabled {
        return None;
    }
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            elog!("loadgen[{}]: run t={:.0}s {}", std::process::id(), start.elapsed().as_secs_f64(), line());
        }
    });
    Some(TickerGuard(task))
}

pub struct TickerGuard(tokio::task::JoinHandle<()>);

impl Drop for TickerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wait until `go` turns true (children of synchronized modes) or a stop.
/// Returns the stop reason if stopped first.
pub async fn wait_go(go: &mut watch::Receiver<bool>, stop: &mut watch::Receiver<Option<String>>) -> Option<String> {
    tokio::select! {
        r = go.wait_for(|g| *g) => match r {
            Ok(_) => None,
            // The stdin thread ended without a go: stdin closed, a stop follows.
            Err(_) => Some(control::stopped(stop).await),
        },
        r = control::stopped(stop) => Some(r),
    }
}

/// Pump (answering pings, ignoring messages) until `window` opens; None if
/// the run ends first.
pub async fn wait_window<T: Copy + Send + Sync>(
    conn: &mut Conn,
    proto: &Proto,
    shut: &mut watch::Receiver<bool>,
    window: &watch::Receiver<Option<T>>,
) -> Result<Option<T>, String> {
    let mut window = window.clone();
    let mut ignore = |_: &Msg<'_>| {};
    loop {
        if let Some(w) = *window.borrow_and_update() {
            return Ok(Some(w));
        }
        tokio::select! {
            biased;
            _ = shut.changed() => return Ok(None),
            r = window.changed() => {
                if r.is_err() {
                    // Never opens: hold until the end.
                    let _ = shut.changed().await;
                    return Ok(None);
                }
            }
            r = conn.pump(proto, &mut ignore) => r?,
        }
    }
}
