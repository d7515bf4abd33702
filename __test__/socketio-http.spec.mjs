// The Socket.IO server on a Node http(s) server, with the real
// socket.io-client 4.8 and plain HTTP requests: Express attached, TLS in
// Node (upgrade bridged to Rust), CORS and allowRequest, maxHttpBufferSize,
// the client bundle, disconnect reasons, reconnect after a restart.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import https from 'node:https'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import WebSocket from 'ws'

const require = createRequire(import.meta.url)
const { Server } = require('..')
const express = require('express')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Waits (up to a second) for `cond`; the assertion after it says what failed. */
async function until (cond) {
  for (let i = 0; i < 50 && !cond(); i++) await sleep(20)
}
const fixture = (name) => path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', name)

async function listening (server) {
  if (!server.listening) server.listen(0, '127.0.0.1')
  if (!server.listening) await once(server, 'listening')
  return server.address().port
}

function cleanup (t, io, clients) {
  t.after(() => {
    for (const c of clients) c.close()
    io.close()
  })
}

test('Express app attached: its routes keep working and clients connect with default options', { timeout: 15000 }, async (t) => {
  const app = express()
  app.get('/hello', (req, res) => res.send('world'))
  const server = http.createServer(app)
  const io = new Server(server, { pingInterval: 1000, pingTimeout: 1000 })
  io.on('connection', (socket) => socket.on('echo', (v, ack) => ack(v)))
  const port = await listening(server)
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true })
  cleanup(t, io, [c])
  const res = await fetch(`http://127.0.0.1:${port}/hello`)
  assert.equal(await res.text(), 'world')
  await once(c, 'connect')
  assert.deepEqual(await c.emitWithAck('echo', { a: [1, 2] }), { a: [1, 2] })
  // The client upgrades to WebSocket; the server sees the same transport.
  if (c.io.engine.transport.name !== 'websocket') await once(c.io.engine, 'upgrade')
  await sleep(50)
  const [socket] = io.of('/').sockets.values()
  assert.equal(socket.conn.transport.name, 'websocket')
  assert.equal(socket.handshake.headers.host, `127.0.0.1:${port}`)
  assert.equal(socket.handshake.query.EIO, '4')
  assert.equal(socket.handshake.query.transport, 'polling')
})

test('https server (TLS in Node): polling and the upgrade bridged into Rust', { timeout: 15000 }, async (t) => {
  const server = https.createServer({ key: fs.readFileSync(fixture('key.pem')), cert: fs.readFileSync(fixture('cert.pem')) })
  const io = new Server(server, { pingInterval: 1000, pingTimeout: 1000 })
  io.on('connection', (socket) => socket.on('echo', (v, ack) => ack(v)))
  const port = await listening(server)
  const clients = [
    ioc(`https://127.0.0.1:${port}`, { reconnection: false, forceNew: true, rejectUnauthorized: false }),
    ioc(`https://127.0.0.1:${port}`, { reconnection: false, forceNew: true, rejectUnauthorized: false, transports: ['websocket'] })
  ]
  cleanup(t, io, clients)
  await Promise.all(clients.map((c) => once(c, 'connect')))
  for (const c of clients) {
    const big = 'x'.repeat(200000)
    assert.equal(await c.emitWithAck('echo', big), big)
  }
  if (clients[0].io.engine.transport.name !== 'websocket') await once(clients[0].io.engine, 'upgrade')
  assert.equal(await clients[0].emitWithAck('echo', 'after upgrade'), 'after upgrade')
  const sockets = [...io.of('/').sockets.values()]
  assert.ok(sockets.every((s) => s.handshake.secure === true))
})

test('CORS: preflight and headers as the cors package gives them; a foreign Origin cannot upgrade', { timeout: 15000 }, async (t) => {
  const io = new Server({ cors: { origin: ['https://good.example'], credentials: true } })
  io.listen(0)
  const port = await listening(io.httpServer)
  t.after(() => io.close())
  const base = `http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`
  const pre = await fetch(base, { method: 'OPTIONS', headers: { Origin: 'https://good.example', 'Access-Control-Request-Method': 'POST' } })
  assert.equal(pre.status, 204)
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://good.example')
  assert.equal(pre.headers.get('access-control-allow-credentials'), 'true')
  const ok = await fetch(base, { headers: { Origin: 'https://good.example' } })
  assert.equal(ok.status, 200)
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://good.example')
  assert.match(await ok.text(), /^0\{"sid":/)
  const foreign = await fetch(base, { headers: { Origin: 'https://evil.example' } })
  assert.equal(foreign.headers.get('access-control-allow-origin'), null)
  // WebSocket upgrades get the same origin policy.
  const bad = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { origin: 'https://evil.example' })
  const [, res] = await once(bad, 'unexpected-response')
  assert.equal(res.statusCode, 403)
  const good = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { origin: 'https://good.example' })
  const [open] = await once(good, 'message')
  assert.match(String(open), /^0\{"sid":/)
  good.close()
})

