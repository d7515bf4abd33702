//! Engine.IO v4: the packet codec (pure), and later sessions, heartbeats and
//! the polling and WebSocket transports (issue #3).

// The session layer that uses the codec is issue #3's next step.
#[allow(dead_code)]
pub(crate) mod packet;
