'use strict'
const { EventEmitter } = require('node:events')
const http = require('node:http')
const net = require('node:net')
const fs = require('node:fs')
const binding = require('../native')
const { Namespace } = require('./namespace')
const { ParentNamespace } = require('./parent-namespace')
const { Adapter } = require('./adapter')
const { HttpFront } = require('../engineio/http-front')
const { Client } = require('./client')
const { Sessions } = require('./sessions')
const { clientFile, sendClient, serveClientOnApp } = require('./client-bundle')
const { TYPE, dataPacket } = require('./packet')
const { once, safeApply, emitSafe } = require('../util')
const { NativeHost } = require('../native-host')
const { serverOptions, attachPort, nativeDeflate } = require('../options')
const { listenError } = require('../listen-error')
const { kNative, kHeadSeen } = require('../symbols')
const { takeOver, adoptConnection } = require('./listener-takeover')
const { RedisLink } = require('./redis-link')
const { TlsListener } = require('./tls-listener')
const { SSLApp, checkSsl } = require('../app')

const ENCODER = Object.freeze({
  encode (packet) {
    const { text, attachments } = dataPacket(packet.type, packet.nsp || '/', packet.id, packet.data)
    return [text, ...attachments]
  }
})

/**
 * socket.io's `Server`: `new Server(port?, opts?)`, `io.listen(port)`,
 * `io.on('connection')`, `io.of(nsp)`, `io.use`, `io.to(room).emit`…
 * Engine.IO, heartbeats, rooms and fan-out run in Rust; this class keeps
 * socket.io's object model and runs the user's handlers.
 *
 * HTTP goes through a Node http.Server (given, or created by `listen(port)`
 * as socket.io does): long-polling requests are answered by the Rust engine,
 * WebSocket upgrades are handed to Rust by file descriptor. With the `tls`
 * option, `listen(port)` serves everything in Rust instead, on an internal
 * SSLApp (see _listenTls).
 */
class Server extends EventEmitter {
  constructor (srv, opts) {
    super()
    if (srv !== null && typeof srv === 'object' && typeof srv.listen !== 'function') {
      opts = srv
      srv = undefined
    }
    this._opts = Object.assign({ serveClient: true }, serverOptions(opts))
    // A custom adapter (socket.io-adapter compatible), or null: the built-in one.
    this._adapterClass = this._opts.adapter || null
    this._nsps = new Map()
    this._parents = []
    this._clients = new Map()
    this._nativeHandle = null
    // The Redis link of createRedisAdapter (redis-link.js), when scaled out.
    this._redis = null
    // Events of this batch, dispatched after it: (socket, args) pairs.
    this._batchEvents = []
    // The App given to attachApp, whose listener serves the engine.
    this._app = null
    this._host = new NativeHost(() => this._sink())
    // What namespaces, sockets and operators may do to the sessions; the
    // handle itself stays here.
    this._sessions = new Sessions(() => this._native(), this._host)
    this._listening = false
    // The taken-over listener of an attached http.Server was unref()'d.
    this._unref = false
    this.sockets = this.of('/')
    this.engine = new HttpFront(this._opts, () => this._native())
    this.httpServer = null
    if (srv !== undefined && srv !== null) this.attach(srv)
    else if (this._opts.tls) this._checkTls(false)
  }

  /** socket.io's name for the Engine.IO server (`io.engine`). */
  get eio () {
    return this.engine
  }

  /** Derived, not stored: `attach(srv, { path })` may change the option. */
  get _path () {
    return (this._opts.path || '/socket.io').replace(/\/$/, '')
  }

  /**
   * Connection state recovery's settings with socket.io's defaults, or
   * null when off (derived: `attach(srv, opts)` may set the option).
   */
  get _recovery () {
    const r = this._opts.connectionStateRecovery
    if (!r) return null
    const out = { maxDisconnectionDuration: 120000, skipMiddlewares: true, maxStoredBytes: undefined }
    // As every option here: undefined or null means the default.
    if (r !== true) for (const k of Object.keys(out)) if (r[k] !== undefined && r[k] !== null) out[k] = r[k]
    return out
  }

