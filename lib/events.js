'use strict'
const { reportHandlerError } = require('./util')
// Decoder for the event batches src/napi/events.rs encodes. One call per
// batch: the layout is documented there; keep the two files in step.

const OPEN = 1
const MESSAGE = 2
const CLOSE = 3
const DRAIN = 4
const PING = 5
const PONG = 6
const REQUEST = 7
const ABORTED = 8
const SIO_CONNECT = 9
const SIO_PACKET = 10
const SIO_DISCONNECT = 11
const SIO_CLOSE = 12
const POLL_READY = 13
const EIO_OPEN = 14
const EIO_MESSAGE = 15
const EIO_CLOSE = 16
const HANDOFF = 17
const UPGRADE = 18
const SIO_DECODE_ERROR = 19
const REFUSED = 20
const REDIS_MESSAGE = 21
const REDIS_STATE = 22
const REDIS_REPLY = 23
const HTTP_DATA = 24
const HTTP_WRITABLE = 25

/**
 * A fresh ArrayBuffer with a copy of `len` bytes of `buf` at `off`.
 * ArrayBuffer.prototype.slice goes through the species-constructor lookup in
 * C++ (~1.5 us for 40 bytes here, the largest JS cost of the echo path); a
 * small typed array filled byte by byte and then asked for its buffer costs
 * about half that, and for longer messages a plain construct-and-set wins.
 */
function copyOut (buf, off, len) {
  if (len <= 64) {
    const u8 = new Uint8Array(len)
    for (let i = 0; i < len; i++) u8[i] = buf[off + i]
    return u8.buffer
  }
  const ab = new ArrayBuffer(len)
  new Uint8Array(ab).set(buf.subarray(off, off + len))
  return ab
}

/**
 * Walks one batch (`buf` up to `end`) and calls the sink's methods:
 * open(id, route), message(id, ab, isBinary), close(id, code, ab),
 * drain(id), ping(id, ab), pong(id, ab), request(id, kind, route, req), aborted(id),
 * httpData(id, ab, isLast) (a piece of a request body), httpWritable(id),
 * and for Socket.IO: sioConnect(key, nsp, auth, remote, socketId, pid), sioPacket(key, type, nsp,
 * ackId, data, attachments), sioDisconnect(key, nsp), sioClose(key, reason),
 * pollReady(reqId), upgrade(key) (a session moved to its WebSocket),
 * sioDecodeError(key, message), refused(code, message, context, method,
 * url, headers) (an upgrade the Rust listener refused), redisMessage(channel, json,
 * attachments), redisState(state, error), redisReply(req, ok, value) (the
 * Redis link), and for raw Engine.IO: eioOpen(key, sid,
 * address), eioMessage(key, data), eioClose(key, reason).
 */
