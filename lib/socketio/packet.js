'use strict'
// Socket.IO v5 packet text, encoded once in JS (the payload is JSON the user
// gave us); Rust adds the Engine.IO framing and fans it out.

const TYPE = Object.freeze({ CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 })

const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'])

/** `<type>[<nsp>,][<id>]<json>`; the namespace is omitted for `/`. */
function encode (type, nsp, id, json) {
  return `${type}${nsp === '/' ? '' : nsp + ','}${id === undefined ? '' : id}${json}`
}

function hasBinary (value, depth = 0) {
  if (depth > 64 || value === null || typeof value !== 'object') return false
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return true
  if (typeof value.toJSON === 'function' && !Array.isArray(value)) return false
  for (const k of Object.keys(value)) if (hasBinary(value[k], depth + 1)) return true
  return false
}

/** The EVENT packet text for `emit(event, ...args)`. */
function eventPacket (nsp, id, event, args) {
  if (args.some((a) => hasBinary(a))) {
    const err = new Error('binary arguments are not supported yet')
    err.code = 'FERROSOCKET_UNSUPPORTED'
    throw err
  }
  return encode(TYPE.EVENT, nsp, id, JSON.stringify([event, ...args]))
}

module.exports = { TYPE, RESERVED, encode, eventPacket }