test('allowRequest refusing: 403 {"code":4} on polling, connect_error for the client; connection_error event', { timeout: 15000 }, async (t) => {
  const io = new Server({ allowRequest: (req, cb) => cb('no entry', req.headers['x-pass'] === 'yes') })
  io.listen(0)
  const port = await listening(io.httpServer)
  const errors = []
  const events = []
  io.engine.on('connection_error', (e) => { errors.push(e.code); events.push(e) })
  t.after(() => io.close())
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`)
  assert.equal(res.status, 403)
  assert.deepEqual(await res.json(), { code: 4, message: 'no entry' })
  // As engine.io: the code's own message, allowRequest's in the context.
  assert.equal(events[0].code, 4)
  assert.equal(events[0].message, 'Forbidden')
  assert.deepEqual(events[0].context, { message: 'no entry' })
  const pass = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`, { headers: { 'x-pass': 'yes' } })
  assert.equal(pass.status, 200)
  // A WebSocket handshake on the Rust listener is handed to allowRequest too
  // (refused as engine.io's abortUpgrade answers: 400), and passes with it.
  const ws = `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`
  const [, refused] = await once(new WebSocket(ws), 'unexpected-response')
  assert.equal(refused.statusCode, 400)
  let text = ''
  for await (const chunk of refused) text += chunk
  assert.equal(text, 'no entry')
  // A request whose sid the engine reads as none is a handshake for
  // allowRequest too, however the query spells it (`sid=abc&sid=`: the
  // engine takes the last, empty, value).
  const twice = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling&sid=abc&sid=`)
  assert.equal(twice.status, 403)
  const [, twiceWs] = await once(new WebSocket(`${ws}&sid=abc&sid=`), 'unexpected-response')
  assert.equal(twiceWs.statusCode, 400)
  const allowed = new WebSocket(ws, { headers: { 'x-pass': 'yes' } })
  assert.match(String((await once(allowed, 'message'))[0]), /^0\{"sid":/)
  allowed.close()
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true })
  t.after(() => c.close())
  await once(c, 'connect_error')
  const unknown = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling&sid=nope`)
  assert.equal(unknown.status, 400)
  assert.deepEqual(await unknown.json(), { code: 1, message: 'Session ID unknown' })
  assert.ok(errors.includes(4) && errors.includes(1), String(errors))
})

