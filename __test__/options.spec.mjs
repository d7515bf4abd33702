// Options fail early, in the user's words: every constructor, `.ws()`,
// the HTTP route methods and `listen` refuse a bad option at the call with a
// TypeError or RangeError that names the option as written (never N-API's
// or Rust's names); good options, edge values included, still work; a busy
// port is reported as Node reports it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { Socket as EioSocket } from 'engine.io-client'
import WebSocket from 'ws'

const require = createRequire(import.meta.url)
const { Server, EngineServer, App, SSLApp } = require('..')

const INTERNAL = /napi|rust|u32|EngineOptions|AppOptions|BehaviorOptions|SslOptions|struct|GenericFailure/i
const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const TYPE = [TypeError, 'ERR_INVALID_ARG_TYPE']
const RANGE = [RangeError, 'ERR_OUT_OF_RANGE']
const VALUE = [RangeError, 'ERR_INVALID_ARG_VALUE']
const PORT = [RangeError, 'ERR_SOCKET_BAD_PORT']

/** `fn()` throws `Class` with `code`, naming `name`, in no internal words. */
function refuses (fn, [Class, code], name) {
  assert.throws(fn, (err) => {
    assert.equal(err.constructor, Class, `${err.constructor.name}: ${err.message}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, name instanceof RegExp ? name : new RegExp(`"${name}"`))
    assert.doesNotMatch(err.message, INTERNAL)
    assert.match(err.message, /^ferrosocket: /)
    return true
  })
}

// [option, bad value, expected error], shared by Server and EngineServer.
const ENGINE_BAD = [
  ['pingInterval', 'x', TYPE],
  ['pingInterval', -5, RANGE],
  ['pingInterval', 0, RANGE],
  ['pingInterval', 1.5, RANGE],
  ['pingInterval', NaN, RANGE],
  ['pingInterval', Infinity, RANGE],
  ['pingInterval', 2 ** 32, RANGE],
  // Beyond setTimeout's limit the client's heartbeat timer fires at once.
  ['pingInterval', 2 ** 31, RANGE],
  ['pingTimeout', '20000', TYPE],
  ['pingTimeout', -1, RANGE],
  ['upgradeTimeout', -1, RANGE],
  ['upgradeTimeout', true, TYPE],
  ['maxHttpBufferSize', -1, RANGE],
  ['maxHttpBufferSize', 0, RANGE],
  ['maxHttpBufferSize', NaN, RANGE],
  ['maxHttpBufferSize', 1.5, RANGE],
  ['maxHttpBufferSize', '1e6', TYPE],
  ['maxBackpressure', 100, RANGE],
  ['maxBackpressure', Infinity, RANGE],
  ['maxBackpressure', '16MB', TYPE],
  ['path', 5, TYPE],
  ['path', 'socket.io', VALUE],
  ['transports', 'websocket', TYPE],
  ['transports', ['foo'], VALUE],
  ['transports', ['websocket', 'foo'], VALUE],
  ['transports', [], VALUE],
  ['transports', ['webtransport'], VALUE],
  ['allowUpgrades', 'yes', TYPE],
  ['allowUpgrades', 1, TYPE],
  ['cors', '*', TYPE],
  ['cors', 5, TYPE],
  ['cors', ['https://a.example'], TYPE],
  ['allowRequest', true, TYPE],
  ['allowRequest', {}, TYPE],
  ['destroyUpgrade', 1, TYPE],
  ['destroyUpgradeTimeout', -1, RANGE],
  ['destroyUpgradeTimeout', 2 ** 31, RANGE],
  ['workers', 0, RANGE],
  ['workers', -1, RANGE],
  ['workers', 1.5, RANGE],
  ['workers', 5000, RANGE],
  ['workers', '2', TYPE],
  ['handshakeTimeout', 50, RANGE],
  ['handshakeTimeout', '10s', TYPE]
]

const SERVER_BAD = [
  ...ENGINE_BAD,
  ['connectTimeout', -1, RANGE],
  ['connectTimeout', 'x', TYPE],
  ['connectTimeout', 2 ** 32, RANGE],
  ['serveClient', 'false', TYPE],
  ['host', 127, TYPE]
]

test('new Server(opts): each bad option is refused, naming it', () => {
  for (const [name, value, expected] of SERVER_BAD) {
    refuses(() => new Server({ [name]: value }), expected, name)
    // The same through the port form and through attach/listen options.
    refuses(() => new Server(0, { [name]: value }), expected, name)
    refuses(() => new Server().attach(http.createServer(), { [name]: value }), expected, name)
  }
})

test('pingInterval + pingTimeout must fit the client\'s one timer (2^31-1 ms)', () => {
  const SUM = [RangeError, 'ERR_OUT_OF_RANGE']
  refuses(() => new Server({ pingInterval: 2 ** 31 - 1 }), SUM, /"pingInterval" \+ "pingTimeout"/)
  refuses(() => new EngineServer({ pingInterval: 2 ** 30, pingTimeout: 2 ** 30 }), SUM, /"pingInterval" \+ "pingTimeout"/)
  assert.doesNotThrow(() => new EngineServer({ pingInterval: 2 ** 30, pingTimeout: 2 ** 30 - 1 }))
})

test('socket.io options: a missing feature that would break silently is refused, supported ones never warn', async () => {
  const UNSUPPORTED = [Error, 'FERROSOCKET_UNSUPPORTED']
  // A custom parser would lock clients out.
  refuses(() => new Server({ parser: {} }), UNSUPPORTED, 'parser')
  // Supported now, so checked as any option: no warning, a wrong type refused.
  const warnings = []
  const onWarning = (w) => { if (w.code === 'FERROSOCKET_UNSUPPORTED') warnings.push(w.message) }
  process.on('warning', onWarning)
  try {
    new Server({ allowEIO3: true, connectionStateRecovery: {} }).close()
    new EngineServer({ allowEIO3: true })
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(warnings, [])
  } finally {
    process.off('warning', onWarning)
  }
  refuses(() => new Server({ allowEIO3: 'yes' }), [TypeError, 'ERR_INVALID_ARG_TYPE'], 'allowEIO3')
  // engine.io middlewares: said plainly instead of "use is not a function".
  const io = new Server()
  refuses(() => io.engine.use((req, res, next) => next()), UNSUPPORTED, /io\.engine\.use\(\).*io\.use\(\)/)
})

test('new Server: bad ports, option objects and attach targets', () => {
  refuses(() => new Server(70000), PORT, /port/)
  refuses(() => new Server(-1), PORT, /port/)
  refuses(() => new Server(1.5), PORT, /port/)
  refuses(() => new Server('70000'), PORT, /port/)
  refuses(() => new Server('abc'), TYPE, /port/)
  refuses(() => new Server(true), TYPE, /port/)
  refuses(() => new Server().listen(65536), PORT, /port/)
  refuses(() => new Server(3000, 'x'), TYPE, /options/)
  refuses(() => new Server(3000, [1]), TYPE, /options/)
  // An Express app is a function with `listen`: refused, as socket.io does.
  const expressLike = Object.assign(function app () {}, { listen () {} })
  refuses(() => new Server(expressLike), TYPE, /request handler function/)
})

test('new EngineServer(opts): each bad option is refused, naming it', () => {
  for (const [name, value, expected] of ENGINE_BAD) {
    refuses(() => new EngineServer({ [name]: value }), expected, name)
    refuses(() => new EngineServer().attach(http.createServer(), { [name]: value }), expected, name)
  }
  refuses(() => new EngineServer('x'), TYPE, /options/)
})

test('good Server and EngineServer options are accepted, edge values included', () => {
  const goods = [
    {},
    { pingInterval: 1, pingTimeout: 2 ** 31 - 2, upgradeTimeout: 1 },
    { maxHttpBufferSize: Infinity },
    { maxHttpBufferSize: 2 ** 40 },
    { transports: ['websocket', 'polling'] },
    { transports: ['websocket'] },
    { transports: ['polling', 'polling'] },
    { transports: ['webtransport', 'websocket'] },
    { path: '/custom/' },
    { path: '' },
    { cors: true },
    { cors: false },
    { cors: { origin: '*' } },
    { cors: (req, cb) => cb(null, { origin: true }) },
    { allowRequest: (req, cb) => cb(null, true) },
    { destroyUpgrade: false, destroyUpgradeTimeout: 0 },
    { workers: 1 },
    { pingInterval: null, transports: null, path: null, cors: null },
    // Unknown and unsupported keys are ignored, as socket.io ignores them.
    { someFutureOption: 'x', wsEngine: class {}, perMessageDeflate: true }
  ]
  for (const opts of goods) {
    assert.doesNotThrow(() => new EngineServer({ ...opts }), JSON.stringify(opts))
    assert.doesNotThrow(() => new Server({ ...opts, connectTimeout: 0, serveClient: false, host: '127.0.0.1' }),
      JSON.stringify(opts))
  }
})

test('a Server built with edge options serves clients (Infinity, null, 0, reordered transports)', { timeout: 10000 }, async (t) => {
  const io = new Server({
    maxHttpBufferSize: Infinity,
    connectTimeout: 0,
    transports: ['websocket', 'polling'],
    path: '/socket.io/',
    pingInterval: null,
    cors: true
  })
  io.listen('0')
  t.after(() => io.close())
  io.on('connection', (socket) => socket.on('echo', (m, ack) => ack(m)))
  const client = ioc(`http://127.0.0.1:${io.port}`, { reconnection: false, forceNew: true })
  t.after(() => client.close())
  await once(client, 'connect')
  // Over the 1e6 default: Infinity is the 1 GiB cap, not 0 or the default.
  const big = 'x'.repeat(2e6)
  assert.equal((await client.timeout(5000).emitWithAck('echo', big)).length, big.length)
})

test('options given to attach(srv, opts) take effect: path, transports, maxHttpBufferSize', { timeout: 10000 }, async (t) => {
  for (const [name, make] of [['Server', () => new Server()], ['EngineServer', () => new EngineServer()]]) {
    const httpServer = http.createServer((req, res) => res.writeHead(404).end())
    const io = make()
    io.attach(httpServer, { path: '/rt', transports: ['websocket'], maxHttpBufferSize: 64 })
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
    t.after(() => { io.close(); httpServer.close() })
    const base = `http://127.0.0.1:${httpServer.address().port}`
    // Polling is off: engine.io's "Transport unknown" (code 0), on the new path.
    const res = await fetch(`${base}/rt/?EIO=4&transport=polling`)
    assert.equal(res.status, 400, name)
    assert.deepEqual(await res.json(), { code: 0, message: 'Transport unknown' }, name)
    assert.equal((await fetch(`${base}/socket.io/?EIO=4&transport=polling`)).status, 404, name)
    // WebSocket on the new path works, and a message over 64 bytes closes it.
    const eio = new EioSocket(base, { path: '/rt/', transports: ['websocket'] })
    t.after(() => eio.close())
    await once(eio, 'open')
    const closed = once(eio, 'close')
    eio.send('x'.repeat(200))
    assert.equal((await closed)[0], 'transport close', name)
  }
})

test('connectTimeout: 0 means the default (45 s), as in socket.io', { timeout: 10000 }, async (t) => {
  const io = new Server({ connectTimeout: 0 })
  io.listen(0)
  t.after(() => io.close())
  // An Engine.IO session that joins no namespace: with a 0 timeout it would
  // be closed at the next engine tick.
  const eio = new EioSocket(`ws://127.0.0.1:${io.port}`, { path: '/socket.io/', transports: ['websocket'] })
  t.after(() => eio.close())
  await once(eio, 'open')
  let closed = null
  eio.on('close', (reason) => { closed = reason })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  assert.equal(closed, null)
})

test('App/SSLApp options: each bad one is refused, naming it', () => {
  const bad = [
    ['workers', 0, RANGE],
    ['workers', -1, RANGE],
    ['workers', 2.5, RANGE],
    ['workers', 5000, RANGE],
    ['workers', 'x', TYPE],
    ['maxConnections', 0, RANGE],
    ['maxConnections', -1, RANGE],
    ['maxConnections', 2 ** 32, RANGE],
    ['handshakeTimeout', 0, RANGE],
    ['handshakeTimeout', '10000', TYPE],
    ['maxConnections', '10', TYPE]
  ]
  for (const [name, value, expected] of bad) {
    refuses(() => App({ [name]: value }), expected, name)
    refuses(() => SSLApp({ [name]: value, key: 'k', cert: 'c' }), expected, name)
  }
  refuses(() => App('x'), TYPE, /options/)
  refuses(() => SSLApp({ key_file_name: 5, cert_file_name: 'c.pem' }), TYPE, 'key_file_name')
  refuses(() => SSLApp({ key_file_name: 'k.pem', cert_file_name: {} }), TYPE, 'cert_file_name')
  refuses(() => SSLApp({ key: 5, cert: 'c' }), TYPE, 'key')
  refuses(() => SSLApp({ key: 'k', cert: true }), TYPE, 'cert')
  refuses(() => SSLApp({ key_file_name: 'k.pem', cert_file_name: 'c.pem', passphrase: 5 }), TYPE, 'passphrase')
  // null means not given; unknown keys are ignored.
  for (const opts of [undefined, null, {}, { workers: null, maxConnections: null }, { workers: 1024, maxConnections: 2 ** 32 - 1 }, { foo: 1 }]) {
    assert.doesNotThrow(() => App(opts).close(), JSON.stringify(opts))
  }
  assert.doesNotThrow(() => App().ws('/*', { maxPayloadLength: null, idleTimeout: null, closeOnBackpressureLimit: null, open: null }).close())
})

test('.ws() behaviors and route handlers: each bad one is refused, naming it', (t) => {
  const app = App()
  t.after(() => app.close())
  const bad = [
    ['idleTimeout', -1, RANGE],
    ['idleTimeout', 1.5, RANGE],
    ['idleTimeout', 2 ** 32, RANGE],
    ['idleTimeout', '120', TYPE],
    ['maxPayloadLength', -1, RANGE],
    ['maxPayloadLength', NaN, RANGE],
    ['maxPayloadLength', 1.5, RANGE],
    ['maxPayloadLength', -Infinity, RANGE],
    ['maxPayloadLength', '16384', TYPE],
    ['maxBackpressure', -1, RANGE],
    ['maxBackpressure', 'x', TYPE],
    ['closeOnBackpressureLimit', 1, TYPE],
    ['sendPingsAutomatically', 'no', TYPE],
    ['compression', -1, RANGE],
    ['maxLifetime', 241, RANGE],
    ['upgrade', {}, TYPE],
    ['open', 'x', TYPE],
    ['message', 5, TYPE],
    ['drain', true, TYPE],
    ['dropped', 1, TYPE],
    ['close', 'x', TYPE],
    ['ping', [], TYPE],
    ['pong', 0, TYPE],
    ['subscription', 'x', TYPE]
  ]
  for (const [name, value, expected] of bad) refuses(() => app.ws('/*', { [name]: value }), expected, name)
  refuses(() => app.ws('/*', 'x'), TYPE, /behavior/)
  for (const method of ['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace', 'any']) {
    refuses(() => app[method]('/x'), TYPE, new RegExp(`${method}\\(\\) handler`))
    refuses(() => app[method]('/x', 'handler'), TYPE, /handler/)
  }
})

test('.ws() with Infinity and other edge values: accepted and in effect', { timeout: 10000 }, async (t) => {
  const app = App({ workers: 1, maxConnections: 100 })
  t.after(() => app.close())
  app.ws('/*', {
    maxPayloadLength: Infinity, // the 1 GiB cap (a default or 0 would close with 1009)
    maxBackpressure: Infinity,
    idleTimeout: 0,
    compression: 0,
    maxLifetime: 0,
    upgrade: null,
    message: (ws, message, isBinary) => { ws.send(message, isBinary) }
  }).get('/ok', (res) => res.end('ok'))
  const ls = await new Promise((resolve) => app.listen('127.0.0.1', '0', 0, resolve))
  assert.ok(ls, 'listened with a string port and listen options')
  const ws = new WebSocket(`ws://127.0.0.1:${ls.port}/`)
  t.after(() => ws.terminate())
  await once(ws, 'open')
  const big = Buffer.alloc(200 * 1024, 7)
  ws.send(big)
  const got = await Promise.race([once(ws, 'message'), once(ws, 'close').then(([code]) => ({ code }))])
  assert.ok(Array.isArray(got), `closed with ${got.code}`)
  assert.equal(got[0].length, big.length)
})

test('listen(): bad ports and callbacks are refused at the call', (t) => {
  const app = App()
  t.after(() => app.close())
  let called = 0
  const cb = () => { called++ }
  refuses(() => app.listen('abc', cb), TYPE, /port/)
  refuses(() => app.listen('127.0.0.1', 'x', cb), TYPE, /port/)
  refuses(() => app.listen(-1, cb), PORT, /port/)
  refuses(() => app.listen(70000, cb), PORT, /port/)
  refuses(() => app.listen(1.5, cb), PORT, /port/)
  refuses(() => app.listen('127.0.0.1', 70000, cb), PORT, /port/)
  refuses(() => app.listen(0, 'x', cb), TYPE, /options/)
  refuses(() => app.listen(0, 'x'), TYPE, /callback/)
  refuses(() => app.listen(0), TYPE, /callback/)
  refuses(() => app.listen(), TYPE, /callback/)
  assert.equal(called, 0)
})

test('listen() on a busy port: callback gets false, then the reason as Node words it', { timeout: 10000 }, async (t) => {
  const blocker = net.createServer()
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const port = blocker.address().port
  const app = App()
  t.after(() => app.close())
  const [ls, err] = await new Promise((resolve) => app.listen('127.0.0.1', port, (...args) => resolve(args)))
  assert.equal(ls, false)
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'EADDRINUSE')
  assert.equal(err.errno, -os.constants.errno.EADDRINUSE)
  assert.equal(err.syscall, 'listen')
  assert.equal(err.address, '127.0.0.1')
  assert.equal(err.port, port)
  assert.equal(err.message, `listen EADDRINUSE: address already in use 127.0.0.1:${port}`)
})

test('listen() after close(): false, with a ferrosocket reason', { timeout: 10000 }, async () => {
  const app = App()
  app.close()
  const [ls, err] = await new Promise((resolve) => app.listen('127.0.0.1', 0, (...args) => resolve(args)))
  assert.equal(ls, false)
  assert.equal(err.code, 'FERROSOCKET_LISTEN_FAILED')
  assert.doesNotMatch(err.message, INTERNAL)
})

test('new Server(busyPort): async "error" on io.httpServer with EADDRINUSE, as socket.io', { timeout: 10000 }, async (t) => {
  const blocker = net.createServer()
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const port = blocker.address().port
  let io
  assert.doesNotThrow(() => { io = new Server(port) })
  t.after(() => io.close())
  // Emitted after the constructor returned, so this listener catches it.
  const [err] = await once(io.httpServer, 'error')
  assert.equal(err.code, 'EADDRINUSE')
  assert.equal(err.errno, -os.constants.errno.EADDRINUSE)
  assert.equal(err.syscall, 'listen')
  assert.equal(err.address, '::')
  assert.equal(err.port, port)
  assert.equal(err.message, `listen EADDRINUSE: address already in use :::${port}`)
  assert.equal(io.httpServer.listening, false)
  assert.equal(io.httpServer.address(), null)
})

test('new Server(busyPort) with no "error" listener: uncaught, as Node and socket.io', { timeout: 10000 }, async (t) => {
  const blocker = net.createServer()
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const port = blocker.address().port
  // node:test would report the uncaught error as a failure: take it first.
  const listeners = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  const caught = new Promise((resolve) => process.once('uncaughtException', resolve))
  t.after(() => { for (const l of listeners) process.on('uncaughtException', l) })
  const io = new Server(port)
  t.after(() => io.close())
  const err = await caught
  assert.equal(err.code, 'EADDRINUSE')
})
