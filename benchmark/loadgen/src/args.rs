//! Hand-rolled command line parsing (keeps the build small).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub const USAGE: &str = "\
loadgen MODE [options]

Modes (every run is bounded in count and time and ends by itself):
  idle       open N connections at a bounded rate and hold them idle (answering
             pings) until --hold elapses, stdin closes, or SIGTERM/SIGINT.
  connect    open N connections as fast as --concurrency (and --rate if given)
             allow; report handshake latency and connections/s; close and exit
             once all were attempted.
  echo       N connections; once all are up, each keeps one message in flight
             for --duration seconds (send, wait for the echo, send the next).
             ws: text {\"echo\":\"x...\"}; sio: 42[\"echo\",{\"echo\":\"x...\"}],
             expecting the same event back.
  receive    N connections; count incoming broadcasts, ws {\"seq\":K,...} or sio
             42[\"bcast\",{\"seq\":K,...}], per sequence number (first/last
             arrival, CLOCK_REALTIME). Ends when every connection got --expect M
             messages, --hold elapses, or stdin closes.
  heartbeat  N connections; each sends one message every --interval seconds
             (start times spread over the first interval): ws {\"echo\":<seq>},
             sio 42[\"echo\",<seq>]; the server echoes it. Runs --duration seconds.
  http       N keep-alive HTTP/1.1 connections to an http:// --url, each with
             one GET in flight for --duration seconds (responses need a
             Content-Length).

Options:
  --url URL             ws://HOST:PORT/path or wss://... (loopback hosts only); for sio
                        e.g. ws://127.0.0.1:PORT/socket.io/?EIO=4&transport=websocket
  --protocol ws|sio     plain WebSocket text frames, or Socket.IO v5 over the
                        Engine.IO v4 WebSocket transport (default ws)
  --namespace /NSP      sio namespace to join (default /)
  --connections N       connections to open (default 1000)
  --rate R              connection attempts per second, 0 = unbounded
                        (default 2000; connect mode: 0)
  --concurrency C       handshakes in flight at most (default 200)
  --hold SECS           idle, receive: time limit after all connections are
                        attempted (default 30)
  --duration SECS       echo: measured time (default 10); heartbeat: run time
                        (default 3 x --interval)
  --payload-bytes B     echo: length of the \"x...\" string (default 32)
  --interval SECS       heartbeat: seconds between one connection's messages (default 16)
  --expect M            receive: messages per connection after which it is done
  --ready-file PATH     write the ready line (JSON) here too
  --processes P|auto    split across P processes (default auto = ceil(N/18000))
  --source-ips LIST     bind local addresses before connect, cycling through LIST:
                        comma list of IPv4 addresses or last-octet ranges,
                        e.g. 127.0.0.2-127.0.0.20 (each adds its own ephemeral port range)
  --timeout SECS        per-connection connect+TLS+handshake(+sio CONNECT) limit (default 10)
  --threads T           tokio worker threads per process (default 1)
  --header 'K: V'       extra handshake request header (repeatable)
  --max-payload BYTES   largest accepted server message (default 16777216)
  --progress            progress lines on stderr once a second
  --stdin-stop yes|no   stop when stdin reaches EOF (default: yes if stdin is a
                        pipe, socket or terminal; no for /dev/null or a file)
  --insecure            accepted for clarity; wss:// never verifies certificates
  -h, --help

Output (stdout): one ready line {\"event\":\"ready\",...} when every connection was
attempted, then one JSON report line at exit. Progress and diagnostics go to stderr.
Report fields by mode (all also carry requested, failed, protocol, processes,
stop_reason; connections = connected; error_kinds = {kind: n} of connect
failures and drops):
  idle       connected, errors{kind:n}, connect_secs, p50_ms, p99_ms, dropped, ...
  connect    connected, elapsed_s, conn_per_s, p50_us, p99_us, max_us
             (TCP connect start -> established, microseconds)
  echo       connections, round_trips, duration_s, rate (round trips/s over
             duration_s), p50_us, p99_us, max_us, errors (failed + dropped +
             echo_mismatch), other_messages
  receive    connections, received, expected (connections x M), missed (short
             of M, per connection; both null without --expect), first_us,
             last_us (CLOCK_REALTIME), spread_p50_ms, spread_max_ms, seqs,
             incomplete_seqs, per_seq[{seq,count,first_us,last_us}] (lowest
             1000 seqs), other (messages without a seq)
  heartbeat  connections, sent, received, missed (no echo before the next
             send, or connection dropped), late, outstanding (unanswered at
             the end), p50_us, p99_us, max_us
  http       connections, requests, duration_s, rate (requests/s), p50_us,
             p99_us, max_us, errors
";

/// What the run does once connections are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Idle,
    Connect,
    Echo,
    Receive,
    Heartbeat,
    Http,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "idle" => Mode::Idle,
            "connect" => Mode::Connect,
            "echo" => Mode::Echo,
            "receive" => Mode::Receive,
            "heartbeat" => Mode::Heartbeat,
            "http" => Mode::Http,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::Connect => "connect",
            Mode::Echo => "echo",
            Mode::Receive => "receive",
            Mode::Heartbeat => "heartbeat",
            Mode::Http => "http",
        }
    }

    /// Modes whose measured phase starts at the same moment in every process:
    /// their children wait for a `go` line on stdin after their ready line.
    pub fn synchronized_start(self) -> bool {
        matches!(self, Mode::Echo | Mode::Heartbeat)
    }
}

#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    pub url: String,
    /// true = Socket.IO (`--protocol sio`).
    pub sio: bool,
    pub namespace: String,
    pub connections: u64,
    /// None = the mode's default (see `rate()`).
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub hold: f64,
    /// None = the mode's default (see `duration()`).
    pub duration: Option<f64>,
    pub payload_bytes: usize,
    pub interval: f64,
    pub expect: Option<u64>,
    pub ready_file: Option<PathBuf>,
    /// None = auto.
    pub processes: Option<usize>,
    pub source_ips: Vec<IpAddr>,
    pub timeout: f64,
    pub threads: usize,
    pub headers: Vec<String>,
    pub max_payload: u32,
    pub progress: bool,
    /// None = decide from what stdin is.
    pub stdin_stop: Option<bool>,
    /// Internal: run as a child of a multi-process parent.
    pub child: bool,
    /// Internal: global index of this process's first connection (source-IP cycling).
    pub index_base: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            mode: Mode::Idle,
            url: String::new(),
            sio: false,
            namespace: "/".into(),
            connections: 1000,
            rate: None,
            concurrency: 200,
            hold: 30.0,
            duration: None,
            payload_bytes: 32,
            interval: 16.0,
            expect: None,
            ready_file: None,
            processes: None,
            source_ips: Vec::new(),
            timeout: 10.0,
            threads: 1,
            headers: Vec::new(),
            max_payload: 16 << 20,
            progress: false,
            stdin_stop: None,
            child: false,
            index_base: 0,
        }
    }
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: cannot parse '{v}'"))
}

