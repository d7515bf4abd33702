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
const { serve, fail, parseServerArgs } = require('./control')

const ROOM = 'bcast'

/**
 * @param {Function} Server  socket.io's or ferrosocket's Server class
 * @param {object} info  name, impl, version for the listening line
 * @param {object} lib  ferrosocket's exports (null for socket.io)
 * With `--attached`: the form most apps use, `new Server(httpServer)` on a
 * plain http.Server they listen with (an https.Server with `--tls`).
 */
function runSioServer (Server, info, lib = null) {
  const { tls, attached: form, port: fixedPort, scaleOut, compress } = parseServerArgs()
  if (scaleOut) {
    return runSioCluster(Server, info, lib, { tls, fixedPort, scaleOut }).catch((err) => fail(`cluster server failed: ${err.stack || err}`))
  }
  const stats = { open: 0, opened: 0, closed: 0 }
  // --compress: socket.io's perMessageDeflate (threshold 1 KiB, its default).
  const opts = { transports: ['websocket'], serveClient: false, perMessageDeflate: compress }
  // Plain: the standalone form both document (`new Server(opts).listen(port)`:
  // socket.io creates an http.Server, ferrosocket listens in Rust), or the
  // attached form. TLS: ferrosocket's standalone form takes the key and
  // certificate itself (the `tls` option: TLS in Rust); socket.io takes TLS
  // only through an https.Server attached, as ferrosocket's attached form
  // does (Node's TLS).
  const rustTls = Boolean(tls && lib && !form)
  const httpServer = tls && !rustTls
    ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) })
    : form ? http.createServer() : null
  const attached = httpServer !== null
  const io = attached
    ? new Server(httpServer, opts)
    : new Server(rustTls ? { ...opts, tls: { cert_file_name: tls.cert, key_file_name: tls.key } } : opts)

  track(io, stats)
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

/** The same behaviour on a connection (counts, room, echo). */
function track (io, stats) {
  io.on('connection', (socket) => {
    stats.open++
    stats.opened++
    socket.join(ROOM)
    socket.on('echo', (d) => socket.emit('echo', d))
    socket.on('disconnect', () => { stats.open--; stats.closed++ })
  })
}

/**
 * `--scale-out URL` (the cluster scenario): one of several processes linked
 * by Redis, a broadcast from one reaching every process's clients.
 * ferrosocket: `createRedisAdapter`, on its own SSLApp/App (`attachApp`, TLS
 * in Rust) listening on the shared `--port`. socket.io: its own
 * @socket.io/redis-adapter with `redis` clients, on an https server of its
 * own port (Node cannot share a port between processes without
 * node:cluster's primary).
 */
async function runSioCluster (Server, info, lib, { tls, fixedPort, scaleOut }) {
  const stats = { open: 0, opened: 0, closed: 0 }
  const opts = { transports: ['websocket'], serveClient: false }
  let io
  let close
  let listen
  if (lib) {
    const app = tls ? lib.SSLApp({ cert_file_name: tls.cert, key_file_name: tls.key }) : lib.App()
    io = new Server({ ...opts, adapter: lib.createRedisAdapter({ url: scaleOut }) })
    io.attachApp(app)
    close = () => { try { io.close() } catch {} try { app.close() } catch {} }
    listen = (done) => app.listen('127.0.0.1', fixedPort, (ls) => {
      if (!ls) fail('listen failed')
      done(lib.us_socket_local_port(ls))
    })
    if (io.of('/').adapter.state !== 'connected') await new Promise((resolve) => io.of('/').adapter.once('state', resolve))
  } else {
    const { createClient } = require('redis')
    const { createAdapter } = require('@socket.io/redis-adapter')
    const pub = createClient({ url: scaleOut })
    const sub = pub.duplicate()
    pub.on('error', () => {})
    sub.on('error', () => {})
    await Promise.all([pub.connect(), sub.connect()])
    const httpServer = tls
      ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) })
      : http.createServer()
    io = new Server(httpServer, { ...opts, adapter: createAdapter(pub, sub) })
    close = () => { try { io.close() } catch {} pub.disconnect().catch(() => {}); sub.disconnect().catch(() => {}) }
    listen = (done) => httpServer.listen(0, '127.0.0.1', () => done(httpServer.address().port))
  }
  track(io, stats)
  const broadcast = (msgs) => {
    for (const m of msgs) io.to(ROOM).emit('bcast', m)
    return stats.open
  }
  listen((port) => serve({ ...info, port, tls: !!tls, attached: true, scaleOut: true }, stats, close, { broadcast }))
}

module.exports = { runSioServer }
