// A tiny raw WebSocket client over net.Socket, written for these specs.
// It lets a test send exactly the bytes it wants (unmasked frames, reserved
// bits, bad UTF-8, fragments, frames glued to the handshake) and see exactly
// what the server answers, including whether a close frame came at all.
import net from 'node:net'
import crypto from 'node:crypto'

export const OP = Object.freeze({ CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa })

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export function acceptFor (key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64')
}

export function newKey () {
  return crypto.randomBytes(16).toString('base64')
}

// Encodes one frame. `payload` is a Buffer or string. Options:
//   fin (default true), rsv (3-bit number, default 0), mask (default true),
//   maskKey (4-byte Buffer), declaredLength (write this length in the header
//   instead of payload.length, for lying-length tests).
export function encodeFrame (opcode, payload = Buffer.alloc(0), opts = {}) {
  const { fin = true, rsv = 0, mask = true } = opts
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
  const length = opts.declaredLength ?? data.length
  const head = [((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf))]
  const maskBit = mask ? 0x80 : 0
  let ext
  if (typeof length === 'bigint' || length > 0xffff) {
    head.push(maskBit | 127)
    ext = Buffer.alloc(8)
    ext.writeBigUInt64BE(BigInt(length))
  } else if (length > 125) {
    head.push(maskBit | 126)
    ext = Buffer.alloc(2)
    ext.writeUInt16BE(length)
  } else {
    head.push(maskBit | length)
    ext = Buffer.alloc(0)
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, data])
  const key = opts.maskKey ?? crypto.randomBytes(4)
  const masked = Buffer.alloc(data.length)
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3]
  return Buffer.concat([Buffer.from(head), ext, key, masked])
}

// Decodes one frame from the start of `buf`; null when more bytes are needed.
export function decodeFrame (buf) {
  if (buf.length < 2) return null
  const b0 = buf[0]
  const b1 = buf[1]
  let length = b1 & 0x7f
  let offset = 2
  if (length === 126) {
    if (buf.length < 4) return null
    length = buf.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    if (buf.length < 10) return null
    length = Number(buf.readBigUInt64BE(2))
    offset = 10
  }
  const masked = (b1 & 0x80) !== 0
  let key = null
  if (masked) {
    if (buf.length < offset + 4) return null
    key = buf.subarray(offset, offset + 4)
    offset += 4
  }
  if (buf.length < offset + length) return null
  let payload = Buffer.from(buf.subarray(offset, offset + length))
  if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]
  const frame = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload, headerLength: offset }
  if (frame.opcode === OP.CLOSE) {
    frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : null
    frame.reason = payload.length > 2 ? payload.subarray(2).toString() : ''
  }
  return { frame, size: offset + length }
}

// Total size of the frame starting at buf[0] once its header is complete,
// else 0 (unknown yet).
function frameSize (buf) {
  if (buf.length < 2) return 0
  let length = buf[1] & 0x7f
  let offset = 2
  if (length === 126) {
    if (buf.length < 4) return 0
    length = buf.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    if (buf.length < 10) return 0
    length = Number(buf.readBigUInt64BE(2))
    offset = 10
  }
  return offset + (buf[1] & 0x80 ? 4 : 0) + length
}

// Builds an HTTP/1.1 upgrade request. `headers` entries override the
// defaults; a value of null removes that header.
export function upgradeRequest ({ path = '/', host = '127.0.0.1', key = newKey(), headers = {} } = {}) {
  const all = {
    Host: host,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...headers
  }
  let text = `GET ${path} HTTP/1.1\r\n`
  for (const [name, value] of Object.entries(all)) {
    if (value !== null && value !== undefined) text += `${name}: ${value}\r\n`
  }
  return text + '\r\n'
}

function parseHead (text) {
  const lines = text.split('\r\n')
  const statusLine = lines.shift()
  const status = Number(statusLine.split(' ')[1])
  const headers = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { statusLine, status, headers }
}

