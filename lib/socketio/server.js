'use strict'
const { EventEmitter } = require('node:events')
const binding = require('../../binding.js')
const { dispatch } = require('../events')
const { Namespace } = require('./namespace')
const { TYPE } = require('./packet')
const { reportHandlerError } = require('../util')

/**
 * socket.io's `Server`: `new Server(port?, opts?)`, `io.listen(port)`,
 * `io.on('connection')`, `io.of(nsp)`, `io.use`, `io.to(room).emit`…
 * Engine.IO, heartbeats, rooms and fan-out run in Rust; this class keeps
 * socket.io's object model and runs the user's handlers.
 *
 * Transport: WebSocket only so far (clients need `transports: ['websocket']`);
 * long-polling and attaching to a Node http.Server are the next steps of
 * issue #3.
 */
class Server extends EventEmitter {
  constructor (srv, opts) {
    super()
    if (srv !== null && typeof srv === 'object' && typeof srv.listen !== 'function') {
      opts = srv
      srv = undefined
    }
    this._opts = opts || {}
    this._path = (this._opts.path || '/socket.io').replace(/\/$/, '')
    this._nsps = new Map()
    this._parents = []
    this._clients = new Map()
    this._nativeHandle = null
    this._keepAlive = null
    this._listening = false
    this.sockets = this.of('/')
    const clients = this._clients
    this.engine = { get clientsCount () { return clients.size } }
    if (srv !== undefined) this.listen(srv)
  }

  _native () {
    if (!this._nativeHandle) {
      this._nativeHandle = new binding.NativeSocketIo({
        workers: this._opts.workers,
        path: this._path,
        pingInterval: this._opts.pingInterval,
        pingTimeout: this._opts.pingTimeout,
        maxHttpBufferSize: this._opts.maxHttpBufferSize,
        connectTimeout: this._opts.connectTimeout
      }, (batch) => {
        try {
          dispatch(batch, this._sink())
        } catch (err) {
          reportHandlerError(err)
        }
      })
    }
    return this._nativeHandle
  }

  _sink () {
    if (this._sinkObj) return this._sinkObj
    this._sinkObj = {
      sioConnect: (key, nsp, auth, remote) => {
        let client = this._clients.get(key)
        if (!client) {
          client = { key, remote, sockets: new Map(), open: true }
          this._clients.set(key, client)
          this._updateKeepAlive()
        }
        let parsed = {}
        if (auth) {
          try { parsed = JSON.parse(auth) } catch {}
        }
        const namespace = this._nsps.get(nsp)
        if (namespace) return namespace._connect(client, parsed)
        this._matchParent(nsp, parsed, (child) => {
          if (child) child._connect(client, parsed)
          else this._native().reject(key, nsp, 'Invalid namespace', undefined)
        })
      },
      sioPacket: (key, type, nsp, id, data, attachments) => {
        const socket = this._clients.get(key)?.sockets.get(nsp)
        const plain = type === TYPE.BINARY_EVENT ? TYPE.EVENT : type === TYPE.BINARY_ACK ? TYPE.ACK : type
        if (socket) socket._onPacket(plain, id, data, attachments)
      },
      sioDisconnect: (key, nsp) => {
        this._clients.get(key)?.sockets.get(nsp)?._onClose('client namespace disconnect')
      },
      sioClose: (key, reason) => {
        const client = this._clients.get(key)
        if (!client) return
        client.open = false
        this._clients.delete(key)
        // engine.io's "transport close" from a client that left reads as
        // socket.io's "client namespace disconnect" only for explicit leaves.
        for (const socket of [...client.sockets.values()]) socket._onClose(reason)
        this._updateKeepAlive()
      },
      // The core's events never come from a Socket.IO handle.
      open () {}, message () {}, close () {}, drain () {}, ping () {}, pong () {}, request () {}, aborted () {}
    }
    return this._sinkObj
  }

