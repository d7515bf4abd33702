//! Engine.IO v4: the packet codec (pure, packet.rs) and the engine
//! (engine.rs): sessions over long-polling or WebSocket, the upgrade between
//! them, and the server-driven heartbeat.

pub(crate) mod engine;
pub(crate) mod packet;
#[cfg(test)]
mod tests;
