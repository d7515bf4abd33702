//! `heartbeat` mode: every connection sends one small message every
//! --interval seconds (first sends spread uniformly over the first interval,
//! so the server sees a steady trickle) and the server echoes it: ws
//! `{"echo":<seq>}`, sio `42["echo",<seq>]`. Models many mostly idle
//! clients with an application-level keepalive.
//!
//! A message not echoed when the connection's next one is due is `missed`
//! (an echo arriving after that is `late`); messages still unanswered when
//! the run ends are `outstanding`, or `missed` if their connection dropped.

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

/// The text around the sequence number: (before, after).
pub fn frame_around(proto: &Proto) -> (Vec<u8>, Vec<u8>) {
    match proto {
        Proto::Ws => (b"{\"echo\":".to_vec(), b"}".to_vec()),
        Proto::Sio { nsp } => (sio::event_prefix(nsp, "echo"), b"]".to_vec()),
    }
}

/// The sequence number an echo carries.
pub fn echoed_seq(m: &Msg<'_>) -> Option<u64> {
    match m.event {
        Some(b"echo") => sio::parse_u64(m.args),
        Some(_) => None,
        None => sio::scan_u64_after(m.raw, b"\"echo\":"),
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    missed: AtomicU64,
    late: AtomicU64,
    outstanding: AtomicU64,
    other: AtomicU64,
}

pub struct HeartbeatSession {
    before: Box<[u8]>,
    after: Box<[u8]>,
    interval: Duration,
    /// Some((start, end)) once the run starts.
    window: watch::Receiver<Option<(Instant, Instant)>>,
    c: Counters,
    hist: Mutex<Histogram>,
}

impl Session for HeartbeatSession {
    async fn run(&self, conn: &mut Conn, proto: &Proto, shut: &mut watch::Receiver<bool>) -> Result<(), String> {
        let Some((start, end)) = wait_window(conn, proto, shut, &self.window).await? else {
            return Ok(());
        };
        let c = &self.c;
        let mut next = start + self.interval.mul_f64(fastrand::f64());
        let mut sending = next < end;
        let sleep = tokio::time::sleep_until(next.into());
        tokio::pin!(sleep);
        let mut seq = 0u64;
        // The unanswered message: (seq, sent at).
        let mut pending: Option<(u64, Instant)> = None;
        let result = loop {
            let mut echoed: Option<Instant> = None;
            let (mut late, mut other) = (0u64, 0u64);
            let mut on = |m: &Msg<'_>| match echoed_seq(m) {
                Some(k) if echoed.is_none() && pending.is_some_and(|(s, _)| s == k) => echoed = Some(Instant::now()),
                Some(k) if k <= seq => late += 1,
                _ => other += 1,
            };
            tokio::select! {
                biased;
                _ = shut.changed() => break Ok(()),
                _ = &mut sleep, if sending => {
                    let now = Instant::now();
                    if pending.take().is_some() {
                        c.missed.fetch_add(1, Relaxed);
                    }
                    seq += 1;
                    let mut digits = [0u8; 20];
                    conn.send(&[&self.before, sio::fmt_u64(seq, &mut digits), &self.after]);
                    c.sent.fetch_add(1, Relaxed);
                    pending = Some((seq, now));
                    next += self.interval;
                    sending = next < end;
                    sleep.as_mut().reset(next.into());
                }
                r = conn.pump(proto, &mut on) => {
                    if let Err(e) = r {
                        break Err(e);
                    }
                }
            }
            if let Some(at) = echoed {
                if let Some((_, sent_at)) = pending.take() {
                    self.hist.lock().unwrap().record(at.duration_since(sent_at).as_micros() as u64);
                    c.received.fetch_add(1, Relaxed);
                }
            }
            if late > 0 {
                c.late.fetch_add(late, Relaxed);
            }
            if other > 0 {
                c.other.fetch_add(other, Relaxed);
            }
        };
        if pending.is_some() {
            match result {
                Ok(()) => c.outstanding.fetch_add(1, Relaxed),
                Err(_) => c.missed.fetch_add(1, Relaxed),
            };
        }
        result
    }
}

