'use strict'
const { kState } = require('./symbols')

/**
 * The request seen by `upgrade` and HTTP route handlers (uWS.js HttpRequest).
 * Unlike uWS.js it stays valid after the handler returns.
 */
class HttpRequest {
  constructor (req) {
    this[kState] = req
  }

  getHeader (lowerCaseKey) {
    const key = String(lowerCaseKey).toLowerCase()
    for (const [k, v] of this[kState].headers) if (k === key) return v
    return ''
  }

  forEach (cb) {
    for (const [k, v] of this[kState].headers) cb(k, v)
  }

  getMethod () {
    return this[kState].method
  }

  getCaseSensitiveMethod () {
    return this[kState].method.toUpperCase()
  }

  getUrl () {
    return this[kState].url
  }

  getQuery (key) {
    const q = this[kState].query
    if (key === undefined) return q
    return new URLSearchParams(q).get(key) ?? undefined
  }

  getParameter () {
    // Route parameters are not captured yet; :param patterns still match.
    return undefined
  }

  setYield () {
    return this
  }
}

module.exports = { HttpRequest }
