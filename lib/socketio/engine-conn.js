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
    // Someone listens to 'packet' or 'packetCreate' (the Socket.IO packets
    // JS sends and receives are reported; pings, pongs and the rest stay in
    // Rust).
    this._watching = false
    this.on('newListener', (event) => {
      if ((event === 'packet' || event === 'packetCreate') && !this._watching) {
        this._watching = true
        // Broadcasts look for recipients to tell only while any session listens.
        sessions._watchers++
      }
    })
  }

  /**
   * engine.io's 'packetCreate' for a Socket.IO packet sent to this client;
   * `frame`: for a broadcast, the WebSocket frame as socket.io's adapter
   * precomputes it (`wsPreEncodedFrame`: header and payload). Ours is built
   * in Rust; this copy is made only for listeners (the same bytes).
   */
  _created (text, attachments, compress, frame) {
    if (!this.listenerCount('packetCreate')) return
    const options = frame ? { compress, wsPreEncodedFrame: frame } : { compress }
    emitSafe(this, 'packetCreate', { type: 'message', data: text, options })
    for (const a of attachments) emitSafe(this, 'packetCreate', { type: 'message', data: a, options: { compress } })
  }

  /** engine.io's 'packet' for a Socket.IO packet this client sent. */
  _received (type, nsp, id, data, attachments) {
    if (!this.listenerCount('packet')) return
    const binary = attachments.length > 0
    const head = `${binary ? type + 3 : type}${binary ? attachments.length + '-' : ''}${nsp === '/' ? '' : nsp + ','}${id === undefined ? '' : id}`
    emitSafe(this, 'packet', { type: 'message', data: head + data })
    for (const a of attachments) emitSafe(this, 'packet', { type: 'message', data: a })
  }

  get id () { return this._client.handshakeRecord().sid }
  /** 3 for socket.io-client v2 (allowEIO3), else 4. */
  get protocol () { return this._client.handshakeRecord().query.EIO === '3' ? 3 : 4 }
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
    if (this._watching) this._sessions._watchers--
    emitSafe(this, 'close', reason)
  }
}

module.exports = { EngineConn }
