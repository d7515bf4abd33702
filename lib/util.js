'use strict'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A Buffer view of any uWS.js "RecognizedString" without copying. */
function toBuffer (data) {
  if (Buffer.isBuffer(data)) return data
  if (typeof data === 'string') return Buffer.from(data)
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return Buffer.from(data)
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (data === undefined || data === null) return Buffer.alloc(0)
  return Buffer.from(String(data))
}

/** Topic names and header values may be given as strings or bytes. */
function toText (data) {
  if (typeof data === 'string') return data
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return decoder.decode(data)
  return String(data)
}

/** A fresh ArrayBuffer holding `text` (uWS.js returns text as ArrayBuffer). */
function textArrayBuffer (text) {
  const u8 = encoder.encode(text)
  return u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength)
}

/**
 * Runs a user handler; a throw never reaches the event bridge. The error is
 * reported as a process warning with code FERROSOCKET_HANDLER_ERROR (the
 * server and the connection carry on, as with uWS.js).
 */
function safeCall (fn, thisArg, ...args) {
  if (typeof fn !== 'function') return undefined
  try {
    const r = fn.apply(thisArg, args)
    if (r && typeof r.then === 'function') r.then(undefined, reportHandlerError)
    return r
  } catch (err) {
    reportHandlerError(err)
    return undefined
  }
}

function reportHandlerError (err) {
  const warning = new Error(`handler threw: ${err && err.stack ? err.stack : err}`)
  warning.name = 'FerrosocketHandlerError'
  warning.code = 'FERROSOCKET_HANDLER_ERROR'
  warning.cause = err
  process.emitWarning(warning)
}

/**
 * Native handles do not keep Node running; a ref'd idle interval does while
 * `busy`. Pass the current interval (or null); returns the one to keep.
 */
function keepAlive (interval, busy) {
  if (busy) return interval || setInterval(() => {}, 0x7fffffff)
  if (interval) clearInterval(interval)
  return null
}

module.exports = { toBuffer, toText, textArrayBuffer, safeCall, reportHandlerError, keepAlive }
