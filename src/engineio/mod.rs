//! Engine.IO v4: the packet codec (pure), sessions with the server-driven
//! heartbeat over WebSocket (engine.rs); long-polling and upgrades next (#3).

// Parts of the codec serve the polling transport, issue #3's next step.
#[allow(dead_code)]
pub(crate) mod packet;
// Used by the Socket.IO layer and N-API handle, issue #3's next steps.
#[allow(dead_code)]
pub(crate) mod engine;
#[cfg(test)]
mod tests;