export class RawClient {
  constructor (socket, initial = Buffer.alloc(0)) {
    this.socket = socket
    this.buffer = initial
    this.pending = [] // chunks not yet merged into this.buffer
    this.pendingLength = 0
    this.need = 0 // bytes the next frame needs, once its header is known
    this.frames = []
    this.waiters = []
    this.ended = false
    this.closed = new Promise((resolve) => socket.once('close', resolve))
    socket.on('data', (chunk) => {
      // Merging every chunk into one Buffer would copy an 8 MiB frame
      // hundreds of times; hold chunks until the next frame is complete.
      this.pending.push(chunk)
      this.pendingLength += chunk.length
      if (this.buffer.length + this.pendingLength < this.need) return
      this.buffer = Buffer.concat([this.buffer, ...this.pending])
      this.pending = []
      this.pendingLength = 0
      this._parse()
    })
    socket.on('close', () => {
      this.ended = true
      this._wake()
    })
    socket.on('error', () => {})
    this._parse()
  }

  _parse () {
    for (;;) {
      const decoded = decodeFrame(this.buffer)
      if (!decoded) break
      this.buffer = this.buffer.subarray(decoded.size)
      this.frames.push(decoded.frame)
    }
    this.need = frameSize(this.buffer)
    this._wake()
  }

  _wake () {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  // Next frame from the server; null when the connection ended first.
  // Rejects after `timeout` ms.
  nextFrame (timeout = 3000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check)
        reject(new Error(`no frame from server within ${timeout} ms`))
      }, timeout)
      const check = () => {
        if (this.frames.length) {
          clearTimeout(timer)
          resolve(this.frames.shift())
        } else if (this.ended) {
          clearTimeout(timer)
          resolve(null)
        } else {
          this.waiters.push(check)
        }
      }
      check()
    })
  }

  // Next frame that is not a ping/pong (pings from auto-ping are skipped;
  // a ping is answered with a pong so the connection stays healthy).
  async nextDataFrame (timeout = 3000) {
    const deadline = Date.now() + timeout
    for (;;) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()))
      if (frame && frame.opcode === OP.PING) {
        if (!this.ended) this.send(OP.PONG, frame.payload)
        continue
      }
      if (frame && frame.opcode === OP.PONG) continue
      return frame
    }
  }

  // Reads until the TCP connection ends. Resolves with
  // { closeFrame, code, frames } where code is the close frame's status code
  // or null when the server dropped TCP without sending a close frame.
  async untilClosed (timeout = 3000) {
    const frames = []
    const deadline = Date.now() + timeout
    for (;;) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()))
      if (frame === null) break
      frames.push(frame)
      if (frame.opcode === OP.CLOSE) {
        // Answer like a well-behaved client, then wait for TCP to end.
        if (!this.socket.destroyed) {
          this.socket.write(encodeFrame(OP.CLOSE, frame.payload.subarray(0, 2)), () => {})
        }
      }
    }
    const closeFrame = frames.find((f) => f.opcode === OP.CLOSE) ?? null
    return { frames, closeFrame, code: closeFrame ? closeFrame.code : null }
  }

  send (opcode, payload, opts) {
    this.socket.write(encodeFrame(opcode, payload, opts))
  }

  sendText (text, opts) { this.send(OP.TEXT, Buffer.from(text), opts) }
  sendBinary (data, opts) { this.send(OP.BINARY, data, opts) }
  writeRaw (bytes) { this.socket.write(bytes) }

  // Sends a close frame with `code` and waits for the server to finish.
  async close (code = 1000) {
    const body = Buffer.alloc(2)
    body.writeUInt16BE(code)
    if (!this.socket.destroyed) this.send(OP.CLOSE, body)
    return this.untilClosed()
  }

  destroy () { this.socket.destroy() }
}

