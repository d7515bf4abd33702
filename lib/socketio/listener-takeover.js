'use strict'
const http = require('node:http')
const tls = require('node:tls')

const kTakenOver = Symbol('ferrosocket.takenOver')

/**
 * `new Server(httpServer)` on a plain http.Server: once Node has bound it
 * (so its address, options and errors are Node's own), the Rust listener
 * takes its listening socket over. WebSocket upgrades for the engine are
 * then served in Rust with no Node work per connection, as in the
 * standalone form; every other connection is handed to the http.Server
 * unread (`adoptConnection`), where the app's requests and long-polling
 * arrive as before.
 *
 * Node's handle is closed and replaced by one that answers what Node's
 * `server.address()`, `.listening`, `.close()`, `.ref()` and `.unref()` ask
 * of it, so those keep Node's own behaviour (close waits for the handed
 * connections to end).
 *
 * Left to Node (returns false): TLS servers (Node terminates TLS), pipes,
 * cluster workers' shared handles (no descriptor of their own), and a
 * listener Rust cannot adopt.
 */
function takeOver (srv, native, { checkOrigin, checkHandshake, onState }) {
  const h = srv._handle
  if (!(srv instanceof http.Server) || srv instanceof tls.Server) return false
  if (!h || h[kTakenOver] || typeof h.fd !== 'number' || h.fd < 0 || typeof h.getsockname !== 'function') return false
  const address = {}
  if (h.getsockname(address) !== 0 || typeof address.port !== 'number') return false
  let token
  try {
    token = native.listenFd(h.fd, checkOrigin, checkHandshake).token
  } catch {
    return false
  }
  // Rust accepts on its own descriptor now; Node stops.
  h.close()
  let open = true
  srv._handle = {
    [kTakenOver]: true,
    fd: -1,
    getsockname (out) {
      Object.assign(out, address)
      return 0
    },
    close () {
      if (!open) return
      open = false
      try { native.closeListener(token) } catch {}
      onState({ listening: false })
    },
    ref () { onState({ ref: true }) },
    unref () { onState({ ref: false }) }
  }
  // Node's unref() applied to the handle just closed: carried over.
  onState({ listening: true, ref: !srv._unref })
  return true
}

/**
 * A connection the Rust listener handed over, counted as Node counts the
 * ones it accepts (`maxConnections`, `getConnections()`, and `close()`
 * waiting for them). False when the server is over `maxConnections`.
 */
function adoptConnection (srv, socket) {
  if (!srv._handle || !srv._handle[kTakenOver]) return true
  if (typeof srv.maxConnections === 'number' && srv._connections >= srv.maxConnections) {
    srv.emit('drop', { localAddress: socket.localAddress, localPort: socket.localPort, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, remoteFamily: socket.remoteFamily })
    return false
  }
  srv._connections++
  socket.server = srv
  socket._server = srv
  return true
}

module.exports = { takeOver, adoptConnection }