test('maxHttpBufferSize: 413 on polling, the WebSocket closed, the server unharmed', { timeout: 15000 }, async (t) => {
  const io = new Server({ maxHttpBufferSize: 1000 })
  io.listen(0)
  const port = await listening(io.httpServer)
  const reasons = []
  io.on('connection', (s) => s.on('disconnect', (r) => reasons.push(r)))
  t.after(() => io.close())
  const open = await (await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`)).text()
  const sid = JSON.parse(open.slice(1)).sid
  assert.equal(JSON.parse(open.slice(1)).maxPayload, 1000)
  const big = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '4' + 'x'.repeat(5000) })
  assert.equal(big.status, 413)
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true, transports: ['websocket'] })
  t.after(() => c.close())
  await once(c, 'connect')
  c.emit('big', 'y'.repeat(5000))
  const [reason] = await once(c, 'disconnect')
  assert.equal(reason, 'transport close')
  await sleep(100)
  // As socket.io 4.8 (engine.io's ws transport reports ws's maxPayload
  // error): "transport error" on the server, "transport close" on the client.
  assert.deepEqual(reasons, ['transport error'])
  const again = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true })
  t.after(() => again.close())
  await once(again, 'connect')
})

test('the client bundle: /socket.io/socket.io.js and friends with ETag and 304', { timeout: 15000 }, async (t) => {
  const io = new Server()
  io.listen(0)
  const port = await listening(io.httpServer)
  t.after(() => io.close())
  const version = require('socket.io-client/package.json').version
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.js`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('etag'), `"${version}"`)
  assert.match(res.headers.get('content-type'), /^application\/javascript/)
  assert.match(await res.text(), new RegExp(`Socket.IO v${version.replace(/\./g, '\\.')}`))
  const cached = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.js`, { headers: { 'If-None-Match': `W/"${version}"` } })
  assert.equal(cached.status, 304)
  for (const name of ['socket.io.min.js', 'socket.io.esm.min.js', 'socket.io.js.map', 'socket.io.min.js.map']) {
    const r = await fetch(`http://127.0.0.1:${port}/socket.io/${name}`)
    assert.equal(r.status, 200, name)
    await r.arrayBuffer()
  }
  const none = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.txt`)
  assert.equal(none.status, 400) // an Engine.IO request with no transport
  // A name of the bundle's shape that the client package does not ship is not served either.
  assert.equal((await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.esm.js`)).status, 400)
  // Compressed as the client accepts, as socket.io serves it (negotiator's choice).
  const raw = (headers) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/socket.io/socket.io.min.js', headers }, (r) => {
      const chunks = []
      r.on('data', (c) => chunks.push(c)).on('end', () => resolve([r.headers['content-encoding'], Buffer.concat(chunks)])).on('error', reject)
    }).on('error', reject)
  })
  const zlib = require('node:zlib')
  const [plainEnc, plain] = await raw({})
  assert.equal(plainEnc, undefined)
  const [gzEnc, gz] = await raw({ 'accept-encoding': 'gzip, deflate, br' })
  assert.equal(gzEnc, 'gzip')
  assert.deepEqual(zlib.gunzipSync(gz), plain)
  const [brEnc, br] = await raw({ 'accept-encoding': 'gzip;q=0.5, br' })
  assert.equal(brEnc, 'br')
  assert.deepEqual(zlib.brotliDecompressSync(br), plain)
  assert.equal((await raw({ 'accept-encoding': 'identity' }))[0], undefined)
  const off = new Server({ serveClient: false })
  off.listen(0)
  const offPort = await listening(off.httpServer)
  t.after(() => off.close())
  assert.equal((await fetch(`http://127.0.0.1:${offPort}/socket.io/socket.io.js`)).status, 400)
})

/** A raw Engine.IO WebSocket client joined to namespace "/". */
async function rawClient (port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`)
  const [open] = await once(ws, 'message')
  assert.match(String(open), /^0/)
  ws.send('40')
  const [connected] = await once(ws, 'message')
  assert.match(String(connected), /^40\{"sid":/)
  return ws
}

test('disconnect reasons: ping timeout, transport close, parse error, server shutting down', { timeout: 20000 }, async (t) => {
  const io = new Server({ pingInterval: 200, pingTimeout: 200 })
  io.listen(0)
  t.after(() => io.close()) // a failing step must not leave the server running
  const port = await listening(io.httpServer)
  const reasons = []
  io.on('connection', (s) => s.on('disconnect', (r) => reasons.push(r)))
  // A client that never answers pings.
  const mute = await rawClient(port)
  mute.on('message', () => {})
  await once(mute, 'close')
  assert.deepEqual(reasons, ['ping timeout'])
  // A client whose TCP connection just goes away.
  const gone = await rawClient(port)
  gone.terminate()
  await sleep(300)
  assert.deepEqual(reasons, ['ping timeout', 'transport close'])
  // A client sending a malformed Socket.IO packet.
  const bad = await rawClient(port)
  bad.send('42["unterminated"')
  await once(bad, 'close')
  await sleep(50)
  assert.deepEqual(reasons, ['ping timeout', 'transport close', 'parse error'])
  // The server closes: clients see the transport close.
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true })
  await once(c, 'connect')
  const clientSide = once(c, 'disconnect')
  io.close()
  assert.equal((await clientSide)[0], 'transport close')
  assert.deepEqual(reasons.slice(3), ['server shutting down'])
})

test('a client reconnects by itself after the server restarts on the same port', { timeout: 20000 }, async (t) => {
  const first = new Server()
  first.listen(0)
  const port = await listening(first.httpServer)
  const c = ioc(`http://127.0.0.1:${port}`, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 })
  t.after(() => c.close())
  await once(c, 'connect')
  const firstId = c.id
  first.close()
  await once(c, 'disconnect')
  const second = new Server(port)
  t.after(() => second.close())
  const seen = once(second, 'connection')
  await once(c, 'connect')
  const [socket] = await seen
  assert.equal(socket.id, c.id)
  assert.notEqual(c.id, firstId)
})

