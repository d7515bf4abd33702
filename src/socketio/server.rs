//! Socket.IO v5 on top of Engine.IO sessions: namespace membership, packet
//! routing, binary attachments, rooms and broadcast fan-out.
//!
//! What needs user code goes up through [`SioHandler`] (CONNECT so that JS
//! middleware can decide, events and acks as raw JSON text for one
//! `JSON.parse` in JS); everything else stays here. Rooms are topics named
//! `nsp#room` in a topic tree of clients; `nsp#` holds every socket of the
//! namespace, so a broadcast with no rooms is a topic publish too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::packet::{self, Limits, PacketType};
use crate::engineio::engine::{CloseReason, EngineHandler, Session, SharedMessage};
use crate::engineio::packet::{Packet as EioPacket, Payload};
use crate::pubsub::TopicTree;

/// What the layer above (the N-API handle) is told.
pub(crate) trait SioHandler: Send + Sync + 'static {
    /// A CONNECT to `nsp`; `auth` is the raw JSON object text ("" if none).
    /// Answer with [`SioServer::accept`] or [`SioServer::reject`].
    fn connect(&self, client: &Arc<Client>, nsp: &str, auth: &str);
    /// An EVENT or ACK (binary ones with their attachments) on a connected namespace.
    fn packet(
        &self,
        client: &Arc<Client>,
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        data: &str,
        attachments: Vec<Bytes>,
    );
    /// The client left `nsp` ("client namespace disconnect").
    fn disconnect(&self, client: &Arc<Client>, nsp: &str);
    /// The Engine.IO session ended; every namespace of the client is gone.
    fn close(&self, client: &Arc<Client>, reason: CloseReason);
    /// A held polling GET can be answered (see `Engine::poll_drain`).
    fn poll_ready(&self, req: u64);
}

/// A binary packet waiting for its attachments (the next N binary messages).
struct PendingBinary {
    text: String,
    expected: u32,
    attachments: Vec<Bytes>,
}

pub(crate) struct Client {
    /// Stable id handed to JS (sessions are keyed by string sid on the wire).
    pub(crate) key: u64,
    pub(crate) session: Arc<Session>,
    /// Connected namespaces -> their Socket.IO socket id.
    nsps: Mutex<Namespaces>,
    pending: Mutex<Option<PendingBinary>>,
    /// Set until the first namespace connects (for connectTimeout).
    waiting_since: Mutex<Option<Instant>>,
}

impl Client {
    /// The socket id in `nsp`, for tests to check what `accept`/`leave` recorded.
    #[cfg(test)]
    pub(crate) fn socket_id(&self, nsp: &str) -> Option<String> {
        self.nsps.lock().get(nsp).map(str::to_string)
    }

    /// Sends one encoded Socket.IO packet and its attachments.
    fn send_packet(&self, text: &str, attachments: &[Bytes]) -> bool {
        let mut ok = self.session.send(&EioPacket::Message(Payload::text(text)));
        for a in attachments {
            ok &= self.session.send(&EioPacket::Message(Payload::Binary(a.clone())));
        }
        ok
    }
}

/// A client's namespaces and its socket id in each: almost always one, so a
/// short list rather than a map. An empty id marks a CONNECT that JS has not
/// answered yet.
#[derive(Default)]
struct Namespaces(Vec<(Box<str>, Box<str>)>);

impl Namespaces {
    /// The socket id in `nsp`, if connected (not merely pending).
    fn get(&self, nsp: &str) -> Option<&str> {
        self.0.iter().find(|(n, id)| &**n == nsp && !id.is_empty()).map(|(_, id)| &**id)
    }

    fn contains_key(&self, nsp: &str) -> bool {
        self.get(nsp).is_some()
    }

    /// Connected or pending.
    fn known(&self, nsp: &str) -> bool {
        self.0.iter().any(|(n, _)| &**n == nsp)
    }

    /// Returns the socket id this one replaces, if any.
    fn insert(&mut self, nsp: &str, socket_id: &str) -> Option<Box<str>> {
        let old = self.remove(nsp).filter(|id| !id.is_empty());
        self.0.push((nsp.into(), socket_id.into()));
        old
    }

    fn remove(&mut self, nsp: &str) -> Option<Box<str>> {
        let i = self.0.iter().position(|(n, _)| &**n == nsp)?;
        Some(self.0.swap_remove(i).1)
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().filter(|(_, id)| !id.is_empty()).map(|(n, _)| n.to_string()).collect()
    }
}

fn topic(nsp: &str, room: &str) -> String {
    format!("{nsp}#{room}")
}

