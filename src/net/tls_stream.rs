//! A TLS session as a tokio stream, for the short life of a connection
//! before it is a WebSocket: the handshake, the request head, an HTTP
//! answer. `into_parts` then gives the socket and the session to the
//! connection, with any plaintext read past what was asked for.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::tls_session::TlsSession;

/// Read size while the stream is in use (a handshake flight, a head).
const READ_CHUNK: usize = 8 * 1024;
/// Ciphertext a writer may leave waiting before a write waits for the
/// socket.
const MAX_PENDING: usize = 64 * 1024;

pub(crate) struct TlsStream {
    tcp: TcpStream,
    session: Box<TlsSession>,
    /// Decrypted and not yet read; `plain[..taken]` was read.
    plain: Vec<u8>,
    taken: usize,
    eof: bool,
    /// close_notify is queued (shutdown may be polled again).
    closing: bool,
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The server side of a TLS handshake on `tcp`. The caller bounds it in time.
pub(crate) async fn accept(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<TlsStream> {
    let session = Box::new(TlsSession::new(config).map_err(invalid)?);
    let mut s = TlsStream { tcp, session, plain: Vec::new(), taken: 0, eof: false, closing: false };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        std::future::poll_fn(|cx| s.poll_write_pending(cx)).await?;
        if s.session.is_established() {
            return Ok(s);
        }
        let n = s.tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Err(e) = s.session.read(&mut buf[..n], &mut s.plain) {
            // Say why (the fatal alert), once, without waiting for it.
            let _ = s.try_write_pending();
            return Err(invalid(e));
        }
    }
}

impl TlsStream {
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The socket, the session, and plaintext decrypted but not read.
    /// Anything written was flushed (the caller's `flush`).
    /// The session settles (TLS 1.3: records protected by this crate).
    pub(crate) fn into_parts(mut self) -> (TcpStream, Box<TlsSession>, Vec<u8>) {
        self.session.settle();
        let mut plain = self.plain;
        plain.drain(..self.taken);
        (self.tcp, self.session, plain)
    }

    /// Writes pending ciphertext as far as the socket takes it now; true
    /// when all of it is out.
    fn try_write_pending(&mut self) -> io::Result<bool> {
        let Self { tcp, session, .. } = self;
        session.write_pending(|b| tcp.try_write(b))
    }

    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.try_write_pending()? {
            ready!(self.tcp.poll_write_ready(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.plain.len() {
                let n = (this.plain.len() - this.taken).min(out.remaining());
                out.put_slice(&this.plain[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.plain.len() {
                    this.plain = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            ready!(this.tcp.poll_read_ready(cx))?;
            let mut buf = [0u8; READ_CHUNK];
            match this.tcp.try_read(&mut buf) {
                Ok(0) => this.eof = true,
                Ok(n) => {
                    if let Err(e) = this.session.read(&mut buf[..n], &mut this.plain) {
                        // The fatal alert, once, as `accept` does.
                        let _ = this.try_write_pending();
                        return Poll::Ready(Err(invalid(e)));
                    }
                    this.eof = this.session.peer_closed();
                    // What the records asked us to send (a key update's
                    // answer), as far as the socket takes it now; the rest
                    // goes with the next write.
                    this.try_write_pending()?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.session.pending_len() >= MAX_PENDING {
            ready!(this.poll_write_pending(cx))?;
        }
        let take = data.len().min(MAX_PENDING);
        this.session.encrypt(&data[..take]).map_err(invalid)?;
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.session.is_established() && !this.closing {
            this.closing = true;
            this.session.close_notify();
        }
        ready!(this.poll_write_pending(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
