// Messages in both directions: text/binary echo across the frame-length
// boundaries, every accepted send() argument type, client fragmentation,
// ping/pong in both directions, cork.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startApp, text, copy, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawConnect, encodeFrame, OP } from './helpers/raw-client.mjs'

const MiB = 1024 * 1024

// Deterministic, position-dependent bytes so a shifted or truncated echo
// can't compare equal.
function pattern (size, seed = 1) {
  const buf = Buffer.alloc(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff
  return buf
}

async function echoServer (t, extra = {}) {
  const log = new EventLog()
  const server = await startApp({
    maxPayloadLength: 2 * MiB,
    message: log.on('message', (ws, message, isBinary) => ({
      isArrayBuffer: message instanceof ArrayBuffer,
      data: copy(message),
      isBinary
    }), (ws, message, isBinary) => { ws.send(message, isBinary) }),
    ...extra
  })
  t.after(() => server.close())
  return { ...server, log, url: `ws://127.0.0.1:${server.port}/` }
}

test('text message is echoed as text, handler gets an ArrayBuffer and isBinary=false', { timeout: 10000 }, async (t) => {
  const { url, log } = await echoServer(t)
  const client = await connect(url)
  t.after(() => client.terminate())
  const sent = 'héllo wörld ✓ 𝄞'
  await client.send(sent)
  const reply = await client.nextMessage()
  assert.equal(reply.isBinary, false)
  assert.equal(reply.data.toString(), sent)
  const [event] = await log.wait('message')
  assert.equal(event.isArrayBuffer, true)
  assert.equal(event.isBinary, false)
  assert.equal(event.data.toString(), sent)
})

for (const size of [0, 1, 125, 126, 65535, 65536, MiB]) {
  test(`binary message of ${size} bytes is echoed byte for byte (ws client)`, { timeout: 15000 }, async (t) => {
    const { url, log } = await echoServer(t)
    const client = await connect(url, { maxPayload: 4 * MiB })
    t.after(() => client.terminate())
    const payload = pattern(size, size)
    await client.send(payload, { binary: true })
    const reply = await client.nextMessage(10000)
    assert.equal(reply.isBinary, true)
    assert.equal(reply.data.length, size)
    assert.ok(reply.data.equals(payload), 'echoed bytes differ')
    const [event] = await log.wait('message')
    assert.equal(event.isBinary, true)
    assert.equal(event.data.length, size)
  })
}

// The raw client sees the server's frame header, so this checks the length
// encoding chosen at each boundary (7-bit, 16-bit, 64-bit) and that server
// frames are unmasked, final and carry the right opcode.
for (const [size, headerLength] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]]) {
  test(`server frame for a ${size}-byte message uses a ${headerLength}-byte header, unmasked`, { timeout: 10000 }, async (t) => {
    const { port } = await echoServer(t)
    const client = await rawConnect(port)
    t.after(() => client.destroy())
    const payload = pattern(size, 3)
    client.sendBinary(payload)
    const frame = await client.nextDataFrame()
    assert.ok(frame, 'connection ended before the echo')
    assert.equal(frame.opcode, OP.BINARY)
    assert.equal(frame.fin, true)
    assert.equal(frame.masked, false)
    assert.equal(frame.rsv, 0)
    assert.equal(frame.headerLength, headerLength)
    assert.ok(frame.payload.equals(payload))
  })
}

test('a message sent in small chops (byte by byte) is reassembled', { timeout: 10000 }, async (t) => {
  const { port } = await echoServer(t)
  const client = await rawConnect(port)
  t.after(() => client.destroy())
  client.socket.setNoDelay(true)
  const bytes = encodeFrame(OP.TEXT, Buffer.from('chopped message'))
  for (const byte of bytes) {
    client.writeRaw(Buffer.from([byte]))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const frame = await client.nextDataFrame()
  assert.equal(frame.opcode, OP.TEXT)
  assert.equal(frame.payload.toString(), 'chopped message')
})

test('100 messages are echoed in the order sent', { timeout: 10000 }, async (t) => {
  const { url } = await echoServer(t)
  const client = await connect(url)
  t.after(() => client.terminate())
  for (let i = 0; i < 100; i++) client.ws.send(`m${i}`)
  const got = []
  for (let i = 0; i < 100; i++) got.push(await client.nextText())
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `m${i}`))
})

