//! Socket.IO v5 on top of Engine.IO sessions: namespace membership, packet
//! routing, binary attachments, rooms and broadcast fan-out.
//!
//! What needs user code goes up through [`SioHandler`] (CONNECT so that JS
//! middleware can decide, events and acks as raw JSON text for one
//! `JSON.parse` in JS); everything else stays here. Who is in which room,
//! and who a broadcast reaches, is the adapter's (`crate::adapter`).
//!
//! A socket leaves its rooms when JS says it has (`remove_socket`, after its
//! 'disconnecting' handlers), not when the client goes: socket.io's
//! operators still find a socket there during those handlers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::packet::{self, Limits, PacketType};
use crate::adapter::recovery::{PacketLog, RecoveryConfig};
use crate::adapter::redis::Fleet;
use crate::adapter::{BroadcastOptions, Member, Rooms};
use crate::engineio::engine::{CloseReason, EngineHandler, Refusal, Session, SharedMessage};
use crate::engineio::packet::{form_decode, generate_sid, Packet as EioPacket, Payload};
use crate::json::push_json_string;
use crate::ws::Request;

/// What the layer above (the N-API handle) is told.
pub(crate) trait SioHandler: Send + Sync + 'static {
    /// A CONNECT to `nsp`; `auth` is the raw JSON object text ("" if none);
    /// `socket_id` the id of the socket it makes (socket.io's ids, from the
    /// same generator as Engine.IO sids), `pid` its private session id for
    /// connection state recovery ("" when that is off). Answer with
    /// [`SioServer::accept`] or [`SioServer::reject`].
    fn connect(&self, client: &Arc<Client>, nsp: &str, auth: &str, socket_id: &str, pid: &str);
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
    /// The client's session moved from polling to its WebSocket.
    fn upgrade(&self, _client: &Arc<Client>) {}
    /// The engine refused a request JS never saw (see `EngineHandler::refused`).
    fn refused(&self, _refusal: &Refusal, _req: &Request) {}
    /// The client sent bytes the packet decoder refused; `message` is what
    /// socket.io-parser would throw. The session closes right after.
    fn decode_error(&self, _client: &Arc<Client>, _message: &str) {}
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

    /// Sends one encoded Socket.IO packet and its attachments
    /// (`compress`: socket.io's flag, for perMessageDeflate).
    fn send_packet(&self, text: &str, attachments: &[Bytes], compress: bool) -> bool {
        let mut ok = self.session.send_with(&EioPacket::Message(Payload::text(text)), compress);
        for a in attachments {
            ok &= self.session.send_with(&EioPacket::Message(Payload::Binary(a.clone())), compress);
        }
        ok
    }
}

