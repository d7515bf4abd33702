'use strict'
const binding = require('./native')
const { routeClass } = require('./websocket')
const { HttpRequest } = require('./http-request')
const { HttpResponse } = require('./http-response')
const { ListenSocket } = require('./listen-socket')
const { kApp, kNative, kId, kBehavior, kState } = require('./symbols')
const { toBuffer, toText, safeApply, safeCall, reportHandlerError } = require('./util')
const { NativeHost } = require('./native-host')
const { appOptions, sslAppOptions, behaviorOptions, func, listenArgs, redisTls } = require('./options')
const { listenError } = require('./listen-error')

const HTTP_METHODS = ['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace', 'any']

/**
 * uWS.js's TemplatedApp. Sockets, TLS, ping/pong and pub/sub live in Rust;
 * this class routes the event batches to the user's handlers.
 */
class TemplatedApp {
  constructor (options, ssl = null) {
    options = appOptions(options)
    this._host = new NativeHost(() => this._sink)
    const native = new binding.NativeApp(
      {
        workers: options.workers,
        maxConnections: options.maxConnections,
        handshakeTimeout: options.handshakeTimeout,
        maxBodyLength: options.maxBodyLength,
        ssl: ssl || undefined
      },
      this._host.onBatch,
      this._host.scratch
    )
    this[kNative] = native
    // WebSocket#send's native call, without a class method's per-call cost.
    this._send = native.sender()
    // Topics across nodes (scaleOut): its state, and who hears of changes.
    this._scaleOut = options.scaleOut ? { state: 'connecting', onState: options.scaleOut.onState } : null
    if (options.scaleOut) native.scaleOut(options.scaleOut.url, options.scaleOut.prefix || 'ferrosocket', redisTls('scaleOut.tls', options.scaleOut.tls, options.scaleOut.url))
    this._wsRoutes = []
    this._wsClasses = []
    this._httpRoutes = []
    // Per route, the names of its :params in order (getParameter(name)).
    this._httpParams = []
    this._wsParams = []
    // Open sockets by slab key (the low 32 bits of the id): a dense array
    // costs one slot per socket where a Map costs an entry object.
    this._sockets = []
    this._socketCount = 0
    this._pending = new Map()
    this._listeners = new Set()
    this._closedApp = false
    const socket = (id) => {
      const ws = this._sockets[id % 0x100000000]
      return ws !== undefined && ws[kId] === id ? ws : undefined
    }
    this._sink = {
      open: (id, route) => this._open(id, route),
      redisState: (code, error) => {
        const so = this._scaleOut
        if (!so) return
        so.state = ['connecting', 'connected', 'disconnected', 'closed'][code] || 'connecting'
        if (so.onState) safeCall(so.onState, undefined, so.state, error || undefined)
      },
      message: (id, ab, isBinary) => {
        const ws = socket(id)
        if (ws) safeCall(ws[kBehavior].message, undefined, ws, ab, isBinary)
      },
      close: (id, code, ab) => {
        const ws = socket(id)
        if (ws) this._closed(ws, code, ab)
      },
      drain: (id) => {
        const ws = socket(id)
        if (ws) safeCall(ws[kBehavior].drain, undefined, ws)
      },
      ping: (id, ab) => {
        const ws = socket(id)
        if (ws) safeCall(ws[kBehavior].ping, undefined, ws, ab)
      },
      pong: (id, ab) => {
        const ws = socket(id)
        if (ws) safeCall(ws[kBehavior].pong, undefined, ws, ab)
      },
      request: (id, kind, route, req) => this._request(id, kind, route, req),
      httpData: (id, ab, last) => {
        const p = this._pending.get(id)
        if (p) p.res._data(ab, last)
      },
      httpWritable: (id) => {
        const p = this._pending.get(id)
        if (p) p.res._writable()
      },
      aborted: (id) => {
        const p = this._pending.get(id)
        if (!p) return
        this._pending.delete(id)
        const state = p.res[kState]
        state.aborted = true
        safeCall(state.onAborted, undefined)
        this._updateKeepAlive()
      }
    }
  }

  ws (pattern, behavior) {
    behavior = behaviorOptions(behavior)
    const route = this[kNative].addWs(String(pattern), {
      idleTimeout: behavior.idleTimeout,
      maxPayloadLength: behavior.maxPayloadLength,
      maxBackpressure: behavior.maxBackpressure,
      closeOnBackpressureLimit: behavior.closeOnBackpressureLimit,
      sendPingsAutomatically: behavior.sendPingsAutomatically,
      hasUpgrade: typeof behavior.upgrade === 'function',
      // Frames nobody handles stay in Rust (a flood of them costs JS nothing).
      hasMessage: typeof behavior.message === 'function',
      hasPing: typeof behavior.ping === 'function',
      hasPong: typeof behavior.pong === 'function',
      compression: behavior.compression
    })
    this._wsRoutes[route] = behavior
    this._wsParams[route] = paramNames(pattern)
    this._wsClasses[route] = routeClass(this, behavior)
    return this
  }

