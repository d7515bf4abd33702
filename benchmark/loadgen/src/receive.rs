//! `receive` mode: N connections count incoming broadcasts. Each broadcast
//! carries a sequence number (`{"seq":K,...}`, or `42["bcast",{"seq":K,...}]`
//! over Socket.IO); per sequence number the process keeps how many
//! connections got it and the first and last arrival (CLOCK_REALTIME, so the
//! tables of several processes merge). Spread = last - first arrival of one
//! sequence number: how long one broadcast took to reach everybody.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::args::Args;
use crate::client::{Proto, Target};
use crate::conn::{Conn, Msg};
use crate::control::{self, Signals};
use crate::fleet::{self, realtime_us, Session};
use crate::report;
use crate::sio;

/// Distinct sequence numbers tracked per process; later ones are still
/// counted as received (memory stays bounded for endless tickers).
pub const SEQ_CAP: usize = 100_000;
/// per_seq entries in a report (the lowest sequence numbers).
pub const PER_SEQ_REPORTED: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agg {
    pub count: u64,
    pub first_us: u64,
    pub last_us: u64,
}

#[derive(Debug, Default)]
pub struct SeqTable {
    map: HashMap<u64, Agg>,
    /// Messages with a sequence number beyond SEQ_CAP distinct ones.
    pub untracked: u64,
}

impl SeqTable {
    pub fn record(&mut self, seq: u64, t_us: u64) {
        self.add(seq, Agg { count: 1, first_us: t_us, last_us: t_us });
    }

    fn add(&mut self, seq: u64, a: Agg) {
        if let Some(cur) = self.map.get_mut(&seq) {
            cur.count += a.count;
            cur.first_us = cur.first_us.min(a.first_us);
            cur.last_us = cur.last_us.max(a.last_us);
        } else if self.map.len() < SEQ_CAP {
            self.map.insert(seq, a);
        } else {
            self.untracked += a.count;
        }
    }

    fn sorted(&self) -> Vec<(u64, Agg)> {
        let mut v: Vec<(u64, Agg)> = self.map.iter().map(|(s, a)| (*s, *a)).collect();
        v.sort_unstable_by_key(|(s, _)| *s);
        v
    }

    /// Compact form for a child's report: [[seq, count, first_us, last_us], ...].
    pub fn rows(&self) -> Value {
        Value::Array(self.sorted().into_iter().map(|(s, a)| json!([s, a.count, a.first_us, a.last_us])).collect())
    }

    pub fn merge_rows(&mut self, rows: &Value) {
        for r in rows.as_array().into_iter().flatten() {
            let f = |i: usize| r.get(i).and_then(Value::as_u64);
            if let (Some(seq), Some(count), Some(first_us), Some(last_us)) = (f(0), f(1), f(2), f(3)) {
                self.add(seq, Agg { count, first_us, last_us });
            }
        }
    }

    /// The report fields derived from the table; `connections` is how many
    /// connections should have received every sequence number.
    pub fn summary(&self, connections: u64) -> Value {
        let all = self.sorted();
        let mut spreads: Vec<u64> = all.iter().map(|(_, a)| a.last_us - a.first_us).collect();
        spreads.sort_unstable();
        let spread_ms = |q: f64| -> f64 {
            if spreads.is_empty() {
                return 0.0;
            }
            let rank = ((q * spreads.len() as f64).ceil() as usize).clamp(1, spreads.len());
            spreads[rank - 1] as f64 / 1000.0
        };
        let per_seq: Vec<Value> = all
            .iter()
            .take(PER_SEQ_REPORTED)
            .map(|(s, a)| json!({"seq": s, "count": a.count, "first_us": a.first_us, "last_us": a.last_us}))
            .collect();
        json!({
            "first_us": all.iter().map(|(_, a)| a.first_us).min(),
            "last_us": all.iter().map(|(_, a)| a.last_us).max(),
            "spread_p50_ms": spread_ms(0.5),
            "spread_max_ms": spread_ms(1.0),
            "seqs": all.len(),
            "incomplete_seqs": all.iter().filter(|(_, a)| a.count < connections).count(),
            "per_seq_truncated": all.len() > PER_SEQ_REPORTED,
            "per_seq": per_seq,
        })
    }
}

