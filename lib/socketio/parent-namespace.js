'use strict'
const { Namespace } = require('./namespace')
const { Adapter } = require('./adapter')
const { kRedisOptions } = require('./redis-adapter')
const { safeApply } = require('../util')

let count = 0

/**
 * A dynamic namespace (`io.of(/^\/room-\d+$/)` or `io.of((name, auth, next)
 * => …)`), as socket.io's ParentNamespace: a client connecting to a matching
 * name creates a child namespace, which takes the parent's middleware and
 * 'connect'/'connection' listeners as they are then. Emits and broadcasts on
 * the parent reach every child (with the same rooms and exceptions).
 */
class ParentNamespace extends Namespace {
  constructor (server, sessions) {
    super(server, '/_' + count++, sessions)
    this.children = new Set()
  }

  /**
   * A parent holds no sockets: its adapter is the built-in one whatever the
   * server's (socket.io gives it one that only forwards broadcasts); with a
   * custom adapter its broadcasts go through each child's.
   */
  _initAdapter () {
    this._custom = Boolean(this.server._adapterClass) && !this.server._adapterClass[kRedisOptions]
    this.adapter = new Adapter(this)
  }

  /** The child namespace `name` (socket.io's `createChild`). */
  _createChild (name) {
    const child = new Namespace(this.server, name, this._sessions)
    child._parent = this
    child._fns.push(...this._fns)
    for (const ev of ['connect', 'connection']) for (const l of this.listeners(ev)) child.on(ev, l)
    this.children.add(child)
    if (this.server._opts.cleanupEmptyChildNamespaces) {
      const remove = child._remove
      child._remove = (socket) => {
        remove.call(child, socket)
        if (child.sockets.size === 0) {
          this.server._nsps.delete(child.name)
          this.children.delete(child)
          // As socket.io: the removed child's adapter is closed.
          safeApply(child.adapter.close, child.adapter, [])
        }
      }
    }
    return child
  }

  /** The namespaces a broadcast on this one reaches. */
  get _targets () {
    return [...this.children]
  }

  fetchSockets () {
    throw new Error('fetchSockets() is not supported on parent namespaces')
  }
}

module.exports = { ParentNamespace }