impl Member for Arc<Client> {
    fn key(&self) -> u64 {
        self.key
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NspState {
    /// A CONNECT that JS has not answered yet (its middleware runs).
    Pending,
    Connected,
    /// Disconnected (DISCONNECT sent or received); in its rooms until JS
    /// has run its 'disconnecting' handlers and calls `remove_socket`.
    Leaving,
}

struct NspEntry {
    nsp: Box<str>,
    /// Empty while pending.
    id: Box<str>,
    state: NspState,
}

/// A client's namespaces and its socket in each: almost always one, so a
/// short list rather than a map.
#[derive(Default)]
struct Namespaces(Vec<NspEntry>);

impl Namespaces {
    fn find(&self, nsp: &str, state: NspState) -> Option<usize> {
        self.0.iter().position(|e| &*e.nsp == nsp && e.state == state)
    }

    /// The socket id in `nsp`, if connected.
    fn get(&self, nsp: &str) -> Option<&str> {
        self.find(nsp, NspState::Connected).map(|i| &*self.0[i].id)
    }

    fn contains_key(&self, nsp: &str) -> bool {
        self.get(nsp).is_some()
    }

    /// The state of socket `id` in `nsp` (a pending CONNECT's id is the one
    /// Rust made for it).
    fn state_of(&self, nsp: &str, id: &str) -> Option<NspState> {
        self.0.iter().find(|e| &*e.nsp == nsp && &*e.id == id).map(|e| e.state)
    }

    /// A CONNECT came: its socket is pending (several may be, each its own).
    fn add_pending(&mut self, nsp: &str, socket_id: &str) {
        self.0.push(NspEntry { nsp: nsp.into(), id: socket_id.into(), state: NspState::Pending });
    }

    /// JS accepted the CONNECT of `socket_id`: the socket is in. Returns the
    /// id of the socket this one replaces (a CONNECT repeated while the first
    /// was pending, accepted first).
    fn connect(&mut self, nsp: &str, socket_id: &str) -> Option<Box<str>> {
        let replaced = self.find(nsp, NspState::Connected).map(|i| self.0.swap_remove(i).id);
        match self.0.iter_mut().find(|e| &*e.nsp == nsp && &*e.id == socket_id && e.state == NspState::Pending) {
            Some(e) => e.state = NspState::Connected,
            None => self.0.push(NspEntry { nsp: nsp.into(), id: socket_id.into(), state: NspState::Connected }),
        }
        replaced
    }

    /// The pending CONNECT `id` is a recovered socket: it takes `sid`.
    fn rename_pending(&mut self, nsp: &str, id: &str, sid: &str) -> bool {
        let Some(e) = self.0.iter_mut().find(|e| &*e.nsp == nsp && &*e.id == id && e.state == NspState::Pending) else {
            return false;
        };
        e.id = sid.into();
        true
    }

    /// JS refused the CONNECT of `socket_id`.
    fn drop_pending(&mut self, nsp: &str, socket_id: &str) {
        self.0.retain(|e| !(&*e.nsp == nsp && &*e.id == socket_id && e.state == NspState::Pending));
    }

    /// Connected -> leaving. False if it was not connected.
    fn start_leaving(&mut self, nsp: &str) -> bool {
        let Some(i) = self.find(nsp, NspState::Connected) else { return false };
        self.0[i].state = NspState::Leaving;
        true
    }

    /// Forgets socket `id` of `nsp` (connected or leaving). False if unknown.
    fn remove_socket(&mut self, nsp: &str, id: &str) -> bool {
        let Some(i) = self.0.iter().position(|e| &*e.nsp == nsp && &*e.id == id && e.state != NspState::Pending) else {
            return false;
        };
        self.0.swap_remove(i);
        true
    }

    /// Namespaces connected now.
    fn names(&self) -> Vec<String> {
        self.0.iter().filter(|e| e.state == NspState::Connected).map(|e| e.nsp.to_string()).collect()
    }
}

/// What socket.io-parser throws for what our decoder refuses (the socket's
/// 'error' event carries it).
fn parser_message(e: &packet::ParseError) -> &'static str {
    use packet::ParseError as E;
    match e {
        E::Empty | E::UnknownType => "unknown packet type",
        E::IllegalAttachments
        | E::TooManyAttachments { .. }
        | E::InvalidPlaceholder(_)
        | E::PlaceholderOutOfRange { .. }
        | E::DuplicatePlaceholder(_)
        | E::UnreferencedAttachment(_) => "Illegal attachments",
        E::AckIdTooLarge { .. }
        | E::InvalidJson { .. }
        | E::MissingPayload { .. }
        | E::InvalidPayload { .. }
        | E::ReservedEventName(_) => "invalid payload",
    }
}

/// Socket.IO v2 clients (Engine.IO v3) put their `query` in the CONNECT's
/// namespace (`/nsp?a=1,`); socket.io reads it as the handshake's `auth`
/// (Node's querystring: a repeated key is an array). Returns the namespace
/// and the auth as JSON text ("" with no query).
fn split_v2_namespace(nsp: &str) -> (&str, String) {
    let Some((name, query)) = nsp.split_once('?') else { return (nsp, String::new()) };
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (form_decode(k), form_decode(v));
        match pairs.iter_mut().find(|(key, _)| *key == k) {
            Some((_, values)) => values.push(v),
            None => pairs.push((k, vec![v])),
        }
    }
    let mut json = String::from("{");
    for (i, (k, values)) in pairs.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_json_string(&mut json, k);
        json.push(':');
        if let [one] = values.as_slice() {
            push_json_string(&mut json, one);
        } else {
            json.push('[');
            for (j, v) in values.iter().enumerate() {
                if j > 0 {
                    json.push(',');
                }
                push_json_string(&mut json, v);
            }
            json.push(']');
        }
    }
    json.push('}');
    (name, json)
}

