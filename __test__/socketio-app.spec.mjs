// io.attachApp(app): Socket.IO on ferrosocket's own App()/SSLApp(), as
// socket.io offers for uWebSockets.js: one Rust listener for the app's own
// routes and the engine (WebSocket and long-polling), TLS in Rust with
// SSLApp, the client bundle served by an app route.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { io as ioc } from 'socket.io-client'
import WebSocket from 'ws'

const require = createRequire(import.meta.url)
const { App, SSLApp, Server, us_listen_socket_close: closeListener, us_socket_local_port: localPort } = require('..')

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

/** An app with an HTTP route and a WebSocket route of its own, and io attached to it. */
async function setup (t, app, opts) {
  app.get('/hello', (res) => res.end('world'))
  app.ws('/raw', { message: (ws, msg) => ws.send(msg) })
  const io = new Server(opts)
  io.attachApp(app)
  const listenSocket = await new Promise((resolve) => app.listen(0, resolve))
  assert.ok(listenSocket)
  t.after(() => {
    io.close()
    closeListener(listenSocket)
    app.close()
  })
  return { io, port: localPort(listenSocket) }
}

for (const [mode, transports] of [['default', undefined], ['websocket', ['websocket']], ['polling', ['polling']]]) {
  test(`attachApp: events, acks, binary and broadcasts beside the app's own routes [${mode}]`, { timeout: 15000 }, async (t) => {
    const { io, port } = await setup(t, App(), { pingInterval: 300, pingTimeout: 200 })
    const c = ioc(`http://127.0.0.1:${port}`, { transports, forceNew: true, reconnection: false })
    t.after(() => c.close())
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    assert.equal(socket.id, c.id)
    socket.on('double', (n, ack) => ack(n * 2, Buffer.from([n])))
    const [twice, buf] = await new Promise((resolve) => c.emit('double', 21, (...r) => resolve(r)))
    assert.equal(twice, 42)
    assert.deepEqual(Buffer.from(buf), Buffer.from([21]))
    socket.join('room')
    const got = once(c, 'news')
    io.to('room').emit('news', 'hi', Buffer.from([1, 2]))
    const [text, bin] = await got
    assert.deepEqual([text, Buffer.from(bin)], ['hi', Buffer.from([1, 2])])
    // Past a heartbeat, polling or not, the session holds.
    await new Promise((resolve) => setTimeout(resolve, 800))
    assert.ok(socket.connected)
    if (mode === 'default') assert.equal(c.io.engine.transport.name, 'websocket', 'upgraded')

    // The app's own routes on the same port.
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/hello`)).text(), 'world')
    const ws = new WebSocket(`ws://127.0.0.1:${port}/raw`)
    t.after(() => ws.close())
    await once(ws, 'open')
    ws.send('echo')
    const [echo] = await once(ws, 'message')
    assert.equal(echo.toString(), 'echo')
  })
}

test('attachApp: the client bundle with its ETag, 304, 404 for other names, 400 from the engine', { timeout: 10000 }, async (t) => {
  const { port } = await setup(t, App())
  const version = require('socket.io-client/package.json').version
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.min.js?x=1`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'application/javascript; charset=utf-8')
  assert.equal(res.headers.get('etag'), `"${version}"`)
  assert.ok((await res.text()).length > 1000)
  const map = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.js.map`)
  assert.equal(map.headers.get('content-type'), 'application/json; charset=utf-8')
  await map.arrayBuffer()
  const cached = await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.js`, { headers: { 'if-none-match': `"${version}"` } })
  assert.equal(cached.status, 304)
  assert.equal((await fetch(`http://127.0.0.1:${port}/socket.io/socket.io.esm.js`)).status, 404)
  // Anything else under the path is the engine's: engine.io's 400.
  const unknown = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=carrier-pigeon`)
  assert.equal(unknown.status, 400)
  assert.deepEqual(await unknown.json(), { code: 0, message: 'Transport unknown' })
})

test('attachApp on SSLApp: Socket.IO over TLS terminated in Rust, polling and WebSocket', { timeout: 15000 }, async (t) => {
  const app = SSLApp({ key_file_name: fixture('key.pem'), cert_file_name: fixture('cert.pem') })
  const { io, port } = await setup(t, app)
  for (const transports of [['polling'], ['websocket']]) {
    const c = ioc(`https://127.0.0.1:${port}`, { transports, forceNew: true, reconnection: false, rejectUnauthorized: false })
    t.after(() => c.close())
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    assert.equal(socket.handshake.secure, true)
    const got = once(c, 'hello')
    socket.emit('hello', transports[0])
    assert.deepEqual(await got, [transports[0]])
  }
})

test('attachApp refuses what needs Node\'s HTTP server, and what is not an App', () => {
  assert.throws(() => new Server({ cors: { origin: '*' } }).attachApp(App()), { code: 'FERROSOCKET_UNSUPPORTED', message: /"cors"/ })
  assert.throws(() => new Server({ allowRequest: (req, cb) => cb(null, true) }).attachApp(App()), { code: 'FERROSOCKET_UNSUPPORTED' })
  assert.throws(() => new Server().attachApp({}), { name: 'TypeError', message: /App\(\) or SSLApp\(\)/ })
})

test('after io.close() the App serves its own routes and refuses new Socket.IO sessions', { timeout: 10000 }, async (t) => {
  const app = App()
  const { io, port } = await setup(t, app)
  io.close()
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/hello`)).text(), 'world')
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`)
  assert.equal(res.status, 400)
  assert.deepEqual(await res.json(), { code: 3, message: 'Bad request' })
  const c = ioc(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false })
  t.after(() => c.close())
  await once(c, 'connect_error')
})
