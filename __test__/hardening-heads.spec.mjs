// Request heads from hostile clients (#13 item 4): junk gets its 400 at
// once (not a 10 s hold), a 431 arrives before the close (lingering close,
// not a reset), an upgrade with a body and bare-LF line endings are
// refused, and a slow-loris head is dropped within the handshake deadline
// on the Socket.IO listener too, where Rust hands connections to Node.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { createRequire } from 'node:module'
import { startApp } from './helpers/app.mjs'
import { rawRequest, upgradeRequest } from './helpers/raw-client.mjs'
import { ferroOnly } from './helpers/env.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')
const skip = ferroOnly('uWS.js holds junk and accepts bare LF; these are ferrosocket\'s answers')

async function core (t) {
  const server = await startApp({ message: () => {} })
  t.after(() => server.close())
  return server.port
}

test('junk on a plain listener gets 400 at once: a TLS ClientHello, random bytes', { timeout: 10000, skip }, async (t) => {
  const port = await core(t)
  const hello = Buffer.from('160301020001000101fc0303', 'hex')
  for (const junk of [hello, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42])]) {
    const started = Date.now()
    const res = await rawRequest(port, junk, { timeout: 2000 })
    assert.equal(res.status, 400)
    assert.ok(Date.now() - started < 1500, `answered after ${Date.now() - started} ms`)
    res.socket.destroy()
  }
})

test('an upgrade with a body, and bare-LF line endings, are refused with 400', { timeout: 10000, skip }, async (t) => {
  const port = await core(t)
  for (const headers of [{ 'Content-Length': '5' }, { 'Transfer-Encoding': 'chunked' }]) {
    const res = await rawRequest(port, upgradeRequest({ path: '/', headers }))
    assert.equal(res.status, 400, JSON.stringify(headers))
    res.socket.destroy()
  }
  const lf = upgradeRequest({ path: '/' }).replace(/\r\n/g, '\n')
  const res = await rawRequest(port, lf)
  assert.equal(res.status, 400)
  res.socket.destroy()
})

test('a head too large gets its 431 before the close, though the client keeps sending', { timeout: 10000, skip }, async (t) => {
  const port = await core(t)
  for (let i = 0; i < 5; i++) {
    const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`
    const res = await rawRequest(port, head)
    assert.equal(res.status, 431)
    res.socket.destroy()
  }
})

test('slow-loris on the Socket.IO listener: partial heads handed to Node are dropped within the handshake deadline', { timeout: 30000, skip }, async (t) => {
  const io = new Server(0)
  t.after(() => io.close())
  await new Promise((resolve) => setTimeout(resolve, 50))
  const port = io.httpServer.address().port
  const started = Date.now()
  const closedAfter = await Promise.all(Array.from({ length: 5 }, () => new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('error', () => {})
    let n = 0
    const drip = setInterval(() => s.write(n++ === 0 ? 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-a: ' : 'a'), 1000)
    s.on('close', () => { clearInterval(drip); resolve(Date.now() - started) })
    t.after(() => { clearInterval(drip); s.destroy() })
  })))
  // 10 s from accept (Rust's deadline), not Node's 60 s headersTimeout.
  for (const ms of closedAfter) assert.ok(ms < 15000, `held ${ms} ms`)
  t.diagnostic(`partial heads dropped after ${Math.max(...closedAfter)} ms at most`)
})

test('the handshake deadline spares what Node took over: the app\'s own upgrade (polling-only Socket.IO) and a request in progress', { timeout: 30000, skip }, async (t) => {
  const http = require('node:http')
  let slow = null
  const srv = http.createServer((req, res) => { slow = res; res.write('part') })
  const io = new Server(srv, { transports: ['polling'] })
  // The app's own WebSocket endpoint, as `ws` would answer it on 'upgrade'.
  srv.on('upgrade', (req, socket) => {
    socket.on('error', () => {})
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  })
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.after(() => { if (slow) slow.end(); io.close() })
  const port = srv.address().port
  const open = (head) => new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(head))
    s.on('error', () => {})
    const state = { closed: false, got: '' }
    s.on('data', (d) => { state.got += d })
    s.on('close', () => { state.closed = true })
    t.after(() => s.destroy())
    resolve(state)
  })
  const upgraded = await open(upgradeRequest({ path: '/graphql' }))
  const streaming = await open('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  // Past the 10 s deadline Rust handed along with them.
  await new Promise((resolve) => setTimeout(resolve, 11000))
  assert.match(upgraded.got, /^HTTP\/1\.1 101/)
  assert.equal(upgraded.closed, false, 'the app\'s WebSocket was cut by the handshake deadline')
  assert.match(streaming.got, /^HTTP\/1\.1 200/)
  assert.equal(streaming.closed, false, 'a response in progress was cut by the handshake deadline')
})

test('handshakeTimeout shortens the deadline for heads: the core listener and the Socket.IO listener (heads handed to Node too)', { timeout: 20000, skip }, async (t) => {
  const drip = (port, first) => new Promise((resolve) => {
    const started = Date.now()
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('error', () => {})
    let n = 0
    const timer = setInterval(() => s.write(n++ === 0 ? first : 'a'), 200)
    s.on('close', () => { clearInterval(timer); resolve(Date.now() - started) })
    t.after(() => { clearInterval(timer); s.destroy() })
  })
  const server = await startApp({ message: () => {} }, { options: { handshakeTimeout: 1500 } })
  t.after(() => server.close())
  const io = new Server(0, { handshakeTimeout: 1500 })
  t.after(() => io.close())
  await new Promise((resolve) => setTimeout(resolve, 50))
  const [core, sio] = await Promise.all([
    drip(server.port, 'GET / HTTP/1.1\r\nX-a: '),
    drip(io.httpServer.address().port, 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-a: ')
  ])
  for (const ms of [core, sio]) assert.ok(ms >= 1400 && ms < 5000, `dropped after ${ms} ms`)
  t.diagnostic(`dripping heads dropped after ${core} ms (core) and ${sio} ms (Socket.IO)`)
})
