//! Listeners, the rustls acceptor configuration, and the tokio runtime that owns them.
//!
//! Nothing here knows about WebSocket frames: a listener hands each accepted
//! stream to a callback chosen by the layer above.

pub(crate) mod listener;
pub(crate) mod runtime;
pub(crate) mod tls;
#[cfg(any(test, fuzzing))]
pub(crate) mod tls_peer;
pub(crate) mod tls_records;
pub(crate) mod tls_session;
pub(crate) mod tls_stream;

pub(crate) use listener::{bind, ListenOptions};
pub(crate) use runtime::build_runtime;
pub(crate) use tls::{load_server_config, TlsSource};
pub(crate) use tls_session::TlsSession;

/// Remote address as uWS.js prints it: dotted IPv4 (also for IPv4-mapped
/// IPv6), IPv6 as eight zero-padded lowercase hex groups.
pub(crate) fn ip_text(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let g = v6.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ip_text_matches_uws() {
        use std::net::IpAddr;
        let t = |s: &str| super::ip_text(s.parse::<IpAddr>().unwrap());
        assert_eq!(t("127.0.0.1"), "127.0.0.1");
        assert_eq!(t("::1"), "0000:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!(t("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(t("fe80::abcd"), "fe80:0000:0000:0000:0000:0000:0000:abcd");
    }
}
