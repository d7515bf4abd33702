'use strict'
const { kApp, kId, kUserData, kClosed, kNative } = require('./symbols')
const { toBuffer, toText, textArrayBuffer } = require('./util')

const CLOSED_MESSAGE = 'Invalid access of closed uWS.WebSocket/SSLWebSocket.'

/** One WebSocket connection, with uWS.js's `WebSocket` methods. */
class WebSocket {
  constructor (app, id, userData) {
    this[kApp] = app
    this[kId] = id
    this[kUserData] = userData
    this[kClosed] = false
  }

  #native () {
    if (this[kClosed]) throw new Error(CLOSED_MESSAGE)
    return this[kApp][kNative]
  }

  /** 1 sent, 0 queued behind backpressure (drain follows), 2 dropped. */
  send (message, isBinary = false, compress = false) {
    const native = this.#native()
    const r = typeof message === 'string'
      ? native.sendText(this[kId], message, !!isBinary)
      : native.send(this[kId], toBuffer(message), !!isBinary)
    if (r === 2) this[kApp]._dropped(this, message, isBinary)
    // -1: closed in Rust, close event not yet delivered: nothing was sent.
    return r < 0 ? 2 : r
  }

  /** Without a code the close frame carries no status (the peer sees 1005). */
  end (code, shortMessage) {
    const native = this.#native()
    const c = code === undefined ? 0 : Number(code)
    const reason = toBuffer(shortMessage)
    native.end(this[kId], c, reason)
    const ab = c === 0 ? new ArrayBuffer(0) : reason.buffer.slice(reason.byteOffset, reason.byteOffset + reason.byteLength)
    this[kApp]._closed(this, c === 0 ? 1005 : c, ab)
  }

  close () {
    const native = this.#native()
    native.terminate(this[kId])
    this[kApp]._closed(this, 1006, new ArrayBuffer(0))
  }

  ping (message) {
    return this.#native().ping(this[kId], toBuffer(message)) ? 1 : 2
  }

  cork (cb) {
    const native = this.#native()
    native.cork(this[kId], true)
    try {
      cb()
    } finally {
      if (!this[kClosed]) native.cork(this[kId], false)
    }
    return this
  }

  getBufferedAmount () {
    return Math.max(0, this.#native().bufferedAmount(this[kId]))
  }

  /** Still works after close (and inside the close handler), as in uWS.js. */
  getUserData () {
    return this[kUserData]
  }

  getRemoteAddressAsText () {
    return textArrayBuffer(this.#native().remoteAddress(this[kId]) || '')
  }

  getRemoteAddress () {
    const text = this.#native().remoteAddress(this[kId]) || ''
    return ipBytes(text)
  }

  subscribe (topic) {
    return this.#native().subscribe(this[kId], toText(topic))
  }

  unsubscribe (topic) {
    return this.#native().unsubscribe(this[kId], toText(topic))
  }

  isSubscribed (topic) {
    return this.#native().isSubscribed(this[kId], toText(topic))
  }

  getTopics () {
    return this.#native().topics(this[kId])
  }

  /** Publishes to every subscriber of `topic` except this socket. */
  publish (topic, message, isBinary = false, compress = false) {
    this.#native()
    return this[kApp]._publish(toText(topic), message, isBinary, this[kId])
  }
}

/** IPv4 as 4 bytes, IPv6 as 16 (as uWS.js getRemoteAddress). */
function ipBytes (text) {
  const net = require('node:net')
  if (net.isIPv4(text)) return new Uint8Array(text.split('.').map(Number)).buffer
  if (!net.isIPv6(text)) return new ArrayBuffer(0)
  const [head, tail = ''] = text.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = text.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    const v = parseInt(g, 16)
    out[i * 2] = v >> 8
    out[i * 2 + 1] = v & 0xff
  })
  return out.buffer
}

module.exports = { WebSocket }
