'use strict'
const { EventEmitter } = require('node:events')
const { TYPE, RESERVED, dataPacket, reconstruct } = require('./packet')
const { BroadcastOperator } = require('./broadcast-operator')
const { Handshake } = require('./handshake')
const { runMiddleware } = require('./middleware')
const { once, safeApply, safeCall, emitSafe, reportHandlerError } = require('../util')

const EMPTY = Object.freeze([])
// The reasons socket.io keeps a session for connection state recovery: the
// connection was lost or closed under the client, not left on purpose.
const RECOVERABLE = new Set(['transport error', 'transport close', 'forced close', 'ping timeout',
  'server shutting down', 'forced server close'])
const EMPTY_FLAGS = Object.freeze({})
const noop = () => {}

/**
 * One client's presence in one namespace (socket.io's `Socket`). `on()`
 * listens to what the client emits; `emit()` sends to the client.
 */
class Socket extends EventEmitter {
  constructor (nsp, client, auth, id) {
    super()
    // Few own fields, so V8 keeps them in the object itself: an idle
    // socket is the common case, and everything rarely used (data, acks,
    // any-listeners, packet middleware) lives in `_x`, made on first use.
    this.nsp = nsp
    this.client = client
    this.id = id
    this.connected = false
    this.rooms = new Set()
    // Connection order in the namespace (operators list sockets in it).
    this._seq = 0
    this._auth = auth
    this._hs = null
    this._x = null
  }

  get server () {
    return this.nsp.server
  }

  /** `socket.handshake`, made when first read (see handshake.js). */
  get handshake () {
    if (!this._hs) this._hs = new Handshake(this.client, this._auth)
    return this._hs
  }

  _ext () {
    if (!this._x) {
      this._x = { data: undefined, acks: null, any: EMPTY, anyOutgoing: EMPTY, fns: EMPTY, flags: null, pid: undefined, recovered: false }
    }
    return this._x
  }

  /** `socket.data`, created on first use. */
  get data () {
    const x = this._ext()
    if (x.data === undefined) x.data = {}
    return x.data
  }

  set data (v) { this._ext().data = v }
  get _acks () { return this._x ? this._x.acks : null }
  get _any () { return this._x ? this._x.any : EMPTY }
  set _any (v) { this._ext().any = v }
  get _anyOutgoing () { return this._x ? this._x.anyOutgoing : EMPTY }
  set _anyOutgoing (v) {
    this._ext().anyOutgoing = v
    // Broadcasts notify the namespace's sockets that listen (socket.io does).
    if (v.length && this.connected) this.nsp._outgoing.add(this)
    else this.nsp._outgoing.delete(this)
  }

  /** The modifiers of the next emit (socket.io's `flags`), taken by it. */
  _takeFlags () {
    const x = this._x
    if (!x || !x.flags) return EMPTY_FLAGS
    const flags = x.flags
    x.flags = null
    return flags
  }

  _flag (name, value) {
    const x = this._ext()
    x.flags = { ...x.flags, [name]: value }
    return this
  }

  /** The next emit is dropped if the transport cannot take it now. */
  get volatile () { return this._flag('volatile', true) }
  /** false: this emit is not compressed (with perMessageDeflate on). */
  compress (compress) { return this._flag('compress', compress) }
  /** For a broadcast from this socket: this node only (there is one). */
  get local () { return this._flag('local', true) }
  get _fns () { return this._x ? this._x.fns : EMPTY }
  set _fns (v) { this._ext().fns = v }

  _ackMap () {
    const x = this._ext()
    if (!x.acks) x.acks = new Map()
    return x.acks
  }

  get disconnected () {
    return !this.connected
  }

  /** The handshake's request (client.js's stand-in for Node's IncomingMessage). */
  get request () {
    return this.client.request
  }

  /** Whether connection state recovery restored this socket (id, rooms, data, missed packets). */
  get recovered () {
    return this._x !== null && this._x.recovered
  }

  /** The private session id a reconnecting client recovers with (connection state recovery on). */
  get pid () {
    return this._x !== null ? this._x.pid : undefined
  }

  /**
   * Connection state recovery: the socket's private session id, and the
   * kept session it continues (null for a new one): its rooms and data (its
   * id is already the session's, and Rust has sent what it missed).
   */
  _recovering (pid, session) {
    const x = this._ext()
    x.pid = pid
    if (!session) return
    x.recovered = true
    for (const r of session.rooms) if (r !== this.id) this.join(r)
    x.data = session.data
  }

