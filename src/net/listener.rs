use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// How to open one listening socket.
#[derive(Debug, Clone)]
pub(crate) struct ListenOptions {
    pub host: String,
    pub port: u16,
    /// SO_REUSEPORT: several processes share one port (the per-process fd cap
    /// of ~20k sockets makes this the way to scale on one machine).
    pub reuse_port: bool,
    pub backlog: i32,
}

/// Binds synchronously (so `listen()` can report errors and the real port at
/// once) and returns a std listener ready to be adopted by tokio.
pub(crate) fn bind(opts: &ListenOptions) -> io::Result<std::net::TcpListener> {
    let host = if opts.host.is_empty() { "0.0.0.0" } else { opts.host.as_str() };
    // Strip brackets so "[::1]" works as well as "::1".
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr: SocketAddr = (host, opts.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "host resolved to no address"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if opts.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // An explicit IPv6 host means IPv6 only; "::" users who want both get
        // the OS default dual-stack behaviour by passing "::" explicitly.
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(host: &str) -> ListenOptions {
        ListenOptions { host: host.into(), port: 0, reuse_port: false, backlog: 128 }
    }

    #[test]
    fn port_zero_reports_the_real_port() {
        let l = bind(&opts("127.0.0.1")).unwrap();
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn ipv6_loopback_binds_with_or_without_brackets() {
        for host in ["::1", "[::1]"] {
            match bind(&opts(host)) {
                Ok(l) => assert!(l.local_addr().unwrap().is_ipv6()),
                // Some sandboxes have no IPv6 at all; that is an environment fact, not a bug.
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable, "{e}"),
            }
        }
    }

    #[test]
    fn reuse_port_lets_two_sockets_share_a_port() {
        let mut o = opts("127.0.0.1");
        o.reuse_port = true;
        let a = bind(&o).unwrap();
        o.port = a.local_addr().unwrap().port();
        let b = bind(&o).unwrap();
        assert_eq!(a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
    }

    #[test]
    fn unresolvable_host_is_an_error() {
        assert!(bind(&opts("no-such-host.invalid")).is_err());
    }
}
