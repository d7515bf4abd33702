'use strict'
const { Adapter } = require('./adapter')
const { safeCall } = require('../util')
const { uid6 } = require('./redis-link')
const { redisUrl, redisTls } = require('../options')
const { deconstruct, reconstruct } = require('./packet')

const kRedisOptions = Symbol('ferrosocket.redisOptions')

// The classic @socket.io/redis-adapter's request types.
const T = {
  SOCKETS: 0,
  ALL_ROOMS: 1,
  REMOTE_JOIN: 2,
  REMOTE_LEAVE: 3,
  REMOTE_DISCONNECT: 4,
  REMOTE_FETCH: 5,
  SERVER_SIDE_EMIT: 6,
  BROADCAST: 7,
  BROADCAST_CLIENT_COUNT: 8,
  BROADCAST_ACK: 9
}

/**
 * A namespace's adapter when the server scales out on Redis
 * (`createRedisAdapter`): the built-in adapter (rooms and delivery in Rust)
 * plus the classic `@socket.io/redis-adapter` protocol for what crosses
 * nodes. Broadcasts go out and come in in Rust; the requests other nodes
 * make (fetchSockets, remote join/leave/disconnect, serverSideEmit,
 * broadcasts with acks) are answered here, where the sockets' data and the
 * listeners are. Wire-compatible with @socket.io/redis-adapter 8.x nodes
 * and @socket.io/redis-emitter.
 */
class RedisAdapter extends Adapter {
  constructor (nsp, link) {
    super(nsp)
    this._link = link
    this.uid = link.uid
    this.requestsTimeout = link.opts.requestsTimeout
    this.publishOnSpecificResponseChannel = link.opts.publishOnSpecificResponseChannel
    this._requests = new Map()
    this._ackRequests = new Map()
    this._channels(link.opts.key)
    link.addNamespace(this)
  }

  /** The protocol's channel names for this namespace. */
  _channels (key) {
    const nsp = this.nsp.name
    this.channel = `${key}#${nsp}#`
    this.requestChannel = `${key}-request#${nsp}#`
    this.responseChannel = `${key}-response#${nsp}#`
    this.specificResponseChannel = `${this.responseChannel}${this.uid}#`
  }

  /** The channels whose messages JS answers (the link routes them here). */
  get _inbound () {
    return [this.requestChannel, this.responseChannel, this.specificResponseChannel]
  }

  /**
   * 'connecting', 'connected', 'disconnected' or 'closed': the server's
   * Redis link. Each change is emitted as 'state' (state, error).
   */
  get state () {
    return this._link.state
  }

  /** Counters of the server's Redis link (published, droppedPublishes, received, lostMessages, malformed). */
  get stats () {
    return this._link.stats()
  }

  serverCount () {
    return this._link.numsub(this.requestChannel)
  }

  /**
   * The server count for a cross-node request. While Redis is away the
   * request fails at once with socket.io's message for it (apps match on
   * it), the reason as `cause`, and code FERROSOCKET_REDIS_DOWN.
   */
  _countFor (message) {
    return this.serverCount().catch((cause) => {
      throw Object.assign(new Error(message, { cause }), { code: 'FERROSOCKET_REDIS_DOWN' })
    })
  }

  _publish (channel, value, msgpack = false) {
    if (!msgpack) return this._link.publish(channel, JSON.stringify(value))
    const attachments = []
    const json = JSON.stringify(deconstruct(value, attachments))
    return this._link.publish(channel, json, attachments, true)
  }

  _respond (request, value, msgpack = false) {
    const channel = this.publishOnSpecificResponseChannel ? `${this.responseChannel}${request.uid}#` : this.responseChannel
    this._publish(channel, value, msgpack)
  }

  /** A message on this namespace's request or response channels. */
  _onMessage (channel, json, attachments) {
    let msg
    try {
      // Binaries come as placeholders, checked and numbered by Rust.
      msg = reconstruct(JSON.parse(json), attachments)
    } catch {
      return
    }
    if (!msg || typeof msg !== 'object') return
    if (channel.startsWith(this.responseChannel)) return this._onResponse(msg)
    if (channel === this.requestChannel) return this._onRequest(msg)
  }

  /** The local part of an operation, as the request's `opts` name it. */
  _local (opts) {
    let op = this.nsp.local
    if (opts) {
      if (Array.isArray(opts.rooms) && opts.rooms.length) op = op.to(opts.rooms)
      if (Array.isArray(opts.except) && opts.except.length) op = op.except(opts.except)
    }
    return op
  }

