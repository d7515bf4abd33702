'use strict'
const { kApp, kId, kState } = require('./symbols')
const { toBuffer, textArrayBuffer, safeCall } = require('./util')

/** Under this many queued bytes a write reports no backpressure (src/ws/http1.rs). */
const HIGH_WATER = 64 * 1024
const EMPTY = Buffer.alloc(0)

/**
 * The response side of an `upgrade` or HTTP route handler (uWS.js
 * HttpResponse).
 *
 * On an HTTP route the response streams: the status line and headers go
 * with the first `write`/`tryEnd`/`end`; `write` without a known length
 * sends chunked; `end` or `tryEnd` sends a Content-Length; the connection
 * stays open for the client's next request (keep-alive) unless it asked
 * otherwise or `end(body, true)` closes it. Writes return false when more
 * than 64 KiB waits for the socket; `onWritable` is called once it has all
 * gone. The request body arrives through `onData` in pieces.
 *
 * In an `upgrade` handler it answers a refused upgrade: the whole answer
 * is sent at `end()` and the connection closes.
 */
class HttpResponse {
  constructor (app, id, req, kind) {
    this[kApp] = app
    this[kId] = id
    this[kState] = {
      kind,
      status: '200 OK',
      headers: [],
      headSent: false,
      offset: 0,
      done: false,
      aborted: false,
      onAborted: null,
      onData: null,
      onWritable: null,
      // Body pieces that came before onData was attached.
      early: [],
      remote: req.remote,
      body: null
    }
  }

  writeStatus (status) {
    this[kState].status = String(status)
    return this
  }

  writeHeader (key, value) {
    this[kState].headers.push(String(key), String(value))
    return this
  }

  /** Sends a piece of the body (chunked unless a Content-Length was written); false under backpressure. */
  write (chunk) {
    const s = this[kState]
    if (s.done || s.aborted) return false
    const buf = toBuffer(chunk)
    if (s.kind === 'upgrade') {
      s.body = s.body ? Buffer.concat([s.body, buf]) : Buffer.from(buf)
      return true
    }
    return this._send(buf, -1, false, false) < HIGH_WATER
  }

  /** Ends the response with `body`; `closeConnection` closes the connection after it. */
  end (body, closeConnection) {
    const s = this[kState]
    if (s.done || s.aborted) return this
    let buf = toBuffer(body)
    if (s.kind === 'upgrade') {
      s.done = true
      if (s.body) buf = Buffer.concat([s.body, buf])
      this[kApp]._respond(this[kId], s.status, s.headers, buf)
      return this
    }
    this._send(buf, buf.length, true, !!closeConnection)
    return this
  }

  /**
   * Writes `chunk` of a response of `totalSize` bytes (its Content-Length).
   * Returns [ok, done]: ok false under backpressure (wait for onWritable),
   * done once totalSize bytes were given. The whole chunk is always taken,
   * so the offset handed to onWritable is where the next chunk starts.
   */
  tryEnd (chunk, totalSize) {
    const s = this[kState]
    if (s.done || s.aborted) return [true, true]
    const buf = toBuffer(chunk)
    if (s.kind === 'upgrade') {
      this.end(buf)
      return [true, true]
    }
    const total = Number(totalSize)
    // Without a usable total, the chunk is the whole body.
    if (!Number.isSafeInteger(total) || total < 0) {
      this.end(buf)
      return [true, true]
    }
    const last = !(s.offset + buf.length < total)
    const queued = this._send(buf, total, last, false)
    return [queued >= 0 && queued < HIGH_WATER, s.done || queued < 0]
  }

  /** Ends with no body, announcing `reportedContentLength` (for HEAD answers). */
  endWithoutBody (reportedContentLength, closeConnection) {
    const s = this[kState]
    if (s.done || s.aborted) return this
    if (s.kind === 'upgrade') return this.end()
    this._send(EMPTY, reportedContentLength === undefined ? 0 : Number(reportedContentLength), true, !!closeConnection)
    return this
  }

  getWriteOffset () {
    return this[kState].offset
  }

  /** Accepts a WebSocket upgrade; `userData` becomes `ws.getUserData()`. */
  upgrade (userData, secWebSocketKey, secWebSocketProtocol, secWebSocketExtensions, context) {
    const s = this[kState]
    if (s.done || s.aborted) return
    s.done = true
    this[kApp]._acceptUpgrade(this[kId], userData, secWebSocketProtocol, secWebSocketExtensions)
  }

  onAborted (handler) {
    this[kState].onAborted = handler
    return this
  }

  /** `handler(arrayBuffer, isLast)` for each piece of the request body. */
  onData (handler) {
    const s = this[kState]
    s.onData = handler
    if (s.early.length > 0) {
      const early = s.early
      s.early = []
      queueMicrotask(() => {
        for (const [ab, last] of early) safeCall(handler, undefined, ab, last)
      })
    }
    return this
  }

  /** `handler(offset)` once what was queued has gone to the socket. */
  onWritable (handler) {
    this[kState].onWritable = handler
    return this
  }

  cork (cb) {
    cb()
    return this
  }

  /** Closes the connection at once; onAborted runs. */
  close () {
    const s = this[kState]
    if (s.done || s.aborted) return this
    if (s.kind === 'upgrade') return this.writeStatus('400 Bad Request').end()
    this[kApp]._closeRequest(this[kId])
    return this
  }

  getRemoteAddressAsText () {
    return textArrayBuffer(this[kState].remote)
  }

  get aborted () {
    return this[kState].aborted
  }

  // ---- internal ----

  /** Bytes queued after `buf` (-1: the request is gone); `length` frames the head (-1 chunked). */
  _send (buf, length, end, close) {
    const s = this[kState]
    let head = null
    if (!s.headSent) {
      s.headSent = true
      head = { status: s.status, headers: s.headers, length }
    }
    s.offset += buf.length
    if (end) s.done = true
    return this[kApp]._httpWrite(this[kId], head, buf, end, close)
  }

  _data (ab, last) {
    const s = this[kState]
    if (s.aborted) return
    if (s.onData) safeCall(s.onData, undefined, ab, last)
    else s.early.push([ab, last])
  }

  _writable () {
    const s = this[kState]
    if (s.onWritable && !s.done && !s.aborted) safeCall(s.onWritable, undefined, s.offset)
  }
}

module.exports = { HttpResponse }
