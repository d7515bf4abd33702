//! Fan a run out over several processes. One process holds at most ~19.5k
//! sockets here (open-file limit 20000), so past ~18k connections the parent
//! re-executes itself as P children, each with its share of connections,
//! rate and handshake concurrency, and aggregates their JSON.
//!
//! Protocol with a child: the child's stdin is a pipe owned by the parent;
//! closing it tells the child to stop (and a dying parent stops its children
//! the same way). The child prints its ready line and, at exit, its report
//! (with a sparse latency histogram "hist", or receive's per-seq table, so
//! percentiles and spreads can be merged). In echo and heartbeat, children
//! wait after their ready line until the parent writes `go` to every one,
//! so all of them measure the same window.
//!
//! When the run ends: idle holds for --hold; connect, echo and heartbeat
//! children end by themselves; receive children end by themselves (--expect)
//! or at --hold. A stop request (signal, stdin EOF) ends any of them early.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::args::{Args, Mode};
use crate::control::{self, Signals};
use crate::fleet::round3;
use crate::hist::Histogram;
use crate::{connect, echo, heartbeat, http, receive};

struct ChildRun {
    share: u64,
    stdin: Option<tokio::process::ChildStdin>,
    child: tokio::process::Child,
    /// Resolves to the child's final report line, if it printed one.
    report: tokio::task::JoinHandle<Option<Value>>,
}