pub async fn run(args: &Args, target: Target, mut sig: Signals) -> Value {
    let (before, after) = frame_around(&target.proto);
    let (win_tx, win_rx) = watch::channel(None);
    let session = Arc::new(HeartbeatSession {
        before: before.into_boxed_slice(),
        after: after.into_boxed_slice(),
        interval: Duration::from_secs_f64(args.interval),
        window: win_rx,
        c: Counters::default(),
        hist: Default::default(),
    });
    let run = fleet::start(args, target, session.clone(), &mut sig.stop).await;
    let mut stop_reason = run.stop_reason.clone();
    if stop_reason.is_none() && args.child {
        stop_reason = fleet::wait_go(&mut sig.go, &mut sig.stop).await;
    }
    let mut ran = 0.0;
    if stop_reason.is_none() {
        let duration = Duration::from_secs_f64(args.duration());
        let start = Instant::now();
        win_tx.send_replace(Some((start, start + duration)));
        let s2 = session.clone();
        let _ticker = fleet::ticker(args.progress, move || {
            let c = &s2.c;
            format!(
                "sent={} received={} missed={}",
                c.sent.load(Relaxed),
                c.received.load(Relaxed),
                c.missed.load(Relaxed)
            )
        });
        stop_reason = Some(tokio::select! {
            _ = tokio::time::sleep(duration) => "duration_elapsed".into(),
            r = control::stopped(&mut sig.stop) => r,
        });
        ran = start.elapsed().min(duration).as_secs_f64();
    }
    run.shutdown().await;

    let f = &run.fleet;
    let c = &session.c;
    let hist = session.hist.lock().unwrap();
    let mut r = json!({
        "mode": "heartbeat",
        "protocol": args.protocol_name(),
        "requested": f.requested,
        "connections": f.connected.load(Relaxed),
        "failed": f.failed.load(Relaxed),
        "interval_s": args.interval,
        "duration_s": round3(ran),
        "sent": c.sent.load(Relaxed),
        "received": c.received.load(Relaxed),
        "missed": c.missed.load(Relaxed),
        "late": c.late.load(Relaxed),
        "outstanding": c.outstanding.load(Relaxed),
        "p50_us": hist.quantile(0.50),
        "p99_us": hist.quantile(0.99),
        "max_us": hist.max(),
        "other_messages": c.other.load(Relaxed),
        "error_kinds": f.error_kinds(),
        "stop_reason": stop_reason.unwrap_or_default(),
        "processes": 1,
    });
    if args.child {
        r["hist"] = hist.to_json();
    }
    r
}

pub fn merge(rs: &[Value]) -> Value {
    let h = report::hist(rs);
    json!({
        "mode": "heartbeat",
        "protocol": report::first(rs, "protocol"),
        "requested": report::sum(rs, "requested"),
        "connections": report::sum(rs, "connections"),
        "failed": report::sum(rs, "failed"),
        "interval_s": report::first(rs, "interval_s"),
        "duration_s": report::max_f(rs, "duration_s"),
        "sent": report::sum(rs, "sent"),
        "received": report::sum(rs, "received"),
        "missed": report::sum(rs, "missed"),
        "late": report::sum(rs, "late"),
        "outstanding": report::sum(rs, "outstanding"),
        "p50_us": h.quantile(0.50),
        "p99_us": h.quantile(0.99),
        "max_us": h.max(),
        "other_messages": report::sum(rs, "other_messages"),
        "error_kinds": report::sum_maps(rs, "error_kinds"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_numbers() {
        let ws = |raw: &'static [u8]| Msg { raw, event: None, args: raw };
        assert_eq!(echoed_seq(&ws(br#"{"echo":12}"#)), Some(12));
        assert_eq!(echoed_seq(&ws(br#"{"other":12}"#)), None);
        let sio = |event: &'static [u8], args: &'static [u8]| Msg { raw: b"", event: Some(event), args };
        assert_eq!(echoed_seq(&sio(b"echo", b"7")), Some(7));
        assert_eq!(echoed_seq(&sio(b"bcast", b"7")), None);
        assert_eq!(echoed_seq(&sio(b"echo", b"\"7\"")), None);
        let (b, a) = frame_around(&Proto::Sio { nsp: "/".into() });
        assert_eq!([b, b"3".to_vec(), a].concat(), br#"42["echo",3]"#);
        let (b, a) = frame_around(&Proto::Ws);
        assert_eq!([b, b"3".to_vec(), a].concat(), br#"{"echo":3}"#);
    }

    #[test]
    fn merges_children() {
        let mut h = Histogram::new();
        h.record(80);
        let a = json!({"sent":10,"received":9,"missed":1,"late":1,"outstanding":0,"max_us":80,
            "interval_s":16.0,"duration_s":48.0,"hist":h.to_json()});
        let b = json!({"sent":10,"received":10,"missed":0,"late":0,"outstanding":2,"max_us":90,
            "interval_s":16.0,"duration_s":48.0,"hist":h.to_json()});
        let m = merge(&[a, b]);
        assert_eq!(
            (&m["sent"], &m["received"], &m["missed"], &m["outstanding"]),
            (&json!(20), &json!(19), &json!(1), &json!(2))
        );
        assert_eq!(m["max_us"], 90);
        assert_eq!(m["interval_s"], 16.0);
    }
}
