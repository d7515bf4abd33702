//! `idle` mode: open N connections at a bounded rate with bounded handshake
//! concurrency, hold them (answering pings) and report.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::args::Args;
use crate::client::{Proto, Target};
use crate::conn::{Conn, Msg};
use crate::control::{self, Signals};
use crate::fleet::{self, round3, Session};

/// Idle connections only count what arrives.
#[derive(Default)]
pub struct IdleSession {
    messages: AtomicU64,
}

impl Session for IdleSession {
    // Spelled out instead of `async fn`, whose future held its arguments
    // twice (16 bytes more, rust-lang/rust#62958): every connection holds one.
    #[allow(clippy::manual_async_fn)]
    fn run<'a>(
        &'a self,
        conn: &'a mut Conn,
        proto: &'a Proto,
        shut: &'a mut watch::Receiver<bool>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a {
        async move {
            let mut on_msg = |_: &Msg<'_>| {
                self.messages.fetch_add(1, Relaxed);
            };
            loop {
                tokio::select! {
                    biased;
                    _ = shut.changed() => return Ok(()),
                    r = conn.pump(proto, &mut on_msg) => r?,
                }
            }
        }
    }
}

pub async fn run(args: &Args, target: Target, mut sig: Signals) -> serde_json::Value {
    let session = Arc::new(IdleSession::default());
    let run = fleet::start(args, target, session.clone(), &mut sig.stop).await;
    let f = &run.fleet;

    // Hold.
    let hold_start = Instant::now();
    let stop_reason = match run.stop_reason.clone() {
        Some(r) => r,
        None => tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.hold)) => "hold_elapsed".into(),
            r = control::stopped(&mut sig.stop) => r,
        },
    };
    let held_secs = hold_start.elapsed().as_secs_f64();
    let open_at_stop = f.open();

    run.shutdown().await;

    let hist = f.hist.lock().unwrap();
    let mut report = json!({
        "mode": "idle",
        "requested": f.requested,
        "connected": f.connected.load(Relaxed),
        "failed": f.failed.load(Relaxed),
        "not_attempted": f.requested - f.attempted.load(Relaxed),
        "errors": *f.errors.lock().unwrap(),
        "connect_secs": round3(run.connect_secs),
        "p50_ms": hist.quantile_ms(0.50),
        "p99_ms": hist.quantile_ms(0.99),
        "dropped": f.dropped.load(Relaxed),
        "drop_reasons": *f.drops.lock().unwrap(),
        "open_at_stop": open_at_stop,
        "pings_received": f.pings.load(Relaxed),
        "messages_received": session.messages.load(Relaxed),
        "held_secs": round3(held_secs),
        "protocol": args.protocol_name(),
        "stop_reason": stop_reason,
        "processes": 1,
    });
    if args.child {
        report["hist"] = hist.to_json();
    }
    report
}

#[cfg(test)]
mod tests {
    /// Per-connection state is the task's future: keep it small (it is held
    /// 10k-19k times per process).
    #[test]
    fn connection_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let args = crate::args::parse(&["idle".into(), "--url".into(), "ws://127.0.0.1:9/".into()]).unwrap();
            let target = std::sync::Arc::new(crate::control::resolve_target(&args).await.unwrap());
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
            let permit = sem.acquire_owned().await.unwrap();
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let fut = crate::fleet::conn_task(
                permit,
                target,
                None,
                std::time::Duration::from_secs(1),
                Default::default(),
                std::sync::Arc::new(super::IdleSession::default()),
                rx,
            );
            let size = std::mem::size_of_val(&fut);
            assert!(size <= 768, "conn_task future grew to {size} bytes");
            assert!(std::mem::size_of::<crate::conn::Conn>() <= 128);
        });
    }
}
