'use strict'
const crypto = require('node:crypto')
const { emitSafe, safeApply } = require('../util')

/** As uid2(6): six characters of [A-Za-z0-9]. */
function uid6 () {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let out = ''
  for (const b of crypto.randomBytes(6)) out += chars[b % chars.length]
  return out
}

/**
 * The server's one Redis link (its connections live in Rust), shared by its
 * namespaces' adapters; routes what JS must answer to the adapter of the
 * channel's namespace.
 */
class RedisLink {
  constructor (server, opts) {
    this.opts = opts
    // As the adapters name nodes: uid2(6) for the classic protocol,
    // ClusterAdapter's 16 hex digits for the sharded one.
    this.uid = opts.protocol === 'classic' ? uid6() : crypto.randomBytes(8).toString('hex')
    this.state = 'connecting'
    this._server = server
    this._byChannel = new Map()
    this._replies = new Map()
    this._nextReply = 1
    // The native handle it is linked through: set on the next tick (the
    // first namespace's adapter is made while the Server is still being
    // constructed), and again whenever the Server makes a new handle
    // (io.close() then listen, attachApp after the first).
    this._native = null
    this._namespaces = new Set()
    process.nextTick(() => { if (!this._native) this._server._native() })
  }

  /** The Server made a handle (server.js `_native`): connect through it. */
  _attach (native) {
    this._native = native
    this._state(0, undefined)
    try {
      native.redisConnect(this.opts.url, this.opts.key, this.uid, this.opts.protocol, this.opts.tls)
      for (const name of this._namespaces) native.redisAddNamespace(name)
      for (const adapter of new Set(this._byChannel.values())) adapter._replayRooms?.()
    } catch (err) {
      this._native = null
      this._state(3, err.message)
    }
  }

  /** The handle closed (io.close()): nothing crosses until the next one. */
  _detach () {
    this._native = null
    this._state(3, undefined)
    for (const { reject } of this._replies.values()) reject(new Error('Redis link closed'))
    this._replies.clear()
  }

  addNamespace (adapter) {
    for (const ch of adapter._inbound) this._byChannel.set(ch, adapter)
    this._namespaces.add(adapter.nsp.name)
    if (this._native) this._native.redisAddNamespace(adapter.nsp.name)
  }

  /** A namespace that is gone (an empty child, cleaned up): its subscriptions too. */
  removeNamespace (adapter) {
    for (const ch of adapter._inbound) {
      if (this._byChannel.get(ch) === adapter) this._byChannel.delete(ch)
    }
    if (!this._namespaces.delete(adapter.nsp.name)) return
    try { if (this._native) this._native.redisRemoveNamespace(adapter.nsp.name) } catch {}
  }

  /**
   * Room `room` of namespace `nsp` has members here now (`joined`), or no
   * more: the sharded dynamic modes subscribe to its channel meanwhile.
   * Rooms of a handle's sockets die with it, so nothing is replayed.
   */
  room (nsp, room, joined) {
    try { if (this._native) this._native.redisRoom(nsp, room, joined) } catch {}
  }

  /** False when dropped (not connected, or too many publishes waiting). */
  publish (channel, json, attachments, msgpack = false) {
    if (!this._native) return false
    return this._native.redisPublish(channel, json, attachments, msgpack)
  }

  /** Subscribers of `channel`, asked of Redis (at most requestsTimeout). */
  numsub (channel) {
    if (this.state !== 'connected' || !this._native) return Promise.reject(new Error(`Redis is ${this.state}`))
    return new Promise((resolve, reject) => {
      const req = this._nextReply++
      this._replies.set(req, { resolve, reject })
      this._native.redisNumsub(req, channel, this.opts.requestsTimeout)
    })
  }

  stats () {
    return this._native ? this._native.redisStats() : { state: this.state, published: 0, droppedPublishes: 0, received: 0, lostMessages: 0, malformed: 0 }
  }

  _message (channel, json, attachments) {
    const adapter = this._byChannel.get(channel)
    // A request that throws (data that cannot be serialised…) is reported;
    // the rest of the batch goes on.
    if (adapter) safeApply(adapter._onMessage, adapter, [channel, json, attachments])
  }

  /** The link's state (Rust's code); each change is emitted as 'state' on the adapters. */
  _state (code, error) {
    error = error || undefined
    const state = ['connecting', 'connected', 'disconnected', 'closed'][code] || 'connecting'
    if (state === this.state && error === undefined) return
    this.state = state
    for (const adapter of new Set(this._byChannel.values())) emitSafe(adapter, 'state', state, error)
  }

  _reply (req, ok, value) {
    const pending = this._replies.get(req)
    if (!pending) return
    this._replies.delete(req)
    if (ok) pending.resolve(Number(value))
    else pending.reject(new Error(value))
  }

  /** Unsubscribes and disconnects (the handle closes next). */
  close () {
    try { if (this._native) this._native.redisClose() } catch {}
    this._detach()
  }
}

module.exports = { RedisLink, uid6 }
