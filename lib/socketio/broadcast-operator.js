'use strict'
const { TYPE, RESERVED, dataPacket } = require('./packet')
const { once, safeCall, safeApply } = require('../util')
const viaAdapter = require('./adapter-broadcast')
const { RemoteSocket } = require('./remote-socket')

/**
 * `io.to(room)`, `socket.broadcast`, `nsp.except(room)`…: who gets an emit.
 * Immutable: every modifier returns a new operator. The packet is encoded
 * once here and framed once in Rust for every recipient.
 */
class BroadcastOperator {
  constructor (nsp, rooms = new Set(), exceptRooms = new Set(), flags = {}, skipKey = undefined) {
    this._nsp = nsp
    // socket.io's names, which some apps and its own tests read.
    this.rooms = rooms
    this.exceptRooms = exceptRooms
    this.flags = flags
    this._skipKey = skipKey
  }

  to (room) {
    const rooms = new Set(this.rooms)
    for (const r of [].concat(room)) rooms.add(String(r))
    return new BroadcastOperator(this._nsp, rooms, this.exceptRooms, this.flags, this._skipKey)
  }

  in (room) {
    return this.to(room)
  }

  except (room) {
    const except = new Set(this.exceptRooms)
    for (const r of [].concat(room)) except.add(String(r))
    return new BroadcastOperator(this._nsp, this.rooms, except, this.flags, this._skipKey)
  }

  compress (compress) {
    return new BroadcastOperator(this._nsp, this.rooms, this.exceptRooms, { ...this.flags, compress }, this._skipKey)
  }

  get volatile () {
    return new BroadcastOperator(this._nsp, this.rooms, this.exceptRooms, { ...this.flags, volatile: true }, this._skipKey)
  }

  /** Acks of a broadcast: the callback gets (err, responses) after `ms`. */
  timeout (ms) {
    return new BroadcastOperator(this._nsp, this.rooms, this.exceptRooms, { ...this.flags, timeout: ms }, this._skipKey)
  }

  get local () {
    return new BroadcastOperator(this._nsp, this.rooms, this.exceptRooms, { ...this.flags, local: true }, this._skipKey)
  }

  emit (event, ...args) {
    if (RESERVED.has(event)) throw new Error(`"${String(event)}" is a reserved event name`)
    if (this._nsp._custom) return this._emitViaAdapter(event, args)
    if (typeof args[args.length - 1] === 'function') return this._emitWithAck(event, args)
    this._broadcast(undefined, [event, ...args])
    return true
  }

  /** Custom adapters: each target namespace's adapter (adapter-broadcast.js). */
  _emitViaAdapter (event, args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null
    for (const nsp of this._nsp._targets) {
      if (ack) viaAdapter.emitWithAck(this, nsp, [event, ...args], ack)
      else viaAdapter.emit(this, nsp, [event, ...args])
    }
    return true
  }

  /** A socket of another node, from its details (what `fetchSockets` gives for it). */
  _remote (details) {
    return new RemoteSocket(this._nsp.adapter, details)
  }

  _broadcast (id, values) {
    const rooms = [...this.rooms]
    const except = [...this.exceptRooms]
    // A parent namespace reaches each child with the same selection.
    for (const nsp of this._nsp._targets) {
      const { text, attachments } = dataPacket(TYPE.EVENT, nsp.name, id, values)
      const to = this._selection(nsp, rooms, except)
      const remote = id === undefined ? this._remoteOut(nsp) : undefined
      nsp._sessions.broadcast(to, text, attachments.length ? attachments : undefined, this.flags.volatile, id === undefined, remote, this.flags.compress)
      if (nsp._outgoing.size || nsp._sessions._watchers) this._notifyOutgoing(nsp, to, values, text, attachments)
    }
  }

  /**
   * With a Redis adapter (and not `local`): how the broadcast goes to the
   * other nodes. The sender skipped here by key is skipped there by id.
   */
  _remoteOut (nsp) {
    if (!nsp.adapter._link || this.flags.local) return undefined
    const sender = this._skipKey === undefined ? undefined : nsp._socketOf(this._skipKey)
    return { exceptIds: sender ? [sender.id] : [], compress: this.flags.compress }
  }

  /** The Redis adapter of this operator's namespace, unless `local` (or none). */
  get _scaledOut () {
    const adapter = this._nsp.adapter
    return adapter && adapter._link && !this.flags.local ? adapter : null
  }

  /**
   * Another node's broadcast with acks, delivered here: `onCount` gets how
   * many sockets were sent it, `onAck` each answer (as socket.io's
   * adapter.broadcastWithAck); answers after `timeout` are not waited for.
   */
  _ackedLocally (values, timeout, onCount, onAck) {
    const id = this._nsp._ids++
    const targets = this._matching()
    for (const s of targets) s._ackMap().set(id, (res) => onAck(res))
    if (timeout > 0) setTimeout(() => { for (const s of targets) s._ackMap().delete(id) }, timeout).unref()
    this._broadcast(id, values)
    onCount(targets.length)
  }

  /** Who this operator reaches in `nsp`, as Rust's `select` and `broadcast` take it. */
  _selection (nsp, rooms, except) {
    return { nsp: nsp.name, rooms, except, skip: this._skipKey }
  }

  /**
   * socket.io tells each recipient of a broadcast: its socket's
   * onAnyOutgoing listeners, and its Engine.IO session's 'packetCreate'.
   * Only asked when someone listens to either.
   */
  _notifyOutgoing (nsp, to, values, text, attachments) {
    const compress = this.flags.compress !== false
    // As socket.io's adapter: a text-only broadcast carries its frame.
    const frame = attachments.length === 0 ? textFrame('4' + text) : undefined
    for (const key of nsp._sessions.select(to)) {
      const socket = nsp._socketOf(key)
      if (!socket) continue
      if (nsp._outgoing.has(socket)) for (const fn of socket._anyOutgoing) safeApply(fn, socket, values)
      const conn = socket.client._conn
      if (conn !== null && conn._watching) conn._created(text, attachments, compress, frame)
    }
  }

