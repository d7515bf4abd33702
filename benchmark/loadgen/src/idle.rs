//! `idle` mode: open N connections at a bounded rate with bounded handshake
//! concurrency, hold them (answering pings) and report.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::args::Args;
use crate::client::{self, Pumped, Target};
use crate::control;
use crate::hist::Histogram;

/// How long each connection may spend on its closing handshake at exit.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Shared {
    requested: u64,
    connected: AtomicU64,
    failed: AtomicU64,
    attempted: AtomicU64,
    dropped: AtomicU64,
    live: AtomicU64,
    pings: AtomicU64,
    messages: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    drops: Mutex<BTreeMap<String, u64>>,
    hist: Mutex<Histogram>,
    all_attempted: Notify,
    all_exited: Notify,
}

impl Shared {
    fn attempt_done(&self) {
        if self.attempted.fetch_add(1, Relaxed) + 1 == self.requested {
            self.all_attempted.notify_one();
        }
    }
    fn task_exit(&self) {
        if self.live.fetch_sub(1, Relaxed) == 1 {
            self.all_exited.notify_one();
        }
    }
    fn count(map: &Mutex<BTreeMap<String, u64>>, kind: String) {
        *map.lock().unwrap().entry(kind).or_insert(0) += 1;
    }
}

pub async fn run(
    args: &Args,
    target: Target,
    mut stop: watch::Receiver<Option<String>>,
) -> serde_json::Value {
    let target = Arc::new(target);
    let shared = Arc::new(Shared {
        requested: args.connections,
        ..Default::default()
    });
    let (shut_tx, shut_rx) = watch::channel(false);
    let start = Instant::now();

    if args.connections == 0 {
        shared.all_attempted.notify_one();
    }
    tokio::spawn(launch(
        args.clone(),
        target,
        shared.clone(),
        shut_rx.clone(),
    ));
    if args.progress {
        tokio::spawn(progress(shared.clone(), start));
    }

    // Phase 1: connect.
    let mut stop_reason = tokio::select! {
        _ = shared.all_attempted.notified() => None,
        r = stop.wait_for(|v| v.is_some()) => Some(r.map(|v| v.clone().unwrap()).unwrap_or_default()),
    };
    let connect_secs = start.elapsed().as_secs_f64();
    let ready = json!({
        "event": "ready",
        "mode": "idle",
        "requested": shared.requested,
        "connected": shared.connected.load(Relaxed),
        "failed": shared.failed.load(Relaxed),
        "connect_secs": round3(connect_secs),
        "pid": std::process::id(),
    });
    if stop_reason.is_none() {
        control::emit(&ready);
        if let Some(p) = &args.ready_file {
            control::write_ready_file(p, &ready);
        }
        elog!(
            "loadgen[{}]: ready: {} connected, {} failed in {:.2}s; holding up to {}s",
            std::process::id(),
            shared.connected.load(Relaxed),
            shared.failed.load(Relaxed),
            connect_secs,
            args.hold
        );
    }

    // Phase 2: hold.
    let hold_start = Instant::now();
    if stop_reason.is_none() {
        stop_reason = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.hold)) => Some("hold_elapsed".into()),
            r = stop.wait_for(|v| v.is_some()) => Some(r.map(|v| v.clone().unwrap()).unwrap_or_default()),
        };
    }
    let held_secs = hold_start.elapsed().as_secs_f64();
    let open_at_stop = shared.connected.load(Relaxed) - shared.dropped.load(Relaxed);

    // Phase 3: close everything (bounded).
    let _ = shut_tx.send(true);
    if shared.live.load(Relaxed) > 0 {
        let _ = tokio::time::timeout(
            GOODBYE_WAIT + Duration::from_secs(2),
            shared.all_exited.notified(),
        )
        .await;
    }

    let hist = shared.hist.lock().unwrap();
    let mut report = json!({
        "mode": "idle",
        "requested": shared.requested,
        "connected": shared.connected.load(Relaxed),
        "failed": shared.failed.load(Relaxed),
        "not_attempted": shared.requested - shared.attempted.load(Relaxed),
        "errors": *shared.errors.lock().unwrap(),
        "connect_secs": round3(connect_secs),
        "p50_ms": hist.quantile_ms(0.50),
        "p99_ms": hist.quantile_ms(0.99),
        "dropped": shared.dropped.load(Relaxed),
        "drop_reasons": *shared.drops.lock().unwrap(),
        "open_at_stop": open_at_stop,
        "pings_received": shared.pings.load(Relaxed),
        "messages_received": shared.messages.load(Relaxed),
        "held_secs": round3(held_secs),
        "stop_reason": stop_reason.unwrap_or_default(),
        "processes": 1,
    });
    if args.child {
        report["hist"] = hist.to_json();
    }
    report
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn launch(
    args: Args,
    target: Arc<Target>,
    shared: Arc<Shared>,
    mut shut: watch::Receiver<bool>,
) {
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let timeout = Duration::from_secs_f64(args.timeout);
    let start = tokio::time::Instant::now();
    for i in 0..args.connections {
        if *shut.borrow() {
            return;
        }
        if args.rate > 0.0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / args.rate)).await;
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
        shared.live.fetch_add(1, Relaxed);
        tokio::spawn(conn_task(
            permit,
            target.clone(),
            source,
            timeout,
            shared.clone(),
            shut.clone(),
        ));
    }
}