test('standalone: new Server(port) listens at once (listening, address()) and emits \'listening\' on the next tick, as Node\'s server.listen()', { timeout: 10000 }, async (t) => {
  const io = new Server(0, { host: '127.0.0.1' })
  t.after(() => io.close())
  const srv = io.httpServer
  assert.equal(srv.listening, true)
  assert.deepEqual(srv.address(), { address: '127.0.0.1', family: 'IPv4', port: io.port })
  // Emitted after the constructor returned, so a listener added now sees it.
  const events = []
  srv.on('listening', () => events.push('listening'))
  await Promise.race([once(srv, 'listening'), sleep(1000)])
  assert.deepEqual(events, ['listening'])
  const c = ioc(`http://127.0.0.1:${io.port}`, { reconnection: false, forceNew: true })
  t.after(() => c.close())
  await once(c, 'connect')
  // Closed in the same tick, as Node's: no 'listening'.
  const gone = new Server(0, { host: '127.0.0.1' })
  let heard = 0
  gone.httpServer.on('listening', () => heard++)
  gone.httpServer.close()
  await sleep(50)
  assert.equal(heard, 0)
})

test('standalone: io.close(cb) and io.httpServer.close(cb) disconnect clients and close the server (\'close\' once, callback without error); closed again, ERR_SERVER_NOT_RUNNING', { timeout: 10000 }, async (t) => {
  for (const how of ['io.close', 'httpServer.close']) {
    const io = new Server(0)
    t.after(() => io.close())
    const srv = io.httpServer
    const c = ioc(`http://127.0.0.1:${io.port}`, { transports: ['websocket'], reconnection: false, forceNew: true })
    t.after(() => c.close())
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    const reasons = []
    socket.on('disconnect', (r) => reasons.push(r))
    let closes = 0
    srv.on('close', () => closes++)
    const clientGone = once(c, 'disconnect')
    const cb = await new Promise((resolve) => how === 'io.close'
      ? io.close((...args) => resolve(args))
      : srv.close((...args) => resolve(args)))
    assert.deepEqual(cb, [undefined], how)
    assert.deepEqual(reasons, ['server shutting down'], how)
    assert.equal(closes, 1, how)
    assert.equal(srv.listening, false, how)
    assert.equal(srv.address(), null, how)
    assert.equal(io.engine.clientsCount, 0, how)
    assert.equal((await clientGone)[0], 'transport close', how)
    // Closing again: the error goes to the callback, as Node's close(cb).
    const again = []
    await io.close((err) => again.push(err))
    assert.equal(again[0]?.code, 'ERR_SERVER_NOT_RUNNING', how)
  }
})

