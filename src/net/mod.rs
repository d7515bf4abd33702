//! Listeners, the rustls acceptor configuration, and the tokio runtime that owns them.
//!
//! Nothing here knows about WebSocket frames: a listener hands each accepted
//! stream to a callback chosen by the layer above.

pub(crate) mod listener;
pub(crate) mod runtime;
pub(crate) mod tls;

pub(crate) use listener::{bind, ListenOptions};
pub(crate) use runtime::build_runtime;
pub(crate) use tls::{load_server_config, TlsSource};
