'use strict'
const { EventEmitter } = require('node:events')

/**
 * `io.httpServer` of `new Server(port, { tls })`. That form has no Node
 * server: the Rust listener of an internal `SSLApp` terminates TLS and
 * serves WebSocket, long-polling and the client bundle (404 for any other
 * path, as socket.io's own standalone http.Server answers). This stands in
 * for the server that socket.io apps read: `address()`, `listening` and
 * `close(cb)` report that listener, and 'listening', 'error' and 'close'
 * come when Node's https.Server emits them. Nothing reaches Node, so there
 * are no 'request', 'upgrade', 'connection' or 'secureConnection' events.
 */
class TlsListener extends EventEmitter {
  /**
   * `app`: the SSLApp the engine is mounted on, owned from here on.
   * `onClose`: the Socket.IO server's own shutdown (its sessions and
   * handle), run by `close()` as the plain form's http.Server does.
   */
  constructor (app, onClose) {
    super()
    this._app = app
    this._onClose = onClose
    this._address = null
  }

  /**
   * As Node's `listen(port, host)`: `listening` at once, 'listening' on
   * the next tick; a failure (`EADDRINUSE`…, shaped by listenError) is an
   * 'error' on the next tick, thrown if nobody listens. The bound port, or
   * undefined on failure.
   */
  _listen (host, port, reusePort) {
    const [listenSocket, err] = this._app._listen(host, port, reusePort)
    if (!listenSocket) {
      process.nextTick(() => this.emit('error', err))
      return undefined
    }
    const address = { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: listenSocket.port }
    this._address = address
    // Not after a close() in this tick.
    process.nextTick(() => { if (this._address === address) this.emit('listening') })
    return address.port
  }

  address () {
    return this._address && { ...this._address }
  }

  get listening () {
    return this._address !== null
  }

  /**
   * Stops listening and closes every connection (the App's close: clients
   * see their transport close), then the Socket.IO server's sessions.
   * `cb(err)` as Node's: ERR_SERVER_NOT_RUNNING when it was not listening.
   */
  close (cb) {
    const wasListening = this._address !== null
    this._address = null
    if (this._app) this._app.close()
    this._app = null
    this._onClose()
    if (wasListening) process.nextTick(() => this.emit('close'))
    if (typeof cb === 'function') {
      const err = wasListening ? undefined : Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' })
      process.nextTick(cb, err)
    }
    return this
  }
}

module.exports = { TlsListener }