  /** socket.io's `socket.conn`: the client's Engine.IO session (engine-conn.js). */
  get conn () {
    return this.client.conn
  }

  emit (event, ...args) {
    if (RESERVED.has(event)) throw new Error(`"${String(event)}" is a reserved event name`)
    let id
    if (typeof args[args.length - 1] === 'function') {
      id = this.nsp._ids++
      this._ackMap().set(id, args.pop())
    }
    const any = this._anyOutgoing // replaced, never changed, by onAnyOutgoing/offAnyOutgoing
    for (let i = 0; i < any.length; i++) safeApply(any[i], this, [event, ...args])
    this._send(TYPE.EVENT, id, [event, ...args], this._takeFlags())
    return true
  }

  /** `flags`: the emit's modifiers (volatile, compress), as socket.io's. */
  _send (type, id, values, flags = EMPTY_FLAGS) {
    const sessions = this.nsp._sessions
    if (this.nsp._custom && this.pid !== undefined && type === TYPE.EVENT && id === undefined) {
      // As socket.io with recovery on: through the adapter, which may store it.
      const opts = { rooms: new Set([this.id]), except: new Set(), flags }
      return this.nsp.adapter.broadcast({ type: TYPE.EVENT, data: values, nsp: this.nsp.name }, opts)
    }
    const { text, attachments } = dataPacket(type, this.nsp.name, id, values)
    // An EVENT without an ack may be stored for connection state recovery.
    sessions.send(this.client, text, attachments, flags, type === TYPE.EVENT && id === undefined ? this : undefined)
  }

  send (...args) {
    this.emit('message', ...args)
    return this
  }

  /** `socket.timeout(ms).emit(ev, ..., (err, ...res) => {})`. */
  timeout (ms) {
    return {
      emit: (event, ...args) => {
        // As socket.io: the timeout applies to an ack; without one it is a plain emit.
        if (typeof args[args.length - 1] !== 'function') return this.emit(event, ...args)
        const cb = args.pop()
        const finish = once((err, ...res) => {
          clearTimeout(timer)
          safeCall(cb, this, err, ...res)
        })
        const timer = setTimeout(() => finish(new Error('operation has timed out')), ms)
        return this.emit(event, ...args, (...res) => finish(null, ...res))
      },
      emitWithAck: (event, ...args) => new Promise((resolve, reject) => {
        this.timeout(ms).emit(event, ...args, (err, res) => (err ? reject(err) : resolve(res)))
      })
    }
  }

  emitWithAck (event, ...args) {
    return new Promise((resolve) => this.emit(event, ...args, resolve))
  }

  join (rooms) {
    for (const room of [].concat(rooms)) {
      const r = String(room)
      if (this.rooms.has(r)) continue
      this.rooms.add(r)
      this.nsp._sessions.join(this.client.key, this.nsp.name, this.id, r)
      this.nsp._adapterAdd(this.id, r)
    }
  }

  /** The socket's own room (in Rust it is a lookup by socket id, made by `accept`). */
  _joinOwn () {
    this.rooms.add(this.id)
    this.nsp._adapterAdd(this.id, this.id)
  }

  /** Leaves every room (its own included), as socket.io's leaveAll. */
  leaveAll () {
    for (const r of [...this.rooms]) this.leave(r)
  }

  /** socket.io's name for the acks awaited from the client (id -> callback). */
  get acks () {
    return this._ackMap()
  }

  leave (room) {
    const r = String(room)
    if (!this.rooms.delete(r)) return
    this.nsp._sessions.leave(this.client.key, this.nsp.name, this.id, r)
    this.nsp._adapterDel(this.id, r)
  }

  to (room) {
    return this.broadcast.to(room)
  }

  in (room) {
    return this.to(room)
  }

  except (room) {
    return this.broadcast.except(room)
  }

  /**
   * Everyone else in the namespace, with this socket's pending modifiers.
   * Rust leaves the sender out by its client; a custom adapter, as in
   * socket.io, by its own room.
   */
  get broadcast () {
    const flags = { ...this._takeFlags() }
    if (this.nsp._custom) return new BroadcastOperator(this.nsp, new Set(), new Set([this.id]), flags)
    return new BroadcastOperator(this.nsp, new Set(), new Set(), flags, this.client.key)
  }

  /** socket.io's hook for adapters: a broadcast reaching this socket tells its onAnyOutgoing listeners. */
  notifyOutgoingListeners (packet) {
    const any = this._anyOutgoing
    for (let i = 0; i < any.length; i++) safeApply(any[i], this, packet.data || [])
  }

