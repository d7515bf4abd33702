'use strict'
const crypto = require('node:crypto')
const { emitSafe } = require('../util')

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
    this.uid = uid6()
    this.state = 'connecting'
    this._server = server
    this._byChannel = new Map()
    this._replies = new Map()
    this._nextReply = 1
    // Connected on the next tick: the first namespace's adapter is made
    // while the Server is still being constructed.
    this._native = null
    this._namespaces = []
    process.nextTick(() => this._start())
  }

  _start () {
    if (this.state === 'closed') return
    this._native = this._server._native()
    this._native.redisConnect(this.opts.url, this.opts.key, this.uid)
    for (const name of this._namespaces) this._native.redisAddNamespace(name)
  }

  addNamespace (adapter) {
    for (const ch of [adapter.requestChannel, adapter.responseChannel, adapter.specificResponseChannel]) this._byChannel.set(ch, adapter)
    this._namespaces.push(adapter.nsp.name)
    if (this._native) this._native.redisAddNamespace(adapter.nsp.name)
  }

  /** False when dropped (not connected, or too many publishes waiting). */
  publish (channel, json, attachments, msgpack = false) {
    if (!this._native) return false
    return this._native.redisPublish(channel, json, attachments, msgpack)
  }

  numsub (channel) {
    if (this.state !== 'connected') return Promise.reject(new Error(`Redis is ${this.state}`))
    return new Promise((resolve, reject) => {
      const req = this._nextReply++
      this._replies.set(req, { resolve, reject })
      this._native.redisNumsub(req, channel)
    })
  }

  stats () {
    return this._native ? this._native.redisStats() : { state: this.state, published: 0, droppedPublishes: 0, received: 0, lostMessages: 0, malformed: 0 }
  }

  _message (channel, json, attachments) {
    const adapter = this._byChannel.get(channel)
    if (adapter) adapter._onMessage(channel, json, attachments)
  }

  _state (code, error) {
    this.state = ['connecting', 'connected', 'disconnected', 'closed'][code] || 'connecting'
    for (const adapter of new Set(this._byChannel.values())) emitSafe(adapter, 'state', this.state, error || undefined)
  }

  _reply (req, ok, value) {
    const pending = this._replies.get(req)
    if (!pending) return
    this._replies.delete(req)
    if (ok) pending.resolve(Number(value))
    else pending.reject(new Error(value))
  }

  close () {
    this.state = 'closed'
    for (const { reject } of this._replies.values()) reject(new Error('Redis link closed'))
    this._replies.clear()
    try { if (this._native) this._native.redisClose() } catch {}
  }
}

module.exports = { RedisLink, uid6 }