/// A kept session a CONNECT continues (connection state recovery).
pub(crate) struct Restore<'a> {
    pub nsp: &'a str,
    /// The id Rust made for the CONNECT, which the socket gives up.
    pub pending_id: &'a str,
    /// The kept socket's id, its rooms (its own included) and its client's
    /// key then (what it broadcast itself is not sent back).
    pub sid: &'a str,
    pub rooms: &'a [String],
    pub old_key: Option<u64>,
    /// The last packet the client processed; None: the session and its
    /// missed packets were restored by the layer above, only the id changes.
    pub offset: Option<&'a str>,
}

/// Rooms joined in middleware, per client: (socket id, room).
type EarlyJoins = Vec<(Box<str>, Box<str>)>;

fn shared_attachments(attachments: &[Bytes]) -> Vec<SharedMessage> {
    attachments.iter().map(|a| SharedMessage::new(EioPacket::Message(Payload::Binary(a.clone())))).collect()
}

/// A stored broadcast (connection state recovery): the messages its
/// recipients were sent, shared with them.
struct Replay {
    message: SharedMessage,
    attachments: Vec<SharedMessage>,
}

/// `text` (an EVENT packet, `…["event",…]`) with `offset` as its last
/// argument, as socket.io stores it; None for a packet that is not an
/// array of data.
fn with_offset(text: &str, offset: &str) -> Option<String> {
    let body = text.strip_suffix(']')?;
    // Offsets are made of base64id characters: nothing to escape.
    Some(format!("{body},\"{offset}\"]"))
}

pub(crate) struct SioServer {
    handler: Arc<dyn SioHandler>,
    limits: Limits,
    /// A client that joins no namespace within this is closed (socket.io's
    /// connectTimeout): an open Engine.IO session alone authorises nothing.
    connect_timeout: Duration,
    next_key: AtomicU64,
    clients: Mutex<HashMap<u64, Arc<Client>>>,
    rooms: Mutex<Rooms<Arc<Client>>>,
    /// Rooms joined in middleware, by client and socket, joined when JS
    /// accepts that socket's CONNECT (socket.io keeps them), dropped if it
    /// refuses it.
    early_joins: Mutex<HashMap<u64, EarlyJoins>>,
    /// Closed clients whose close JS has not handled yet (still in their
    /// rooms, and their handshake readable, until `release`).
    departed: Mutex<HashMap<u64, Arc<Client>>>,
    /// Connection state recovery's log of broadcasts (None when off).
    log: Option<Mutex<PacketLog<Replay>>>,
    /// The Redis link broadcasts also cross (remote.rs; None: one node).
    pub(super) remote: parking_lot::RwLock<Option<Arc<dyn Fleet>>>,
}

impl SioServer {
    pub(crate) fn new(
        handler: Arc<dyn SioHandler>,
        connect_timeout: Duration,
        recovery: Option<RecoveryConfig>,
    ) -> Arc<Self> {
        // Any distinct prefix will do: it only tells offsets of this server
        // from others' (a failed read of randomness leaves a fixed one).
        let prefix = generate_sid().map(|s| s[..6].to_string()).unwrap_or_else(|_| "log".into());
        Arc::new(Self {
            handler,
            limits: Limits::default(),
            connect_timeout,
            next_key: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
            early_joins: Mutex::new(HashMap::new()),
            departed: Mutex::new(HashMap::new()),
            rooms: Mutex::new(Rooms::default()),
            log: recovery.map(|cfg| Mutex::new(PacketLog::new(cfg, &prefix))),
            remote: parking_lot::RwLock::new(None),
        })
    }

