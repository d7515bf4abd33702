//! The only code that knows about N-API: option conversion, the `NativeApp`
//! handle JS holds, and batched event delivery to JS.

mod app;
mod core;
mod engineio;
mod events;
mod fast_send;
mod http;
mod loop_read;
mod redis;
mod scale_out;
mod socketio;

use napi_derive::napi;

#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Loads `ssl` as `SSLApp` would (reads the files, decrypts the key, pairs
/// it with the certificate) and drops the result: `new Server({ tls })`
/// fails at construction, before it listens, without starting a runtime.
#[napi]
pub fn check_tls(ssl: app::SslOptions) -> napi::Result<()> {
    app::load_tls(&ssl).map(|_| ())
}
