'use strict'
// One WebSocket server on a uWebSockets.js-compatible API (uWebSockets.js
// itself or ferrosocket's core API). Same behaviour for both: count
// opens/closes, echo every message, subscribe every socket to one topic on
// open (the broadcast scenario publishes to it), no per-socket user data.
const { serve, fail, parseServerArgs } = require('./control')

const TOPIC = 'bcast'

function runUwsStyleServer (lib, info) {
  const { tls, port: fixedPort, scaleOut, compress } = parseServerArgs()
  const stats = { open: 0, opened: 0, closed: 0, requests: 0 }
  let listenSocket = null
  // --scale-out: topics across the cluster's processes (ferrosocket's App
  // option); the server says it listens once its Redis link is up.
  let linked
  // Nothing else holds the process open until it listens.
  const waiting = setInterval(() => {}, 1000)
  const up = new Promise((resolve) => { linked = resolve }).finally(() => clearInterval(waiting))
  const extra = scaleOut ? { scaleOut: { url: scaleOut, onState: (s) => { if (s === 'connected') linked() } } } : {}
  if (!scaleOut) linked()
  const app = tls
    ? lib.SSLApp({ cert_file_name: tls.cert, key_file_name: tls.key, ...extra })
    : lib.App(extra)
  app.ws('/*', {
    // --compress: permessage-deflate with uWS.js's shared compressor (no
    // memory per connection), every publish asking for it.
    compression: compress ? lib.SHARED_COMPRESSOR : lib.DISABLED,
    idleTimeout: 120,
    maxPayloadLength: 16 * 1024,
    // Large enough that a burst of broadcasts to a client that reads a
    // little late is queued, not dropped (uWS drops above this).
    maxBackpressure: 4 * 1024 * 1024,
    open: (ws) => { stats.open++; stats.opened++; ws.subscribe(TOPIC) },
    message: (ws, message, isBinary) => { ws.send(message, isBinary) },
    close: () => { stats.open--; stats.closed++ }
  })
  // The http scenario: a small JSON answer on a keep-alive connection.
  app.get('/json', (res) => {
    res.writeHeader('Content-Type', 'application/json').end(JSON.stringify({ hello: 'world', n: ++stats.requests }))
  })
  const broadcast = (msgs) => {
    for (const m of msgs) app.publish(TOPIC, JSON.stringify(m), false, compress)
    return stats.open
  }
  // A fixed port is shared with the cluster's other processes (uSockets' default).
  up.then(() => app.listen('127.0.0.1', fixedPort, (ls) => {
    if (!ls) fail('listen failed')
    listenSocket = ls
    const port = lib.us_socket_local_port(ls)
    serve({ ...info, port, tls: !!tls }, stats, () => {
      if (listenSocket) lib.us_listen_socket_close(listenSocket)
      listenSocket = null
    }, { broadcast })
  }))
}

module.exports = { runUwsStyleServer }
