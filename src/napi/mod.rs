//! The only code that knows about N-API: option conversion, the `NativeApp`
//! handle JS holds, and batched event delivery to JS.

mod app;
mod core;
mod engineio;
mod events;
mod http;
mod redis;
mod scale_out;
mod socketio;

use napi_derive::napi;

#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
