'use strict'
const { EventEmitter } = require('node:events')
const { emitSafe } = require('../util')

/**
 * `socket.conn` / `client.conn`: the client's Engine.IO session as socket.io
 * exposes it (engine.io's `Socket`), made when first read. The session lives
 * in Rust; this is its face: `id`, `transport.name`, `readyState`,
 * `protocol`, `remoteAddress`, `request`, `close()`, and the 'upgrade' and
 * 'close' events.
 */
class EngineConn extends EventEmitter {
  /** `sessions`: the server's (sessions.js); `client`: the owner (client.js). */
  constructor (sessions, client) {
    super()
    this._sessions = sessions
    this._client = client
    this._closed = false
  }

  get id () { return this._client.handshakeRecord().sid }
  get protocol () { return 4 }
  get remoteAddress () { return this._client.handshakeRecord().address }
  get request () { return this._client.request }

  get transport () {
    return { name: this._sessions.transportName(this._client.key) || 'websocket' }
  }

  get readyState () {
    return !this._closed && this._sessions.transportName(this._client.key) ? 'open' : 'closed'
  }

  /** Closes the connection (every namespace of the client goes). */
  close () {
    if (!this._closed) this._sessions.closeClient(this._client.key)
    return this
  }

  /** The session moved to its WebSocket. */
  _onUpgrade () {
    emitSafe(this, 'upgrade', this.transport)
  }

  _onClose (reason) {
    if (this._closed) return
    this._closed = true
    emitSafe(this, 'close', reason)
  }
}

module.exports = { EngineConn }
