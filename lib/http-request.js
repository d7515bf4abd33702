'use strict'
const { kState } = require('./symbols')

/**
 * The request seen by `upgrade` and HTTP route handlers (uWS.js HttpRequest).
 * Unlike uWS.js it stays valid after the handler returns (`setYield` is
 * accepted and does nothing: the most specific route always answers).
 */
class HttpRequest {
  constructor (req, paramNames) {
    this[kState] = req
    req.names = paramNames
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

  /**
   * The value under the route's `:param` at `index`, or named `index` (as
   * sent, not decoded); '' when there is none (uWS.js).
   */
  getParameter (index) {
    const { params, names } = this[kState]
    if (typeof index === 'string') {
      const i = names ? names.indexOf(index.startsWith(':') ? index.slice(1) : index) : -1
      return i < 0 ? '' : params[i]
    }
    return params[Number(index)] ?? ''
  }

  setYield () {
    return this
  }
}

module.exports = { HttpRequest }
