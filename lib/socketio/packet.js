'use strict'
// Socket.IO v5 packet text, encoded once in JS (the payload is JSON the user
// gave us); Rust adds the Engine.IO framing and fans it out. Binary values
// anywhere in the arguments travel as attachments behind placeholders.

const TYPE = Object.freeze({ CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 })

const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'])

/** `<type>[<attachments>-][<nsp>,][<id>]<json>`; the namespace is omitted for `/`. */
function encode (type, nsp, id, json, attachments = 0) {
  const att = attachments > 0 ? `${attachments}-` : ''
  return `${type}${att}${nsp === '/' ? '' : nsp + ','}${id === undefined ? '' : id}${json}`
}

const isBinary = (v) => Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)

function toBuffer (v) {
  if (Buffer.isBuffer(v)) return v
  if (v instanceof ArrayBuffer) return Buffer.from(v)
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

/**
 * Replaces every binary value in `data` by `{_placeholder: true, num}` and
 * collects the buffers (socket.io-parser's deconstructPacket). Objects with
 * toJSON (Date…) are left for JSON.stringify.
 */
function deconstruct (data, buffers, depth = 0) {
  if (isBinary(data)) {
    buffers.push(toBuffer(data))
    return { _placeholder: true, num: buffers.length - 1 }
  }
  if (data === null || typeof data !== 'object' || depth > 64) return data
  if (Array.isArray(data)) return data.map((v) => deconstruct(v, buffers, depth + 1))
  if (typeof data.toJSON === 'function') return data
  const out = {}
  for (const k of Object.keys(data)) out[k] = deconstruct(data[k], buffers, depth + 1)
  return out
}

const isPlaceholder = (v) => v !== null && typeof v === 'object' && v._placeholder === true && typeof v.num === 'number'

/**
 * Puts attachments back where their placeholders are (validated in Rust).
 * Iterative: a client controls the nesting depth, and JSON.parse accepts
 * depths that would overflow a recursive walk.
 */
function reconstruct (data, attachments) {
  if (isPlaceholder(data)) return attachments[data.num]
  const stack = [data]
  while (stack.length) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object') continue
    const keys = Array.isArray(node) ? node.keys() : Object.keys(node)
    for (const k of keys) {
      const v = node[k]
      if (isPlaceholder(v)) node[k] = attachments[v.num]
      else if (v !== null && typeof v === 'object') stack.push(v)
    }
  }
  return data
}

/**
 * Encodes `[head..., ...args]` as an EVENT/ACK (`type` 2 or 3), switching to
 * BINARY_EVENT/BINARY_ACK when binary values are present. Returns the packet
 * text and the attachments.
 */
function dataPacket (type, nsp, id, values) {
  const buffers = []
  const json = JSON.stringify(deconstruct(values, buffers))
  if (buffers.length === 0) return { text: encode(type, nsp, id, json), attachments: buffers }
  const binaryType = type === TYPE.EVENT ? TYPE.BINARY_EVENT : TYPE.BINARY_ACK
  return { text: encode(binaryType, nsp, id, json, buffers.length), attachments: buffers }
}

module.exports = { TYPE, RESERVED, dataPacket, deconstruct, reconstruct }
