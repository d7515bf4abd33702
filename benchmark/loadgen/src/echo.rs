//! `echo` mode: once every connection is up, each keeps exactly one message
//! in flight for --duration seconds (send, wait for the echo, send the next)
//! and records the round-trip times.
//!
//! ws sends the text frame `{"echo":"xxx…"}` and waits for the identical
//! message; sio emits `42["echo",{"echo":"xxx…"}]` and waits for an `echo`
//! event (one whose content differs from what was sent still completes the
//! round trip and is counted under error_kinds.echo_mismatch). Anything else
//! that arrives is counted as other_messages.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::args::Args;
use crate::client::{Proto, Target};
use crate::conn::{Conn, Msg};
use crate::control::{self, Signals};
use crate::fleet::{self, round3, wait_window, Session};
use crate::hist::Histogram;
use crate::report;
use crate::sio;

/// The message every connection sends, built once.
pub fn message(proto: &Proto, payload_bytes: usize) -> Vec<u8> {
    let mut v = match proto {
        Proto::Ws => Vec::new(),
        Proto::Sio { nsp } => sio::event_prefix(nsp, "echo"),
    };
    v.extend_from_slice(b"{\"echo\":\"");
    v.resize(v.len() + payload_bytes, b'x');
    v.extend_from_slice(b"\"}");
    if let Proto::Sio { .. } = proto {
        v.push(b']');
    }
    v
}

#[derive(Default)]
struct Stats {
    /// One entry per round trip.
    hist: Histogram,
    mismatched: u64,
}

pub struct EchoSession {
    msg: Box<[u8]>,
    /// Some(end of the measured window) once the run starts.
    window: watch::Receiver<Option<Instant>>,
    stats: Mutex<Stats>,
    other: AtomicU64,
}

impl Session for EchoSession {
    async fn run(&self, conn: &mut Conn, proto: &Proto, shut: &mut watch::Receiver<bool>) -> Result<(), String> {
        let Some(end) = wait_window(conn, proto, shut, &self.window).await? else {
            return Ok(());
        };
        let mut sent_at = Instant::now();
        let mut in_flight = sent_at < end;
        if in_flight {
            conn.send(&[&self.msg]);
        }
        loop {
            let mut reply: Option<(Instant, bool)> = None;
            let mut other = 0u64;
            let mut on = |m: &Msg<'_>| {
                let is_echo = match m.event {
                    Some(name) => name == b"echo",
                    None => m.raw == &*self.msg,
                };
                if is_echo && in_flight && reply.is_none() {
                    reply = Some((Instant::now(), m.raw == &*self.msg));
                } else {
                    other += 1;
                }
            };
            tokio::select! {
                biased;
                _ = shut.changed() => return Ok(()),
                r = conn.pump(proto, &mut on) => r?,
            }
            if other > 0 {
                self.other.fetch_add(other, Relaxed);
            }
            let Some((at, same)) = reply else { continue };
            in_flight = false;
            if at > end {
                continue;
            }
            {
                let mut s = self.stats.lock().unwrap();
                s.hist.record(at.duration_since(sent_at).as_micros() as u64);
                s.mismatched += u64::from(!same);
            }
            let now = Instant::now();
            if now < end {
                sent_at = now;
                conn.send(&[&self.msg]);
                in_flight = true;
            }
        }
    }
}