  _onRequest (req) {
    switch (req.type) {
      case T.SOCKETS: {
        if (this._requests.has(req.requestId)) return
        const sockets = this._local({ rooms: req.rooms })._matching().map((s) => s.id)
        return this._respond(req, { requestId: req.requestId, sockets })
      }
      case T.ALL_ROOMS:
        if (this._requests.has(req.requestId)) return
        return this._respond(req, { requestId: req.requestId, rooms: [...this.rooms.keys()] })
      case T.REMOTE_JOIN:
      case T.REMOTE_LEAVE:
      case T.REMOTE_DISCONNECT: {
        // This node applied its own operation before publishing it.
        if (req.uid === this.uid) return
        if (req.opts) {
          const op = this._local(req.opts)
          if (req.type === T.REMOTE_JOIN) op.socketsJoin(req.rooms)
          else if (req.type === T.REMOTE_LEAVE) op.socketsLeave(req.rooms)
          else op.disconnectSockets(Boolean(req.close))
          return
        }
        // The older form, one socket by id (answered).
        const socket = this.nsp.sockets.get(req.sid)
        if (!socket) return
        if (req.type === T.REMOTE_JOIN) socket.join(req.room)
        else if (req.type === T.REMOTE_LEAVE) socket.leave(req.room)
        else socket.disconnect(Boolean(req.close))
        return this._respond(req, { requestId: req.requestId })
      }
      case T.REMOTE_FETCH: {
        if (this._requests.has(req.requestId)) return
        // The handshake as its toJSON() writes it (socket.io leaves out
        // `sessionStore`, which is never among those fields).
        const sockets = this._local(req.opts)._matching().map((s) => ({ id: s.id, handshake: s.handshake, rooms: [...s.rooms], data: s.data }))
        return this._respond(req, { requestId: req.requestId, sockets })
      }
      case T.SERVER_SIDE_EMIT: {
        if (req.uid === this.uid || !Array.isArray(req.data)) return
        if (req.requestId === undefined) return this.nsp._onServerSideEmit(req.data)
        let called = false
        const callback = (arg) => {
          if (called) return
          called = true
          // As the classic adapter: always on the shared response channel.
          this._publish(this.responseChannel, { type: T.SERVER_SIDE_EMIT, requestId: req.requestId, data: arg })
        }
        return this.nsp._onServerSideEmit([...req.data, callback])
      }
      case T.BROADCAST: {
        if (req.uid === this.uid || this._ackRequests.has(req.requestId) || !req.packet || !Array.isArray(req.packet.data)) return
        const flags = (req.opts && req.opts.flags) || {}
        this._local(req.opts)._ackedLocally(req.packet.data, flags.timeout,
          (clientCount) => this._respond(req, { type: T.BROADCAST_CLIENT_COUNT, requestId: req.requestId, clientCount }),
          (arg) => this._respond(req, { type: T.BROADCAST_ACK, requestId: req.requestId, packet: arg }, true))
      }
    }
  }

  _onResponse (res) {
    const ackRequest = this._ackRequests.get(res.requestId)
    if (ackRequest) {
      if (res.type === T.BROADCAST_CLIENT_COUNT) ackRequest.clientCount(res.clientCount)
      else if (res.type === T.BROADCAST_ACK) ackRequest.ack(res.packet)
      return
    }
    const request = this._requests.get(res.requestId)
    if (!request) return
    switch (request.type) {
      case T.SOCKETS:
      case T.REMOTE_FETCH:
      case T.ALL_ROOMS: {
        request.msgCount++
        const list = request.type === T.ALL_ROOMS ? res.rooms : res.sockets
        if (!Array.isArray(list)) return
        for (const item of list) request.collect(item)
        if (request.msgCount === request.numSub) this._settle(res.requestId, null)
        break
      }
      case T.SERVER_SIDE_EMIT:
        request.responses.push(res.data)
        if (request.responses.length === request.numSub) this._settle(res.requestId, null)
        break
    }
  }

  _settle (requestId, err) {
    const request = this._requests.get(requestId)
    if (!request) return
    this._requests.delete(requestId)
    clearTimeout(request.timeout)
    request.done(err)
  }