  /** The client with this key (a namespace looks its sockets up here). */
  _client (key) {
    return this._clients.get(key)
  }

  _native () {
    if (!this._nativeHandle) {
      const recovery = this._recovery
      this._nativeHandle = new binding.NativeSocketIo({
        workers: this._opts.workers,
        path: this._path,
        pingInterval: this._opts.pingInterval,
        pingTimeout: this._opts.pingTimeout,
        maxHttpBufferSize: this._opts.maxHttpBufferSize,
        maxBackpressure: this._opts.maxBackpressure,
        // 0 means the default, as in socket.io.
        connectTimeout: this._opts.connectTimeout || undefined,
        upgradeTimeout: this._opts.upgradeTimeout,
        allowUpgrades: this._opts.allowUpgrades,
        transports: this._opts.transports,
        allowEio3: this._opts.allowEIO3 === true,
        perMessageDeflate: nativeDeflate(this._opts.perMessageDeflate),
        onApp: this._app !== null,
        recoveryMaxAge: recovery ? recovery.maxDisconnectionDuration : undefined,
        recoveryMaxBytes: recovery ? recovery.maxStoredBytes : undefined,
        handshakeTimeout: this._opts.handshakeTimeout
      }, this._host.onBatch, this._host.scratch)
      this._sessions._store = recovery !== null
      this.engine._bind(this._nativeHandle.front())
      // Scaled out: the Redis link connects through this handle.
      if (this._redis) this._redis._attach(this._nativeHandle)
    }
    return this._nativeHandle
  }

  _sink () {
    if (this._sinkObj) return this._sinkObj
    this._sinkObj = {
      sioConnect: (key, nsp, auth, remote, socketId, pid) => {
        let client = this._clients.get(key)
        if (!client) {
          client = new Client(key, this._sessions)
          this._clients.set(key, client)
          this._updateKeepAlive()
        }
        // No auth: the handshake makes its `{}` when first read.
        let parsed = null
        if (auth) {
          try { parsed = JSON.parse(auth) } catch {}
        }
        const namespace = this._nsps.get(nsp)
        if (namespace) return namespace._connect(client, parsed, socketId, pid)
        this._matchParent(nsp, parsed || {}, (child) => {
          if (child) child._connect(client, parsed, socketId, pid)
          else this._sessions.reject(key, nsp, socketId, 'Invalid namespace', undefined)
        })
      },
      sioPacket: (key, type, nsp, id, data, attachments) => {
        const socket = this._clients.get(key)?.get(nsp)
        const plain = type === TYPE.BINARY_EVENT ? TYPE.EVENT : type === TYPE.BINARY_ACK ? TYPE.ACK : type
        if (socket) socket._onPacket(plain, id, data, attachments)
      },
      sioDisconnect: (key, nsp) => {
        this._clients.get(key)?.get(nsp)?._onClose('client namespace disconnect')
      },
      sioClose: (key, reason) => {
        const client = this._clients.get(key)
        if (!client) return this._sessions.release(key)
        client.open = false
        // engine.io's "transport close" from a client that left reads as
        // socket.io's "client namespace disconnect" only for explicit leaves.
        try {
          for (const socket of client.list()) socket._onClose(reason)
        } finally {
          // Operators found the client's sockets during those handlers, and
          // Rust kept its rooms and handshake for them.
          this._clients.delete(key)
          this._sessions.release(key)
        }
        // engine.io's 'close', after the sockets' disconnect handlers (as
        // socket.io's own listener on it comes first).
        if (client._conn) client._conn._onClose(reason)
        this._updateKeepAlive()
      },
      pollReady: (reqId) => this.engine._pollReady(reqId),
      upgrade: (key) => {
        const conn = this._clients.get(key)?._conn
        if (conn) conn._onUpgrade()
      },
      refused: (...args) => this.engine._refusedInRust(...args),
      // As socket.io's client.onerror: each socket hears of a packet the
      // parser refused (only if it listens: an unheard 'error' would throw),
      // then the connection closes.
      sioDecodeError: (key, message) => {
        const client = this._clients.get(key)
        if (!client) return
        for (const socket of client.list()) {
          if (socket.listenerCount('error')) emitSafe(socket, 'error', new Error(message))
        }
      },
      handoff: (fd, within) => this._handoff(fd, within),
      // As socket.io dispatches a client's event a tick after decoding it:
      // a socket that disconnected in the same read never sees the events
      // that came before its DISCONNECT.
      redisMessage: (channel, json, attachments) => this._redis?._message(channel, json, attachments),
      redisState: (code, error) => this._redis?._state(code, error),
      redisReply: (req, ok, value) => this._redis?._reply(req, ok, value),
      endBatch: () => {
        const q = this._batchEvents
        if (q.length === 0) return
        this._batchEvents = []
        for (let i = 0; i < q.length; i += 2) q[i]._dispatchNow(q[i + 1])
      },
      // The core's events never come from a Socket.IO handle.
      open () {}, message () {}, close () {}, drain () {}, ping () {}, pong () {}, request () {}, aborted () {}
    }
    return this._sinkObj
  }