test('send() accepts string, ArrayBuffer, Buffer and TypedArray views (only the view bytes go out)', { timeout: 10000 }, async (t) => {
  const backing = Buffer.from('0123456789abcdef')
  const backingAB = backing.buffer.slice(backing.byteOffset, backing.byteOffset + backing.length)
  const wide = new Uint16Array([0x4241, 0x4443]) // little-endian bytes "ABCD"
  const server = await startApp({
    open: (ws) => {
      ws.send('plain string')
      ws.send('binary from string', true)
      ws.send(backingAB, true)
      ws.send(backing.subarray(4, 8), true)
      ws.send(new Uint8Array(backingAB, 10, 3), true)
      ws.send(wide, true)
      ws.send(new Uint8Array(0), true)
    }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  const got = []
  for (let i = 0; i < 7; i++) got.push(await client.nextMessage())
  assert.deepEqual(got.map((m) => m.isBinary), [false, true, true, true, true, true, true])
  assert.deepEqual(got.map((m) => m.data.toString('latin1')), [
    'plain string',
    'binary from string',
    '0123456789abcdef',
    '4567',
    'abc',
    Buffer.from(wide.buffer).toString('latin1'),
    ''
  ])
})

test('fragmented text message (split inside a UTF-8 code point) with a ping between fragments', { timeout: 10000 }, async (t) => {
  const { port, log } = await echoServer(t, {
    ping: (ws, message) => log.push('ping', { data: copy(message) })
  })
  const client = await rawConnect(port)
  t.after(() => client.destroy())
  const whole = Buffer.from('Hello wörld')
  const cut = whole.indexOf(0xb6) // second byte of "ö"
  client.send(OP.TEXT, whole.subarray(0, 3), { fin: false })
  client.send(OP.PING, Buffer.from('between'))
  client.send(OP.CONT, whole.subarray(3, cut), { fin: false })
  client.send(OP.CONT, whole.subarray(cut))
  const pong = await client.nextFrame()
  assert.equal(pong.opcode, OP.PONG, 'the ping between fragments is answered first')
  assert.equal(pong.payload.toString(), 'between')
  const echo = await client.nextFrame()
  assert.equal(echo.opcode, OP.TEXT)
  assert.equal(echo.payload.toString(), 'Hello wörld')
  const messages = await log.wait('message')
  assert.equal(messages.length, 1, 'fragments are delivered as one message')
  assert.equal(messages[0].isBinary, false)
  const [ping] = await log.wait('ping')
  assert.equal(ping.data.toString(), 'between')
})

test('binary message in 100 fragments arrives as one message', { timeout: 10000 }, async (t) => {
  const { port, log } = await echoServer(t)
  const client = await rawConnect(port)
  t.after(() => client.destroy())
  const payload = pattern(100 * 37, 9)
  for (let i = 0; i < 100; i++) {
    client.send(i === 0 ? OP.BINARY : OP.CONT, payload.subarray(i * 37, (i + 1) * 37), { fin: i === 99 })
  }
  const echo = await client.nextDataFrame()
  assert.equal(echo.opcode, OP.BINARY)
  assert.ok(echo.payload.equals(payload))
  const messages = await log.wait('message')
  assert.equal(messages.length, 1)
  assert.equal(messages[0].isBinary, true)
})

test('client ping is answered with a pong carrying the same payload; ping handler sees it', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({ ping: log.on('ping', (ws, message) => ({ data: copy(message) })) })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  client.ws.ping(Buffer.from('are you there'))
  await client.until(() => client.pongs.length, 3000, 'pong')
  assert.equal(client.pongs[0].toString(), 'are you there')
  const [event] = await log.wait('ping')
  assert.equal(event.data.toString(), 'are you there')
})

test('unsolicited pong from the client reaches the pong handler and keeps the connection open', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    pong: log.on('pong', (ws, message) => ({ data: copy(message) })),
    message: (ws, message) => { ws.send(message) }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  client.ws.pong(Buffer.from('unasked'))
  const [event] = await log.wait('pong')
  assert.equal(event.data.toString(), 'unasked')
  await client.send('still here')
  assert.equal(await client.nextText(), 'still here')
})

test('ws.ping(message) from the server reaches the client; the reply reaches the pong handler', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    open: (ws) => { log.push('ping-result', { status: ws.ping('srv-ping') }) },
    pong: log.on('pong', (ws, message) => ({ data: copy(message) }))
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  await client.until(() => client.pings.length, 3000, 'ping from server')
  assert.equal(client.pings[0].toString(), 'srv-ping')
  const [event] = await log.wait('pong')
  assert.equal(event.data.toString(), 'srv-ping')
  assert.equal(log.of('ping-result')[0].status, 1, 'ping() returns send status 1 (success)')
})

test('ws.ping() without a message sends an empty ping', { timeout: 10000 }, async (t) => {
  const server = await startApp({ open: (ws) => { ws.ping() } })
  t.after(() => server.close())
  const client = await rawConnect(server.port)
  t.after(() => client.destroy())
  const frame = await client.nextFrame()
  assert.equal(frame.opcode, OP.PING)
  assert.equal(frame.payload.length, 0)
})

test('sends inside ws.cork() all arrive, in order; cork returns the socket', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    message: (ws) => {
      const result = ws.cork(() => {
        for (let i = 0; i < 10; i++) ws.send(`corked ${i}`)
      })
      log.push('cork', { same: result === ws })
    }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  await client.send('go')
  const got = []
  for (let i = 0; i < 10; i++) got.push(await client.nextText())
  assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `corked ${i}`))
  const [event] = await log.wait('cork')
  assert.equal(event.same, true)
})

test('message ArrayBuffer text is exact for a 16 KiB message at the default maxPayloadLength', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({ message: log.on('message', (ws, message) => ({ text: text(message) })) })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  const big = 'x'.repeat(16 * 1024 - 1) + 'y'
  await client.send(big)
  const [event] = await log.wait('message')
  assert.equal(event.text, big)
})