pub async fn run_parent(args: Args, mut sig: Signals) -> Value {
    let stop = &mut sig.stop;
    let p = args.process_count();
    let n = args.connections;
    let exe = std::env::current_exe().expect("current_exe");
    let conc = args.concurrency.div_ceil(p).max(1);
    let rate = if args.rate() > 0.0 { args.rate() / p as f64 } else { 0.0 };
    let start = Instant::now();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<(usize, Option<Value>)>();
    // One message per child when its stdout ends (it exited or is about to).
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<()>();

    let mut children = Vec::with_capacity(p);
    let mut base = 0u64;
    for i in 0..p {
        let share = n / p as u64 + u64::from((i as u64) < n % p as u64);
        // The child's own hold is only a safety net (the parent closes its
        // stdin when the run ends): our hold plus the worst-case connect phase.
        let connect_bound = if rate > 0.0 { share as f64 / rate } else { 0.0 } + args.timeout + 30.0;
        let argv = args.child_argv(share, rate, conc, base, args.hold + connect_bound);
        base += share;
        let mut cmd = Command::new(&exe);
        cmd.args(&argv).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                elog!("loadgen: cannot start child {i}: {e}");
                let _ = ready_tx.send((i, None));
                let _ = exit_tx.send(());
                continue;
            }
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = ready_tx.clone();
        let exited = exit_tx.clone();
        let report = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent_ready = false;
            let mut last = None;
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v.get("event").and_then(Value::as_str) == Some("ready") {
                    if !sent_ready {
                        sent_ready = true;
                        let _ = tx.send((i, Some(v)));
                    }
                } else {
                    last = Some(v);
                }
            }
            if !sent_ready {
                let _ = tx.send((i, None));
            }
            let _ = exited.send(());
            last
        });
        children.push(ChildRun { share, stdin, child, report });
    }
    drop(ready_tx);
    drop(exit_tx);

    // Phase 1: wait for every child's ready line (or its exit).
    let mut readies: Vec<Value> = Vec::new();
    let mut answered = 0;
    let mut stop_reason: Option<String> = None;
    while answered < p {
        tokio::select! {
            m = ready_rx.recv() => match m {
                Some((_, v)) => { answered += 1; readies.extend(v); }
                None => break,
            },
            r = control::stopped(stop) => {
                stop_reason = Some(r);
                break;
            }
        }
    }
    let connect_secs = start.elapsed().as_secs_f64();
    if stop_reason.is_none() {
        let sum = |k: &str| readies.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
        let ready = json!({
            "event": "ready",
            "mode": args.mode.as_str(),
            "protocol": args.protocol_name(),
            "requested": n,
            "connected": sum("connected"),
            "failed": n - sum("connected"),
            "connect_secs": round3(connect_secs),
            "pid": std::process::id(),
            "processes": p,
            "child_pids": readies.iter().map(|r| r["pid"].clone()).collect::<Vec<_>>(),
        });
        control::emit(&ready);
        if let Some(path) = &args.ready_file {
            control::write_ready_file(path, &ready);
        }
        if args.mode.synchronized_start() {
            for c in children.iter_mut() {
                if let Some(stdin) = c.stdin.as_mut() {
                    let _ = stdin.write_all(b"go\n").await;
                    let _ = stdin.flush().await;
                }
            }
        }
        // Phase 2: run.
        let all_exited = async {
            let mut exited = 0;
            while exited < p && exit_rx.recv().await.is_some() {
                exited += 1;
            }
        };
        stop_reason = Some(match args.mode {
            Mode::Idle => tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(args.hold)) => "hold_elapsed".into(),
                r = control::stopped(stop) => r,
            },
            mode => {
                // Children end by themselves; the bound is a safety net.
                let bound = match mode {
                    Mode::Receive => args.hold,
                    Mode::Echo | Mode::Heartbeat => args.duration() + 30.0,
                    _ => 30.0,
                };
                tokio::select! {
                    _ = all_exited => "children_done".into(),
                    _ = tokio::time::sleep(Duration::from_secs_f64(bound)) => "hold_elapsed".into(),
                    r = control::stopped(stop) => r,
                }
            }
        });
    }

    // Phase 3: stop children (close their stdin) and collect their reports.
    for c in children.iter_mut() {
        c.stdin.take();
    }
    let mut reports = Vec::new();
    let mut missing = 0u64;
    for mut c in children {
        let r = tokio::time::timeout(Duration::from_secs(30), &mut c.report).await;
        match r {
            Ok(Ok(Some(v))) => reports.push(v),
            _ => {
                missing += c.share;
                elog!("loadgen: child {:?} gave no report", c.child.id());
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), c.child.wait()).await;
        // kill_on_drop ends a child that is still running when `c` drops here.
    }
    let missing_children = (p - reports.len()) as u64;
    let mut stop_reason = stop_reason.unwrap_or_default();
    if stop_reason == "children_done" {
        // Why the children ended (e.g. expect_met, duration_elapsed).
        if let Some(r) = reports.iter().find_map(|r| r["stop_reason"].as_str()) {
            stop_reason = r.to_string();
        }
    }
    if args.mode != Mode::Idle {
        return finish(&args, mode_merge(args.mode, &reports), missing, missing_children, stop_reason);
    }
    let mut merged = merge_reports(&reports);
    merged["mode"] = json!(args.mode.as_str());
    merged["requested"] = json!(n);
    merged["processes"] = json!(p);
    merged["stop_reason"] = json!(stop_reason);
    if missing > 0 {
        let failed = merged["failed"].as_u64().unwrap_or(0) + missing;
        merged["failed"] = json!(failed);
        if !merged["errors"].is_object() {
            merged["errors"] = json!({});
        }
        merged["errors"]["child_failed"] = json!(missing);
        merged["missing_children"] = json!(missing_children);
    }
    // Same key order as a single-process report.
    let mut ordered = Map::new();
    let obj = merged.as_object_mut().expect("object");
    for k in ["mode", "requested", "connected", "failed", "not_attempted", "errors", "connect_secs", "p50_ms", "p99_ms"]
    {
        if let Some(v) = obj.remove(k) {
            ordered.insert(k.to_string(), v);
        }
    }
    ordered.extend(std::mem::take(obj));
    Value::Object(ordered)
}

