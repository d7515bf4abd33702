//! What the server hands up that is not a connection's event: requests that
//! need a decision from above (JS `upgrade` handlers, HTTP routes), answered
//! with [`super::ServerCore::decide`], and plain-HTTP connections handed to
//! another server.

use std::net::SocketAddr;

use super::handshake::Request;

/// The server's own receiver (the N-API bridge); route handlers never get
/// these.
pub(crate) trait RequestSink: Send + Sync + 'static {
    /// A request that needs a decision from above: an upgrade on a route
    /// with an `upgrade` handler, or a plain HTTP request on an HTTP route.
    fn request(&self, _id: u64, _kind: RequestKind, _route: u16, _req: &Request, _remote: SocketAddr) {}
    /// The client went away (or the decision came too late) before the
    /// decision was used.
    fn aborted(&self, _id: u64) {}
    /// A plain-HTTP connection on a hand-off listener, untouched (its bytes
    /// were only peeked at), for someone else's HTTP server, which must have
    /// its request head `within` (what is left of the handshake deadline:
    /// slow-loris). Dropping it closes it.
    fn handoff(&self, _sock: std::net::TcpStream, _remote: SocketAddr, _within: std::time::Duration) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Upgrade,
    Http,
}

/// The answer to a [`RequestSink::request`].
pub(crate) enum Decision {
    Upgrade {
        protocol: Option<String>,
    },
    /// A complete HTTP response; the connection is closed after it.
    Respond(Vec<u8>),
}
