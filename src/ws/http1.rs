//! HTTP/1.1 on the App's own listener, as uWS.js serves it: a connection
//! carries request after request (keep-alive; pipelined requests wait their
//! turn, answers go out in order); a request's body goes up in pieces as it
//! arrives; its response comes down in parts (`write`, `end`, `tryEnd`),
//! with backpressure: the layer above is told when a large queue has gone
//! to the socket. An upgrade request on a kept-alive connection becomes a
//! WebSocket as on a fresh one.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::accept::{serve_service, write_and_close, Incoming, IntoParts, DECISION_TIMEOUT, HANDSHAKE_TIMEOUT};
use super::body::{self, BodyDecoder, BodyError};
use super::handshake::{self, Request};
use super::server::{Pending, ServerCore};
use super::sink::{Decision, RequestKind, ResponsePart};

/// Response bytes queued (written by the layer above, not yet taken by the
/// socket) past which a write reports backpressure (`false`), and the
/// layer above hears [`super::RequestSink::writable`] once they are gone.
pub(crate) const WRITE_HIGH_WATER: usize = 64 << 10;
/// A response writer that ignores backpressure is cut off (the request is
/// aborted) when this much is queued: the memory a slow client can pin.
pub(crate) const WRITE_HARD_LIMIT: usize = 64 << 20;
/// Default for the largest request body (`maxBodyLength`).
pub(crate) const DEFAULT_MAX_BODY: u64 = 16 << 20;
/// Bytes read from the socket at a time while a body arrives.
const READ_CHUNK: usize = 16 << 10;
/// How often a body paused for JS's backlog looks again.
const INFLOW_RECHECK: std::time::Duration = std::time::Duration::from_millis(10);

/// How much of one response is queued, shared with the layer above.
#[derive(Default)]
pub(crate) struct Outflow {
    queued: AtomicUsize,
    /// A write saw the queue over the high-water mark: say when it empties.
    want_writable: AtomicBool,
}

impl ServerCore {
    /// Queues a part of request `id`'s response. The bytes queued after it
    /// (below [`WRITE_HIGH_WATER`]: no backpressure), or None when the
    /// request is gone (answered, aborted, or its connection closed).
    pub(crate) fn write_response(&self, id: u64, part: ResponsePart) -> Option<usize> {
        let pending = self.pending.lock();
        let p = pending.get(&id)?;
        let n = part.body.len();
        let queued = p.out.queued.fetch_add(n, Ordering::AcqRel) + n;
        if queued >= WRITE_HIGH_WATER {
            p.out.want_writable.store(true, Ordering::Release);
        }
        p.tx.send(Decision::Part(part)).ok()?;
        Some(queued)
    }

