//! Run control shared by all modes: target resolution (loopback only),
//! stop signals (SIGTERM, SIGINT, stdin EOF), the `go` line a multi-process
//! parent sends its children, and stdout/ready-file output.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use tokio::sync::watch;

use crate::args::Args;
use crate::client::{self, Proto, Target};

/// Parse ws:// / wss:// URLs and resolve the host. Only loopback targets are
/// allowed: this tool exists to load servers on this machine.
pub async fn resolve_target(args: &Args) -> Result<Target, String> {
    let url = args.url.as_str();
    let (tls, rest) = if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("http://").filter(|_| args.mode == crate::args::Mode::Http) {
        (false, r)
    } else if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else {
        return Err(format!("--url must start with ws:// or wss://, got '{url}'"));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..split];
    let path = match &rest[split..] {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, after) = h.split_once(']').ok_or("bad IPv6 literal in --url")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port in --url")?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| "bad port in --url")?),
            None => (authority.to_string(), default_port),
        }
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host} resolved to nothing"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("refusing non-loopback target {addr}: loadgen only loads local servers"));
    }
    let tls = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("bad TLS server name {host}: {e}"))?;
        Some((client::insecure_tls_connector()?, name))
    } else {
        None
    };
    Ok(Target {
        addr,
        host_header: authority.to_string(),
        path,
        tls,
        extra_headers: args.headers.clone(),
        max_payload: args.max_payload,
        proto: if args.sio { Proto::Sio { nsp: args.namespace.clone() } } else { Proto::Ws },
    })
}

/// Should stdin EOF stop the run? Yes for pipes, sockets and terminals;
/// no for /dev/null or regular files (they are at EOF from the start).
pub fn stdin_is_control(args: &Args) -> bool {
    if let Some(v) = args.stdin_stop {
        return v;
    }
    if std::io::stdin().is_terminal() {
        return true;
    }
    match std::fs::metadata("/proc/self/fd/0") {
        Ok(m) => m.file_type().is_fifo() || m.file_type().is_socket(),
        Err(_) => false,
    }
}

/// Stop requests and the start signal.
pub struct Signals {
    /// Turns Some(reason) once.
    pub stop: watch::Receiver<Option<String>>,
    /// Turns true when a line `go` arrives on stdin (only watched with stdin).
    pub go: watch::Receiver<bool>,
}

/// Watch for stop requests (and `go` lines when stdin is watched).
pub fn signals(watch_stdin: bool) -> Signals {
    let (tx, rx) = watch::channel(None::<String>);
    let (go_tx, go_rx) = watch::channel(false);
    let tx = std::sync::Arc::new(tx);
    for (kind, name) in [
        (tokio::signal::unix::SignalKind::terminate(), "sigterm"),
        (tokio::signal::unix::SignalKind::interrupt(), "sigint"),
    ] {
        let tx = tx.clone();
        match tokio::signal::unix::signal(kind) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    if s.recv().await.is_some() {
                        tx.send_if_modified(|v| {
                            v.is_none() && {
                                *v = Some(name.into());
                                true
                            }
                        });
                    }
                });
            }
            Err(e) => elog!("loadgen: cannot watch {name}: {e}"),
        }
    }
    if watch_stdin {
        // A plain thread: a blocking stdin read must not hold up runtime shutdown
        // (the process exits with std::process::exit).
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut stdin = std::io::stdin().lock();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.trim() == "go" => {
                        go_tx.send_replace(true);
                    }
                    Ok(_) => {}
                }
            }
            tx.send_if_modified(|v| {
                v.is_none() && {
                    *v = Some("stdin_eof".into());
                    true
                }
            });
        });
    }
    Signals { stop: rx, go: go_rx }
}

/// Wait for a stop request; its reason.
pub async fn stopped(stop: &mut watch::Receiver<Option<String>>) -> String {
    match stop.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone().unwrap_or_default(),
        // No sender left: nothing can ask for a stop any more, and every
        // mode ends by itself.
        Err(_) => std::future::pending().await,
    }
}

/// Print one JSON line on stdout (flushed).
pub fn emit(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Write the ready line to a file atomically (write + rename).
pub fn write_ready_file(path: &Path, v: &serde_json::Value) {
    let tmp = path.with_extension("tmp-loadgen");
    let res = std::fs::write(&tmp, format!("{v}\n")).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        elog!("loadgen: cannot write ready file {}: {e}", path.display());
    }
}
