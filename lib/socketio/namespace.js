'use strict'
const { EventEmitter } = require('node:events')
const { Socket } = require('./socket')
const { BroadcastOperator } = require('./broadcast-operator')
const { Adapter } = require('./adapter')
const { runMiddleware } = require('./middleware')
const { safeCall, emitSafe } = require('../util')

/** A namespace (`io.of('/chat')`): middleware, sockets, rooms, broadcasts. */
class Namespace extends EventEmitter {
  /** `sessions`: the server's (sessions.js), for this namespace's sockets and operators too. */
  constructor (server, name, sessions) {
    super()
    // Ack ids, shared by socket emits and broadcasts (as socket.io does).
    this._ids = 0
    this.server = server
    this.name = name
    this._sessions = sessions
    this.sockets = new Map()
    // Sockets with onAnyOutgoing listeners (broadcasts notify them).
    this._outgoing = new Set()
    this._seq = 0
    this._fns = []
    // socket.io's in-memory adapter view, for API compatibility.
    this.adapter = new Adapter(this)
  }

  use (fn) {
    this._fns.push(fn)
    return this
  }

  to (room) {
    return new BroadcastOperator(this).to(room)
  }

  in (room) {
    return this.to(room)
  }

  except (room) {
    return new BroadcastOperator(this).except(room)
  }

  emit (event, ...args) {
    return new BroadcastOperator(this).emit(event, ...args)
  }

  send (...args) {
    this.emit('message', ...args)
    return this
  }

  write (...args) {
    return this.send(...args)
  }

  /** socket.io's deprecated `allSockets()`: the ids of this namespace's sockets. */
  allSockets () {
    return new BroadcastOperator(this).allSockets()
  }

  /** The namespaces a broadcast on this one reaches (a parent: its children). */
  get _targets () {
    return [this]
  }

  /** EventEmitter's emit, for the reserved events (`emit` broadcasts). */
  _emitReserved (event, ...args) {
    return emitSafe(this, event, ...args)
  }

  get local () {
    return new BroadcastOperator(this).local
  }

  timeout (ms) {
    return new BroadcastOperator(this).timeout(ms)
  }

  emitWithAck (event, ...args) {
    return new BroadcastOperator(this).emitWithAck(event, ...args)
  }

  /**
   * Emits to the other servers of a cluster. A single node has none (the
   * Redis adapter of #5 will add them): an ack callback gets no responses.
   */
  serverSideEmit (event, ...args) {
    if (typeof args[args.length - 1] === 'function') {
      const ack = args.pop()
      process.nextTick(safeCall, ack, this, null, [])
    }
    return true
  }

  serverSideEmitWithAck (event, ...args) {
    return Promise.resolve([])
  }

  get volatile () {
    return new BroadcastOperator(this).volatile
  }

  compress (c) {
    return new BroadcastOperator(this).compress(c)
  }

  fetchSockets () {
    return new BroadcastOperator(this).fetchSockets()
  }

  socketsJoin (room) {
    return new BroadcastOperator(this).socketsJoin(room)
  }

  socketsLeave (room) {
    return new BroadcastOperator(this).socketsLeave(room)
  }

  disconnectSockets (close) {
    return new BroadcastOperator(this).disconnectSockets(close)
  }

  /**
   * A client asked to connect: run the middleware, then accept or refuse.
   * `id`: the new socket's, made in Rust (one generator, as socket.io's
   * base64id); `pid`: its private session id ('' with connection state
   * recovery off). A client coming back with a kept session's pid and
   * offset continues it, by default without the middleware (socket.io's
   * `skipMiddlewares`).
   */
  _connect (client, auth, id, pid) {
    const recovery = pid ? this.server._recovery : null
    const session = recovery ? this._restore(client, auth, id, recovery) : null
    const socket = new Socket(this, client, auth, session ? session.sid : id)
    if (recovery) socket._recovering(session ? session.pid : pid, session)
    if (session && recovery.skipMiddlewares) return this._accept(client, socket)
    runMiddleware(this._fns, socket, (err, failed) => {
      if (!err) return this._accept(client, socket)
      // Rooms its middleware joined are left (socket.io's _cleanup); Rust
      // drops them with the refusal.
      for (const r of socket.rooms) this._adapterDel(socket.id, r)
      socket.rooms.clear()
      // As socket.io's _cleanup (an empty dynamic child may go away).
      this._remove(socket)
      // A middleware that threw or rejected is refused, not left hanging;
      // its message is the server's business (reported), not the client's.
      this._refuse(client, socket, failed ? new Error('Internal server error') : err)
    })
  }

  /**
   * The session kept under `auth.pid`, if it has not expired and Rust still
   * has `auth.offset` (then the client has been sent what it missed, and
   * the pending socket `pendingId` has taken the session's id); else null.
   */
  _restore (client, auth, pendingId, recovery) {
    if (!auth || typeof auth.pid !== 'string' || typeof auth.offset !== 'string') return null
    const session = this.adapter._keptSession(auth.pid, recovery.maxDisconnectionDuration)
    if (!session || this.sockets.has(session.sid)) return null
    const restored = this._sessions.restore(client.key, {
      nsp: this.name,
      pendingId,
      sid: session.sid,
      offset: auth.offset,
      rooms: session.rooms,
      oldKey: session.key
    })
    if (!restored) return null
    // Restored once: the socket keeps it again if it drops again.
    this.adapter._forgetSession(auth.pid)
    return session
  }

  /** A socket that lost its connection: its session is kept for it to come back to. */
  _persist (socket) {
    this.adapter.persistSession({ sid: socket.id, pid: socket.pid, rooms: [...socket.rooms], data: socket.data, key: socket.client.key })
  }

  _refuse (client, socket, err) {
    const message = err instanceof Error ? err.message : String(err)
    const data = err && err.data !== undefined ? JSON.stringify(err.data) : undefined
    this._sessions.reject(client.key, this.name, socket.id, message, data)
  }

  _accept (client, socket) {
    if (!client.open) return
    this._sessions.accept(client.key, this.name, socket.id, socket.pid)
    // A repeated CONNECT (still in the middleware when it came) replaces the
    // earlier socket of this namespace, which is then gone.
    const prev = client.get(this.name)
    if (prev && prev !== socket) prev._onClose('server namespace disconnect')
    socket.connected = true
    socket._seq = ++this._seq
    if (socket._anyOutgoing.length) this._outgoing.add(socket)
    client.set(this.name, socket)
    this.sockets.set(socket.id, socket)
    socket._joinOwn()
    emitSafe(this, 'connection', socket)
    emitSafe(this, 'connect', socket)
  }

  /** This namespace's socket of the client with this key, if any. */
  _socketOf (key) {
    return this.server._client(key)?.get(this.name)
  }

  _remove (socket) {
    this.sockets.delete(socket.id)
  }

  _adapterAdd (id, room) {
    this.adapter.addMember(id, room)
  }

  _adapterDel (id, room) {
    this.adapter.delMember(id, room)
  }
}

module.exports = { Namespace }