  /**
   * Asks every other node (`numSub` of them, this one counted) and settles
   * with what they answered, or with socket.io's timeout error.
   */
  _ask (type, body, numSub, collect, timeoutMessage) {
    return new Promise((resolve, reject) => {
      const requestId = uid6()
      const request = {
        type,
        numSub,
        msgCount: 1,
        responses: [],
        collect,
        done: (err) => (err ? reject(err) : resolve(request.responses)),
        timeout: setTimeout(() => this._settle(requestId, new Error(timeoutMessage(request))), this.requestsTimeout)
      }
      this._requests.set(requestId, request)
      this._publish(this.requestChannel, { uid: this.uid, requestId, type, ...body })
    })
  }

  /** socket.io's `allRooms()`: every node's rooms. */
  async allRooms () {
    const rooms = new Set(this.rooms.keys())
    const numSub = await this._countFor('timeout reached while waiting for allRooms response')
    if (numSub <= 1) return rooms
    await this._ask(T.ALL_ROOMS, {}, numSub, (r) => rooms.add(r), () => 'timeout reached while waiting for allRooms response')
    return rooms
  }

  /** The other nodes' sockets an operator selects, as details for RemoteSocket. */
  async _fetchRemote (rooms, except) {
    const numSub = await this._countFor('timeout reached while waiting for fetchSockets response')
    if (numSub <= 1) return []
    const found = []
    await this._ask(T.REMOTE_FETCH, { opts: { rooms, except } }, numSub, (s) => found.push(s),
      () => 'timeout reached while waiting for fetchSockets response')
    return found
  }

  /** The other nodes' socket ids an operator selects (`allSockets`). */
  async _socketIdsRemote (rooms) {
    const numSub = await this._countFor('timeout reached while waiting for sockets response')
    if (numSub <= 1) return []
    const found = []
    await this._ask(T.SOCKETS, { rooms }, numSub, (s) => found.push(s),
      () => 'timeout reached while waiting for sockets response')
    return found
  }

  /** socketsJoin/socketsLeave/disconnectSockets on the other nodes (fire and forget). */
  _remoteOperation (type, rooms, except, extra) {
    this._publish(this.requestChannel, { uid: this.uid, type, opts: { rooms, except }, ...extra })
  }

  _remoteJoin (rooms, except, join) {
    this._remoteOperation(T.REMOTE_JOIN, rooms, except, { rooms: join })
  }

  _remoteLeave (rooms, except, leave) {
    this._remoteOperation(T.REMOTE_LEAVE, rooms, except, { rooms: leave })
  }

  _remoteDisconnect (rooms, except, close) {
    this._remoteOperation(T.REMOTE_DISCONNECT, rooms, except, { close })
  }

  /** serverSideEmit to the other nodes; with an ack as its last argument, their answers. */
  _serverSideEmit (args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null
    if (!ack) {
      this._publish(this.requestChannel, { uid: this.uid, type: T.SERVER_SIDE_EMIT, data: args })
      return
    }
    this._countFor('timeout reached: only 0 responses received out of 0').then((count) => {
      const numSub = count - 1
      if (numSub <= 0) return safeCall(ack, this.nsp, null, [])
      const requestId = uid6()
      const request = {
        type: T.SERVER_SIDE_EMIT,
        numSub,
        responses: [],
        done: (err) => safeCall(ack, this.nsp, err, request.responses),
        timeout: setTimeout(() => this._settle(requestId,
          new Error(`timeout reached: only ${request.responses.length} responses received out of ${numSub}`)), this.requestsTimeout)
      }
      this._requests.set(requestId, request)
      this._publish(this.requestChannel, { uid: this.uid, requestId, type: T.SERVER_SIDE_EMIT, data: args })
    }, (err) => safeCall(ack, this.nsp, err, []))
  }

  /**
   * A broadcast with acks to the other nodes: each answers with its client
   * count, then one message per ack (as socket.io's broadcastWithAck).
   */
  _broadcastWithAck (data, rooms, except, flags, clientCount, ack) {
    const requestId = this._requestId()
    this._ackRequests.set(requestId, { clientCount, ack })
    setTimeout(() => this._ackRequests.delete(requestId), flags.timeout).unref?.()
    this._publishAckedBroadcast(requestId, { type: 2, data, nsp: this.nsp.name }, { rooms, except, flags })
  }

  /** A new request id, in the protocol's form. */
  _requestId () {
    return uid6()
  }

