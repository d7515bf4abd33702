// What a peer may not do, and the timers. Bad frames and bad handshakes go
// through the raw client so the exact bytes are under the test's control.
//
// Each bad-frame case has two tests:
//  - "closes the connection": what every implementation must do (uWS.js
//    included): the connection ends, the close handler runs with a code
//    other than 1000, nothing is echoed, and the server serves the next client;
//  - "close frame NNNN": the RFC 6455 status code ferrosocket must send
//    (shared/docs/SECURITY.md). uWS.js instead drops TCP without a close
//    frame, so those tests are ferrosocket-only.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { startApp, text, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawConnect, rawRequest, upgradeRequest, encodeFrame, OP } from './helpers/raw-client.mjs'
import { ferroOnly } from './helpers/env.mjs'

const MAX = 1024
const DATA_OPCODES = new Set([OP.TEXT, OP.BINARY, OP.CONT])

function closeBody (code, reason = '') {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason))
  body.writeUInt16BE(code)
  body.write(reason, 2)
  return body
}

async function limitedServer (t) {
  const log = new EventLog()
  const server = await startApp({
    maxPayloadLength: MAX,
    upgrade: (res, req, context) => {
      log.push('upgrade')
      res.upgrade({}, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'), context)
    },
    message: (ws, message, isBinary) => { ws.send(message, isBinary) },
    close: log.on('close', (ws, code, message) => ({ code, reason: text(message) }))
  })
  t.after(() => server.close())
  return { ...server, log }
}

async function assertStillServing (port) {
  const client = await connect(`ws://127.0.0.1:${port}/`)
  try {
    await client.send('next client')
    assert.equal(await client.nextText(), 'next client')
  } finally {
    client.terminate()
  }
}

// [name, what the client sends, RFC close code, does uWS.js detect it]
const badFrames = [
  ['unmasked client frame', (c) => c.sendText('hi', { mask: false }), 1002, false],
  ['invalid UTF-8 in a text message', (c) => c.send(OP.TEXT, Buffer.from([0x68, 0xff, 0xfe])), 1007, true],
  ['invalid UTF-8 in the last fragment of a text message', (c) => {
    c.send(OP.TEXT, Buffer.from('valid start '), { fin: false })
    c.send(OP.CONT, Buffer.from([0xc0, 0x80]))
  }, 1007, true],
  [`message of ${MAX + 1} bytes over maxPayloadLength ${MAX}`, (c) => c.sendBinary(Buffer.alloc(MAX + 1)), 1009, true],
  [`fragments adding up to more than maxPayloadLength ${MAX}`, (c) => {
    c.send(OP.BINARY, Buffer.alloc(400), { fin: false })
    c.send(OP.CONT, Buffer.alloc(400), { fin: false })
    c.send(OP.CONT, Buffer.alloc(400))
  }, 1009, true],
  ['declared length of 16 MiB with no payload sent (closed before buffering)',
    (c) => c.send(OP.BINARY, Buffer.alloc(0), { declaredLength: 16 * 1024 * 1024 }), 1009, true],
  ['64-bit length with the top bit set',
    (c) => c.send(OP.BINARY, Buffer.alloc(0), { declaredLength: 0x8000000000000001n }), 1002, true],
  ['reserved data opcode 3', (c) => c.send(3, Buffer.from('x')), 1002, true],
  ['reserved control opcode 0xB', (c) => c.send(0xb, Buffer.from('x')), 1002, true],
  ['RSV1 set without a negotiated extension', (c) => c.send(OP.TEXT, Buffer.from('x'), { rsv: 4 }), 1002, true],
  ['RSV2 set', (c) => c.send(OP.TEXT, Buffer.from('x'), { rsv: 2 }), 1002, true],
  ['RSV3 set', (c) => c.send(OP.BINARY, Buffer.from('x'), { rsv: 1 }), 1002, true],
  ['fragmented ping', (c) => c.send(OP.PING, Buffer.from('pi'), { fin: false }), 1002, true],
  ['ping with a 126-byte payload', (c) => c.send(OP.PING, Buffer.alloc(126)), 1002, true],
  ['continuation frame with nothing to continue', (c) => c.send(OP.CONT, Buffer.from('x')), 1002, true],
  ['new text frame in the middle of a fragmented message', (c) => {
    c.send(OP.TEXT, Buffer.from('first'), { fin: false })
    c.send(OP.TEXT, Buffer.from('second'))
  }, 1002, true],
  ['close frame with a 1-byte payload', (c) => c.send(OP.CLOSE, Buffer.from([0x03])), 1002, true],
  ['close frame with status code 999', (c) => c.send(OP.CLOSE, closeBody(999)), 1002, true]
]

for (const [name, sendBad, code, referenceDetects] of badFrames) {
  const skipCommon = referenceDetects ? false : ferroOnly('uWS.js does not check this and waits for more bytes')
  test(`${name}: closes the connection, close handler runs, next client is served`, { timeout: 10000, skip: skipCommon }, async (t) => {
    const { port, log } = await limitedServer(t)
    const client = await rawConnect(port)
    t.after(() => client.destroy())
    sendBad(client)
    const result = await client.untilClosed(4000)
    assert.deepEqual(result.frames.filter((f) => DATA_OPCODES.has(f.opcode)), [], 'nothing may be echoed')
    if (result.closeFrame) assert.notEqual(result.code, 1000, 'a protocol error is not a normal close')
    const [closed] = await log.wait('close')
    assert.notEqual(closed.code, 1000)
    await assertStillServing(port)
  })

  test(`${name}: close frame ${code} (ferrosocket-only: RFC 6455 status; uWS.js drops TCP without a close frame)`,
    { timeout: 10000, skip: ferroOnly('uWS.js sends no close frame on protocol errors') }, async (t) => {
      const { port } = await limitedServer(t)
      const client = await rawConnect(port)
      t.after(() => client.destroy())
      sendBad(client)
      const result = await client.untilClosed(4000)
      assert.ok(result.closeFrame, 'server must send a close frame before closing TCP')
      assert.equal(result.code, code)
    })
}

test(`message of exactly maxPayloadLength (${MAX} bytes) is accepted`, { timeout: 10000 }, async (t) => {
  const { port, log } = await limitedServer(t)
  const client = await connect(`ws://127.0.0.1:${port}/`)
  t.after(() => client.terminate())
  const payload = Buffer.alloc(MAX, 0x5a)
  await client.send(payload)
  const reply = await client.nextMessage()
  assert.ok(reply.data.equals(payload))
  assert.equal(log.of('close').length, 0)
})

test('default maxPayloadLength is 16 KiB: 16384 bytes pass, 16385 close the connection', { timeout: 10000 }, async (t) => {
  const server = await startApp({ message: (ws, message, isBinary) => { ws.send(message, isBinary) } })
  t.after(() => server.close())
  const url = `ws://127.0.0.1:${server.port}/`
  const ok = await connect(url)
  t.after(() => ok.terminate())
  await ok.send(Buffer.alloc(16 * 1024, 1))
  assert.equal((await ok.nextMessage()).data.length, 16 * 1024)
  const tooBig = await connect(url)
  t.after(() => tooBig.terminate())
  await tooBig.send(Buffer.alloc(16 * 1024 + 1, 1))
  const closed = await tooBig.closed
  assert.notEqual(closed.code, 1000)
  assert.equal(tooBig.messages.length, 0)
})

test('valid close codes are echoed: client closes with 4000 and a reason', { timeout: 10000 }, async (t) => {
  const { port, log } = await limitedServer(t)
  const client = await rawConnect(port)
  t.after(() => client.destroy())
  client.send(OP.CLOSE, closeBody(4000, 'going away now'))
  const result = await client.untilClosed()
  assert.equal(result.code, 4000)
  const [closed] = await log.wait('close')
  assert.equal(closed.code, 4000)
  assert.equal(closed.reason, 'going away now')
})

// ---- handshake ----------------------------------------------------------

test('handshake with Sec-WebSocket-Version 8 -> 426 with Sec-WebSocket-Version: 13 (ferrosocket-only: uWS.js ignores the version and upgrades)',
  { timeout: 10000, skip: ferroOnly('uWS.js does not check Sec-WebSocket-Version') }, async (t) => {
    const { port, log } = await limitedServer(t)
    const res = await rawRequest(port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }))
    t.after(() => res.socket.destroy())
    assert.equal(res.status, 426)
    assert.equal(res.headers['sec-websocket-version'], '13')
    assert.equal(log.of('upgrade').length, 0, 'upgrade handler must not run')
  })