fn mode_merge(mode: Mode, reports: &[Value]) -> Value {
    match mode {
        Mode::Idle => merge_reports(reports),
        Mode::Connect => connect::merge(reports),
        Mode::Echo => echo::merge(reports),
        Mode::Receive => receive::merge(reports),
        Mode::Heartbeat => heartbeat::merge(reports),
        Mode::Http => http::merge(reports),
    }
}

/// The parent's own fields on a merged (non-idle) report. Connections of a
/// child that gave no report count as failed (error kind child_failed).
fn finish(args: &Args, mut merged: Value, missing: u64, missing_children: u64, stop_reason: String) -> Value {
    merged["mode"] = json!(args.mode.as_str());
    merged["protocol"] = json!(args.protocol_name());
    merged["requested"] = json!(args.connections);
    if missing > 0 {
        merged["failed"] = json!(merged["failed"].as_u64().unwrap_or(0) + missing);
        if !merged["error_kinds"].is_object() {
            merged["error_kinds"] = json!({});
        }
        merged["error_kinds"]["child_failed"] = json!(missing);
        merged["missing_children"] = json!(missing_children);
    }
    merged["stop_reason"] = json!(stop_reason);
    merged["processes"] = json!(args.process_count());
    merged
}

/// Merge child reports: counters add up, `*_secs` take the maximum, maps of
/// counters add up per key, histograms merge and percentiles are recomputed,
/// anything else keeps the first value.
pub fn merge_reports(reports: &[Value]) -> Value {
    let mut out = Map::new();
    let mut hist = Histogram::new();
    for r in reports {
        let Some(obj) = r.as_object() else { continue };
        for (k, v) in obj {
            if k == "hist" {
                hist.merge_json(v);
                continue;
            }
            if k.ends_with("_ms") || k == "processes" || k == "pid" {
                continue;
            }
            match (out.get_mut(k), v) {
                (None, v) => {
                    out.insert(k.clone(), v.clone());
                }
                (Some(cur), Value::Number(x)) if k.ends_with("_secs") && x.as_f64() > cur.as_f64() => {
                    *cur = v.clone();
                }
                (Some(_), Value::Number(_)) if k.ends_with("_secs") => {}
                (Some(cur), Value::Number(x)) => *cur = add(cur, x),
                (Some(Value::Object(cur)), Value::Object(m)) => {
                    for (mk, mv) in m {
                        match (cur.get_mut(mk), mv) {
                            (Some(c), Value::Number(x)) => *c = add(c, x),
                            (None, mv) => {
                                cur.insert(mk.clone(), mv.clone());
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out.insert("p50_ms".into(), json!(hist.quantile_ms(0.50)));
    out.insert("p99_ms".into(), json!(hist.quantile_ms(0.99)));
    Value::Object(out)
}

fn add(cur: &Value, x: &serde_json::Number) -> Value {
    match (cur.as_u64(), x.as_u64()) {
        (Some(a), Some(b)) => json!(a + b),
        _ => json!(cur.as_f64().unwrap_or(0.0) + x.as_f64().unwrap_or(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_counters_maps_and_histograms() {
        let mut h1 = Histogram::new();
        h1.record(1000);
        let mut h2 = Histogram::new();
        h2.record(3000);
        h2.record(3000);
        let a = json!({"mode":"idle","connected":10,"errors":{"refused":1},"connect_secs":1.5,"hist":h1.to_json(),"p50_ms":1.0});
        let b = json!({"mode":"idle","connected":5,"errors":{"refused":2,"reset":1},"connect_secs":2.5,"hist":h2.to_json()});
        let m = merge_reports(&[a, b]);
        assert_eq!(m["connected"], 15);
        assert_eq!(m["errors"]["refused"], 3);
        assert_eq!(m["errors"]["reset"], 1);
        assert_eq!(m["connect_secs"], 2.5);
        assert_eq!(m["mode"], "idle");
        assert!((m["p50_ms"].as_f64().unwrap() - 3.0).abs() < 0.1);
        assert!(m.get("hist").is_none());
    }
}
