'use strict'

const NONE = Object.freeze([])

/**
 * What a Socket.IO Server's namespaces, sockets, handshakes and operators
 * may ask of its Rust core, by client key: the server's `NativeSocketIo`
 * narrowed to these operations. The server alone holds the handle itself
 * (listen, flush, close, the HTTP front's half).
 *
 * `open()` is the server's handle, which the server makes on first use: at
 * attach, or at a broadcast before it. `host` is the server's NativeHost,
 * whose flush a broadcast schedules.
 */
class Sessions {
  constructor (open, host) {
    this._open = open
    this._host = host
    this._handle = null
    // Connection state recovery is on (set by the server with its handle):
    // broadcasts and emits of EVENTs without an ack are stored in Rust.
    this._store = false
    // Engine.IO sessions with 'packet'/'packetCreate' listeners (engine-conn.js).
    this._watchers = 0
    // Send rounds: one per turn of the event loop that sent anything.
    this._round = 1
    this._roundEnding = false
    this._endRound = () => {
      this._round++
      this._roundEnding = false
    }
  }

  /** The server closed its handle: the next call asks for the new one. */
  _reset () {
    this._handle = null
  }

  _load () {
    this._handle = this._open()
    return this._handle
  }

  get _native () {
    return this._handle || this._load()
  }

  /**
   * A packet to `client`, with its binary attachments if any. `flags`:
   * `volatile`, dropped if the transport cannot take it now (Rust: a queue
   * or no held GET) or the client was sent a packet earlier in this round;
   * `compress` (default true): compressed where perMessageDeflate was
   * negotiated and the packet reaches its threshold.
   * `own`: the sending socket, for a packet connection state recovery may
   * store (an EVENT without an ack).
   */
  send (client, text, attachments, flags, own) {
    const volatile = flags.volatile
    if (volatile && client._sentRound === this._round) return
    const conn = client._conn
    if (conn !== null && conn._watching) conn._created(text, attachments, flags.compress !== false)
    if (own !== undefined && this._store && !volatile) {
      // As socket.io with recovery on: a broadcast to the socket's own
      // room, which stores it (closed or not).
      const to = { nsp: own.nsp.name, rooms: [own.id], except: NONE, skip: undefined }
      return this.broadcast(to, text, attachments.length ? attachments : undefined, false, true, undefined, flags.compress)
    }
    client._sentRound = this._round
    if (!this._roundEnding) {
      this._roundEnding = true
      setImmediate(this._endRound)
    }
    // Hot, as broadcast: the handle is read inline, no getter call.
    const native = this._handle || this._load()
    const compress = flags.compress !== false
    if (attachments.length) native.emitBinary(client.key, text, attachments, volatile, compress)
    else native.emit(client.key, text, volatile, compress)
  }

  /**
   * One packet to every client `to` selects (as `select`); `volatile`: those
   * whose transport can take it now. Queued in Rust and written once per
   * tick: every broadcast of a tick reaches a socket in one `writev`.
   * `storable` (an EVENT without an ack): with connection state recovery
   * on, Rust keeps it under an offset it appends to the event's arguments.
   * `remote` ({ exceptIds, compress }): it also goes to the other nodes of
   * the server's Redis link. `compress` false: never compressed.
   */
  broadcast (to, text, attachments, volatile, storable = false, remote = undefined, compress = true) {
    const native = this._handle || this._load()
    const c = compress !== false
    if (storable && this._store && !volatile) native.broadcastStored(to, text, attachments, remote, c)
    else native.broadcast(to, text, attachments, volatile, remote, c)
    this._host.scheduleFlush(native)
  }

  /**
   * Connection state recovery: the pending socket `to.pendingId` of client
   * `key` is the kept session `to.sid` if Rust still has `to.offset`; the
   * client is then sent what it missed. `to`: { nsp, pendingId, sid,
   * offset, rooms, oldKey }.
   */
  restore (key, to) {
    return this._native.restore(key, to)
  }

  /**
   * The client keys a broadcast reaches (`to`: `{ nsp, rooms, except, skip }`,
   * skip a client key): Rust's one selection, for the operators.
   */
  select (to) {
    return this._native.select(to)
  }

  /** The socket's 'disconnecting' handlers have run: it leaves its rooms in Rust. */
  removeSocket (key, nsp, socketId) {
    this._native.removeSocket(key, nsp, socketId)
  }

  /** Socket `socketId` (of client `key`, in `nsp`) joins `room`; in middleware, at its accept. */
  join (key, nsp, socketId, room) {
    this._native.join(key, nsp, socketId, room)
  }

  leave (key, nsp, socketId, room) {
    this._native.leave(key, nsp, socketId, room)
  }

  /** The namespace's CONNECT answered: the socket is in (`pid`: with recovery on). */
  accept (key, nsp, socketId, pid) {
    this._native.accept(key, nsp, socketId, pid)
  }

  /** Socket `socketId`'s CONNECT answered with a CONNECT_ERROR (`data`: JSON text). */
  reject (key, nsp, socketId, message, data) {
    this._native.reject(key, nsp, socketId, message, data)
  }

  /** The client leaves one namespace (a DISCONNECT to it). */
  disconnect (key, nsp) {
    this._native.disconnect(key, nsp)
  }

  /** Every namespace of the client gets its DISCONNECT, then the connection closes. */
  closeClient (key) {
    this._native.closeClient(key)
  }

  /** The client's close was handled: Rust may forget its handshake. */
  release (key) {
    this._native.release(key)
  }

  /** The handshake record (handshake.js), or null for a client gone. */
  handshake (key) {
    return this._native.handshake(key)
  }

  /** "polling" or "websocket", or null for a client gone. */
  transportName (key) {
    return this._native.transportName(key)
  }
}

module.exports = { Sessions }