    /// Serves the requests of one plain-HTTP connection, the first one's
    /// head already read, until it closes or turns into a WebSocket.
    pub(super) async fn serve_http<S>(self: Arc<Self>, id: u64, mut stream: S, first: Incoming) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let mut incoming = first;
        // The connection's own id serves its first request; later ones get
        // their own, so a stale handle above never reaches a later request.
        let mut request_id = id;
        loop {
            if handshake::is_upgrade_request(&incoming.req) {
                let served = self.clone().serve_upgrade(request_id, stream, incoming).await;
                self.release_request(id, request_id);
                return served;
            }
            let method = incoming.req.method.to_ascii_lowercase();
            let routed = self.routes.read().http_for(&method, incoming.req.path());
            let Some(route) = routed else {
                let resp = handshake::simple_response(
                    404,
                    "Not Found",
                    &[("content-type", "text/plain")],
                    b"Not Found",
                    false,
                );
                self.release_request(id, request_id);
                return write_and_close(&mut stream, &resp).await;
            };
            let service = self.routes.read().service(route);
            if let Some(service) = service {
                self.release_request(id, request_id);
                return serve_service(&*service, stream, incoming).await;
            }
            let (remote, secure) = (incoming.remote, incoming.secure);
            let next = self.exchange(request_id, route, &mut stream, incoming).await;
            self.release_request(id, request_id);
            let Some(rest) = next? else { return Ok(()) };
            // Keep-alive: the next head within the handshake timeout.
            let Some((req, rest)) = self.next_head(&mut stream, rest).await? else { return Ok(()) };
            incoming = Incoming { req, rest, remote, secure };
            request_id = self.registry.reserve();
        }
    }

    /// A later request's id is released when it is done (the connection's
    /// own by its handshake).
    fn release_request(&self, conn_id: u64, request_id: u64) {
        if request_id != conn_id {
            self.registry.release_unless_taken(request_id);
        }
    }

    /// One request on an HTTP route: its body up, its response down.
    /// Returns the bytes already read of the next request when the
    /// connection stays open, None when it is to be closed.
    async fn exchange<S>(&self, id: u64, route: u16, stream: &mut S, incoming: Incoming) -> io::Result<Option<Vec<u8>>>
    where
        S: AsyncRead + AsyncWrite + Unpin + IntoParts,
    {
        let Incoming { req, rest, remote, .. } = incoming;
        let refuse = |status: u16| handshake::simple_response(status, "", &[], b"", false);
        let mut decoder = match body::request_framing(&req).and_then(|f| BodyDecoder::new(f, self.opts.max_body)) {
            Ok(d) => d,
            Err(e) => return write_and_close(stream, &refuse(status_of(&e))).await.map(|_| None),
        };
        let head_only = req.method.eq_ignore_ascii_case("head");
        let mut keep_alive = keep_alive(&req);

        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = Arc::new(Outflow::default());
        self.pending.lock().insert(id, Pending { tx, out: out.clone() });
        let params = self.routes.read().http_params(route, req.path());
        self.sink.request(id, RequestKind::Http, route, &req, &params, remote);

        // What came with the head: the body's start, then the next request.
        let mut next = Vec::new();
        let mut piece = Vec::new();
        if decoder.is_done() {
            self.sink.body(id, &[], true);
        }
        let fed = self.feed(id, &mut decoder, &rest, &mut piece, &mut next);
        drop(rest);
        if let Err(e) = fed {
            return self.abort(id, stream, false, refuse(status_of(&e))).await;
        }
        if !decoder.is_done() && req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }

        let mut head_sent = false;
        let mut chunked = false;
        let mut read_buf = Vec::new();
        let mut deadline = Instant::now() + DECISION_TIMEOUT;
        loop {
            // Read while the body arrives, and after it for the next head
            // (and to see the client go), up to one head's worth. While JS
            // has more than its backlog limit of events waiting, a body is
            // not read further (as WebSocket reads pause): a fast upload
            // queues no more than that for a slow JS thread.
            let paused = !decoder.is_done() && self.opts.inflow.is_over();
            let reading = !paused && (!decoder.is_done() || next.len() < self.opts.limits.max_head_bytes);
            if reading && read_buf.is_empty() {
                read_buf.resize(READ_CHUNK, 0);
            }
            tokio::select! {
                part = rx.recv() => {
                    let part = match part {
                        Some(Decision::Part(part)) => part,
                        Some(Decision::Respond(resp)) => {
                            write_and_close(stream, &resp).await?;
                            self.finish(id);
                            return Ok(None);
                        }
                        // Shut down (the sender is gone) or a wrong answer.
                        Some(Decision::Upgrade { .. }) | None => {
                            return self.abort(id, stream, head_sent, refuse(500)).await;
                        }
                    };
                    deadline = Instant::now() + DECISION_TIMEOUT;
                    keep_alive &= !part.close;
                    let mut wire = Vec::with_capacity(part.body.len() + 64);
                    if let Some(head) = part.head.as_ref().filter(|_| !head_sent) {
                        head_sent = true;
                        chunked = part.chunked;
                        wire.extend_from_slice(head);
                        // The body must be whole before another request is
                        // read; answered before it was, the connection closes.
                        if part.end && !decoder.is_done() {
                            keep_alive = false;
                        }
                        if !keep_alive {
                            wire.extend_from_slice(b"Connection: close\r\n");
                        }
                        wire.extend_from_slice(b"\r\n");
                    }
                    if !head_only {
                        if chunked {
                            body::encode_chunk(&part.body, &mut wire);
                            if part.end {
                                wire.extend_from_slice(body::LAST_CHUNK);
                            }
                        } else {
                            wire.extend_from_slice(&part.body);
                        }
                    }
                    let write = async {
                        stream.write_all(&wire).await?;
                        stream.flush().await
                    };
                    let written = tokio::time::timeout(HANDSHAKE_TIMEOUT, write).await;
                    if !matches!(written, Ok(Ok(()))) {
                        return Ok(self.gone(id));
                    }
                    let left = out.queued.fetch_sub(part.body.len(), Ordering::AcqRel) - part.body.len();
                    if left == 0 && out.want_writable.swap(false, Ordering::AcqRel) {
                        self.sink.writable(id);
                    }
                    if left > WRITE_HARD_LIMIT {
                        return Ok(self.gone(id));
                    }
                    if part.end {
                        self.finish(id);
                        // Open for the next request only once this one's body was read whole.
                        if keep_alive && decoder.is_done() {
                            return Ok(Some(next));
                        }
                        let _ = stream.shutdown().await;
                        return Ok(None);
                    }
                }
                n = stream.read(&mut read_buf), if reading => {
                    let n = match n {
                        Ok(0) | Err(_) => return Ok(self.gone(id)),
                        Ok(n) => n,
                    };
                    piece.clear();
                    if let Err(e) = self.feed(id, &mut decoder, &read_buf[..n], &mut piece, &mut next) {
                        return self.abort(id, stream, head_sent, refuse(status_of(&e))).await;
                    }
                    if !decoder.is_done() {
                        deadline = Instant::now() + DECISION_TIMEOUT;
                    }
                    if decoder.is_done() {
                        read_buf = Vec::new();
                    }
                }
                _ = tokio::time::sleep(INFLOW_RECHECK), if paused => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(self.gone(id)),
            }
        }
    }

    /// Decodes `input` into body pieces sent up (the last one flagged);
    /// bytes past the body go to `next`. Over the limit, or a bad chunk:
    /// Err (nothing more is read).
    fn feed(
        &self,
        id: u64,
        decoder: &mut BodyDecoder,
        input: &[u8],
        piece: &mut Vec<u8>,
        next: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        if decoder.is_done() {
            next.extend_from_slice(input);
            return Ok(());
        }
        let used = decoder.decode(input, piece)?;
        if !piece.is_empty() || decoder.is_done() {
            self.sink.body(id, piece, decoder.is_done());
        }
        next.extend_from_slice(&input[used..]);
        Ok(())
    }

    /// The response ended: the request is no longer pending.
    fn finish(&self, id: u64) {
        self.pending.lock().remove(&id);
    }

    /// The client went away, stalled, or the response was cut off: the
    /// layer above hears `aborted`; the connection closes.
    fn gone(&self, id: u64) -> Option<Vec<u8>> {
        if self.pending.lock().remove(&id).is_some() {
            self.sink.aborted(id);
        }
        None
    }

    /// A bad body (or a shut-down server) ends the request: `aborted` above,
    /// and `resp` to the client unless a response was begun (then the
    /// connection just closes).
    async fn abort<S>(&self, id: u64, stream: &mut S, head_sent: bool, resp: Vec<u8>) -> io::Result<Option<Vec<u8>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.gone(id);
        if head_sent {
            let _ = stream.shutdown().await;
            return Ok(None);
        }
        write_and_close(stream, &resp).await.map(|_| None)
    }
}

fn status_of(e: &BodyError) -> u16 {
    match e {
        BodyError::TooLarge => 413,
        BodyError::BadFraming | BodyError::BadChunk => 400,
    }
}

/// HTTP/1.1 keeps the connection unless the client says close; HTTP/1.0
/// only when it asks for keep-alive.
fn keep_alive(req: &Request) -> bool {
    if req.has_token("connection", "close") {
        return false;
    }
    req.version >= 1 || req.has_token("connection", "keep-alive")
}
