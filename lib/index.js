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
  // uWS.js's compression constants (the behavior's `compression`; one
  // compressor and one decompressor may be or-ed together): permessage-deflate.
  DISABLED: 0,
  SHARED_COMPRESSOR: 1,
  SHARED_DECOMPRESSOR: 256,
  DEDICATED_COMPRESSOR: 248,
  DEDICATED_COMPRESSOR_3KB: 145,
  DEDICATED_COMPRESSOR_4KB: 146,
  DEDICATED_COMPRESSOR_8KB: 163,
  DEDICATED_COMPRESSOR_16KB: 180,
  DEDICATED_COMPRESSOR_32KB: 197,
  DEDICATED_COMPRESSOR_64KB: 214,
  DEDICATED_COMPRESSOR_128KB: 231,
  DEDICATED_COMPRESSOR_256KB: 248,
  DEDICATED_DECOMPRESSOR: 3840,
  DEDICATED_DECOMPRESSOR_32KB: 3840,
  DEDICATED_DECOMPRESSOR_16KB: 3584,
  DEDICATED_DECOMPRESSOR_8KB: 3328,
  DEDICATED_DECOMPRESSOR_4KB: 3072,
  DEDICATED_DECOMPRESSOR_2KB: 2816,
  DEDICATED_DECOMPRESSOR_1KB: 2560,
  DEDICATED_DECOMPRESSOR_512B: 2304,
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
