//! Engine.IO v4 (and v3, for socket.io-client v2 with `allowEIO3`): the
//! packet codecs (pure: packet.rs, and v3.rs where v3 differs) and the engine
//! (engine.rs): sessions over long-polling or WebSocket, the upgrade between
//! them, and the heartbeat.

pub(crate) mod engine;
pub(crate) mod packet;
#[cfg(test)]
mod tests;
pub(crate) mod v3;