for (const [name, headers] of [
  ['missing Sec-WebSocket-Key', { 'Sec-WebSocket-Key': null }],
  ['Sec-WebSocket-Key of the wrong length', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }]
]) {
  test(`${name}: not upgraded, upgrade handler not called`, { timeout: 10000 }, async (t) => {
    const { port, log } = await limitedServer(t)
    const res = await rawRequest(port, upgradeRequest({ headers }))
    t.after(() => res.socket.destroy())
    assert.notEqual(res.status, 101)
    assert.equal(log.of('upgrade').length, 0)
    await assertStillServing(port)
  })

  test(`${name}: HTTP 400 (ferrosocket-only: uWS.js closes the connection without a response)`,
    { timeout: 10000, skip: ferroOnly('uWS.js answers nothing and closes') }, async (t) => {
      const { port } = await limitedServer(t)
      const res = await rawRequest(port, upgradeRequest({ headers }))
      t.after(() => res.socket.destroy())
      assert.equal(res.status, 400)
    })
}

test('1 MiB of request headers: no upgrade, connection answered or closed within 3 s', { timeout: 10000 }, async (t) => {
  const { port, log } = await limitedServer(t)
  const started = Date.now()
  const res = await rawRequest(port, upgradeRequest({ headers: { 'X-Padding': 'p'.repeat(1024 * 1024) } }), { timeout: 3000 })
  t.after(() => res.socket.destroy())
  assert.notEqual(res.status, 101)
  assert.equal(log.of('upgrade').length, 0)
  assert.ok(Date.now() - started < 3000)
  await assertStillServing(port)
})

