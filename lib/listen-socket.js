'use strict'
const { kApp, kId } = require('./symbols')

/** What `listen()` passes to its callback (uWS.js us_listen_socket). */
class ListenSocket {
  constructor (app, token, port) {
    this[kApp] = app
    this[kId] = token
    this.port = port
  }
}

module.exports = { ListenSocket }
