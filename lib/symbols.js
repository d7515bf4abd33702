'use strict'
// Private state of the public classes lives behind these symbols, so user
// code enumerating a socket or app sees only the API.
module.exports = {
  kApp: Symbol('ferrosocket.app'),
  kNative: Symbol('ferrosocket.native'),
  kId: Symbol('ferrosocket.id'),
  kUserData: Symbol('ferrosocket.userData'),
  kBehavior: Symbol('ferrosocket.behavior'),
  kState: Symbol('ferrosocket.state'),
  // On a socket Rust handed to Node's HTTP server: a request head came.
  kHeadSeen: Symbol('ferrosocket.headSeen')
}