  /** The classic protocol's broadcast-with-acks request (always MessagePack, as the adapter). */
  _publishAckedBroadcast (requestId, packet, opts) {
    this._publish(this.requestChannel, { uid: this.uid, requestId, type: T.BROADCAST, packet, opts }, true)
  }

  /**
   * socket.io calls it when the server closes and when an empty child
   * namespace is cleaned up: pending requests end, and a namespace that is
   * gone leaves Redis too.
   */
  close () {
    super.close()
    for (const [id] of this._requests) this._settle(id, new Error('adapter closed'))
    this._ackRequests.clear()
    if (!this.nsp.server._nsps.has(this.nsp.name)) this._link.removeNamespace(this)
  }
}

/**
 * `createRedisAdapter(options)`: what `io.adapter()` and the `adapter`
 * option take to scale out on Redis in Rust. Options as
 * @socket.io/redis-adapter's (`key`, `requestsTimeout`,
 * `publishOnSpecificResponseChannel`) plus `url`.
 */
function createRedisAdapter (options = {}) {
  const opts = redisOptions(options)
  // Required here, not at the top: it extends this file's class.
  const { ShardedRedisAdapter } = require('./sharded-redis-adapter')
  const Kind = opts.protocol === 'classic' ? RedisAdapter : ShardedRedisAdapter
  const factory = function (nsp) {
    return new Kind(nsp, nsp.server._redisLink(opts))
  }
  factory[kRedisOptions] = opts
  return factory
}

function redisOptions (o) {
  if (o === null || typeof o !== 'object') throw new TypeError('ferrosocket: createRedisAdapter(options) takes an object')
  const known = ['url', 'tls', 'key', 'channelPrefix', 'requestsTimeout', 'publishOnSpecificResponseChannel', 'sharded']
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new TypeError(`ferrosocket: createRedisAdapter: unknown option "${k}" (known: ${known.join(', ')})`)
  }
  const url = redisUrl('createRedisAdapter option "url"', o.url === undefined ? 'redis://127.0.0.1:6379' : o.url)
  const tls = redisTls('createRedisAdapter option "tls"', o.tls, url)
  // `channelPrefix` is the sharded adapter's name for `key`.
  if (o.key !== undefined && o.channelPrefix !== undefined && o.key !== o.channelPrefix) {
    throw new TypeError('ferrosocket: createRedisAdapter: "key" and "channelPrefix" name the same prefix; give one')
  }
  const key = o.key ?? o.channelPrefix ?? 'socket.io'
  if (typeof key !== 'string' || key === '') throw new TypeError('ferrosocket: createRedisAdapter: "key" must be a non-empty string')
  const requestsTimeout = o.requestsTimeout === undefined ? 5000 : o.requestsTimeout
  if (!Number.isFinite(requestsTimeout) || requestsTimeout <= 0) throw new TypeError('ferrosocket: createRedisAdapter: "requestsTimeout" must be a positive number of milliseconds')
  return Object.freeze({ url, tls, key, requestsTimeout, publishOnSpecificResponseChannel: Boolean(o.publishOnSpecificResponseChannel), protocol: protocolOf(o.sharded) })
}

/**
 * `sharded`: false (the classic protocol, createAdapter's), true or
 * `{ subscriptionMode }` (createShardedAdapter's, on Redis 7 or later).
 */
function protocolOf (sharded) {
  if (sharded === undefined || sharded === false) return 'classic'
  const modes = ['dynamic', 'static', 'dynamic-private']
  if (sharded === true) return 'sharded:dynamic'
  if (sharded === null || typeof sharded !== 'object' || Array.isArray(sharded)) {
    throw new TypeError('ferrosocket: createRedisAdapter: "sharded" must be false, true or { subscriptionMode }')
  }
  for (const k of Object.keys(sharded)) {
    if (k !== 'subscriptionMode') throw new TypeError(`ferrosocket: createRedisAdapter: unknown "sharded" option "${k}" (known: subscriptionMode)`)
  }
  const mode = sharded.subscriptionMode ?? 'dynamic'
  if (!modes.includes(mode)) throw new TypeError(`ferrosocket: createRedisAdapter: "sharded.subscriptionMode" must be one of ${modes.join(', ')}, got ${JSON.stringify(mode)}`)
  return `sharded:${mode}`
}

module.exports = { RedisAdapter, createRedisAdapter, kRedisOptions }
