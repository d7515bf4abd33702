'use strict'
const { EventEmitter } = require('node:events')

/**
 * socket.io's in-memory adapter, as far as apps read it: `rooms`
 * (room -> Set of socket ids) and `sids` (socket id -> Set of rooms) of one
 * namespace. Delivery never uses these (rooms are topics in Rust); they
 * exist for API compatibility, so they are kept cheap: every socket's own
 * room (named by its id) and its `sids` entry are not stored but derived from
 * the namespace's sockets (`sids.get(id)` is the socket's own `rooms` Set).
 */
class Adapter extends EventEmitter {
  constructor (nsp) {
    super()
    this.nsp = nsp
    this.rooms = new RoomMap(nsp)
    this.sids = new SidMap(nsp)
    // Connection state recovery's kept sessions (pid -> session), swept
    // once a minute while there are any, as socket.io's in-memory adapter.
    this._kept = null
    this._sweep = null
  }

  /**
   * socket.io's `persistSession`: a socket that lost its connection is kept
   * as `{ sid, pid, rooms, data }` (and its client key, which Rust's log
   * uses to leave out what the socket itself broadcast).
   */
  persistSession (session) {
    session.disconnectedAt = Date.now()
    if (!this._kept) this._kept = new Map()
    this._kept.set(session.pid, session)
    if (!this._sweep) {
      this._sweep = setInterval(() => this._sweepKept(), 60000)
      this._sweep.unref()
    }
  }

  /** The session kept under `pid`, unless it is older than `maxAge` ms. */
  _keptSession (pid, maxAge) {
    const session = this._kept && this._kept.get(pid)
    if (!session) return null
    if (session.disconnectedAt + maxAge < Date.now()) {
      this._forgetSession(pid)
      return null
    }
    return session
  }

  _forgetSession (pid) {
    if (!this._kept) return
    this._kept.delete(pid)
    // The sweep only: close() is the adapter's end (a Redis adapter would
    // fail its pending cross-node requests there).
    if (this._kept.size === 0) this._stopSweep()
  }

  _sweepKept () {
    const maxAge = this.nsp.server._recovery?.maxDisconnectionDuration ?? 0
    for (const pid of [...this._kept.keys()]) this._keptSession(pid, maxAge)
  }

  /** socket.io calls it when the server closes: nothing kept, no timer. */
  close () {
    this._stopSweep()
  }

  _stopSweep () {
    clearInterval(this._sweep)
    this._sweep = null
    this._kept = null
  }

  /**
   * `id` joined `room` (its own room is implicit: joined once, on connect).
   * As socket.io's in-memory adapter: 'create-room' (room) for a new room,
   * then 'join-room' (room, id).
   */
  addMember (id, room) {
    if (room === id) {
      this.emit('create-room', room)
      this.emit('join-room', room, id)
      return
    }
    let members = Map.prototype.get.call(this.rooms, room)
    if (!members) {
      Map.prototype.set.call(this.rooms, room, (members = new Set()))
      this.emit('create-room', room)
    }
    if (members.has(id)) return
    members.add(id)
    this.emit('join-room', room, id)
  }

  /** 'leave-room' (room, id), then 'delete-room' (room) when it is empty. */
  delMember (id, room) {
    if (room === id) {
      this.emit('leave-room', room, id)
      this.emit('delete-room', room)
      return
    }
    const members = Map.prototype.get.call(this.rooms, room)
    if (!members || !members.delete(id)) return
    this.emit('leave-room', room, id)
    if (!members.size) {
      Map.prototype.delete.call(this.rooms, room)
      this.emit('delete-room', room)
    }
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