    pub(crate) fn client(&self, key: u64) -> Option<Arc<Client>> {
        self.clients.lock().get(&key).cloned()
    }

    /// Middleware passed: the client joins `nsp` as `socket_id` (with the
    /// namespace-wide topic, its own room and the rooms it joined in
    /// middleware) and gets `40{"sid":…}`, with `"pid":…` when connection
    /// state recovery is on.
    pub(crate) fn accept(&self, key: u64, nsp: &str, socket_id: &str, pid: Option<&str>) -> bool {
        let Some(c) = self.client(key) else { return false };
        {
            // Lock order: rooms -> clients -> nsps -> early_joins. Under the
            // rooms lock a client that closed meanwhile is not resubscribed.
            let mut rooms = self.rooms.lock();
            if !self.clients.lock().contains_key(&key) {
                return false;
            }
            if let Some(old) = c.nsps.lock().connect(nsp, socket_id) {
                // The earlier socket's rooms go with it.
                rooms.remove_socket(key, nsp, &old);
            }
            rooms.add_socket(&c, nsp, socket_id);
            for room in self.take_early_joins(key, socket_id) {
                rooms.join(&c, nsp, &room);
            }
        }
        *c.waiting_since.lock() = None;
        // Socket.IO v2 clients get a CONNECT without payload.
        let payload = if c.session.eio3 { String::new() } else { packet::connect_payload(socket_id, pid) };
        c.send_packet(&packet::encode(PacketType::Connect, nsp, None, 0, &payload), &[], true)
    }

    /// Connection state recovery: the pending CONNECT `r.pending_id` of
    /// client `key` comes back as the kept socket `r.sid`. If `r.offset` is
    /// still in the log, the socket takes that id and the client is sent
    /// every broadcast it missed (before its CONNECT answer, as socket.io
    /// does), and true; false leaves the CONNECT a new session.
    pub(crate) fn restore(&self, key: u64, r: &Restore) -> bool {
        let Some(c) = self.client(key) else { return false };
        // Without an offset the session was restored elsewhere (a custom
        // adapter in JS): the socket only takes its id.
        let Some(offset) = r.offset else { return c.nsps.lock().rename_pending(r.nsp, r.pending_id, r.sid) };
        let Some(log) = &self.log else { return false };
        let log = log.lock();
        let Some(missed) = log.missed(offset, r.nsp, r.rooms, r.old_key) else { return false };
        if !c.nsps.lock().rename_pending(r.nsp, r.pending_id, r.sid) {
            return false;
        }
        for p in missed {
            c.session.send_shared(&p.message, true);
            for a in &p.attachments {
                c.session.send_shared(a, true);
            }
        }
        true
    }

    fn take_early_joins(&self, key: u64, socket_id: &str) -> Vec<Box<str>> {
        let mut early = self.early_joins.lock();
        let Some(list) = early.get_mut(&key) else { return Vec::new() };
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(list).into_iter().partition(|(id, _)| &**id == socket_id);
        if rest.is_empty() {
            early.remove(&key);
        } else {
            *list = rest;
        }
        mine.into_iter().map(|(_, r)| r).collect()
    }

    /// Middleware refused: `44{"message":…,"data":…}`; the client stays
    /// connected to the engine (it may try another namespace).
    pub(crate) fn reject(&self, key: u64, nsp: &str, socket_id: &str, message: &str, data_json: Option<&str>) -> bool {
        let Some(c) = self.client(key) else { return false };
        // Refused: that socket is no longer pending (the client may retry),
        // and what its middleware joined is forgotten.
        c.nsps.lock().drop_pending(nsp, socket_id);
        self.take_early_joins(key, socket_id);
        let payload = if c.session.eio3 {
            // v2's ERROR packet: the error's data, else its message (socket.io's `err.data || err.message`).
            data_json.map_or_else(
                || {
                    let mut m = String::new();
                    push_json_string(&mut m, message);
                    m
                },
                str::to_string,
            )
        } else {
            packet::connect_error_payload(message, data_json)
        };
        c.send_packet(&packet::encode(PacketType::ConnectError, nsp, None, 0, &payload), &[], true)
    }

