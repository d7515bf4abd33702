// new Server(port, { tls }): the standalone Socket.IO server with TLS
// terminated in Rust (an internal SSLApp with the engine on it, as
// attachApp mounts it), with the real socket.io-client over wss:// and
// https:// long-polling, verified against the fixture certificate
// (fixtures/README.md). Also io.httpServer's stand-in, close and listen
// again, a busy or shared port, and every wrong "tls" refused at
// construction.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { withTimeout, delay } from './helpers/env.mjs'
import { fixture, KEY, CERT, ENCRYPTED_KEY, PASSPHRASE, ca } from './helpers/tls-fixtures.mjs'

const require = createRequire(import.meta.url)
const { Server, App } = require('..')

const TLS = { key: fs.readFileSync(KEY), cert: ca }

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

/** A TLS Server on port 0 (short heartbeats), closed after the test. */
function serve (t, opts = {}) {
  const io = new Server(0, { pingInterval: 300, pingTimeout: 200, tls: TLS, ...opts })
  t.after(() => io.close())
  return io
}

/** A socket.io-client over https:// trusting the fixture certificate only, closed after the test. */
function client (t, port, opts = {}) {
  const c = ioc(`https://127.0.0.1:${port}`, { ca, reconnection: false, forceNew: true, ...opts })
  t.after(() => c.close())
  return c
}

async function connected (io, c) {
  const [[socket]] = await withTimeout(Promise.all([once(io, 'connection'), once(c, 'connect')]), 5000, 'the TLS client to connect')
  return socket
}

/** GET over https (fixture CA, no keep-alive): status, headers, body. */
function get (port, path) {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path, ca, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    }).on('error', reject)
  })
}

