//! `NativeEngineIo`: a raw Engine.IO server (engine.io's `Server`, without
//! Socket.IO on top) for lib/engineio/server.js. Used by apps that speak
//! Engine.IO directly and by the official Engine.IO protocol test suite.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Either, Function};
use napi::Result;
use napi_derive::napi;
use parking_lot::Mutex;

use super::core::{Core, CoreOptions};
use super::events::EventSink;
use super::http::{self, EngineOptions, NativeEngineFront};
use crate::engineio::engine::{CloseReason, Engine, EngineHandler, Refusal, Session};
use crate::engineio::packet::{Packet, Payload};
use crate::ws::Request;

/// Sessions by a numeric key JS can hold, and their events to JS.
struct RawSessions {
    sink: Arc<EventSink>,
    next: AtomicU64,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
}

impl EngineHandler for RawSessions {
    fn open(&self, session: &Arc<Session>) {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        session.tag.store(key, Ordering::Relaxed);
        self.sessions.lock().insert(key, session.clone());
        self.sink.eio_open(key, &session.sid, &session.remote());
    }

    fn message(&self, session: &Arc<Session>, payload: Payload) -> std::result::Result<(), ()> {
        let key = session.tag.load(Ordering::Relaxed);
        self.sink.eio_message(key, payload.is_binary(), payload.as_bytes());
        Ok(())
    }

    fn close(&self, session: &Arc<Session>, reason: CloseReason) {
        let key = session.tag.load(Ordering::Relaxed);
        if self.sessions.lock().remove(&key).is_some() {
            self.sink.eio_close(key, reason);
        }
    }

    fn poll_ready(&self, req: u64) {
        self.sink.poll_ready_event(req);
    }

    fn upgrade(&self, session: &Arc<Session>) {
        self.sink.upgrade_event(session.tag.load(Ordering::Relaxed));
    }

    fn refused(&self, refusal: &Refusal, req: &Request) {
        self.sink.refused_event(refusal, req);
    }
}

#[napi]
pub struct NativeEngineIo {
    core: Arc<Core>,
    engine: Arc<Engine>,
    raw: Arc<RawSessions>,
}

#[napi]
impl NativeEngineIo {
    #[napi(constructor)]
    pub fn new(
        opts: EngineOptions,
        on_events: Function<napi::Either<u32, Buffer>, ()>,
        scratch: Buffer,
    ) -> Result<Self> {
        let core = Arc::new(Core::new(
            CoreOptions { workers: opts.workers, handshake_timeout_ms: opts.handshake_timeout, ..Default::default() },
            on_events,
            scratch,
        )?);
        let cfg = http::engine_config(&opts);
        let max_payload = cfg.max_payload;
        let raw = Arc::new(RawSessions {
            sink: core.sink.clone(),
            next: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
        });
        let engine = Engine::new(cfg, raw.clone());
        http::mount(&core, &engine, opts.path.as_deref().unwrap_or("/engine.io"), max_payload)?;
        Ok(Self { core, engine, raw })
    }

    /// Sends a text (string) or binary (Buffer) message to one session.
    #[napi]
    pub fn send(&self, key: i64, data: Either<String, Buffer>) -> bool {
        let Some(s) = self.raw.sessions.lock().get(&(key as u64)).cloned() else { return false };
        let payload = match data {
            Either::A(text) => Payload::text(text),
            Either::B(buf) => Payload::Binary(Bytes::copy_from_slice(&buf)),
        };
        s.send(&Packet::Message(payload))
    }

    /// Server-side close of one session ("forced close").
    #[napi]
    pub fn close_session(&self, key: i64) -> bool {
        let Some(s) = self.raw.sessions.lock().get(&(key as u64)).cloned() else { return false };
        s.close();
        true
    }

    /// The Engine.IO HTTP front's native half (polls, upgrades, sessions).
    #[napi]
    pub fn front(&self) -> NativeEngineFront {
        NativeEngineFront::new(&self.core, &self.engine)
    }

    /// "polling" or "websocket" (None: gone).
    #[napi]
    pub fn transport_name(&self, key: i64) -> Option<String> {
        self.raw.sessions.lock().get(&(key as u64)).map(|s| s.transport_name().to_string())
    }

    #[napi]
    pub fn close(&self) {
        self.engine.close_all();
        self.core.close();
    }
}
