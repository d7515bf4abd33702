'use strict'
const { EventEmitter } = require('node:events')
const net = require('node:net')
const cors = require('cors')
const { once, safeApply, emitSafe, reportHandlerError, headersFromLines } = require('../util')
const { kHeadSeen } = require('../symbols')

/**
 * `io.engine` (and the HTTP side of `EngineServer`): Engine.IO's HTTP front
 * for the Rust engine. Node's HTTP server parses requests; this class applies CORS and
 * `allowRequest`, hands long-polling requests to Rust (which answers them or
 * holds the GET), and hands WebSocket upgrades over by file descriptor, so
 * the connection then lives in Rust alone. With TLS in Node (an https
 * server) the upgraded bytes are bridged through a socket pair instead.
 */
class HttpFront extends EventEmitter {
  /**
   * `opts`: the owner's options object (`attach(srv, opts)` merges into it
   * before calling our attach, which derives what it needs from it then).
   * The owner (the Socket.IO or raw Engine.IO server) holds the native
   * handle and, when it makes it, hands us its `front()`, our native half
   * (`_bind`): `_nativeFront` is set exactly while the owner has a handle.
   * `open()` has the owner make it, for a request before the owner's attach.
   */
  constructor (opts, open) {
    super()
    this._open = open
    this._nativeFront = null
    this._opts = opts
    this._configure()
    this._held = new Map()
    this._nextReq = 1
    this._closed = false
  }

  /** The options in force (engine.io's `opts`; the owner's, merged at attach). */
  get opts () {
    return this._opts
  }

  /** The owner made its native handle: `nativeFront` is its `front()`. */
  _bind (nativeFront) {
    this._nativeFront = nativeFront
  }

  /** The native half (`NativeEngineFront`); the owner makes its handle if need be. */
  _nativeHalf () {
    if (!this._nativeFront) this._open()
    return this._nativeFront
  }

  /** Open Engine.IO sessions (whether or not they joined a namespace). */
  get clientsCount () {
    return this._nativeFront ? this._nativeFront.clientsCount() : 0
  }

  _configure () {
    const opts = this._opts
    this._transports = opts.transports || ['polling', 'websocket']
    this._cors = opts.cors ? cors(guardCors(opts.cors)) : null
  }

  /** Serves `path` on `server` (requests and upgrades), as engine.io's attach. */
  attach (server, path) {
    // Attached again after close(): serving again.
    this._closed = false
    this._configure()
    this._path = path
    const check = (req) => req.url.slice(0, path.length) === path
    const listeners = server.listeners('request').slice(0)
    server.removeAllListeners('request')
    server.on('request', (req, res) => {
      if (check(req)) return this.handleRequest(req, res)
      for (const l of listeners) l.call(server, req, res)
    })
    if (this._transports.includes('websocket')) {
      server.on('upgrade', (req, socket, head) => {
        if (check(req)) return this.handleUpgrade(req, socket, head)
        if (this._opts.destroyUpgrade === false) return
        // Nobody else may want it: drop it, as engine.io does.
        socket.on('error', () => {})
        setTimeout(() => {
          if (socket.writable && socket.bytesWritten <= 0) socket.end()
        }, this._opts.destroyUpgradeTimeout || 1000)
      })
    }
  }

  /**
   * engine.io's middlewares (`io.engine.use(fn)`) are not supported: said
   * at once, in the user's terms, rather than "use is not a function".
   */
  use () {
    const err = new Error('ferrosocket: io.engine.use() (engine.io middlewares) is not supported; ' +
      'use io.use() (Socket.IO middlewares) and read socket.request there')
    err.code = 'FERROSOCKET_UNSUPPORTED'
    throw err
  }

  /** Runs `next` after the `cors` policy (if any) has set its headers. */
  withCors (req, res, next) {
    if (!this._cors) return next()
    this._cors(req, res, next)
  }

  handleRequest (req, res) {
    if (this._closed) {
      res.writeHead(503, { Connection: 'close' }).end()
      return
    }
    this.withCors(req, res, () => this._verify(req, res))
  }

  /**
   * engine.io's order: Rust verifies (transport, handshake method), then a
   * handshake goes through `allowRequest`, then Rust answers the poll. Every
   * answer, refusals included, is Rust's; JS only writes it.
   */
  _verify (req, res) {
    // The request as Rust reads it, made once for every call below.
    const request = info(req)
    const refused = this._nativeHalf().verify(request)
    if (refused) return this._reply(req, res, refused)
    const sid = this._nativeHalf().sidOf(request)
    if (sid) return this._poll(req, res, sid, request)
    this._allow(req, (err, ok) => {
      if (!ok) return this._reply(req, res, this._nativeHalf().forbidden(typeof err === 'string' ? err : undefined))
      this._poll(req, res, null, request)
    })
  }

