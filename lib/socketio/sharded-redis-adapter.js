'use strict'
const crypto = require('node:crypto')
const { RedisAdapter } = require('./redis-adapter')
const { safeCall } = require('../util')
const { deconstruct, reconstruct } = require('./packet')

// socket.io-adapter's ClusterAdapter message types, which the sharded
// @socket.io/redis-adapter speaks.
const M = {
  BROADCAST: 3,
  SOCKETS_JOIN: 4,
  SOCKETS_LEAVE: 5,
  DISCONNECT_SOCKETS: 6,
  FETCH_SOCKETS: 7,
  FETCH_SOCKETS_RESPONSE: 8,
  SERVER_SIDE_EMIT: 9,
  SERVER_SIDE_EMIT_RESPONSE: 10,
  BROADCAST_CLIENT_COUNT: 11,
  BROADCAST_ACK: 12
}
const RESPONSES = new Set([M.FETCH_SOCKETS_RESPONSE, M.SERVER_SIDE_EMIT_RESPONSE, M.BROADCAST_CLIENT_COUNT, M.BROADCAST_ACK])

/** As ClusterAdapter's randomId(). */
function randomId () {
  return crypto.randomBytes(8).toString('hex')
}

/**
 * A namespace's adapter for `createRedisAdapter({ sharded })`: the sharded
 * protocol of @socket.io/redis-adapter (`createShardedAdapter`, sharded
 * pub/sub of Redis 7), whose messages are socket.io-adapter's
 * ClusterAdapter ones. As with the classic protocol, broadcasts without
 * acks cross in Rust; what JS answers is here. In the dynamic modes each
 * room with members here has its own channel, so a broadcast to one room
 * reaches only the nodes that hold it.
 */
class ShardedRedisAdapter extends RedisAdapter {
  constructor (nsp, link) {
    super(nsp, link)
    // Rooms with a channel here: replayed when the link attaches to a new
    // handle (io.close() then listen again), where a socket that outlived
    // the old one may still hold them.
    this._roomChannels = new Set()
  }

  _channels (key) {
    this.channel = `${key}#${this.nsp.name}#`
    this.responseChannel = `${this.channel}${this.uid}#`
    this._mode = this._link.opts.protocol.slice('sharded:'.length)
  }

  get _inbound () {
    return [this.channel, this.responseChannel]
  }

  /** The server count: `PUBSUB SHARDNUMSUB` of the namespace's channel. */
  serverCount () {
    return this._link.numsub(this.channel)
  }

  /** Whether a room has a channel of its own in this subscription mode. */
  _ownChannel (room, isPrivate) {
    return this._mode === 'dynamic-private' || (this._mode === 'dynamic' && !isPrivate)
  }

  addMember (id, room) {
    const created = room === id || !Map.prototype.has.call(this.rooms, room)
    super.addMember(id, room)
    if (created && this._ownChannel(room, room === id || this.sids.has(room))) {
      this._roomChannels.add(room)
      this._link.room(this.nsp.name, room, true)
    }
  }

  delMember (id, room) {
    const members = Map.prototype.get.call(this.rooms, room)
    const emptied = room === id || Boolean(members && members.size === 1 && members.has(id))
    super.delMember(id, room)
    if (emptied && this._roomChannels.delete(room)) this._link.room(this.nsp.name, room, false)
  }

  /** The link attached to a new handle: the room channels again. */
  _replayRooms () {
    for (const room of this._roomChannels) this._link.room(this.nsp.name, room, true)
  }

  /** As the sharded adapter: JSON, or MessagePack when the message holds binaries. */
  _send (channel, message) {
    message.uid = this.uid
    message.nsp = this.nsp.name
    const attachments = []
    const json = JSON.stringify(deconstruct(message, attachments))
    return this._link.publish(channel, json, attachments, attachments.length > 0)
  }

  _respondTo (uid, message) {
    this._send(`${this.channel}${uid}#`, message)
  }

  _onMessage (channel, json, attachments) {
    let msg
    try {
      msg = reconstruct(JSON.parse(json), attachments)
    } catch {
      return
    }
    if (!msg || typeof msg !== 'object' || msg.nsp !== this.nsp.name || !msg.data || typeof msg.data !== 'object') return
    if (channel === this.responseChannel || RESPONSES.has(msg.type)) return this._onResponse(msg)
    this._onRequest(msg)
  }

