// socket.io-client v2 (Engine.IO v3) with `allowEIO3: true`, as socket.io
// 4 serves it: polling, WebSocket and the upgrade; the default namespace
// joined at once, others with their query as `auth`; events, acks, binary
// and broadcasts shared with v4 clients; the client's heartbeat.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'

const require = createRequire(import.meta.url)
const { Server } = require('..')
const ioc2 = require('socket.io-client-v2')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const MODES = [['default', undefined], ['websocket', ['websocket']], ['polling', ['polling']]]

function setup (t, opts = { allowEIO3: true }) {
  const io = new Server({ pingInterval: 300, pingTimeout: 200, ...opts })
  io.listen(0)
  const clients = []
  const v2 = (nsp, options = {}) => {
    const c = ioc2(`http://127.0.0.1:${io.port}${nsp}`, { forceNew: true, reconnection: false, ...options })
    clients.push(c)
    return c
  }
  t.after(() => {
    for (const c of clients) c.close()
    io.close()
  })
  return { io, v2 }
}

for (const [mode, transports] of MODES) {
  test(`a v2 client: id, events, acks and binary both ways, a heartbeat that holds [${mode}]`, { timeout: 15000 }, async (t) => {
    const { io, v2 } = setup(t)
    const c = v2('/', { transports })
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    // socket.io names a v2 client's socket in `/` after its Engine.IO session.
    assert.equal(socket.id, c.id)
    assert.equal(socket.id, c.io.engine.id)
    assert.equal(socket.handshake.query.EIO, '3')
    assert.equal(socket.conn.protocol, 3)

    const answered = new Promise((resolve) => c.emit('hello', 'a', Buffer.from([1, 2]), (...res) => resolve(res)))
    const [name, buf, ack] = await once(socket, 'hello')
    assert.equal(name, 'a')
    assert.deepEqual(buf, Buffer.from([1, 2]))
    ack('done', Buffer.from([3]))
    const [r0, r1] = await answered
    assert.equal(r0, 'done')
    assert.deepEqual(Buffer.from(r1), Buffer.from([3]))

    const got = once(c, 'server')
    socket.emit('server', { n: 1 }, Buffer.from([4, 5]))
    const [obj, bin] = await got
    assert.deepEqual(obj, { n: 1 })
    assert.deepEqual(Buffer.from(bin), Buffer.from([4, 5]))

    // The client pings (v3), the server answers: past pingInterval +
    // pingTimeout the session is still there.
    await sleep(1200)
    assert.ok(socket.connected && c.connected)
    if (mode === 'default') assert.equal(c.io.engine.transport.name, 'websocket', 'upgraded')
  })

  test(`v2 namespaces: query as auth, middleware refusal, broadcasts shared with v4 clients [${mode}]`, { timeout: 15000 }, async (t) => {
    const { io, v2 } = setup(t)
    const chat = io.of('/chat')
    chat.use((socket, next) => next(socket.handshake.auth.token === 'ok' ? undefined : new Error('nope')))
    const refused = v2('/chat', { transports, query: { token: 'bad' } })
    const [err] = await once(refused, 'error')
    assert.equal(err, 'nope', 'v2 gets the message as its error')

    const c = v2('/chat', { transports, query: { token: 'ok', tag: 'x' } })
    const [[socket]] = await Promise.all([once(chat, 'connection'), once(c, 'connect')])
    assert.deepEqual(socket.handshake.auth, { token: 'ok', tag: 'x' })
    assert.equal(socket.id, `/chat#${c.io.engine.id}`)
    assert.equal(c.id, socket.id)

    const modern = ioc(`http://127.0.0.1:${io.port}/chat`, { auth: { token: 'ok' }, forceNew: true, reconnection: false })
    t.after(() => modern.close())
    const [[other]] = await Promise.all([once(chat, 'connection'), once(modern, 'connect')])
    socket.join('room')
    other.join('room')
    const both = Promise.all([once(c, 'news'), once(modern, 'news')])
    chat.to('room').emit('news', 'binary', Buffer.from([7]))
    const [[a, ab], [b, bb]] = await both
    assert.deepEqual([a, Buffer.from(ab)], ['binary', Buffer.from([7])])
    assert.deepEqual([b, Buffer.from(bb)], ['binary', Buffer.from([7])])
    // A v2 client leaving its namespace.
    const left = once(socket, 'disconnect')
    c.disconnect()
    assert.deepEqual(await left, ['client namespace disconnect'])
  })
}

test('allowEIO3 is off by default: a v2 client is refused', { timeout: 10000 }, async (t) => {
  const { v2 } = setup(t, {})
  const c = v2('/', { transports: ['polling'] })
  const [err] = await once(c, 'connect_error')
  assert.ok(err)
  const ws = v2('/', { transports: ['websocket'] })
  await once(ws, 'connect_error')
})
