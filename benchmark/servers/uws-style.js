'use strict'
// One idle-friendly WebSocket server on a uWebSockets.js-compatible API
// (uWebSockets.js itself or ferrosocket's core API). Same behaviour for both:
// count opens/closes, echo messages, no per-socket user data.
const { serve, fail } = require('./control')

function runUwsStyleServer (lib, info) {
  const stats = { open: 0, opened: 0, closed: 0 }
  let listenSocket = null
  const app = lib.App()
  app.ws('/*', {
    idleTimeout: 120,
    maxPayloadLength: 16 * 1024,
    open: () => { stats.open++; stats.opened++ },
    message: (ws, message, isBinary) => { ws.send(message, isBinary) },
    close: () => { stats.open--; stats.closed++ }
  })
  app.listen('127.0.0.1', 0, (ls) => {
    if (!ls) fail('listen failed')
    listenSocket = ls
    const port = lib.us_socket_local_port(ls)
    serve({ ...info, port }, stats, () => {
      if (listenSocket) lib.us_listen_socket_close(listenSocket)
      listenSocket = null
    })
  })
}

module.exports = { runUwsStyleServer }
