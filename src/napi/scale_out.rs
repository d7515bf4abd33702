//! `App({ scaleOut })` (#12 item 5): the App's topics across nodes over
//! Redis. A message another node published is delivered here exactly as a
//! local `app.publish` (framed once, every subscriber), then flushed; no JS.

use std::sync::Arc;

use napi::Result;
use napi_derive::napi;

use super::app::NativeApp;
use super::core::err;
use super::events::EventSink;
use super::redis::{RedisStats, RedisTls};
use crate::adapter::redis::link::LinkState;
use crate::adapter::redis::topics::{TopicHandler, Topics};
use crate::engineio::packet::generate_sid;
use crate::ws::ServerCore;

struct Inbound {
    server: Arc<ServerCore>,
    sink: Arc<EventSink>,
}

impl TopicHandler for Inbound {
    fn deliver(&self, topic: &str, payload: &[u8], binary: bool) {
        self.server.publish(topic, payload, binary, None, false);
    }

    /// The server knows which sockets have frames queued: nothing to track here.
    fn drained(&self) {
        self.server.flush();
    }

    fn state(&self, state: LinkState, error: Option<String>) {
        self.sink.redis_state(state as u8, error.as_deref().unwrap_or(""));
    }
}

#[napi]
impl NativeApp {
    /// Links the App's topics to every App publishing under `prefix` on the
    /// Redis at `url` (`tls`: for a `rediss://` URL); the state arrives as
    /// REDIS_STATE events. Once.
    #[napi]
    pub fn scale_out(&self, url: String, prefix: String, tls: Option<RedisTls>) -> Result<()> {
        let tls = RedisTls::config(tls.as_ref())?;
        if self.topics.read().is_some() {
            return Err(err("ferrosocket: this App is already scaled out"));
        }
        let uid = generate_sid().map_err(err)?[..12].to_string();
        let inbound = Arc::new(Inbound { server: self.core().server.clone(), sink: self.core().sink.clone() });
        let topics = self.core().enter(|| Topics::connect(&url, tls, prefix, uid, inbound))?.map_err(err)?;
        *self.topics.write() = Some(Arc::new(topics));
        Ok(())
    }

    #[napi]
    pub fn scale_out_stats(&self) -> Option<RedisStats> {
        self.topics.read().as_ref().map(|t| RedisStats::of(&t.link))
    }
}
