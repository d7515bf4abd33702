//! loadgen: WebSocket load generator for the ferrosocket benchmarks.
//!
//! Loopback only. Every run is bounded: a finite number of connections,
//! per-connection timeouts, and a hold time after which it exits by itself.
//!
//! Layers, bottom up (each depends only on the ones above it in this list):
//!   args.rs      command line (hand-rolled), per-mode defaults, child argv
//!   ws.rs        RFC 6455 client framing + handshake helpers (pure, unit-tested)
//!   sio.rs       Engine.IO v4 / Socket.IO v5 packets, seq scanning (pure, unit-tested)
//!   client.rs    one WebSocket connection: connect/TLS/handshake, read pump
//!                (pings, close, fragments joined)
//!   conn.rs      one application connection: `--protocol ws|sio` (namespace
//!                CONNECT, Engine.IO heartbeat), whole messages to the modes
//!   hist.rs, report.rs  latency histogram; report merging helpers
//!   control.rs   target resolution, stop/go signals, output
//!   fleet.rs     N connections at bounded rate/concurrency, ready line,
//!                bounded shutdown; modes plug in a `Session`
//!   idle.rs connect.rs echo.rs receive.rs heartbeat.rs http.rs   the modes
//!   multi.rs     fan-out over several processes and report merging
//!
//! Ports: with one destination the kernel hands out at most one ephemeral
//! port per connection from net.ipv4.ip_local_port_range (~28k here).
//! `--source-ips 127.0.0.2-127.0.0.9` binds each socket to a different
//! loopback source address (all of 127.0.0.0/8 is local on Linux), and each
//! source address has its own port range, so N can exceed that limit.

/// eprintln! may split a line into several write(2) calls, which interleave
/// with other processes sharing the stream (children, servers); this
/// formats first and writes the line at once.
macro_rules! elog {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let line = format!("{}\n", format_args!($($t)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

mod args;
mod client;
mod conn;
mod connect;
mod control;
mod echo;
mod fleet;
mod heartbeat;
mod hist;
mod http;
mod idle;
mod multi;
mod receive;
mod report;
mod sio;
mod ws;

use args::Mode;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{}", args::USAGE);
            return;
        }
        Err(e) => {
            elog!("loadgen: {e}\n\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .expect("tokio runtime");
    let code = rt.block_on(run(args));
    // Exit without waiting for the stdin watcher thread or lingering tasks.
    std::process::exit(code);
}

async fn run(args: args::Args) -> i32 {
    let sig = control::signals(control::stdin_is_control(&args));
    let report = if !args.child && args.process_count() > 1 {
        // Validate the URL once here so a typo fails fast, not P times.
        if let Err(e) = control::resolve_target(&args).await {
            elog!("loadgen: {e}");
            return 2;
        }
        multi::run_parent(args, sig).await
    } else {
        let target = match control::resolve_target(&args).await {
            Ok(t) => t,
            Err(e) => {
                elog!("loadgen: {e}");
                return 2;
            }
        };
        match args.mode {
            Mode::Idle => idle::run(&args, target, sig).await,
            Mode::Connect => connect::run(&args, target, sig).await,
            Mode::Echo => echo::run(&args, target, sig).await,
            Mode::Receive => receive::run(&args, target, sig).await,
            Mode::Heartbeat => heartbeat::run(&args, target, sig).await,
            Mode::Http => http::run(&args, target, sig).await,
        }
    };
    control::emit(&report);
    0
}