pub async fn run(args: &Args, target: Target, mut sig: Signals) -> Value {
    let (win_tx, win_rx) = watch::channel(None);
    let session = Arc::new(EchoSession {
        msg: message(&target.proto, args.payload_bytes).into_boxed_slice(),
        window: win_rx,
        stats: Default::default(),
        other: AtomicU64::new(0),
    });
    let run = fleet::start(args, target, session.clone(), &mut sig.stop).await;
    let mut stop_reason = run.stop_reason.clone();
    if stop_reason.is_none() && args.child {
        stop_reason = fleet::wait_go(&mut sig.go, &mut sig.stop).await;
    }
    let mut measured = 0.0;
    if stop_reason.is_none() {
        let duration = Duration::from_secs_f64(args.duration());
        let start = Instant::now();
        win_tx.send_replace(Some(start + duration));
        let s2 = session.clone();
        let _ticker =
            fleet::ticker(args.progress, move || format!("round_trips={}", s2.stats.lock().unwrap().hist.count()));
        stop_reason = Some(tokio::select! {
            _ = tokio::time::sleep(duration) => "duration_elapsed".into(),
            r = control::stopped(&mut sig.stop) => r,
        });
        measured = start.elapsed().min(duration).as_secs_f64();
    }
    run.shutdown().await;

    let f = &run.fleet;
    let s = session.stats.lock().unwrap();
    let mut kinds = f.error_kinds();
    if s.mismatched > 0 {
        kinds.insert("echo_mismatch".into(), s.mismatched);
    }
    let failed = f.failed.load(Relaxed);
    let round_trips = s.hist.count();
    let mut r = json!({
        "mode": "echo",
        "protocol": args.protocol_name(),
        "requested": f.requested,
        "connections": f.connected.load(Relaxed),
        "failed": failed,
        "payload_bytes": args.payload_bytes,
        "duration_s": round3(measured),
        "round_trips": round_trips,
        "rate": report::per_sec(round_trips, measured),
        "p50_us": s.hist.quantile(0.50),
        "p99_us": s.hist.quantile(0.99),
        "max_us": s.hist.max(),
        "errors": failed + f.dropped.load(Relaxed) + s.mismatched,
        "error_kinds": kinds,
        "other_messages": session.other.load(Relaxed),
        "stop_reason": stop_reason.unwrap_or_default(),
        "processes": 1,
    });
    if args.child {
        r["hist"] = s.hist.to_json();
    }
    r
}

/// Children measure the same window (they start on the parent's `go`), so
/// the rate is all round trips over the longest child's window.
pub fn merge(rs: &[Value]) -> Value {
    let h = report::hist(rs);
    let round_trips = report::sum(rs, "round_trips");
    let secs = report::max_f(rs, "duration_s");
    json!({
        "mode": "echo",
        "protocol": report::first(rs, "protocol"),
        "requested": report::sum(rs, "requested"),
        "connections": report::sum(rs, "connections"),
        "failed": report::sum(rs, "failed"),
        "payload_bytes": report::first(rs, "payload_bytes"),
        "duration_s": secs,
        "round_trips": round_trips,
        "rate": report::per_sec(round_trips, secs),
        "p50_us": h.quantile(0.50),
        "p99_us": h.quantile(0.99),
        "max_us": h.max(),
        "errors": report::sum(rs, "errors"),
        "error_kinds": report::sum_maps(rs, "error_kinds"),
        "other_messages": report::sum(rs, "other_messages"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(message(&Proto::Ws, 3), br#"{"echo":"xxx"}"#);
        assert_eq!(message(&Proto::Sio { nsp: "/".into() }, 2), br#"42["echo",{"echo":"xx"}]"#);
        assert_eq!(message(&Proto::Sio { nsp: "/a".into() }, 0), br#"42/a,["echo",{"echo":""}]"#);
    }

    #[test]
    fn merges_children() {
        let mut h = Histogram::new();
        h.record(50);
        let a = json!({"round_trips":100,"duration_s":2.0,"connections":5,"errors":1,
            "error_kinds":{"eof":1},"max_us":50,"hist":h.to_json()});
        let b = json!({"round_trips":300,"duration_s":1.9,"connections":5,"errors":0,
            "error_kinds":{},"max_us":70,"hist":h.to_json()});
        let m = merge(&[a, b]);
        assert_eq!(m["round_trips"], 400);
        assert_eq!(m["rate"], 200.0);
        assert_eq!(m["connections"], 10);
        assert_eq!(m["errors"], 1);
        assert_eq!(m["max_us"], 70);
        assert_eq!(m["p50_us"], 50);
    }
}
