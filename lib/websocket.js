'use strict'
const { kApp, kNative, kId, kUserData, kBehavior } = require('./symbols')
const { toBuffer, toText, textArrayBuffer } = require('./util')

const CLOSED_MESSAGE = 'Invalid access of closed uWS.WebSocket/SSLWebSocket.'

/**
 * One WebSocket connection, with uWS.js's `WebSocket` methods.
 *
 * Idle sockets are the product, so instances carry two fields: the id
 * (-1 once closed) and the user data (created on first use). The app and the
 * route's behavior live on a per-route subclass prototype (App.ws).
 */
class WebSocket {
  constructor (id, userData) {
    this[kId] = id
    this[kUserData] = userData
  }

  /** 1 sent, 0 queued behind backpressure (drain follows), 2 dropped. */
  send (message, isBinary = false, compress = false) {
    const id = this[kId]
    if (id < 0) throw new Error(CLOSED_MESSAGE)
    const app = this[kApp]
    // Strings, ArrayBuffers and views go as they are; -2: another kind.
    let r = app._send(id, message, !!isBinary, !!compress)
    if (r === -2) r = app._send(id, toBuffer(message), !!isBinary, !!compress)
    if (r === 2) app._dropped(this, message, isBinary)
    // -1: closed in Rust, close event not yet delivered: nothing was sent.
    return r < 0 ? 2 : r
  }

  /** Without a code the close frame carries no status (the peer sees 1005). */
  end (code, shortMessage) {
    const id = live(this)
    const c = code === undefined ? 0 : Number(code)
    const reason = toBuffer(shortMessage)
    this[kApp][kNative].end(id, c, reason)
    const ab = c === 0 ? new ArrayBuffer(0) : reason.buffer.slice(reason.byteOffset, reason.byteOffset + reason.byteLength)
    this[kApp]._closed(this, c === 0 ? 1005 : c, ab)
  }

  close () {
    const id = live(this)
    this[kApp][kNative].terminate(id)
    this[kApp]._closed(this, 1006, new ArrayBuffer(0))
  }

  ping (message) {
    return this[kApp][kNative].ping(live(this), toBuffer(message)) ? 1 : 2
  }

  cork (cb) {
    const native = this[kApp][kNative]
    const id = live(this)
    native.cork(id, true)
    try {
      cb()
    } finally {
      if (this[kId] >= 0) native.cork(id, false)
    }
    return this
  }

  getBufferedAmount () {
    return Math.max(0, this[kApp][kNative].bufferedAmount(live(this)))
  }

  /** Still works after close (and inside the close handler), as in uWS.js. */
  getUserData () {
    let ud = this[kUserData]
    if (ud === undefined) {
      ud = {}
      this[kUserData] = ud
    }
    return ud
  }

  getRemoteAddressAsText () {
    return textArrayBuffer(this[kApp][kNative].remoteAddress(live(this)) || '')
  }

  getRemoteAddress () {
    return ipBytes(this[kApp][kNative].remoteAddress(live(this)) || '')
  }

  subscribe (topic) {
    return this[kApp][kNative].subscribe(live(this), toText(topic))
  }

  unsubscribe (topic) {
    return this[kApp][kNative].unsubscribe(live(this), toText(topic))
  }

  isSubscribed (topic) {
    return this[kApp][kNative].isSubscribed(live(this), toText(topic))
  }

  getTopics () {
    return this[kApp][kNative].topics(live(this))
  }

  /** Publishes to every subscriber of `topic` except this socket. */
  publish (topic, message, isBinary = false, compress = false) {
    const id = live(this)
    return this[kApp]._publish(toText(topic), message, isBinary, id, compress)
  }
}


function live (ws) {
  const id = ws[kId]
  if (id < 0) throw new Error(CLOSED_MESSAGE)
  return id
}

/** A WebSocket class for one route: app and behavior on the prototype. */
function routeClass (app, behavior) {
  class RouteWebSocket extends WebSocket {}
  RouteWebSocket.prototype[kApp] = app
  RouteWebSocket.prototype[kBehavior] = behavior
  return RouteWebSocket
}

/** IPv4 as 4 bytes, IPv6 as 16 (as uWS.js getRemoteAddress). */
function ipBytes (text) {
  if (text.includes('.')) return new Uint8Array(text.split('.').map(Number)).buffer
  const out = new Uint8Array(16)
  text.split(':').forEach((g, i) => {
    const v = parseInt(g, 16)
    out[i * 2] = v >> 8
    out[i * 2 + 1] = v & 0xff
  })
  return text ? out.buffer : new ArrayBuffer(0)
}

module.exports = { WebSocket, routeClass }
