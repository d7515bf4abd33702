'use strict'
const { kApp, kId, kState } = require('./symbols')
const { toBuffer, textArrayBuffer, safeCall } = require('./util')

/**
 * The response side of an `upgrade` or HTTP route handler (uWS.js
 * HttpResponse). Answers are sent when `end()` or `upgrade()` is called,
 * synchronously or later; the connection is closed after an HTTP answer.
 */
class HttpResponse {
  constructor (app, id, req) {
    this[kApp] = app
    this[kId] = id
    this[kState] = { status: '200 OK', headers: [], done: false, aborted: false, onAborted: null, remote: req.remote }
  }

  writeStatus (status) {
    this[kState].status = String(status)
    return this
  }

  writeHeader (key, value) {
    this[kState].headers.push(String(key), String(value))
    return this
  }

  write (chunk) {
    const s = this[kState]
    s.body = s.body ? Buffer.concat([s.body, toBuffer(chunk)]) : Buffer.from(toBuffer(chunk))
    return true
  }

  end (body, closeConnection) {
    const s = this[kState]
    if (s.done || s.aborted) return this
    s.done = true
    let out = toBuffer(body)
    if (s.body) out = Buffer.concat([s.body, out])
    this[kApp]._respond(this[kId], s.status, s.headers, out)
    return this
  }

  tryEnd (body, totalSize) {
    this.end(body)
    return [true, true]
  }

  endWithoutBody () {
    return this.end()
  }

  /** Accepts a WebSocket upgrade; `userData` becomes `ws.getUserData()`. */
  upgrade (userData, secWebSocketKey, secWebSocketProtocol, secWebSocketExtensions, context) {
    const s = this[kState]
    if (s.done || s.aborted) return
    s.done = true
    this[kApp]._acceptUpgrade(this[kId], userData, secWebSocketProtocol)
  }

  onAborted (handler) {
    this[kState].onAborted = handler
    return this
  }

  onData (handler) {
    // Request bodies are not streamed yet: report an empty, final chunk.
    queueMicrotask(() => safeCall(handler, undefined, new ArrayBuffer(0), true))
    return this
  }

  onWritable () {
    return this
  }

  cork (cb) {
    cb()
    return this
  }

  close () {
    if (!this[kState].done) this.writeStatus('400 Bad Request').end()
    return this
  }

  getRemoteAddressAsText () {
    return textArrayBuffer(this[kState].remote)
  }

  get aborted () {
    return this[kState].aborted
  }
}

module.exports = { HttpResponse }