    /// Sends an already encoded Socket.IO packet (`2["ev",…]`, `3…`; the
    /// Engine.IO `4` is added by the transport) to one client.
    /// `volatile`: dropped (false) if the transport cannot take it now.
    /// `compress`: socket.io's `compress` flag (perMessageDeflate).
    pub(crate) fn emit(&self, key: u64, text: &str, attachments: &[Bytes], volatile: bool, compress: bool) -> bool {
        self.client(key)
            .is_some_and(|c| (!volatile || c.session.writable()) && c.send_packet(text, attachments, compress))
    }

    /// Socket `socket_id` (of client `key`, in `nsp`) joins `room`; in
    /// middleware (its CONNECT not yet accepted) the join waits for the
    /// accept. False for a socket that is gone or leaving.
    pub(crate) fn join(&self, key: u64, nsp: &str, socket_id: &str, room: &str) -> bool {
        let Some(c) = self.client(key) else { return false };
        let mut rooms = self.rooms.lock();
        if !self.clients.lock().contains_key(&key) {
            return false;
        }
        let state = c.nsps.lock().state_of(nsp, socket_id);
        match state {
            Some(NspState::Connected) => rooms.join(&c, nsp, room),
            Some(NspState::Pending) => {
                let mut early = self.early_joins.lock();
                let list = early.entry(key).or_default();
                if list.iter().any(|(id, r)| &**id == socket_id && &**r == room) {
                    return false;
                }
                list.push((socket_id.into(), room.into()));
                true
            }
            Some(NspState::Leaving) | None => false,
        }
    }

    pub(crate) fn leave(&self, key: u64, nsp: &str, socket_id: &str, room: &str) -> bool {
        let Some(c) = self.client_or_departed(key) else { return false };
        let mut rooms = self.rooms.lock();
        let state = c.nsps.lock().state_of(nsp, socket_id);
        match state {
            Some(NspState::Connected | NspState::Leaving) => rooms.leave(key, nsp, room),
            Some(NspState::Pending) => {
                let mut early = self.early_joins.lock();
                let Some(list) = early.get_mut(&key) else { return false };
                let before = list.len();
                list.retain(|(id, r)| !(&**id == socket_id && &**r == room));
                before != list.len()
            }
            None => false,
        }
    }

    /// The clients `opts` reaches (each once, in no particular order): what a
    /// broadcast is sent to, and what JS's operators act on.
    pub(crate) fn select(&self, opts: &BroadcastOptions) -> Vec<u64> {
        self.rooms.lock().select(opts).iter().map(|c| c.key).collect()
    }

    /// One encoded packet to every client `opts` selects (`volatile`: those
    /// whose transport can take it now). The packet is encoded once by the
    /// caller and shared. Returns recipients.
    pub(crate) fn broadcast(
        &self,
        opts: &BroadcastOptions,
        text: &str,
        attachments: &[Bytes],
        volatile: bool,
        compress: bool,
    ) -> usize {
        let mut targets = self.rooms.lock().select(opts);
        if volatile {
            targets.retain(|c| c.session.writable());
        }
        let message = SharedMessage::new(EioPacket::Message(Payload::Text(Bytes::copy_from_slice(text.as_bytes()))));
        Self::fan_out(&targets, &message, &shared_attachments(attachments), compress);
        targets.len()
    }

    /// As [`broadcast`](Self::broadcast) (not volatile), and with connection
    /// state recovery on, stored under an offset that becomes the event's
    /// last argument: socket.io stores every EVENT broadcast without an ack
    /// this way, and every `socket.emit` as a broadcast to its own room.
    pub(crate) fn broadcast_stored(
        &self,
        opts: &BroadcastOptions,
        text: &str,
        attachments: &[Bytes],
        compress: bool,
    ) -> usize {
        let Some(log) = &self.log else { return self.broadcast(opts, text, attachments, false, compress) };
        let targets = self.rooms.lock().select(opts);
        let mut log = log.lock();
        let stored = log.store(Instant::now(), opts.clone(), |offset| {
            // JS stores EVENT packets only, which always end with their array.
            let text = with_offset(text, offset).unwrap_or_else(|| text.to_string());
            let message = SharedMessage::new(EioPacket::Message(Payload::Text(Bytes::from(text))));
            let attachments = shared_attachments(attachments);
            let size = message.size() + attachments.iter().map(SharedMessage::size).sum::<usize>();
            (Replay { message, attachments }, size)
        });
        Self::fan_out(&targets, &stored.message, &stored.attachments, compress);
        targets.len()
    }

