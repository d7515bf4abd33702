//! Routes as uWS.js has them: URL patterns, and what each route does (its
//! connection behavior and handler for WebSocket routes; a JS decision for
//! HTTP ones). The most specific pattern wins, whatever the order.

use std::net::SocketAddr;
use std::sync::Arc;

use super::conn::Behavior;
use super::handshake::Request;

/// A route pattern as uWS.js spells them: exact path, `:param` segments, and
/// a trailing `*` matching any rest (`/*` matches everything).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    segments: Vec<Seg>,
    wildcard_tail: bool,
    raw: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param,
}

impl Pattern {
    pub(crate) fn parse(raw: &str) -> Self {
        let mut wildcard_tail = false;
        let mut segments = Vec::new();
        for s in raw.trim_start_matches('/').split('/') {
            if wildcard_tail {
                break;
            }
            if s == "*" {
                wildcard_tail = true;
            } else if let Some(prefix) = s.strip_suffix('*') {
                // "/foo*": treat as prefix of this segment, as uWS does for
                // a trailing star.
                segments.push(Seg::Lit(prefix.to_string()));
                wildcard_tail = true;
            } else if s.starts_with(':') {
                segments.push(Seg::Param);
            } else {
                segments.push(Seg::Lit(s.to_string()));
            }
        }
        Self { segments, wildcard_tail, raw: raw.to_string() }
    }

    /// Higher is more specific: static routes beat params beat wildcards.
    fn matches(&self, path: &str) -> Option<u32> {
        let mut parts = path.trim_start_matches('/').split('/');
        let mut score = 0u32;
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            let last_prefix = self.wildcard_tail && i + 1 == n && !self.raw.ends_with("/*");
            let part = parts.next()?;
            match seg {
                Seg::Lit(l) if last_prefix => {
                    if !part.starts_with(l.as_str()) {
                        return None;
                    }
                    score += 1;
                }
                Seg::Lit(l) => {
                    if part != l {
                        return None;
                    }
                    score += 3;
                }
                Seg::Param => score += 2,
            }
        }
        if self.wildcard_tail {
            return Some(score);
        }
        match parts.next() {
            None => Some(score + 1),
            Some(_) => None,
        }
    }

    /// The path segments under this pattern's `:param`s, in order (as sent,
    /// not percent-decoded: uWS.js's `getParameter`). Call on a match.
    pub(crate) fn params<'p>(&self, path: &'p str) -> Vec<&'p str> {
        let parts = path.trim_start_matches('/').split('/');
        self.segments.iter().zip(parts).filter(|(seg, _)| **seg == Seg::Param).map(|(_, part)| part).collect()
    }
}

pub(crate) struct WsRoute {
    pub pattern: Pattern,
    pub behavior: Arc<Behavior>,
    /// A JS `upgrade` handler decides; otherwise every valid upgrade is accepted here.
    pub js_upgrade: bool,
}

pub(crate) struct HttpRoute {
    /// Lowercase method, or None for `any`.
    pub method: Option<String>,
    pub pattern: Pattern,
    /// Answered in Rust, body included (Engine.IO long-polling on an App);
    /// None: JS decides (`RequestSink::request`).
    pub service: Option<Arc<dyn HttpService>>,
}

/// An HTTP route served in Rust: the request with its body, and an answer
/// that may come later (a held long-polling GET).
pub(crate) trait HttpService: Send + Sync + 'static {
    /// How large a body this request may have, or the whole response that
    /// refuses it before the body is read.
    fn body_limit(&self, req: &Request) -> Result<usize, Vec<u8>>;
    /// The body `body_limit` allowed never came whole (`too_large`: it
    /// passed the limit and was refused with 413).
    fn body_failed(&self, _req: &Request, _too_large: bool) {}
    /// The complete response. Dropping the future (the client went away)
    /// must release whatever it waits on.
    fn serve(&self, req: Request, body: Vec<u8>, remote: SocketAddr, secure: bool) -> ServiceFuture;
}

pub(crate) type ServiceFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>;