  /** `io.listen(port)`; `io.attach(port)` is the same. */
  listen (port, opts) {
    if (opts) Object.assign(this._opts, opts)
    if (typeof port !== 'number' && typeof port !== 'string') {
      const err = new Error('attaching to a Node http.Server is not supported yet; pass a port')
      err.code = 'FERROSOCKET_UNSUPPORTED'
      throw err
    }
    const r = this._native().listen(this._opts.host || '0.0.0.0', Number(port))
    this._port = r.port
    this._listening = true
    this._updateKeepAlive()
    return this
  }

  attach (port, opts) {
    return this.listen(port, opts)
  }

  /** The port actually listened on (ferrosocket extension; useful with port 0). */
  get port () {
    return this._port
  }

  /**
   * A namespace by name, or a dynamic parent: `of(/^\/room-\d+$/)` or
   * `of((name, auth, next) => next(null, allowed))`. A client connecting to a
   * matching name creates that child namespace, which gets the parent's
   * middleware and 'connection' listeners.
   */
  of (name) {
    if (name instanceof RegExp || typeof name === 'function') {
      const parent = new Namespace(this, typeof name === 'function' ? '/_fn' : String(name))
      this._parents.push({ match: name, parent })
      return parent
    }
    const n = String(name).startsWith('/') ? String(name) : '/' + name
    let nsp = this._nsps.get(n)
    if (!nsp) {
      nsp = new Namespace(this, n)
      this._nsps.set(n, nsp)
    }
    return nsp
  }

  _matchParent (name, auth, done) {
    const parents = [...this._parents]
    const next = (i) => {
      if (i >= parents.length) return done(null)
      const { match, parent } = parents[i]
      const onMatch = (err, ok) => {
        if (err || !ok) return next(i + 1)
        // Created on first match; later clients find it by name.
        const child = this._nsps.get(name) || this.of(name)
        if (!child._parent) {
          child._parent = parent
          child._fns.push(...parent._fns)
          for (const ev of ['connection', 'connect']) for (const l of parent.listeners(ev)) child.on(ev, l)
        }
        done(child)
      }
      if (match instanceof RegExp) return onMatch(null, match.test(name))
      try {
        match(name, auth, onMatch)
      } catch (err) {
        onMatch(err)
      }
    }
    next(0)
  }

  use (fn) {
    this.sockets.use(fn)
    return this
  }

  on (event, fn) {
    if (event === 'connection' || event === 'connect') {
      this.sockets.on(event, fn)
      return this
    }
    return super.on(event, fn)
  }

  to (room) { return this.sockets.to(room) }
  in (room) { return this.sockets.in(room) }
  except (room) { return this.sockets.except(room) }
  emit (event, ...args) { return this.sockets.emit(event, ...args) }
  send (...args) { return this.sockets.send(...args) }
  get local () { return this.sockets.local }
  get volatile () { return this.sockets.volatile }
  compress (c) { return this.sockets.compress(c) }
  fetchSockets () { return this.sockets.fetchSockets() }
  socketsJoin (room) { return this.sockets.socketsJoin(room) }
  socketsLeave (room) { return this.sockets.socketsLeave(room) }
  disconnectSockets (close) { return this.sockets.disconnectSockets(close) }

  /** Closes every client ("server shutting down") and the listener. */
  close (fn) {
    for (const client of [...this._clients.values()]) {
      client.open = false
      for (const socket of [...client.sockets.values()]) socket._onClose('server shutting down')
    }
    this._clients.clear()
    if (this._nativeHandle) this._nativeHandle.close()
    this._listening = false
    this._updateKeepAlive()
    if (fn) process.nextTick(fn)
  }

  _updateKeepAlive () {
    const busy = this._listening || this._clients.size > 0
    if (busy && !this._keepAlive) {
      this._keepAlive = setInterval(() => {}, 0x7fffffff)
    } else if (!busy && this._keepAlive) {
      clearInterval(this._keepAlive)
      this._keepAlive = null
    }
  }
}

module.exports = { Server }
