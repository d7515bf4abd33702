'use strict'
// Private state of the public classes lives behind these symbols, so user
// code enumerating a socket or app sees only the API.
module.exports = {
  kApp: Symbol('ferrosocket.app'),
  kNative: Symbol('ferrosocket.native'),
  kId: Symbol('ferrosocket.id'),
  kUserData: Symbol('ferrosocket.userData'),
  kClosed: Symbol('ferrosocket.closed'),
  kBehavior: Symbol('ferrosocket.behavior'),
  kState: Symbol('ferrosocket.state')
}
