'use strict'

/**
 * socket.io's in-memory adapter, as far as apps read it: `rooms`
 * (room -> Set of socket ids) and `sids` (socket id -> Set of rooms) of one
 * namespace. Delivery never uses these (rooms are topics in Rust); they
 * exist for API compatibility, so they are kept cheap: every socket's own
 * room (named by its id) and its `sids` entry are not stored but derived from
 * the namespace's sockets (`sids.get(id)` is the socket's own `rooms` Set).
 */
class Adapter {
  constructor (nsp) {
    this.nsp = nsp
    this.rooms = new RoomMap(nsp)
    this.sids = new SidMap(nsp)
  }

  /** `id` joined `room` (its own room is implicit). */
  addMember (id, room) {
    if (room === id) return
    let members = Map.prototype.get.call(this.rooms, room)
    if (!members) Map.prototype.set.call(this.rooms, room, (members = new Set()))
    members.add(id)
  }

  delMember (id, room) {
    if (room === id) return
    const members = Map.prototype.get.call(this.rooms, room)
    if (!members) return
    members.delete(id)
    if (!members.size) Map.prototype.delete.call(this.rooms, room)
  }
}

/** Stored rooms plus one virtual entry per socket: its own room. */
class RoomMap extends Map {
  constructor (nsp) {
    super()
    this._nsp = nsp
  }

  _own (room) {
    return !super.has(room) && this._nsp.sockets.has(room)
  }

  get (room) {
    return super.get(room) || (this._own(room) ? new Set([room]) : undefined)
  }

  has (room) {
    return super.has(room) || this._nsp.sockets.has(room)
  }

  get size () {
    let own = 0
    for (const id of this._nsp.sockets.keys()) if (!super.has(id)) own++
    return super.size + own
  }

  * entries () {
    yield * super.entries()
    for (const id of this._nsp.sockets.keys()) if (!super.has(id)) yield [id, new Set([id])]
  }

  * keys () { for (const [k] of this.entries()) yield k }
  * values () { for (const [, v] of this.entries()) yield v }
  [Symbol.iterator] () { return this.entries() }
  forEach (fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this) }
}

/** socket id -> that socket's `rooms` Set, straight from the namespace. */
class SidMap extends Map {
  constructor (nsp) {
    super()
    this._nsp = nsp
  }

  get (id) { return this._nsp.sockets.get(id)?.rooms }
  has (id) { return this._nsp.sockets.has(id) }
  get size () { return this._nsp.sockets.size }
  * entries () { for (const [id, s] of this._nsp.sockets) yield [id, s.rooms] }
  * keys () { yield * this._nsp.sockets.keys() }
  * values () { for (const s of this._nsp.sockets.values()) yield s.rooms }
  [Symbol.iterator] () { return this.entries() }
  forEach (fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this) }
}

module.exports = { Adapter }
