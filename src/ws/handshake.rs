//! HTTP/1.1 request heads and the RFC 6455 opening handshake.
//!
//! Pure functions: the connection layer accumulates bytes and calls
//! [`parse_request`] after each read; this module decides whether a head is
//! complete, whether it is a valid WebSocket upgrade, and what bytes to answer with.
//! "Need more bytes" is `Ok(None)`. Origin checks are not made here: they are policy
//! and belong to the listener's configuration.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// RFC 6455 1.3: appended to the client's key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Enough for browser requests carrying sizeable cookies; small enough that a
    /// connection still in its handshake pins little memory and parse time.
    pub max_head_bytes: usize,
    /// Real clients send 10-30 headers; each one costs a parse slot and two Strings.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head_bytes: 8192, max_headers: 64 }
    }
}

/// A parsed HTTP/1.1 request head (used for WebSocket upgrades and for plain HTTP routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query exactly as sent.
    pub url: String,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Names lowercased; values lossily decoded as UTF-8, surrounding blanks trimmed.
    /// In the order sent, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// Bytes of the head including its blank line. Anything after it in the buffer
    /// (frames sent right behind the upgrade request, a request body) belongs to the
    /// caller.
    pub head_len: usize,
}

impl Request {
    /// First value of a header.
    pub fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers.iter().find(|(name, _)| name == lower_name).map(|(_, value)| value.as_str())
    }

    /// Every value of a header, in order (a header may legally be split over lines).
    pub fn header_values<'a, 'n>(&'a self, lower_name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers.iter().filter(move |(name, _)| name == lower_name).map(|(_, value)| value.as_str())
    }

    /// Whether any value of a comma-separated header contains `token` (ASCII
    /// case-insensitive), as needed for `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, lower_name: &str, token: &str) -> bool {
        self.header_values(lower_name)
            .flat_map(|value| value.split(','))
            .any(|item| item.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(path, _)| path)
    }

    /// What follows the first '?', or "".
    pub fn query(&self) -> &str {
        self.url.split_once('?').map_or("", |(_, query)| query)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request head too large")]
    HeadTooLarge,
    #[error("too many headers")]
    TooManyHeaders,
    #[error("malformed request: {0}")]
    Malformed(String),
}

impl HttpError {
    /// The response status to send before closing.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::Malformed(_) => 400,
        }
    }
}

/// Position just past the blank line ending a request head, searching from `from`;
/// accepts CRLF and bare LF line ends, as httparse does. Linear in the bytes searched.
///
/// A caller that wants strictly linear work over a head arriving in tiny reads can
/// remember how far it searched and pass `searched.saturating_sub(3)` next time, and
/// call [`parse_request`] only once this finds the end.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = buf.get(at..)?.iter().position(|&b| b == b'\n') {
        let lf = at + offset;
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => at = lf + 1,
        }
    }
    None
}

/// Parses a request head from the start of `buf`. `Ok(None)` means more bytes are
/// needed; the caller passes the whole accumulated buffer again after each read.
///
/// Cost is bounded per call by `max_head_bytes`, whatever `buf.len()`: only that
/// window is ever looked at, and the full HTTP parser runs only once a blank line has
/// been seen in it, so a head that never ends (one endless header line, as in
/// CVE-2023-43669) costs one cheap newline scan per read and is refused as soon as
/// the window is full.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<Request>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let too_large = buf.len() > limits.max_head_bytes;
    let incomplete = if too_large { Err(HttpError::HeadTooLarge) } else { Ok(None) };
    // Lines end in CRLF: a bare LF is how request smuggling starts. (Only
    // the head is looked at: frames may follow it in the same segment.)
    let head = window.windows(4).position(|w| w == b"\r\n\r\n").map_or(window, |at| &window[..at + 4]);
    if head.iter().enumerate().any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r')) {
        return Err(HttpError::Malformed("bare LF line ending".to_owned()));
    }
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut slots);
    if find_head_end(window, 0).is_none() {
        // Not all here yet; but bytes that cannot start a request (another
        // protocol, a TLS record on a plain port) are refused at once
        // rather than waited on.
        return match parsed.parse(window) {
            Err(httparse::Error::TooManyHeaders) => Err(HttpError::TooManyHeaders),
            Err(e) => Err(HttpError::Malformed(e.to_string())),
            Ok(_) => incomplete,
        };
    }
    let head_len = match parsed.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        // Possible only when the blank line found was one of the empty lines httparse
        // skips before the request line.
        Ok(httparse::Status::Partial) => return incomplete,
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let (Some(method), Some(url), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(HttpError::Malformed("incomplete request line".to_owned()));
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value);
            (h.name.to_ascii_lowercase(), value.trim_matches([' ', '\t']).to_owned())
        })
        .collect();
    Ok(Some(Request { method: method.to_owned(), url: url.to_owned(), version, headers, head_len }))
}

