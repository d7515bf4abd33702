'use strict'
const { EventEmitter } = require('node:events')
const http = require('node:http')
const binding = require('../native')
const { HttpFront } = require('./http-front')
const { EngineSocket } = require('./socket')
const { EngineSessions } = require('./sessions')
const { emitSafe } = require('../util')
const { NativeHost } = require('../native-host')
const { engineOptions, nativeDeflate } = require('../options')

/**
 * A raw Engine.IO v4 server (engine.io's `Server`, default path
 * `/engine.io`): sessions over long-polling and WebSocket with the upgrade
 * and heartbeat in Rust, messages to JS. For apps that use engine.io
 * without Socket.IO, and for the official Engine.IO protocol test suite.
 */
class EngineServer extends EventEmitter {
  constructor (opts) {
    super()
    this._opts = engineOptions(opts)
    this._nativeHandle = null
    this.clients = new Map()
    this._keys = new Map()
    // What sockets may do to their sessions; the handle itself stays here.
    this._sessions = new EngineSessions(() => this._native())
    this._front = new HttpFront(this._opts, () => this._native())
    this._front.on('connection_error', (e) => emitSafe(this, 'connection_error', e))
    this._front.on('headers', (h, req) => emitSafe(this, 'headers', h, req))
    this._front.on('initial_headers', (h, req) => emitSafe(this, 'initial_headers', h, req))
    this._host = new NativeHost(() => this._sink)
    this.httpServer = null
  }

  get clientsCount () {
    return this._front.clientsCount
  }

  /** Derived, not stored: `attach(srv, { path })` may change the option. */
  get _path () {
    return (this._opts.path || '/engine.io').replace(/\/$/, '')
  }

  _native () {
    if (!this._nativeHandle) {
      const o = this._opts
      this._nativeHandle = new binding.NativeEngineIo({
        workers: o.workers,
        path: this._path,
        pingInterval: o.pingInterval,
        pingTimeout: o.pingTimeout,
        maxHttpBufferSize: o.maxHttpBufferSize,
        maxBackpressure: o.maxBackpressure,
        upgradeTimeout: o.upgradeTimeout,
        allowUpgrades: o.allowUpgrades,
        transports: o.transports,
        allowEio3: o.allowEIO3 === true,
        perMessageDeflate: nativeDeflate(o.perMessageDeflate),
        handshakeTimeout: o.handshakeTimeout
      }, this._host.onBatch, this._host.scratch)
      this._front._bind(this._nativeHandle.front())
    }
    return this._nativeHandle
  }

  get _sink () {
    if (this._sinkObj) return this._sinkObj
    this._sinkObj = {
      eioOpen: (key, sid, address) => {
        const socket = new EngineSocket(this, this._sessions, key, sid, address)
        this._keys.set(key, socket)
        this.clients.set(sid, socket)
        this._updateKeepAlive()
        emitSafe(this, 'connection', socket)
      },
      eioMessage: (key, data) => {
        const socket = this._keys.get(key)
        if (socket) emitSafe(socket, 'message', data)
      },
      eioClose: (key, reason) => {
        const socket = this._keys.get(key)
        if (!socket) return
        this._keys.delete(key)
        this.clients.delete(socket.id)
        socket.readyState = 'closed'
        this._updateKeepAlive()
        emitSafe(socket, 'close', reason)
      },
      pollReady: (reqId) => this._front._pollReady(reqId),
      refused: (...args) => this._front._refusedInRust(...args),
      upgrade: (key) => {
        const socket = this._keys.get(key)
        if (socket) emitSafe(socket, 'upgrade', socket.transport)
      }
    }
    return this._sinkObj
  }

  /** Serves Engine.IO on `server` (requests under the path and upgrades). */
  attach (server, opts) {
    Object.assign(this._opts, engineOptions(opts))
    this._native()
    this.httpServer = server
    this._front.attach(server, this._path + '/')
    server.on('close', () => this._closeNative())
    return this
  }

  /** Creates an http.Server on `port` and attaches to it. */
  listen (port, opts, fn) {
    if (typeof opts === 'function') {
      fn = opts
      opts = undefined
    }
    const server = http.createServer((req, res) => {
      res.writeHead(501)
      res.end('Not Implemented')
    })
    this.attach(server, opts)
    server.listen(port, fn)
    return this
  }

  close () {
    this._closeNative()
    if (this.httpServer) this.httpServer.close()
    return this
  }

  _closeNative () {
    if (!this._nativeHandle || this._closed) return
    this._closed = true
    this._front.close()
    this._nativeHandle.close()
    this._updateKeepAlive()
  }

  _updateKeepAlive () {
    this._host.busy(!this._closed && this._keys.size > 0)
  }
}

module.exports = { EngineServer }
