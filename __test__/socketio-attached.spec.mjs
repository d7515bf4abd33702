// The attached form (`new Server(httpServer)`) once the http.Server listens:
// the Rust listener takes its listening socket over, serves WebSocket
// upgrades itself and hands every other connection to the http.Server, which
// must keep behaving as Node's own (address, close, getConnections,
// maxConnections, listen again, other upgrade listeners). With the real
// socket.io-client 4.8 and `ws`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import WebSocket, { WebSocketServer } from 'ws'

const require = createRequire(import.meta.url)
const { Server } = require('..')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A raw HTTP/1.1 exchange on a fresh connection (Connection: close). */
function rawGet (port, path) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))
    let text = ''
    s.setEncoding('utf8')
    s.on('data', (d) => { text += d })
    s.on('end', () => resolve(text))
    s.on('error', reject)
  })
}

function connected (port, opts = {}) {
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, forceNew: true, ...opts })
  return { c, ready: once(c, 'connect') }
}

for (const [when, listenFirst] of [['attached before listen()', false], ['attached after listen()', true]]) {
  test(`${when}: WebSocket clients never reach Node's HTTP server, the app's requests and long-polling still do`, { timeout: 15000 }, async (t) => {
    const srv = http.createServer((req, res) => res.end(`app ${req.method} ${req.url}`))
    if (listenFirst) srv.listen(0, '127.0.0.1')
    const io = new Server(srv, { pingInterval: 1000, pingTimeout: 1000 })
    if (!listenFirst) srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    const port = srv.address().port
    assert.equal(srv.address().address, '127.0.0.1')
    assert.equal(srv.listening, true)
    let nodeConnections = 0
    let nodeUpgrades = 0
    srv.on('connection', () => nodeConnections++)
    srv.on('upgrade', () => nodeUpgrades++)
    io.on('connection', (s) => s.on('echo', (v, ack) => ack([v, s.conn.transport.name])))
    const clients = []
    t.after(() => {
      for (const c of clients) c.close()
      io.close()
    })

    const ws = connected(port, { transports: ['websocket'] })
    clients.push(ws.c)
    await ws.ready
    assert.deepEqual(await ws.c.emitWithAck('echo', 1), [1, 'websocket'])
    assert.equal(nodeConnections, 0, 'a WebSocket-only client is accepted and upgraded in Rust')
    assert.equal(nodeUpgrades, 0)

    assert.equal(await rawGet(port, '/hello').then((r) => r.split('\r\n\r\n')[1]), 'app GET /hello')
    assert.equal(nodeConnections, 1, "the app's own request reached Node's server")

    const poll = connected(port, { transports: ['polling'] })
    clients.push(poll.c)
    await poll.ready
    assert.deepEqual(await poll.c.emitWithAck('echo', 2), [2, 'polling'])

    const upgraded = connected(port)
    clients.push(upgraded.c)
    await upgraded.ready
    if (upgraded.c.io.engine.transport.name !== 'websocket') await once(upgraded.c.io.engine, 'upgrade')
    assert.deepEqual(await upgraded.c.emitWithAck('echo', 3), [3, 'websocket'])
    assert.equal(io.of('/').sockets.size, 3)
  })
}

test('close(cb) stops accepting at once and calls back when the handed connections are gone; listen() again serves again', { timeout: 15000 }, async (t) => {
  const srv = http.createServer((req, res) => res.end('ok'))
  const io = new Server(srv)
  t.after(() => io.close())
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = srv.address().port
  // A keep-alive connection the app's server holds.
  const agent = new http.Agent({ keepAlive: true })
  const res = await new Promise((resolve) => http.get({ port, host: '127.0.0.1', path: '/', agent }, resolve))
  res.resume()
  await once(res, 'end')
  const count = await new Promise((resolve, reject) => srv.getConnections((e, n) => (e ? reject(e) : resolve(n))))
  assert.equal(count, 1, 'getConnections counts a connection handed over by Rust')
  let closed = false
  srv.close(() => { closed = true })
  // closeIdleConnections (http.Server.close) ends the idle keep-alive one.
  await sleep(100)
  assert.equal(srv.listening, false)
  assert.equal(srv.address(), null)
  await assert.rejects(rawGet(port, '/'), { code: 'ECONNREFUSED' })
  await sleep(100)
  assert.equal(closed, true)
  agent.destroy()

  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const again = srv.address().port
  const c = ioc(`http://127.0.0.1:${again}`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => c.close())
  let nodeConnections = 0
  srv.on('connection', () => nodeConnections++)
  await once(c, 'connect')
  assert.equal(nodeConnections, 0, 'the new listener is taken over too')
})

test('maxConnections refuses handed connections over the limit with a drop event, as Node does', { timeout: 15000 }, async (t) => {
  const srv = http.createServer((req, res) => res.end('ok'))
  const io = new Server(srv)
  t.after(() => io.close())
  srv.maxConnections = 1
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = srv.address().port
  const drops = []
  srv.on('drop', (d) => drops.push(d))
  const held = net.connect(port, '127.0.0.1', () => held.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  t.after(() => held.destroy())
  await once(held, 'data')
  const refused = net.connect(port, '127.0.0.1', () => refused.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  refused.on('error', () => {})
  await once(refused, 'close')
  assert.equal(drops.length, 1)
  assert.equal(drops[0].remoteAddress, '127.0.0.1')
})

test('another upgrade listener on the same http.Server (ws on its own path) still gets its upgrades', { timeout: 15000 }, async (t) => {
  const srv = http.createServer()
  const io = new Server(srv)
  const wss = new WebSocketServer({ server: srv, path: '/other' })
  wss.on('connection', (s) => s.on('message', (m) => s.send(`other:${m}`)))
  t.after(() => { wss.close(); io.close() })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = srv.address().port
  const w = new WebSocket(`ws://127.0.0.1:${port}/other`)
  t.after(() => w.close())
  await once(w, 'open')
  w.send('hi')
  const [data] = await once(w, 'message')
  assert.equal(String(data), 'other:hi')
  const c = ioc(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => c.close())
  await once(c, 'connect')
})

test('the cors option still checks an upgrade that carries an Origin (handed to Node for it)', { timeout: 15000 }, async (t) => {
  const srv = http.createServer()
  const io = new Server(srv, { cors: { origin: 'http://good.example' } })
  t.after(() => io.close())
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = srv.address().port
  const url = `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`
  const bad = new WebSocket(url, { origin: 'http://evil.example' })
  const [err] = await once(bad, 'error')
  assert.match(err.message, /Unexpected server response: 403/)
  const good = new WebSocket(url, { origin: 'http://good.example' })
  t.after(() => good.close())
  const [msg] = await once(good, 'message')
  assert.match(String(msg), /^0\{"sid"/)
})

test('an app that closes its attached server exits: the taken-over listener keeps the process alive only while it listens', { timeout: 15000 }, async () => {
  const script = `
    const http = require('node:http')
    const { Server } = require(${JSON.stringify(require.resolve('..'))})
    const srv = http.createServer()
    const io = new Server(srv)
    srv.listen(0, '127.0.0.1', () => {
      console.log('listening ' + srv.address().port)
      setTimeout(() => srv.close(() => console.log('closed')), 300).unref()
    })`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
  assert.match(out, /^listening \d+\nclosed\n$/)
})