pub(crate) struct SioServer {
    handler: Arc<dyn SioHandler>,
    limits: Limits,
    /// A client that joins no namespace within this is closed (socket.io's
    /// connectTimeout): an open Engine.IO session alone authorises nothing.
    connect_timeout: Duration,
    next_key: AtomicU64,
    clients: Mutex<HashMap<u64, Arc<Client>>>,
    rooms: Mutex<TopicTree<Arc<Client>>>,
    /// Socket id -> client: each socket's own room (named by its id) is this
    /// lookup, not a topic (a topic per socket cost ~250 B each).
    by_socket: Mutex<HashMap<Box<str>, u64>>,
    /// Closed clients whose close JS has not handled yet.
    departed: Mutex<HashMap<u64, Arc<Client>>>,
}

impl SioServer {
    pub(crate) fn new(handler: Arc<dyn SioHandler>, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            handler,
            limits: Limits::default(),
            connect_timeout,
            next_key: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
            by_socket: Mutex::new(HashMap::new()),
            departed: Mutex::new(HashMap::new()),
            rooms: Mutex::new(TopicTree::default()),
        })
    }

    pub(crate) fn client(&self, key: u64) -> Option<Arc<Client>> {
        self.clients.lock().get(&key).cloned()
    }

    /// Middleware passed: the client joins `nsp` as `socket_id` (with the
    /// namespace-wide topic and its own room, named by the socket id) and
    /// gets `40{"sid":…}`.
    pub(crate) fn accept(&self, key: u64, nsp: &str, socket_id: &str) -> bool {
        let Some(c) = self.client(key) else { return false };
        {
            // Lock order: rooms -> clients -> nsps -> by_socket. Under the
            // rooms lock a client that closed meanwhile is not resubscribed.
            let mut rooms = self.rooms.lock();
            if !self.clients.lock().contains_key(&key) {
                return false;
            }
            let replaced = c.nsps.lock().insert(nsp, socket_id);
            if replaced.is_some() {
                // The earlier socket's rooms go with it.
                let prefix = topic(nsp, "");
                for t in rooms.topics_of(key) {
                    if t.starts_with(&prefix) {
                        rooms.unsubscribe(key, &t);
                    }
                }
            }
            rooms.subscribe(key, &c, &topic(nsp, ""));
            let mut by_socket = self.by_socket.lock();
            if let Some(old) = replaced {
                by_socket.remove(&old);
            }
            by_socket.insert(socket_id.into(), key);
        }
        *c.waiting_since.lock() = None;
        c.send_packet(&packet::encode(PacketType::Connect, nsp, None, 0, &packet::connect_payload(socket_id)), &[])
    }

    /// Middleware refused: `44{"message":…,"data":…}`; the client stays
    /// connected to the engine (it may try another namespace).
    pub(crate) fn reject(&self, key: u64, nsp: &str, message: &str, data_json: Option<&str>) -> bool {
        let Some(c) = self.client(key) else { return false };
        // Refused: the namespace is no longer pending (the client may retry).
        if !c.nsps.lock().contains_key(nsp) {
            c.nsps.lock().remove(nsp);
        }
        let payload = packet::connect_error_payload(message, data_json);
        c.send_packet(&packet::encode(PacketType::ConnectError, nsp, None, 0, &payload), &[])
    }

    /// Sends an already encoded Socket.IO packet (`2["ev",…]`, `3…`; the
    /// Engine.IO `4` is added by the transport) to one client.
    pub(crate) fn emit(&self, key: u64, text: &str, attachments: &[Bytes]) -> bool {
        self.client(key).is_some_and(|c| c.send_packet(text, attachments))
    }

    pub(crate) fn join(&self, key: u64, nsp: &str, room: &str) -> bool {
        let Some(c) = self.client(key) else { return false };
        let mut rooms = self.rooms.lock();
        self.clients.lock().contains_key(&key)
            && c.nsps.lock().contains_key(nsp)
            && rooms.subscribe(key, &c, &topic(nsp, room))
    }

    pub(crate) fn leave(&self, key: u64, nsp: &str, room: &str) -> bool {
        self.rooms.lock().unsubscribe(key, &topic(nsp, room))
    }

    /// The clients with a socket of `nsp` in any of `rooms` (all of the
    /// namespace when empty), minus those in any of `except_rooms` and minus
    /// `skip` (the sender, for `socket.to(...)`/`socket.broadcast`).
    fn select(&self, nsp: &str, rooms: &[&str], except_rooms: &[&str], skip: Option<u64>) -> Vec<Arc<Client>> {
        let topics: Vec<String> =
            if rooms.is_empty() { vec![topic(nsp, "")] } else { rooms.iter().map(|r| topic(nsp, r)).collect() };
        let except: Vec<String> = except_rooms.iter().map(|r| topic(nsp, r)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let except: Vec<&str> = except.iter().map(String::as_str).collect();
        // Own rooms (socket ids) among the targets and the exceptions.
        // A socket id names one socket of one namespace: only sockets of
        // `nsp` count.
        let own = |names: &[&str]| -> Vec<(u64, Arc<Client>)> {
            let found: Vec<u64> = {
                let by_socket = self.by_socket.lock();
                names.iter().filter_map(|n| by_socket.get(*n).copied()).collect()
            };
            found
                .into_iter()
                .filter_map(|k| self.client(k).map(|c| (k, c)))
                .filter(|(_, c)| c.nsps.lock().get(nsp).is_some_and(|id| names.contains(&id)))
                .collect()
        };
        let (own_in, own_out) = (own(rooms), own(except_rooms));
        let own_out: Vec<u64> = own_out.into_iter().map(|(k, _)| k).collect();
        let mut targets = Vec::new();
        {
            let tree = self.rooms.lock();
            tree.for_each_union(&topics, &except, skip, |k, c| {
                if !own_out.contains(&k) {
                    targets.push(c.clone())
                }
            });
            for (k, c) in own_in {
                let dup = topics.iter().any(|t| tree.is_subscribed(k, t));
                let excluded =
                    Some(k) == skip || own_out.contains(&k) || except.iter().any(|t| tree.is_subscribed(k, t));
                if !dup && !excluded && !targets.iter().any(|t: &Arc<Client>| t.key == k) {
                    targets.push(c);
                }
            }
        }
        targets
    }

    /// One encoded packet to every client [`select`](Self::select) picks.
    /// The packet is encoded once by the caller and shared. Returns
    /// recipients.
    pub(crate) fn broadcast(
        &self,
        nsp: &str,
        rooms: &[&str],
        except_rooms: &[&str],
        skip: Option<u64>,
        text: &str,
        attachments: &[Bytes],
    ) -> usize {
        let targets = self.select(nsp, rooms, except_rooms, skip);
        // Built once (Engine.IO frames each for its transports); every
        // recipient queues the same bytes.
        let message = SharedMessage::new(EioPacket::Message(Payload::Text(Bytes::copy_from_slice(text.as_bytes()))));
        let attached: Vec<SharedMessage> =
            attachments.iter().map(|a| SharedMessage::new(EioPacket::Message(Payload::Binary(a.clone())))).collect();
        for c in &targets {
            c.session.send_shared(&message);
            for a in &attached {
                c.session.send_shared(a);
            }
        }
        targets.len()
    }

    /// Server-side namespace disconnect (`socket.disconnect()`): `41`.
    pub(crate) fn disconnect(&self, key: u64, nsp: &str) -> bool {
        let Some(c) = self.client(key) else { return false };
        if !self.leave_nsp(&c, nsp) {
            return false;
        }
        c.send_packet(&packet::encode(PacketType::Disconnect, nsp, None, 0, ""), &[])
    }

    /// `socket.disconnect(true)`: `41` for every namespace, then the
    /// connection closes.
    pub(crate) fn disconnect_all(&self, key: u64) -> bool {
        let Some(c) = self.client(key) else { return false };
        let nsps: Vec<String> = c.nsps.lock().names();
        for nsp in nsps {
            if self.leave_nsp(&c, &nsp) {
                c.send_packet(&packet::encode(PacketType::Disconnect, &nsp, None, 0, ""), &[]);
            }
        }
        c.session.close();
        true
    }

    /// Removes `c` from `nsp` and all its rooms there. False if it was not in it.
    fn leave_nsp(&self, c: &Arc<Client>, nsp: &str) -> bool {
        let mut rooms = self.rooms.lock();
        let Some(socket_id) = c.nsps.lock().remove(nsp).filter(|id| !id.is_empty()) else { return false };
        self.by_socket.lock().remove(&socket_id);
        let prefix = topic(nsp, "");
        for t in rooms.topics_of(c.key) {
            if t.starts_with(&prefix) {
                rooms.unsubscribe(c.key, &t);
            }
        }
        true
    }

    fn on_text(&self, c: &Arc<Client>, text: &str) -> Result<(), ()> {
        // Text while a binary packet waits for its attachments: socket.io-parser
        // throws ("got plaintext data when reconstructing a packet").
        if c.pending.lock().is_some() {
            return Err(());
        }
        let p = packet::decode(text, &self.limits).map_err(|_| ())?;
        let connected = c.nsps.lock().contains_key(p.nsp);
        match p.kind {
            PacketType::Connect => {
                // A second CONNECT to a joined namespace is a protocol
                // violation. One while the first is still in the middleware
                // is not (socket.io-client sends it when `connect()` is
                // called on a socket that is already connecting): the later
                // accept replaces the earlier socket, as in socket.io.
                {
                    let mut nsps = c.nsps.lock();
                    if connected {
                        return Err(());
                    }
                    if !nsps.known(p.nsp) {
                        nsps.0.push((p.nsp.into(), "".into()));
                    }
                }
                self.handler.connect(c, p.nsp, p.data);
            }
            PacketType::Disconnect => {
                if self.leave_nsp(c, p.nsp) {
                    self.handler.disconnect(c, p.nsp);
                }
            }
            PacketType::Event | PacketType::Ack => {
                // Before CONNECT to that namespace: engine.io closes ("parse error").
                if !connected {
                    return Err(());
                }
                self.handler.packet(c, p.kind, p.nsp, p.id, p.data, Vec::new());
            }
            PacketType::BinaryEvent | PacketType::BinaryAck => {
                if !connected {
                    return Err(());
                }
                if p.attachments == 0 {
                    self.handler.packet(c, p.kind, p.nsp, p.id, p.data, Vec::new());
                } else {
                    *c.pending.lock() = Some(PendingBinary {
                        text: text.to_string(),
                        expected: p.attachments,
                        attachments: Vec::new(),
                    });
                }
            }
            // Clients never send CONNECT_ERROR (socket.io closes: "invalid state").
            PacketType::ConnectError => return Err(()),
        }
        Ok(())
    }

    fn on_binary(&self, c: &Arc<Client>, data: Bytes) -> Result<(), ()> {
        let done = {
            let mut pending = c.pending.lock();
            let Some(p) = pending.as_mut() else { return Err(()) }; // attachment with no packet
            p.attachments.push(data);
            if p.attachments.len() as u32 == p.expected {
                pending.take()
            } else {
                None
            }
        };
        if let Some(p) = done {
            let decoded = packet::decode(&p.text, &self.limits).map_err(|_| ())?;
            self.handler.packet(c, decoded.kind, decoded.nsp, decoded.id, decoded.data, p.attachments);
        }
        Ok(())
    }

    fn close_client(&self, key: u64) -> Option<Arc<Client>> {
        let mut rooms = self.rooms.lock();
        let c = self.clients.lock().remove(&key)?;
        rooms.unsubscribe_all(key);
        let gone = std::mem::take(&mut *c.nsps.lock());
        let mut by_socket = self.by_socket.lock();
        for (_, socket_id) in gone.0 {
            if !socket_id.is_empty() {
                by_socket.remove(&socket_id);
            }
        }
        drop(by_socket);
        drop(rooms);
        // Readable (handshake) until JS has run its disconnect handlers.
        self.departed.lock().insert(key, c.clone());
        Some(c)
    }

    /// A client, connected or closed but not yet released by JS.
    pub(crate) fn client_or_departed(&self, key: u64) -> Option<Arc<Client>> {
        self.client(key).or_else(|| self.departed.lock().get(&key).cloned())
    }

    /// JS has handled the close of `key`.
    pub(crate) fn release(&self, key: u64) {
        self.departed.lock().remove(&key);
    }
}