/// Every route of a server, WebSocket and HTTP, in registration order (the
/// index is the route's id for the layer above).
#[derive(Default)]
pub(crate) struct Routes {
    ws: Vec<WsRoute>,
    http: Vec<HttpRoute>,
}

impl Routes {
    pub(crate) fn add_ws(&mut self, route: WsRoute) -> u16 {
        self.ws.push(route);
        (self.ws.len() - 1) as u16
    }

    pub(crate) fn add_http(&mut self, route: HttpRoute) -> u16 {
        self.http.push(route);
        (self.http.len() - 1) as u16
    }

    /// The most specific WebSocket route for `path`, with its id.
    pub(crate) fn ws_for(&self, path: &str) -> Option<(u16, &WsRoute)> {
        best(self.ws.iter().enumerate().map(|(i, r)| (i, r, &r.pattern)), path).map(|(i, r)| (i as u16, r))
    }

    /// The Rust service of HTTP route `id`, if it has one.
    pub(crate) fn service(&self, id: u16) -> Option<Arc<dyn HttpService>> {
        self.http.get(id as usize).and_then(|r| r.service.clone())
    }

    /// The `:param` values of `path` under HTTP route `id`'s pattern.
    pub(crate) fn http_params<'p>(&self, id: u16, path: &'p str) -> Vec<&'p str> {
        self.http.get(id as usize).map(|r| r.pattern.params(path)).unwrap_or_default()
    }

    /// The `:param` values of `path` under WebSocket route `id`'s pattern.
    pub(crate) fn ws_params<'p>(&self, id: u16, path: &'p str) -> Vec<&'p str> {
        self.ws.get(id as usize).map(|r| r.pattern.params(path)).unwrap_or_default()
    }

    /// The most specific HTTP route for a lowercase `method` and `path`.
    pub(crate) fn http_for(&self, method: &str, path: &str) -> Option<u16> {
        let candidates = self
            .http
            .iter()
            .enumerate()
            .filter(|(_, r)| r.method.as_deref().is_none_or(|m| m == method))
            .map(|(i, r)| (i, r, &r.pattern));
        best(candidates, path).map(|(i, _)| i as u16)
    }
}

fn best<'a, T>(items: impl Iterator<Item = (usize, &'a T, &'a Pattern)>, path: &str) -> Option<(usize, &'a T)>
where
    T: 'a,
{
    let mut found: Option<(u32, usize, &T)> = None;
    for (i, item, p) in items {
        if let Some(score) = p.matches(path) {
            if found.is_none_or(|(s, _, _)| score > s) {
                found = Some((score, i, item));
            }
        }
    }
    found.map(|(_, i, t)| (i, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_uws() {
        let p = Pattern::parse("/*");
        assert!(p.matches("/").is_some() && p.matches("/a/b").is_some());
        let p = Pattern::parse("/chat");
        assert!(p.matches("/chat").is_some());
        assert!(p.matches("/chat/x").is_none() && p.matches("/other").is_none());
        let p = Pattern::parse("/user/:id");
        assert!(p.matches("/user/7").is_some() && p.matches("/user").is_none());
        let p = Pattern::parse("/static/*");
        assert!(p.matches("/static/a.js").is_some() && p.matches("/x/a.js").is_none());
    }

    #[test]
    fn params_are_the_segments_under_the_params() {
        let p = Pattern::parse("/u/:id/x/:name");
        assert_eq!(p.params("/u/12/x/b%20ob"), ["12", "b%20ob"]);
        assert!(Pattern::parse("/files/*").params("/files/a/b").is_empty());
        assert_eq!(Pattern::parse("/:a/*").params("/one/two/three"), ["one"]);
    }

    #[test]
    fn most_specific_route_wins_regardless_of_order() {
        let pats = [Pattern::parse("/*"), Pattern::parse("/user/:id"), Pattern::parse("/user/me")];
        let pick = |path: &str| best(pats.iter().enumerate().map(|(i, p)| (i, p, p)), path).map(|(i, _)| i);
        assert_eq!(pick("/user/me"), Some(2));
        assert_eq!(pick("/user/7"), Some(1));
        assert_eq!(pick("/elsewhere"), Some(0));
    }
}