  /**
   * One packet with one ack id, framed once in Rust; every recipient's
   * socket waits for that id. As in socket.io, the callback runs when all
   * recipients answered, or after the timeout (`timeout(ms)`; without one, at
   * once) with an error and the responses so far.
   */
  _emitWithAck (event, args) {
    const ack = args.pop()
    const id = this._nsp._ids++
    const targets = this._matching()
    const responses = []
    // As socket.io: done when every server reported its client count and
    // every client answered (this node is one server, its count known).
    const scaled = this._scaledOut
    let expectedClients = targets.length
    let servers = 1
    let expectedServers = scaled ? -1 : 1
    const check = () => {
      if (servers === expectedServers && responses.length === expectedClients) finish(null)
    }
    const finish = once((err) => {
      clearTimeout(timer)
      for (const s of targets) s._ackMap().delete(id)
      // A RemoteSocket's emit answers as a single socket's would.
      const single = this.flags.expectSingleResponse
      safeCall(ack, this, err, single ? (err ? null : responses[0]) : responses)
    })
    const timer = setTimeout(() => finish(new Error('operation has timed out')), this.flags.timeout)
    for (const s of targets) {
      s._ackMap().set(id, (res) => {
        responses.push(res)
        check()
      })
    }
    this._broadcast(id, [event, ...args])
    if (scaled) {
      scaled._broadcastWithAck([event, ...args], [...this.rooms], [...this.exceptRooms], this.flags,
        (count) => { expectedClients += count; servers++; check() },
        (res) => { responses.push(res); check() })
      // Redis away: the other nodes cannot answer; fail now, not at the timeout.
      scaled.serverCount().then((n) => { expectedServers = n; check() },
        (cause) => finish(Object.assign(new Error('operation has timed out', { cause }), { code: 'FERROSOCKET_REDIS_DOWN' })))
    }
    check()
    return true
  }

  /** As socket.io: a timeout rejects with the answers that did come in `err.responses`. */
  emitWithAck (event, ...args) {
    return new Promise((resolve, reject) => {
      this.emit(event, ...args, (err, res) => {
        if (!err) return resolve(res)
        err.responses = res
        reject(err)
      })
    })
  }

  send (...args) {
    return this.emit('message', ...args)
  }

  /**
   * The sockets of this node a broadcast with these options reaches, in
   * connection order: Rust's selection (the one broadcasts use), mapped to
   * this namespace's sockets.
   */
  _matching () {
    const out = []
    const rooms = [...this.rooms]
    const except = [...this.exceptRooms]
    for (const nsp of this._nsp._targets) {
      const keys = nsp._sessions.select(this._selection(nsp, rooms, except))
      const found = []
      for (const key of keys) {
        const socket = nsp._socketOf(key)
        if (socket) found.push(socket)
      }
      out.push(...found.sort((a, b) => a._seq - b._seq))
    }
    return out
  }

  /** socket.io's deprecated `allSockets()`: the matching sockets' ids. */
  async allSockets () {
    if (this._nsp._custom) return viaAdapter.allSockets(this, this._nsp._targets)
    const ids = new Set(this._matching().map((s) => s.id))
    const scaled = this._scaledOut
    if (scaled) for (const id of await scaled._socketIdsRemote([...this.rooms])) ids.add(id)
    return ids
  }

  async fetchSockets () {
    if (this._nsp._custom) return viaAdapter.fetchSockets(this, this._nsp, (d) => this._remote(d))
    const local = this._matching()
    const scaled = this._scaledOut
    if (!scaled) return local
    const remote = await scaled._fetchRemote([...this.rooms], [...this.exceptRooms])
    return local.concat(remote.map((d) => this._remote(d)))
  }

  socketsJoin (room) {
    if (this._nsp._custom) return viaAdapter.socketsJoin(this, this._nsp._targets, [].concat(room))
    for (const s of this._matching()) s.join(room)
    this._scaledOut?._remoteJoin([...this.rooms], [...this.exceptRooms], [].concat(room))
  }

  socketsLeave (room) {
    const rooms = [].concat(room)
    if (this._nsp._custom) return viaAdapter.socketsLeave(this, this._nsp._targets, rooms)
    for (const s of this._matching()) for (const r of rooms) s.leave(r)
    this._scaledOut?._remoteLeave([...this.rooms], [...this.exceptRooms], rooms)
  }

  disconnectSockets (close = false) {
    if (this._nsp._custom) return viaAdapter.disconnectSockets(this, this._nsp._targets, close)
    // The others first: the local sockets may include what selects them.
    this._scaledOut?._remoteDisconnect([...this.rooms], [...this.exceptRooms], close)
    for (const s of this._matching()) s.disconnect(close)
  }
}

/** An unmasked final text frame as [header, payload] (ws's `Sender.frame`). */
function textFrame (text) {
  const data = Buffer.from(text)
  const n = data.length
  let head
  if (n < 126) {
    head = Buffer.from([0x81, n])
  } else if (n < 65536) {
    head = Buffer.from([0x81, 126, n >> 8, n & 0xff])
  } else {
    head = Buffer.alloc(10)
    head[0] = 0x81
    head[1] = 127
    head.writeBigUInt64BE(BigInt(n), 2)
  }
  return [head, data]
}

module.exports = { BroadcastOperator }
