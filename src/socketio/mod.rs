//! Socket.IO v5 on top of Engine.IO: the packet codec (pure, packet.rs; no
//! JSON DOM: payload shape is checked by a scanner and parsed once, in JS)
//! and the server (server.rs): namespaces, binary attachments, rooms and
//! broadcast framed once.

mod json_shape;
pub(crate) mod packet;
mod remote;
pub(crate) mod server;
#[cfg(test)]
mod tests;