/** Whether anything accepts TCP connections on 127.0.0.1:port. */
function accepts (port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** A port nothing listens on (bound, then released). */
async function freePort () {
  const s = net.createServer()
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise((resolve) => s.close(resolve))
  return port
}

for (const [mode, transports] of [['default', undefined], ['websocket', ['websocket']], ['polling', ['polling']]]) {
  test(`tls: events with acks both ways, and binary, over TLS [${mode}]`, { timeout: 15000 }, async (t) => {
    const io = serve(t)
    const c = client(t, io.port, { transports })
    const socket = await connected(io, c)
    assert.equal(socket.id, c.id)
    assert.equal(socket.handshake.secure, true)
    socket.on('double', (n, ack) => ack(n * 2, Buffer.from([n])))
    const [twice, buf] = await withTimeout(new Promise((resolve) => c.emit('double', 21, (...r) => resolve(r))), 5000, 'the ack')
    assert.equal(twice, 42)
    assert.deepEqual(Buffer.from(buf), Buffer.from([21]))
    c.on('ask', (q, ack) => ack(`${q}!`))
    assert.equal(await socket.timeout(5000).emitWithAck('ask', 'tls'), 'tls!')
    // Past a heartbeat the session holds, and the transport is the one asked for.
    await delay(800)
    assert.ok(socket.connected)
    assert.equal(c.io.engine.transport.name, mode === 'polling' ? 'polling' : 'websocket')
  })
}

test('tls: a broadcast to a room reaches its members only, over wss and https long-polling', { timeout: 15000 }, async (t) => {
  const io = serve(t)
  // One at a time: each server-side socket is matched to its client.
  const member = client(t, io.port, { transports: ['polling'] })
  const a = await connected(io, member)
  const other = client(t, io.port, { transports: ['websocket'] })
  const b = await connected(io, other)
  const wsMember = client(t, io.port, { transports: ['websocket'] })
  const c = await connected(io, wsMember)
  a.join('room')
  c.join('room')
  const got = { member: [], other: [], wsMember: [] }
  for (const [name, cl] of Object.entries({ member, other, wsMember })) {
    cl.on('news', (v) => got[name].push(['news', v]))
    cl.on('all', (v) => got[name].push(['all', v]))
  }
  const done = Promise.all([member, other, wsMember].map((cl) => once(cl, 'all')))
  io.to('room').emit('news', 'room only')
  io.emit('all', 'everyone')
  await withTimeout(done, 5000, 'the broadcast to all')
  // Each client gets a server's packets in order: 'news' came before 'all' or never.
  assert.deepEqual(got.member, [['news', 'room only'], ['all', 'everyone']])
  assert.deepEqual(got.wsMember, [['news', 'room only'], ['all', 'everyone']])
  assert.deepEqual(got.other, [['all', 'everyone']])
  assert.deepEqual([...(await io.in('room').fetchSockets())].map((s) => s.id).sort(), [a.id, c.id].sort())
  assert.ok(b.connected)
})

test('tls: the key and certificate as PEM strings, Buffers, files, and an encrypted key with its passphrase; the fixture certificate is served', { timeout: 20000 }, async (t) => {
  const forms = {
    strings: { key: fs.readFileSync(KEY, 'utf8'), cert: fs.readFileSync(CERT, 'utf8') },
    buffers: { key: fs.readFileSync(KEY), cert: fs.readFileSync(CERT) },
    files: { key_file_name: KEY, cert_file_name: CERT },
    'encrypted file': { key_file_name: ENCRYPTED_KEY, cert_file_name: CERT, passphrase: PASSPHRASE },
    'encrypted buffer': { key: fs.readFileSync(ENCRYPTED_KEY), cert: ca, passphrase: PASSPHRASE }
  }
  for (const [form, options] of Object.entries(forms)) {
    const io = serve(t, { tls: options })
    const socket = tls.connect({ host: '127.0.0.1', port: io.port, servername: 'localhost', ca })
    t.after(() => socket.destroy())
    await withTimeout(once(socket, 'secureConnect'), 5000, `the TLS handshake (${form})`)
    assert.equal(socket.authorized, true, form)
    assert.equal(socket.getPeerX509Certificate().fingerprint256, new X509Certificate(ca).fingerprint256, form)
    socket.destroy()
    const c = client(t, io.port, { transports: ['websocket'] })
    const s = await connected(io, c)
    assert.equal(s.handshake.secure, true, form)
  }
})

test('tls: a plain-text client is not served; the client bundle is, over https; other paths are 404', { timeout: 15000 }, async (t) => {
  const io = serve(t)
  const plain = ioc(`http://127.0.0.1:${io.port}`, { transports: ['polling'], reconnection: false, forceNew: true, timeout: 3000 })
  t.after(() => plain.close())
  await withTimeout(once(plain, 'connect_error'), 5000, 'the plain-text client to fail')
  assert.equal(plain.connected, false)
  const version = require('socket.io-client/package.json').version
  const bundle = await get(io.port, '/socket.io/socket.io.min.js')
  assert.equal(bundle.status, 200)
  assert.equal(bundle.headers['content-type'], 'application/javascript; charset=utf-8')
  assert.equal(bundle.headers.etag, `"${version}"`)
  assert.ok(bundle.body.length > 1000)
  assert.equal((await get(io.port, '/elsewhere')).status, 404)
  // The engine answers under its path, as engine.io does.
  const unknown = await get(io.port, '/socket.io/?EIO=4&transport=carrier-pigeon')
  assert.equal(unknown.status, 400)
  assert.deepEqual(JSON.parse(unknown.body), { code: 0, message: 'Transport unknown' })
})

test('tls: io.httpServer reports the Rust listener: address() with the host option, listening, \'listening\' on the next tick', { timeout: 10000 }, async (t) => {
  const io = serve(t, { host: '127.0.0.1' })
  const srv = io.httpServer
  assert.equal(srv.listening, true)
  assert.deepEqual(srv.address(), { address: '127.0.0.1', family: 'IPv4', port: io.port })
  assert.ok(io.port > 0)
  // Emitted after the constructor returned, as Node's server.listen() does.
  await withTimeout(once(srv, 'listening'), 2000, "'listening'")
  // Not a Node server: nothing reaches Node in this form.
  assert.equal(srv instanceof http.Server, false)
  assert.equal(await accepts(io.port), true)
})

test('tls: io.close() disconnects clients, closes the listener (\'close\', callback without error), and io.listen(port) serves again', { timeout: 15000 }, async (t) => {
  const io = new Server({ tls: { key_file_name: KEY, cert_file_name: CERT } })
  io.on('connection', (s) => s.on('echo', (v, ack) => ack(v)))
  io.listen(0)
  t.after(() => io.close())
  const port = io.port
  const c = client(t, port, { transports: ['websocket'], reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 })
  const socket = await connected(io, c)
  const reasons = []
  socket.on('disconnect', (r) => reasons.push(r))
  const srv = io.httpServer
  const closeEvent = once(srv, 'close')
  const clientGone = once(c, 'disconnect')
  const cb = []
  await io.close((...args) => cb.push(args))
  assert.deepEqual(cb, [[undefined]])
  assert.deepEqual(reasons, ['server shutting down'])
  await withTimeout(closeEvent, 2000, "'close' on io.httpServer")
  await withTimeout(clientGone, 5000, 'the client to see the disconnect')
  assert.equal(srv.listening, false)
  assert.equal(srv.address(), null)
  assert.equal(await accepts(port), false)
  // Closing again: the error goes to the callback, as Node's close(cb).
  const again = []
  await io.close((err) => again.push(err))
  assert.equal(again[0]?.code, 'ERR_SERVER_NOT_RUNNING')

  io.listen(port)
  assert.notEqual(io.httpServer, srv)
  assert.equal(io.httpServer.listening, true)
  await withTimeout(once(c, 'connect'), 5000, 'the client to reconnect to the new listener')
  assert.equal(await c.timeout(2000).emitWithAck('echo', 'again'), 'again')
})

test('tls: io.httpServer.close() alone closes the Socket.IO server too', { timeout: 10000 }, async (t) => {
  const io = serve(t)
  const c = client(t, io.port, { transports: ['polling'] })
  const socket = await connected(io, c)
  const reason = once(socket, 'disconnect')
  const [err] = await new Promise((resolve) => io.httpServer.close((...args) => resolve(args)))
  assert.equal(err, undefined)
  assert.deepEqual(await withTimeout(reason, 2000, 'the disconnect'), ['server shutting down'])
  assert.equal(io.engine.clientsCount, 0)
})

test('tls: a busy port is an async \'error\' (EADDRINUSE) on io.httpServer; reusePort shares the port', { timeout: 10000 }, async (t) => {
  const blocker = net.createServer()
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const busy = blocker.address().port
  let io
  assert.doesNotThrow(() => { io = new Server(busy, { tls: TLS, host: '127.0.0.1' }) })
  t.after(() => io.close())
  const [err] = await withTimeout(once(io.httpServer, 'error'), 2000, "'error'")
  assert.equal(err.code, 'EADDRINUSE')
  assert.equal(err.syscall, 'listen')
  assert.equal(err.message, `listen EADDRINUSE: address already in use 127.0.0.1:${busy}`)
  assert.equal(io.httpServer.listening, false)
  assert.equal(io.httpServer.address(), null)

  const first = serve(t, { host: '127.0.0.1', reusePort: true })
  const second = serve(t, { host: '127.0.0.1', reusePort: true }) // on port 0: its own
  await second.close()
  second.listen(first.port)
  assert.equal(second.httpServer.listening, true)
  assert.equal(second.port, first.port)
  const exclusive = new Server(first.port, { tls: TLS, host: '127.0.0.1' })
  t.after(() => exclusive.close())
  const [refused] = await withTimeout(once(exclusive.httpServer, 'error'), 2000, "'error' without reusePort")
  assert.equal(refused.code, 'EADDRINUSE')
})

test('tls: a wrong "tls" fails at construction, naming the option, and nothing listens', { timeout: 15000 }, async () => {
  const missing = fixture('does-not-exist.pem')
  const cases = [
    [true, TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls" must be an object/],
    ['key.pem', TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls" must be an object/],
    [[KEY, CERT], TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls" must be an object/],
    [{ cert: ca }, TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls\.key" must be PEM text .*"tls\.key_file_name"/],
    [{ key_file_name: KEY }, TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls\.cert" must be/],
    [{ key: 42, cert: ca }, TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls\.key" must be PEM text .*got 42/],
    [{ key_file_name: 1, cert_file_name: CERT }, TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls\.key_file_name" must be a string/],
    [{ ...TLS, passphrase: 7 }, TypeError, 'ERR_INVALID_ARG_TYPE', /option "tls\.passphrase" must be a string/],
    [{ ...TLS, key_file_name: KEY }, TypeError, 'ERR_INVALID_ARG_VALUE', /option "tls\.key" must be left out when "tls\.key_file_name" is given/],
    [{ ...TLS, ca }, TypeError, 'ERR_INVALID_ARG_VALUE', /option "tls" must be .*no other TLS settings.*got one with "ca"/],
    [{ key_file_name: missing, cert_file_name: CERT }, Error, 'FERROSOCKET_BAD_TLS', /option "tls" does not load: cannot read key file .*does-not-exist\.pem/],
    [{ key_file_name: KEY, cert_file_name: missing }, Error, 'FERROSOCKET_BAD_TLS', /option "tls" does not load: cannot read certificate file .*does-not-exist\.pem/],
    [{ key_file_name: ENCRYPTED_KEY, cert_file_name: CERT, passphrase: 'wrong' }, Error, 'FERROSOCKET_BAD_TLS', /option "tls" does not load: cannot decrypt private key .*key-encrypted\.pem.*wrong passphrase/],
    [{ key: fs.readFileSync(ENCRYPTED_KEY), cert: ca }, Error, 'FERROSOCKET_BAD_TLS', /option "tls" does not load: .*encrypted and no passphrase/],
    [{ key: 'not a key', cert: 'not a certificate' }, Error, 'FERROSOCKET_BAD_TLS', /option "tls" does not load: .*no PEM certificate/],
    [{ key: ca, cert: fs.readFileSync(KEY) }, Error, 'FERROSOCKET_BAD_TLS', /option "tls" does not load/]
  ]
  const port = await freePort()
  for (const [value, Ctor, code, message] of cases) {
    const expected = { name: Ctor.name, code, message }
    const shown = JSON.stringify(value)?.slice(0, 80)
    // With a port (it would listen now) and without (it would listen later).
    assert.throws(() => new Server(port, { tls: value }), expected, shown)
    assert.throws(() => new Server({ tls: value }), expected, shown)
    assert.throws(() => new Server().listen(port, { tls: value }), expected, shown)
  }
  assert.equal(await accepts(port), false, 'a refused server listens on nothing')
})

test('tls: refused with cors or allowRequest (FERROSOCKET_UNSUPPORTED), with an http(s).Server, and with attachApp()', () => {
  const unsupported = { name: 'Error', code: 'FERROSOCKET_UNSUPPORTED', message: /"cors" and "allowRequest" are not supported with option "tls".*https\.Server/ }
  assert.throws(() => new Server(0, { tls: TLS, cors: { origin: '*' } }), unsupported)
  assert.throws(() => new Server({ tls: TLS, allowRequest: (req, cb) => cb(null, true) }), unsupported)
  assert.throws(() => new Server({ tls: TLS }).listen(0, { cors: true }), unsupported)

  const withServer = { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /option "tls" is for the standalone form.*an https\.Server keeps its own TLS \(Node's\)/ }
  for (const srv of [http.createServer(), https.createServer(TLS)]) {
    const listeners = () => srv.eventNames().map((e) => [e, srv.listenerCount(e)])
    const before = listeners()
    assert.throws(() => new Server(srv, { tls: TLS }), withServer)
    assert.throws(() => new Server({ tls: TLS }).attach(srv), withServer)
    // Refused before anything was attached to it.
    assert.deepEqual(listeners(), before)
  }
  assert.throws(() => new Server({ tls: TLS }).attachApp(App()), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /use an SSLApp\(\)/ })
})
