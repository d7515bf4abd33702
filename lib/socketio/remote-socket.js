'use strict'

/**
 * A socket described by its details (id, handshake, rooms, data) rather
 * than held: what `fetchSockets()` returns for sockets of another node in
 * socket.io. Its methods act through a broadcast operator aimed at the
 * socket's own room, so they work wherever the socket lives. Sockets of this
 * node are returned as themselves, as socket.io does.
 */
class RemoteSocket {
  /** As socket.io's: `adapter` is its namespace's (any adapter: `adapter.nsp` is the namespace). */
  constructor (adapter, details) {
    this.id = details.id
    this.handshake = details.handshake
    this.rooms = new Set(details.rooms)
    this.data = details.data
    this._operator = adapter.nsp._toOne(this.id)
  }

  emit (event, ...args) {
    return this._operator.emit(event, ...args)
  }

  /** Acks from this one socket: the callback gets (err, response). */
  timeout (ms) {
    return this._operator.timeout(ms)
  }

  join (room) {
    return this._operator.socketsJoin(room)
  }

  leave (room) {
    return this._operator.socketsLeave(room)
  }

  disconnect (close = false) {
    this._operator.disconnectSockets(close)
    return this
  }
}

module.exports = { RemoteSocket }
