'use strict'
// Echo server for the Autobahn|Testsuite fuzzing client (kosoku).
//
// Uses only the uWebSockets.js-style API so the same file runs against
// ferrosocket (the default, this repo's root) and against a reference
// implementation named by AUTOBAHN_IMPL (e.g. @trufflesuite/uws-js-unofficial).
//
// Usage: node echo-server.js [port]   (port 0 or absent: let the OS choose)
// On success prints exactly one line `listening <port>` on stdout; on failure
// exits non-zero. run.js waits for that line.

const path = require('path')

const implSpec = process.env.AUTOBAHN_IMPL || '../..'
// Relative paths are taken relative to this file, like a plain require();
// anything else (a package name or an absolute path) is passed through.
const uWS = require(implSpec.startsWith('.') ? path.resolve(__dirname, implSpec) : implSpec)

const requestedPort = Number(process.argv[2] || process.env.AUTOBAHN_PORT || 0)
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`echo-server: bad port ${process.argv[2]}`)
  process.exit(2)
}

const app = uWS.App().ws('/*', {
  // No permessage-deflate: Autobahn sections 12/13 are not run.
  compression: uWS.DISABLED !== undefined ? uWS.DISABLED : 0,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 60,
  message: (ws, msg, isBinary) => {
    ws.send(msg, isBinary)
  }
})

app.listen('127.0.0.1', requestedPort, (listenSocket) => {
  if (!listenSocket) {
    console.error(`echo-server: could not listen on 127.0.0.1:${requestedPort}`)
    process.exit(1)
  }
  let port = requestedPort
  if (port === 0) {
    if (typeof uWS.us_socket_local_port !== 'function') {
      console.error('echo-server: port 0 needs uWS.us_socket_local_port; pass a port')
      process.exit(1)
    }
    port = uWS.us_socket_local_port(listenSocket)
  }
  process.stdout.write(`listening ${port}\n`)
})
