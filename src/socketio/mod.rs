//! Socket.IO v5: the packet codec (pure, no JSON DOM: payload shape is
//! validated by a scanner and parsed once, in JS), and later namespaces,
//! acks and binary attachments on top of Engine.IO (issue #3).

// The namespace/session layer that uses the codec is issue #3's next step.
#[allow(dead_code)]
pub(crate) mod packet;