// Opens a TCP connection, writes `request` (string or Buffer) plus optional
// `after` bytes in the same write, and reads the HTTP response head.
// Resolves { status, statusLine, headers, client, rest } where client is a
// RawClient reading whatever follows the head (frames, after a 101).
// If the server closes before a full head arrives, status is 0 and
// `raw` holds whatever was received.
export function rawRequest (port, request, { host = '127.0.0.1', after, timeout = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    socket.setNoDelay(true)
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => {
      cleanup()
      socket.destroy()
      reject(new Error(`no HTTP response head within ${timeout} ms`))
    }, timeout)
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      cleanup()
      const head = parseHead(buf.subarray(0, end).toString('latin1'))
      const rest = buf.subarray(end + 4)
      resolve({ ...head, rest, socket, client: new RawClient(socket, rest) })
    }
    const onClose = () => {
      cleanup()
      resolve({ status: 0, statusLine: '', headers: {}, raw: buf, socket, client: null })
    }
    const onError = () => {}
    function cleanup () {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', onError)
    socket.once('connect', () => {
      const bytes = Buffer.isBuffer(request) ? request : Buffer.from(request, 'latin1')
      socket.write(after ? Buffer.concat([bytes, after]) : bytes)
    })
  })
}

// Completes a WebSocket handshake and returns a RawClient. Rejects unless
// the server answers 101 with the right Sec-WebSocket-Accept.
export async function rawConnect (port, { path = '/', headers = {}, after, host = '127.0.0.1', timeout = 3000 } = {}) {
  const key = newKey()
  const res = await rawRequest(port, upgradeRequest({ path, key, headers }), { host, after, timeout })
  if (res.status !== 101) {
    res.socket.destroy()
    throw new Error(`expected 101, got ${res.status || 'connection closed'} ${res.statusLine}`)
  }
  if (res.headers['sec-websocket-accept'] !== acceptFor(key)) {
    res.socket.destroy()
    throw new Error(`bad Sec-WebSocket-Accept: ${res.headers['sec-websocket-accept']}`)
  }
  res.client.response = res
  return res.client
}

// Sends a plain HTTP request and reads the whole response (Content-Length
// body, or until the server closes). Resolves { status, headers, body }.
export function httpRequest (port, { method = 'GET', path = '/', headers = {}, body, host = '127.0.0.1', timeout = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    let buf = Buffer.alloc(0)
    let done = false
    const finish = (err, value) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(value)
    }
    const timer = setTimeout(() => finish(new Error(`no complete HTTP response within ${timeout} ms`)), timeout)
    const tryParse = (closed) => {
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) {
        if (closed) finish(new Error(`connection closed before a response head: ${JSON.stringify(buf.toString('latin1'))}`))
        return
      }
      const head = parseHead(buf.subarray(0, end).toString('latin1'))
      const rest = buf.subarray(end + 4)
      const length = head.headers['content-length']
      if (length !== undefined) {
        if (rest.length >= Number(length)) finish(null, { ...head, body: rest.subarray(0, Number(length)).toString() })
        else if (closed) finish(new Error('connection closed inside the body'))
      } else if (head.headers['transfer-encoding'] === 'chunked') {
        const decoded = decodeChunked(rest)
        if (decoded !== null) finish(null, { ...head, body: decoded })
        else if (closed) finish(new Error('connection closed inside a chunked body'))
      } else if (closed) {
        finish(null, { ...head, body: rest.toString() })
      }
    }
    socket.on('data', (chunk) => { buf = Buffer.concat([buf, chunk]); tryParse(false) })
    socket.on('close', () => tryParse(true))
    socket.on('error', () => {})
    socket.once('connect', () => {
      const all = { Host: host, ...headers }
      if (body !== undefined) all['Content-Length'] = Buffer.byteLength(body)
      let text = `${method} ${path} HTTP/1.1\r\n`
      for (const [k, v] of Object.entries(all)) text += `${k}: ${v}\r\n`
      socket.write(text + '\r\n' + (body ?? ''))
    })
  })
}

function decodeChunked (buf) {
  let out = ''
  let pos = 0
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos)
    if (lineEnd === -1) return null
    const size = parseInt(buf.subarray(pos, lineEnd).toString(), 16)
    if (size === 0) return out
    if (buf.length < lineEnd + 2 + size + 2) return null
    out += buf.subarray(lineEnd + 2, lineEnd + 2 + size).toString()
    pos = lineEnd + 2 + size + 2
  }
}
