'use strict'
// socket.io 4.8 (the root devDependency), WebSocket transport only.
const { fail } = require('./control')
const { runSioServer } = require('./sio-style')

let Server
try {
  ({ Server } = require('socket.io'))
} catch (err) {
  fail(`socket.io is not installed (npm install): ${err.message}`)
}
try {
  runSioServer(Server, { name: 'socketio', impl: 'socket.io', version: require('socket.io/package.json').version })
} catch (err) {
  fail(`socket.io failed: ${err.stack || err}`)
}
