'use strict'
const { EventEmitter } = require('node:events')
const { safeCall } = require('../util')

/**
 * One Engine.IO session of an `EngineServer` (engine.io's `Socket`):
 * 'message' (string or Buffer), 'close' (reason), `send()`, `close()`.
 */
class EngineSocket extends EventEmitter {
  /** `sessions`: the server's (sessions.js); `key`: this session's there. */
  constructor (server, sessions, key, id, address) {
    super()
    this.server = server
    this.id = id
    this.remoteAddress = address
    this.readyState = 'open'
    this._sessions = sessions
    this._key = key
  }

  get transport () {
    return { name: this._sessions.transportName(this._key) || 'websocket' }
  }

  send (data, opts, cb) {
    if (typeof opts === 'function') cb = opts
    if (this.readyState === 'open') {
      const payload = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)
      this._sessions.send(this._key, payload)
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
    this._sessions.closeSession(this._key)
  }
}

module.exports = { EngineSocket }