  _onRequest (msg) {
    const { data } = msg
    switch (msg.type) {
      case M.BROADCAST: {
        // Broadcasts without acks were delivered in Rust.
        if (data.requestId === undefined || !data.packet || !Array.isArray(data.packet.data)) return
        const flags = (data.opts && data.opts.flags) || {}
        this._local(data.opts)._ackedLocally(data.packet.data, flags.timeout,
          (clientCount) => this._respondTo(msg.uid, { type: M.BROADCAST_CLIENT_COUNT, data: { requestId: data.requestId, clientCount } }),
          (arg) => this._respondTo(msg.uid, { type: M.BROADCAST_ACK, data: { requestId: data.requestId, packet: arg } }))
        return
      }
      case M.SOCKETS_JOIN:
        return this._local(data.opts).socketsJoin(data.rooms)
      case M.SOCKETS_LEAVE:
        return this._local(data.opts).socketsLeave(data.rooms)
      case M.DISCONNECT_SOCKETS:
        return this._local(data.opts).disconnectSockets(Boolean(data.close))
      case M.FETCH_SOCKETS: {
        const sockets = this._local(data.opts)._matching().map((s) => ({ id: s.id, handshake: s.handshake, rooms: [...s.rooms], data: s.data }))
        return this._respondTo(msg.uid, { type: M.FETCH_SOCKETS_RESPONSE, data: { requestId: data.requestId, sockets } })
      }
      case M.SERVER_SIDE_EMIT: {
        if (!Array.isArray(data.packet)) return
        if (data.requestId === undefined) return this.nsp._onServerSideEmit(data.packet)
        let called = false
        const callback = (arg) => {
          if (called) return
          called = true
          this._respondTo(msg.uid, { type: M.SERVER_SIDE_EMIT_RESPONSE, data: { requestId: data.requestId, packet: arg } })
        }
        return this.nsp._onServerSideEmit([...data.packet, callback])
      }
    }
  }

  _onResponse (msg) {
    const { data } = msg
    const ackRequest = this._ackRequests.get(data.requestId)
    if (ackRequest) {
      if (msg.type === M.BROADCAST_CLIENT_COUNT) ackRequest.clientCount(data.clientCount)
      else if (msg.type === M.BROADCAST_ACK) ackRequest.ack(data.packet)
      return
    }
    const request = this._requests.get(data.requestId)
    if (!request) return
    if (msg.type === M.FETCH_SOCKETS_RESPONSE && request.type === M.FETCH_SOCKETS) {
      if (!Array.isArray(data.sockets)) return
      request.responses.push(...data.sockets)
    } else if (msg.type === M.SERVER_SIDE_EMIT_RESPONSE && request.type === M.SERVER_SIDE_EMIT) {
      request.responses.push(data.packet)
    } else {
      return
    }
    if (++request.current === request.expected) this._settle(data.requestId, null)
  }

  /**
   * Asks the `expected` other nodes; settles with their answers, or with
   * ClusterAdapter's timeout error after `requestsTimeout`.
   */
  _cluster (type, data, expected, done) {
    const requestId = this._requestId()
    const request = {
      type,
      expected,
      current: 0,
      responses: [],
      done: (err) => done(err, request.responses),
      timeout: setTimeout(() => this._settle(requestId,
        new Error(`timeout reached: only ${request.current} responses received out of ${request.expected}`)), this.requestsTimeout)
    }
    this._requests.set(requestId, request)
    this._send(this.channel, { type, data: { ...data, requestId } })
  }

  /** As ClusterAdapter: `allRooms()` is this node's rooms. */
  async allRooms () {
    return new Set(this.rooms.keys())
  }

  /** As ClusterAdapter: `allSockets()` lists this node's sockets only. */
  async _socketIdsRemote () {
    return []
  }

  async _fetchRemote (rooms, except) {
    const expected = (await this._countFor('timeout reached: only 0 responses received out of 0')) - 1
    if (expected <= 0) return []
    return new Promise((resolve, reject) => {
      this._cluster(M.FETCH_SOCKETS, { opts: { rooms, except, flags: {} } }, expected, (err, sockets) => (err ? reject(err) : resolve(sockets)))
    })
  }

  _remoteJoin (rooms, except, join) {
    this._send(this.channel, { type: M.SOCKETS_JOIN, data: { opts: { rooms, except, flags: {} }, rooms: join } })
  }

  _remoteLeave (rooms, except, leave) {
    this._send(this.channel, { type: M.SOCKETS_LEAVE, data: { opts: { rooms, except, flags: {} }, rooms: leave } })
  }

  _remoteDisconnect (rooms, except, close) {
    this._send(this.channel, { type: M.DISCONNECT_SOCKETS, data: { opts: { rooms, except, flags: {} }, close } })
  }

  _serverSideEmit (args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null
    if (!ack) {
      this._send(this.channel, { type: M.SERVER_SIDE_EMIT, data: { packet: args } })
      return
    }
    this._countFor('timeout reached: only 0 responses received out of 0').then((count) => {
      const expected = count - 1
      if (expected <= 0) return safeCall(ack, this.nsp, null, [])
      this._cluster(M.SERVER_SIDE_EMIT, { packet: args }, expected, (err, responses) => safeCall(ack, this.nsp, err, responses))
    }, (err) => safeCall(ack, this.nsp, err, []))
  }

  _requestId () {
    return randomId()
  }

  /** Always on the namespace's channel: the answers are counted against every node. */
  _publishAckedBroadcast (requestId, packet, opts) {
    this._send(this.channel, { type: M.BROADCAST, data: { packet, requestId, opts } })
  }
}

module.exports = { ShardedRedisAdapter }
