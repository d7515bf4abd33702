//! Broadcasts across nodes (#12): what a Redis link brings in is delivered
//! as a local broadcast (framed once, no JS), and a local broadcast goes out
//! in the fleet's protocol (classic or sharded). The link itself, and the message format,
//! are the adapter layer's (`crate::adapter::redis`).

use std::sync::Arc;

use bytes::Bytes;

use super::packet::{self, PacketType};
use super::server::SioServer;
use crate::adapter::redis::wire::{Broadcast, Flags};
use crate::adapter::redis::Fleet;
use crate::adapter::BroadcastOptions;

impl SioServer {
    /// The link broadcasts cross from now on (None: this node alone).
    pub(crate) fn set_remote(&self, link: Option<Arc<dyn Fleet>>) {
        *self.remote.write() = link;
    }

    pub(crate) fn remote(&self) -> Option<Arc<dyn Fleet>> {
        self.remote.read().clone()
    }

    /// A broadcast another node published: to the local sockets it selects,
    /// as if emitted here. Returns recipients.
    pub(crate) fn deliver_remote(&self, b: &Broadcast) -> usize {
        let n = b.attachments.len() as u32;
        let kind = if n == 0 { PacketType::Event } else { PacketType::BinaryEvent };
        let text = packet::encode(kind, &b.nsp, None, n, &b.data);
        let opts = BroadcastOptions {
            nsp: b.nsp.clone(),
            rooms: b.rooms.clone(),
            except: b.except.clone(),
            except_client: None,
        };
        self.broadcast(&opts, &text, &b.attachments, b.flags.volatile, b.flags.compress != Some(false))
    }

    /// This node's broadcast `text` (an EVENT packet it encoded) for the
    /// other nodes: `except_ids` are socket ids the local selection skipped
    /// by key (the sender of `socket.broadcast`). False when there is no
    /// link, the packet is not an event, or the link dropped it.
    pub(crate) fn publish_remote(
        &self,
        opts: &BroadcastOptions,
        text: &str,
        attachments: &[Bytes],
        except_ids: &[String],
        flags: Flags,
    ) -> bool {
        let Some(link) = self.remote() else { return false };
        let Some(data) = packet::event_data(text) else { return false };
        let mut except = opts.except.clone();
        except.extend(except_ids.iter().cloned());
        link.publish_broadcast(&Broadcast {
            uid: link.uid().to_string(),
            nsp: opts.nsp.clone(),
            data: data.to_string(),
            attachments: attachments.to_vec(),
            rooms: opts.rooms.clone(),
            except,
            flags,
        })
    }
}