pub struct ReceiveSession {
    expect: Option<u64>,
    table: Mutex<SeqTable>,
    received: AtomicU64,
    other: AtomicU64,
    /// Messages short of --expect, summed per connection as connections end.
    missed: AtomicU64,
    /// Connections that got --expect messages or ended.
    finished: AtomicU64,
    changed: Notify,
}

impl ReceiveSession {
    fn finish(&self) {
        self.finished.fetch_add(1, Relaxed);
        self.changed.notify_one();
    }
}

impl Session for ReceiveSession {
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
            let mut mine = 0u64;
            let mut done = false;
            let end = loop {
                let mut got = 0u64;
                let mut other = 0u64;
                // One clock read per read(2): messages decoded from the same
                // read arrived together.
                let mut now = 0u64;
                let mut on = |m: &Msg<'_>| match sio::scan_seq(m.raw) {
                    Some(seq) => {
                        if now == 0 {
                            now = realtime_us();
                        }
                        self.table.lock().unwrap().record(seq, now);
                        got += 1;
                    }
                    None => other += 1,
                };
                let r = tokio::select! {
                    biased;
                    _ = shut.changed() => break Ok(()),
                    r = conn.pump(proto, &mut on) => r,
                };
                if got > 0 {
                    mine += got;
                    self.received.fetch_add(got, Relaxed);
                }
                if other > 0 {
                    self.other.fetch_add(other, Relaxed);
                }
                if let Err(e) = r {
                    break Err(e);
                }
                if !done && self.expect.is_some_and(|m| mine >= m) {
                    done = true;
                    self.finish();
                }
            };
            if let Some(m) = self.expect {
                self.missed.fetch_add(m.saturating_sub(mine), Relaxed);
            }
            if !done {
                self.finish();
            }
            end
        }
    }
}

pub async fn run(args: &Args, target: Target, mut sig: Signals) -> Value {
    let session = Arc::new(ReceiveSession {
        expect: args.expect,
        table: Default::default(),
        received: AtomicU64::new(0),
        other: AtomicU64::new(0),
        missed: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        changed: Notify::new(),
    });
    let run = fleet::start(args, target, session.clone(), &mut sig.stop).await;
    let f = run.fleet.clone();
    let stop_reason = match run.stop_reason.clone() {
        Some(r) => r,
        None => {
            let s2 = session.clone();
            let _ticker = fleet::ticker(args.progress, move || format!("received={}", s2.received.load(Relaxed)));
            let hold = tokio::time::sleep(Duration::from_secs_f64(args.hold));
            tokio::pin!(hold);
            loop {
                // Connections are all attempted: `connected` no longer grows.
                if args.expect.is_some() && session.finished.load(Relaxed) >= f.connected.load(Relaxed) {
                    break "expect_met".to_string();
                }
                tokio::select! {
                    _ = &mut hold => break "hold_elapsed".into(),
                    r = control::stopped(&mut sig.stop) => break r,
                    _ = session.changed.notified() => {}
                }
            }
        }
    };
    run.shutdown().await;

    let connections = f.connected.load(Relaxed);
    let received = session.received.load(Relaxed);
    let table = session.table.lock().unwrap();
    let mut r = json!({
        "mode": "receive",
        "protocol": args.protocol_name(),
        "requested": f.requested,
        "connections": connections,
        "failed": f.failed.load(Relaxed),
        "received": received,
        "expected": args.expect.map(|m| m * connections),
        "missed": args.expect.map(|_| session.missed.load(Relaxed)),
    });
    if args.child {
        r["seq_table"] = table.rows();
    } else {
        extend(&mut r, table.summary(connections));
    }
    extend(
        &mut r,
        json!({
            "untracked": table.untracked,
            "other": session.other.load(Relaxed),
            "error_kinds": f.error_kinds(),
            "stop_reason": stop_reason,
            "processes": 1,
        }),
    );
    r
}

fn extend(r: &mut Value, more: Value) {
    if let (Some(o), Value::Object(m)) = (r.as_object_mut(), more) {
        o.extend(m);
    }
}