  /**
   * `io.attach(httpServer)` or `io.attach(port)` (an http.Server is created
   * and listens, as socket.io does); `io.listen` is the same.
   */
  attach (srv, opts) {
    if (typeof srv === 'object' && srv !== null && typeof srv.listen !== 'function') {
      opts = srv
      srv = undefined
    }
    const port = attachPort(srv)
    Object.assign(this._opts, serverOptions(opts))
    if (this._opts.tls) {
      this._checkTls(port === undefined)
      return this._listenTls(port)
    }
    if (port !== undefined) {
      // Standalone, as socket.io's `new Server(port)`: an http.Server for
      // everything but WebSocket upgrades, which the Rust listener serves
      // itself; it hands every other connection over unread (see _handoff).
      srv = http.createServer((req, res) => {
        res.writeHead(404)
        res.end()
      })
    }
    const native = this._native()
    this.httpServer = srv
    markHeads(srv)
    this.engine.attach(srv, this._path + '/')
    // Wraps the engine's listener: the bundle paths are under the engine's.
    if (this._opts.serveClient !== false) this._attachServe(srv)
    srv.on('close', () => this._closeNative())
    if (port === undefined) this._takeOverWhenListening(srv)
    if (port !== undefined) {
      const host = this._opts.host || '::'
      let r
      try {
        r = native.listen(host, port, Boolean(this._opts.cors), typeof this._opts.allowRequest === 'function', Boolean(this._opts.reusePort))
      } catch (err) {
        // As socket.io's `httpServer.listen(port)` fails: 'error' on the
        // http.Server, asynchronously (thrown if nobody listens).
        const error = listenError(err, host, port)
        process.nextTick(() => srv.emit('error', error))
        return this
      }
      this._port = r.port
      this._listening = true
      this._updateKeepAlive()
      this._standalone(srv, host)
    }
    return this
  }

