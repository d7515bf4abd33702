//! One WebSocket client connection: TCP (optionally TLS) connect, the
//! opening handshake, and a read pump that answers pings and closes and
//! hands whole messages (fragments joined) to its caller.
//!
//! Memory: while idle a connection owns only its socket, an empty decoder
//! and an empty write queue. Reads go into one scratch buffer per worker
//! thread (thread-local, borrowed only inside a single poll), and only an
//! incomplete frame tail is copied into the connection.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::ws::{self, Decoder, HandshakeParse};

const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_SIZE].into_boxed_slice());
}

/// Where and how to connect; shared by all connections of a run.
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: String,
    pub path: String,
    pub tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    pub extra_headers: Vec<String>,
    pub max_payload: u32,
    pub proto: Proto,
}

/// What rides on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proto {
    /// Messages are plain WebSocket text frames.
    Ws,
    /// Socket.IO v5 over the Engine.IO v4 WebSocket transport, joined to `nsp`.
    Sio { nsp: String },
}

/// Transport: plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Map an io::Error to a short, stable label for the report.
pub fn io_kind(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(24) => "emfile".into(),
        Some(23) => "enfile".into(),
        Some(98) => "addr_in_use".into(),
        Some(99) => "addr_not_available".into(),
        Some(104) => "reset".into(),
        Some(110) => "timed_out".into(),
        Some(111) => "refused".into(),
        Some(32) => "broken_pipe".into(),
        Some(n) => format!("os_error_{n}"),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof => "eof".into(),
            io::ErrorKind::InvalidData => "tls_or_invalid_data".into(),
            k => format!("io_{k:?}").to_lowercase(),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the server's.
    CloseSent,
    Closed,
}

/// What one `pump` call observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// Read some bytes; the connection stays open.
    Open,
    /// Close handshake finished (code from the server's close frame, 1005 if none).
    Closed(u16),
    /// The peer ended the TCP stream without a close frame.
    Eof,
}

pub struct WsClient {
    io: Stream,
    dec: Decoder,
    out: Vec<u8>,
    /// A fragmented message being joined. Boxed: servers under test send
    /// small unfragmented messages, so this stays None and costs 8 bytes
    /// (a bare Option<Vec> would cost 24 in every connection).
    #[allow(clippy::box_collection)]
    frag: Option<Box<Vec<u8>>>,
    state: State,
    /// Pings answered (WebSocket pings here; the Socket.IO layer adds Engine.IO pings).
    pub pings: u32,
    /// permessage-deflate, when the server agreed to the offer (--header).
    inflate: Option<Box<Inflate>>,
}

/// The inflater of a connection that negotiated permessage-deflate.
struct Inflate {
    d: flate2::Decompress,
    /// The server keeps no context: start afresh at every message.
    fresh: bool,
}