    /// Built once (Engine.IO frames each for its transports); every
    /// recipient queues the same bytes.
    fn fan_out(targets: &[Arc<Client>], message: &SharedMessage, attachments: &[SharedMessage], compress: bool) {
        for c in targets {
            c.session.send_shared(message, compress);
            for a in attachments {
                c.session.send_shared(a, compress);
            }
        }
    }

    /// Server-side namespace disconnect (`socket.disconnect()`): `41`. The
    /// socket stays in its rooms until JS calls `remove_socket`.
    pub(crate) fn disconnect(&self, key: u64, nsp: &str) -> bool {
        let Some(c) = self.client(key) else { return false };
        if !c.nsps.lock().start_leaving(nsp) {
            return false;
        }
        c.send_packet(&packet::encode(PacketType::Disconnect, nsp, None, 0, ""), &[], true)
    }

    /// `socket.disconnect(true)`: `41` for every namespace, then the
    /// connection closes.
    pub(crate) fn disconnect_all(&self, key: u64) -> bool {
        let Some(c) = self.client(key) else { return false };
        let nsps: Vec<String> = c.nsps.lock().names();
        for nsp in nsps {
            if c.nsps.lock().start_leaving(&nsp) {
                c.send_packet(&packet::encode(PacketType::Disconnect, &nsp, None, 0, ""), &[], true);
            }
        }
        c.session.close();
        true
    }

    /// JS is done with socket `socket_id` of client `key` in `nsp` (its
    /// 'disconnecting' handlers have run): it leaves its rooms there. Also
    /// for a client that closed and is not yet released.
    pub(crate) fn remove_socket(&self, key: u64, nsp: &str, socket_id: &str) -> bool {
        let Some(c) = self.client_or_departed(key) else { return false };
        let mut rooms = self.rooms.lock();
        // A socket replaced by a repeated CONNECT is no longer listed: the
        // rooms of `key` in `nsp` are its successor's.
        if !c.nsps.lock().remove_socket(nsp, socket_id) {
            return false;
        }
        rooms.remove_socket(key, nsp, socket_id);
        true
    }