/// Children's tables merge per sequence number before spreads are computed.
pub fn merge(rs: &[Value]) -> Value {
    let mut table = SeqTable::default();
    for r in rs {
        table.merge_rows(&r["seq_table"]);
    }
    let connections = report::sum(rs, "connections");
    let with_expect = rs.iter().any(|r| !r["expected"].is_null());
    let mut m = json!({
        "mode": "receive",
        "protocol": report::first(rs, "protocol"),
        "requested": report::sum(rs, "requested"),
        "connections": connections,
        "failed": report::sum(rs, "failed"),
        "received": report::sum(rs, "received"),
        "expected": with_expect.then(|| report::sum(rs, "expected")),
        "missed": with_expect.then(|| report::sum(rs, "missed")),
    });
    extend(&mut m, table.summary(connections));
    extend(
        &mut m,
        json!({
            "untracked": report::sum(rs, "untracked") + table.untracked,
            "other": report::sum(rs, "other"),
            "error_kinds": report::sum_maps(rs, "error_kinds"),
        }),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aggregates_and_spreads() {
        let mut t = SeqTable::default();
        t.record(2, 1_000_000);
        t.record(1, 1_000_100);
        t.record(1, 1_004_100);
        t.record(2, 1_000_500);
        t.record(3, 1_002_000);
        let s = t.summary(2);
        assert_eq!(s["seqs"], 3);
        assert_eq!(s["first_us"], 1_000_000);
        assert_eq!(s["last_us"], 1_004_100);
        // spreads: seq1 4.0 ms, seq2 0.5 ms, seq3 0 ms
        assert_eq!(s["spread_p50_ms"], 0.5);
        assert_eq!(s["spread_max_ms"], 4.0);
        assert_eq!(s["incomplete_seqs"], 1);
        assert_eq!(s["per_seq"][0], json!({"seq":1,"count":2,"first_us":1_000_100,"last_us":1_004_100}));
        assert_eq!(s["per_seq_truncated"], false);

        let empty = SeqTable::default().summary(5);
        assert_eq!(empty["first_us"], Value::Null);
        assert_eq!(empty["spread_max_ms"], 0.0);
    }

    #[test]
    fn per_seq_is_capped_and_table_bounded() {
        let mut t = SeqTable::default();
        for s in 0..(PER_SEQ_REPORTED as u64 + 5) {
            t.record(s, 10);
        }
        let s = t.summary(1);
        assert_eq!(s["per_seq"].as_array().unwrap().len(), PER_SEQ_REPORTED);
        assert_eq!(s["per_seq_truncated"], true);
        assert_eq!(s["seqs"], PER_SEQ_REPORTED + 5);
        let mut t = SeqTable::default();
        for s in 0..(SEQ_CAP as u64 + 3) {
            t.record(s, 1);
        }
        t.record(0, 1);
        assert_eq!(t.untracked, 3);
        assert_eq!(t.map[&0].count, 2);
    }

    #[test]
    fn merges_children_tables() {
        let mut a = SeqTable::default();
        a.record(1, 100);
        a.record(2, 200);
        let mut b = SeqTable::default();
        b.record(1, 50);
        b.record(1, 400);
        let ra = json!({"protocol":"ws","connections":1,"received":2,"expected":4,"missed":2,
            "seq_table":a.rows(),"other":1,"error_kinds":{}});
        let rb = json!({"protocol":"ws","connections":2,"received":2,"expected":8,"missed":6,
            "seq_table":b.rows(),"other":0,"error_kinds":{"eof":1}});
        let m = merge(&[ra, rb]);
        assert_eq!(m["connections"], 3);
        assert_eq!(m["received"], 4);
        assert_eq!(m["expected"], 12);
        assert_eq!(m["missed"], 8);
        assert_eq!(m["seqs"], 2);
        assert_eq!(m["first_us"], 50);
        assert_eq!(m["last_us"], 400);
        assert_eq!(m["per_seq"][0], json!({"seq":1,"count":3,"first_us":50,"last_us":400}));
        assert_eq!(m["spread_max_ms"], 0.35);
        assert_eq!(m["incomplete_seqs"], 1);
        assert_eq!(m["error_kinds"]["eof"], 1);
        assert!(m.get("seq_table").is_none());
        // Without --expect both stay null.
        let m = merge(&[json!({"connections":1,"received":0,"expected":null,"missed":null})]);
        assert!(m["expected"].is_null() && m["missed"].is_null());
    }
}