/// What a valid upgrade request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeInfo {
    pub key: String,
    /// Raw `Sec-WebSocket-Protocol` (lines joined with ", "); choosing one is the app's call.
    pub protocols: Option<String>,
    /// Raw `Sec-WebSocket-Extensions`; we negotiate none, so this is informational.
    pub extensions: Option<String>,
}

/// Why an upgrade was refused. `reason` is a short diagnostic meant for the response
/// body and logs; the status line's phrase comes from [`status_reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
    pub extra_headers: Vec<(&'static str, &'static str)>,
}

impl Reject {
    fn bad_request(reason: &'static str) -> Self {
        Reject { status: 400, reason, extra_headers: Vec::new() }
    }

    /// The complete response to send before closing the connection.
    pub fn to_response(&self) -> Vec<u8> {
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
        headers.extend_from_slice(&self.extra_headers);
        simple_response(self.status, status_reason(self.status), &headers, self.reason.as_bytes(), false)
    }
}

/// Joins every line of a header; `None` when absent.
fn joined(req: &Request, lower_name: &str) -> Option<String> {
    let values: Vec<&str> = req.header_values(lower_name).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// RFC 6455 4.2.1 checks on a request routed here as an upgrade.
///
/// Status choices:
/// - A method other than GET gets 400, not 405: the same URL may serve plain HTTP
///   routes with other methods, so `405` with `Allow: GET` would misdescribe the
///   resource; the request is simply not a valid handshake (4.2.2 says 400).
/// - HTTP/1.0 gets 400: the upgrade mechanism and the handshake need HTTP/1.1.
/// - No `Upgrade` header at all gets 426 with `Upgrade: websocket` (RFC 9110 15.5.22):
///   a plain HTTP client reached a WebSocket endpoint and is told how to talk to it.
///   An `Upgrade` header without the websocket token, or a `Connection` header
///   without `upgrade`, is a malformed handshake: 400.
/// - A missing or other `Sec-WebSocket-Version` gets 426 with
///   `Sec-WebSocket-Version: 13` (4.2.2 / 4.4), so the client can retry with 13.
/// - A key that is missing, repeated, or not base64 of exactly 16 bytes gets 400.
pub fn validate_upgrade(req: &Request) -> Result<UpgradeInfo, Reject> {
    if req.version < 1 {
        return Err(Reject::bad_request("WebSocket handshake requires HTTP/1.1"));
    }
    if req.method != "GET" {
        return Err(Reject::bad_request("WebSocket handshake must use GET"));
    }
    // A GET upgrade has no body; one that says otherwise is refused rather
    // than have its "body" read as WebSocket frames.
    if req.header("transfer-encoding").is_some() || req.header_values("content-length").any(|v| v != "0") {
        return Err(Reject::bad_request("a WebSocket handshake has no body"));
    }
    if req.header("upgrade").is_none() {
        return Err(Reject {
            status: 426,
            reason: "this endpoint requires a WebSocket upgrade",
            extra_headers: vec![("Upgrade", "websocket")],
        });
    }
    if !is_upgrade_request(req) {
        return Err(Reject::bad_request("Upgrade header must contain \"websocket\""));
    }
    if !req.has_token("connection", "upgrade") {
        return Err(Reject::bad_request("Connection header must contain \"Upgrade\""));
    }
    let mut versions = req.header_values("sec-websocket-version");
    if versions.next() != Some("13") || versions.next().is_some() {
        return Err(Reject {
            status: 426,
            reason: "unsupported Sec-WebSocket-Version",
            extra_headers: vec![("Sec-WebSocket-Version", "13")],
        });
    }
    let mut keys = req.header_values("sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(Reject::bad_request("exactly one Sec-WebSocket-Key header is required"));
    };
    // base64 of 16 bytes is always 24 characters; checking that first keeps a huge
    // bogus key from being decoded at all.
    let valid_key = key.len() == 24 && BASE64.decode(key).is_ok_and(|raw| raw.len() == 16);
    if !valid_key {
        return Err(Reject::bad_request("Sec-WebSocket-Key must be base64 of 16 bytes"));
    }
    Ok(UpgradeInfo {
        key: key.to_owned(),
        protocols: joined(req, "sec-websocket-protocol"),
        extensions: joined(req, "sec-websocket-extensions"),
    })
}

/// Whether the request asks for a WebSocket (routes it away from plain HTTP handling).
pub fn is_upgrade_request(req: &Request) -> bool {
    req.has_token("upgrade", "websocket")
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Writes one header line. CR and LF are dropped from names and values: header values
/// come from application code that may echo request data, and a line break there
/// would let a peer inject headers or a whole second response.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let clean = |s: &str, out: &mut Vec<u8>| {
        out.extend(s.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    };
    clean(name, out);
    out.extend_from_slice(b": ");
    clean(value, out);
    out.extend_from_slice(b"\r\n");
}

/// The 101 response completing the handshake.
pub fn response_101(accept: &str, protocol: Option<&str>, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    push_header(&mut out, "Upgrade", "websocket");
    push_header(&mut out, "Connection", "Upgrade");
    push_header(&mut out, "Sec-WebSocket-Accept", accept);
    if let Some(protocol) = protocol {
        push_header(&mut out, "Sec-WebSocket-Protocol", protocol);
    }
    for (name, value) in extra {
        push_header(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Headers this module writes itself in [`simple_response`]; copies from the caller
/// are dropped because two disagreeing framing headers are how request smuggling
/// through proxies starts.
fn is_framing_header(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection"].iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// A complete HTTP/1.1 response with `Content-Length`, and `Connection: close` unless
/// `keep_alive`. An empty `reason` uses [`status_reason`]. 1xx, 204 and 304 responses
/// get neither body nor `Content-Length` (RFC 9110 8.6, 15.3.5, 15.4.5).
pub fn simple_response(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8], keep_alive: bool) -> Vec<u8> {
    let reason = if reason.is_empty() { status_reason(status) } else { reason };
    let bodiless = matches!(status, 100..=199 | 204 | 304);
    let body = if bodiless { &[][..] } else { body };
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} ").as_bytes());
    out.extend(reason.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter().filter(|(name, _)| !is_framing_header(name)) {
        push_header(&mut out, name, value);
    }
    if !bodiless {
        push_header(&mut out, "Content-Length", &body.len().to_string());
    }
    if !keep_alive {
        push_header(&mut out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Reason phrase for the status codes this server sends; "Unknown" otherwise.
pub fn status_reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 1.2, with the Origin line as printed there.
    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(buf: &[u8]) -> Request {
        parse_request(buf, &Limits::default()).unwrap().unwrap()
    }

    /// A GET upgrade head with the given header lines replacing the defaults by name.
    fn upgrade_with(method: &str, lines: &[(&str, &str)]) -> Request {
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), "x".into()),
            ("Upgrade".into(), "websocket".into()),
            ("Connection".into(), "Upgrade".into()),
            ("Sec-WebSocket-Key".into(), "dGhlIHNhbXBsZSBub25jZQ==".into()),
            ("Sec-WebSocket-Version".into(), "13".into()),
        ];
        for (name, value) in lines {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if !value.is_empty() {
                headers.push((name.to_string(), value.to_string()));
            }
        }
        let mut head = format!("{method} /ws HTTP/1.1\r\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        parse(head.as_bytes())
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn rfc_example_request_parses_and_validates() {
        let req = parse(RFC_REQUEST);
        assert_eq!(req.method, "GET");
        assert_eq!(req.url, "/chat");
        assert_eq!(req.version, 1);
        assert_eq!(req.head_len, RFC_REQUEST.len());
        assert_eq!(req.headers.len(), 7);
        assert_eq!(req.headers[0], ("host".to_owned(), "server.example.com".to_owned()));
        assert_eq!(req.header("origin"), Some("http://example.com"));
        assert_eq!(req.header("Origin"), None, "lookups take lowercase names");

        let info = validate_upgrade(&req).unwrap();
        assert_eq!(
            info,
            UpgradeInfo {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
                protocols: Some("chat, superchat".into()),
                extensions: None,
            }
        );
        assert!(is_upgrade_request(&req));
        assert_eq!(accept_key(&info.key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn every_incomplete_head_needs_more_bytes() {
        for cut in 0..RFC_REQUEST.len() {
            assert!(matches!(parse_request(&RFC_REQUEST[..cut], &Limits::default()), Ok(None)), "cut at {cut}");
        }
    }

    #[test]
    fn trailing_bytes_after_the_head_are_left_to_the_caller() {
        // A client that sends its first frame in the same segment as the request.
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let mut buf = RFC_REQUEST.to_vec();
        buf.extend_from_slice(&frame);
        let req = parse(&buf);
        assert_eq!(req.head_len, RFC_REQUEST.len());
        assert_eq!(&buf[req.head_len..], &frame);
        // The frame bytes must not leak into the last header's value.
        assert_eq!(req.header("sec-websocket-version"), Some("13"));

        // Trailing bytes that happen to contain another blank line change nothing.
        let mut buf = RFC_REQUEST.to_vec();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(parse(&buf).head_len, RFC_REQUEST.len());
    }

    #[test]
    fn bare_lf_line_ends_and_bytes_that_cannot_start_a_request_are_refused_at_once() {
        let l = Limits::default();
        for bad in [
            &b"GET /a?b=1 HTTP/1.1\nHost: h\n\nrest"[..],
            b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
            // Incomplete, yet already wrong: a TLS ClientHello, random bytes.
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x00\xff\x13 junk",
            b"GET / HTTP/1.1\r\nHost: h\n",
        ] {
            assert!(matches!(parse_request(bad, &l), Err(HttpError::Malformed(_))), "{bad:?}");
        }
        // A head still arriving is waited for; frames after a head may hold LFs.
        assert!(matches!(parse_request(b"GET /chat HTTP/1.1\r\nHost: x", &l), Ok(None)));
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n\n\x81\n", &l).unwrap().is_some());
    }

    #[test]
    fn an_upgrade_with_a_body_is_refused() {
        for (name, value) in [("Content-Length", "5"), ("Transfer-Encoding", "chunked")] {
            let r = validate_upgrade(&upgrade_with("GET", &[(name, value)])).unwrap_err();
            assert_eq!(r.status, 400, "{name}");
        }
        assert!(validate_upgrade(&upgrade_with("GET", &[("Content-Length", "0")])).is_ok());
    }

    #[test]
    fn find_head_end_handles_both_line_ends_and_resuming() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r", 0), None);
        let head = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        assert_eq!(find_head_end(head, head.len() - 3 - 1), Some(head.len()));
        assert_eq!(find_head_end(head, 99), None);
    }

    #[test]
    fn path_and_query() {
        let req = parse(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\r\n");
        assert_eq!(req.url, "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.path(), "/socket.io/");
        assert_eq!(req.query(), "EIO=4&transport=websocket");
        let req = parse(b"GET /plain HTTP/1.1\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/plain", ""));
        let req = parse(b"GET /a?b?c HTTP/1.1\r\n\r\n");
        assert_eq!((req.path(), req.query()), ("/a", "b?c"));
    }

    #[test]
    fn head_over_the_limit_is_refused() {
        let limits = Limits { max_head_bytes: 64, max_headers: 8 };
        let mut buf = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        buf.resize(64, b'a');
        assert!(matches!(parse_request(&buf, &limits), Ok(None)), "at the limit, still waiting");
        buf.push(b'a');
        let err = parse_request(&buf, &limits).unwrap_err();
        assert!(matches!(err, HttpError::HeadTooLarge));
        assert_eq!(err.status(), 431);

        // A head ending exactly at the limit is fine; one byte later is not.
        let mut head = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        head.resize(60, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&head, &limits).unwrap().unwrap().head_len, 64);
        head.insert(30, b'a');
        assert!(matches!(parse_request(&head, &limits), Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn too_many_headers_is_refused() {
        let limits = Limits::default();
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..limits.max_headers {
            head.push_str(&format!("X-{i}: v\r\n"));
        }
        let ok = format!("{head}\r\n");
        assert_eq!(parse(ok.as_bytes()).headers.len(), limits.max_headers);

        head.push_str("X-One-More: v\r\n\r\n");
        let err = parse_request(head.as_bytes(), &limits).unwrap_err();
        assert!(matches!(err, HttpError::TooManyHeaders));
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn endless_header_line_is_bounded_by_the_window() {
        // CVE-2023-43669: one header line that never ends. Whatever has been buffered,
        // at most max_head_bytes are examined, so 16 MiB costs what 8 KiB does.
        let limits = Limits::default();
        let mut buf = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
        buf.resize(16 << 20, b'c');
        assert!(matches!(parse_request(&buf, &limits), Err(HttpError::HeadTooLarge)));
        // Even if a terminator eventually arrives far beyond the window.
        buf.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse_request(&buf, &limits), Err(HttpError::HeadTooLarge)));

        // Drip-fed in 100-byte reads, it is refused at the first read past the limit.
        let mut refused_at = None;
        for end in (100..buf.len()).step_by(100) {
            match parse_request(&buf[..end], &limits) {
                Ok(None) => continue,
                Err(HttpError::HeadTooLarge) => {
                    refused_at = Some(end);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let refused_at = refused_at.expect("refused");
        assert!(refused_at > limits.max_head_bytes && refused_at - 100 <= limits.max_head_bytes);
    }

    #[test]
    fn long_header_within_the_limit_parses() {
        let value = "v".repeat(8000);
        let head = format!("GET / HTTP/1.1\r\nCookie: {value}\r\n\r\n");
        assert!(head.len() <= Limits::default().max_head_bytes);
        assert_eq!(parse(head.as_bytes()).header("cookie"), Some(value.as_str()));
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            &b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01 TLS hello\r\n\r\n",
        ] {
            let err = parse_request(bad, &Limits::default()).unwrap_err();
            assert!(matches!(err, HttpError::Malformed(_)), "{bad:?}: {err:?}");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn header_values_are_trimmed_and_lossy() {
        let req = parse(b"GET / HTTP/1.1\r\nX-A:   padded \t\r\nX-B: caf\xe9\r\n\r\n");
        assert_eq!(req.header("x-a"), Some("padded"));
        assert_eq!(req.header("x-b"), Some("caf\u{fffd}"));
    }

    #[test]
    fn connection_token_lists_are_understood() {
        let req = upgrade_with("GET", &[("Connection", "keep-alive, Upgrade")]);
        assert!(validate_upgrade(&req).is_ok());
        let req = upgrade_with("GET", &[("Connection", "keep-alive,upgrade"), ("Upgrade", "WebSocket")]);
        assert!(validate_upgrade(&req).is_ok());

        let req = upgrade_with("GET", &[("Connection", "keep-alive")]);
        assert_eq!(validate_upgrade(&req).unwrap_err().status, 400);
        // "upgrade" as a substring of another token does not count.
        let req = upgrade_with("GET", &[("Connection", "upgraded")]);
        assert_eq!(validate_upgrade(&req).unwrap_err().status, 400);
    }

    #[test]
    fn connection_split_over_two_lines_is_accepted() {
        let head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert!(validate_upgrade(&parse(head)).is_ok());
    }

    #[test]
    fn upgrade_header_rules() {
        let req = upgrade_with("GET", &[("Upgrade", "")]);
        assert!(!is_upgrade_request(&req));
        let rej = validate_upgrade(&req).unwrap_err();
        assert_eq!(rej.status, 426);
        assert_eq!(rej.extra_headers, vec![("Upgrade", "websocket")]);

        let req = upgrade_with("GET", &[("Upgrade", "h2c")]);
        assert!(!is_upgrade_request(&req));
        assert_eq!(validate_upgrade(&req).unwrap_err().status, 400);

        let req = upgrade_with("GET", &[("Upgrade", "h2c, WEBSOCKET")]);
        assert!(is_upgrade_request(&req));
    }

    #[test]
    fn wrong_version_gets_426_with_supported_version() {
        for version in ["8", "", "13, 8", "14"] {
            let req = upgrade_with("GET", &[("Sec-WebSocket-Version", version)]);
            let rej = validate_upgrade(&req).unwrap_err();
            assert_eq!(rej.status, 426, "version {version:?}");
            assert_eq!(rej.extra_headers, vec![("Sec-WebSocket-Version", "13")]);
            let resp = String::from_utf8(rej.to_response()).unwrap();
            assert!(resp.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{resp}");
            assert!(resp.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{resp}");
        }
    }

    #[test]
    fn repeated_version_header_is_ambiguous() {
        let head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Version: 8\r\n\r\n";
        assert_eq!(validate_upgrade(&parse(head)).unwrap_err().status, 426);
    }

    #[test]
    fn bad_keys_get_400() {
        for key in [
            "",                                 // missing
            "not base64 at all!!!!!!!",         // 24 chars, not base64
            "dGhlIHNhbXBsZSBub25jZQ",           // unpadded
            "dGhlIHNhbXBsZSBub25j",             // 15 bytes
            "dGhlIHNhbXBsZSBub25jZSE=",         // 17 bytes, 24 chars
            "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNh", // too long
        ] {
            let req = upgrade_with("GET", &[("Sec-WebSocket-Key", key)]);
            let rej = validate_upgrade(&req).unwrap_err();
            assert_eq!(rej.status, 400, "key {key:?}");
        }
        // Two keys are ambiguous.
        let head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(validate_upgrade(&parse(head)).unwrap_err().status, 400);
    }

    #[test]
    fn non_get_and_http_1_0_are_rejected() {
        for method in ["POST", "PUT", "HEAD", "get"] {
            let rej = validate_upgrade(&upgrade_with(method, &[])).unwrap_err();
            assert_eq!(rej.status, 400, "method {method}");
        }
        let head = b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let req = parse(head);
        assert_eq!(req.version, 0);
        assert_eq!(validate_upgrade(&req).unwrap_err().status, 400);
    }

    #[test]
    fn protocols_and_extensions_are_passed_through() {
        let req = upgrade_with(
            "GET",
            &[
                ("Sec-WebSocket-Protocol", "graphql-ws"),
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ],
        );
        let info = validate_upgrade(&req).unwrap();
        assert_eq!(info.protocols.as_deref(), Some("graphql-ws"));
        assert_eq!(info.extensions.as_deref(), Some("permessage-deflate; client_max_window_bits"));
    }

    #[test]
    fn response_101_bytes() {
        let resp = response_101("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", None, &[]);
        assert_eq!(
            resp,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
        let resp = response_101("abc=", Some("chat"), &[("X-Id", "7")]);
        assert_eq!(
            resp,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: abc=\r\nSec-WebSocket-Protocol: chat\r\nX-Id: 7\r\n\r\n"
        );
    }

    #[test]
    fn header_injection_is_neutralised() {
        let resp = response_101("a=", None, &[("X-Evil", "1\r\nSet-Cookie: pwned=1")]);
        let text = String::from_utf8(resp).unwrap();
        assert!(text.contains("X-Evil: 1Set-Cookie: pwned=1\r\n"), "{text}");
        assert!(!text.contains("\r\nSet-Cookie"));
        let resp = simple_response(200, "OK\r\nX: y", &[("A\nB", "c")], b"", true);
        let text = String::from_utf8(resp).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OKX: y\r\nAB: c\r\n"), "{text}");
    }

    #[test]
    fn simple_response_framing() {
        let resp = simple_response(404, "Not Found", &[("Content-Type", "text/plain")], b"nope", false);
        assert_eq!(
            resp,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\
Connection: close\r\n\r\nnope"
        );
        let resp = simple_response(200, "", &[], b"", true);
        assert_eq!(resp, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        // Caller-supplied framing headers cannot contradict ours.
        let resp = simple_response(
            200,
            "OK",
            &[("content-length", "999"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
            b"hi",
            false,
        );
        assert_eq!(resp, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        // No body and no length where the status forbids a body.
        for status in [101, 204, 304] {
            let resp = simple_response(status, "", &[], b"body", true);
            let text = String::from_utf8(resp).unwrap();
            assert!(!text.contains("Content-Length"), "{text}");
            assert!(text.ends_with("\r\n\r\n"), "{text}");
        }
    }

    #[test]
    fn reject_response_is_complete() {
        let rej = validate_upgrade(&upgrade_with("POST", &[])).unwrap_err();
        let resp = rej.to_response();
        let text = String::from_utf8(resp).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(body, rej.reason);
        assert!(text.contains(&format!("Content-Length: {}\r\n", rej.reason.len())));
    }

    #[test]
    fn status_reasons() {
        assert_eq!(status_reason(101), "Switching Protocols");
        assert_eq!(status_reason(400), "Bad Request");
        assert_eq!(status_reason(426), "Upgrade Required");
        assert_eq!(status_reason(431), "Request Header Fields Too Large");
        assert_eq!(status_reason(599), "Unknown");
    }

    #[test]
    fn limits_defaults() {
        let limits = Limits::default();
        assert_eq!((limits.max_head_bytes, limits.max_headers), (8192, 64));
    }
}
