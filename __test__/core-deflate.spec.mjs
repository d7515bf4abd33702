// permessage-deflate (RFC 7692) on the core API with uWebSockets.js's
// `compression` constants (issue #15): negotiation, compressed frames both
// ways, `send(..., compress)`, publish, and the inflated-size limit. Runs
// against uWS.js too (FERRO_IMPL) where the behaviour is shared.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import zlib from 'node:zlib'
import { startApp, acceptWith, uWS, text } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawConnect, OP } from './helpers/raw-client.mjs'
import { ferroOnly, delay, withTimeout, UNDER_REFERENCE } from './helpers/env.mjs'

const OFFER = { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }
const TEXT = 'the quick brown fox jumps over the lazy dog, '.repeat(200)

// Compresses one message as a permessage-deflate client with no context.
function deflateMessage (buf) {
  const out = zlib.deflateRawSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH })
  return out.subarray(0, out.length - 4)
}

// Inflates one message; `inflater` keeps the context between calls when given.
function inflateMessage (payload) {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
}

async function echoServer (t, compression, extra = {}) {
  const server = await startApp({
    compression,
    maxPayloadLength: 64 * 1024,
    message: (ws, msg, isBinary) => ws.send(msg, isBinary, !text(msg).startsWith('plain:')),
    ...extra
  })
  t.after(() => server.close())
  return server
}

test('SHARED_COMPRESSOR: negotiated with no context takeover either way; ws round-trips compressed messages', { timeout: 15000 }, async (t) => {
  const { port } = await echoServer(t, uWS.SHARED_COMPRESSOR)
  const client = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } })
  t.after(() => client.ws.terminate())
  assert.match(client.ws.extensions, /^permessage-deflate/)
  for (let i = 0; i < 3; i++) {
    client.ws.send(TEXT + i)
    assert.equal((await client.nextMessage()).data.toString(), TEXT + i)
  }
  client.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true })
  const bin = await client.nextMessage()
  assert.equal(bin.isBinary, true)
  assert.deepEqual([...bin.data], [0, 1, 2, 255])
})

test('compressed frames carry RSV1 and are smaller; send(..., false) goes uncompressed', { timeout: 15000 }, async (t) => {
  const { port } = await echoServer(t, uWS.SHARED_COMPRESSOR)
  const raw = await rawConnect(port, { headers: OFFER })
  t.after(() => raw.destroy())
  const agreed = raw.response.headers['sec-websocket-extensions']
  assert.match(agreed, /^permessage-deflate/)
  assert.match(agreed, /server_no_context_takeover/)
  assert.match(agreed, /client_no_context_takeover/)
  raw.send(OP.TEXT, deflateMessage(Buffer.from(TEXT)), { rsv: 4 })
  const frame = await raw.nextDataFrame()
  assert.equal(frame.rsv, 4, 'RSV1 set on the echo')
  assert.ok(frame.payload.length < TEXT.length / 4, `compressed to ${frame.payload.length} of ${TEXT.length}`)
  assert.equal(inflateMessage(frame.payload).toString(), TEXT)
  raw.sendText('plain: not compressed')
  const plain = await raw.nextDataFrame()
  assert.equal(plain.rsv, 0)
  assert.equal(plain.payload.toString(), 'plain: not compressed')
})

test('DEDICATED_COMPRESSOR keeps context: the same message again is smaller, and still decodes', { timeout: 15000 }, async (t) => {
  const { port } = await echoServer(t, uWS.DEDICATED_COMPRESSOR | uWS.DEDICATED_DECOMPRESSOR)
  const client = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } })
  t.after(() => client.ws.terminate())
  assert.match(client.ws.extensions, /^permessage-deflate/)
  for (let i = 0; i < 5; i++) {
    client.ws.send(TEXT)
    assert.equal((await client.nextMessage()).data.toString(), TEXT)
  }
  // Raw: a context-keeping inflater on our side sees the repeat shrink.
  const raw = await rawConnect(port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_no_context_takeover' } })
  t.after(() => raw.destroy())
  assert.doesNotMatch(raw.response.headers['sec-websocket-extensions'], /server_no_context_takeover/)
  const inflater = zlib.createInflateRaw()
  const inflate = (payload) => new Promise((resolve) => {
    const chunks = []
    const onData = (c) => chunks.push(c)
    inflater.on('data', onData)
    inflater.write(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]))
    inflater.flush(zlib.constants.Z_SYNC_FLUSH, () => { inflater.off('data', onData); resolve(Buffer.concat(chunks).toString()) })
  })
  const sizes = []
  for (let i = 0; i < 2; i++) {
    raw.send(OP.TEXT, deflateMessage(Buffer.from(TEXT)), { rsv: 4 })
    const f = await raw.nextDataFrame()
    sizes.push(f.payload.length)
    assert.equal(await inflate(f.payload), TEXT)
  }
  assert.ok(sizes[1] < sizes[0], `second echo ${sizes[1]} bytes, first ${sizes[0]}`)
})

test('DISABLED (the default): permessage-deflate is not negotiated, and RSV1 is a protocol error', { timeout: 15000 }, async (t) => {
  const { port } = await echoServer(t, undefined)
  const client = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true })
  t.after(() => client.ws.terminate())
  assert.equal(client.ws.extensions, '')
  const raw = await rawConnect(port, { headers: OFFER })
  t.after(() => raw.destroy())
  assert.equal(raw.response.headers['sec-websocket-extensions'], undefined)
  raw.send(OP.TEXT, deflateMessage(Buffer.from('x')), { rsv: 4 })
  const close = await raw.nextDataFrame()
  // uWS.js drops the connection without a close frame; we send 1002 first.
  if (UNDER_REFERENCE) assert.ok(close === null || close.code === 1002)
  else assert.equal(close?.code, 1002)
})

