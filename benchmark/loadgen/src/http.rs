//! `http` mode: N keep-alive HTTP/1.1 connections, each with one GET in
//! flight at a time for --duration seconds (send, read the whole response,
//! send the next), against an `http://` URL. Reports requests/s and the
//! latency of each request. Responses must carry a Content-Length (chunked
//! and close-delimited ones count as errors): the benchmark's routes answer
//! small JSON.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::args::Args;
use crate::client::Target;
use crate::control::Signals;
use crate::fleet::round3;
use crate::hist::Histogram;
use crate::report;

#[derive(Default)]
struct Stats {
    hist: Histogram,
    errors: u64,
    kinds: std::collections::BTreeMap<String, u64>,
    connected: u64,
}

impl Stats {
    fn error(&mut self, kind: &str) {
        self.errors += 1;
        *self.kinds.entry(kind.to_string()).or_default() += 1;
    }
}

/// Complete response length at the start of `buf` (head + Content-Length
/// body), Ok(None) while incomplete.
fn response_len(buf: &[u8]) -> Result<Option<(u16, usize)>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("bad_response"),
    };
    let length = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .ok_or("no_content_length")?;
    let total = head + length;
    Ok((buf.len() >= total).then_some((res.code.unwrap_or(0), total)))
}

async fn one_connection(target: Arc<Target>, request: Arc<[u8]>, end: Instant, stats: Arc<Mutex<Stats>>) {
    let connect = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(target.addr)).await;
    let Ok(Ok(mut sock)) = connect else {
        stats.lock().unwrap().error("connect");
        return;
    };
    let _ = sock.set_nodelay(true);
    stats.lock().unwrap().connected += 1;
    let mut buf = Vec::with_capacity(4096);
    let mut local = Histogram::new();
    while Instant::now() < end {
        let t0 = Instant::now();
        if sock.write_all(&request).await.is_err() {
            stats.lock().unwrap().error("write");
            break;
        }
        let done = loop {
            match response_len(&buf) {
                Ok(Some((status, n))) => {
                    buf.drain(..n);
                    break if status == 200 { Ok(()) } else { Err("status") };
                }
                Ok(None) => {}
                Err(kind) => break Err(kind),
            }
            match tokio::time::timeout(Duration::from_secs(10), sock.read_buf(&mut buf)).await {
                Ok(Ok(0)) => break Err("closed"),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break Err("read"),
                Err(_) => break Err("timeout"),
            }
        };
        match done {
            Ok(()) => local.record(t0.elapsed().as_micros() as u64),
            Err(kind) => {
                stats.lock().unwrap().error(kind);
                break;
            }
        }
    }
    let mut s = stats.lock().unwrap();
    s.hist.merge_json(&local.to_json());
}

pub async fn run(args: &Args, target: crate::client::Target, _sig: Signals) -> Value {
    let request: Arc<[u8]> =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", target.path, target.host_header).into_bytes().into();
    let target = Arc::new(target);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let duration = args.duration();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(duration);
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(one_connection(target.clone(), request.clone(), end, stats.clone())))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let s = stats.lock().unwrap();
    let requests = s.hist.count();
    json!({
        "mode": "http",
        "protocol": "http",
        "requested": args.connections,
        "connections": s.connected,
        "failed": args.connections - s.connected,
        "requests": requests,
        "duration_s": round3(elapsed),
        "rate": report::per_sec(requests, elapsed),
        "p50_us": s.hist.quantile(0.50),
        "p99_us": s.hist.quantile(0.99),
        "max_us": s.hist.max(),
        "errors": s.errors,
        "error_kinds": s.kinds,
        "stop_reason": "duration_elapsed",
        "processes": 1,
    })
}

/// Children ran side by side: counts and rates add up; latency quantiles
/// are the worst child's (no histogram is carried).
pub fn merge(rs: &[Value]) -> Value {
    let f = |k: &str| rs.iter().filter_map(|r| r[k].as_f64()).collect::<Vec<_>>();
    json!({
        "mode": "http",
        "protocol": "http",
        "requested": report::sum(rs, "requested"),
        "connections": report::sum(rs, "connections"),
        "failed": report::sum(rs, "failed"),
        "requests": report::sum(rs, "requests"),
        "duration_s": report::max_f(rs, "duration_s"),
        "rate": f("rate").iter().sum::<f64>(),
        "p50_us": report::max_f(rs, "p50_us"),
        "p99_us": report::max_f(rs, "p99_us"),
        "max_us": report::max_f(rs, "max_us"),
        "errors": report::sum(rs, "errors"),
        "error_kinds": report::sum_maps(rs, "error_kinds"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_framed_by_content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200";
        assert_eq!(response_len(r), Ok(Some((200, 43))));
        assert_eq!(response_len(&r[..40]), Ok(None));
        assert_eq!(response_len(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), Err("no_content_length"));
        assert_eq!(response_len(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), Ok(Some((404, 45))));
    }
}
