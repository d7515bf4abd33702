'use strict'
const binding = require('../binding.js')
const { App, SSLApp, us_listen_socket_close, us_socket_local_port } = require('./app') // eslint-disable-line camelcase

module.exports = {
  App,
  SSLApp,
  us_listen_socket_close,
  us_socket_local_port,
  // uWS.js compression constants: accepted, compression is not negotiated.
  DISABLED: 0,
  SHARED_COMPRESSOR: 1,
  DEDICATED_COMPRESSOR_3KB: 2,
  version: binding.version
}