test('maxPayloadLength applies after inflation: a small frame that inflates past it closes 1009',
  { timeout: 15000, skip: ferroOnly('uWS.js v20.30 closes without a close frame') }, async (t) => {
    let got = 0
    const { port } = await echoServer(t, uWS.SHARED_COMPRESSOR, { message: () => { got++ } })
    const raw = await rawConnect(port, { headers: OFFER })
    t.after(() => raw.destroy())
    const bomb = deflateMessage(Buffer.alloc(1 << 20))
    assert.ok(bomb.length < 2048)
    raw.send(OP.BINARY, bomb, { rsv: 4 })
    const close = await raw.nextDataFrame()
    assert.equal(close?.opcode, OP.CLOSE)
    assert.equal(close.code, 1009)
    assert.equal(got, 0)
  })

test('corrupt compressed data closes 1007 and the server goes on (ferrosocket-only close code)',
  { timeout: 15000, skip: ferroOnly('uWS.js closes without a close frame') }, async (t) => {
    const { port } = await echoServer(t, uWS.SHARED_COMPRESSOR)
    const raw = await rawConnect(port, { headers: OFFER })
    t.after(() => raw.destroy())
    raw.send(OP.TEXT, Buffer.from([0xff, 0xff, 0xff, 0x00, 0x12]), { rsv: 4 })
    const close = await raw.nextDataFrame()
    assert.equal(close?.opcode, OP.CLOSE)
    assert.equal(close.code, 1007)
    const again = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } })
    t.after(() => again.ws.terminate())
    again.ws.send('still here')
    assert.equal((await again.nextMessage()).data.toString(), 'still here')
  })

test('invalid UTF-8 inside a compressed text message closes 1007', { timeout: 15000 }, async (t) => {
  const { port } = await echoServer(t, uWS.SHARED_COMPRESSOR)
  const raw = await rawConnect(port, { headers: OFFER })
  t.after(() => raw.destroy())
  raw.send(OP.TEXT, deflateMessage(Buffer.from([0x68, 0xc3, 0x28])), { rsv: 4 })
  const frame = await raw.nextDataFrame()
  if (frame) {
    assert.equal(frame.opcode, OP.CLOSE)
    assert.equal(frame.code, 1007)
  }
  assert.equal(await withTimeout(raw.closed.then(() => true), 3000, 'the close'), true)
})

test('a fragmented compressed message is inflated whole', { timeout: 15000 }, async (t) => {
  const { port } = await echoServer(t, uWS.SHARED_COMPRESSOR)
  const raw = await rawConnect(port, { headers: OFFER })
  t.after(() => raw.destroy())
  const z = deflateMessage(Buffer.from(TEXT))
  const third = Math.ceil(z.length / 3)
  raw.send(OP.TEXT, z.subarray(0, third), { rsv: 4, fin: false })
  raw.send(OP.CONT, z.subarray(third, 2 * third), { fin: false })
  raw.send(OP.CONT, z.subarray(2 * third))
  const frame = await raw.nextDataFrame()
  assert.equal(inflateMessage(frame.payload).toString(), TEXT)
})

test('publish(topic, message, isBinary, compress) reaches compressed and plain subscribers alike', { timeout: 15000 }, async (t) => {
  const server = await startApp({
    compression: uWS.SHARED_COMPRESSOR,
    open: (ws) => ws.subscribe('news'),
    message: (ws, msg) => { if (text(msg) === 'go') server.app.publish('news', TEXT, false, true) }
  })
  t.after(() => server.close())
  const zipped = await rawConnect(server.port, { headers: OFFER })
  const zipped2 = await rawConnect(server.port, { headers: OFFER })
  const plain = await rawConnect(server.port)
  t.after(() => { zipped.destroy(); zipped2.destroy(); plain.destroy() })
  await delay(50)
  plain.sendText('go')
  const [a, b, c] = await Promise.all([zipped.nextDataFrame(), zipped2.nextDataFrame(), plain.nextDataFrame()])
  assert.equal(a.rsv, 4)
  assert.equal(inflateMessage(a.payload).toString(), TEXT)
  assert.ok(a.payload.equals(b.payload), 'both compressed subscribers got the same frame')
  assert.equal(c.rsv, 0)
  assert.equal(c.payload.toString(), TEXT)
})

test('an upgrade handler passing no extensions to res.upgrade gets no compression (uWS.js negotiates from what it is given)', { timeout: 15000 }, async (t) => {
  const server = await startApp({
    compression: uWS.SHARED_COMPRESSOR,
    upgrade: (res, req, context) => {
      const offered = req.getUrl() === '/with' ? req.getHeader('sec-websocket-extensions') : ''
      res.upgrade({}, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), offered, context)
    },
    message: (ws, msg) => ws.send(msg, false, true)
  })
  t.after(() => server.close())
  const withExt = await rawConnect(server.port, { path: '/with', headers: OFFER })
  const without = await rawConnect(server.port, { path: '/without', headers: OFFER })
  t.after(() => { withExt.destroy(); without.destroy() })
  assert.match(withExt.response.headers['sec-websocket-extensions'], /permessage-deflate/)
  assert.equal(without.response.headers['sec-websocket-extensions'], undefined)
})

test('acceptWith passes the client offer on: compression is negotiated through an upgrade handler', { timeout: 15000 }, async (t) => {
  const server = await startApp({ compression: uWS.SHARED_COMPRESSOR, upgrade: acceptWith(), message: (ws, m) => ws.send(m, false, true) })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } })
  t.after(() => client.ws.terminate())
  assert.match(client.ws.extensions, /permessage-deflate/)
  client.ws.send(TEXT)
  assert.equal((await client.nextMessage()).data.toString(), TEXT)
})