function dispatch (buf, sink, end = buf.length) {
  let o = 0
  const str = () => {
    const len = buf.readUInt32LE(o)
    const s = buf.toString('latin1', o + 4, o + 4 + len)
    o += 4 + len
    return s
  }
  const utf8 = () => {
    const len = buf.readUInt32LE(o)
    const s = buf.toString('utf8', o + 4, o + 4 + len)
    o += 4 + len
    return s
  }
  // A count, then that many length-prefixed binaries (copied out).
  const buffers = () => {
    const count = buf.readUInt32LE(o)
    o += 4
    const out = new Array(count)
    for (let i = 0; i < count; i++) {
      const len = buf.readUInt32LE(o)
      out[i] = Buffer.from(copyOut(buf, o + 4, len))
      o += 4 + len
    }
    return out
  }
  while (o < end) {
    const kind = buf[o]
    const id = buf.readUInt32LE(o + 1) + buf.readUInt32LE(o + 5) * 0x100000000
    o += 9
    // Each event is read whole before its sink call, and a throw there is
    // reported and never costs the rest of the batch (other clients' events).
    try {
      o = one(kind, id)
    } catch (err) {
      if (err && err.ferrosocketDecoder) throw err
      reportHandlerError(err)
    }
  }

  function one (kind, id) {
    switch (kind) {
      case OPEN: {
        const route = buf.readUInt16LE(o)
        o += 2
        sink.open(id, route)
        break
      }
      // A message (binary flag), or a piece of an HTTP body (last flag).
      case MESSAGE:
      case HTTP_DATA: {
        const flag = buf[o] === 1
        const len = buf.readUInt32LE(o + 1)
        const ab = copyOut(buf, o + 5, len)
        o += 5 + len
        if (kind === MESSAGE) sink.message(id, ab, flag)
        else sink.httpData(id, ab, flag)
        break
      }
      case CLOSE: {
        const code = buf.readUInt16LE(o)
        const len = buf.readUInt32LE(o + 2)
        const ab = copyOut(buf, o + 6, len)
        o += 6 + len
        sink.close(id, code, ab)
        break
      }
      case DRAIN:
        sink.drain(id)
        break
      case PING:
      case PONG: {
        const len = buf.readUInt32LE(o)
        o += 4
        const ab = copyOut(buf, o, len)
        o += len
        if (kind === PING) sink.ping(id, ab)
        else sink.pong(id, ab)
        break
      }
      case REQUEST: {
        const reqKind = buf[o] === 0 ? 'upgrade' : 'http'
        const route = buf.readUInt16LE(o + 1)
        o += 3
        const method = str()
        const url = utf8()
        const query = utf8()
        const count = buf.readUInt32LE(o)
        o += 4
        const headers = new Array(count)
        for (let i = 0; i < count; i++) headers[i] = [str(), utf8()]
        const remote = str()
        const n = buf.readUInt32LE(o)
        o += 4
        const params = new Array(n)
        for (let i = 0; i < n; i++) params[i] = utf8()
        sink.request(id, reqKind, route, { method, url, query, headers, remote, params })
        break
      }
      case HTTP_WRITABLE:
        sink.httpWritable(id)
        break
      case ABORTED:
        sink.aborted(id)
        break
      case SIO_CONNECT: {
        const nsp = utf8()
        const auth = utf8()
        const remote = str()
        const socketId = str()
        sink.sioConnect(id, nsp, auth, remote, socketId, str())
        break
      }
      case SIO_PACKET: {
        const type = buf[o] - 48 // the ASCII digit of the Socket.IO packet type
        o += 1
        const nsp = utf8()
        const ackId = buf.readDoubleLE(o)
        o += 8
        const data = utf8()
        const attachments = buffers()
        sink.sioPacket(id, type, nsp, ackId < 0 ? undefined : ackId, data, attachments)
        break
      }
      case SIO_DISCONNECT:
        sink.sioDisconnect(id, utf8())
        break
      case SIO_CLOSE:
        sink.sioClose(id, str())
        break
      case POLL_READY:
        sink.pollReady(id)
        break
      case EIO_OPEN: {
        const sid = str()
        sink.eioOpen(id, sid, str())
        break
      }
      case EIO_MESSAGE: {
        const binary = buf[o] === 1
        const len = buf.readUInt32LE(o + 1)
        o += 5
        const data = binary ? Buffer.from(copyOut(buf, o, len)) : buf.toString('utf8', o, o + len)
        o += len
        sink.eioMessage(id, data)
        break
      }
      case EIO_CLOSE:
        sink.eioClose(id, str())
        break
      case HANDOFF: {
        // The ms left for the request head to arrive (slow-loris).
        const within = buf.readUInt32LE(o)
        o += 4
        sink.handoff(id, within)
        break
      }
      case UPGRADE:
        sink.upgrade(id)
        break
      case SIO_DECODE_ERROR:
        sink.sioDecodeError(id, str())
        break
      case REFUSED: {
        // id: the Engine.IO error code.
        const message = str()
        const context = utf8()
        const method = str()
        const url = utf8()
        sink.refused(id, message, context, method, url, utf8())
        break
      }
      case REDIS_MESSAGE: {
        const channel = utf8()
        const json = utf8()
        const attachments = buffers()
        sink.redisMessage(channel, json, attachments)
        break
      }
      case REDIS_STATE:
        // id: 0 connecting, 1 connected, 2 disconnected.
        sink.redisState(id, utf8())
        break
      case REDIS_REPLY: {
        const ok = buf[o] === 1
        o += 1
        sink.redisReply(id, ok, utf8())
        break
      }
      default: {
        // A decoder out of step with the encoder is a ferrosocket bug; stop
        // rather than misread the rest of the batch.
        const err = new Error(`ferrosocket: unknown event kind ${kind} at offset ${o - 9}`)
        err.ferrosocketDecoder = true
        throw err
      }
    }
    return o
  }
}

module.exports = { dispatch }
