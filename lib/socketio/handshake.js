'use strict'
const { headersFromLines } = require('../util')

/**
 * `socket.handshake`. What the client sent to open its session (URL,
 * headers, address) stays in Rust until user code reads it: most apps never
 * do, and a materialised headers object costs ~1 KB of JS heap per client.
 * Read once per client, then cached on the client.
 */
class Handshake {
  /** `client`: whose record (client.js) this reads. */
  constructor (client, auth) {
    this._client = client
    this.auth = auth || {}
  }

  _raw () {
    return this._client.handshakeRecord()
  }

  get headers () { return this._raw().headers }
  get time () { return new Date(this._raw().issued).toString() }
  get address () { return this._raw().address }
  get xdomain () { return this._raw().headers.origin !== undefined }
  get secure () { return this._raw().secure }
  get issued () { return this._raw().issued }
  get url () { return this._raw().url }
  get query () { return this._raw().query }

  toJSON () {
    const { headers, time, address, xdomain, secure, issued, url, query, auth } = this
    return { headers, time, address, xdomain, secure, issued, url, query, auth }
  }
}

/** The record Rust returns: [url, issued ms, secure, transport, headers text, address, sid]. */
function parseHandshake ([url, issued, secure, , headerText, address, sid]) {
  const headers = headersFromLines(headerText)
  const q = url.indexOf('?')
  const query = Object.fromEntries(new URLSearchParams(q < 0 ? '' : url.slice(q + 1)))
  return { url, issued: Number(issued), secure: secure === '1', headers, query, address, sid }
}

module.exports = { Handshake, parseHandshake }