  /**
   * `listen([host,] port[, options], cb)`. On failure `cb(false, error)`:
   * false as in uWS.js, then the reason (not in uWS.js) in the shape of
   * Node's listen errors (`code: 'EADDRINUSE'`, `errno`, `syscall`...).
   */
  listen (...args) {
    const { host = '0.0.0.0', port, options, cb } = listenArgs(args)
    // As uSockets: a fixed port is shared (SO_REUSEPORT) unless
    // LIBUS_LISTEN_EXCLUSIVE_PORT; port 0 is never shared.
    callListen(cb, ...this._listen(host, port, port !== 0 && (options & 1) === 0))
    return this
  }

  /**
   * `listen` without uWS.js's argument forms and port rule (the Socket.IO
   * server's `tls` form shares a port as its `reusePort` says):
   * `[listenSocket]`, or `[false, error]` shaped by listenError.
   */
  _listen (host, port, reusePort) {
    let result
    try {
      result = this[kNative].listen(host, port, reusePort)
    } catch (err) {
      return [false, listenError(err, host, port)]
    }
    const ls = new ListenSocket(this, result.token, result.port)
    this._listeners.add(ls)
    this._updateKeepAlive()
    return [ls]
  }

  publish (topic, message, isBinary = false, compress = false) {
    return this._publish(String(topic), message, isBinary, undefined, compress)
  }

  /**
   * With `scaleOut` (ferrosocket's): the Redis link's state ('connecting',
   * 'connected', 'disconnected', 'closed') and counters (published,
   * droppedPublishes, received, lostMessages, malformed); null without it.
   */
  getScaleOutStats () {
    return this._scaleOut ? this[kNative].scaleOutStats() : null
  }

  numSubscribers (topic) {
    return this[kNative].numSubscribers(String(topic))
  }

  /** Closes listeners and every connection (clients see 1001); Node can then exit. */
  close () {
    this._closedApp = true
    this[kNative].close()
    for (const ls of this._listeners) ls[kApp] = null
    this._listeners.clear()
    for (const ws of this._sockets.filter(Boolean)) {
      this._closed(ws, 1001, new ArrayBuffer(0))
    }
    this._pending.clear()
    this._updateKeepAlive()
    return this
  }

  addServerName () { return this }
  removeServerName () { return this }
  missingServerName () { return this }

  // ---- internal, called by WebSocket / HttpResponse / ListenSocket ----

  _closeListener (ls) {
    if (ls[kApp] !== this) return
    this[kNative].closeListener(ls[kId])
    ls[kApp] = null
    this._listeners.delete(ls)
    this._updateKeepAlive()
  }

  _publish (topic, message, isBinary, skipId, compress) {
    const native = this[kNative]
    const n = typeof message === 'string'
      ? native.publishText(topic, message, !!isBinary, skipId, !!compress)
      : native.publish(topic, toBuffer(message), !!isBinary, skipId, !!compress)
    // Publishes in one tick share one write per subscriber.
    if (n > 0) this._host.scheduleFlush(native)
    return n > 0
  }

  _dropped (ws, message, isBinary) {
    safeCall(ws[kBehavior].dropped, undefined, ws, message, isBinary)
  }

  _closed (ws, code, reasonAb) {
    const id = ws[kId]
    if (id < 0) return
    this._sockets[id % 0x100000000] = undefined
    this._socketCount--
    // Closed before the handler runs: inside `close` only getUserData() works (uWS.js).
    ws[kId] = -1
    safeCall(ws[kBehavior].close, undefined, ws, code, reasonAb)
    this._updateKeepAlive()
  }

  _open (id, route) {
    if (this._closedApp) {
      // Finished its handshake while close() ran: it must not outlive the app.
      this[kNative].terminate(id)
      return
    }
    const Cls = this._wsClasses[route]
    const pending = this._pending.get(id)
    let userData
    if (pending) {
      this._pending.delete(id)
      userData = pending.userData
    }
    const ws = new Cls(id, userData)
    // uWS.js v20 also exposes user data fields on the socket itself.
    if (userData !== null && typeof userData === 'object') Object.assign(ws, userData)
    this._sockets[id % 0x100000000] = ws
    this._socketCount++
    this._updateKeepAlive()
    safeCall(ws[kBehavior].open, undefined, ws)
  }

