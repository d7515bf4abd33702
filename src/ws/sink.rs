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
    /// `params`: the path's values under the route's `:param`s.
    fn request(
        &self,
        _id: u64,
        _kind: RequestKind,
        _route: u16,
        _req: &Request,
        _params: &[&str],
        _remote: SocketAddr,
    ) {
    }
    /// The client went away (or the decision came too late) before the
    /// decision was used, or before an HTTP response ended.
    fn aborted(&self, _id: u64) {}
    /// Request `id`'s body, piece by piece; `last` once it has all come (an
    /// empty last piece when the body is empty or its end came alone).
    fn body(&self, _id: u64, _data: &[u8], _last: bool) {}
    /// Request `id`'s response had more queued than
    /// [`super::http1::WRITE_HIGH_WATER`] when written, and all of it has
    /// now gone to the socket.
    fn writable(&self, _id: u64) {}
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
        /// The `Sec-WebSocket-Extensions` offers to negotiate from (None: none).
        extensions: Option<String>,
    },
    /// A complete HTTP response; the connection is closed after it.
    Respond(Vec<u8>),
    /// Part of an HTTP route's response (the only answer an HTTP request
    /// takes besides `Respond`): the connection stays open after the last
    /// part unless the client or the part asks for close.
    Part(ResponsePart),
}

/// One write of a streamed HTTP response.
pub(crate) struct ResponsePart {
    /// With the first part: the status line and headers, each line ending
    /// in CRLF, without the blank line (the server adds `Connection: close`
    /// when it will close). Framing headers are the caller's
    /// (`Content-Length`, or `Transfer-Encoding: chunked` with `chunked`).
    pub head: Option<Vec<u8>>,
    /// The body goes out in chunked encoding.
    pub chunked: bool,
    /// Body bytes (dropped for a HEAD request).
    pub body: Vec<u8>,
    /// The response is complete.
    pub end: bool,
    /// Close the connection after this response.
    pub close: bool,
}
