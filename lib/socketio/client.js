'use strict'
const { EngineConn } = require('./engine-conn')
const { parseHandshake } = require('./handshake')

/**
 * One Engine.IO session as Socket.IO sees it (socket.io's `Client`): its
 * key in Rust and its sockets by namespace. Almost every client is in one
 * namespace, so the first socket is held inline and a Map is made only for
 * a second one: an idle client is one small object.
 */
class Client {
  /** `sessions`: the server's (sessions.js), for what is read from Rust. */
  constructor (key, sessions) {
    this.key = key
    this._sessions = sessions
    this._conn = null
    this.open = true
    this.handshake = null
    this._nsp = null
    this._socket = null
    this._more = null
    // The send round (sessions.js) of the client's last packet: a volatile
    // packet in the same round is dropped, as engine.io's transport is not
    // writable until the one before has been written.
    this._sentRound = 0
  }

  get (nsp) {
    if (this._nsp === nsp) return this._socket
    return this._more ? this._more.get(nsp) : undefined
  }

  set (nsp, socket) {
    if (this._nsp === null || this._nsp === nsp) {
      this._nsp = nsp
      this._socket = socket
    } else {
      if (!this._more) this._more = new Map()
      this._more.set(nsp, socket)
    }
  }

  delete (nsp) {
    if (this._nsp === nsp) {
      this._nsp = null
      this._socket = null
      return
    }
    if (this._more) this._more.delete(nsp)
  }

  /** The Engine.IO session (engine-conn.js), made when first read. */
  get conn () {
    if (!this._conn) this._conn = new EngineConn(this._sessions, this)
    return this._conn
  }

  /**
   * What the session's first request looked like, read from Rust once (a
   * client already gone leaves an empty record).
   */
  handshakeRecord () {
    if (!this.handshake) {
      const r = this._sessions.handshake(this.key)
      this.handshake = parseHandshake(r || ['/', String(Date.now()), '0', '', '', '', ''])
    }
    return this.handshake
  }

  /**
   * A stand-in for the IncomingMessage of the handshake (socket.io keeps the
   * real one; we keep nothing until asked): method, url, headers, the legacy
   * `_query`, and the socket's address.
   */
  get request () {
    const h = this.handshakeRecord()
    const socket = { remoteAddress: h.address, encrypted: h.secure }
    return { method: 'GET', url: h.url, headers: h.headers, _query: h.query, socket, connection: socket }
  }

  /**
   * socket.io's `writeToEngine`, which adapters call: one encoded packet
   * (the text, then its attachments, as `server.encoder` makes them) with
   * `opts.volatile`/`opts.compress`.
   */
  writeToEngine (encodedPackets, opts = {}) {
    if (!this.open) return
    const [text, ...attachments] = encodedPackets
    this._sessions.send(this, text, attachments, opts)
  }

  /** The client's sockets (a copy: callers close them while iterating). */
  list () {
    const out = this._socket ? [this._socket] : []
    if (this._more) out.push(...this._more.values())
    return out
  }
}

module.exports = { Client }
