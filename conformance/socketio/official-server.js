'use strict'
// The server the official Socket.IO v5 and Engine.IO v4 protocol test suites
// (socketio/socket.io docs/socket.io-protocol/v5-test-suite and
// docs/engine.io-protocol/v4-test-suite) expect on localhost:3000: heartbeat
// 300/200 ms, maxPayload 1e6, connectTimeout 1000 ms, CORS for any origin,
// and echo handlers. See README.md beside this file for running the suites.
//
// Usage:
//   node official-server.js [--impl ferrosocket|socket.io] [--suite socket.io|engine.io]
//                           [--port 3000] [--host 127.0.0.1]
// Prints one line `listening http://HOST:PORT (...)` once ready; exits 2 on
// bad arguments or when the implementation cannot serve that suite.

const http = require('node:http')
const path = require('node:path')
const { parseArgs } = require('node:util')

const { values: args } = parseArgs({
  options: {
    impl: { type: 'string', default: 'ferrosocket' },
    suite: { type: 'string', default: 'socket.io' },
    port: { type: 'string', default: '3000' },
    host: { type: 'string', default: '127.0.0.1' }
  }
})

function fail (message) {
  console.error(`official-server: ${message}`)
  process.exit(2)
}

if (!['ferrosocket', 'socket.io'].includes(args.impl)) fail(`--impl must be ferrosocket or socket.io, not ${args.impl}`)
if (!['socket.io', 'engine.io'].includes(args.suite)) fail(`--suite must be socket.io or engine.io, not ${args.suite}`)
const port = Number(args.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${args.port}`)

// What both suites assert on: the open packet's pingInterval/pingTimeout
// (300/200) and maxPayload (1e6, the maxHttpBufferSize default); heartbeat
// cases wait 500 ms for a ping timeout. CORS is for the browser runner.
const HEARTBEAT = { pingInterval: 300, pingTimeout: 200, maxHttpBufferSize: 1e6, cors: { origin: '*' } }

const httpServer = http.createServer()

if (args.suite === 'socket.io') {
  const { Server } = args.impl === 'socket.io'
    ? require('socket.io')
    : require(path.join(__dirname, '..', '..', 'index.js'))
  // connectTimeout: "closes the connection if no handshake is received"
  // is meant to end well within mocha's 2 s per case.
  const io = new Server(httpServer, { ...HEARTBEAT, connectTimeout: 1000 })
  io.on('connection', (socket) => {
    socket.emit('auth', socket.handshake.auth)
    socket.on('message', (...params) => socket.emit('message-back', ...params))
    socket.on('message-with-ack', (...params) => {
      const ack = params.pop()
      ack(...params)
    })
  })
  io.of('/custom').on('connection', (socket) => {
    socket.emit('auth', socket.handshake.auth)
  })
} else {
  // A raw Engine.IO endpoint (path /engine.io/) echoing every message:
  // engine.io's Server, or ferrosocket's EngineServer on the same engine.
  const EngineServer = args.impl === 'socket.io'
    ? require('engine.io').Server
    : require(path.join(__dirname, '..', '..', 'index.js')).EngineServer
  if (!EngineServer) fail('this build of ferrosocket exports no EngineServer (raw Engine.IO endpoint)')
  const engine = new EngineServer(HEARTBEAT)
  engine.attach(httpServer)
  engine.on('connection', (socket) => {
    socket.on('message', (data) => socket.send(data))
  })
}

httpServer.on('error', (err) => fail(`cannot listen on ${args.host}:${port}: ${err.message}`))
httpServer.listen(port, args.host, () => {
  const { port: actual } = httpServer.address()
  console.log(`listening http://${args.host}:${actual} (impl ${args.impl}, suite ${args.suite})`)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0))
}