  /**
   * Our own http.Server never listens (the Rust listener does): make
   * `io.httpServer.address()`, `.listening`, `.close()` and its
   * 'listening' and 'close' events tell the truth, as apps and tests
   * written for socket.io use them.
   */
  _standalone (srv, host) {
    const self = this
    // The stand-in's own state, as a Node server has its handle: io.close()
    // shuts the Socket.IO server down (clearing _listening) before it closes
    // this one, which must still know that it was listening.
    let address = { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: this._port }
    srv.address = () => address && { ...address }
    Object.defineProperty(srv, 'listening', { configurable: true, get: () => address !== null })
    srv.close = function (cb) {
      const wasListening = address !== null
      address = null
      self._closeNative()
      // Held GETs were just answered: let those responses flush first.
      this.closeIdleConnections()
      setTimeout(() => this.closeAllConnections(), 1000).unref()
      if (wasListening) process.nextTick(() => this.emit('close'))
      if (cb) process.nextTick(cb, wasListening ? undefined : Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' }))
      return this
    }
    // As Node's listen: 'listening' on the next tick, so that
    // `new Server(port)` users can observe it, and not after a close() in
    // this tick. Node then tracks the connections it is handed
    // (headersTimeout, requestTimeout, closeIdleConnections); none is
    // handed over before then, as they come from Rust in a later callback.
    process.nextTick(() => { if (address !== null) srv.emit('listening') })
  }

  /**
   * The attached form: the Rust listener takes the http.Server's listening
   * socket over whenever it listens (now, or later), so WebSocket clients
   * cost what they cost standalone (listener-takeover.js).
   */
  _takeOverWhenListening (srv) {
    const attempt = () => {
      if (this.httpServer !== srv) return
      takeOver(srv, this._native(), {
        checkOrigin: Boolean(this._opts.cors),
        checkHandshake: typeof this._opts.allowRequest === 'function',
        onState: ({ listening, ref }) => {
          if (listening !== undefined) this._listening = listening
          if (ref !== undefined) this._unref = !ref
          this._updateKeepAlive()
        }
      })
    }
    srv.prependListener('listening', attempt)
    if (srv.listening) attempt()
  }

  /**
   * A plain-HTTP connection the Rust listener accepted, for `httpServer`.
   * Its request head must come `within` ms (what is left of the listener's
   * handshake deadline), or it is dropped: a slow-loris head is not kept
   * for Node's own, much longer, header timeouts.
   */
  _handoff (fd, within) {
    let socket
    try {
      socket = new net.Socket({ fd, readable: true, writable: true })
    } catch (err) {
      try { fs.closeSync(fd) } catch {}
      throw err
    }
    if (!this._listening || !adoptConnection(this.httpServer, socket)) return socket.destroy()
    try {
      this.httpServer.emit('connection', socket)
    } catch (err) {
      socket.destroy()
      throw err
    }
    if (within > 0) {
      const timer = setTimeout(() => { if (!headSeen(socket)) socket.destroy() }, within)
      timer.unref()
      socket.once('close', () => clearTimeout(timer))
    }
  }

  listen (srv, opts) {
    return this.attach(srv, opts)
  }

  /**
   * What the `tls` form refuses, then its key and certificate loaded once
   * by Rust (and dropped), so that a broken one fails here, synchronously
   * and naming the option, not at a later listen. `withServer`: given an
   * http(s).Server, whose own TLS (Node's) is the one that would apply.
   */
  _checkTls (withServer) {
    if (withServer) {
      const err = new TypeError('ferrosocket: option "tls" is for the standalone form (`new Server(port, { tls })`, ' +
        '`io.listen(port)`), not with an http(s).Server: an https.Server keeps its own TLS (Node\'s); give it ' +
        'the key and certificate and drop "tls", or drop the server to have TLS in Rust')
      err.code = 'ERR_INVALID_ARG_VALUE'
      throw err
    }
    refuseNodeOnly(this._opts, 'option "tls"', 'TLS is then terminated in Rust, without Node\'s HTTP server; ' +
      'for them, use an https.Server: `new Server(httpsServer, opts)`')
    try {
      checkSsl(this._opts.tls)
    } catch (cause) {
      const err = new Error(`ferrosocket: option "tls" does not load: ${cause.message}`)
      err.code = 'FERROSOCKET_BAD_TLS'
      err.cause = cause
      throw err
    }
  }

  /**
   * `new Server(port, { tls })`: an SSLApp of our own, the engine on it as
   * attachApp mounts it (WebSocket and long-polling answered in Rust, the
   * client bundle an app route), listening on `port` and the `host`
   * option. `io.httpServer` is a stand-in that reports that listener
   * (tls-listener.js); as with the plain form, a listen failure is an
   * 'error' on it, asynchronously.
   */
  _listenTls (port) {
    // One listener per server: listening again replaces it (nothing else
    // would ever close the one before).
    if (this.httpServer instanceof TlsListener) this.httpServer.close()
    const app = SSLApp({ ...this._opts.tls, workers: this._opts.workers, handshakeTimeout: this._opts.handshakeTimeout })
    this._mountOn(app)
    const srv = new TlsListener(app, () => this._closeNative())
    this.httpServer = srv
    const bound = srv._listen(this._opts.host || '::', port, Boolean(this._opts.reusePort))
    if (bound !== undefined) {
      this._port = bound
      this._listening = true
    }
    this._updateKeepAlive()
    return this
  }

  /**
   * As socket.io's `attachApp` for uWebSockets.js: Socket.IO on ferrosocket's
   * own `App()`/`SSLApp()`, beside its routes, on its one Rust listener (TLS
   * in Rust with SSLApp). WebSocket and long-polling under the path are
   * served in Rust; the client bundle by an App route. `cors` and
   * `allowRequest` need Node's HTTP server: refused here.
   */
  attachApp (app, opts) {
    Object.assign(this._opts, serverOptions(opts))
    const native = app && app[kNative]
    if (!native) throw new TypeError('ferrosocket: attachApp() takes an App() or SSLApp() of ferrosocket')
    refuseNodeOnly(this._opts, 'attachApp()', 'attach to an http.Server for them')
    if (this._opts.tls) {
      const err = new TypeError('ferrosocket: option "tls" is for `new Server(port, { tls })`; with attachApp() ' +
        'the App listens, with its own TLS: use an SSLApp()')
      err.code = 'ERR_INVALID_ARG_VALUE'
      throw err
    }
    this._mountOn(app)
    this._listening = true
    this._updateKeepAlive()
    return this
  }

  /** The engine under the path on `app`'s listener, and the client bundle as an app route. */
  _mountOn (app) {
    // A handle made before (a broadcast before attaching) serves no one yet.
    if (this._nativeHandle) this._closeNative()
    this._app = app
    this._native().attachApp(app[kNative])
    if (this._opts.serveClient !== false) serveClientOnApp(app, this._path)
  }

  /** `/socket.io/socket.io.js` and friends from the socket.io-client package. */
  _attachServe (srv) {
    const listeners = srv.listeners('request').slice(0)
    srv.removeAllListeners('request')
    srv.on('request', (req, res) => {
      const name = clientFile(this._path, req)
      // With the `cors` option, the bundle gets its headers too (socket.io).
      if (name) return this.engine.withCors(req, res, () => sendClient(name, req, res))
      for (const l of listeners) l.call(srv, req, res)
    })
  }

  /** The port listened on (ferrosocket extension; useful with port 0). */
  get port () {
    if (this._port !== undefined) return this._port
    const a = this.httpServer && this.httpServer.address()
    return a && typeof a === 'object' ? a.port : undefined
  }

  /**
   * A namespace by name, or a dynamic parent: `of(/^\/room-\d+$/)` or
   * `of((name, auth, next) => next(null, allowed))` (parent-namespace.js).
   * `fn`, if given, listens to its connections. A name a RegExp parent
   * matches becomes that parent's child, as in socket.io; every new
   * namespace but the main one is announced with `new_namespace`.
   */
  of (name, fn) {
    if (name instanceof RegExp || typeof name === 'function') {
      const parent = new ParentNamespace(this, this._sessions)
      this._parents.push({ match: name, parent })
      if (fn) parent.on('connect', fn)
      return parent
    }
    const n = String(name).startsWith('/') ? String(name) : '/' + name
    let nsp = this._nsps.get(n)
    if (!nsp) {
      const parent = this._parents.find(({ match }) => match instanceof RegExp && match.test(n))
      nsp = parent ? parent.parent._createChild(n) : new Namespace(this, n, this._sessions)
      this._nsps.set(n, nsp)
      if (n !== '/') this.sockets._emitReserved('new_namespace', nsp)
    }
    if (fn) nsp.on('connect', fn)
    return nsp
  }

  _matchParent (name, auth, done) {
    const parents = [...this._parents]
    const next = (i) => {
      if (i >= parents.length) return done(null)
      const { match, parent } = parents[i]
      const onMatch = once((err, ok) => {
        if (err || !ok) return next(i + 1)
        // Created on first match; later clients find it by name.
        let child = this._nsps.get(name)
        if (!child) {
          child = parent._createChild(name)
          this._nsps.set(name, child)
          this.sockets._emitReserved('new_namespace', child)
        }
        done(child)
      })
      if (match instanceof RegExp) return onMatch(null, match.test(name))
      // A function that throws or rejects is reported and matches nothing.
      safeApply(match, undefined, [name, auth, onMatch], onMatch)
    }
    next(0)
  }

  use (fn) {
    this.sockets.use(fn)
    return this
  }

  /** `io.path()`: the path served; `io.path(v)` sets it (before attaching). */
  path (v) {
    if (v === undefined) return this._path
    this._opts.path = String(v)
    return this
  }

  /** `io.serveClient()`: whether the client bundle is served; `io.serveClient(v)` sets it (before attaching). */
  serveClient (v) {
    if (v === undefined) return this._opts.serveClient !== false
    this._opts.serveClient = Boolean(v)
    return this
  }

  /**
   * `io.connectTimeout()`: ms a client may stay in no namespace (45000);
   * `io.connectTimeout(v)` sets it for clients of a handle made after this.
   */
  connectTimeout (v) {
    if (v === undefined) return this._opts.connectTimeout || 45000
    Object.assign(this._opts, serverOptions({ connectTimeout: v }))
    return this
  }

  /**
   * `io.adapter()`: the adapter class of every namespace. `io.adapter(X)`
   * (or the `adapter` option): a socket.io-adapter compatible class or
   * factory (`createAdapter(pub, sub)` of @socket.io/redis-adapter…), made
   * anew for every namespace, existing ones included, as socket.io does.
   */
  adapter (v) {
    if (v === undefined) return this._adapterClass || Adapter
    Object.assign(this._opts, serverOptions({ adapter: v }))
    this._adapterClass = v === Adapter ? null : v
    for (const nsp of this._nsps.values()) nsp._initAdapter()
    return this
  }

  /**
   * socket.io's encoder (socket.io-parser's `Encoder`), which adapters use:
   * a packet `{ type, nsp, id?, data }` as `[text, ...attachments]`.
   */
  get encoder () {
    return ENCODER
  }

  /** The options, as socket.io's `io.opts` (adapters read `connectionStateRecovery`). */
  get opts () {
    return this._opts
  }

  /** socket.io's deprecated `io.allSockets()`: the ids of the main namespace's sockets. */
  allSockets () {
    return this.sockets.allSockets()
  }

  write (...args) {
    return this.send(...args)
  }


  to (room) { return this.sockets.to(room) }
  in (room) { return this.sockets.in(room) }
  except (room) { return this.sockets.except(room) }
  emit (event, ...args) { return this.sockets.emit(event, ...args) }
  send (...args) {
    this.sockets.send(...args)
    return this
  }
  get local () { return this.sockets.local }
  timeout (ms) { return this.sockets.timeout(ms) }
  emitWithAck (...args) { return this.sockets.emitWithAck(...args) }
  serverSideEmit (...args) { return this.sockets.serverSideEmit(...args) }
  serverSideEmitWithAck (...args) { return this.sockets.serverSideEmitWithAck(...args) }
  get volatile () { return this.sockets.volatile }
  compress (c) { return this.sockets.compress(c) }
  fetchSockets () { return this.sockets.fetchSockets() }
  socketsJoin (room) { return this.sockets.socketsJoin(room) }
  socketsLeave (room) { return this.sockets.socketsLeave(room) }
  disconnectSockets (close) { return this.sockets.disconnectSockets(close) }

  /**
   * Closes every client ("server shutting down") and the HTTP server; the
   * promise resolves once that has closed. As in socket.io, an error closing
   * it (it was not listening) goes to `fn` only: the promise never rejects,
   * so the common unawaited `io.close()` cannot become an unhandled rejection.
   */
  close (fn) {
    this._closeNative()
    return new Promise((resolve) => {
      const done = (...args) => {
        safeApply(fn, undefined, args)
        resolve()
      }
      if (this.httpServer) {
        this.httpServer.close(done)
        if (typeof this.httpServer.closeIdleConnections === 'function') this.httpServer.closeIdleConnections()
      } else {
        process.nextTick(done)
      }
    })
  }

  /**
   * The server's Redis link (createRedisAdapter), made when the first
   * namespace needs it; one per server, shared by its namespaces.
   */
  _redisLink (opts) {
    if (!this._redis) this._redis = new RedisLink(this, opts)
    return this._redis
  }

  /** Idempotent: the 'close' of the http server calls it again after io.close(). */
  _closeNative () {
    for (const client of [...this._clients.values()]) {
      client.open = false
      for (const socket of client.list()) socket._onClose('server shutting down')
    }
    this._clients.clear()
    // As socket.io: each namespace's adapter is closed (a custom one
    // unsubscribes, stops its timers); a failure is reported, not thrown.
    for (const nsp of this._nsps.values()) safeApply(nsp.adapter.close, nsp.adapter, [])
    this.engine.close()
    // The link outlives the handle: its namespaces' adapters keep it, and
    // it connects again through the next handle (listen again, attachApp).
    if (this._redis) this._redis.close()
    if (this._nativeHandle) this._nativeHandle.close()
    // A later listen() or attach() starts afresh with a new handle, as
    // socket.io can listen again after close().
    this._nativeHandle = null
    this._sessions._reset()
    this.engine._bind(null)
    this._listening = false
    this._updateKeepAlive()
  }

  _updateKeepAlive () {
    this._host.busy((this._listening && !this._unref) || this._clients.size > 0)
  }
}

// As socket.io: the server's EventEmitter methods are the main namespace's
// (`io.on('connection')`, `io.off`, `io.listeners`…); `emit` broadcasts.
for (const method of Object.keys(EventEmitter.prototype)) {
  if (typeof EventEmitter.prototype[method] !== 'function' || method === 'emit') continue
  Server.prototype[method] = function (...args) {
    const r = this.sockets[method](...args)
    return r === this.sockets ? this : r
  }
}

/**
 * `cors` and `allowRequest` run in Node's HTTP server, which attachApp()
 * and the `tls` form do without: refused there rather than ignored.
 */
function refuseNodeOnly (opts, form, instead) {
  if (!opts.cors && typeof opts.allowRequest !== 'function') return
  const err = new Error(`ferrosocket: options "cors" and "allowRequest" are not supported with ${form} yet (${instead})`)
  err.code = 'FERROSOCKET_UNSUPPORTED'
  throw err
}

/**
 * Marks a socket Rust handed over (see `_handoff`) once Node parsed a
 * request head on it, whoever handles that request (the engine, the app's
 * routes, the client bundle). Only 'request', which always has listeners
 * here: a listener on 'upgrade', 'connect' or 'checkContinue' would change
 * what Node does with those (see `headSeen`).
 */
function markHeads (srv) {
  if (srv[kHeadSeen]) return
  srv[kHeadSeen] = true
  srv.prependListener('request', (req) => { req.socket[kHeadSeen] = true })
}

/**
 * Whether Node has parsed a head on a handed-over socket: a request was
 * emitted, or Node gave the socket away (an upgrade or CONNECT frees its
 * parser), or a response is under way ('checkContinue' and
 * 'checkExpectation' handlers).
 */
function headSeen (socket) {
  return Boolean(socket[kHeadSeen] || !socket.parser || socket._httpMessage)
}

module.exports = { Server }