test('64 KiB header -> 431 or 400 (ferrosocket-only: uWS.js v20.30 accepts it)',
  { timeout: 10000, skip: ferroOnly('the reference package accepts 64 KiB of headers') }, async (t) => {
    const { port, log } = await limitedServer(t)
    const res = await rawRequest(port, upgradeRequest({ headers: { 'X-Padding': 'p'.repeat(64 * 1024) } }), { timeout: 3000 })
    t.after(() => res.socket.destroy())
    assert.ok([400, 431].includes(res.status), `got ${res.status || 'no response'}`)
    assert.equal(log.of('upgrade').length, 0)
  })

test('200 request headers -> 431 or 400 (ferrosocket-only: uWS.js v20.30 waits forever)',
  { timeout: 10000, skip: ferroOnly('the reference package never answers') }, async (t) => {
    const { port, log } = await limitedServer(t)
    const headers = {}
    for (let i = 0; i < 200; i++) headers[`X-H${i}`] = 'v'
    const res = await rawRequest(port, upgradeRequest({ headers }), { timeout: 3000 })
    t.after(() => res.socket.destroy())
    assert.ok([400, 431].includes(res.status), `got ${res.status || 'no response'}`)
    assert.equal(log.of('upgrade').length, 0)
  })

test('frames in the same TCP write as the upgrade request are processed (ferrosocket-only: uWS.js drops them)',
  { timeout: 10000, skip: ferroOnly('uWS.js discards bytes after the upgrade request') }, async (t) => {
    const { port } = await limitedServer(t)
    const glued = Buffer.concat([encodeFrame(OP.TEXT, 'glued one'), encodeFrame(OP.TEXT, 'glued two')])
    const res = await rawRequest(port, upgradeRequest(), { after: glued })
    t.after(() => res.socket.destroy())
    assert.equal(res.status, 101)
    const first = await res.client.nextDataFrame()
    const second = await res.client.nextDataFrame()
    assert.equal(first.payload.toString(), 'glued one')
    assert.equal(second.payload.toString(), 'glued two')
  })

// ---- idle timeout and automatic pings ----------------------------------
// uWS.js refuses idleTimeout < 8, and its timers tick every 4 s, so with
// T = 8 s a silent peer is closed between T - 4 s and T + 4 s; the bounds
// below add 0.5 s / 2 s of slack. The cases run concurrently (~14 s total).

const T = 8
const EARLIEST_MS = (T - 4) * 1000 - 500
const LATEST_MS = (T + 6) * 1000

async function idleServer (t, behavior = {}) {
  const log = new EventLog()
  const server = await startApp({
    idleTimeout: T,
    open: log.on('open', () => ({ at: Date.now() })),
    message: (ws, message, isBinary) => { ws.send(message, isBinary) },
    close: log.on('close', (ws, code) => ({ code, at: Date.now() })),
    ...behavior
  })
  t.after(() => server.close())
  return { ...server, log, url: `ws://127.0.0.1:${server.port}/` }
}