test('hostile or odd clients: CONNECT bursts, deep nesting, POSTs for unknown sessions, an allowRequest that throws', { timeout: 15000 }, async (t) => {
  let calls = 0
  const io = new Server({
    pingInterval: 5000,
    allowRequest: (req, cb) => {
      calls++
      cb(null, true)
      if (req.headers['x-throw']) throw new Error('after the callback')
    }
  })
  // The middleware holds each CONNECT for a while, so the burst below is
  // surely "still in the middleware" (without it the first accept may land
  // before the rest of the burst is read, and then the rest is a second
  // CONNECT to a joined namespace: a violation that closes the connection).
  io.use((socket, next) => setTimeout(next, 50))
  io.listen(0)
  const port = io.port
  t.after(() => io.close())
  const got = []
  io.on('connection', (s) => s.onAny((ev) => got.push(ev)))
  // A burst of CONNECTs (each still in the middleware when the next comes,
  // as socket.io-client sends on connect() of a connecting socket): the last
  // accept wins, earlier sockets are gone, nothing is left behind.
  const burst = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`)
  await once(burst, 'message')
  for (let i = 0; i < 5; i++) burst.send('40')
  await sleep(300)
  assert.equal(io.of('/').sockets.size, 1)
  burst.send('40') // now joined: a protocol violation
  await once(burst, 'close')
  await sleep(100)
  assert.equal(io.of('/').sockets.size, 0)
  // 20000 levels of nesting around a placeholder, then a plain event.
  const deep = await rawClient(port)
  const nested = '['.repeat(20000) + '{"_placeholder":true,"num":0}' + ']'.repeat(20000)
  deep.send(`451-["deep",${nested}]`)
  deep.send(Buffer.from([1]))
  deep.send('42["after"]')
  while (got.length < 2) await sleep(20)
  assert.deepEqual(got, ['deep', 'after'])
  deep.close()
  // A big POST for a session that does not exist: 400 code 1, body unread.
  const big = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling&sid=nope`, { method: 'POST', body: 'x'.repeat(2e6) })
  assert.equal(big.status, 400)
  assert.deepEqual(await big.json(), { code: 1, message: 'Session ID unknown' })
  // allowRequest answering, then throwing: the server lives on.
  const warned = once(process, 'warning')
  const ok = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`, { headers: { 'x-throw': '1' } })
  assert.equal(ok.status, 200)
  assert.equal((await warned)[0].code, 'FERROSOCKET_HANDLER_ERROR')
  assert.ok(calls >= 2)
})

test('socket-id rooms belong to one namespace; the handshake is readable in disconnect handlers; disconnect(true) over polling delivers 41', { timeout: 15000 }, async (t) => {
  const io = new Server({ pingInterval: 5000 })
  io.listen(0)
  const port = io.port
  t.after(() => io.close())
  const addresses = []
  io.on('connection', (s) => s.on('disconnect', () => addresses.push(s.handshake.address)))
  const main = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true, transports: ['websocket'] })
  t.after(() => main.close())
  await once(main, 'connect')
  io.of('/admin').on('connection', () => {})
  // The manager's sockets connect by themselves (autoConnect); a further
  // connect() would send a second CONNECT that may arrive after the accept.
  const admin = main.io.socket('/admin')
  await once(admin, 'connect')
  const heard = []
  admin.on('m', (v) => heard.push(v))
  main.on('m', (v) => heard.push('main ' + v))
  io.of('/admin').to(main.id).emit('m', 1) // main.id is a socket of '/', not of '/admin'
  io.to(main.id).emit('m', 2)
  await sleep(200)
  assert.deepEqual(heard, ['main 2'])
  // Polling client disconnected by the server: it sees the 41.
  const polling = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true, transports: ['polling'] })
  t.after(() => polling.close())
  await once(polling, 'connect')
  const reason = once(polling, 'disconnect')
  io.of('/').sockets.get(polling.id).disconnect(true)
  assert.equal((await reason)[0], 'io server disconnect')
  main.close()
  await sleep(200)
  assert.ok(addresses.length >= 2 && addresses.every((a) => a.includes('127.0.0.1')), String(addresses))
})

test('connection_error carries engine.io\'s context; upgrades are verified before allowRequest; POST bodies follow engine.io\'s rules', { timeout: 15000 }, async (t) => {
  const server = http.createServer()
  const asked = []
  const io = new Server(server, {
    maxHttpBufferSize: 100,
    allowRequest: (req, cb) => { asked.push(req.url); cb(null, true) }
  })
  const port = await listening(server)
  t.after(() => io.close())
  const events = []
  io.engine.on('connection_error', (e) => events.push([e.code, e.message, e.context]))
  const base = `http://127.0.0.1:${port}/socket.io/?EIO=4`
  await fetch(`${base}&transport=polling&sid=nope`)
  await fetch(`${base}&transport=abc`)
  await fetch(`${base}&transport=polling`, { method: 'POST', body: '' })
  await fetch(`${base}&transport=websocket`)
  assert.deepEqual(events.splice(0), [
    [1, 'Session ID unknown', { sid: 'nope' }],
    [0, 'Transport unknown', { transport: 'abc' }],
    [2, 'Bad handshake method', { method: 'POST' }],
    [3, 'Bad request', { name: 'TRANSPORT_HANDSHAKE_ERROR' }]
  ])
  assert.deepEqual(asked, [])
  // Upgrades: refused by Rust's verify, before allowRequest.
  const wsBase = `ws://127.0.0.1:${port}/socket.io/?EIO=4`
  for (const q of ['&transport=abc', '&transport=websocket&sid=nope']) {
    const [, res] = await once(new WebSocket(wsBase + q), 'unexpected-response')
    assert.equal(res.statusCode, 400)
  }
  // Refused by the Rust listener (which took the server's socket over): the
  // event follows the answer.
  await until(() => events.length >= 2)
  assert.deepEqual(events.splice(0), [
    [0, 'Transport unknown', { transport: 'abc' }],
    [1, 'Session ID unknown', { sid: 'nope' }]
  ])
  assert.deepEqual(asked, [])
  // POST rules, decided in Rust: a binary body ends the session with 400; a
  // body over maxHttpBufferSize is answered 413.
  const open = async () => JSON.parse((await (await fetch(`${base}&transport=polling`)).text()).slice(1)).sid
  const sid = await open()
  const bin = await fetch(`${base}&transport=polling&sid=${sid}`, { method: 'POST', body: '4x', headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(bin.status, 400)
  const gone = await fetch(`${base}&transport=polling&sid=${sid}`)
  assert.equal(gone.status, 400)
  assert.deepEqual(events.splice(0), [[1, 'Session ID unknown', { sid }]])
  const sid2 = await open()
  const big = await fetch(`${base}&transport=polling&sid=${sid2}`, { method: 'POST', body: '4' + 'x'.repeat(500) })
  assert.equal(big.status, 413)
  // The session survives a refused body and takes the next one.
  const ok = await fetch(`${base}&transport=polling&sid=${sid2}`, { method: 'POST', body: '40' })
  assert.equal(await ok.text(), 'ok')
  // A POST answered with a refusal once its body is read (the websocket
  // transport named for a polling session) does not block the next POST.
  const odd = await fetch(`${base}&transport=websocket&sid=${sid2}`, { method: 'POST', body: '3' })
  assert.equal(odd.status, 400)
  assert.deepEqual(events.splice(0).map(([code, , context]) => [code, context]),
    [[3, { name: 'TRANSPORT_MISMATCH', transport: 'websocket', previousTransport: 'polling' }]])
  const next = await fetch(`${base}&transport=polling&sid=${sid2}`, { method: 'POST', body: '3' })
  assert.equal(await next.text(), 'ok')
})

test('the client bundle gets the cors option\'s headers, as socket.io serves it', { timeout: 10000 }, async (t) => {
  const io = new Server({ cors: { origin: 'https://good-origin.com' } })
  io.listen(0)
  const port = await listening(io.httpServer)
  t.after(() => io.close())
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.js`, { headers: { origin: 'https://good-origin.com' } })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://good-origin.com')
  await res.arrayBuffer()
})

test('attached, nothing for JS to consult: an upgrade is served by the Rust listener; a bad one is refused with its connection_error', { timeout: 10000 }, async (t) => {
  const server = http.createServer()
  const io = new Server(server)
  const port = await listening(server)
  t.after(() => io.close())
  const events = []
  io.engine.on('connection_error', (e) => events.push([e.code, e.context]))
  const wsBase = `ws://127.0.0.1:${port}/socket.io/?EIO=4`
  const [, res] = await once(new WebSocket(`${wsBase}&transport=websocket&sid=nope`), 'unexpected-response')
  assert.equal(res.statusCode, 400)
  await until(() => events.length > 0)
  assert.deepEqual(events, [[1, { sid: 'nope' }]])
  const c = ioc(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => c.close())
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(socket.conn.transport.name, 'websocket')
  // And the default client (polling, then the upgrade through the same path).
  const d = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true })
  t.after(() => d.close())
  const upgraded = once(d.io.engine, 'upgrade')
  await once(d, 'connect')
  await upgraded
  assert.equal(d.io.engine.transport.name, 'websocket')
})

test('standalone: an upgrade the Rust listener refuses still emits connection_error, with a request record', { timeout: 10000 }, async (t) => {
  const io = new Server()
  io.listen(0)
  const port = await listening(io.httpServer)
  t.after(() => io.close())
  const events = []
  io.engine.on('connection_error', (e) => events.push(e))
  const [, res] = await once(new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&sid=nope`, { headers: { 'x-app': 'yes' } }), 'unexpected-response')
  assert.equal(res.statusCode, 400)
  for (let i = 0; i < 50 && events.length === 0; i++) await sleep(20)
  assert.equal(events.length, 1)
  const [e] = events
  assert.deepEqual([e.code, e.message, e.context], [1, 'Session ID unknown', { sid: 'nope' }])
  assert.equal(e.req.method, 'GET')
  assert.match(e.req.url, /sid=nope/)
  assert.equal(e.req.headers['x-app'], 'yes')
})