  /** Leaves the namespace; with `close`, closes the whole connection. */
  disconnect (close = false) {
    if (!this.connected) return this
    if (close) {
      // Every namespace of the client gets its 41, then the connection closes.
      this.nsp._sessions.closeClient(this.client.key)
      for (const s of this.client.list()) s._onClose('server namespace disconnect')
    } else {
      this.nsp._sessions.disconnect(this.client.key, this.nsp.name)
      this._onClose('server namespace disconnect')
    }
    return this
  }

  onAny (fn) {
    this._any = [...this._any, fn]
    return this
  }

  prependAny (fn) {
    this._any = [fn, ...this._any]
    return this
  }

  offAny (fn) {
    this._any = fn ? this._any.filter((f) => f !== fn) : EMPTY
    return this
  }

  listenersAny () {
    return [...this._any]
  }

  onAnyOutgoing (fn) {
    this._anyOutgoing = [...this._anyOutgoing, fn]
    return this
  }

  prependAnyOutgoing (fn) {
    this._anyOutgoing = [fn, ...this._anyOutgoing]
    return this
  }

  offAnyOutgoing (fn) {
    this._anyOutgoing = fn ? this._anyOutgoing.filter((f) => f !== fn) : EMPTY
    return this
  }

  listenersAnyOutgoing () {
    return [...this._anyOutgoing]
  }

  /** Packet middleware: `fn([event, ...args], next)`; `next(err)` emits 'error' on the socket. */
  use (fn) {
    this._fns = [...this._fns, fn]
    return this
  }

  // ---- from the server ----

  _onPacket (type, id, data, attachments) {
    const conn = this.client._conn
    if (conn !== null && conn._watching) conn._received(type, this.nsp.name, id, data, attachments)
    let args
    try {
      args = JSON.parse(data)
    } catch (err) {
      return reportHandlerError(err)
    }
    if (attachments.length) args = reconstruct(args, attachments)
    if (type === TYPE.EVENT) {
      if (id !== undefined) {
        args.push(once((...res) => this._send(TYPE.ACK, id, res)))
      }
      this._dispatch(args)
    } else if (type === TYPE.ACK) {
      const fn = this._acks && this._acks.get(id)
      if (!fn) return
      this._acks.delete(id)
      safeApply(fn, this, args)
    }
  }

  /**
   * A client's event to the user, in socket.io's order: onAny listeners
   * (they see every event, before `socket.use` middleware), then, once the
   * batch it came in has been handled (socket.io: a tick later), the
   * middleware and the event's listeners, unless the socket disconnected
   * meanwhile. Each listener on its own, a failed one reported
   * (safeApply/emitSafe), so one failing listener neither costs the others
   * nor the connection. A client-sent "error" with no listener is dropped,
   * never thrown (CVE-2024-38355).
   */
  _dispatch (args) {
    const any = this._any // replaced, never changed, by onAny/offAny
    for (let i = 0; i < any.length; i++) safeApply(any[i], this, args)
    this.nsp.server._batchEvents.push(this, args)
  }

  _dispatchNow (args) {
    if (!this.connected) return
    if (this._fns.length === 0) return emitSafe(this, ...args)
    runMiddleware(this._fns, args, (err, failed) => {
      // next(err) is for the app's 'error' listener; a middleware that
      // threw was reported, and its packet is dropped.
      if (err) return failed || this._emitReserved('error', err)
      if (this.connected) emitSafe(this, ...args)
    })
  }

  /** 'disconnecting', 'disconnect', and 'error' from `next(err)` in `socket.use`. */
  _emitReserved (event, ...args) {
    // socket.io throws an 'error' nobody listens to; we report it instead.
    if (!emitSafe(this, event, ...args) && event === 'error') reportHandlerError(args[0])
  }

  _onClose (reason) {
    if (!this.connected) return
    this._emitReserved('disconnecting', reason)
    // Kept for connection state recovery, rooms and data as they are now.
    if (this.pid !== undefined && RECOVERABLE.has(reason)) this.nsp._persist(this)
    this.nsp._adapterLeaveAll(this)
    this.rooms.clear()
    // Rust kept it in its rooms for the 'disconnecting' handlers.
    this.nsp._sessions.removeSocket(this.client.key, this.nsp.name, this.id)
    // As socket.io's _cleanup: a closed socket joins nothing more.
    this.join = noop
    this.connected = false
    this.nsp._outgoing.delete(this)
    this.nsp._remove(this)
    this.client.delete(this.nsp.name)
    this._emitReserved('disconnect', reason)
  }
}

module.exports = { Socket }