describe(`idle timeout ${T} s`, { concurrency: true }, () => {
  test('raw client that never answers pings is pinged, then closed after about idleTimeout', { timeout: 25000 }, async (t) => {
    const { port, log } = await idleServer(t)
    const client = await rawConnect(port)
    t.after(() => client.destroy())
    const openedAt = Date.now()
    const frames = []
    for (;;) {
      const frame = await client.nextFrame(LATEST_MS + 2000)
      if (!frame) break
      frames.push(frame)
    }
    const elapsed = Date.now() - openedAt
    assert.ok(frames.some((f) => f.opcode === OP.PING), 'server pings an idle client before timing it out')
    assert.ok(elapsed >= EARLIEST_MS, `closed too early: ${elapsed} ms`)
    assert.ok(elapsed <= LATEST_MS, `closed too late: ${elapsed} ms`)
    await log.wait('close')
  })

  test('ws client with autoPong disabled is closed after about idleTimeout', { timeout: 25000 }, async (t) => {
    const { url, log } = await idleServer(t)
    const client = await connect(url, { autoPong: false })
    t.after(() => client.terminate())
    const openedAt = Date.now()
    await Promise.race([client.closed, new Promise((resolve) => setTimeout(resolve, LATEST_MS + 1000))])
    const elapsed = Date.now() - openedAt
    assert.ok(client.closeInfo, `still open after ${elapsed} ms`)
    assert.ok(elapsed >= EARLIEST_MS, `closed too early: ${elapsed} ms`)
    assert.ok(client.pings.length >= 1, 'server pinged before closing')
    await log.wait('close')
  })

  test('responsive client (answers pings) stays connected well past idleTimeout', { timeout: 25000 }, async (t) => {
    const { url, log } = await idleServer(t)
    const client = await connect(url)
    t.after(() => client.terminate())
    await new Promise((resolve) => setTimeout(resolve, LATEST_MS))
    assert.equal(client.closeInfo, null, `closed with ${client.closeInfo?.code}`)
    assert.ok(client.pings.length >= 1, 'automatic pings were sent')
    assert.equal(log.of('close').length, 0)
    await client.send('alive')
    assert.equal(await client.nextText(), 'alive')
  })

  test('sendPingsAutomatically: false -> no pings, an idle client is closed after about idleTimeout', { timeout: 25000 }, async (t) => {
    const { url, log } = await idleServer(t, { sendPingsAutomatically: false })
    const client = await connect(url)
    t.after(() => client.terminate())
    const openedAt = Date.now()
    await Promise.race([client.closed, new Promise((resolve) => setTimeout(resolve, LATEST_MS + 1000))])
    const elapsed = Date.now() - openedAt
    assert.ok(client.closeInfo, `still open after ${elapsed} ms`)
    assert.ok(elapsed >= EARLIEST_MS, `closed too early: ${elapsed} ms`)
    assert.equal(client.pings.length, 0)
    await log.wait('close')
  })

  test('sendPingsAutomatically: false, client sending every 2 s stays connected (traffic resets the timer)', { timeout: 25000 }, async (t) => {
    const { url, log } = await idleServer(t, { sendPingsAutomatically: false })
    const client = await connect(url)
    t.after(() => client.terminate())
    const until = Date.now() + LATEST_MS
    let n = 0
    while (Date.now() < until) {
      await client.send(`tick ${n}`)
      assert.equal(await client.nextText(), `tick ${n}`)
      n++
      await new Promise((resolve) => setTimeout(resolve, 2000))
    }
    assert.equal(client.closeInfo, null)
    assert.equal(log.of('close').length, 0)
  })

  test('idleTimeout: 0 disables the timeout: silent raw client is neither pinged nor closed', { timeout: 25000 }, async (t) => {
    const { port, log } = await idleServer(t, { idleTimeout: 0 })
    const client = await rawConnect(port)
    t.after(() => client.destroy())
    await new Promise((resolve) => setTimeout(resolve, LATEST_MS))
    assert.equal(client.ended, false)
    assert.deepEqual(client.frames.map((f) => f.opcode), [])
    assert.equal(log.of('close').length, 0)
  })
})

