'use strict'
const { TYPE, RESERVED, dataPacket } = require('./packet')

/**
 * `io.to(room)`, `socket.broadcast`, `nsp.except(room)`…: who gets an emit.
 * Immutable: every modifier returns a new operator. The packet is encoded
 * once here and framed once in Rust for every recipient.
 */
class BroadcastOperator {
  constructor (nsp, rooms = new Set(), exceptRooms = new Set(), flags = {}, skipKey = undefined) {
    this._nsp = nsp
    this._rooms = rooms
    this._except = exceptRooms
    this._flags = flags
    this._skipKey = skipKey
  }

  to (room) {
    const rooms = new Set(this._rooms)
    for (const r of [].concat(room)) rooms.add(String(r))
    return new BroadcastOperator(this._nsp, rooms, this._except, this._flags, this._skipKey)
  }

  in (room) {
    return this.to(room)
  }

  except (room) {
    const except = new Set(this._except)
    for (const r of [].concat(room)) except.add(String(r))
    return new BroadcastOperator(this._nsp, this._rooms, except, this._flags, this._skipKey)
  }

  compress (compress) {
    return new BroadcastOperator(this._nsp, this._rooms, this._except, { ...this._flags, compress }, this._skipKey)
  }

  get volatile () {
    return new BroadcastOperator(this._nsp, this._rooms, this._except, { ...this._flags, volatile: true }, this._skipKey)
  }

  get local () {
    return new BroadcastOperator(this._nsp, this._rooms, this._except, { ...this._flags, local: true }, this._skipKey)
  }

  emit (event, ...args) {
    if (RESERVED.has(event)) throw new Error(`"${String(event)}" is a reserved event name`)
    if (typeof args[args.length - 1] === 'function') {
      const err = new Error('broadcast acknowledgements are not supported yet')
      err.code = 'FERROSOCKET_UNSUPPORTED'
      throw err
    }
    const { text, attachments } = dataPacket(TYPE.EVENT, this._nsp.name, undefined, [event, ...args])
    const native = this._nsp.server._native()
    const rooms = [...this._rooms]
    const except = [...this._except]
    native.broadcast(this._nsp.name, rooms, except, this._skipKey, text, attachments.length ? attachments : undefined)
    return true
  }

  send (...args) {
    return this.emit('message', ...args)
  }

  /** The matching sockets of this node. */
  _matching () {
    const out = []
    for (const socket of this._nsp.sockets.values()) {
      if (this._skipKey !== undefined && socket.client.key === this._skipKey) continue
      const rooms = socket.rooms
      if (this._rooms.size && ![...this._rooms].some((r) => rooms.has(r))) continue
      if ([...this._except].some((r) => rooms.has(r))) continue
      out.push(socket)
    }
    return out
  }

  async fetchSockets () {
    return this._matching()
  }

  socketsJoin (room) {
    for (const s of this._matching()) s.join(room)
  }

  socketsLeave (room) {
    for (const s of this._matching()) s.leave(room)
  }

  disconnectSockets (close = false) {
    for (const s of this._matching()) s.disconnect(close)
  }
}

module.exports = { BroadcastOperator }
