'use strict'
const { EventEmitter } = require('node:events')
const { Socket } = require('./socket')
const { BroadcastOperator } = require('./broadcast-operator')
const { Adapter } = require('./adapter')
const { kRedisOptions } = require('./redis-adapter')
const { runMiddleware } = require('./middleware')
const { RESERVED, TYPE, dataPacket } = require('./packet')
const { safeCall, safeApply, emitSafe } = require('../util')

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
    // Sockets whose middleware runs (socket.io's private field, which some
    // apps and its own tests read).
    this._preConnectSockets = new Map()
    // Sockets with onAnyOutgoing listeners (broadcasts notify them).
    this._outgoing = new Set()
    this._seq = 0
    this._fns = []
    this._initAdapter()
  }

  /**
   * The namespace's adapter: by default the built-in one (rooms and
   * delivery in Rust; `adapter` is socket.io's in-memory view of the
   * rooms); with `io.adapter(X)` a socket.io-adapter compatible `new X(nsp)`
   * (Redis, cluster…), which then owns rooms and broadcasts as in socket.io:
   * slower (it sends to each socket from JS), same semantics.
   */
  _initAdapter () {
    const Custom = this.server._adapterClass
    // createRedisAdapter's factory: the built-in adapter, scaled out in Rust.
    const redis = Boolean(Custom && Custom[kRedisOptions])
    this._custom = Boolean(Custom) && !redis
    this.adapter = redis ? Custom(this) : Custom ? new Custom(this) : new Adapter(this)
    // A failing init (a Redis subscription refused…) is reported, not thrown.
    if (this._custom) safeApply(this.adapter.init, this.adapter, [])
  }

  /** A custom adapter's call for `serverSideEmit` from another node: the listeners here. */
  _onServerSideEmit (args) {
    emitSafe(this, ...args)
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

  /** An operator aimed at one socket's own room whose acks answer as one socket's (RemoteSocket). */
  _toOne (id) {
    return new BroadcastOperator(this, new Set([id]), new Set(), { expectSingleResponse: true })
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
   * Emits to the other servers of a cluster, through a custom adapter that
   * spans nodes (socket.io's semantics). The built-in adapter is one node:
   * an ack callback gets no responses.
   */
  serverSideEmit (event, ...args) {
    if (RESERVED.has(event)) throw new Error(`"${String(event)}" is a reserved event name`)
    if (this._custom) {
      this.adapter.serverSideEmit([event, ...args])
      return true
    }
    if (this.adapter._link) {
      this.adapter._serverSideEmit([event, ...args])
      return true
    }
    if (typeof args[args.length - 1] === 'function') {
      const ack = args.pop()
      process.nextTick(safeCall, ack, this, null, [])
    }
    return true
  }

  serverSideEmitWithAck (event, ...args) {
    return new Promise((resolve, reject) => {
      this.serverSideEmit(event, ...args, (err, responses) => {
        if (!err) return resolve(responses)
        err.responses = responses
        reject(err)
      })
    })
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
    if (recovery && this._custom && isRecovering(auth)) {
      // A custom adapter keeps sessions its own way, maybe remotely.
      return this._restoreFromAdapter(client, auth, id).then((session) => this._start(client, auth, id, pid, recovery, session))
    }
    const session = recovery ? this._restore(client, auth, id, recovery) : null
    this._start(client, auth, id, pid, recovery, session)
  }

  _start (client, auth, id, pid, recovery, session) {
    const socket = new Socket(this, client, auth, session ? session.sid : id)
    if (recovery) socket._recovering(session ? session.pid : pid, session)
    if (session && recovery.skipMiddlewares) return this._accept(client, socket)
    this._preConnectSockets.set(socket.id, socket)
    runMiddleware(this._fns, socket, (err, failed) => {
      this._preConnectSockets.delete(socket.id)
      if (!err) return this._accept(client, socket)
      // Rooms its middleware joined are left (socket.io's _cleanup); Rust
      // drops them with the refusal.
      this._adapterLeaveAll(socket)
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
    if (!isRecovering(auth)) return null
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

  /**
   * The same through a custom adapter's `restoreSession` (socket.io's
   * semantics: an error is no session); the missed packets it returns are
   * sent from here, before the CONNECT answer.
   */
  async _restoreFromAdapter (client, auth, pendingId) {
    let session = null
    try {
      session = await this.adapter.restoreSession(auth.pid, auth.offset)
    } catch {}
    if (!session || !client.open || this.sockets.has(session.sid)) return null
    if (!this._sessions.restore(client.key, { nsp: this.name, pendingId, sid: session.sid, rooms: [] })) return null
    for (const data of session.missedPackets || []) {
      const { text, attachments } = dataPacket(TYPE.EVENT, this.name, undefined, data)
      this._sessions.send(client, text, attachments, {})
    }
    return session
  }

  /** A socket that lost its connection: its session is kept for it to come back to. */
  _persist (socket) {
    const session = { sid: socket.id, pid: socket.pid, rooms: [...socket.rooms], data: socket.data }
    // The built-in adapter also keeps the client's key (Rust's log leaves
    // out what the socket itself broadcast by it).
    if (!this._custom) session.key = socket.client.key
    this.adapter.persistSession(session)
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
    this._preConnectSockets.delete(socket.id)
  }

  _adapterAdd (id, room) {
    if (this._custom) return this.adapter.addAll(id, new Set([room]))
    this.adapter.addMember(id, room)
  }

  _adapterDel (id, room) {
    if (this._custom) return this.adapter.del(id, room)
    this.adapter.delMember(id, room)
  }

  /** The socket leaves every room of the adapter (socket.io's leaveAll). */
  _adapterLeaveAll (socket) {
    if (this._custom) return this.adapter.delAll(socket.id)
    for (const r of socket.rooms) this.adapter.delMember(socket.id, r)
  }
}

/** A CONNECT that asks to continue a kept session (socket.io-client sends both). */
function isRecovering (auth) {
  return auth !== null && typeof auth === 'object' && typeof auth.pid === 'string' && typeof auth.offset === 'string'
}

module.exports = { Namespace }
