//! `connect` mode: open N connections as fast as the handshake concurrency
//! (and --rate, if given) allows, keep them open until every one was
//! attempted, then close them and report handshake latency (TCP connect
//! start -> established; for Socket.IO the namespace CONNECT reply) and
//! connections per second.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::args::Args;
use crate::client::Target;
use crate::control::Signals;
use crate::fleet::{self, round3};
use crate::idle::IdleSession;
use crate::report;

pub async fn run(args: &Args, target: Target, mut sig: Signals) -> Value {
    // Established connections only answer pings until the end.
    let run = fleet::start(args, target, Arc::new(IdleSession::default()), &mut sig.stop).await;
    let stop_reason = run.stop_reason.clone().unwrap_or_else(|| "all_attempted".into());
    let open_at_end = run.fleet.open();
    run.shutdown().await;
    let f = &run.fleet;
    let hist = f.hist.lock().unwrap();
    let connected = f.connected.load(Relaxed);
    let mut r = json!({
        "mode": "connect",
        "protocol": args.protocol_name(),
        "requested": f.requested,
        "connected": connected,
        "failed": f.failed.load(Relaxed),
        "elapsed_s": round3(run.connect_secs),
        "conn_per_s": report::per_sec(connected, run.connect_secs),
        "p50_us": hist.quantile(0.50),
        "p99_us": hist.quantile(0.99),
        "max_us": hist.max(),
        "open_at_end": open_at_end,
        "error_kinds": f.error_kinds(),
        "stop_reason": stop_reason,
        "processes": 1,
    });
    if args.child {
        r["hist"] = hist.to_json();
    }
    r
}

/// Children ran side by side: elapsed is the slowest child's.
pub fn merge(rs: &[Value]) -> Value {
    let h = report::hist(rs);
    let connected = report::sum(rs, "connected");
    let elapsed = report::max_f(rs, "elapsed_s");
    json!({
        "mode": "connect",
        "protocol": report::first(rs, "protocol"),
        "requested": report::sum(rs, "requested"),
        "connected": connected,
        "failed": report::sum(rs, "failed"),
        "elapsed_s": elapsed,
        "conn_per_s": report::per_sec(connected, elapsed),
        "p50_us": h.quantile(0.50),
        "p99_us": h.quantile(0.99),
        "max_us": h.max(),
        "open_at_end": report::sum(rs, "open_at_end"),
        "error_kinds": report::sum_maps(rs, "error_kinds"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::Histogram;

    #[test]
    fn merges_children() {
        let mut h1 = Histogram::new();
        h1.record(100);
        let mut h2 = Histogram::new();
        h2.record(300);
        h2.record(300);
        let a = json!({"protocol":"sio","requested":2,"connected":1,"failed":1,"elapsed_s":0.5,
            "max_us":100,"error_kinds":{"refused":1},"hist":h1.to_json()});
        let b = json!({"protocol":"sio","requested":2,"connected":2,"failed":0,"elapsed_s":1.0,
            "max_us":300,"error_kinds":{},"hist":h2.to_json()});
        let m = merge(&[a, b]);
        assert_eq!(m["connected"], 3);
        assert_eq!(m["failed"], 1);
        assert_eq!(m["elapsed_s"], 1.0);
        assert_eq!(m["conn_per_s"], 3.0);
        assert_eq!(m["max_us"], 300);
        assert_eq!(m["protocol"], "sio");
        assert_eq!(m["error_kinds"]["refused"], 1);
        let p50 = m["p50_us"].as_u64().unwrap();
        assert!((290..=310).contains(&p50), "{p50}");
    }
}