  /**
   * Runs `allowRequest`; `done` is called exactly once, whatever it does:
   * one that throws or rejects before answering is reported and refuses.
   */
  _allow (req, done) {
    const fn = this._opts.allowRequest
    if (typeof fn !== 'function') return done(null, true)
    guarded(fn, (cb) => cb('Forbidden', false))(req, done)
  }

  /**
   * `sid`: null for a handshake. A POST's body is read here (the stream is
   * Node's) up to the limit Rust gives, or Rust answers instead of reading
   * (an unknown or upgraded session, a second POST at once, a binary body,
   * a declared length over the limit).
   */
  _poll (req, res, sid, request) {
    if (req.method !== 'POST') return this._answer(req, res, null, !sid, request)
    // Gone while the cors policy or allowRequest ran: nothing to read.
    if (req.destroyed) return
    const native = this._nativeHalf()
    const start = native.pollBeginPost(request)
    if (start.answer) return this._reply(req, res, start.answer)
    const limit = start.limit
    const chunks = []
    let size = 0
    let done = false
    // (A POST always names its session: a handshake POST was refused by verify.)
    const end = (tooLarge) => {
      done = true
      return native.pollEndPost(sid, tooLarge)
    }
    req.on('data', (chunk) => {
      if (done) return
      size += chunk.length
      if (size > limit) {
        res.writeHead(end(true).status, { Connection: 'close' }).end()
        req.socket.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (done) return
      done = true
      // The poll that delivers the body ends the POST in Rust.
      this._answer(req, res, Buffer.concat(chunks, size), !sid, request)
    })
    req.on('close', () => { if (!done) end(false) })
  }

  _answer (req, res, body, handshake, request) {
    const native = this._nativeHalf()
    const reqId = this._nextReq++
    const a = native.poll(reqId, request, body)
    if (a) return this._reply(req, res, a, handshake)
    this._held.set(reqId, { req, res })
    res.on('close', () => {
      if (this._held.get(reqId)?.res === res) {
        this._held.delete(reqId)
        native.pollAbort(reqId)
      }
    })
  }

  /** Rust has something for the held GET `reqId`. */
  _pollReady (reqId) {
    const held = this._held.get(reqId)
    if (!held) return
    this._held.delete(reqId)
    const body = this._nativeHalf().pollDrain(reqId)
    if (body != null) this._send(held.req, held.res, 200, 'text/plain; charset=UTF-8', body)
  }

  /**
   * A Rust answer (`PollAnswer`); a refusal is also a `connection_error`.
   * `handshake`: the request that opened a session ('initial_headers').
   */
  _reply (req, res, a, handshake = false) {
    if (a.errorCode != null) this._connectionError(req, a)
    this._send(req, res, a.status, a.contentType, a.body, handshake)
  }

  /**
   * An upgrade the Rust listener refused (JS never saw the request): the
   * same event, with a request record (method, url, headers) for `req`.
   */
  _refusedInRust (code, message, context, method, url, headerText) {
    const headers = headersFromLines(headerText)
    emitSafe(this, 'connection_error', { req: { method, url, headers }, code, message, context: JSON.parse(context) })
  }

  /** engine.io's event, from a Rust refusal: code, message and context. */
  _connectionError (req, refusal) {
    const { errorCode: code, errorMessage: message } = refusal
    emitSafe(this, 'connection_error', { req, code, message, context: JSON.parse(refusal.errorContext) })
  }

  _send (req, res, status, contentType, body, handshake = false) {
    if (res.writableEnded || res.destroyed) return
    const headers = { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }
    // As engine.io: the transport's answers get these events; refusals and
    // errors (written straight, abortRequest) do not.
    if (status === 200) {
      if (handshake) emitSafe(this, 'initial_headers', headers, req)
      emitSafe(this, 'headers', headers, req)
    }
    res.writeHead(status, headers)
    res.end(body)
  }

  /**
   * engine.io's order: Rust verifies (transport, session), then the `cors`
   * policy (ours: engine.io has none for upgrades), then a handshake goes
   * through `allowRequest`; then the socket moves to Rust. Every refusal,
   * answer and event fields alike, is Rust's; JS writes it.
   */
  handleUpgrade (req, socket, head) {
    if (this._closed) return socket.destroy()
    const refuse = (refusal) => {
      this._connectionError(req, refusal)
      socket.on('error', () => {})
      if (socket.writable) socket.write(refusal.response)
      socket.destroy()
    }
    const fail = (origin, message) => refuse(this._nativeHalf().refuseUpgrade(origin, message))
    const request = info(req)
    const fd = socket._handle && socket._handle.fd
    // The common case, in one crossing: nothing for JS to consult (no
    // Origin against a cors policy, no allowRequest), a plain socket.
    if ((!this._cors || req.headers.origin === undefined) && typeof this._opts.allowRequest !== 'function' &&
        !socket.encrypted && typeof fd === 'number' && fd >= 0) {
      if (socket._handle.readStop) socket._handle.readStop()
      let refusal
      try {
        refusal = this._nativeHalf().verifyAndAdopt(fd, request, head)
      } catch {
        // Closed meanwhile (io.close()): nothing will serve it.
      }
      if (refusal) return refuse(refusal)
      socket.destroy()
      return
    }
    const refused = this._nativeHalf().verifyUpgrade(request)
    if (refused) return refuse(refused)
    this._originAllowed(req, (allowed) => {
      if (!allowed) return fail(true)
      if (this._nativeHalf().sidOf(request) != null) return this._adopt(req, socket, head, request)
      this._allow(req, (err, ok) => {
        if (!ok) return fail(false, typeof err === 'string' ? err : undefined)
        this._adopt(req, socket, head, request)
      })
    })
  }

  /**
   * The `cors` option applied to WebSocket upgrades too (engine.io does not;
   * browsers do not enforce CORS on WebSockets, so the server must): an
   * upgrade with an Origin header passes only if `cors` would allow it.
   */
  _originAllowed (req, done) {
    if (!this._cors || req.headers.origin === undefined) return done(true)
    const headers = {}
    const answer = once(done)
    const fake = {
      setHeader (k, v) { headers[k.toLowerCase()] = v },
      getHeader (k) { return headers[k.toLowerCase()] },
      // cors ends the response itself only for preflights (never here).
      end () { answer(false) }
    }
    try {
      // The origin option may answer asynchronously (a callback or delegate).
      this._cors(req, fake, (err) => {
        const acao = headers['access-control-allow-origin']
        answer(!err && (acao === '*' || acao === req.headers.origin))
      })
    } catch (err) {
      reportHandlerError(err)
      answer(false)
    }
  }

  _adopt (req, socket, head, request) {
    // Gone while allowRequest or the origin check ran asynchronously.
    if (socket.destroyed) return
    const native = this._nativeHalf()
    const fd = socket._handle && socket._handle.fd
    if (!socket.encrypted && typeof fd === 'number' && fd >= 0) {
      // The connection moves to Rust: Node stops reading, Rust duplicates
      // the descriptor, Node closes its copy.
      if (socket._handle.readStop) socket._handle.readStop()
      try {
        native.adopt(fd, request, head)
      } catch {
        // Closed meanwhile (io.close()): nothing will serve it.
      }
      socket.destroy()
      return
    }
    if (!socket.encrypted) return socket.destroy()
    let pairFd
    try {
      pairFd = native.bridge(request, head)
    } catch {
      socket.destroy()
      return
    }
    const pair = new net.Socket({ fd: pairFd, readable: true, writable: true })
    const end = () => {
      socket.destroy()
      pair.destroy()
    }
    socket.on('error', end).on('close', end)
    pair.on('error', end).on('close', end)
    socket.pipe(pair)
    pair.pipe(socket)
    socket.resume()
  }

  /** Ends every session; each held GET gets its last body ("1"). */
  close () {
    this._closed = true
    const native = this._nativeFront
    if (native) native.closeSessions()
    for (const [reqId, { req, res }] of [...this._held]) {
      this._held.delete(reqId)
      const body = native ? native.pollDrain(reqId) : null
      if (body != null) this._send(req, res, 200, 'text/plain; charset=UTF-8', body)
      else if (!res.writableEnded) res.end()
    }
  }
}

/**
 * The `cors` option's functions (an options delegate, an `origin` function)
 * are user callbacks too, and the `cors` package drops what they return:
 * one that throws or rejects before answering is reported and gets no CORS
 * headers (an upgrade with an Origin is then refused).
 */
function guardCors (o) {
  if (typeof o === 'function') return guarded(o, (cb) => cb(null, { origin: false }))
  if (o !== null && typeof o === 'object' && typeof o.origin === 'function') {
    return { ...o, origin: guarded(o.origin, (cb) => cb(null, false)) }
  }
  return o
}

/** `fn(arg, cb)` whose `cb` counts once; a failed `fn` answers `deny(cb)`. */
function guarded (fn, deny) {
  return (arg, cb) => {
    const answer = once(cb)
    safeApply(fn, undefined, [arg, answer], () => deny(answer))
  }
}

function info (req) {
  const raw = req.rawHeaders
  const headers = new Array(raw.length)
  for (let i = 0; i < raw.length; i += 2) {
    headers[i] = raw[i].toLowerCase()
    headers[i + 1] = raw[i + 1]
  }
  const s = req.socket
  return {
    method: req.method,
    url: req.url,
    headers,
    remoteAddress: s.remoteAddress || '',
    remotePort: s.remotePort || 0,
    secure: Boolean(s.encrypted)
  }
}

module.exports = { HttpFront }