    fn on_text(&self, c: &Arc<Client>, text: &str) -> Result<(), ()> {
        // Text while a binary packet waits for its attachments: socket.io-parser
        // throws ("got plaintext data when reconstructing a packet").
        if c.pending.lock().is_some() {
            self.handler.decode_error(c, "got plaintext data when reconstructing a packet");
            return Err(());
        }
        let p = packet::decode(text, &self.limits).map_err(|e| self.handler.decode_error(c, parser_message(&e)))?;
        let connected = c.nsps.lock().contains_key(p.nsp);
        match p.kind {
            PacketType::Connect => {
                // A second CONNECT to a joined namespace is a protocol
                // violation. One while the first is still in the middleware
                // is not (socket.io-client sends it when `connect()` is
                // called on a socket that is already connecting): the later
                // accept replaces the earlier socket, as in socket.io.
                if connected {
                    return Err(());
                }
                if c.session.eio3 {
                    let (nsp, auth) = split_v2_namespace(p.nsp);
                    if c.nsps.lock().contains_key(nsp) {
                        return Err(());
                    }
                    return self.connect_v2(c, nsp, &auth);
                }
                // Failing to read randomness is engine.io's failed handshake.
                let socket_id = generate_sid().map_err(|_| ())?;
                let pid = if self.log.is_some() { generate_sid().map_err(|_| ())? } else { String::new() };
                c.nsps.lock().add_pending(p.nsp, &socket_id);
                self.handler.connect(c, p.nsp, p.data, &socket_id, &pid);
            }
            PacketType::Disconnect => {
                if c.nsps.lock().start_leaving(p.nsp) {
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

    /// A Socket.IO v2 client's CONNECT (or the implicit one to `/` when its
    /// session opens): socket.io names the socket after the Engine.IO
    /// session (`/nsp#sid`, or the sid in `/`).
    fn connect_v2(&self, c: &Arc<Client>, nsp: &str, auth: &str) -> Result<(), ()> {
        let socket_id = if nsp == "/" { c.session.sid.to_string() } else { format!("{nsp}#{}", c.session.sid) };
        let pid = if self.log.is_some() { generate_sid().map_err(|_| ())? } else { String::new() };
        c.nsps.lock().add_pending(nsp, &socket_id);
        self.handler.connect(c, nsp, auth, &socket_id, &pid);
        Ok(())
    }

    fn on_binary(&self, c: &Arc<Client>, data: Bytes) -> Result<(), ()> {
        let done = {
            let mut pending = c.pending.lock();
            let Some(p) = pending.as_mut() else {
                drop(pending);
                self.handler.decode_error(c, "got binary data when not reconstructing a packet");
                return Err(());
            };
            p.attachments.push(data);
            if p.attachments.len() as u32 == p.expected {
                pending.take()
            } else {
                None
            }
        };
        if let Some(p) = done {
            let decoded =
                packet::decode(&p.text, &self.limits).map_err(|e| self.handler.decode_error(c, parser_message(&e)))?;
            self.handler.packet(c, decoded.kind, decoded.nsp, decoded.id, decoded.data, p.attachments);
        }
        Ok(())
    }

    /// The client is gone: no longer reachable by key, but still in its
    /// rooms and its handshake readable until JS has run its disconnect
    /// handlers (`release`).
    fn close_client(&self, key: u64) -> Option<Arc<Client>> {
        let rooms = self.rooms.lock();
        let c = {
            let mut clients = self.clients.lock();
            // Departed before it leaves `clients`, so that a lookup of either
            // always finds it (nothing holds `departed` while taking `clients`).
            let c = clients.get(&key)?.clone();
            self.departed.lock().insert(key, c.clone());
            clients.remove(&key);
            c
        };
        drop(rooms);
        self.early_joins.lock().remove(&key);
        Some(c)
    }

    /// A client, connected or closed but not yet released by JS.
    pub(crate) fn client_or_departed(&self, key: u64) -> Option<Arc<Client>> {
        self.client(key).or_else(|| self.departed.lock().get(&key).cloned())
    }

    /// JS has handled the close of `key`: it leaves every room still held.
    pub(crate) fn release(&self, key: u64) {
        let Some(c) = self.departed.lock().remove(&key) else { return };
        let mut rooms = self.rooms.lock();
        let nsps = std::mem::take(&mut *c.nsps.lock());
        rooms.remove_client(key, nsps.0.iter().map(|e| (&*e.nsp, &*e.id)));
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
        self.clients.lock().insert(key, c.clone());
        if session.eio3 {
            // socket.io connects a v2 client to `/` at once (no CONNECT
            // comes for it, and no connectTimeout applies).
            *c.waiting_since.lock() = None;
            if self.connect_v2(&c, "/", "").is_err() {
                session.close();
            }
        }
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
        if let Some(log) = &self.log {
            log.lock().trim(now);
        }
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

    fn upgrade(&self, session: &Arc<Session>) {
        if let Some(c) = self.client(session.tag.load(Ordering::Relaxed)) {
            self.handler.upgrade(&c);
        }
    }

    fn refused(&self, refusal: &Refusal, req: &Request) {
        self.handler.refused(refusal, req);
    }

    fn close(&self, session: &Arc<Session>, reason: CloseReason) {
        let key = session.tag.load(Ordering::Relaxed);
        if let Some(c) = self.close_client(key) {
            self.handler.close(&c, reason);
        }
    }
}
