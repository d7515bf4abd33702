//! Hand-rolled command line parsing (keeps the build small).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub const USAGE: &str = "\
loadgen MODE [options]

Modes:
  idle     open N connections at a bounded rate and hold them idle
           (answering pings) until --hold elapses, stdin closes, or SIGTERM/SIGINT.

Options:
  --url URL             ws://HOST:PORT/path or wss://... (loopback hosts only)
  --connections N       connections to open (default 1000)
  --rate R              connection attempts per second, 0 = unbounded (default 2000)
  --concurrency C       handshakes in flight at most (default 200)
  --hold SECS           hold time after all connections are attempted (default 30)
  --ready-file PATH     write the ready line (JSON) here too
  --processes P|auto    split across P processes (default auto = ceil(N/18000))
  --source-ips LIST     bind local addresses before connect, cycling through LIST:
                        comma list of IPv4 addresses or last-octet ranges,
                        e.g. 127.0.0.2-127.0.0.20 (each adds its own ephemeral port range)
  --timeout SECS        per-connection connect+TLS+handshake limit (default 10)
  --threads T           tokio worker threads per process (default 1)
  --header 'K: V'       extra handshake request header (repeatable)
  --max-payload BYTES   largest accepted server frame (default 16777216)
  --progress            progress lines on stderr once a second
  --stdin-stop yes|no   stop when stdin reaches EOF (default: yes if stdin is a
                        pipe, socket or terminal; no for /dev/null or a file)
  --insecure            accepted for clarity; wss:// never verifies certificates
  -h, --help

Output (stdout): one ready line {\"event\":\"ready\",...} when every connection was
attempted, then one JSON report line at exit. Progress and diagnostics go to stderr.
";

#[derive(Debug, Clone)]
pub struct Args {
    pub mode: String,
    pub url: String,
    pub connections: u64,
    pub rate: f64,
    pub concurrency: usize,
    pub hold: f64,
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
            mode: String::new(),
            url: String::new(),
            connections: 1000,
            rate: 2000.0,
            concurrency: 200,
            hold: 30.0,
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
            let start: Ipv4Addr = a
                .parse()
                .map_err(|_| format!("--source-ips: bad address '{a}'"))?;
            // "127.0.0.2-127.0.0.9" or "127.0.0.2-9"
            let end_octet: u8 = match b.parse::<Ipv4Addr>() {
                Ok(e) => {
                    if e.octets()[..3] != start.octets()[..3] {
                        return Err("--source-ips: a range may only vary the last octet".into());
                    }
                    e.octets()[3]
                }
                Err(_) => b
                    .parse()
                    .map_err(|_| format!("--source-ips: bad range end '{b}'"))?,
            };
            let o = start.octets();
            if end_octet < o[3] {
                return Err(format!("--source-ips: empty range '{item}'"));
            }
            for last in o[3]..=end_octet {
                out.push(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last)));
            }
        } else {
            out.push(
                item.parse()
                    .map_err(|_| format!("--source-ips: bad address '{item}'"))?,
            );
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
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--url" => a.url = v,
            "--connections" | "-n" => a.connections = num(&flag, &v)?,
            "--rate" => a.rate = num(&flag, &v)?,
            "--concurrency" => a.concurrency = num::<usize>(&flag, &v)?.max(1),
            "--hold" => a.hold = num(&flag, &v)?,
            "--ready-file" => a.ready_file = Some(PathBuf::from(v)),
            "--processes" => {
                a.processes = if v == "auto" {
                    None
                } else {
                    Some(num::<usize>(&flag, &v)?.max(1))
                }
            }
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
        [m] => a.mode = m.clone(),
        [] => return Err("missing MODE".into()),
        _ => return Err(format!("unexpected arguments: {positional:?}")),
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
    let valid = finite_non_negative(a.hold)
        && finite_non_negative(a.rate)
        && a.timeout.is_finite()
        && a.timeout > 0.0;
    if !valid {
        return Err("--hold, --timeout and --rate must be non-negative numbers".into());
    }
    Ok(a)
}

impl Args {
    /// Processes to use: explicit, or ceil(N / 18000).
    pub fn process_count(&self) -> usize {
        match self.processes {
            Some(p) => p,
            None => self.connections.div_ceil(18_000).max(1) as usize,
        }
    }

    /// Command line for one child of a multi-process run.
    pub fn child_argv(
        &self,
        share: u64,
        rate: f64,
        concurrency: usize,
        index_base: u64,
        hold: f64,
    ) -> Vec<String> {
        let mut v = vec![
            self.mode.clone(),
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
        ];
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
        assert!(parse_source_ips("10.0.0.1").is_err());
        assert!(parse(&argv("idle --bogus 1 --url ws://x")).is_err());
    }
}