impl Inflate {
    /// One compressed message, inflated (at most `max` bytes).
    fn message(&mut self, payload: &[u8], max: usize) -> Result<Vec<u8>, String> {
        if self.fresh {
            self.d.reset(false);
        }
        let mut out = Vec::with_capacity(payload.len() * 4 + 64);
        for part in [payload, &[0, 0, 0xff, 0xff][..]] {
            let base = self.d.total_in();
            loop {
                let used = (self.d.total_in() - base) as usize;
                if out.len() == out.capacity() {
                    out.reserve(out.len().max(1024));
                }
                self.d
                    .decompress_vec(&part[used..], &mut out, flate2::FlushDecompress::Sync)
                    .map_err(|_| "proto_bad_deflate".to_string())?;
                if out.len() > max {
                    return Err("proto_message_too_large".into());
                }
                if (self.d.total_in() - base) as usize == part.len() && out.len() < out.capacity() {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Open TCP (binding `source` first if given), TLS if configured, and do the
/// WebSocket handshake. Errors are report labels.
pub async fn connect(target: &Target, source: Option<IpAddr>) -> Result<WsClient, String> {
    let sock =
        if target.addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| io_kind(&e))?;
    if let Some(ip) = source {
        // Port 0: the kernel picks a free port for this source address, so
        // each source address brings its own ephemeral port range.
        sock.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind_{}", io_kind(&e)))?;
    }
    let tcp = sock.connect(target.addr).await.map_err(|e| io_kind(&e))?;
    let _ = tcp.set_nodelay(true);
    let mut io = match &target.tls {
        None => Stream::Plain(tcp),
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await.map_err(|e| format!("tls_{}", io_kind(&e)))?;
            Stream::Tls(Box::new(tls))
        }
    };

    let key = ws::new_key();
    let req = ws::upgrade_request(&target.host_header, &target.path, &key, &target.extra_headers);
    io.write_all(&req).await.map_err(|e| io_kind(&e))?;
    io.flush().await.map_err(|e| io_kind(&e))?;

    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
        .map_err(|e| io_kind(&e))?;
        if n == 0 {
            return Err("handshake_eof".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match ws::parse_upgrade_response(&buf, &key) {
            HandshakeParse::Partial if buf.len() > 16 * 1024 => return Err("handshake_too_long".into()),
            HandshakeParse::Partial => continue,
            HandshakeParse::Failed(kind) => return Err(kind),
            HandshakeParse::Done(len) => {
                let mut dec = Decoder::new(target.max_payload);
                let inflate = ws::agreed_deflate(&buf[..len]).map(|fresh| {
                    dec.set_deflate();
                    Box::new(Inflate { d: flate2::Decompress::new(false), fresh })
                });
                if len < buf.len() {
                    dec.preload(&buf[len..]);
                }
                return Ok(WsClient { io, dec, out: Vec::new(), frag: None, state: State::Open, pings: 0, inflate });
            }
        }
    }
}

impl WsClient {
    /// Queue one masked frame; it is written by the next `flush`/`pump`.
    pub fn queue(&mut self, opcode: u8, payload: &[u8]) {
        ws::encode_frame(&mut self.out, true, opcode, payload, ws::random_mask());
    }

    /// Queue one masked frame whose payload is `parts` joined.
    pub fn queue_parts(&mut self, opcode: u8, parts: &[&[u8]]) {
        ws::encode_frame_parts(&mut self.out, true, opcode, parts, ws::random_mask());
    }

    /// Write queued bytes. Cancel-safe: written bytes leave the queue as they go.
    pub async fn flush(&mut self) -> Result<(), String> {
        while !self.out.is_empty() {
            let n = self.io.write(&self.out).await.map_err(|e| io_kind(&e))?;
            if n == 0 {
                return Err("write_zero".into());
            }
            self.out.drain(..n);
        }
        if let Stream::Tls(_) = self.io {
            self.io.flush().await.map_err(|e| io_kind(&e))?;
        }
        if self.out.capacity() > 4096 {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Start the closing handshake (best effort, non-blocking for the caller).
    pub fn start_close(&mut self, code: u16) {
        if self.state == State::Open {
            self.queue(ws::OP_CLOSE, &code.to_be_bytes());
            self.state = State::CloseSent;
        }
    }

    /// Wait for data, decode it, answer pings/closes, then flush.
    /// `on_msg(opcode, message)` sees every complete data message (TEXT or
    /// BINARY), fragments joined.
    pub async fn pump<H>(&mut self, on_msg: &mut H) -> Result<Pumped, String>
    where
        H: FnMut(u8, &[u8]),
    {
        self.flush().await?;
        if self.state == State::Closed {
            return Ok(Pumped::Closed(1005));
        }
        let r = if self.dec.has_buffered() {
            // Frames that arrived with the handshake response.
            self.decode(&[], on_msg).map(|c| match c {
                Some(code) => Pumped::Closed(code),
                None => Pumped::Open,
            })
        } else {
            poll_fn(|cx| self.poll_read_decode(cx, on_msg)).await
        };
        let r = r?;
        self.flush().await?;
        Ok(r)
    }

    fn poll_read_decode<H>(&mut self, cx: &mut Context<'_>, on_msg: &mut H) -> Poll<Result<Pumped, String>>
    where
        H: FnMut(u8, &[u8]),
    {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let mut rb = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(io_kind(&e))),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        self.state = State::Closed;
                        return Poll::Ready(Ok(Pumped::Eof));
                    }
                    Poll::Ready(self.decode(&scratch[..n], on_msg).map(|c| match c {
                        Some(code) => Pumped::Closed(code),
                        None => Pumped::Open,
                    }))
                }
            }
        })
    }

    /// Decode `data`; returns Some(close code) once the close handshake completed.
    fn decode<H>(&mut self, data: &[u8], on_msg: &mut H) -> Result<Option<u16>, String>
    where
        H: FnMut(u8, &[u8]),
    {
        let WsClient { dec, out, frag, state, pings, inflate, .. } = self;
        let mut bad_deflate = None;
        let max_message = dec.max_payload() as usize;
        let mut too_large = false;
        let mut close_code = None;
        dec.feed(data, |f| match f.opcode {
            ws::OP_PING => {
                *pings += 1;
                if *state == State::Open {
                    ws::encode_frame(out, true, ws::OP_PONG, f.payload, ws::random_mask());
                }
                true
            }
            ws::OP_PONG => true,
            ws::OP_CLOSE => {
                let code = if f.payload.len() >= 2 { u16::from_be_bytes([f.payload[0], f.payload[1]]) } else { 1005 };
                if *state == State::Open {
                    // Echo the status code (none if the server sent none).
                    let echo: &[u8] = if f.payload.len() >= 2 { &f.payload[..2] } else { &[] };
                    ws::encode_frame(out, true, ws::OP_CLOSE, echo, ws::random_mask());
                }
                *state = State::Closed;
                close_code = Some(code);
                false
            }
            _ => {
                if f.fin && frag.is_none() && !f.compressed {
                    on_msg(f.msg_opcode, f.payload);
                    return true;
                }
                if f.fin && frag.is_none() {
                    match inflate.as_mut().map(|i| i.message(f.payload, max_message)) {
                        Some(Ok(m)) => on_msg(f.msg_opcode, &m),
                        Some(Err(e)) => {
                            bad_deflate = Some(e);
                            return false;
                        }
                        None => {}
                    }
                    return true;
                }
                let buf = frag.get_or_insert_with(Default::default);
                if buf.len() + f.payload.len() > max_message {
                    too_large = true;
                    return false;
                }
                buf.extend_from_slice(f.payload);
                if f.fin {
                    let whole = frag.take().expect("just filled");
                    if !f.compressed {
                        on_msg(f.msg_opcode, &whole);
                    } else if let Some(i) = inflate.as_mut() {
                        match i.message(&whole, max_message) {
                            Ok(m) => on_msg(f.msg_opcode, &m),
                            Err(e) => {
                                bad_deflate = Some(e);
                                return false;
                            }
                        }
                    }
                }
                true
            }
        })
        .map_err(|e| e.kind().to_string())?;
        if too_large {
            return Err("proto_message_too_large".into());
        }
        if let Some(e) = bad_deflate {
            return Err(e);
        }
        Ok(close_code)
    }

    /// Best-effort goodbye: queue a close frame, try to write it without
    /// waiting long, then drop the socket.
    pub async fn goodbye(mut self, code: u16, wait: Duration) {
        self.start_close(code);
        let _ = tokio::time::timeout(wait, async {
            self.flush().await?;
            // Wait for the server's close frame (or EOF) so it sees a clean close.
            let mut ignore = |_: u8, _: &[u8]| {};
            loop {
                match self.pump(&mut ignore).await? {
                    Pumped::Open => continue,
                    _ => return Ok::<(), String>(()),
                }
            }
        })
        .await;
    }
}

/// rustls verifier that accepts any certificate: the load generator only
/// talks to loopback test servers with self-signed certificates.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn insecure_tls_connector() -> Result<TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Session resumption would make later handshakes cheaper than a real
    // client fleet's; keep every handshake a full one.
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(cfg)))
}