impl EngineHandler for SioServer {
    fn open(&self, session: &Arc<Session>) {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(Client {
            key,
            session: session.clone(),
            nsps: Mutex::new(Namespaces::default()),
            pending: Mutex::new(None),
            waiting_since: Mutex::new(Some(Instant::now())),
        });
        session.tag.store(key, Ordering::Relaxed);
        self.clients.lock().insert(key, c);
    }

    fn message(&self, session: &Arc<Session>, payload: Payload) -> Result<(), ()> {
        let key = session.tag.load(Ordering::Relaxed);
        let Some(c) = self.client(key) else { return Ok(()) };
        match payload {
            Payload::Text(t) => self.on_text(&c, std::str::from_utf8(&t).map_err(|_| ())?),
            Payload::Binary(b) => self.on_binary(&c, b),
        }
    }

    fn tick(&self, now: Instant) {
        let late: Vec<Arc<Client>> = self
            .clients
            .lock()
            .values()
            .filter(|c| {
                c.waiting_since.lock().is_some_and(|t| now.saturating_duration_since(t) >= self.connect_timeout)
            })
            .cloned()
            .collect();
        for c in late {
            *c.waiting_since.lock() = None;
            c.session.close();
        }
    }

    fn poll_ready(&self, req: u64) {
        self.handler.poll_ready(req);
    }

    fn close(&self, session: &Arc<Session>, reason: CloseReason) {
        let key = session.tag.load(Ordering::Relaxed);
        if let Some(c) = self.close_client(key) {
            self.handler.close(&c, reason);
        }
    }
}