  _request (id, kind, route, reqData) {
    // Queued before close(): Rust no longer waits for an answer.
    if (this._closedApp) return
    const names = kind === 'upgrade' ? this._wsParams[route] : this._httpParams[route]
    const req = new HttpRequest(reqData, names)
    const res = new HttpResponse(this, id, reqData, kind)
    this._pending.set(id, { res, userData: null })
    this._updateKeepAlive()
    let handler
    if (kind === 'upgrade') {
      handler = (this._wsRoutes[route] || {}).upgrade
    } else {
      handler = this._httpRoutes[route]
    }
    // A handler that throws or rejects is reported and answers 500 rather
    // than hanging the client (or, its answer begun, closes the connection).
    safeApply(handler, undefined, [res, req, { id }], () => {
      const s = res[kState]
      if (s.done || s.aborted) return
      if (s.headSent) res.close()
      else res.writeStatus('500 Internal Server Error').end()
    })
  }

  _httpWrite (id, head, body, end, close) {
    const queued = this[kNative].httpWrite(id, head, body, end, close)
    if (end && this._pending.delete(id)) this._updateKeepAlive()
    return queued
  }

  _closeRequest (id) {
    const p = this._pending.get(id)
    if (!p) return
    this._pending.delete(id)
    this[kNative].httpClose(id)
    const state = p.res[kState]
    state.aborted = true
    safeCall(state.onAborted, undefined)
    this._updateKeepAlive()
  }

  _respond (id, status, headers, body) {
    if (!this._pending.delete(id)) return
    this[kNative].respond(id, status, headers, body)
    this._updateKeepAlive()
  }

  _acceptUpgrade (id, userData, protocol, extensions) {
    const p = this._pending.get(id)
    if (!p) return
    p.userData = userData
    let proto = protocol === undefined || protocol === null ? '' : String(protocol)
    // A client may offer a list; answer with the first one (the reply must name exactly one).
    if (proto.includes(',')) proto = proto.split(',')[0].trim()
    const ext = extensions === undefined || extensions === null ? '' : toText(extensions)
    if (!this[kNative].acceptUpgrade(id, proto || null, ext || null)) {
      this._pending.delete(id)
      this._updateKeepAlive()
    }
  }

  /** Node stays alive while we listen or hold sockets, and not after. */
  _updateKeepAlive () {
    this._host.busy(this._listeners.size > 0 || this._socketCount > 0 || this._pending.size > 0)
  }
}

for (const method of HTTP_METHODS) {
  TemplatedApp.prototype[method] = function (pattern, handler) {
    func(`${method}() handler`, handler, { required: true })
    const m = method === 'del' ? 'delete' : method
    const route = this[kNative].addRoute(m, String(pattern))
    this._httpRoutes[route] = handler
    this._httpParams[route] = paramNames(pattern)
    return this
  }
}

/** The names of a route pattern's `:param` segments, in order. */
function paramNames (pattern) {
  return String(pattern).split('/').filter((seg) => seg.startsWith(':')).map((seg) => seg.slice(1))
}

/**
 * The listen callback runs inside the caller's own `listen()` (as in
 * uWS.js), so a throw reaches the caller: `if (!ls) throw …` must stop the
 * program, not become a warning. A rejected promise has no caller left and
 * is reported like any handler's.
 */
function callListen (cb, ...args) {
  const r = cb(...args)
  if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, reportHandlerError)
}

/** uWS.js factory: `App(options)`; also works with `new`. */
function App (options) {
  return new TemplatedApp(options, null)
}

/** uWS.js factory: `SSLApp({ key_file_name, cert_file_name })`; `key`/`cert` PEM buffers also accepted. */
function SSLApp (options) {
  options = sslAppOptions(options)
  return new TemplatedApp(options, nativeSsl(options))
}

/**
 * Loads SSLApp's key and certificate as `SSLApp(options)` would, and
 * drops them: the same errors, without an App (no runtime started).
 */
function checkSsl (options) {
  binding.checkTls(nativeSsl(sslAppOptions(options)))
}

/** SSLApp's checked options as the native layer takes them. */
function nativeSsl (options) {
  return {
    keyFileName: options.key_file_name,
    certFileName: options.cert_file_name,
    key: options.key === undefined ? undefined : toBuffer(options.key),
    cert: options.cert === undefined ? undefined : toBuffer(options.cert),
    passphrase: options.passphrase
  }
}

function us_listen_socket_close (listenSocket) { // eslint-disable-line camelcase
  if (listenSocket && listenSocket[kApp]) listenSocket[kApp]._closeListener(listenSocket)
}

function us_socket_local_port (listenSocket) { // eslint-disable-line camelcase
  return listenSocket ? listenSocket.port : -1
}

module.exports = { App, SSLApp, checkSsl, TemplatedApp, us_listen_socket_close, us_socket_local_port }