pub fn parse_source_ips(spec: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((a, b)) = item.split_once('-') {
            let start: Ipv4Addr = a.parse().map_err(|_| format!("--source-ips: bad address '{a}'"))?;
            // "127.0.0.2-127.0.0.9" or "127.0.0.2-9"
            let end_octet: u8 = match b.parse::<Ipv4Addr>() {
                Ok(e) => {
                    if e.octets()[..3] != start.octets()[..3] {
                        return Err("--source-ips: a range may only vary the last octet".into());
                    }
                    e.octets()[3]
                }
                Err(_) => b.parse().map_err(|_| format!("--source-ips: bad range end '{b}'"))?,
            };
            let o = start.octets();
            if end_octet < o[3] {
                return Err(format!("--source-ips: empty range '{item}'"));
            }
            for last in o[3]..=end_octet {
                out.push(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last)));
            }
        } else {
            out.push(item.parse().map_err(|_| format!("--source-ips: bad address '{item}'"))?);
        }
    }
    for ip in &out {
        if !ip.is_loopback() {
            return Err(format!("--source-ips: {ip} is not a loopback address"));
        }
    }
    Ok(out)
}

pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = argv.iter().peekable();
    let mut positional = Vec::new();
    while let Some(raw) = it.next() {
        if raw == "-h" || raw == "--help" {
            return Err(String::new());
        }
        if !raw.starts_with("--") {
            positional.push(raw.clone());
            continue;
        }
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (raw.clone(), None),
        };
        // Flags without a value.
        match flag.as_str() {
            "--progress" => {
                a.progress = true;
                continue;
            }
            "--insecure" => continue,
            "--child" => {
                a.child = true;
                continue;
            }
            _ => {}
        }
        let v = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--url" => a.url = v,
            "--connections" | "-n" => a.connections = num(&flag, &v)?,
            "--rate" => a.rate = Some(num(&flag, &v)?),
            "--concurrency" => a.concurrency = num::<usize>(&flag, &v)?.max(1),
            "--hold" => a.hold = num(&flag, &v)?,
            "--protocol" => {
                a.sio = match v.as_str() {
                    "ws" => false,
                    "sio" | "socket.io" => true,
                    _ => return Err("--protocol: ws or sio".into()),
                }
            }
            "--namespace" => a.namespace = v,
            "--duration" => a.duration = Some(num(&flag, &v)?),
            "--payload-bytes" => a.payload_bytes = num(&flag, &v)?,
            "--interval" => a.interval = num(&flag, &v)?,
            "--expect" => a.expect = Some(num(&flag, &v)?),
            "--ready-file" => a.ready_file = Some(PathBuf::from(v)),
            "--processes" => a.processes = if v == "auto" { None } else { Some(num::<usize>(&flag, &v)?.max(1)) },
            "--source-ips" => a.source_ips = parse_source_ips(&v)?,
            "--timeout" => a.timeout = num(&flag, &v)?,
            "--threads" => a.threads = num::<usize>(&flag, &v)?.max(1),
            "--header" => a.headers.push(v),
            "--max-payload" => a.max_payload = num(&flag, &v)?,
            "--stdin-stop" => {
                a.stdin_stop = Some(match v.as_str() {
                    "yes" | "true" | "1" => true,
                    "no" | "false" | "0" => false,
                    _ => return Err("--stdin-stop: yes or no".into()),
                })
            }
            "--index-base" => a.index_base = num(&flag, &v)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    match positional.as_slice() {
        [m] => a.mode = Mode::parse(m).ok_or_else(|| format!("unknown mode '{m}'"))?,
        [] => return Err("missing MODE".into()),
        _ => return Err(format!("unexpected arguments: {positional:?}")),
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
    let valid = finite_non_negative(a.hold)
        && a.rate.is_none_or(finite_non_negative)
        && a.duration.is_none_or(finite_non_negative)
        && a.timeout.is_finite()
        && a.timeout > 0.0
        && a.interval.is_finite()
        && a.interval > 0.0;
    if !valid {
        return Err(
            "--hold, --duration and --rate must be non-negative numbers, --timeout and --interval positive".into()
        );
    }
    if !a.namespace.starts_with('/') || a.namespace.contains([',', '"', '\\']) {
        return Err("--namespace must start with / and contain no , \" or \\".into());
    }
    if a.namespace != "/" && !a.sio {
        return Err("--namespace needs --protocol sio".into());
    }
    // The echo payload is one frame; keep it well under any server's limit.
    if a.payload_bytes > 1 << 20 {
        return Err("--payload-bytes: at most 1048576".into());
    }
    Ok(a)
}

