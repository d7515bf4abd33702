//! Socket.IO v5: the packet codec (pure, no JSON DOM: payload shape is
//! validated by a scanner and parsed once, in JS), and later namespaces,
//! acks, binary attachments, rooms and broadcast on top of Engine.IO (server.rs).

// Parts of the codec serve the JS-facing layer, issue #3's next step.
#[allow(dead_code)]
pub(crate) mod packet;
// Driven by the N-API handle, issue #3's next step.
#[allow(dead_code)]
pub(crate) mod server;
#[cfg(test)]
mod tests;
