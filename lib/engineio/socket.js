'use strict'
const { EventEmitter } = require('node:events')
const { safeCall } = require('../util')

/**
 * One Engine.IO session of an `EngineServer` (engine.io's `Socket`):
 * 'message' (string or Buffer), 'close' (reason), `send()`, `close()`.
 */
class EngineSocket extends EventEmitter {
  constructor (server, key, id, address) {
    super()
    this.server = server
    this.id = id
    this.remoteAddress = address
    this.readyState = 'open'
    this._key = key
  }

  get transport () {
    return { name: this.server._native().transportName(this._key) || 'websocket' }
  }

  send (data, opts, cb) {
    if (typeof opts === 'function') cb = opts
    if (this.readyState === 'open') {
      const payload = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)
      this.server._native().send(this._key, payload)
    }
    if (cb) process.nextTick(safeCall, cb)
    return this
  }

  write (data, opts, cb) {
    return this.send(data, opts, cb)
  }

  close () {
    if (this.readyState !== 'open') return
    this.readyState = 'closing'
    this.server._native().closeSession(this._key)
  }
}

module.exports = { EngineSocket }
