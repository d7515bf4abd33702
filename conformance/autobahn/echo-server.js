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

// Sections 1-10 on '/*' (no compression); 12 on '/shared' (one compressor
// and decompressor per thread, no context kept), 13 on '/dedicated' (a
// compressor and decompressor per connection, context kept), as run.js
// points kosoku at them. Every echo asks for compression; where it was not
// negotiated the message goes as it is.
const behavior = (compression) => ({
  compression,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 60,
  message: (ws, msg, isBinary) => {
    ws.send(msg, isBinary, true)
  }
})
const app = uWS.App()
  .ws('/*', behavior(uWS.DISABLED))
  .ws('/shared', behavior(uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR))
  .ws('/dedicated', behavior(uWS.DEDICATED_COMPRESSOR | uWS.DEDICATED_DECOMPRESSOR))

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
