// socket.io's `perMessageDeflate` (issue #15): off by default as in
// socket.io; on, packets of at least `threshold` bytes go compressed to
// clients that negotiated permessage-deflate, `compress(false)` sends one
// as it is, and broadcasts compress once for every such client. Checked
// with the real socket.io-client and with a raw Engine.IO client that sees
// the frames' RSV1 bit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import zlib from 'node:zlib'
import { createRequire } from 'node:module'
import { wsClient, connected } from './helpers/sio.mjs'
import { rawConnect } from './helpers/raw-client.mjs'
import { withTimeout } from './helpers/env.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')

const BIG = 'socket.io packs events into text frames; '.repeat(100)

function server (t, opts) {
  const io = new Server(opts)
  io.listen(0)
  t.after(() => io.close())
  return io
}

const inflate = (payload) => zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH })

// A raw Engine.IO v4 WebSocket client offering permessage-deflate, joined to
// the main namespace. Returns the RawClient.
async function rawSio (t, port) {
  const raw = await rawConnect(port, {
    path: '/socket.io/?EIO=4&transport=websocket',
    headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }
  })
  t.after(() => raw.destroy())
  const open = await raw.nextDataFrame()
  assert.equal(open.payload.toString()[0], '0')
  raw.sendText('40')
  const ack = await raw.nextDataFrame()
  assert.match(ack.payload.toString(), /^40\{"sid"/)
  return raw
}

// The next Engine.IO message frame (pings answered), inflated if compressed.
async function nextMessage (raw) {
  for (;;) {
    const f = await raw.nextDataFrame()
    const text = f.rsv === 4 ? inflate(f.payload).toString() : f.payload.toString()
    if (text === '2') { raw.sendText('3'); continue }
    return { compressed: f.rsv === 4, text, wire: f.payload.length }
  }
}

test('off by default: socket.io-client offers permessage-deflate and gets none', { timeout: 15000 }, async (t) => {
  const io = server(t)
  const c = wsClient(t, io.httpServer.address().port)
  await connected(io, c)
  assert.equal(c.io.engine.transport.ws.extensions, '')
})

test('perMessageDeflate: true: socket.io-client negotiates it and large events round-trip', { timeout: 15000 }, async (t) => {
  const io = server(t, { perMessageDeflate: true })
  io.on('connection', (s) => s.on('echo', (d, ack) => ack(d)))
  const c = wsClient(t, io.httpServer.address().port)
  await connected(io, c)
  assert.match(c.io.engine.transport.ws.extensions, /permessage-deflate/)
  const back = await withTimeout(c.emitWithAck('echo', { big: BIG, n: 1 }), 5000, 'the ack')
  assert.deepEqual(back, { big: BIG, n: 1 })
})

test('threshold: small packets and compress(false) go as they are, large ones compressed', { timeout: 15000 }, async (t) => {
  const io = server(t, { perMessageDeflate: { threshold: 1024 } })
  io.on('connection', (s) => {
    s.on('go', () => {
      s.emit('small', 'x')
      s.emit('big', BIG)
      s.compress(false).emit('plain', BIG)
    })
  })
  const raw = await rawSio(t, io.httpServer.address().port)
  raw.sendText('42["go"]')
  const small = await nextMessage(raw)
  const big = await nextMessage(raw)
  const plain = await nextMessage(raw)
  assert.deepEqual([small.compressed, big.compressed, plain.compressed], [false, true, false])
  assert.equal(big.text, `42["big",${JSON.stringify(BIG)}]`)
  assert.ok(big.wire < BIG.length / 4, `compressed to ${big.wire}`)
  assert.equal(plain.text, `42["plain",${JSON.stringify(BIG)}]`)
})

test('broadcasts: compressed for clients that negotiated it, plain for the others; compress(false) honoured', { timeout: 15000 }, async (t) => {
  const io = server(t, { perMessageDeflate: true })
  const port = io.httpServer.address().port
  const raw = await rawSio(t, port)
  const c = wsClient(t, port, { perMessageDeflate: false })
  const got = new Promise((resolve) => c.on('news', resolve))
  await new Promise((resolve) => (c.connected ? resolve() : c.once('connect', resolve)))
  assert.equal(c.io.engine.transport.ws.extensions, '')
  io.emit('news', BIG)
  io.compress(false).emit('news', 'plain')
  const first = await nextMessage(raw)
  assert.equal(first.compressed, true)
  assert.equal(first.text, `42["news",${JSON.stringify(BIG)}]`)
  assert.equal((await nextMessage(raw)).compressed, false)
  assert.equal(await withTimeout(got, 5000, 'the plain client'), BIG)
})

test('attached to an http.Server (the form apps use): negotiated the same way', { timeout: 15000 }, async (t) => {
  const httpServer = http.createServer()
  const io = new Server(httpServer, { perMessageDeflate: true })
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  t.after(() => { io.close(); httpServer.close() })
  io.on('connection', (s) => s.on('echo', (d, ack) => ack(d)))
  const c = wsClient(t, httpServer.address().port)
  await connected(io, c)
  assert.match(c.io.engine.transport.ws.extensions, /permessage-deflate/)
  assert.equal(await withTimeout(c.emitWithAck('echo', BIG), 5000, 'the ack'), BIG)
})

test('a wrong perMessageDeflate fails at construction in socket.io terms', () => {
  assert.throws(() => new Server({ perMessageDeflate: 'yes' }), /perMessageDeflate/)
  assert.throws(() => new Server({ perMessageDeflate: { threshold: -1 } }), /perMessageDeflate\.threshold/)
  const io = new Server({ perMessageDeflate: { threshold: 0, zlibDeflateOptions: { level: 1 } } })
  io.close()
})
