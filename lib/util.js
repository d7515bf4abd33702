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
 * Runs a user handler: every user callback of every API goes through here
 * (or emitSafe). A throw, or a rejection of the promise it returns, is
 * reported once as a process warning with code FERROSOCKET_HANDLER_ERROR and
 * never reaches the event bridge; the server and the connection carry on.
 * `onError(err)`, if given, runs after the report (e.g. answer 500, refuse
 * the connection). Returns nothing: a caller handing the promise to another
 * safeCall would report its rejection twice.
 */
function safeApply (fn, thisArg, args, onError) {
  if (typeof fn !== 'function') return
  const failed = (err) => {
    reportHandlerError(err)
    if (onError) onError(err)
  }
  try {
    const r = Reflect.apply(fn, thisArg, args)
    if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
      r.then(undefined, failed)
    }
  } catch (err) {
    failed(err)
  }
}

/** `fn` for its first call only: a user calling back twice gets one outcome. */
function once (fn) {
  let called = false
  return (...args) => {
    if (called) return
    called = true
    fn(...args)
  }
}

function safeCall (fn, thisArg, ...args) {
  safeApply(fn, thisArg, args)
}

/**
 * EventEmitter#emit for user listeners: the one place Socket.IO, Engine.IO
 * and `io.engine` events reach user code. Node's emit drops a listener's
 * returned promise, and a sync throw there skips the later listeners and
 * unwinds into our caller. `captureRejections` would catch the rejection
 * only, a tick later, through `Symbol.for('nodejs.rejection')` or an 'error'
 * event, and only on emitters constructed with it. So each listener runs
 * through safeApply, as emit would call it (in order, on a copy of the list,
 * `once` wrappers included, `this` = the emitter). Unlike emit, an 'error'
 * event without listeners does not throw. Returns whether there were any.
 */
function emitSafe (emitter, event, ...args) {
  const listeners = emitter.rawListeners(event)
  for (let i = 0; i < listeners.length; i++) safeApply(listeners[i], emitter, args)
  return listeners.length > 0
}

/**
 * Headers as Rust hands them over (`name: value` lines, names lowercase,
 * repeats in order) as Node's `req.headers` reads: repeated values joined
 * with ", " (set-cookie aside, never sent by clients).
 */
function headersFromLines (text) {
  const headers = {}
  for (const line of text.split('\n')) {
    if (!line) continue
    const i = line.indexOf(': ')
    const k = line.slice(0, i)
    const v = line.slice(i + 2)
    headers[k] = headers[k] === undefined ? v : headers[k] + ', ' + v
  }
  return headers
}

function reportHandlerError (err) {
  const warning = new Error(`handler threw: ${err && err.stack ? err.stack : err}`)
  warning.name = 'FerrosocketHandlerError'
  warning.code = 'FERROSOCKET_HANDLER_ERROR'
  warning.cause = err
  process.emitWarning(warning)
}

module.exports = { toBuffer, toText, textArrayBuffer, once, safeApply, safeCall, emitSafe, reportHandlerError, headersFromLines }