impl Args {
    /// Connection attempts per second, 0 = unbounded. connect measures how
    /// fast the server accepts, so it is unbounded unless asked otherwise.
    pub fn rate(&self) -> f64 {
        self.rate.unwrap_or(match self.mode {
            Mode::Connect => 0.0,
            _ => 2000.0,
        })
    }

    /// Seconds of the measured phase (echo, heartbeat).
    pub fn duration(&self) -> f64 {
        self.duration.unwrap_or(match self.mode {
            // Three messages per connection.
            Mode::Heartbeat => 3.0 * self.interval,
            _ => 10.0,
        })
    }

    pub fn protocol_name(&self) -> &'static str {
        if self.sio {
            "sio"
        } else {
            "ws"
        }
    }

    /// Processes to use: explicit, or ceil(N / 18000).
    pub fn process_count(&self) -> usize {
        match self.processes {
            Some(p) => p,
            None => self.connections.div_ceil(18_000).max(1) as usize,
        }
    }

    /// Command line for one child of a multi-process run.
    pub fn child_argv(&self, share: u64, rate: f64, concurrency: usize, index_base: u64, hold: f64) -> Vec<String> {
        let mut v = vec![
            self.mode.as_str().into(),
            "--child".into(),
            "--url".into(),
            self.url.clone(),
            "--connections".into(),
            share.to_string(),
            "--rate".into(),
            rate.to_string(),
            "--concurrency".into(),
            concurrency.to_string(),
            "--hold".into(),
            hold.to_string(),
            "--processes".into(),
            "1".into(),
            "--timeout".into(),
            self.timeout.to_string(),
            "--threads".into(),
            self.threads.to_string(),
            "--max-payload".into(),
            self.max_payload.to_string(),
            "--index-base".into(),
            index_base.to_string(),
            "--stdin-stop".into(),
            "yes".into(),
            "--protocol".into(),
            self.protocol_name().into(),
            "--namespace".into(),
            self.namespace.clone(),
            "--duration".into(),
            self.duration().to_string(),
            "--payload-bytes".into(),
            self.payload_bytes.to_string(),
            "--interval".into(),
            self.interval.to_string(),
        ];
        if let Some(m) = self.expect {
            v.push("--expect".into());
            v.push(m.to_string());
        }
        if self.progress {
            v.push("--progress".into());
        }
        if !self.source_ips.is_empty() {
            let list: Vec<String> = self.source_ips.iter().map(|ip| ip.to_string()).collect();
            v.push("--source-ips".into());
            v.push(list.join(","));
        }
        for h in &self.headers {
            v.push("--header".into());
            v.push(h.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_and_round_trips_child_args() {
        let a = parse(&argv(
            "idle --url ws://127.0.0.1:9/x --connections 40000 --rate=500 --source-ips 127.0.0.2-4,127.0.0.9",
        ))
        .unwrap();
        assert_eq!(a.process_count(), 3);
        assert_eq!(a.source_ips.len(), 4);
        let c = parse(&a.child_argv(13334, 166.0, 67, 13333, 90.0)).unwrap();
        assert!(c.child);
        assert_eq!(c.connections, 13334);
        assert_eq!(c.index_base, 13333);
        assert_eq!(c.process_count(), 1);
        assert_eq!(c.source_ips, a.source_ips);
        assert_eq!(c.rate(), 166.0);
        assert!(!c.sio);
        assert!(parse_source_ips("10.0.0.1").is_err());
        assert!(parse(&argv("idle --bogus 1 --url ws://x")).is_err());
    }

    #[test]
    fn mode_options_and_defaults() {
        let a = parse(&argv("connect --url ws://127.0.0.1:9/")).unwrap();
        assert_eq!((a.mode, a.rate(), a.sio), (Mode::Connect, 0.0, false));
        let a = parse(&argv("heartbeat --url ws://127.0.0.1:9/ --interval 2")).unwrap();
        assert_eq!(a.duration(), 6.0);
        let a =
            parse(&argv("receive --url ws://127.0.0.1:9/ --protocol sio --namespace /chat --expect 5 --processes 2"))
                .unwrap();
        assert_eq!(a.mode, Mode::Receive);
        assert!(a.sio);
        let c = parse(&a.child_argv(500, 0.0, 100, 500, 40.0)).unwrap();
        assert_eq!((c.mode, c.sio, c.expect), (Mode::Receive, true, Some(5)));
        assert_eq!(c.namespace, "/chat");
        let a = parse(&argv("echo --url ws://127.0.0.1:9/ --payload-bytes 100 --duration 3")).unwrap();
        let c = parse(&a.child_argv(500, 0.0, 100, 0, 40.0)).unwrap();
        assert_eq!((c.payload_bytes, c.duration()), (100, 3.0));
        assert!(parse(&argv("bogus --url ws://x")).is_err());
        assert!(parse(&argv("echo --url ws://x --namespace /a")).is_err());
        assert!(parse(&argv("echo --url ws://x --protocol sio --namespace a")).is_err());
        assert!(parse(&argv("echo --url ws://x --protocol foo")).is_err());
        assert!(parse(&argv("heartbeat --url ws://x --interval 0")).is_err());
    }
}