async fn conn_task(
    permit: OwnedSemaphorePermit,
    target: Arc<Target>,
    source: Option<IpAddr>,
    timeout: Duration,
    shared: Arc<Shared>,
    mut shut: watch::Receiver<bool>,
) {
    let t0 = Instant::now();
    // Boxed: the handshake's buffers live on the heap only while it runs and
    // do not grow the long-lived task.
    let res = Box::pin(client::connect_timeout(&target, source, timeout)).await;
    drop(permit);
    let mut ws = match res {
        Ok(ws) => {
            shared
                .hist
                .lock()
                .unwrap()
                .record(t0.elapsed().as_micros() as u64);
            shared.connected.fetch_add(1, Relaxed);
            shared.attempt_done();
            ws
        }
        Err(kind) => {
            shared.failed.fetch_add(1, Relaxed);
            Shared::count(&shared.errors, kind);
            shared.attempt_done();
            shared.task_exit();
            return;
        }
    };

    let messages = &shared.messages;
    let mut on_data = |_op: u8, _payload: &[u8], fin: bool| {
        if fin {
            messages.fetch_add(1, Relaxed);
        }
    };
    let mut shutting_down = false;
    loop {
        tokio::select! {
            biased;
            _ = shut.changed() => { shutting_down = true; break; }
            r = ws.pump(&mut on_data) => match r {
                Ok(Pumped::Open) => continue,
                Ok(Pumped::Closed(code)) => { Shared::count(&shared.drops, format!("server_close_{code}")); break; }
                Ok(Pumped::Eof) => { Shared::count(&shared.drops, "eof".into()); break; }
                Err(kind) => { Shared::count(&shared.drops, kind); break; }
            }
        }
    }
    shared.pings.fetch_add(ws.pings as u64, Relaxed);
    if shutting_down {
        // Boxed: its timer and pump state are only needed at exit.
        Box::pin(ws.goodbye(1000, GOODBYE_WAIT)).await;
    } else {
        shared.dropped.fetch_add(1, Relaxed);
    }
    shared.task_exit();
}

async fn progress(shared: Arc<Shared>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let attempted = shared.attempted.load(Relaxed);
        elog!(
            "loadgen[{}]: t={:.0}s connected={} failed={} in_flight={}",
            std::process::id(),
            start.elapsed().as_secs_f64(),
            shared.connected.load(Relaxed),
            shared.failed.load(Relaxed),
            shared.live.load(Relaxed).saturating_sub(
                shared
                    .connected
                    .load(Relaxed)
                    .saturating_sub(shared.dropped.load(Relaxed))
            ),
        );
        if attempted >= shared.requested {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    /// Per-connection state is the task's future: keep it small (it is held
    /// 10k-19k times per process).
    #[test]
    fn connection_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let args =
                crate::args::parse(&["idle".into(), "--url".into(), "ws://127.0.0.1:9/".into()])
                    .unwrap();
            let target = std::sync::Arc::new(crate::control::resolve_target(&args).await.unwrap());
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
            let permit = sem.acquire_owned().await.unwrap();
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let fut = super::conn_task(
                permit,
                target,
                None,
                std::time::Duration::from_secs(1),
                Default::default(),
                rx,
            );
            let size = std::mem::size_of_val(&fut);
            assert!(size <= 768, "conn_task future grew to {size} bytes");
            assert!(std::mem::size_of::<crate::client::WsClient>() <= 128);
        });
    }
}
