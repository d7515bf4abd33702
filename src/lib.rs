//! ferrosocket core.
mod napi;
