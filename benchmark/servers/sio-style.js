'use strict'
// One Socket.IO server (socket.io itself or ferrosocket's drop-in Server),
// WebSocket transport only (the load generator speaks Engine.IO v4 over
// WebSocket, like socket.io-client with transports: ['websocket']).
// Same behaviour for both: count connections, echo the `echo` event, join
// every socket to one room on connection; `broadcast` emits `bcast` to
// that room (the equivalent of the core servers' topic).
const fs = require('node:fs')
const http = require('node:http')
const https = require('node:https')
const { serve, parseServerArgs } = require('./control')

const ROOM = 'bcast'

/**
 * @param {Function} Server  socket.io's or ferrosocket's Server class
 * @param {object} info  name, impl, version for the listening line
 * With `--attached`: the form most apps use, `new Server(httpServer)` on a
 * plain http.Server they listen with.
 */
function runSioServer (Server, info) {
  const { tls, attached: form } = parseServerArgs()
  const stats = { open: 0, opened: 0, closed: 0 }
  const opts = { transports: ['websocket'], serveClient: false }
  // Plain: the standalone form both document (`new Server(opts).listen(port)`:
  // socket.io creates an http.Server, ferrosocket listens in Rust), or the
  // attached form. TLS: an https.Server attached, the only way either takes TLS.
  const httpServer = tls
    ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) })
    : form ? http.createServer() : null
  const attached = Boolean(tls) || form
  const io = attached ? new Server(httpServer, opts) : new Server(opts)

  io.on('connection', (socket) => {
    stats.open++
    stats.opened++
    socket.join(ROOM)
    socket.on('echo', (d) => socket.emit('echo', d))
    socket.on('disconnect', () => { stats.open--; stats.closed++ })
  })
  const broadcast = (msgs) => {
    for (const m of msgs) io.to(ROOM).emit('bcast', m)
    return stats.open
  }
  const close = () => {
    try { io.close() } catch {}
    if (httpServer) try { httpServer.close() } catch {}
  }
  const ready = (port) => serve({ ...info, port, tls: !!tls, attached }, stats, close, { broadcast })

  if (attached) {
    httpServer.listen(0, '127.0.0.1', () => ready(httpServer.address().port))
  } else {
    io.listen(0)
    const srv = io.httpServer
    if (srv.listening) ready(srv.address().port)
    else srv.once('listening', () => ready(srv.address().port))
  }
}

module.exports = { runSioServer }
