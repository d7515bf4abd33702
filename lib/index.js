'use strict'
const binding = require('./native')
const { App, SSLApp, us_listen_socket_close, us_socket_local_port } = require('./app') // eslint-disable-line camelcase
const { Server } = require('./socketio/server')
const { Namespace } = require('./socketio/namespace')
const { Socket } = require('./socketio/socket')
const { BroadcastOperator } = require('./socketio/broadcast-operator')
const { RemoteSocket } = require('./socketio/remote-socket')
const { createRedisAdapter } = require('./socketio/redis-adapter')
const { EngineServer } = require('./engineio/server')
const { EngineSocket } = require('./engineio/socket')

/**
 * socket.io's CommonJS factory form: `require('ferrosocket')(port, opts)`
 * is `new Server(port, opts)`. Every named export hangs off it too.
 */
function ferrosocket (srv, opts) {
  return new Server(srv, opts)
}

module.exports = Object.assign(ferrosocket, {
  // uWebSockets.js-style core API
  App,
  SSLApp,
  us_listen_socket_close,
  us_socket_local_port,
  // uWS.js compression constants: accepted, compression is not negotiated.
  DISABLED: 0,
  SHARED_COMPRESSOR: 1,
  DEDICATED_COMPRESSOR_3KB: 2,
  // uWS.js's listen options (uSockets' LIBUS_LISTEN_*).
  LIBUS_LISTEN_DEFAULT: 0,
  LIBUS_LISTEN_EXCLUSIVE_PORT: 1,
  // Socket.IO server
  Server,
  Namespace,
  Socket,
  BroadcastOperator,
  RemoteSocket,
  // Scale-out on Redis (wire-compatible with @socket.io/redis-adapter)
  createRedisAdapter,
  // Raw Engine.IO server (engine.io's Server, without Socket.IO)
  EngineServer,
  EngineSocket,
  version: binding.version
})
