'use strict'

/**
 * What an EngineServer's sockets may ask of its Rust engine, by session
 * key: the server's `NativeEngineIo` narrowed to these operations. The
 * server alone holds the handle itself (close, the HTTP front's half).
 *
 * `open()` is the server's handle, which the server makes on first use (at
 * attach; a session, and so a key, comes only after).
 */
class EngineSessions {
  constructor (open) {
    this._open = open
    this._handle = null
  }

  _load () {
    this._handle = this._open()
    return this._handle
  }

  /** A message to the session (a string, or a Buffer sent as binary). */
  send (key, data) {
    const native = this._handle || this._load()
    native.send(key, data)
  }

  /** Closes the session from the server ("forced close"). */
  closeSession (key) {
    const native = this._handle || this._load()
    native.closeSession(key)
  }

  /** "polling" or "websocket", or null for a session gone. */
  transportName (key) {
    const native = this._handle || this._load()
    return native.transportName(key)
  }
}

module.exports = { EngineSessions }
